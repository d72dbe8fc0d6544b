//! The MySQL/MariaDB reader: the tables from `information_schema`, a
//! consistent initial snapshot tied to a binlog position ([`snapshot`]),
//! then the row-based binlog from that position ([`stream`]).
//!
//! Unlike PostgreSQL there is no slot on the server: the position lives in
//! the connector's offsets record, written by the daemon only after the
//! broker acknowledged every record before it. The server keeps binlogs for
//! its own retention time only; a stored position whose file is gone is a
//! fatal [`SourceError::BinlogPurged`].

pub mod catalog;
pub mod charset;
pub(crate) mod ddl;
pub(crate) mod decoder_guard;
pub(crate) mod errors;
pub(crate) mod events;
pub mod kind;
pub(crate) mod resnapshot;
pub mod rows;
pub mod snapshot;
pub(crate) mod stream;
pub mod types;

use crate::error::SourceError;
use crate::source::{Acknowledger, CatchUp, ReaderCommon, Shutdown, Source, SourceStatus};
use catalog::{load_table, MysqlTable};
use kappa_schemas::{BinlogPosition, ChangeBatch, Checkpoint, ConnectorState, TableName};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use tokio::sync::mpsc;

/// What the MySQL reader needs to know.
#[derive(Debug, Clone)]
pub struct MysqlSourceConfig {
    /// The server (`mysql://user@host:port/`), its `database.table`s and
    /// the snapshot's batch size.
    pub common: ReaderCommon,
    /// The replica id kappa registers with; must differ from the server's
    /// `server_id` and from every other replica's.
    pub server_id: u32,
    /// Seconds between the server's heartbeats on an idle binlog stream; a
    /// stream silent for three periods is reconnected.
    pub heartbeat_secs: u64,
    /// The connector's name: signal rows naming another connector are ignored.
    pub connector: String,
    /// The signal table of `kappa snapshot` requests and re-snapshot
    /// watermarks (see [`resnapshot`]); created when missing, never captured.
    pub signal_table: Option<TableName>,
}

/// A query error, naming what was being done.
pub fn query_error(doing: impl Into<String>) -> impl FnOnce(mysql_async::Error) -> SourceError {
    let doing = doing.into();
    move |source| SourceError::Mysql { doing, source }
}

/// `` `db`.`table` ``
pub fn quote_table(name: &TableName) -> String {
    format!("{}.{}", quote_ident(&name.schema), quote_ident(&name.table))
}

/// `` `name` `` with backticks doubled.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The connection options from the URL, with the password override.
pub fn opts(url: &str, password: Option<&str>) -> Result<Opts, SourceError> {
    let parsed = Opts::from_url(url).map_err(|e| SourceError::InvalidMysqlUrl {
        url: crate::redact_url(url),
        reason: e.to_string(),
    })?;
    let mut builder = OptsBuilder::from_opts(parsed);
    if let Some(password) = password {
        builder = builder.pass(Some(password.to_string()));
    }
    Ok(builder.into())
}

/// Connects a session whose values the decoders expect: UTC for TIMESTAMP,
/// text in each column's own character set (decoded by kappa, the same way
/// as binlog values).
pub async fn connect(url: &str, password: Option<&str>) -> Result<Conn, SourceError> {
    let mut conn = Conn::new(opts(url, password)?)
        .await
        .map_err(|source| SourceError::Mysql {
            doing: format!("connecting to {}", crate::redact_url(url)),
            source,
        })?;
    conn.query_drop(
        "SET NAMES utf8mb4, character_set_results = NULL, time_zone = '+00:00', net_write_timeout = 3600",
    )
    .await
    .map_err(query_error("pinning session settings"))?;
    Ok(conn)
}

/// Refuses a server whose binlog cannot give complete, self-describing rows.
async fn check_server(conn: &mut Conn) -> Result<(), SourceError> {
    let vars: Vec<(String, String)> = conn
        .query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN
             ('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata',
              'log_bin_compress', 'binlog_transaction_compression')",
        )
        .await
        .map_err(query_error("reading binlog settings"))?;
    let get = |name: &str| {
        vars.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_uppercase())
    };
    for (name, want) in [
        ("log_bin", "ON"),
        ("binlog_format", "ROW"),
        ("binlog_row_image", "FULL"),
        ("binlog_row_metadata", "FULL"),
    ] {
        if get(name).as_deref() != Some(want) {
            return Err(SourceError::BinlogSetting {
                name,
                found: get(name).unwrap_or_default(),
                want,
            });
        }
    }
    // Compressed events are refused where they are met too (events.rs,
    // undecodable_event); refusing the setting at start names the fix early.
    for (name, fix) in [
        (
            "log_bin_compress",
            "SET GLOBAL log_bin_compress = OFF (and remove it from my.cnf)",
        ),
        (
            "binlog_transaction_compression",
            "SET GLOBAL binlog_transaction_compression = OFF (and remove it from my.cnf)",
        ),
    ] {
        if get(name).as_deref() == Some("ON") {
            return Err(SourceError::BinlogCompressed { name, fix });
        }
    }
    Ok(())
}

/// The MySQL/MariaDB reader.
pub struct MysqlSource {
    config: MysqlSourceConfig,
    tables: Vec<MysqlTable>,
}

impl MysqlSource {
    /// Checks the server's binlog settings and resolves the table patterns;
    /// every table must have a primary key and supported column types.
    pub async fn open(config: MysqlSourceConfig) -> Result<Self, SourceError> {
        let mut conn = connect(&config.common.url, config.common.password.as_deref()).await?;
        check_server(&mut conn).await?;
        let mut names = catalog::matching_tables(
            &mut conn,
            &config.common.tables,
            &config.common.exclude_tables,
        )
        .await?;
        if let Some(signal) = &config.signal_table {
            // Matched by a pattern (e.g. `kappa.*`): the signal table is never captured.
            names.retain(|name| name != signal);
        }
        crate::table_filter::check_matched(
            &names,
            &config.common.tables,
            &config.common.exclude_tables,
            "[source.mysql]",
        )?;
        let mut tables = Vec::with_capacity(names.len());
        for name in &names {
            tables.push(load_table(&mut conn, name).await?);
        }
        let _ = conn.disconnect().await;
        Ok(Self { config, tables })
    }
}

impl Source for MysqlSource {
    type Position = BinlogPosition;
    const STORES_COMMITTED: bool = true;

    fn tables(&self) -> Vec<TableName> {
        self.tables.iter().map(|t| t.schema.name.clone()).collect()
    }

    /// Positions are the server's own binlog coordinates: no origin.
    fn origin(&self) -> String {
        String::new()
    }

    fn check_resume(
        &self,
        _connector: &str,
        _state: &ConnectorState<BinlogPosition>,
    ) -> Result<(), SourceError> {
        Ok(())
    }

    /// The daemon stores the positions; the server holds nothing to release.
    fn acknowledger(&self) -> Acknowledger<BinlogPosition> {
        Acknowledger::none()
    }

    /// The server's binlog position, and the stored one checked against
    /// the binlogs the server still has.
    async fn status(
        &self,
        state: Option<&ConnectorState<BinlogPosition>>,
    ) -> Result<SourceStatus, SourceError> {
        let mut conn = connect(
            &self.config.common.url,
            self.config.common.password.as_deref(),
        )
        .await?;
        let current = snapshot::current_position(&mut conn).await?;
        let mut status = SourceStatus {
            lines: vec![("server", format!("binlog at {current}"))],
            healthy: true,
        };
        match state.and_then(|state| state.position.as_ref()) {
            None => status.lines.push((
                "stored",
                "nothing yet (the initial snapshot is not delivered)".into(),
            )),
            Some(stored) => {
                let exists = stream::check_position_exists(&mut conn, stored).await;
                status.healthy = exists.is_ok();
                let purged = if exists.is_ok() {
                    ""
                } else {
                    "  PURGED (re-snapshot needed)"
                };
                status
                    .lines
                    .push(("stored", format!("binlog {stored}{purged}")));
            }
        }
        let _ = conn.disconnect().await;
        Ok(status)
    }

    /// Writes the request into the signal table, where the binlog carries
    /// it to the running connector.
    async fn request_resnapshot(
        &self,
        connector: &str,
        table: &TableName,
    ) -> Result<String, SourceError> {
        let Some(signal) = &self.config.signal_table else {
            return Err(SourceError::NoSignalTable);
        };
        let position = resnapshot::request(
            &self.config.common.url,
            self.config.common.password.as_deref(),
            signal,
            connector,
            table,
        )
        .await?;
        Ok(format!(
            "requested at {position} (signal table {signal}); connector {connector} runs it while streaming"
        ))
    }

    fn catch_up(&self) -> CatchUp {
        CatchUp::OffsetsRecord
    }

    /// The snapshot that is due, then the binlog until `shutdown`. Batches
    /// carry [`Checkpoint::Committed`] positions the daemon stores once
    /// delivered; `shutdown.drained` is not waited for (nothing on the server
    /// to confirm).
    async fn run(
        self,
        resume: ConnectorState<BinlogPosition>,
        tx: mpsc::Sender<ChangeBatch<BinlogPosition>>,
        shutdown: Shutdown,
    ) -> Result<(), SourceError> {
        let stop = shutdown.requested;
        let config = &self.config;
        let mut conn = connect(&config.common.url, config.common.password.as_deref()).await?;
        // Created by the connector, not at open: `kappa snapshot` and
        // `kappa status` open the source too, and a request into a table
        // the running connector does not watch would never be served.
        if let Some(signal) = &config.signal_table {
            resnapshot::ensure_signal_table(&mut conn, signal).await?;
        }
        let resume_from = match resume.position {
            None => {
                // First start (or a crash before the snapshot was delivered):
                // snapshot every table at one position, stream from there.
                let all: Vec<&MysqlTable> = self.tables.iter().collect();
                let position =
                    snapshot::snapshot(&mut conn, &all, config.common.snapshot_chunk_rows, &tx)
                        .await?;
                send_snapshot_complete(&tx, &all, position.clone()).await?;
                position
            }
            Some(stored) => {
                tracing::info!(binlog = %stored, "resuming from the stored binlog position");
                stream::check_position_exists(&mut conn, &stored).await?;
                let pending: Vec<&MysqlTable> = self
                    .tables
                    .iter()
                    .filter(|t| !resume.snapshotted.contains(&t.schema.name))
                    .collect();
                if !pending.is_empty() {
                    // Tables added to the config later: snapshot them now at
                    // T, then stream from the stored L ≤ T. Their changes in
                    // (L, T] are applied again after the snapshot, in commit
                    // order, so every key ends at its newest state.
                    tracing::info!(tables = pending.len(), resume_from = %stored, "snapshot of tables not yet in their topics, overlapping the binlog from the stored position");
                    snapshot::snapshot(&mut conn, &pending, config.common.snapshot_chunk_rows, &tx)
                        .await?;
                    send_snapshot_complete(&tx, &pending, stored.clone()).await?;
                }
                stored
            }
        };
        let _ = conn.disconnect().await;
        let streamer = stream::Streamer::new(config.clone(), self.tables.clone(), tx, stop);
        streamer.run(resume_from).await
    }
}

async fn send_snapshot_complete(
    tx: &mpsc::Sender<ChangeBatch<BinlogPosition>>,
    tables: &[&MysqlTable],
    resume_from: BinlogPosition,
) -> Result<(), SourceError> {
    tx.send(ChangeBatch {
        checkpoint: Some(Checkpoint::SnapshotComplete {
            tables: tables.iter().map(|t| t.schema.name.clone()).collect(),
            resume_from,
        }),
        ..ChangeBatch::default()
    })
    .await
    .map_err(|_| SourceError::ConsumerGone)
}
