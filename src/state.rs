//! The connector's offsets record: what must survive a restart besides the
//! replication slot itself.

use anyhow::Context;
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
    /// The newest offsets record of connector `name` in `topic`, if it has
    /// one. A record that is not a connector state is an error naming both,
    /// never taken for "no record" (that would re-snapshot or mislead).
    pub async fn load(
        kafka: &kappa_sink::KafkaConfig,
        topic: &str,
        name: &str,
    ) -> anyhow::Result<Option<Self>> {
        let bytes = kappa_sink::offsets::read_state(kafka, topic, name)
            .await
            .with_context(|| {
                format!("reading the offsets record of connector {name} in {topic}")
            })?;
        bytes
            .map(|bytes| serde_json::from_slice(&bytes))
            .transpose()
            .with_context(|| {
                format!("the offsets record of connector {name} in {topic} is not a kappa connector state")
            })
    }

    /// The snapshotted tables, comma-separated (for `kappa status`).
    pub fn snapshotted_list(&self) -> String {
        self.snapshotted
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Records that the initial snapshot of `tables` is in their topics.
    pub fn mark_snapshotted(&mut self, tables: Vec<TableName>) {
        for table in tables {
            if !self.snapshotted.contains(&table) {
                self.snapshotted.push(table);
            }
        }
    }
}
