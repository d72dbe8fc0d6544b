//! The materialized table: a SQLite file holding the newest record per key.
//!
//! Layout: `kappa_rows(ord BLOB PRIMARY KEY, key BLOB, value BLOB, partition,
//! offset)` with the Confluent-framed key and value bytes as they are in the
//! topic and `ord`, the canonical order-preserving encoding of the decoded key
//! values ([`crate::order_key`]): rows are identified and ordered by their
//! typed key, which is what `verify` merges on. `kappa_schemas(id, schema)`
//! holds every writer schema the rows use, and `kappa_meta(name, value)` the
//! topic, start and end offsets, the reader schema values resolve to, and
//! counts. The file is thus self-contained: it can be decoded and verified
//! without the registry.
//! A rebuild writes `PATH.partial` and renames it over `PATH` at the end, so a
//! reader never sees a half-built table.

use crate::error::MaterializeError;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

/// Records applied per SQLite transaction.
const BATCH: usize = 10_000;

/// A table being rebuilt.
pub struct SqliteTableBuilder {
    conn: Connection,
    partial: PathBuf,
    path: PathBuf,
    in_batch: usize,
    pub upserts: u64,
    pub tombstones: u64,
}

fn table_error(path: &Path) -> impl Fn(rusqlite::Error) -> MaterializeError + '_ {
    move |e| MaterializeError::Table {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Where a rebuild of `path` is built before it replaces `path`.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    PathBuf::from(partial)
}

impl SqliteTableBuilder {
    /// Starts a fresh table that will replace `path` when finished.
    pub fn create(path: &Path) -> Result<Self, MaterializeError> {
        let partial = partial_path(path);
        if partial.exists() {
            std::fs::remove_file(&partial).map_err(|e| MaterializeError::Table {
                path: partial.display().to_string(),
                reason: format!("removing a leftover partial rebuild: {e}"),
            })?;
        }
        let conn = Connection::open(&partial).map_err(table_error(&partial))?;
        conn.execute_batch(
            // A fresh file renamed into place at the end: no journal, no
            // syncs (a crash leaves only the .partial file, redone next
            // time). Rows are stored in the `ord` B-tree itself (WITHOUT
            // ROWID): one tree to update per record, not a table and an index.
            // The page cache is capped (16 MB), whatever the topic's size.
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -16384;
             CREATE TABLE kappa_rows (ord BLOB PRIMARY KEY, key BLOB NOT NULL, value BLOB NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE kappa_schemas (id INTEGER PRIMARY KEY, schema TEXT NOT NULL);
             CREATE TABLE kappa_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
             BEGIN;",
        )
        .map_err(table_error(&partial))?;
        Ok(Self {
            conn,
            partial,
            path: path.to_path_buf(),
            in_batch: 0,
            upserts: 0,
            tombstones: 0,
        })
    }

    /// Applies one record: the newest value for a key (identified by its
    /// order key `ord`) replaces the older one, a tombstone (`None`) deletes
    /// the key.
    pub fn apply(
        &mut self,
        ord: &[u8],
        key: &[u8],
        value: Option<&[u8]>,
        partition: i32,
        offset: i64,
    ) -> Result<(), MaterializeError> {
        let on_error = table_error(&self.partial);
        match value {
            Some(value) => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO kappa_rows (ord, key, value, partition, offset) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (ord) DO UPDATE SET key = excluded.key, value = excluded.value, partition = excluded.partition, offset = excluded.offset",
                    )
                    .and_then(|mut s| s.execute(params![ord, key, value, partition, offset]))
                    .map_err(&on_error)?;
                self.upserts += 1;
            }
            None => {
                self.conn
                    .prepare_cached("DELETE FROM kappa_rows WHERE ord = ?1")
                    .and_then(|mut s| s.execute(params![ord]))
                    .map_err(&on_error)?;
                self.tombstones += 1;
            }
        }
        self.in_batch += 1;
        if self.in_batch >= BATCH {
            self.conn
                .execute_batch("COMMIT; BEGIN;")
                .map_err(&on_error)?;
            self.in_batch = 0;
        }
        Ok(())
    }

    /// Stores a writer schema the rows refer to.
    pub fn add_schema(&mut self, id: u32, schema: &str) -> Result<(), MaterializeError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO kappa_schemas (id, schema) VALUES (?1, ?2)",
                params![id, schema],
            )
            .map_err(table_error(&self.partial))?;
        Ok(())
    }

    /// Records a fact about the rebuild (topic, end offsets…).
    pub fn set_meta(&mut self, name: &str, value: &str) -> Result<(), MaterializeError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO kappa_meta (name, value) VALUES (?1, ?2)",
                params![name, value],
            )
            .map_err(table_error(&self.partial))?;
        Ok(())
    }

    /// Commits and moves the table into place. Returns the number of live keys.
    pub fn finish(self) -> Result<u64, MaterializeError> {
        let on_error = table_error(&self.partial);
        self.conn.execute_batch("COMMIT;").map_err(&on_error)?;
        let live: i64 = self
            .conn
            .query_row("SELECT count(*) FROM kappa_rows", [], |r| r.get(0))
            .map_err(&on_error)?;
        self.conn.close().map_err(|(_, e)| on_error(e))?;
        std::fs::rename(&self.partial, &self.path).map_err(|e| MaterializeError::Table {
            path: self.path.display().to_string(),
            reason: format!("moving the finished rebuild into place: {e}"),
        })?;
        Ok(live as u64)
    }
}

/// A finished table, opened for reading.
pub struct RebuiltTable {
    conn: Connection,
    path: PathBuf,
}

impl RebuiltTable {
    pub fn open(path: &Path) -> Result<Self, MaterializeError> {
        if !path.exists() {
            return Err(MaterializeError::Table {
                path: path.display().to_string(),
                reason: "does not exist: run `kappa rebuild` first".into(),
            });
        }
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(table_error(path))?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Calls `each` with every (ord, value) pair, in `ord` order (the typed
    /// key's order), streaming: memory holds one row at a time.
    pub fn for_each_row(
        &self,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<(), MaterializeError>,
    ) -> Result<(), MaterializeError> {
        let on_error = table_error(&self.path);
        let mut statement = self
            .conn
            .prepare("SELECT ord, value FROM kappa_rows ORDER BY ord")
            .map_err(&on_error)?;
        let mut rows = statement.query([]).map_err(&on_error)?;
        while let Some(row) = rows.next().map_err(&on_error)? {
            let ord = row
                .get_ref(0)
                .and_then(|v| Ok(v.as_blob()?))
                .map_err(&on_error)?;
            let value = row
                .get_ref(1)
                .and_then(|v| Ok(v.as_blob()?))
                .map_err(&on_error)?;
            each(ord, value)?;
        }
        Ok(())
    }

    /// The value stored for the key with order key `ord`.
    pub fn value(&self, ord: &[u8]) -> Result<Option<Vec<u8>>, MaterializeError> {
        self.conn
            .query_row(
                "SELECT value FROM kappa_rows WHERE ord = ?1",
                params![ord],
                |r| r.get(0),
            )
            .optional()
            .map_err(table_error(&self.path))
    }

    /// Every stored writer schema, by id.
    pub fn schemas(&self) -> Result<Vec<(u32, String)>, MaterializeError> {
        let on_error = table_error(&self.path);
        let mut statement = self
            .conn
            .prepare("SELECT id, schema FROM kappa_schemas ORDER BY id")
            .map_err(&on_error)?;
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))
            .map_err(&on_error)?;
        rows.collect::<Result<_, _>>().map_err(&on_error)
    }

    /// The writer schema with `id`, as stored by the rebuild.
    pub fn schema(&self, id: u32) -> Result<Option<String>, MaterializeError> {
        self.conn
            .query_row(
                "SELECT schema FROM kappa_schemas WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(table_error(&self.path))
    }

    /// A fact recorded by the rebuild.
    pub fn meta(&self, name: &str) -> Result<Option<String>, MaterializeError> {
        self.conn
            .query_row(
                "SELECT value FROM kappa_meta WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(table_error(&self.path))
    }

    pub fn row_count(&self) -> Result<u64, MaterializeError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM kappa_rows", [], |r| r.get(0))
            .map_err(table_error(&self.path))?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_record_wins_and_tombstones_delete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let mut builder = SqliteTableBuilder::create(&path).unwrap();
        builder.apply(b"a", b"ka", Some(b"1"), 0, 0).unwrap();
        builder.apply(b"b", b"kb", Some(b"2"), 0, 1).unwrap();
        builder.apply(b"a", b"ka", Some(b"3"), 0, 2).unwrap();
        builder.apply(b"b", b"kb", None, 0, 3).unwrap();
        builder.apply(b"c", b"kc", None, 0, 4).unwrap();
        assert_eq!(builder.finish().unwrap(), 1);
        let table = RebuiltTable::open(&path).unwrap();
        let mut rows = Vec::new();
        table
            .for_each_row(|k, v| {
                rows.push((k.to_vec(), v.to_vec()));
                Ok(())
            })
            .unwrap();
        assert_eq!(rows, vec![(b"a".to_vec(), b"3".to_vec())]);
        assert!(!dir.path().join("t.sqlite.partial").exists());
    }
}
