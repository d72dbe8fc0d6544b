//! Bounded replay: read a topic from the beginning of every partition up to
//! the end offsets captured when the replay starts, then stop — also while
//! producers keep writing. Compaction leaves gaps in offsets, so a partition
//! is done when its position reaches the captured end (or the broker reports
//! its end), never by waiting for one particular offset.

use crate::error::SinkError;
use crate::kafka::KafkaConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One record, borrowed for the callback.
pub struct ReplayRecord<'a> {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
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

/// Reads `topic` from the start to its current end, calling `on_record` for
/// each record in partition-offset order (partitions interleave).
pub fn replay<E: std::fmt::Display>(
    kafka: &KafkaConfig,
    topic: &str,
    mut on_record: impl FnMut(ReplayRecord<'_>) -> Result<(), E>,
) -> Result<ReplayStats, SinkError> {
    let broker_error = |reason: String| SinkError::Broker {
        brokers: kafka.brokers.clone(),
        reason,
    };
    let consumer: BaseConsumer<ReplayContext> = kafka
        .client_config()
        .set("group.id", "kappa-replay")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create_with_context(ReplayContext)
        .map_err(|e| broker_error(e.to_string()))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| broker_error(format!("reading metadata of topic {topic}: {e}")))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(SinkError::Topic {
            topic: topic.to_string(),
            reason: "does not exist (or has no partitions)".into(),
        });
    }
    let mut stats = ReplayStats::default();
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
            .map_err(|e| {
                broker_error(format!("reading end offsets of {topic}/{partition}: {e}"))
            })?;
        stats.end_offsets.push((partition, high));
        stats.start_offsets.push((partition, low));
        if high > low {
            remaining.insert(partition, high);
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .map_err(|e| broker_error(e.to_string()))?;
        }
    }
    if remaining.is_empty() {
        return Ok(stats);
    }
    consumer
        .assign(&assignment)
        .map_err(|e| broker_error(format!("assigning {topic}: {e}")))?;
    let mut last_progress = Instant::now();
    while !remaining.is_empty() {
        match consumer.poll(Duration::from_millis(500)) {
            None => {
                if last_progress.elapsed() > STALL {
                    return Err(broker_error(format!(
                        "replay of {topic} stalled for {}s with partitions {:?} unfinished",
                        STALL.as_secs(),
                        remaining.keys().collect::<Vec<_>>()
                    )));
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                remaining.remove(&partition);
            }
            Some(Err(e)) => return Err(broker_error(format!("reading {topic}: {e}"))),
            Some(Ok(message)) => {
                last_progress = Instant::now();
                let partition = message.partition();
                let offset = message.offset();
                let Some(&end) = remaining.get(&partition) else {
                    continue;
                };
                if offset >= end {
                    remaining.remove(&partition);
                    continue;
                }
                on_record(ReplayRecord {
                    partition,
                    offset,
                    key: message.key(),
                    value: message.payload(),
                })
                .map_err(|e| SinkError::Record {
                    topic: topic.to_string(),
                    partition,
                    offset,
                    reason: e.to_string(),
                })?;
                stats.records += 1;
                if offset + 1 >= end {
                    remaining.remove(&partition);
                }
            }
        }
    }
    Ok(stats)
}
