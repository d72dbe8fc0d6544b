//! The MySQL/MariaDB rebuild target's column types and parameter values.
//!
//! A column takes the field's `kappa.source_type` when that is a MySQL
//! column type kappa knows (the MySQL reader writes `COLUMN_TYPE` there,
//! e.g. `int(10) unsigned`, `decimal(12,3)`, `enum('a','b')`), checked word
//! by word so that no text from the registry reaches the DDL unchecked;
//! otherwise a type derived from the Avro type. Text and blob types get their
//! `long` forms (a PostgreSQL `text` is not limited to 64 KB), and key
//! columns of such types get bounded `varchar`/`varbinary` forms, since
//! InnoDB cannot index an unbounded column. Tables use `utf8mb4_bin`, so
//! keys that differ only in case stay distinct.
//!
//! Values go to the server as statement parameters; `-infinity` dates and
//! timestamps (the MySQL reader's zero dates) go back as zero dates. A value with no MySQL
//! form (a decimal's `NaN`, an infinite timestamp, a timestamp kept as text)
//! goes as its text, and the server in strict mode accepts it or refuses it
//! with an error naming the column.

use super::shape::{self, TargetShape};
use kappa_schemas::value::decimal_text;
use kappa_schemas::{AvroSchema, Value};
use mysql_async::Value as MyValue;

/// Bytes of key a single InnoDB index may hold (utf8mb4: 4 bytes a char).
const KEY_BYTES: usize = 3072;

/// The MySQL type for a `kappa.source_type`, when it is one kappa knows.
pub fn known_source_type(source_type: &str) -> Option<String> {
    let lower = source_type.trim().to_ascii_lowercase();
    let (base, rest) = match lower.find(|c: char| !c.is_ascii_alphanumeric()) {
        Some(at) => lower.split_at(at),
        None => (lower.as_str(), ""),
    };
    match base {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
            integer_suffix(rest).then(|| format!("{base}{rest}"))
        }
        "decimal" | "numeric" | "float" | "double" | "real" => {
            let (args, rest) = numeric_args(rest)?;
            integer_suffix(rest).then(|| format!("{base}{args}{rest}"))
        }
        "bit" | "char" | "varchar" | "binary" | "varbinary" | "datetime" | "timestamp" | "time"
        | "year" => {
            let (args, rest) = numeric_args(rest)?;
            rest.is_empty().then(|| format!("{base}{args}"))
        }
        "date" | "json" | "boolean" | "bool" if rest.is_empty() => Some(base.to_string()),
        "tinytext" | "text" | "mediumtext" | "longtext" if rest.is_empty() => {
            Some("longtext".into())
        }
        "tinyblob" | "blob" | "mediumblob" | "longblob" if rest.is_empty() => {
            Some("longblob".into())
        }
        // Labels keep their case: take them from the original text.
        "enum" | "set" => {
            let labels = &source_type.trim()[base.len()..];
            quoted_labels(labels).then(|| format!("{base}{labels}"))
        }
        _ => None,
    }
}

/// `""`, `" unsigned"`, `" unsigned zerofill"`, `" zerofill"`, after an
/// optional display width `(n)`.
fn integer_suffix(rest: &str) -> bool {
    let rest = match numeric_args(rest) {
        Some((_, rest)) => rest,
        None => return false,
    };
    matches!(rest, "" | " unsigned" | " unsigned zerofill" | " zerofill")
}

/// An optional `(n)` or `(p,s)` of digits → (that text, the rest).
fn numeric_args(rest: &str) -> Option<(&str, &str)> {
    let Some(inner) = rest.strip_prefix('(') else {
        return Some(("", rest));
    };
    let close = inner.find(')')?;
    let args = &inner[..close];
    let valid = args
        .split(',')
        .all(|a| !a.trim().is_empty() && a.trim().bytes().all(|b| b.is_ascii_digit()));
    valid.then(|| (&rest[..close + 2], &rest[close + 2..]))
}

/// `('a','b''c')`: quoted labels separated by commas, and nothing else.
fn quoted_labels(text: &str) -> bool {
    let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) else {
        return false;
    };
    let mut chars = inner.chars().peekable();
    loop {
        if chars.next() != Some('\'') {
            return false;
        }
        loop {
            match chars.next() {
                None | Some('\\') => return false,
                Some('\'') if chars.peek() == Some(&'\'') => {
                    chars.next();
                }
                Some('\'') => break,
                Some(_) => {}
            }
        }
        match chars.next() {
            None => return true,
            Some(',') => {}
            Some(_) => return false,
        }
    }
}

/// The MySQL type for an Avro field type when the source type is unknown.
pub fn avro_sql_type(schema: &AvroSchema) -> anyhow::Result<String> {
    Ok(match shape::first_non_null(schema)? {
        AvroSchema::Boolean => "boolean".into(),
        AvroSchema::Int => "int".into(),
        AvroSchema::Long => "bigint".into(),
        AvroSchema::Float => "float".into(),
        AvroSchema::Double => "double".into(),
        AvroSchema::Decimal(d) if d.precision <= 65 && d.scale <= 30 => {
            format!("decimal({},{})", d.precision, d.scale)
        }
        // Beyond MySQL's decimal: kept exactly as text.
        AvroSchema::Decimal(_) => "longtext".into(),
        AvroSchema::Bytes | AvroSchema::Fixed(_) => "longblob".into(),
        AvroSchema::String | AvroSchema::Enum(_) => "longtext".into(),
        AvroSchema::Uuid => "char(36)".into(),
        AvroSchema::Date => "date".into(),
        AvroSchema::TimestampMicros
        | AvroSchema::LocalTimestampMicros
        | AvroSchema::TimestampMillis
        | AvroSchema::LocalTimestampMillis => "datetime(6)".into(),
        AvroSchema::TimeMicros | AvroSchema::TimeMillis => "time(6)".into(),
        other => anyhow::bail!("Avro type {other:?} has no MySQL column type in kappa"),
    })
}

/// Gives key columns of unbounded types bounded forms that InnoDB can
/// index, sharing the index's byte budget between them.
pub fn bound_key_columns(shape: &mut TargetShape) {
    let unbounded = |t: &str| matches!(t, "longtext" | "longblob" | "json");
    let count = shape
        .key
        .iter()
        .filter(|&&i| unbounded(&shape.columns[i].sql_type))
        .count();
    if count == 0 {
        return;
    }
    let bytes = KEY_BYTES / count;
    for &i in &shape.key {
        let column = &mut shape.columns[i];
        match column.sql_type.as_str() {
            "longblob" => column.sql_type = format!("varbinary({bytes})"),
            "longtext" | "json" => column.sql_type = format!("varchar({})", bytes / 4),
            _ => {}
        }
    }
}

/// A value as a parameter for a column of `sql_type`: a MySQL `TIME`
/// travels as signed microseconds (it spans ±838 hours, which Avro's
/// time-micros cannot hold) and goes back to the server as a time.
pub fn column_parameter(sql_type: &str, value: &Value) -> Result<MyValue, String> {
    match value {
        Value::Int(micros)
            if sql_type.starts_with("time") && !sql_type.starts_with("timestamp") =>
        {
            parameter(&Value::Time(*micros))
        }
        other => parameter(other),
    }
}

/// A value as a statement parameter. `Err` carries the text to send for a
/// value with no MySQL form, which the server then accepts or refuses.
pub fn parameter(value: &Value) -> Result<MyValue, String> {
    Ok(match value {
        Value::Null => MyValue::NULL,
        Value::Bool(b) => MyValue::Int(i64::from(*b)),
        Value::Int(i) => MyValue::Int(*i),
        Value::Float32(f) => MyValue::Float(*f),
        Value::Float64(f) => MyValue::Double(*f),
        Value::Decimal { unscaled, scale } => {
            MyValue::Bytes(decimal_text(unscaled, *scale).into_bytes())
        }
        Value::Text(text) => MyValue::Bytes(text.as_bytes().to_vec()),
        Value::Bytes(bytes) => MyValue::Bytes(bytes.clone()),
        Value::Uuid(uuid) => MyValue::Bytes(uuid.to_string().into_bytes()),
        // The MySQL reader's zero date (`0000-00-00`) is the -infinity
        // sentinel: it goes back as the zero date.
        Value::Date(i32::MIN) | Value::Timestamp(i64::MIN) | Value::TimestampTz(i64::MIN) => {
            MyValue::Date(0, 0, 0, 0, 0, 0, 0)
        }
        Value::Date(days) => {
            let date = chrono::NaiveDate::from_num_days_from_ce_opt(
                days.checked_add(719_163).ok_or_else(|| value.to_string())?,
            )
            .ok_or_else(|| value.to_string())?;
            date_time(date.and_hms_opt(0, 0, 0).ok_or_else(|| value.to_string())?)?
        }
        Value::Timestamp(micros) | Value::TimestampTz(micros) => date_time(
            chrono::DateTime::from_timestamp_micros(*micros)
                .ok_or_else(|| value.to_string())?
                .naive_utc(),
        )?,
        Value::Time(micros) => {
            let magnitude = micros.unsigned_abs();
            let seconds = magnitude / 1_000_000;
            let hours = seconds / 3600;
            MyValue::Time(
                *micros < 0,
                u32::try_from(hours / 24).map_err(|_| value.to_string())?,
                (hours % 24) as u8,
                (seconds / 60 % 60) as u8,
                (seconds % 60) as u8,
                (magnitude % 1_000_000) as u32,
            )
        }
    })
}

/// A date and time as the MySQL value that reads as it (microseconds; a
/// year outside 0..=65535 is refused with the value's text). Also what
/// `verify` binds for key look-ups.
pub fn date_time(t: chrono::NaiveDateTime) -> Result<MyValue, String> {
    use chrono::{Datelike, Timelike};
    let year = u16::try_from(t.year()).map_err(|_| t.to_string())?;
    Ok(MyValue::Date(
        year,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        t.nanosecond() / 1000,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_column_types_are_taken_and_others_refused() {
        let known = |t: &str| known_source_type(t);
        assert_eq!(
            known("int(10) unsigned").as_deref(),
            Some("int(10) unsigned")
        );
        assert_eq!(known("decimal(12,3)").as_deref(), Some("decimal(12,3)"));
        assert_eq!(known("datetime(6)").as_deref(), Some("datetime(6)"));
        assert_eq!(known("varchar(20)").as_deref(), Some("varchar(20)"));
        assert_eq!(known("text").as_deref(), Some("longtext"));
        assert_eq!(known("blob").as_deref(), Some("longblob"));
        assert_eq!(
            known("enum('a','It''s')").as_deref(),
            Some("enum('a','It''s')")
        );
        assert_eq!(known("integer").as_deref(), Some("integer"));
        // PostgreSQL names, and anything that is not one plain type.
        assert_eq!(known("timestamp with time zone"), None);
        assert_eq!(known("character varying"), None);
        assert_eq!(known("bytea"), None);
        assert_eq!(known("int; DROP TABLE x"), None);
        assert_eq!(known("enum('a'); DROP TABLE x; -- ')"), None);
        assert_eq!(known("decimal(12,x)"), None);
    }

    #[test]
    fn unbounded_key_columns_get_indexable_types() {
        let mut shape = TargetShape {
            columns: ["longtext", "longblob", "longtext"]
                .iter()
                .map(|t| super::super::shape::TargetColumn {
                    name: "c".into(),
                    sql_type: t.to_string(),
                })
                .collect(),
            key: vec![0, 1],
        };
        bound_key_columns(&mut shape);
        let types: Vec<&str> = shape.columns.iter().map(|c| c.sql_type.as_str()).collect();
        assert_eq!(types, ["varchar(384)", "varbinary(1536)", "longtext"]);
    }

    #[test]
    fn values_become_parameters_or_their_text() {
        assert_eq!(
            parameter(&Value::Time(-(3_723_000_001))),
            Ok(MyValue::Time(true, 0, 1, 2, 3, 1))
        );
        assert_eq!(
            parameter(&Value::TimestampTz(1_000_001)),
            Ok(MyValue::Date(1970, 1, 1, 0, 0, 1, 1))
        );
        assert_eq!(
            parameter(&Value::Date(-1)),
            Ok(MyValue::Date(1969, 12, 31, 0, 0, 0, 0))
        );
        assert!(parameter(&Value::Timestamp(i64::MAX)).is_err());
        assert_eq!(
            parameter(&Value::Date(i32::MIN)),
            Ok(MyValue::Date(0, 0, 0, 0, 0, 0, 0))
        );
        assert_eq!(
            column_parameter("time(2)", &Value::Int(687_600_250_000)),
            Ok(MyValue::Time(false, 7, 23, 0, 0, 250_000))
        );
        assert_eq!(
            column_parameter("timestamp(3)", &Value::Int(5)),
            Ok(MyValue::Int(5))
        );
        assert_eq!(
            parameter(&Value::Text("NaN".into())),
            Ok(MyValue::Bytes(b"NaN".to_vec()))
        );
    }
}
