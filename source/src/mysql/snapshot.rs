//! The initial snapshot: every row of the captured tables as of one exact
//! binlog position.
//!
//! ## Why the handover is exact
//! `FLUSH TABLES WITH READ LOCK` waits for running writes and blocks new
//! commits. While it is held, kappa starts a `REPEATABLE READ` transaction
//! `WITH CONSISTENT SNAPSHOT` (InnoDB fixes its read view now) and reads the
//! binlog position (`SHOW MASTER STATUS`, plus the GTID position). No commit
//! can happen between those two steps, so the read view contains exactly the
//! transactions whose commit is before that position in the binlog. Then the
//! lock is released (its duration is logged: milliseconds, independent of
//! table sizes) and the rows are read through the read view while writes go
//! on. Streaming starts at the position read under the lock: every commit is
//! in the snapshot or in the stream, never both, never neither.
//!
//! Rows are read in primary-key order through a server-side cursor (binary
//! protocol, streamed) and handed over in chunks of `chunk_rows`, so memory
//! holds one chunk at a time whatever the table size.
//!
//! ## A table truncated or altered while the snapshot reads
//! InnoDB cannot read a table through a read view older than the table's
//! definition: a TRUNCATE (a DDL in InnoDB) or ALTER of a table committed
//! after the snapshot began makes its read fail with `ERROR 1412 (HY000):
//! Table definition has changed`. Such a table is read again at the end,
//! through a new read view (a later position P2, taken as the first under
//! the lock), and streaming still starts at the first position P1. That is
//! the argument kappa already makes for a table added to the config later:
//! the table's rows as of P2 come first, then the stream replays the table's
//! changes in (P1, P2] in commit order, then the ones after P2. Every key
//! ends at its newest state: a change in (P1, P2] is already contained in
//! the P2 rows and replaying it moves the key through states it had before
//! reaching the same final one; the DDL itself is in (P1, P2] — a TRUNCATE
//! there tombstones every key the topic then holds (the daemon waits for
//! the snapshot's records to be acknowledged first), and every row the table
//! holds at P2 was inserted after it, so the replay writes it back. Rows of
//! the table are never half-emitted: the error comes when the read opens the
//! table, before its first row. A table whose definition keeps changing is
//! read at most [`READ_VIEWS`] times, then the snapshot fails naming it.
//! After an ALTER the rows are still read with the columns kappa loaded at
//! start (a dropped one fails the read with the server's error); what a
//! column change means for the topic's schema is the stream's business, as
//! for any DDL (docs/mysql.md).

use super::catalog::MysqlTable;
use super::types::{convert_row, Origin};
use super::{query_error, quote_ident, quote_table};
use crate::error::SourceError;
use kappa_schemas::{BinlogPosition, Change, ChangeBatch};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use std::time::Instant;
use tokio::sync::mpsc;

/// Takes the snapshot of `tables` and returns the binlog position streaming
/// must start from.
pub async fn snapshot(
    conn: &mut Conn,
    tables: &[&MysqlTable],
    chunk_rows: usize,
    tx: &mpsc::Sender<ChangeBatch<BinlogPosition>>,
) -> Result<BinlogPosition, SourceError> {
    let position = begin(conn).await?;
    let mut total = 0u64;
    let mut pending: Vec<&MysqlTable> = tables.to_vec();
    for read_view in 1..=READ_VIEWS {
        if read_view > 1 {
            let later = begin(conn).await?;
            tracing::info!(tables = pending.len(), %later, streaming_from = %position, "reading tables whose definition changed during the snapshot through a later read view; the binlog from the snapshot position replays their changes since");
        }
        let mut changed = Vec::new();
        for table in pending {
            match emit_table(conn, table, chunk_rows, tx).await? {
                Some(rows) => total += rows,
                None => {
                    tracing::warn!(table = %table.schema.name, "table truncated or altered after the snapshot began (ERROR 1412): it is read again at the end");
                    changed.push(table);
                }
            }
        }
        conn.query_drop("COMMIT")
            .await
            .map_err(query_error("closing the snapshot transaction"))?;
        if changed.is_empty() {
            tracing::info!(rows = total, tables = tables.len(), %position, "initial snapshot read");
            return Ok(position);
        }
        pending = changed;
    }
    let names: Vec<String> = pending.iter().map(|t| t.schema.name.to_string()).collect();
    Err(SourceError::DefinitionKeptChanging {
        tables: names.join(", "),
        reads: READ_VIEWS,
    })
}

/// How many read views one snapshot may take before a table whose definition
/// keeps changing fails it (see the module docs).
const READ_VIEWS: usize = 5;

/// Whether the snapshot read of a table failed because a DDL (TRUNCATE,
/// ALTER) on it committed after the read view was taken.
fn definition_changed(error: &SourceError) -> bool {
    matches!(
        error,
        SourceError::Mysql {
            source: mysql_async::Error::Server(server),
            ..
        } if server.code == super::errors::ER_TABLE_DEF_CHANGED
    )
}

/// Opens the snapshot transaction under a brief global read lock and returns
/// the binlog position it corresponds to (see the module docs).
pub async fn begin(conn: &mut Conn) -> Result<BinlogPosition, SourceError> {
    let locked = Instant::now();
    conn.query_drop("FLUSH TABLES WITH READ LOCK")
        .await
        .map_err(query_error(
            "taking the snapshot lock (FLUSH TABLES WITH READ LOCK needs the RELOAD privilege)",
        ))?;
    let result = async {
        conn.query_drop(
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION WITH CONSISTENT SNAPSHOT",
        )
        .await
        .map_err(query_error("starting the snapshot transaction"))?;
        current_position(conn).await
    }
    .await;
    let unlocked = conn.query_drop("UNLOCK TABLES").await;
    let held = locked.elapsed();
    let position = result?;
    unlocked.map_err(query_error("releasing the snapshot lock"))?;
    tracing::info!(%position, lock_held_ms = held.as_secs_f64() * 1000.0, "snapshot position read under FLUSH TABLES WITH READ LOCK");
    Ok(position)
}

/// The server's current binlog position and GTID position.
pub async fn current_position(conn: &mut Conn) -> Result<BinlogPosition, SourceError> {
    let row: Option<Row> = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .map_err(query_error(
            "reading the binlog position (SHOW MASTER STATUS)",
        ))?;
    let row = row.ok_or_else(|| SourceError::BinaryLoggingOff)?;
    let file: Option<String> = row.get(0);
    let pos: Option<u64> = row.get(1);
    let (Some(file), Some(pos)) = (file, pos) else {
        return Err(SourceError::UnexpectedAnswer {
            command: "SHOW MASTER STATUS",
            answer: "a row without a file or position".into(),
        });
    };
    Ok(BinlogPosition {
        file,
        pos,
        gtid: gtid_position(conn).await,
    })
}

/// MariaDB's `@@gtid_binlog_pos` (`domain-server-seq,…`) or MySQL's
/// `@@gtid_executed` (`uuid:1-n,…`); `None` when empty or unknown.
async fn gtid_position(conn: &mut Conn) -> Option<String> {
    for sql in ["SELECT @@gtid_binlog_pos", "SELECT @@gtid_executed"] {
        if let Ok(Some(Some(gtid))) = conn.query_first::<Option<String>, _>(sql).await {
            return (!gtid.is_empty()).then_some(gtid);
        }
    }
    None
}

/// `SELECT` of every column of `table` in key order.
pub fn select_sql(table: &MysqlTable) -> String {
    let columns: Vec<String> = table
        .schema
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect();
    let keys: Vec<String> = table.schema.key().map(|c| quote_ident(&c.name)).collect();
    format!(
        "SELECT {} FROM {} ORDER BY {}",
        columns.join(", "),
        quote_table(&table.schema.name),
        keys.join(", ")
    )
}

/// A chunk also ends once its rows took this many bytes as the server sent
/// them (as the PostgreSQL snapshot's chunks do): wide rows would otherwise
/// make a chunk of `chunk_rows` weigh gigabytes.
const CHUNK_BYTES: usize = 4 << 20;

/// The bytes of a row as the server sent it (text and binary values; other
/// values count as 8).
fn raw_size(values: &[mysql_async::Value]) -> usize {
    values
        .iter()
        .map(|value| match value {
            mysql_async::Value::Bytes(bytes) => bytes.len(),
            _ => 8,
        })
        .sum()
}

/// Emits every row of `table` as upserts, `chunk_rows` per batch at most
/// (or [`CHUNK_BYTES`]), and returns their number; `None` when the table's
/// definition changed after the read view was taken (ERROR 1412, before any
/// row was read: see the module docs).
async fn emit_table(
    conn: &mut Conn,
    table: &MysqlTable,
    chunk_rows: usize,
    tx: &mpsc::Sender<ChangeBatch<BinlogPosition>>,
) -> Result<Option<u64>, SourceError> {
    let started = Instant::now();
    let name = &table.schema.name;
    let doing = || format!("reading rows of {name}");
    let mut result = match conn.exec_iter(select_sql(table), ()).await {
        Ok(result) => result,
        Err(e) => {
            let error = query_error(doing())(e);
            return if definition_changed(&error) {
                Ok(None)
            } else {
                Err(error)
            };
        }
    };
    let mut rows = 0u64;
    let mut changes = Vec::with_capacity(chunk_rows.min(4096));
    let mut chunk_bytes = 0usize;
    loop {
        let row = match result.next().await {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => {
                let error = query_error(doing())(e);
                // Once a row was read the table is locked against DDL until
                // the snapshot commits; a 1412 before the first row still
                // means the read view predates the table's definition.
                return if rows == 0 && definition_changed(&error) {
                    Ok(None)
                } else {
                    Err(error)
                };
            }
        };
        let raw = row.unwrap();
        chunk_bytes = chunk_bytes.saturating_add(raw_size(&raw));
        let values = convert_row(name, &table.columns, raw, Origin::Query)?;
        changes.push(Change::Upsert {
            table: table.schema.clone(),
            row: values,
        });
        rows += 1;
        if changes.len() >= chunk_rows || chunk_bytes >= CHUNK_BYTES {
            send(tx, std::mem::take(&mut changes)).await?;
            chunk_bytes = 0;
        }
    }
    drop(result);
    if !changes.is_empty() {
        send(tx, changes).await?;
    }
    tracing::info!(table = %name, rows, seconds = started.elapsed().as_secs_f64(), "snapshot of table read");
    Ok(Some(rows))
}

async fn send(
    tx: &mpsc::Sender<ChangeBatch<BinlogPosition>>,
    changes: Vec<Change>,
) -> Result<(), SourceError> {
    tx.send(ChangeBatch {
        changes,
        ..ChangeBatch::default()
    })
    .await
    .map_err(|_| SourceError::ConsumerGone)
}
