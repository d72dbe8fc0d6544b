//! The acknowledgement task: one protocol for every source. Deliveries are
//! awaited in production order, and a batch's checkpoint takes effect only
//! once its records and all before them are acknowledged (tested on a mock
//! cluster in `acknowledge_tests.rs`).

use super::POSITION_STORE_INTERVAL;
use crate::in_flight::Acknowledging;
use kappa_schemas::{Checkpoint, ConnectorState, StoredPosition};
use kappa_sink::offsets::write_state;
use kappa_sink::Producer;
use kappa_source::Acknowledger;
use std::fmt::Display;
use std::time::Instant;

/// What the acknowledgement task does with the positions of delivered
/// batches.
pub(super) struct Positions<P> {
    /// Told of every position whose records are all durable.
    pub(super) acknowledger: Acknowledger<P>,
    /// Whether committed positions go into the offsets record too
    /// ([`kappa_source::Source::STORES_COMMITTED`]).
    pub(super) stores_committed: bool,
    /// The source's origin, recorded with each completed snapshot.
    pub(super) origin: String,
    /// The connector's state as last stored (or about to be).
    pub(super) state: ConnectorState<P>,
}

/// Awaits every delivery in production order; a batch's checkpoint takes
/// effect only once its records and all before them are acknowledged:
/// a committed position goes to the source's [`Acknowledger`] (and, for a
/// source that resumes from the record, into it, at most every
/// [`POSITION_STORE_INTERVAL`] and at the end); a completed snapshot is
/// stored at once. A failed delivery ends the task with its error, and
/// nothing after it takes effect.
pub(super) async fn acknowledge<P: StoredPosition + Display>(
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
pub(super) struct OffsetsRecord {
    pub(super) producer: Producer,
    pub(super) topic: String,
    pub(super) connector: String,
    /// A position delivered but not yet stored.
    pub(super) unstored: bool,
    pub(super) stored_at: Instant,
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
