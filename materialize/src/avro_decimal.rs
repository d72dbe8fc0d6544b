//! A work-around for apache-avro 0.21's schema resolution of decimals:
//! `Value::resolve` refuses a `bytes` decimal whose two's-complement bytes
//! are *fewer* than its precision could need ("Precision 10 too small to
//! hold decimal values with 1 bytes" for 1.50 in a `decimal(10,2)`; the
//! comparison in `resolve_decimal` is the wrong way round), so resolving an
//! older record to the latest schema failed for almost every decimal.
//! Sign-extending each decimal to the width its reader precision allows
//! keeps the value and passes the check. Found by `materialize/tests/prop_datum.rs`.

use apache_avro::schema::{DecimalSchema, RecordSchema};
use apache_avro::types::Value as Avro;
use apache_avro::{Decimal, Schema};

/// `value` (a record written for any schema) with every decimal widened for
/// the `reader` field it resolves to.
pub fn widen_for(value: Avro, reader: &Schema) -> Avro {
    match (value, reader) {
        (Avro::Record(fields), Schema::Record(RecordSchema { fields: schema, .. })) => {
            Avro::Record(
                fields
                    .into_iter()
                    .map(|(name, v)| match schema.iter().find(|f| f.name == name) {
                        Some(field) => (name, widen_for(v, &field.schema)),
                        None => (name, v),
                    })
                    .collect(),
            )
        }
        (Avro::Union(i, inner), Schema::Union(union)) => {
            let decimal = union
                .variants()
                .iter()
                .find(|s| matches!(s, Schema::Decimal(_)));
            match decimal {
                Some(schema) => Avro::Union(i, Box::new(widen_for(*inner, schema))),
                None => Avro::Union(i, inner),
            }
        }
        (Avro::Union(i, inner), schema @ Schema::Decimal(_)) => {
            Avro::Union(i, Box::new(widen_for(*inner, schema)))
        }
        (Avro::Decimal(d), Schema::Decimal(DecimalSchema { precision, .. })) => {
            match Vec::<u8>::try_from(&d) {
                Ok(bytes) => Avro::Decimal(Decimal::from(sign_extend(bytes, width(*precision)))),
                Err(_) => Avro::Decimal(d),
            }
        }
        (value, _) => value,
    }
}

/// The fewest bytes apache-avro accepts for `precision` digits (its own
/// formula; from 129 bytes on it accepts any precision).
fn width(precision: usize) -> usize {
    (1..129)
        .find(|&len: &usize| {
            let bits = i32::try_from(8 * len - 1).unwrap_or(i32::MAX);
            (2.0_f64.powi(bits) - 1.0).log10().floor() >= precision as f64
        })
        .unwrap_or(129)
}

fn sign_extend(bytes: Vec<u8>, len: usize) -> Vec<u8> {
    if bytes.len() >= len {
        return bytes;
    }
    let fill = match bytes.first() {
        Some(b) if b & 0x80 != 0 => 0xFF,
        _ => 0,
    };
    let mut out = vec![fill; len - bytes.len()];
    out.extend_from_slice(&bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{decode_value, StoredSchema};
    use kappa_schemas::Value;
    use std::sync::Arc;

    const V1: &str = r#"{"type":"record","name":"Value","fields":[{"name":"id","type":"long"},{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},{"name":"n","type":["null",{"type":"bytes","logicalType":"decimal","precision":30,"scale":0},"string"],"default":null}]}"#;
    const V2: &str = r#"{"type":"record","name":"Value","fields":[{"name":"id","type":"long"},{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},{"name":"n","type":["null",{"type":"bytes","logicalType":"decimal","precision":30,"scale":0},"string"],"default":null},{"name":"b","type":["null","int"],"default":null}]}"#;

    fn stored(id: u32, text: &str) -> StoredSchema {
        StoredSchema {
            id,
            schema: Arc::new(Schema::parse_str(text).unwrap()),
            text: Arc::from(text),
        }
    }

    #[test]
    fn small_decimals_resolve_to_a_newer_schema() {
        let (v1, v2) = (stored(1, V1), stored(2, V2));
        for (d, n) in [(150i64, -3i64), (-1, 0), (0, 99_999), (-128, -129)] {
            let record = Avro::Record(vec![
                ("id".into(), Avro::Long(7)),
                (
                    "d".into(),
                    Avro::Decimal(Decimal::from(
                        num_bigint::BigInt::from(d).to_signed_bytes_be(),
                    )),
                ),
                (
                    "n".into(),
                    Avro::Union(
                        1,
                        Box::new(Avro::Decimal(Decimal::from(
                            num_bigint::BigInt::from(n).to_signed_bytes_be(),
                        ))),
                    ),
                ),
            ]);
            let datum = apache_avro::to_avro_datum(&v1.schema, record).unwrap();
            let values: Vec<Value> = decode_value(&v1, &v2, &datum)
                .unwrap()
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            let decimal = |unscaled: i64, scale| Value::Decimal {
                unscaled: unscaled.into(),
                scale,
            };
            assert_eq!(
                values,
                vec![Value::Int(7), decimal(d, 2), decimal(n, 0), Value::Null]
            );
        }
    }

    #[test]
    fn sign_extension_keeps_the_value() {
        for v in [0i64, 1, -1, 127, 128, -128, -129, i64::MAX, i64::MIN] {
            let bytes = num_bigint::BigInt::from(v).to_signed_bytes_be();
            let wide = sign_extend(bytes, 12);
            assert_eq!(wide.len(), 12);
            assert_eq!(num_bigint::BigInt::from_signed_bytes_be(&wide), v.into());
        }
        assert_eq!(width(1), 1);
        assert_eq!(width(10), 5);
        assert_eq!(width(1000), 129);
    }
}
