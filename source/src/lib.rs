//! kappa's change readers (PostgreSQL and MySQL/MariaDB), each one
//! [`Source`]: it turns a database's own change stream into
//! [`kappa_schemas::ChangeBatch`]es on a channel, each ending with the
//! position (its own type) it completes. The PostgreSQL reader hears through
//! its [`Acknowledger`] how far the sink has made them durable (to confirm
//! its slot); the MySQL reader's positions are stored by the daemon in the
//! offsets record and handed back at start. Readers know nothing about Kafka.

// What is `pub` is the crate's API; everything else is `pub(crate)` (kept so by the lint).
#![warn(unreachable_pub)]

pub(crate) mod calendar;
pub(crate) mod changed_keys;
pub(crate) mod dblog;
pub mod durable;
pub mod error;
pub mod mysql;
pub mod postgres;
pub mod redact;
pub mod source;
pub(crate) mod stream_bounds;
pub(crate) mod table_filter;

pub use durable::DurablePosition;
pub use error::{ErrorKind, SourceError};
pub use redact::redact_url;
pub use source::{Acknowledger, CatchUp, ReaderCommon, Shutdown, Source, SourceStatus};
