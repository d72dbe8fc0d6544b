//! The connector's own durable state, kept where everything else is: a
//! compacted Kafka topic, one record per connector name (the newest wins).
//! For PostgreSQL it says which tables' snapshots are complete; the WAL
//! position itself lives in the replication slot.

use crate::error::SinkError;
use crate::kafka::KafkaConfig;
use crate::producer::Producer;
use crate::replay::{replay, topic_exists};
use crate::topics::{ensure_compacted_topic, TopicSpec};

/// Creates the offsets topic if it is missing: one partition (the records
/// of one connector stay in order), compacted, with the configured
/// replication factor like the table topics (a lost offsets record means a
/// re-snapshot).
pub async fn ensure_offsets_topic(
    kafka: &KafkaConfig,
    topic: &str,
    replication_factor: i32,
) -> Result<(), SinkError> {
    ensure_compacted_topic(kafka, topic, &TopicSpec::new(1, replication_factor)).await
}

/// Reads the newest state record for `connector`, if any. A missing topic
/// means no record: readers (status, verify) never create it.
pub async fn read_state(
    kafka: &KafkaConfig,
    topic: &str,
    connector: &str,
) -> Result<Option<Vec<u8>>, SinkError> {
    let kafka = kafka.clone();
    let topic_name = topic.to_string();
    let connector_name = connector.to_string();
    tokio::task::spawn_blocking(move || {
        if !topic_exists(&kafka, &topic_name)? {
            return Ok(None);
        }
        let mut latest: Option<Vec<u8>> = None;
        replay(&kafka, &topic_name, |record| {
            if record.key == Some(connector_name.as_bytes()) {
                latest = record.value.map(<[u8]>::to_vec);
            }
            Ok::<_, String>(())
        })?;
        Ok(latest)
    })
    .await
    .map_err(|e| SinkError::Offsets {
        topic: topic.to_string(),
        connector: connector.to_string(),
        reason: e.to_string(),
    })?
}

/// Writes `state` as the newest record for `connector` and waits for the
/// broker's acknowledgement.
pub async fn write_state(
    producer: &Producer,
    topic: &str,
    connector: &str,
    state: &[u8],
) -> Result<(), SinkError> {
    producer
        .send(topic, connector.as_bytes(), Some(state))
        .await?
        .delivered()
        .await
}
