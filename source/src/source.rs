//! The one shape every reader has, so the daemon is written once.
//!
//! A source is opened from its config section (which resolves and checks
//! its tables), then moved into [`Source::run`], which snapshots what is due
//! and streams until told to stop, sending [`ChangeBatch`]es in its own
//! position type. Everything the daemon does with positions goes through
//! this trait: it acknowledges a position (through the [`Acknowledger`]
//! taken before `run`) once every record before it is durable, stores it in
//! the offsets record when the source resumes from there
//! ([`Source::STORES_COMMITTED`]), and hands the stored state back at the
//! next start. Learned from Materialize's `SourceRender` (one associated
//! time type per source) and vector's finalization (one ack protocol).

use crate::error::SourceError;
use kappa_schemas::{ChangeBatch, ConnectorState, StoredPosition, TableName};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// The settings every reader has, whatever its database: the server, the
/// tables it captures and the snapshot's batch size. Each reader's config
/// holds them as `common` beside its own.
#[derive(Debug, Clone)]
pub struct ReaderCommon {
    /// The server's URL (`postgres://user@host:port/database`,
    /// `mysql://user@host:port/`).
    pub url: String,
    /// Overrides the URL's password (from `KAPPA_POSTGRES_PASSWORD` or
    /// `KAPPA_MYSQL_PASSWORD`).
    pub password: Option<String>,
    /// Qualified table names or patterns (`*` matches any characters).
    pub tables: Vec<String>,
    /// Patterns of tables to leave out.
    pub exclude_tables: Vec<String>,
    /// Rows per snapshot batch: bounds snapshot memory.
    pub snapshot_chunk_rows: usize,
}

/// A change reader of one database kind.
pub trait Source: Send + Sized + 'static {
    /// Where in the source's history a change is: ordered, printable, and
    /// storable in the offsets record.
    type Position: Clone + fmt::Debug + fmt::Display + StoredPosition + Send + Sync + 'static;

    /// Whether the daemon stores committed positions in the offsets record
    /// (MySQL: streaming resumes from the stored position) or only
    /// acknowledges them (PostgreSQL: the replication slot holds the resume
    /// position, and the record keeps the snapshot's).
    const STORES_COMMITTED: bool;

    /// The tables this source captures (resolved and checked at open).
    fn tables(&self) -> Vec<TableName>;

    /// The stream positions belong to, recorded with every completed
    /// snapshot (PostgreSQL: the slot; MySQL: none, empty).
    fn origin(&self) -> String;

    /// Refuses to resume from a `state` this source did not write (a
    /// snapshot taken through another slot, say), naming the fix.
    fn check_resume(
        &self,
        connector: &str,
        state: &ConnectorState<Self::Position>,
    ) -> Result<(), SourceError>;

    /// The hook the daemon calls, in order, each time every record up to a
    /// position is acknowledged by the broker. Taken before [`Source::run`].
    fn acknowledger(&self) -> Acknowledger<Self::Position>;

    /// What `kappa status` shows about the source (given the connector's
    /// offsets record, if it has one): labelled lines, and whether the
    /// source can resume (a dropped slot or a purged binlog cannot).
    fn status(
        &self,
        state: Option<&ConnectorState<Self::Position>>,
    ) -> impl Future<Output = Result<SourceStatus, SourceError>> + Send;

    /// Asks the running connector to re-snapshot `table` (`kappa snapshot`)
    /// through the source itself, so the request takes its place in the
    /// change stream; returns where it was written, for the user.
    fn request_resnapshot(
        &self,
        connector: &str,
        table: &TableName,
    ) -> impl Future<Output = Result<String, SourceError>> + Send;

    /// How `verify --wait-for-connector` learns how far the running
    /// connector has delivered.
    fn catch_up(&self) -> CatchUp;

    /// Snapshots what `resume` says is due, then streams until
    /// `shutdown.requested`; every batch goes to `changes`. Returns after a
    /// requested stop once it released what `shutdown.drained` lets it
    /// (PostgreSQL confirms its slot), or with the error that stopped it.
    fn run(
        self,
        resume: ConnectorState<Self::Position>,
        changes: mpsc::Sender<ChangeBatch<Self::Position>>,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
}

/// What `kappa status` prints about a source.
#[derive(Debug, Default)]
pub struct SourceStatus {
    /// `(label, text)`: printed as `label` padded, then `text`.
    pub lines: Vec<(&'static str, String)>,
    /// False when the connector cannot resume from where it is (the slot is
    /// gone or lost its WAL, the stored binlog was purged).
    pub healthy: bool,
}

/// Where a running connector's delivered position can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatchUp {
    /// The replication slot's confirmed position (PostgreSQL).
    Slot(String),
    /// The position stored in the connector's offsets record (MySQL).
    OffsetsRecord,
}

/// How the daemon stops a running source.
#[derive(Debug)]
pub struct Shutdown {
    /// Becomes `true` when the source should stop: a signal, or a failure
    /// downstream.
    pub requested: watch::Receiver<bool>,
    /// Resolves once everything the source handed over is delivered and
    /// acknowledged; dropped unresolved when delivering failed (then
    /// nothing more may be released).
    pub drained: oneshot::Receiver<()>,
}

/// Called with each position whose records are all durable, in order.
pub struct Acknowledger<P>(Arc<dyn Fn(&P) + Send + Sync>);

impl<P> Acknowledger<P> {
    pub fn new(hook: impl Fn(&P) + Send + Sync + 'static) -> Self {
        Self(Arc::new(hook))
    }

    /// For a source that needs to hear nothing (the daemon stores its
    /// positions).
    pub fn none() -> Self {
        Self(Arc::new(|_| {}))
    }

    /// Every record up to `position` is durable.
    pub fn acknowledged(&self, position: &P) {
        (self.0)(position)
    }
}

impl<P> Clone for Acknowledger<P> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<P> fmt::Debug for Acknowledger<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Acknowledger")
    }
}
