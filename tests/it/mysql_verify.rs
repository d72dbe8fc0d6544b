//! `kappa verify --wait-for-connector` against a MySQL/MariaDB source while
//! the connector streams: lag and rows in flight are told apart from
//! differences (the MySQL counterpart of `tests/it/verify.rs`'s
//! `verify_while_streaming_reports_lag_instead_of_differences`).

use crate::common;

use common::mysql::{mysql, MysqlPipeline};
use common::{text, RunsKappa};
use mysql_async::prelude::Queryable;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `kappa verify --config` of `table`, plus `extra` arguments.
async fn verify(p: &MysqlPipeline, table: &str, extra: &[&str]) -> Output {
    let (config, table) = (p.config.clone(), table.to_string());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        common::verify_with_config(&config, &table, &extra)
    })
    .await
    .expect("verify ran")
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_while_streaming_reports_lag_instead_of_differences() {
    let mut p = MysqlPipeline::new(
        "kmy_vlag",
        1,
        "CREATE TABLE {db0}.counters (id BIGINT PRIMARY KEY, counter INT NOT NULL)",
    )
    .await;
    let table = format!("{}.counters", p.databases[0]);
    let rows: Vec<String> = (1..=2000).map(|i| format!("({i}, 0)")).collect();
    p.commit(&format!("INSERT INTO {table} VALUES {}", rows.join(", ")))
        .await;
    p.start().await;

    // --slot is PostgreSQL's: refused with the MySQL way to say it.
    let output = verify(&p, &table, &["--slot", "kappa"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("--wait-for-connector"),
        "{}",
        text(&output)
    );

    // Writes keep coming, in this table and until verify is done, while
    // verify runs against the streaming connector: every change before the
    // snapshot point is in the topic once the connector stored a position
    // past it, and every change after it is in flight.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let writer = {
        let (table, stop, rounds) = (table.clone(), stop.clone(), rounds.clone());
        tokio::spawn(async move {
            let mut conn = mysql().await;
            let mut round = 0u64;
            while !stop.load(Ordering::SeqCst) {
                conn.query_drop(format!(
                    "START TRANSACTION;
                     UPDATE {table} SET counter = counter + 1 WHERE id % 40 = {};
                     INSERT INTO {table} VALUES ({}, 0);
                     COMMIT",
                    round % 40,
                    10_000 + round
                ))
                .await
                .expect("write");
                round += 1;
                rounds.store(round, Ordering::SeqCst);
                // Pacing only: no outcome depends on it.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = conn.disconnect().await;
        })
    };
    let output = verify(
        &p,
        &table,
        &["--wait-for-connector", "--lag-timeout", "300"],
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");
    let all = text(&output);
    assert!(output.status.success(), "{all}\ndaemon log:\n{}", p.log());
    assert!(all.contains("offsets record stores"), "{all}");
    assert!(all.contains("(caught up"), "{all}");
    assert!(all.contains("verdict: OK, 0 differences"), "{all}");
    assert!(rounds.load(Ordering::SeqCst) > 0, "the writer never wrote");

    // Every write above reaches the topic before the connector stops.
    let end = p
        .commit(&format!("UPDATE {table} SET counter = 1 WHERE id = 1999"))
        .await;
    p.wait_stored(&end).await;
    p.stop();

    // The connector is stopped: changes made now are not in the topic, and
    // its stored position stays behind them — lag, not differences.
    let lagged = p
        .commit(&format!("UPDATE {table} SET counter = -1 WHERE id <= 5"))
        .await;
    let output = verify(&p, &table, &["--wait-for-connector", "--lag-timeout", "2"]).await;
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("LAGGING"), "{all}");
    assert!(all.contains("missing: 0  extra: 0  different: 0"), "{all}");
    assert!(all.contains("lag: 5"), "{all}");
    assert!(all.contains("verdict: LAGGING, 5 keys"), "{all}");
    // Without the wait the connector is taken as stopped: the same changes
    // are differences, to verify and to the SQL oracle (each changed row
    // once each way).
    let output = verify(&p, &table, &["--oracle", "sql"]).await;
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("verdict: DIFFERENT, 5 differences"), "{all}");
    assert!(
        all.contains("oracle (sql, in the source server): 5 rows only in the source, 5 rows only in the rebuilt table"),
        "{all}"
    );

    // Restarted, the connector delivers them. Then the binlog rotates with
    // nothing committed since: the stored position is in the old file, the
    // snapshot point in the new one, and only bookkeeping events lie between
    // — idle, not lagging (or caught up, if another client committed since).
    p.start().await;
    p.wait_stored(&lagged).await;
    p.exec("FLUSH BINARY LOGS").await;
    let output = verify(
        &p,
        &table,
        &["--wait-for-connector", "--lag-timeout", "300"],
    )
    .await;
    let all = text(&output);
    assert!(output.status.success(), "{all}\ndaemon log:\n{}", p.log());
    assert!(
        all.contains("(idle: nothing pending") || all.contains("(caught up"),
        "{all}"
    );
    assert!(all.contains("verdict: OK, 0 differences"), "{all}");
    p.stop();
    p.cleanup().await;
}
