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

pub mod pg_target;
mod progress;

use anyhow::{bail, Context};
use kappa_schemas::{Registry, TableName};
use kappa_sink::replay::{self, Bound, PartitionSink, ReplayPlan, ReplayProgress, ReplayRecord};
use kappa_sink::resolve::{latest_schema, DecodedRecord, RecordDecoder, StoredSchema};
use kappa_sink::table::TableBuilder;
use kappa_sink::KafkaConfig;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// Records per batch handed from a worker to the writer.
const BATCH: usize = 1000;
/// Batches in flight between the workers and the writer.
const IN_FLIGHT: usize = 16;
/// Records per PostgreSQL transaction.
const PG_BATCH: usize = 20_000;
/// Invalid records listed individually in the summary.
const INVALID_SHOWN: usize = 10;

/// Where a rebuild writes.
#[derive(Debug, Clone)]
pub enum Target {
    Sqlite(PathBuf),
    Postgres { url: String, table: TableName },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Sqlite(path) => write!(f, "{}", path.display()),
            Target::Postgres { table, .. } => write!(f, "PostgreSQL table {table}"),
        }
    }
}

/// `sqlite:PATH` or `postgres://…/db?table=schema.table`.
pub fn parse_target(into: &str) -> anyhow::Result<Target> {
    if into.starts_with("postgres://") || into.starts_with("postgresql://") {
        let (url, table) = pg_target::parse_url(into)?;
        return Ok(Target::Postgres { url, table });
    }
    sqlite_target(into).map(Target::Sqlite)
}

/// `sqlite:PATH` → PATH.
pub fn sqlite_target(into: &str) -> anyhow::Result<PathBuf> {
    match into.strip_prefix("sqlite:") {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => bail!(
            "--into {into:?}: expected sqlite:PATH (e.g. sqlite:/tmp/orders.sqlite) or \
             postgres://user@host/db?table=schema.table"
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
}

/// Whether the replayed history is complete up to the end offsets.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryCheck {
    /// Records below the end offsets that the topic no longer holds
    /// (compacted away, or deleted by retention).
    pub removed_before_end: u64,
    /// Partitions whose earliest retained offset is at or past the end.
    pub partitions_without_history: Vec<i32>,
    /// True when nothing before the end offsets was removed.
    pub exact: bool,
}

/// One partition of a rebuild.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionSummary {
    pub partition: i32,
    pub earliest: i64,
    pub high_watermark: i64,
    pub end: i64,
    pub records: u64,
}

/// What a rebuild did.
#[derive(Debug, Serialize)]
pub struct RebuildSummary {
    pub topic: String,
    pub target: String,
    pub records: u64,
    pub upserts: u64,
    pub tombstones: u64,
    pub live_keys: u64,
    pub invalid: u64,
    pub first_invalid: Vec<String>,
    pub seconds: f64,
    pub records_per_second: f64,
    pub partitions: Vec<PartitionSummary>,
    /// Set for `--as-of` and `--until-offsets`.
    pub history: Option<HistoryCheck>,
    pub end_offsets: Vec<(i32, i64)>,
}

/// One decoded record on its way to the writer.
struct Applied {
    record: DecodedRecord,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    partition: i32,
    offset: i64,
}

/// A worker's sink: decode, check, batch, hand over.
struct DecodingSink {
    decoder: RecordDecoder,
    batch: Vec<Applied>,
    tx: mpsc::Sender<Vec<Applied>>,
    skip_invalid: bool,
    keep_bytes: bool,
    invalid: u64,
    first_invalid: Vec<String>,
}

impl DecodingSink {
    fn hand_over(&mut self) -> Result<(), String> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.tx
            .blocking_send(batch)
            .map_err(|_| "the table writer stopped".to_string())
    }
}

impl PartitionSink for DecodingSink {
    type Error = String;

    fn record(&mut self, record: ReplayRecord<'_>) -> Result<(), String> {
        match self.decoder.decode(record.key, record.value)? {
            Ok(decoded) => {
                let (key, value) = if self.keep_bytes {
                    (
                        record.key.unwrap_or_default().to_vec(),
                        record.value.map(<[u8]>::to_vec),
                    )
                } else {
                    (Vec::new(), None)
                };
                self.batch.push(Applied {
                    record: decoded,
                    key,
                    value,
                    partition: record.partition,
                    offset: record.offset,
                });
                if self.batch.len() >= BATCH {
                    self.hand_over()?;
                }
                Ok(())
            }
            Err(invalid) if self.skip_invalid => {
                self.invalid += 1;
                if self.first_invalid.len() < INVALID_SHOWN {
                    self.first_invalid.push(format!(
                        "partition {} offset {}: {invalid}",
                        record.partition, record.offset
                    ));
                }
                if self.invalid <= INVALID_SHOWN as u64 {
                    tracing::warn!(partition = record.partition, offset = record.offset, reason = %invalid, "skipping an invalid record");
                }
                Ok(())
            }
            Err(invalid) => Err(format!(
                "{invalid} (rerun with --skip-invalid to count and skip such records)"
            )),
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        self.hand_over()
    }
}

/// What the writer task ends with.
enum Written {
    Sqlite(TableBuilder),
    Postgres(pg_target::PgTableBuilder),
}

fn workers(options: &RebuildOptions, plan: &ReplayPlan) -> usize {
    if options.parallelism > 0 {
        options.parallelism
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

    let (tx, rx) = mpsc::channel::<Vec<Applied>>(IN_FLIGHT);
    let writer = start_writer(registry, options, &reader, rx).await?;

    let progress = Arc::new(ReplayProgress::default());
    let (done_tx, done_rx) = watch::channel(false);
    let shown = tokio::spawn(progress::show(
        topic.clone(),
        plan.span(),
        progress.clone(),
        done_rx,
    ));
    let replayed = {
        let kafka = kafka.clone();
        let plan = plan.clone();
        let registry = registry.clone();
        let runtime = tokio::runtime::Handle::current();
        let reader = reader.clone();
        let workers = workers(options, &plan);
        let (skip_invalid, keep_bytes) = (
            options.skip_invalid,
            matches!(options.target, Target::Sqlite(_)),
        );
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || {
            replay::run(&kafka, &plan, workers, &progress, move || DecodingSink {
                decoder: RecordDecoder::new(registry.clone(), runtime.clone(), reader.clone()),
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
        if let Err(writer_error) = written {
            return Err(writer_error.context(e.to_string()));
        }
        if let Target::Sqlite(path) = &options.target {
            let _ = std::fs::remove_file(partial_path(path));
        }
        return Err(e.into());
    }
    let written = written?;
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
        if let Target::Sqlite(path) = &options.target {
            drop(written);
            let _ = std::fs::remove_file(partial_path(path));
        }
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
    let (upserts, tombstones, live_keys) = match written {
        Written::Sqlite(mut builder) => {
            let mut ids: Vec<&u32> = schemas.keys().collect();
            ids.sort();
            for id in ids {
                builder.add_schema(*id, &schemas[id].text)?;
            }
            for (name, value) in meta.entries()? {
                builder.set_meta(name, &value)?;
            }
            let (upserts, tombstones) = (builder.upserts, builder.tombstones);
            (upserts, tombstones, builder.finish()?)
        }
        Written::Postgres(builder) => {
            let (upserts, tombstones) = (builder.upserts, builder.tombstones);
            let comment = serde_json::to_string(
                &meta
                    .entries()?
                    .into_iter()
                    .filter(|(n, _)| *n != "reader_schema")
                    .collect::<BTreeMap<_, _>>(),
            )?;
            let live = builder
                .finish(&format!("rebuilt by kappa: {comment}"))
                .await?;
            (upserts, tombstones, live)
        }
    };
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
    })
}

/// Facts stored with a rebuilt table.
struct Meta<'a> {
    topic: &'a str,
    reader: &'a StoredSchema,
    plan: &'a ReplayPlan,
    bound: &'a Bound,
    invalid: u64,
    history: Option<&'a HistoryCheck>,
}

impl Meta<'_> {
    fn entries(&self) -> anyhow::Result<Vec<(&'static str, String)>> {
        let offsets = |f: fn(&replay::PartitionRange) -> i64| {
            serde_json::to_string(
                &self
                    .plan
                    .partitions
                    .iter()
                    .map(|p| (p.partition, f(p)))
                    .collect::<Vec<_>>(),
            )
        };
        let mut entries = vec![
            ("topic", self.topic.to_string()),
            ("start_offsets", offsets(|p| p.low)?),
            ("end_offsets", offsets(|p| p.end)?),
            ("reader_schema_id", self.reader.id.to_string()),
            ("reader_schema", self.reader.text.to_string()),
            ("invalid_records", self.invalid.to_string()),
            (
                "bound",
                match self.bound {
                    Bound::Latest => "latest".to_string(),
                    Bound::Offsets(_) => "until-offsets".to_string(),
                    Bound::Time(millis) => format!("as-of {millis} ms"),
                },
            ),
        ];
        if let Some(history) = self.history {
            entries.push(("history", serde_json::to_string(history)?));
        }
        Ok(entries)
    }
}

fn partial_path(path: &Path) -> PathBuf {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    PathBuf::from(partial)
}

async fn start_writer(
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
        let workers = if parallelism > 0 {
            parallelism
        } else {
            plan.partitions.len().clamp(1, 8)
        };
        let progress = Arc::new(ReplayProgress::default());
        let (_, reads) = replay::run(&kafka, &plan, workers, &progress, || Count(0))?;
        Ok(reads.iter().map(|r| r.records).sum())
    })
    .await??;
    Ok((records, started.elapsed().as_secs_f64()))
}

/// Prints the summary for a person.
pub fn print_summary(summary: &RebuildSummary) {
    println!(
        "rebuilt {} into {}: {} records read ({} rows, {} tombstones), {} keys live, {:.1}s, {:.0} records/s",
        summary.topic,
        summary.target,
        summary.records,
        summary.upserts,
        summary.tombstones,
        summary.live_keys,
        summary.seconds,
        summary.records_per_second
    );
    if summary.invalid > 0 {
        println!("invalid records skipped: {}", summary.invalid);
        for invalid in &summary.first_invalid {
            println!("  {invalid}");
        }
    }
    if let Some(history) = &summary.history {
        let ends: Vec<String> = summary
            .end_offsets
            .iter()
            .map(|(p, o)| format!("{p}:{o}"))
            .collect();
        println!("end offsets: {}", ends.join(","));
        if history.exact {
            println!("history: complete up to the end offsets (exact)");
        } else {
            println!(
                "history: NOT EXACT: {} records before the end offsets are no longer in the topic (compaction or retention){}; \
                 a key whose older record was compacted away in favour of a newer one past the end is missing or shows an older state",
                history.removed_before_end,
                if history.partitions_without_history.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", and partitions {:?} retain nothing before the point",
                        history.partitions_without_history
                    )
                }
            );
        }
    }
}
