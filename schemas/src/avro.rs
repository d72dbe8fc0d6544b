//! Table shape → Avro schemas, and rows → Avro datums.
//!
//! The mapping (see docs/postgres-types.md): integers to `int`/`long`,
//! fixed-scale numbers and money to `decimal`, times to the micros logical
//! types, text, JSON, unscaled numbers and every type carried as its text form
//! to `string`. Nullable columns become `["null", T]` with default `null`, so a
//! column added later is a BACKWARD-compatible schema change; a nullable
//! decimal is `["null", decimal, "string"]`, the string holding only `NaN` and
//! `±Infinity` (Avro unions cannot nest, so the branches are flattened).

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

fn field_json(column: &crate::table::Column, nullable: bool) -> Json {
    let ty = type_json(&column.column_type);
    let ty = match (nullable, &column.column_type) {
        (false, _) => ty,
        (true, ColumnType::Decimal { .. }) => json!(["null", ty, "string"]),
        (true, _) => json!(["null", ty]),
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
/// itself, 1 for a decimal's `string` branch (`NaN`, `±Infinity`).
fn to_avro(ty: &ColumnType, value: &Value) -> Result<(u32, Avro), String> {
    if let (ColumnType::Decimal { .. }, Value::Text(v)) = (ty, value) {
        return if DECIMAL_SPECIALS.contains(&v.as_str()) {
            Ok((1, Avro::String(v.clone())))
        } else {
            Err(format!(
                "{v:?} is neither a decimal nor NaN/Infinity/-Infinity"
            ))
        };
    }
    Ok((0, typed_avro(ty, value)?))
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
                            "{value} cannot be encoded in a key column: a key's decimal is a plain \
                             Avro decimal, which has no NaN or Infinity"
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
mod tests {
    use super::*;
    use crate::decode::decode_record;
    use crate::table::{Column, TableName};

    fn column(name: &str, column_type: ColumnType, nullable: bool) -> Column {
        Column {
            name: name.into(),
            column_type,
            nullable,
            source_type: "test".into(),
        }
    }

    fn sample_table() -> TableSchema {
        TableSchema {
            name: TableName::new("public", "t"),
            columns: vec![
                column("id", ColumnType::Int64, false),
                column("small", ColumnType::Int16, true),
                column(
                    "price",
                    ColumnType::Decimal {
                        precision: 10,
                        scale: 2,
                    },
                    true,
                ),
                column("ratio", ColumnType::Float64, true),
                column("name", ColumnType::Text, true),
                column("blob", ColumnType::Bytes, true),
                column("day", ColumnType::Date, true),
                column("at", ColumnType::Timestamp, true),
                column("at tz", ColumnType::TimestampTz, true),
                column("uid", ColumnType::Uuid, true),
                column("flag", ColumnType::Bool, true),
            ],
            key_columns: vec![0],
        }
    }

    #[test]
    fn a_row_round_trips_through_avro() {
        let table = sample_table();
        let avro = TableAvro::new(&table, "kappa.public.t").unwrap();
        let row = vec![
            Value::Int(i64::MIN),
            Value::Int(-32768),
            Value::Decimal {
                unscaled: (-12345).into(),
                scale: 2,
            },
            Value::Float64(f64::NAN),
            Value::Text("héllo 🎉".into()),
            Value::Bytes(vec![0, 255, 7]),
            Value::Date(-719162),
            Value::Timestamp(1_700_000_000_123_456),
            Value::TimestampTz(-1),
            Value::Uuid(uuid::Uuid::from_u128(42)),
            Value::Null,
        ];
        let bytes = encode_row(&table, &avro, &row).unwrap();
        let decoded = decode_record(&avro.value_schema, &bytes, 7).unwrap();
        let names: Vec<&str> = decoded.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[8], "at_tz");
        let values: Vec<Value> = decoded.into_iter().map(|(_, v)| v).collect();
        assert_eq!(values, row);
    }

    #[test]
    fn refuses_values_that_do_not_fit() {
        let table = sample_table();
        let avro = TableAvro::new(&table, "kappa.public.t").unwrap();
        let mut row = vec![Value::Null; table.columns.len()];
        row[0] = Value::Int(1);
        row[1] = Value::Int(1 << 40);
        assert!(encode_row(&table, &avro, &row).is_err());
        row[1] = Value::Null;
        row[0] = Value::Null;
        let err = encode_row(&table, &avro, &row).unwrap_err().to_string();
        assert!(err.contains("column id"), "{err}");
    }

    fn extended_table() -> TableSchema {
        let price = ColumnType::Decimal {
            precision: 10,
            scale: 2,
        };
        TableSchema {
            name: TableName::new("public", "x"),
            columns: vec![
                column("id", price.clone(), false),
                column("price", price, true),
                column("cash", ColumnType::Money, true),
                column("at", ColumnType::Time, true),
                column("day", ColumnType::Date, true),
                column("ts", ColumnType::Timestamp, true),
                column("tstz", ColumnType::TimestampTz, true),
            ],
            key_columns: vec![0],
        }
    }

    #[test]
    fn specials_sentinels_time_and_money_round_trip() {
        let table = extended_table();
        let avro = TableAvro::new(&table, "kappa.public.x").unwrap();
        let fields: Json = serde_json::from_str(&avro.value_json).unwrap();
        let price = &fields["fields"][1]["type"];
        assert_eq!(price[0], "null");
        assert_eq!(price[1]["logicalType"], "decimal");
        assert_eq!(price[2], "string");
        assert_eq!(fields["fields"][3]["type"][1]["logicalType"], "time-micros");
        let key: Json = serde_json::from_str(&avro.key_json).unwrap();
        assert_eq!(key["fields"][0]["type"]["logicalType"], "decimal");
        let rows = [
            vec![
                Value::Decimal {
                    unscaled: 1.into(),
                    scale: 2,
                },
                Value::Text("NaN".into()),
                Value::Decimal {
                    unscaled: i64::MIN.into(),
                    scale: 2,
                },
                Value::Time(86_400_000_000),
                Value::Date(i32::MAX),
                Value::Timestamp(i64::MIN),
                Value::TimestampTz(i64::MAX),
            ],
            vec![
                Value::Decimal {
                    unscaled: (-99_999_999).into(),
                    scale: 2,
                },
                Value::Text("-Infinity".into()),
                Value::Decimal {
                    unscaled: i64::MAX.into(),
                    scale: 2,
                },
                Value::Time(0),
                Value::Date(i32::MIN),
                Value::Timestamp(-62_135_596_800_000_001),
                Value::TimestampTz(i64::MIN),
            ],
        ];
        for row in rows {
            let bytes = encode_row(&table, &avro, &row).unwrap();
            let decoded = decode_record(&avro.value_schema, &bytes, 1).unwrap();
            let values: Vec<Value> = decoded.into_iter().map(|(_, v)| v).collect();
            assert_eq!(values, row);
        }
    }

    #[test]
    fn a_decimal_refuses_other_text_and_specials_in_keys() {
        let table = extended_table();
        let avro = TableAvro::new(&table, "kappa.public.x").unwrap();
        let mut row = vec![Value::Null; table.columns.len()];
        row[0] = Value::Decimal {
            unscaled: 1.into(),
            scale: 2,
        };
        row[1] = Value::Text("1.5".into());
        let err = encode_row(&table, &avro, &row).unwrap_err().to_string();
        assert!(err.contains("column price"), "{err}");
        row[1] = Value::Null;
        let err = encode_key(&table, &avro, &[Value::Text("NaN".into())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("column id") && err.contains("key"), "{err}");
    }

    #[test]
    fn refuses_colliding_field_names() {
        let mut table = sample_table();
        table.columns.push(column("at-tz", ColumnType::Text, true));
        let err = TableAvro::new(&table, "kappa.public.t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("collides"), "{err}");
    }
}
