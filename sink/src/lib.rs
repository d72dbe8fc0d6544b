//! kappa's Kafka side: compacted topics and the idempotent producer that
//! fills them, the bounded replay that reads them back, the key/value table a
//! replay materializes into, and the connector's offsets record.

pub mod avro_decimal;
pub mod datum;
pub mod error;
pub mod kafka;
pub mod live_keys;
pub mod offsets;
pub mod order_key;
pub mod pg_text;
pub mod producer;
pub mod replay;
pub mod resolve;
pub mod table;
pub mod topics;

pub use error::SinkError;
pub use kafka::KafkaConfig;
pub use producer::Producer;
