//! Confluent framing + Avro datum decoding as the rebuild does: a table
//! shape from the fuzz input gives the key and value schemas kappa
//! registers; arbitrary record bytes are unframed and decoded by the direct
//! decoder (`DatumPlan`, as written and resolved to a newer shape with one
//! more column) and by the general path (`decode_value`). Both must refuse
//! or decode without a panic, and agree when both decode.
#![no_main]

use arbitrary::Arbitrary;
use kappa_fuzz::{table, ArbColumn};
use kappa_schemas::framing::unframe;
use kappa_schemas::{Column, ColumnType, TableAvro, Value};
use kappa_materialize::datum::DatumPlan;
use kappa_materialize::resolve::{decode_value, StoredSchema};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    columns: Vec<ArbColumn>,
    /// Decode as the value (else the key) schema.
    value: bool,
    record: &'a [u8],
}

fn stored(id: u32, schema: &apache_avro::Schema, text: &str) -> StoredSchema {
    StoredSchema {
        id,
        schema: Arc::new(schema.clone()),
        text: Arc::from(text),
    }
}

/// The direct decoder and the general path give the same values (NaN
/// compared by its bits).
fn same(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Value::Float32(x), Value::Float32(y)) => x.to_bits() == y.to_bits(),
            (Value::Float64(x), Value::Float64(y)) => x.to_bits() == y.to_bits(),
            _ => x == y,
        })
}

fuzz_target!(|input: Input<'_>| {
    if input.columns.is_empty() {
        return;
    }
    let schema = table(&input.columns);
    let Ok(avro) = TableAvro::new(&schema, "fuzz.t") else {
        return;
    };
    let (writer, writer_json) = match input.value {
        true => (&avro.value_schema, &avro.value_json),
        false => (&avro.key_schema, &avro.key_json),
    };
    let Ok((_id, datum)) = unframe(input.record) else {
        return;
    };
    let writer = stored(1, writer, writer_json);
    let general = decode_value(&writer, &writer, datum);
    if let Some(plan) = DatumPlan::new(&writer.schema, None) {
        let direct = plan.decode(datum);
        let checked = plan.check(datum);
        assert_eq!(direct.is_ok(), checked.is_ok(), "decode and check disagree");
        match (&direct, &general) {
            (Ok(d), Ok(g)) => {
                let g: Vec<Value> = g.iter().map(|(_, v)| v.clone()).collect();
                assert!(same(d, &g), "direct {d:?} != general {g:?}");
            }
            (Ok(d), Err(e)) => panic!("direct decoder accepts {d:?}, general path refuses: {e}"),
            (Err(e), Ok(g)) => panic!("direct decoder refuses ({e}), general path accepts {g:?}"),
            (Err(_), Err(_)) => {}
        }
    }
    if !input.value {
        return;
    }
    // A newer shape with one more nullable column: old records resolve to it.
    let mut newer = schema.clone();
    newer.columns.push(Column {
        name: "added".into(),
        column_type: ColumnType::Text,
        nullable: true,
        source_type: "fuzz".into(),
    });
    let Ok(newer_avro) = TableAvro::new(&newer, "fuzz.t") else {
        return;
    };
    let reader = stored(2, &newer_avro.value_schema, &newer_avro.value_json);
    let general = decode_value(&writer, &reader, datum);
    if let Some(plan) = DatumPlan::new(&writer.schema, Some(&reader.schema)) {
        let direct = plan.decode(datum);
        match (&direct, &general) {
            (Ok(d), Ok(g)) => {
                let g: Vec<Value> = g.iter().map(|(_, v)| v.clone()).collect();
                assert!(same(d, &g), "resolved: direct {d:?} != general {g:?}");
            }
            (Ok(d), Err(e)) => panic!("resolved: direct accepts {d:?}, general refuses: {e}"),
            (Err(e), Ok(g)) => panic!("resolved: direct refuses ({e}), general accepts {g:?}"),
            (Err(_), Err(_)) => {}
        }
    }
});
