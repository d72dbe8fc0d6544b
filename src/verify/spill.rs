//! Sorting source rows by order key on disk, for sources whose own order is
//! not the order-key order (PostgreSQL keys the database orders differently,
//! MySQL keys ordered by a collation, hashed keys). The merge needs rows in
//! ascending order-key order; a scratch SQLite file keyed by the order key
//! gives that order with disk, not memory, growing with the table.

use super::source::{OrderedRow, CHUNK};
use anyhow::Context;
use kappa_schemas::{row_bytes, TableSchema};
use std::path::Path;
use std::sync::Arc;

/// Order key → row, on disk, read back in order-key order a page at a time.
/// Rows are stored in [`row_bytes`] form, not as Avro: verify must not pass
/// source rows through the encoder whose output it checks.
pub struct SpillSort {
    scratch: rusqlite::Connection,
    table: Arc<TableSchema>,
    /// The last order key handed out (keyset paging).
    after: Option<Vec<u8>>,
    rows: u64,
}

impl SpillSort {
    /// A new, empty scratch file at `path` (an older one is replaced).
    pub fn create(path: &Path, table: &Arc<TableSchema>) -> anyhow::Result<Self> {
        let _ = std::fs::remove_file(path);
        let scratch = rusqlite::Connection::open(path)
            .with_context(|| format!("opening the scratch file {}", path.display()))?;
        scratch.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
             CREATE TABLE spill (ord BLOB PRIMARY KEY, row BLOB NOT NULL) WITHOUT ROWID; BEGIN;",
        )?;
        Ok(Self {
            scratch,
            table: table.clone(),
            after: None,
            rows: 0,
        })
    }

    /// Adds rows. Two rows with one order key are an error: the key is the
    /// table's identity, so that means a hash collision or a broken key.
    pub fn push(&mut self, rows: impl IntoIterator<Item = OrderedRow>) -> anyhow::Result<()> {
        let mut insert = self
            .scratch
            .prepare_cached("INSERT INTO spill (ord, row) VALUES (?1, ?2)")?;
        for (ord, row) in rows {
            let datum = row_bytes::encode(&row);
            insert.execute(rusqlite::params![ord, datum]).with_context(|| {
                format!(
                    "table {}: two rows share one order key (a hashed key colliding, or a key that is not unique)",
                    self.table.name
                )
            })?;
            self.rows += 1;
        }
        Ok(())
    }

    /// Ends the filling; returns how many rows were spilled.
    pub fn finish(&mut self) -> anyhow::Result<u64> {
        self.scratch.execute_batch("COMMIT;")?;
        Ok(self.rows)
    }

    /// The next page of rows in ascending order-key order; `None` at the end.
    pub fn next_chunk(&mut self) -> anyhow::Result<Option<Vec<OrderedRow>>> {
        // Two statements, so that SQLite seeks in the primary key instead of
        // scanning from the start for every page (`?1 IS NULL OR ord > ?1`
        // is not a range it can use).
        let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?));
        let page: Vec<(Vec<u8>, Vec<u8>)> = match &self.after {
            None => self
                .scratch
                .prepare_cached("SELECT ord, row FROM spill ORDER BY ord LIMIT ?1")?
                .query_map([CHUNK as i64], row)?
                .collect::<Result<_, _>>()?,
            Some(after) => self
                .scratch
                .prepare_cached("SELECT ord, row FROM spill WHERE ord > ?1 ORDER BY ord LIMIT ?2")?
                .query_map(rusqlite::params![after, CHUNK as i64], row)?
                .collect::<Result<_, _>>()?,
        };
        match page.last() {
            None => return Ok(None),
            Some((ord, _)) => self.after = Some(ord.clone()),
        }
        page.into_iter()
            .map(|(ord, bytes)| {
                let row = row_bytes::decode(&bytes).map_err(|e| {
                    anyhow::anyhow!("scratch file of table {}: {e}", self.table.name)
                })?;
                Ok((ord, row))
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some)
    }
}
