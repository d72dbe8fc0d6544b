//! The exit status of a kappa command that stopped on an error, from the
//! error's kind — so that whatever supervises `kappa run` (systemd,
//! Kubernetes, a shell loop) can tell "restart me" from "a person must fix
//! something first" without reading the message.
//!
//! The kinds are the crates' own (`SourceError::kind`, `SinkError::kind`,
//! `SchemaError::kind`), decided from SQLSTATE classes, MySQL server codes,
//! librdkafka codes and HTTP statuses, never from message text. The first
//! classified error in the cause chain (outermost first) decides: an outer
//! error that knows better (a reader that gave up on a transient state,
//! say) has the last word over the cause it wraps.
//!
//! | status | meaning | for a supervisor |
//! |---|---|---|
//! | 2 | a definite error, or one no crate classified: the same run meets it again | restart only after looking |
//! | 75 (`EX_TEMPFAIL`) | a transient state kappa stopped on (a broker or registry that stayed away past its timeouts) | restart, with backoff |
//! | 78 (`EX_CONFIG`) | configuration: credentials, privileges, a missing table or slot, a server setting | do not restart until fixed (systemd: `RestartPreventExitStatus=78`) |

use kappa_schemas::{ErrorKind, SchemaError};
use kappa_sink::SinkError;
use kappa_source::SourceError;

/// A definite or unclassified error.
pub const DEFINITE: u8 = 2;
/// `EX_TEMPFAIL` of sysexits.h: try again later.
pub const TRANSIENT: u8 = 75;
/// `EX_CONFIG` of sysexits.h: a configuration error.
pub const CONFIGURATION: u8 = 78;

/// The kind of the first classified error in `error`'s chain.
pub fn error_kind(error: &anyhow::Error) -> Option<ErrorKind> {
    error.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<SourceError>() {
            Some(e.kind())
        } else if let Some(e) = cause.downcast_ref::<SinkError>() {
            Some(e.kind())
        } else {
            cause.downcast_ref::<SchemaError>().map(SchemaError::kind)
        }
    })
}

/// The exit status for an error of `kind`.
pub fn exit_status(kind: Option<ErrorKind>) -> u8 {
    match kind {
        Some(ErrorKind::Transient) => TRANSIENT,
        Some(ErrorKind::Configuration) => CONFIGURATION,
        Some(ErrorKind::Definite) | None => DEFINITE,
    }
}

/// What the last line tells the operator about a restart.
pub fn advice(kind: Option<ErrorKind>) -> &'static str {
    match kind {
        Some(ErrorKind::Transient) => "transient: a restart retries",
        Some(ErrorKind::Configuration) => "configuration: fix it, then restart",
        Some(ErrorKind::Definite) | None => "a restart meets the same error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kappa_schemas::TableName;

    #[test]
    fn the_first_classified_cause_decides() {
        let configuration = anyhow::Error::new(SourceError::BinaryLoggingOff).context("starting");
        assert_eq!(
            exit_status(error_kind(&configuration)),
            CONFIGURATION,
            "{configuration:#}"
        );
        let definite = anyhow::Error::new(SourceError::ConsumerGone);
        assert_eq!(exit_status(error_kind(&definite)), DEFINITE);
        let transient = anyhow::Error::new(SourceError::DefinitionKeptChanging {
            tables: "db.t".into(),
            reads: 5,
        })
        .context("snapshotting");
        assert_eq!(exit_status(error_kind(&transient)), TRANSIENT);
        // A schema error wrapped by nothing kappa classifies still counts.
        let schema = anyhow::Error::new(SchemaError::NoKey {
            table: TableName::new("db", "t"),
        })
        .context("encoding");
        assert_eq!(
            error_kind(&schema),
            Some(
                SchemaError::NoKey {
                    table: TableName::new("db", "t"),
                }
                .kind()
            )
        );
        let unclassified = anyhow::anyhow!("something else");
        assert_eq!(error_kind(&unclassified), None);
        assert_eq!(exit_status(None), DEFINITE);
    }
}
