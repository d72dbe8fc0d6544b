//! Tombstones for every live key of a topic: for a TRUNCATE (after a
//! barrier, so the replay sees every record produced before it) and for a
//! topic whose initial snapshot is not recorded as complete.

use super::{KEY_BATCHES_QUEUED, TOMBSTONE_BATCH};
use crate::in_flight::{AcksEnded, InFlight};
use anyhow::bail;
use kappa_sink::Producer;
use tokio::sync::{mpsc, oneshot};

/// Tombstones every key `topic` holds a row for. Waits until every record
/// produced so far is acknowledged, so the replay sees all of them; returns
/// the number of tombstones written (their acknowledgements are awaited with
/// the next checkpoint, like any record's).
/// Memory is bounded ([`tombstone_live_keys`]); the tombstones join the
/// in-flight records, which wait once
/// [`crate::in_flight::IN_FLIGHT_RECORDS`] are unacknowledged.
pub(super) async fn truncate<P>(
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
pub(super) async fn clear_topic(
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
