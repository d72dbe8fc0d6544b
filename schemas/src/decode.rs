//! Avro datums → typed values, for the materializer and `verify`.

use crate::error::SchemaError;
use crate::value::Value;
use apache_avro::schema::{RecordSchema, UnionSchema};
use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use num_bigint::BigInt;

/// Decodes a record datum written with `schema` into `(field name, value)`
/// pairs in the writer's field order. `schema_id` only labels errors.
pub fn decode_record(
    schema: &Schema,
    datum: &[u8],
    schema_id: u32,
) -> Result<Vec<(String, Value)>, SchemaError> {
    let err = |reason: String| SchemaError::Decode { schema_id, reason };
    let mut reader = datum;
    let avro =
        apache_avro::from_avro_datum(schema, &mut reader, None).map_err(|e| err(e.to_string()))?;
    if !reader.is_empty() {
        return Err(err(format!(
            "{} trailing bytes after the record",
            reader.len()
        )));
    }
    let Schema::Record(RecordSchema { fields, .. }) = schema else {
        return Err(err("writer schema is not a record".into()));
    };
    let Avro::Record(values) = avro else {
        return Err(err("datum is not a record".into()));
    };
    fields
        .iter()
        .zip(values)
        .map(|(field, (name, value))| Ok((name, from_avro(&field.schema, value).map_err(&err)?)))
        .collect()
}

fn from_avro(schema: &Schema, value: Avro) -> Result<Value, String> {
    Ok(match value {
        Avro::Null => Value::Null,
        Avro::Union(index, inner) => {
            let Schema::Union(union) = schema else {
                return Err("union value for a non-union field".into());
            };
            let variant = variant(union, index)?;
            from_avro(variant, *inner)?
        }
        Avro::Boolean(v) => Value::Bool(v),
        Avro::Int(v) => Value::Int(v.into()),
        Avro::Long(v) => Value::Int(v),
        Avro::Float(v) => Value::Float32(v),
        Avro::Double(v) => Value::Float64(v),
        Avro::String(v) => Value::Text(v),
        Avro::Bytes(v) => Value::Bytes(v),
        Avro::Date(v) => Value::Date(v),
        Avro::TimeMicros(v) => Value::Time(v),
        Avro::LocalTimestampMicros(v) => Value::Timestamp(v),
        Avro::TimestampMicros(v) => Value::TimestampTz(v),
        Avro::Uuid(v) => Value::Uuid(v),
        Avro::Decimal(d) => {
            let Schema::Decimal(decimal) = schema else {
                return Err("decimal value for a non-decimal field".into());
            };
            let bytes: Vec<u8> = Vec::try_from(&d).map_err(|e| e.to_string())?;
            Value::Decimal {
                unscaled: BigInt::from_signed_bytes_be(&bytes),
                scale: decimal.scale as u32,
            }
        }
        other => return Err(format!("unsupported Avro value {other:?}")),
    })
}

fn variant(union: &UnionSchema, index: u32) -> Result<&Schema, String> {
    union
        .variants()
        .get(index as usize)
        .ok_or_else(|| format!("union index {index} out of range"))
}
