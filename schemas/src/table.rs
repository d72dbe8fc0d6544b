//! Tables as the readers see them: a name, typed columns and the key columns.

use std::fmt;

/// A source table, `schema.table` in PostgreSQL or `database.table` in MySQL.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TableName {
    pub schema: String,
    pub table: String,
}

impl TableName {
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            table: table.into(),
        }
    }

    /// Parses `schema.table`; a bare `table` is refused because the schema
    /// decides the topic name and guessing it would split one table's history
    /// over two topics.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once('.') {
            Some((schema, table))
                if !schema.is_empty() && !table.is_empty() && !table.contains('.') =>
            {
                Ok(Self::new(schema, table))
            }
            _ => Err(format!(
                "table name {text:?} must be written schema.table (e.g. public.orders)"
            )),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// The value domain of a column, independent of the database it came from.
/// It decides the Avro type and how two values are compared by `verify`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Bool,
    /// 16-bit integer (Avro `int`).
    Int16,
    /// 32-bit integer (Avro `int`).
    Int32,
    /// 64-bit integer (Avro `long`).
    Int64,
    Float32,
    Float64,
    /// Fixed precision and scale: Avro `bytes` with the `decimal` logical type.
    /// A nullable column also has a `string` branch for the values a decimal
    /// cannot hold ([`crate::value::DECIMAL_SPECIALS`]: `NaN`, `Infinity`,
    /// `-Infinity`), which travel as [`crate::Value::Text`].
    Decimal {
        precision: u32,
        scale: u32,
    },
    /// Numbers without a declared scale: kept as their exact text (Avro `string`).
    NumericText,
    /// A 64-bit count of cents: Avro `decimal(19, 2)`, values are
    /// [`crate::Value::Decimal`] at scale [`MONEY_SCALE`].
    Money,
    /// A string, or any value carried as its exact text form (Avro `string`).
    Text,
    Bytes,
    /// Days since 1970-01-01 (Avro `date`); `i32::MAX` / `i32::MIN` are
    /// `infinity` / `-infinity`, as PostgreSQL stores them.
    Date,
    /// Microseconds since midnight (`time-micros`); `24:00:00` is 86,400,000,000.
    Time,
    /// Microseconds since 1970-01-01 00:00, no time zone (`local-timestamp-micros`);
    /// `i64::MAX` / `i64::MIN` are `infinity` / `-infinity`.
    Timestamp,
    /// Microseconds since the Unix epoch, UTC (`timestamp-micros`); `i64::MAX` /
    /// `i64::MIN` are `infinity` / `-infinity`.
    TimestampTz,
    Uuid,
    /// JSON document as text (Avro `string`).
    Json,
}

/// Digits after the point of a [`ColumnType::Money`] value.
pub const MONEY_SCALE: u32 = 2;
/// Digits of the largest money value (92233720368547758.07).
pub const MONEY_PRECISION: u32 = 19;

/// One column: its name in the source, its type, whether it may be NULL, and the
/// source's own type name (kept in the Avro field so consumers can see it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Column {
    pub name: String,
    pub column_type: ColumnType,
    pub nullable: bool,
    pub source_type: String,
}

/// The shape of a table at one point of its history. A new shape (a column
/// added mid-stream) is a new `TableSchema`; records carry the one they were
/// written with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableSchema {
    pub name: TableName,
    pub columns: Vec<Column>,
    /// Indices into `columns` of the key, in key order.
    pub key_columns: Vec<usize>,
}

impl TableSchema {
    /// Index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The key columns themselves, in key order.
    pub fn key(&self) -> impl Iterator<Item = &Column> {
        self.key_columns.iter().map(|&i| &self.columns[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schema_dot_table_and_refuses_the_rest() {
        assert_eq!(
            TableName::parse("public.t").unwrap(),
            TableName::new("public", "t")
        );
        assert!(TableName::parse("t").is_err());
        assert!(TableName::parse("a.b.c").is_err());
        assert!(TableName::parse(".t").is_err());
    }
}
