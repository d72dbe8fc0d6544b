//! kappa's Kafka side: compacted topics and the idempotent producer that
//! fills them, the bounded replay that reads them back, live keys (for
//! TRUNCATE) and the connector's offsets record. What a replay is decoded
//! and written into is `kappa_materialize`.

// What is `pub` is the crate's API; everything else is `pub(crate)` (kept so by the lint).
#![warn(unreachable_pub)]

pub mod error;
pub mod kafka;
pub mod live_keys;
pub mod offsets;
pub mod producer;
pub mod replay;
pub mod topics;

pub use error::{ErrorKind, SinkError};
pub use kafka::KafkaConfig;
pub use producer::Producer;
