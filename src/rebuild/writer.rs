//! The one shape every rebuild target has ([`TargetWriter`]), and the task
//! that feeds a target the workers' batches.
//!
//! A target is opened by [`super::rebuild`] (the one match on [`super::Target`]),
//! then owned by one task that applies batches in the order they arrive;
//! `finish` makes the table final with its metadata, `abort` drops what was
//! written when the replay failed or was refused. Learned from supabase/etl's
//! `Destination`: one trait, so a new target is one file.

use super::decoding::Applied;
use super::summary::Meta;
use kappa_materialize::resolve::StoredSchema;
use std::collections::HashMap;
use std::future::Future;
use tokio::sync::mpsc;

/// Where a rebuild's records become a table.
pub trait TargetWriter: Send + Sized + 'static {
    /// Whether the target stores each record's bytes (values are then only
    /// checked by the decoder, not built into rows).
    const KEEPS_RECORD_BYTES: bool;

    /// Applies `batch` in order: within it and across calls, a later record
    /// of a key replaces an earlier one, a tombstone deletes.
    fn apply(&mut self, batch: Vec<Applied>) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Makes the table final, with what it was rebuilt from.
    fn finish(self, end: Finishing<'_>) -> impl Future<Output = anyhow::Result<Written>> + Send;

    /// Drops what was written: nothing of a failed or refused rebuild stays.
    fn abort(self) -> impl Future<Output = ()> + Send;
}

/// What a target is finished with.
pub struct Finishing<'a> {
    pub meta: &'a Meta<'a>,
    /// Every writer schema the records were written with, by id.
    pub schemas: &'a HashMap<u32, StoredSchema>,
}

/// What a finished target holds.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub upserts: u64,
    pub tombstones: u64,
    pub live_keys: u64,
}

/// Applies every batch `rx` brings to `writer`, on a task of its own; ends
/// with the writer once the workers are done, or with the first failure
/// (then `rx` is dropped and the workers stop).
pub fn start_writer<W: TargetWriter>(
    mut writer: W,
    mut rx: mpsc::Receiver<Vec<Applied>>,
) -> tokio::task::JoinHandle<anyhow::Result<W>> {
    tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            writer.apply(batch).await?;
        }
        Ok(writer)
    })
}
