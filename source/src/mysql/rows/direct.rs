//! The direct decoders of [`super::RowPlan`]: the common binlog forms
//! straight from the bytes into [`Value`]s.

use super::decimal::decimal_bin;
use super::temporal::{Decoded, Temporal};
use crate::error::SourceError;
use crate::mysql::charset::Charset;
use crate::mysql::types::{convert, MysqlColumn, MysqlKind, Origin};
use kappa_schemas::{TableName, Value};
use mysql_async::consts::ColumnType;
use mysql_async::Value as My;
use mysql_common::io::ParseBuf;
use num_bigint::BigInt;
use std::io;

/// A column decoded without `mysql_common`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fast {
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
    /// TIME, DATETIME, TIMESTAMP in any binary form.
    Temporal(Temporal),
    Date,
}

/// The fast decoder of a column, when its TABLE_MAP form is one of the
/// common ones and agrees with the catalog.
pub(super) fn fast(ty: ColumnType, meta: &[u8], unsigned: bool, kind: &MysqlKind) -> Option<Fast> {
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
        (MYSQL_TYPE_TIME2 | MYSQL_TYPE_TIME, MysqlKind::Time)
        | (MYSQL_TYPE_DATETIME2 | MYSQL_TYPE_DATETIME, MysqlKind::DateTime)
        | (MYSQL_TYPE_TIMESTAMP2 | MYSQL_TYPE_TIMESTAMP, MysqlKind::Timestamp) => {
            Temporal::of(ty, meta).map(Fast::Temporal)
        }
        (MYSQL_TYPE_NEWDATE, MysqlKind::Date) => Some(Fast::Date),
        _ => None,
    }
}

pub(super) enum Failure {
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

pub(super) fn take<'a>(buf: &mut ParseBuf<'a>, n: usize) -> io::Result<&'a [u8]> {
    buf.parse(n)
}

/// Little-endian unsigned integer of up to 8 bytes.
fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

#[inline]
pub(super) fn decode_fast(
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
        Fast::Temporal(temporal) => temporal_value(temporal, table, column, buf)?,
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

/// One TIME, DATETIME or TIMESTAMP value, straight to its [`Value`]; zero
/// and partial dates through [`convert`], which maps or refuses them. A
/// value that does not decode (minute 61, a fraction of a second ≥ 1) is
/// an error naming the table and column.
fn temporal_value(
    temporal: Temporal,
    table: &TableName,
    column: &MysqlColumn,
    buf: &mut ParseBuf<'_>,
) -> Result<Value, Failure> {
    let len = temporal.len().map_err(io::Error::other)?;
    let bytes = take(buf, len)?;
    let decoded = temporal.decode(bytes).map_err(|reason| {
        SourceError::bad_value(
            table,
            &column.name,
            format!("{bytes:02x?}"),
            &format!("{temporal:?}"),
            reason,
        )
    })?;
    Ok(match decoded {
        Decoded::Time(micros) => Value::Int(micros),
        Decoded::Timestamp(0, 0) => Value::TimestampTz(i64::MIN),
        // Seconds < 2^32: no overflow.
        Decoded::Timestamp(seconds, micros) => Value::TimestampTz(seconds * 1_000_000 + micros),
        Decoded::DateTime(t) => match civil_days(t.year, t.month, t.day) {
            // Years ≤ 9999: far inside an i64 of microseconds.
            Some(days) => Value::Timestamp(
                (days * 86_400
                    + i64::from(t.hour) * 3600
                    + i64::from(t.minute) * 60
                    + i64::from(t.second))
                    * 1_000_000
                    + i64::from(t.micros),
            ),
            None => convert(table, column, decoded.to_mysql(), Origin::Binlog)?,
        },
    })
}

/// Days from 1970-01-01 to a valid date, `None` for anything else (the
/// zero date, a zero month or day, February 30 under
/// `ALLOW_INVALID_DATES`): those go through [`convert`], which maps or
/// refuses them.
pub(super) fn civil_days(y: u16, m: u8, d: u8) -> Option<i64> {
    crate::calendar::checked_days(i64::from(y), i64::from(m), i64::from(d))
}
