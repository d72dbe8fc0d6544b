//! The oracle's SQL for MySQL/MariaDB (see [`super::oracle`]).
//!
//! Strings compare as their UTF-8 bytes (`CAST(CONVERT(c USING utf8mb4) AS
//! BINARY)`): byte for byte, whatever each side's character set and
//! collation (a case-insensitive or PAD SPACE collation would call `'a'` and
//! `'A '` equal). Hashes reproduce `kappa_schemas::mask`'s recipe: SHA-256
//! over the salt followed by the value's bytes — a string's UTF-8, a binary
//! value's raw bytes, anything else the text of kappa's `Value` display
//! (`date(N days)`, `timestamp(N µs)`, …) written here in SQL. The session
//! runs in UTC, as the reader's, so TIMESTAMP values read as the reader
//! reads them.

use super::oracle::{OracleServer, SourceColumn};
use crate::rebuild::Target;
use anyhow::Context;
use kappa_materialize::target::mysql as mysql_target;
use kappa_schemas::{ColumnType, TableName};
use kappa_source::mysql::catalog::load_table;
use kappa_source::mysql::{quote_ident, quote_table};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Value as My};
use std::collections::HashMap;

/// String types: compared as their UTF-8 bytes.
const STRINGS: &[&str] = &[
    "char",
    "varchar",
    "tinytext",
    "text",
    "mediumtext",
    "longtext",
    "enum",
    "set",
    "json",
];
/// Types whose values compare as themselves when both sides have them.
const NATIVE: &[&str] = &[
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "bigint",
    "decimal",
    "float",
    "double",
    "date",
    "datetime",
    "timestamp",
    "time",
    "year",
    "bit",
    "binary",
    "varbinary",
    "tinyblob",
    "blob",
    "mediumblob",
    "longblob",
];

pub struct MysqlServer {
    conn: Conn,
    url: String,
}

impl MysqlServer {
    pub async fn connect(url: &str, password: Option<String>) -> anyhow::Result<Self> {
        let conn = mysql_target::connect(url, password.as_deref()).await?;
        Ok(Self {
            conn,
            url: url.to_string(),
        })
    }
}

fn blob_class(t: &str) -> &str {
    match t {
        "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => "blob",
        other => other,
    }
}

impl OracleServer for MysqlServer {
    async fn source_columns(&mut self, table: &TableName) -> anyhow::Result<Vec<SourceColumn>> {
        let catalog = load_table(&mut self.conn, table).await?;
        let types = self.type_names(table).await?;
        Ok(catalog
            .schema
            .columns
            .iter()
            .map(|c| SourceColumn {
                name: c.name.clone(),
                column_type: c.column_type.clone(),
                type_name: types.get(&c.name).cloned().unwrap_or_default(),
            })
            .collect())
    }

    fn source_from(&self, table: &TableName) -> String {
        quote_table(table)
    }

    async fn ensure_schema(&mut self, schema: &str) -> anyhow::Result<()> {
        self.conn
            .query_drop(format!(
                "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                quote_ident(schema)
            ))
            .await
            .with_context(|| format!("creating database {schema}"))
    }

    async fn type_names(&mut self, table: &TableName) -> anyhow::Result<HashMap<String, String>> {
        let rows: Vec<(String, String)> = self
            .conn
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&table.schema, &table.table),
            )
            .await
            .with_context(|| format!("reading the column types of {table}"))?;
        Ok(rows
            .into_iter()
            .map(|(c, t)| (c, t.to_ascii_lowercase()))
            .collect())
    }

    fn quote_ident(&self, name: &str) -> String {
        quote_ident(name)
    }

    fn quote_table(&self, table: &TableName) -> String {
        quote_table(table)
    }

    fn native(&self, source_type: &str, rebuilt_type: &str) -> bool {
        // Strings are never native: they go through their UTF-8 bytes.
        blob_class(source_type) == blob_class(rebuilt_type) && NATIVE.contains(&source_type)
    }

    fn text(&self, expr: &str) -> String {
        format!("CAST(CONVERT(CAST({expr} AS CHAR) USING utf8mb4) AS BINARY)")
    }

    fn hash(&self, column: &SourceColumn, salt: &str) -> Option<String> {
        let c = quote_ident(&column.name);
        let binary = |text: String| format!("CAST({text} AS BINARY)");
        let micros = format!("TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {c})");
        // The zero date is the reader's -infinity.
        let zero = |kind: &str, expr: String| {
            format!("CASE WHEN {c} = 0 THEN '{kind}(-infinity)' ELSE {expr} END")
        };
        let bytes = match column.column_type {
            _ if STRINGS.contains(&column.type_name.as_str()) => self.text(&c),
            // The reader carries a TIME as signed microseconds (an Int).
            _ if column.type_name == "time" => binary(format!(
                "CAST(CAST(TIME_TO_SEC({c}) * 1000000 AS SIGNED) AS CHAR)"
            )),
            ColumnType::Bytes => binary(c.clone()),
            ColumnType::Text | ColumnType::Json | ColumnType::NumericText => self.text(&c),
            ColumnType::Int16
            | ColumnType::Int32
            | ColumnType::Int64
            | ColumnType::Decimal { .. }
            | ColumnType::Money
            | ColumnType::Uuid => binary(format!("CAST({c} AS CHAR)")),
            ColumnType::Bool => binary(format!(
                "CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END"
            )),
            ColumnType::Date => binary(zero(
                "date",
                format!("CONCAT('date(', DATEDIFF({c}, '1970-01-01'), ' days)')"),
            )),
            ColumnType::Timestamp => binary(zero(
                "timestamp",
                format!("CONCAT('timestamp(', {micros}, ' µs)')"),
            )),
            ColumnType::TimestampTz => binary(zero(
                "timestamptz",
                format!("CONCAT('timestamptz(', {micros}, ' µs UTC)')"),
            )),
            ColumnType::Time => binary(format!(
                "CONCAT('time(', TIME_FORMAT({c}, '%H:%i:%s.%f'), ')')"
            )),
            ColumnType::Float32 | ColumnType::Float64 => return None,
        };
        Some(format!(
            "CAST(SHA2(CONCAT(CAST({salt} AS BINARY), {bytes}), 256) AS BINARY)"
        ))
    }

    fn constant(&self, column: &str, text: &str) -> String {
        format!("CASE WHEN {column} IS NOT NULL THEN CAST({text} AS BINARY) END")
    }

    fn placeholder(&self, _: usize) -> String {
        "?".into()
    }

    async fn count(&mut self, sql: &str, params: &[String]) -> anyhow::Result<u64> {
        let params = match params.is_empty() {
            true => Params::Empty,
            false => Params::Positional(
                params
                    .iter()
                    .map(|p| My::Bytes(p.as_bytes().to_vec()))
                    .collect(),
            ),
        };
        let count: Option<u64> = self.conn.exec_first(sql, params).await?;
        Ok(count.unwrap_or(0))
    }

    async fn drop_table(&mut self, table: &TableName) -> anyhow::Result<()> {
        self.conn
            .query_drop(format!("DROP TABLE IF EXISTS {}", quote_table(table)))
            .await?;
        Ok(())
    }

    fn target(&self, table: TableName) -> Target {
        // The table names its database, so the URL's own database does not matter.
        Target::Mysql {
            url: self.url.clone(),
            table,
        }
    }
}
