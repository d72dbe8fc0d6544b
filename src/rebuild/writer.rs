//! The table writer: one task applying the workers' batches to the target,
//! SQLite on a blocking thread, PostgreSQL on the runtime.

use super::decoding::Applied;
use super::{pg_target, RebuildOptions, Target};
use kappa_schemas::Registry;
use kappa_sink::resolve::{latest_schema, DecodedRecord, StoredSchema};
use kappa_sink::table::TableBuilder;
use tokio::sync::mpsc;

/// Records per PostgreSQL transaction.
const PG_BATCH: usize = 20_000;

/// What the writer task ends with.
pub enum Written {
    Sqlite(TableBuilder),
    Postgres(pg_target::PgTableBuilder),
}

pub async fn start_writer(
    registry: &Registry,
    options: &RebuildOptions,
    reader: &StoredSchema,
    mut rx: mpsc::Receiver<Vec<Applied>>,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<Written>>> {
    Ok(match &options.target {
        Target::Sqlite(path) => {
            let mut builder = TableBuilder::create(path)?;
            tokio::task::spawn_blocking(move || {
                while let Some(batch) = rx.blocking_recv() {
                    for a in batch {
                        builder.apply(
                            &a.record.ord,
                            &a.key,
                            a.value.as_deref(),
                            a.partition,
                            a.offset,
                        )?;
                    }
                }
                Ok(Written::Sqlite(builder))
            })
        }
        Target::Postgres { url, table } => {
            let key = latest_schema(registry, &format!("{}-key", options.topic))
                .await
                .map_err(anyhow::Error::msg)?;
            let shape = pg_target::shape(&reader.schema, &key.schema)?;
            let password = std::env::var("KAPPA_POSTGRES_PASSWORD").ok();
            let client = kappa_source::postgres::connect(url, password.as_deref()).await?;
            let mut builder =
                pg_target::PgTableBuilder::create(client, table.clone(), shape).await?;
            tokio::spawn(async move {
                let mut pending: Vec<DecodedRecord> = Vec::with_capacity(PG_BATCH);
                while let Some(batch) = rx.recv().await {
                    pending.extend(batch.into_iter().map(|a| a.record));
                    while pending.len() < PG_BATCH {
                        match rx.try_recv() {
                            Ok(more) => pending.extend(more.into_iter().map(|a| a.record)),
                            Err(_) => break,
                        }
                    }
                    builder.apply(&pending).await?;
                    pending.clear();
                }
                Ok(Written::Postgres(builder))
            })
        }
    })
}
