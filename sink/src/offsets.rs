//! The connector's own durable state, kept where everything else is: a
//! compacted Kafka topic, one record per connector name (the newest wins).
//! For PostgreSQL it says which tables' snapshots are complete; the WAL
//! position itself lives in the replication slot.

use crate::error::SinkError;
use crate::kafka::KafkaConfig;
use crate::producer::Producer;
use crate::replay::replay;
use crate::topics::{ensure_compacted_topic, TopicSpec};

/// Reads the newest state record for `connector`, if any.
pub async fn read_state(
    kafka: &KafkaConfig,
    topic: &str,
    connector: &str,
) -> Result<Option<Vec<u8>>, SinkError> {
    ensure_compacted_topic(kafka, topic, &TopicSpec::new(1, 1)).await?;
    let kafka = kafka.clone();
    let topic_name = topic.to_string();
    let connector_name = connector.to_string();
    tokio::task::spawn_blocking(move || {
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
