//! The `kappa_slot_lag_bytes` gauge: how much WAL the PostgreSQL slot holds
//! back (`pg_current_wal_lsn() - confirmed_flush_lsn`), sampled every
//! [`SAMPLE_EVERY`] over a session of its own.
//!
//! The sampler outlives the server: a session that cannot be opened, or that
//! dies (the server restarted or crashed, the session was terminated), is
//! reopened at the next tick, so the gauge never freezes at a value from
//! before an outage. The loss and the return are logged once each (warn,
//! info); the sampler never stops the connector. While no session is open,
//! `kappa_slot_lag_samples_total` stops counting, so a dashboard can tell a
//! fresh gauge from a stale one.

use crate::postgres::PostgresSourceConfig;
use std::time::Duration;
use tokio_postgres::Client;

/// How often the lag is measured.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// How long opening the sampler's session or one sample may take: a server
/// that accepts the connection and does not answer must not hold the
/// sampler past its next tick for long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Samples the slot's lag until the process ends.
pub(crate) async fn watch(postgres: PostgresSourceConfig) {
    let mut session: Option<Client> = None;
    // Whether the last attempt failed: the loss is logged once per outage.
    let mut failing = false;
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if session.as_ref().is_some_and(Client::is_closed) {
            tracing::warn!(slot = %postgres.slot, "slot lag sampler lost its PostgreSQL session; reopening it");
            failing = true;
            session = None;
        }
        if session.is_none() {
            match open(&postgres).await {
                Ok(client) => {
                    if failing {
                        tracing::info!(slot = %postgres.slot, "slot lag sampler reconnected");
                    }
                    session = Some(client);
                }
                Err(reason) => {
                    if !failing {
                        tracing::warn!(slot = %postgres.slot, %reason, "slot lag not measured: no PostgreSQL session; retrying every 5 s");
                    }
                    failing = true;
                    continue;
                }
            }
        }
        let Some(client) = session.as_ref() else {
            continue;
        };
        let sample = tokio::time::timeout(
            REQUEST_TIMEOUT,
            crate::postgres::setup::slot_lag_bytes(client, &postgres.slot),
        )
        .await;
        match sample {
            Ok(Ok(lag)) => {
                failing = false;
                metrics::counter!("kappa_slot_lag_samples_total").increment(1);
                if let Some(lag) = lag {
                    metrics::gauge!("kappa_slot_lag_bytes").set(lag as f64);
                    tracing::debug!(slot = %postgres.slot, lag_bytes = lag, "slot lag");
                }
            }
            Ok(Err(e)) => {
                if !failing {
                    tracing::warn!(slot = %postgres.slot, error = %e, "slot lag not measured; reopening the session");
                }
                failing = true;
                session = None;
            }
            Err(_) => {
                if !failing {
                    tracing::warn!(slot = %postgres.slot, "slot lag not measured: no answer within 10 s; reopening the session");
                }
                failing = true;
                session = None;
            }
        }
    }
}

/// Opens the sampler's session, bounded by [`REQUEST_TIMEOUT`].
async fn open(postgres: &PostgresSourceConfig) -> Result<Client, String> {
    match tokio::time::timeout(
        REQUEST_TIMEOUT,
        crate::postgres::connect(&postgres.common.url, postgres.common.password.as_deref()),
    )
    .await
    {
        Ok(Ok(client)) => Ok(client),
        // The server's answer only: the URL may carry a password.
        Ok(Err(crate::SourceError::Connect { source, .. })) => Err(source.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 10 s".to_string()),
    }
}
