//! The reader's run: setup (publication, slot), the snapshot of the tables
//! not yet in their topics, then streaming until shutdown, reconnecting
//! after a lost session (see the module docs of `postgres` for the handover
//! argument, and `stream.rs` for where a session resumes).

use super::*;

impl PostgresSource {
    /// The replication session settings (also used by the benchmark reader).
    pub fn replication_config(&self) -> Result<ReplicationConfig, SourceError> {
        let url = &self.config.common.url;
        let parsed =
            tokio_postgres::Config::from_str(url).map_err(|source| SourceError::Connect {
                url: crate::redact_url(url),
                source,
            })?;
        let host = match parsed.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = parsed.get_ports().first().copied().unwrap_or(5432);
        let user = parsed.get_user().unwrap_or("postgres").to_string();
        let password = self
            .config
            .common
            .password
            .clone()
            .or_else(|| {
                parsed
                    .get_password()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
            })
            .unwrap_or_default();
        let database = parsed.get_dbname().unwrap_or(&user).to_string();
        Ok(ReplicationConfig::new(
            host,
            user,
            password,
            database,
            self.config.slot.clone(),
            self.config.publication.clone(),
        )
        .with_port(port)
        .with_options(REPLICATION_OPTIONS)
        .with_status_interval(Duration::from_millis(500))
        // Bounds the events buffered between the socket and the decoder.
        .with_buffer_size(1024)
        .with_application_name(format!("kappa:{}", self.config.slot))
        .with_feedback_observer(FeedbackObserver::new(|_| {})))
    }

    /// Runs the reader: setup, the snapshot of the tables not in
    /// `snapshotted`, then streaming until `shutdown`. See the module docs
    /// for the handover argument.
    pub(super) async fn capture(
        self,
        snapshotted: Vec<TableName>,
        tx: mpsc::Sender<ChangeBatch<Lsn>>,
        shutdown: Shutdown,
    ) -> Result<(), SourceError> {
        let Shutdown {
            requested: stop,
            drained: final_ack,
        } = shutdown;
        let durable = self.durable.clone();
        let config = &self.config;
        let client = connect(&config.common.url, config.common.password.as_deref()).await?;
        let tables = self.tables.clone();
        let names: Vec<TableName> = tables.iter().map(|t| t.schema.name.clone()).collect();
        setup::ensure_publication(&client, &config.publication, &names).await?;
        let database: String = client
            .query_one("SELECT current_database()::text", &[])
            .await
            .map_err(|source| SourceError::Query {
                doing: "reading the database name".into(),
                source,
            })?
            .get(0);
        let pending: Vec<&PgTable> = tables
            .iter()
            .filter(|t| !snapshotted.contains(&t.schema.name))
            .collect();
        let existing = setup::slot_info(&client, &config.slot).await?;
        let mut replication = ReplicationClient::connect_gated(self.replication_config()?)
            .await
            .map_err(|e| stream::replication_error(&config.slot, "connecting", e))?;
        match existing {
            None if !snapshotted.is_empty() => {
                return Err(SourceError::SlotGone {
                    slot: config.slot.clone(),
                    snapshotted: snapshotted.iter().map(ToString::to_string).collect(),
                });
            }
            None => {
                let sql = format!(
                    "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT",
                    setup::quote_ident(&config.slot)
                );
                let rows = replication.simple_query(&sql).await.map_err(|e| {
                    stream::replication_error(&config.slot, "creating the replication slot", e)
                })?;
                let field = |i: usize| -> Result<String, SourceError> {
                    rows.first()
                        .and_then(|r| r.get(i).cloned().flatten())
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .ok_or_else(|| SourceError::UnexpectedAnswer {
                            command: "CREATE_REPLICATION_SLOT",
                            answer: format!("no field {i} (consistent point, snapshot name)"),
                        })
                };
                let consistent_point =
                    Lsn::parse(&field(1)?).map_err(|e| SourceError::UnexpectedAnswer {
                        command: "CREATE_REPLICATION_SLOT",
                        answer: format!("consistent point: {e}"),
                    })?;
                let snapshot_name = field(2)?;
                tracing::info!(slot = %config.slot, %consistent_point, snapshot = %snapshot_name, "created replication slot");
                self.snapshot(
                    &client,
                    Some(&snapshot_name),
                    &tables.iter().collect::<Vec<_>>(),
                    consistent_point,
                    &tx,
                )
                .await?;
            }
            Some(info) => {
                setup::check_slot(&config.slot, &info, &database)?;
                setup::wait_slot_released(&client, &config.slot, setup::SLOT_RELEASE_TIMEOUT)
                    .await?;
                if !pending.is_empty() {
                    let from = info.confirmed_flush.unwrap_or_default();
                    tracing::info!(slot = %config.slot, resume_from = %from, "snapshot of tables not yet in their topics, overlapping the slot's retained changes");
                    self.snapshot(&client, None, &pending, from, &tx).await?;
                }
            }
        }
        replication
            .start()
            .await
            .map_err(|e| stream::replication_error(&config.slot, "starting replication", e))?;
        replication
            .wait_started()
            .await
            .map_err(|e| stream::replication_error(&config.slot, "starting replication", e))?;
        tracing::info!(slot = %config.slot, publication = %config.publication, "streaming changes");
        let keys: HashMap<TableName, Vec<String>> = tables
            .iter()
            .map(|t| (t.schema.name.clone(), t.key_names.clone()))
            .collect();
        let fetch: Vec<&PgTable> = tables
            .iter()
            .filter(|t| needs_toast_fetch(t, config.toast_refuse.contains(&t.schema.name)))
            .collect();
        let fetcher = if fetch.is_empty() {
            None
        } else {
            Some(
                toast::ToastFetcher::open(
                    &config.common.url,
                    config.common.password.as_deref(),
                    &fetch,
                )
                .await?,
            )
        };
        let decoder = stream::ChangeDecoder::new(keys)
            .fetch_toast_for(fetch.iter().map(|t| t.schema.name.clone()));
        let mut streamer =
            stream::Streamer::new(decoder, fetcher, tx, durable, stop, config.slot.clone())
                .with_resnapshots(
                    config.common.url.clone(),
                    config.common.password.clone(),
                    config.common.snapshot_chunk_rows,
                );
        let mut attempt = 0u32;
        loop {
            match streamer.session(&mut replication).await? {
                stream::SessionEnd::Stopped => break,
                stream::SessionEnd::Lost(reason) => {
                    // A session that received something starts the backoff
                    // over, as the MySQL reader does once its stream opened.
                    if streamer.take_progress() {
                        attempt = 0;
                    }
                    tracing::warn!(%reason, retry_in = ?reconnect_backoff(attempt), "replication connection lost; reconnecting");
                    // The session may have ended over another connection (a
                    // TOAST fetch) with this one still open and holding the
                    // slot: close it, or the new one would find the slot busy.
                    replication.abort();
                    replication = loop {
                        let mut stop = streamer.stop.clone();
                        let stopped = tokio::select! {
                            _ = stop.wait_for(|s| *s) => true,
                            _ = tokio::time::sleep(reconnect_backoff(attempt)) => false,
                        };
                        if stopped {
                            return streamer.close_without_session(final_ack).await;
                        }
                        attempt = attempt.saturating_add(1);
                        match self
                            .start_streaming(streamer.resume_point(), streamer.durable.get())
                            .await
                        {
                            Ok(client) => break client,
                            Err(e) if e.kind() == ErrorKind::Transient => {
                                tracing::warn!(error = %e, retry_in = ?reconnect_backoff(attempt), "reconnecting failed")
                            }
                            // The slot was invalidated or dropped while we were away
                            // (no retry brings its changes back), or the server
                            // refuses us for good: stop with its answer.
                            Err(e) => return Err(e),
                        }
                    };
                    tracing::info!(slot = %config.slot, resume_from = %streamer.resume_point(), "reconnected; resuming after the last commit handed over");
                }
            }
        }
        streamer.finish(replication, final_ack).await
    }

    /// A new replication session, streaming from `from` (see
    /// `Streamer::resume_point`) and reporting `durable` as flushed until
    /// the daemon makes more durable (never what was only handed over). A
    /// slot that vanished meanwhile is fatal, never re-created.
    async fn start_streaming(
        &self,
        from: Lsn,
        durable: Lsn,
    ) -> Result<ReplicationClient, SourceError> {
        let config = self
            .replication_config()?
            .with_start_lsn(pgwire_replication::Lsn(from.0))
            .with_ack_lsn(pgwire_replication::Lsn(durable.0));
        let mut client = ReplicationClient::connect(config)
            .await
            .map_err(|e| stream::replication_error(&self.config.slot, "reconnecting", e))?;
        client
            .wait_started()
            .await
            .map_err(|e| stream::replication_error(&self.config.slot, "reconnecting", e))?;
        Ok(client)
    }

    async fn snapshot(
        &self,
        client: &Client,
        exported: Option<&str>,
        tables: &[&PgTable],
        resume_from: Lsn,
        tx: &mpsc::Sender<ChangeBatch<Lsn>>,
    ) -> Result<(), SourceError> {
        snapshot::begin_snapshot(client, exported).await?;
        let schemas: Vec<_> = tables.iter().map(|t| t.schema.clone()).collect();
        let rows =
            snapshot::emit_tables(client, &schemas, self.config.common.snapshot_chunk_rows, tx)
                .await?;
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|source| SourceError::Query {
                doing: "closing the snapshot transaction".into(),
                source,
            })?;
        tracing::info!(rows, tables = tables.len(), "initial snapshot read");
        tx.send(ChangeBatch {
            changes: Vec::new(),
            truncate: Vec::new(),
            checkpoint: Some(Checkpoint::SnapshotComplete {
                tables: tables.iter().map(|t| t.schema.name.clone()).collect(),
                resume_from,
            }),
        })
        .await
        .map_err(|_| SourceError::ConsumerGone)
    }
}
