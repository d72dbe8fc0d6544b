//! kappa's materializer, apart from Kafka: a topic's records decoded
//! against their writer schemas and resolved to the reader schema
//! ([`resolve`], with the direct decoder of [`datum`] and decimal widening in
//! [`avro_decimal`]), the order key every target sorts and compares by
//! ([`order_key`]), the rebuilt SQLite table ([`table`]) and PostgreSQL's
//! text form of values for COPY ([`pg_text`]), and the rebuild targets behind
//! one trait ([`target::TargetWriter`]: SQLite, PostgreSQL, MySQL, a file
//! each). The replay that feeds it is `kappa_sink::replay`.

// What is `pub` is the crate's API; everything else is `pub(crate)` (kept so by the lint).
#![warn(unreachable_pub)]

pub mod avro_decimal;
pub mod datum;
pub mod error;
pub mod order_key;
pub mod pg_text;
pub mod resolve;
pub mod table;
pub mod target;

pub use error::MaterializeError;
