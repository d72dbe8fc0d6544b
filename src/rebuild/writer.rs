//! The table writer: one task applying the workers' batches to the target,
//! SQLite on a blocking thread, PostgreSQL and MySQL on the runtime.

use super::decoding::Applied;
use super::{mysql_target, pg_target, RebuildOptions, Target};
use anyhow::Context;
use kappa_materialize::resolve::{latest_schema, DecodedRecord, StoredSchema};
use kappa_materialize::table::SqliteTableBuilder;
use kappa_schemas::Registry;
use tokio::sync::mpsc;

/// Records per PostgreSQL transaction.
const PG_BATCH: usize = 20_000;
/// Records per MySQL transaction.
const MYSQL_BATCH: usize = 5_000;

/// What the writer task ends with.
pub enum Written {
    Sqlite(SqliteTableBuilder),
    Postgres(pg_target::PgTableBuilder),
    Mysql(mysql_target::MysqlTableBuilder),
}

pub async fn start_writer(
    registry: &Registry,
    options: &RebuildOptions,
    reader: &StoredSchema,
    mut rx: mpsc::Receiver<Vec<Applied>>,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<Written>>> {
    Ok(match &options.target {
        Target::Sqlite(path) => {
            let mut builder = SqliteTableBuilder::create(path)?;
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
            let password = match &options.password {
                Some(p) => Some(p.0.clone()),
                None => std::env::var("KAPPA_POSTGRES_PASSWORD").ok(),
            };
            let client = kappa_source::postgres::connect(url, password.as_deref()).await?;
            let mut builder =
                pg_target::PgTableBuilder::create(client, table.clone(), shape.clone()).await?;
            // Batches are laid out as COPY text here while the batch before
            // is applied by PostgreSQL on the other task: one staged batch
            // waits at most, so memory stays bounded.
            let (staged_tx, mut staged_rx) = mpsc::channel::<pg_target::Staged>(1);
            let applier = tokio::spawn(async move {
                while let Some(staged) = staged_rx.recv().await {
                    builder.apply_staged(staged).await?;
                }
                anyhow::Ok(builder)
            });
            tokio::spawn(async move {
                let mut pending: Vec<DecodedRecord> = Vec::with_capacity(PG_BATCH);
                let mut stopped = false;
                while let Some(batch) = rx.recv().await {
                    pending.extend(batch.into_iter().map(|a| a.record));
                    // Wait for the applier first: batches pile up meanwhile,
                    // so transactions stay large while PostgreSQL is busy.
                    let Ok(permit) = staged_tx.reserve().await else {
                        // The applier failed: its error is the one to report.
                        stopped = true;
                        break;
                    };
                    while pending.len() < PG_BATCH {
                        match rx.try_recv() {
                            Ok(more) => pending.extend(more.into_iter().map(|a| a.record)),
                            Err(_) => break,
                        }
                    }
                    permit.send(pg_target::copy_text(&shape, &pending)?);
                    pending.clear();
                }
                drop(staged_tx);
                drop(rx);
                let builder = applier.await.context("PostgreSQL applier task")??;
                if stopped {
                    anyhow::bail!("the PostgreSQL applier stopped");
                }
                Ok(Written::Postgres(builder))
            })
        }
        Target::Mysql { url, table } => {
            let key = latest_schema(registry, &format!("{}-key", options.topic))
                .await
                .map_err(anyhow::Error::msg)?;
            let shape = mysql_target::shape(&reader.schema, &key.schema)?;
            let password = match &options.password {
                Some(p) => Some(p.0.clone()),
                None => std::env::var("KAPPA_MYSQL_PASSWORD").ok(),
            };
            let conn = mysql_target::connect(url, password.as_deref()).await?;
            let mut builder =
                mysql_target::MysqlTableBuilder::create(conn, table.clone(), shape).await?;
            tokio::spawn(async move {
                let mut pending: Vec<DecodedRecord> = Vec::with_capacity(MYSQL_BATCH);
                while let Some(batch) = rx.recv().await {
                    pending.extend(batch.into_iter().map(|a| a.record));
                    if pending.len() >= MYSQL_BATCH {
                        builder.apply(&pending).await?;
                        pending.clear();
                    }
                }
                if !pending.is_empty() {
                    builder.apply(&pending).await?;
                }
                Ok(Written::Mysql(builder))
            })
        }
    })
}
