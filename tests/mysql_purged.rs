//! A stored binlog position that the server no longer has is a fatal,
//! clearly worded error. In its own test binary: PURGE BINARY LOGS must not
//! pull binlogs from under another test's connector.

mod common;

use common::mysql::MysqlPipeline;
use common::RunsKappa;

#[tokio::test(flavor = "multi_thread")]
async fn purged_binlog_is_a_fatal_error_telling_to_resnapshot() {
    let mut p = MysqlPipeline::new(
        "kmy_purged",
        1,
        "CREATE TABLE {db0}.t (id INT PRIMARY KEY, v INT); INSERT INTO {db0}.t VALUES (1, 1)",
    )
    .await;
    let table = format!("{}.t", p.databases[0]);
    p.start().await;
    let end = p
        .commit(&format!("INSERT INTO {table} VALUES (2, 2)"))
        .await;
    p.wait_stored(&end).await;
    p.stop();
    let stored = p.stored_position().await.expect("a stored position");
    purge_past(&mut p, &stored.file).await;
    p.spawn();
    let status = p.wait_exit();
    assert_eq!(status.code(), Some(78), "{}", p.log());
    let log = p.current_log();
    assert!(log.contains("is no longer on the server"), "{log}");
    assert!(log.contains("Re-snapshot"), "{log}");
    p.cleanup().await;
}

/// Purges every binlog up to a fresh one until `file` is gone. MariaDB keeps a
/// binlog that a dump thread still reads ("is in use"): the thread of a
/// connector killed a moment ago lingers until the server next writes to its
/// socket, so such threads are killed and the purge is retried.
async fn purge_past(p: &mut MysqlPipeline, file: &str) {
    use mysql_async::prelude::Queryable;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    p.exec("FLUSH BINARY LOGS").await;
    loop {
        let dumps: Vec<u64> = p
            .conn
            .query(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
            )
            .await
            .expect("list binlog dump threads");
        for id in dumps {
            // The thread may have ended meanwhile: an unknown thread is fine.
            let _ = p.conn.query_drop(format!("KILL CONNECTION {id}")).await;
        }
        let current = p.master_position().await;
        p.exec(&format!("PURGE BINARY LOGS TO '{}'", current.file))
            .await;
        let rows: Vec<mysql_async::Row> = p.conn.query("SHOW BINARY LOGS").await.expect("logs");
        let logs: Vec<String> = rows
            .into_iter()
            .map(|row| row.get(0).expect("log name"))
            .collect();
        if !logs.iter().any(|l| l == file) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{file} is still on the server after 30 s of PURGE BINARY LOGS: {logs:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
