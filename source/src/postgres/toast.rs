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

use super::catalog::CatalogTable;
use super::setup::{quote_ident, quote_table};
use super::text::parse_value;
use super::{connect, SESSION_SETTINGS};
use crate::error::SourceError;
use kappa_schemas::{Row, TableName, Value};
use std::collections::HashMap;
use tokio_postgres::Client;

/// Fetches current rows by key, for the tables in `fetch` mode.
pub struct ToastFetcher {
    client: Client,
    /// Per table: the SELECT by key, and the names of the columns it returns.
    queries: HashMap<TableName, (String, Vec<String>)>,
}

impl ToastFetcher {
    /// Opens a session for `tables` (those in fetch mode).
    pub async fn open(
        url: &str,
        password: Option<&str>,
        tables: &[&CatalogTable],
    ) -> Result<Self, SourceError> {
        let client = connect(url, password).await?;
        client
            .batch_execute(&SESSION_SETTINGS.replace("SET LOCAL", "SET"))
            .await
            .map_err(|source| SourceError::Query {
                doing: "pinning session settings for TOAST fetches".into(),
                source,
            })?;
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
        Ok(Self { client, queries })
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
            return Err(SourceError::Protocol(format!(
                "no TOAST fetch query for {}",
                table.name
            )));
        };
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = key_text
            .iter()
            .map(|k| k as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let current = self
            .client
            .query_opt(sql.as_str(), &params)
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
            row[i] = match text {
                None => Value::Null,
                Some(text) => parse_value(&column.column_type, &text).map_err(|reason| {
                    SourceError::bad_value(
                        &table.name,
                        &column.name,
                        text.as_str(),
                        &column.source_type,
                        reason,
                    )
                })?,
            };
        }
        Ok(Some(()))
    }
}
