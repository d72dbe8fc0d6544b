//! The re-snapshot engine, written once for both readers: one chunk after
//! another between LOW and HIGH watermarks ([`Resnapshot`]), and the policy
//! around it ([`Resnapshots`]): one re-snapshot at a time, a failure
//! abandons it (never fatal), a TRUNCATE of its table ends it, and so does
//! a lost session. Each database implements [`ChunkSource`] (write a
//! watermark into its change stream, read a chunk in key order) and says in
//! its `resnapshot.rs` why emitting at HIGH is exact there.
//!
//! Why a failure is never fatal: while a re-snapshot runs, the source's
//! position is held before its request, so a fatal error would read the
//! request again at every restart, a crash loop. Why a lost session ends
//! it: a chunk taken at HIGH may not have been handed over; the request is
//! read again from the held position and the re-snapshot starts over. Why a
//! TRUNCATE ends it: every row the table holds after it was inserted after
//! the request and comes through the stream, while the chunk in hand may
//! have been read before the TRUNCATE committed and, emitted at HIGH after
//! the tombstones, would bring deleted rows back.

use super::Chunks;
use crate::error::SourceError;
use kappa_schemas::{Change, Row, TableName, TableSchema};
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

/// Which watermark of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watermark {
    /// Written before the chunk's read.
    Low,
    /// Written after it: the chunk is emitted when the stream reaches it.
    High,
}

impl Watermark {
    /// The watermark's name in the stream (`low`, `high`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Watermark::Low => "low",
            Watermark::High => "high",
        }
    }

    /// The watermark called `name`, if any.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "low" => Some(Watermark::Low),
            "high" => Some(Watermark::High),
            _ => None,
        }
    }
}

/// One chunk as the database read it.
pub(crate) struct ChunkRead<K> {
    /// The rows, in key order.
    pub rows: Vec<Row>,
    /// The key of the last row (`None` for an empty chunk).
    pub last_key: Option<K>,
    /// The shape the rows are emitted with.
    pub schema: Arc<TableSchema>,
    /// Where the key values are in the rows as read.
    pub key_columns: Vec<usize>,
}

/// What a database does for a re-snapshot.
pub(crate) trait ChunkSource: Send {
    /// The last key as the database binds it into the next chunk's read.
    type Key: Clone + Send + Sync;

    /// Writes `which` watermark, carrying `payload`, into the change stream.
    fn watermark(
        &mut self,
        which: Watermark,
        payload: &str,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Reads up to `rows` rows whose key is greater than `after` (from the
    /// first row when `None`), in key order.
    fn read_chunk(
        &mut self,
        after: Option<&Self::Key>,
        rows: usize,
    ) -> impl Future<Output = Result<ChunkRead<Self::Key>, SourceError>> + Send;

    /// Releases the source's session.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// One re-snapshot in progress. `P` is the source's position type: `cap`,
/// the request's position, which the source does not release meanwhile.
pub(crate) struct Resnapshot<S: ChunkSource, P> {
    source: S,
    chunks: Chunks<S::Key>,
    /// The shape of the chunk in hand, and its key columns.
    emit: Option<(Arc<TableSchema>, Vec<usize>)>,
    table: TableName,
    cap: P,
}

impl<S: ChunkSource, P> Resnapshot<S, P> {
    /// Starts re-snapshotting `table` through `source` and issues the first
    /// chunk; `id` tells its watermarks apart from any other re-snapshot's.
    /// On failure the source is closed.
    pub(crate) async fn start(
        source: S,
        id: String,
        table: TableName,
        rows_per_chunk: usize,
        cap: P,
    ) -> Result<Self, SourceError> {
        let mut resnapshot = Self {
            source,
            chunks: Chunks::new(id, table.clone(), rows_per_chunk),
            emit: None,
            table,
            cap,
        };
        match resnapshot.next_chunk().await {
            Ok(()) => Ok(resnapshot),
            Err(e) => {
                resnapshot.source.close().await;
                Err(e)
            }
        }
    }

    pub(crate) fn table(&self) -> &TableName {
        &self.table
    }

    /// The request's position.
    pub(crate) fn cap(&self) -> &P {
        &self.cap
    }

    /// Rows emitted so far.
    pub(crate) fn emitted(&self) -> u64 {
        self.chunks.emitted()
    }

    fn observe(&mut self, changes: &[Change]) {
        self.chunks.observe(changes);
    }

    /// LOW watermark, the next chunk's read, HIGH watermark.
    async fn next_chunk(&mut self) -> Result<(), SourceError> {
        let payload = self.chunks.begin_chunk();
        self.source.watermark(Watermark::Low, &payload).await?;
        let read = self
            .source
            .read_chunk(self.chunks.last_key(), self.chunks.rows_per_chunk())
            .await?;
        self.chunks.chunk_read(read.rows, read.last_key);
        self.emit = Some((read.schema, read.key_columns));
        self.source.watermark(Watermark::High, &payload).await
    }

    /// A watermark the stream reached. At this chunk's HIGH: the chunk's
    /// rows to emit (keys the stream did not change since the request) and
    /// whether the table is done; the next chunk is issued unless it is.
    /// Watermarks of other chunks (an earlier run, another connector's) are
    /// ignored.
    async fn on_watermark(
        &mut self,
        which: Watermark,
        payload: &str,
    ) -> Result<Option<(Vec<Change>, bool)>, SourceError> {
        let expected = self.chunks.payload();
        if which == Watermark::High && payload == expected {
            let Some((schema, key_columns)) = self.emit.clone() else {
                return Ok(None);
            };
            let (changes, finished) = self.chunks.at_high(&schema, &key_columns);
            if !finished {
                self.next_chunk().await?;
            }
            return Ok(Some((changes, finished)));
        }
        if payload != expected {
            tracing::debug!(watermark = which.name(), payload, %expected, "watermark of another chunk");
        }
        Ok(None)
    }
}

/// The re-snapshot a reader runs (at most one), with the policy of the
/// module docs.
pub(crate) struct Resnapshots<S: ChunkSource, P> {
    running: Option<Resnapshot<S, P>>,
}

impl<S: ChunkSource, P> Default for Resnapshots<S, P> {
    fn default() -> Self {
        Self { running: None }
    }
}

impl<S: ChunkSource, P: Display> Resnapshots<S, P> {
    /// The running re-snapshot's table.
    pub(crate) fn table(&self) -> Option<&TableName> {
        self.running.as_ref().map(Resnapshot::table)
    }

    /// The running re-snapshot's request position: the source releases
    /// nothing past it meanwhile.
    pub(crate) fn cap(&self) -> Option<&P> {
        self.running.as_ref().map(Resnapshot::cap)
    }

    /// Whether a request for `table` may start a re-snapshot now: not while
    /// one runs (the request is ignored, and the log says so).
    pub(crate) fn may_start(&self, table: &TableName) -> bool {
        match &self.running {
            Some(running) => {
                tracing::warn!(%table, running = %running.table(), "a re-snapshot is already running; request ignored (request it again once it is complete)");
                false
            }
            None => true,
        }
    }

    /// Runs `started` (the database's start of a re-snapshot of `table`,
    /// requested at `at`); a failure abandons it with the error in the log.
    pub(crate) async fn start(
        &mut self,
        table: &TableName,
        at: &(dyn Display + Sync),
        started: impl Future<Output = Result<Resnapshot<S, P>, SourceError>>,
    ) {
        tracing::info!(%table, %at, "re-snapshot started");
        match started.await {
            Ok(running) => self.running = Some(running),
            Err(e) => {
                tracing::error!(%table, error = %e, "re-snapshot abandoned; streaming goes on (run kappa snapshot again)")
            }
        }
    }

    /// Notes the keys of changes the stream hands over.
    pub(crate) fn observe(&mut self, changes: &[Change]) {
        if let Some(running) = self.running.as_mut() {
            running.observe(changes);
        }
    }

    /// A watermark the stream reached: the rows to emit now, if it was the
    /// running chunk's HIGH. A failure abandons the re-snapshot (logged).
    pub(crate) async fn watermark(
        &mut self,
        which: Watermark,
        payload: &str,
    ) -> Option<Vec<Change>> {
        let running = self.running.as_mut()?;
        match running.on_watermark(which, payload).await {
            Ok(None) => None,
            Ok(Some((rows, finished))) => {
                if finished {
                    if let Some(done) = self.running.take() {
                        tracing::info!(table = %done.table(), rows = done.emitted(), from = %done.cap(), "re-snapshot complete");
                        done.source.close().await;
                    }
                }
                Some(rows)
            }
            Err(e) => {
                if let Some(failed) = self.running.take() {
                    tracing::error!(table = %failed.table(), error = %e, "re-snapshot abandoned; streaming goes on (run kappa snapshot again)");
                    failed.source.close().await;
                }
                None
            }
        }
    }

    /// A TRUNCATE of `tables` ends a re-snapshot of one of them.
    pub(crate) async fn truncated<'a>(&mut self, mut tables: impl Iterator<Item = &'a TableName>) {
        let ends = self
            .running
            .as_ref()
            .is_some_and(|running| tables.any(|t| t == running.table()));
        if ends {
            if let Some(done) = self.running.take() {
                tracing::info!(table = %done.table(), rows = done.emitted(), "re-snapshot complete: the table was truncated, every row it holds now comes through the stream");
                done.source.close().await;
            }
        }
    }

    /// The stream's session was lost: a running re-snapshot ends, and starts
    /// over when the request is read again.
    pub(crate) async fn session_lost(&mut self) {
        if let Some(running) = self.running.take() {
            tracing::warn!(table = %running.table(), "re-snapshot interrupted by the lost connection; it starts over when the request is read again");
            running.source.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_schema as schema;
    use super::*;
    use kappa_schemas::Value;
    use std::sync::Mutex;

    /// A table of ids 1..=rows, read in chunks; records what it was asked.
    struct Table {
        rows: i64,
        fail_reads_from: Option<i64>,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl ChunkSource for Table {
        type Key = i64;

        async fn watermark(&mut self, which: Watermark, payload: &str) -> Result<(), SourceError> {
            self.log
                .lock()
                .map_err(|_| SourceError::ConsumerGone)?
                .push(format!("{}:{payload}", which.name()));
            Ok(())
        }

        async fn read_chunk(
            &mut self,
            after: Option<&i64>,
            rows: usize,
        ) -> Result<ChunkRead<i64>, SourceError> {
            let first = after.map_or(1, |k| k + 1);
            if self.fail_reads_from.is_some_and(|from| first >= from) {
                return Err(SourceError::ConsumerGone);
            }
            let ids: Vec<i64> = (first..=self.rows).take(rows).collect();
            Ok(ChunkRead {
                rows: ids
                    .iter()
                    .map(|&id| vec![Value::Int(id), Value::Text(format!("v{id}"))])
                    .collect(),
                last_key: ids.last().copied(),
                schema: schema(),
                key_columns: vec![0],
            })
        }

        async fn close(self) {
            if let Ok(mut log) = self.log.lock() {
                log.push("closed".into());
            }
        }
    }

    async fn started(
        rows: i64,
        fail_reads_from: Option<i64>,
    ) -> (Resnapshots<Table, u64>, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let table = Table {
            rows,
            fail_reads_from,
            log: log.clone(),
        };
        let mut resnapshots = Resnapshots::default();
        let name = schema().name.clone();
        resnapshots
            .start(
                &name,
                &"7",
                Resnapshot::start(table, "r".into(), name.clone(), 2, 7),
            )
            .await;
        (resnapshots, log)
    }

    fn ids(changes: &[Change]) -> Vec<Vec<Value>> {
        changes.iter().map(Change::key).collect()
    }

    #[tokio::test]
    async fn chunks_are_emitted_at_their_high_watermark_only() {
        let (mut resnapshots, log) = started(3, None).await;
        assert_eq!(resnapshots.cap(), Some(&7));
        assert!(!resnapshots.may_start(&schema().name), "one at a time");
        assert_eq!(
            resnapshots
                .watermark(Watermark::Low, "r:1")
                .await
                .map(|c| c.len()),
            None
        );
        assert_eq!(
            resnapshots
                .watermark(Watermark::High, "other:1")
                .await
                .map(|c| c.len()),
            None,
            "another re-snapshot's watermark"
        );
        let first = resnapshots.watermark(Watermark::High, "r:1").await;
        assert_eq!(
            first.as_deref().map(ids),
            Some(vec![vec![Value::Int(1)], vec![Value::Int(2)]])
        );
        // Key 3 changed in the stream: left to the stream's own change.
        resnapshots.observe(&[Change::Upsert {
            table: schema(),
            row: vec![Value::Int(3), Value::Text("new".into())],
        }]);
        let last = resnapshots.watermark(Watermark::High, "r:2").await;
        assert_eq!(last.map(|c| c.len()), Some(0));
        assert_eq!(resnapshots.table(), None, "a short chunk finishes it");
        let log = log.lock().expect("log").clone();
        assert_eq!(
            log,
            ["low:r:1", "high:r:1", "low:r:2", "high:r:2", "closed"]
        );
    }

    #[tokio::test]
    async fn a_failed_chunk_abandons_it_and_closes_its_session() {
        let (mut resnapshots, log) = started(10, Some(3)).await;
        assert!(resnapshots
            .watermark(Watermark::High, "r:1")
            .await
            .is_none());
        assert_eq!(resnapshots.table(), None);
        assert!(log.lock().expect("log").ends_with(&["closed".to_string()]));
        assert!(
            resnapshots.may_start(&schema().name),
            "a new request may start one"
        );
    }

    #[tokio::test]
    async fn a_failed_start_is_abandoned_and_closed() {
        let (resnapshots, log) = started(10, Some(1)).await;
        assert_eq!(resnapshots.table(), None);
        assert_eq!(log.lock().expect("log").clone(), ["low:r:1", "closed"]);
    }

    #[tokio::test]
    async fn a_truncate_of_its_table_or_a_lost_session_ends_it() {
        let (mut resnapshots, log) = started(10, None).await;
        resnapshots
            .truncated([TableName::new("s", "other")].iter())
            .await;
        assert!(resnapshots.table().is_some(), "another table's TRUNCATE");
        resnapshots.truncated([schema().name.clone()].iter()).await;
        assert_eq!(resnapshots.table(), None);
        assert!(log.lock().expect("log").ends_with(&["closed".to_string()]));

        let (mut resnapshots, log) = started(10, None).await;
        resnapshots.session_lost().await;
        assert_eq!(resnapshots.table(), None);
        assert!(log.lock().expect("log").ends_with(&["closed".to_string()]));
    }
}
