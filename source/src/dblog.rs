//! The database-independent half of a DBLog re-snapshot (Andreas Andreakis,
//! Ioannis Papapanagiotou, "DBLog", 2020), written once for both readers:
//! which chunk is current and how its watermarks are told apart from other
//! chunks' and other re-snapshots', the chunk's rows read between LOW and
//! HIGH, the keys the stream changed since the request, and what is emitted
//! at HIGH. Each reader's `resnapshot.rs` does the I/O — writing watermarks
//! (a logical message in PostgreSQL, a signal-table row in MySQL) and reading
//! a chunk in key order — and argues there why emitting at HIGH is exact on
//! its database.
//!
//! Guaranteed here: a chunk row whose key a change of the stream touched
//! since the request is never emitted (the stream's own change, at least as
//! new, represents it); every other row of the chunk is emitted once, at its
//! chunk's HIGH; the re-snapshot is finished after a chunk shorter than the
//! chunk size.

mod engine;

pub(crate) use engine::{ChunkRead, ChunkSource, Resnapshot, Resnapshots, Watermark};

use crate::changed_keys::ChangedKeys;
use kappa_schemas::{Change, Row, TableName, TableSchema};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The SQL of one chunk read in key order, as both readers issue it:
/// `SELECT columns FROM table [WHERE (keys) > (after)] ORDER BY keys LIMIT
/// rows`. `columns`, `table` and `keys` come quoted in the database's
/// dialect; `after` holds the placeholders of the last key read (none for
/// the first chunk).
pub(crate) fn chunk_query(
    columns: &[String],
    table: &str,
    keys: &[String],
    after: Option<&[String]>,
    rows: usize,
) -> String {
    let keys = keys.join(", ");
    let mut sql = format!("SELECT {} FROM {table}", columns.join(", "));
    if let Some(after) = after {
        sql.push_str(&format!(" WHERE ({keys}) > ({})", after.join(", ")));
    }
    sql.push_str(&format!(" ORDER BY {keys} LIMIT {rows}"));
    sql
}

/// A re-snapshot attempt's id, which its watermarks carry: the request's
/// position, the process, and an attempt number of the process (and the
/// time, for a later process with the same id). An attempt that starts over
/// after a lost connection reads its predecessor's watermarks again (they
/// lie after the request), and they must not pass for its own: with the
/// same id they did, and the attempt stalled.
pub(crate) fn attempt_id(cap: &impl std::fmt::Display) -> String {
    static ATTEMPTS: AtomicU64 = AtomicU64::new(0);
    let attempt = ATTEMPTS.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{cap}/{}/{attempt}/{nanos}", std::process::id())
}

/// The chunk state of one re-snapshot. `K` is the last key as the reader
/// binds it into the next chunk's `WHERE (key) > (…)`.
#[derive(Debug)]
pub(crate) struct Chunks<K> {
    /// Tells this re-snapshot's watermarks apart from any other's.
    id: String,
    rows_per_chunk: usize,
    /// The current chunk's number (from 1 once the first is begun).
    chunk: u64,
    last_key: Option<K>,
    rows: Vec<Row>,
    changed: ChangedKeys,
    done: bool,
    emitted: u64,
}

impl<K> Chunks<K> {
    /// A re-snapshot of `table` whose watermarks carry `id`, reading
    /// `rows_per_chunk` rows a chunk (at least 1).
    pub(crate) fn new(id: String, table: TableName, rows_per_chunk: usize) -> Self {
        Self {
            id,
            rows_per_chunk: rows_per_chunk.max(1),
            chunk: 0,
            last_key: None,
            rows: Vec::new(),
            changed: ChangedKeys::new(table),
            done: false,
            emitted: 0,
        }
    }

    /// Begins the next chunk; returns the payload its LOW and HIGH
    /// watermarks carry.
    pub(crate) fn begin_chunk(&mut self) -> String {
        self.chunk += 1;
        self.payload()
    }

    /// The current chunk's watermark payload (`id:chunk`).
    pub(crate) fn payload(&self) -> String {
        format!("{}:{}", self.id, self.chunk)
    }

    /// The last key read so far (`None` before the first row).
    pub(crate) fn last_key(&self) -> Option<&K> {
        self.last_key.as_ref()
    }

    pub(crate) fn rows_per_chunk(&self) -> usize {
        self.rows_per_chunk
    }

    /// The chunk's rows as read (in key order), and the key of its last row.
    /// A chunk shorter than the chunk size is the table's last.
    pub(crate) fn chunk_read(&mut self, rows: Vec<Row>, last_key: Option<K>) {
        self.done = rows.len() < self.rows_per_chunk;
        if last_key.is_some() {
            self.last_key = last_key;
        }
        self.rows = rows;
    }

    /// Notes the keys of changes to the table the stream handed over (from
    /// the request on).
    pub(crate) fn observe(&mut self, changes: &[Change]) {
        self.changed.observe(changes);
    }

    /// At the current chunk's HIGH watermark: the chunk's rows whose keys
    /// the stream did not change, as upserts of `schema` (key columns at
    /// `key_columns` of the rows as read), and whether the table is done.
    pub(crate) fn at_high(
        &mut self,
        schema: &Arc<TableSchema>,
        key_columns: &[usize],
    ) -> (Vec<Change>, bool) {
        tracing::debug!(
            chunk = self.chunk,
            rows = self.rows.len(),
            changed = self.changed.len(),
            "high watermark"
        );
        let changes: Vec<Change> = std::mem::take(&mut self.rows)
            .into_iter()
            .filter(|row| !self.changed.touched(row, key_columns))
            .map(|row| Change::Upsert {
                table: schema.clone(),
                row,
            })
            .collect();
        self.emitted = self.emitted.saturating_add(changes.len() as u64);
        (changes, self.done)
    }

    /// Rows emitted so far.
    pub(crate) fn emitted(&self) -> u64 {
        self.emitted
    }
}

/// The tests' table: rows of (id, v) keyed by id (columns are not looked
/// at here).
#[cfg(test)]
fn test_schema() -> Arc<TableSchema> {
    Arc::new(TableSchema {
        name: TableName::new("s", "t"),
        columns: Vec::new(),
        key_columns: vec![0],
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_chunk_query_reads_after_the_last_key_in_key_order() {
        let (columns, keys) = (["a".to_string(), "b".to_string()], ["a".to_string()]);
        assert_eq!(
            super::chunk_query(&columns, "t", &keys, None, 10),
            "SELECT a, b FROM t ORDER BY a LIMIT 10"
        );
        assert_eq!(
            super::chunk_query(&columns, "t", &keys, Some(&["?".to_string()]), 10),
            "SELECT a, b FROM t WHERE (a) > (?) ORDER BY a LIMIT 10"
        );
    }

    use super::test_schema as schema;
    use super::*;
    use kappa_schemas::Value;

    #[test]
    fn two_attempts_at_one_request_have_different_ids() {
        assert_ne!(attempt_id(&"0/17814D8"), attempt_id(&"0/17814D8"));
    }

    fn row(id: i64) -> Row {
        vec![Value::Int(id), Value::Text(format!("v{id}"))]
    }

    #[test]
    fn rows_changed_since_the_request_are_left_to_the_stream() {
        let schema = schema();
        let mut chunks = Chunks::<i64>::new("r".into(), schema.name.clone(), 3);
        assert_eq!(chunks.begin_chunk(), "r:1");
        chunks.observe(&[Change::Upsert {
            table: schema.clone(),
            row: row(2),
        }]);
        chunks.chunk_read(vec![row(1), row(2), row(3)], Some(3));
        let (emitted, finished) = chunks.at_high(&schema, &[0]);
        assert_eq!(
            emitted.iter().map(|c| c.key()).collect::<Vec<_>>(),
            vec![vec![Value::Int(1)], vec![Value::Int(3)]]
        );
        assert!(!finished, "a full chunk is not the last");
        assert_eq!(chunks.last_key(), Some(&3));
        // A key changed after this chunk stays noted for the next ones.
        assert_eq!(chunks.begin_chunk(), "r:2");
        chunks.chunk_read(vec![row(4)], Some(4));
        let (emitted, finished) = chunks.at_high(&schema, &[0]);
        assert_eq!(emitted.len(), 1);
        assert!(finished, "a short chunk is the last");
        assert_eq!(chunks.emitted(), 3);
    }

    #[test]
    fn an_empty_chunk_keeps_the_last_key_and_finishes() {
        let schema = schema();
        let mut chunks = Chunks::<i64>::new("r".into(), schema.name.clone(), 2);
        chunks.begin_chunk();
        chunks.chunk_read(vec![row(1), row(2)], Some(2));
        let _ = chunks.at_high(&schema, &[0]);
        chunks.begin_chunk();
        chunks.chunk_read(Vec::new(), None);
        assert_eq!(chunks.last_key(), Some(&2));
        let (emitted, finished) = chunks.at_high(&schema, &[0]);
        assert!(emitted.is_empty() && finished);
    }
}
