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

/// The offsets record's bytes are a format users keep for years: these are
/// records exactly as this release writes them, read back and written again
/// byte for byte. A change that breaks them orphans every running connector
/// (it would re-snapshot, or refuse its own record); change the format only
/// with a migration on read and a test here for the old bytes.
#[cfg(test)]
mod format_tests {
    use super::*;

    const POSTGRES: &str = r#"{"slot":"kappa_orders","snapshotted":[{"schema":"public","table":"orders"}],"snapshot_lsn":"0/16B3748"}"#;
    const MYSQL: &str = r#"{"slot":"","snapshotted":[{"schema":"shop","table":"orders"}],"snapshot_lsn":null,"binlog":{"file":"mysql-bin.000003","pos":4242,"gtid":"0-1-17"}}"#;

    #[test]
    fn a_postgresql_record_of_this_release_reads_and_writes_the_same() {
        let state: ConnectorState = serde_json::from_str(POSTGRES).expect("reads");
        assert_eq!(state.slot, "kappa_orders");
        assert_eq!(state.snapshotted, vec![TableName::new("public", "orders")]);
        assert_eq!(state.snapshot_lsn.as_deref(), Some("0/16B3748"));
        assert_eq!(state.binlog, None);
        assert_eq!(serde_json::to_string(&state).expect("writes"), POSTGRES);
    }

    #[test]
    fn a_mysql_record_of_this_release_reads_and_writes_the_same() {
        let state: ConnectorState = serde_json::from_str(MYSQL).expect("reads");
        assert_eq!(state.slot, "");
        assert_eq!(
            state.binlog,
            Some(BinlogPosition {
                file: "mysql-bin.000003".into(),
                pos: 4242,
                gtid: Some("0-1-17".into()),
            })
        );
        assert_eq!(serde_json::to_string(&state).expect("writes"), MYSQL);
    }

    #[test]
    fn a_record_without_the_later_fields_still_reads() {
        // Before `slot` and `binlog` existed: both default.
        let state: ConnectorState =
            serde_json::from_str(r#"{"snapshotted":[],"snapshot_lsn":null}"#).expect("reads");
        assert_eq!(state, ConnectorState::default());
    }
}
