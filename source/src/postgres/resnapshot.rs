//! Re-snapshot one table while streaming continues, with DBLog's watermarks
//! (Andreas Andreakis, Ioannis Papapanagiotou, "DBLog", 2020).
//!
//! `kappa snapshot --table T` writes a transactional logical message
//! (`kappa.snapshot`) into the WAL; when the stream reaches it, the reader
//! copies the table in key order, one chunk at a time:
//!
//! 1. write a LOW watermark (a non-transactional logical message),
//! 2. select the next chunk (`key > last key ORDER BY key LIMIT n`),
//! 3. write a HIGH watermark.
//!
//! The stream keeps flowing. From the request on it notes every key of T
//! that a committed change touched; at each HIGH it drops those keys from the
//! chunk and emits the rest. Why that is exact: a chunk row whose key no
//! change touched since the request still holds, at HIGH, the value the
//! select read, so emitting it at that point of the stream never puts an
//! older state after a newer one; a row that was changed since the request
//! is represented by the stream's own full-row change (or its tombstone),
//! which is at least as new. Changes committed after HIGH follow in the
//! stream as usual.
//!
//! Why from the request and not only between LOW and HIGH, as in DBLog: in
//! PostgreSQL a transaction's commit record can precede LOW in the WAL while
//! the transaction is not yet visible to the select's snapshot (the commit
//! becomes visible only after its WAL is flushed). With a window of
//! LOW..HIGH, such a change would pass before LOW and the chunk's older row
//! would then overwrite it at HIGH. A transaction invisible to the select
//! was still running after the request was streamed, so its change comes
//! after the request and its key is dropped from the chunk.
//!
//! A TRUNCATE of the table ends the re-snapshot (as MySQL's does): every
//! row the table holds after it was inserted after the request and comes
//! through the stream, and the chunk in hand may have been read before the
//! TRUNCATE committed (its select released the lock the TRUNCATE waited
//! for, before its HIGH watermark was written): emitted at HIGH, after the
//! TRUNCATE's tombstones, it would bring deleted rows back.
//!
//! Durability: while a re-snapshot runs, the slot is confirmed no further
//! than the request message, so after a crash the request is read again and
//! the re-snapshot starts over (its records so far are harmless duplicates).

use super::catalog::{load_table, PgTable};
use super::setup::{quote_ident, quote_table};
use super::text::{column_from_text, text_params};
use super::{connect, pinned_session};
use crate::dblog::{self, ChunkRead, ChunkSource, Watermark};
use crate::error::SourceError;
use kappa_schemas::{Lsn, Row, TableName, TableSchema};
use std::sync::Arc;
use tokio_postgres::Client;

/// Prefix of the request message `kappa snapshot` writes.
pub(crate) const REQUEST_PREFIX: &str = "kappa.snapshot";
/// Prefix of the watermark messages.
pub(crate) const WATERMARK_PREFIX: &str = "kappa.watermark";

/// The request's content: which connector (by slot) and which table.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Request {
    pub slot: String,
    pub table: TableName,
}

/// Writes a re-snapshot request for `table` into the WAL of the database at `url`.
pub(crate) async fn request(
    url: &str,
    password: Option<&str>,
    slot: &str,
    table: &TableName,
) -> Result<Lsn, SourceError> {
    let client = connect(url, password).await?;
    let content = serde_json::to_string(&Request {
        slot: slot.to_string(),
        table: table.clone(),
    })
    .map_err(|e| SourceError::Bug(format!("encoding a re-snapshot request: {e}")))?;
    let lsn: String = client
        .query_one(
            "SELECT pg_logical_emit_message(true, $1, $2)::text",
            &[&REQUEST_PREFIX, &content],
        )
        .await
        .map_err(|source| SourceError::Query {
            doing: format!("requesting a re-snapshot of {table}"),
            source,
        })?
        .get(0);
    Lsn::parse(&lsn).map_err(|e| SourceError::UnexpectedAnswer {
        command: "pg_logical_emit_message",
        answer: format!("LSN {lsn:?}: {e}"),
    })
}

/// The re-snapshots of the PostgreSQL reader (the engine is `crate::dblog`).
pub(crate) type Resnapshots = dblog::Resnapshots<PgChunks, Lsn>;

/// Starts re-snapshotting `table`, whose current stream shape is `schema`
/// (when the stream has seen it), requested at `cap`, and issues the first
/// chunk.
pub(crate) async fn start(
    url: &str,
    password: Option<&str>,
    table: &TableName,
    schema: Option<Arc<TableSchema>>,
    cap: Lsn,
    chunk_rows: usize,
) -> Result<dblog::Resnapshot<PgChunks, Lsn>, SourceError> {
    let client = pinned_session(url, password, "a re-snapshot").await?;
    let catalog = load_table(&client, table).await?;
    let schema = schema
        .filter(|s| {
            s.columns == catalog.schema.columns && s.key_columns == catalog.schema.key_columns
        })
        .unwrap_or_else(|| catalog.schema.clone());
    let chunks = PgChunks {
        client,
        table: catalog,
        schema,
    };
    let id = dblog::attempt_id(&cap);
    dblog::Resnapshot::start(chunks, id, table.clone(), chunk_rows, cap).await
}

/// A re-snapshot's session: watermarks are non-transactional logical
/// messages, chunks are read in key order as text.
pub(crate) struct PgChunks {
    client: Client,
    table: PgTable,
    /// The stream's current shape of the table, used for emitted rows.
    schema: Arc<TableSchema>,
}

impl ChunkSource for PgChunks {
    /// The last key in text form.
    type Key = Vec<String>;

    async fn watermark(&mut self, which: Watermark, payload: &str) -> Result<(), SourceError> {
        let content = format!("{}:{payload}", which.name());
        // A non-transactional message is not flushed by itself, and the
        // walsender sends only flushed WAL: it would wait for the WAL
        // writer (wal_writer_delay, 200 ms by default) — per watermark, two
        // per chunk. An xid in the same statement makes its commit flush the
        // WAL, the message's position included; the message's place in the
        // stream, all DBLog relies on, is unchanged (PostgreSQL 17's `flush`
        // argument does the same).
        self.client
            .execute(
                "SELECT pg_logical_emit_message(false, $1, $2), pg_current_xact_id()",
                &[&WATERMARK_PREFIX, &content],
            )
            .await
            .map_err(|source| SourceError::Query {
                doing: "writing a re-snapshot watermark".into(),
                source,
            })?;
        Ok(())
    }

    async fn read_chunk(
        &mut self,
        after: Option<&Vec<String>>,
        rows: usize,
    ) -> Result<ChunkRead<Vec<String>>, SourceError> {
        let schema = &self.table.schema;
        // Output columns are aliased: ORDER BY would otherwise sort by the
        // text output column of the same name, not by the typed key.
        let columns: Vec<String> = schema
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{}::text AS c{i}", quote_ident(&c.name)))
            .collect();
        let keys: Vec<String> = schema.key().map(|c| quote_ident(&c.name)).collect();
        let placeholders: Vec<String> = schema
            .key_columns
            .iter()
            .enumerate()
            .map(|(n, &i)| format!("${}::text::{}", n + 1, self.table.sql_types[i]))
            .collect();
        let sql = crate::dblog::chunk_query(
            &columns,
            &quote_table(&schema.name),
            &keys,
            after.is_some().then_some(placeholders.as_slice()),
            rows,
        );
        let last = after.cloned().unwrap_or_default();
        let found = self
            .client
            .query(sql.as_str(), &text_params(&last))
            .await
            .map_err(|source| SourceError::Query {
                doing: format!("reading a re-snapshot chunk of {}", schema.name),
                source,
            })?;
        let mut read = Vec::with_capacity(found.len());
        let mut last_key = None;
        for row in &found {
            let texts: Vec<Option<String>> =
                (0..schema.columns.len()).map(|i| row.get(i)).collect();
            let values = (0..schema.columns.len())
                .map(|i| column_from_text(schema, i, texts[i].as_deref()))
                .collect::<Result<Row, SourceError>>()?;
            last_key = Some(
                schema
                    .key_columns
                    .iter()
                    .map(|&i| texts[i].clone().unwrap_or_default())
                    .collect(),
            );
            read.push(values);
        }
        Ok(ChunkRead {
            rows: read,
            last_key,
            schema: self.schema.clone(),
            key_columns: schema.key_columns.clone(),
        })
    }

    /// The session closes when dropped.
    async fn close(self) {}
}

/// A watermark message's content (`low:<payload>`, `high:<payload>`).
pub(crate) fn parse_watermark(content: &str) -> Option<(Watermark, &str)> {
    let (which, payload) = content.split_once(':')?;
    Some((Watermark::parse(which)?, payload))
}
