use kappa_schemas::{SchemaError, TableName};

/// Why a reader stopped. Variants name the table, slot or setting involved
/// and, where the user can fix it, how.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("PostgreSQL at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("PostgreSQL query failed while {doing}: {source}")]
    Query {
        doing: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("replication connection: {0}")]
    Replication(String),
    #[error("table {table} does not exist (or is not visible to this user); check `tables` in the config")]
    NoSuchTable { table: TableName },
    #[error("table {table} has no primary key; kappa keys records by primary key: add one (ALTER TABLE {table} ADD PRIMARY KEY (...))")]
    NoPrimaryKey { table: TableName },
    #[error("{0}")]
    Setup(String),
    #[error("table {table}, column {column}: cannot read value {value:?} as {expected}: {reason}")]
    BadValue {
        table: TableName,
        column: String,
        value: String,
        expected: String,
        reason: String,
    },
    #[error("pgoutput message could not be decoded: {0}")]
    Protocol(String),
    #[error("table {table}: {reason}")]
    Unsupported { table: TableName, reason: String },
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("the change consumer went away (the daemon is shutting down)")]
    ConsumerGone,
}
