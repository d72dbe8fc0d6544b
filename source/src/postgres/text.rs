//! PostgreSQL's text output → typed values.
//!
//! Both the snapshot (COPY) and the stream (pgoutput) deliver values in text
//! form, so one parser serves both, and a snapshot row equals the same row
//! streamed. The session settings this relies on are pinned in
//! [`super::SESSION_SETTINGS`]: ISO dates, UTC, shortest-exact floats, hex
//! bytea, ISO 8601 intervals and C-locale money.

mod datetime;

use datetime::{parse_date, parse_time, parse_timestamp, parse_timestamptz};
use kappa_schemas::table::MONEY_SCALE;
use kappa_schemas::value::{parse_decimal, DECIMAL_SPECIALS};
use kappa_schemas::{ColumnType, Value};
use std::borrow::Cow;

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
        ColumnType::Float32 => Value::Float32(parse_float32(text)?),
        ColumnType::Float64 => Value::Float64(parse_float64(text)?),
        ColumnType::Decimal { .. } if DECIMAL_SPECIALS.contains(&text) => {
            Value::Text(text.to_string())
        }
        ColumnType::Decimal { scale, .. } => Value::Decimal {
            unscaled: parse_decimal(text, *scale)?,
            scale: *scale,
        },
        ColumnType::Money => Value::Decimal {
            unscaled: parse_decimal(&money_decimal(text)?, MONEY_SCALE)?,
            scale: MONEY_SCALE,
        },
        ColumnType::NumericText | ColumnType::Text | ColumnType::Json => {
            Value::Text(text.to_string())
        }
        ColumnType::Bytes => Value::Bytes(parse_bytea(text)?),
        ColumnType::Date => Value::Date(parse_date(text)?),
        ColumnType::Time => Value::Time(parse_time(text)?),
        // Beyond i64 microseconds since 1970 (PostgreSQL reaches 294276 AD):
        // kept as PostgreSQL's own text, the `string` branch of the field.
        ColumnType::Timestamp => match parse_timestamp(text)? {
            Some(micros) => Value::Timestamp(micros),
            None => Value::Text(text.to_string()),
        },
        ColumnType::TimestampTz => match parse_timestamptz(text)? {
            Some(micros) => Value::TimestampTz(micros),
            None => Value::Text(text.to_string()),
        },
        ColumnType::Uuid => Value::Uuid(uuid::Uuid::parse_str(text).map_err(|e| e.to_string())?),
    })
}

/// Parsed as `f32` directly: going through `f64` would round twice and could
/// miss the value PostgreSQL's shortest-exact output names.
fn parse_float32(text: &str) -> Result<f32, String> {
    match text {
        "NaN" => Ok(f32::NAN),
        "Infinity" => Ok(f32::INFINITY),
        "-Infinity" => Ok(f32::NEG_INFINITY),
        _ => text.parse::<f32>().map_err(|e| e.to_string()),
    }
}

fn parse_float64(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => text.parse::<f64>().map_err(|e| e.to_string()),
    }
}

/// Money as PostgreSQL writes it under `lc_monetary = 'C'` (pinned in the
/// session settings): `$1,234.56`, `-$0.01` → plain decimal text `-0.01`.
fn money_decimal(text: &str) -> Result<String, String> {
    let (sign, body) = match text.strip_prefix('-') {
        Some(body) => ("-", body),
        None => ("", text),
    };
    let digits = body
        .strip_prefix('$')
        .ok_or_else(|| format!("{text:?} is not money as lc_monetary 'C' writes it ($1,234.56)"))?;
    Ok(format!("{sign}{}", digits.replace(',', "")))
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
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("invalid hex digits at offset {i}"))
        })
        .collect()
}

/// Splits one line of `COPY … TO STDOUT` text format into fields, undoing its
/// backslash escapes; `\N` is NULL.
pub fn copy_fields(line: &[u8]) -> Result<Vec<Option<Cow<'_, str>>>, String> {
    CopyFields::new(line)?.collect()
}

/// The fields of one COPY text line, one at a time: the snapshot parses
/// them straight into a row, without a vector of fields per line.
pub struct CopyFields<'a> {
    rest: Option<&'a str>,
}

impl<'a> CopyFields<'a> {
    /// Checks the whole line is UTF-8 once (fast for ASCII), so that fields
    /// without escapes are borrowed as they are.
    pub fn new(line: &'a [u8]) -> Result<Self, String> {
        let line = std::str::from_utf8(line).map_err(|e| format!("COPY line is not UTF-8: {e}"))?;
        Ok(Self { rest: Some(line) })
    }
}

impl<'a> Iterator for CopyFields<'a> {
    type Item = Result<Option<Cow<'a, str>>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest?;
        let field = match memchr::memchr(b'\t', rest.as_bytes()) {
            Some(tab) => {
                self.rest = Some(&rest[tab + 1..]);
                &rest[..tab]
            }
            None => {
                self.rest = None;
                rest
            }
        };
        if field == "\\N" {
            return Some(Ok(None));
        }
        if memchr::memchr(b'\\', field.as_bytes()).is_none() {
            return Some(Ok(Some(Cow::Borrowed(field))));
        }
        Some(unescape_copy(field.as_bytes()).and_then(|bytes| {
            String::from_utf8(bytes)
                .map(|text| Some(Cow::Owned(text)))
                .map_err(|e| format!("COPY field is not UTF-8: {e}"))
        }))
    }
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

/// Parses column `index` of `table` from its text form (`None` is NULL),
/// naming the table, column and value when it does not parse. Every reader
/// of text rows (COPY, pgoutput, fetches by key) goes through here.
pub fn column_from_text(
    table: &kappa_schemas::TableSchema,
    index: usize,
    text: Option<&str>,
) -> Result<Value, crate::error::SourceError> {
    let column = &table.columns[index];
    match text {
        None => Ok(Value::Null),
        Some(text) => parse_value(&column.column_type, text).map_err(|reason| {
            crate::error::SourceError::bad_value(
                &table.name,
                &column.name,
                text,
                &column.source_type,
                reason,
            )
        }),
    }
}

/// Text parameters for a query whose placeholders cast `$n::text::<type>`.
pub fn text_params(values: &[String]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    values
        .iter()
        .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICE: ColumnType = ColumnType::Decimal {
        precision: 5,
        scale: 2,
    };

    #[test]
    fn parses_times_through_their_column_types() {
        assert_eq!(
            parse_value(&ColumnType::Date, "0044-03-15 BC").unwrap(),
            Value::Date(-735_160)
        );
        assert_eq!(
            parse_value(&ColumnType::Date, "-infinity").unwrap(),
            Value::Date(i32::MIN)
        );
        assert_eq!(
            parse_value(&ColumnType::Time, "00:00:01.5").unwrap(),
            Value::Time(1_500_000)
        );
        assert_eq!(
            parse_value(&ColumnType::Timestamp, "infinity").unwrap(),
            Value::Timestamp(i64::MAX)
        );
        assert_eq!(
            parse_value(&ColumnType::TimestampTz, "1970-01-01 01:00:00+01").unwrap(),
            Value::TimestampTz(0)
        );
        for (ty, text) in [
            (ColumnType::Timestamp, "294276-12-31 23:59:59.999999"),
            (ColumnType::TimestampTz, "294276-12-31 23:59:59.999999+00"),
        ] {
            assert_eq!(parse_value(&ty, text).unwrap(), Value::Text(text.into()));
        }
        assert!(parse_value(&ColumnType::Timestamp, "294276-12-32 00:00:00").is_err());
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
            parse_value(&ColumnType::Bytes, "\\x00ff").unwrap(),
            Value::Bytes(vec![0, 255])
        );
        assert_eq!(
            parse_value(&ColumnType::Bytes, "\\x").unwrap(),
            Value::Bytes(vec![])
        );
        assert!(parse_value(&ColumnType::Bytes, "\\x0é0").is_err());
        assert_eq!(
            parse_value(&PRICE, "-1.5").unwrap(),
            Value::Decimal {
                unscaled: (-150).into(),
                scale: 2
            }
        );
        assert!(parse_value(&ColumnType::Int16, "x").is_err());
    }

    #[test]
    fn floats_keep_their_exact_bits() {
        assert_eq!(
            parse_value(&ColumnType::Float32, "1.1").unwrap(),
            Value::Float32(1.1)
        );
        assert_eq!(
            parse_value(&ColumnType::Float32, "-0").unwrap(),
            Value::Float32(-0.0)
        );
        assert_eq!(
            parse_value(&ColumnType::Float32, "1e-45").unwrap(),
            Value::Float32(f32::from_bits(1))
        );
        assert_eq!(
            parse_value(&ColumnType::Float32, "3.4028235e+38").unwrap(),
            Value::Float32(f32::MAX)
        );
        // Just above the midpoint of 1 and the next f32: through f64 it would
        // round to the midpoint first, then (ties to even) down to 1.
        let text = "1.000000059604644775390626";
        assert_eq!(parse_float32(text).unwrap(), 1.000_000_1_f32);
        assert_eq!(text.parse::<f64>().unwrap() as f32, 1.0);
        assert_eq!(
            parse_value(&ColumnType::Float64, "4.9406564584124654e-324").unwrap(),
            Value::Float64(f64::from_bits(1))
        );
    }

    #[test]
    fn decimal_specials_are_kept_as_text() {
        for special in ["NaN", "Infinity", "-Infinity"] {
            assert_eq!(
                parse_value(&PRICE, special).unwrap(),
                Value::Text(special.into())
            );
        }
        assert!(parse_value(&PRICE, "nan").is_err());
        assert!(parse_value(&PRICE, "1.234").is_err());
    }

    #[test]
    fn money_under_the_c_locale() {
        let money = |text| parse_value(&ColumnType::Money, text);
        let cents = |c: i64| Value::Decimal {
            unscaled: c.into(),
            scale: 2,
        };
        assert_eq!(money("$0.00").unwrap(), cents(0));
        assert_eq!(money("-$0.01").unwrap(), cents(-1));
        assert_eq!(money("-$1,234,567.89").unwrap(), cents(-123_456_789));
        assert_eq!(
            money("$92,233,720,368,547,758.07").unwrap(),
            cents(i64::MAX)
        );
        assert_eq!(
            money("-$92,233,720,368,547,758.08").unwrap(),
            cents(i64::MIN)
        );
        for bad in ["1.00", "€1.00", "$1.001", "($1.00)", "$"] {
            assert!(money(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn splits_copy_lines() {
        let fields = copy_fields(b"1\t\\N\ta\\tb\\\\c\\nd\t\\\\x00").unwrap();
        let fields: Vec<Option<String>> =
            fields.into_iter().map(|f| f.map(Cow::into_owned)).collect();
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
