//! Row events: TABLE_MAP to the table's shape (reloading the catalog when
//! an event names columns it lacks), WRITE/UPDATE/DELETE_ROWS to changes.

use super::*;

impl Streamer {
    pub(super) async fn table_map(&mut self, tme: &TableMapEvent<'_>) -> Result<(), SourceError> {
        let name = TableName::new(tme.database_name(), tme.table_name());
        self.signal_ids.remove(&tme.table_id());
        if self.config.signal_table.as_ref() == Some(&name) {
            return self.signal_table_map(tme, &name).await;
        }
        let Some(current) = self.tables.get(&name) else {
            self.by_id.insert(tme.table_id(), None);
            return Ok(());
        };
        let table_map = |source| SourceError::TableMap {
            table: name.clone(),
            source,
        };
        let names = column_names(tme).map_err(table_map)?;
        let (projected, kept) = match current.project(&names) {
            Ok(projected) => (projected, None),
            Err(_) => {
                // A column the cached catalog does not know: DDL since the
                // last load. Reload, then project again; a column still
                // unknown was dropped since this (replayed) event.
                let reloaded = self.reload(&name).await?;
                let (projected, kept) = reloaded.project_dropping(&names)?;
                if kept.contains(&false) {
                    tracing::warn!(table = %name, event_columns = ?names, "a replayed binlog event has columns dropped since; their values are left out (the row as the table holds it now)");
                }
                (projected, Some(kept))
            }
        };
        let plan = RowPlan::new(tme, &projected.columns, kept.as_deref()).map_err(table_map)?;
        self.by_id
            .insert(tme.table_id(), Some(Arc::new((projected, plan))));
        Ok(())
    }

    pub(super) async fn side_session(&mut self) -> Result<&mut Conn, SourceError> {
        if self.side.is_none() {
            self.side = Some(
                connect(
                    &self.config.common.url,
                    self.config.common.password.as_deref(),
                )
                .await?,
            );
        }
        self.side.as_mut().ok_or(SourceError::NoCatalogSession)
    }

    pub(super) async fn reload(&mut self, name: &TableName) -> Result<MysqlTable, SourceError> {
        if self.side.is_none() {
            self.side = Some(
                connect(
                    &self.config.common.url,
                    self.config.common.password.as_deref(),
                )
                .await?,
            );
        }
        let Some(side) = self.side.as_mut() else {
            return Err(SourceError::NoCatalogSession);
        };
        let table = load_table(side, name).await?;
        tracing::info!(table = %name, columns = table.schema.columns.len(), "table shape reloaded after DDL");
        self.tables.insert(name.clone(), table.clone());
        Ok(table)
    }

    /// Rows of a WRITE/UPDATE/DELETE event, decoded with the table's plan.
    pub(super) fn rows(
        &mut self,
        table: &MysqlTable,
        plan: &RowPlan,
        rows: &RowsEventData<'_>,
    ) -> Result<(), SourceError> {
        let name = &table.schema.name;
        let file = &self.file;
        let error = |source| SourceError::RowUndecodable {
            table: name.clone(),
            at: format!(" at {file}"),
            source,
        };
        let (before_cols, after_cols) = (rows.columns_before_image(), rows.columns_after_image());
        for cols in [before_cols, after_cols].into_iter().flatten() {
            plan.check_present(cols.iter().by_vals()).map_err(error)?;
        }
        let mut buf = ParseBuf(rows.rows_data());
        while !buf.is_empty() {
            let before = before_cols
                .map(|_| plan.decode(name, &table.columns, &mut buf))
                .transpose()?;
            let after = after_cols
                .map(|_| plan.decode(name, &table.columns, &mut buf))
                .transpose()?;
            self.change(table, before, after);
        }
        Ok(())
    }

    /// MySQL 8's partial JSON updates, through `mysql_common`'s row iterator.
    pub(super) fn partial_rows(
        &mut self,
        table: &MysqlTable,
        rows: &RowsEventData<'_>,
        tme: &TableMapEvent<'_>,
    ) -> Result<(), SourceError> {
        let name = &table.schema.name;
        for row in rows.rows(tme) {
            let (before, after) = row.map_err(|source| SourceError::RowUndecodable {
                table: name.clone(),
                at: format!(" at {}", self.file),
                source,
            })?;
            let convert = |r| -> Result<Vec<Value>, SourceError> {
                convert_row(name, &table.columns, values(name, r)?, Origin::Binlog)
            };
            let before = before.map(convert).transpose()?;
            let after = after.map(convert).transpose()?;
            self.change(table, before, after);
        }
        Ok(())
    }

    /// A row's images (before, after) → changes, each noted with its key's
    /// before image (see `undo.rs`).
    pub(super) fn change(&mut self, table: &MysqlTable, before: Option<Row>, after: Option<Row>) {
        let schema = &table.schema;
        let upsert = |row: Row| Change::Upsert {
            table: schema.clone(),
            row,
        };
        let tombstone = |row: &Row| Change::Delete {
            table: schema.clone(),
            key: schema.key_columns.iter().map(|&i| row[i].clone()).collect(),
        };
        match (before, after) {
            (None, Some(row)) => {
                self.undo.note(None);
                self.pending.push(upsert(row));
            }
            (Some(old), Some(row)) => {
                if schema.key_columns.iter().any(|&i| old[i] != row[i]) {
                    self.pending.push(tombstone(&old));
                    self.undo.note(Some(old));
                    // The new key was absent: else the UPDATE would have failed.
                    self.undo.note(None);
                } else {
                    self.undo.note(Some(old));
                }
                self.pending.push(upsert(row));
            }
            (Some(old), None) => {
                self.pending.push(tombstone(&old));
                self.undo.note(Some(old));
            }
            (None, None) => {}
        }
    }
}
