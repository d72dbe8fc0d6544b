//! Whether the connector has delivered everything up to the snapshot's binlog
//! position S (see the parent module: "Verifying while the connector
//! streams"): positions compared by file sequence number then offset, and
//! the binlog between a stored position and S read for anything but
//! bookkeeping events.

use super::*;

/// Binlog events that are not transactions: the only ones an idle
/// connector's stored position may be behind (`SHOW BINLOG EVENTS` names,
/// MariaDB and MySQL 8).
pub(super) const BOOKKEEPING_EVENTS: &[&str] = &[
    "Format_desc",
    "Rotate",
    "Stop",
    "Gtid_list",
    "Binlog_checkpoint",
    "Start_encryption",
    "Previous_gtids",
];

/// Events read per binlog file when looking for a transaction between the
/// stored position and the snapshot point; more means "not idle".
pub(super) const IDLE_SCAN_EVENTS: usize = 64;

/// Binlog files read when looking for a transaction; more means "not idle".
pub(super) const IDLE_SCAN_FILES: usize = 8;

/// MariaDB's `Binlog_snapshot_file` / `Binlog_snapshot_position`; `None`
/// when the server has no such status (MySQL) or no binlog.
pub(super) fn snapshot_status(status: &[(String, String)]) -> Option<BinlogPosition> {
    let get = |name: &str| {
        status
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let file = get("Binlog_snapshot_file").filter(|f| !f.is_empty())?;
    let pos = get("Binlog_snapshot_position")?.parse().ok()?;
    Some(BinlogPosition {
        file: file.to_string(),
        pos,
        gtid: None,
    })
}

pub(super) fn at_or_past(stored: &BinlogPosition, snapshot: &BinlogPosition) -> bool {
    stored.at_or_past(snapshot)
}

/// Whether the binlog from `from` up to `to` holds only bookkeeping events
/// (no transaction): then a connector stored at `from` has everything a
/// snapshot at `to` shows. Reads at most [`IDLE_SCAN_EVENTS`] events of at
/// most [`IDLE_SCAN_FILES`] files; past that it answers no.
pub(super) async fn nothing_committed_between(
    conn: &mut Conn,
    from: &BinlogPosition,
    to: &BinlogPosition,
) -> anyhow::Result<bool> {
    let files: Vec<String> = if from.file == to.file {
        vec![from.file.clone()]
    } else {
        let logs: Vec<mysql_async::Row> = conn
            .query("SHOW BINARY LOGS")
            .await
            .context("listing the binlog files (SHOW BINARY LOGS)")?;
        let at = |file: &str| BinlogPosition {
            file: file.to_string(),
            pos: 0,
            gtid: None,
        };
        logs.into_iter()
            .filter_map(|row| row.get_opt::<String, _>(0)?.ok())
            .filter(|file| {
                at(file).at_or_past(&at(&from.file)) && at(&to.file).at_or_past(&at(file))
            })
            .collect()
    };
    if files.first() != Some(&from.file) || files.last() != Some(&to.file) {
        return Ok(false);
    }
    if files.len() > IDLE_SCAN_FILES {
        return Ok(false);
    }
    for file in &files {
        let start = if *file == from.file { from.pos } else { 4 };
        let last = *file == to.file;
        let events: Vec<mysql_async::Row> = conn
            .query(format!(
                "SHOW BINLOG EVENTS IN '{}' FROM {start} LIMIT {IDLE_SCAN_EVENTS}",
                file.replace('\\', "\\\\").replace('\'', "''")
            ))
            .await
            .with_context(|| format!("reading binlog events of {file} from {start}"))?;
        let count = events.len();
        for event in events {
            let pos: u64 = event
                .get_opt(1)
                .and_then(Result::ok)
                .ok_or_else(|| anyhow!("SHOW BINLOG EVENTS: no position"))?;
            let kind: String = event
                .get_opt(2)
                .and_then(Result::ok)
                .ok_or_else(|| anyhow!("SHOW BINLOG EVENTS: no event type"))?;
            if last && pos >= to.pos {
                return Ok(true);
            }
            if !BOOKKEEPING_EVENTS.contains(&kind.as_str()) {
                return Ok(false);
            }
        }
        if count >= IDLE_SCAN_EVENTS {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(file: &str, pos: u64) -> BinlogPosition {
        BinlogPosition {
            file: file.into(),
            pos,
            gtid: None,
        }
    }

    #[test]
    fn binlog_positions_order_by_sequence_number_then_offset() {
        assert!(at_or_past(
            &at("mysql-bin.000002", 581),
            &at("mysql-bin.000002", 581)
        ));
        assert!(at_or_past(
            &at("mysql-bin.000002", 600),
            &at("mysql-bin.000002", 581)
        ));
        assert!(!at_or_past(
            &at("mysql-bin.000002", 500),
            &at("mysql-bin.000002", 581)
        ));
        assert!(at_or_past(
            &at("mysql-bin.000003", 4),
            &at("mysql-bin.000002", 9999)
        ));
        assert!(!at_or_past(
            &at("mysql-bin.000001", 9999),
            &at("mysql-bin.000002", 4)
        ));
        // Past six digits the names stop ordering like the files.
        assert!(at_or_past(
            &at("mysql-bin.1000000", 4),
            &at("mysql-bin.999999", 9999)
        ));
        // Another base name (log-bin renamed) is never taken as caught up.
        assert!(!at_or_past(
            &at("other-bin.000009", 4),
            &at("mysql-bin.000002", 4)
        ));
        assert!(!at_or_past(
            &at("mysql-bin.000002", 4),
            &at("other-bin.000009", 4)
        ));
        // The daemon's and tests' ordering (Ord) agrees.
        assert!(at("mysql-bin.1000000", 4) > at("mysql-bin.999999", 9999));
    }

    #[test]
    fn mariadb_snapshot_status_gives_the_position() {
        let status = vec![
            (
                "Binlog_snapshot_file".to_string(),
                "mysql-bin.000002".to_string(),
            ),
            ("Binlog_snapshot_position".to_string(), "581".to_string()),
        ];
        assert_eq!(snapshot_status(&status), Some(at("mysql-bin.000002", 581)));
        assert_eq!(snapshot_status(&[]), None);
        let no_binlog = vec![
            ("Binlog_snapshot_file".to_string(), String::new()),
            ("Binlog_snapshot_position".to_string(), "0".to_string()),
        ];
        assert_eq!(snapshot_status(&no_binlog), None);
    }
}
