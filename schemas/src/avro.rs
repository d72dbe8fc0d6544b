//! Table shape → Avro schemas, and rows → Avro datums.
//!
//! The mapping (see docs/postgres-types.md): integers to `int`/`long`,
//! fixed-scale numbers and money to `decimal`, times to the micros logical
//! types, text, JSON, unscaled numbers and every type carried as its text form
//! to `string`. Nullable columns become `["null", T]` with default `null`, so a
//! column added later is a BACKWARD-compatible schema change. A nullable
//! decimal or timestamp is `["null", T, "string"]` (Avro unions cannot nest,
//! so the branches are flattened): the string holds the values `T` cannot,
//! exactly as the source writes them — a decimal's `NaN` and `±Infinity`, a
//! PostgreSQL timestamp beyond the ±292,277 years an Avro long of
//! microseconds reaches (see [`crate::value::Value::Text`]). Key and NOT NULL
//! columns have the plain type: a key schema never changes (every key's bytes
//! would), so such a value in a key is refused with an error naming it.

use crate::change::Change;
use crate::error::SchemaError;
use crate::framing::frame;
use crate::registry::Registry;
use crate::table::{ColumnType, TableSchema, MONEY_PRECISION, MONEY_SCALE};
use crate::value::{Value, DECIMAL_SPECIALS};
use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;

/// Turns a name into a valid Avro name: letters, digits and `_`, not starting
/// with a digit. Used for record, namespace and field names.
pub fn avro_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The Avro schemas of one table shape, parsed and as registry text.
#[derive(Debug, Clone)]
pub struct TableAvro {
    pub key_json: String,
    pub value_json: String,
    pub key_schema: Schema,
    pub value_schema: Schema,
}

impl TableAvro {
    /// Builds the key and value schemas of `table` for `topic`. Fails when two
    /// column names become the same Avro name, instead of silently merging them.
    pub fn new(table: &TableSchema, topic: &str) -> Result<Self, SchemaError> {
        if table.key_columns.is_empty() {
            return Err(SchemaError::NoKey {
                table: table.name.clone(),
            });
        }
        let namespace: Vec<String> = topic.split('.').map(avro_name).collect();
        let namespace = namespace.join(".");
        let mut seen = HashMap::new();
        for column in &table.columns {
            if let Some(previous) = seen.insert(avro_name(&column.name), &column.name) {
                return Err(SchemaError::Column {
                    table: table.name.clone(),
                    column: column.name.clone(),
                    reason: format!(
                        "its Avro field name collides with column {previous:?}; rename one of them"
                    ),
                });
            }
        }
        let key_fields: Vec<Json> = table.key().map(|c| field_json(c, false)).collect();
        let value_fields: Vec<Json> = table
            .columns
            .iter()
            .map(|c| field_json(c, c.nullable))
            .collect();
        let key_json =
            json!({"type": "record", "name": "Key", "namespace": namespace, "fields": key_fields})
                .to_string();
        let value_json = json!({"type": "record", "name": "Value", "namespace": namespace, "fields": value_fields}).to_string();
        let parse = |text: &str, subject: String| {
            Schema::parse_str(text).map_err(|e| SchemaError::InvalidSchema {
                subject,
                reason: e.to_string(),
            })
        };
        Ok(Self {
            key_schema: parse(&key_json, format!("{topic}-key"))?,
            value_schema: parse(&value_json, format!("{topic}-value"))?,
            key_json,
            value_json,
        })
    }
}

/// Whether a column of type `ty` can hold values its Avro type cannot, which
/// then travel in a `string` branch (nullable columns only). Adding the
/// branch to a field that lacked it is BACKWARD compatible: a reader union
/// reads every datum of the narrower writer union.
pub fn has_text_branch(ty: &ColumnType) -> bool {
    matches!(
        ty,
        ColumnType::Decimal { .. } | ColumnType::Timestamp | ColumnType::TimestampTz
    )
}

fn field_json(column: &crate::table::Column, nullable: bool) -> Json {
    let ty = type_json(&column.column_type);
    let ty = match nullable {
        false => ty,
        true if has_text_branch(&column.column_type) => json!(["null", ty, "string"]),
        true => json!(["null", ty]),
    };
    let mut field = json!({
        "name": avro_name(&column.name),
        "type": ty,
        "kappa.column": column.name,
        "kappa.source_type": column.source_type,
    });
    if nullable {
        field["default"] = Json::Null;
    }
    field
}

fn type_json(ty: &ColumnType) -> Json {
    match ty {
        ColumnType::Bool => json!("boolean"),
        ColumnType::Int16 | ColumnType::Int32 => json!("int"),
        ColumnType::Int64 => json!("long"),
        ColumnType::Float32 => json!("float"),
        ColumnType::Float64 => json!("double"),
        ColumnType::Decimal { precision, scale } => {
            json!({"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale})
        }
        ColumnType::Money => {
            json!({"type": "bytes", "logicalType": "decimal", "precision": MONEY_PRECISION, "scale": MONEY_SCALE})
        }
        ColumnType::NumericText | ColumnType::Text | ColumnType::Json => json!("string"),
        ColumnType::Bytes => json!("bytes"),
        ColumnType::Date => json!({"type": "int", "logicalType": "date"}),
        ColumnType::Time => json!({"type": "long", "logicalType": "time-micros"}),
        ColumnType::Timestamp => json!({"type": "long", "logicalType": "local-timestamp-micros"}),
        ColumnType::TimestampTz => json!({"type": "long", "logicalType": "timestamp-micros"}),
        ColumnType::Uuid => json!({"type": "string", "logicalType": "uuid"}),
    }
}

/// Converts one non-NULL value to Avro for a column of type `ty`, refusing
/// values the type cannot hold exactly rather than rounding or truncating
/// them. Also returns which of the type's branches it took: 0 for the type
/// itself, 1 for the `string` branch ([`has_text_branch`]: a decimal's
/// `NaN`/`±Infinity`, an out-of-range timestamp's text form).
fn to_avro(ty: &ColumnType, value: &Value) -> Result<(u32, Avro), String> {
    match (ty, value) {
        (ColumnType::Decimal { .. }, Value::Text(v)) => {
            if DECIMAL_SPECIALS.contains(&v.as_str()) {
                Ok((1, Avro::String(v.clone())))
            } else {
                Err(format!(
                    "{v:?} is neither a decimal nor NaN/Infinity/-Infinity"
                ))
            }
        }
        (ColumnType::Timestamp | ColumnType::TimestampTz, Value::Text(v)) if !v.is_empty() => {
            Ok((1, Avro::String(v.clone())))
        }
        _ => Ok((0, typed_avro(ty, value)?)),
    }
}

fn typed_avro(ty: &ColumnType, value: &Value) -> Result<Avro, String> {
    Ok(match (ty, value) {
        (ColumnType::Bool, Value::Bool(v)) => Avro::Boolean(*v),
        (ColumnType::Int16 | ColumnType::Int32, Value::Int(v)) => {
            Avro::Int(i32::try_from(*v).map_err(|_| format!("{v} does not fit a 32-bit int"))?)
        }
        (ColumnType::Int64, Value::Int(v)) => Avro::Long(*v),
        (ColumnType::Float32, Value::Float32(v)) => Avro::Float(*v),
        (ColumnType::Float64, Value::Float64(v)) => Avro::Double(*v),
        (ColumnType::Decimal { scale, .. }, Value::Decimal { unscaled, scale: s })
            if s == scale =>
        {
            Avro::Decimal(apache_avro::Decimal::from(unscaled.to_signed_bytes_be()))
        }
        (ColumnType::Money, Value::Decimal { unscaled, scale }) if *scale == MONEY_SCALE => {
            Avro::Decimal(apache_avro::Decimal::from(unscaled.to_signed_bytes_be()))
        }
        (ColumnType::NumericText | ColumnType::Text | ColumnType::Json, Value::Text(v)) => {
            Avro::String(v.clone())
        }
        (ColumnType::Bytes, Value::Bytes(v)) => Avro::Bytes(v.clone()),
        (ColumnType::Date, Value::Date(v)) => Avro::Date(*v),
        (ColumnType::Time, Value::Time(v)) => Avro::TimeMicros(*v),
        (ColumnType::Timestamp, Value::Timestamp(v)) => Avro::LocalTimestampMicros(*v),
        (ColumnType::TimestampTz, Value::TimestampTz(v)) => Avro::TimestampMicros(*v),
        (ColumnType::Uuid, Value::Uuid(v)) => Avro::Uuid(*v),
        (ty, value) => return Err(format!("value {value} does not match column type {ty:?}")),
    })
}

fn record(
    table: &TableSchema,
    columns: impl Iterator<Item = (usize, bool)>,
    values: &[Value],
) -> Result<Avro, SchemaError> {
    let mut fields = Vec::with_capacity(values.len());
    for ((index, nullable), value) in columns.zip(values) {
        let column = &table.columns[index];
        let avro = match (value, nullable) {
            (Value::Null, true) => Avro::Union(0, Box::new(Avro::Null)),
            (Value::Null, false) => {
                return Err(SchemaError::Column {
                    table: table.name.clone(),
                    column: column.name.clone(),
                    reason: "NULL in a key or NOT NULL column".into(),
                })
            }
            (value, nullable) => {
                let fail = |reason: String| SchemaError::Column {
                    table: table.name.clone(),
                    column: column.name.clone(),
                    reason,
                };
                match (to_avro(&column.column_type, value).map_err(fail)?, nullable) {
                    ((branch, v), true) => Avro::Union(branch + 1, Box::new(v)),
                    ((0, v), false) => v,
                    (_, false) => {
                        return Err(fail(format!(
                            "the value {value} has no form in a key or NOT NULL column: their Avro \
                             type is the plain {:?} (a key schema never changes, or every key's bytes \
                             would), which cannot hold it; change the row's value or the table's key",
                            column.column_type
                        )))
                    }
                }
            }
        };
        fields.push((avro_name(&column.name), avro));
    }
    Ok(Avro::Record(fields))
}

fn datum(table: &TableSchema, schema: &Schema, value: Avro) -> Result<Vec<u8>, SchemaError> {
    apache_avro::to_avro_datum(schema, value).map_err(|e| SchemaError::Encode {
        table: table.name.clone(),
        reason: e.to_string(),
    })
}

/// Encodes the key values (in key order) as a key datum.
pub fn encode_key(
    table: &TableSchema,
    avro: &TableAvro,
    key: &[Value],
) -> Result<Vec<u8>, SchemaError> {
    let columns = table.key_columns.iter().map(|&i| (i, false));
    datum(table, &avro.key_schema, record(table, columns, key)?)
}

/// Encodes a whole row as a value datum.
pub fn encode_row(
    table: &TableSchema,
    avro: &TableAvro,
    row: &[Value],
) -> Result<Vec<u8>, SchemaError> {
    if row.len() != table.columns.len() {
        return Err(SchemaError::Encode {
            table: table.name.clone(),
            reason: format!(
                "row has {} values for {} columns",
                row.len(),
                table.columns.len()
            ),
        });
    }
    let columns = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.nullable));
    datum(table, &avro.value_schema, record(table, columns, row)?)
}

/// A keyed record ready for the producer: Confluent-framed key, and value
/// (`None` is a tombstone).
#[derive(Debug, Clone)]
pub struct EncodedRecord {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

struct Registered {
    table: Arc<TableSchema>,
    avro: TableAvro,
    key_id: u32,
    value_id: u32,
}

/// Encodes changes into Confluent-framed records, registering each table
/// shape's schemas once under `<topic>-key` and `<topic>-value`. The key
/// schema of a table depends only on its key columns, so its id, and hence
/// every key's bytes, stay the same across value-schema changes: compaction
/// matches keys byte for byte.
pub struct RecordEncoder {
    registry: Registry,
    by_topic: HashMap<String, Registered>,
}

impl RecordEncoder {
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            by_topic: HashMap::new(),
        }
    }

    /// Encodes one change for `topic`, registering its schemas on first use.
    pub async fn encode(
        &mut self,
        topic: &str,
        change: &Change,
    ) -> Result<EncodedRecord, SchemaError> {
        let table = change.table();
        let current = self
            .by_topic
            .get(topic)
            .is_some_and(|r| Arc::ptr_eq(&r.table, table) || r.table == *table);
        if !current {
            let avro = TableAvro::new(table, topic)?;
            let key_id = self
                .registry
                .register(&format!("{topic}-key"), &avro.key_json)
                .await?;
            let value_id = self
                .registry
                .register(&format!("{topic}-value"), &avro.value_json)
                .await?;
            self.by_topic.insert(
                topic.to_string(),
                Registered {
                    table: table.clone(),
                    avro,
                    key_id,
                    value_id,
                },
            );
        }
        let Some(registered) = self.by_topic.get(topic) else {
            unreachable!("registered just above")
        };
        let key = frame(
            registered.key_id,
            &encode_key(table, &registered.avro, &change.key())?,
        );
        let value = match change {
            Change::Upsert { row, .. } => Some(frame(
                registered.value_id,
                &encode_row(table, &registered.avro, row)?,
            )),
            Change::Delete { .. } => None,
        };
        Ok(EncodedRecord { key, value })
    }
}

#[cfg(test)]
#[path = "avro_tests.rs"]
mod tests;
