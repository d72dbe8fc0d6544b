//! `[source.postgres]` and `[source.mysql]`: the one source a connector
//! reads, as a serde enum matched once ([`crate::sources`]), and the
//! settings every kind of section has, behind [`Section`].

use super::default_name;
use anyhow::bail;
use kappa_schemas::TableName;
use kappa_source::postgres::PostgresSourceConfig;
use serde::Deserialize;
use std::collections::BTreeMap;

fn default_server_id() -> u32 {
    5701
}
fn default_heartbeat_secs() -> u64 {
    5
}
pub(super) fn default_chunk_rows() -> usize {
    10_000
}

/// The one source a connector reads: `[source.postgres]` or
/// `[source.mysql]`. Matched once to open its reader ([`crate::sources`]);
/// everything else the config does with it goes through [`Section`].
#[derive(Debug, Deserialize)]
#[serde(try_from = "SourceTables")]
pub enum SourceConfig {
    Postgres(PostgresSection),
    Mysql(MysqlSection),
}

/// `[source]` as written: one table per kind of source, exactly one present.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceTables {
    postgres: Option<PostgresSection>,
    mysql: Option<MysqlSection>,
}

impl TryFrom<SourceTables> for SourceConfig {
    type Error = String;

    fn try_from(tables: SourceTables) -> Result<Self, String> {
        match (tables.postgres, tables.mysql) {
            (Some(postgres), None) => Ok(SourceConfig::Postgres(postgres)),
            (None, Some(mysql)) => Ok(SourceConfig::Mysql(mysql)),
            (None, None) => Err("config has no [source.postgres] or [source.mysql] section: kappa needs a source to read from".into()),
            (Some(_), Some(_)) => Err("config has both [source.postgres] and [source.mysql]: one connector reads one source; write a config (and connector name) per source".into()),
        }
    }
}

impl SourceConfig {
    /// The section's settings every kind of source has.
    pub fn section(&self) -> &dyn Section {
        match self {
            SourceConfig::Postgres(section) => section,
            SourceConfig::Mysql(section) => section,
        }
    }

    pub(super) fn section_mut(&mut self) -> &mut dyn Section {
        match self {
            SourceConfig::Postgres(section) => section,
            SourceConfig::Mysql(section) => section,
        }
    }
}

/// What every source section has, so the checks, the environment overrides
/// and masking are written once.
pub trait Section {
    /// `[source.postgres]`: how messages name the section.
    fn label(&self) -> &'static str;
    /// The `tables` patterns.
    fn tables(&self) -> &[String];
    fn snapshot_chunk_rows(&self) -> usize;
    /// The database's URL and the password that overrides the URL's.
    fn url_and_password(&self) -> (String, Option<String>);
    /// The settings every reader takes from its section.
    fn reader_common(&self) -> kappa_source::ReaderCommon;
    /// Each table's masking options.
    fn masks(&self) -> Vec<MaskRef<'_>>;
    /// Applies `KAPPA_<KIND>_URL` / `KAPPA_<KIND>_PASSWORD`.
    fn apply_env(&mut self, var: &dyn Fn(&str) -> Option<String>);
    /// The checks only this kind of section needs.
    fn check(&self) -> anyhow::Result<()>;
}

/// `[source.mysql]`: a MySQL 8 or MariaDB server with a row-based binlog.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlSection {
    /// `mysql://user@host:3306/`
    pub url: String,
    pub password: Option<String>,
    /// `database.table` names or patterns (`*` matches any characters).
    pub tables: Vec<String>,
    #[serde(default)]
    pub exclude_tables: Vec<String>,
    /// The replica id kappa registers with; must differ from the server's
    /// `server_id` and every other replica's.
    #[serde(default = "default_server_id")]
    pub server_id: u32,
    #[serde(default = "default_chunk_rows")]
    pub snapshot_chunk_rows: usize,
    /// Heartbeat period of the binlog stream, seconds.
    #[serde(default = "default_heartbeat_secs")]
    pub heartbeat_secs: u64,
    /// `database.table` of the signal table `kappa snapshot` writes requests
    /// into (and re-snapshots their watermarks); created when missing.
    pub signal_table: Option<String>,
    /// Per-table options (column masking), keyed by `database.table`.
    #[serde(default)]
    pub table_options: BTreeMap<String, MaskOptions>,
}

/// Column masking for a MySQL table (the same rules as PostgreSQL's).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskOptions {
    #[serde(default)]
    pub exclude_columns: Vec<String>,
    #[serde(default)]
    pub hash_columns: Vec<String>,
    #[serde(default)]
    pub constant_columns: BTreeMap<String, String>,
}

/// A table's masking options: table name, excluded, hashed and constant columns.
pub type MaskRef<'a> = (
    &'a String,
    &'a Vec<String>,
    &'a Vec<String>,
    &'a BTreeMap<String, String>,
);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSection {
    pub url: String,
    pub password: Option<String>,
    /// `schema.table` names or patterns (`*` matches any characters).
    pub tables: Vec<String>,
    /// Patterns of tables to leave out.
    #[serde(default)]
    pub exclude_tables: Vec<String>,
    /// Leave out tables without a key (warning) instead of refusing to start.
    #[serde(default)]
    pub skip_tables_without_key: bool,
    /// Per-table options, keyed by `schema.table`.
    #[serde(default)]
    pub table_options: BTreeMap<String, TableOptions>,
    #[serde(default = "default_name")]
    pub slot: String,
    #[serde(default = "default_name")]
    pub publication: String,
    #[serde(default = "default_chunk_rows")]
    pub snapshot_chunk_rows: usize,
}

/// What to do when an UPDATE leaves a TOASTed value unchanged and the stream
/// does not carry it (REPLICA IDENTITY DEFAULT or USING INDEX). Either way
/// the rows are exact; FULL identity carries the values and needs neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnchangedToast {
    /// Read the current row by key (see `source/src/postgres/toast.rs` for
    /// why the newest record per key is then the row): the default, with a
    /// warning at start naming the table and the cheaper `REPLICA IDENTITY
    /// FULL`.
    #[default]
    Fetch,
    /// Strict: refuse to start, printing the `REPLICA IDENTITY FULL` fix.
    Refuse,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableOptions {
    #[serde(default)]
    pub unchanged_toast: UnchangedToast,
    /// Columns left out of the records (GDPR).
    #[serde(default)]
    pub exclude_columns: Vec<String>,
    /// Columns replaced by the hex SHA-256 of `KAPPA_HASH_SALT` + value.
    #[serde(default)]
    pub hash_columns: Vec<String>,
    /// Columns replaced by a constant text, e.g. `{ phone = "***" }`.
    #[serde(default)]
    pub constant_columns: BTreeMap<String, String>,
}

impl MysqlSection {
    /// The MySQL reader's settings; `connector` names the signal rows it
    /// acts on.
    pub fn reader_config(
        &self,
        connector: &str,
    ) -> anyhow::Result<kappa_source::mysql::MysqlSourceConfig> {
        Ok(kappa_source::mysql::MysqlSourceConfig {
            common: self.reader_common(),
            server_id: self.server_id,
            heartbeat_secs: self.heartbeat_secs,
            connector: connector.to_string(),
            signal_table: self
                .signal_table
                .as_deref()
                .map(TableName::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("[source.mysql] signal_table: {e}"))?,
        })
    }
}

impl MysqlSection {
    /// The checks only a MySQL section needs.
    fn check_own(&self) -> anyhow::Result<()> {
        if self.server_id == 0 {
            bail!("[source.mysql] server_id must not be 0: pick a replica id no other replica (nor the server) uses");
        }
        if self.heartbeat_secs == 0 {
            bail!("[source.mysql] heartbeat_secs must be at least 1");
        }
        if let Some(signal) = &self.signal_table {
            TableName::parse(signal)
                .map_err(|e| anyhow::anyhow!("[source.mysql] signal_table: {e}"))?;
        }
        Ok(())
    }
}

impl PostgresSection {
    /// A PostgreSQL section's table options are checked by building the
    /// reader's settings.
    fn check_own(&self) -> anyhow::Result<()> {
        self.reader_config().map(|_| ())
    }

    /// The PostgreSQL reader's settings.
    pub fn reader_config(&self) -> anyhow::Result<PostgresSourceConfig> {
        Ok(PostgresSourceConfig {
            common: self.reader_common(),
            slot: self.slot.clone(),
            publication: self.publication.clone(),
            skip_tables_without_key: self.skip_tables_without_key,
            toast_refuse: self
                .table_options
                .iter()
                .filter(|(_, options)| options.unchanged_toast == UnchangedToast::Refuse)
                .map(|(name, _)| TableName::parse(name).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<_>>()?,
        })
    }
}

/// The accessors every section has, over the fields every section names the
/// same way (`url`, `password`, `tables`, `snapshot_chunk_rows`,
/// `table_options` with the masking columns), written once.
macro_rules! section {
    ($section:ty, $label:literal, $env:literal) => {
        impl Section for $section {
            fn label(&self) -> &'static str {
                $label
            }

            fn tables(&self) -> &[String] {
                &self.tables
            }

            fn snapshot_chunk_rows(&self) -> usize {
                self.snapshot_chunk_rows
            }

            fn url_and_password(&self) -> (String, Option<String>) {
                (self.url.clone(), self.password.clone())
            }

            fn reader_common(&self) -> kappa_source::ReaderCommon {
                kappa_source::ReaderCommon {
                    url: self.url.clone(),
                    password: self.password.clone(),
                    tables: self.tables.clone(),
                    exclude_tables: self.exclude_tables.clone(),
                    snapshot_chunk_rows: self.snapshot_chunk_rows,
                }
            }

            fn masks(&self) -> Vec<MaskRef<'_>> {
                self.table_options
                    .iter()
                    .map(|(t, o)| (t, &o.exclude_columns, &o.hash_columns, &o.constant_columns))
                    .collect()
            }

            fn apply_env(&mut self, var: &dyn Fn(&str) -> Option<String>) {
                if let Some(url) = var(concat!($env, "_URL")) {
                    self.url = url;
                }
                if let Some(password) = var(concat!($env, "_PASSWORD")) {
                    self.password = Some(password);
                }
            }

            fn check(&self) -> anyhow::Result<()> {
                self.check_own()
            }
        }
    };
}

section!(MysqlSection, "[source.mysql]", "KAPPA_MYSQL");
section!(PostgresSection, "[source.postgres]", "KAPPA_POSTGRES");
