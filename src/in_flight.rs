//! Produced records awaiting the broker's acknowledgement, between the
//! daemon's produce loop and its acknowledgement task.
//!
//! Bounded by records, not by batches: the source hands over one batch per
//! transaction, so a bound of a few batches let only that many single-row
//! transactions wait on one broker round trip (`linger.ms` plus the ack), a
//! ceiling of a few hundred transactions per second on Apache Kafka. With a
//! bound of [`IN_FLIGHT_RECORDS`], thousands of small transactions share a
//! round trip, while a large transaction's pieces still take their full
//! share. Memory stays bounded: a waiting batch holds only its delivery
//! futures (the encoded bytes sit in librdkafka's queue, capped in bytes by
//! the producer's settings), and at most this many records are replayed
//! after a crash beyond the last confirmed commit.

use kappa_schemas::Checkpoint;
use kappa_sink::producer::Pending;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

/// Records produced and not yet acknowledged, at most (librdkafka's
/// `queue.buffering.max.messages` in kappa's producer settings).
pub const IN_FLIGHT_RECORDS: usize = 20_000;

/// One batch's deliveries, and what to do once all of them (and every
/// earlier one) are acknowledged.
pub struct Produced<P> {
    pub deliveries: Vec<Pending>,
    pub checkpoint: Option<Checkpoint<P>>,
    /// Signalled once every delivery before (and in) this one is acknowledged.
    pub barrier: Option<oneshot::Sender<()>>,
    /// This batch's share of [`IN_FLIGHT_RECORDS`], returned when dropped.
    _permit: OwnedSemaphorePermit,
}

/// The produce loop's end: waits while [`IN_FLIGHT_RECORDS`] are pending.
pub struct InFlight<P> {
    tx: mpsc::UnboundedSender<Produced<P>>,
    records: Arc<Semaphore>,
}

/// The acknowledgement task's end, in production order.
pub type Acknowledging<P> = mpsc::UnboundedReceiver<Produced<P>>;

pub fn in_flight<P>() -> (InFlight<P>, Acknowledging<P>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let records = Arc::new(Semaphore::new(IN_FLIGHT_RECORDS));
    (InFlight { tx, records }, rx)
}

/// [`InFlight::send`]'s error: the acknowledgement task is gone (it failed;
/// its own error says why).
#[derive(Debug)]
pub struct AcksEnded;

impl std::fmt::Display for AcksEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the acknowledgement task ended early")
    }
}

impl std::error::Error for AcksEnded {}

/// Written by hand: a derived `Clone` would ask `P: Clone`.
impl<P> Clone for InFlight<P> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            records: Arc::clone(&self.records),
        }
    }
}

impl<P> InFlight<P> {
    /// Hands a batch to the acknowledgement task once its records fit in the
    /// bound (a batch counts as at least one record, at most the whole bound).
    pub async fn send(
        &self,
        deliveries: Vec<Pending>,
        checkpoint: Option<Checkpoint<P>>,
        barrier: Option<oneshot::Sender<()>>,
    ) -> anyhow::Result<()> {
        let share = deliveries.len().clamp(1, IN_FLIGHT_RECORDS);
        let share = u32::try_from(share).unwrap_or(u32::MAX);
        let permit = self
            .records
            .clone()
            .acquire_many_owned(share)
            .await
            .map_err(|_| AcksEnded)?;
        self.tx
            .send(Produced {
                deliveries,
                checkpoint,
                barrier,
                _permit: permit,
            })
            .map_err(|_| AcksEnded.into())
    }
}

/// How the produce loop ended ([`produce_watching_acks`]).
pub struct ProduceEnd {
    /// The produce loop's own result; an error when it was cut short because
    /// the acknowledgement task ended first.
    pub produced: anyhow::Result<()>,
    /// The acknowledgement task's result when it ended first (a delivery
    /// failed); `None` when the produce loop ended first and the task is
    /// still to be awaited.
    pub acks_first: Option<anyhow::Result<()>>,
}

/// Runs the produce loop `produce` until it ends, or until the
/// acknowledgement task `acks` ends first, whichever comes first.
///
/// While the produce loop holds its [`InFlight`], the acknowledgement task
/// ends only when a delivery failed (or the producer was found stuck). The
/// produce loop need not notice: it may be waiting for the source's next
/// batch, or for room in the producer's queue, so the failure stayed unseen
/// and nothing more was produced or confirmed, and kappa neither exited nor
/// retried (chaos finding 2). Here such a failure ends the produce loop at
/// once (it is dropped mid-await, which loses nothing: what it produced and
/// did not hand over is never confirmed), so kappa stops with the delivery's
/// error and a restart resumes from the last confirmed position.
pub async fn produce_watching_acks<F>(
    produce: F,
    acks: &mut JoinHandle<anyhow::Result<()>>,
) -> ProduceEnd
where
    F: Future<Output = anyhow::Result<()>>,
{
    let acks_ended = |joined: Result<anyhow::Result<()>, tokio::task::JoinError>| {
        let result = joined
            .map_err(|e| anyhow::anyhow!("acknowledgement task: {e}"))
            .and_then(|r| r);
        let reason = match &result {
            Err(e) => crate::error_text::error_text(e),
            Ok(()) => "it ended early".to_string(),
        };
        ProduceEnd {
            produced: Err(anyhow::anyhow!(
                "producing stopped: the acknowledgement task failed ({reason})"
            )),
            acks_first: Some(result),
        }
    };
    tokio::select! {
        produced = produce => match produced {
            // The produce loop saw the task gone before this select did: the
            // task's own error is the one that matters.
            Err(e) if e.downcast_ref::<AcksEnded>().is_some() => acks_ended((&mut *acks).await),
            produced => ProduceEnd { produced, acks_first: None },
        },
        joined = &mut *acks => acks_ended(joined),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn many_small_batches_wait_together_and_the_bound_holds() {
        let (in_flight, mut acknowledging) = in_flight::<()>();
        // Far more single-record batches than the old bound of 8 batches go
        // through without anything being acknowledged.
        for _ in 0..1000 {
            tokio::time::timeout(
                Duration::from_secs(1),
                in_flight.send(Vec::new(), None, None),
            )
            .await
            .expect("not held back")
            .expect("sent");
        }
        assert_eq!(
            in_flight.records.available_permits(),
            IN_FLIGHT_RECORDS - 1000
        );
        // Once the bound is used up, the next batch waits for an acknowledgement.
        let rest = u32::try_from(IN_FLIGHT_RECORDS - 1000).unwrap();
        let held = in_flight
            .records
            .clone()
            .acquire_many_owned(rest)
            .await
            .unwrap();
        let blocked = tokio::time::timeout(
            Duration::from_millis(50),
            in_flight.send(Vec::new(), None, None),
        )
        .await;
        assert!(blocked.is_err(), "the bound holds");
        drop(acknowledging.recv().await.expect("a batch"));
        tokio::time::timeout(
            Duration::from_secs(1),
            in_flight.send(Vec::new(), None, None),
        )
        .await
        .expect("an acknowledged batch makes room")
        .expect("sent");
        drop(held);
    }

    /// A produce loop parked forever (waiting for the source, say) ends as
    /// soon as the acknowledgement task fails, with that failure.
    #[tokio::test]
    async fn a_failed_acknowledgement_ends_a_waiting_produce_loop() {
        let mut acks = tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err::<(), _>(anyhow::anyhow!("delivery to t failed: Message timed out"))
        });
        let end = tokio::time::timeout(
            Duration::from_secs(5),
            produce_watching_acks(std::future::pending(), &mut acks),
        )
        .await
        .expect("the produce loop was not left waiting");
        let produced = end.produced.expect_err("the produce loop was cut short");
        assert!(
            produced.to_string().contains("Message timed out"),
            "{produced}"
        );
        let acked = end
            .acks_first
            .expect("the acknowledgement task ended first");
        assert!(acked.is_err());
    }

    /// A produce loop that ends first leaves the acknowledgement task to be
    /// awaited (it drains what was handed over).
    #[tokio::test]
    async fn a_produce_loop_that_ends_first_leaves_the_acks_running() {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let mut acks = tokio::spawn(async move {
            let _ = stop_rx.await;
            Ok::<(), anyhow::Error>(())
        });
        let end = produce_watching_acks(async { Ok(()) }, &mut acks).await;
        assert!(end.produced.is_ok());
        assert!(end.acks_first.is_none());
        let _ = stop_tx.send(());
        acks.await.expect("joined").expect("acks ok");
    }

    /// A produce loop that itself finds the acknowledgement task gone (its
    /// send fails) reports the task's error, not just that it ended.
    #[tokio::test]
    async fn a_send_to_a_failed_acknowledgement_task_reports_its_error() {
        let (in_flight, acknowledging) = in_flight::<()>();
        let mut acks = tokio::spawn(async move {
            drop(acknowledging);
            Err::<(), _>(anyhow::anyhow!("delivery to t failed: Message timed out"))
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let produce = async { in_flight.send(Vec::new(), None, None).await };
        let end = produce_watching_acks(produce, &mut acks).await;
        let produced = end.produced.expect_err("cut short");
        assert!(
            produced.to_string().contains("Message timed out"),
            "{produced}"
        );
        assert!(end.acks_first.expect("the task's result").is_err());
    }

    /// The same through context (TRUNCATE's barrier): the task's error wins.
    #[tokio::test]
    async fn a_barrier_dropped_by_a_failed_task_reports_its_error() {
        let mut acks = tokio::spawn(async {
            Err::<(), _>(anyhow::anyhow!("delivery to t failed: Message timed out"))
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let produce = async {
            Err::<(), _>(
                anyhow::Error::new(AcksEnded).context("a delivery failed before TRUNCATE of t"),
            )
        };
        let end = produce_watching_acks(produce, &mut acks).await;
        let produced = end.produced.expect_err("cut short");
        assert!(
            produced.to_string().contains("Message timed out"),
            "{produced}"
        );
    }
}
