//! Connection settings shared by the producer, the admin client and replays.

use rdkafka::ClientConfig;

/// The largest record (key + value bytes) kappa writes unless configured
/// otherwise (`[kafka] max_record_bytes`): rows of several MB stream,
/// snapshot and rebuild by default, although brokers default to 1 MB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 8 << 20;

/// Room for the record batch and request framing around the largest record,
/// in the producer's `message.max.bytes` and the topics' `max.message.bytes`.
pub const FRAMING_BYTES: usize = 64 << 10;

/// Where the brokers are, plus any librdkafka properties the user adds
/// (security settings, for instance).
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub brokers: String,
    pub properties: Vec<(String, String)>,
    /// The largest record kappa produces (key + value bytes).
    pub max_record_bytes: usize,
}

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            properties: Vec::new(),
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
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
