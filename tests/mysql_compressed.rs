//! MariaDB's `log_bin_compress`: kappa does not decode compressed binlog
//! events yet, so it refuses the setting at start and, should the setting be
//! turned on while it streams, stops at the first compressed event instead
//! of passing over it (an event passed over is a lost change). In a binary
//! of its own: the setting is server-wide.

mod common;

use common::mysql::MysqlPipeline;
use common::RunsKappa;
use std::process::Command;

/// Puts `log_bin_compress` back when the test ends, also on panic.
struct CompressOff;

impl Drop for CompressOff {
    fn drop(&mut self) {
        let ok = Command::new("mariadb")
            .args(["-uroot", "-e", "SET GLOBAL log_bin_compress = OFF"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("could not reset log_bin_compress: run SET GLOBAL log_bin_compress = OFF");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compressed_binlog_events_stop_the_reader_never_skipped() {
    let mut p = MysqlPipeline::new(
        "kmy_compress",
        1,
        "CREATE TABLE {db0}.docs (id INT PRIMARY KEY, body TEXT)",
    )
    .await;
    let table = format!("{}.docs", p.databases[0]);
    p.commit(&format!("INSERT INTO {table} VALUES (1, 'plain')"))
        .await;
    p.start().await;
    let end = p
        .commit(&format!("INSERT INTO {table} VALUES (2, 'still plain')"))
        .await;
    p.wait_stored(&end).await;

    let _reset = CompressOff;
    p.exec("SET GLOBAL log_bin_compress = ON").await;
    // Events of at least log_bin_compress_min_len (256) bytes are compressed.
    p.commit(&format!(
        "INSERT INTO {table} VALUES (3, REPEAT('compressed ', 100))"
    ))
    .await;
    let status = p.wait_exit();
    let log = p.log();
    assert_eq!(status.code(), Some(78), "{log}");
    assert!(log.contains("compressed binlog event"), "{log}");
    assert!(log.contains("log_bin_compress"), "{log}");

    // With the setting still on, a start is refused with the fix.
    p.spawn();
    assert_eq!(p.wait_exit().code(), Some(78));
    let current = p.current_log();
    assert!(
        current.contains("log_bin_compress = ON")
            && current.contains("SET GLOBAL log_bin_compress = OFF"),
        "{current}"
    );

    // Off again: the event already written compressed still cannot be read.
    p.exec("SET GLOBAL log_bin_compress = OFF").await;
    p.spawn();
    assert_eq!(p.wait_exit().code(), Some(78));
    assert!(
        p.current_log().contains("compressed binlog event"),
        "{}",
        p.current_log()
    );
    p.cleanup().await;
}
