//! Connection settings shared by the producer, the admin client and replays.

use rdkafka::ClientConfig;

/// Where the brokers are, plus any librdkafka properties the user adds
/// (security settings, for instance).
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub brokers: String,
    pub properties: Vec<(String, String)>,
}

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            properties: Vec::new(),
        }
    }

    /// A librdkafka client config with the brokers and the user's properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}
