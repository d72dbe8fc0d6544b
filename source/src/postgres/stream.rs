//! The streaming half of the PostgreSQL reader: pgoutput events → changes.
//!
//! Guarantees: changes leave in commit order; every transaction ends with a
//! [`Checkpoint::PgLsn`] of its commit's end LSN; the slot is confirmed only
//! up to the [`DurablePosition`] the daemon reports, so a crash at any point
//! replays from the last durable commit (at-least-once).

use super::catalog::{build_schema, RawColumn};
use super::pgoutput::{decode, PgOutput, TupleValue};
use super::text::parse_value;
use crate::durable::DurablePosition;
use crate::error::SourceError;
use kappa_schemas::{Change, ChangeBatch, Checkpoint, Lsn, Row, TableName, TableSchema, Value};
use pgwire_replication::{ReplicationClient, ReplicationEvent};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// A large transaction is handed over in pieces of this many changes, so
/// memory holds one piece, not the whole transaction.
const PIECE: usize = 4096;

/// Turns relation ids into table shapes and tuples into changes.
pub struct ChangeDecoder {
    /// Key column names per configured table (from the catalog).
    keys: HashMap<TableName, Vec<String>>,
    relations: HashMap<u32, Arc<TableSchema>>,
    /// Relations seen that are not configured tables (warned once).
    foreign: HashSet<u32>,
}

impl ChangeDecoder {
    pub fn new(keys: HashMap<TableName, Vec<String>>) -> Self {
        Self {
            keys,
            relations: HashMap::new(),
            foreign: HashSet::new(),
        }
    }

    /// Decodes one pgoutput message, appending the changes it means.
    pub fn apply(&mut self, bytes: &[u8], out: &mut Vec<Change>) -> Result<(), SourceError> {
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
                    return Ok(());
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
                    let row = row(&table, &new, None)?;
                    out.push(Change::Upsert { table, row });
                }
            }
            PgOutput::Update {
                relation_id,
                old,
                new,
            } => {
                if let Some(table) = self.table(relation_id)? {
                    let row = row(&table, &new, old.as_deref())?;
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
                for relation_id in relation_ids {
                    if let Some(table) = self.table(relation_id)? {
                        return Err(SourceError::Unsupported {
                            table: table.name.clone(),
                            reason: "TRUNCATE is not streamed yet: its topic would keep the truncated rows. \
                                     Stop kappa, delete the topic and re-snapshot the table"
                                .into(),
                        });
                    }
                }
            }
            PgOutput::Ignored(_) => {}
        }
        Ok(())
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
/// old tuple (REPLICA IDENTITY FULL); without one the row cannot be completed
/// and the reader stops rather than emit a placeholder that compaction would
/// make the only copy.
fn row(
    table: &TableSchema,
    tuple: &[TupleValue],
    old: Option<&[TupleValue]>,
) -> Result<Row, SourceError> {
    if tuple.len() != table.columns.len() {
        return Err(SourceError::Protocol(format!(
            "tuple of {} has {} values for {} columns",
            table.name,
            tuple.len(),
            table.columns.len()
        )));
    }
    tuple
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let value = match (value, old.and_then(|o| o.get(i))) {
                (TupleValue::UnchangedToast, Some(old @ TupleValue::Text(_))) => old,
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
        .collect()
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

/// Receives replication events until `stop` turns true or the server ends
/// the stream, handing changes to `tx` and confirming `durable` to the slot.
/// On a requested stop it waits for `final_ack` (the daemon drained its
/// deliveries), confirms the final durable position and closes the session.
pub async fn run(
    mut client: ReplicationClient,
    mut decoder: ChangeDecoder,
    tx: mpsc::Sender<ChangeBatch>,
    durable: DurablePosition,
    mut stop: watch::Receiver<bool>,
    final_ack: oneshot::Receiver<()>,
) -> Result<(), SourceError> {
    let mut changes = Vec::new();
    let mut confirm_tick = tokio::time::interval(Duration::from_millis(500));
    let mut confirmed = Lsn(0);
    loop {
        let event = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = confirm_tick.tick() => {
                let lsn = durable.get();
                if lsn > confirmed {
                    client.update_applied_lsn(pgwire_replication::Lsn(lsn.0));
                    confirmed = lsn;
                }
                continue;
            }
            event = client.recv() => event.map_err(|e| SourceError::Replication(e.to_string()))?,
        };
        match event {
            Some(ReplicationEvent::XLogData { data, .. }) => {
                decoder.apply(&data, &mut changes)?;
                if changes.len() >= PIECE {
                    send(&tx, std::mem::take(&mut changes), None).await?;
                }
            }
            Some(ReplicationEvent::Commit { end_lsn, .. }) => {
                let checkpoint = Some(Checkpoint::PgLsn(Lsn(end_lsn.0)));
                send(&tx, std::mem::take(&mut changes), checkpoint).await?;
            }
            Some(ReplicationEvent::StoppedAt { .. }) | None => {
                return Err(SourceError::Replication(
                    "the server ended the replication stream".into(),
                ))
            }
            Some(_) => {}
        }
    }
    drop(tx);
    // Whatever was half-read of a transaction is simply not confirmed: the
    // slot replays it next time.
    if final_ack.await.is_ok() {
        let lsn = durable.get();
        client.update_applied_lsn(pgwire_replication::Lsn(lsn.0));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while client.feedback_pending_since().is_some() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::info!(confirmed_lsn = %lsn, "confirmed the slot up to the last delivered commit");
    }
    client
        .shutdown()
        .await
        .map_err(|e| SourceError::Replication(e.to_string()))
}

async fn send(
    tx: &mpsc::Sender<ChangeBatch>,
    changes: Vec<Change>,
    checkpoint: Option<Checkpoint>,
) -> Result<(), SourceError> {
    tx.send(ChangeBatch {
        changes,
        checkpoint,
    })
    .await
    .map_err(|_| SourceError::ConsumerGone)
}
