//! CPU cost per record of decoding a value datum of the rebuild benchmark's
//! shape (bigint, text, numeric(12,2), timestamptz, boolean), without a
//! broker: the general apache-avro path (decode, re-encode to prove the datum
//! canonical, decode into kappa values) against the direct decoder, building
//! values and only checking them.
//! `cargo run --release -p kappa-materialize --example decode_cost [RECORDS]`

use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use kappa_materialize::datum::DatumPlan;
use std::time::Instant;

const VALUE: &str = r#"{"type":"record","name":"Value","fields":[
    {"name":"id","type":"long"},
    {"name":"name","type":["null","string"],"default":null},
    {"name":"amount","type":["null",{"type":"bytes","logicalType":"decimal","precision":12,"scale":2},"string"],"default":null},
    {"name":"at","type":["null",{"type":"long","logicalType":"timestamp-micros"}],"default":null},
    {"name":"flag","type":["null","boolean"],"default":null}]}"#;

fn main() {
    let records: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let schema = Schema::parse_str(VALUE).expect("schema");
    let datums: Vec<Vec<u8>> = (0..1000i64)
        .map(|g| {
            let u = |v| Avro::Union(1, Box::new(v));
            let record = Avro::Record(vec![
                ("id".into(), Avro::Long(g)),
                ("name".into(), u(Avro::String(format!("name {g}")))),
                (
                    "amount".into(),
                    u(Avro::Decimal(apache_avro::Decimal::from(
                        num_bigint::BigInt::from(g).to_signed_bytes_be(),
                    ))),
                ),
                ("at".into(), u(Avro::TimestampMicros(g * 1_000_000))),
                ("flag".into(), u(Avro::Boolean(g % 2 == 0))),
            ]);
            apache_avro::to_avro_datum(&schema, record).expect("encode")
        })
        .collect();
    let time = |name: &str, f: &dyn Fn(&[u8]) -> usize| {
        let started = Instant::now();
        let mut sum = 0;
        for i in 0..records {
            sum += f(&datums[i % datums.len()]);
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{name:<40} {:>8.2} µs/record  {:>10.0} records/s  ({sum})",
            seconds * 1e6 / records as f64,
            records as f64 / seconds
        );
    };
    time("general path (decode, re-encode, decode)", &|datum| {
        let mut rest = datum;
        let value = apache_avro::from_avro_datum(&schema, &mut rest, None).expect("decode");
        let canonical = apache_avro::to_avro_datum(&schema, value).expect("encode");
        assert_eq!(canonical, datum);
        kappa_schemas::decode::decode_record(&schema, datum, 1)
            .expect("decode")
            .len()
    });
    let plan = DatumPlan::new(&schema, None).expect("plannable");
    time("direct decoder, values built", &|datum| {
        plan.decode(datum).expect("decode").len()
    });
    time("direct decoder, values checked only", &|datum| {
        plan.check(datum).expect("check");
        1
    });
}
