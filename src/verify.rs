//! `kappa verify`: the rebuilt table against the source table, row by row on
//! canonical values (see `kappa_schemas::Value`'s equality).

use anyhow::Context;
use kappa_schemas::avro::avro_name;
use kappa_schemas::decode::decode_record;
use kappa_schemas::framing::unframe;
use kappa_schemas::{TableName, TableSchema, Value};
use kappa_sink::table::RebuiltTable;
use kappa_source::postgres::catalog::load_table;
use kappa_source::postgres::connect;
use kappa_source::postgres::snapshot::{begin_snapshot, CopyRows};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

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
    pub first_differences: Vec<Difference>,
}

impl VerifyReport {
    pub fn differences(&self) -> u64 {
        self.missing + self.extra + self.different
    }

    fn note(&mut self, difference: Difference, limit: usize) {
        if self.first_differences.len() < limit {
            self.first_differences.push(difference);
        }
    }
}

type NamedRow = HashMap<String, Value>;

fn key_text(table: &TableSchema, values: impl Fn(usize) -> Option<Value>) -> String {
    table
        .key()
        .zip(&table.key_columns)
        .map(|(c, &i)| format!("{}={}", c.name, values(i).unwrap_or(Value::Null)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the rebuilt table into memory, keyed by the key's text. (Tables of
/// millions of rows get a merge-compare later; this holds one side.)
fn load_rebuilt(path: &Path, table: &TableSchema) -> anyhow::Result<HashMap<String, NamedRow>> {
    let rebuilt = RebuiltTable::open(path)?;
    let mut schemas: HashMap<u32, kappa_schemas::AvroSchema> = HashMap::new();
    let mut rows = HashMap::new();
    rebuilt.for_each_row(|_key, value| {
        let fail = |reason: String| kappa_sink::SinkError::Table {
            path: path.display().to_string(),
            reason,
        };
        let (id, datum) = unframe(value).map_err(|e| fail(e.to_string()))?;
        let schema = match schemas.entry(id) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let text = rebuilt
                    .schema(id)?
                    .ok_or_else(|| fail(format!("schema id {id} is not stored in the table")))?;
                entry.insert(
                    kappa_schemas::AvroSchema::parse_str(&text).map_err(|e| fail(e.to_string()))?,
                )
            }
        };
        let fields: NamedRow = decode_record(schema, datum, id)
            .map_err(|e| fail(e.to_string()))?
            .into_iter()
            .collect();
        let key = key_text(table, |i| {
            fields.get(&avro_name(&table.columns[i].name)).cloned()
        });
        rows.insert(key, fields);
        Ok(())
    })?;
    Ok(rows)
}

/// Compares the source table with the rebuilt table at `rebuilt_path`.
pub async fn verify(
    source_url: &str,
    password: Option<&str>,
    table_name: &TableName,
    rebuilt_path: &Path,
    limit: usize,
) -> anyhow::Result<VerifyReport> {
    let client = connect(source_url, password).await?;
    let table = load_table(&client, table_name).await?.schema;
    let mut rebuilt = load_rebuilt(rebuilt_path, &table).context("reading the rebuilt table")?;
    let mut report = VerifyReport {
        table: table_name.to_string(),
        rebuilt_rows: rebuilt.len() as u64,
        ..VerifyReport::default()
    };
    begin_snapshot(&client, None).await?;
    let mut rows = CopyRows::start(&client, table.clone(), false).await?;
    while let Some(chunk) = rows.next_chunk(10_000).await? {
        for row in chunk {
            report.source_rows += 1;
            let key = key_text(&table, |i| row.get(i).cloned());
            let Some(other) = rebuilt.remove(&key) else {
                report.missing += 1;
                report.note(
                    Difference {
                        kind: "missing",
                        key,
                        columns: Vec::new(),
                    },
                    limit,
                );
                continue;
            };
            let columns: Vec<ColumnDifference> = table
                .columns
                .iter()
                .zip(&row)
                .filter_map(|(column, source)| {
                    let theirs = other.get(&avro_name(&column.name));
                    let same = theirs.map_or(matches!(source, Value::Null), |v| v == source);
                    (!same).then(|| ColumnDifference {
                        column: column.name.clone(),
                        source: source.to_string(),
                        rebuilt: theirs.map_or("(no such column)".into(), ToString::to_string),
                    })
                })
                .collect();
            if !columns.is_empty() {
                report.different += 1;
                report.note(
                    Difference {
                        kind: "different",
                        key,
                        columns,
                    },
                    limit,
                );
            }
        }
    }
    client.batch_execute("COMMIT").await?;
    report.extra = rebuilt.len() as u64;
    let mut extra_keys: Vec<String> = rebuilt.into_keys().collect();
    extra_keys.sort();
    for key in extra_keys {
        report.note(
            Difference {
                kind: "extra",
                key,
                columns: Vec::new(),
            },
            limit,
        );
    }
    Ok(report)
}

/// Prints the report for a person.
pub fn print_report(report: &VerifyReport, topic: &str) {
    println!("verify {} against topic {topic}", report.table);
    println!(
        "source rows: {}  rebuilt rows: {}  missing: {}  extra: {}  different: {}",
        report.source_rows, report.rebuilt_rows, report.missing, report.extra, report.different
    );
    if !report.first_differences.is_empty() {
        println!("first differences:");
        for d in &report.first_differences {
            println!("  {:<9} {}", d.kind, d.key);
            for c in &d.columns {
                println!(
                    "            {}: source {} / rebuilt {}",
                    c.column, c.source, c.rebuilt
                );
            }
        }
    }
    if report.differences() == 0 {
        println!("verdict: OK, 0 differences");
    } else {
        println!("verdict: DIFFERENT, {} differences", report.differences());
    }
}
