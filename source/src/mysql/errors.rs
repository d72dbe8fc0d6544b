//! What a MySQL/MariaDB failure means for whoever decides to retry, from the
//! server's error number and the client library's error variant — never from
//! the message text (translated under `lc_messages`, reworded between
//! releases). Numbers from the MariaDB and MySQL error references; a number
//! below means the same on both servers where both have it (1927 is
//! MariaDB's own, 4031 MySQL 8's).

use crate::error::ErrorKind;
use mysql_async::{DriverError, Error};

/// A binlog dump the server will not serve: the position is gone (purged) or
/// not valid. Which of the two is read from `SHOW BINARY LOGS`, not from the
/// message.
pub(crate) const ER_MASTER_FATAL_ERROR_READING_BINLOG: u16 = 1236;
/// The table changed (TRUNCATE, ALTER) after the transaction's read view was
/// taken; the server asks to retry the transaction.
pub(crate) const ER_TABLE_DEF_CHANGED: u16 = 1412;

/// The kind of a server error number.
pub(crate) fn server_code_kind(code: u16) -> ErrorKind {
    match code {
        // Too many connections (1040, 1203), server shutdown in progress
        // (1053), lock wait timeout and deadlock (1205, 1213), query
        // interrupted (1317), network errors the server saw (1152, 1158-1161,
        // 1184), out of memory or resources (1037, 1041), table definition
        // changed (1412), connection killed (MariaDB 1927), disconnected for
        // inactivity (MySQL 8: 4031).
        1037
        | 1040
        | 1041
        | 1053
        | 1152
        | 1158..=1161
        | 1184
        | 1203
        | 1205
        | 1213
        | 1317
        | 1412
        | 1927
        | 4031 => ErrorKind::Transient,
        // Access denied (1044, 1045, 1142, 1143, 1227, 1698), host blocked or
        // not allowed (1129, 1130), unknown database or table (1049, 1146),
        // unknown system variable (1193), authentication method not
        // supported (1251), binary logging off (1381), binlog position not
        // served (1236).
        1044 | 1045 | 1049 | 1129 | 1130 | 1142 | 1143 | 1146 | 1193 | 1227 | 1236 | 1251
        | 1381 | 1698 => ErrorKind::Configuration,
        _ => ErrorKind::Definite,
    }
}

/// The kind of a mysql_async error.
pub(crate) fn kind(error: &Error) -> ErrorKind {
    match error {
        Error::Io(_) => ErrorKind::Transient,
        Error::Server(server) => server_code_kind(server.code),
        // A stream cut mid-packet can also surface as an unexpected packet.
        Error::Driver(
            DriverError::ConnectionClosed
            | DriverError::PoolDisconnected
            | DriverError::PacketOutOfOrder
            | DriverError::UnexpectedPacket { .. },
        ) => ErrorKind::Transient,
        Error::Driver(
            DriverError::UnknownAuthPlugin { .. }
            | DriverError::MysqlOldPasswordDisabled
            | DriverError::CleartextPluginDisabled
            | DriverError::NoClientSslFlagFromServer,
        )
        | Error::Url(_) => ErrorKind::Configuration,
        Error::Driver(_) | Error::Other(_) => ErrorKind::Definite,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_async::ServerError;

    fn server(code: u16) -> Error {
        Error::Server(ServerError {
            code,
            message: "any text at all".into(),
            state: "HY000".into(),
        })
    }

    #[test]
    fn restarts_kills_and_crowding_pass() {
        for code in [1040, 1053, 1205, 1213, 1317, 1412, 1927, 4031] {
            assert_eq!(kind(&server(code)), ErrorKind::Transient, "{code}");
        }
        let io = Error::Io(mysql_async::IoError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(kind(&io), ErrorKind::Transient);
        assert_eq!(
            kind(&Error::Driver(DriverError::ConnectionClosed)),
            ErrorKind::Transient
        );
    }

    #[test]
    fn access_missing_objects_and_binlog_refusals_need_the_user() {
        for code in [1044, 1045, 1049, 1146, 1227, 1236, 1381] {
            assert_eq!(kind(&server(code)), ErrorKind::Configuration, "{code}");
        }
    }

    #[test]
    fn other_answers_are_definite() {
        for code in [1064, 1054, 1366] {
            assert_eq!(kind(&server(code)), ErrorKind::Definite, "{code}");
        }
        assert_eq!(
            kind(&Error::Other(Box::new(std::io::Error::other("x")))),
            ErrorKind::Definite
        );
    }
}
