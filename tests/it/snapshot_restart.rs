//! An initial snapshot killed half-way is read again from the start at the
//! next run; rows the first attempt delivered and that were deleted before
//! the second attempt must not stay in the topic. (Found by `kappa-chaos
//! --seed 1 --database mysql`: a TRUNCATE during the snapshot made it fail,
//! the restarted snapshot read the emptied table, and the first attempt's
//! rows stayed in the topic for good: 87 extra rows.)

use crate::common;

use common::mysql::MysqlPipeline;
use common::{brokers, topic_end_offsets, Pipeline, RunsKappa};
use std::time::{Duration, Instant};

/// Small snapshot chunks, so the snapshot of a large table takes a while.
fn small_chunks(config: &std::path::Path) {
    let text = std::fs::read_to_string(config).expect("config");
    assert!(text.contains("snapshot_chunk_rows = 1000"), "{text}");
    std::fs::write(
        config,
        text.replace("snapshot_chunk_rows = 1000", "snapshot_chunk_rows = 100"),
    )
    .expect("config");
}

/// Records written to `topic` so far (0 before kappa created it).
fn written(topic: &str) -> i64 {
    let kafka = kappa_sink::KafkaConfig::new(brokers());
    match kappa_sink::replay::topic_exists(&kafka, topic) {
        Ok(true) => topic_end_offsets(topic),
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_rows_of_a_killed_snapshot_deleted_before_the_next_one_are_tombstoned() {
    // `a` is read first and is complete in its topic before kappa dies in
    // the middle of `b`.
    let mut p = MysqlPipeline::new(
        "kappa_snaprestart",
        1,
        "CREATE TABLE {db0}.a (id INT PRIMARY KEY, v INT);
         INSERT INTO {db0}.a SELECT seq, seq FROM {db0}.seq_1_to_200;
         CREATE TABLE {db0}.b (id INT PRIMARY KEY, pad VARCHAR(200));
         INSERT INTO {db0}.b SELECT seq, REPEAT('x', 200) FROM {db0}.seq_1_to_100000;",
    )
    .await;
    small_chunks(&p.config);
    let db = p.databases[0].clone();
    let (a, topic_a) = (format!("{db}.a"), p.topic(&format!("{db}.a")));
    p.spawn();
    p.wait_for_current_log(&format!("snapshot of table read table={a} "))
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::topic_records(&topic_a) < 200 {
        assert!(
            Instant::now() < deadline,
            "a's 200 rows never reached its topic"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p.kill9();
    assert!(
        !p.log().contains("initial snapshot delivered"),
        "the snapshot finished before the kill: the test needs a larger table b\n{}",
        p.log()
    );
    p.commit(&format!("DELETE FROM {a} WHERE id > 100")).await;
    p.start().await;
    let position = p
        .commit(&format!("UPDATE {a} SET v = -v WHERE id = 1"))
        .await;
    p.wait_stored(&position).await;
    p.stop();
    p.assert_verified(&a, 100);
    assert!(
        p.log()
            .contains("rows of an incomplete earlier snapshot tombstoned"),
        "{}",
        p.log()
    );
    p.cleanup().await;
}

/// PostgreSQL passed this before the fix too: the slot made at the first
/// attempt keeps the WAL from its start, so the second attempt streams the
/// DELETEs. It stays as the same guarantee, tested on both sources.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_rows_of_a_killed_snapshot_deleted_before_the_next_one_are_tombstoned() {
    let mut p = Pipeline::new("kappa_snaprestart_pg", "id int PRIMARY KEY, pad text").await;
    small_chunks(&p.config);
    let table = p.table.clone();
    p.client
        .batch_execute(&format!(
            "INSERT INTO {table} SELECT g, repeat('x', 200) FROM generate_series(1, 60000) g"
        ))
        .await
        .expect("rows");
    p.spawn();
    // Some chunks delivered, the snapshot not yet read to its end.
    let deadline = Instant::now() + Duration::from_secs(120);
    while written(&p.topic) < 1000 {
        p.assert_running();
        assert!(
            Instant::now() < deadline,
            "no snapshot rows in the topic:\n{}",
            p.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p.kill9();
    assert!(
        !p.log().contains("snapshot of table read"),
        "the snapshot finished before the kill: the test needs a larger table\n{}",
        p.log()
    );
    p.commit(&format!("DELETE FROM {table} WHERE id % 2 = 0"))
        .await;
    p.start();
    let lsn = p
        .commit(&format!("UPDATE {table} SET pad = 'y' WHERE id = 1"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    p.assert_verified(30000);
    p.cleanup().await;
}
