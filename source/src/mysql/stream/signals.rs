//! Signal-table rows in the stream: re-snapshot requests and watermarks of
//! this connector (see `mysql/resnapshot.rs`), acted on at the commit of
//! their transaction.

use super::*;
use crate::dblog::Watermark;

impl Streamer {
    /// The signal table's TABLE_MAP: its rows are decoded as signals.
    pub(super) async fn signal_table_map(
        &mut self,
        tme: &TableMapEvent<'_>,
        name: &TableName,
    ) -> Result<(), SourceError> {
        let table_map = |source| SourceError::TableMap {
            table: name.clone(),
            source,
        };
        let names = column_names(tme).map_err(table_map)?;
        let cached = self.signal_table.as_ref().map(|t| t.project(&names));
        let projected = match cached {
            Some(Ok(projected)) => projected,
            _ => {
                let side = self.side_session().await?;
                let table = load_table(side, name).await?;
                self.signal_table = Some(table.clone());
                table.project(&names)?
            }
        };
        let plan = RowPlan::new(tme, &projected.columns, None).map_err(table_map)?;
        self.by_id
            .insert(tme.table_id(), Some(Arc::new((projected, plan))));
        self.signal_ids.insert(tme.table_id());
        Ok(())
    }

    /// Inserted rows of the signal table naming this connector: kept until
    /// their transaction commits. They are never records.
    pub(super) fn signal_rows(
        &mut self,
        table: &MysqlTable,
        plan: &RowPlan,
        rows: &RowsEventData<'_>,
    ) -> Result<(), SourceError> {
        // Inserts only (WRITE_ROWS, v1 in MariaDB or v2): an after image alone.
        if rows.columns_before_image().is_some() {
            return Ok(());
        }
        let name = &table.schema.name;
        let file = &self.file;
        let error = |source| SourceError::RowUndecodable {
            table: name.clone(),
            at: format!(" at {file}"),
            source,
        };
        let Some(after_cols) = rows.columns_after_image() else {
            return Ok(());
        };
        plan.check_present(after_cols.iter().by_vals())
            .map_err(error)?;
        let mut buf = ParseBuf(rows.rows_data());
        while !buf.is_empty() {
            let row = plan.decode(name, &table.columns, &mut buf)?;
            if let Some(signal) = resnapshot::signal_of(table, &row, &self.config.connector) {
                self.signals.push(signal);
            }
        }
        Ok(())
    }

    /// A request or a watermark of this connector, at the commit of its
    /// transaction; `before` is the position before that transaction.
    pub(super) async fn on_signal(
        &mut self,
        signal: &Signal,
        before: &BinlogPosition,
    ) -> Result<(), SourceError> {
        if signal.kind == resnapshot::REQUEST {
            let table = match TableName::parse(&signal.payload) {
                Ok(table) => table,
                Err(e) => {
                    tracing::warn!(payload = %signal.payload, error = %e, "ignoring a malformed re-snapshot request");
                    return Ok(());
                }
            };
            if !self.tables.contains_key(&table) {
                tracing::warn!(%table, "re-snapshot requested for a table this connector does not capture; ignored");
                return Ok(());
            }
            if !self.resnapshots.may_start(&table) {
                return Ok(());
            }
            let Some(signal_table) = self.config.signal_table.clone() else {
                return Ok(());
            };
            let source = resnapshot::Source {
                url: &self.config.common.url,
                password: self.config.common.password.as_deref(),
                signal: &signal_table,
                connector: &self.config.connector,
                chunk_rows: self.config.common.snapshot_chunk_rows,
            };
            let started = resnapshot::start(&source, &table, before.clone());
            self.resnapshots.start(&table, before, started).await;
            return Ok(());
        }
        let Some(which) = Watermark::parse(&signal.kind) else {
            return Ok(());
        };
        let Some(table) = self.resnapshots.table().cloned() else {
            return Ok(());
        };
        let Some(rows) = self.resnapshots.watermark(which, &signal.payload).await else {
            return Ok(());
        };
        let schema = rows.first().map(|c| c.table().clone());
        let rows = match (schema, self.tables.get(&table)) {
            // The streamer's own shape when it is the same.
            (Some(schema), Some(current)) if *schema == *current.schema => rows
                .into_iter()
                .map(|change| match change {
                    Change::Upsert { row, .. } => Change::Upsert {
                        table: current.schema.clone(),
                        row,
                    },
                    other => other,
                })
                .collect(),
            _ => rows,
        };
        self.tx
            .send(ChangeBatch {
                changes: rows,
                ..ChangeBatch::default()
            })
            .await
            .map_err(|_| SourceError::ConsumerGone)?;
        Ok(())
    }
}
