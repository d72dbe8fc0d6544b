//! Row images of WRITE/UPDATE/DELETE_ROWS events → `mysql_common` values,
//! with a per-TABLE_MAP column plan.
//!
//! `mysql_common`'s own row iterator re-reads the TABLE_MAP's optional
//! metadata, recomputes every column's metadata offset (quadratic in the
//! column count) and builds a named column list for every row; that was
//! most of the reader's time. The plan does that work once per TABLE_MAP;
//! each value is still decoded by `mysql_common` (`BinlogValue`). Pure: bytes
//! in, values out.

use mysql_async::binlog::events::{OptionalMetaExtractor, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_async::Value as My;
use mysql_common::io::ParseBuf;
use std::io;

/// How to decode each column of one table id's rows.
#[derive(Debug, Clone)]
pub struct RowPlan {
    columns: Vec<(ColumnType, Vec<u8>, bool)>,
}

impl RowPlan {
    /// Column types, metadata and signedness from the TABLE_MAP.
    pub fn new(tme: &TableMapEvent<'_>) -> io::Result<Self> {
        let meta = OptionalMetaExtractor::new(tme.iter_optional_meta())?;
        let mut signedness = meta.iter_signedness();
        let count = tme.columns_count() as usize;
        let mut columns = Vec::with_capacity(count);
        for i in 0..count {
            let ty = tme
                .get_column_type(i)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
                .ok_or_else(|| io::Error::other(format!("no type for column {i}")))?;
            let metadata = tme.get_column_metadata(i).unwrap_or(&[]).to_vec();
            let unsigned = ty.is_numeric_type() && signedness.next().unwrap_or(false);
            columns.push((ty, metadata, unsigned));
        }
        Ok(Self { columns })
    }

    /// Decodes one row image whose present columns are `present` (one
    /// flag per column); every column must be present (`binlog_row_image
    /// = FULL`).
    pub fn decode<'a>(
        &'a self,
        present: impl Iterator<Item = bool>,
        buf: &mut ParseBuf<'a>,
    ) -> io::Result<Vec<My>> {
        let present: Vec<bool> = present.collect();
        if present.len() != self.columns.len() || present.iter().any(|p| !p) {
            return Err(io::Error::other(
                "a row image lacks columns: kappa needs binlog_row_image = FULL",
            ));
        }
        let nulls: &[u8] = buf.parse(self.columns.len().div_ceil(8))?;
        let mut values = Vec::with_capacity(self.columns.len());
        for (i, (ty, metadata, unsigned)) in self.columns.iter().enumerate() {
            if nulls[i / 8] & (1 << (i % 8)) != 0 {
                values.push(My::NULL);
                continue;
            }
            let value: BinlogValue<'_> = buf.parse((*ty, metadata.as_slice(), *unsigned, false))?;
            values.push(My::try_from(value).map_err(io::Error::other)?);
        }
        Ok(values)
    }
}
