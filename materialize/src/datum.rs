//! A direct Avro datum decoder for the record shapes kappa writes: bytes
//! straight to [`Value`]s, in one pass, with the writer → reader resolution
//! planned once per schema pair.
//!
//! The general path (`apache-avro`: decode, re-encode to prove the datum
//! canonical, resolve, re-encode, decode again into kappa values) costs
//! several passes and allocations per field; a rebuild decodes every record
//! of a topic, so it is where a rebuild spends its CPU. This decoder is as
//! strict as that path: the datum must be consumed exactly (a truncated
//! datum is an error, not a row of NULLs; trailing bytes are an error),
//! varints must be minimal, booleans 0 or 1, ints in range, strings UTF-8,
//! UUIDs in their canonical text form — the encodings `apache-avro` would
//! reproduce byte for byte. A field whose reader type is a union holding
//! every writer branch (a `string` branch added for out-of-range values,
//! `T` → `["null", T]`) resolves without a change of value. Shapes it does
//! not know (arrays, maps, enums, fixed, named references, type promotions,
//! non-null defaults, aliases) are not planned: [`DatumPlan::new`] returns `None` and the caller keeps
//! the general path.

use apache_avro::schema::{RecordSchema, Schema as AvroSchema};
use kappa_schemas::Value;
use num_bigint::BigInt;

/// How one field's bytes become a value.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Uuid,
    Date,
    TimeMicros,
    TimestampMicros,
    LocalTimestampMicros,
    Decimal { scale: u32 },
    Union(Vec<Node>),
}

impl Node {
    fn of(schema: &AvroSchema) -> Option<Node> {
        Some(match schema {
            AvroSchema::Null => Node::Null,
            AvroSchema::Boolean => Node::Boolean,
            AvroSchema::Int => Node::Int,
            AvroSchema::Long => Node::Long,
            AvroSchema::Float => Node::Float,
            AvroSchema::Double => Node::Double,
            AvroSchema::Bytes => Node::Bytes,
            AvroSchema::String => Node::String,
            AvroSchema::Uuid => Node::Uuid,
            AvroSchema::Date => Node::Date,
            AvroSchema::TimeMicros => Node::TimeMicros,
            AvroSchema::TimestampMicros => Node::TimestampMicros,
            AvroSchema::LocalTimestampMicros => Node::LocalTimestampMicros,
            AvroSchema::Decimal(d) if matches!(*d.inner, AvroSchema::Bytes) => Node::Decimal {
                scale: u32::try_from(d.scale).ok()?,
            },
            AvroSchema::Union(union) => Node::Union(
                union
                    .variants()
                    .iter()
                    .map(Node::of)
                    .collect::<Option<Vec<_>>>()?,
            ),
            _ => return None,
        })
    }
}

/// What becomes of one writer field.
#[derive(Debug, Clone)]
struct WriterField {
    node: Node,
    /// Position among the output values; `None`: read and dropped (the
    /// reader has no such field).
    slot: Option<usize>,
}

/// A planned decoding of one writer schema, optionally resolved to a reader
/// schema: output values are in the reader's field order.
#[derive(Debug, Clone)]
pub struct DatumPlan {
    fields: Vec<WriterField>,
    /// Output width (the reader's field count).
    width: usize,
}

fn record(schema: &AvroSchema) -> Option<&RecordSchema> {
    match schema {
        AvroSchema::Record(record) => Some(record),
        _ => None,
    }
}

impl DatumPlan {
    /// Plans decoding `writer` datums as `reader` (`None`: as written).
    /// `None` when either schema has a shape this decoder does not handle.
    pub fn new(writer: &AvroSchema, reader: Option<&AvroSchema>) -> Option<Self> {
        let writer = record(writer)?;
        let nodes: Vec<Node> = writer
            .fields
            .iter()
            .map(|f| Node::of(&f.schema))
            .collect::<Option<_>>()?;
        let Some(reader) = reader else {
            let width = nodes.len();
            let fields = nodes
                .into_iter()
                .enumerate()
                .map(|(i, node)| WriterField {
                    node,
                    slot: Some(i),
                })
                .collect();
            return Some(Self { fields, width });
        };
        let reader = record(reader)?;
        let mut fields: Vec<WriterField> = nodes
            .into_iter()
            .map(|node| WriterField { node, slot: None })
            .collect();
        for (slot, field) in reader.fields.iter().enumerate() {
            if field.aliases.as_ref().is_some_and(|a| !a.is_empty()) {
                return None;
            }
            match writer.fields.iter().position(|w| w.name == field.name) {
                // Same name: identical types, or a reader union holding every
                // writer branch (no promotions here).
                Some(w) => {
                    if !reads(&Node::of(&field.schema)?, &fields[w].node) {
                        return None;
                    }
                    fields[w].slot = Some(slot);
                }
                // A field the writer lacks: only a nullable one whose
                // default is null (the columns kappa adds).
                None => {
                    let nullable = matches!(&field.schema, AvroSchema::Union(u)
                        if matches!(u.variants().first(), Some(AvroSchema::Null)));
                    if !nullable || field.default != Some(serde_json::Value::Null) {
                        return None;
                    }
                }
            }
        }
        Some(Self {
            fields,
            width: reader.fields.len(),
        })
    }

    /// Decodes one datum into the output field order; fields the writer
    /// lacks are `Null`.
    pub fn decode(&self, datum: &[u8]) -> Result<Vec<Value>, String> {
        let mut values = vec![Value::Null; self.width];
        self.walk(datum, |slot, value| values[slot] = value)?;
        Ok(values)
    }

    /// Checks a datum as strictly as [`DatumPlan::decode`] without building
    /// its values (no allocation): for a target that stores the bytes.
    pub fn check(&self, datum: &[u8]) -> Result<(), String> {
        let mut input = Input {
            bytes: datum,
            keep: false,
        };
        for field in &self.fields {
            input.value(&field.node)?;
        }
        input.end()
    }

    fn walk(&self, datum: &[u8], mut out: impl FnMut(usize, Value)) -> Result<(), String> {
        let mut input = Input {
            bytes: datum,
            keep: true,
        };
        for field in &self.fields {
            input.keep = field.slot.is_some();
            let value = input.value(&field.node)?;
            if let Some(slot) = field.slot {
                out(slot, value);
            }
        }
        input.end()
    }
}

/// Whether a `reader` field reads every `writer` datum as the same value:
/// the same type, or a union with each writer branch among its own (a
/// branch's value does not depend on its index, so nothing is converted).
fn reads(reader: &Node, writer: &Node) -> bool {
    match (reader, writer) {
        (reader, writer) if reader == writer => true,
        (Node::Union(readers), Node::Union(writers)) => writers.iter().all(|w| readers.contains(w)),
        (Node::Union(readers), writer) => readers.contains(writer),
        _ => false,
    }
}

struct Input<'a> {
    bytes: &'a [u8],
    /// Build values (`false`: only check them, every value is `Null`).
    keep: bool,
}

impl<'a> Input<'a> {
    fn end(&self) -> Result<(), String> {
        if !self.bytes.is_empty() {
            return Err(format!(
                "{} trailing bytes after the record",
                self.bytes.len()
            ));
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err(format!(
                "the datum ends early: {n} bytes needed, {} left",
                self.bytes.len()
            ));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// A zig-zag varint, in its minimal encoding.
    fn long(&mut self) -> Result<i64, String> {
        let mut z: u64 = 0;
        for i in 0..10 {
            let Some((&byte, rest)) = self.bytes.split_first() else {
                return Err("the datum ends inside a number".into());
            };
            self.bytes = rest;
            if i == 9 && byte > 1 {
                return Err("a number overflows 64 bits".into());
            }
            z |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return Err("a number is not minimally encoded".into());
                }
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err("a number is longer than 10 bytes".into())
    }

    fn int(&mut self) -> Result<i32, String> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| format!("int value {v} out of range"))
    }

    fn length(&mut self) -> Result<usize, String> {
        let n = self.long()?;
        usize::try_from(n).map_err(|_| format!("negative length {n}"))
    }

    fn value(&mut self, node: &Node) -> Result<Value, String> {
        Ok(match node {
            Node::Null => Value::Null,
            Node::Boolean => match self.take(1)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("boolean byte {b}")),
            },
            Node::Int => Value::Int(self.int()?.into()),
            Node::Long => Value::Int(self.long()?),
            Node::Float => {
                let b = self.take(4)?;
                Value::Float32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            Node::Double => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Float64(f64::from_le_bytes(a))
            }
            Node::Bytes => {
                let n = self.length()?;
                let bytes = self.take(n)?;
                if !self.keep {
                    return Ok(Value::Null);
                }
                Value::Bytes(bytes.to_vec())
            }
            Node::String => {
                let text = self.text()?;
                if !self.keep {
                    return Ok(Value::Null);
                }
                Value::Text(text.to_string())
            }
            Node::Uuid => {
                let text = self.text()?;
                let uuid =
                    uuid::Uuid::parse_str(text).map_err(|e| format!("uuid {text:?}: {e}"))?;
                if uuid
                    .hyphenated()
                    .encode_lower(&mut uuid::Uuid::encode_buffer())
                    != text
                {
                    return Err(format!("uuid {text:?} is not in canonical form"));
                }
                Value::Uuid(uuid)
            }
            Node::Date => Value::Date(self.int()?),
            Node::TimeMicros => Value::Time(self.long()?),
            Node::TimestampMicros => Value::TimestampTz(self.long()?),
            Node::LocalTimestampMicros => Value::Timestamp(self.long()?),
            Node::Decimal { scale } => {
                let n = self.length()?;
                if n == 0 {
                    return Err("a decimal has no bytes".into());
                }
                let bytes = self.take(n)?;
                if !self.keep {
                    return Ok(Value::Null);
                }
                Value::Decimal {
                    unscaled: BigInt::from_signed_bytes_be(bytes),
                    scale: *scale,
                }
            }
            Node::Union(variants) => {
                let index = self.long()?;
                let variant = usize::try_from(index)
                    .ok()
                    .and_then(|i| variants.get(i))
                    .ok_or_else(|| format!("union index {index} out of range"))?;
                self.value(variant)?
            }
        })
    }

    fn text(&mut self) -> Result<&'a str, String> {
        let n = self.length()?;
        std::str::from_utf8(self.take(n)?).map_err(|e| format!("a string is not UTF-8: {e}"))
    }
}

#[cfg(test)]
#[path = "datum_tests.rs"]
mod tests;
