//! MySQL/MariaDB column types as the catalog describes them, and the kappa
//! column type (so the Avro type) each one maps to (see `docs/mysql.md`).

use super::charset::{parse_charset, Charset};
use kappa_schemas::ColumnType;

/// How to read one column's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MysqlKind {
    /// `bits`: 8, 16, 24, 32 or 64.
    Int {
        bits: u8,
        unsigned: bool,
    },
    Float,
    Double,
    Decimal {
        precision: u32,
        scale: u32,
    },
    /// `bit(n)`: big-endian bytes, `ceil(n/8)` of them.
    Bit {
        bytes: usize,
    },
    Text(Charset),
    /// `binary(n)` pads to `n` bytes (the binlog drops trailing zero bytes);
    /// varbinary and blobs keep their length.
    Binary {
        pad_to: Option<usize>,
    },
    Enum(Vec<String>),
    Set(Vec<String>),
    Date,
    DateTime,
    Timestamp,
    Time,
    Year,
    /// MySQL 8's binary JSON (MariaDB's JSON is a `longtext`, read as text).
    Json,
}

/// A column as the readers decode it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlColumn {
    pub name: String,
    pub kind: MysqlKind,
}

impl MysqlKind {
    /// From `information_schema.COLUMNS`; the error says why a type is not
    /// supported.
    pub fn from_catalog(
        data_type: &str,
        column_type: &str,
        charset: Option<&str>,
        precision: Option<u64>,
        scale: Option<u64>,
        octets: Option<u64>,
    ) -> Result<Self, String> {
        let unsigned = column_type.contains("unsigned");
        let int = |bits| Ok(MysqlKind::Int { bits, unsigned });
        match data_type {
            "tinyint" => int(8),
            "smallint" => int(16),
            "mediumint" => int(24),
            "int" | "integer" => int(32),
            "bigint" => int(64),
            "float" => Ok(MysqlKind::Float),
            "double" | "real" => Ok(MysqlKind::Double),
            "decimal" | "numeric" => {
                let (precision, scale) = (precision.unwrap_or(10), scale.unwrap_or(0));
                // MySQL allows DECIMAL(65,30) at most.
                if precision > 65 || scale > precision {
                    return Err(format!(
                        "DECIMAL({precision},{scale}) is outside MySQL's own limits"
                    ));
                }
                Ok(MysqlKind::Decimal {
                    precision: precision as u32,
                    scale: scale as u32,
                })
            }
            "bit" => Ok(MysqlKind::Bit {
                bytes: (precision.unwrap_or(1) as usize).div_ceil(8),
            }),
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                Ok(MysqlKind::Text(parse_charset(charset)?))
            }
            "binary" => Ok(MysqlKind::Binary {
                pad_to: octets.map(|n| n as usize),
            }),
            "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                Ok(MysqlKind::Binary { pad_to: None })
            }
            "enum" => {
                parse_charset(charset)?;
                Ok(MysqlKind::Enum(labels(column_type, "enum")?))
            }
            "set" => {
                parse_charset(charset)?;
                Ok(MysqlKind::Set(labels(column_type, "set")?))
            }
            "date" => Ok(MysqlKind::Date),
            "datetime" => Ok(MysqlKind::DateTime),
            "timestamp" => Ok(MysqlKind::Timestamp),
            "time" => Ok(MysqlKind::Time),
            "year" => Ok(MysqlKind::Year),
            "json" => Ok(MysqlKind::Json),
            other => Err(format!(
                "type {other} is not supported yet; leave the table out (exclude_tables) or the column \
                 (table_options exclude_columns does not help here: the value must still be decoded)"
            )),
        }
    }
}

/// The labels of `enum('a','b')` / `set('a','b')` in declaration order
/// (`''` inside a label is a quote).
fn labels(column_type: &str, keyword: &str) -> Result<Vec<String>, String> {
    let inner = column_type
        .strip_prefix(keyword)
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("cannot read the labels of {column_type}"))?;
    let mut labels = Vec::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        loop {
            match chars.next() {
                Some('\'') if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                Some('\'') => break,
                Some('\\') => {
                    if let Some(n) = chars.next() {
                        label.push(n);
                    }
                }
                Some(ch) => label.push(ch),
                None => return Err(format!("unterminated label in {column_type}")),
            }
        }
        labels.push(label);
    }
    Ok(labels)
}

/// The kappa column type (and so the Avro type) of a MySQL column.
pub fn column_type(kind: &MysqlKind) -> ColumnType {
    match kind {
        MysqlKind::Int { bits: 8, .. } => ColumnType::Int16,
        MysqlKind::Int {
            bits: 16,
            unsigned: false,
        } => ColumnType::Int16,
        MysqlKind::Int { bits: 16 | 24, .. } => ColumnType::Int32,
        MysqlKind::Int {
            bits: 32,
            unsigned: false,
        } => ColumnType::Int32,
        MysqlKind::Int { bits: 32, .. } => ColumnType::Int64,
        MysqlKind::Int {
            unsigned: false, ..
        } => ColumnType::Int64,
        // 0 ..= 18446744073709551615 does not fit a long.
        MysqlKind::Int { .. } => ColumnType::Decimal {
            precision: 20,
            scale: 0,
        },
        MysqlKind::Float => ColumnType::Float32,
        MysqlKind::Double => ColumnType::Float64,
        MysqlKind::Decimal { precision, scale } => ColumnType::Decimal {
            precision: *precision,
            scale: *scale,
        },
        MysqlKind::Bit { .. } | MysqlKind::Binary { .. } => ColumnType::Bytes,
        MysqlKind::Text(_) | MysqlKind::Enum(_) | MysqlKind::Set(_) => ColumnType::Text,
        MysqlKind::Date => ColumnType::Date,
        MysqlKind::DateTime => ColumnType::Timestamp,
        MysqlKind::Timestamp => ColumnType::TimestampTz,
        // Signed microseconds: TIME spans -838:59:59 ..= 838:59:59, which
        // Avro's time-micros (a time of day) cannot hold.
        MysqlKind::Time => ColumnType::Int64,
        MysqlKind::Year => ColumnType::Int32,
        MysqlKind::Json => ColumnType::Json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_limits_are_checked() {
        let decimal =
            |p, s| MysqlKind::from_catalog("decimal", "decimal", None, Some(p), Some(s), None);
        assert_eq!(
            decimal(65, 30),
            Ok(MysqlKind::Decimal {
                precision: 65,
                scale: 30
            })
        );
        assert!(decimal(u64::from(u32::MAX) + 1, 0).is_err());
        assert!(decimal(5, 6).is_err());
    }

    #[test]
    fn labels_parse_quotes() {
        assert_eq!(
            labels("enum('a','it''s','')", "enum").unwrap(),
            vec!["a", "it's", ""]
        );
        assert_eq!(labels("set('x','y')", "set").unwrap(), vec!["x", "y"]);
    }
}
