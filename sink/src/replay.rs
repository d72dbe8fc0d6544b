//! Bounded replay: read a topic from the beginning of every partition up to
//! end offsets fixed before reading starts, then stop — also while producers
//! keep writing. Compaction leaves gaps in offsets, so a partition is done
//! when its position reaches the captured end (or the broker reports its
//! end), never by waiting for one particular offset.
//!
//! The end offsets are the high watermarks when the replay starts
//! ([`Bound::Latest`]), given ones ([`Bound::Offsets`], `--until-offsets`), or
//! those of a point in time ([`Bound::Time`], `--as-of`: per partition the
//! first offset whose timestamp is at or after it, via `offsets_for_times`).
//!
//! Partitions are read in parallel, one worker thread and consumer per group
//! of partitions, each calling its own [`PartitionSink`]; order holds within
//! a partition, which is all compaction and keys need (one key, one
//! partition).
//!
//! The plan (partitions and their end offsets) is fixed in `replay/plan.rs`;
//! this file reads it.

mod plan;

pub use plan::{plan, topic_exists, Bound, PartitionRange, ReplayPlan};

use crate::error::SinkError;
use crate::kafka::KafkaConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One record, borrowed for the callback.
pub struct ReplayRecord<'a> {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// What one partition's replay saw.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct PartitionRead {
    pub partition: i32,
    pub records: u64,
}

/// What a replay saw.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReplayStats {
    pub records: u64,
    /// Captured end offset per partition.
    pub end_offsets: Vec<(i32, i64)>,
    /// Earliest retained offset per partition when the replay started.
    pub start_offsets: Vec<(i32, i64)>,
}

/// Receives one worker's records, in offset order per partition.
pub trait PartitionSink: Send {
    type Error: std::fmt::Display;
    fn record(&mut self, record: ReplayRecord<'_>) -> Result<(), Self::Error>;
    /// Called once after the worker's last record.
    fn finish(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Counts shared with a progress display: offsets covered (gaps included)
/// and records read, summed over all workers.
#[derive(Debug, Default)]
pub struct ReplayProgress {
    pub covered: AtomicU64,
    pub records: AtomicU64,
}

/// Reaching a partition's end is how a replay finishes, not an error worth
/// logging; everything else librdkafka reports is logged as usual.
struct ReplayContext;

impl ClientContext for ReplayContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::PartitionEOF(_)) {
            tracing::error!(%error, reason, "librdkafka");
        }
    }
}

impl ConsumerContext for ReplayContext {}

const STALL: Duration = Duration::from_secs(60);
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed request to the brokers: `reason` is the message, `source` the
/// client's error (which decides the kind).
fn broker_error(kafka: &KafkaConfig) -> impl Fn(String, KafkaError) -> SinkError + '_ {
    |reason, source| SinkError::Broker {
        brokers: kafka.brokers.clone(),
        reason,
        cause: Some(Box::new(source)),
    }
}

fn consumer(kafka: &KafkaConfig) -> Result<BaseConsumer<ReplayContext>, SinkError> {
    kafka
        .client_config()
        .set("group.id", "kappa-replay")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        // Prefetch per consumer: bounds memory with many partitions.
        .set("queued.max.messages.kbytes", "16384")
        .create_with_context(ReplayContext)
        .map_err(|e| broker_error(kafka)(e.to_string(), e))
}

/// Replays `plan` with up to `workers` threads, each with its own consumer
/// and its own sink from `make_sink`. Returns the sinks (after `finish`) and
/// the records read per partition. The first error stops every worker.
pub fn run<S: PartitionSink>(
    kafka: &KafkaConfig,
    plan: &ReplayPlan,
    workers: usize,
    progress: &Arc<ReplayProgress>,
    make_sink: impl Fn() -> S,
) -> Result<(Vec<S>, Vec<PartitionRead>), SinkError> {
    let todo: Vec<PartitionRange> = plan
        .partitions
        .iter()
        .copied()
        .filter(|p| p.end > p.low)
        .collect();
    let workers = workers.clamp(1, todo.len().max(1));
    let mut groups: Vec<Vec<PartitionRange>> = vec![Vec::new(); workers];
    for (i, range) in todo.into_iter().enumerate() {
        groups[i % workers].push(range);
    }
    let failed = Arc::new(AtomicBool::new(false));
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|group| {
                let mut sink = make_sink();
                let failed = failed.clone();
                let progress = progress.clone();
                scope.spawn(move || {
                    let result =
                        read_partitions(kafka, &plan.topic, &group, &mut sink, &progress, &failed);
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    result.map(|reads| (sink, reads))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Some(SinkError::Replay {
                        topic: plan.topic.clone(),
                        reason: "a replay worker panicked".into(),
                    }))
                })
            })
            .collect::<Vec<_>>()
    });
    let mut sinks = Vec::new();
    let mut reads = Vec::new();
    let mut first_error = None;
    for result in results {
        match result {
            Ok((sink, read)) => {
                sinks.push(sink);
                reads.extend(read);
            }
            // A worker stopped because another failed says nothing new.
            Err(None) => {}
            Err(Some(e)) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    reads.sort_by_key(|r| r.partition);
    Ok((sinks, reads))
}

/// Reads one worker's partitions. `Err(None)`: stopped early because
/// another worker failed.
fn read_partitions<S: PartitionSink>(
    kafka: &KafkaConfig,
    topic: &str,
    ranges: &[PartitionRange],
    sink: &mut S,
    progress: &ReplayProgress,
    failed: &AtomicBool,
) -> Result<Vec<PartitionRead>, Option<SinkError>> {
    let fail = |reason: String, source: Option<KafkaError>| {
        Some(SinkError::Broker {
            brokers: kafka.brokers.clone(),
            reason,
            cause: source.map(Box::new),
        })
    };
    let record_error = |partition: i32, offset: i64, reason: String| {
        Some(SinkError::Record {
            topic: topic.to_string(),
            partition,
            offset,
            reason,
        })
    };
    let partitions: Vec<i32> = ranges.iter().map(|r| r.partition).collect();
    let _span = tracing::info_span!("replay", topic, ?partitions).entered();
    // partition → (end, position: next offset not yet covered, records)
    let mut remaining: HashMap<i32, (i64, i64, u64)> = HashMap::new();
    let mut reads = Vec::new();
    if !ranges.is_empty() {
        let consumer = consumer(kafka).map_err(Some)?;
        let mut assignment = TopicPartitionList::new();
        for range in ranges {
            remaining.insert(range.partition, (range.end, range.low, 0));
            assignment
                .add_partition_offset(topic, range.partition, Offset::Offset(range.low))
                .map_err(|e| fail(e.to_string(), Some(e)))?;
        }
        consumer
            .assign(&assignment)
            .map_err(|e| fail(format!("assigning {topic}: {e}"), Some(e)))?;
        let mut last_progress = Instant::now();
        let mut done = |partition: i32, remaining: &mut HashMap<i32, (i64, i64, u64)>| {
            if let Some((end, position, records)) = remaining.remove(&partition) {
                progress
                    .covered
                    .fetch_add((end - position).max(0) as u64, Ordering::Relaxed);
                reads.push(PartitionRead { partition, records });
                let mut paused = TopicPartitionList::new();
                paused.add_partition(topic, partition);
                let _ = consumer.pause(&paused);
            }
        };
        while !remaining.is_empty() {
            if failed.load(Ordering::Relaxed) {
                return Err(None);
            }
            match consumer.poll(Duration::from_millis(200)) {
                None => {
                    // Nothing arrived for STALL: kappa gives up waiting for
                    // the brokers (no error of theirs to keep: Transient).
                    if last_progress.elapsed() > STALL {
                        return Err(fail(
                            format!(
                                "replay of {topic} stalled for {}s with partitions {:?} unfinished",
                                STALL.as_secs(),
                                remaining.keys().collect::<Vec<_>>()
                            ),
                            None,
                        ));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => done(partition, &mut remaining),
                // librdkafka reconnects by itself (a broker restart shows up
                // as AllBrokersDown); only a lasting stall ends the replay.
                Some(Err(e)) => {
                    if last_progress.elapsed() > STALL {
                        return Err(fail(format!("reading {topic}: {e}"), Some(e)));
                    }
                    tracing::warn!(topic, error = %e, "consumer error, retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Some(Ok(message)) => {
                    last_progress = Instant::now();
                    let partition = message.partition();
                    let offset = message.offset();
                    let Some(state) = remaining.get_mut(&partition) else {
                        continue;
                    };
                    let end = state.0;
                    if offset >= end {
                        done(partition, &mut remaining);
                        continue;
                    }
                    sink.record(ReplayRecord {
                        partition,
                        offset,
                        key: message.key(),
                        value: message.payload(),
                    })
                    .map_err(|e| record_error(partition, offset, e.to_string()))?;
                    progress
                        .covered
                        .fetch_add((offset + 1 - state.1).max(0) as u64, Ordering::Relaxed);
                    progress.records.fetch_add(1, Ordering::Relaxed);
                    state.1 = offset + 1;
                    state.2 += 1;
                    if offset + 1 >= end {
                        done(partition, &mut remaining);
                    }
                }
            }
        }
    }
    sink.finish().map_err(|e| {
        Some(SinkError::Replay {
            topic: topic.to_string(),
            reason: e.to_string(),
        })
    })?;
    Ok(reads)
}

/// Calls `on_record` for every record of `topic` up to its current end, in
/// partition-offset order (one consumer, partitions interleaved).
pub fn replay<E: std::fmt::Display>(
    kafka: &KafkaConfig,
    topic: &str,
    on_record: impl FnMut(ReplayRecord<'_>) -> Result<(), E> + Send,
) -> Result<ReplayStats, SinkError> {
    struct Callback<F>(F);
    impl<E: std::fmt::Display, F: FnMut(ReplayRecord<'_>) -> Result<(), E> + Send> PartitionSink
        for Callback<F>
    {
        type Error = E;
        fn record(&mut self, record: ReplayRecord<'_>) -> Result<(), E> {
            (self.0)(record)
        }
    }
    let plan = plan(kafka, topic, &Bound::Latest)?;
    let progress = Arc::new(ReplayProgress::default());
    let callback = std::sync::Mutex::new(Some(Callback(on_record)));
    let take = || {
        callback
            .lock()
            .ok()
            .and_then(|mut c| c.take())
            .expect("one worker")
    };
    let (_, reads) = run(kafka, &plan, 1, &progress, take)?;
    Ok(ReplayStats {
        records: reads.iter().map(|r| r.records).sum(),
        end_offsets: plan
            .partitions
            .iter()
            .map(|p| (p.partition, p.end))
            .collect(),
        start_offsets: plan
            .partitions
            .iter()
            .map(|p| (p.partition, p.low))
            .collect(),
    })
}
