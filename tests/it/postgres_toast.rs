//! Unchanged TOAST values under REPLICA IDENTITY DEFAULT, fetched by key
//! (`unchanged_toast = "fetch"`): the rebuilt table is exact, also across a
//! lost replication connection.

use crate::common;

use common::{Pipeline, RunsKappa};

/// A body stored out of line and uncompressed (EXTERNAL), beside a `pad`
/// kept inline compressed (MAIN): an UPDATE that sets a 20 kB pad carries
/// it in full in the stream and leaves the body unchanged ('u').
const TOASTED: &str = "(id int PRIMARY KEY, n int NOT NULL, pad text, body text)";
const STORAGE: &str = "ALTER TABLE {table} ALTER COLUMN body SET STORAGE EXTERNAL; \
     ALTER TABLE {table} ALTER COLUMN pad SET STORAGE MAIN";
const FETCH: &str = "[source.postgres.table_options.\"{table}\"]\nunchanged_toast = \"fetch\"\n";

/// Inserts rows `from..=to`, each with its own 2.5 kB incompressible body.
fn insert_rows(table: &str, from: u32, to: u32) -> String {
    format!(
        "INSERT INTO {table} SELECT i, 0, NULL, \
         (SELECT string_agg(md5(i || '-' || g), '') FROM generate_series(1, 80) g) \
         FROM generate_series({from}, {to}) i"
    )
}

/// Waits until the connector's TOAST fetch session has run its query on
/// `p`'s table (the walsender, whose query names the slot, is left out).
async fn wait_for_fetches(p: &Pipeline) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let fetched: i64 = p
            .client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
                 AND query LIKE '%= $1::text::%' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
                &[&p.name],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if fetched > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the connector never fetched:\n{}",
            p.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The connection is lost in the middle of a transaction whose UPDATEs left
/// the body unchanged: the pending piece's TOAST holes must die with it.
/// Before, they survived into the next session and were applied to its
/// first changes by index. The transaction replayed there starts with
/// complete rows (INSERTs), so a stale hole wrote another key's body into
/// an inserted row, and nothing wrote it right again.
#[tokio::test(flavor = "multi_thread")]
async fn toast_holes_of_a_lost_connection_never_reach_the_next_session() {
    let mut p = Pipeline::build("kappa_toastlost", TOASTED, STORAGE, FETCH).await;
    let table = p.table.clone();
    p.commit(&insert_rows(&table, 1, 5000)).await;
    p.start();
    p.wait_snapshot_stored().await;
    // 1,000 INSERTs, then an UPDATE of 5,000 rows that leaves each body
    // unchanged (100 MB of messages for the pads). The connector fetches
    // the body of every UPDATE (one query each), so it takes a while; in
    // the middle of it the connector is frozen and the walsender
    // terminated: what the client has buffered is decoded (the last piece,
    // with holes, pending), then the connection is gone.
    let lsn = p
        .commit(&format!(
            "{}; UPDATE {table} SET n = n + 1, pad = repeat('p', 20000) WHERE id <= 5000",
            insert_rows(&table, 10_001, 11_000)
        ))
        .await;
    wait_for_fetches(&p).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    p.daemon.signal("-STOP");
    common::terminate_walsender(&p).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    p.daemon.signal("-CONT");
    p.wait_for_log("reconnected").await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    p.assert_verified(6000);
    p.cleanup().await;
}

/// The TOAST fetch session dies in the middle of a transaction's fetches
/// (its backend terminated: what a PostgreSQL restart does to it) while the
/// replication connection lives: the stream ends the session as a lost
/// connection, closes the replication connection, reopens the fetch session
/// and reads the transaction again. Before, the failed fetch stopped kappa
/// (exit 2).
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_toast_fetch_session_is_reopened() {
    let mut p = Pipeline::build("kappa_toastfetchlost", TOASTED, STORAGE, FETCH).await;
    let table = p.table.clone();
    p.commit(&insert_rows(&table, 1, 3000)).await;
    p.start();
    p.wait_snapshot_stored().await;
    let lsn = p
        .commit(&format!(
            "UPDATE {table} SET n = n + 1, pad = repeat('p', 20000) WHERE id <= 3000"
        ))
        .await;
    wait_for_fetches(&p).await;
    let terminated: bool = p
        .client
        .query_one(
            "SELECT bool_or(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'client backend' \
             AND query LIKE '%= $1::text::%' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
            &[&p.name],
        )
        .await
        .expect("terminate the fetch session")
        .get::<_, Option<bool>>(0)
        .unwrap_or(false);
    assert!(terminated, "no TOAST fetch session found for {}", p.name);
    p.wait_for_log("TOAST fetch session reopened").await;
    p.wait_confirmed(&lsn).await;
    p.assert_running();
    p.stop();
    p.assert_verified(3000);
    p.cleanup().await;
}

/// The default for an ordinary table with a `text` column under REPLICA
/// IDENTITY DEFAULT: it starts (no refusal), with one warning naming the
/// table and the cheaper exact alternative, and UPDATEs that leave its
/// TOASTed values unchanged rebuild exactly. Before, it was refused at start.
#[tokio::test(flavor = "multi_thread")]
async fn a_text_table_under_default_identity_starts_and_rebuilds_exactly() {
    let mut p = Pipeline::build(
        "kappa_toastdefault",
        "(id int PRIMARY KEY, n int NOT NULL, body text)",
        "ALTER TABLE {table} ALTER COLUMN body SET STORAGE EXTERNAL",
        "",
    )
    .await;
    let table = p.table.clone();
    let body = |seed: &str| {
        format!("(SELECT string_agg(md5('{seed}' || id || '-' || g), '') FROM generate_series(1, 80) g)")
    };
    p.commit(&format!(
        "INSERT INTO {table} SELECT id, 0, {} FROM generate_series(1, 300) id",
        body("a")
    ))
    .await;
    p.start();
    p.wait_for_log("streaming changes").await;
    p.commit(&format!(
        "INSERT INTO {table} SELECT id, 0, {} FROM generate_series(301, 400) id",
        body("b")
    ))
    .await;
    // Each leaves every body (2.5 kB, incompressible, out of line) unchanged.
    p.commit(&format!("UPDATE {table} SET n = n + 1")).await;
    p.commit(&format!("UPDATE {table} SET n = n * 10 WHERE id % 3 = 0"))
        .await;
    p.commit(&format!(
        "UPDATE {table} SET n = -1 WHERE id = 7; DELETE FROM {table} WHERE id = 7"
    ))
    .await;
    let lsn = p
        .commit(&format!("UPDATE {table} SET body = 'short' WHERE id = 8"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    let log = p.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("TOASTed"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning at start:\n{log}");
    assert!(warnings[0].contains(&table), "{log}");
    assert!(
        warnings[0].contains("REPLICA IDENTITY FULL is the"),
        "{log}"
    );
    assert!(warnings[0].contains("cheaper exact alternative"), "{log}");
    p.assert_verified(399);
    p.cleanup().await;
}
