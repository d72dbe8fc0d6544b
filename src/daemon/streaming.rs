//! The running daemon, once its topics and state are ready: the source's
//! batches are masked, encoded and produced in order, their deliveries
//! awaited in that order by the acknowledgement task ([`super::acknowledge`]),
//! and on a stop (or a failure) everything handed over is drained before
//! the source hears it may release its log. Written for any [`Source`], and
//! tested in process with a scripted one (`streaming_tests.rs`).

use super::acknowledge::{acknowledge, OffsetsRecord, Positions};
use super::tombstones::truncate;
use super::READER_STOP_GRACE;
use crate::in_flight::{in_flight, produce_watching_acks};
use anyhow::{bail, Context};
use kappa_schemas::mask::Masking;
use kappa_schemas::{ChangeBatch, ConnectorState, RecordEncoder};
use kappa_sink::topics::table_topic;
use kappa_sink::{KafkaConfig, Producer};
use kappa_source::{Shutdown, Source};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// What streaming needs besides the source and its state.
pub(super) struct Streaming {
    pub kafka: KafkaConfig,
    pub producer: Producer,
    pub encoder: RecordEncoder,
    pub masking: Masking,
    /// Topics are `<prefix>.<schema>.<table>`.
    pub prefix: String,
    pub max_record_bytes: usize,
    pub offsets_topic: String,
    /// The connector's name: the key of its offsets record.
    pub connector: String,
    /// The stop signal (sender and receiver): set on SIGTERM/SIGINT, and
    /// by streaming itself on a failure.
    pub stop: (watch::Sender<bool>, watch::Receiver<bool>),
}

/// Runs `source` from `state` until it ends (after a stop, or by itself),
/// then drains; returns the first failure, or Ok once everything handed
/// over is delivered and acknowledged.
pub(super) async fn stream<S: Source>(
    source: S,
    state: ConnectorState<S::Position>,
    streaming: Streaming,
) -> anyhow::Result<()> {
    let Streaming {
        kafka,
        producer,
        mut encoder,
        mut masking,
        prefix,
        max_record_bytes,
        offsets_topic,
        connector,
        stop: (stop_tx, stop_rx),
    } = streaming;
    let (changes_tx, mut changes_rx) = mpsc::channel::<ChangeBatch<S::Position>>(4);
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
            connector,
            unstored: false,
            stored_at: Instant::now(),
        },
    ));
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
        tracing::error!(error = %crate::error_text::error_text(e), "stopping: producing failed");
        let _ = stop_tx.send(true);
    }
    // Every record handed over is acknowledged (or failed) before anything
    // more is confirmed.
    let ack_result = match ended.acks_first {
        Some(result) => result,
        None => acks.await.context("acknowledgement task")?,
    };
    if let (false, Err(e)) = (acks_ended_first, &ack_result) {
        tracing::error!(error = %crate::error_text::error_text(e), "acknowledging failed");
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
