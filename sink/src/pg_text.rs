//! Typed values → PostgreSQL's text input form, for `COPY … FROM STDIN` into
//! a rebuilt PostgreSQL table and for key look-ups by `verify`. The inverse
//! of the reader's text parser under the same pinned session settings (ISO
//! dates, UTC, hex bytea), so a value survives source → topic → target exactly.

use kappa_schemas::value::decimal_text;
use kappa_schemas::Value;
use std::fmt::Write;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The text PostgreSQL parses back into `value`; `None` for NULL.
pub fn literal(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(v) => if *v { "t" } else { "f" }.to_string(),
        Value::Int(v) => v.to_string(),
        Value::Float32(v) => float_text(f64::from(*v), v.to_string()),
        Value::Float64(v) => float_text(*v, v.to_string()),
        Value::Decimal { unscaled, scale } => decimal_text(unscaled, *scale),
        Value::Text(v) => v.clone(),
        Value::Bytes(v) => {
            let mut out = String::with_capacity(2 + v.len() * 2);
            out.push_str("\\x");
            for b in v {
                let _ = write!(out, "{b:02x}");
            }
            out
        }
        Value::Date(i32::MAX) => "infinity".into(),
        Value::Date(i32::MIN) => "-infinity".into(),
        Value::Date(days) => date_text(civil_from_days(i64::from(*days)), ""),
        Value::Time(micros) => format!(
            "{:02}:{:02}:{:02}.{:06}",
            micros / 3_600_000_000,
            micros / 60_000_000 % 60,
            micros / 1_000_000 % 60,
            micros % 1_000_000
        ),
        Value::Timestamp(i64::MAX) | Value::TimestampTz(i64::MAX) => "infinity".into(),
        Value::Timestamp(i64::MIN) | Value::TimestampTz(i64::MIN) => "-infinity".into(),
        Value::Timestamp(micros) => timestamp(*micros, ""),
        Value::TimestampTz(micros) => timestamp(*micros, "+00"),
        Value::Uuid(v) => v.hyphenated().to_string(),
    })
}

/// Shortest text that reads back as the same float; PostgreSQL's spelling
/// of the special values.
fn float_text(v: f64, shortest: String) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "Infinity".into()
    } else if v == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        shortest
    }
}

/// `YYYY-MM-DD<time>`, with PostgreSQL's ` BC` suffix for years before 1
/// (proleptic year 0 is 1 BC) and no sign for years past 9999.
fn date_text((year, month, day): (i64, u32, u32), time: &str) -> String {
    let (year, era) = if year <= 0 {
        (1 - year, " BC")
    } else {
        (year, "")
    };
    format!("{year:04}-{month:02}-{day:02}{time}{era}")
}

/// Every finite value: PostgreSQL's range (dates to 5874897 AD) is wider
/// than chrono's (262143 AD), so the calendar arithmetic is done here.
fn timestamp(micros: i64, zone: &str) -> String {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let of_day = micros.rem_euclid(MICROS_PER_DAY);
    let time = format!(
        " {:02}:{:02}:{:02}.{:06}{zone}",
        of_day / 3_600_000_000,
        of_day / 60_000_000 % 60,
        of_day / 1_000_000 % 60,
        of_day % 1_000_000
    );
    date_text(civil_from_days(days), &time)
}

/// The proleptic Gregorian (year, month, day) `days` after 1970-01-01, for
/// any `days` of an `i32` or a timestamp (Howard Hinnant's
/// `civil_from_days`; no overflow below ±2^60 days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// Appends `value` as one field of a `COPY … FROM STDIN` text-format line.
pub fn copy_field(value: &Value, out: &mut String) {
    match value {
        // Text, the common case, is escaped straight from the value.
        Value::Text(text) => copy_escape(text, out),
        other => match literal(other) {
            None => out.push_str("\\N"),
            Some(text) => copy_escape(&text, out),
        },
    }
}

/// COPY text format's escapes for one field.
fn copy_escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_as_postgres_input() {
        assert_eq!(literal(&Value::Date(0)).unwrap(), "1970-01-01");
        assert_eq!(literal(&Value::Date(-719162)).unwrap(), "0001-01-01");
        assert_eq!(
            literal(&Value::Timestamp(1_500_000)).unwrap(),
            "1970-01-01 00:00:01.500000"
        );
        assert_eq!(
            literal(&Value::TimestampTz(-1)).unwrap(),
            "1969-12-31 23:59:59.999999+00"
        );
        assert_eq!(literal(&Value::Float64(f64::NAN)).unwrap(), "NaN");
        assert_eq!(literal(&Value::Date(i32::MAX)).unwrap(), "infinity");
        assert_eq!(literal(&Value::Date(-735_160)).unwrap(), "0044-03-15 BC");
        assert_eq!(literal(&Value::Date(2_932_897)).unwrap(), "10000-01-01");
        // Past chrono's range (262143 AD), within PostgreSQL's: these were
        // "date out of range" (found by sink/tests/prop_pg_text.rs).
        assert_eq!(literal(&Value::Date(95_026_237)).unwrap(), "262143-01-01");
        assert_eq!(
            literal(&Value::Date(2_145_042_905)).unwrap(),
            "5874897-12-31"
        );
        assert_eq!(literal(&Value::Date(-2_440_588)).unwrap(), "4714-11-24 BC");
        assert_eq!(
            literal(&Value::Timestamp(i64::MAX - 1)).unwrap(),
            "294247-01-10 04:00:54.775806"
        );
        assert_eq!(
            literal(&Value::TimestampTz(-62_135_596_800_000_001)).unwrap(),
            "0001-12-31 23:59:59.999999+00 BC"
        );
        assert_eq!(
            literal(&Value::Time(86_400_000_000)).unwrap(),
            "24:00:00.000000"
        );
        assert_eq!(literal(&Value::Float32(-0.0)).unwrap(), "-0");
        assert_eq!(literal(&Value::Float32(1.0 / 3.0)).unwrap(), "0.33333334");
        assert_eq!(literal(&Value::Bytes(vec![0, 255])).unwrap(), "\\x00ff");
        let mut line = String::new();
        copy_field(&Value::Text("a\tb\\c\nd".into()), &mut line);
        copy_field(&Value::Null, &mut line);
        copy_field(&Value::Bytes(vec![1]), &mut line);
        assert_eq!(line, "a\\tb\\\\c\\nd\\N\\\\x01");
    }
}
