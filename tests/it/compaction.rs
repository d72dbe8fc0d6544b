//! Reconstruction from the compacted log, on Apache Kafka: the table topic is
//! created with small segments and an eager cleaner ([kafka.topic_config]),
//! segments roll as changes arrive, the log cleaner compacts the closed ones
//! (never the active segment), the topic then holds fewer records than were
//! produced, and a fresh rebuild still equals the source.

use crate::common;

use common::RunsKappa;
use common::{topic_end_offsets, topic_records, Pipeline};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Topic configs that make Kafka compact within seconds: a segment closes
/// when a record arrives 100 ms after the segment's first, any dirty share
/// makes a log cleanable, and records are compactable at once. Tombstones
/// are kept an hour (`delete.retention.ms`), far longer than the rebuild.
const EAGER_COMPACTION: &str = r#"
[kafka.topic_config]
"segment.ms" = "100"
"min.cleanable.dirty.ratio" = "0.01"
"min.compaction.lag.ms" = "0"
"delete.retention.ms" = "3600000"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn rebuild_after_compaction_still_verifies() {
    let mut p = Pipeline::build(
        "kappa_compact",
        "(id int PRIMARY KEY, counter int NOT NULL)",
        "ALTER TABLE {table} REPLICA IDENTITY FULL",
        EAGER_COMPACTION,
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 20) g"
    ))
    .await;
    p.start();
    // Each round lands in a segment of its own (segment.ms = 100): a segment
    // rolls when a record arrives 100 ms after its first, so every round is
    // delivered before the pause. (Without the wait, a kappa still starting
    // on a loaded machine streamed all rounds in one burst into one segment,
    // the active one, which is never compacted.)
    for _ in 0..10 {
        let lsn = p
            .commit(&format!("UPDATE {table} SET counter = counter + 1"))
            .await;
        p.wait_confirmed(&lsn).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let lsn = p
        .commit(&format!("DELETE FROM {table} WHERE id > 18"))
        .await;
    p.wait_confirmed(&lsn).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let lsn = p
        .commit(&format!("UPDATE {table} SET counter = -1 WHERE id = 1"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    let produced: u64 = 20 + 10 * 20 + 2 + 1;
    assert_eq!(
        topic_end_offsets(&p.topic),
        produced as i64,
        "every change was written as a record"
    );
    // The cleaner looks for dirty logs every second (dev/services sets
    // log.cleaner.backoff.ms); every closed segment compacts to the newest
    // record per key, the active one (the last UPDATE) stays as it is.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut records = produced;
    while records > 2 * 20 {
        assert!(
            Instant::now() < deadline,
            "topic {} was not compacted within 120 s ({records} of {produced} records left)\n{}",
            p.topic,
            broker_side_of(&p.topic)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        records = topic_records(&p.topic);
    }
    assert!(records < produced);
    let (path, output) = p.rebuild("compacted.sqlite");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(path.exists());
    p.assert_verified(18);
    p.cleanup().await;
}

/// What the broker did with the topic, for a failure message: the segment
/// files of its partition (did segments roll?) and the broker log's lines
/// about the cleaner or the topic (did the cleaner run, fail, skip it?).
fn broker_side_of(topic: &str) -> String {
    let state = std::env::var_os("KAPPA_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".kappa-state"));
    let partition = state.join("kafka/data").join(format!("{topic}-0"));
    let segments = match std::fs::read_dir(&partition) {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| {
                    let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                    format!("{} ({len} B)", e.file_name().to_string_lossy())
                })
                .collect();
            names.sort();
            names.join(", ")
        }
        Err(e) => format!("cannot list {}: {e}", partition.display()),
    };
    let log_path = state.join("logs/kafka.log");
    let log = match std::fs::read_to_string(&log_path) {
        Ok(text) => {
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| {
                    l.contains(topic)
                        || l.contains("Cleaner")
                        || l.contains("cleaner")
                        || l.contains("ERROR")
                })
                .collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        }
        Err(e) => format!("cannot read {}: {e}", log_path.display()),
    };
    format!(
        "segments in {}: {segments}\nbroker log ({}), cleaner/topic/ERROR lines, last 40:\n{log}",
        partition.display(),
        log_path.display()
    )
}
