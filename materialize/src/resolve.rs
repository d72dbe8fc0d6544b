//! Records → typed rows: every value decoded with the schema it was written
//! with and resolved to one reader schema (the subject's latest), so a topic
//! holding records from before and after a column was added rebuilds into one
//! table shape; a field the writer did not have takes the reader's default.
//!
//! Decoding runs on the replay's worker threads (plain threads, not async
//! tasks): each keeps its own schema cache and asks the registry only for an
//! id it has not seen.

use crate::datum::DatumPlan;
use kappa_schemas::decode::decode_record;
use kappa_schemas::framing::unframe;
use kappa_schemas::{AvroSchema, Registry, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// One schema as the registry has it: parsed, and its JSON text.
#[derive(Clone)]
pub struct StoredSchema {
    pub id: u32,
    pub schema: Arc<AvroSchema>,
    pub text: Arc<str>,
}

/// Why a record cannot be part of the table. The replay reports it with the
/// record's topic, partition and offset.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvalidRecord {
    #[error("record has no key (a table topic keys every record by primary key)")]
    NullKey,
    #[error("{part} is not Confluent-framed: {reason}")]
    NotFramed { part: &'static str, reason: String },
    #[error("{part} refers to schema id {id}, which the registry does not know")]
    UnknownSchema { part: &'static str, id: u32 },
    #[error("{part} cannot be decoded with schema id {id}: {reason}")]
    Undecodable {
        part: &'static str,
        id: u32,
        reason: String,
    },
}

/// What a record means for the table.
#[derive(Debug, Clone)]
pub struct DecodedRecord {
    /// The canonical order-preserving key encoding (see [`crate::order_key`]).
    pub ord: Vec<u8>,
    /// The key values, in key-column order.
    pub key: Vec<Value>,
    /// The row in reader-schema field order; `None` for a tombstone. Empty
    /// when the decoder only checks values
    /// ([`RecordDecoder::checking_values_only`]).
    pub row: Option<Vec<Value>>,
    pub key_schema_id: u32,
    pub value_schema_id: Option<u32>,
}

/// The latest schema registered under `subject` (e.g. `<topic>-value`).
pub async fn latest_schema(registry: &Registry, subject: &str) -> Result<StoredSchema, String> {
    let (id, text) = registry.latest(subject).await.map_err(|e| e.to_string())?;
    let schema = AvroSchema::parse_str(&text)
        .map_err(|e| format!("subject {subject}: latest schema is not valid Avro: {e}"))?;
    Ok(StoredSchema {
        id,
        schema: Arc::new(schema),
        text: text.as_str().into(),
    })
}

/// Decodes records of one topic; one per worker thread.
pub struct RecordDecoder {
    registry: Registry,
    runtime: tokio::runtime::Handle,
    reader: StoredSchema,
    known: HashMap<u32, Option<StoredSchema>>,
    /// Direct decoders per (writer id, resolved to the reader?); `None`:
    /// a shape the direct decoder leaves to the general path.
    plans: HashMap<(u32, bool), Option<DatumPlan>>,
    /// Build row values (`false`: only check values, rows come back empty).
    rows: bool,
}

impl RecordDecoder {
    /// `runtime` runs registry look-ups; call [`RecordDecoder::decode`] only
    /// from threads outside it (replay workers).
    pub fn new(registry: Registry, runtime: tokio::runtime::Handle, reader: StoredSchema) -> Self {
        let mut known = HashMap::new();
        known.insert(reader.id, Some(reader.clone()));
        Self {
            registry,
            runtime,
            reader,
            known,
            plans: HashMap::new(),
            rows: true,
        }
    }

    /// Values are checked as strictly, but not built: every live record's
    /// `row` is empty. For a target that stores the record bytes (SQLite),
    /// this saves building values nobody reads.
    pub fn checking_values_only(mut self) -> Self {
        self.rows = false;
        self
    }

    /// The reader schema rows are resolved to.
    pub fn reader(&self) -> &StoredSchema {
        &self.reader
    }

    /// Every schema id seen so far (`None`: unknown to the registry).
    pub fn schemas(&self) -> impl Iterator<Item = &StoredSchema> {
        self.known.values().flatten()
    }

    /// Looks schema `id` up in the registry unless already known (then
    /// `known[id]` is `None` for an id the registry does not have). `Err` only
    /// for a registry that cannot be asked.
    fn learn(&mut self, id: u32) -> Result<(), String> {
        if self.known.contains_key(&id) {
            return Ok(());
        }
        let fetched = match self.runtime.block_on(self.registry.schema(id)) {
            Ok((schema, text)) => Some(StoredSchema { id, schema, text }),
            Err(kappa_schemas::SchemaError::UnknownSchemaId { .. }) => None,
            Err(e) => return Err(e.to_string()),
        };
        self.known.insert(id, fetched);
        Ok(())
    }

    /// Decodes one record. The outer `Err` is a registry failure (fatal for
    /// the replay); the inner one a record that cannot be part of the table.
    pub fn decode(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<Result<DecodedRecord, InvalidRecord>, String> {
        let Some(key) = key else {
            return Ok(Err(InvalidRecord::NullKey));
        };
        let (key_schema_id, key_values) = match self.decode_part("key", key, false, true)? {
            Ok(decoded) => decoded,
            Err(invalid) => return Ok(Err(invalid)),
        };
        let (value_schema_id, row) = match value {
            None => (None, None),
            Some(value) => match self.decode_part("value", value, true, self.rows)? {
                Ok((id, row)) => (Some(id), Some(row)),
                Err(invalid) => return Ok(Err(invalid)),
            },
        };
        Ok(Ok(DecodedRecord {
            ord: crate::order_key::encode_key(&key_values),
            key: key_values,
            row,
            key_schema_id,
            value_schema_id,
        }))
    }

    fn decode_part(
        &mut self,
        part: &'static str,
        bytes: &[u8],
        resolve: bool,
        build: bool,
    ) -> Result<Result<(u32, Vec<Value>), InvalidRecord>, String> {
        let (id, datum) = match unframe(bytes) {
            Ok(split) => split,
            Err(e) => {
                return Ok(Err(InvalidRecord::NotFramed {
                    part,
                    reason: e.to_string(),
                }))
            }
        };
        // Borrowed, not cloned: every record passes here, on every worker.
        self.learn(id)?;
        let Some(Some(writer)) = self.known.get(&id) else {
            return Ok(Err(InvalidRecord::UnknownSchema { part, id }));
        };
        let resolve = resolve && id != self.reader.id;
        let reader = resolve.then_some(self.reader.schema.as_ref());
        let plan = self
            .plans
            .entry((id, resolve))
            .or_insert_with(|| DatumPlan::new(&writer.schema, reader));
        let decoded = match plan {
            Some(plan) if build => plan.decode(datum),
            Some(plan) => plan.check(datum).map(|()| Vec::new()),
            None => decode_checked(&writer.schema, id, reader, datum)
                .map(|fields| fields.into_iter().map(|(_, v)| v).collect()),
        };
        Ok(decoded
            .map(|values| (id, values))
            .map_err(|reason| InvalidRecord::Undecodable { part, id, reason }))
    }
}

/// Decodes `datum` written with `writer`, as `reader` when given (Avro
/// schema resolution: fields matched by name, missing ones take the reader's
/// default). The datum must be exactly one canonical encoding: apache-avro
/// reads a union at the end of the input as `null`, so a truncated datum
/// would otherwise pass as a row of NULLs — re-encoding the decoded value
/// and comparing catches that (and any trailing bytes).
fn decode_checked(
    writer: &AvroSchema,
    writer_id: u32,
    reader: Option<&AvroSchema>,
    datum: &[u8],
) -> Result<Vec<(String, Value)>, String> {
    let mut rest = datum;
    let value = apache_avro::from_avro_datum(writer, &mut rest, None).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} trailing bytes after the record", rest.len()));
    }
    let canonical = apache_avro::to_avro_datum(writer, value.clone()).map_err(|e| e.to_string())?;
    if canonical != datum {
        return Err(format!(
            "the datum is not a complete record ({} bytes, its decoded value encodes to {})",
            datum.len(),
            canonical.len()
        ));
    }
    match reader {
        None => decode_record(writer, datum, writer_id).map_err(|e| e.to_string()),
        Some(reader) => {
            let resolved = crate::avro_decimal::widen_for(value, reader)
                .resolve(reader)
                .map_err(|e| format!("resolving to the latest schema: {e}"))?;
            let reencoded =
                apache_avro::to_avro_datum(reader, resolved).map_err(|e| e.to_string())?;
            decode_record(reader, &reencoded, writer_id).map_err(|e| e.to_string())
        }
    }
}

/// Decodes a value datum written with `writer` as `reader` (both as stored
/// in a rebuilt table), in the reader's field order.
pub fn decode_value(
    writer: &StoredSchema,
    reader: &StoredSchema,
    datum: &[u8],
) -> Result<Vec<(String, Value)>, String> {
    let reader = (writer.id != reader.id).then_some(reader.schema.as_ref());
    decode_checked(&writer.schema, writer.id, reader, datum)
}

/// Field names of a record schema, in order.
pub fn field_names(schema: &AvroSchema) -> Vec<String> {
    match schema {
        AvroSchema::Record(record) => record.fields.iter().map(|f| f.name.clone()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"Value","fields":[{"name":"id","type":"long"},{"name":"a","type":["null","string"],"default":null}]}"#;
    const V2: &str = r#"{"type":"record","name":"Value","fields":[{"name":"id","type":"long"},{"name":"a","type":["null","string"],"default":null},{"name":"b","type":["null","int"],"default":null}]}"#;

    #[test]
    fn an_older_record_resolves_to_the_newer_shape_with_defaults() {
        let v1 = AvroSchema::parse_str(V1).unwrap();
        let v2 = AvroSchema::parse_str(V2).unwrap();
        let record = apache_avro::types::Value::Record(vec![
            ("id".into(), apache_avro::types::Value::Long(7)),
            (
                "a".into(),
                apache_avro::types::Value::Union(
                    1,
                    Box::new(apache_avro::types::Value::String("x".into())),
                ),
            ),
        ]);
        let datum = apache_avro::to_avro_datum(&v1, record).unwrap();
        let fields = decode_checked(&v1, 1, Some(&v2), &datum).unwrap();
        let values: Vec<Value> = fields.into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            values,
            vec![Value::Int(7), Value::Text("x".into()), Value::Null]
        );
        let truncated = decode_checked(&v1, 1, Some(&v2), &datum[..1]);
        assert!(truncated.is_err(), "{truncated:?}");
        assert!(decode_checked(&v1, 1, None, &datum[..datum.len() - 1]).is_err());
        let mut longer = datum.clone();
        longer.push(0);
        assert!(decode_checked(&v1, 1, None, &longer).is_err());
        assert_eq!(field_names(&v2), vec!["id", "a", "b"]);
    }
}
