//! Typed column values. One representation for every source, so the reader,
//! the Avro encoder and `verify` agree on what "the same value" means.

use num_bigint::BigInt;
use std::fmt;

/// A column value. Integers of every width are `Int`: the column type decides
/// the Avro width, and comparing a smallint read from the source with the same
/// value decoded from an Avro `int` must not fail on a width tag.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float32(f32),
    Float64(f64),
    /// `unscaled × 10^-scale`, exact.
    Decimal {
        unscaled: BigInt,
        scale: u32,
    },
    /// Text; also, in a column of a typed kind, a value that kind cannot hold,
    /// in the source's own text form (its `string` Avro branch, see
    /// [`crate::avro::has_text_branch`]): a decimal's `NaN`/`Infinity`/
    /// `-Infinity`, a PostgreSQL `timestamp`/`timestamptz` beyond what
    /// microseconds since 1970 in an i64 reach (or on an infinity sentinel),
    /// e.g. `294276-12-31 23:59:59.999999` / `…+00` as PostgreSQL writes it
    /// under the pinned session settings (ISO, UTC). Rebuilt into PostgreSQL
    /// it is that literal, which reads back as the same value.
    Text(String),
    Bytes(Vec<u8>),
    /// Days since 1970-01-01; `i32::MAX` / `i32::MIN` are ±infinity.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 1970-01-01 00:00 without a time zone; `i64::MAX` /
    /// `i64::MIN` are ±infinity.
    Timestamp(i64),
    /// Microseconds since the Unix epoch, UTC; `i64::MAX` / `i64::MIN` are ±infinity.
    TimestampTz(i64),
    Uuid(uuid::Uuid),
}

/// A row: one value per column of its [`crate::TableSchema`], in column order.
pub type Row = Vec<Value>;

impl PartialEq for Value {
    /// Canonical equality: floats compare by bit pattern (so NaN equals NaN and
    /// -0 differs from +0, as the source stores them); decimals compare by
    /// numeric value and scale, exactly.
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Float32(a), Float32(b)) => canonical_f32(*a) == canonical_f32(*b),
            (Float64(a), Float64(b)) => canonical_f64(*a) == canonical_f64(*b),
            (
                Decimal {
                    unscaled: a,
                    scale: sa,
                },
                Decimal {
                    unscaled: b,
                    scale: sb,
                },
            ) => a == b && sa == sb,
            (Text(a), Text(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Date(a), Date(b)) => a == b,
            (Time(a), Time(b)) => a == b,
            (Timestamp(a), Timestamp(b)) => a == b,
            (TimestampTz(a), TimestampTz(b)) => a == b,
            (Uuid(a), Uuid(b)) => a == b,
            _ => false,
        }
    }
}

fn canonical_f32(v: f32) -> u32 {
    if v.is_nan() {
        f32::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

fn canonical_f64(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

impl fmt::Display for Value {
    /// A short human form for difference reports (not a serialization format).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "NULL"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Float32(v) => write!(f, "{v:?}"),
            Value::Float64(v) => write!(f, "{v:?}"),
            Value::Decimal { unscaled, scale } => write!(f, "{}", decimal_text(unscaled, *scale)),
            Value::Text(v) => write!(f, "{v:?}"),
            Value::Bytes(v) => {
                write!(f, "0x")?;
                for b in v.iter().take(64) {
                    write!(f, "{b:02x}")?;
                }
                if v.len() > 64 {
                    write!(f, "…({} bytes)", v.len())?;
                }
                Ok(())
            }
            Value::Date(i32::MAX) => write!(f, "date(infinity)"),
            Value::Date(i32::MIN) => write!(f, "date(-infinity)"),
            Value::Date(v) => write!(f, "date({v} days)"),
            Value::Time(v) => write!(
                f,
                "time({:02}:{:02}:{:02}.{:06})",
                v / 3_600_000_000,
                v / 60_000_000 % 60,
                v / 1_000_000 % 60,
                v % 1_000_000
            ),
            Value::Timestamp(i64::MAX) => write!(f, "timestamp(infinity)"),
            Value::Timestamp(i64::MIN) => write!(f, "timestamp(-infinity)"),
            Value::Timestamp(v) => write!(f, "timestamp({v} µs)"),
            Value::TimestampTz(i64::MAX) => write!(f, "timestamptz(infinity)"),
            Value::TimestampTz(i64::MIN) => write!(f, "timestamptz(-infinity)"),
            Value::TimestampTz(v) => write!(f, "timestamptz({v} µs UTC)"),
            Value::Uuid(v) => write!(f, "{v}"),
        }
    }
}

/// The numbers an Avro decimal cannot hold, exactly as PostgreSQL writes them.
/// In a `numeric(p,s)` column they are [`Value::Text`] and travel in the
/// field's `string` branch.
pub const DECIMAL_SPECIALS: [&str; 3] = ["NaN", "Infinity", "-Infinity"];

/// Renders `unscaled × 10^-scale` as plain decimal text, e.g. (-12345, 2) → "-123.45".
pub fn decimal_text(unscaled: &BigInt, scale: u32) -> String {
    let digits = unscaled.magnitude().to_string();
    let sign = if unscaled.sign() == num_bigint::Sign::Minus {
        "-"
    } else {
        ""
    };
    let scale = scale as usize;
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int_part, frac_part) = padded.split_at(padded.len() - scale);
    format!("{sign}{int_part}.{frac_part}")
}

/// Parses plain decimal text ("-123.4") into an unscaled integer at `scale`,
/// refusing text with more fractional digits than `scale` (that would round).
pub fn parse_decimal(text: &str, scale: u32) -> Result<BigInt, String> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    let valid = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty()) || !valid(int_part) || !valid(frac_part) {
        return Err(format!("{text:?} is not a decimal number"));
    }
    if frac_part.len() > scale as usize {
        return Err(format!("{text:?} has more than {scale} fractional digits"));
    }
    // Up to 18 digits fit an i64: no text to build, no big-number parse.
    if int_part.len() + scale as usize <= 18 {
        let mut magnitude: i64 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            magnitude = magnitude * 10 + i64::from(b - b'0');
        }
        for _ in frac_part.len()..scale as usize {
            magnitude *= 10;
        }
        return Ok(BigInt::from(if negative { -magnitude } else { magnitude }));
    }
    let digits = format!("{int_part}{frac_part:0<width$}", width = scale as usize);
    let magnitude: BigInt = if digits.is_empty() {
        BigInt::from(0)
    } else {
        digits
            .parse()
            .map_err(|e| format!("{text:?} is not a decimal number: {e}"))?
    };
    Ok(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_round_trips() {
        for (text, scale, canonical) in [
            ("123.45", 2, "123.45"),
            ("-0.5", 3, "-0.500"),
            ("7", 2, "7.00"),
            ("0.01", 2, "0.01"),
            ("-12", 0, "-12"),
            (
                "99999999999999999999999999999999.9",
                1,
                "99999999999999999999999999999999.9",
            ),
        ] {
            let unscaled = parse_decimal(text, scale).unwrap();
            assert_eq!(decimal_text(&unscaled, scale), canonical);
        }
    }

    #[test]
    fn decimal_refuses_rounding_and_garbage() {
        assert!(parse_decimal("1.234", 2).is_err());
        assert!(parse_decimal("NaN", 2).is_err());
        assert!(parse_decimal("", 2).is_err());
        assert!(parse_decimal("1e5", 2).is_err());
    }

    #[test]
    fn sentinels_and_times_display_readably() {
        assert_eq!(Value::Date(i32::MAX).to_string(), "date(infinity)");
        assert_eq!(
            Value::TimestampTz(i64::MIN).to_string(),
            "timestamptz(-infinity)"
        );
        assert_eq!(
            Value::Time(86_399_999_999).to_string(),
            "time(23:59:59.999999)"
        );
        assert_ne!(Value::Time(1), Value::Int(1));
    }

    #[test]
    fn floats_compare_by_bits() {
        assert_eq!(Value::Float64(f64::NAN), Value::Float64(f64::NAN));
        assert_ne!(Value::Float64(0.0), Value::Float64(-0.0));
        assert_ne!(Value::Int(1), Value::Float64(1.0));
    }
}
