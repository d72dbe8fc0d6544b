//! Property: every kappa value of every column type survives value → Avro
//! datum → value exactly, in the value record (nullable or not) and in the
//! key record, through the registry schemas `TableAvro` builds.

mod prop_strategy;

use kappa_schemas::avro::{encode_key, encode_row};
use kappa_schemas::decode::decode_record;
use kappa_schemas::{TableAvro, Value};
use prop_strategy::table_and_row;
use proptest::prelude::*;

fn values(fields: Vec<(String, Value)>) -> Vec<Value> {
    fields.into_iter().map(|(_, v)| v).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_value_round_trips_through_avro((table, row) in table_and_row()) {
        let avro = TableAvro::new(&table, "prop.t").expect("schemas");
        let datum = encode_row(&table, &avro, &row).expect("encode row");
        let decoded = values(decode_record(&avro.value_schema, &datum, 1).expect("decode row"));
        prop_assert_eq!(&decoded, &row);

        let key: Vec<Value> = table.key_columns.iter().map(|&i| row[i].clone()).collect();
        let datum = encode_key(&table, &avro, &key).expect("encode key");
        let decoded = values(decode_record(&avro.key_schema, &datum, 1).expect("decode key"));
        prop_assert_eq!(&decoded, &key);
    }
}
