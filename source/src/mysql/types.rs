//! MySQL/MariaDB column types → kappa values. Snapshot rows (binary
//! protocol), binlog rows and `verify` all arrive as `mysql_common` values and
//! go through [`convert`], so the same row gives the same [`Value`] whichever
//! way it was read. The mapping table is in `docs/mysql.md`.
//!
//! Zero dates (`0000-00-00`, `0000-00-00 00:00:00`, allowed unless the
//! server's `sql_mode` has `NO_ZERO_DATE`) are not dates: they map to the
//! `-infinity` sentinel of their type (`i32::MIN` days, `i64::MIN` µs),
//! which no real date reaches. Dates with only a zero month or day
//! (`2024-00-10`) have no such mapping and stop the reader with an error
//! naming the column.

use super::charset::{decode, Charset};
pub use super::kind::{column_type, MysqlColumn, MysqlKind};
use super::rows::temporal::time_parts_micros;
use crate::error::SourceError;
use kappa_schemas::value::parse_decimal;
use kappa_schemas::{TableName, Value};
use mysql_async::Value as My;
use num_bigint::BigInt;

/// Where a value was read: some types have a different wire form in the
/// binlog (ENUM as an index, SET as a bitmask, YEAR as 1900 + n, TIMESTAMP
/// as epoch seconds) than in a query result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Binlog,
    Query,
}

/// Converts one value of `column` (of `table`) read from a snapshot, the
/// binlog or `verify`.
pub fn convert(
    table: &TableName,
    column: &MysqlColumn,
    value: My,
    origin: Origin,
) -> Result<Value, SourceError> {
    let bad = |value: &My, reason: &str| {
        SourceError::bad_value(
            table,
            &column.name,
            describe(value),
            &format!("{:?}", column.kind),
            reason,
        )
    };
    if value == My::NULL {
        return Ok(Value::Null);
    }
    // The common owned cases first: no copy of the bytes.
    let value = match (&column.kind, value) {
        (MysqlKind::Text(Charset::Utf8 | Charset::Ascii), My::Bytes(b)) => {
            return String::from_utf8(b).map(Value::Text).map_err(|e| {
                let reason = format!("not valid UTF-8: {}", e.utf8_error());
                bad(&My::Bytes(e.into_bytes()), &reason)
            });
        }
        (MysqlKind::Binary { pad_to }, My::Bytes(mut b)) => {
            if let Some(n) = pad_to {
                if b.len() < *n {
                    b.resize(*n, 0);
                }
            }
            return Ok(Value::Bytes(b));
        }
        (_, value) => value,
    };
    let converted = match (&column.kind, &value) {
        (
            MysqlKind::Int {
                bits: 64,
                unsigned: true,
            },
            _,
        ) => {
            let n: u64 = match value {
                My::UInt(n) => n,
                My::Int(n) => u64::try_from(n).map_err(|_| bad(&value, "negative"))?,
                My::Bytes(ref b) => text(b).parse().map_err(|_| bad(&value, "not an integer"))?,
                _ => return Err(bad(&value, "not an integer")),
            };
            Value::Decimal {
                unscaled: BigInt::from(n),
                scale: 0,
            }
        }
        (MysqlKind::Int { .. } | MysqlKind::Year, _) => {
            let n = match value {
                My::Int(n) => n,
                My::UInt(n) => i64::try_from(n).map_err(|_| bad(&value, "out of range"))?,
                My::Bytes(ref b) => text(b).parse().map_err(|_| bad(&value, "not an integer"))?,
                _ => return Err(bad(&value, "not an integer")),
            };
            // mysql_common reads a signed MEDIUMINT from the binlog without
            // sign extension: 24-bit two's complement, fixed here.
            let n = match column.kind {
                MysqlKind::Int {
                    bits: 24,
                    unsigned: false,
                } if n > 8_388_607 => n - 16_777_216,
                _ => n,
            };
            // The binlog writes YEAR as an offset from 1900; year 0000
            // (the zero year) arrives as 1900, which YEAR cannot hold.
            if column.kind == MysqlKind::Year && origin == Origin::Binlog && n == 1900 {
                Value::Int(0)
            } else {
                Value::Int(n)
            }
        }
        (MysqlKind::Float, My::Float(f)) => Value::Float32(*f),
        (MysqlKind::Float, My::Double(f)) => Value::Float32(*f as f32),
        (MysqlKind::Double, My::Double(f)) => Value::Float64(*f),
        (MysqlKind::Double, My::Float(f)) => Value::Float64(f64::from(*f)),
        (MysqlKind::Decimal { scale, .. }, My::Bytes(b)) => Value::Decimal {
            unscaled: parse_decimal(text(b).trim(), *scale).map_err(|e| bad(&value, &e))?,
            scale: *scale,
        },
        (MysqlKind::Bit { bytes }, My::Bytes(b)) => {
            let mut out = vec![0u8; bytes.saturating_sub(b.len())];
            out.extend_from_slice(b);
            Value::Bytes(out)
        }
        (MysqlKind::Bit { bytes }, My::UInt(n)) => {
            Value::Bytes(n.to_be_bytes()[8 - bytes.min(&8)..].to_vec())
        }
        (MysqlKind::Text(charset), My::Bytes(b)) => {
            Value::Text(decode(*charset, b).map_err(|e| bad(&value, &e))?)
        }
        (MysqlKind::Binary { pad_to }, My::Bytes(b)) => {
            let mut out = b.clone();
            if let Some(n) = pad_to {
                if out.len() < *n {
                    out.resize(*n, 0);
                }
            }
            Value::Bytes(out)
        }
        (MysqlKind::Enum(_), My::Bytes(b)) => {
            Value::Text(decode(Charset::Utf8, b).map_err(|e| bad(&value, &e))?)
        }
        (MysqlKind::Set(_), My::Bytes(b)) if origin == Origin::Query => {
            Value::Text(decode(Charset::Utf8, b).map_err(|e| bad(&value, &e))?)
        }
        (MysqlKind::Enum(labels), My::Int(i)) => match *i {
            0 => Value::Text(String::new()),
            i => Value::Text(
                usize::try_from(i - 1)
                    .ok()
                    .and_then(|i| labels.get(i))
                    .ok_or_else(|| bad(&value, "enum index beyond the declared labels"))?
                    .clone(),
            ),
        },
        (MysqlKind::Set(labels), My::Bytes(mask)) => {
            let chosen: Vec<&str> = labels
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    mask.get(i / 8)
                        .is_some_and(|byte| byte & (1 << (i % 8)) != 0)
                })
                .map(|(_, l)| l.as_str())
                .collect();
            Value::Text(chosen.join(","))
        }
        (MysqlKind::Date, My::Date(y, m, d, ..)) => {
            Value::Date(date_days(*y, *m, *d).map_err(|e| bad(&value, &e))?)
        }
        (MysqlKind::DateTime | MysqlKind::Timestamp, My::Date(y, m, d, h, mi, s, us)) => {
            let micros = if (*y, *m, *d) == (0, 0, 0) {
                i64::MIN
            } else {
                let days = i64::from(date_days(*y, *m, *d).map_err(|e| bad(&value, &e))?);
                if *h > 23 || *mi > 59 || *s > 59 || *us > 999_999 {
                    return Err(bad(&value, "not a time of day"));
                }
                // Years ≤ 65535 (u16): far inside an i64 of microseconds.
                (days * 86_400 + i64::from(*h) * 3600 + i64::from(*mi) * 60 + i64::from(*s))
                    * 1_000_000
                    + i64::from(*us)
            };
            if column.kind == MysqlKind::Timestamp {
                Value::TimestampTz(micros)
            } else {
                Value::Timestamp(micros)
            }
        }
        // The binlog's TIMESTAMP: seconds since the epoch, as text with
        // optional microseconds ("0" is the zero timestamp).
        (MysqlKind::Timestamp, My::Bytes(b)) => {
            let t = text(b);
            let (secs, frac) = t.split_once('.').unwrap_or((&t, ""));
            let secs: i64 = secs.parse().map_err(|_| bad(&value, "not a timestamp"))?;
            if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&value, "not a timestamp"));
            }
            let frac: i64 = if frac.is_empty() {
                0
            } else {
                format!("{frac:0<6}")
                    .parse()
                    .map_err(|_| bad(&value, "not a timestamp"))?
            };
            if secs == 0 && frac == 0 {
                Value::TimestampTz(i64::MIN)
            } else {
                Value::TimestampTz(
                    secs.checked_mul(1_000_000)
                        .and_then(|us| us.checked_add(frac))
                        .ok_or_else(|| bad(&value, "past ±2^63 microseconds"))?,
                )
            }
        }
        (MysqlKind::Timestamp, My::Int(secs)) => Value::TimestampTz(if *secs == 0 {
            i64::MIN
        } else {
            secs.checked_mul(1_000_000)
                .ok_or_else(|| bad(&value, "past ±2^63 microseconds"))?
        }),
        (MysqlKind::Time, My::Time(negative, days, h, m, s, us)) => Value::Int(
            time_parts_micros(*negative, *days, *h, *m, *s, *us)
                .ok_or_else(|| bad(&value, "not a TIME (a field out of range)"))?,
        ),
        (MysqlKind::Json, My::Bytes(b)) => {
            let parsed: serde_json::Value =
                serde_json::from_slice(b).map_err(|e| bad(&value, &e.to_string()))?;
            Value::Text(parsed.to_string())
        }
        _ => return Err(bad(&value, "unexpected value for this column type")),
    };
    Ok(converted)
}

/// A value for an error message. Not `mysql_common`'s `Debug`: for a TIME
/// it computes `days * 24 + hours` in a u32, which overflows (a panic in a
/// debug build) on the very out-of-range values an error reports.
fn describe(value: &My) -> String {
    match value {
        My::Time(negative, days, h, m, s, us) => format!(
            "TIME {}{days} days {h:02}:{m:02}:{s:02}.{us:06}",
            if *negative { "-" } else { "" }
        ),
        other => format!("{other:?}"),
    }
}

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Converts a whole row (one value per column of `table`, in order).
pub fn convert_row(
    table: &TableName,
    columns: &[MysqlColumn],
    values: Vec<My>,
    origin: Origin,
) -> Result<Vec<Value>, SourceError> {
    if values.len() != columns.len() {
        return Err(SourceError::RowShape {
            what: "a row",
            table: table.clone(),
            got: values.len(),
            want: columns.len(),
        });
    }
    columns
        .iter()
        .zip(values)
        .map(|(column, value)| convert(table, column, value, origin))
        .collect()
}

/// Days since 1970-01-01; the zero date is the `-infinity` sentinel.
fn date_days(y: u16, m: u8, d: u8) -> Result<i32, String> {
    if (y, m, d) == (0, 0, 0) {
        return Ok(i32::MIN);
    }
    let days = crate::calendar::checked_days(i64::from(y), i64::from(m), i64::from(d))
        .ok_or_else(|| {
            format!(
                "{y:04}-{m:02}-{d:02} is not a date (a zero month or day): kappa maps only the whole zero date; \
                 fix the row or set sql_mode NO_ZERO_IN_DATE"
            )
        })?;
    i32::try_from(days).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(kind: MysqlKind) -> MysqlColumn {
        MysqlColumn {
            name: "c".into(),
            kind,
        }
    }

    fn conv(kind: MysqlKind, v: My) -> Value {
        convert(&TableName::new("d", "t"), &col(kind), v, Origin::Binlog).unwrap()
    }

    fn query(kind: MysqlKind, v: My) -> Value {
        convert(&TableName::new("d", "t"), &col(kind), v, Origin::Query).unwrap()
    }

    #[test]
    fn unsigned_bigint_max_is_a_decimal() {
        let v = conv(
            MysqlKind::Int {
                bits: 64,
                unsigned: true,
            },
            My::UInt(u64::MAX),
        );
        assert_eq!(v.to_string(), "18446744073709551615");
    }

    #[test]
    fn zero_dates_are_minus_infinity_and_partial_zero_dates_are_refused() {
        assert_eq!(
            conv(MysqlKind::Date, My::Date(0, 0, 0, 0, 0, 0, 0)),
            Value::Date(i32::MIN)
        );
        assert_eq!(
            conv(MysqlKind::DateTime, My::Date(0, 0, 0, 0, 0, 0, 0)),
            Value::Timestamp(i64::MIN)
        );
        assert_eq!(
            conv(MysqlKind::Timestamp, My::Bytes(b"0".to_vec())),
            Value::TimestampTz(i64::MIN)
        );
        assert!(convert(
            &TableName::new("d", "t"),
            &col(MysqlKind::Date),
            My::Date(2024, 0, 1, 0, 0, 0, 0),
            Origin::Query
        )
        .is_err());
        assert_eq!(
            conv(MysqlKind::Date, My::Date(1970, 1, 2, 0, 0, 0, 0)),
            Value::Date(1)
        );
    }

    #[test]
    fn binlog_and_query_forms_agree() {
        // TIMESTAMP: binlog seconds text vs query date parts (UTC session).
        assert_eq!(
            conv(MysqlKind::Timestamp, My::Bytes(b"86400.5".to_vec())),
            query(MysqlKind::Timestamp, My::Date(1970, 1, 2, 0, 0, 0, 500_000))
        );
        // YEAR: binlog "1900+y" text vs query integer.
        assert_eq!(
            conv(MysqlKind::Year, My::Bytes(b"1900".to_vec())),
            Value::Int(0)
        );
        assert_eq!(
            conv(MysqlKind::Year, My::Bytes(b"2024".to_vec())),
            query(MysqlKind::Year, My::Int(2024))
        );
        assert_eq!(query(MysqlKind::Year, My::Int(1900)), Value::Int(1900));
        // ENUM: binlog index vs query label.
        let e = MysqlKind::Enum(vec!["a".into(), "b".into()]);
        assert_eq!(
            conv(e.clone(), My::Int(2)),
            query(e, My::Bytes(b"b".to_vec()))
        );
        // SET: binlog bitmask vs query labels.
        let s = MysqlKind::Set(vec!["x".into(), "y".into(), "z".into()]);
        assert_eq!(
            conv(s.clone(), My::Bytes(vec![0b101])),
            Value::Text("x,z".into())
        );
        assert_eq!(
            query(s.clone(), My::Bytes(b"x,z".to_vec())),
            Value::Text("x,z".into())
        );
        assert_eq!(conv(s, My::Bytes(vec![0])), Value::Text(String::new()));
        // BINARY(4): binlog strips trailing zero bytes.
        assert_eq!(
            conv(MysqlKind::Binary { pad_to: Some(4) }, My::Bytes(vec![1])),
            Value::Bytes(vec![1, 0, 0, 0])
        );
        // TIME: negative and over 24 hours.
        assert_eq!(
            conv(MysqlKind::Time, My::Time(true, 34, 22, 59, 59, 0)),
            Value::Int(-(838 * 3600 + 59 * 60 + 59) * 1_000_000)
        );
    }

    #[test]
    fn out_of_range_server_values_are_errors_not_wrapped() {
        let err = |kind: MysqlKind, v: My| {
            convert(&TableName::new("d", "t"), &col(kind), v, Origin::Binlog).unwrap_err()
        };
        let e = err(MysqlKind::Time, My::Time(false, u32::MAX, 0, 0, 0, 0)).to_string();
        assert!(e.contains("d.t") && e.contains('c'), "{e}");
        err(MysqlKind::Time, My::Time(true, 0, 0, 60, 0, 0));
        err(MysqlKind::Timestamp, My::Int(i64::MAX));
        err(
            MysqlKind::Timestamp,
            My::Bytes(b"9223372036854775807.5".to_vec()),
        );
        err(MysqlKind::Timestamp, My::Bytes("1.ééé".as_bytes().to_vec()));
        err(MysqlKind::Timestamp, My::Bytes(b"1.1234567".to_vec()));
        err(MysqlKind::DateTime, My::Date(2024, 1, 1, 24, 0, 0, 0));
        err(MysqlKind::Enum(vec!["a".into()]), My::Int(-5));
        err(
            MysqlKind::Int {
                bits: 64,
                unsigned: true,
            },
            My::Int(-1),
        );
        assert_eq!(
            conv(MysqlKind::Time, My::Time(true, 0, 0, 0, 1, 500_000)),
            Value::Int(-1_500_000)
        );
    }

    #[test]
    fn signed_mediumint_is_sign_extended() {
        let kind = MysqlKind::Int {
            bits: 24,
            unsigned: false,
        };
        assert_eq!(
            conv(kind.clone(), My::Int(8_388_608)),
            Value::Int(-8_388_608)
        );
        assert_eq!(conv(kind, My::Int(8_388_607)), Value::Int(8_388_607));
    }
}
