//! Properties of the rebuild's record decoding: a row kappa encoded decodes
//! to the same values through the direct decoder (`DatumPlan`) and through
//! the general path (`decode_value`), as written and resolved to a newer
//! shape with one more column; any truncation of it is refused by both.

#[path = "../../schemas/tests/prop_strategy/mod.rs"]
mod prop_strategy;

use kappa_materialize::datum::DatumPlan;
use kappa_materialize::resolve::{decode_value, StoredSchema};
use kappa_schemas::avro::encode_row;
use kappa_schemas::framing::{frame, unframe};
use kappa_schemas::{Column, ColumnType, TableAvro, Value};
use prop_strategy::table_and_row;
use proptest::prelude::*;
use std::sync::Arc;

fn stored(id: u32, avro: &TableAvro) -> StoredSchema {
    StoredSchema {
        id,
        schema: Arc::new(avro.value_schema.clone()),
        text: Arc::from(avro.value_json.as_str()),
    }
}

fn values(fields: Vec<(String, Value)>) -> Vec<Value> {
    fields.into_iter().map(|(_, v)| v).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn a_row_decodes_to_itself_on_both_paths((table, row) in table_and_row(), cut in any::<prop::sample::Index>()) {
        let avro = TableAvro::new(&table, "prop.t").expect("schemas");
        let datum = encode_row(&table, &avro, &row).expect("encode");
        let framed = frame(1, &datum);
        let (id, datum) = unframe(&framed).expect("framed");
        prop_assert_eq!(id, 1);
        let writer = stored(1, &avro);

        let plan = DatumPlan::new(&avro.value_schema, None).expect("kappa's shapes are planned");
        prop_assert_eq!(&plan.decode(datum).expect("direct"), &row);
        prop_assert!(plan.check(datum).is_ok());
        prop_assert_eq!(&values(decode_value(&writer, &writer, datum).expect("general")), &row);

        let mut newer = table.clone();
        newer.columns.push(Column {
            name: "added".into(),
            column_type: ColumnType::Text,
            nullable: true,
            source_type: "text".into(),
        });
        let newer_avro = TableAvro::new(&newer, "prop.t").expect("newer schemas");
        let reader = stored(2, &newer_avro);
        let mut expected = row.clone();
        expected.push(Value::Null);
        let resolved = DatumPlan::new(&avro.value_schema, Some(&newer_avro.value_schema))
            .expect("an added nullable column is planned");
        prop_assert_eq!(&resolved.decode(datum).expect("direct, resolved"), &expected);
        prop_assert_eq!(&values(decode_value(&writer, &reader, datum).expect("general, resolved")), &expected);

        let cut = cut.index(datum.len());
        let short = &datum[..cut];
        prop_assert!(plan.decode(short).is_err(), "direct decoder took {} of {} bytes", cut, datum.len());
        prop_assert!(plan.check(short).is_err());
        prop_assert!(decode_value(&writer, &writer, short).is_err(), "general path took {} of {} bytes", cut, datum.len());
        let mut long = datum.to_vec();
        long.push(0);
        prop_assert!(plan.decode(&long).is_err());
        prop_assert!(decode_value(&writer, &writer, &long).is_err());
    }
}
