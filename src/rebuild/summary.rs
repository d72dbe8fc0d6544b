//! What a rebuild reports, and what it stores with the table.

use kappa_materialize::resolve::StoredSchema;
use kappa_sink::replay::{self, Bound, ReplayPlan};
use serde::Serialize;

/// Whether the replayed history is complete up to the end offsets.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryCheck {
    /// Records below the end offsets that the topic no longer holds
    /// (compacted away, or deleted by retention).
    pub removed_before_end: u64,
    /// Partitions whose earliest retained offset is at or past the end.
    pub partitions_without_history: Vec<i32>,
    /// True when nothing before the end offsets was removed.
    pub exact: bool,
}

/// One partition of a rebuild.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionSummary {
    pub partition: i32,
    pub earliest: i64,
    pub high_watermark: i64,
    pub end: i64,
    pub records: u64,
}

/// What a rebuild did.
#[derive(Debug, Serialize)]
pub struct RebuildSummary {
    pub topic: String,
    pub target: String,
    pub records: u64,
    pub upserts: u64,
    pub tombstones: u64,
    pub live_keys: u64,
    pub invalid: u64,
    pub first_invalid: Vec<String>,
    pub seconds: f64,
    pub records_per_second: f64,
    pub partitions: Vec<PartitionSummary>,
    /// Set for `--as-of` and `--until-offsets`.
    pub history: Option<HistoryCheck>,
    pub end_offsets: Vec<(i32, i64)>,
    /// The topic's `delete.retention.ms` when the rebuild started.
    pub delete_retention_ms: Option<u64>,
}

impl RebuildSummary {
    /// Set when the replay took longer than the topic keeps tombstones: a
    /// row deleted while the rebuild read could have lost its tombstone to
    /// compaction before the rebuild reached it, and so still be in the table.
    pub fn outlasted_delete_retention(&self) -> Option<String> {
        let retention = self.delete_retention_ms?;
        let took_ms = (self.seconds * 1000.0) as u64;
        (took_ms > retention).then(|| {
            format!(
                "the replay took {:.1}s, longer than the topic's delete.retention.ms={retention} ({:.1}s): \
                 a row deleted meanwhile may have had its tombstone compacted away before it was read and still be in \
                 the table. Run kappa verify, or rebuild again after raising delete.retention.ms on {} above the rebuild's time",
                self.seconds,
                retention as f64 / 1000.0,
                self.topic
            )
        })
    }
}

/// Facts stored with a rebuilt table.
pub struct Meta<'a> {
    pub topic: &'a str,
    pub reader: &'a StoredSchema,
    pub plan: &'a ReplayPlan,
    pub bound: &'a Bound,
    pub invalid: u64,
    pub history: Option<&'a HistoryCheck>,
}

impl Meta<'_> {
    pub fn entries(&self) -> anyhow::Result<Vec<(&'static str, String)>> {
        let offsets = |f: fn(&replay::PartitionRange) -> i64| {
            serde_json::to_string(
                &self
                    .plan
                    .partitions
                    .iter()
                    .map(|p| (p.partition, f(p)))
                    .collect::<Vec<_>>(),
            )
        };
        let mut entries = vec![
            ("topic", self.topic.to_string()),
            ("start_offsets", offsets(|p| p.low)?),
            ("end_offsets", offsets(|p| p.end)?),
            ("reader_schema_id", self.reader.id.to_string()),
            ("reader_schema", self.reader.text.to_string()),
            ("invalid_records", self.invalid.to_string()),
            (
                "bound",
                match self.bound {
                    Bound::Latest => "latest".to_string(),
                    Bound::Offsets(_) => "until-offsets".to_string(),
                    Bound::Time(millis) => format!("as-of {millis} ms"),
                },
            ),
        ];
        if let Some(history) = self.history {
            entries.push(("history", serde_json::to_string(history)?));
        }
        Ok(entries)
    }
}

/// Prints the summary for a person.
pub fn print_summary(summary: &RebuildSummary) {
    println!(
        "rebuilt {} into {}: {} records read ({} rows, {} tombstones), {} keys live, {:.1}s, {:.0} records/s",
        summary.topic,
        summary.target,
        summary.records,
        summary.upserts,
        summary.tombstones,
        summary.live_keys,
        summary.seconds,
        summary.records_per_second
    );
    if let Some(warning) = summary.outlasted_delete_retention() {
        println!("warning: {warning}");
    }
    if summary.invalid > 0 {
        println!("invalid records skipped: {}", summary.invalid);
        for invalid in &summary.first_invalid {
            println!("  {invalid}");
        }
    }
    if let Some(history) = &summary.history {
        let ends: Vec<String> = summary
            .end_offsets
            .iter()
            .map(|(p, o)| format!("{p}:{o}"))
            .collect();
        println!("end offsets: {}", ends.join(","));
        if history.exact {
            println!("history: complete up to the end offsets (exact)");
        } else {
            println!(
                "history: NOT EXACT: {} records before the end offsets are no longer in the topic (compaction or retention){}; \
                 a key whose older record was compacted away in favour of a newer one past the end is missing or shows an older state",
                history.removed_before_end,
                if history.partitions_without_history.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", and partitions {:?} retain nothing before the point",
                        history.partitions_without_history
                    )
                }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(seconds: f64, delete_retention_ms: Option<u64>) -> RebuildSummary {
        RebuildSummary {
            topic: "kappa.public.t".into(),
            target: "sqlite:/tmp/t.sqlite".into(),
            records: 0,
            upserts: 0,
            tombstones: 0,
            live_keys: 0,
            invalid: 0,
            first_invalid: Vec::new(),
            seconds,
            records_per_second: 0.0,
            partitions: Vec::new(),
            history: None,
            end_offsets: Vec::new(),
            delete_retention_ms,
        }
    }

    #[test]
    fn a_replay_longer_than_delete_retention_is_reported() {
        let warning = summary(90.0, Some(60_000))
            .outlasted_delete_retention()
            .expect("90 s > 60 s");
        assert!(warning.contains("delete.retention.ms=60000"), "{warning}");
        assert!(warning.contains("kappa.public.t"), "{warning}");
        assert_eq!(
            summary(59.0, Some(60_000)).outlasted_delete_retention(),
            None
        );
        assert_eq!(summary(1e6, None).outlasted_delete_retention(), None);
    }
}
