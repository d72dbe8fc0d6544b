//! Unit tests of [`super`]: schemas and row round trips.

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

#[test]
fn out_of_range_timestamps_travel_in_the_string_branch() {
    let table = extended_table();
    let avro = TableAvro::new(&table, "kappa.public.x").unwrap();
    let fields: Json = serde_json::from_str(&avro.value_json).unwrap();
    for (i, logical) in [(5, "local-timestamp-micros"), (6, "timestamp-micros")] {
        let ty = &fields["fields"][i]["type"];
        assert_eq!(ty[1]["logicalType"], logical, "{ty}");
        assert_eq!(ty[2], "string", "{ty}");
    }
    // Neither a date (PostgreSQL's dates all fit an Avro int) nor a time has one.
    assert_eq!(fields["fields"][4]["type"].as_array().unwrap().len(), 2);
    assert_eq!(fields["fields"][3]["type"].as_array().unwrap().len(), 2);
    let mut row = vec![Value::Null; table.columns.len()];
    row[0] = Value::Decimal {
        unscaled: 1.into(),
        scale: 2,
    };
    row[5] = Value::Text("294276-12-31 23:59:59.999999".into());
    row[6] = Value::Text("294247-01-10 04:00:54.775807+00".into());
    let bytes = encode_row(&table, &avro, &row).unwrap();
    let decoded = decode_record(&avro.value_schema, &bytes, 1).unwrap();
    let values: Vec<Value> = decoded.into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, row);
    // An empty text is no timestamp's form.
    row[5] = Value::Text(String::new());
    assert!(encode_row(&table, &avro, &row).is_err());
}

#[test]
fn an_out_of_range_key_is_an_error_naming_table_column_and_value() {
    let table = TableSchema {
        name: TableName::new("public", "k"),
        columns: vec![column("at", ColumnType::TimestampTz, false)],
        key_columns: vec![0],
    };
    let avro = TableAvro::new(&table, "kappa.public.k").unwrap();
    let key: Json = serde_json::from_str(&avro.key_json).unwrap();
    assert_eq!(key["fields"][0]["type"]["logicalType"], "timestamp-micros");
    let err = encode_key(
        &table,
        &avro,
        &[Value::Text("294276-12-31 23:59:59.999999+00".into())],
    )
    .unwrap_err()
    .to_string();
    for part in [
        "public.k",
        "column at",
        "294276-12-31 23:59:59.999999+00",
        "key",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
}

/// Registries check BACKWARD compatibility by Avro's resolution rules: the
/// new (reader) schema must read every datum of the old (writer) one.
#[test]
fn the_widened_union_reads_records_written_before() {
    let old = r#"{"type":"record","name":"Value","fields":[
        {"name":"id","type":"long"},
        {"name":"ts","type":["null",{"type":"long","logicalType":"timestamp-micros"}],"default":null}]}"#;
    let table = TableSchema {
        name: TableName::new("public", "w"),
        columns: vec![
            column("id", ColumnType::Int64, false),
            column("ts", ColumnType::TimestampTz, true),
        ],
        key_columns: vec![0],
    };
    let new = TableAvro::new(&table, "w").unwrap().value_schema;
    let old = Schema::parse_str(old).unwrap();
    let datum = apache_avro::to_avro_datum(
        &old,
        Avro::Record(vec![
            ("id".into(), Avro::Long(1)),
            (
                "ts".into(),
                Avro::Union(1, Box::new(Avro::TimestampMicros(-5))),
            ),
        ]),
    )
    .unwrap();
    let read = apache_avro::from_avro_datum(&old, &mut datum.as_slice(), Some(&new)).unwrap();
    assert_eq!(
        read,
        Avro::Record(vec![
            ("id".into(), Avro::Long(1)),
            (
                "ts".into(),
                Avro::Union(1, Box::new(Avro::TimestampMicros(-5)))
            ),
        ])
    );
    assert!(apache_avro::schema_compatibility::SchemaCompatibility::can_read(&old, &new).is_ok());
}
