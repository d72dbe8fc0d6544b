//! `kappa verify`: the rebuilt table against the source table, row by row on
//! canonical values (see `kappa_schemas::Value`'s equality), for tables of
//! any size: both sides stream in the order of the canonical key encoding
//! and are merge-compared (see [`merge`] and [`source`]).
//!
//! ## Verifying while the connector streams
//! With a connector to wait for (`--slot SLOT` for PostgreSQL,
//! `--wait-for-connector` with the connector's `--config` for either source),
//! verify takes the source snapshot first and notes its source position S,
//! then waits (up to `--lag-timeout`) until the connector has confirmed S —
//! every change the snapshot shows is then acknowledged in the topic — and
//! only then fixes the topic's end offsets and rebuilds. The topic may hold
//! changes newer than S, and a lagging connector may not have delivered all
//! of them, so each difference found is re-checked against the row as
//! committed *now*: a key whose row changed after the snapshot is "in
//! flight" (the rebuilt row is newer or older than the snapshot because of
//! timing, not loss) and is not counted; a difference on a key unchanged
//! since the snapshot is real if the connector had confirmed S, and "lag" if
//! it had not. Without a connector to wait for, the connector is assumed
//! stopped, and every difference counts.
//!
//! **PostgreSQL**: S is the WAL position read in the snapshot's first
//! statement; the connector has confirmed S when its slot's
//! `confirmed_flush_lsn` ≥ S. The PostgreSQL reader confirms only commits of
//! captured tables, so an idle connector's slot stays behind S although
//! nothing is pending. Verify treats the connector as idle (like caught up)
//! when the walsender has sent past S (`pg_stat_replication.sent_lsn`) and
//! the slot's confirmed position has not moved for `--idle-after` — a
//! heuristic: a delivery stuck for longer would be reported as a
//! difference, and a re-run tells.
//!
//! **MySQL/MariaDB**: S is the binlog position of the consistent snapshot
//! (see [`mysql_source`]); the connector has confirmed S when the binlog
//! position in its offsets record is at or past S, since that record is
//! written only after the broker acknowledged every record of every commit
//! up to its position, commits of other tables included. Idleness is exact
//! here: a stored position behind S with only rotation and bookkeeping
//! events (no transaction) between the two has nothing pending.
//!
//! ## A second opinion
//! Verify reads the source through kappa's own decoders; `--oracle sql`
//! ([`oracle`]) also has the source server compare the topic rebuilt into
//! it, with `EXCEPT ALL` and no kappa parser, for a stopped or caught-up
//! connector. The verdict is OK only when both find nothing.

mod database;
mod masked;
mod merge;
mod mysql_source;
pub mod oracle;
mod oracle_mysql;
mod oracle_pg;
mod pg_source;
mod rebuilt;
mod report;
mod source;
pub mod source_url;
mod spill;

use crate::rebuild::{self, RebuildOptions, Target};
use anyhow::bail;
use kappa_schemas::mask::Masking;
use kappa_schemas::{Registry, TableName, TableSchema, Value};
use kappa_sink::replay::Bound;
use kappa_sink::KafkaConfig;
use masked::Masked;
use merge::{key_text, same, Candidate, Kind, RangeReport};
pub use report::{exit_code, print_report};
use serde::Serialize;
pub use source::{Connector, ConnectorWait};
use source::{ConnectorPosition, OrderedSource};

/// Differences kept in full (for detail and re-checks); past this they are
/// only counted.
const KEPT: usize = 10_000;

/// One difference, described for a person.
#[derive(Debug, Serialize)]
pub struct Difference {
    pub kind: &'static str,
    pub key: String,
    pub columns: Vec<ColumnDifference>,
}

#[derive(Debug, Serialize)]
pub struct ColumnDifference {
    pub column: String,
    pub source: String,
    pub rebuilt: String,
}

/// The verdict and its counts.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub table: String,
    pub source_rows: u64,
    pub rebuilt_rows: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
    /// Differences on keys unchanged since the snapshot while the connector
    /// had not confirmed the snapshot point: not judged.
    pub lag: u64,
    /// Differences on keys whose row changed after the snapshot: not judged.
    pub in_flight: u64,
    pub first_differences: Vec<Difference>,
    /// Source rows were masked as the connector masks them (`--config`).
    pub masked: bool,
    /// Key ranges (of `RANGE_KEYS` keys) whose checksums differ.
    pub differing_ranges: u64,
    pub ranges: Vec<RangeReport>,
    pub connector: Option<ConnectorPosition>,
    /// The topic end offsets the rebuilt side was read to, when verify
    /// rebuilt it.
    pub rebuilt_to: Option<Vec<(i32, i64)>>,
    /// The SQL oracle's verdict (`--oracle sql`).
    pub oracle: Option<oracle::OracleReport>,
}

impl VerifyReport {
    pub fn differences(&self) -> u64 {
        self.missing + self.extra + self.different
    }
}

/// What to verify.
pub struct VerifyOptions {
    pub topic: String,
    pub source_url: String,
    pub password: Option<String>,
    pub table: TableName,
    /// An already rebuilt table (SQLite file, or PostgreSQL table made by
    /// `kappa rebuild --into postgres://…`); `None` rebuilds the topic now.
    pub rebuilt: Option<Target>,
    pub show: usize,
    /// The connector, when it may be streaming: verify waits for it to
    /// confirm the snapshot point and tells lag from differences.
    pub connector: Option<Connector>,
    /// How long to wait for `connector`.
    pub connector_wait: ConnectorWait,
    pub skip_invalid: bool,
    /// The connector's masking rules (from its config): source rows are
    /// masked the same way before comparing.
    pub masking: Option<Masking>,
    /// Also run the SQL oracle, rebuilding into this schema (PostgreSQL) or
    /// database (MySQL) of the source server (see [`oracle`]).
    pub oracle: Option<String>,
}

/// Compares the source table with the rebuilt table, and has the source
/// server compare them too when `options.oracle` asks for it.
pub async fn verify(
    kafka: &KafkaConfig,
    registry: &Registry,
    options: &VerifyOptions,
) -> anyhow::Result<VerifyReport> {
    if options.oracle.is_some() && options.connector.is_some() {
        // Refused before any work (the oracle says why).
        oracle::run(kafka, registry, options, "").await?;
    }
    let mut report = verify_by_kappa(kafka, registry, options).await?;
    if let Some(schema) = &options.oracle {
        report.oracle = Some(oracle::run(kafka, registry, options, schema).await?);
    }
    Ok(report)
}

/// Compares the source table with the rebuilt table on kappa's values.
async fn verify_by_kappa(
    kafka: &KafkaConfig,
    registry: &Registry,
    options: &VerifyOptions,
) -> anyhow::Result<VerifyReport> {
    database::with_database(
        &options.source_url,
        VerifyByKappa {
            kafka,
            registry,
            options,
        },
    )
    .await
}

/// [`verify_by_kappa`] on the source's kind of database.
struct VerifyByKappa<'a> {
    kafka: &'a KafkaConfig,
    registry: &'a Registry,
    options: &'a VerifyOptions,
}

impl database::OnDatabase for VerifyByKappa<'_> {
    type Output = VerifyReport;

    async fn on<D: database::VerifyDatabase>(self) -> anyhow::Result<VerifyReport> {
        let Self {
            kafka,
            registry,
            options,
        } = self;
        D::check_connector(options.connector.as_ref())?;
        let scratch = tempfile::Builder::new().prefix("kappa-verify-").tempdir()?;
        let password = D::password(options);
        let source = D::open_ordered(
            &options.source_url,
            password.as_deref(),
            &options.table,
            options.connector.is_some(),
            scratch.path(),
        )
        .await?;
        verify_source(source, kafka, registry, options, &scratch).await
    }
}

/// Masks `source` as the connector masked its table (when the options carry
/// masking rules), then compares it with the rebuilt topic.
async fn verify_source<S: OrderedSource>(
    source: S,
    kafka: &KafkaConfig,
    registry: &Registry,
    options: &VerifyOptions,
    scratch: &tempfile::TempDir,
) -> anyhow::Result<VerifyReport> {
    let mask = match &options.masking {
        Some(masking) => masking.table(source.schema())?,
        None => None,
    };
    match mask {
        None => compare(source, kafka, registry, options, scratch.path()).await,
        Some(mask) => {
            if mask.hashes_key() && options.connector.is_some() {
                bail!(
                    "table {}: its key column is hashed, so rows cannot be looked up by key to tell lag from differences; verify without --slot or --wait-for-connector, with the connector stopped",
                    options.table
                );
            }
            let spill = scratch.path().join("masked-spill.sqlite");
            let mut report = compare(
                Masked::new(source, mask, spill),
                kafka,
                registry,
                options,
                scratch.path(),
            )
            .await?;
            report.masked = true;
            Ok(report)
        }
    }
}

/// Verifies against one source (masked or not).
async fn compare<S: OrderedSource>(
    mut source: S,
    kafka: &KafkaConfig,
    registry: &Registry,
    options: &VerifyOptions,
    scratch: &std::path::Path,
) -> anyhow::Result<VerifyReport> {
    source.begin_snapshot().await?;
    let connector = match &options.connector {
        Some(connector) => Some(
            source
                .wait_for_connector(connector, options.connector_wait)
                .await?,
        ),
        None => None,
    };
    let (rebuilt, rebuilt_to) = match &options.rebuilt {
        Some(target) => (target.clone(), None),
        None => {
            let path = scratch.join("rebuilt.sqlite");
            let summary = rebuild::rebuild(
                kafka,
                registry,
                &RebuildOptions {
                    topic: options.topic.clone(),
                    target: Target::Sqlite(path.clone()),
                    bound: Bound::Latest,
                    skip_invalid: options.skip_invalid,
                    parallelism: 0,
                    require_exact: false,
                    password: None,
                },
            )
            .await?;
            (Target::Sqlite(path), Some(summary.end_offsets))
        }
    };
    let table = source.schema().clone();
    let source_is_mysql = database::is_mysql_url(&options.source_url);
    let opened = rebuilt::open(
        &rebuilt,
        table.clone(),
        options.password.as_deref(),
        source_is_mysql,
        scratch,
    )
    .await?;
    let merged = merge::merge(&mut source, opened.rows, KEPT).await?;
    if let Some(counted) = opened.counted.filter(|&c| c != merged.rebuilt_rows) {
        tracing::warn!(
            counted,
            read = merged.rebuilt_rows,
            "rebuilt row count changed while reading"
        );
    }
    let mut report = VerifyReport {
        table: options.table.to_string(),
        source_rows: merged.source_rows,
        rebuilt_rows: merged.rebuilt_rows,
        differing_ranges: merged.differing_ranges,
        ranges: merged.ranges,
        rebuilt_to,
        ..VerifyReport::default()
    };
    let judged = classify(&source, connector.as_ref(), merged.candidates).await?;
    for (candidate, verdict) in judged {
        match verdict {
            Verdict::Real => {
                match candidate.kind {
                    Kind::Missing => report.missing += 1,
                    Kind::Extra => report.extra += 1,
                    Kind::Different => report.different += 1,
                }
                if report.first_differences.len() < options.show {
                    report.first_differences.push(describe(&table, &candidate));
                }
            }
            Verdict::Lag => report.lag += 1,
            Verdict::InFlight => report.in_flight += 1,
        }
    }
    // Differences past the kept ones were not re-checked.
    let caught_up = connector.as_ref().is_none_or(|c| c.caught_up || c.idle);
    let [missing, extra, different] = merged.uncounted;
    if caught_up {
        report.missing += missing;
        report.extra += extra;
        report.different += different;
    } else {
        report.lag += missing + extra + different;
    }
    report.connector = connector;
    Ok(report)
}

enum Verdict {
    Real,
    Lag,
    InFlight,
}

/// Judges each difference against the row as committed now (see the module
/// docs). Without a connector position every difference is real.
async fn classify<S: OrderedSource>(
    source: &S,
    connector: Option<&ConnectorPosition>,
    candidates: Vec<Candidate>,
) -> anyhow::Result<Vec<(Candidate, Verdict)>> {
    let Some(connector) = connector else {
        return Ok(candidates.into_iter().map(|c| (c, Verdict::Real)).collect());
    };
    let keys: Vec<Vec<Value>> = candidates.iter().map(|c| c.key.clone()).collect();
    let mut current = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        current.extend(source.current_rows(chunk).await?);
    }
    Ok(candidates
        .into_iter()
        .zip(current)
        .map(|(candidate, now)| {
            let unchanged = match (&candidate.source, &now) {
                (None, None) => true,
                (Some(a), Some(b)) => a == b,
                _ => false,
            };
            let verdict = if !unchanged {
                Verdict::InFlight
            } else if connector.caught_up || connector.idle {
                Verdict::Real
            } else {
                Verdict::Lag
            };
            (candidate, verdict)
        })
        .collect())
}

fn describe(table: &TableSchema, candidate: &Candidate) -> Difference {
    let columns = match (&candidate.source, &candidate.rebuilt) {
        (Some(source), Some(rebuilt)) => table
            .columns
            .iter()
            .zip(source.iter().zip(rebuilt))
            .filter(|(_, (s, r))| !same(s, r.as_ref()))
            .map(|(column, (s, r))| ColumnDifference {
                column: column.name.clone(),
                source: s.to_string(),
                rebuilt: r
                    .as_ref()
                    .map_or("(no such column)".into(), ToString::to_string),
            })
            .collect(),
        _ => Vec::new(),
    };
    Difference {
        kind: candidate.kind.name(),
        key: key_text(table, &candidate.key),
        columns,
    }
}
