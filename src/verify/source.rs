//! The source side of `verify`: a table's rows read in one consistent
//! snapshot, in ascending order of their order key (`kappa_materialize::order_key`),
//! behind one trait ([`OrderedSource`]) each database implements:
//! `pg_source.rs` (PostgreSQL) and `mysql_source.rs` (MySQL/MariaDB).

use kappa_schemas::{Row, TableSchema, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The connector `verify` waits for, when it may be streaming.
#[derive(Debug, Clone)]
pub enum Connector {
    /// PostgreSQL: the connector's replication slot.
    Slot(String),
    /// MySQL/MariaDB: the connector's offsets record (key `name` in the
    /// compacted `topic`), which holds the binlog position after the last
    /// commit whose records the broker acknowledged.
    Offsets {
        kafka: kappa_sink::KafkaConfig,
        topic: String,
        name: String,
    },
}

/// How long `verify` waits for the connector, and when it calls a
/// PostgreSQL connector idle rather than lagging.
#[derive(Debug, Clone, Copy)]
pub struct ConnectorWait {
    /// Give up (and report lag) after this long.
    pub timeout: Duration,
    /// PostgreSQL only: how long the slot's confirmed position must stand
    /// still, with the source past the snapshot point, to count as idle: long
    /// enough that a broker pausing its acknowledgements is not taken for
    /// idleness. (MySQL's idleness is exact, see `mysql_source`.)
    pub idle_after: Duration,
}

/// Rows per chunk handed to the merge.
pub const CHUNK: usize = 5000;

/// A row with its order key.
pub type OrderedRow = (Vec<u8>, Row);

/// Where the connector stood relative to the source snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectorPosition {
    /// The source position of the snapshot (PostgreSQL: WAL LSN; MySQL:
    /// binlog `file:pos`).
    pub snapshot: String,
    /// Where `confirmed` comes from, for the report ("slot confirmed",
    /// "offsets record stores").
    pub confirmed_by: &'static str,
    /// How far the connector has confirmed (PostgreSQL: the slot's
    /// `confirmed_flush_lsn`; MySQL: the binlog position in its offsets
    /// record), if known.
    pub confirmed: Option<String>,
    /// The connector has confirmed everything the snapshot holds.
    pub caught_up: bool,
    /// Not confirmed past the snapshot point, but with nothing in flight.
    /// PostgreSQL: the source has sent past the point and the slot's
    /// confirmed position has not moved for [`ConnectorWait::idle_after`] (a
    /// heuristic). MySQL: the binlog between the stored position and the
    /// snapshot point holds no transaction, only rotation and bookkeeping
    /// events (exact).
    pub idle: bool,
    pub waited_seconds: f64,
}

/// A source table read for `verify` — or a rebuilt table in a server, read
/// the same way (`rebuilt.rs`). The snapshot's reads are `Send`, so a
/// rebuilt table can be read on a task of its own beside the source.
#[allow(async_fn_in_trait)]
pub trait OrderedSource: Send {
    /// The table's columns and key, as the source describes them now.
    fn schema(&self) -> &Arc<TableSchema>;
    /// Opens the consistent snapshot every later read sees.
    fn begin_snapshot(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Waits (up to `wait.timeout`) until `connector` has confirmed
    /// everything in the snapshot.
    async fn wait_for_connector(
        &self,
        connector: &Connector,
        wait: ConnectorWait,
    ) -> anyhow::Result<ConnectorPosition>;
    /// The next rows of the snapshot, in strictly ascending order-key order;
    /// `None` at the end.
    fn next_chunk(
        &mut self,
    ) -> impl Future<Output = anyhow::Result<Option<Vec<OrderedRow>>>> + Send;
    /// The rows with these keys as committed now (outside the snapshot).
    async fn current_rows(&self, keys: &[Vec<Value>]) -> anyhow::Result<Vec<Option<Row>>>;
}
