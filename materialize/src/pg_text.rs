//! Typed values → PostgreSQL's text input form, for `COPY … FROM STDIN` into
//! a rebuilt PostgreSQL table and for key look-ups by `verify`. The inverse
//! of the reader's text parser under the same pinned session settings (ISO
//! dates, UTC, hex bytea), so a value survives source → topic → target exactly.

//!
//! Dates and timestamps are rendered with whole-number calendar arithmetic,
//! not chrono: PostgreSQL's dates reach 5874897 AD and its timestamps (as
//! far as an i64 of microseconds goes) 294247 AD, past chrono's 262143. A
//! [`Value::Text`] in a timestamp column (the out-of-range form, see
//! `kappa_schemas::avro::has_text_branch`) is PostgreSQL's own literal and
//! passes through as it is.

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
        Value::Date(days) => date_text(i64::from(*days), ""),
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

/// Proleptic Gregorian (year, month, day) of a day count from 1970-01-01
/// (H. Hinnant's `civil_from_days`, the inverse of the readers'
/// `days_from_civil`); astronomical years, 1 BC is year 0. Exact for every
/// i64 day count an i32 date or an i64 of microseconds can reach.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD<time>` of a day count, with PostgreSQL's ` BC` suffix for
/// years before 1 (proleptic year 0 is 1 BC) and no sign for years past 9999.
fn date_text(days: i64, time: &str) -> String {
    let (year, month, day) = civil_from_days(days);
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
    let (days, of_day) = (
        micros.div_euclid(MICROS_PER_DAY),
        micros.rem_euclid(MICROS_PER_DAY),
    );
    let time = format!(
        " {:02}:{:02}:{:02}.{:06}{zone}",
        of_day / 3_600_000_000,
        of_day / 60_000_000 % 60,
        of_day / 1_000_000 % 60,
        of_day % 1_000_000
    );
    date_text(days, &time)
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
    fn the_calendar_agrees_with_chrono_where_chrono_reaches() {
        use chrono::{Datelike, NaiveDate};
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for days in (-95_000_000i64..95_000_000)
            .step_by(9_973)
            .chain([-719_163, 0, 59, 60])
        {
            let date = epoch + chrono::Duration::days(days);
            let expected = (
                i64::from(date.year()),
                i64::from(date.month()),
                i64::from(date.day()),
            );
            assert_eq!(civil_from_days(days), expected, "{days}");
        }
    }

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
        // "date out of range" (found by materialize/tests/prop_pg_text.rs).
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
        // PostgreSQL's first and last dates, past chrono's range.
        assert_eq!(literal(&Value::Date(-2_440_588)).unwrap(), "4714-11-24 BC");
        assert_eq!(
            literal(&Value::Date(2_145_042_905)).unwrap(),
            "5874897-12-31"
        );
        assert_eq!(
            literal(&Value::Timestamp(i64::MAX - 1)).unwrap(),
            "294247-01-10 04:00:54.775806"
        );
        assert_eq!(
            literal(&Value::TimestampTz(-210_866_803_200_000_000)).unwrap(),
            "4714-11-24 00:00:00.000000+00 BC"
        );
        // The out-of-range form is PostgreSQL's literal already.
        assert_eq!(
            literal(&Value::Text("294276-12-31 23:59:59.999999+00".into())).unwrap(),
            "294276-12-31 23:59:59.999999+00"
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
