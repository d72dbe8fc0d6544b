/// What can go wrong on the Kafka side. Variants name the topic, partition
/// and offset where one is involved.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("Kafka at {brokers}: {reason} (is the broker running? `dev/services status`)")]
    Broker { brokers: String, reason: String },
    #[error("topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
    #[error("delivery to topic {topic} failed: {reason}")]
    Delivery { topic: String, reason: String },
    #[error("topic {topic} partition {partition} offset {offset}: {reason}")]
    Record {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
    #[error("offsets record in topic {topic} for connector {connector}: {reason}")]
    Offsets {
        topic: String,
        connector: String,
        reason: String,
    },
}
