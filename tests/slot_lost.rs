//! A slot PostgreSQL invalidated (`wal_status = lost`) is fatal, never
//! silently replaced: at start, and under a running connector. In a binary
//! of its own: it lowers the server-wide `max_slot_wal_keep_size` for a
//! moment, which would invalidate the slots of tests running beside it
//! (cargo runs test binaries one after another; the two tests here take
//! turns through `SERIAL`).

mod common;

use common::Pipeline;
use common::RunsKappa;
use std::process::Command;
use std::time::{Duration, Instant};

/// Puts `max_slot_wal_keep_size` back when the test ends, also on panic.
struct KeepSizeReset;

impl Drop for KeepSizeReset {
    fn drop(&mut self) {
        let status = Command::new("psql")
            .args([
                &common::pg_url(),
                "-qAt",
                "-c",
                "ALTER SYSTEM RESET max_slot_wal_keep_size",
                "-c",
                "SELECT pg_reload_conf()",
            ])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("could not reset max_slot_wal_keep_size: run ALTER SYSTEM RESET max_slot_wal_keep_size; SELECT pg_reload_conf()");
        }
    }
}

/// One test at a time lowers `max_slot_wal_keep_size`.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn an_invalidated_slot_is_fatal_with_the_fix() {
    let _serial = SERIAL.lock().await;
    let mut p = Pipeline::new("kappa_lost", "id int PRIMARY KEY").await;
    let table = p.table.clone();
    p.commit(&format!("INSERT INTO {table} VALUES (1)")).await;
    p.start();
    p.wait_snapshot_stored().await;
    p.stop();

    invalidate_slot(&p).await;

    p.start();
    assert_eq!(p.wait_exit().code(), Some(78));
    let log = p.log();
    assert!(log.contains("wal_status = lost"), "{log}");
    assert!(log.contains("re-snapshot"), "{log}");
    assert!(
        log.contains(&format!("pg_drop_replication_slot('{}')", p.name)),
        "the fix names the slot: {log}"
    );
    assert_eq!(
        wal_status(&p).await.as_deref(),
        Some("lost"),
        "kappa must not replace the slot"
    );
    p.cleanup().await;
}

/// A connector that falls behind while running (here: stopped with SIGSTOP)
/// until PostgreSQL invalidates its slot finds the slot unusable when it
/// reconnects: it exits 2 with the fix at once, instead of retrying forever.
#[tokio::test(flavor = "multi_thread")]
async fn a_slot_invalidated_under_a_running_connector_is_fatal() {
    let _serial = SERIAL.lock().await;
    let mut p = Pipeline::new("kappa_lostrun", "id int PRIMARY KEY").await;
    let table = p.table.clone();
    p.commit(&format!("INSERT INTO {table} VALUES (1)")).await;
    p.start();
    p.wait_snapshot_stored().await;
    p.daemon.signal("-STOP");
    invalidate_slot(&p).await;
    p.daemon.signal("-CONT");
    let started = Instant::now();
    assert_eq!(p.wait_exit().code(), Some(78), "{}", p.log());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "exited only after {:?}",
        started.elapsed()
    );
    let log = p.log();
    assert!(log.contains("is unusable"), "{log}");
    assert!(log.contains("Re-snapshot"), "{log}");
    assert_eq!(wal_status(&p).await.as_deref(), Some("lost"));
    p.cleanup().await;
}

/// Lowers `max_slot_wal_keep_size`, writes and recycles WAL until a
/// checkpoint invalidates the pipeline's slot, and puts the setting back.
async fn invalidate_slot(p: &Pipeline) {
    let table = p.table.clone();
    let reset = KeepSizeReset;
    p.client
        .batch_execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
        .await
        .expect("lower max_slot_wal_keep_size");
    p.client
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .expect("reload");
    // Write and recycle WAL past the slot until a checkpoint invalidates it.
    let scratch = format!("{table}_wal");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        p.client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {scratch}; \
                 CREATE TABLE {scratch} AS SELECT g, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 60000) g; \
                 SELECT pg_switch_wal(); CHECKPOINT"
            ))
            .await
            .expect("write WAL");
        let status = wal_status(p).await;
        if status.as_deref() == Some("lost") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slot {} not invalidated within 120 s (wal_status {status:?})",
            p.name
        );
    }
    p.client
        .batch_execute(&format!("DROP TABLE IF EXISTS {scratch}"))
        .await
        .expect("drop scratch table");
    drop(reset);
}

/// The slot's `wal_status`; fails the test if the slot is gone.
async fn wal_status(p: &Pipeline) -> Option<String> {
    p.client
        .query_one(
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1",
            &[&p.name],
        )
        .await
        .expect("the slot exists")
        .get(0)
}
