use crate::table::TableName;
use schema_registry_converter::error::SRCError;

/// What a failure means for whoever decides whether to retry. Derived from
/// the servers' and client libraries' own codes, never from the text of a
/// server's message: SQLSTATE and MySQL/MariaDB error numbers in
/// kappa-source (`postgres::errors`, `mysql::errors`), the registry's HTTP
/// status and the client's retriable flag here ([`SchemaError::kind`]),
/// librdkafka's error codes in kappa-sink. Defined here, below every crate
/// that classifies its errors; kappa-source and kappa-sink re-export it.
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
    /// A registry request failed. `cause` is the client's error (boxed, so
    /// that SchemaError stays small), whose retriable flag and HTTP status
    /// decide the kind; `None` when the request was never made (the
    /// registry handle's cache lock was poisoned).
    #[error("schema registry at {url}: {reason} (is it running? `dev/services status`)")]
    Registry {
        url: String,
        reason: String,
        cause: Option<Box<SRCError>>,
    },
    /// The registry answered 404 for a schema id: it does not have it.
    /// `cause` is the client's error. (Neither `cause` is the `source()`:
    /// the message already says its text, and chains would repeat it.)
    #[error(
        "schema id {id} is unknown to the registry at {url} ({reason}); if the registry was \
             restarted without its data, the topic's records refer to schemas it no longer has"
    )]
    UnknownSchemaId {
        url: String,
        id: u32,
        reason: String,
        cause: Box<SRCError>,
    },
}

impl SchemaError {
    /// Whether waiting and retrying can help (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        use SchemaError as E;
        match self {
            E::Registry { cause, .. } => cause
                .as_ref()
                .map_or(ErrorKind::Definite, |e| crate::registry::request_kind(e)),
            // The table needs a key, or the registry the schemas the topic's
            // records name (restored data, or the registry that wrote them):
            // both messages say what to change.
            E::NoKey { .. } | E::UnknownSchemaId { .. } => ErrorKind::Configuration,
            // The same table shape, row, schema or bytes fail the same way
            // next time: a column value the type mapping refuses or a masking
            // rule that does not fit the table (some reasons name a fix, but
            // the variant does not say which kind of reason it holds), a
            // schema that does not parse (kappa's own, or one the registry
            // handed out), a value Avro cannot encode, a record that is not
            // Confluent-framed or does not match its writer schema.
            E::Column { .. }
            | E::InvalidSchema { .. }
            | E::Encode { .. }
            | E::Framing { .. }
            | E::Decode { .. } => ErrorKind::Definite,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client error as schema_registry_converter makes it for an HTTP
    /// answer (`send_with_auth`): retriable only for 502 and 503.
    fn answered(status: &str) -> SRCError {
        let retriable = status.starts_with("502") || status.starts_with("503");
        SRCError::new(
            &format!("HTTP request to schema registry failed with status {status}"),
            Some("error_code: 0, message: any text, even 503 or 409".into()),
            retriable,
        )
    }

    fn registry(source: Option<SRCError>) -> SchemaError {
        SchemaError::Registry {
            url: "http://r:8081".into(),
            reason: "registering a schema under subject t-value".into(),
            cause: source.map(Box::new),
        }
    }

    #[test]
    fn registry_failures_are_kinded_by_status_and_the_clients_flag() {
        let unreached = SRCError::retryable_with_cause(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            "http call to schema registry failed",
        );
        let timed_out = SRCError::retryable_with_cause(
            std::io::Error::from(std::io::ErrorKind::TimedOut),
            "http call to schema registry failed",
        );
        // A 2xx answer whose body could not be read.
        let unreadable = SRCError::non_retryable_with_cause(
            "expected value at line 1 column 1",
            "could not parse to RawRegisteredSchema",
        );
        let cases = [
            (Some(unreached), ErrorKind::Transient),
            (Some(timed_out), ErrorKind::Transient),
            (
                Some(answered("500 Internal Server Error")),
                ErrorKind::Transient,
            ),
            (Some(answered("502 Bad Gateway")), ErrorKind::Transient),
            (
                Some(answered("503 Service Unavailable")),
                ErrorKind::Transient,
            ),
            (Some(answered("504 Gateway Timeout")), ErrorKind::Transient),
            (Some(answered("401 Unauthorized")), ErrorKind::Configuration),
            (Some(answered("403 Forbidden")), ErrorKind::Configuration),
            (Some(answered("404 Not Found")), ErrorKind::Configuration),
            (Some(answered("409 Conflict")), ErrorKind::Configuration),
            (Some(answered("400 Bad Request")), ErrorKind::Definite),
            (
                Some(answered("422 Unprocessable Entity")),
                ErrorKind::Definite,
            ),
            (Some(unreadable), ErrorKind::Definite),
            // The cache lock was poisoned: no request was made.
            (None, ErrorKind::Definite),
        ];
        for (source, expected) in cases {
            let what = format!("{source:?}");
            assert_eq!(registry(source).kind(), expected, "{what}");
        }
    }

    #[test]
    fn the_clients_error_decides_the_kind_and_its_text_is_said_once() {
        let err = registry(Some(answered("409 Conflict")));
        assert_eq!(err.kind(), ErrorKind::Configuration);
        // The message already carries the client's text (`reason`): as a
        // `source` too, `{:#}` chains would say it twice.
        assert!(std::error::Error::source(&err).is_none());
    }

    #[test]
    fn record_and_schema_failures_are_kinded_by_variant() {
        let table = TableName::new("public", "t");
        let cases = [
            (
                SchemaError::NoKey {
                    table: table.clone(),
                },
                ErrorKind::Configuration,
            ),
            (
                SchemaError::UnknownSchemaId {
                    url: "http://r:8081".into(),
                    id: 41,
                    reason: "not found".into(),
                    cause: Box::new(answered("404 Not Found")),
                },
                ErrorKind::Configuration,
            ),
            (
                SchemaError::Column {
                    table: table.clone(),
                    column: "c".into(),
                    reason: "NULL in a key or NOT NULL column".into(),
                },
                ErrorKind::Definite,
            ),
            (
                SchemaError::InvalidSchema {
                    subject: "t-value".into(),
                    reason: "bad".into(),
                },
                ErrorKind::Definite,
            ),
            (
                SchemaError::Encode {
                    table,
                    reason: "bad".into(),
                },
                ErrorKind::Definite,
            ),
            (
                SchemaError::Framing {
                    reason: "magic byte is 0x01, expected 0x00".into(),
                },
                ErrorKind::Definite,
            ),
            (
                SchemaError::Decode {
                    schema_id: 3,
                    reason: "bad".into(),
                },
                ErrorKind::Definite,
            ),
        ];
        for (err, expected) in cases {
            assert_eq!(err.kind(), expected, "{err:?}");
        }
    }
}
