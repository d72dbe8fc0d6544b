//! `kappa run`: the reader, the encoder and the producer wired together, with
//! acknowledgements flowing back.
//!
//! Here: the topics, the offsets record and the clearing of unfinished
//! snapshots, before [`streaming::stream`] runs the source.
//!
//! At-least-once: changes are produced in the order the reader emits them; a
//! separate task awaits every delivery in that same order and only then
//! passes the batch's checkpoint back ([`acknowledge`]: to the source's
//! acknowledger, and into the offsets record). A crash loses nothing that was
//! confirmed, and anything produced but not confirmed is produced again —
//! harmless on a compacted topic keyed by primary key.

mod acknowledge;
mod streaming;
mod tombstones;

use crate::config::Config;
use anyhow::Context;
use kappa_schemas::{ConnectorState, RecordEncoder, Registry};
use kappa_sink::topics::{ensure_compacted_topic, table_topics};
use kappa_sink::Producer;
use kappa_source::Source;
use std::time::Duration;
use tokio::sync::watch;
use tombstones::clear_topic;

/// Positions the daemon stores ([`Source::STORES_COMMITTED`]) are stored at
/// most this often (plus once at stop, and once this long after the last
/// commit when the stream goes quiet).
const POSITION_STORE_INTERVAL: Duration = Duration::from_secs(1);

/// After a failure, how long the reader may take to stop before kappa
/// exits without it.
const READER_STOP_GRACE: Duration = Duration::from_secs(60);

/// Tombstones of a TRUNCATE are produced this many at a time.
const TOMBSTONE_BATCH: usize = 1000;
/// Batches of live keys read ahead of the tombstones being produced.
const KEY_BATCHES_QUEUED: usize = 2;

/// Opens the configured source and runs the daemon on it until
/// SIGINT/SIGTERM (then drains and confirms, and returns Ok) or a fatal
/// error.
pub async fn run(config: Config) -> anyhow::Result<()> {
    crate::sources::with_source(&config, Daemon).await
}

/// The daemon, as work on any source.
struct Daemon;

impl crate::sources::OnSource for Daemon {
    type Output = ();

    async fn on<S: Source>(self, source: S, config: &Config) -> anyhow::Result<()> {
        serve(source, config).await
    }
}

/// The daemon, for any source.
async fn serve<S: Source>(source: S, config: &Config) -> anyhow::Result<()> {
    let kafka = config.kafka();
    let registry = Registry::new(&config.schema_registry.url);
    let producer = Producer::new(&kafka)?;
    for (_, topic) in table_topics(&config.kafka.topic_prefix, &source.tables())? {
        ensure_compacted_topic(&kafka, &topic, &config.topic_spec()).await?;
    }
    let offsets_topic = config.kafka.offsets_topic.clone();
    kappa_sink::offsets::ensure_offsets_topic(
        &kafka,
        &offsets_topic,
        config.kafka.replication_factor,
    )
    .await?;
    let state: ConnectorState<S::Position> =
        crate::state::load(&kafka, &offsets_topic, &config.name)
            .await?
            .unwrap_or_default();
    source.check_resume(&config.name, &state)?;
    tracing::info!(connector = %config.name, snapshotted = state.snapshotted.len(), "starting");
    // A table whose initial snapshot is not recorded as complete is read
    // afresh. An earlier attempt that stopped before its offsets record
    // (killed, or an error) may have left rows in the topic that were deleted
    // since; no later change would remove them. Such a topic is emptied
    // first, so the snapshot alone decides what it holds.
    for (table, topic) in table_topics(&config.kafka.topic_prefix, &source.tables())? {
        if !state.snapshotted.contains(&table) {
            let tombstones = clear_topic(&kafka, &producer, &topic).await?;
            if tombstones > 0 {
                tracing::info!(%table, tombstones, "rows of an incomplete earlier snapshot tombstoned before the snapshot");
            }
        }
    }
    if let Some(listen) = config.metrics.listen {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(listen)
            .install()
            .with_context(|| format!("serving metrics on {listen}"))?;
        tracing::info!(%listen, "Prometheus metrics at /metrics");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(stop_on_signal(stop_tx.clone()));
    streaming::stream(
        source,
        state,
        streaming::Streaming {
            kafka,
            producer,
            encoder: RecordEncoder::new(registry),
            masking: config.masking()?,
            prefix: config.kafka.topic_prefix.clone(),
            max_record_bytes: config.kafka.max_record_bytes,
            offsets_topic,
            connector: config.name.clone(),
            stop: (stop_tx, stop_rx),
        },
    )
    .await
}

/// Turns SIGTERM or SIGINT into the stop signal: the readers stop, and
/// everything handed over is delivered and confirmed before kappa exits.
async fn stop_on_signal(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!(
            "could not install signal handlers; stop kappa with SIGKILL (it resumes safely)"
        );
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = int.recv() => tracing::info!("SIGINT: draining"),
    }
    let _ = stop.send(true);
}

#[cfg(test)]
mod acknowledge_tests;
#[cfg(test)]
mod mock_kafka;
#[cfg(test)]
mod streaming_tests;
