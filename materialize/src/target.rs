//! The one shape every rebuild target has ([`TargetWriter`]), the task that
//! feeds a target the replay workers' batches, and the targets, one file
//! each: [`sqlite`] (the rebuilt table of records), [`postgres`] and
//! [`mysql`] (typed tables, shaped by [`shape`] from the value schema).
//!
//! A target is opened by `kappa rebuild` (the binary's `src/rebuild.rs`, the
//! one match on its `Target`), then owned by one task that applies batches in
//! the order they arrive;
//! `finish` makes the table final with its metadata, `abort` drops what was
//! written when the replay failed or was refused. Learned from supabase/etl's
//! `Destination`: one trait, so a new target is one file.

pub mod mysql;
pub mod mysql_types;
pub mod postgres;
pub mod shape;
pub mod sqlite;

use crate::resolve::{DecodedRecord, StoredSchema};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use tokio::sync::mpsc;

/// One decoded record on its way to the target.
pub struct Applied {
    pub record: DecodedRecord,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub partition: i32,
    pub offset: i64,
}

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
    /// What the table was rebuilt from (topic, offsets, reader schema, …),
    /// as (name, value) entries.
    pub meta: Vec<(&'static str, String)>,
    /// Every writer schema the records were written with, by id.
    pub schemas: &'a HashMap<u32, StoredSchema>,
}

impl Finishing<'_> {
    /// The comment a typed target table carries: what it was rebuilt from
    /// (without the reader schema, which the table's columns are).
    pub fn table_comment(&self) -> Result<String, serde_json::Error> {
        let comment = serde_json::to_string(
            &self
                .meta
                .iter()
                .filter(|(n, _)| *n != "reader_schema")
                .map(|(n, v)| (*n, v.as_str()))
                .collect::<BTreeMap<_, _>>(),
        )?;
        Ok(format!("rebuilt by kappa: {comment}"))
    }
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
