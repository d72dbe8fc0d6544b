//! Undoing the published pieces of a transaction the server never committed.
//!
//! A large transaction's changes leave in pieces before its commit
//! ([`PIECE`]), so memory holds one piece. That is safe because the binlog
//! holds a transaction only once it commits — except at the end of a file
//! the server was killed while writing (see `truncated.rs`): its crash
//! recovery rolls back the transaction whose events end mid-way, and kappa
//! may already have published pieces of it.
//!
//! So each change in the pending piece keeps its key's before image (none
//! for a key the change inserted), which costs a move of a row the decoder
//! made anyway. When a piece is published without its commit, those images
//! are kept until the commit, with the key of each change that had none
//! (copied into one buffer: a 10,000-row insert costs no allocation per
//! row). Only if the transaction is cut off are they turned into
//! *restores*, the changes that put each key back as it was (an upsert of
//! the before image, or a tombstone); undoing emits, per key, the restore of its *first* change in the
//! transaction, which is exactly the state the rollback left. A key's first
//! change that inserts it found the key absent (the insert would otherwise
//! have failed), so its tombstone is exact too.
//!
//! Bounded: at most [`UNDO_BYTES`] of row data are kept. A transaction that
//! publishes more is not undoable; only if it is also the one cut off does
//! kappa stop (`SourceError::BinlogTruncatedUndoTooLarge`) instead of
//! leaving its rows on the topic.

use super::{Row, PIECE};
use kappa_schemas::{Change, TableSchema, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// The most row data kept to undo the published pieces of one transaction.
pub(super) const UNDO_BYTES: usize = 64 << 20;

/// Entries whose room the buffers keep between transactions.
const KEEP_CAPACITY: usize = PIECE * 32;

/// The restores of the current transaction's changes (see the module docs).
#[derive(Default)]
pub(super) struct Undo {
    /// One per change of the pending (unpublished) piece, in order: its
    /// key's before image, `None` where the key was absent.
    pending: Vec<Option<Row>>,
    /// Of the pieces published since the last commit, in order: each
    /// change's table (an index into `tables`) and before image.
    published: Vec<(usize, Option<Row>)>,
    /// The tables of `published`. An index, not an `Arc` per change: the
    /// consumer drops each change's `Arc` on its own thread, and a second
    /// count per row on that shared counter costs the stream a tenth of
    /// its speed.
    tables: Vec<Arc<TableSchema>>,
    /// The keys of the `published` entries without a before image, one after
    /// another (each `key_columns.len()` values of its table): one buffer,
    /// not a vector per inserted row, so that keeping them costs the hot
    /// path next to nothing.
    absent_keys: Vec<Value>,
    /// Row-event bytes behind `published`.
    bytes: usize,
    /// More than [`UNDO_BYTES`] were published: `published` was dropped.
    overflowed: bool,
}

/// Undoing needs more than [`UNDO_BYTES`] of rows kappa did not keep.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct UndoTooLarge {
    /// The row data published before kappa stopped keeping it.
    pub bytes: usize,
}

impl Undo {
    /// The before image of the change just added to the pending piece
    /// (`None`: its key was absent before it).
    pub(super) fn note(&mut self, before: Option<Row>) {
        self.pending.push(before);
    }

    /// The pending piece, `changes` (of `bytes` row data), was published
    /// without a commit: what restores them is kept until the commit.
    pub(super) fn published(&mut self, changes: &[Change], bytes: usize) {
        debug_assert_eq!(
            changes.len(),
            self.pending.len(),
            "one before image per change"
        );
        if self.overflowed {
            self.pending.clear();
            return;
        }
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > UNDO_BYTES {
            self.overflowed = true;
            self.published = Vec::new();
            self.absent_keys = Vec::new();
            self.pending.clear();
            return;
        }
        self.published.reserve(changes.len());
        let mut pending = std::mem::take(&mut self.pending);
        for (change, before) in changes.iter().zip(pending.drain(..)) {
            if before.is_none() {
                match change {
                    Change::Upsert { table, row } => self
                        .absent_keys
                        .extend(table.key_columns.iter().map(|&i| row[i].clone())),
                    Change::Delete { key, .. } => self.absent_keys.extend(key.iter().cloned()),
                }
            }
            let table = self.table_index(change.table());
            self.published.push((table, before));
        }
        self.pending = pending;
    }

    /// The index of `table` in `tables`, added if new (a transaction
    /// touches few tables, most often the last one again).
    fn table_index(&mut self, table: &Arc<TableSchema>) -> usize {
        match self.tables.iter().rposition(|t| Arc::ptr_eq(t, table)) {
            Some(at) => at,
            None => {
                self.tables.push(table.clone());
                self.tables.len() - 1
            }
        }
    }

    /// The transaction committed, or the stream resumes before it (its
    /// pieces will be read and noted again): nothing to undo.
    pub(super) fn clear(&mut self) {
        self.pending.clear();
        // The buffers are reused by the next transaction, up to a size.
        self.published.clear();
        self.published.shrink_to(KEEP_CAPACITY);
        self.absent_keys.clear();
        self.absent_keys.shrink_to(KEEP_CAPACITY);
        self.tables.clear();
        self.bytes = 0;
        self.overflowed = false;
    }

    /// The changes that undo every published piece: per key, the restore of
    /// its first change (an upsert of its before image, or a tombstone where
    /// it was absent; the pending piece was never published). Leaves the
    /// undo empty.
    pub(super) fn take(&mut self) -> Result<Vec<Change>, UndoTooLarge> {
        let bytes = self.bytes;
        let overflowed = self.overflowed;
        let published = std::mem::take(&mut self.published);
        let tables = std::mem::take(&mut self.tables);
        let mut absent_keys = std::mem::take(&mut self.absent_keys).into_iter();
        self.clear();
        if overflowed {
            return Err(UndoTooLarge { bytes });
        }
        let mut seen = HashSet::with_capacity(published.len().min(PIECE * 16));
        let mut restores = Vec::new();
        for (table, before) in published {
            let table = tables[table].clone();
            let restore = match before {
                Some(row) => Change::Upsert { table, row },
                None => {
                    let key: Vec<Value> =
                        absent_keys.by_ref().take(table.key_columns.len()).collect();
                    Change::Delete { table, key }
                }
            };
            if seen.insert(key_of(&restore)) {
                restores.push(restore);
            }
        }
        Ok(restores)
    }
}

/// A change's table and key, as a comparable string (values have no `Hash`).
fn key_of(change: &Change) -> String {
    format!("{}\u{0}{:?}", change.table().name, change.key())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kappa_schemas::TableName;

    fn schema() -> Arc<TableSchema> {
        Arc::new(TableSchema {
            name: TableName::new("db", "t"),
            columns: Vec::new(),
            key_columns: vec![0],
        })
    }

    fn row(id: i64, v: &str) -> Row {
        vec![Value::Int(id), Value::Text(v.into())]
    }

    fn upsert(id: i64, v: &str) -> Change {
        Change::Upsert {
            table: schema(),
            row: row(id, v),
        }
    }

    fn delete(id: i64) -> Change {
        Change::Delete {
            table: schema(),
            key: vec![Value::Int(id)],
        }
    }

    fn shown(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                Change::Upsert { row, .. } => format!("upsert {:?}", row),
                Change::Delete { key, .. } => format!("delete {:?}", key),
            })
            .collect()
    }

    #[test]
    fn undo_restores_each_key_as_before_its_first_change() {
        let mut undo = Undo::default();
        // Piece 1: UPDATE 1 'a'→'b', INSERT 2, DELETE 3 (was 'c').
        let piece = [upsert(1, "b"), upsert(2, "new"), delete(3)];
        undo.note(Some(row(1, "a")));
        undo.note(None);
        undo.note(Some(row(3, "c")));
        undo.published(&piece, 100);
        // Piece 2: UPDATE 1 'b'→'x' (its restore 'b' is not the state before
        // the transaction), re-INSERT 3.
        let piece = [upsert(1, "x"), upsert(3, "again")];
        undo.note(Some(row(1, "b")));
        undo.note(None);
        undo.published(&piece, 100);
        // Pending, never published: UPDATE 4.
        undo.note(Some(row(4, "d")));
        let restores = undo.take().expect("within the bound");
        assert_eq!(
            shown(&restores),
            [
                "upsert [Int(1), Text(\"a\")]",
                "delete [Int(2)]",
                "upsert [Int(3), Text(\"c\")]",
            ]
        );
        assert!(undo.take().expect("empty").is_empty());
    }

    #[test]
    fn a_commit_drops_what_it_kept() {
        let mut undo = Undo::default();
        undo.note(None);
        undo.published(&[upsert(1, "new")], 10);
        undo.clear();
        assert!(undo.take().expect("empty").is_empty());
    }

    #[test]
    fn more_than_the_bound_is_refused_not_half_undone() {
        let mut undo = Undo::default();
        undo.note(None);
        undo.published(&[upsert(1, "new")], UNDO_BYTES);
        undo.note(None);
        undo.published(&[upsert(2, "new")], 1);
        // Later pieces of the same transaction are not kept either.
        undo.note(None);
        undo.published(&[upsert(3, "new")], 1);
        assert_eq!(
            undo.take().map(|c| c.len()),
            Err(UndoTooLarge {
                bytes: UNDO_BYTES + 1
            })
        );
        // The next transaction starts afresh.
        undo.note(None);
        undo.published(&[upsert(4, "new")], 1);
        assert_eq!(undo.take().map(|c| c.len()), Ok(1));
    }
}
