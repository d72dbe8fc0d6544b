//! The binlog stream: row events of committed transactions become
//! [`ChangeBatch`]es, each ending with the position after its commit.
//!
//! * TABLE_MAP gives, per table id, the columns the following row events
//!   carry (names thanks to `binlog_row_metadata = FULL`). kappa decodes them
//!   with the catalog's description of those columns, restricted to the names
//!   in the event ([`MysqlTable::project`]): an event written before an
//!   `ADD COLUMN` decodes with the old shape even when replayed after a
//!   restart, and a TABLE_MAP with names the cached catalog lacks reloads it
//!   (the DDL happened while streaming). This is the schema history, keyed by
//!   position through the events themselves.
//! * WRITE/UPDATE/DELETE_ROWS become upserts and deletes; an UPDATE that
//!   changes the key becomes a delete of the old key and an upsert.
//! * XID (or a `COMMIT` query for non-transactional tables) ends a
//!   transaction: its changes go out with [`Checkpoint::Committed`] at the
//!   position after it (pieces before that: [`PIECE`] changes or
//!   [`PIECE_BYTES`] of row events, whichever comes first). Other QUERY events inside a transaction (`SAVEPOINT`,
//!   `ROLLBACK TO SAVEPOINT`, `XA END`) are not commit points
//!   ([`QueryRole`]). A two-phase XA transaction (MariaDB: GTID flag
//!   `FL_PREPARED_XA`; MySQL: `XA START`) on a captured table stops the
//!   reader before its first row: its rows are in the binlog before anyone
//!   knows whether they commit. A transaction's changes leave in pieces of
//!   [`PIECE`] before its commit, so memory stays bounded; only the commit
//!   carries a checkpoint. Commits of other tables still carry a checkpoint,
//!   so an idle captured table does not leave the stored position behind.
//! * TRUNCATE of a captured table (a QUERY event) asks the daemon to
//!   tombstone every live key.
//! * The server sends heartbeats every `heartbeat_secs` on an idle stream;
//!   three periods of silence, or a dropped connection, reconnect with
//!   backoff from the last commit handed over.

use super::catalog::{load_table, MysqlTable};
use super::ddl::{parse as parse_ddl, Ddl, NameCase};
use super::errors;
use super::events::{
    column_names, mapped_table, mariadb_gtid, mariadb_gtid_flags, query_role, rotate_file,
    undecodable_event, unhandled_event, values, QueryRole, Unhandled, FL_PREPARED_XA,
    FL_STANDALONE, MARIADB_GTID_EVENT,
};
use super::resnapshot::{self, Resnapshots, Signal};
use super::rows::RowPlan;
use super::types::{convert_row, Origin};
use super::{connect, opts, query_error, MysqlSourceConfig};
use crate::error::{ErrorKind, SourceError};
use crate::stream_bounds::reconnect_backoff;
use futures::StreamExt;
use kappa_schemas::{
    BinlogPosition, Change, ChangeBatch, Checkpoint, TableName, TableSchema, Value,
};
use mysql_async::binlog::events::{Event, EventData, RowsEventData, TableMapEvent};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};
use mysql_common::binlog::consts::EventFlags;
use mysql_common::io::ParseBuf;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub(crate) use crate::stream_bounds::{PIECE, PIECE_BYTES};

mod connection;
mod row_events;
mod signals;
mod truncated;
mod undo;

pub(crate) use connection::check_position_exists;

type Row = Vec<Value>;

/// Why a binlog session ended without a fatal error (as the PostgreSQL
/// stream's `SessionEnd`).
pub(super) enum SessionEnd {
    /// `stop` was requested.
    Stopped,
    /// The connection was lost: reconnect and resume from the last commit.
    Lost(String),
    /// `file` ends in the middle of an event and `next` follows it: the
    /// server was killed while writing (`truncated.rs`).
    TruncatedTail {
        file: String,
        size: u64,
        next: String,
    },
}

/// Reads the binlog and hands over committed changes.
pub(crate) struct Streamer {
    config: MysqlSourceConfig,
    /// The catalog's description of each captured table, newest known.
    tables: HashMap<TableName, MysqlTable>,
    /// Per table id of the current TABLE_MAPs: the shape its row events
    /// carry, or `None` for a table kappa does not capture.
    by_id: HashMap<u64, Option<Arc<(MysqlTable, RowPlan)>>>,
    tx: mpsc::Sender<ChangeBatch<BinlogPosition>>,
    stop: watch::Receiver<bool>,
    /// After the last commit handed over: where a reconnect resumes.
    committed: BinlogPosition,
    file: String,
    gtid: Option<String>,
    /// Inside an event group that is a transaction (MariaDB: its GTID event
    /// is not standalone; MySQL: after `BEGIN`), until XID/COMMIT/ROLLBACK.
    in_transaction: bool,
    /// Inside the prepared half of a two-phase XA transaction.
    prepared_xa: bool,
    pending: Vec<Change>,
    /// Row-event bytes decoded into `pending` since it was last handed over.
    pending_bytes: usize,
    /// The restores of the open transaction's changes, for a binlog cut off
    /// inside it (`undo.rs`).
    undo: undo::Undo,
    /// The end of the last complete event read in `file`.
    read_to: u64,
    truncate: Vec<Arc<TableSchema>>,
    /// A session for catalog reloads after DDL.
    side: Option<Conn>,
    /// Whether the server appends CRC32 checksums to events.
    checksums: bool,
    /// Whether this session has seen its FORMAT_DESCRIPTION yet.
    described: bool,
    /// Whether the last session opened its binlog stream (then the next
    /// reconnect starts the backoff over).
    opened: bool,
    /// The signal table's description (loaded at its first TABLE_MAP).
    signal_table: Option<MysqlTable>,
    /// Table ids whose row events are signal rows.
    signal_ids: HashSet<u64>,
    /// Unknown-but-ignorable event types warned about (once each).
    warned_events: HashSet<u8>,
    /// How the server compares table names in statements (read at each
    /// connection: `lower_case_table_names`).
    name_case: NameCase,
    /// Signals of this connector in the current transaction, acted on at its
    /// commit.
    signals: Vec<Signal>,
    /// The table being re-snapshotted, if any (see [`super::resnapshot`]).
    resnapshots: Resnapshots,
}

impl Streamer {
    pub(crate) fn new(
        config: MysqlSourceConfig,
        tables: Vec<MysqlTable>,
        tx: mpsc::Sender<ChangeBatch<BinlogPosition>>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Self {
            config,
            tables: tables
                .into_iter()
                .map(|t| (t.schema.name.clone(), t))
                .collect(),
            by_id: HashMap::new(),
            tx,
            stop,
            committed: BinlogPosition {
                file: String::new(),
                pos: 4,
                gtid: None,
            },
            file: String::new(),
            gtid: None,
            in_transaction: false,
            prepared_xa: false,
            pending: Vec::new(),
            pending_bytes: 0,
            undo: undo::Undo::default(),
            read_to: 0,
            truncate: Vec::new(),
            side: None,
            checksums: true,
            described: false,
            opened: false,
            signal_table: None,
            signal_ids: HashSet::new(),
            warned_events: HashSet::new(),
            name_case: NameCase::default(),
            signals: Vec::new(),
            resnapshots: Resnapshots::default(),
        }
    }

    /// Streams from `from` until stopped, reconnecting when the connection
    /// drops; returns on stop or a fatal error.
    pub(crate) async fn run(mut self, from: BinlogPosition) -> Result<(), SourceError> {
        self.committed = from;
        let mut attempt = 0u32;
        loop {
            match self.session().await? {
                SessionEnd::Stopped => return Ok(()),
                SessionEnd::TruncatedTail { file, size, next } => {
                    self.skip_truncated_tail(&file, size, &next).await?;
                    continue;
                }
                SessionEnd::Lost(reason) => {
                    // A session that got its stream open starts the backoff
                    // over, as the PostgreSQL reader does after reconnecting.
                    if std::mem::take(&mut self.opened) {
                        attempt = 0;
                    }
                    let wait = reconnect_backoff(attempt);
                    attempt += 1;
                    // A running re-snapshot ends with its session (one
                    // failure policy for both readers) and starts over when
                    // its request is read again: resume from the request, as
                    // the PostgreSQL reader does from its slot's position
                    // held there. (From the last commit, the request would
                    // never be read again in this process.)
                    if let Some(cap) = self.resnapshots.cap() {
                        self.committed = cap.clone();
                    }
                    tracing::warn!(%reason, retry_in = ?wait, resume_from = %self.committed, "binlog connection lost; reconnecting");
                    self.end_session().await;
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => return Ok(()),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Forgets what the ended session held: the open transaction (read
    /// again from `committed`), table ids, the catalog session (it may have
    /// died with the server) and a running re-snapshot.
    async fn end_session(&mut self) {
        self.pending.clear();
        self.pending_bytes = 0;
        self.undo.clear();
        self.truncate.clear();
        self.signals.clear();
        self.by_id.clear();
        self.signal_ids.clear();
        self.side = None;
        self.resnapshots.session_lost().await;
    }

    async fn session(&mut self) -> Result<SessionEnd, SourceError> {
        match self.check_server().await {
            Ok(checksums) => self.checksums = checksums,
            // A server restarting, or too busy to take us: try again later.
            Err(e) if e.kind() == ErrorKind::Transient => {
                return Ok(SessionEnd::Lost(e.to_string()))
            }
            Err(e) => return Err(e),
        }
        let mut stream = match self.open_stream().await {
            Ok(stream) => stream,
            Err(e) => return self.classify(e).await,
        };
        self.opened = true;
        self.file = self.committed.file.clone();
        self.read_to = self.committed.pos;
        self.gtid = self.committed.gtid.clone();
        self.described = false;
        tracing::info!(position = %self.committed, server_id = self.config.server_id, "streaming changes");
        let silence = Duration::from_secs(self.config.heartbeat_secs.max(1) * 3);
        let mut stop = self.stop.clone();
        loop {
            let event = tokio::select! {
                _ = stop.wait_for(|s| *s) => return Ok(SessionEnd::Stopped),
                next = tokio::time::timeout(silence, stream.next()) => next,
            };
            match event {
                Err(_) => {
                    return Ok(SessionEnd::Lost(format!(
                        "no event or heartbeat for {silence:?}"
                    )))
                }
                Ok(None) => {
                    return Ok(SessionEnd::Lost(
                        "the server closed the binlog stream".into(),
                    ))
                }
                Ok(Some(Err(e))) => return self.classify(e).await,
                Ok(Some(Ok(event))) => match self.handle(&stream, &event).await {
                    Ok(()) => {}
                    // A query of the stream's own (a catalog reload, a
                    // re-snapshot chunk) lost its server: the session is lost
                    // with it, and resumes from the last commit.
                    Err(e @ SourceError::Mysql { .. }) if e.kind() == ErrorKind::Transient => {
                        return Ok(SessionEnd::Lost(e.to_string()))
                    }
                    Err(e) => return Err(e),
                },
            }
        }
    }

    async fn handle(&mut self, stream: &BinlogStream, event: &Event) -> Result<(), SourceError> {
        let header = event.header();
        // Artificial events (a ROTATE the server sends first, heartbeats)
        // carry 0 or no place of this file.
        if header.log_pos() != 0 && !header.flags().contains(EventFlags::LOG_EVENT_ARTIFICIAL_F) {
            self.read_to = u64::from(header.log_pos());
        }
        if header.event_type_raw() == MARIADB_GTID_EVENT {
            self.gtid = mariadb_gtid(event.data(), header.server_id());
            let flags = mariadb_gtid_flags(event.data()).unwrap_or(0);
            self.in_transaction = flags & FL_STANDALONE == 0;
            self.prepared_xa = flags & FL_PREPARED_XA != 0;
            return Ok(());
        }
        let at = || format!("{}:{}", self.file, header.log_pos());
        if let Some(what) = undecodable_event(header.event_type_raw()) {
            return Err(SourceError::CompressedBinlogEvent { at: at(), what });
        }
        let data = event
            .read_data()
            .map_err(|source| SourceError::BinlogEventUnreadable { at: at(), source })?;
        match data {
            Some(EventData::RotateEvent(rotate)) => {
                self.file = rotate_file(rotate.name_raw(), !self.described && self.checksums)?;
                self.read_to = rotate.position();
            }
            Some(EventData::FormatDescriptionEvent(_)) => self.described = true,
            Some(EventData::GtidEvent(gtid)) => {
                self.gtid = Some(format!(
                    "{}:{}",
                    uuid::Uuid::from_bytes(gtid.sid()),
                    gtid.gno()
                ));
            }
            Some(EventData::TableMapEvent(tme)) => self.table_map(&tme).await?,
            Some(EventData::RowsEvent(rows)) => {
                let unmapped = || SourceError::UnmappedTableId {
                    at: format!("{}:{}", self.file, header.log_pos()),
                    table_id: rows.table_id(),
                };
                let entry = match mapped_table(&self.by_id, rows.table_id()) {
                    Some(Some(entry)) => entry.clone(),
                    Some(None) => return Ok(()),
                    None => return Err(unmapped()),
                };
                let (table, plan) = (&entry.0, &entry.1);
                if self.prepared_xa {
                    return Err(SourceError::TwoPhaseXa {
                        position: format!("{}:{}", self.file, header.log_pos()),
                        table: table.schema.name.clone(),
                    });
                }
                if self.signal_ids.contains(&rows.table_id()) {
                    return self.signal_rows(table, plan, &rows);
                }
                if let RowsEventData::PartialUpdateRowsEvent(_) = rows {
                    let tme = stream.get_tme(rows.table_id()).ok_or_else(unmapped)?;
                    self.partial_rows(table, &rows, tme)?;
                } else {
                    self.rows(table, plan, &rows)?;
                }
                self.pending_bytes = self.pending_bytes.saturating_add(rows.rows_data().len());
                if self.pending.len() >= PIECE || self.pending_bytes >= PIECE_BYTES {
                    self.send(None).await?;
                }
            }
            Some(EventData::XidEvent(_)) => {
                self.end_group();
                self.commit(header.log_pos()).await?
            }
            Some(EventData::QueryEvent(query)) => {
                let sql = query.query();
                let trimmed = sql.trim();
                match query_role(trimmed, self.in_transaction) {
                    QueryRole::Begin => self.in_transaction = true,
                    QueryRole::XaStart => {
                        self.in_transaction = true;
                        self.prepared_xa = true;
                    }
                    // A SAVEPOINT, XA END, …: the transaction goes on.
                    QueryRole::InsideTransaction => {}
                    // COMMIT of non-transactional changes, a DDL statement
                    // (its own group), XA COMMIT/ROLLBACK: resumable.
                    QueryRole::EndsGroup => {
                        self.ddl(&query.schema(), trimmed);
                        self.end_group();
                        self.commit(header.log_pos()).await?;
                    }
                }
            }
            _ => match unhandled_event(header.event_type_raw(), header.flags_raw()) {
                Unhandled::Skip => {}
                Unhandled::Warn => {
                    if self.warned_events.insert(header.event_type_raw()) {
                        tracing::warn!(
                            event_type = header.event_type_raw(),
                            position = %format!("{}:{}", self.file, header.log_pos()),
                            "skipping a binlog event type kappa does not know, which the server marks \
                             ignorable (warned once per type)"
                        );
                    }
                }
                Unhandled::Refuse(what) => {
                    return Err(SourceError::RefusedBinlogEvent {
                        at: format!("{}:{}", self.file, header.log_pos()),
                        event_type: header.event_type_raw(),
                        what,
                    })
                }
            },
        }
        Ok(())
    }

    fn end_group(&mut self) {
        self.in_transaction = false;
        self.prepared_xa = false;
    }

    /// Acts on DDL of captured tables: TRUNCATE tombstones the table's
    /// keys; an ALTER is picked up by the next TABLE_MAP (logged here).
    fn ddl(&mut self, default_db: &str, sql: &str) {
        match parse_ddl(sql, default_db) {
            Some(Ddl::Truncate(name)) => {
                if let Some((name, table)) = self.name_case.find(&self.tables, &name) {
                    tracing::info!(table = %name, "TRUNCATE in the binlog");
                    self.truncate.push(table.schema.clone());
                }
            }
            Some(Ddl::Alter(name)) => {
                if let Some((name, _)) = self.name_case.find(&self.tables, &name) {
                    tracing::info!(table = %name, ddl = %sql, "DDL on a captured table");
                }
            }
            _ => {}
        }
    }

    /// Ends a transaction: its changes, then its signals, then the
    /// checkpoint (held at the request's position while a re-snapshot runs).
    async fn commit(&mut self, log_pos: u32) -> Result<(), SourceError> {
        let before = std::mem::replace(
            &mut self.committed,
            BinlogPosition {
                file: self.file.clone(),
                pos: u64::from(log_pos),
                gtid: self.gtid.clone(),
            },
        );
        let signals = std::mem::take(&mut self.signals);
        if !signals.is_empty() {
            self.send(None).await?;
            for signal in &signals {
                self.on_signal(signal, &before).await?;
            }
        }
        let position = match self.resnapshots.cap() {
            Some(cap) => cap.clone(),
            None => self.committed.clone(),
        };
        self.send(Some(Checkpoint::Committed(position))).await
    }

    async fn send(
        &mut self,
        checkpoint: Option<Checkpoint<BinlogPosition>>,
    ) -> Result<(), SourceError> {
        self.resnapshots.observe(&self.pending);
        // The TRUNCATE rule of both readers (crate::dblog).
        self.resnapshots
            .truncated(self.truncate.iter().map(|t| &t.name))
            .await;
        match checkpoint {
            None => self.undo.published(&self.pending, self.pending_bytes),
            Some(_) => self.undo.clear(),
        }
        self.pending_bytes = 0;
        let batch = ChangeBatch {
            truncate: std::mem::take(&mut self.truncate),
            changes: std::mem::take(&mut self.pending),
            checkpoint,
        };
        self.tx
            .send(batch)
            .await
            .map_err(|_| SourceError::ConsumerGone)
    }
}
