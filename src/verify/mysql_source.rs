//! The MySQL/MariaDB side of `verify`: the table read in one consistent
//! snapshot, through the same catalog and value conversion as the reader
//! (`kappa_source::mysql`), so equal rows give equal canonical values.
//!
//! Keys whose `ORDER BY` is the order-key order (integers, decimals, dates,
//! times, binary strings) are read in key-ordered pages (keyset pagination,
//! memory bounded by the page). Keys the server orders by a collation (text,
//! enum, set), JSON and floats are streamed once into a scratch file sorted
//! by order key ([`super::spill`]): disk, not memory, grows with the table.
//!
//! ## Verifying while the connector streams
//! When verify waits for the connector, the snapshot's exact binlog position
//! S is needed: every commit the snapshot shows lies before S, every later
//! one after it.
//! * MariaDB: `START TRANSACTION WITH CONSISTENT SNAPSHOT` fixes the InnoDB
//!   read view and the binlog position together (commits enter the binlog
//!   and become visible in one order), and `SHOW STATUS LIKE
//!   'binlog_snapshot_%'` reads that position inside the transaction — how
//!   MariaDB's `mysqldump --single-transaction --master-data` does without a
//!   lock. No lock is taken.
//! * MySQL 8 has no such status: the transaction is started again under a
//!   brief `FLUSH TABLES WITH READ LOCK`, the reader's own
//!   [`kappa_source::mysql::snapshot::begin`] (no commit can happen between
//!   the read view and `SHOW MASTER STATUS`; needs `RELOAD`).
//!
//! The connector has confirmed S when the binlog position in its offsets
//! record is at or past S (file sequence number, then offset): the record is
//! written only after the broker acknowledged the records of every commit
//! up to its position, and the reader stores positions of commits of other
//! tables too, so a busy server moves it past S. On an idle server it stops
//! at the end of the last commit, which equals S — unless the binlog holds
//! events after that commit that are not transactions (a rotation to a new
//! file, MariaDB's binlog checkpoints): then the binlog between the stored
//! position and S is read (`SHOW BINLOG EVENTS`, a bounded number of events
//! per file), and if it holds only such events, nothing is pending and the
//! connector is idle — exact, not a heuristic.
//!
//! Re-checks read rows by key as committed now on a second session
//! (autocommit: each look-up sees the newest commits). Key values are
//! passed back as MySQL values (decimals through `CAST(? AS DECIMAL(p,s))`,
//! exact) and the row found must convert to the same canonical key: a
//! collation that calls `'a'` and `'A'` equal cannot hand back the wrong row.

use super::source::{
    Connector, ConnectorPosition, ConnectorWait, OrderedRow, OrderedSource, CHUNK,
};
use super::spill::SpillSort;
use anyhow::{anyhow, bail, Context};
use kappa_materialize::order_key::encode_key;
use kappa_schemas::{BinlogPosition, ColumnType, Row, TableName, TableSchema, Value};
use kappa_source::mysql::catalog::{load_table, MysqlTable};
use kappa_source::mysql::kind::MysqlColumn;
use kappa_source::mysql::snapshot::{begin, select_sql};
use kappa_source::mysql::types::{convert_row, MysqlKind, Origin};
use kappa_source::mysql::{connect, quote_ident, quote_table};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value as My};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

mod binlog_wait;
mod key_params;

use binlog_wait::{at_or_past, nothing_committed_between, snapshot_status};
use key_params::key_param;

/// A MySQL/MariaDB table read for `verify`.
pub struct MysqlOrdered {
    conn: Conn,
    /// A session outside the snapshot, for the connector's position and
    /// current-row look-ups; only when verify waits for the connector.
    side: Option<Mutex<Conn>>,
    /// Where `side` reconnects to: it idles through the whole rebuild, and a
    /// server's `wait_timeout` may close it meanwhile.
    url: String,
    password: Option<String>,
    /// The binlog position of the snapshot, when `side` is open.
    snapshot_position: Option<BinlogPosition>,
    table: MysqlTable,
    /// Keyset pagination: the raw key of the last row handed out.
    after: Option<Vec<My>>,
    /// Where rows are spilled when the server's order is not the order key's.
    spill_path: PathBuf,
    /// Rows sorted by order key on disk (keys the server orders otherwise).
    spilled: Option<SpillSort>,
    done: bool,
}

impl MysqlOrdered {
    /// Connects (twice when `watch_connector`: verify waits for the
    /// connector, which needs the snapshot's binlog position and a session
    /// for the connector's position and current rows) and reads the table's
    /// shape.
    pub async fn open(
        url: &str,
        password: Option<&str>,
        name: &TableName,
        watch_connector: bool,
        scratch_dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut conn = connect(url, password).await?;
        let table = load_table(&mut conn, name).await?;
        let side = match watch_connector {
            true => Some(Mutex::new(connect(url, password).await?)),
            false => None,
        };
        Ok(Self {
            conn,
            side,
            url: url.to_string(),
            password: password.map(str::to_string),
            snapshot_position: None,
            table,
            after: None,
            spill_path: scratch_dir.join("source-spill.sqlite"),
            spilled: None,
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
            let (key, ordered) = ordered(&self.table, row.unwrap())?;
            self.after = Some(key);
            out.push(ordered);
        }
        Ok(out)
    }

    /// Streams the whole snapshot once into the scratch file.
    async fn spill(&mut self) -> anyhow::Result<SpillSort> {
        let name = self.table.schema.name.clone();
        let mut spill = SpillSort::create(&self.spill_path, &self.table.schema)?;
        let mut result = self
            .conn
            .exec_iter(select_sql(&self.table), ())
            .await
            .with_context(|| format!("reading rows of {name}"))?;
        let mut batch = Vec::with_capacity(CHUNK);
        while let Some(row) = result
            .next()
            .await
            .with_context(|| format!("reading rows of {name}"))?
        {
            batch.push(ordered(&self.table, row.unwrap())?.1);
            if batch.len() == CHUNK {
                spill.push(std::mem::take(&mut batch))?;
            }
        }
        spill.push(batch)?;
        let count = spill.finish()?;
        tracing::info!(table = %name, rows = count, "source rows spilled to sort by the order key");
        Ok(spill)
    }
}

/// A row as read from the server: its raw key (for keyset paging) and the
/// row with its order key.
fn ordered(table: &MysqlTable, raw: Vec<My>) -> anyhow::Result<(Vec<My>, OrderedRow)> {
    let schema = &table.schema;
    let key_raw: Vec<My> = schema.key_columns.iter().map(|&i| raw[i].clone()).collect();
    let row: Row = convert_row(&schema.name, &table.columns, raw, Origin::Query)?;
    let ord = encode_key(schema.key_columns.iter().map(|&i| &row[i]));
    Ok((key_raw, (ord, row)))
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
        if self.side.is_none() {
            return Ok(());
        }
        // The binlog position of this snapshot (see the module docs).
        let status: Vec<(String, String)> = self
            .conn
            .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
            .await
            .context("reading the snapshot's binlog position")?;
        let position = match snapshot_status(&status) {
            Some(position) => position,
            None => {
                // MySQL 8: start the snapshot again, under the lock.
                self.conn
                    .query_drop("ROLLBACK")
                    .await
                    .context("closing the snapshot to take it under a read lock")?;
                begin(&mut self.conn)
                    .await
                    .context("taking the verify snapshot with its binlog position")?
            }
        };
        self.snapshot_position = Some(position);
        Ok(())
    }

    async fn wait_for_connector(
        &self,
        connector: &Connector,
        wait: ConnectorWait,
    ) -> anyhow::Result<ConnectorPosition> {
        let Connector::Offsets { kafka, topic, name } = connector else {
            bail!("a MySQL source is waited for through the connector's offsets record, not a replication slot (--config kappa.toml --wait-for-connector)");
        };
        let (Some(side), Some(snapshot)) = (&self.side, &self.snapshot_position) else {
            bail!("wait_for_connector before begin_snapshot, or on a source opened without a connector to watch");
        };
        let table = &self.table.schema.name;
        let started = Instant::now();
        let mut idle_check_failed = false;
        let mut read_failed = false;
        loop {
            // A connector just started has no record yet, and a broker may
            // fail a read: both are waited out until the timeout.
            let state = match crate::state::load::<BinlogPosition>(kafka, topic, name).await {
                Ok(Some(state)) => state,
                Ok(None) if started.elapsed() < wait.timeout => {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
                Ok(None) => {
                    return Ok(ConnectorPosition {
                        snapshot: format!("{}:{}", snapshot.file, snapshot.pos),
                        confirmed_by: "offsets record stores",
                        confirmed: Some(format!(
                            "nothing: connector {name} has no offsets record in topic {topic} (not started, or the config's name or [kafka] offsets_topic differ from the running connector's)"
                        )),
                        caught_up: false,
                        idle: false,
                        waited_seconds: started.elapsed().as_secs_f64(),
                    });
                }
                Err(e) if started.elapsed() < wait.timeout => {
                    if !read_failed {
                        tracing::warn!(error = %crate::error_text::error_text(&e), "reading the connector's offsets record failed; retrying until --lag-timeout");
                        read_failed = true;
                    }
                    tokio::time::sleep(POLL).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(stored) = state.position else {
                bail!("the offsets record of connector {name} (topic {topic}) holds no binlog position: it is not a MySQL connector's (check the config's name)");
            };
            let delivered = state.snapshotted.contains(table);
            let caught_up = delivered && at_or_past(&stored, snapshot);
            let idle = if delivered && !caught_up {
                let mut side = side.lock().await;
                match nothing_committed_between(&mut side, &stored, snapshot).await {
                    Ok(idle) => idle,
                    Err(e) => {
                        if !idle_check_failed {
                            tracing::warn!(error = %crate::error_text::error_text(&e), "cannot read the binlog between the stored position and the snapshot point; an idle connector will show as lagging");
                            idle_check_failed = true;
                        }
                        false
                    }
                }
            } else {
                false
            };
            if caught_up || idle || started.elapsed() >= wait.timeout {
                let mut confirmed = format!("{}:{}", stored.file, stored.pos);
                if !delivered {
                    confirmed.push_str(&format!(
                        " (the initial snapshot of {table} is not delivered)"
                    ));
                }
                return Ok(ConnectorPosition {
                    snapshot: format!("{}:{}", snapshot.file, snapshot.pos),
                    confirmed_by: "offsets record stores",
                    confirmed: Some(confirmed),
                    caught_up,
                    idle,
                    waited_seconds: started.elapsed().as_secs_f64(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
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
        if self.spilled.is_none() {
            self.spilled = Some(self.spill().await?);
        }
        match self.spilled.as_mut() {
            Some(spill) => spill.next_chunk(),
            None => Ok(None),
        }
    }

    async fn current_rows(&self, keys: &[Vec<Value>]) -> anyhow::Result<Vec<Option<Row>>> {
        let Some(side) = &self.side else {
            bail!("current rows read on a source opened without a connector to watch");
        };
        let schema = &self.table.schema;
        let columns: Vec<String> = schema
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        let condition: Vec<String> = schema
            .key_columns
            .iter()
            .map(|&i| {
                let placeholder = match self.table.columns[i].kind {
                    MysqlKind::Decimal { precision, scale } => {
                        format!("CAST(? AS DECIMAL({precision},{scale}))")
                    }
                    _ => "?".into(),
                };
                format!("{} = {placeholder}", quote_ident(&schema.columns[i].name))
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            columns.join(", "),
            quote_table(&schema.name),
            condition.join(" AND ")
        );
        let mut side = side.lock().await;
        if side.ping().await.is_err() {
            tracing::info!("the side session to MySQL was closed while verify rebuilt the topic (wait_timeout?); reconnecting");
            *side = connect(&self.url, self.password.as_deref()).await?;
        }
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            let params = schema
                .key_columns
                .iter()
                .zip(key)
                .map(|(&i, value)| key_param(&self.table.columns[i], value))
                .collect::<anyhow::Result<Vec<My>>>()?;
            let rows: Vec<mysql_async::Row> = side
                .exec(&sql, params)
                .await
                .with_context(|| format!("reading current rows of {}", schema.name))?;
            let mut current = None;
            for row in rows {
                let row = convert_row(
                    &schema.name,
                    &self.table.columns,
                    row.unwrap(),
                    Origin::Query,
                )?;
                // Equal under the key's collation is not enough: the same
                // canonical key is.
                if schema
                    .key_columns
                    .iter()
                    .zip(key)
                    .all(|(&i, k)| &row[i] == k)
                {
                    current = Some(row);
                }
            }
            found.push(current);
        }
        Ok(found)
    }
}

/// How often the connector's offsets record is read while waiting: each read
/// replays the offsets topic, and the connector stores at most once a second.
const POLL: Duration = Duration::from_secs(1);
