//! MySQL/MariaDB tables as `information_schema` describes them: columns,
//! their types and character sets, and the primary key. The same description
//! decodes snapshot rows, binlog rows and `verify`'s reads, so all three give
//! the same values.

use super::types::{column_type, MysqlColumn, MysqlKind};
use super::{query_error, quote_table};
use crate::error::SourceError;
use crate::table_filter::select_tables;
use kappa_schemas::{Column, TableName, TableSchema};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use std::sync::Arc;

/// A captured table: its kappa schema and, per column, how to read values.
#[derive(Debug, Clone)]
pub struct MysqlTable {
    pub schema: Arc<TableSchema>,
    pub columns: Vec<MysqlColumn>,
}

impl MysqlTable {
    /// The table restricted to the named columns, in that order: the shape
    /// of the table when an older binlog event was written (a column added
    /// since is not in it). Errors name a column the table no longer has.
    pub fn project(&self, names: &[String]) -> Result<MysqlTable, SourceError> {
        if names.len() == self.schema.columns.len()
            && names
                .iter()
                .zip(&self.schema.columns)
                .all(|(n, c)| *n == c.name)
        {
            return Ok(self.clone());
        }
        let mut indices = Vec::with_capacity(names.len());
        for name in names {
            let index = self.schema.column_index(name).ok_or_else(|| SourceError::Unsupported {
                table: self.schema.name.clone(),
                reason: format!(
                    "a binlog event has column {name:?}, which the table no longer has (dropped or renamed since): \
                     kappa cannot decode events older than that change; re-snapshot the table \
                     (new connector name, delete its topics)"
                ),
            })?;
            indices.push(index);
        }
        let mut key_columns = Vec::with_capacity(self.schema.key_columns.len());
        for key in &self.schema.key_columns {
            let position = indices.iter().position(|i| i == key).ok_or_else(|| {
                SourceError::Unsupported {
                    table: self.schema.name.clone(),
                    reason: format!(
                        "a binlog event lacks key column {:?}: the primary key changed since; re-snapshot the table",
                        self.schema.columns[*key].name
                    ),
                }
            })?;
            key_columns.push(position);
        }
        Ok(MysqlTable {
            schema: Arc::new(TableSchema {
                name: self.schema.name.clone(),
                columns: indices
                    .iter()
                    .map(|&i| self.schema.columns[i].clone())
                    .collect(),
                key_columns,
            }),
            columns: indices.iter().map(|&i| self.columns[i].clone()).collect(),
        })
    }

    /// Like [`MysqlTable::project`], for an event older than a DROP COLUMN:
    /// columns the table no longer has come back `false` in the mask (their
    /// values are read past and dropped, which is what the table holds now:
    /// after compaction the record is the row as it is today). When the table
    /// also has a column the event lacks, a column may have been renamed
    /// since; dropping its value would write NULL under the new name, so that
    /// is an error naming both.
    pub fn project_dropping(
        &self,
        names: &[String],
    ) -> Result<(MysqlTable, Vec<bool>), SourceError> {
        let kept: Vec<bool> = names
            .iter()
            .map(|n| self.schema.column_index(n).is_some())
            .collect();
        let gone: Vec<&String> = names
            .iter()
            .zip(&kept)
            .filter(|(_, k)| !**k)
            .map(|(n, _)| n)
            .collect();
        let lacking: Vec<&str> = self
            .schema
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .filter(|c| !names.iter().any(|n| n == c))
            .collect();
        if !gone.is_empty() && !lacking.is_empty() {
            return Err(SourceError::Unsupported {
                table: self.schema.name.clone(),
                reason: format!(
                    "a binlog event has columns {gone:?}, which the table no longer has, and lacks {lacking:?}, which it has now: \
                     a column was renamed (or dropped and another added) since that event, and kappa cannot tell which value \
                     belongs where; re-snapshot the table (new connector name, delete its topics)"
                ),
            });
        }
        let known: Vec<String> = names
            .iter()
            .zip(&kept)
            .filter(|(_, k)| **k)
            .map(|(n, _)| n.clone())
            .collect();
        Ok((self.project(&known)?, kept))
    }
}

/// Base tables (not views) of every user database matching the patterns.
pub async fn matching_tables(
    conn: &mut Conn,
    patterns: &[String],
    excluded: &[String],
) -> Result<Vec<TableName>, SourceError> {
    let rows: Vec<(String, String)> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
             WHERE TABLE_TYPE = 'BASE TABLE'
               AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
             ORDER BY 1, 2",
        )
        .await
        .map_err(query_error("listing tables"))?;
    Ok(select_tables(
        rows.into_iter().map(|(db, t)| TableName::new(db, t)),
        patterns,
        excluded,
    ))
}

type ColumnRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
);

/// Reads one table's columns and primary key. A table without a primary key
/// is refused: its records could not be keyed.
pub async fn load_table(conn: &mut Conn, name: &TableName) -> Result<MysqlTable, SourceError> {
    let doing = || format!("reading the columns of {name}");
    let rows: Vec<ColumnRow> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME,
                    NUMERIC_PRECISION, NUMERIC_SCALE, CHARACTER_OCTET_LENGTH
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
             ORDER BY ORDINAL_POSITION",
            (&name.schema, &name.table),
        )
        .await
        .map_err(query_error(doing()))?;
    if rows.is_empty() {
        return Err(SourceError::NoSuchTable {
            table: name.clone(),
        });
    }
    let key_names: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY'
             ORDER BY ORDINAL_POSITION",
            (&name.schema, &name.table),
        )
        .await
        .map_err(query_error(doing()))?;
    if key_names.is_empty() {
        return Err(SourceError::MysqlNoPrimaryKey {
            table: name.clone(),
            quoted: quote_table(name),
        });
    }
    let mut columns = Vec::with_capacity(rows.len());
    let mut mysql_columns = Vec::with_capacity(rows.len());
    for (column, data_type, full_type, nullable, charset, precision, scale, octets) in rows {
        let kind = MysqlKind::from_catalog(
            &data_type,
            &full_type,
            charset.as_deref(),
            precision,
            scale,
            octets,
        )
        .map_err(|reason| SourceError::Unsupported {
            table: name.clone(),
            reason: format!("column {column} ({full_type}): {reason}"),
        })?;
        columns.push(Column {
            name: column.clone(),
            column_type: column_type(&kind),
            nullable: nullable == "YES",
            source_type: full_type,
        });
        mysql_columns.push(MysqlColumn { name: column, kind });
    }
    let key_columns = key_names
        .iter()
        .map(|k| {
            columns
                .iter()
                .position(|c| &c.name == k)
                .ok_or_else(|| SourceError::Unsupported {
                    table: name.clone(),
                    reason: format!("key column {k} not among its columns"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for &k in &key_columns {
        columns[k].nullable = false;
    }
    Ok(MysqlTable {
        schema: Arc::new(TableSchema {
            name: name.clone(),
            columns,
            key_columns,
        }),
        columns: mysql_columns,
    })
}
