//! A TRUNCATE of a table with many keys: a tombstone for every live key, in
//! bounded memory (the live keys spill to disk past a budget, tombstones go
//! out in batches within the in-flight bound).

use crate::common;

use common::{peak_rss_kb, Pipeline, RunsKappa};

#[tokio::test(flavor = "multi_thread")]
async fn a_truncate_of_200k_keys_tombstones_every_one() {
    let mut p = Pipeline::build("kappa_bigtrunc", "(id int PRIMARY KEY, v int)", "", "").await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, g FROM generate_series(1, 200000) g"
    ))
    .await;
    p.start();
    p.wait_snapshot_stored().await;
    // Some keys more than once in the topic, some deleted: only the newest
    // record per key decides.
    p.commit(&format!("UPDATE {table} SET v = -v WHERE id % 10 = 0"))
        .await;
    let lsn = p
        .commit(&format!("DELETE FROM {table} WHERE id % 100 = 1"))
        .await;
    p.wait_confirmed(&lsn).await;
    let pid = p.daemon.pid();
    let before = peak_rss_kb(pid);
    p.commit(&format!("TRUNCATE {table}")).await;
    let lsn = p
        .commit(&format!(
            "INSERT INTO {table} SELECT g, g FROM generate_series(1, 5) g"
        ))
        .await;
    p.wait_confirmed(&lsn).await;
    let after = peak_rss_kb(pid);
    eprintln!(
        "peak RSS before TRUNCATE {before} kB, after {after} kB (+{} kB)",
        after.saturating_sub(before)
    );
    // Before, every key and a delivery future per key were held: +98 MB
    // here. Now the bound is the key budget, the replay's buffers and the
    // records in flight, whatever the key count (about +58 MB here).
    assert!(
        after.saturating_sub(before) < 80_000,
        "peak RSS grew by {} kB during the TRUNCATE",
        after.saturating_sub(before)
    );
    p.stop();
    let log = p.log();
    assert!(
        log.contains("tombstones=198000"),
        "198,000 live keys:\n{log}"
    );
    p.assert_verified(5);
    p.cleanup().await;
}
