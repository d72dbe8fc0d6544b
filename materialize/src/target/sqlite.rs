//! The SQLite target: `kappa_materialize::table::SqliteTableBuilder` behind
//! [`TargetWriter`]. SQLite is blocking I/O, so the builder lives on a
//! blocking thread of its own and batches reach it through a bounded
//! channel; the file is `PATH.partial` until `finish` renames it over `PATH`.

use super::{Applied, Finishing, TargetWriter, Written};
use crate::table::{partial_path, SqliteTableBuilder};
use anyhow::Context;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Batches queued for the SQLite thread.
const QUEUED: usize = 2;

pub struct SqliteWriter {
    path: PathBuf,
    batches: mpsc::Sender<Vec<Applied>>,
    /// The blocking thread; ends with the builder once `batches` closes, or
    /// with the first failure. Taken when awaited.
    thread: Option<JoinHandle<anyhow::Result<SqliteTableBuilder>>>,
}

impl SqliteWriter {
    /// A fresh table that replaces `path` when finished.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let mut builder = SqliteTableBuilder::create(path)?;
        let (batches, mut rx) = mpsc::channel::<Vec<Applied>>(QUEUED);
        let thread = tokio::task::spawn_blocking(move || {
            while let Some(batch) = rx.blocking_recv() {
                for a in batch {
                    builder.apply(
                        &a.record.ord,
                        &a.key,
                        a.value.as_deref(),
                        a.partition,
                        a.offset,
                    )?;
                }
            }
            Ok(builder)
        });
        Ok(Self {
            path: path.to_path_buf(),
            batches,
            thread: Some(thread),
        })
    }

    /// The thread's end: the builder, or the error that stopped it.
    async fn builder(mut self) -> anyhow::Result<SqliteTableBuilder> {
        drop(self.batches);
        let Some(thread) = self.thread.take() else {
            anyhow::bail!("the SQLite writer of {} stopped", self.path.display());
        };
        thread.await.context("SQLite writer thread")?
    }
}

impl TargetWriter for SqliteWriter {
    const KEEPS_RECORD_BYTES: bool = true;

    async fn apply(&mut self, batch: Vec<Applied>) -> anyhow::Result<()> {
        if self.batches.send(batch).await.is_ok() {
            return Ok(());
        }
        // The thread stopped: its error is the one to report.
        match self.thread.take() {
            Some(thread) => match thread.await.context("SQLite writer thread")? {
                Err(e) => Err(e),
                Ok(_) => anyhow::bail!("the SQLite writer of {} stopped", self.path.display()),
            },
            None => anyhow::bail!("the SQLite writer of {} stopped", self.path.display()),
        }
    }

    async fn finish(self, end: Finishing<'_>) -> anyhow::Result<Written> {
        let mut builder = self.builder().await?;
        let mut ids: Vec<&u32> = end.schemas.keys().collect();
        ids.sort();
        let schemas: Vec<(u32, std::sync::Arc<str>)> = ids
            .into_iter()
            .map(|id| (*id, end.schemas[id].text.clone()))
            .collect();
        let meta = end.meta;
        tokio::task::spawn_blocking(move || {
            for (id, text) in &schemas {
                builder.add_schema(*id, text)?;
            }
            for (name, value) in &meta {
                builder.set_meta(name, value)?;
            }
            let (upserts, tombstones) = (builder.upserts, builder.tombstones);
            Ok(Written {
                upserts,
                tombstones,
                live_keys: builder.finish()?,
            })
        })
        .await
        .context("SQLite writer thread")?
    }

    async fn abort(self) {
        let partial = partial_path(&self.path);
        drop(self.builder().await);
        let _ = std::fs::remove_file(partial);
    }
}
