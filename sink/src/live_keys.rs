//! The keys a topic currently holds a row for: what a TRUNCATE must
//! tombstone. Obtained by a bounded replay of the topic itself (the newest
//! record per key decides), after every earlier record was acknowledged, so
//! the topic is the only source of truth and no extra state is kept.

use crate::error::SinkError;
use crate::kafka::KafkaConfig;
use crate::replay::replay;
use std::collections::HashMap;

/// Every key whose newest record in `topic` is not a tombstone. Memory holds
/// one entry per key ever written (bounded by the table's key count).
pub fn live_keys(kafka: &KafkaConfig, topic: &str) -> Result<Vec<Vec<u8>>, SinkError> {
    let mut live: HashMap<Vec<u8>, bool> = HashMap::new();
    replay(kafka, topic, |record| {
        if let Some(key) = record.key {
            live.insert(key.to_vec(), record.value.is_some());
        }
        Ok::<_, String>(())
    })?;
    let mut keys: Vec<Vec<u8>> = live
        .into_iter()
        .filter(|(_, alive)| *alive)
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    Ok(keys)
}
