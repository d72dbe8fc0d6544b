//! The streaming half of the PostgreSQL reader: pgoutput events → changes.
//!
//! Guarantees: changes leave in commit order; every transaction ends with a
//! [`Checkpoint::PgLsn`] of its commit's end LSN; the slot is confirmed only
//! up to the [`DurablePosition`] the daemon reports, so a crash at any point
//! replays from the last durable commit (at-least-once).

use super::catalog::{build_schema, RawColumn};
use super::pgoutput::{decode, PgOutput, TupleValue};
use super::resnapshot::{Request, Resnapshot, REQUEST_PREFIX, WATERMARK_PREFIX};
use super::text::parse_value;
use super::toast::ToastFetcher;
use crate::durable::DurablePosition;
use crate::error::SourceError;
use kappa_schemas::{Change, ChangeBatch, Checkpoint, Lsn, Row, TableName, TableSchema, Value};
use pgwire_replication::{PgWireError, ReplicationClient, ReplicationEvent};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// A large transaction is handed over in pieces of this many changes, so
/// memory holds one piece, not the whole transaction.
const PIECE: usize = 512;
/// ... or once this many bytes of row data are decoded into it: wide rows
/// (TOASTed text, large bytea) would otherwise make a piece of 512 rows
/// weigh hundreds of megabytes.
const PIECE_BYTES: usize = 1 << 20;

/// An upsert whose row still lacks unchanged TOAST values (fetch mode).
#[derive(Debug, Clone)]
pub struct ToastHole {
    /// Index of the change in the output vector.
    pub change: usize,
    /// Columns without a value.
    pub columns: Vec<usize>,
    /// The key's text form, for the fetch query.
    pub key_text: Vec<String>,
}

/// What one message meant beyond the changes it appended.
#[derive(Debug)]
pub enum Decoded {
    Changes,
    /// These tables were truncated, after the changes appended before.
    Truncate(Vec<Arc<TableSchema>>),
}

/// Turns relation ids into table shapes and tuples into changes.
pub struct ChangeDecoder {
    /// Key column names per configured table (from the catalog).
    keys: HashMap<TableName, Vec<String>>,
    relations: HashMap<u32, Arc<TableSchema>>,
    /// Relations seen that are not configured tables (warned once).
    foreign: HashSet<u32>,
    /// Tables whose unchanged TOAST values are fetched, not refused.
    fetch_toast: HashSet<TableName>,
    /// Upserts appended with holes, to fill before they leave.
    pub holes: Vec<ToastHole>,
}

impl ChangeDecoder {
    pub fn new(keys: HashMap<TableName, Vec<String>>) -> Self {
        Self {
            keys,
            relations: HashMap::new(),
            foreign: HashSet::new(),
            fetch_toast: HashSet::new(),
            holes: Vec::new(),
        }
    }

    /// Lets UPDATEs of `tables` leave TOAST holes (recorded in `holes`)
    /// instead of failing.
    pub fn fetch_toast_for(mut self, tables: impl IntoIterator<Item = TableName>) -> Self {
        self.fetch_toast.extend(tables);
        self
    }

    /// Decodes one pgoutput message, appending the changes it means.
    pub fn apply(&mut self, bytes: &[u8], out: &mut Vec<Change>) -> Result<Decoded, SourceError> {
        match decode(bytes).map_err(SourceError::Protocol)? {
            PgOutput::Relation {
                relation_id,
                namespace,
                name,
                columns,
                ..
            } => {
                let table = TableName::new(namespace, name);
                let Some(key_names) = self.keys.get(&table) else {
                    tracing::warn!(%table, "publication includes a table that is not configured: its changes are not streamed");
                    self.foreign.insert(relation_id);
                    return Ok(Decoded::Changes);
                };
                let raw: Vec<RawColumn> = columns
                    .into_iter()
                    .map(|c| RawColumn {
                        name: c.name,
                        type_oid: c.type_oid,
                        type_modifier: c.type_modifier,
                    })
                    .collect();
                let schema = build_schema(&table, &raw, key_names)?;
                tracing::debug!(%table, columns = schema.columns.len(), "relation");
                self.relations.insert(relation_id, Arc::new(schema));
            }
            PgOutput::Insert { relation_id, new } => {
                if let Some(table) = self.table(relation_id)? {
                    let (row, _) = row(&table, &new, None, false)?;
                    out.push(Change::Upsert { table, row });
                }
            }
            PgOutput::Update {
                relation_id,
                old,
                new,
            } => {
                if let Some(table) = self.table(relation_id)? {
                    let fetch = self.fetch_toast.contains(&table.name);
                    let (row, holes) = row(&table, &new, old.as_deref(), fetch)?;
                    if let Some(old) = old {
                        let old_key = key_of(&table, &old)?;
                        let new_key: Vec<Value> =
                            table.key_columns.iter().map(|&i| row[i].clone()).collect();
                        if old_key != new_key {
                            out.push(Change::Delete {
                                table: table.clone(),
                                key: old_key,
                            });
                        }
                    }
                    if !holes.is_empty() {
                        let key_text = table
                            .key_columns
                            .iter()
                            .map(|&i| match &new[i] {
                                TupleValue::Text(bytes) => {
                                    Ok(String::from_utf8_lossy(bytes).into_owned())
                                }
                                _ => Err(SourceError::Protocol(format!(
                                    "key column {i} of {} has no value",
                                    table.name
                                ))),
                            })
                            .collect::<Result<_, _>>()?;
                        self.holes.push(ToastHole {
                            change: out.len(),
                            columns: holes,
                            key_text,
                        });
                    }
                    out.push(Change::Upsert { table, row });
                }
            }
            PgOutput::Delete { relation_id, old } => {
                if let Some(table) = self.table(relation_id)? {
                    let key = key_of(&table, &old)?;
                    out.push(Change::Delete { table, key });
                }
            }
            PgOutput::Truncate { relation_ids, .. } => {
                // CASCADE lists every truncated table; RESTART IDENTITY only
                // resets sequences, which are not captured.
                let mut tables = Vec::new();
                for relation_id in relation_ids {
                    if let Some(table) = self.table(relation_id)? {
                        tables.push(table);
                    }
                }
                if !tables.is_empty() {
                    return Ok(Decoded::Truncate(tables));
                }
            }
            PgOutput::Ignored(_) => {}
        }
        Ok(Decoded::Changes)
    }

    /// Whether `table` is one this reader captures.
    pub fn captures(&self, table: &TableName) -> bool {
        self.keys.contains_key(table)
    }

    /// The stream's current shape of `table`, once a Relation message gave it.
    pub fn schema_of(&self, table: &TableName) -> Option<Arc<TableSchema>> {
        self.relations.values().find(|s| &s.name == table).cloned()
    }

    fn table(&self, relation_id: u32) -> Result<Option<Arc<TableSchema>>, SourceError> {
        if self.foreign.contains(&relation_id) {
            return Ok(None);
        }
        self.relations
            .get(&relation_id)
            .cloned()
            .map(Some)
            .ok_or_else(|| {
                SourceError::Protocol(format!(
                    "change for relation {relation_id} before its Relation message"
                ))
            })
    }
}

/// Builds a full row from a tuple. An unchanged TOAST value is taken from the
/// old tuple (REPLICA IDENTITY FULL); else, in fetch mode, it is left as a
/// hole (returned) to fill by key; else the reader stops rather than emit a
/// placeholder that compaction would make the only copy.
fn row(
    table: &TableSchema,
    tuple: &[TupleValue],
    old: Option<&[TupleValue]>,
    fetch: bool,
) -> Result<(Row, Vec<usize>), SourceError> {
    if tuple.len() != table.columns.len() {
        return Err(SourceError::Protocol(format!(
            "tuple of {} has {} values for {} columns",
            table.name,
            tuple.len(),
            table.columns.len()
        )));
    }
    let mut holes = Vec::new();
    let row = tuple
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let value = match (value, old.and_then(|o| o.get(i))) {
                (TupleValue::UnchangedToast, Some(old @ TupleValue::Text(_))) => old,
                (TupleValue::UnchangedToast, _) if fetch => {
                    holes.push(i);
                    return Ok(Value::Null);
                }
                (TupleValue::UnchangedToast, _) => {
                    return Err(SourceError::Unsupported {
                        table: table.name.clone(),
                        reason: format!(
                            "an UPDATE left the large (TOASTed) column {} unchanged, and with REPLICA IDENTITY DEFAULT \
                             its value is not in the stream. Run: ALTER TABLE {} REPLICA IDENTITY FULL",
                            table.columns[i].name,
                            super::setup::quote_table(&table.name)
                        ),
                    })
                }
                (value, _) => value,
            };
            column_value(table, i, value)
        })
        .collect::<Result<Row, SourceError>>()?;
    Ok((row, holes))
}

fn column_value(
    table: &TableSchema,
    index: usize,
    value: &TupleValue,
) -> Result<Value, SourceError> {
    let column = &table.columns[index];
    match value {
        TupleValue::Null => Ok(Value::Null),
        TupleValue::UnchangedToast => Err(SourceError::Protocol(format!(
            "unchanged TOAST value in a key column {} of {}",
            column.name, table.name
        ))),
        TupleValue::Text(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                SourceError::bad_value(
                    &table.name,
                    &column.name,
                    String::from_utf8_lossy(bytes),
                    "UTF-8 text",
                    e.to_string(),
                )
            })?;
            parse_value(&column.column_type, text).map_err(|reason| {
                SourceError::bad_value(&table.name, &column.name, text, &column.source_type, reason)
            })
        }
    }
}

fn key_of(table: &TableSchema, old: &[TupleValue]) -> Result<Vec<Value>, SourceError> {
    table
        .key_columns
        .iter()
        .map(|&i| {
            let value = old.get(i).ok_or_else(|| {
                SourceError::Protocol(format!(
                    "old tuple of {} is missing key column {i}",
                    table.name
                ))
            })?;
            column_value(table, i, value)
        })
        .collect()
}

/// Why a replication session ended without a fatal error.
pub enum SessionEnd {
    /// `stop` was requested.
    Stopped,
    /// The connection was lost (server restart, network): reconnect and
    /// resume from the slot's confirmed position.
    Lost(String),
}

/// Server errors that mean "try again later": administrator or crash
/// shutdown, the server starting up, connection failures.
fn is_transient(error: &PgWireError) -> bool {
    if error.is_transient() {
        return true;
    }
    let text = error.to_string();
    [
        "SQLSTATE 57P0",
        "SQLSTATE 08",
        "SQLSTATE 53300",
        "the database system is",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Turns a replication error into the reader's, naming the slot-lost case.
pub fn replication_error(slot: &str, error: &PgWireError) -> SourceError {
    let text = error.to_string();
    // PostgreSQL 15 says "cannot read from logical replication slot" (SQLSTATE
    // 55000, the detail naming the invalidation) for a slot invalidated while
    // its connector was away; older and newer servers word it as below.
    if text.contains("invalidated")
        || text.contains("can no longer get changes")
        || text.contains("cannot read from logical replication slot")
        || text.contains("does not exist")
    {
        return SourceError::Setup(format!(
            "replication slot {slot} is unusable ({text}): the changes it held are lost to kappa. Re-snapshot: \
             drop the slot, delete the topics and the connector's offsets record (or use a new connector name \
             and topic prefix), then start again"
        ));
    }
    SourceError::Replication(text)
}

/// The streaming state that survives reconnections.
pub struct Streamer {
    pub decoder: ChangeDecoder,
    pub fetcher: Option<ToastFetcher>,
    /// `None` once the session is finishing: the daemon drains when every
    /// sender is gone.
    tx: Option<mpsc::Sender<ChangeBatch>>,
    pub durable: DurablePosition,
    pub stop: watch::Receiver<bool>,
    pub slot: String,
    /// Highest position reported to the slot.
    confirmed: Lsn,
    /// A position from a keepalive, safe to confirm while nothing of ours is
    /// pending: it advances the slot over WAL of other tables and databases.
    idle: Lsn,
    /// End of the last commit handed to the daemon.
    last_commit: Lsn,
    /// A table being re-snapshotted (see [`super::resnapshot`]).
    resnapshot: Option<Resnapshot>,
    /// Where re-snapshots read from: URL, password, rows per chunk.
    resnapshot_source: Option<(String, Option<String>, usize)>,
}

impl Streamer {
    pub fn new(
        decoder: ChangeDecoder,
        fetcher: Option<ToastFetcher>,
        tx: mpsc::Sender<ChangeBatch>,
        durable: DurablePosition,
        stop: watch::Receiver<bool>,
        slot: String,
    ) -> Self {
        Self {
            decoder,
            fetcher,
            tx: Some(tx),
            durable,
            stop,
            slot,
            confirmed: Lsn(0),
            idle: Lsn(0),
            last_commit: Lsn(0),
            resnapshot: None,
            resnapshot_source: None,
        }
    }

    /// Lets `kappa snapshot` requests re-snapshot tables from `url`.
    pub fn with_resnapshots(
        mut self,
        url: String,
        password: Option<String>,
        chunk_rows: usize,
    ) -> Self {
        self.resnapshot_source = Some((url, password, chunk_rows));
        self
    }

    /// Whether a stop was requested.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn confirm(&mut self, client: &ReplicationClient) {
        let durable = self.durable.get();
        let mut lsn = durable;
        if durable >= self.last_commit {
            lsn = lsn.max(self.idle);
        }
        if let Some(resnapshot) = &self.resnapshot {
            lsn = lsn.min(resnapshot.cap);
        }
        if lsn > self.confirmed {
            client.update_applied_lsn(pgwire_replication::Lsn(lsn.0));
            self.confirmed = lsn;
        }
    }

    /// Receives events of one replication session until `stop` or a lost
    /// connection, handing changes to the daemon and confirming what it made
    /// durable. Changes of a transaction cut by a lost connection are
    /// re-read from the slot after reconnecting (duplicates are harmless).
    pub async fn session(
        &mut self,
        client: &mut ReplicationClient,
    ) -> Result<SessionEnd, SourceError> {
        let mut changes = Vec::new();
        let mut in_transaction = false;
        let mut piece_bytes = 0usize;
        self.confirmed = Lsn(0);
        let mut confirm_tick = tokio::time::interval(Duration::from_millis(500));
        let mut stop = self.stop.clone();
        loop {
            let event = tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return Ok(SessionEnd::Stopped),
                _ = confirm_tick.tick() => {
                    self.confirm(client);
                    continue;
                }
                event = client.recv() => event,
            };
            let event = match event {
                Ok(Some(event)) => event,
                Ok(None) => {
                    return Ok(SessionEnd::Lost(
                        "the server ended the replication stream".into(),
                    ))
                }
                Err(e) if is_transient(&e) => return Ok(SessionEnd::Lost(e.to_string())),
                Err(e) => return Err(replication_error(&self.slot, &e)),
            };
            match event {
                ReplicationEvent::Begin { .. } => in_transaction = true,
                ReplicationEvent::XLogData { data, .. } => {
                    piece_bytes += data.len();
                    let before = changes.len();
                    let decoded = self.decoder.apply(&data, &mut changes)?;
                    if let Some(resnapshot) = self.resnapshot.as_mut() {
                        resnapshot.observe(&changes[before..]);
                    }
                    if let Decoded::Truncate(tables) = decoded {
                        self.send(std::mem::take(&mut changes), Vec::new(), None)
                            .await?;
                        self.send(Vec::new(), tables, None).await?;
                    } else if changes.len() >= PIECE || piece_bytes >= PIECE_BYTES {
                        self.send(std::mem::take(&mut changes), Vec::new(), None)
                            .await?;
                        piece_bytes = 0;
                    }
                }
                ReplicationEvent::Commit { end_lsn, .. } => {
                    in_transaction = false;
                    piece_bytes = 0;
                    let end = Lsn(end_lsn.0);
                    self.send(
                        std::mem::take(&mut changes),
                        Vec::new(),
                        Some(Checkpoint::PgLsn(end)),
                    )
                    .await?;
                    self.last_commit = end;
                }
                ReplicationEvent::Message {
                    prefix,
                    content,
                    lsn,
                    ..
                } => {
                    self.on_message(&prefix, &content, Lsn(lsn.0), &mut changes)
                        .await?;
                }
                ReplicationEvent::KeepAlive { wal_end, .. } if !in_transaction => {
                    self.idle = self.idle.max(Lsn(wal_end.0));
                    self.confirm(client);
                }
                _ => {}
            }
        }
    }

    /// Re-snapshot requests and watermarks (see [`super::resnapshot`]).
    async fn on_message(
        &mut self,
        prefix: &str,
        content: &[u8],
        lsn: Lsn,
        changes: &mut Vec<Change>,
    ) -> Result<(), SourceError> {
        let content = String::from_utf8_lossy(content);
        if prefix == REQUEST_PREFIX {
            let Ok(request) = serde_json::from_str::<Request>(&content) else {
                tracing::warn!(%content, "ignoring a malformed re-snapshot request");
                return Ok(());
            };
            if request.slot != self.slot {
                return Ok(());
            }
            if !self.decoder.captures(&request.table) {
                tracing::warn!(table = %request.table, "re-snapshot requested for a table this connector does not capture");
                return Ok(());
            }
            if let Some(running) = &self.resnapshot {
                tracing::warn!(table = %request.table, running = %running.table(), "a re-snapshot is already running; request ignored");
                return Ok(());
            }
            let Some((url, password, chunk_rows)) = self.resnapshot_source.clone() else {
                return Ok(());
            };
            // Changes before the request leave first, so the chunks follow them.
            self.send(std::mem::take(changes), Vec::new(), None).await?;
            let schema = self.decoder.schema_of(&request.table);
            tracing::info!(table = %request.table, at = %lsn, "re-snapshot started");
            // A re-snapshot that cannot run (the table dropped since the
            // request, a refused query) is abandoned, never fatal: the slot
            // is held at the request while one runs, so a fatal error would
            // read the request again at every restart, a crash loop.
            match Resnapshot::start(
                &url,
                password.as_deref(),
                &request.table,
                schema,
                lsn,
                chunk_rows,
            )
            .await
            {
                Ok(started) => self.resnapshot = Some(started),
                Err(e) => {
                    tracing::error!(table = %request.table, error = %e, "re-snapshot abandoned; streaming goes on (run kappa snapshot again)")
                }
            }
        } else if prefix == WATERMARK_PREFIX {
            let Some(resnapshot) = self.resnapshot.as_mut() else {
                return Ok(());
            };
            let chunk = match resnapshot.on_watermark(&content).await {
                Ok(chunk) => chunk,
                Err(e) => {
                    if let Some(failed) = self.resnapshot.take() {
                        tracing::error!(table = %failed.table(), error = %e, "re-snapshot abandoned; streaming goes on (run kappa snapshot again)");
                    }
                    return Ok(());
                }
            };
            if let Some((rows, finished)) = chunk {
                self.send(std::mem::take(changes), Vec::new(), None).await?;
                self.send(rows, Vec::new(), None).await?;
                if finished {
                    if let Some(done) = self.resnapshot.take() {
                        tracing::info!(table = %done.table(), rows = done.emitted, "re-snapshot complete");
                    }
                }
            }
        }
        Ok(())
    }

    async fn send(
        &mut self,
        mut changes: Vec<Change>,
        truncate: Vec<Arc<TableSchema>>,
        checkpoint: Option<Checkpoint>,
    ) -> Result<(), SourceError> {
        if !self.decoder.holes.is_empty() {
            self.fill_holes(&mut changes).await?;
        }
        self.tx
            .as_ref()
            .ok_or(SourceError::ConsumerGone)?
            .send(ChangeBatch {
                changes,
                truncate,
                checkpoint,
            })
            .await
            .map_err(|_| SourceError::ConsumerGone)
    }

    /// Fills TOAST holes by key (fetch mode); drops upserts of rows deleted
    /// since (their DELETE follows in the stream). See [`super::toast`].
    async fn fill_holes(&mut self, changes: &mut Vec<Change>) -> Result<(), SourceError> {
        let holes = std::mem::take(&mut self.decoder.holes);
        let Some(fetcher) = self.fetcher.as_ref() else {
            return Err(SourceError::Protocol(
                "TOAST holes without a fetcher".into(),
            ));
        };
        let mut gone = HashSet::new();
        for hole in holes {
            let Some(Change::Upsert { table, row }) = changes.get_mut(hole.change) else {
                return Err(SourceError::Protocol(
                    "TOAST hole does not point at an upsert".into(),
                ));
            };
            if fetcher
                .fill(table, row, &hole.key_text, &hole.columns)
                .await?
                .is_none()
            {
                gone.insert(hole.change);
            }
        }
        if !gone.is_empty() {
            let mut index = 0;
            changes.retain(|_| {
                let keep = !gone.contains(&index);
                index += 1;
                keep
            });
        }
        Ok(())
    }

    /// A stop requested while no session is open: nothing to confirm.
    pub async fn close_without_session(
        mut self,
        final_ack: oneshot::Receiver<()>,
    ) -> Result<(), SourceError> {
        self.tx = None;
        let _ = final_ack.await;
        Ok(())
    }

    /// After a requested stop: waits for `final_ack` (the daemon drained its
    /// deliveries), confirms the final durable position and closes the session.
    pub async fn finish(
        mut self,
        mut client: ReplicationClient,
        final_ack: oneshot::Receiver<()>,
    ) -> Result<(), SourceError> {
        self.tx = None;
        if final_ack.await.is_ok() {
            self.confirm(&client);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while client.feedback_pending_since().is_some()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tracing::info!(confirmed_lsn = %self.confirmed, "confirmed the slot up to the last delivered commit");
        }
        client
            .shutdown()
            .await
            .map_err(|e| SourceError::Replication(e.to_string()))
    }
}
