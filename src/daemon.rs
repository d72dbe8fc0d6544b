//! `kappa run`: the reader, the encoder and the producer wired together, with
//! acknowledgements flowing back.
//!
//! At-least-once: changes are produced in the order the reader emits them; a
//! separate task awaits every delivery in that same order and only then
//! passes the batch's checkpoint back (the slot's flushed LSN, or the
//! offsets record after a snapshot). A crash loses nothing that was
//! confirmed, and anything produced but not confirmed is produced again —
//! harmless on a compacted topic keyed by primary key.

use crate::config::Config;
use crate::in_flight::{in_flight, produce_watching_acks, Acknowledging, AcksEnded, InFlight};
use anyhow::{bail, Context};
use kappa_schemas::{
    ChangeBatch, Checkpoint, ConnectorState, RecordEncoder, Registry, StoredPosition,
};
use kappa_sink::offsets::write_state;
use kappa_sink::topics::{ensure_compacted_topic, table_topic, table_topics};
use kappa_sink::Producer;
use kappa_source::{Acknowledger, Shutdown, Source};
use std::fmt::Display;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

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

    let (changes_tx, mut changes_rx) = mpsc::channel::<ChangeBatch<S::Position>>(4);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (final_ack_tx, final_ack_rx) = oneshot::channel();
    let acknowledger = source.acknowledger();
    let origin = source.origin();
    let shutdown = Shutdown {
        requested: stop_rx,
        drained: final_ack_rx,
    };
    let source_task = tokio::spawn(source.run(state.clone(), changes_tx, shutdown));

    let (produced_tx, produced_rx) = in_flight();
    let mut acks = tokio::spawn(acknowledge(
        produced_rx,
        Positions {
            acknowledger,
            stores_committed: S::STORES_COMMITTED,
            origin,
            state,
        },
        OffsetsRecord {
            producer: producer.clone(),
            topic: offsets_topic,
            connector: config.name.clone(),
            unstored: false,
            stored_at: Instant::now(),
        },
    ));
    tokio::spawn(stop_on_signal(stop_tx.clone()));

    let mut encoder = RecordEncoder::new(registry);
    let max_record_bytes = config.kafka.max_record_bytes;
    let mut masking = config.masking()?;
    let prefix = config.kafka.topic_prefix.clone();
    // Per table: its topic name and its produced-records counter, made once
    // rather than for every record.
    let mut topics: std::collections::HashMap<
        kappa_schemas::TableName,
        (String, metrics::Counter),
    > = std::collections::HashMap::new();
    let produce = async {
        while let Some(batch) = changes_rx.recv().await {
            for table in &batch.truncate {
                let topic = table_topic(&prefix, &table.name);
                let tombstones = truncate(&kafka, &producer, &produced_tx, &topic).await?;
                tracing::info!(table = %table.name, tombstones, "TRUNCATE: a tombstone for every live key");
            }
            let mut deliveries = Vec::with_capacity(batch.changes.len());
            for change in batch.changes {
                let change = masking.apply(change)?;
                let name = &change.table().name;
                if !topics.contains_key(name) {
                    let topic = table_topic(&prefix, name);
                    let produced =
                        metrics::counter!("kappa_records_produced_total", "topic" => topic.clone());
                    topics.insert(name.clone(), (topic, produced));
                }
                let Some((topic, produced)) = topics.get(name) else {
                    unreachable!("inserted just above")
                };
                let record = encoder.encode(topic, &change).await?;
                let size = record
                    .key
                    .len()
                    .saturating_add(record.value.as_ref().map_or(0, Vec::len));
                if size > max_record_bytes {
                    bail!(
                        "table {name}: the record of key {:?} is {size} bytes, more than [kafka] max_record_bytes = \
                         {max_record_bytes}. Raise max_record_bytes (topics kappa creates get max.message.bytes to \
                         match; an existing topic, or a broker's message.max.bytes below it, must be raised too), \
                         or leave the column out (exclude_columns)",
                        change.key()
                    );
                }
                deliveries.push(
                    producer
                        .send(topic, &record.key, record.value.as_deref())
                        .await?,
                );
                produced.increment(1);
            }
            produced_tx.send(deliveries, batch.checkpoint, None).await?;
        }
        Ok(())
    };
    // A failed delivery ends the produce loop even while it waits (for the
    // source, or for room in the producer's queue).
    let ended = produce_watching_acks(produce, &mut acks).await;
    let produce_result = ended.produced;
    let acks_ended_first = ended.acks_first.is_some();
    drop(produced_tx);
    // The reader may be waiting for room in the channel (a snapshot reader
    // does not look at `stop`); with nobody receiving any more, its send
    // fails and it ends, closing its snapshot transaction. Kept open, the
    // reader waited forever and so did kappa (chaos findings 2 and 3).
    drop(changes_rx);
    if let Err(e) = &produce_result {
        tracing::error!(error = %format!("{e:#}"), "stopping: producing failed");
        let _ = stop_tx.send(true);
    }
    // Every record handed over is acknowledged (or failed) before anything
    // more is confirmed.
    let ack_result = match ended.acks_first {
        Some(result) => result,
        None => acks.await.context("acknowledgement task")?,
    };
    if let (false, Err(e)) = (acks_ended_first, &ack_result) {
        tracing::error!(error = %format!("{e:#}"), "acknowledging failed");
    }
    if produce_result.is_ok() && ack_result.is_ok() {
        let _ = final_ack_tx.send(());
    } else {
        let _ = stop_tx.send(true);
        drop(final_ack_tx);
    }
    let stopping_on_error = produce_result.is_err() || ack_result.is_err();
    if let Err(e) = producer.flush(Duration::from_secs(30)) {
        if !stopping_on_error {
            return Err(e.into());
        }
        // The failure that stopped kappa is the one to report.
        tracing::warn!(error = %e, "stopping after a failure: the producer did not flush");
    }
    let source_result = if !stopping_on_error {
        source_task.await.context("reader task")?
    } else {
        // Stopping on an error: the reader gets a bounded time to wind down,
        // then kappa exits anyway (which closes its sessions) with the error
        // that stopped it.
        match tokio::time::timeout(READER_STOP_GRACE, source_task).await {
            Ok(joined) => joined.context("reader task")?,
            Err(_) => {
                tracing::warn!(
                    "the reader did not stop within {} s of the failure; exiting without it",
                    READER_STOP_GRACE.as_secs()
                );
                Ok(())
            }
        }
    };
    // The first failure is the one reported: the acknowledgement task's when
    // it ended the produce loop.
    let (first, second) = if acks_ended_first {
        (ack_result, produce_result)
    } else {
        (produce_result, ack_result)
    };
    first?;
    second?;
    source_result?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// What the acknowledgement task does with the positions of delivered
/// batches.
struct Positions<P> {
    /// Told of every position whose records are all durable.
    acknowledger: Acknowledger<P>,
    /// Whether committed positions go into the offsets record too
    /// ([`Source::STORES_COMMITTED`]).
    stores_committed: bool,
    /// The source's origin, recorded with each completed snapshot.
    origin: String,
    /// The connector's state as last stored (or about to be).
    state: ConnectorState<P>,
}

/// Awaits every delivery in production order; a batch's checkpoint takes
/// effect only once its records and all before them are acknowledged:
/// a committed position goes to the source's [`Acknowledger`] (and, for a
/// source that resumes from the record, into it, at most every
/// [`POSITION_STORE_INTERVAL`] and at the end); a completed snapshot is
/// stored at once. A failed delivery ends the task with its error, and
/// nothing after it takes effect.
async fn acknowledge<P: StoredPosition + Display>(
    mut produced: Acknowledging<P>,
    mut positions: Positions<P>,
    mut offsets: OffsetsRecord,
) -> anyhow::Result<()> {
    loop {
        let next = if offsets.unstored {
            let wait = POSITION_STORE_INTERVAL.saturating_sub(offsets.stored_at.elapsed());
            match tokio::time::timeout(wait, produced.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    offsets.store(&positions.state).await?;
                    continue;
                }
            }
        } else {
            produced.recv().await
        };
        let Some(batch) = next else { break };
        for delivery in batch.deliveries {
            delivery.delivered().await?;
        }
        if let Some(barrier) = batch.barrier {
            let _ = barrier.send(());
        }
        let state = &mut positions.state;
        match batch.checkpoint {
            Some(Checkpoint::Committed(position)) => {
                positions.acknowledger.acknowledged(&position);
                if positions.stores_committed {
                    state.position = Some(position);
                    offsets.unstored = true;
                    if offsets.stored_at.elapsed() >= POSITION_STORE_INTERVAL {
                        offsets.store(state).await?;
                    }
                }
            }
            Some(Checkpoint::SnapshotComplete {
                tables,
                resume_from,
            }) => {
                state.mark_snapshotted(tables);
                state.origin = positions.origin.clone();
                tracing::info!(tables = %state.snapshotted_list(), resume_from = %resume_from, "initial snapshot delivered");
                state.position = Some(resume_from);
                offsets.store(state).await?;
            }
            None => {}
        }
    }
    if offsets.unstored {
        offsets.store(&positions.state).await?;
        if let Some(position) = &positions.state.position {
            tracing::info!(%position, "stored the position of the last delivered commit");
        }
    }
    Ok(())
}

/// Where the connector's state goes, and whether the newest position is in
/// it yet (positions are stored at most every [`POSITION_STORE_INTERVAL`],
/// and at stop).
struct OffsetsRecord {
    producer: Producer,
    topic: String,
    connector: String,
    /// A position delivered but not yet stored.
    unstored: bool,
    stored_at: Instant,
}

impl OffsetsRecord {
    /// Writes `state` as the connector's offsets record.
    async fn store<P: StoredPosition + Display>(
        &mut self,
        state: &ConnectorState<P>,
    ) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(state)?;
        write_state(&self.producer, &self.topic, &self.connector, &bytes).await?;
        if let Some(position) = &state.position {
            tracing::debug!(%position, "stored position");
        }
        self.unstored = false;
        self.stored_at = Instant::now();
        Ok(())
    }
}

/// Tombstones every key `topic` holds a row for. Waits until every record
/// produced so far is acknowledged, so the replay sees all of them; returns
/// the number of tombstones written (their acknowledgements are awaited with
/// the next checkpoint, like any record's).
/// Memory is bounded ([`tombstone_live_keys`]); the tombstones join the
/// in-flight records, which wait once
/// [`crate::in_flight::IN_FLIGHT_RECORDS`] are unacknowledged.
async fn truncate<P>(
    kafka: &kappa_sink::KafkaConfig,
    producer: &Producer,
    produced: &InFlight<P>,
    topic: &str,
) -> anyhow::Result<u64> {
    let (barrier, reached) = oneshot::channel();
    produced.send(Vec::new(), None, Some(barrier)).await?;
    reached.await.map_err(|_| {
        // The acknowledgement task dropped the barrier: it failed, and its
        // error is the one reported (`produce_watching_acks`).
        anyhow::Error::new(AcksEnded)
            .context(format!("a delivery failed before TRUNCATE of {topic}"))
    })?;
    tombstone_live_keys(
        kafka,
        producer,
        topic,
        Acks::InFlight(produced),
        "TRUNCATE of",
    )
    .await
}

/// Tombstones every key `topic` holds a row for, before any reading starts,
/// and waits for the broker's acknowledgement of each; returns their number.
async fn clear_topic(
    kafka: &kappa_sink::KafkaConfig,
    producer: &Producer,
    topic: &str,
) -> anyhow::Result<u64> {
    tombstone_live_keys::<()>(kafka, producer, topic, Acks::Await, "clearing").await
}

/// Where the acknowledgements of a batch of tombstones go.
enum Acks<'a, P> {
    /// Joined to the in-flight records, awaited with the next checkpoint.
    InFlight(&'a InFlight<P>),
    /// Awaited before the next batch is produced.
    Await,
}

/// One tombstone per live key of `topic`, in bounded memory whatever the
/// table's size: the live keys come from a replay that spills to disk past
/// its budget ([`kappa_sink::live_keys`]), in batches of [`TOMBSTONE_BATCH`]
/// with at most [`KEY_BATCHES_QUEUED`] queued, and each batch's deliveries
/// go to `acks` before the next is read. Fails unless every live key the
/// replay found got its tombstone; `what` starts the error messages.
async fn tombstone_live_keys<P>(
    kafka: &kappa_sink::KafkaConfig,
    producer: &Producer,
    topic: &str,
    acks: Acks<'_, P>,
    what: &str,
) -> anyhow::Result<u64> {
    let (keys_tx, mut keys_rx) = mpsc::channel::<Vec<Vec<u8>>>(KEY_BATCHES_QUEUED);
    let reader = {
        let kafka = kafka.clone();
        let topic = topic.to_string();
        let stopped = format!("{what} {topic} stopped (a tombstone could not be produced)");
        tokio::task::spawn_blocking(move || {
            kappa_sink::live_keys::live_keys(&kafka, &topic, TOMBSTONE_BATCH, |keys| {
                keys_tx.blocking_send(keys).map_err(|_| stopped.clone())
            })
        })
    };
    let mut written = 0u64;
    while let Some(keys) = keys_rx.recv().await {
        let mut deliveries = Vec::with_capacity(keys.len());
        for key in &keys {
            deliveries.push(producer.send(topic, key, None).await?);
        }
        written = written.saturating_add(keys.len() as u64);
        match acks {
            Acks::InFlight(produced) => produced.send(deliveries, None, None).await?,
            Acks::Await => {
                for delivery in deliveries {
                    delivery.delivered().await?;
                }
            }
        }
    }
    let live = reader.await??;
    if live != written {
        bail!("{what} {topic}: {live} live keys found but {written} tombstones written");
    }
    Ok(written)
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
