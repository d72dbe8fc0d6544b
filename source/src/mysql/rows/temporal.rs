//! The binlog's binary forms of TIME, DATETIME and TIMESTAMP (MySQL 5.6+
//! `TIME2`/`DATETIME2`/`TIMESTAMP2` with 0–6 fractional digits, and the
//! older fixed forms), decoded here rather than by `mysql_common`.
//!
//! Why not `mysql_common` (0.37): its `my_time_packed_from_binary` reads a
//! `TIME(1)`/`TIME(2)` fraction into a `u32` and subtracts `0x100` from it for
//! a negative time with a fraction (`-00:00:01.50`): a panic in a debug build,
//! a wrapped, wrong value in a release build. Its old `TIME` reads the 3
//! bytes unsigned and casts hours to `u8` (`-838:59:59` and every hour past
//! 255 come out wrong). Upstream: blackbeam/rust_mysql_common,
//! `src/binlog/misc.rs` (`my_time_packed_from_binary`) and `src/binlog/value.rs`
//! (`MYSQL_TYPE_TIME`); until fixed there, these decoders are the only ones
//! kappa uses for these types.
//!
//! The algorithms are MySQL's (`mysys/my_time.cc`: `my_time_packed_from_binary`,
//! `my_datetime_packed_from_binary`, `my_timestamp_from_binary`,
//! `TIME_from_longlong_time_packed`, `TIME_from_longlong_datetime_packed`),
//! restated with checked arithmetic: every value read is range-checked, and
//! a field out of range (minute 61, a fraction ≥ 1 s) is an error, never a
//! wrapped or clamped value. Pure: bytes in, values out.

use mysql_async::consts::ColumnType;
use mysql_async::Value as My;

/// `TIMEF_INT_OFS`: the offset of TIME2's 3-byte integer part.
const TIME_INT_OFFSET: i64 = 0x80_0000;
/// `TIMEF_OFS`: the offset of TIME(5)/TIME(6)'s 6-byte packed form.
const TIME_OFFSET: i64 = 0x8000_0000_0000;
/// `DATETIMEF_INT_OFS`: the offset of DATETIME2's 5-byte integer part.
const DATETIME_INT_OFFSET: i64 = 0x80_0000_0000;

/// A decoded date and time of day, as MySQL's `MYSQL_TIME` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub micros: u32,
}

/// Bytes of the fractional part for `fsp` digits (0–6).
fn fraction_bytes(fsp: u8) -> Result<usize, String> {
    match fsp {
        0..=6 => Ok(usize::from(fsp).div_ceil(2)),
        _ => Err(format!("fractional-second precision {fsp} is not 0–6")),
    }
}

/// Bytes a TIME2 of `fsp` digits takes.
pub(crate) fn time2_len(fsp: u8) -> Result<usize, String> {
    Ok(3 + fraction_bytes(fsp)?)
}

/// Bytes a DATETIME2 of `fsp` digits takes.
pub(crate) fn datetime2_len(fsp: u8) -> Result<usize, String> {
    Ok(5 + fraction_bytes(fsp)?)
}

/// Bytes a TIMESTAMP2 of `fsp` digits takes.
pub(crate) fn timestamp2_len(fsp: u8) -> Result<usize, String> {
    Ok(4 + fraction_bytes(fsp)?)
}

fn be(bytes: &[u8]) -> i64 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | i64::from(b))
}

fn exact<'a>(bytes: &'a [u8], len: usize, what: &str) -> Result<&'a [u8], String> {
    if bytes.len() != len {
        return Err(format!("{what}: {} bytes, expected {len}", bytes.len()));
    }
    Ok(bytes)
}

/// TIME2 (`fsp` 0–6, exactly [`time2_len`] bytes) → signed microseconds.
pub(crate) fn time2_micros(bytes: &[u8], fsp: u8) -> Result<i64, String> {
    let bytes = exact(bytes, time2_len(fsp)?, "TIME2")?;
    // The packed form: (h << 12 | m << 6 | s) << 24 | µs, negated for a
    // negative time, stored offset so that it sorts as bytes.
    let packed = match fsp {
        0 => (be(&bytes[..3]) - TIME_INT_OFFSET) << 24,
        1..=4 => {
            let mut int_part = be(&bytes[..3]) - TIME_INT_OFFSET;
            let (mut frac, unit, span) = match fsp {
                1 | 2 => (be(&bytes[3..4]), 10_000, 0x100),
                _ => (be(&bytes[3..5]), 100, 0x1_0000),
            };
            // A negative time keeps its fraction in reverse order (for byte
            // sorting): -00:00:00.01 is int part -1, fraction 0xFF.
            if int_part < 0 && frac != 0 {
                int_part += 1;
                frac -= span;
            }
            (int_part << 24) + frac * unit
        }
        _ => be(&bytes[..6]) - TIME_OFFSET,
    };
    let negative = packed < 0;
    let magnitude = packed.unsigned_abs();
    let micros = magnitude % (1 << 24);
    let hms = magnitude >> 24;
    let (hours, minutes, seconds) = (
        (hms >> 12) % (1 << 10),
        (hms >> 6) % (1 << 6),
        hms % (1 << 6),
    );
    if minutes > 59 || seconds > 59 || micros > 999_999 {
        return Err(format!(
            "TIME2 {bytes:02x?} (fsp {fsp}) decodes to {hours}:{minutes}:{seconds}.{micros:06}, not a time"
        ));
    }
    let magnitude = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros;
    // At most 1023 hours: far inside an i64.
    let magnitude = i64::try_from(magnitude).map_err(|e| e.to_string())?;
    Ok(if negative { -magnitude } else { magnitude })
}

/// The old TIME (3 bytes, little-endian signed `±HHMMSS` as a decimal
/// number, no fraction) → signed microseconds.
pub(crate) fn time_old_micros(bytes: &[u8]) -> Result<i64, String> {
    let bytes = exact(bytes, 3, "TIME")?;
    let raw = i32::from_le_bytes([0, bytes[0], bytes[1], bytes[2]]) >> 8;
    let magnitude = i64::from(raw).abs();
    let (hours, minutes, seconds) = (magnitude / 10_000, magnitude / 100 % 100, magnitude % 100);
    if minutes > 59 || seconds > 59 {
        return Err(format!("TIME {raw} is not ±HHMMSS"));
    }
    let magnitude = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000;
    Ok(if raw < 0 { -magnitude } else { magnitude })
}

fn checked_parts(
    year: i64,
    month: i64,
    day: i64,
    clock: (i64, i64, i64),
    micros: i64,
    what: impl FnOnce() -> String,
) -> Result<DateTime, String> {
    let (hour, minute, second) = clock;
    let small = |v: i64, max: i64| u8::try_from(v).ok().filter(|&v| i64::from(v) <= max);
    match (
        u16::try_from(year).ok().filter(|&y| y <= 9999),
        small(month, 12),
        small(day, 31),
        small(hour, 23),
        small(minute, 59),
        small(second, 59),
        u32::try_from(micros).ok().filter(|&us| us <= 999_999),
    ) {
        (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second), Some(micros)) => {
            Ok(DateTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
                micros,
            })
        }
        _ => Err(format!(
            "{} decodes to {year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{micros:06}, \
             not a date and time",
            what()
        )),
    }
}

/// DATETIME2 (`fsp` 0–6, exactly [`datetime2_len`] bytes) → its parts. The
/// zero date and dates with a zero month or day come out as they are.
pub(crate) fn datetime2(bytes: &[u8], fsp: u8) -> Result<DateTime, String> {
    let bytes = exact(bytes, datetime2_len(fsp)?, "DATETIME2")?;
    let int_part = be(&bytes[..5]) - DATETIME_INT_OFFSET;
    // The fraction is stored signed but a DATETIME is never negative.
    let frac = match fsp {
        1 | 2 => i64::from(bytes[5] as i8) * 10_000,
        3 | 4 => i64::from(i16::from_be_bytes([bytes[5], bytes[6]])) * 100,
        5 | 6 => i64::from(i32::from_be_bytes([bytes[5], bytes[6], bytes[7], 0]) >> 8),
        _ => 0,
    };
    if int_part < 0 || frac < 0 {
        return Err(format!("DATETIME2 {bytes:02x?} (fsp {fsp}) is negative"));
    }
    // int_part < 2^39: (int_part << 24) stays below 2^63.
    let packed = (int_part << 24) + frac;
    let micros = packed % (1 << 24);
    let ymdhms = packed >> 24;
    let (ymd, hms) = (ymdhms >> 17, ymdhms % (1 << 17));
    let ym = ymd >> 5;
    checked_parts(
        ym / 13,
        ym % 13,
        ymd % (1 << 5),
        (hms >> 12, (hms >> 6) % (1 << 6), hms % (1 << 6)),
        micros,
        || format!("DATETIME2 {bytes:02x?} (fsp {fsp})"),
    )
}

/// The old DATETIME (8 bytes, little-endian `YYYYMMDDhhmmss` as a decimal
/// number, no fraction) → its parts.
pub(crate) fn datetime_old(bytes: &[u8]) -> Result<DateTime, String> {
    let bytes = exact(bytes, 8, "DATETIME")?;
    let mut raw = [0u8; 8];
    raw.copy_from_slice(bytes);
    let raw = u64::from_le_bytes(raw);
    let (date, time) = (raw / 1_000_000, raw % 1_000_000);
    let part = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    checked_parts(
        part(date / 10_000),
        part(date / 100 % 100),
        part(date % 100),
        (
            part(time / 10_000),
            part(time / 100 % 100),
            part(time % 100),
        ),
        0,
        || format!("DATETIME {raw}"),
    )
}

/// TIMESTAMP2 (`fsp` 0–6, exactly [`timestamp2_len`] bytes) → seconds since
/// the epoch (unsigned: MariaDB 11.5+ goes to 2106) and microseconds.
pub(crate) fn timestamp2(bytes: &[u8], fsp: u8) -> Result<(i64, i64), String> {
    let bytes = exact(bytes, timestamp2_len(fsp)?, "TIMESTAMP2")?;
    let seconds = be(&bytes[..4]);
    let micros = match fsp {
        1 | 2 => i64::from(bytes[4]) * 10_000,
        3 | 4 => i64::from(i16::from_be_bytes([bytes[4], bytes[5]])) * 100,
        5 | 6 => i64::from(i32::from_be_bytes([bytes[4], bytes[5], bytes[6], 0]) >> 8),
        _ => 0,
    };
    if !(0..=999_999).contains(&micros) {
        return Err(format!(
            "TIMESTAMP2 {bytes:02x?} (fsp {fsp}) has a fraction of {micros} µs"
        ));
    }
    Ok((seconds, micros))
}

/// Signed microseconds of a TIME as the binary protocol gives it (snapshot,
/// `verify`): sign, days, hours, minutes, seconds, microseconds. `None` when
/// a field is out of range or the total overflows.
pub(crate) fn time_parts_micros(
    negative: bool,
    days: u32,
    h: u8,
    m: u8,
    s: u8,
    us: u32,
) -> Option<i64> {
    if m > 59 || s > 59 || us > 999_999 {
        return None;
    }
    let hours = i64::from(days).checked_mul(24)?.checked_add(i64::from(h))?;
    let seconds = hours
        .checked_mul(3600)?
        .checked_add(i64::from(m) * 60 + i64::from(s))?;
    let micros = seconds.checked_mul(1_000_000)?.checked_add(i64::from(us))?;
    Some(if negative { -micros } else { micros })
}

/// A temporal column of a TABLE_MAP, in the binary form its type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Temporal {
    Time2 { fsp: u8 },
    Time,
    DateTime2 { fsp: u8 },
    DateTime,
    Timestamp2 { fsp: u8 },
    Timestamp,
}

/// What one temporal value decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Signed microseconds (TIME).
    Time(i64),
    DateTime(DateTime),
    /// Seconds since the epoch and microseconds (TIMESTAMP).
    Timestamp(i64, i64),
}

impl Temporal {
    /// The temporal form of a TABLE_MAP column type (`meta[0]` is the fsp
    /// of the 5.6+ forms); `None` for every other type.
    pub(crate) fn of(ty: ColumnType, meta: &[u8]) -> Option<Temporal> {
        let fsp = || meta.first().copied().unwrap_or(0);
        Some(match ty {
            ColumnType::MYSQL_TYPE_TIME2 => Temporal::Time2 { fsp: fsp() },
            ColumnType::MYSQL_TYPE_TIME => Temporal::Time,
            ColumnType::MYSQL_TYPE_DATETIME2 => Temporal::DateTime2 { fsp: fsp() },
            ColumnType::MYSQL_TYPE_DATETIME => Temporal::DateTime,
            ColumnType::MYSQL_TYPE_TIMESTAMP2 => Temporal::Timestamp2 { fsp: fsp() },
            ColumnType::MYSQL_TYPE_TIMESTAMP => Temporal::Timestamp,
            _ => return None,
        })
    }

    /// Bytes one value takes in a row image.
    pub(crate) fn len(self) -> Result<usize, String> {
        match self {
            Temporal::Time2 { fsp } => time2_len(fsp),
            Temporal::Time => Ok(3),
            Temporal::DateTime2 { fsp } => datetime2_len(fsp),
            Temporal::DateTime => Ok(8),
            Temporal::Timestamp2 { fsp } => timestamp2_len(fsp),
            Temporal::Timestamp => Ok(4),
        }
    }

    /// Decodes one value of exactly [`Temporal::len`] bytes.
    pub(crate) fn decode(self, bytes: &[u8]) -> Result<Decoded, String> {
        Ok(match self {
            Temporal::Time2 { fsp } => Decoded::Time(time2_micros(bytes, fsp)?),
            Temporal::Time => Decoded::Time(time_old_micros(bytes)?),
            Temporal::DateTime2 { fsp } => Decoded::DateTime(datetime2(bytes, fsp)?),
            Temporal::DateTime => Decoded::DateTime(datetime_old(bytes)?),
            Temporal::Timestamp2 { fsp } => {
                let (seconds, micros) = timestamp2(bytes, fsp)?;
                Decoded::Timestamp(seconds, micros)
            }
            Temporal::Timestamp => {
                let b = exact(bytes, 4, "TIMESTAMP")?;
                Decoded::Timestamp(i64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])), 0)
            }
        })
    }
}

impl Decoded {
    /// The value in the form `mysql_common` gives for the column type, for
    /// the shared conversion ([`super::super::types::convert`]).
    pub(crate) fn to_mysql(self) -> My {
        match self {
            Decoded::Time(micros) => {
                let magnitude = micros.unsigned_abs();
                let (seconds, us) = (magnitude / 1_000_000, magnitude % 1_000_000);
                let hours = seconds / 3600;
                // At most 1023 hours (10 bits): the casts cannot truncate.
                My::Time(
                    micros < 0,
                    (hours / 24) as u32,
                    (hours % 24) as u8,
                    (seconds / 60 % 60) as u8,
                    (seconds % 60) as u8,
                    us as u32,
                )
            }
            Decoded::DateTime(t) => {
                My::Date(t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros)
            }
            Decoded::Timestamp(seconds, 0) => My::Bytes(seconds.to_string().into_bytes()),
            Decoded::Timestamp(seconds, micros) => {
                My::Bytes(format!("{seconds}.{micros:06}").into_bytes())
            }
        }
    }
}

#[cfg(test)]
#[path = "temporal_tests.rs"]
mod tests;
