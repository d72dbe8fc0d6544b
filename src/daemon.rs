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
use crate::state::ConnectorState;
use anyhow::{bail, Context};
use kappa_schemas::{ChangeBatch, Checkpoint, RecordEncoder, Registry};
use kappa_sink::offsets::{read_state, write_state};
use kappa_sink::producer::Pending;
use kappa_sink::topics::{ensure_compacted_topic, table_topic};
use kappa_sink::Producer;
use kappa_source::postgres::{PostgresSource, StartState};
use kappa_source::DurablePosition;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Batches produced but not yet acknowledged: bounds memory and the replay
/// after a crash.
const IN_FLIGHT_BATCHES: usize = 8;

struct Produced {
    deliveries: Vec<Pending>,
    checkpoint: Option<Checkpoint>,
    /// Signalled once every delivery before (and in) this one is acknowledged.
    barrier: Option<oneshot::Sender<()>>,
}

/// Runs until SIGINT/SIGTERM (then drains and confirms, and returns Ok) or a
/// fatal error.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let postgres = config.postgres()?;
    let kafka = config.kafka();
    let registry = Registry::new(&config.schema_registry.url);
    let producer = Producer::new(&kafka)?;
    let source = PostgresSource::open(postgres.clone()).await?;
    for table in &source.tables() {
        let topic = table_topic(&config.kafka.topic_prefix, table);
        ensure_compacted_topic(
            &kafka,
            &topic,
            config.kafka.partitions,
            config.kafka.replication_factor,
        )
        .await?;
    }
    let offsets_topic = config.kafka.offsets_topic.clone();
    let state: ConnectorState = match read_state(&kafka, &offsets_topic, &config.name).await? {
        Some(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "offsets record of connector {} in {offsets_topic} is not valid",
                config.name
            )
        })?,
        None => ConnectorState::default(),
    };
    if !state.snapshotted.is_empty() && state.slot != postgres.slot {
        bail!(
            "connector {} was snapshotted through slot {:?} but the config names slot {:?}; \
             use the old slot name, or a new connector name and topic prefix to start over",
            config.name,
            state.slot,
            postgres.slot
        );
    }
    tracing::info!(connector = %config.name, snapshotted = state.snapshotted.len(), "starting");

    let (changes_tx, mut changes_rx) = mpsc::channel::<ChangeBatch>(4);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (final_ack_tx, final_ack_rx) = oneshot::channel();
    let durable = DurablePosition::default();
    let start = StartState {
        snapshotted: state.snapshotted.clone(),
    };
    let source_task =
        tokio::spawn(source.run(start, changes_tx, durable.clone(), stop_rx, final_ack_rx));

    let (produced_tx, produced_rx) = mpsc::channel::<Produced>(IN_FLIGHT_BATCHES);
    let acks = tokio::spawn(acknowledge(
        produced_rx,
        durable.clone(),
        producer.clone(),
        offsets_topic,
        config.name.clone(),
        state,
        postgres.slot.clone(),
    ));
    tokio::spawn(stop_on_signal(stop_tx.clone()));

    let mut encoder = RecordEncoder::new(registry);
    let prefix = config.kafka.topic_prefix.clone();
    let produce_result: anyhow::Result<()> = async {
        while let Some(batch) = changes_rx.recv().await {
            for table in &batch.truncate {
                let topic = table_topic(&prefix, &table.name);
                let tombstones = truncate(&kafka, &producer, &produced_tx, &topic).await?;
                tracing::info!(table = %table.name, tombstones, "TRUNCATE: a tombstone for every live key");
            }
            let mut deliveries = Vec::with_capacity(batch.changes.len());
            for change in &batch.changes {
                let topic = table_topic(&prefix, &change.table().name);
                let record = encoder.encode(&topic, change).await?;
                deliveries.push(
                    producer
                        .send(&topic, &record.key, record.value.as_deref())
                        .await?,
                );
            }
            if produced_tx
                .send(Produced {
                    deliveries,
                    checkpoint: batch.checkpoint,
                    barrier: None,
                })
                .await
                .is_err()
            {
                bail!("the acknowledgement task ended early");
            }
        }
        Ok(())
    }
    .await;
    drop(produced_tx);
    if produce_result.is_err() {
        let _ = stop_tx.send(true);
    }
    // Every record handed over is acknowledged (or failed) before anything
    // more is confirmed.
    let ack_result = acks.await.context("acknowledgement task")?;
    if produce_result.is_ok() && ack_result.is_ok() {
        let _ = final_ack_tx.send(());
    } else {
        let _ = stop_tx.send(true);
        drop(final_ack_tx);
    }
    producer.flush(Duration::from_secs(30))?;
    let source_result = source_task.await.context("reader task")?;
    produce_result?;
    ack_result?;
    source_result?;
    tracing::info!(durable_lsn = %durable.get(), "stopped cleanly");
    Ok(())
}

async fn acknowledge(
    mut produced: mpsc::Receiver<Produced>,
    durable: DurablePosition,
    producer: Producer,
    offsets_topic: String,
    connector: String,
    mut state: ConnectorState,
    slot: String,
) -> anyhow::Result<()> {
    while let Some(batch) = produced.recv().await {
        for delivery in batch.deliveries {
            delivery.delivered().await?;
        }
        if let Some(barrier) = batch.barrier {
            let _ = barrier.send(());
        }
        match batch.checkpoint {
            Some(Checkpoint::PgLsn(lsn)) => durable.advance(lsn),
            Some(Checkpoint::SnapshotComplete {
                tables,
                resume_from,
            }) => {
                for table in tables {
                    if !state.snapshotted.contains(&table) {
                        state.snapshotted.push(table);
                    }
                }
                state.slot = slot.clone();
                state.snapshot_lsn = Some(resume_from.to_string());
                let bytes = serde_json::to_vec(&state)?;
                write_state(&producer, &offsets_topic, &connector, &bytes).await?;
                tracing::info!(tables = ?state.snapshotted.iter().map(ToString::to_string).collect::<Vec<_>>(), "initial snapshot delivered");
            }
            None => {}
        }
    }
    Ok(())
}

/// Tombstones every key `topic` holds a row for. Waits until every record
/// produced so far is acknowledged, so the replay sees all of them; returns
/// the number of tombstones written (their acknowledgements are awaited with
/// the next checkpoint, like any record's).
async fn truncate(
    kafka: &kappa_sink::KafkaConfig,
    producer: &Producer,
    produced: &mpsc::Sender<Produced>,
    topic: &str,
) -> anyhow::Result<usize> {
    let (barrier, reached) = oneshot::channel();
    produced
        .send(Produced {
            deliveries: Vec::new(),
            checkpoint: None,
            barrier: Some(barrier),
        })
        .await
        .map_err(|_| anyhow::anyhow!("the acknowledgement task ended early"))?;
    reached
        .await
        .map_err(|_| anyhow::anyhow!("a delivery failed before TRUNCATE of {topic}"))?;
    let keys = {
        let kafka = kafka.clone();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || kappa_sink::live_keys::live_keys(&kafka, &topic))
            .await??
    };
    let mut deliveries = Vec::with_capacity(keys.len());
    for key in &keys {
        deliveries.push(producer.send(topic, key, None).await?);
    }
    produced
        .send(Produced {
            deliveries,
            checkpoint: None,
            barrier: None,
        })
        .await
        .map_err(|_| anyhow::anyhow!("the acknowledgement task ended early"))?;
    Ok(keys.len())
}

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
