//! A binlog cut off in the middle of an event — what a server killed while
//! writing it leaves (chaos seed 58 found it: every restart of kappa stopped
//! at the server's ERROR 1236 "binlog truncated in the middle of event").
//! kappa undoes what it published of the transaction cut off there (crash
//! recovery rolled it back), stores the start of the next binlog and streams
//! on. In its own test binary: it restarts MariaDB.
//!
//! The cut is made by hand, so it is exact: the server is shut down cleanly
//! after a large transaction T, its binlog is cut inside T's last row event
//! (before T's XID), the server starts again, and T's effects are reverted
//! without binlogging them (`sql_log_bin = 0`): the server then holds what
//! crash recovery leaves when T never reached its XID.

mod common;

use common::mysql::{mysql, MysqlPipeline};
use common::RunsKappa;
use mysql_async::prelude::Queryable;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn a_binlog_cut_off_mid_event_is_skipped_and_what_was_published_of_it_undone() {
    let rows: Vec<String> = (1..=100).map(|i| format!("({i}, 'v{i}')")).collect();
    let mut p = MysqlPipeline::new(
        "kmy_cut",
        1,
        &format!(
            "CREATE TABLE {{db0}}.t (id INT PRIMARY KEY, v VARCHAR(64)); INSERT INTO {{db0}}.t VALUES {}",
            rows.join(", ")
        ),
    )
    .await;
    let table = format!("{}.t", p.databases[0]);
    p.start().await;
    let caught_up = p.master_position().await;
    p.wait_stored(&caught_up).await;
    p.stop();

    // T, alone at the start of a fresh binlog: more changes than one piece
    // (PIECE = 512), so kappa publishes pieces of it before its XID.
    p.exec("FLUSH BINARY LOGS").await;
    let inserts: Vec<String> = (1001..=3000).map(|i| format!("({i}, 'T')")).collect();
    let cut_file = p.master_position().await.file;
    p.commit(&format!(
        "UPDATE {table} SET v = 'T' WHERE id <= 50; INSERT INTO {table} VALUES {}; \
         DELETE FROM {table} WHERE id BETWEEN 60 AND 70",
        inserts.join(", ")
    ))
    .await;
    let xid = xid_position(&mut p, &cut_file).await;
    let basename: String = p
        .conn
        .query_first("SELECT @@log_bin_basename")
        .await
        .expect("log_bin_basename")
        .expect("binary logging is on");
    let path = Path::new(&basename)
        .parent()
        .expect("binlog directory")
        .join(&cut_file);

    shut_down_server(&mut p).await;
    // Inside T's last row event, which ends at the XID's start.
    let cut = xid.checked_sub(7).expect("T's events precede its XID");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(cut))
        .unwrap_or_else(|e| panic!("cutting {}: {e}", path.display()));
    restart_server();
    p.conn = mysql().await;
    let logs: Vec<(String, u64)> = p.conn.query("SHOW BINARY LOGS").await.expect("logs");
    assert!(
        logs.iter()
            .any(|(name, size)| *name == cut_file && *size == cut),
        "{cut_file} cut at {cut}: {logs:?}"
    );

    // What crash recovery leaves: T rolled back. Not binlogged, so only an
    // undo by kappa can bring the topic back to it.
    let before: Vec<String> = (60..=70).map(|i| format!("({i}, 'v{i}')")).collect();
    p.exec(&format!(
        "SET SESSION sql_log_bin = 0; START TRANSACTION; \
         UPDATE {table} SET v = CONCAT('v', id) WHERE id <= 50; DELETE FROM {table} WHERE id > 1000; \
         INSERT INTO {table} VALUES {}; COMMIT; SET SESSION sql_log_bin = 1",
        before.join(", ")
    ))
    .await;
    // And the stream goes on past the cut.
    let after = p
        .commit(&format!("INSERT INTO {table} VALUES (5000, 'after')"))
        .await;
    assert!(after.file > cut_file, "the server started a new binlog");

    p.spawn();
    p.wait_stored(&after).await;
    let log = p.current_log();
    assert!(
        log.contains("the binlog ends in the middle of an event"),
        "{log}"
    );
    let undone = logged_number(&log, "undone=");
    assert!(
        undone >= 512,
        "at least one piece of T (512 changes) was published and undone: undone={undone}\n{log}"
    );
    let stored = p.stored_position().await.expect("a stored position");
    assert!(stored.file > cut_file, "stored past the cut: {stored:?}");
    p.assert_verified(&table, 101);

    // A restart resumes from the stored position, past the cut.
    p.stop();
    p.start().await;
    let last = p
        .commit(&format!("UPDATE {table} SET v = 'later' WHERE id = 1"))
        .await;
    p.wait_stored(&last).await;
    assert!(
        !p.current_log()
            .contains("the binlog ends in the middle of an event"),
        "{}",
        p.current_log()
    );
    p.stop();
    p.assert_verified(&table, 101);
    p.cleanup().await;
}

/// Where the XID event of the last transaction in `file` starts.
async fn xid_position(p: &mut MysqlPipeline, file: &str) -> u64 {
    let events: Vec<mysql_async::Row> = p
        .conn
        .query(format!("SHOW BINLOG EVENTS IN '{file}'"))
        .await
        .expect("SHOW BINLOG EVENTS");
    events
        .iter()
        .rev()
        .filter(|row| row.get::<String, _>(2).as_deref() == Some("Xid"))
        .find_map(|row| row.get::<u64, _>(1))
        .unwrap_or_else(|| panic!("no XID event in {file}"))
}

/// A clean shutdown (`SHUTDOWN`), waited for until the server is gone (the
/// system server runs as mysql; dev/chaos runs private ones as root).
async fn shut_down_server(p: &mut MysqlPipeline) {
    // The server may drop the connection before it answers.
    let _ = p.conn.query_drop("SHUTDOWN").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Command::new("pgrep")
        .args(["-u", "mysql", "-x", "mariadbd|mysqld"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("pgrep")
        .success()
    {
        assert!(Instant::now() < deadline, "MariaDB did not stop in 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `dev/services restart mariadb`: starts it again, configured as `up` does.
fn restart_server() {
    common::dev_services(&["restart", "mariadb"]);
}

/// The number after `field` in the log (a tracing field).
fn logged_number(log: &str, field: &str) -> u64 {
    let at = log
        .find(field)
        .unwrap_or_else(|| panic!("no {field} in the log:\n{log}"));
    log[at + field.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|e| panic!("{field}: {e}\n{log}"))
}
