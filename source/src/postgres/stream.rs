//! The streaming half of the PostgreSQL reader: pgoutput events → changes.
//!
//! Guarantees: changes leave in commit order; every transaction ends with a
//! [`Checkpoint::Committed`] of its commit's end LSN; the slot is confirmed only
//! up to the [`DurablePosition`] the daemon reports, so a crash at any point
//! replays from the last durable commit (at-least-once).

pub use super::decode::{ChangeDecoder, Decoded};
use super::errors;
use super::resnapshot::{self, Request, Resnapshots, REQUEST_PREFIX, WATERMARK_PREFIX};
use super::toast::{Buffered, ToastFetcher};
use crate::durable::DurablePosition;
use crate::error::{ErrorKind, SourceError};
use crate::stream_bounds::{PIECE, PIECE_BYTES};
use kappa_schemas::{ChangeBatch, Checkpoint, Lsn, TableSchema};
use pgwire_replication::{PgWireError, ReplicationClient, ReplicationEvent};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Why a replication session ended without a fatal error.
pub enum SessionEnd {
    /// `stop` was requested.
    Stopped,
    /// The connection was lost (server restart, network): reconnect and
    /// resume from [`Streamer::resume_point`].
    Lost(String),
}

/// Turns a replication error into the reader's: a slot the server will not
/// stream from (missing, invalidated) is named as such, with what to do.
pub fn replication_error(slot: &str, doing: &'static str, error: PgWireError) -> SourceError {
    if errors::is_slot_refusal(&error) {
        return SourceError::SlotRefused {
            slot: slot.to_string(),
            source: error,
        };
    }
    SourceError::ReplicationStream {
        slot: slot.to_string(),
        doing,
        source: error,
    }
}

/// The streaming state that survives reconnections.
pub struct Streamer {
    pub decoder: ChangeDecoder,
    pub fetcher: Option<ToastFetcher>,
    /// `None` once the session is finishing: the daemon drains when every
    /// sender is gone.
    tx: Option<mpsc::Sender<ChangeBatch<Lsn>>>,
    pub durable: DurablePosition,
    pub stop: watch::Receiver<bool>,
    pub slot: String,
    /// Highest position reported to the slot.
    confirmed: Lsn,
    /// A position from a keepalive, safe to confirm while nothing of ours is
    /// pending: it advances the slot over WAL of other tables and databases.
    idle: Lsn,
    /// End of the last commit handed to the daemon.
    last_commit: Lsn,
    /// Where the next session starts streaming ([`Self::resume_point`]).
    resume_at: Lsn,
    /// The table being re-snapshotted, if any (see [`super::resnapshot`]).
    resnapshots: Resnapshots,
    /// Where re-snapshots read from: URL, password, rows per chunk.
    resnapshot_source: Option<(String, Option<String>, usize)>,
    /// Whether the current session received an event (see [`Self::take_progress`]).
    progressed: bool,
}

impl Streamer {
    pub fn new(
        decoder: ChangeDecoder,
        fetcher: Option<ToastFetcher>,
        tx: mpsc::Sender<ChangeBatch<Lsn>>,
        durable: DurablePosition,
        stop: watch::Receiver<bool>,
        slot: String,
    ) -> Self {
        Self {
            decoder,
            fetcher,
            tx: Some(tx),
            durable,
            stop,
            slot,
            confirmed: Lsn(0),
            idle: Lsn(0),
            last_commit: Lsn(0),
            resume_at: Lsn(0),
            resnapshots: Resnapshots::default(),
            resnapshot_source: None,
            progressed: false,
        }
    }

    /// Reads the database's domains again, for a Relation message naming
    /// types unknown when streaming began (`CREATE DOMAIN` since then), so
    /// their columns map as their base types do, as they would have at start.
    /// A failure ends the session as a lost connection: the stream
    /// reconnects from the slot's confirmed position and the server sends
    /// the Relation message again.
    async fn refresh_domains(&self, oids: &[u32]) -> Result<(), SourceError> {
        let Some((url, password, _)) = &self.resnapshot_source else {
            return Ok(());
        };
        let client = super::connect(url, password.as_deref()).await?;
        super::catalog::load_domains(&client).await?;
        tracing::info!(type_oids = ?oids, "catalog read again for column types unknown at start (a domain created while streaming?)");
        Ok(())
    }

    /// Lets `kappa snapshot` requests re-snapshot tables from `url`.
    pub fn with_resnapshots(
        mut self,
        url: String,
        password: Option<String>,
        chunk_rows: usize,
    ) -> Self {
        self.resnapshot_source = Some((url, password, chunk_rows));
        self
    }

    /// Whether a stop was requested.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn confirm(&mut self, client: &ReplicationClient) {
        let durable = self.durable.get();
        let mut lsn = durable;
        if durable >= self.last_commit {
            lsn = lsn.max(self.idle);
        }
        if let Some(cap) = self.resnapshots.cap() {
            lsn = lsn.min(*cap);
        }
        if lsn > self.confirmed {
            client.update_applied_lsn(pgwire_replication::Lsn(lsn.0));
            self.confirmed = lsn;
        }
    }

    /// Receives events of one replication session until `stop` or a lost
    /// connection, handing changes to the daemon and confirming what it made
    /// durable. Changes of a transaction cut by a lost connection are
    /// re-read from the slot after reconnecting (duplicates are harmless).
    /// A query session of the stream (TOAST fetches, re-snapshot reads)
    /// failing for a passing reason ends the session as a lost connection
    /// too: the server restarted, or its backend was terminated.
    pub async fn session(
        &mut self,
        client: &mut ReplicationClient,
    ) -> Result<SessionEnd, SourceError> {
        if let Some(fetcher) = self.fetcher.as_mut() {
            match fetcher.reopen_if_closed().await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Transient => {
                    return Ok(SessionEnd::Lost(format!(
                        "reopening the TOAST fetch session: {e}"
                    )))
                }
                Err(e) => return Err(e),
            }
        }
        let ended = match self.stream(client).await {
            Err(e @ (SourceError::Query { .. } | SourceError::Connect { .. }))
                if e.kind() == ErrorKind::Transient =>
            {
                Ok(SessionEnd::Lost(e.to_string()))
            }
            other => other,
        };
        if matches!(ended, Ok(SessionEnd::Lost(_))) {
            // Never from the slot's confirmed position: it lags what was
            // handed over, and re-reading from it would put older states
            // after newer ones in the topics while acknowledgements of the
            // newer ones still arrive and move the slot past them (chaos seed
            // 64: a crash then left the older states as the rows). From the
            // last commit handed over, nothing handed over is read again.
            //
            // One failure policy for both readers: a running re-snapshot
            // ends with its session (a chunk taken at HIGH may not have been
            // handed over) and starts over from its request, read again:
            // every checkpoint handed over while it ran was held at the
            // request, so nothing acknowledged lies past it.
            self.resume_at = self.resnapshots.cap().copied().unwrap_or(self.last_commit);
            self.last_commit = self.resume_at;
            // A keepalive's position of the ended session says nothing of
            // what the next one has sent.
            self.idle = Lsn(0);
            self.resnapshots.session_lost().await;
        }
        ended
    }

    /// Where a session after a lost one starts: the end of the last commit
    /// handed over, or the request of a re-snapshot the loss interrupted
    /// (`Lsn(0)` before either: the slot's confirmed position). The server
    /// skips every transaction that committed before it.
    pub fn resume_point(&self) -> Lsn {
        self.resume_at
    }

    /// Takes whether the last session received anything (then the next
    /// reconnect starts its backoff over; a session that fails at once does
    /// not, so a failure that repeats backs off to 30 s).
    pub fn take_progress(&mut self) -> bool {
        std::mem::take(&mut self.progressed)
    }

    async fn stream(&mut self, client: &mut ReplicationClient) -> Result<SessionEnd, SourceError> {
        // Owned by this session: a lost connection drops the buffered changes
        // and their TOAST holes together (they are read again from the slot).
        let mut changes = Buffered::default();
        let mut in_transaction = false;
        let mut piece_bytes = 0usize;
        self.confirmed = Lsn(0);
        let mut confirm_tick = tokio::time::interval(Duration::from_millis(500));
        let mut stop = self.stop.clone();
        loop {
            let event = tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return Ok(SessionEnd::Stopped),
                _ = confirm_tick.tick() => {
                    self.confirm(client);
                    continue;
                }
                event = client.recv() => event,
            };
            let event = match event {
                Ok(Some(event)) => {
                    self.progressed = true;
                    event
                }
                Ok(None) => {
                    return Ok(SessionEnd::Lost(
                        "the server ended the replication stream".into(),
                    ))
                }
                Err(e) if errors::replication_kind(&e) == ErrorKind::Transient => {
                    return Ok(SessionEnd::Lost(e.to_string()))
                }
                Err(e) => return Err(replication_error(&self.slot, "streaming changes", e)),
            };
            match event {
                ReplicationEvent::Begin { .. } => in_transaction = true,
                ReplicationEvent::XLogData { data, .. } => {
                    piece_bytes += data.len();
                    let before = changes.len();
                    let mut decoded = self.decoder.apply(&data, &mut changes)?;
                    if let Decoded::UnknownTypes(oids) = &decoded {
                        if let Err(e) = self.refresh_domains(oids).await {
                            // The server's answer only: the URL may carry a password.
                            let reason = match e {
                                SourceError::Connect { source, .. } => source.to_string(),
                                other => other.to_string(),
                            };
                            return Ok(SessionEnd::Lost(format!(
                                "reading the catalog's domains: {reason}"
                            )));
                        }
                        self.decoder.looked_up(oids);
                        decoded = self.decoder.apply(&data, &mut changes)?;
                    }
                    self.resnapshots.observe(&changes.changes()[before..]);
                    if let Decoded::Truncate(tables) = decoded {
                        // The TRUNCATE rule of both readers (crate::dblog).
                        self.resnapshots
                            .truncated(tables.iter().map(|t| &t.name))
                            .await;
                        self.send(std::mem::take(&mut changes), Vec::new(), None)
                            .await?;
                        self.send(Buffered::default(), tables, None).await?;
                    } else if changes.len() >= PIECE || piece_bytes >= PIECE_BYTES {
                        self.send(std::mem::take(&mut changes), Vec::new(), None)
                            .await?;
                        piece_bytes = 0;
                    }
                }
                ReplicationEvent::Commit { end_lsn, .. } => {
                    in_transaction = false;
                    piece_bytes = 0;
                    let end = Lsn(end_lsn.0);
                    // Held at the request while a re-snapshot runs (as the
                    // slot is, and as the MySQL reader's checkpoints are).
                    let position = self.resnapshots.cap().map_or(end, |cap| end.min(*cap));
                    self.send(
                        std::mem::take(&mut changes),
                        Vec::new(),
                        Some(Checkpoint::Committed(position)),
                    )
                    .await?;
                    self.last_commit = end;
                }
                ReplicationEvent::Message {
                    prefix,
                    content,
                    lsn,
                    ..
                } => {
                    self.on_message(&prefix, &content, Lsn(lsn.0), &mut changes)
                        .await?;
                }
                ReplicationEvent::KeepAlive { wal_end, .. } if !in_transaction => {
                    self.idle = self.idle.max(Lsn(wal_end.0));
                    self.confirm(client);
                }
                _ => {}
            }
        }
    }

    /// Re-snapshot requests and watermarks (see [`super::resnapshot`]).
    async fn on_message(
        &mut self,
        prefix: &str,
        content: &[u8],
        lsn: Lsn,
        changes: &mut Buffered,
    ) -> Result<(), SourceError> {
        let content = String::from_utf8_lossy(content);
        if prefix == REQUEST_PREFIX {
            let Ok(request) = serde_json::from_str::<Request>(&content) else {
                tracing::warn!(%content, "ignoring a malformed re-snapshot request");
                return Ok(());
            };
            if request.slot != self.slot {
                return Ok(());
            }
            if !self.decoder.captures(&request.table) {
                tracing::warn!(table = %request.table, "re-snapshot requested for a table this connector does not capture");
                return Ok(());
            }
            if !self.resnapshots.may_start(&request.table) {
                return Ok(());
            }
            let Some((url, password, chunk_rows)) = self.resnapshot_source.clone() else {
                return Ok(());
            };
            // Changes before the request leave first, so the chunks follow them.
            self.send(std::mem::take(changes), Vec::new(), None).await?;
            let schema = self.decoder.schema_of(&request.table);
            let started = resnapshot::start(
                &url,
                password.as_deref(),
                &request.table,
                schema,
                lsn,
                chunk_rows,
            );
            self.resnapshots.start(&request.table, &lsn, started).await;
        } else if prefix == WATERMARK_PREFIX {
            let Some((which, payload)) = resnapshot::parse_watermark(&content) else {
                return Ok(());
            };
            if let Some(rows) = self.resnapshots.watermark(which, payload).await {
                self.send(std::mem::take(changes), Vec::new(), None).await?;
                self.send(rows.into(), Vec::new(), None).await?;
            }
        }
        Ok(())
    }

    /// Hands `changes` (their TOAST holes filled) to the daemon.
    async fn send(
        &mut self,
        changes: Buffered,
        truncate: Vec<Arc<TableSchema>>,
        checkpoint: Option<Checkpoint<Lsn>>,
    ) -> Result<(), SourceError> {
        let changes = changes.into_changes(self.fetcher.as_ref()).await?;
        self.tx
            .as_ref()
            .ok_or(SourceError::ConsumerGone)?
            .send(ChangeBatch {
                changes,
                truncate,
                checkpoint,
            })
            .await
            .map_err(|_| SourceError::ConsumerGone)
    }

    /// A stop requested while no session is open: nothing to confirm.
    pub async fn close_without_session(
        mut self,
        final_ack: oneshot::Receiver<()>,
    ) -> Result<(), SourceError> {
        self.tx = None;
        let _ = final_ack.await;
        Ok(())
    }

    /// After a requested stop: waits for `final_ack` (the daemon drained its
    /// deliveries), confirms the final durable position and closes the session.
    pub async fn finish(
        mut self,
        mut client: ReplicationClient,
        final_ack: oneshot::Receiver<()>,
    ) -> Result<(), SourceError> {
        self.tx = None;
        if final_ack.await.is_ok() {
            self.confirm(&client);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while client.feedback_pending_since().is_some()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tracing::info!(confirmed_lsn = %self.confirmed, "confirmed the slot up to the last delivered commit");
        }
        client
            .shutdown()
            .await
            .map_err(|e| replication_error(&self.slot, "closing the replication session", e))
    }
}
