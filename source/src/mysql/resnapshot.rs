//! Re-snapshot one table while the binlog keeps streaming, with DBLog's
//! watermarks (Andreas Andreakis, Ioannis Papapanagiotou, "DBLog", 2020), as
//! the PostgreSQL reader does (`postgres/resnapshot.rs`).
//!
//! MySQL and MariaDB have no logical messages, so requests and watermarks are
//! rows of a signal table (`signal_table` under `[source.mysql]`, as
//! Debezium's MySQL incremental snapshots do): `kappa snapshot --table T`
//! INSERTs a `snapshot` row naming the connector and T. The reader decodes
//! the signal table's row events (its own TABLE_MAP; it is never a captured
//! table and produces no records) and acts on a signal at the commit of its
//! transaction. Rows naming another connector are ignored. When the stream
//! reaches the request, the reader copies T in key order, one chunk at a
//! time, on a connection of its own:
//!
//! 1. INSERT a LOW watermark row (autocommit),
//! 2. SELECT the next chunk (`(key) > (last key) ORDER BY key LIMIT n`, an
//!    autocommit statement: its read view is taken when it starts),
//! 3. INSERT a HIGH watermark row (autocommit).
//!
//! The stream keeps flowing. From the request on it notes every key of T that
//! a committed change touched; when it reaches HIGH it drops those keys from
//! the chunk and emits the rest, then issues the next chunk.
//!
//! Why that is exact. The binlog is written before the engine commits (two
//! phase commit: binlog flush and sync, then the engine's commit), so every
//! transaction the SELECT's read view sees is in the binlog before HIGH. A
//! chunk row whose key no change touched between the request and HIGH
//! therefore holds, at HIGH, the value the SELECT read: emitting it at that
//! point of the stream never puts an older state after a newer one. A row
//! changed since the request is represented by the stream's own full-row
//! change (or delete), which is at least as new. Changes after HIGH follow in
//! the stream as usual.
//!
//! Why from the request and not only between LOW and HIGH: with MySQL's
//! `binlog_order_commits = ON` (the default) and always in MariaDB (whose
//! engines commit in binlog order through `commit_ordered`), engine commit
//! order equals binlog order, so once LOW's INSERT returned every transaction
//! before LOW in the binlog is visible, and LOW..HIGH would be enough. With
//! `binlog_order_commits = OFF` a transaction written to the binlog before
//! LOW may become visible only after the SELECT started; such a transaction
//! was written after the stream had read the request (LOW is written after
//! that), so noting keys from the request covers it too. (A transaction
//! before the request that is still invisible when the SELECT runs is
//! possible only with OFF; kappa refuses to re-snapshot then, and says so.)
//!
//! A TRUNCATE of T during the re-snapshot ends it: every row T holds after
//! the TRUNCATE was inserted after the request and comes through the stream,
//! and a chunk read before it must not resurrect rows.
//!
//! Durability: while a re-snapshot runs, every commit's checkpoint is the
//! position before the request's transaction, so the stored position does
//! not pass the request; after a crash or a stop, the request is read again
//! and the re-snapshot starts over (its records so far are harmless
//! duplicates, each true at its point of the stream). One re-snapshot runs at
//! a time: a request read while one runs is logged and ignored (run
//! `kappa snapshot` again after "re-snapshot complete"). A re-snapshot that
//! fails (its connection lost, a refused query) is abandoned with an error in
//! the log, not fatal to streaming: otherwise a restart from the request
//! would fail the same way again.

use super::catalog::{load_table, MysqlTable};
use super::charset::Charset;
use super::kind::MysqlKind;
use super::types::{convert_row, Origin};
use super::{connect, query_error, quote_ident, quote_table};
use crate::dblog::{self, ChunkRead, ChunkSource, Watermark};
use crate::error::SourceError;
use kappa_schemas::{BinlogPosition, TableName, Value};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value as My};

/// `kind` of a request row.
pub(crate) const REQUEST: &str = "snapshot";

/// Creates the signal table (and its database) when missing.
pub(crate) async fn ensure_signal_table(
    conn: &mut Conn,
    signal: &TableName,
) -> Result<(), SourceError> {
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS {}",
        quote_ident(&signal.schema)
    ))
    .await
    .map_err(query_error(format!(
        "creating the signal table's database {}",
        signal.schema
    )))?;
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {} (
             id BIGINT AUTO_INCREMENT PRIMARY KEY,
             connector VARCHAR(255) NOT NULL,
             kind VARCHAR(32) NOT NULL,
             payload TEXT
         ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
        quote_table(signal)
    ))
    .await
    .map_err(query_error(format!("creating the signal table {signal}")))
}

/// INSERTs a signal row in its own (autocommit) transaction.
async fn insert_signal(
    conn: &mut Conn,
    signal: &TableName,
    connector: &str,
    kind: &str,
    payload: &str,
) -> Result<(), SourceError> {
    conn.exec_drop(
        format!(
            "INSERT INTO {} (connector, kind, payload) VALUES (?, ?, ?)",
            quote_table(signal)
        ),
        (connector, kind, payload),
    )
    .await
    .map_err(query_error(format!(
        "writing a {kind} row into the signal table {signal}"
    )))
}

/// `kappa snapshot`: INSERTs a request to re-snapshot `table` for the
/// connector called `connector`; returns the binlog position after it.
pub(crate) async fn request(
    url: &str,
    password: Option<&str>,
    signal: &TableName,
    connector: &str,
    table: &TableName,
) -> Result<BinlogPosition, SourceError> {
    let mut conn = connect(url, password).await?;
    let exists: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (&signal.schema, &signal.table),
        )
        .await
        .map_err(query_error("looking for the signal table"))?;
    if exists != Some(1) {
        return Err(SourceError::NoSuchSignalTable {
            signal: signal.clone(),
        });
    }
    insert_signal(&mut conn, signal, connector, REQUEST, &table.to_string()).await?;
    let position = super::snapshot::current_position(&mut conn).await?;
    let _ = conn.disconnect().await;
    Ok(position)
}

/// A signal row of this connector, as the stream decoded it.
#[derive(Debug, Clone)]
pub(crate) struct Signal {
    pub kind: String,
    pub payload: String,
}

/// The signal of a decoded row of the signal table `table`, if it names
/// `connector` (rows of other connectors are `None`).
pub(crate) fn signal_of(table: &MysqlTable, row: &[Value], connector: &str) -> Option<Signal> {
    let text = |name: &str| match table.schema.column_index(name).and_then(|i| row.get(i)) {
        Some(Value::Text(text)) => Some(text.clone()),
        Some(Value::Bytes(bytes)) => String::from_utf8(bytes.clone()).ok(),
        _ => None,
    };
    if text("connector")? != connector {
        return None;
    }
    Some(Signal {
        kind: text("kind")?,
        payload: text("payload").unwrap_or_default(),
    })
}

/// Refuses key columns for which `(key) > (last key)` with the key read back
/// as a parameter is not the order of `ORDER BY key`: ENUM and SET sort by
/// their index but compare as text, and latin1 text comes back as latin1
/// bytes that the utf8mb4 session would read as other characters. Either
/// would skip rows silently.
fn keyset_pageable(table: &MysqlTable) -> Result<(), SourceError> {
    for &i in &table.schema.key_columns {
        let reason = match &table.columns[i].kind {
            MysqlKind::Enum(_) | MysqlKind::Set(_) => "an ENUM or SET",
            MysqlKind::Text(Charset::Latin1) => "a latin1 text",
            _ => continue,
        };
        return Err(SourceError::Unsupported {
            table: table.schema.name.clone(),
            reason: format!(
                "key column {} is {reason} column, which kappa cannot page through in key order for a re-snapshot; \
                 re-snapshot it with a new connector name instead",
                table.schema.columns[i].name
            ),
        });
    }
    Ok(())
}

/// The re-snapshots of the MySQL reader (the engine is `crate::dblog`).
pub(crate) type Resnapshots = dblog::Resnapshots<MysqlChunks, BinlogPosition>;

/// Where a re-snapshot reads from and signals to.
pub(crate) struct Source<'a> {
    pub url: &'a str,
    pub password: Option<&'a str>,
    pub signal: &'a TableName,
    pub connector: &'a str,
    pub chunk_rows: usize,
}

/// Starts re-snapshotting `name`, requested at `cap`, and issues the first
/// chunk. Refuses a MySQL server with `binlog_order_commits = OFF` (see the
/// module docs).
pub(crate) async fn start(
    source: &Source<'_>,
    name: &TableName,
    cap: BinlogPosition,
) -> Result<dblog::Resnapshot<MysqlChunks, BinlogPosition>, SourceError> {
    let mut conn = connect(source.url, source.password).await?;
    // MariaDB has no such variable (it always commits in binlog order).
    if let Ok(Some(0)) = conn
        .query_first::<i64, _>("SELECT @@global.binlog_order_commits")
        .await
    {
        let _ = conn.disconnect().await;
        return Err(SourceError::BinlogOrderCommitsOff);
    }
    // Each chunk SELECT sees committed rows only: a row of a transaction
    // that later rolls back never reaches the binlog, so no change would
    // drop it from the chunk.
    conn.query_drop("SET autocommit = 1; SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .await
        .map_err(query_error("setting autocommit for a re-snapshot"))?;
    let chunks = MysqlChunks {
        conn,
        signal: source.signal.clone(),
        connector: source.connector.to_string(),
        name: name.clone(),
    };
    let id = dblog::attempt_id(&cap);
    dblog::Resnapshot::start(chunks, id, name.clone(), source.chunk_rows, cap).await
}

/// A re-snapshot's connection: watermarks are signal-table rows, chunks are
/// autocommit SELECTs in key order.
pub(crate) struct MysqlChunks {
    conn: Conn,
    signal: TableName,
    connector: String,
    name: TableName,
}

impl ChunkSource for MysqlChunks {
    /// The last key as the server returned it (bound as is into the next
    /// chunk's `WHERE (key) > (?)`).
    type Key = Vec<My>;

    async fn watermark(&mut self, which: Watermark, payload: &str) -> Result<(), SourceError> {
        insert_signal(
            &mut self.conn,
            &self.signal,
            &self.connector,
            which.name(),
            payload,
        )
        .await
    }

    async fn read_chunk(
        &mut self,
        after: Option<&Vec<My>>,
        rows: usize,
    ) -> Result<ChunkRead<Vec<My>>, SourceError> {
        // The shape as it is now: a DDL since the last chunk is picked up.
        let table = load_table(&mut self.conn, &self.name).await?;
        let schema = &table.schema;
        keyset_pageable(&table)?;
        let columns: Vec<String> = schema
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        let keys: Vec<String> = schema.key().map(|c| quote_ident(&c.name)).collect();
        let params = match after {
            Some(last) if last.len() == keys.len() => last.clone(),
            Some(_) => {
                return Err(SourceError::Unsupported {
                    table: self.name.clone(),
                    reason: "the primary key changed during the re-snapshot".into(),
                })
            }
            None => Vec::new(),
        };
        let marks = vec!["?".to_string(); keys.len()];
        let sql = crate::dblog::chunk_query(
            &columns,
            &quote_table(&self.name),
            &keys,
            after.is_some().then_some(marks.as_slice()),
            rows,
        );
        let doing = format!("reading a re-snapshot chunk of {}", self.name);
        let found: Vec<mysql_async::Row> = self
            .conn
            .exec(sql, mysql_async::Params::Positional(params))
            .await
            .map_err(query_error(doing))?;
        let mut read = Vec::with_capacity(found.len());
        let mut last_key = None;
        for row in found {
            let raw = row.unwrap();
            last_key = Some(schema.key_columns.iter().map(|&i| raw[i].clone()).collect());
            read.push(convert_row(&self.name, &table.columns, raw, Origin::Query)?);
        }
        Ok(ChunkRead {
            rows: read,
            last_key,
            schema: table.schema.clone(),
            key_columns: table.schema.key_columns.clone(),
        })
    }

    async fn close(self) {
        let _ = self.conn.disconnect().await;
    }
}
