//! The binlog stream's connection to the server: before each session the
//! resume position is checked to still exist, the dump is opened, and an
//! error that ends a session is classified by kind (a lost connection is
//! retried; a refused or purged position is fatal).

use super::*;

/// The server's binlogs, oldest first: (name, size in bytes).
pub(super) async fn binary_logs(conn: &mut Conn) -> Result<Vec<(String, u64)>, SourceError> {
    let logs: Vec<mysql_async::Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(query_error("listing binlogs (SHOW BINARY LOGS)"))?;
    Ok(logs
        .iter()
        .filter_map(|row| Some((row.get::<String, _>(0)?, row.get::<u64, _>(1).unwrap_or(0))))
        .collect())
}

/// Fails with [`SourceError::BinlogPurged`] when `position`'s file is no
/// longer among the server's binlogs.
pub(crate) async fn check_position_exists(
    conn: &mut Conn,
    position: &BinlogPosition,
) -> Result<(), SourceError> {
    let present = binary_logs(conn)
        .await?
        .iter()
        .any(|(name, _)| *name == position.file);
    if present {
        Ok(())
    } else {
        Err(SourceError::BinlogPurged {
            position: position.to_string(),
        })
    }
}

impl Streamer {
    pub(super) async fn open_stream(&mut self) -> Result<BinlogStream, mysql_async::Error> {
        let mut conn = Conn::new(
            opts(
                &self.config.common.url,
                self.config.common.password.as_deref(),
            )
            .map_err(|e| {
                mysql_async::Error::Other(Box::new(std::io::Error::other(e.to_string())))
            })?,
        )
        .await?;
        let period_ns = self.config.heartbeat_secs.max(1) * 1_000_000_000;
        conn.query_drop(format!(
            "SET @master_heartbeat_period = {period_ns}, @mariadb_slave_capability = 4"
        ))
        .await?;
        let setting: Option<u8> = conn.query_first("SELECT @@lower_case_table_names").await?;
        self.name_case = NameCase::from_setting(setting.unwrap_or(0));
        let file = self.committed.file.clone();
        let request = BinlogStreamRequest::new(self.config.server_id)
            .with_filename(file.as_bytes())
            .with_pos(self.committed.pos);
        conn.get_binlog_stream(request).await
    }

    /// Before each session: the resume position's binlog file is still on
    /// the server, and whether events carry checksums.
    pub(super) async fn check_server(&self) -> Result<bool, SourceError> {
        let mut conn = connect(
            &self.config.common.url,
            self.config.common.password.as_deref(),
        )
        .await?;
        check_position_exists(&mut conn, &self.committed).await?;
        let checksum: Option<String> = conn
            .query_first("SELECT @@global.binlog_checksum")
            .await
            .map_err(query_error("reading binlog_checksum"))?;
        let _ = conn.disconnect().await;
        Ok(!checksum.is_some_and(|c| c.eq_ignore_ascii_case("NONE")))
    }

    /// How an error of the binlog stream ends the session, by its kind: a
    /// passing failure is a lost connection (reconnect); a refused position
    /// is [`SourceError::BinlogPurged`] when `SHOW BINARY LOGS` no longer
    /// lists its file, else the server's refusal; any other answer is fatal.
    pub(super) async fn classify(&self, e: mysql_async::Error) -> Result<SessionEnd, SourceError> {
        if errors::kind(&e) == ErrorKind::Transient {
            return Ok(SessionEnd::Lost(e.to_string()));
        }
        if matches!(&e, mysql_async::Error::Server(server) if server.code == errors::ER_MASTER_FATAL_ERROR_READING_BINLOG)
        {
            // Whether the file is gone, or ends cut off with a later one
            // after it, asked of the server itself; when it cannot be asked,
            // its refusal is reported as it came.
            if let Ok(mut conn) = connect(
                &self.config.common.url,
                self.config.common.password.as_deref(),
            )
            .await
            {
                let purged = check_position_exists(&mut conn, &self.committed).await;
                let logs = binary_logs(&mut conn).await;
                let _ = conn.disconnect().await;
                if let Err(e @ SourceError::BinlogPurged { .. }) = purged {
                    return Err(e);
                }
                if let (mysql_async::Error::Server(server), Ok(logs)) = (&e, logs) {
                    if let Some(end) = truncated::cut_off(&server.message, &self.file, &logs) {
                        return Ok(end);
                    }
                }
            }
            return Err(SourceError::BinlogRefused {
                position: self.committed.to_string(),
                source: e,
            });
        }
        Err(SourceError::Mysql {
            doing: format!("streaming the binlog from {}", self.committed),
            source: e,
        })
    }
}
