//! kappa rides out a PostgreSQL restart: it reconnects with backoff and
//! resumes from the slot's confirmed position, losing nothing. In a binary of
//! its own, since the restart drops every session on the server (cargo runs
//! test binaries one after another).

mod common;

use common::Pipeline;
use std::process::Command;
use std::time::{Duration, Instant};

/// Restarts the test server's cluster (Debian's pg_ctlcluster, as
/// dev/services manages it), named by its `cluster_name` setting (`15/main`).
async fn restart_postgres(p: &Pipeline) {
    let cluster: String = p
        .client
        .query_one("SELECT current_setting('cluster_name')", &[])
        .await
        .expect("cluster_name")
        .get(0);
    let (version, name) = cluster
        .split_once('/')
        .unwrap_or_else(|| panic!("cluster_name {cluster:?} is not VERSION/NAME"));
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", version, name, "restart"])
        .status()
        .expect("run pg_ctlcluster (PostgreSQL's Debian tools)");
    assert!(
        status.success(),
        "pg_ctlcluster {cluster} restart: {status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_restart_is_ridden_out_without_loss() {
    let mut p = Pipeline::new("kappa_pgrestart", "id int PRIMARY KEY, v int").await;
    let table = p.table.clone();
    p.start();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, g FROM generate_series(1, 100) g"
    ))
    .await;
    restart_postgres(&p).await;
    // The test's own session died with the server too.
    let deadline = Instant::now() + Duration::from_secs(60);
    p.client = loop {
        match tokio_postgres::connect(&common::pg_url(), tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                break client;
            }
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "PostgreSQL did not come back within 60 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    p.commit(&format!("UPDATE {table} SET v = -v")).await;
    let lsn = p
        .commit(&format!("DELETE FROM {table} WHERE id > 90"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.assert_running();
    assert!(p.log().contains("reconnected"), "{}", p.log());
    p.stop();
    p.assert_verified(90);
    p.cleanup().await;
}
