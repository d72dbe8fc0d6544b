//! The one piece of state a sink shares with a source: how far the changes it
//! was handed are durable. A source may release its own log (confirm a
//! replication slot, store a binlog position) only up to here.

use kappa_schemas::Lsn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Monotonic "durable up to" position, shared between the daemon (writer) and
/// a reader (which confirms it upstream).
#[derive(Debug, Clone, Default)]
pub struct DurablePosition(Arc<AtomicU64>);

impl DurablePosition {
    /// Raises the durable position; a lower value is ignored, so acks arriving
    /// late can never move it back.
    pub fn advance(&self, lsn: Lsn) {
        self.0.fetch_max(lsn.0, Ordering::AcqRel);
    }

    pub fn get(&self) -> Lsn {
        Lsn(self.0.load(Ordering::Acquire))
    }
}
