//! Where a rebuild writes, and where it stops: the `--into`, `--as-of` and
//! `--until-offsets` arguments.

use anyhow::{bail, Context};
use kappa_materialize::target::{mysql as mysql_target, postgres as pg_target};
use kappa_schemas::TableName;
use kappa_sink::replay::Bound;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where a rebuild writes.
#[derive(Debug, Clone)]
pub enum Target {
    Sqlite(PathBuf),
    Postgres {
        url: String,
        table: TableName,
    },
    /// A MySQL/MariaDB table, `table.schema` being its database.
    Mysql {
        url: String,
        table: TableName,
    },
}

/// A password for the target's server, kept out of `Debug` output.
#[derive(Clone)]
pub struct TargetPassword(pub String);

impl std::fmt::Debug for TargetPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TargetPassword(***)")
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Sqlite(path) => write!(f, "{}", path.display()),
            Target::Postgres { table, .. } => write!(f, "PostgreSQL table {table}"),
            Target::Mysql { table, .. } => write!(f, "MySQL table {table}"),
        }
    }
}

/// `sqlite:PATH`, `postgres://…/db?table=schema.table` or
/// `mysql://…/db?table=table`.
pub fn parse_target(into: &str) -> anyhow::Result<Target> {
    if into.starts_with("mysql://") {
        let (url, table) = mysql_target::parse_url(into)?;
        return Ok(Target::Mysql { url, table });
    }
    if into.starts_with("postgres://") || into.starts_with("postgresql://") {
        let (url, table) = pg_target::parse_url(into)?;
        return Ok(Target::Postgres { url, table });
    }
    sqlite_target(into).map(Target::Sqlite)
}

/// `sqlite:PATH` → PATH.
fn sqlite_target(into: &str) -> anyhow::Result<PathBuf> {
    match into.strip_prefix("sqlite:") {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => bail!(
            "--into {into:?}: expected sqlite:PATH (e.g. sqlite:/tmp/orders.sqlite) or \
             postgres://user@host/db?table=schema.table or mysql://user@host:3306/db?table=table"
        ),
    }
}

/// `--as-of 2026-11-25T10:00:00Z` → a time bound.
pub fn parse_as_of(text: &str) -> anyhow::Result<Bound> {
    let time = chrono::DateTime::parse_from_rfc3339(text).with_context(|| {
        format!("--as-of {text:?}: expected an RFC 3339 time, e.g. 2026-11-25T10:00:00Z")
    })?;
    Ok(Bound::Time(time.timestamp_millis()))
}

/// `--until-offsets 0:120,1:98` → per-partition end offsets.
pub fn parse_until_offsets(text: &str) -> anyhow::Result<Bound> {
    let mut offsets = BTreeMap::new();
    for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
        let parsed = pair.split_once(':').and_then(|(p, o)| {
            Some((p.trim().parse::<i32>().ok()?, o.trim().parse::<i64>().ok()?))
        });
        let Some((partition, offset)) = parsed else {
            bail!("--until-offsets {text:?}: expected PARTITION:OFFSET pairs separated by commas, e.g. 0:120,1:98");
        };
        if offsets.insert(partition, offset).is_some() {
            bail!("--until-offsets names partition {partition} twice");
        }
    }
    Ok(Bound::Offsets(offsets))
}
