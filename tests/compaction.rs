//! Reconstruction from the compacted log: after the broker's compaction pass
//! the topic holds fewer records than were produced, and a fresh rebuild still
//! equals the source. A test binary of its own, so that it runs first, while
//! the broker's compaction passes (record by record, over every compacted
//! topic) are short.

mod common;

use common::RunsKappa;
use common::{topic_end_offsets, topic_records, Pipeline};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn rebuild_after_compaction_still_verifies() {
    let mut p = Pipeline::new("kappa_compact", "id int PRIMARY KEY, counter int NOT NULL").await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 20) g"
    ))
    .await;
    p.start();
    for _ in 0..10 {
        p.commit(&format!("UPDATE {table} SET counter = counter + 1"))
            .await;
    }
    p.commit(&format!("DELETE FROM {table} WHERE id > 18"))
        .await;
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
    // The broker compacts at each maintenance pass (every 2 s, record by
    // record, behind whatever other topics wait); wait for it to reach ours.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut records = produced;
    while records > 2 * 20 {
        assert!(
            Instant::now() < deadline,
            "topic {} was not compacted within 300 s ({records} of {produced} records left)",
            p.topic
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
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
