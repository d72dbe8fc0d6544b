//! kappa's materializer, apart from Kafka: a topic's records decoded
//! against their writer schemas and resolved to the reader schema
//! ([`resolve`], with the direct decoder of [`datum`] and decimal widening in
//! [`avro_decimal`]), the order key every target sorts and compares by
//! ([`order_key`]), the rebuilt SQLite table ([`table`]) and PostgreSQL's
//! text form of values for COPY ([`pg_text`]). The replay that feeds it is
//! `kappa_sink::replay`; the typed PostgreSQL and MySQL targets live in the
//! binary (`src/rebuild/`).

pub mod avro_decimal;
pub mod datum;
pub mod error;
pub mod order_key;
pub mod pg_text;
pub mod resolve;
pub mod table;

pub use error::MaterializeError;
