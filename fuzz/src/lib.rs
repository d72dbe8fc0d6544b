//! Fuzz-input shapes shared by the targets: `arbitrary` stand-ins for the
//! kappa types that do not derive it (the product crates stay free of a
//! fuzzing dependency).

use arbitrary::Arbitrary;
use kappa_schemas::{Column, ColumnType, TableName, TableSchema};
use kappa_source::mysql::charset::Charset;
use kappa_source::mysql::types::{MysqlColumn, MysqlKind};

/// A [`ColumnType`], with precision and scale kept in the range a database
/// can declare (and a little past it).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum ArbColumnType {
    Bool,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Decimal { precision: u8, scale: u8 },
    NumericText,
    Money,
    Text,
    Bytes,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Uuid,
    Json,
}

impl ArbColumnType {
    pub fn get(self) -> ColumnType {
        match self {
            Self::Bool => ColumnType::Bool,
            Self::Int16 => ColumnType::Int16,
            Self::Int32 => ColumnType::Int32,
            Self::Int64 => ColumnType::Int64,
            Self::Float32 => ColumnType::Float32,
            Self::Float64 => ColumnType::Float64,
            Self::Decimal { precision, scale } => {
                let precision = u32::from(precision % 160).max(1);
                ColumnType::Decimal {
                    precision,
                    scale: u32::from(scale) % (precision + 1),
                }
            }
            Self::NumericText => ColumnType::NumericText,
            Self::Money => ColumnType::Money,
            Self::Text => ColumnType::Text,
            Self::Bytes => ColumnType::Bytes,
            Self::Date => ColumnType::Date,
            Self::Time => ColumnType::Time,
            Self::Timestamp => ColumnType::Timestamp,
            Self::TimestampTz => ColumnType::TimestampTz,
            Self::Uuid => ColumnType::Uuid,
            Self::Json => ColumnType::Json,
        }
    }
}

/// One column of a fuzzed table: its type, whether it is nullable, whether
/// it is part of the key.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct ArbColumn {
    pub column_type: ArbColumnType,
    pub nullable: bool,
    pub key: bool,
}

/// A table of 1..=8 columns with at least one key column (the first, when
/// none is marked).
pub fn table(columns: &[ArbColumn]) -> TableSchema {
    let columns = &columns[..columns.len().min(8)];
    let mut key_columns: Vec<usize> = (0..columns.len()).filter(|&i| columns[i].key).collect();
    if key_columns.is_empty() {
        key_columns.push(0);
    }
    let mut out: Vec<Column> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| Column {
            name: format!("c{i}"),
            column_type: c.column_type.get(),
            nullable: c.nullable && !key_columns.contains(&i),
            source_type: "fuzz".into(),
        })
        .collect();
    if out.is_empty() {
        out.push(Column {
            name: "c0".into(),
            column_type: ColumnType::Int64,
            nullable: false,
            source_type: "fuzz".into(),
        });
    }
    TableSchema {
        name: TableName::new("fuzz", "t"),
        columns: out,
        key_columns,
    }
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum ArbCharset {
    Utf8,
    Latin1,
    Ascii,
}

impl ArbCharset {
    pub fn get(self) -> Charset {
        match self {
            Self::Utf8 => Charset::Utf8,
            Self::Latin1 => Charset::Latin1,
            Self::Ascii => Charset::Ascii,
        }
    }
}

/// A [`MysqlKind`] as the catalog could describe it.
#[derive(Debug, Clone, Arbitrary)]
pub enum ArbKind {
    Int { bits: u8, unsigned: bool },
    Float,
    Double,
    Decimal { precision: u8, scale: u8 },
    Bit { bytes: u8 },
    Text(ArbCharset),
    Binary { pad_to: Option<u8> },
    Enum(Vec<String>),
    Set(Vec<String>),
    Date,
    DateTime,
    Timestamp,
    Time,
    Year,
    Json,
}

impl ArbKind {
    pub fn get(&self) -> MysqlKind {
        match self {
            Self::Int { bits, unsigned } => MysqlKind::Int {
                bits: [8, 16, 24, 32, 64][usize::from(*bits % 5)],
                unsigned: *unsigned,
            },
            Self::Float => MysqlKind::Float,
            Self::Double => MysqlKind::Double,
            Self::Decimal { precision, scale } => {
                let precision = u32::from(*precision % 66).max(1);
                MysqlKind::Decimal {
                    precision,
                    scale: u32::from(*scale) % (precision.min(30) + 1),
                }
            }
            Self::Bit { bytes } => MysqlKind::Bit {
                bytes: usize::from(*bytes % 9).max(1),
            },
            Self::Text(charset) => MysqlKind::Text(charset.get()),
            Self::Binary { pad_to } => MysqlKind::Binary {
                pad_to: pad_to.map(usize::from),
            },
            Self::Enum(v) => MysqlKind::Enum(v.iter().take(70).cloned().collect()),
            Self::Set(v) => MysqlKind::Set(v.iter().take(70).cloned().collect()),
            Self::Date => MysqlKind::Date,
            Self::DateTime => MysqlKind::DateTime,
            Self::Timestamp => MysqlKind::Timestamp,
            Self::Time => MysqlKind::Time,
            Self::Year => MysqlKind::Year,
            Self::Json => MysqlKind::Json,
        }
    }

    pub fn column(&self, i: usize) -> MysqlColumn {
        MysqlColumn {
            name: format!("c{i}"),
            kind: self.get(),
        }
    }
}
