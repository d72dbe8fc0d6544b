//! The source side of `verify` for a table the connector masks
//! (`exclude_columns`, `hash_columns`, `constant_columns`): every source row
//! is masked exactly as the readers mask a change before encoding it, so a
//! masked table verifies with 0 differences, and a real difference in a
//! masked column still shows — through its hash (a changed email hashes
//! differently) or its NULL-ness (a constant stays NULL for NULL).
//!
//! Works over any [`OrderedSource`]. Masking keeps key values as they are
//! unless a key column is hashed; then the masked order keys no longer
//! follow the source's order, so the masked rows are spilled into a scratch
//! SQLite file (order key → row, [`super::spill`]) and
//! read back in order-key order — disk, not memory, grows with the table.
//! Rows cannot be looked up by a hashed key, so re-checking differences
//! against the current rows (`--slot`, `--wait-for-connector`) is refused for
//! such tables.

use super::source::{Connector, ConnectorPosition, ConnectorWait, OrderedRow, OrderedSource};
use super::spill::SpillSort;
use anyhow::bail;
use kappa_materialize::order_key::encode_key;
use kappa_schemas::mask::TableMask;
use kappa_schemas::{Row, TableSchema, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// A source whose rows come out masked.
pub struct Masked<S> {
    inner: S,
    mask: TableMask,
    spill_path: PathBuf,
    /// Masked rows sorted by their masked order key (hashed keys only).
    spilled: Option<SpillSort>,
}

impl<S: OrderedSource> Masked<S> {
    pub fn new(inner: S, mask: TableMask, spill_path: PathBuf) -> Self {
        Self {
            inner,
            mask,
            spill_path,
            spilled: None,
        }
    }

    fn masked(&self, (ord, row): OrderedRow) -> OrderedRow {
        let row = self.mask.row(&row);
        let ord = if self.mask.hashes_key() {
            let table = self.mask.schema();
            encode_key(table.key_columns.iter().map(|&i| &row[i]))
        } else {
            ord
        };
        (ord, row)
    }

    /// Reads the whole masked snapshot into the scratch file.
    async fn spill(&mut self) -> anyhow::Result<SpillSort> {
        let table = self.mask.schema().clone();
        let mut spill = SpillSort::create(&self.spill_path, &table)?;
        while let Some(chunk) = self.inner.next_chunk().await? {
            spill.push(chunk.into_iter().map(|row| self.masked(row)))?;
        }
        let count = spill.finish()?;
        tracing::info!(table = %table.name, rows = count, "masked source rows spilled to sort by the hashed key");
        Ok(spill)
    }
}

impl<S: OrderedSource> OrderedSource for Masked<S> {
    fn schema(&self) -> &Arc<TableSchema> {
        self.mask.schema()
    }

    async fn begin_snapshot(&mut self) -> anyhow::Result<()> {
        self.inner.begin_snapshot().await
    }

    async fn wait_for_connector(
        &self,
        connector: &Connector,
        wait: ConnectorWait,
    ) -> anyhow::Result<ConnectorPosition> {
        self.inner.wait_for_connector(connector, wait).await
    }

    async fn next_chunk(&mut self) -> anyhow::Result<Option<Vec<OrderedRow>>> {
        if !self.mask.hashes_key() {
            return Ok(self
                .inner
                .next_chunk()
                .await?
                .map(|rows| rows.into_iter().map(|row| self.masked(row)).collect()));
        }
        if self.spilled.is_none() {
            self.spilled = Some(self.spill().await?);
        }
        match self.spilled.as_mut() {
            Some(spill) => spill.next_chunk(),
            None => Ok(None),
        }
    }

    async fn current_rows(&self, keys: &[Vec<Value>]) -> anyhow::Result<Vec<Option<Row>>> {
        if self.mask.hashes_key() {
            bail!(
                "table {}: a hashed key column cannot be looked up in the source, so differences cannot be re-checked against current rows (verify without --slot or --wait-for-connector, with the connector stopped)",
                self.mask.schema().name
            );
        }
        Ok(self
            .inner
            .current_rows(keys)
            .await?
            .into_iter()
            .map(|row| row.map(|row| self.mask.row(&row)))
            .collect())
    }
}
