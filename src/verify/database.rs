//! The one place `kappa verify` tells its source databases apart, by the
//! source URL's scheme: what verify needs of a database (its table in key
//! order, its server for the SQL oracle, where its password comes from, which
//! connector it can wait on) is a [`VerifyDatabase`], and [`with_database`]
//! picks the implementation. A third source adds one implementation and one
//! arm here; everything behind the arm is generic.

use super::mysql_source::MysqlOrdered;
use super::oracle::OracleServer;
use super::oracle_mysql::MysqlServer;
use super::oracle_pg::PgServer;
use super::pg_source::PgOrdered;
use super::source::OrderedSource;
use super::{Connector, VerifyOptions};
use anyhow::bail;
use kappa_schemas::TableName;
use std::future::Future;
use std::path::Path;

/// Whether `url` names a MySQL/MariaDB server (else PostgreSQL, whose
/// connection strings may also be `key=value` lists without a scheme).
pub fn is_mysql_url(url: &str) -> bool {
    url.starts_with("mysql://")
}

/// What verify reads from one kind of source database.
pub trait VerifyDatabase {
    /// The source table in key order, in one snapshot.
    type Ordered: OrderedSource;
    /// The server the SQL oracle compares in.
    type Oracle: OracleServer;

    /// The password for `options.source_url`: `--password`, else this
    /// database's variable where it has one.
    fn password(options: &VerifyOptions) -> Option<String>;

    /// Refuses a connector to wait on that cannot be this database's.
    fn check_connector(connector: Option<&Connector>) -> anyhow::Result<()>;

    /// Opens the table; `waits` when verify waits on a connector.
    fn open_ordered(
        url: &str,
        password: Option<&str>,
        table: &TableName,
        waits: bool,
        scratch: &Path,
    ) -> impl Future<Output = anyhow::Result<Self::Ordered>>;

    fn oracle(
        url: &str,
        password: Option<String>,
    ) -> impl Future<Output = anyhow::Result<Self::Oracle>>;
}

/// Work that runs on any kind of source database.
pub trait OnDatabase {
    type Output;

    fn on<D: VerifyDatabase>(self) -> impl Future<Output = anyhow::Result<Self::Output>>;
}

/// Runs `work` on the database `url` names.
pub async fn with_database<W: OnDatabase>(url: &str, work: W) -> anyhow::Result<W::Output> {
    if is_mysql_url(url) {
        work.on::<Mysql>().await
    } else {
        work.on::<Postgres>().await
    }
}

pub struct Postgres;

impl VerifyDatabase for Postgres {
    type Ordered = PgOrdered;
    type Oracle = PgServer;

    fn password(options: &VerifyOptions) -> Option<String> {
        options.password.clone()
    }

    fn check_connector(connector: Option<&Connector>) -> anyhow::Result<()> {
        if let Some(Connector::Offsets { .. }) = connector {
            bail!("the config names a MySQL connector but the source is PostgreSQL: pass the PostgreSQL connector's config, or its slot with --slot");
        }
        Ok(())
    }

    async fn open_ordered(
        url: &str,
        password: Option<&str>,
        table: &TableName,
        _waits: bool,
        scratch: &Path,
    ) -> anyhow::Result<PgOrdered> {
        PgOrdered::open(url, password, table, scratch).await
    }

    async fn oracle(url: &str, password: Option<String>) -> anyhow::Result<PgServer> {
        PgServer::connect(url, password).await
    }
}

pub struct Mysql;

impl VerifyDatabase for Mysql {
    type Ordered = MysqlOrdered;
    type Oracle = MysqlServer;

    fn password(options: &VerifyOptions) -> Option<String> {
        options
            .password
            .clone()
            .or_else(|| std::env::var("KAPPA_MYSQL_PASSWORD").ok())
    }

    fn check_connector(connector: Option<&Connector>) -> anyhow::Result<()> {
        if let Some(Connector::Slot(_)) = connector {
            bail!("the source is MySQL, but verify was told to wait on a PostgreSQL replication slot (--slot, or --wait-for-connector with a PostgreSQL connector's config); a MySQL source has none: pass the MySQL connector's config, --config kappa.toml --wait-for-connector (verify then waits on the binlog position in its offsets record)");
        }
        Ok(())
    }

    async fn open_ordered(
        url: &str,
        password: Option<&str>,
        table: &TableName,
        waits: bool,
        scratch: &Path,
    ) -> anyhow::Result<MysqlOrdered> {
        MysqlOrdered::open(url, password, table, waits, scratch).await
    }

    async fn oracle(url: &str, password: Option<String>) -> anyhow::Result<MysqlServer> {
        MysqlServer::connect(url, password).await
    }
}
