//! The PostgreSQL reader: publication and slot setup, the initial snapshot,
//! and logical replication with pgoutput.
//!
//! ## Why the snapshot hands over with no gap
//! On the first start the slot is created with `EXPORT_SNAPSHOT` on a
//! replication session that then stays idle: the exported snapshot shows the
//! database exactly as of the slot's consistent point. The snapshot reads all
//! tables in a transaction that imports it, and streaming then starts at that
//! same consistent point — every commit is either in the snapshot or in the
//! stream, never both, never neither.
//!
//! When a snapshot must be taken while a slot already exists (a crash during
//! the first snapshot, or a table added to the config later), the slot still
//! holds every change since its confirmed position `L` (nothing is confirmed
//! before a snapshot completes). A fresh snapshot taken now at `T > L` is
//! emitted, then streaming resumes at `L`: changes in `(L, T]` are applied a
//! second time after the snapshot, in commit order, so every key ends at its
//! newest state — no gap; during the overlap a key may briefly show an older
//! state again, which the stream corrects before reaching `T`.

mod capture;
pub mod catalog;
pub(crate) mod decode;
pub(crate) mod errors;
pub mod pgoutput;
pub(crate) mod resnapshot;
pub mod setup;
pub(crate) mod slot_lag;
pub mod snapshot;
pub mod stream;
pub mod text;
pub mod toast;
pub(crate) mod types;

use crate::durable::DurablePosition;
use crate::error::{ErrorKind, SourceError};
use crate::source::{Acknowledger, CatchUp, ReaderCommon, Shutdown, Source, SourceStatus};
use crate::stream_bounds::reconnect_backoff;
use catalog::{load_table, PgTable};
use kappa_schemas::{ChangeBatch, Checkpoint, ConnectorState, Lsn, TableName};
use pgwire_replication::{FeedbackObserver, ReplicationClient, ReplicationConfig};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::{Client, NoTls};

/// Session settings under which every text value is read, in snapshots and
/// in `verify` (inside a transaction, hence `SET LOCAL`). The text parser
/// depends on them, and `standard_conforming_strings = on` makes a quoted
/// literal kappa builds (verify's key look-ups by COPY, which takes no
/// parameters) mean its text exactly: with it off (a role or database
/// setting), a backslash in a key would be read as an escape.
pub const SESSION_SETTINGS: &str = "SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL TimeZone = 'UTC'; \
     SET LOCAL extra_float_digits = 3; SET LOCAL bytea_output = 'hex'; SET LOCAL IntervalStyle = 'iso_8601'; \
     SET LOCAL lc_monetary = 'C'; SET LOCAL standard_conforming_strings = on;";

/// The same settings for the walsender, which renders the streamed values.
pub const REPLICATION_OPTIONS: &str =
    "-c DateStyle=ISO,YMD -c TimeZone=UTC -c extra_float_digits=3 -c bytea_output=hex -c IntervalStyle=iso_8601 \
     -c lc_monetary=C -c standard_conforming_strings=on";

/// What the PostgreSQL reader needs to know.
#[derive(Debug, Clone)]
pub struct PostgresSourceConfig {
    /// The server (`postgres://user@host:port/database`), its
    /// `schema.table`s and the snapshot's batch size.
    pub common: ReaderCommon,
    pub slot: String,
    pub publication: String,
    /// Leave out (with a warning) tables that have no key, instead of refusing to start.
    pub skip_tables_without_key: bool,
    /// Tables set to `unchanged_toast = "refuse"`: refused at start when an
    /// UPDATE could leave a TOASTed value out of the stream. Every other such
    /// table has those values fetched by key (see [`toast`]).
    pub toast_refuse: Vec<TableName>,
}

/// Connects an ordinary SQL session.
pub async fn connect(url: &str, password: Option<&str>) -> Result<Client, SourceError> {
    let mut config =
        tokio_postgres::Config::from_str(url).map_err(|source| SourceError::Connect {
            url: crate::redact_url(url),
            source,
        })?;
    if let Some(password) = password {
        config.password(password);
    }
    let (client, connection) =
        config
            .connect(NoTls)
            .await
            .map_err(|source| SourceError::Connect {
                url: crate::redact_url(url),
                source,
            })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::error!(error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

/// A session whose text output follows [`SESSION_SETTINGS`] outside any
/// transaction (for reads by key and re-snapshot chunks).
pub async fn pinned_session(
    url: &str,
    password: Option<&str>,
    purpose: &str,
) -> Result<Client, SourceError> {
    let client = connect(url, password).await?;
    client
        .batch_execute(&SESSION_SETTINGS.replace("SET LOCAL", "SET"))
        .await
        .map_err(|source| SourceError::Query {
            doing: format!("pinning session settings for {purpose}"),
            source,
        })?;
    Ok(client)
}

/// The PostgreSQL reader.
pub struct PostgresSource {
    config: PostgresSourceConfig,
    tables: Vec<PgTable>,
    /// How far the daemon has made the stream durable: written by the
    /// [`Acknowledger`], read when the slot is confirmed.
    durable: DurablePosition,
}

impl Source for PostgresSource {
    type Position = Lsn;
    const STORES_COMMITTED: bool = false;

    fn tables(&self) -> Vec<TableName> {
        self.tables.iter().map(|t| t.schema.name.clone()).collect()
    }

    fn origin(&self) -> String {
        self.config.slot.clone()
    }

    fn check_resume(
        &self,
        connector: &str,
        state: &ConnectorState<Lsn>,
    ) -> Result<(), SourceError> {
        if !state.snapshotted.is_empty() && state.origin != self.config.slot {
            return Err(SourceError::SlotMismatch {
                connector: connector.to_string(),
                recorded: state.origin.clone(),
                configured: self.config.slot.clone(),
            });
        }
        Ok(())
    }

    fn acknowledger(&self) -> Acknowledger<Lsn> {
        let durable = self.durable.clone();
        Acknowledger::new(move |lsn: &Lsn| {
            durable.advance(*lsn);
            metrics::gauge!("kappa_durable_lsn").set(lsn.0 as f64);
        })
    }

    async fn status(
        &self,
        _state: Option<&ConnectorState<Lsn>>,
    ) -> Result<SourceStatus, SourceError> {
        let client = connect(
            &self.config.common.url,
            self.config.common.password.as_deref(),
        )
        .await?;
        let slot = &self.config.slot;
        Ok(match setup::slot_info(&client, slot).await? {
            None => SourceStatus {
                lines: vec![("slot", format!("{slot}  MISSING"))],
                healthy: false,
            },
            Some(info) => {
                let lag = setup::slot_lag_bytes(&client, slot).await?;
                let wal_status = info.wal_status.clone().unwrap_or_else(|| "?".into());
                let confirmed = info
                    .confirmed_flush
                    .map_or_else(|| "-".into(), |lsn| lsn.to_string());
                let lag = lag.map_or_else(|| "-".into(), |bytes| bytes.to_string());
                SourceStatus {
                    healthy: wal_status != "lost",
                    lines: vec![(
                        "slot",
                        format!(
                            "{slot}  confirmed_flush_lsn={confirmed}  wal_status={wal_status}  lag_bytes={lag}"
                        ),
                    )],
                }
            }
        })
    }

    async fn request_resnapshot(
        &self,
        connector: &str,
        table: &TableName,
    ) -> Result<String, SourceError> {
        let slot = &self.config.slot;
        let lsn = resnapshot::request(
            &self.config.common.url,
            self.config.common.password.as_deref(),
            slot,
            table,
        )
        .await?;
        Ok(format!(
            "requested at {lsn}; connector {connector} (slot {slot}) runs it while streaming"
        ))
    }

    fn catch_up(&self) -> CatchUp {
        CatchUp::Slot(self.config.slot.clone())
    }

    async fn run(
        self,
        resume: ConnectorState<Lsn>,
        changes: mpsc::Sender<ChangeBatch<Lsn>>,
        shutdown: Shutdown,
    ) -> Result<(), SourceError> {
        tokio::spawn(slot_lag::watch(self.config.clone()));
        let durable = self.durable.clone();
        let (url, password) = (
            self.config.common.url.clone(),
            self.config.common.password.clone(),
        );
        let result = match self.capture(resume.snapshotted, changes, shutdown).await {
            // 42704/55000 may name a publication or a setting, not the slot.
            Err(e @ SourceError::SlotRefused { .. }) => {
                Err(setup::confirm_slot_refusal(&url, password.as_deref(), e).await)
            }
            other => other,
        };
        if result.is_ok() {
            tracing::info!(durable_lsn = %durable.get(), "PostgreSQL reader stopped");
        }
        result
    }
}

impl PostgresSource {
    /// Resolves the configured table patterns against the catalog and checks
    /// that every table can be captured exactly: it has a key, and its change
    /// images are complete (see [`check_images`]).
    pub async fn open(config: PostgresSourceConfig) -> Result<Self, SourceError> {
        let client = connect(&config.common.url, config.common.password.as_deref()).await?;
        let names = catalog::matching_tables(
            &client,
            &config.common.tables,
            &config.common.exclude_tables,
        )
        .await?;
        crate::table_filter::check_matched(
            &names,
            &config.common.tables,
            &config.common.exclude_tables,
            "[source.postgres]",
        )?;
        let mut tables = Vec::with_capacity(names.len());
        for name in &names {
            match load_table(&client, name).await {
                Err(SourceError::NoPrimaryKey { table }) if config.skip_tables_without_key => {
                    tracing::warn!(%table, "no primary key and no replica identity index: left out (skip_tables_without_key)");
                }
                Err(e) => return Err(e),
                Ok(table) => {
                    if check_images(&table, config.toast_refuse.contains(name))? {
                        tracing::warn!(
                            table = %name,
                            columns = ?table.toastable,
                            "an UPDATE that leaves these large (TOASTed) columns unchanged does not carry their values \
                             under REPLICA IDENTITY {}: kappa reads them from the table by key (unchanged_toast = \"fetch\", \
                             the default; exact, one query per such UPDATE). ALTER TABLE {} REPLICA IDENTITY FULL is the \
                             cheaper exact alternative",
                            identity_name(table.replica_identity),
                            setup::quote_table(name)
                        );
                    }
                    tables.push(table);
                }
            }
        }
        Ok(Self {
            config,
            tables,
            durable: DurablePosition::default(),
        })
    }
}

/// Whether `table`'s UPDATEs can leave a TOASTed value out of the stream
/// (TOAST-able columns under DEFAULT or USING INDEX identity) and fetch mode
/// fills it (the table is not set to `refuse`).
fn needs_toast_fetch(table: &PgTable, refuse: bool) -> bool {
    table.replica_identity != 'f' && !table.toastable.is_empty() && !refuse
}

fn identity_name(identity: char) -> &'static str {
    if identity == 'i' {
        "USING INDEX"
    } else {
        "DEFAULT"
    }
}

/// Refuses tables whose UPDATEs could arrive without some column values:
/// `REPLICA IDENTITY NOTHING` (no old key on DELETE), and TOAST-able columns
/// under DEFAULT/INDEX identity when the table is set to
/// `unchanged_toast = "refuse"`. A placeholder value would become, after
/// compaction, the only copy. Returns whether the table's unchanged TOAST
/// values are fetched by key.
pub fn check_images(table: &PgTable, refuse_toast: bool) -> Result<bool, SourceError> {
    let name = &table.schema.name;
    let quoted = setup::quote_table(name);
    if table.replica_identity == 'n' {
        return Err(SourceError::ReplicaIdentityNothing {
            table: name.clone(),
            quoted,
        });
    }
    if table.replica_identity != 'f' && !table.toastable.is_empty() && refuse_toast {
        return Err(SourceError::UnchangedToastRefused {
            table: name.clone(),
            columns: table.toastable.clone(),
            identity: identity_name(table.replica_identity),
            quoted,
        });
    }
    Ok(needs_toast_fetch(table, refuse_toast))
}
