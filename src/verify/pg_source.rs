//! `verify`'s PostgreSQL source ([`PgOrdered`]): a table's rows in one
//! consistent snapshot, in order-key order.
//!
//! ## Why the database sorts, and when it cannot
//! The rebuilt table is ordered by the order key, the canonical encoding of
//! the decoded key values. For most key types the database's own `ORDER BY`
//! is that same order: integers, dates, timestamps, fixed-scale numerics,
//! floats, booleans, UUIDs and bytea, and text under `COLLATE "C"` (byte
//! order, which for UTF-8 is code-point order). Then rows stream straight
//! from an ordered `COPY` (PostgreSQL can walk the primary-key index for the
//! non-text types). Key types whose database order differs (blank-padded
//! `char(n)`, unconstrained `numeric` kept as text, jsonb, types carried as
//! text) are spilled instead: every row goes into a scratch SQLite file
//! keyed by its order key ([`super::spill`]), read back in order-key order — disk, not memory,
//! grows with the table. Either way the merge checks that order keys
//! strictly increase and stops with an error rather than report false
//! differences if they do not.

use super::source::{
    Connector, ConnectorPosition, ConnectorWait, OrderedRow, OrderedSource, CHUNK,
};
use super::spill::SpillSort;
use anyhow::{bail, Context};
use bytes::{Buf, BytesMut};
use futures::StreamExt;
use kappa_materialize::order_key::encode_key;
use kappa_materialize::pg_text::literal;
use kappa_schemas::{ColumnType, Lsn, Row, TableName, TableSchema, Value};
use kappa_source::postgres::catalog::load_table;
use kappa_source::postgres::setup::{quote_ident, quote_table};
use kappa_source::postgres::text::{copy_fields, parse_value};
use kappa_source::postgres::{connect, SESSION_SETTINGS};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, CopyOutStream};

/// Whether PostgreSQL's `ORDER BY` (text under `COLLATE "C"`) gives the
/// order-key order for this key column.
fn database_orders(column: &kappa_schemas::Column) -> bool {
    match column.column_type {
        ColumnType::Text => {
            column.source_type == "text" || column.source_type == "character varying"
        }
        ColumnType::NumericText | ColumnType::Json => false,
        _ => true,
    }
}

enum Rows {
    Ordered(CopyLines),
    Spilled(Box<SpillSort>),
}

/// A PostgreSQL table.
pub struct PgOrdered {
    snapshot: Client,
    side: Client,
    table: Arc<TableSchema>,
    type_names: Vec<String>,
    snapshot_lsn: Option<Lsn>,
    /// `ONLY ` for a plain table, empty for a partitioned one.
    from: &'static str,
    rows: Option<Rows>,
    spill_path: std::path::PathBuf,
}

impl PgOrdered {
    /// Connects twice (the snapshot, and a session for connector position
    /// and current-row look-ups) and reads the table's shape.
    pub async fn open(
        url: &str,
        password: Option<&str>,
        name: &TableName,
        scratch_dir: &Path,
    ) -> anyhow::Result<Self> {
        let snapshot = connect(url, password).await?;
        let side = connect(url, password).await?;
        let catalog = load_table(&snapshot, name).await?;
        let table = catalog.schema;
        // A partitioned table holds no rows itself: read through it. Any
        // other table is read without inheritance children (not published
        // with it).
        let from = if catalog.partitioned { "" } else { "ONLY " };
        let type_names = snapshot
            .query(
                "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                 ORDER BY a.attnum",
                &[&quote_table(name)],
            )
            .await
            .with_context(|| format!("reading the column types of {name}"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(Self {
            snapshot,
            side,
            table,
            type_names,
            snapshot_lsn: None,
            from,
            rows: None,
            spill_path: scratch_dir.join("source-spill.sqlite"),
        })
    }

    fn parse_line(&self, line: &[u8]) -> anyhow::Result<OrderedRow> {
        let table = &self.table;
        let fields = copy_fields(line).map_err(anyhow::Error::msg)?;
        if fields.len() != table.columns.len() {
            bail!(
                "COPY of {} gave {} fields for {} columns",
                table.name,
                fields.len(),
                table.columns.len()
            );
        }
        let row = table
            .columns
            .iter()
            .zip(fields)
            .map(|(column, field)| match field {
                None => Ok(Value::Null),
                Some(text) => parse_value(&column.column_type, &text).map_err(|reason| {
                    anyhow::anyhow!(
                        "table {}, column {}: cannot read {text:?} as {}: {reason}",
                        table.name,
                        column.name,
                        column.source_type
                    )
                }),
            })
            .collect::<anyhow::Result<Row>>()?;
        let ord = encode_key(table.key_columns.iter().map(|&i| &row[i]));
        Ok((ord, row))
    }

    fn copy_sql(&self, ordered: bool) -> String {
        let columns: Vec<String> = self
            .table
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        let order = if ordered {
            let keys: Vec<String> = self
                .table
                .key()
                .map(|c| match c.column_type {
                    ColumnType::Text => format!("{} COLLATE \"C\"", quote_ident(&c.name)),
                    _ => quote_ident(&c.name),
                })
                .collect();
            format!(" ORDER BY {}", keys.join(", "))
        } else {
            String::new()
        };
        format!(
            "COPY (SELECT {} FROM {}{}{order}) TO STDOUT",
            columns.join(", "),
            self.from,
            quote_table(&self.table.name)
        )
    }

    /// Reads the whole snapshot once into the scratch file, keyed by order key.
    async fn spill(&mut self) -> anyhow::Result<SpillSort> {
        let mut spill = SpillSort::create(&self.spill_path, &self.table)?;
        let mut lines = CopyLines::start(&self.snapshot, &self.copy_sql(false)).await?;
        while let Some(chunk) = lines.next_lines(CHUNK).await? {
            let rows = chunk
                .iter()
                .map(|line| self.parse_line(line))
                .collect::<anyhow::Result<Vec<_>>>()?;
            spill.push(rows)?;
        }
        let count = spill.finish()?;
        tracing::info!(table = %self.table.name, rows = count, "source rows spilled to sort by the order key");
        Ok(spill)
    }
}

impl OrderedSource for PgOrdered {
    fn schema(&self) -> &Arc<TableSchema> {
        &self.table
    }

    async fn begin_snapshot(&mut self) -> anyhow::Result<()> {
        self.snapshot
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {SESSION_SETTINGS}"
            ))
            .await
            .context("opening the verify snapshot")?;
        // The snapshot is taken by this first query: every commit it shows
        // lies before this WAL position.
        let lsn: String = self
            .snapshot
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .context("reading the snapshot's WAL position")?
            .get(0);
        self.snapshot_lsn = Some(Lsn::parse(&lsn).map_err(anyhow::Error::msg)?);
        Ok(())
    }

    async fn wait_for_connector(
        &self,
        connector: &Connector,
        wait: ConnectorWait,
    ) -> anyhow::Result<ConnectorPosition> {
        let Connector::Slot(slot) = connector else {
            bail!("a PostgreSQL source is waited for through its replication slot, not an offsets record (the config is not this source's connector)");
        };
        let Some(snapshot) = self.snapshot_lsn else {
            bail!("wait_for_connector before begin_snapshot");
        };
        let started = Instant::now();
        let mut last_change: Option<(Option<String>, Instant)> = None;
        loop {
            let row = self
                .side
                .query_opt(
                    "SELECT s.confirmed_flush_lsn::text, r.sent_lsn::text
                     FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
                     WHERE s.slot_name = $1",
                    &[&slot],
                )
                .await
                .with_context(|| format!("reading replication slot {slot}"))?;
            let Some(row) = row else {
                bail!("replication slot {slot} does not exist (check --slot)");
            };
            let confirmed: Option<String> = row.get(0);
            let sent: Option<String> = row.get(1);
            let lsn = |text: &Option<String>| -> anyhow::Result<Option<Lsn>> {
                text.as_deref()
                    .map(Lsn::parse)
                    .transpose()
                    .map_err(anyhow::Error::msg)
            };
            let caught_up = lsn(&confirmed)?.is_some_and(|c| c >= snapshot);
            // The reader confirms only commits of captured tables: with no
            // such commit after the snapshot point, the slot stays behind it
            // although nothing is pending. The walsender having decoded past
            // the point while the confirmed position stays put is that case.
            let stable_since = match &last_change {
                Some((previous, since)) if *previous == confirmed => *since,
                _ => Instant::now(),
            };
            last_change = Some((confirmed.clone(), stable_since));
            let idle = !caught_up
                && lsn(&sent)?.is_some_and(|s| s >= snapshot)
                && stable_since.elapsed() >= wait.idle_after;
            if caught_up || idle || started.elapsed() >= wait.timeout {
                return Ok(ConnectorPosition {
                    snapshot: snapshot.to_string(),
                    confirmed_by: "slot confirmed",
                    confirmed,
                    caught_up,
                    idle,
                    waited_seconds: started.elapsed().as_secs_f64(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn next_chunk(&mut self) -> anyhow::Result<Option<Vec<OrderedRow>>> {
        if self.rows.is_none() {
            let ordered = self.table.key().all(database_orders);
            self.rows = Some(if ordered {
                Rows::Ordered(CopyLines::start(&self.snapshot, &self.copy_sql(true)).await?)
            } else {
                Rows::Spilled(Box::new(self.spill().await?))
            });
        }
        let lines = match self.rows.as_mut() {
            Some(Rows::Ordered(copy)) => match copy.next_lines(CHUNK).await? {
                Some(lines) => lines,
                None => return Ok(None),
            },
            Some(Rows::Spilled(spill)) => return spill.next_chunk(),
            None => return Ok(None),
        };
        lines
            .iter()
            .map(|line| self.parse_line(line))
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some)
    }

    async fn current_rows(&self, keys: &[Vec<Value>]) -> anyhow::Result<Vec<Option<Row>>> {
        let table = &self.table;
        let columns: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
        // COPY takes no parameters: each key value goes in as a quoted
        // literal cast to its column's type.
        let condition = |key: &[Value]| -> String {
            table
                .key_columns
                .iter()
                .zip(key)
                .map(|(&i, value)| {
                    let literal = match literal(value) {
                        Some(text) => format!("'{}'", text.replace('\'', "''")),
                        None => "NULL".into(),
                    };
                    format!(
                        "{} = {literal}::{}",
                        quote_ident(&table.columns[i].name),
                        self.type_names[i]
                    )
                })
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        self.side
            .batch_execute(&format!("BEGIN READ ONLY; {SESSION_SETTINGS}"))
            .await?;
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            let sql = format!(
                "COPY (SELECT {} FROM {}{} WHERE {}) TO STDOUT",
                columns.join(", "),
                self.from,
                quote_table(&table.name),
                condition(key)
            );
            let mut lines = CopyLines::start(&self.side, &sql).await?;
            let mut row = None;
            while let Some(chunk) = lines.next_lines(CHUNK).await? {
                if let (None, Some(line)) = (&row, chunk.first()) {
                    row = Some(self.parse_line(line)?.1);
                }
            }
            found.push(row);
        }
        self.side.batch_execute("COMMIT").await?;
        Ok(found)
    }
}

/// Lines of a `COPY … TO STDOUT`, streamed.
struct CopyLines {
    stream: Pin<Box<CopyOutStream>>,
    buffer: BytesMut,
    done: bool,
}

impl CopyLines {
    async fn start(client: &Client, sql: &str) -> anyhow::Result<Self> {
        let stream = client
            .copy_out(sql)
            .await
            .with_context(|| format!("running {sql}"))?;
        Ok(Self {
            stream: Box::pin(stream),
            buffer: BytesMut::new(),
            done: false,
        })
    }

    async fn next_lines(&mut self, max: usize) -> anyhow::Result<Option<Vec<bytes::Bytes>>> {
        let mut lines = Vec::with_capacity(max.min(4096));
        loop {
            while lines.len() < max {
                let Some(end) = self.buffer.iter().position(|&b| b == b'\n') else {
                    break;
                };
                let mut line = self.buffer.split_to(end + 1);
                line.truncate(end);
                lines.push(line.freeze());
            }
            if lines.len() >= max || self.done {
                break;
            }
            match self.stream.next().await {
                Some(chunk) => self.buffer.extend_from_slice(chunk?.chunk()),
                None => self.done = true,
            }
        }
        if lines.is_empty() && self.done {
            if !self.buffer.is_empty() {
                bail!("COPY ended in the middle of a row");
            }
            return Ok(None);
        }
        Ok(Some(lines))
    }
}
