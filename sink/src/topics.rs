//! Topic naming and creation. Every table topic is log-compacted: the newest
//! record per key is the row, a tombstone deletes it.

use crate::error::SinkError;
use crate::kafka::KafkaConfig;
use kappa_schemas::TableName;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// `<prefix>.<schema>.<table>`: one topic per table.
pub fn table_topic(prefix: &str, table: &TableName) -> String {
    format!("{prefix}.{}.{}", table.schema, table.table)
}

/// The topic of every table, checked before anything is created: each name
/// is one Kafka accepts (1–249 characters of `a-z A-Z 0-9 . _ -`), and no two
/// tables share a topic — neither exactly (`a` + `b.c` and `a.b` + `c`) nor
/// as Kafka compares names (`.` and `_` collide: `a_b` + `c` and `a.b` +
/// `c`). Two tables on one topic would overwrite each other's keys.
pub fn table_topics(
    prefix: &str,
    tables: &[TableName],
) -> Result<Vec<(TableName, String)>, SinkError> {
    let mut seen: HashMap<String, &TableName> = HashMap::new();
    let mut topics = Vec::with_capacity(tables.len());
    for table in tables {
        let topic = table_topic(prefix, table);
        if let Err(reason) = check_topic_name(&topic) {
            return Err(SinkError::Topic {
                topic,
                reason: format!(
                    "the topic of table {table} {reason}; rename the table, leave it out \
                     (exclude_tables), or choose a topic_prefix that fits"
                ),
                code: None,
            });
        }
        let folded = topic.replace('.', "_");
        if let Some(other) = seen.insert(folded, table) {
            return Err(SinkError::Topic {
                topic: topic.clone(),
                reason: format!(
                    "tables {other} and {table} map to the same topic ({} and {topic}; Kafka \
                     treats '.' and '_' alike); capture one of them per connector, with another \
                     topic_prefix",
                    table_topic(prefix, other)
                ),
                code: None,
            });
        }
        topics.push((table.clone(), topic));
    }
    Ok(topics)
}

/// Kafka's rule for topic names, as an explanation when it is broken.
fn check_topic_name(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic == "." || topic == ".." {
        return Err(format!("would be {topic:?}, which Kafka does not allow"));
    }
    if topic.len() > 249 {
        return Err(format!(
            "would be {} characters long; Kafka allows 249",
            topic.len()
        ));
    }
    if let Some(bad) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "would contain {bad:?}; Kafka allows only ASCII letters, digits, '.', '_' and '-' in topic names"
        ));
    }
    Ok(())
}

/// How a topic kappa creates is laid out: partitions, replication, and any
/// topic configs (`segment.ms`, `min.compaction.lag.ms`, `delete.retention.ms`,
/// …) from `[kafka.topic_config]`. `cleanup.policy` is always `compact`.
#[derive(Debug, Clone, Default)]
pub struct TopicSpec {
    pub partitions: i32,
    pub replication_factor: i32,
    pub configs: BTreeMap<String, String>,
}

impl TopicSpec {
    /// A spec without topic configs beyond `cleanup.policy=compact`.
    pub fn new(partitions: i32, replication_factor: i32) -> Self {
        Self {
            partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }
}

/// Creates `topic` with `cleanup.policy=compact` and the spec's configs if it
/// is missing. An existing topic keeps its configs (they are the operator's
/// from then on); one that is not compacted is an error: deletes would never
/// shrink it and a rebuild from it could not be trusted to be bounded.
pub async fn ensure_compacted_topic(
    kafka: &KafkaConfig,
    topic: &str,
    spec: &TopicSpec,
) -> Result<(), SinkError> {
    let (admin, options) = admin(kafka)?;
    let mut new_topic = NewTopic::new(
        topic,
        spec.partitions,
        TopicReplication::Fixed(spec.replication_factor),
    );
    // cleanup.policy is kappa's to set, once (config.rs refuses other values).
    for (key, value) in spec.configs.iter().filter(|(k, _)| *k != "cleanup.policy") {
        new_topic = new_topic.set(key, value);
    }
    let new_topic = new_topic.set("cleanup.policy", "compact");
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(|e| SinkError::Broker {
            brokers: kafka.brokers.clone(),
            reason: format!("creating topic {topic}: {e}"),
            cause: Some(Box::new(e)),
        })?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(
                topic,
                partitions = spec.partitions,
                "created compacted topic"
            ),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                check_compacted(&admin, &options, topic, kafka).await?
            }
            Err((_, code)) => {
                let configs: Vec<String> = spec
                    .configs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                return Err(SinkError::Topic {
                    topic: topic.to_string(),
                    reason: format!(
                        "could not be created with {} partitions, replication factor {}{}: {code}{}",
                        spec.partitions,
                        spec.replication_factor,
                        if configs.is_empty() {
                            String::new()
                        } else {
                            format!(" and configs {}", configs.join(", "))
                        },
                        match code {
                            RDKafkaErrorCode::InvalidConfig => {
                                " (a key or value in [kafka.topic_config] is not a valid topic config for this broker)"
                            }
                            RDKafkaErrorCode::InvalidReplicationFactor => {
                                " (more replicas than brokers: lower [kafka] replication_factor)"
                            }
                            RDKafkaErrorCode::TopicAuthorizationFailed
                            | RDKafkaErrorCode::ClusterAuthorizationFailed => {
                                " (the client may not create topics: create it yourself with cleanup.policy=compact, or grant CREATE)"
                            }
                            _ => "",
                        }
                    ),
                    code: Some(code),
                });
            }
        }
    }
    Ok(())
}

/// The topic's effective configs (its own and the broker's defaults), by name.
pub async fn topic_configs(
    kafka: &KafkaConfig,
    topic: &str,
) -> Result<HashMap<String, String>, SinkError> {
    let (admin, options) = admin(kafka)?;
    describe(&admin, &options, topic, kafka).await
}

/// An admin client on the brokers, and the options of its requests.
fn admin(
    kafka: &KafkaConfig,
) -> Result<(AdminClient<DefaultClientContext>, AdminOptions), SinkError> {
    let admin = kafka
        .client_config()
        .create()
        .map_err(|e| SinkError::Broker {
            brokers: kafka.brokers.clone(),
            reason: e.to_string(),
            cause: Some(Box::new(e)),
        })?;
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    Ok((admin, options))
}

async fn describe(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    topic: &str,
    kafka: &KafkaConfig,
) -> Result<HashMap<String, String>, SinkError> {
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], options)
        .await
        .map_err(|e| SinkError::Broker {
            brokers: kafka.brokers.clone(),
            reason: format!("describing topic {topic}: {e}"),
            cause: Some(Box::new(e)),
        })?;
    let mut configs = HashMap::new();
    for resource in described {
        let resource = resource.map_err(|code| SinkError::Topic {
            topic: topic.to_string(),
            reason: format!("could not be described: {code}"),
            code: Some(code),
        })?;
        for entry in resource.entries {
            if let Some(value) = entry.value {
                configs.insert(entry.name, value);
            }
        }
    }
    Ok(configs)
}

async fn check_compacted(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    topic: &str,
    kafka: &KafkaConfig,
) -> Result<(), SinkError> {
    let configs = describe(admin, options, topic, kafka).await?;
    let policy = configs.get("cleanup.policy").cloned().unwrap_or_default();
    if !policy.contains("compact") {
        return Err(SinkError::Topic {
            topic: topic.to_string(),
            reason: format!(
                "exists with cleanup.policy={policy:?}, not compact: set it with \
                 kafka-configs --alter --entity-type topics --entity-name {topic} --add-config cleanup.policy=compact, \
                 or choose another topic_prefix"
            ),
            code: None,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_checked_and_never_shared() {
        let t = |s: &str, n: &str| TableName::new(s, n);
        let ok = table_topics("kappa", &[t("public", "orders"), t("sales", "orders")]).unwrap();
        assert_eq!(ok[1].1, "kappa.sales.orders");

        let exact = table_topics("k", &[t("a", "b.c"), t("a.b", "c")]).unwrap_err();
        assert!(exact.to_string().contains("same topic"), "{exact}");
        let folded = table_topics("k", &[t("a_b", "c"), t("a.b", "c")]).unwrap_err();
        assert!(folded.to_string().contains("'.' and '_'"), "{folded}");

        let spaced = table_topics("k", &[t("public", "my table")]).unwrap_err();
        assert!(spaced.to_string().contains("' '"), "{spaced}");
        assert!(spaced.to_string().contains("public.my table"), "{spaced}");
        let long = "x".repeat(250);
        let too_long = table_topics("k", &[t("public", &long)]).unwrap_err();
        assert!(too_long.to_string().contains("249"), "{too_long}");
        for err in [exact, folded, spaced, too_long] {
            assert_eq!(err.kind(), crate::ErrorKind::Configuration, "{err:?}");
        }
    }
}
