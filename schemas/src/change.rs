//! Changes as readers emit them, and the positions that make them resumable.

use crate::table::{TableName, TableSchema};
use crate::value::{Row, Value};
use std::fmt;
use std::sync::Arc;

/// A PostgreSQL WAL position. Ordered, so "everything up to here is durable"
/// is a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Parses PostgreSQL's `XXXXXXXX/XXXXXXXX` form.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (high, low) = text
            .split_once('/')
            .ok_or_else(|| format!("LSN {text:?} is not of the form X/Y"))?;
        let high = u32::from_str_radix(high, 16).map_err(|e| format!("LSN {text:?}: {e}"))?;
        let low = u32::from_str_radix(low, 16).map_err(|e| format!("LSN {text:?}: {e}"))?;
        Ok(Lsn((u64::from(high) << 32) | u64::from(low)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// A MySQL/MariaDB binlog position: the start of the next event to read
/// (`file:pos`), and the GTID of the last transaction before it when the
/// server logs GTIDs (MariaDB `domain-server-seq`, MySQL `uuid:n`). Resuming
/// uses `file:pos`; the GTID is kept for operators and for a later
/// GTID-based failover.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct BinlogPosition {
    pub file: String,
    pub pos: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
}

impl PartialOrd for BinlogPosition {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BinlogPosition {
    /// Binlog order: by base name, then file sequence number (the six-digit
    /// suffix grows to seven after `.999999`, so names alone do not order),
    /// then offset. A name without a numeric suffix orders by its text.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

impl BinlogPosition {
    /// What [`Ord`] compares, borrowed (positions are compared per event).
    fn order_key(&self) -> (&str, Option<u64>, u64) {
        match self.sequence() {
            Some((base, n)) => (base, Some(n), self.pos),
            None => (self.file.as_str(), None, self.pos),
        }
    }

    /// The file's base name and sequence number: `mysql-bin.000012` →
    /// (`mysql-bin`, 12).
    pub fn sequence(&self) -> Option<(&str, u64)> {
        let (base, number) = self.file.rsplit_once('.')?;
        Some((base, number.parse().ok()?))
    }

    /// At or past `other` in one server's binlog. Positions in files of
    /// different base names (log-bin renamed, another server) are not
    /// comparable: never "at or past", so a waiter keeps waiting rather
    /// than believe it caught up.
    pub fn at_or_past(&self, other: &Self) -> bool {
        let same_base = match (self.sequence(), other.sequence()) {
            (Some((a, _)), Some((b, _))) => a == b,
            _ => self.file == other.file,
        };
        same_base && self >= other
    }
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)?;
        if let Some(gtid) = &self.gtid {
            write!(f, " (gtid {gtid})")?;
        }
        Ok(())
    }
}

/// One row-level change. A primary-key change is two changes (a `Delete` of
/// the old key, then an `Upsert` of the new row) so that compaction, which
/// keeps the newest record per key, never keeps the old key alive.
#[derive(Debug, Clone)]
pub enum Change {
    /// Insert or update: the whole row after the change.
    Upsert { table: Arc<TableSchema>, row: Row },
    /// Delete: only the key (in key-column order) survives, as a tombstone.
    Delete {
        table: Arc<TableSchema>,
        key: Vec<Value>,
    },
}

impl Change {
    /// The table shape this change was read with.
    pub fn table(&self) -> &Arc<TableSchema> {
        match self {
            Change::Upsert { table, .. } | Change::Delete { table, .. } => table,
        }
    }

    /// The key values, in key-column order.
    pub fn key(&self) -> Vec<Value> {
        match self {
            Change::Upsert { table, row } => {
                table.key_columns.iter().map(|&i| row[i].clone()).collect()
            }
            Change::Delete { key, .. } => key.clone(),
        }
    }
}

/// A point in the source's history up to which every change has been handed
/// over, in the source's own position type `P` (PostgreSQL: [`Lsn`]; MySQL:
/// [`BinlogPosition`]). The daemon reports it back to the source only once
/// the broker has acknowledged every record before it (at-least-once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint<P> {
    /// Every change of transactions committed up to `P` is included.
    Committed(P),
    /// The initial snapshot of these tables is complete; streaming continues
    /// from `resume_from` (the position the snapshot was taken at, or an
    /// earlier one whose changes are applied again over it).
    SnapshotComplete {
        tables: Vec<TableName>,
        resume_from: P,
    },
}

/// Changes that belong together (one transaction, or one snapshot chunk),
/// followed by the checkpoint they complete, if any.
#[derive(Debug, Clone)]
pub struct ChangeBatch<P> {
    /// Tables truncated after every earlier batch and before `changes`: each
    /// of their live keys must get a tombstone.
    pub truncate: Vec<Arc<TableSchema>>,
    pub changes: Vec<Change>,
    pub checkpoint: Option<Checkpoint<P>>,
}

/// Written by hand: a derived `Default` would ask `P: Default`, and a
/// position has no meaningful default.
impl<P> Default for ChangeBatch<P> {
    fn default() -> Self {
        Self {
            truncate: Vec::new(),
            changes: Vec::new(),
            checkpoint: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_round_trips_through_text() {
        let lsn = Lsn::parse("16/B374D848").unwrap();
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!(Lsn::parse("nonsense").is_err());
        assert!(Lsn::parse("0/").is_err());
    }
}
