use crate::table::TableName;

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
