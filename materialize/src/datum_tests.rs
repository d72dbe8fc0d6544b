//! Unit tests of [`super`]: the direct decoder against the general path.

use super::*;
use apache_avro::types::Value as Avro;

const V1: &str = r#"{"type":"record","name":"Value","fields":[
    {"name":"id","type":"long"},
    {"name":"a","type":["null","string"],"default":null},
    {"name":"gone","type":["null","int"],"default":null},
    {"name":"n","type":["null",{"type":"bytes","logicalType":"decimal","precision":12,"scale":2},"string"],"default":null},
    {"name":"u","type":["null",{"type":"string","logicalType":"uuid"}],"default":null},
    {"name":"f","type":["null","boolean"],"default":null},
    {"name":"d","type":["null","double"],"default":null},
    {"name":"t","type":["null",{"type":"long","logicalType":"timestamp-micros"}],"default":null},
    {"name":"day","type":["null",{"type":"int","logicalType":"date"}],"default":null}]}"#;
const V2: &str = r#"{"type":"record","name":"Value","fields":[
    {"name":"id","type":"long"},
    {"name":"b","type":["null","int"],"default":null},
    {"name":"a","type":["null","string"],"default":null},
    {"name":"n","type":["null",{"type":"bytes","logicalType":"decimal","precision":12,"scale":2},"string"],"default":null},
    {"name":"u","type":["null",{"type":"string","logicalType":"uuid"}],"default":null},
    {"name":"f","type":["null","boolean"],"default":null},
    {"name":"d","type":["null","double"],"default":null},
    {"name":"t","type":["null",{"type":"long","logicalType":"timestamp-micros"}],"default":null},
    {"name":"day","type":["null",{"type":"int","logicalType":"date"}],"default":null}]}"#;

fn union(i: u32, v: Avro) -> Avro {
    Avro::Union(i, Box::new(v))
}

fn datum() -> (AvroSchema, Vec<u8>) {
    let v1 = AvroSchema::parse_str(V1).unwrap();
    let uuid = uuid::Uuid::parse_str("550e8400-e29b-41d4-a716-446655440000").unwrap();
    let record = Avro::Record(vec![
        ("id".into(), Avro::Long(-300)),
        ("a".into(), union(1, Avro::String("x y".into()))),
        ("gone".into(), union(1, Avro::Int(5))),
        (
            "n".into(),
            union(
                1,
                Avro::Decimal(apache_avro::Decimal::from(vec![0xff, 0x85])),
            ),
        ),
        ("u".into(), union(1, Avro::Uuid(uuid))),
        ("f".into(), union(1, Avro::Boolean(true))),
        ("d".into(), union(1, Avro::Double(-0.0))),
        ("t".into(), union(0, Avro::Null)),
        ("day".into(), union(1, Avro::Date(-1))),
    ]);
    let datum = apache_avro::to_avro_datum(&v1, record).unwrap();
    (v1, datum)
}

#[test]
fn decodes_as_the_general_path_does_with_and_without_resolution() {
    let (v1, datum) = datum();
    let v2 = AvroSchema::parse_str(V2).unwrap();
    let fast = DatumPlan::new(&v1, None).unwrap().decode(&datum).unwrap();
    let general: Vec<Value> = kappa_schemas::decode::decode_record(&v1, &datum, 1)
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(fast, general);
    // (apache-avro's own resolution refuses this datum: it checks a
    // bytes decimal's *length* against the precision, so -1.23 in two
    // bytes is "too small" for numeric(12,2). The direct path resolves it.)
    let resolved = DatumPlan::new(&v1, Some(&v2))
        .unwrap()
        .decode(&datum)
        .unwrap();
    let mut expected = general;
    expected.remove(2); // "gone": not in the reader
    expected.insert(1, Value::Null); // "b": a field the writer lacks
    assert_eq!(resolved, expected);
    assert_eq!(resolved[0], Value::Int(-300));
    assert_eq!(resolved[2], Value::Text("x y".into()));
    assert_eq!(
        resolved[3],
        Value::Decimal {
            unscaled: BigInt::from(-123),
            scale: 2
        }
    );
}

#[test]
fn refuses_what_is_not_exactly_one_canonical_datum() {
    let (v1, datum) = datum();
    let plan = DatumPlan::new(&v1, None).unwrap();
    for cut in 0..datum.len() {
        assert!(plan.decode(&datum[..cut]).is_err(), "cut at {cut}");
    }
    for cut in 0..datum.len() {
        assert!(plan.check(&datum[..cut]).is_err(), "check, cut at {cut}");
    }
    plan.check(&datum).unwrap();
    let mut longer = datum.clone();
    longer.push(0);
    assert!(plan.decode(&longer).unwrap_err().contains("trailing"));
    assert!(plan.check(&longer).unwrap_err().contains("trailing"));
    // -300 is zig-zag 599 = [0xd7, 0x04]; padded to three bytes it
    // decodes to the same number, but is not the canonical encoding.
    assert_eq!(&datum[..2], &[0xd7, 0x04]);
    let mut padded = vec![0xd7, 0x84, 0x00];
    padded.extend_from_slice(&datum[2..]);
    assert!(plan.decode(&padded).unwrap_err().contains("minimally"));
    let schema = AvroSchema::parse_str(
        r#"{"type":"record","name":"B","fields":[{"name":"b","type":"boolean"}]}"#,
    )
    .unwrap();
    let plan = DatumPlan::new(&schema, None).unwrap();
    assert_eq!(plan.decode(&[1]).unwrap(), vec![Value::Bool(true)]);
    assert!(plan.decode(&[2]).is_err());
}

#[test]
fn a_widened_union_reads_older_datums_as_the_general_path_does() {
    let old = r#"{"type":"record","name":"Value","fields":[
        {"name":"id","type":"long"},
        {"name":"n","type":["null",{"type":"bytes","logicalType":"decimal","precision":12,"scale":2},"string"],"default":null},
        {"name":"t","type":["null",{"type":"long","logicalType":"timestamp-micros"}],"default":null}]}"#;
    let new = old.replace(
        r#"{"type":"long","logicalType":"timestamp-micros"}]"#,
        r#"{"type":"long","logicalType":"timestamp-micros"},"string"]"#,
    );
    let (old, new) = (
        AvroSchema::parse_str(old).unwrap(),
        AvroSchema::parse_str(&new).unwrap(),
    );
    let datum = apache_avro::to_avro_datum(
        &old,
        Avro::Record(vec![
            ("id".into(), Avro::Long(1)),
            (
                "n".into(),
                union(1, Avro::Decimal(apache_avro::Decimal::from(vec![0x01]))),
            ),
            ("t".into(), union(1, Avro::TimestampMicros(-7))),
        ]),
    )
    .unwrap();
    let plan = DatumPlan::new(&old, Some(&new)).expect("planned");
    assert_eq!(
        plan.decode(&datum).unwrap(),
        vec![
            Value::Int(1),
            Value::Decimal {
                unscaled: BigInt::from(1),
                scale: 2
            },
            Value::TimestampTz(-7)
        ]
    );
    // Narrowing is not resolution: the old schema cannot read the new one.
    assert!(DatumPlan::new(&new, Some(&old)).is_none());
    let plain = AvroSchema::parse_str(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#,
    )
    .unwrap();
    let nullable = AvroSchema::parse_str(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":["null","long","string"]}]}"#,
    )
    .unwrap();
    let plan = DatumPlan::new(&plain, Some(&nullable)).expect("planned");
    assert_eq!(plan.decode(&[0x04]).unwrap(), vec![Value::Int(2)]);
}

#[test]
fn leaves_unknown_shapes_and_promotions_to_the_general_path() {
    let array = AvroSchema::parse_str(
        r#"{"type":"record","name":"A","fields":[{"name":"a","type":{"type":"array","items":"int"}}]}"#,
    )
    .unwrap();
    assert!(DatumPlan::new(&array, None).is_none());
    let int = AvroSchema::parse_str(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
    )
    .unwrap();
    let long = AvroSchema::parse_str(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#,
    )
    .unwrap();
    assert!(DatumPlan::new(&int, Some(&long)).is_none());
    let defaulted = AvroSchema::parse_str(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":3}]}"#,
    )
    .unwrap();
    assert!(DatumPlan::new(&int, Some(&defaulted)).is_none());
}
