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
    p.exec("FLUSH BINARY LOGS").await;
    let current = p.master_position().await;
    p.exec(&format!("PURGE BINARY LOGS TO '{}'", current.file))
        .await;
    let mut logs: Vec<String> = Vec::new();
    {
        use mysql_async::prelude::Queryable;
        let rows: Vec<mysql_async::Row> = p.conn.query("SHOW BINARY LOGS").await.expect("logs");
        for row in rows {
            logs.push(row.get(0).expect("name"));
        }
    }
    assert!(
        !logs.contains(&stored.file),
        "{} is still there (another replica reading it?): {logs:?}",
        stored.file
    );
    p.spawn();
    let status = p.wait_exit();
    assert_eq!(status.code(), Some(2), "{}", p.log());
    let log = p.current_log();
    assert!(log.contains("is no longer on the server"), "{log}");
    assert!(log.contains("Re-snapshot"), "{log}");
    p.cleanup().await;
}
