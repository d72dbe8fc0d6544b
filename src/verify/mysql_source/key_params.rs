//! Key values passed back to the server for re-checks, as the MySQL values
//! that read as them (decimals as exact text cast to the column's type,
//! temporal values as dates): a collation or a conversion cannot hand back
//! another row.

use super::*;

/// A canonical key value as the MySQL value that selects it (the inverse of
/// `convert` for the types a key can have).
pub(super) fn key_param(column: &MysqlColumn, value: &Value) -> anyhow::Result<My> {
    let unsupported = || {
        anyhow!(
            "column {}: cannot look up the key value {value} in the source",
            column.name
        )
    };
    let datetime = |micros: i64| -> anyhow::Result<My> {
        if micros == i64::MIN {
            return Ok(My::Date(0, 0, 0, 0, 0, 0, 0));
        }
        let t = chrono::DateTime::from_timestamp_micros(micros)
            .ok_or_else(unsupported)?
            .naive_utc();
        date_value(t.date(), t.time())
    };
    Ok(match (&column.kind, value) {
        (
            MysqlKind::Int {
                bits: 64,
                unsigned: true,
            },
            Value::Decimal { unscaled, scale: 0 },
        ) => My::UInt(unscaled.to_string().parse().map_err(|_| unsupported())?),
        (MysqlKind::Int { .. } | MysqlKind::Year, Value::Int(n)) => My::Int(*n),
        (MysqlKind::Decimal { .. }, Value::Decimal { .. }) => {
            My::Bytes(value.to_string().into_bytes())
        }
        (MysqlKind::Float, Value::Float32(f)) => My::Float(*f),
        (MysqlKind::Double, Value::Float64(f)) => My::Double(*f),
        (MysqlKind::Bit { .. }, Value::Bytes(bytes)) if bytes.len() <= 8 => {
            My::UInt(bytes.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)))
        }
        (MysqlKind::Binary { .. }, Value::Bytes(bytes)) => My::Bytes(bytes.clone()),
        (
            MysqlKind::Text(_) | MysqlKind::Enum(_) | MysqlKind::Set(_) | MysqlKind::Json,
            Value::Text(text),
        ) => My::Bytes(text.as_bytes().to_vec()),
        (MysqlKind::Date, Value::Date(i32::MIN)) => My::Date(0, 0, 0, 0, 0, 0, 0),
        (MysqlKind::Date, Value::Date(days)) => {
            let date = days
                .checked_add(719_163)
                .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
                .ok_or_else(unsupported)?;
            date_value(date, chrono::NaiveTime::MIN)?
        }
        (MysqlKind::DateTime, Value::Timestamp(micros)) => datetime(*micros)?,
        (MysqlKind::Timestamp, Value::TimestampTz(micros)) => datetime(*micros)?,
        (MysqlKind::Time, Value::Int(micros)) => {
            let total = micros.unsigned_abs();
            let seconds = total / 1_000_000;
            My::Time(
                *micros < 0,
                u32::try_from(seconds / 86_400).map_err(|_| unsupported())?,
                (seconds / 3600 % 24) as u8,
                (seconds / 60 % 60) as u8,
                (seconds % 60) as u8,
                (total % 1_000_000) as u32,
            )
        }
        _ => return Err(unsupported()),
    })
}

/// A date and time as the MySQL value that reads as it (see
/// [`kappa_materialize::target::mysql_types::date_time`]).
pub(super) fn date_value(date: chrono::NaiveDate, time: chrono::NaiveTime) -> anyhow::Result<My> {
    kappa_materialize::target::mysql_types::date_time(date.and_time(time))
        .map_err(|value| anyhow!("{value} is outside MySQL's range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_go_back_to_the_mysql_values_that_read_as_them() {
        use kappa_source::mysql::types::convert;
        let table = TableName::parse("db.t").unwrap();
        let cases = [
            (MysqlKind::Date, My::Date(2022, 1, 8, 0, 0, 0, 0)),
            (MysqlKind::Date, My::Date(0, 0, 0, 0, 0, 0, 0)),
            (MysqlKind::Date, My::Date(1000, 1, 1, 0, 0, 0, 0)),
            (
                MysqlKind::DateTime,
                My::Date(1969, 12, 31, 23, 59, 59, 999_999),
            ),
            (MysqlKind::DateTime, My::Date(0, 0, 0, 0, 0, 0, 0)),
            (
                MysqlKind::Timestamp,
                My::Date(2038, 1, 19, 3, 14, 7, 500_000),
            ),
            (MysqlKind::Time, My::Time(true, 34, 22, 59, 59, 0)),
            (MysqlKind::Time, My::Time(false, 0, 0, 0, 0, 1)),
            (
                MysqlKind::Int {
                    bits: 64,
                    unsigned: true,
                },
                My::UInt(u64::MAX),
            ),
            (
                MysqlKind::Int {
                    bits: 32,
                    unsigned: false,
                },
                My::Int(-7),
            ),
            (MysqlKind::Bit { bytes: 2 }, My::UInt(258)),
            (
                MysqlKind::Decimal {
                    precision: 12,
                    scale: 2,
                },
                My::Bytes(b"-1.23".to_vec()),
            ),
            (MysqlKind::Binary { pad_to: None }, My::Bytes(vec![0, 255])),
            (MysqlKind::Double, My::Double(-0.5)),
        ];
        for (kind, raw) in cases {
            let column = MysqlColumn {
                name: "k".into(),
                kind: kind.clone(),
            };
            let value = convert(&table, &column, raw.clone(), Origin::Query).unwrap();
            let param = key_param(&column, &value).unwrap();
            assert_eq!(
                convert(&table, &column, param, Origin::Query).unwrap(),
                value,
                "{kind:?} {raw:?}"
            );
        }
        let date = MysqlColumn {
            name: "k".into(),
            kind: MysqlKind::Date,
        };
        assert!(key_param(&date, &Value::Text("x".into())).is_err());
    }
}
