use crate::table::TableName;

/// What a failure means for whoever decides whether to retry. Derived from
/// the servers' and client libraries' own codes, never from the text of a
/// server's message: SQLSTATE and MySQL/MariaDB error numbers in
/// kappa-source (`postgres::errors`, `mysql::errors`). Defined here, below
/// every crate that classifies its errors; kappa-source re-exports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A state that ends by itself (a restart, a shutdown, a lost
    /// connection, too many clients): reconnect with backoff.
    Transient,
    /// The server answered, and the same request gets the same answer: stop
    /// with the error.
    Definite,
    /// Something the user must change (credentials, privileges, a missing
    /// table or slot, a server setting): stop; the message names the fix.
    Configuration,
}

/// Everything that can go wrong turning rows into records and back. Each
/// variant names the table, column or schema id involved so the message alone
/// tells the user where to look.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("table {table}: column {column}: {reason}")]
    Column {
        table: TableName,
        column: String,
        reason: String,
    },
    #[error(
        "table {table} has no key columns: give it a primary key (or REPLICA IDENTITY USING INDEX)"
    )]
    NoKey { table: TableName },
    #[error("Avro schema for {subject} is invalid: {reason}")]
    InvalidSchema { subject: String, reason: String },
    #[error("Avro encoding for table {table} failed: {reason}")]
    Encode { table: TableName, reason: String },
    #[error("record is not Confluent-framed (magic byte 0 + 4-byte schema id): {reason}")]
    Framing { reason: String },
    #[error("Avro decoding with schema id {schema_id} failed: {reason}")]
    Decode { schema_id: u32, reason: String },
    #[error("schema registry at {url}: {reason} (is it running? `dev/services status`)")]
    Registry { url: String, reason: String },
    /// The registry answered 404 for a schema id: it does not have it.
    #[error(
        "schema id {id} is unknown to the registry at {url} ({reason}); if the registry was \
             restarted without its data, the topic's records refer to schemas it no longer has"
    )]
    UnknownSchemaId {
        url: String,
        id: u32,
        reason: String,
    },
}
