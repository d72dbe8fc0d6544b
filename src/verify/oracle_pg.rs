//! The oracle's SQL for PostgreSQL (see [`super::oracle`]).
//!
//! Hashes reproduce `kappa_schemas::mask`'s recipe: SHA-256 over the salt's
//! UTF-8 bytes followed by the value's bytes — a text value's UTF-8 (the
//! type's output text, as pgoutput and COPY send it), a `bytea`'s raw bytes,
//! anything else the text of kappa's `Value` display (`date(N days)`,
//! `timestamp(N µs)`, …), written here in SQL from the server's own value.

use super::oracle::{OracleServer, SourceColumn};
use crate::rebuild::Target;
use anyhow::Context;
use kappa_schemas::{ColumnType, TableName};
use kappa_source::postgres::catalog::load_table;
use kappa_source::postgres::setup::{quote_ident, quote_table};
use std::collections::HashMap;
use tokio_postgres::Client;

/// Base types (as `format_type(oid, NULL)` names them) whose values compare
/// as themselves; any other type compares through its text.
const NATIVE: &[&str] = &[
    "boolean",
    "smallint",
    "integer",
    "bigint",
    "real",
    "double precision",
    "numeric",
    "money",
    "text",
    "character varying",
    "character",
    "\"char\"",
    "name",
    "bytea",
    "date",
    "time without time zone",
    "timestamp without time zone",
    "timestamp with time zone",
    "interval",
    "uuid",
    "jsonb",
    "inet",
    "cidr",
    "macaddr",
    "macaddr8",
    "oid",
    "bit",
    "bit varying",
];

pub struct PgServer {
    client: Client,
    url: String,
    /// Partitioned source tables are read through; others without children.
    partitioned: bool,
}

impl PgServer {
    pub async fn connect(url: &str, password: Option<String>) -> anyhow::Result<Self> {
        let client = kappa_source::postgres::connect(url, password.as_deref()).await?;
        Ok(Self {
            client,
            url: url.to_string(),
            partitioned: false,
        })
    }
}

impl OracleServer for PgServer {
    async fn source_columns(&mut self, table: &TableName) -> anyhow::Result<Vec<SourceColumn>> {
        let catalog = load_table(&self.client, table).await?;
        self.partitioned = catalog.partitioned;
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
        let only = if self.partitioned { "" } else { "ONLY " };
        format!("{only}{}", quote_table(table))
    }

    async fn ensure_schema(&mut self, schema: &str) -> anyhow::Result<()> {
        self.client
            .batch_execute(&format!(
                "SET client_min_messages = warning; CREATE SCHEMA IF NOT EXISTS {}",
                quote_ident(schema)
            ))
            .await
            .with_context(|| format!("creating schema {schema}"))
    }

    async fn type_names(&mut self, table: &TableName) -> anyhow::Result<HashMap<String, String>> {
        let rows = self
            .client
            .query(
                "SELECT a.attname::text,
                        CASE WHEN t.typtype = 'd' THEN 'domain ' ELSE '' END || format_type(a.atttypid, NULL)
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                &[&quote_table(table)],
            )
            .await
            .with_context(|| format!("reading the column types of {table}"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn quote_ident(&self, name: &str) -> String {
        quote_ident(name)
    }

    fn quote_table(&self, table: &TableName) -> String {
        quote_table(table)
    }

    fn native(&self, source_type: &str, rebuilt_type: &str) -> bool {
        source_type == rebuilt_type && NATIVE.contains(&source_type)
    }

    fn text(&self, expr: &str) -> String {
        // format() writes the type's output text (a cast to text would trim
        // a character(n)'s padding).
        format!("CASE WHEN {expr} IS NOT NULL THEN format('%s', {expr}) END")
    }

    fn hash(&self, column: &SourceColumn, salt: &str) -> Option<String> {
        let c = quote_ident(&column.name);
        let utf8 = |text: String| format!("convert_to({text}, 'UTF8')");
        let infinite = |kind: &str, expr: String| {
            format!(
                "CASE WHEN {c} = 'infinity' THEN '{kind}(infinity)' WHEN {c} = '-infinity' THEN '{kind}(-infinity)' ELSE {expr} END"
            )
        };
        let micros = format!("(extract(epoch FROM {c}) * 1000000)::bigint");
        let bytes = match column.column_type {
            ColumnType::Bytes if column.type_name == "bytea" => c.clone(),
            ColumnType::Text | ColumnType::Json | ColumnType::NumericText | ColumnType::Bytes => {
                utf8(self.text(&c))
            }
            ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 | ColumnType::Uuid => {
                utf8(format!("{c}::text"))
            }
            ColumnType::Decimal { .. } | ColumnType::Money => utf8(format!("{c}::numeric::text")),
            ColumnType::Bool => utf8(format!(
                "CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END"
            )),
            ColumnType::Date => utf8(infinite(
                "date",
                format!("'date(' || ({c} - DATE '1970-01-01') || ' days)'"),
            )),
            ColumnType::Timestamp => utf8(infinite(
                "timestamp",
                format!("'timestamp(' || {micros} || ' µs)'"),
            )),
            ColumnType::TimestampTz => utf8(infinite(
                "timestamptz",
                format!("'timestamptz(' || {micros} || ' µs UTC)'"),
            )),
            ColumnType::Time => utf8(format!(
                "'time(' || to_char({c}::interval, 'HH24:MI:SS.US') || ')'"
            )),
            // Rust's shortest float text has no SQL equivalent.
            ColumnType::Float32 | ColumnType::Float64 => return None,
        };
        Some(format!(
            "encode(sha256(convert_to({salt}, 'UTF8') || {bytes}), 'hex')"
        ))
    }

    fn constant(&self, column: &str, text: &str) -> String {
        format!("CASE WHEN {column} IS NOT NULL THEN {text} END")
    }

    fn placeholder(&self, n: usize) -> String {
        format!("${n}::text")
    }

    async fn count(&mut self, sql: &str, params: &[String]) -> anyhow::Result<u64> {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let row = self.client.query_one(sql, &params).await?;
        let count: i64 = row.get(0);
        Ok(count.max(0) as u64)
    }

    async fn drop_table(&mut self, table: &TableName) -> anyhow::Result<()> {
        self.client
            .batch_execute(&format!("DROP TABLE IF EXISTS {}", quote_table(table)))
            .await?;
        Ok(())
    }

    fn target(&self, table: TableName) -> Target {
        Target::Postgres {
            url: self.url.clone(),
            table,
        }
    }
}
