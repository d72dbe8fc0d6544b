//! `verify --oracle sql`: an independent second opinion on the same question.
//!
//! `verify` reads the source through kappa's own decoders, so a decoding bug
//! would appear on both of its sides. The oracle keeps kappa's parsers off
//! the comparison: it rebuilds the topic into a typed table **in the
//! source's own server** (a schema/database the user names, default
//! `kappa_oracle`, created if missing; the table is dropped afterwards) and
//! lets that server compare, with SQL only:
//!
//! ```sql
//! SELECT count(*) FROM (SELECT cols FROM source EXCEPT ALL SELECT cols FROM rebuilt)
//! SELECT count(*) FROM (SELECT cols FROM rebuilt EXCEPT ALL SELECT cols FROM source)
//! ```
//!
//! Columns are compared as the server's own values where both sides have
//! the same type with an equality; otherwise (json, point, xml, enums,
//! domains, extension types, …) as the server's text form on both sides.
//! Masked columns are compared after the same mask is applied in SQL to the
//! source (salted SHA-256 over the same bytes the reader hashes, constants
//! as parameters); excluded columns are not in the rebuilt table and are
//! skipped. A hashed column whose hashed text the server cannot reproduce
//! (floats, whose text kappa writes in Rust's shortest form) is listed as not
//! compared rather than guessed.
//!
//! The source is read as it is when the queries run, the topic as it is when
//! the rebuild starts: the oracle is for a stopped or caught-up, idle
//! connector. For a live one, verify's re-check (`--slot`,
//! `--wait-for-connector`) is the tool, and the two are refused together.

use super::database::{with_database, OnDatabase, VerifyDatabase};
use super::VerifyOptions;
use crate::rebuild::{self, RebuildOptions, Target, TargetPassword};
use anyhow::{bail, Context};
use kappa_schemas::mask::ColumnRule;
use kappa_schemas::{ColumnType, Registry, TableName};
use kappa_sink::replay::Bound;
use kappa_sink::KafkaConfig;
use serde::Serialize;
use std::collections::HashMap;

/// The default schema (PostgreSQL) or database (MySQL) of the oracle's table.
pub const DEFAULT_SCHEMA: &str = "kappa_oracle";

/// What the oracle found.
#[derive(Debug, Default, Serialize)]
pub struct OracleReport {
    /// Where the rebuilt table was made (and dropped).
    pub rebuilt_table: String,
    pub source_rows: u64,
    pub rebuilt_rows: u64,
    /// Rows of the source with no equal row in the rebuilt table (counted
    /// with multiplicity: `EXCEPT ALL`).
    pub only_in_source: u64,
    /// Rows of the rebuilt table with no equal row in the source.
    pub only_in_rebuilt: u64,
    /// Columns compared as the server's text form on both sides.
    pub compared_as_text: Vec<String>,
    /// Columns masked in SQL before comparing (hash or constant).
    pub masked: Vec<String>,
    /// Excluded columns (not in the topic) and hashed columns whose hash
    /// the server cannot reproduce, with the reason.
    pub not_compared: Vec<String>,
}

impl OracleReport {
    pub fn differences(&self) -> u64 {
        self.only_in_source + self.only_in_rebuilt
    }
}

/// A source column as the oracle needs it: the value kind the reader makes
/// of it (which decides the bytes a hash covers) and the server's type.
pub struct SourceColumn {
    pub name: String,
    pub column_type: ColumnType,
    /// The server's base type name (no length or precision), or a name that
    /// never matches (`domain …`) when values should go through text.
    pub type_name: String,
}

/// One database's SQL for the oracle.
pub trait OracleServer {
    /// The table's captured columns, in column order.
    async fn source_columns(&mut self, table: &TableName) -> anyhow::Result<Vec<SourceColumn>>;
    /// `FROM` text for the source table (PostgreSQL: `ONLY` unless partitioned).
    fn source_from(&self, table: &TableName) -> String;
    /// Creates the schema/database if missing.
    async fn ensure_schema(&mut self, schema: &str) -> anyhow::Result<()>;
    /// Column name → base type name of a table's columns.
    async fn type_names(&mut self, table: &TableName) -> anyhow::Result<HashMap<String, String>>;
    fn quote_ident(&self, name: &str) -> String;
    fn quote_table(&self, table: &TableName) -> String;
    /// Whether values of these types compare as themselves.
    fn native(&self, source_type: &str, rebuilt_type: &str) -> bool;
    /// The server's text form of an expression, comparable byte for byte.
    fn text(&self, expr: &str) -> String;
    /// The hashed text of a column, as the reader hashes it (see
    /// `kappa_schemas::mask`); `salt` is a placeholder. `None` when the
    /// server cannot reproduce it.
    fn hash(&self, column: &SourceColumn, salt: &str) -> Option<String>;
    /// The constant mask: NULL stays NULL, anything else becomes `text`.
    fn constant(&self, column: &str, text: &str) -> String;
    /// The placeholder for parameter `n` (1-based).
    fn placeholder(&self, n: usize) -> String;
    /// Runs a `SELECT count(*) …` with text parameters.
    async fn count(&mut self, sql: &str, params: &[String]) -> anyhow::Result<u64>;
    async fn drop_table(&mut self, table: &TableName) -> anyhow::Result<()>;
    /// The rebuild target for a table of this server.
    fn target(&self, table: TableName) -> Target;
}

/// Runs the oracle for the table of `options` (see the module docs).
pub async fn run(
    kafka: &KafkaConfig,
    registry: &Registry,
    options: &VerifyOptions,
    schema: &str,
) -> anyhow::Result<OracleReport> {
    if options.connector.is_some() {
        bail!(
            "--oracle sql compares the source as it is now with the topic as it is now, so it needs a stopped or caught-up, idle connector; \
             drop --slot/--wait-for-connector to run it, or drop --oracle to check a live connector with verify's re-check"
        );
    }
    with_database(
        &options.source_url,
        Oracle {
            kafka,
            registry,
            options,
            schema,
        },
    )
    .await
}

/// [`run`] on the source's kind of database.
struct Oracle<'a> {
    kafka: &'a KafkaConfig,
    registry: &'a Registry,
    options: &'a VerifyOptions,
    schema: &'a str,
}

impl OnDatabase for Oracle<'_> {
    type Output = OracleReport;

    async fn on<D: VerifyDatabase>(self) -> anyhow::Result<OracleReport> {
        let password = D::password(self.options);
        let server = D::oracle(&self.options.source_url, password.clone()).await?;
        run_on(
            server,
            self.kafka,
            self.registry,
            self.options,
            self.schema,
            password,
        )
        .await
    }
}

async fn run_on<S: OracleServer>(
    mut server: S,
    kafka: &KafkaConfig,
    registry: &Registry,
    options: &VerifyOptions,
    schema: &str,
    password: Option<String>,
) -> anyhow::Result<OracleReport> {
    let source = server.source_columns(&options.table).await?;
    server.ensure_schema(schema).await.with_context(|| {
        format!(
            "the oracle needs CREATE on {schema:?} in the source server (or pass --oracle-schema)"
        )
    })?;
    let rebuilt = TableName::new(schema, oracle_table_name(&options.table));
    let summary = rebuild::rebuild(
        kafka,
        registry,
        &RebuildOptions {
            topic: options.topic.clone(),
            target: server.target(rebuilt.clone()),
            bound: Bound::Latest,
            skip_invalid: options.skip_invalid,
            parallelism: 0,
            require_exact: false,
            password: password.map(TargetPassword),
        },
    )
    .await
    .with_context(|| format!("rebuilding {} into {rebuilt} for the oracle", options.topic))?;
    tracing::info!(table = %rebuilt, rows = summary.live_keys, "oracle table rebuilt in the source server");
    let compared = compare(&mut server, options, &source, &rebuilt).await;
    let dropped = server.drop_table(&rebuilt).await;
    let report = compared?;
    dropped.with_context(|| format!("dropping the oracle's table {rebuilt}"))?;
    Ok(report)
}

/// `<schema_table, cut>_<hash of the full name>_<pid>`: unique per table and
/// run, and short enough (at most 41 characters) that the rebuild's scratch
/// name and its key index fit PostgreSQL's 63 bytes uncut.
fn oracle_table_name(table: &TableName) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&table.schema, &table.table).hash(&mut hasher);
    let base: String = format!("{}_{}", table.schema, table.table)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(24)
        .collect();
    format!(
        "{base}_{:08x}_{}",
        hasher.finish() as u32,
        std::process::id() % 10_000_000
    )
}

/// Plans the columns and lets the server count the differences.
async fn compare<S: OracleServer>(
    server: &mut S,
    options: &VerifyOptions,
    source: &[SourceColumn],
    rebuilt: &TableName,
) -> anyhow::Result<OracleReport> {
    let rebuilt_types = server.type_names(rebuilt).await?;
    let (rules, salt) = match options
        .masking
        .as_ref()
        .and_then(|m| m.rules(&options.table))
    {
        Some((rules, salt)) => (rules, salt),
        None => (&[][..], ""),
    };
    let mut report = OracleReport {
        rebuilt_table: rebuilt.to_string(),
        ..OracleReport::default()
    };
    let mut params: Vec<String> = Vec::new();
    let (mut source_exprs, mut rebuilt_exprs) = (Vec::new(), Vec::new());
    for column in source {
        let quoted = server.quote_ident(&column.name);
        let rule = rules
            .iter()
            .find(|(c, _)| c == &column.name)
            .map(|(_, r)| r);
        let rebuilt_type = rebuilt_types.get(&column.name);
        let source_expr = match rule {
            Some(ColumnRule::Exclude) => {
                report
                    .not_compared
                    .push(format!("{}: excluded by the connector", column.name));
                continue;
            }
            Some(ColumnRule::Hash) => {
                let salt_placeholder = server.placeholder(params.len() + 1);
                match server.hash(column, &salt_placeholder) {
                    Some(expr) => {
                        params.push(salt.to_string());
                        report.masked.push(column.name.clone());
                        expr
                    }
                    None => {
                        report.not_compared.push(format!(
                            "{}: hashed, and the server cannot write its {:?} values as kappa hashes them",
                            column.name, column.column_type
                        ));
                        continue;
                    }
                }
            }
            Some(ColumnRule::Constant(text)) => {
                params.push(text.clone());
                report.masked.push(column.name.clone());
                server.constant(&quoted, &server.placeholder(params.len()))
            }
            None => {
                let Some(rebuilt_type) = rebuilt_type else {
                    bail!(
                        "the rebuilt table has no column {}: if the connector leaves it out, pass its config (--config) so verify knows",
                        column.name
                    );
                };
                if server.native(&column.type_name, rebuilt_type) {
                    source_exprs.push(quoted.clone());
                    rebuilt_exprs.push(quoted);
                } else {
                    report.compared_as_text.push(column.name.clone());
                    source_exprs.push(server.text(&quoted));
                    rebuilt_exprs.push(server.text(&quoted));
                }
                continue;
            }
        };
        if rebuilt_type.is_none() {
            bail!("the rebuilt table has no column {}", column.name);
        }
        source_exprs.push(source_expr);
        rebuilt_exprs.push(server.text(&quoted));
    }
    if source_exprs.is_empty() {
        bail!("table {}: no column left to compare", options.table);
    }
    let source_select = format!(
        "SELECT {} FROM {}",
        source_exprs.join(", "),
        server.source_from(&options.table)
    );
    let rebuilt_select = format!(
        "SELECT {} FROM {}",
        rebuilt_exprs.join(", "),
        server.quote_table(rebuilt)
    );
    let doing = |what: &str| format!("the oracle's {what} for {}", options.table);
    report.only_in_source = server
        .count(
            &format!("SELECT count(*) FROM ({source_select} EXCEPT ALL {rebuilt_select}) AS d"),
            &params,
        )
        .await
        .with_context(|| doing("count of rows only in the source"))?;
    report.only_in_rebuilt = server
        .count(
            &format!("SELECT count(*) FROM ({rebuilt_select} EXCEPT ALL {source_select}) AS d"),
            &params,
        )
        .await
        .with_context(|| doing("count of rows only in the rebuilt table"))?;
    report.source_rows = server
        .count(
            &format!(
                "SELECT count(*) FROM {}",
                server.source_from(&options.table)
            ),
            &[],
        )
        .await
        .with_context(|| doing("source row count"))?;
    report.rebuilt_rows = server
        .count(
            &format!("SELECT count(*) FROM {}", server.quote_table(rebuilt)),
            &[],
        )
        .await
        .with_context(|| doing("rebuilt row count"))?;
    Ok(report)
}

/// The report's line next to verify's counts.
pub fn print_report(report: &OracleReport) {
    println!(
        "oracle (sql, in the source server): {} rows only in the source, {} rows only in the rebuilt table ({} source rows, {} rebuilt rows)",
        report.only_in_source, report.only_in_rebuilt, report.source_rows, report.rebuilt_rows
    );
    println!("  rebuilt as {} (dropped after)", report.rebuilt_table);
    if !report.compared_as_text.is_empty() {
        println!("  compared as text: {}", report.compared_as_text.join(", "));
    }
    if !report.masked.is_empty() {
        println!("  masked in SQL: {}", report.masked.join(", "));
    }
    for note in &report.not_compared {
        println!("  not compared: {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oracle_table_names_are_short_and_tell_long_names_apart() {
        let long = |suffix: &str| TableName::new("public", format!("{}{suffix}", "x".repeat(60)));
        let (a, b) = (oracle_table_name(&long("a")), oracle_table_name(&long("b")));
        assert_ne!(a, b);
        assert!(a.len() <= 41, "{a}");
        assert!(a.starts_with("public_xxx"), "{a}");
    }
}
