//! Reading the connector's offsets record from its topic. The record's shape
//! and wire format, for every source's position type, are
//! [`kappa_schemas::ConnectorState`]'s (with the tests that pin its bytes).

use anyhow::Context;
use kappa_schemas::{ConnectorState, StoredPosition};

/// The newest offsets record of connector `name` in `topic`, if it has one.
/// A record that is not a connector state is an error naming both, never
/// taken for "no record" (that would re-snapshot or mislead).
pub async fn load<P: StoredPosition>(
    kafka: &kappa_sink::KafkaConfig,
    topic: &str,
    name: &str,
) -> anyhow::Result<Option<ConnectorState<P>>> {
    let bytes = kappa_sink::offsets::read_state(kafka, topic, name)
        .await
        .with_context(|| format!("reading the offsets record of connector {name} in {topic}"))?;
    bytes
        .map(|bytes| serde_json::from_slice(&bytes))
        .transpose()
        .with_context(|| {
            format!(
                "the offsets record of connector {name} in {topic} is not a kappa connector state"
            )
        })
}
