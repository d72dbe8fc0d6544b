//! Row images of WRITE/UPDATE/DELETE_ROWS events → kappa values, with a
//! per-TABLE_MAP column plan.
//!
//! `mysql_common`'s own row iterator re-reads the TABLE_MAP's optional
//! metadata, recomputes every column's metadata offset (quadratic in the
//! column count) and builds a named column list for every row; the plan does
//! that work once per TABLE_MAP. The common binlog forms (integers, floats,
//! UTF-8/binary strings, DECIMAL, TIME/DATETIME/TIMESTAMP in every form,
//! DATE) are decoded here straight from the bytes into [`Value`]s: no intermediate
//! `mysql_common` value, no copy of the bytes before the final `String`/`Vec`,
//! DECIMAL's binary form read into its unscaled integer without going through
//! text. Every other column (and any column whose TABLE_MAP form does not
//! match what the catalog says) goes through `mysql_common`'s decoder and
//! [`convert`], so both paths give the same value (`tests/it/mysql_types.rs`).
//! Temporal types never reach `mysql_common`'s decoder, on either path (it
//! panics or wraps on some TIME values, see [`temporal`]). Pure: bytes in,
//! values out.

mod decimal;
mod direct;
pub(super) mod temporal;

use super::types::{convert, MysqlColumn, Origin};
use crate::error::SourceError;
use direct::{decode_fast, fast, take, Failure, Fast};
use kappa_schemas::{TableName, Value};
use mysql_async::binlog::events::{OptionalMetaExtractor, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_async::Value as My;
use mysql_common::io::ParseBuf;
use std::io;
use temporal::Temporal;

#[derive(Debug, Clone)]
struct Column {
    ty: ColumnType,
    metadata: Vec<u8>,
    unsigned: bool,
    fast: Option<Fast>,
    /// `false` for a column the table no longer has (an event older than a
    /// DROP COLUMN): its value is read past and dropped.
    kept: bool,
}

/// How to decode each column of one table id's rows.
#[derive(Debug, Clone)]
pub struct RowPlan {
    columns: Vec<Column>,
    /// How many columns are kept (all, unless an event predates a DROP).
    kept: usize,
}

impl RowPlan {
    /// Column types, metadata and signedness from the TABLE_MAP; `kinds`
    /// are the catalog's columns in the event's order, one per event column
    /// marked kept in `kept` (all of them when `None`).
    pub fn new(
        tme: &TableMapEvent<'_>,
        kinds: &[MysqlColumn],
        kept: Option<&[bool]>,
    ) -> io::Result<Self> {
        let meta = OptionalMetaExtractor::new(tme.iter_optional_meta())?;
        let mut signedness = meta.iter_signedness();
        let count = tme.columns_count() as usize;
        if kept.is_some_and(|k| k.len() != count) {
            return Err(io::Error::other(format!(
                "column mask of {} for a TABLE_MAP of {count} columns",
                kept.map_or(0, <[bool]>::len)
            )));
        }
        let mut kinds = kinds.iter();
        let mut columns = Vec::with_capacity(count);
        for i in 0..count {
            let ty = tme
                .get_column_type(i)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
                .ok_or_else(|| io::Error::other(format!("no type for column {i}")))?;
            let metadata = tme.get_column_metadata(i).unwrap_or(&[]).to_vec();
            let unsigned = ty.is_numeric_type() && signedness.next().unwrap_or(false);
            let kept = kept.is_none_or(|k| k[i]);
            let fast = match kept {
                true => kinds
                    .next()
                    .and_then(|c| fast(ty, &metadata, unsigned, &c.kind)),
                false => None,
            };
            columns.push(Column {
                ty,
                metadata,
                unsigned,
                fast,
                kept,
            });
        }
        let kept = columns.iter().filter(|c| c.kept).count();
        Ok(Self { columns, kept })
    }

    /// Whether a row image with these present columns can be decoded: every
    /// column must be present (`binlog_row_image = FULL`). Checked once per
    /// event.
    pub fn check_present(&self, present: impl Iterator<Item = bool>) -> io::Result<()> {
        let mut n = 0;
        for p in present {
            if !p {
                n = usize::MAX;
                break;
            }
            n += 1;
        }
        if n != self.columns.len() {
            return Err(io::Error::other(
                "a row image lacks columns: kappa needs binlog_row_image = FULL",
            ));
        }
        Ok(())
    }

    /// Decodes one row image (all columns present, see
    /// [`RowPlan::check_present`]) of `table`, whose catalog columns are
    /// `kinds` in the event's order.
    pub fn decode<'a>(
        &'a self,
        table: &TableName,
        kinds: &[MysqlColumn],
        buf: &mut ParseBuf<'a>,
    ) -> Result<Vec<Value>, SourceError> {
        if self.kept != self.columns.len() {
            return self.decode_dropping(table, kinds, buf);
        }
        let io_error = |source: io::Error| SourceError::RowUndecodable {
            table: table.clone(),
            at: String::new(),
            source,
        };
        if kinds.len() != self.columns.len() {
            return Err(SourceError::RowShape {
                what: "a row event",
                table: table.clone(),
                got: self.columns.len(),
                want: kinds.len(),
            });
        }
        let nulls: &[u8] = buf
            .parse(self.columns.len().div_ceil(8))
            .map_err(io_error)?;
        let mut values = Vec::with_capacity(self.columns.len());
        for (i, (column, kind)) in self.columns.iter().zip(kinds).enumerate() {
            if nulls[i / 8] & (1 << (i % 8)) != 0 {
                values.push(Value::Null);
                continue;
            }
            let value = match column.fast {
                Some(fast) => decode_fast(fast, table, kind, buf).map_err(|e| match e {
                    Failure::Io(e) => io_error(e),
                    Failure::Source(e) => e,
                })?,
                None => column.generic_value(table, kind, buf)?,
            };
            values.push(value);
        }
        Ok(values)
    }

    /// [`RowPlan::decode`] for an event older than a DROP COLUMN: the values
    /// of columns the table no longer has are read past and left out. Kept
    /// apart, and on the generic decoder only, so that `decode_fast` keeps its
    /// single call site and stays inlined in the common loop (a second caller
    /// measured 10% slower decoding).
    #[cold]
    #[inline(never)]
    fn decode_dropping<'a>(
        &'a self,
        table: &TableName,
        kinds: &[MysqlColumn],
        buf: &mut ParseBuf<'a>,
    ) -> Result<Vec<Value>, SourceError> {
        let io_error = |source: io::Error| SourceError::RowUndecodable {
            table: table.clone(),
            at: String::new(),
            source,
        };
        if kinds.len() != self.kept {
            return Err(SourceError::RowShape {
                what: "a row event",
                table: table.clone(),
                got: self.kept,
                want: kinds.len(),
            });
        }
        let nulls: &[u8] = buf
            .parse(self.columns.len().div_ceil(8))
            .map_err(io_error)?;
        let mut values = Vec::with_capacity(self.kept);
        let mut kinds = kinds.iter();
        for (i, column) in self.columns.iter().enumerate() {
            let null = nulls[i / 8] & (1 << (i % 8)) != 0;
            if !column.kept {
                if !null {
                    column.binlog_value(buf).map_err(io_error)?;
                }
                continue;
            }
            let Some(kind) = kinds.next() else {
                return Err(SourceError::Bug(format!(
                    "the row plan of {table} keeps more columns than the catalog has"
                )));
            };
            values.push(match null {
                true => Value::Null,
                false => column.generic_value(table, kind, buf)?,
            });
        }
        Ok(values)
    }
}

impl Column {
    /// One non-NULL value through `mysql_common`'s decoder and the shared
    /// conversion (what the fast decoder does for the common forms).
    fn generic_value<'a>(
        &'a self,
        table: &TableName,
        kind: &MysqlColumn,
        buf: &mut ParseBuf<'a>,
    ) -> Result<Value, SourceError> {
        let io_error = |source: io::Error| SourceError::RowUndecodable {
            table: table.clone(),
            at: String::new(),
            source,
        };
        let value = self.binlog_value(buf).map_err(io_error)?;
        let value = My::try_from(value).map_err(|e| io_error(io::Error::other(e)))?;
        convert(table, kind, value, Origin::Binlog)
    }

    /// The value as `mysql_common` parses it from the column's TABLE_MAP
    /// type, metadata and signedness alone — except temporal types, decoded
    /// by [`temporal`] into the same form.
    fn binlog_value<'a>(&'a self, buf: &mut ParseBuf<'a>) -> io::Result<BinlogValue<'a>> {
        if let Some(temporal) = Temporal::of(self.ty, &self.metadata) {
            let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
            let bytes = take(buf, temporal.len().map_err(invalid)?)?;
            let decoded = temporal.decode(bytes).map_err(invalid)?;
            return Ok(BinlogValue::Value(decoded.to_mysql()));
        }
        super::decoder_guard::check(self.ty, &self.metadata, buf.0)?;
        buf.parse((self.ty, self.metadata.as_slice(), self.unsigned, false))
    }
}

#[cfg(test)]
mod tests {
    use super::direct::civil_days;

    #[test]
    fn civil_days_agree_with_chrono() {
        use chrono::NaiveDate;
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for y in (0..=9999u16)
            .step_by(7)
            .chain([0, 1, 4, 100, 400, 1900, 2000, 2024, 9999])
        {
            for m in 0..=13u8 {
                for d in 0..=32u8 {
                    let ours = civil_days(y, m, d);
                    let chrono = NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d))
                        .map(|date| (date - epoch).num_days());
                    assert_eq!(ours, chrono, "{y}-{m}-{d}");
                }
            }
        }
    }
}
