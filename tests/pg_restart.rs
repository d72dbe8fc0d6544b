//! kappa rides out a PostgreSQL restart: it reconnects with backoff and
//! resumes from the slot's confirmed position, losing nothing, and its
//! slot-lag sampler opens a new session too. In a binary of
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
    let mut p = common::streaming_hundred_rows("kappa_pgrestart").await;
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
    // The slot-lag sampler's own session died too: it notices at its next
    // sample and opens a new one (the gauge must not freeze for good).
    p.wait_for_log("slot lag sampler reconnected").await;
    common::assert_streams_on_after_reconnect(p).await;
}
