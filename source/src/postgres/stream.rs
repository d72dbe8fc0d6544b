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
use super::toast::{Buffered, ToastFetcher};
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
}

impl ChangeDecoder {
    pub fn new(keys: HashMap<TableName, Vec<String>>) -> Self {
        Self {
            keys,
            relations: HashMap::new(),
            foreign: HashSet::new(),
            fetch_toast: HashSet::new(),
        }
    }

    /// Lets UPDATEs of `tables` leave TOAST holes (recorded with the change
    /// in its [`Buffered`]) instead of failing.
    pub fn fetch_toast_for(mut self, tables: impl IntoIterator<Item = TableName>) -> Self {
        self.fetch_toast.extend(tables);
        self
    }

    /// Decodes one pgoutput message, appending the changes it means.
    pub fn apply(&mut self, bytes: &[u8], out: &mut Buffered) -> Result<Decoded, SourceError> {
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
                        out.push_with_holes(Change::Upsert { table, row }, holes, key_text);
                    } else {
                        out.push(Change::Upsert { table, row });
                    }
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
                             its value is not in the stream. Run: ALTER TABLE {} REPLICA IDENTITY FULL; or restart kappa, which then \
                             fetches such values by key (unless the table is set to unchanged_toast = \"refuse\")",
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
        // Owned by this session: a lost connection drops the buffered changes
        // and their TOAST holes together (they are read again from the slot).
        let mut changes = Buffered::default();
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
                        resnapshot.observe(&changes.changes()[before..]);
                    }
                    if let Decoded::Truncate(tables) = decoded {
                        self.end_resnapshot_if_truncated(&tables);
                        self.send(std::mem::take(&mut changes), Vec::new(), None)
                            .await?;
                        self.send(Buffered::default(), tables, None).await?;
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

    /// A TRUNCATE of the table being re-snapshotted ends the re-snapshot,
    /// as MySQL's does: every row the table holds after the TRUNCATE was
    /// inserted after the request and comes through the stream, and the
    /// chunk in hand may have been read before the TRUNCATE committed —
    /// emitted at its HIGH watermark, after the tombstones, it would bring
    /// deleted rows back.
    fn end_resnapshot_if_truncated(&mut self, truncated: &[Arc<TableSchema>]) {
        let ends = self
            .resnapshot
            .as_ref()
            .is_some_and(|running| truncated.iter().any(|t| &t.name == running.table()));
        if ends {
            if let Some(done) = self.resnapshot.take() {
                tracing::info!(table = %done.table(), rows = done.emitted, "re-snapshot complete: the table was truncated, every row it holds now comes through the stream");
            }
        }
    }

    /// Re-snapshot requests and watermarks (see [`super::resnapshot`]).
    async fn on_message(
        &mut self,
        prefix: &str,
        content: &[u8],
        lsn: Lsn,
        changes: &mut Buffered,
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
                self.send(rows.into(), Vec::new(), None).await?;
                if finished {
                    if let Some(done) = self.resnapshot.take() {
                        tracing::info!(table = %done.table(), rows = done.emitted, "re-snapshot complete");
                    }
                }
            }
        }
        Ok(())
    }

    /// Hands `changes` (their TOAST holes filled) to the daemon.
    async fn send(
        &mut self,
        changes: Buffered,
        truncate: Vec<Arc<TableSchema>>,
        checkpoint: Option<Checkpoint>,
    ) -> Result<(), SourceError> {
        let changes = changes.into_changes(self.fetcher.as_ref()).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn relation() -> Vec<u8> {
        let mut msg = vec![b'R'];
        msg.extend(1u32.to_be_bytes());
        msg.extend(b"public\0t\0");
        msg.push(b'd');
        msg.extend(2i16.to_be_bytes());
        for (flags, name, oid) in [(1u8, "id", 23u32), (0, "body", 25)] {
            msg.push(flags);
            msg.extend(name.as_bytes());
            msg.push(0);
            msg.extend(oid.to_be_bytes());
            msg.extend((-1i32).to_be_bytes());
        }
        msg
    }

    /// An INSERT ('I') or UPDATE ('U') of id `id`; `body: None` is an
    /// unchanged TOAST value.
    fn tuple_message(tag: u8, id: &str, body: Option<&str>) -> Vec<u8> {
        let mut msg = vec![tag];
        msg.extend(1u32.to_be_bytes());
        msg.push(b'N');
        msg.extend(2i16.to_be_bytes());
        msg.push(b't');
        msg.extend((id.len() as i32).to_be_bytes());
        msg.extend(id.as_bytes());
        match body {
            None => msg.push(b'u'),
            Some(text) => {
                msg.push(b't');
                msg.extend((text.len() as i32).to_be_bytes());
                msg.extend(text.as_bytes());
            }
        }
        msg
    }

    fn decoder() -> ChangeDecoder {
        let table = TableName::new("public", "t");
        ChangeDecoder::new(HashMap::from([(table.clone(), vec!["id".to_string()])]))
            .fetch_toast_for([table])
    }

    #[tokio::test]
    async fn holes_die_with_the_changes_of_a_lost_session() {
        let mut decoder = decoder();
        let mut lost = Buffered::default();
        decoder.apply(&relation(), &mut lost).unwrap();
        decoder
            .apply(&tuple_message(b'U', "7", None), &mut lost)
            .unwrap();
        assert!(lost.has_holes());
        drop(lost);
        // The next session decodes into a new buffer: no hole of the lost one
        // may point into it. (Before, the decoder kept the holes: the next
        // hand-over filled change 0 — another key's row — by key 7.)
        let mut next = Buffered::default();
        decoder
            .apply(&tuple_message(b'I', "1", Some("x")), &mut next)
            .unwrap();
        assert!(!next.has_holes());
        let changes = next.into_changes(None).await.expect("no fetch needed");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].key(), vec![Value::Int(1)]);
    }

    #[test]
    fn a_hole_indexes_its_own_upsert() {
        let mut decoder = decoder();
        let mut buffer = Buffered::default();
        decoder.apply(&relation(), &mut buffer).unwrap();
        decoder
            .apply(&tuple_message(b'I', "1", Some("x")), &mut buffer)
            .unwrap();
        decoder
            .apply(&tuple_message(b'U', "2", None), &mut buffer)
            .unwrap();
        assert_eq!(buffer.len(), 2);
        assert!(buffer.has_holes());
        buffer.clear();
        assert!(buffer.is_empty() && !buffer.has_holes());
    }
}
