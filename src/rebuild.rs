//! `kappa rebuild`: a topic, replayed from its beginning to the end offsets
//! taken at the start, into a SQLite key/value table (newest record per key,
//! tombstones deleting).

use anyhow::{bail, Context};
use kappa_schemas::framing::unframe;
use kappa_schemas::Registry;
use kappa_sink::replay::{replay, ReplayStats};
use kappa_sink::table::TableBuilder;
use kappa_sink::KafkaConfig;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `sqlite:PATH` → PATH. Other targets come later; say so rather than guess.
pub fn sqlite_target(into: &str) -> anyhow::Result<PathBuf> {
    match into.strip_prefix("sqlite:") {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => bail!("--into {into:?}: expected sqlite:PATH (e.g. sqlite:/tmp/orders.sqlite)"),
    }
}

/// What a rebuild did.
#[derive(Debug, Serialize)]
pub struct RebuildSummary {
    pub topic: String,
    pub records: u64,
    pub upserts: u64,
    pub tombstones: u64,
    pub live_keys: u64,
    pub seconds: f64,
    pub records_per_second: f64,
    pub end_offsets: Vec<(i32, i64)>,
}

/// Rebuilds `topic` into the SQLite file at `path`.
pub async fn rebuild(
    kafka: &KafkaConfig,
    registry: &Registry,
    topic: &str,
    path: &Path,
) -> anyhow::Result<RebuildSummary> {
    let started = Instant::now();
    let (mut builder, schema_ids, stats) = {
        let kafka = kafka.clone();
        let topic = topic.to_string();
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || replay_into(&kafka, &topic, &path))
            .await
            .context("rebuild task")??
    };
    for id in schema_ids {
        let (_, text) = registry.schema(id).await?;
        builder.add_schema(id, &text)?;
    }
    builder.set_meta("topic", topic)?;
    builder.set_meta("end_offsets", &serde_json::to_string(&stats.end_offsets)?)?;
    builder.set_meta(
        "start_offsets",
        &serde_json::to_string(&stats.start_offsets)?,
    )?;
    let (upserts, tombstones) = (builder.upserts, builder.tombstones);
    let live_keys = builder.finish()?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(RebuildSummary {
        topic: topic.to_string(),
        records: stats.records,
        upserts,
        tombstones,
        live_keys,
        seconds,
        records_per_second: stats.records as f64 / seconds.max(1e-9),
        end_offsets: stats.end_offsets,
    })
}

fn replay_into(
    kafka: &KafkaConfig,
    topic: &str,
    path: &Path,
) -> anyhow::Result<(TableBuilder, BTreeSet<u32>, ReplayStats)> {
    let mut builder = TableBuilder::create(path)?;
    let mut schema_ids = BTreeSet::new();
    let stats = replay(kafka, topic, |record| -> anyhow::Result<()> {
        let Some(key) = record.key else {
            bail!("record has no key: a compacted table topic needs one per record");
        };
        let (key_id, _) = unframe(key).context("key")?;
        schema_ids.insert(key_id);
        if let Some(value) = record.value {
            let (value_id, _) = unframe(value).context("value")?;
            schema_ids.insert(value_id);
        }
        builder.apply(key, record.value, record.partition, record.offset)?;
        Ok(())
    })?;
    Ok((builder, schema_ids, stats))
}
