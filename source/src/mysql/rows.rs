//! Row images of WRITE/UPDATE/DELETE_ROWS events → kappa values, with a
//! per-TABLE_MAP column plan.
//!
//! `mysql_common`'s own row iterator re-reads the TABLE_MAP's optional
//! metadata, recomputes every column's metadata offset (quadratic in the
//! column count) and builds a named column list for every row; the plan does
//! that work once per TABLE_MAP. The common binlog forms (integers, floats,
//! UTF-8/binary strings, DECIMAL, DATETIME2, TIMESTAMP2, DATE) are decoded
//! here straight from the bytes into [`Value`]s: no intermediate
//! `mysql_common` value, no copy of the bytes before the final `String`/`Vec`,
//! DECIMAL's binary form read into its unscaled integer without going through
//! text. Every other column (and any column whose TABLE_MAP form does not
//! match what the catalog says) goes through `mysql_common`'s decoder and
//! [`convert`], so both paths give the same value (`tests/mysql_types.rs`).
//! Pure: bytes in, values out.

use super::charset::Charset;
use super::types::{convert, MysqlColumn, MysqlKind, Origin};
use crate::error::SourceError;
use kappa_schemas::{TableName, Value};
use mysql_async::binlog::events::{OptionalMetaExtractor, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_async::Value as My;
use mysql_common::io::ParseBuf;
use num_bigint::BigInt;
use std::io;

/// A column decoded without `mysql_common`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fast {
    /// Little-endian integer of `bytes` bytes; `unsigned`.
    Int {
        bytes: u8,
        unsigned: bool,
    },
    Float,
    Double,
    /// Length-prefixed bytes (`len_bytes` of little-endian length): UTF-8
    /// text, or binary padded to `pad_to`.
    Text {
        len_bytes: u8,
    },
    Binary {
        len_bytes: u8,
        pad_to: Option<usize>,
    },
    /// NEWDECIMAL of at most 38 digits (fits an i128).
    Decimal {
        precision: u8,
        scale: u8,
    },
    DateTime2 {
        fsp: u8,
    },
    Timestamp2 {
        fsp: u8,
    },
    Date,
}

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
        let io_error = |e: io::Error| SourceError::Protocol(format!("row event of {table}: {e}"));
        if kinds.len() != self.columns.len() {
            return Err(SourceError::Protocol(format!(
                "table {table}: a row has {} values for {} columns",
                self.columns.len(),
                kinds.len()
            )));
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
        let io_error = |e: io::Error| SourceError::Protocol(format!("row event of {table}: {e}"));
        if kinds.len() != self.kept {
            return Err(SourceError::Protocol(format!(
                "table {table}: a row has {} values for {} columns",
                self.kept,
                kinds.len()
            )));
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
                return Err(SourceError::Protocol(format!(
                    "table {table}: more kept columns than catalog columns"
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
        let io_error = |e: io::Error| SourceError::Protocol(format!("row event of {table}: {e}"));
        let value = self.binlog_value(buf).map_err(io_error)?;
        let value = My::try_from(value).map_err(|e| io_error(io::Error::other(e)))?;
        convert(table, kind, value, Origin::Binlog)
    }

    /// The value as `mysql_common` parses it from the column's TABLE_MAP
    /// type, metadata and signedness alone.
    fn binlog_value<'a>(&'a self, buf: &mut ParseBuf<'a>) -> io::Result<BinlogValue<'a>> {
        super::decoder_guard::check(self.ty, &self.metadata, buf.0)?;
        buf.parse((self.ty, self.metadata.as_slice(), self.unsigned, false))
    }
}

/// The fast decoder of a column, when its TABLE_MAP form is one of the
/// common ones and agrees with the catalog.
fn fast(ty: ColumnType, meta: &[u8], unsigned: bool, kind: &MysqlKind) -> Option<Fast> {
    use ColumnType::*;
    let len_bytes = || -> Option<u8> {
        match ty {
            MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING => {
                let max = u16::from_le_bytes([*meta.first()?, *meta.get(1)?]);
                Some(if max < 256 { 1 } else { 2 })
            }
            MYSQL_TYPE_STRING => {
                let (b0, b1) = (usize::from(*meta.first()?), usize::from(*meta.get(1)?));
                if b0 == 0 {
                    return None;
                }
                let max = if (b0 & 0x30) != 0x30 {
                    b1 | (((b0 & 0x30) ^ 0x30) << 4)
                } else {
                    b1
                };
                Some(if max < 256 { 1 } else { 2 })
            }
            MYSQL_TYPE_TINY_BLOB
            | MYSQL_TYPE_MEDIUM_BLOB
            | MYSQL_TYPE_LONG_BLOB
            | MYSQL_TYPE_BLOB => match meta.first()? {
                n @ 1..=4 => Some(*n),
                _ => None,
            },
            _ => None,
        }
    };
    match (ty, kind) {
        (
            MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG,
            MysqlKind::Int {
                bits,
                unsigned: catalog_unsigned,
            },
        ) => {
            let bytes = match ty {
                MYSQL_TYPE_TINY => 1,
                MYSQL_TYPE_SHORT => 2,
                MYSQL_TYPE_INT24 => 3,
                MYSQL_TYPE_LONG => 4,
                _ => 8,
            };
            (u32::from(bytes) * 8 == u32::from(*bits) && unsigned == *catalog_unsigned)
                .then_some(Fast::Int { bytes, unsigned })
        }
        (MYSQL_TYPE_FLOAT, MysqlKind::Float) => Some(Fast::Float),
        (MYSQL_TYPE_DOUBLE, MysqlKind::Double) => Some(Fast::Double),
        (_, MysqlKind::Text(Charset::Utf8 | Charset::Ascii)) => {
            len_bytes().map(|len_bytes| Fast::Text { len_bytes })
        }
        (_, MysqlKind::Binary { pad_to }) => len_bytes().map(|len_bytes| Fast::Binary {
            len_bytes,
            pad_to: *pad_to,
        }),
        (MYSQL_TYPE_NEWDECIMAL, MysqlKind::Decimal { scale, .. }) => {
            let (precision, meta_scale) = (*meta.first()?, *meta.get(1)?);
            (precision <= 38 && meta_scale <= precision && u32::from(meta_scale) == *scale)
                .then_some(Fast::Decimal {
                    precision,
                    scale: meta_scale,
                })
        }
        (MYSQL_TYPE_DATETIME2, MysqlKind::DateTime) => Some(Fast::DateTime2 {
            fsp: *meta.first()?,
        }),
        (MYSQL_TYPE_TIMESTAMP2, MysqlKind::Timestamp) => Some(Fast::Timestamp2 {
            fsp: *meta.first()?,
        }),
        (MYSQL_TYPE_NEWDATE, MysqlKind::Date) => Some(Fast::Date),
        _ => None,
    }
}

enum Failure {
    Io(io::Error),
    Source(SourceError),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        Failure::Source(e)
    }
}

fn take<'a>(buf: &mut ParseBuf<'a>, n: usize) -> io::Result<&'a [u8]> {
    buf.parse(n)
}

/// Big-endian unsigned integer of up to 8 bytes.
fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// Little-endian unsigned integer of up to 8 bytes.
fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// The fractional second of DATETIME2/TIMESTAMP2 (`fsp` digits), as
/// `mysql_common` reads it (signed big-endian).
fn frac(buf: &mut ParseBuf<'_>, fsp: u8) -> io::Result<i64> {
    Ok(match fsp {
        1 | 2 => i64::from(take(buf, 1)?[0] as i8) * 10_000,
        3 | 4 => {
            let b = take(buf, 2)?;
            i64::from(i16::from_be_bytes([b[0], b[1]])) * 100
        }
        5 | 6 => {
            let b = take(buf, 3)?;
            i64::from(i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8)
        }
        _ => 0,
    })
}

fn decode_fast(
    fast: Fast,
    table: &TableName,
    column: &MysqlColumn,
    buf: &mut ParseBuf<'_>,
) -> Result<Value, Failure> {
    Ok(match fast {
        Fast::Int { bytes, unsigned } => {
            let raw = le(take(buf, usize::from(bytes))?);
            if unsigned {
                if bytes == 8 {
                    Value::Decimal {
                        unscaled: BigInt::from(raw),
                        scale: 0,
                    }
                } else {
                    Value::Int(raw as i64)
                }
            } else {
                let shift = 64 - u32::from(bytes) * 8;
                Value::Int(((raw << shift) as i64) >> shift)
            }
        }
        Fast::Float => {
            let b = take(buf, 4)?;
            Value::Float32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        Fast::Double => {
            let b = take(buf, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Value::Float64(f64::from_le_bytes(a))
        }
        Fast::Text { len_bytes } => {
            let n = le(take(buf, usize::from(len_bytes))?) as usize;
            let b = take(buf, n)?;
            match std::str::from_utf8(b) {
                Ok(s) => Value::Text(s.to_owned()),
                // The slow path names the column and the reason.
                Err(_) => convert(table, column, My::Bytes(b.to_vec()), Origin::Binlog)?,
            }
        }
        Fast::Binary { len_bytes, pad_to } => {
            let n = le(take(buf, usize::from(len_bytes))?) as usize;
            let b = take(buf, n)?;
            let mut out = Vec::with_capacity(pad_to.unwrap_or(0).max(n));
            out.extend_from_slice(b);
            if let Some(pad) = pad_to {
                if out.len() < pad {
                    out.resize(pad, 0);
                }
            }
            Value::Bytes(out)
        }
        Fast::Decimal { precision, scale } => Value::Decimal {
            unscaled: BigInt::from(decimal_bin(buf, precision, scale)?),
            scale: u32::from(scale),
        },
        Fast::DateTime2 { fsp } => {
            let int_part = be(take(buf, 5)?) as i64 - 0x80_0000_0000;
            if int_part < 0 {
                // A DATETIME is never negative (and `<< 24` would overflow).
                return Err(
                    io::Error::new(io::ErrorKind::InvalidData, "negative DATETIME2").into(),
                );
            }
            let mut packed = (int_part << 24) + frac(buf, fsp)?;
            if packed < 0 {
                packed = -packed;
            }
            let usec = packed % (1 << 24);
            let ymdhms = packed >> 24;
            let (ymd, hms) = (ymdhms >> 17, ymdhms % (1 << 17));
            let ym = ymd >> 5;
            let (y, m, d) = ((ym / 13) as u16, (ym % 13) as u8, (ymd % (1 << 5)) as u8);
            let (h, mi, sec) = (hms >> 12, (hms >> 6) % (1 << 6), hms % (1 << 6));
            match civil_days(y, m, d) {
                Some(days) => {
                    Value::Timestamp((days * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000 + usec)
                }
                // The zero date, or a date with a zero month or day.
                None => convert(
                    table,
                    column,
                    My::Date(y, m, d, h as u8, mi as u8, sec as u8, usec as u32),
                    Origin::Binlog,
                )?,
            }
        }
        Fast::Timestamp2 { fsp } => {
            let secs = i64::from(be(take(buf, 4)?) as u32 as i32);
            let usec = frac(buf, fsp)?;
            Value::TimestampTz(if secs == 0 && usec == 0 {
                i64::MIN
            } else {
                secs * 1_000_000 + usec
            })
        }
        Fast::Date => {
            let raw = le(take(buf, 3)?);
            let (y, m, d) = ((raw >> 9) as u16, ((raw >> 5) & 15) as u8, (raw & 31) as u8);
            match civil_days(y, m, d) {
                Some(days) => Value::Date(days as i32),
                None => convert(table, column, My::Date(y, m, d, 0, 0, 0, 0), Origin::Binlog)?,
            }
        }
    })
}

/// Days from 1970-01-01 to a valid date, `None` for anything else (the
/// zero date, a zero month or day, February 30 under
/// `ALLOW_INVALID_DATES`): those go through [`convert`], which maps or
/// refuses them.
fn civil_days(y: u16, m: u8, d: u8) -> Option<i64> {
    crate::calendar::checked_days(i64::from(y), i64::from(m), i64::from(d))
}

/// Bytes of a group of `digits` (< 9) decimal digits in DECIMAL's binary form.
const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// DECIMAL(`precision` ≤ 38, `scale`)'s binary form (MySQL's
/// `decimal2bin`: groups of 9 digits in 4 big-endian bytes, partial groups
/// at both ends, the sign in the first bit, negative numbers inverted) → the
/// unscaled integer.
fn decimal_bin(buf: &mut ParseBuf<'_>, precision: u8, scale: u8) -> io::Result<i128> {
    let (intg, frac) = (usize::from(precision - scale), usize::from(scale));
    let (intg0, intg0x) = (intg / 9, intg % 9);
    let (frac0, frac0x) = (frac / 9, frac % 9);
    let size = intg0 * 4 + DIG2BYTES[intg0x] + frac0 * 4 + DIG2BYTES[frac0x];
    let bytes = take(buf, size)?;
    if bytes.is_empty() {
        return Ok(0);
    }
    let negative = bytes[0] & 0x80 == 0;
    let mask: u8 = if negative { 0xFF } else { 0 };
    let mut at = 0;
    let mut group = |n: usize| -> io::Result<u64> {
        let mut v = 0u64;
        for (k, &b) in bytes[at..at + n].iter().enumerate() {
            let b = if at + k == 0 { b ^ 0x80 } else { b };
            v = (v << 8) | u64::from(b ^ mask);
        }
        at += n;
        Ok(v)
    };
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad DECIMAL digits");
    let mut acc: i128 = 0;
    let push = |acc: &mut i128, v: u64, digits: usize| -> io::Result<()> {
        let base = 10u64.pow(digits as u32);
        if v >= base {
            return Err(bad());
        }
        *acc = *acc * i128::from(base) + i128::from(v);
        Ok(())
    };
    if intg0x > 0 {
        let v = group(DIG2BYTES[intg0x])?;
        push(&mut acc, v, intg0x)?;
    }
    for _ in 0..intg0 {
        let v = group(4)?;
        push(&mut acc, v, 9)?;
    }
    for _ in 0..frac0 {
        let v = group(4)?;
        push(&mut acc, v, 9)?;
    }
    if frac0x > 0 {
        let v = group(DIG2BYTES[frac0x])?;
        push(&mut acc, v, frac0x)?;
    }
    Ok(if negative { -acc } else { acc })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(bytes: &[u8], precision: u8, scale: u8) -> i128 {
        decimal_bin(&mut ParseBuf(bytes), precision, scale).unwrap()
    }

    #[test]
    fn decimal_binary_form() {
        // MySQL's documented example: 1234567890.1234 as DECIMAL(14,4).
        let b = [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2];
        assert_eq!(dec(&b, 14, 4), 12_345_678_901_234);
        // Negative: every byte inverted.
        let n: Vec<u8> = b.iter().map(|x| x ^ 0xFF).collect();
        assert_eq!(dec(&n, 14, 4), -12_345_678_901_234);
        // DECIMAL(12,2): 10 integer digits (1 group + 1 digit in 1 byte), 2 fraction digits (1 byte).
        // 1234.56 → int part 0, 000001234 ; frac 56
        let b = [0x80, 0x00, 0x00, 0x04, 0xD2, 56];
        assert_eq!(dec(&b, 12, 2), 123_456);
    }

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
