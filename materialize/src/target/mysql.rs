//! The MySQL/MariaDB rebuild target: a real InnoDB table with typed columns
//! (see [`super::mysql_types`] for the types), built as the PostgreSQL target
//! builds its table.
//!
//! Each batch is reduced to the newest record per key and applied in one
//! transaction: every key of the batch is deleted, then its live rows are
//! inserted, in statements of bounded size (placeholders and bytes). The
//! table is built under a scratch name and swapped in with one `RENAME
//! TABLE` (atomic: a reader sees the old table or the new one), the old one
//! dropped after. The session runs in strict mode, so a value the column
//! cannot hold is refused, never truncated or zeroed.

use super::mysql_types::{self, column_parameter};
use super::shape::{self, TargetShape, TypeMapping};
use super::{Applied, Finishing, TargetWriter, Written};
use crate::resolve::DecodedRecord;
use anyhow::{bail, Context};
use kappa_schemas::{AvroSchema, TableName, Value};
use kappa_source::mysql::{quote_ident, quote_table};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Params, Value as MyValue};
use std::collections::HashMap;

/// Placeholders per statement (the protocol allows 65,535).
const PLACEHOLDERS: usize = 30_000;
/// Parameter bytes per statement, well under the default
/// `max_allowed_packet` (16 MB on MariaDB 10.11, 64 MB on MySQL 8).
const STATEMENT_BYTES: usize = 4 << 20;
/// Longest comment MySQL keeps on a table.
const COMMENT_CHARS: usize = 2048;

/// `mysql://…/db?table=t` (or `table=db.t`) → connection URL and table.
pub fn parse_url(into: &str) -> anyhow::Result<(String, TableName)> {
    let (base, query) = into.split_once('?').unwrap_or((into, ""));
    let mut table = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("table=") {
            Some(name) => table = Some(name.to_string()),
            None => rest.push(pair),
        }
    }
    let example = "mysql://user@host:3306/db?table=orders_rebuilt";
    let Some(table) = table.filter(|t| !t.is_empty()) else {
        bail!(
            "--into {}: name the target table, e.g. {example}",
            redact(into)
        );
    };
    let table = match table.split_once('.') {
        Some(_) => TableName::parse(&table).map_err(anyhow::Error::msg)?,
        None => {
            let database = base
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once('/'))
                .map(|(_, db)| db)
                .filter(|db| !db.is_empty())
                .with_context(|| {
                    format!(
                        "--into {}: name the database in the URL or the table, e.g. {example}",
                        redact(into)
                    )
                })?;
            TableName::new(database, table)
        }
    };
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, table))
}

/// The URL with any password replaced, for messages.
pub use kappa_source::redact_url as redact;

/// Connects a session for writing: UTC (TIMESTAMP values are UTC), utf8mb4,
/// strict mode. The password comes from the URL or `password`.
pub async fn connect(url: &str, password: Option<&str>) -> anyhow::Result<Conn> {
    let opts = Opts::from_url(url)
        .map_err(|e| anyhow::anyhow!("MySQL URL {} is invalid: {e}", redact(url)))?;
    let mut builder = OptsBuilder::from_opts(opts);
    if let Some(password) = password {
        builder = builder.pass(Some(password.to_string()));
    }
    let mut conn = Conn::new(builder)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    conn.query_drop(
        "SET NAMES utf8mb4, time_zone = '+00:00', \
         sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'",
    )
    .await
    .context("pinning the session's time zone, character set and strict mode")?;
    Ok(conn)
}

/// Derives the target shape from the latest value and key schemas.
pub fn shape(value: &AvroSchema, key: &AvroSchema) -> anyhow::Result<TargetShape> {
    let mut shape = shape::derive(
        value,
        key,
        &TypeMapping {
            known_source_type: mysql_types::known_source_type,
            avro_sql_type: mysql_types::avro_sql_type,
        },
    )?;
    mysql_types::bound_key_columns(&mut shape);
    Ok(shape)
}

/// A table being rebuilt in MySQL/MariaDB.
pub struct MysqlTableBuilder {
    conn: Conn,
    target: TableName,
    building: TableName,
    shape: TargetShape,
    pub upserts: u64,
    pub tombstones: u64,
}

fn scratch_name(target: &TableName, suffix: &str) -> TableName {
    let base: String = target.table.chars().take(64 - suffix.len()).collect();
    TableName::new(target.schema.clone(), format!("{base}{suffix}"))
}

impl MysqlTableBuilder {
    /// Creates the scratch table, replacing a leftover from a failed run.
    pub async fn create(
        mut conn: Conn,
        target: TableName,
        shape: TargetShape,
    ) -> anyhow::Result<Self> {
        let building = scratch_name(&target, "__kappa_rebuild");
        let columns = shape.column_definitions(quote_ident);
        let key = shape.key_names(quote_ident);
        let doing = || format!("creating {building} to rebuild {target} into");
        conn.query_drop(format!("DROP TABLE IF EXISTS {}", quote_table(&building)))
            .await
            .with_context(doing)?;
        conn.query_drop(format!(
            "CREATE TABLE {} ({}, PRIMARY KEY ({})) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            quote_table(&building),
            columns.join(", "),
            key.join(", "),
        ))
        .await
        .with_context(doing)?;
        Ok(Self {
            conn,
            target,
            building,
            shape,
            upserts: 0,
            tombstones: 0,
        })
    }

    /// Applies a batch in one transaction: the newest record per key wins.
    pub async fn apply(&mut self, batch: &[DecodedRecord]) -> anyhow::Result<()> {
        let mut newest: HashMap<&[u8], &DecodedRecord> = HashMap::with_capacity(batch.len());
        for record in batch {
            match &record.row {
                Some(_) => self.upserts += 1,
                None => self.tombstones += 1,
            }
            newest.insert(&record.ord, record);
        }
        let records: Vec<&DecodedRecord> = newest.into_values().collect();
        let width = self.shape.columns.len();
        if let Some(bad) = records
            .iter()
            .find(|r| r.row.as_ref().is_some_and(|row| row.len() != width))
        {
            bail!(
                "a decoded row has {} fields for {width} columns",
                bad.row.as_ref().map_or(0, Vec::len)
            );
        }
        let building = self.building.clone();
        let context = || format!("applying a batch to {building}");
        self.conn
            .query_drop("START TRANSACTION")
            .await
            .with_context(context)?;
        self.delete_keys(&records).await?;
        self.insert_rows(&records).await?;
        self.conn.query_drop("COMMIT").await.with_context(context)?;
        Ok(())
    }

    async fn delete_keys(&mut self, records: &[&DecodedRecord]) -> anyhow::Result<()> {
        let key_width = self.shape.key.len();
        let keys = self.shape.key_names(quote_ident);
        let tuple = format!("({})", vec!["?"; key_width].join(", "));
        for chunk in records.chunks((PLACEHOLDERS / key_width.max(1)).max(1)) {
            let mut params = Vec::with_capacity(chunk.len() * key_width);
            for record in chunk {
                for (&i, value) in self.shape.key.iter().zip(&record.key) {
                    let sql_type = &self.shape.columns[i].sql_type;
                    params.push(
                        column_parameter(sql_type, value)
                            .unwrap_or_else(|text| text_parameter(&text)),
                    );
                }
            }
            let sql = format!(
                "DELETE FROM {} WHERE ({}) IN ({})",
                quote_table(&self.building),
                keys.join(", "),
                vec![tuple.as_str(); chunk.len()].join(", ")
            );
            self.conn
                .exec_drop(sql, Params::Positional(params))
                .await
                .with_context(|| format!("deleting a batch's keys from {}", self.building))?;
        }
        Ok(())
    }

    async fn insert_rows(&mut self, records: &[&DecodedRecord]) -> anyhow::Result<()> {
        let width = self.shape.columns.len();
        let columns: Vec<String> = self
            .shape
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        let tuple = format!("({})", vec!["?"; width].join(", "));
        let rows: Vec<&DecodedRecord> = records
            .iter()
            .copied()
            .filter(|r| r.row.is_some())
            .collect();
        let mut start = 0;
        while start < rows.len() {
            let (mut params, mut bytes, mut end) = (Vec::new(), 0usize, start);
            while end < rows.len()
                && (end == start
                    || (params.len() + width <= PLACEHOLDERS && bytes < STATEMENT_BYTES))
            {
                for (column, value) in self
                    .shape
                    .columns
                    .iter()
                    .zip(rows[end].row.iter().flatten())
                {
                    let param = column_parameter(&column.sql_type, value)
                        .unwrap_or_else(|text| text_parameter(&text));
                    bytes += match &param {
                        MyValue::Bytes(b) => b.len(),
                        _ => 8,
                    };
                    params.push(param);
                }
                end += 1;
            }
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                quote_table(&self.building),
                columns.join(", "),
                vec![tuple.as_str(); end - start].join(", ")
            );
            if let Err(e) = self.conn.exec_drop(sql, Params::Positional(params)).await {
                return Err(self.refused(e, &rows[start..end]));
            }
            start = end;
        }
        Ok(())
    }

    /// The server refused some rows: name the table, and the first key and
    /// column holding a value sent as text (the usual cause), with the
    /// server's own message (which names the column).
    fn refused(&self, error: mysql_async::Error, rows: &[&DecodedRecord]) -> anyhow::Error {
        let suspect = rows.iter().find_map(|r| {
            r.row.iter().flatten().enumerate().find_map(|(i, value)| {
                let textual = matches!(value, Value::Text(_));
                let text_column = ["char", "varchar", "longtext", "enum", "set", "json"]
                    .iter()
                    .any(|t| self.shape.columns[i].sql_type.starts_with(t));
                let unrepresentable =
                    column_parameter(&self.shape.columns[i].sql_type, value).is_err();
                ((textual && !text_column) || unrepresentable).then(|| {
                    let key: Vec<String> = r.key.iter().map(ToString::to_string).collect();
                    format!(
                        "; key ({}) column {} holds {value}, which a {} column may not accept",
                        key.join(", "),
                        self.shape.columns[i].name,
                        self.shape.columns[i].sql_type
                    )
                })
            })
        });
        anyhow::anyhow!(
            "inserting rows into {} (rebuilding {}): {error}{}",
            self.building,
            self.target,
            suspect.unwrap_or_default()
        )
    }

    /// Swaps the finished table in for the target with one `RENAME TABLE`
    /// and returns the number of live rows.
    pub async fn finish(mut self, comment: &str) -> anyhow::Result<u64> {
        let target = quote_table(&self.target);
        let building = quote_table(&self.building);
        let comment: String = comment.chars().take(COMMENT_CHARS).collect();
        let doing = || format!("swapping the rebuilt table in as {}", self.target);
        self.conn
            .query_drop(format!(
                "ALTER TABLE {building} COMMENT = '{}'",
                comment.replace('\\', "\\\\").replace('\'', "''")
            ))
            .await
            .with_context(doing)?;
        let exists: Option<u64> = self
            .conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                (&self.target.schema, &self.target.table),
            )
            .await
            .with_context(doing)?;
        if exists.unwrap_or(0) > 0 {
            let old = quote_table(&scratch_name(&self.target, "__kappa_old"));
            self.conn
                .query_drop(format!("DROP TABLE IF EXISTS {old}"))
                .await
                .with_context(doing)?;
            self.conn
                .query_drop(format!(
                    "RENAME TABLE {target} TO {old}, {building} TO {target}"
                ))
                .await
                .with_context(doing)?;
            self.conn
                .query_drop(format!("DROP TABLE {old}"))
                .await
                .with_context(doing)?;
        } else {
            self.conn
                .query_drop(format!("RENAME TABLE {building} TO {target}"))
                .await
                .with_context(doing)?;
        }
        let live: Option<u64> = self
            .conn
            .query_first(format!("SELECT COUNT(*) FROM {target}"))
            .await?;
        Ok(live.unwrap_or(0))
    }

    /// Drops the scratch table (a failed or refused rebuild leaves nothing).
    pub async fn discard(mut self) {
        let building = quote_table(&self.building);
        if let Err(e) = self
            .conn
            .query_drop(format!("DROP TABLE IF EXISTS {building}"))
            .await
        {
            tracing::warn!(table = %self.building, error = %e, "could not drop the scratch table of an abandoned rebuild");
        }
    }
}

/// Records per MySQL transaction.
const MYSQL_BATCH: usize = 5_000;

/// The MySQL/MariaDB target behind [`TargetWriter`]: records gather into
/// transactions of [`MYSQL_BATCH`].
pub struct MysqlWriter {
    builder: MysqlTableBuilder,
    pending: Vec<DecodedRecord>,
}

impl MysqlWriter {
    /// Creates the scratch table for `table` on the server at `url`, typed
    /// from the value schema `value` and the key schema `key`.
    pub async fn open(
        url: &str,
        password: Option<&str>,
        table: &TableName,
        value: &AvroSchema,
        key: &AvroSchema,
    ) -> anyhow::Result<Self> {
        let shape = shape(value, key)?;
        let conn = connect(url, password).await?;
        Ok(Self {
            builder: MysqlTableBuilder::create(conn, table.clone(), shape).await?,
            pending: Vec::with_capacity(MYSQL_BATCH),
        })
    }
}

impl TargetWriter for MysqlWriter {
    const KEEPS_RECORD_BYTES: bool = false;

    async fn apply(&mut self, batch: Vec<Applied>) -> anyhow::Result<()> {
        self.pending.extend(batch.into_iter().map(|a| a.record));
        if self.pending.len() >= MYSQL_BATCH {
            self.builder.apply(&self.pending).await?;
            self.pending.clear();
        }
        Ok(())
    }

    async fn finish(mut self, end: Finishing<'_>) -> anyhow::Result<Written> {
        if !self.pending.is_empty() {
            self.builder.apply(&self.pending).await?;
        }
        let (upserts, tombstones) = (self.builder.upserts, self.builder.tombstones);
        let live_keys = self.builder.finish(&end.table_comment()?).await?;
        Ok(Written {
            upserts,
            tombstones,
            live_keys,
        })
    }

    async fn abort(self) {
        self.builder.discard().await;
    }
}

fn text_parameter(text: &str) -> MyValue {
    MyValue::Bytes(text.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_urls_name_their_table_and_hide_passwords() {
        let (url, table) = parse_url("mysql://u:secret@h:3306/db?table=t_rebuilt").unwrap();
        assert_eq!(url, "mysql://u:secret@h:3306/db");
        assert_eq!(table, TableName::new("db", "t_rebuilt"));
        let (_, table) = parse_url("mysql://u@h:3306/?table=other.t").unwrap();
        assert_eq!(table, TableName::new("other", "t"));
        let err = parse_url("mysql://u:secret@h:3306/?table=t").unwrap_err();
        assert!(!format!("{err:#}").contains("secret"), "{err:#}");
        assert!(parse_url("mysql://u@h/db").is_err());
        assert_eq!(redact("mysql://u:pw@h/db"), "mysql://u:***@h/db");
    }
}
