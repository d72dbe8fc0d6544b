//! The shared vocabulary of kappa: what a table, a row and a change are, and how
//! they become Avro records in a Confluent-compatible Schema Registry.
//!
//! Readers in `kappa-source` produce [`Change`]s; the daemon in `src/`
//! turns them into keyed records with [`RecordEncoder`]; the materializer and
//! `verify` turn records back into [`Row`]s with [`decode`]. Keeping both
//! directions here is what makes "the rebuilt table equals the source" checkable.

// What is `pub` is the crate's API; everything else is `pub(crate)` (kept so by the lint).
#![warn(unreachable_pub)]

pub mod avro;
pub mod change;
pub mod connector_state;
pub mod decode;
pub mod error;
pub mod framing;
pub mod mask;
pub mod registry;
pub mod row_bytes;
pub mod table;
pub mod value;

pub use apache_avro::Schema as AvroSchema;
pub use avro::{RecordEncoder, TableAvro};
pub use change::{BinlogPosition, Change, ChangeBatch, Checkpoint, Lsn};
pub use connector_state::{ConnectorState, StateRecord, StoredPosition};
pub use error::{ErrorKind, SchemaError};
pub use registry::Registry;
pub use table::{Column, ColumnType, TableName, TableSchema};
pub use value::{Row, Value};
