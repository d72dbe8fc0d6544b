//! The daemon's in-process tests' Kafka: librdkafka's mock cluster.

use kappa_sink::KafkaConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A one-broker mock cluster holding `topics` (one partition each).
pub(super) fn cluster(topics: &[&str]) -> MockCluster<'static, DefaultProducerContext> {
    let mock = MockCluster::new(1).expect("mock cluster");
    for topic in topics {
        mock.create_topic(topic, 1, 1).expect("topic");
    }
    mock
}

/// A client config for `mock`; deliveries give up after 3 s.
pub(super) fn kafka(mock: &MockCluster<'static, DefaultProducerContext>) -> KafkaConfig {
    let mut kafka = KafkaConfig::new(mock.bootstrap_servers());
    kafka
        .properties
        .push(("message.timeout.ms".into(), "3000".into()));
    kafka
}
