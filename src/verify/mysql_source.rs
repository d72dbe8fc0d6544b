//! The MySQL/MariaDB side of `verify`: the table read in one consistent
//! snapshot, through the same catalog and value conversion as the reader
//! (`kappa_source::mysql`), so equal rows give equal canonical values.
//!
//! Keys whose `ORDER BY` is the order-key order (integers, decimals, dates,
//! times, binary strings) are read in key-ordered pages (keyset pagination,
//! memory bounded by the page). Keys the server orders by a collation (text,
//! enum, set) are read whole and sorted by order key in memory: memory grows
//! with such a table (a scratch-file spill as for PostgreSQL is not done yet).

use super::source::{ConnectorPosition, ConnectorWait, OrderedRow, OrderedSource, CHUNK};
use anyhow::{bail, Context};
use kappa_schemas::{ColumnType, Row, TableName, TableSchema, Value};
use kappa_sink::order_key::encode_key;
use kappa_source::mysql::catalog::{load_table, MysqlTable};
use kappa_source::mysql::snapshot::select_sql;
use kappa_source::mysql::types::{convert_row, MysqlKind, Origin};
use kappa_source::mysql::{connect, quote_ident, quote_table};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value as My};
use std::sync::Arc;

/// A MySQL/MariaDB table read for `verify`.
pub struct MysqlOrdered {
    conn: Conn,
    table: MysqlTable,
    /// Keyset pagination: the raw key of the last row handed out.
    after: Option<Vec<My>>,
    /// In-memory mode: rows sorted by order key, handed out from the back.
    sorted: Option<Vec<OrderedRow>>,
    done: bool,
}

impl MysqlOrdered {
    pub async fn open(url: &str, password: Option<&str>, name: &TableName) -> anyhow::Result<Self> {
        let mut conn = connect(url, password).await?;
        let table = load_table(&mut conn, name).await?;
        Ok(Self {
            conn,
            table,
            after: None,
            sorted: None,
            done: false,
        })
    }

    fn database_orders(&self) -> bool {
        self.table.schema.key_columns.iter().all(|&i| {
            !matches!(
                self.table.columns[i].kind,
                MysqlKind::Text(_) | MysqlKind::Enum(_) | MysqlKind::Set(_) | MysqlKind::Json
            ) && !matches!(
                self.table.schema.columns[i].column_type,
                ColumnType::Float32 | ColumnType::Float64
            )
        })
    }

    fn ordered(&self, raw: Vec<My>) -> anyhow::Result<(Vec<My>, OrderedRow)> {
        let schema = &self.table.schema;
        let key_raw: Vec<My> = schema.key_columns.iter().map(|&i| raw[i].clone()).collect();
        let row: Row = convert_row(&schema.name, &self.table.columns, raw, Origin::Query)?;
        let ord = encode_key(schema.key_columns.iter().map(|&i| &row[i]));
        Ok((key_raw, (ord, row)))
    }

    async fn next_page(&mut self) -> anyhow::Result<Vec<OrderedRow>> {
        let schema = self.table.schema.clone();
        let keys: Vec<String> = schema.key().map(|c| quote_ident(&c.name)).collect();
        let columns: Vec<String> = schema
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        let condition = match &self.after {
            None => String::new(),
            Some(_) => format!(
                " WHERE ({}) > ({})",
                keys.join(", "),
                vec!["?"; keys.len()].join(", ")
            ),
        };
        let sql = format!(
            "SELECT {} FROM {}{condition} ORDER BY {} LIMIT {CHUNK}",
            columns.join(", "),
            quote_table(&schema.name),
            keys.join(", ")
        );
        let params = match &self.after {
            None => mysql_async::Params::Empty,
            Some(key) => mysql_async::Params::Positional(key.clone()),
        };
        let rows: Vec<mysql_async::Row> = self
            .conn
            .exec(sql, params)
            .await
            .with_context(|| format!("reading rows of {}", schema.name))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (key, ordered) = self.ordered(row.unwrap())?;
            self.after = Some(key);
            out.push(ordered);
        }
        Ok(out)
    }

    async fn read_sorted(&mut self) -> anyhow::Result<Vec<OrderedRow>> {
        let rows: Vec<mysql_async::Row> = self
            .conn
            .exec(select_sql(&self.table), ())
            .await
            .with_context(|| format!("reading rows of {}", self.table.schema.name))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.ordered(row.unwrap())?.1);
        }
        // Descending, so chunks are taken off the end in ascending order.
        out.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(out)
    }
}

impl OrderedSource for MysqlOrdered {
    fn schema(&self) -> &Arc<TableSchema> {
        &self.table.schema
    }

    async fn begin_snapshot(&mut self) -> anyhow::Result<()> {
        self.conn
            .query_drop(
                "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
                 START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
            )
            .await
            .context("opening the verify snapshot")?;
        Ok(())
    }

    async fn wait_for_connector(
        &self,
        _connector: &str,
        _wait: ConnectorWait,
    ) -> anyhow::Result<ConnectorPosition> {
        bail!("waiting for a connector position is PostgreSQL-only")
    }

    async fn next_chunk(&mut self) -> anyhow::Result<Option<Vec<OrderedRow>>> {
        if self.done {
            return Ok(None);
        }
        if self.database_orders() {
            let page = self.next_page().await?;
            if page.len() < CHUNK {
                self.done = true;
            }
            return Ok((!page.is_empty()).then_some(page));
        }
        if self.sorted.is_none() {
            let rows = self.read_sorted().await?;
            self.sorted = Some(rows);
        }
        let Some(sorted) = self.sorted.as_mut() else {
            return Ok(None);
        };
        let take = sorted.len().min(CHUNK);
        let chunk: Vec<OrderedRow> = sorted
            .split_off(sorted.len() - take)
            .into_iter()
            .rev()
            .collect();
        if sorted.is_empty() {
            self.done = true;
        }
        Ok((!chunk.is_empty()).then_some(chunk))
    }

    async fn current_rows(&self, _keys: &[Vec<Value>]) -> anyhow::Result<Vec<Option<Row>>> {
        bail!("re-reading rows by key is only used with --slot (PostgreSQL)")
    }
}
