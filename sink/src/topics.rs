//! Topic naming and creation. Every table topic is log-compacted: the newest
//! record per key is the row, a tombstone deletes it.

use crate::error::SinkError;
use crate::kafka::KafkaConfig;
use kappa_schemas::TableName;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// `<prefix>.<schema>.<table>`: one topic per table.
pub fn table_topic(prefix: &str, table: &TableName) -> String {
    format!("{prefix}.{}.{}", table.schema, table.table)
}

/// Creates `topic` with `cleanup.policy=compact` if it is missing. An
/// existing topic that is not compacted is an error: deletes would never
/// shrink it and a rebuild from it could not be trusted to be bounded.
pub async fn ensure_compacted_topic(
    kafka: &KafkaConfig,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
) -> Result<(), SinkError> {
    let broker_error = |reason: String| SinkError::Broker {
        brokers: kafka.brokers.clone(),
        reason,
    };
    let admin: AdminClient<DefaultClientContext> = kafka
        .client_config()
        .create()
        .map_err(|e| broker_error(e.to_string()))?;
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let new_topic = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(replication_factor),
    )
    .set("cleanup.policy", "compact");
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(|e| broker_error(format!("creating topic {topic}: {e}")))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic, partitions, "created compacted topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                check_compacted(&admin, &options, topic, kafka).await?
            }
            Err((_, code)) => {
                return Err(SinkError::Topic {
                    topic: topic.to_string(),
                    reason: format!("could not be created: {code}"),
                })
            }
        }
    }
    Ok(())
}

async fn check_compacted(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    topic: &str,
    kafka: &KafkaConfig,
) -> Result<(), SinkError> {
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], options)
        .await
        .map_err(|e| SinkError::Broker {
            brokers: kafka.brokers.clone(),
            reason: format!("describing topic {topic}: {e}"),
        })?;
    for resource in described {
        let resource = resource.map_err(|code| SinkError::Topic {
            topic: topic.to_string(),
            reason: format!("could not be described: {code}"),
        })?;
        let policy = resource
            .get("cleanup.policy")
            .and_then(|entry| entry.value.clone())
            .unwrap_or_default();
        if !policy.contains("compact") {
            return Err(SinkError::Topic {
                topic: topic.to_string(),
                reason: format!(
                    "exists with cleanup.policy={policy:?}, not compact: set it with \
                     kafka-configs --alter --entity-type topics --entity-name {topic} --add-config cleanup.policy=compact, \
                     or choose another topic_prefix"
                ),
            });
        }
    }
    Ok(())
}
