//! The plan of a bounded replay: which partitions, and where each ends —
//! the high watermarks now ([`Bound::Latest`]), given offsets
//! ([`Bound::Offsets`]) or those of a point in time ([`Bound::Time`]) —
//! fixed before the first record is read (`super::run` reads them).

use super::{broker_error, consumer, METADATA_TIMEOUT, STALL};
use crate::error::{ErrorKind, SinkError};
use crate::kafka::KafkaConfig;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where a replay stops.
#[derive(Debug, Clone)]
pub enum Bound {
    /// The high watermarks when the replay starts.
    Latest,
    /// Given end offsets (exclusive), one per partition.
    Offsets(BTreeMap<i32, i64>),
    /// Records with a timestamp before this many milliseconds since the epoch.
    Time(i64),
}

/// One partition's share of a replay.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PartitionRange {
    pub partition: i32,
    /// Earliest retained offset when the replay was planned.
    pub low: i64,
    /// High watermark when the replay was planned.
    pub high: i64,
    /// Exclusive end of this replay.
    pub end: i64,
}

/// What to read: every partition of `topic` from `low` to `end`.
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    pub topic: String,
    pub partitions: Vec<PartitionRange>,
}

impl ReplayPlan {
    /// Offsets the replay will cover (gaps included): the progress total.
    pub fn span(&self) -> u64 {
        self.partitions
            .iter()
            .map(|p| (p.end - p.low).max(0) as u64)
            .sum()
    }
}

/// Whether the broker has `topic` (with at least one partition). Asks the
/// metadata only: never creates it, whatever the broker's auto-creation.
pub fn topic_exists(kafka: &KafkaConfig, topic: &str) -> Result<bool, SinkError> {
    let consumer = consumer(kafka)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| broker_error(kafka)(format!("reading metadata of topic {topic}: {e}"), e))?;
    Ok(metadata
        .topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()))
}

/// Runs `request` again while it fails for a passing reason (a broker just
/// restarted answers NotLeaderForPartition until leadership settles), for at
/// most [`STALL`]; then, or on any other failure, its error.
fn while_transient<T>(mut request: impl FnMut() -> Result<T, KafkaError>) -> Result<T, KafkaError> {
    let started = std::time::Instant::now();
    loop {
        match request() {
            Err(e)
                if crate::error::kafka_kind(&e) == ErrorKind::Transient
                    && started.elapsed() < STALL =>
            {
                std::thread::sleep(Duration::from_millis(250));
            }
            done => return done,
        }
    }
}

/// Fixes the partitions and end offsets of a replay of `topic`.
pub fn plan(kafka: &KafkaConfig, topic: &str, bound: &Bound) -> Result<ReplayPlan, SinkError> {
    let fail = broker_error(kafka);
    let consumer = consumer(kafka)?;
    let metadata = while_transient(|| consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT))
        .map_err(|e| fail(format!("reading metadata of topic {topic}: {e}"), e))?;
    let mut ids: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    ids.sort_unstable();
    if ids.is_empty() {
        return Err(SinkError::Topic {
            topic: topic.to_string(),
            reason: "does not exist (or has no partitions)".into(),
            code: None,
        });
    }
    let mut partitions = Vec::with_capacity(ids.len());
    for &partition in &ids {
        let (low, high) =
            while_transient(|| consumer.fetch_watermarks(topic, partition, METADATA_TIMEOUT))
                .map_err(|e| {
                    fail(
                        format!("reading end offsets of {topic}/{partition}: {e}"),
                        e,
                    )
                })?;
        partitions.push(PartitionRange {
            partition,
            low,
            high,
            end: high,
        });
    }
    match bound {
        Bound::Latest => {}
        Bound::Offsets(given) => {
            for range in &mut partitions {
                let Some(&end) = given.get(&range.partition) else {
                    return Err(SinkError::Topic {
                        topic: topic.to_string(),
                        reason: format!(
                            "--until-offsets names no end offset for partition {} (give one per partition: {})",
                            range.partition,
                            ids.iter().map(|p| format!("{p}:OFFSET")).collect::<Vec<_>>().join(",")
                        ),
                        code: None,
                    });
                };
                if end > range.high {
                    return Err(SinkError::Topic {
                        topic: topic.to_string(),
                        reason: format!(
                            "end offset {end} for partition {} is past its high watermark {}",
                            range.partition, range.high
                        ),
                        code: None,
                    });
                }
                range.end = end.max(0);
            }
            if let Some(unknown) = given.keys().find(|p| !ids.contains(p)) {
                return Err(SinkError::Topic {
                    topic: topic.to_string(),
                    reason: format!(
                        "--until-offsets names partition {unknown}, which the topic does not have"
                    ),
                    code: None,
                });
            }
        }
        Bound::Time(millis) => {
            let mut query = TopicPartitionList::new();
            for &partition in &ids {
                query
                    .add_partition_offset(topic, partition, Offset::Offset(*millis))
                    .map_err(|e| fail(e.to_string(), e))?;
            }
            let found = consumer
                .offsets_for_times(query, METADATA_TIMEOUT)
                .map_err(|e| fail(format!("looking up offsets of {topic} for a time: {e}"), e))?;
            for range in &mut partitions {
                let offset = found
                    .find_partition(topic, range.partition)
                    .map(|e| e.offset())
                    .unwrap_or(Offset::End);
                // No record at or after the time: the whole partition is older.
                range.end = match offset {
                    Offset::Offset(o) => o.min(range.high),
                    _ => range.high,
                };
            }
        }
    }
    Ok(ReplayPlan {
        topic: topic.to_string(),
        partitions,
    })
}
