//! The connector's offsets record: what must survive a restart besides the
//! replication slot itself.

use kappa_schemas::{BinlogPosition, TableName};
use serde::{Deserialize, Serialize};

/// Stored as JSON under the connector's name in the offsets topic.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ConnectorState {
    /// The slot the snapshots were taken through (PostgreSQL; empty for MySQL).
    #[serde(default)]
    pub slot: String,
    /// Tables whose initial snapshot is completely in their topics.
    pub snapshotted: Vec<TableName>,
    /// The WAL position streaming resumed from after the last snapshot.
    pub snapshot_lsn: Option<String>,
    /// MySQL/MariaDB: the binlog position after the last transaction whose
    /// records the broker acknowledged; streaming resumes here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog: Option<BinlogPosition>,
}

impl ConnectorState {
    /// Records that the initial snapshot of `tables` is in their topics.
    pub fn mark_snapshotted(&mut self, tables: Vec<TableName>) {
        for table in tables {
            if !self.snapshotted.contains(&table) {
                self.snapshotted.push(table);
            }
        }
    }
}
