//! The connector's offsets record: what must survive a restart besides the
//! source's own log (a replication slot), for any source's position type.
//!
//! One shape in memory, [`ConnectorState<P>`]; one shape on the wire, the
//! JSON object earlier releases wrote (`slot`, `snapshotted`, `snapshot_lsn`,
//! `binlog`), so records written by any release read back and are written
//! again byte for byte. Each position type says where in that object it
//! lives ([`StoredPosition`]); a new source whose position fits none of the
//! fields adds one, optional, so older records still read.

use crate::change::{BinlogPosition, Lsn};
use crate::table::TableName;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What the daemon keeps per connector, in the source's position type `P`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorState<P> {
    /// The stream the positions belong to (PostgreSQL: the replication slot
    /// the snapshots were taken through; empty for MySQL). A record from
    /// another origin is refused rather than resumed from.
    pub origin: String,
    /// Tables whose initial snapshot is completely in their topics.
    pub snapshotted: Vec<TableName>,
    /// Where streaming resumes, as far as the record knows: for MySQL the
    /// position after the last transaction whose records the broker
    /// acknowledged; for PostgreSQL (whose slot holds the resume position)
    /// the position streaming resumed from after the last snapshot.
    pub position: Option<P>,
}

impl<P> Default for ConnectorState<P> {
    fn default() -> Self {
        Self {
            origin: String::new(),
            snapshotted: Vec::new(),
            position: None,
        }
    }
}

impl<P> ConnectorState<P> {
    /// Records that the initial snapshot of `tables` is in their topics.
    pub fn mark_snapshotted(&mut self, tables: Vec<TableName>) {
        for table in tables {
            if !self.snapshotted.contains(&table) {
                self.snapshotted.push(table);
            }
        }
    }

    /// The snapshotted tables, comma-separated (for `kappa status`).
    pub fn snapshotted_list(&self) -> String {
        self.snapshotted
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The offsets record as JSON: the fields every release so far has written,
/// in their order. Field names and order are a format users keep for years.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StateRecord {
    /// [`ConnectorState::origin`]: named `slot` since the first release.
    #[serde(default)]
    pub slot: String,
    pub snapshotted: Vec<TableName>,
    /// A PostgreSQL position ([`Lsn`] text).
    pub snapshot_lsn: Option<String>,
    /// A MySQL/MariaDB position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog: Option<BinlogPosition>,
}

/// Where a position type lives in the [`StateRecord`].
pub trait StoredPosition: Sized {
    /// Writes `self` into its field of `record`.
    fn write(&self, record: &mut StateRecord);
    /// Reads the position from its field of `record`: `None` when the record
    /// holds none; an error naming the field when it holds one that does not
    /// parse.
    fn read(record: &StateRecord) -> Result<Option<Self>, String>;
}

impl StoredPosition for Lsn {
    fn write(&self, record: &mut StateRecord) {
        record.snapshot_lsn = Some(self.to_string());
    }

    fn read(record: &StateRecord) -> Result<Option<Self>, String> {
        record
            .snapshot_lsn
            .as_deref()
            .map(|text| Lsn::parse(text).map_err(|e| format!("snapshot_lsn: {e}")))
            .transpose()
    }
}

impl StoredPosition for BinlogPosition {
    fn write(&self, record: &mut StateRecord) {
        record.binlog = Some(self.clone());
    }

    fn read(record: &StateRecord) -> Result<Option<Self>, String> {
        Ok(record.binlog.clone())
    }
}

impl<P: StoredPosition> ConnectorState<P> {
    /// The wire form of this state.
    pub fn to_record(&self) -> StateRecord {
        let mut record = StateRecord {
            slot: self.origin.clone(),
            snapshotted: self.snapshotted.clone(),
            snapshot_lsn: None,
            binlog: None,
        };
        if let Some(position) = &self.position {
            position.write(&mut record);
        }
        record
    }

    /// The state a wire record holds.
    pub fn from_record(record: StateRecord) -> Result<Self, String> {
        let position = P::read(&record)?;
        Ok(Self {
            origin: record.slot,
            snapshotted: record.snapshotted,
            position,
        })
    }
}

impl<P: StoredPosition> Serialize for ConnectorState<P> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_record().serialize(serializer)
    }
}

impl<'de, P: StoredPosition> Deserialize<'de> for ConnectorState<P> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let record = StateRecord::deserialize(deserializer)?;
        Self::from_record(record).map_err(serde::de::Error::custom)
    }
}

/// The offsets record's bytes are a format users keep for years: these are
/// records exactly as releases up to this one write them, read back and
/// written again byte for byte. A change that breaks them orphans every
/// running connector (it would re-snapshot, or refuse its own record);
/// change the format only with a migration on read and a test here for the
/// old bytes.
#[cfg(test)]
mod format_tests {
    use super::*;

    const POSTGRES: &str = r#"{"slot":"kappa_orders","snapshotted":[{"schema":"public","table":"orders"}],"snapshot_lsn":"0/16B3748"}"#;
    const MYSQL: &str = r#"{"slot":"","snapshotted":[{"schema":"shop","table":"orders"}],"snapshot_lsn":null,"binlog":{"file":"mysql-bin.000003","pos":4242,"gtid":"0-1-17"}}"#;

    #[test]
    fn a_postgresql_record_reads_and_writes_the_same() {
        let state: ConnectorState<Lsn> = serde_json::from_str(POSTGRES).expect("reads");
        assert_eq!(state.origin, "kappa_orders");
        assert_eq!(state.snapshotted, vec![TableName::new("public", "orders")]);
        assert_eq!(state.position, Some(Lsn(0x16B_3748)));
        assert_eq!(serde_json::to_string(&state).expect("writes"), POSTGRES);
    }

    #[test]
    fn a_mysql_record_reads_and_writes_the_same() {
        let state: ConnectorState<BinlogPosition> = serde_json::from_str(MYSQL).expect("reads");
        assert_eq!(state.origin, "");
        assert_eq!(
            state.position,
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
        let record = r#"{"snapshotted":[],"snapshot_lsn":null}"#;
        let pg: ConnectorState<Lsn> = serde_json::from_str(record).expect("reads");
        assert_eq!(pg, ConnectorState::default());
        let mysql: ConnectorState<BinlogPosition> = serde_json::from_str(record).expect("reads");
        assert_eq!(mysql, ConnectorState::default());
    }

    #[test]
    fn a_postgresql_record_with_a_broken_lsn_is_an_error_naming_the_field() {
        let broken = r#"{"slot":"s","snapshotted":[],"snapshot_lsn":"nonsense"}"#;
        let error = serde_json::from_str::<ConnectorState<Lsn>>(broken)
            .expect_err("an unreadable position is refused, never taken for none");
        assert!(error.to_string().contains("snapshot_lsn"), "{error}");
    }

    #[test]
    fn a_record_of_one_source_read_as_the_other_has_no_position_and_keeps_its_origin() {
        // A config switched from PostgreSQL to MySQL (or back) under the same
        // connector name: the origin tells the daemon the record is not its own.
        let as_mysql: ConnectorState<BinlogPosition> =
            serde_json::from_str(POSTGRES).expect("reads");
        assert_eq!(as_mysql.origin, "kappa_orders");
        assert_eq!(as_mysql.position, None);
        let as_pg: ConnectorState<Lsn> = serde_json::from_str(MYSQL).expect("reads");
        assert_eq!(as_pg.position, None);
    }
}
