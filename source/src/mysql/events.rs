//! Pure helpers for binlog events the reader decodes itself or whose
//! `mysql_common` form needs care: MariaDB's GTID event, the first ROTATE's
//! checksum, TABLE_MAP column names, and row values of partial-update events.

use crate::error::SourceError;
use kappa_schemas::TableName;
use mysql_async::binlog::events::{OptionalMetaExtractor, TableMapEvent};
use mysql_async::Value as My;

/// MariaDB's GTID event (not in `mysql_common`'s event enum).
pub(crate) const MARIADB_GTID_EVENT: u8 = 162;

/// A row's values; every column must be present (`binlog_row_image = FULL`).
pub(crate) fn values(
    table: &TableName,
    row: mysql_async::binlog::row::BinlogRow,
) -> Result<Vec<My>, SourceError> {
    let mut out = Vec::with_capacity(row.len());
    for value in row.unwrap() {
        out.push(
            My::try_from(value).map_err(|e| SourceError::RowUndecodable {
                table: table.clone(),
                at: String::new(),
                source: std::io::Error::other(format!(
                    "{e} (partial JSON updates need binlog_row_value_options = '', MySQL 8)"
                )),
            })?,
        );
    }
    Ok(out)
}

pub(crate) fn column_names(tme: &TableMapEvent<'_>) -> std::io::Result<Vec<String>> {
    let meta = OptionalMetaExtractor::new(tme.iter_optional_meta())?;
    let names = meta
        .iter_column_name()
        .map(|n| n.map(|n| n.name().into_owned()))
        .collect::<std::io::Result<Vec<_>>>()?;
    if names.len() as u64 != tme.columns_count() {
        return Err(std::io::Error::other(format!(
            "{} column names for {} columns",
            names.len(),
            tme.columns_count()
        )));
    }
    Ok(names)
}

/// The file name of a ROTATE event. The one the server sends before its
/// FORMAT_DESCRIPTION still carries the 4-byte checksum, which the decoder
/// cannot know to strip yet.
pub(crate) fn rotate_file(raw: &[u8], strip_checksum: bool) -> Result<String, SourceError> {
    let name = if strip_checksum && raw.len() > 4 {
        &raw[..raw.len() - 4]
    } else {
        raw
    };
    match std::str::from_utf8(name) {
        Ok(name) if !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(name.to_string())
        }
        _ => Err(SourceError::RotateName { raw: raw.to_vec() }),
    }
}

/// MariaDB's GTID event body: sequence number (8 bytes LE), domain id
/// (4 bytes LE), flags; the server id is the event header's.
pub(crate) fn mariadb_gtid(data: &[u8], server_id: u32) -> Option<String> {
    let seq = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
    let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
    Some(format!("{domain}-{server_id}-{seq}"))
}

/// MariaDB GTID event `flags2` (the byte after seq_no and domain_id): the
/// group is one standalone statement (DDL), not a transaction.
pub(crate) const FL_STANDALONE: u8 = 1;
/// ... the group is the first half of a two-phase XA transaction
/// (`XA START` … `XA END`, `XA PREPARE`): committed or rolled back later.
pub(crate) const FL_PREPARED_XA: u8 = 64;

/// Why an event of this type cannot be decoded, when it holds changes kappa
/// would otherwise skip in silence: MariaDB's compressed query and row
/// events (`log_bin_compress = ON`, types 165–171) and MySQL 8's
/// TRANSACTION_PAYLOAD (`binlog_transaction_compression = ON`, type 40,
/// whose inner events carry log position 0).
pub(crate) fn undecodable_event(event_type: u8) -> Option<&'static str> {
    match event_type {
        165..=171 => Some("a MariaDB compressed binlog event (log_bin_compress = ON)"),
        40 => Some("a MySQL compressed transaction (binlog_transaction_compression = ON)"),
        _ => None,
    }
}

/// What the reader does with an event whose type it has no handler for
/// (the handled ones: ROTATE, FORMAT_DESCRIPTION, GTID (MySQL, MySQL 8.4's
/// tagged, MariaDB's), TABLE_MAP, the row events, XID, QUERY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unhandled {
    /// Known to carry nothing a row-based capture needs: skipped quietly
    /// (heartbeats arrive every second).
    Skip,
    /// Unknown to kappa, but flagged `LOG_EVENT_IGNORABLE_F` by the server
    /// (replicas that do not know it may skip it): skipped with a warning.
    Warn,
    /// Could hold changes or positions kappa would lose: an error, never a
    /// silent skip.
    Refuse(&'static str),
}

/// The captured table a row event's `table_id` refers to: `Ok(None)` for a
/// table kappa does not capture (its TABLE_MAP said which), an error for an
/// id no TABLE_MAP of this stream named. Every row event follows its
/// TABLE_MAP in the same event group and the stream resumes only at group
/// ends, so such an event would be changes of an unknown table, lost if
/// skipped.
pub(crate) fn mapped_table<T>(
    by_id: &std::collections::HashMap<u64, Option<T>>,
    table_id: u64,
) -> Option<Option<&T>> {
    by_id.get(&table_id).map(Option::as_ref)
}

/// `LOG_EVENT_IGNORABLE_F` in an event header's flags.
const IGNORABLE_FLAG: u16 = 0x80;

/// Decides, per event type, what an unhandled event means (see docs/mysql.md).
pub(crate) fn unhandled_event(event_type: u8, header_flags: u16) -> Unhandled {
    match event_type {
        // START_EVENT_V3, STOP (the server stopped; the next file follows),
        // SLAVE (unused), heartbeats (v1, v2), IGNORABLE, ROWS_QUERY (the
        // statement text of row events), ANONYMOUS_GTID / PREVIOUS_GTIDS
        // (GTIDs off / the GTID set before this file), TRANSACTION_CONTEXT
        // and VIEW_CHANGE (group replication's own), XA_PREPARE (the
        // prepared rows were refused already, see QueryRole::XaStart).
        1 | 3 | 7 | 27 | 41 | 28 | 29 | 34 | 35 | 36 | 37 | 38 => Unhandled::Skip,
        // INTVAR, RAND, USER_VAR: the context of a statement-logged QUERY
        // (a DDL's LAST_INSERT_ID, say); row events carry their own values.
        5 | 13 | 14 => Unhandled::Skip,
        // MariaDB: ANNOTATE_ROWS (statement text), BINLOG_CHECKPOINT,
        // GTID_LIST (the GTID state at a file's start), START_ENCRYPTION
        // (the dump thread sends events decrypted).
        160 | 161 | 163 | 164 => Unhandled::Skip,
        0 => Unhandled::Refuse("an UNKNOWN_EVENT (type 0)"),
        6 | 8..=12 | 17 | 18 => Unhandled::Refuse(
            "a statement-logged LOAD DATA (its rows are not in the binlog): binlog_format must be ROW",
        ),
        20..=22 => Unhandled::Refuse("a pre-GA row event (MySQL 5.1.0–5.1.15), which kappa cannot decode"),
        26 => Unhandled::Refuse(
            "an INCIDENT event: the server recorded that changes may be missing from the binlog; \
             re-snapshot (a new connector name) once the server is healthy",
        ),
        _ if header_flags & IGNORABLE_FLAG != 0 => Unhandled::Warn,
        _ => Unhandled::Refuse("an event type kappa does not know"),
    }
}

/// The `flags2` byte of a MariaDB GTID event.
pub(crate) fn mariadb_gtid_flags(data: &[u8]) -> Option<u8> {
    data.get(12).copied()
}

/// What a QUERY event means for the event group around it. Only real ends
/// of a group may checkpoint: a position stored at a `SAVEPOINT` would make
/// a restart resume in the middle of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryRole {
    /// `BEGIN` (MySQL; MariaDB puts it in the GTID event).
    Begin,
    /// `XA START` (MySQL): the rows that follow are only prepared.
    XaStart,
    /// Inside a transaction: `SAVEPOINT`, `ROLLBACK TO SAVEPOINT`, `XA END`,
    /// `XA PREPARE`, …: not a resumable point.
    InsideTransaction,
    /// `COMMIT`, `ROLLBACK`, `XA COMMIT`/`XA ROLLBACK`, or a statement of
    /// its own (DDL): the group is over, its end position is resumable.
    EndsGroup,
}

pub(crate) fn query_role(sql: &str, in_transaction: bool) -> QueryRole {
    let mut words = sql.split_whitespace();
    let first = words.next().unwrap_or("");
    let second = words.next().unwrap_or("");
    let is = |word: &str, keyword: &str| word.eq_ignore_ascii_case(keyword);
    if second.is_empty() && is(first, "BEGIN") {
        QueryRole::Begin
    } else if is(first, "XA") && (is(second, "START") || is(second, "BEGIN")) {
        QueryRole::XaStart
    } else if is(first, "XA") && (is(second, "END") || is(second, "PREPARE")) {
        QueryRole::InsideTransaction
    } else if is(first, "XA")
        || (second.is_empty() && (is(first, "COMMIT") || is(first, "ROLLBACK")))
    {
        QueryRole::EndsGroup
    } else if in_transaction {
        QueryRole::InsideTransaction
    } else {
        QueryRole::EndsGroup
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_group_ends_are_commit_points() {
        use QueryRole::*;
        assert_eq!(query_role("BEGIN", false), Begin);
        assert_eq!(query_role("SAVEPOINT `s1`", true), InsideTransaction);
        assert_eq!(query_role("ROLLBACK TO `s1`", true), InsideTransaction);
        assert_eq!(query_role("commit", true), EndsGroup);
        assert_eq!(query_role("ROLLBACK", true), EndsGroup);
        assert_eq!(query_role("XA START X'78',X'',1", false), XaStart);
        assert_eq!(query_role("XA END X'78',X'',1", true), InsideTransaction);
        assert_eq!(query_role("XA ROLLBACK X'78',X'',1", false), EndsGroup);
        assert_eq!(query_role("ALTER TABLE t ADD c INT", false), EndsGroup);
        assert_eq!(query_role("  ", false), EndsGroup);
    }

    #[test]
    fn compressed_events_are_named_not_skipped() {
        for t in 165..=171 {
            assert!(undecodable_event(t).unwrap().contains("log_bin_compress"));
        }
        assert!(undecodable_event(40)
            .unwrap()
            .contains("binlog_transaction_compression"));
        assert_eq!(undecodable_event(30), None); // WRITE_ROWS_V2
        assert_eq!(undecodable_event(162), None); // MariaDB GTID
    }

    #[test]
    fn mariadb_gtid_flags_are_the_byte_after_the_domain() {
        let mut data = 15u64.to_le_bytes().to_vec();
        data.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(mariadb_gtid_flags(&data), None);
        data.push(FL_PREPARED_XA | 8);
        assert_eq!(mariadb_gtid_flags(&data), Some(72));
    }

    #[test]
    fn the_first_rotate_loses_its_checksum() {
        let raw = b"mysql-bin.000001\x8c\x01?\xfe";
        assert_eq!(rotate_file(raw, true).unwrap(), "mysql-bin.000001");
        assert_eq!(
            rotate_file(b"mysql-bin.000002", false).unwrap(),
            "mysql-bin.000002"
        );
        assert!(rotate_file(b"bad\x00name", false).is_err());
    }

    #[test]
    fn mariadb_gtid_reads_domain_server_seq() {
        let mut data = 15u64.to_le_bytes().to_vec();
        data.extend_from_slice(&0u32.to_le_bytes());
        data.push(0);
        assert_eq!(mariadb_gtid(&data, 1).as_deref(), Some("0-1-15"));
        assert_eq!(mariadb_gtid(&[1, 2], 1), None);
    }

    #[test]
    fn a_row_event_of_an_unknown_table_id_is_an_error() {
        let mut by_id = std::collections::HashMap::new();
        by_id.insert(7u64, Some("captured"));
        by_id.insert(8u64, None);
        assert_eq!(mapped_table(&by_id, 7), Some(Some(&"captured")));
        assert_eq!(mapped_table(&by_id, 8), Some(None));
        assert_eq!(mapped_table(&by_id, 9), None);
        let err = SourceError::UnmappedTableId {
            at: "mysql-bin.000001:120".into(),
            table_id: 9,
        };
        assert!(err.to_string().contains("table id 9"), "{err}");
        assert!(err.to_string().contains("never skips"), "{err}");
    }

    #[test]
    fn unhandled_event_types_are_skipped_warned_or_refused_never_silently_lost() {
        // Heartbeats, MariaDB's checkpoints and GTID lists: quiet.
        for t in [27, 41, 161, 163, 35, 29] {
            assert_eq!(unhandled_event(t, 0), Unhandled::Skip, "type {t}");
        }
        // An INCIDENT, a statement-logged LOAD DATA, an unknown type: refused.
        for t in [26, 6, 18, 0, 43, 99, 200] {
            assert!(
                matches!(unhandled_event(t, 0), Unhandled::Refuse(_)),
                "type {t}"
            );
        }
        // An unknown type the server flags ignorable: a warning.
        assert_eq!(unhandled_event(99, 0x80), Unhandled::Warn);
        // The flag does not make an INCIDENT ignorable.
        assert!(matches!(unhandled_event(26, 0x80), Unhandled::Refuse(_)));
    }
}
