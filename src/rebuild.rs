//! `kappa rebuild`: a topic replayed from its beginning to end offsets fixed
//! at the start (or those of `--as-of` / `--until-offsets`) into a table,
//! newest record per key, tombstones deleting.
//!
//! Every partition is read by its own worker thread, which decodes each
//! record (key, and value resolved to the subject's latest schema) and hands
//! batches to one writer through a bounded channel: memory holds a few
//! batches whatever the topic's size. A record that cannot be part of the
//! table (not Confluent-framed, unknown schema id, undecodable, no key) stops
//! the rebuild with its topic, partition and offset, or is counted and
//! skipped with `--skip-invalid`.

mod decoding;
mod progress;
mod summary;
mod target;

pub use summary::{print_summary, HistoryCheck, PartitionSummary, RebuildSummary};
pub use target::{parse_as_of, parse_target, parse_until_offsets, Target, TargetPassword};

use anyhow::{bail, Context};
use decoding::{Applied, DecodingSink, BATCH, INVALID_SHOWN};
use kappa_materialize::resolve::{latest_schema, RecordDecoder, StoredSchema};
use kappa_schemas::{AvroSchema, Registry};
use kappa_sink::replay::{self, Bound, PartitionSink, ReplayPlan, ReplayProgress, ReplayRecord};
use kappa_sink::KafkaConfig;
use std::collections::HashMap;

use kappa_materialize::target::{
    mysql as mysql_target, postgres as pg_target, sqlite as sqlite_target, start_writer, Finishing,
    TargetWriter, Written,
};
use std::sync::Arc;
use std::time::Instant;
use summary::Meta;
use tokio::sync::{mpsc, watch};

/// Batches in flight between the workers and the writer.
const IN_FLIGHT: usize = 16;

/// What to rebuild, and how.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    pub topic: String,
    pub target: Target,
    pub bound: Bound,
    pub skip_invalid: bool,
    /// Worker threads; 0 = one per partition (at most 8).
    pub parallelism: usize,
    /// Fail instead of warning when an as-of point predates retained history.
    pub require_exact: bool,
    /// The target server's password, when not in its URL or the environment
    /// (`KAPPA_POSTGRES_PASSWORD`, `KAPPA_MYSQL_PASSWORD`).
    pub password: Option<TargetPassword>,
}

fn workers(parallelism: usize, plan: &ReplayPlan) -> usize {
    if parallelism > 0 {
        parallelism
    } else {
        plan.partitions.len().clamp(1, 8)
    }
}

/// Rebuilds a topic into its target.
pub async fn rebuild(
    kafka: &KafkaConfig,
    registry: &Registry,
    options: &RebuildOptions,
) -> anyhow::Result<RebuildSummary> {
    let started = Instant::now();
    let topic = options.topic.clone();
    let reader = latest_schema(registry, &format!("{topic}-value"))
        .await
        .map_err(anyhow::Error::msg)?;
    let delete_retention_ms = delete_retention_ms(kafka, &topic).await;
    let plan = {
        let (kafka, topic, bound) = (kafka.clone(), topic.clone(), options.bound.clone());
        tokio::task::spawn_blocking(move || replay::plan(&kafka, &topic, &bound))
            .await
            .context("planning the replay")??
    };
    let history = (!matches!(options.bound, Bound::Latest)).then(|| HistoryCheck {
        removed_before_end: 0,
        partitions_without_history: plan
            .partitions
            .iter()
            .filter(|p| p.end > 0 && p.low >= p.end)
            .map(|p| p.partition)
            .collect(),
        exact: false,
    });
    if let Some(history) = &history {
        if options.require_exact && !history.partitions_without_history.is_empty() {
            bail!(
                "--require-exact: the requested point predates the retained history of {topic}: partitions {:?} hold no record before it any more",
                history.partitions_without_history
            );
        }
    }

    let prepared = Prepared {
        started,
        topic,
        reader,
        delete_retention_ms,
        plan,
        history,
    };
    // The one match on the target: open its writer, then the same replay.
    match &options.target {
        Target::Sqlite(path) => {
            let writer = sqlite_target::SqliteWriter::create(path)?;
            replay_into(kafka, registry, options, prepared, writer).await
        }
        Target::Postgres { url, table } => {
            let (value, key) = typed_schemas(registry, &prepared).await?;
            let password = target_password(options, "KAPPA_POSTGRES_PASSWORD");
            let writer =
                pg_target::PgWriter::open(url, password.as_deref(), table, &value, &key).await?;
            replay_into(kafka, registry, options, prepared, writer).await
        }
        Target::Mysql { url, table } => {
            let (value, key) = typed_schemas(registry, &prepared).await?;
            let password = target_password(options, "KAPPA_MYSQL_PASSWORD");
            let writer =
                mysql_target::MysqlWriter::open(url, password.as_deref(), table, &value, &key)
                    .await?;
            replay_into(kafka, registry, options, prepared, writer).await
        }
    }
}

/// What a rebuild knows before its target is opened.
struct Prepared {
    started: Instant,
    topic: String,
    reader: StoredSchema,
    delete_retention_ms: Option<u64>,
    plan: ReplayPlan,
    history: Option<HistoryCheck>,
}

/// A typed target's columns come from the value schema the records resolve
/// to, its primary key from the key schema.
async fn typed_schemas(
    registry: &Registry,
    prepared: &Prepared,
) -> anyhow::Result<(Arc<AvroSchema>, Arc<AvroSchema>)> {
    let key = latest_schema(registry, &format!("{}-key", prepared.topic))
        .await
        .map_err(anyhow::Error::msg)?;
    Ok((prepared.reader.schema.clone(), key.schema))
}

/// The target server's password: `--password`'s, else the variable's.
fn target_password(options: &RebuildOptions, variable: &str) -> Option<String> {
    match &options.password {
        Some(password) => Some(password.0.clone()),
        None => std::env::var(variable).ok(),
    }
}

/// The replay of a prepared rebuild into an opened target, for any target.
async fn replay_into<W: TargetWriter>(
    kafka: &KafkaConfig,
    registry: &Registry,
    options: &RebuildOptions,
    prepared: Prepared,
    writer: W,
) -> anyhow::Result<RebuildSummary> {
    let Prepared {
        started,
        topic,
        reader,
        delete_retention_ms,
        plan,
        history,
    } = prepared;
    let (tx, rx) = mpsc::channel::<Vec<Applied>>(IN_FLIGHT);
    let writer = start_writer(writer, rx);

    let progress = Arc::new(ReplayProgress::default());
    let (done_tx, done_rx) = watch::channel(false);
    let shown = tokio::spawn(progress::show(
        topic.clone(),
        plan.span(),
        progress.clone(),
        done_rx,
        progress::Display::for_stderr(),
    ));
    let replayed = {
        let kafka = kafka.clone();
        let plan = plan.clone();
        let registry = registry.clone();
        let runtime = tokio::runtime::Handle::current();
        let reader = reader.clone();
        let workers = workers(options.parallelism, &plan);
        let (skip_invalid, keep_bytes) = (options.skip_invalid, W::KEEPS_RECORD_BYTES);
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || {
            replay::run(&kafka, &plan, workers, &progress, move || DecodingSink {
                decoder: {
                    let decoder =
                        RecordDecoder::new(registry.clone(), runtime.clone(), reader.clone());
                    // SQLite stores the record bytes: values are checked, not built.
                    if keep_bytes {
                        decoder.checking_values_only()
                    } else {
                        decoder
                    }
                },
                batch: Vec::with_capacity(BATCH),
                tx: tx.clone(),
                skip_invalid,
                keep_bytes,
                invalid: 0,
                first_invalid: Vec::new(),
            })
        })
        .await
        .context("replay task")?
    };
    let _ = done_tx.send(true);
    let _ = shown.await;
    // The sinks hold the last senders: the writer finishes once they are gone.
    let (sinks, reads, replay_error) = match replayed {
        Ok((sinks, reads)) => (sinks, reads, None),
        Err(e) => (Vec::new(), Vec::new(), Some(e)),
    };
    let mut schemas: HashMap<u32, StoredSchema> = HashMap::new();
    let (mut invalid, mut first_invalid) = (0, Vec::new());
    for sink in sinks {
        for schema in sink.decoder.schemas() {
            schemas.insert(schema.id, schema.clone());
        }
        invalid += sink.invalid;
        first_invalid.extend(sink.first_invalid);
    }
    let written = writer.await.context("table writer task")?;
    if let Some(e) = replay_error {
        // A writer failure shows up in the workers as "the writer stopped":
        // its own error is the one to report.
        match written {
            Err(writer_error) => return Err(writer_error.context(e.to_string())),
            Ok(writer) => writer.abort().await,
        }
        return Err(e.into());
    }
    let writer = written?;
    first_invalid.truncate(INVALID_SHOWN);

    let records: u64 = reads.iter().map(|r| r.records).sum();
    let partitions: Vec<PartitionSummary> = plan
        .partitions
        .iter()
        .map(|p| PartitionSummary {
            partition: p.partition,
            earliest: p.low,
            high_watermark: p.high,
            end: p.end,
            records: reads
                .iter()
                .find(|r| r.partition == p.partition)
                .map_or(0, |r| r.records),
        })
        .collect();
    let history = history.map(|mut h| {
        h.removed_before_end = partitions
            .iter()
            .map(|p| (p.end - p.records as i64).max(0) as u64)
            .sum();
        h.exact = h.removed_before_end == 0 && h.partitions_without_history.is_empty();
        h
    });
    if let Some(history) = history
        .as_ref()
        .filter(|h| options.require_exact && !h.exact)
    {
        writer.abort().await;
        bail!(
            "--require-exact: {} records before the end offsets of {topic} are no longer in the topic \
             (compaction or retention), so the table as of that point cannot be guaranteed; nothing was written",
            history.removed_before_end
        );
    }
    let end_offsets: Vec<(i32, i64)> = plan
        .partitions
        .iter()
        .map(|p| (p.partition, p.end))
        .collect();
    let meta = Meta {
        topic: &topic,
        reader: &reader,
        plan: &plan,
        bound: &options.bound,
        invalid,
        history: history.as_ref(),
    };
    let Written {
        upserts,
        tombstones,
        live_keys,
    } = writer
        .finish(Finishing {
            meta: meta.entries()?,
            schemas: &schemas,
        })
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(RebuildSummary {
        topic,
        target: options.target.to_string(),
        records,
        upserts,
        tombstones,
        live_keys,
        invalid,
        first_invalid,
        seconds,
        records_per_second: records as f64 / seconds.max(1e-9),
        partitions,
        history,
        end_offsets,
        delete_retention_ms,
    })
}

/// The topic's `delete.retention.ms`: how long the broker keeps a tombstone
/// once compaction has reached it. A replay that takes longer may miss a
/// tombstone written after it started reading that partition's older
/// records, and keep the deleted row. `None` when the broker would not say
/// (no DescribeConfigs permission): the check is then skipped, with a warning.
async fn delete_retention_ms(kafka: &KafkaConfig, topic: &str) -> Option<u64> {
    match kappa_sink::topics::topic_configs(kafka, topic).await {
        Ok(configs) => configs
            .get("delete.retention.ms")
            .and_then(|v| v.parse::<u64>().ok()),
        Err(e) => {
            tracing::warn!(topic, error = %e, "could not read delete.retention.ms; the rebuild cannot tell whether it outlasted it");
            None
        }
    }
}

/// The baseline for the rebuild benchmark: the same parallel replay with
/// the same consumers, counting records without decoding or writing them.
pub async fn raw_read(
    kafka: &KafkaConfig,
    topic: &str,
    parallelism: usize,
) -> anyhow::Result<(u64, f64)> {
    struct Count(u64);
    impl PartitionSink for Count {
        type Error = String;
        fn record(&mut self, _: ReplayRecord<'_>) -> Result<(), String> {
            self.0 += 1;
            Ok(())
        }
    }
    let started = Instant::now();
    let (kafka, topic) = (kafka.clone(), topic.to_string());
    let records = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let plan = replay::plan(&kafka, &topic, &Bound::Latest)?;
        let workers = workers(parallelism, &plan);
        let progress = Arc::new(ReplayProgress::default());
        let (_, reads) = replay::run(&kafka, &plan, workers, &progress, || Count(0))?;
        Ok(reads.iter().map(|r| r.records).sum())
    })
    .await??;
    Ok((records, started.elapsed().as_secs_f64()))
}
