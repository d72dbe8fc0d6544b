//! Unchanged TOAST values under `REPLICA IDENTITY DEFAULT`, in `fetch` mode.
//!
//! When an UPDATE leaves a large out-of-line value unchanged, pgoutput sends
//! no value for it ('u'), and with DEFAULT identity there is no old tuple to
//! take it from. In `fetch` mode kappa reads the row's current values by key
//! and fills the missing columns from it.
//!
//! The race, and why it converges: the row may have changed again after the
//! UPDATE being decoded, so the fetched value can be newer than this change.
//! Every such later change is itself in the stream, after this one, and is
//! emitted as a whole row too; the newest record per key — what compaction
//! keeps and a rebuild reads — is therefore the row's true latest state. If
//! the row is gone when fetched, it was deleted later in the stream: this
//! UPDATE is not emitted (it would need a placeholder), and the DELETE that
//! follows writes the tombstone.

use super::catalog::PgTable;
use super::pinned_session;
use super::setup::{quote_ident, quote_table};
use super::text::{column_from_text, text_params};
use crate::error::SourceError;
use kappa_schemas::{Change, Row, TableName};
use std::collections::{HashMap, HashSet};
use tokio_postgres::Client;

/// An upsert whose row still lacks unchanged TOAST values (fetch mode).
#[derive(Debug, Clone)]
struct ToastHole {
    /// Index of the upsert in [`Buffered::changes`].
    change: usize,
    /// Columns without a value.
    columns: Vec<usize>,
    /// The key's text form, for the fetch query.
    key_text: Vec<String>,
}

/// The changes decoded since the last hand-over, with the TOAST holes among
/// them. One value owns both, so a hole only ever indexes the buffer it was
/// recorded in: when a lost connection drops the buffer, its holes go with
/// it (kept apart, stale holes filled another key's upsert, dropped one, or
/// pointed past the end of the next session's changes).
#[derive(Debug, Default)]
pub struct Buffered {
    changes: Vec<Change>,
    holes: Vec<ToastHole>,
}

impl From<Vec<Change>> for Buffered {
    /// Complete changes (re-snapshot rows), no hole among them.
    fn from(changes: Vec<Change>) -> Self {
        Self {
            changes,
            holes: Vec::new(),
        }
    }
}

impl Buffered {
    /// Appends a change whose row is complete.
    pub fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Appends an upsert whose `columns` are holes, to be fetched by the
    /// key `key_text` before it leaves.
    pub fn push_with_holes(&mut self, change: Change, columns: Vec<usize>, key_text: Vec<String>) {
        self.holes.push(ToastHole {
            change: self.changes.len(),
            columns,
            key_text,
        });
        self.changes.push(change);
    }

    /// The changes buffered, holes still unfilled.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether some upsert still waits for a fetch.
    pub fn has_holes(&self) -> bool {
        !self.holes.is_empty()
    }

    /// Empties the buffer, holes and all.
    pub fn clear(&mut self) {
        self.changes.clear();
        self.holes.clear();
    }

    /// The changes, every hole filled by key from `fetcher`; an upsert whose
    /// row is gone is dropped (its DELETE follows in the stream, see the
    /// module docs).
    pub async fn into_changes(
        self,
        fetcher: Option<&ToastFetcher>,
    ) -> Result<Vec<Change>, SourceError> {
        let Self { mut changes, holes } = self;
        if holes.is_empty() {
            return Ok(changes);
        }
        let Some(fetcher) = fetcher else {
            return Err(SourceError::Bug("TOAST holes without a fetcher".into()));
        };
        let mut gone = HashSet::new();
        for hole in holes {
            let Some(Change::Upsert { table, row }) = changes.get_mut(hole.change) else {
                return Err(SourceError::Bug(
                    "a TOAST hole does not point at an upsert".into(),
                ));
            };
            if fetcher
                .fill(table, row, &hole.key_text, &hole.columns)
                .await?
                .is_none()
            {
                gone.insert(hole.change);
            }
        }
        if !gone.is_empty() {
            let mut index = 0;
            changes.retain(|_| {
                let keep = !gone.contains(&index);
                index += 1;
                keep
            });
        }
        Ok(changes)
    }
}

/// Fetches current rows by key, for the tables in `fetch` mode.
/// What the fetch session is for, in its errors.
const FETCH_SESSION: &str = "TOAST fetches";

pub struct ToastFetcher {
    client: Client,
    /// Where the session was opened, to open it again after a restart.
    url: String,
    password: Option<String>,
    /// Per table: the SELECT by key, and the names of the columns it returns.
    queries: HashMap<TableName, (String, Vec<String>)>,
}

impl ToastFetcher {
    /// Opens a session for `tables` (those in fetch mode).
    pub async fn open(
        url: &str,
        password: Option<&str>,
        tables: &[&PgTable],
    ) -> Result<Self, SourceError> {
        let client = pinned_session(url, password, FETCH_SESSION).await?;
        let queries = tables
            .iter()
            .map(|t| {
                let schema = &t.schema;
                let columns: Vec<String> = schema
                    .columns
                    .iter()
                    .map(|c| format!("{}::text", quote_ident(&c.name)))
                    .collect();
                let filter: Vec<String> = schema
                    .key_columns
                    .iter()
                    .enumerate()
                    .map(|(n, &i)| {
                        format!(
                            "{} = ${}::text::{}",
                            quote_ident(&schema.columns[i].name),
                            n + 1,
                            t.sql_types[i]
                        )
                    })
                    .collect();
                let sql = format!(
                    "SELECT {} FROM {} WHERE {}",
                    columns.join(", "),
                    quote_table(&schema.name),
                    filter.join(" AND ")
                );
                let names = schema.columns.iter().map(|c| c.name.clone()).collect();
                (schema.name.clone(), (sql, names))
            })
            .collect();
        Ok(Self {
            client,
            url: url.to_string(),
            password: password.map(str::to_string),
            queries,
        })
    }

    /// Opens the session again when the server closed it (a PostgreSQL
    /// restart, a terminated backend); the queries stay. The stream calls
    /// this before each session, so a fetch session lost with the
    /// replication connection is back when streaming resumes.
    pub async fn reopen_if_closed(&mut self) -> Result<(), SourceError> {
        if self.client.is_closed() {
            self.client =
                pinned_session(&self.url, self.password.as_deref(), FETCH_SESSION).await?;
            tracing::info!("TOAST fetch session reopened");
        }
        Ok(())
    }

    /// Whether `table` is in fetch mode.
    pub fn covers(&self, table: &TableName) -> bool {
        self.queries.contains_key(table)
    }

    /// Fills the `holes` of `row` (column indices) from the current row with
    /// the same key. `None`: the row no longer exists.
    pub async fn fill(
        &self,
        table: &kappa_schemas::TableSchema,
        row: &mut Row,
        key_text: &[String],
        holes: &[usize],
    ) -> Result<Option<()>, SourceError> {
        let Some((sql, names)) = self.queries.get(&table.name) else {
            return Err(SourceError::Bug(format!(
                "no TOAST fetch query for {}",
                table.name
            )));
        };
        let current = self
            .client
            .query_opt(sql.as_str(), &text_params(key_text))
            .await
            .map_err(|source| SourceError::Query {
                doing: format!("fetching an unchanged TOAST value of {}", table.name),
                source,
            })?;
        let Some(current) = current else {
            return Ok(None);
        };
        for &i in holes {
            let column = &table.columns[i];
            let Some(at) = names.iter().position(|n| n == &column.name) else {
                return Err(SourceError::Unsupported {
                    table: table.name.clone(),
                    reason: format!(
                        "column {} was added after kappa started and its unchanged TOAST value cannot be fetched; restart kappa",
                        column.name
                    ),
                });
            };
            let text: Option<String> = current.get(at);
            row[i] = column_from_text(table, i, text.as_deref())?;
        }
        Ok(Some(()))
    }
}
