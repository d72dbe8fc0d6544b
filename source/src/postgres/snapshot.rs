//! Reading whole tables: the initial snapshot, and the source side of `verify`.
//!
//! Rows come through `COPY (SELECT …) TO STDOUT` in text format, streamed and
//! cut into chunks, so memory holds one chunk at a time whatever the table
//! size, and every value goes through the same text parser as the stream.

use super::setup::{quote_ident, quote_table};
use super::text::{column_from_text, CopyFields};
use super::SESSION_SETTINGS;
use crate::error::SourceError;
use bytes::{Buf, BytesMut};
use futures::StreamExt;
use kappa_schemas::{Change, ChangeBatch, Lsn, Row, TableSchema};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_postgres::{Client, CopyOutStream};

/// A chunk also ends once its rows took this many bytes of COPY text, so
/// that wide rows keep a chunk (and the batches in flight) small.
const CHUNK_BYTES: usize = 4 << 20;

/// Rows of one table, read chunk by chunk from a COPY stream.
pub struct CopyRows {
    table: Arc<TableSchema>,
    stream: Pin<Box<CopyOutStream>>,
    buffer: BytesMut,
    done: bool,
}

impl CopyRows {
    /// Starts copying every row of `table` (its current columns, in order).
    /// `order_by_key` sorts by key, for merge-style comparisons.
    pub async fn start(
        client: &Client,
        table: Arc<TableSchema>,
        order_by_key: bool,
    ) -> Result<Self, SourceError> {
        let columns = table
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let order = if order_by_key {
            let keys: Vec<String> = table.key().map(|c| quote_ident(&c.name)).collect();
            format!(" ORDER BY {}", keys.join(", "))
        } else {
            String::new()
        };
        // A partitioned table holds no rows itself: read through it (its
        // partitions' changes are published as its own). Any other table is
        // read without inheritance children, which are not published with it.
        let partitioned: bool = client
            .query_one(
                "SELECT relkind = 'p' FROM pg_class WHERE oid = $1::text::regclass",
                &[&quote_table(&table.name)],
            )
            .await
            .map_err(|source| SourceError::Query {
                doing: format!("looking up {}", table.name),
                source,
            })?
            .get(0);
        let only = if partitioned { "" } else { "ONLY " };
        let sql = format!(
            "COPY (SELECT {columns} FROM {only}{}{order}) TO STDOUT",
            quote_table(&table.name)
        );
        let stream = client
            .copy_out(sql.as_str())
            .await
            .map_err(|source| SourceError::Query {
                doing: format!("copying rows of {}", table.name),
                source,
            })?;
        Ok(Self {
            table,
            stream: Box::pin(stream),
            buffer: BytesMut::new(),
            done: false,
        })
    }

    /// The next up to `max` rows; `None` at the end of the table.
    pub async fn next_chunk(&mut self, max: usize) -> Result<Option<Vec<Row>>, SourceError> {
        let mut rows = Vec::with_capacity(max.min(4096));
        let mut bytes = 0usize;
        loop {
            while rows.len() < max && bytes < CHUNK_BYTES {
                let Some(end) = memchr::memchr(b'\n', &self.buffer) else {
                    break;
                };
                let line = self.buffer.split_to(end + 1);
                bytes += line.len();
                rows.push(self.parse_line(&line[..end])?);
            }
            if rows.len() >= max || bytes >= CHUNK_BYTES || self.done {
                break;
            }
            match self.stream.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(|source| SourceError::Query {
                        doing: format!("copying rows of {}", self.table.name),
                        source,
                    })?;
                    self.buffer.extend_from_slice(chunk.chunk());
                }
                None => self.done = true,
            }
        }
        if rows.is_empty() && self.done {
            if !self.buffer.is_empty() {
                return Err(SourceError::CopyUnreadable {
                    table: self.table.name.clone(),
                    reason: "it ended in the middle of a row".into(),
                });
            }
            return Ok(None);
        }
        Ok(Some(rows))
    }

    fn parse_line(&self, line: &[u8]) -> Result<Row, SourceError> {
        let table = &self.table;
        let mut row = Vec::with_capacity(table.columns.len());
        let unreadable = |reason| SourceError::CopyUnreadable {
            table: table.name.clone(),
            reason,
        };
        for field in CopyFields::new(line).map_err(unreadable)? {
            let field = field.map_err(unreadable)?;
            if row.len() == table.columns.len() {
                return Err(self.field_count_error(line));
            }
            row.push(column_from_text(table, row.len(), field.as_deref())?);
        }
        if row.len() != table.columns.len() {
            return Err(self.field_count_error(line));
        }
        Ok(row)
    }

    fn field_count_error(&self, line: &[u8]) -> SourceError {
        SourceError::RowShape {
            what: "a COPY line",
            table: self.table.name.clone(),
            got: line.iter().filter(|&&b| b == b'\t').count() + 1,
            want: self.table.columns.len(),
        }
    }
}

/// Opens the read-only repeatable-read transaction a snapshot reads in,
/// importing `exported` (a snapshot exported by slot creation) when given.
pub async fn begin_snapshot(client: &Client, exported: Option<&str>) -> Result<(), SourceError> {
    let import = exported
        .map(|name| format!("SET TRANSACTION SNAPSHOT '{}';", name.replace('\'', "''")))
        .unwrap_or_default();
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {import} {SESSION_SETTINGS}"
        ))
        .await
        .map_err(|source| SourceError::Query {
            doing: "opening the snapshot transaction".into(),
            source,
        })
}

/// Emits every row of `tables` as upserts, `chunk_rows` rows per batch, in
/// the current transaction. Returns the number of rows read.
pub async fn emit_tables(
    client: &Client,
    tables: &[Arc<TableSchema>],
    chunk_rows: usize,
    tx: &mpsc::Sender<ChangeBatch<Lsn>>,
) -> Result<u64, SourceError> {
    let mut total = 0u64;
    for table in tables {
        let started = std::time::Instant::now();
        let mut rows_read = 0u64;
        let mut rows = CopyRows::start(client, table.clone(), false).await?;
        while let Some(chunk) = rows.next_chunk(chunk_rows).await? {
            rows_read += chunk.len() as u64;
            let changes = chunk
                .into_iter()
                .map(|row| Change::Upsert {
                    table: table.clone(),
                    row,
                })
                .collect();
            tx.send(ChangeBatch {
                changes,
                ..ChangeBatch::default()
            })
            .await
            .map_err(|_| SourceError::ConsumerGone)?;
        }
        tracing::info!(table = %table.name, rows = rows_read, seconds = started.elapsed().as_secs_f64(), "snapshot of table read");
        total += rows_read;
    }
    Ok(total)
}
