//! PostgreSQL's text output → typed values.
//!
//! Both the snapshot (COPY) and the stream (pgoutput) deliver values in text
//! form, so one parser serves both, and a snapshot row equals the same row
//! streamed. The session settings this relies on are pinned in
//! [`super::SESSION_SETTINGS`]: ISO dates, UTC, shortest-exact floats, hex bytea.

use chrono::{NaiveDate, NaiveDateTime};
use kappa_schemas::value::parse_decimal;
use kappa_schemas::{ColumnType, Value};

const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("1970-01-01 is a valid date"),
};

/// Parses one non-NULL value of type `ty` from its PostgreSQL text form.
pub fn parse_value(ty: &ColumnType, text: &str) -> Result<Value, String> {
    Ok(match ty {
        ColumnType::Bool => match text {
            "t" => Value::Bool(true),
            "f" => Value::Bool(false),
            _ => return Err("expected t or f".into()),
        },
        ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => {
            Value::Int(text.parse().map_err(|e| format!("{e}"))?)
        }
        ColumnType::Float32 => Value::Float32(parse_float(text)? as f32),
        ColumnType::Float64 => Value::Float64(parse_float(text)?),
        ColumnType::Decimal { scale, .. } => Value::Decimal {
            unscaled: parse_decimal(text, *scale).map_err(|e| {
                if text == "NaN" || text.ends_with("Infinity") {
                    format!("{text} cannot be stored in an Avro decimal; kappa does not map it yet")
                } else {
                    e
                }
            })?,
            scale: *scale,
        },
        ColumnType::NumericText | ColumnType::Text | ColumnType::Json => {
            Value::Text(text.to_string())
        }
        ColumnType::Bytes => Value::Bytes(parse_bytea(text)?),
        ColumnType::Date => Value::Date(parse_date(text)?),
        ColumnType::Timestamp => Value::Timestamp(parse_timestamp(text)?),
        ColumnType::TimestampTz => Value::TimestampTz(parse_timestamptz(text)?),
        ColumnType::Uuid => Value::Uuid(uuid::Uuid::parse_str(text).map_err(|e| e.to_string())?),
    })
}

fn parse_float(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => text.parse::<f64>().map_err(|e| e.to_string()),
    }
}

fn parse_bytea(text: &str) -> Result<Vec<u8>, String> {
    let hex = text
        .strip_prefix("\\x")
        .ok_or("expected hex bytea output (\\x...); bytea_output must be 'hex'")?;
    if hex.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

fn unsupported_era(text: &str) -> Option<String> {
    (text.ends_with(" BC") || text.contains("infinity"))
        .then(|| format!("{text} (BC dates and infinity) is not mapped by kappa yet"))
}

fn parse_date(text: &str) -> Result<i32, String> {
    if let Some(reason) = unsupported_era(text) {
        return Err(reason);
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| e.to_string())?;
    i32::try_from((date - EPOCH).num_days()).map_err(|e| e.to_string())
}

fn parse_timestamp(text: &str) -> Result<i64, String> {
    if let Some(reason) = unsupported_era(text) {
        return Err(reason);
    }
    let ts =
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").map_err(|e| e.to_string())?;
    Ok(ts.and_utc().timestamp_micros())
}

/// `2024-01-02 03:04:05.123456+00`, `…+05:30` or `…-03:00:12` (historic offsets
/// have seconds); with TimeZone pinned to UTC the offset is `+00`.
fn parse_timestamptz(text: &str) -> Result<i64, String> {
    if let Some(reason) = unsupported_era(text) {
        return Err(reason);
    }
    let split = text
        .rfind(['+', '-'])
        .filter(|&i| i > 10)
        .ok_or("missing UTC offset")?;
    let (local, offset) = text.split_at(split);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let mut seconds = 0i64;
    for (part, unit) in offset[1..].split(':').zip([3600, 60, 1]) {
        seconds += part
            .parse::<i64>()
            .map_err(|e| format!("offset {offset}: {e}"))?
            * unit;
    }
    Ok(parse_timestamp(local)? - sign * seconds * 1_000_000)
}

/// Splits one line of `COPY … TO STDOUT` text format into fields, undoing its
/// backslash escapes; `\N` is NULL.
pub fn copy_fields(line: &[u8]) -> Result<Vec<Option<String>>, String> {
    line.split(|&b| b == b'\t')
        .map(|field| {
            if field == b"\\N" {
                return Ok(None);
            }
            let bytes = unescape_copy(field)?;
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|e| format!("COPY field is not UTF-8: {e}"))
        })
        .collect()
}

fn unescape_copy(field: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&next) = field.get(i) else {
            return Err("COPY field ends in a lone backslash".into());
        };
        i += 1;
        match next {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut value = u32::from(next - b'0');
                for _ in 0..2 {
                    match field.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(value as u8);
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times_in_utc() {
        assert_eq!(parse_date("1970-01-02").unwrap(), 1);
        assert_eq!(parse_date("1969-12-31").unwrap(), -1);
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.5").unwrap(), 1_500_000);
        assert_eq!(parse_timestamptz("1970-01-01 01:00:00+01").unwrap(), 0);
        assert_eq!(
            parse_timestamptz("1970-01-01 00:00:00-00:30").unwrap(),
            1_800_000_000
        );
        assert_eq!(
            parse_timestamptz("2024-03-01 10:00:00.000001+00").unwrap(),
            1_709_287_200_000_001
        );
        assert!(parse_date("2024-01-01 BC").is_err());
        assert!(parse_timestamp("infinity").is_err());
    }

    #[test]
    fn parses_scalars() {
        assert_eq!(
            parse_value(&ColumnType::Bool, "t").unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            parse_value(&ColumnType::Int64, "-9223372036854775808").unwrap(),
            Value::Int(i64::MIN)
        );
        assert_eq!(
            parse_value(&ColumnType::Float64, "-Infinity").unwrap(),
            Value::Float64(f64::NEG_INFINITY)
        );
        assert_eq!(
            parse_value(&ColumnType::Float32, "1.1").unwrap(),
            Value::Float32(1.1)
        );
        assert_eq!(
            parse_value(&ColumnType::Bytes, "\\x00ff").unwrap(),
            Value::Bytes(vec![0, 255])
        );
        assert_eq!(
            parse_value(
                &ColumnType::Decimal {
                    precision: 5,
                    scale: 2
                },
                "-1.5"
            )
            .unwrap(),
            Value::Decimal {
                unscaled: (-150).into(),
                scale: 2
            }
        );
        let nan = parse_value(
            &ColumnType::Decimal {
                precision: 5,
                scale: 2,
            },
            "NaN",
        )
        .unwrap_err();
        assert!(nan.contains("Avro decimal"), "{nan}");
        assert!(parse_value(&ColumnType::Int16, "x").is_err());
    }

    #[test]
    fn splits_copy_lines() {
        let fields = copy_fields(b"1\t\\N\ta\\tb\\\\c\\nd\t\\\\x00").unwrap();
        assert_eq!(
            fields,
            vec![
                Some("1".to_string()),
                None,
                Some("a\tb\\c\nd".to_string()),
                Some("\\x00".to_string())
            ]
        );
    }
}
