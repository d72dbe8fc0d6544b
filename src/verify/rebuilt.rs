//! The rebuilt side of `verify`: rows of a rebuilt SQLite table in order-key
//! order, decoded (each value with its writer schema, resolved to the reader
//! schema the rebuild recorded) and laid out in the source table's column
//! order. A thread streams them in chunks through a bounded channel, so
//! memory holds a few chunks whatever the table's size, and decoding runs
//! beside the source side's parsing.
//!
//! A table rebuilt into PostgreSQL or MySQL (`kappa rebuild --into
//! postgres://…` / `mysql://…`) is read like a source table of that server
//! — in one snapshot, typed values, the same order key — and its columns
//! are matched to the source's by name. [`open`] is the one place verify
//! tells rebuilt targets apart.

use anyhow::{bail, Context};
use kappa_materialize::datum::DatumPlan;
use kappa_materialize::resolve::{decode_value, StoredSchema};
use kappa_materialize::table::RebuiltTable;
use kappa_schemas::avro::avro_name;
use kappa_schemas::framing::unframe;
use kappa_schemas::{AvroSchema, TableSchema, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

use super::mysql_source::MysqlOrdered;
use super::pg_source::PgOrdered;
use super::source::OrderedSource;
use crate::rebuild::Target;

/// The rebuilt side, streaming.
pub struct RebuiltRows {
    /// The rows the table held when opened, where that is known up front
    /// (SQLite), to warn when the read gave another number.
    pub counted: Option<u64>,
    pub rows: mpsc::Receiver<anyhow::Result<Vec<RebuiltRow>>>,
}

/// Opens the table `target` holds and streams its rows in order-key order,
/// laid out in `table`'s column order. `source_password` is the source's
/// password, used for a target on the same kind of server when the
/// target's own variable (`KAPPA_POSTGRES_PASSWORD`,
/// `KAPPA_MYSQL_PASSWORD`) is unset — never a password of the other kind.
pub async fn open(
    target: &Target,
    table: Arc<TableSchema>,
    source_password: Option<&str>,
    source_is_mysql: bool,
    scratch: &Path,
) -> anyhow::Result<RebuiltRows> {
    let password = |variable: &str, same_kind: bool| {
        std::env::var(variable).ok().or_else(|| {
            same_kind
                .then(|| source_password.map(str::to_string))
                .flatten()
        })
    };
    let dir = scratch.join("rebuilt");
    match target {
        Target::Sqlite(path) => {
            let (counted, rows) = stream(path, table)?;
            Ok(RebuiltRows {
                counted: Some(counted),
                rows,
            })
        }
        Target::Postgres { url, table: name } => {
            std::fs::create_dir_all(&dir)?;
            let password = password("KAPPA_POSTGRES_PASSWORD", !source_is_mysql);
            let mut rebuilt = PgOrdered::open(url, password.as_deref(), name, &dir).await?;
            rebuilt.begin_snapshot().await?;
            Ok(RebuiltRows {
                counted: None,
                rows: stream_ordered(rebuilt, table),
            })
        }
        Target::Mysql { url, table: name } => {
            std::fs::create_dir_all(&dir)?;
            let password = password("KAPPA_MYSQL_PASSWORD", source_is_mysql);
            let mut rebuilt =
                MysqlOrdered::open(url, password.as_deref(), name, false, &dir).await?;
            rebuilt.begin_snapshot().await?;
            Ok(RebuiltRows {
                counted: None,
                rows: stream_ordered(rebuilt, table),
            })
        }
    }
}

/// One rebuilt row: its order key and, per source column, the rebuilt
/// value (`None`: the rebuilt schema has no such field).
pub struct RebuiltRow {
    pub ord: Vec<u8>,
    pub values: Vec<Option<Value>>,
}

const CHUNK: usize = 2000;

/// Opens the table and starts streaming its rows. Errors in the thread
/// arrive as the channel's last item.
pub fn stream(
    path: &Path,
    table: Arc<TableSchema>,
) -> anyhow::Result<(u64, mpsc::Receiver<anyhow::Result<Vec<RebuiltRow>>>)> {
    let rebuilt = RebuiltTable::open(path)?;
    let count = rebuilt.row_count()?;
    let (tx, rx) = mpsc::channel(4);
    let path: PathBuf = path.to_path_buf();
    std::thread::spawn(move || {
        let result = read_all(&rebuilt, &path, &table, &tx);
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    Ok((count, rx))
}

/// Streams the rows of a table rebuilt into a server (its snapshot begun),
/// laid out in `table`'s column order. Errors arrive as the channel's last
/// item.
fn stream_ordered<S: OrderedSource + 'static>(
    mut rebuilt: S,
    table: Arc<TableSchema>,
) -> mpsc::Receiver<anyhow::Result<Vec<RebuiltRow>>> {
    let (tx, rx) = mpsc::channel(4);
    let positions: Vec<Option<usize>> = table
        .columns
        .iter()
        .map(|c| {
            rebuilt
                .schema()
                .columns
                .iter()
                .position(|r| r.name == c.name)
        })
        .collect();
    tokio::spawn(async move {
        loop {
            let chunk = match rebuilt.next_chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            };
            let rows = chunk
                .into_iter()
                .map(|(ord, mut row)| RebuiltRow {
                    ord,
                    values: positions
                        .iter()
                        .map(|p| {
                            p.and_then(|i| {
                                row.get_mut(i).map(|v| std::mem::replace(v, Value::Null))
                            })
                        })
                        .collect(),
                })
                .collect();
            if tx.send(Ok(rows)).await.is_err() {
                break;
            }
        }
    });
    rx
}

/// Decodes stored values; shared with point look-ups.
pub struct RowDecoder {
    schemas: HashMap<u32, StoredSchema>,
    /// Direct decoders per writer id (`None`: the general path).
    plans: HashMap<u32, Option<DatumPlan>>,
    reader: StoredSchema,
    /// For each source column, its position among the reader's fields.
    positions: Vec<Option<usize>>,
}

impl RowDecoder {
    pub fn new(rebuilt: &RebuiltTable, path: &Path, table: &TableSchema) -> anyhow::Result<Self> {
        let mut schemas = HashMap::new();
        for (id, text) in rebuilt.schemas()? {
            let schema = AvroSchema::parse_str(&text)
                .with_context(|| format!("{}: stored schema id {id}", path.display()))?;
            schemas.insert(
                id,
                StoredSchema {
                    id,
                    schema: Arc::new(schema),
                    text: text.as_str().into(),
                },
            );
        }
        let Some(reader_id) = rebuilt.meta("reader_schema_id")? else {
            bail!(
                "{} has no reader schema recorded (made by an older kappa): rebuild it again",
                path.display()
            );
        };
        let reader_id: u32 = reader_id.parse().context("reader_schema_id")?;
        let Some(reader) = schemas.get(&reader_id).cloned() else {
            bail!(
                "{}: reader schema id {reader_id} is not stored",
                path.display()
            );
        };
        let fields = kappa_materialize::resolve::field_names(&reader.schema);
        let positions = table
            .columns
            .iter()
            .map(|c| {
                let name = avro_name(&c.name);
                fields.iter().position(|f| *f == name)
            })
            .collect();
        let plans = schemas
            .iter()
            .map(|(&id, writer)| {
                let reader = (id != reader.id).then_some(reader.schema.as_ref());
                (id, DatumPlan::new(&writer.schema, reader))
            })
            .collect();
        Ok(Self {
            schemas,
            plans,
            reader,
            positions,
        })
    }

    /// Decodes one stored value into source column order.
    pub fn decode(&self, value: &[u8]) -> Result<Vec<Option<Value>>, String> {
        let (id, datum) = unframe(value).map_err(|e| e.to_string())?;
        let writer = self
            .schemas
            .get(&id)
            .ok_or_else(|| format!("schema id {id} is not stored in the rebuilt table"))?;
        let values = match self.plans.get(&id) {
            Some(Some(plan)) => plan.decode(datum)?,
            _ => decode_value(writer, &self.reader, datum)?
                .into_iter()
                .map(|(_, v)| v)
                .collect(),
        };
        let mut fields: Vec<Option<Value>> = values.into_iter().map(Some).collect();
        Ok(self
            .positions
            .iter()
            .map(|p| p.and_then(|i| fields.get_mut(i).and_then(Option::take)))
            .collect())
    }
}

fn read_all(
    rebuilt: &RebuiltTable,
    path: &Path,
    table: &TableSchema,
    tx: &mpsc::Sender<anyhow::Result<Vec<RebuiltRow>>>,
) -> anyhow::Result<()> {
    let decoder = RowDecoder::new(rebuilt, path, table)?;
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut closed = false;
    rebuilt.for_each_row(|ord, value| {
        if closed {
            return Ok(());
        }
        let values =
            decoder
                .decode(value)
                .map_err(|reason| kappa_materialize::MaterializeError::Table {
                    path: path.display().to_string(),
                    reason,
                })?;
        chunk.push(RebuiltRow {
            ord: ord.to_vec(),
            values,
        });
        if chunk.len() >= CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            closed = tx.blocking_send(Ok(full)).is_err();
        }
        Ok(())
    })?;
    if !chunk.is_empty() && !closed {
        let _ = tx.blocking_send(Ok(chunk));
    }
    Ok(())
}
