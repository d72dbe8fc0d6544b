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

use super::catalog::{load_table, CatalogTable};
use super::setup::{quote_ident, quote_table};
use super::text::{column_from_text, text_params};
use super::{connect, pinned_session};
use crate::dblog::Chunks;
use crate::error::SourceError;
use kappa_schemas::{Change, Lsn, Row, TableName, TableSchema};
use std::sync::Arc;
use tokio_postgres::Client;

/// Prefix of the request message `kappa snapshot` writes.
pub const REQUEST_PREFIX: &str = "kappa.snapshot";
/// Prefix of the watermark messages.
pub const WATERMARK_PREFIX: &str = "kappa.watermark";

/// The request's content: which connector (by slot) and which table.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub slot: String,
    pub table: TableName,
}

/// Writes a re-snapshot request for `table` into the WAL of the database at `url`.
pub async fn request(
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
    .map_err(|e| SourceError::Protocol(format!("encoding a re-snapshot request: {e}")))?;
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
    Lsn::parse(&lsn)
        .map_err(|e| SourceError::Protocol(format!("pg_logical_emit_message's LSN: {e}")))
}

/// A re-snapshot in progress.
pub struct Resnapshot {
    client: Client,
    table: CatalogTable,
    /// The stream's current shape of the table, used for emitted rows.
    schema: Arc<TableSchema>,
    /// The chunk state (`crate::dblog`); the last key in text form.
    chunks: Chunks<Vec<String>>,
    /// The request's position: the slot is not confirmed past it meanwhile.
    pub cap: Lsn,
}

impl Resnapshot {
    /// Starts re-snapshotting `table`, whose current stream shape is `schema`
    /// (when the stream has seen it), and issues the first chunk.
    pub async fn start(
        url: &str,
        password: Option<&str>,
        table: &TableName,
        schema: Option<Arc<TableSchema>>,
        cap: Lsn,
        chunk_rows: usize,
    ) -> Result<Self, SourceError> {
        let client = pinned_session(url, password, "a re-snapshot").await?;
        let catalog = load_table(&client, table).await?;
        let schema = schema
            .filter(|s| {
                s.columns == catalog.schema.columns && s.key_columns == catalog.schema.key_columns
            })
            .unwrap_or_else(|| catalog.schema.clone());
        let mut resnapshot = Self {
            client,
            table: catalog,
            schema,
            chunks: Chunks::new(
                format!("{}-{}", cap, std::process::id()),
                table.clone(),
                chunk_rows,
            ),
            cap,
        };
        resnapshot.next_chunk().await?;
        Ok(resnapshot)
    }

    pub fn table(&self) -> &TableName {
        &self.schema.name
    }

    /// Rows emitted so far.
    pub fn emitted(&self) -> u64 {
        self.chunks.emitted()
    }

    async fn emit_watermark(&self, which: &str) -> Result<(), SourceError> {
        let content = format!("{which}:{}", self.chunks.payload());
        self.client
            .execute(
                "SELECT pg_logical_emit_message(false, $1, $2)",
                &[&WATERMARK_PREFIX, &content],
            )
            .await
            .map_err(|source| SourceError::Query {
                doing: "writing a re-snapshot watermark".into(),
                source,
            })?;
        Ok(())
    }

    /// LOW watermark, the next chunk's select, HIGH watermark.
    async fn next_chunk(&mut self) -> Result<(), SourceError> {
        self.chunks.begin_chunk();
        self.emit_watermark("low").await?;
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
        let mut sql = format!(
            "SELECT {} FROM {}",
            columns.join(", "),
            quote_table(&schema.name)
        );
        if self.chunks.last_key().is_some() {
            let params: Vec<String> = schema
                .key_columns
                .iter()
                .enumerate()
                .map(|(n, &i)| format!("${}::text::{}", n + 1, self.table.sql_types[i]))
                .collect();
            sql.push_str(&format!(
                " WHERE ({}) > ({})",
                keys.join(", "),
                params.join(", ")
            ));
        }
        sql.push_str(&format!(
            " ORDER BY {} LIMIT {}",
            keys.join(", "),
            self.chunks.rows_per_chunk()
        ));
        let last = self.chunks.last_key().cloned().unwrap_or_default();
        let rows = self
            .client
            .query(sql.as_str(), &text_params(&last))
            .await
            .map_err(|source| SourceError::Query {
                doing: format!("reading a re-snapshot chunk of {}", schema.name),
                source,
            })?;
        let mut read = Vec::with_capacity(rows.len());
        let mut last_key = None;
        for row in &rows {
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
        self.chunks.chunk_read(read, last_key);
        self.emit_watermark("high").await
    }

    /// Notes the keys of changes to this table seen in the stream since the
    /// request (see the module comment for why not only within a window).
    pub fn observe(&mut self, changes: &[Change]) {
        self.chunks.observe(changes);
    }

    /// Handles a watermark message. At this chunk's HIGH watermark it returns
    /// the chunk's rows to emit (those not changed since the request) and starts
    /// the next chunk; `finished` tells whether the table is done.
    pub async fn on_watermark(
        &mut self,
        content: &str,
    ) -> Result<Option<(Vec<Change>, bool)>, SourceError> {
        let expected_low = format!("low:{}", self.chunks.payload());
        let expected_high = format!("high:{}", self.chunks.payload());
        if content == expected_low {
            return Ok(None);
        }
        if content != expected_high {
            tracing::debug!(
                content,
                expected_low,
                expected_high,
                "watermark of another chunk"
            );
            return Ok(None);
        }
        let key_columns = self.table.schema.key_columns.clone();
        let (changes, finished) = self.chunks.at_high(&self.schema, &key_columns);
        if !finished {
            self.next_chunk().await?;
        }
        Ok(Some((changes, finished)))
    }
}
