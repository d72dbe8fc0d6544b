//! What a PostgreSQL failure means for whoever decides to retry, from the
//! server's SQLSTATE and the client library's error variant — never from the
//! message text, which changes between releases and is translated under
//! `lc_messages`.
//!
//! The classes follow the PostgreSQL manual's Appendix A: connection
//! exceptions (class 08), operator intervention (57P01 admin shutdown, 57P02
//! crash shutdown, 57P03 cannot connect now, 57P05 idle session timeout) and
//! insufficient resources (class 53, "too many clients"; not 53400, a
//! configured limit such as `max_replication_slots`) pass by themselves;
//! invalid authorization (class 28), missing privileges and objects, and a
//! server not in the state replication needs (55000: `wal_level`, an
//! invalidated slot) need someone to change something; anything else is the
//! same answer next time.

use crate::error::ErrorKind;
use pgwire_replication::PgWireError;

/// The kind of a SQLSTATE (five characters, e.g. `57P01`).
pub(crate) fn sqlstate_kind(code: &str) -> ErrorKind {
    match code {
        "57P01" | "57P02" | "57P03" | "57P05" => ErrorKind::Transient,
        // Serialization failure, deadlock, lock not available, a query
        // cancelled (by an operator or a statement timeout under load), a
        // slot still held by a walsender that has not noticed its client left.
        "40001" | "40P01" | "55P03" | "57014" | "55006" => ErrorKind::Transient,
        // 53400: a configured limit (max_replication_slots, max_wal_senders)
        // is reached: only the user frees or raises it.
        "42501" | "42704" | "42P01" | "3D000" | "55000" | "0A000" | "53400" => {
            ErrorKind::Configuration
        }
        _ => match code.get(..2) {
            Some("08") | Some("53") => ErrorKind::Transient,
            Some("28") => ErrorKind::Configuration,
            _ => ErrorKind::Definite,
        },
    }
}

/// The SQLSTATE of a replication-protocol server error. pgwire-replication
/// keeps the error response's fields as one string and ends it with
/// `(SQLSTATE XXXXX)` (`protocol/messages.rs`, `ErrorResponse`'s Display);
/// this reads that field back, and only that field.
pub(crate) fn replication_sqlstate(error: &PgWireError) -> Option<&str> {
    let PgWireError::Server(text) = error else {
        return None;
    };
    let code = text
        .trim_end()
        .strip_suffix(')')?
        .rsplit_once("(SQLSTATE ")?
        .1;
    (code.len() == 5 && code.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(code)
}

/// The kind of an error of the replication connection.
pub(crate) fn replication_kind(error: &PgWireError) -> ErrorKind {
    match error {
        // A network failure, or the client's worker ending with its connection.
        PgWireError::Io(_) | PgWireError::Task(_) => ErrorKind::Transient,
        PgWireError::Auth(_) | PgWireError::Tls(_) => ErrorKind::Configuration,
        PgWireError::Server(_) => {
            replication_sqlstate(error).map_or(ErrorKind::Definite, sqlstate_kind)
        }
        _ => ErrorKind::Definite,
    }
}

/// The kind of an error of a query connection (tokio-postgres).
pub(crate) fn client_kind(error: &tokio_postgres::Error) -> ErrorKind {
    if let Some(state) = error.code() {
        return sqlstate_kind(state.code());
    }
    // No SQLSTATE: the client failed before or without a server answer. A
    // closed connection or an I/O cause passes; anything else (a bad
    // parameter, a type that does not convert) is ours to fix.
    let io = std::error::Error::source(error)
        .is_some_and(|cause| cause.downcast_ref::<std::io::Error>().is_some());
    if error.is_closed() || io {
        ErrorKind::Transient
    } else {
        ErrorKind::Definite
    }
}

/// Whether a replication error says the slot itself cannot be streamed from:
/// it does not exist (42704) or is not in a state to stream (55000: an
/// invalidated slot, on every release from 13 on).
pub(crate) fn is_slot_refusal(error: &PgWireError) -> bool {
    matches!(replication_sqlstate(error), Some("42704" | "55000"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(text: &str) -> PgWireError {
        PgWireError::Server(text.to_string())
    }

    #[test]
    fn the_sqlstate_is_read_from_the_end_of_the_error_response() {
        let e = server("terminating connection due to administrator command (SQLSTATE 57P01)");
        assert_eq!(replication_sqlstate(&e), Some("57P01"));
        // A message that quotes "(SQLSTATE" earlier does not confuse it.
        let e = server("slot \"(SQLSTATE x\" does not exist (SQLSTATE 42704)");
        assert_eq!(replication_sqlstate(&e), Some("42704"));
        assert_eq!(replication_sqlstate(&server("no code here")), None);
        assert_eq!(replication_sqlstate(&server("bad (SQLSTATE 123)")), None);
        assert_eq!(
            replication_sqlstate(&PgWireError::Protocol("(SQLSTATE 57P01)".into())),
            None
        );
    }

    #[test]
    fn shutdowns_restarts_and_lost_connections_pass() {
        for code in [
            "57P01", "57P02", "57P03", "57P05", "08006", "08P01", "53300", "40P01",
        ] {
            assert_eq!(sqlstate_kind(code), ErrorKind::Transient, "{code}");
        }
        let io = PgWireError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(replication_kind(&io), ErrorKind::Transient);
        assert_eq!(
            replication_kind(&server(
                "the database system is starting up (SQLSTATE 57P03)"
            )),
            ErrorKind::Transient
        );
    }

    #[test]
    fn authentication_privileges_and_missing_objects_need_the_user() {
        for code in [
            "28P01", "28000", "42501", "42704", "3D000", "55000", "53400",
        ] {
            assert_eq!(sqlstate_kind(code), ErrorKind::Configuration, "{code}");
        }
        assert_eq!(
            replication_kind(&PgWireError::Auth("password authentication failed".into())),
            ErrorKind::Configuration
        );
    }

    #[test]
    fn everything_else_is_the_same_answer_next_time() {
        for code in ["22P02", "XX000", "42601"] {
            assert_eq!(sqlstate_kind(code), ErrorKind::Definite, "{code}");
        }
        assert_eq!(
            replication_kind(&server("odd, no code")),
            ErrorKind::Definite
        );
        assert_eq!(
            replication_kind(&PgWireError::Protocol("unexpected message".into())),
            ErrorKind::Definite
        );
    }

    #[test]
    fn a_missing_or_invalidated_slot_is_a_slot_refusal() {
        assert!(is_slot_refusal(&server(
            "replication slot \"s\" does not exist (SQLSTATE 42704)"
        )));
        assert!(is_slot_refusal(&server(
            "cannot read from logical replication slot \"s\" (SQLSTATE 55000)"
        )));
        assert!(!is_slot_refusal(&server(
            "terminating connection due to administrator command (SQLSTATE 57P01)"
        )));
    }
}
