//! A binlog file cut off in the middle of an event.
//!
//! When the server is killed while it writes the binlog (`kill -9`, an OOM
//! kill), the file can end inside an event. On restart the server opens a
//! new file, and its crash recovery commits only the transactions whose XID
//! event is complete in the binlog: the rest roll back, so the cut-off tail
//! holds nothing that committed. Streaming from before the tail, the server
//! answers ERROR 1236 "binlog truncated in the middle of event" when it gets
//! there, on every attempt; the servers' own replicas stop there too and
//! need a `CHANGE MASTER` to the next file.
//!
//! kappa goes on where the server did. When the refused file is not the
//! newest, it undoes whatever it published of the cut-off transaction
//! (`undo.rs`; a transaction leaves in pieces before its commit), stores the
//! start of the next file as its position (with the last complete
//! transaction's GTID), logs the skipped range, and streams on from there. A
//! re-snapshot that was running is requested again (a new request row, read
//! in the new file). A newest file cut off (nothing after it) is refused as
//! any 1236 is.

use super::*;

/// The message of a 1236 for an event cut off by the end of its file
/// (MySQL's and MariaDB's `LOG_READ_TRUNC`).
const TRUNCATED: &str = "truncated in the middle of event";

/// The end of a session refused with `message` while reading `file`, when
/// that file ends cut off and `logs` (the server's binlogs, oldest first,
/// with sizes) hold a later one.
pub(super) fn cut_off(message: &str, file: &str, logs: &[(String, u64)]) -> Option<SessionEnd> {
    if !message.to_ascii_lowercase().contains(TRUNCATED) {
        return None;
    }
    let at = logs.iter().position(|(name, _)| name == file)?;
    let (_, size) = &logs[at];
    let (next, _) = logs.get(at.checked_add(1)?)?;
    Some(SessionEnd::TruncatedTail {
        file: file.to_string(),
        size: *size,
        next: next.clone(),
    })
}

impl Streamer {
    /// Goes past the cut-off end of `file` (`size` bytes) to the start of
    /// `next`, undoing what was published of the transaction cut off there.
    pub(super) async fn skip_truncated_tail(
        &mut self,
        file: &str,
        size: u64,
        next: &str,
    ) -> Result<(), SourceError> {
        let restores =
            self.undo
                .take()
                .map_err(|too_large| SourceError::BinlogTruncatedUndoTooLarge {
                    file: file.to_string(),
                    read_to: self.read_to,
                    committed: self.committed.to_string(),
                    bytes: too_large.bytes,
                    limit: undo::UNDO_BYTES,
                })?;
        let resnapshot = self.resnapshots.table().cloned();
        self.end_session().await;
        tracing::warn!(
            binlog = %file,
            skipped_from = self.read_to,
            skipped_to = size,
            last_commit = %self.committed,
            resume_from = %format!("{next}:4"),
            undone = restores.len(),
            "the binlog ends in the middle of an event (the server was killed while writing it; its crash \
             recovery rolled back the transaction cut off there): skipping to the next binlog, and \
             restoring the keys that transaction's published pieces changed"
        );
        if let Some(table) = resnapshot {
            self.request_resnapshot_again(&table).await;
        }
        self.committed = BinlogPosition {
            file: next.to_string(),
            pos: 4,
            gtid: self.committed.gtid.clone(),
        };
        self.pending = restores;
        let position = self.committed.clone();
        self.send(Some(Checkpoint::Committed(position))).await
    }

    /// A re-snapshot interrupted where its request cannot be read again:
    /// a new request row, which the stream reads in the newest binlog.
    async fn request_resnapshot_again(&self, table: &TableName) {
        let Some(signal) = self.config.signal_table.as_ref() else {
            return;
        };
        let requested = resnapshot::request(
            &self.config.common.url,
            self.config.common.password.as_deref(),
            signal,
            &self.config.connector,
            table,
        )
        .await;
        match requested {
            Ok(at) => {
                tracing::info!(%table, request = %at, "re-snapshot requested again past the cut-off binlog")
            }
            Err(e) => tracing::error!(
                %table,
                error = %e,
                "the running re-snapshot was interrupted by a cut-off binlog and could not be requested \
                 again; run `kappa snapshot --table {table}`"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs() -> Vec<(String, u64)> {
        vec![
            ("mysql-bin.000062".into(), 1_000),
            ("mysql-bin.000063".into(), 52_311),
            ("mysql-bin.000064".into(), 390),
        ]
    }

    const MESSAGE: &str = "binlog truncated in the middle of event; consider out of disk space on \
                           master; the first event 'mysql-bin.000063' at 4, the last event read from \
                           'mysql-bin.000063' at 52100, the last byte read from 'mysql-bin.000063' at 52311.";

    #[test]
    fn a_cut_off_file_with_a_later_one_goes_on_at_the_next() {
        match cut_off(MESSAGE, "mysql-bin.000063", &logs()) {
            Some(SessionEnd::TruncatedTail { file, size, next }) => {
                assert_eq!(
                    (file.as_str(), size, next.as_str()),
                    ("mysql-bin.000063", 52_311, "mysql-bin.000064")
                );
            }
            _ => panic!("a cut-off file followed by another is skipped"),
        }
    }

    #[test]
    fn the_newest_file_or_another_refusal_is_not_skipped() {
        assert!(cut_off(MESSAGE, "mysql-bin.000064", &logs()).is_none());
        assert!(cut_off(MESSAGE, "mysql-bin.000099", &logs()).is_none());
        let corrupt = "event read from binlog did not pass crc check";
        assert!(cut_off(corrupt, "mysql-bin.000063", &logs()).is_none());
        let impossible = "Client requested master to start replication from impossible position";
        assert!(cut_off(impossible, "mysql-bin.000063", &logs()).is_none());
    }
}
