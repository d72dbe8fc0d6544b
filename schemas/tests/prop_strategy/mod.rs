//! Generators shared by the property tests of kappa-schemas and kappa-materialize
//! (`#[path]`-included there): a table shape of every column type and a row
//! of values it holds, edge values made likely. Each including test uses a
//! part of it.
#![allow(dead_code)]

use kappa_schemas::table::MONEY_SCALE;
use kappa_schemas::value::DECIMAL_SPECIALS;
use kappa_schemas::{Column, ColumnType, TableName, TableSchema, Value};
use num_bigint::BigInt;
use proptest::prelude::*;

pub fn column_type() -> impl Strategy<Value = ColumnType> {
    prop_oneof![
        Just(ColumnType::Bool),
        Just(ColumnType::Int16),
        Just(ColumnType::Int32),
        Just(ColumnType::Int64),
        Just(ColumnType::Float32),
        Just(ColumnType::Float64),
        (1u32..=60)
            .prop_flat_map(|p| (Just(p), 0..=p))
            .prop_map(|(precision, scale)| ColumnType::Decimal { precision, scale }),
        Just(ColumnType::NumericText),
        Just(ColumnType::Money),
        Just(ColumnType::Text),
        Just(ColumnType::Bytes),
        Just(ColumnType::Date),
        Just(ColumnType::Time),
        Just(ColumnType::Timestamp),
        Just(ColumnType::TimestampTz),
        Just(ColumnType::Uuid),
        Just(ColumnType::Json),
    ]
}

/// An unscaled decimal of at most `digits` digits, either sign.
pub fn unscaled(digits: u32) -> impl Strategy<Value = BigInt> {
    (
        any::<bool>(),
        proptest::collection::vec(0u8..10, 1..=digits as usize),
    )
        .prop_map(|(negative, ds)| {
            let text: String = ds.iter().map(|d| char::from(b'0' + d)).collect();
            let n: BigInt = text.parse().expect("digits");
            if negative {
                -n
            } else {
                n
            }
        })
}

/// Integers with their edges made likely.
pub fn edgy_i64(lo: i64, hi: i64) -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => lo..=hi,
        1 => prop_oneof![Just(lo), Just(hi), Just(0), Just(-1), Just(1)]
            .prop_filter("in range", move |v| (lo..=hi).contains(v)),
    ]
}

/// Any `f32`, the special values (NaN of both signs, ±0, ±∞) made likely.
pub fn float32() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => proptest::num::f32::ANY,
        1 => proptest::sample::select(vec![f32::NAN, -f32::NAN, 0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE, f32::MAX]),
    ]
}

/// Any `f64`, the special values made likely.
pub fn float64() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => proptest::num::f64::ANY,
        1 => proptest::sample::select(vec![f64::NAN, -f64::NAN, 0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE, f64::MAX]),
    ]
}

/// A non-NULL value a column of `ty` holds (`nullable`: also the values
/// only a nullable column's union can carry).
pub fn value(ty: &ColumnType, nullable: bool) -> BoxedStrategy<Value> {
    match ty {
        ColumnType::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        ColumnType::Int16 => edgy_i64(i16::MIN.into(), i16::MAX.into())
            .prop_map(Value::Int)
            .boxed(),
        ColumnType::Int32 => edgy_i64(i32::MIN.into(), i32::MAX.into())
            .prop_map(Value::Int)
            .boxed(),
        ColumnType::Int64 => edgy_i64(i64::MIN, i64::MAX).prop_map(Value::Int).boxed(),
        ColumnType::Float32 => float32().prop_map(Value::Float32).boxed(),
        ColumnType::Float64 => float64().prop_map(Value::Float64).boxed(),
        ColumnType::Decimal { precision, scale } => {
            let scale = *scale;
            let number =
                unscaled(*precision).prop_map(move |unscaled| Value::Decimal { unscaled, scale });
            if nullable {
                prop_oneof![
                    4 => number,
                    1 => proptest::sample::select(DECIMAL_SPECIALS.to_vec())
                        .prop_map(|s| Value::Text(s.to_string())),
                ]
                .boxed()
            } else {
                number.boxed()
            }
        }
        ColumnType::Money => edgy_i64(i64::MIN, i64::MAX)
            .prop_map(|cents| Value::Decimal {
                unscaled: BigInt::from(cents),
                scale: MONEY_SCALE,
            })
            .boxed(),
        ColumnType::NumericText | ColumnType::Text | ColumnType::Json => {
            any::<String>().prop_map(Value::Text).boxed()
        }
        ColumnType::Bytes => proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(Value::Bytes)
            .boxed(),
        ColumnType::Date => prop_oneof![any::<i32>(), Just(i32::MAX), Just(i32::MIN),]
            .prop_map(Value::Date)
            .boxed(),
        ColumnType::Time => edgy_i64(0, 86_400_000_000).prop_map(Value::Time).boxed(),
        ColumnType::Timestamp => edgy_i64(i64::MIN, i64::MAX)
            .prop_map(Value::Timestamp)
            .boxed(),
        ColumnType::TimestampTz => edgy_i64(i64::MIN, i64::MAX)
            .prop_map(Value::TimestampTz)
            .boxed(),
        ColumnType::Uuid => any::<[u8; 16]>()
            .prop_map(|b| Value::Uuid(uuid::Uuid::from_bytes(b)))
            .boxed(),
    }
}

/// A table of 1..=6 columns (the first `keys` of them the key) and one row.
pub fn table_and_row() -> impl Strategy<Value = (TableSchema, Vec<Value>)> {
    proptest::collection::vec((column_type(), any::<bool>()), 1..=6)
        .prop_flat_map(|columns| {
            let n = columns.len();
            (Just(columns), 1..=n)
        })
        .prop_flat_map(|(columns, keys)| {
            let table = TableSchema {
                name: TableName::new("prop", "t"),
                columns: columns
                    .iter()
                    .enumerate()
                    .map(|(i, (ty, nullable))| Column {
                        name: format!("c{i}"),
                        column_type: ty.clone(),
                        nullable: *nullable && i >= keys,
                        source_type: format!("{ty:?}"),
                    })
                    .collect(),
                key_columns: (0..keys).collect(),
            };
            let row: Vec<BoxedStrategy<Value>> = table
                .columns
                .iter()
                .map(|c| {
                    let v = value(&c.column_type, c.nullable);
                    if c.nullable {
                        prop_oneof![1 => Just(Value::Null), 4 => v].boxed()
                    } else {
                        v
                    }
                })
                .collect();
            (Just(table), row)
        })
}
