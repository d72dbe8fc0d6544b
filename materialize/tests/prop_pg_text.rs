//! Property: `pg_text::literal` is the inverse of the reader's text parser
//! (`parse_value`) over every value PostgreSQL can store: what the rebuild
//! writes into a PostgreSQL table is what the reader read from the source,
//! under the pinned session settings (ISO dates, UTC, hex bytea).
//!
//! Money is left out: its literal is PostgreSQL's *input* form (`123.45`)
//! while `parse_value` reads the `lc_monetary = 'C'` *output* form
//! (`$123.45`), so the two are not meant to be inverses.

#[path = "../../schemas/tests/prop_strategy/mod.rs"]
mod prop_strategy;

use kappa_materialize::pg_text::literal;
use kappa_schemas::value::DECIMAL_SPECIALS;
use kappa_schemas::{ColumnType, Value};
use kappa_source::postgres::text::{copy_fields, parse_value};
use num_bigint::BigInt;
use proptest::prelude::*;

/// PostgreSQL's date range: 4714-11-24 BC to 5874897-12-31, in days since
/// 1970-01-01.
const DATE_MIN: i32 = -2_440_588;
const DATE_MAX: i32 = 2_145_042_905;
/// PostgreSQL's timestamps start at 4714-11-24 00:00 BC; they end at
/// 294276-12-31, past what µs since 1970 in an i64 hold (about 294247-01-10,
/// the largest finite value a `Value::Timestamp` has).
const TS_MIN: i64 = -210_866_803_200_000_000;
const TS_MAX: i64 = i64::MAX - 1;

fn edgy(lo: i64, hi: i64) -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => lo..=hi,
        1 => prop_oneof![Just(lo), Just(hi), Just(0i64.clamp(lo, hi)), Just((-1i64).clamp(lo, hi))],
    ]
}

fn typed_value() -> impl Strategy<Value = (ColumnType, Value)> {
    prop_oneof![
        any::<bool>().prop_map(|v| (ColumnType::Bool, Value::Bool(v))),
        edgy(i16::MIN.into(), i16::MAX.into()).prop_map(|v| (ColumnType::Int16, Value::Int(v))),
        edgy(i32::MIN.into(), i32::MAX.into()).prop_map(|v| (ColumnType::Int32, Value::Int(v))),
        edgy(i64::MIN, i64::MAX).prop_map(|v| (ColumnType::Int64, Value::Int(v))),
        prop_strategy::float32().prop_map(|v| (ColumnType::Float32, Value::Float32(v))),
        prop_strategy::float64().prop_map(|v| (ColumnType::Float64, Value::Float64(v))),
        (1u32..=1000)
            .prop_flat_map(|p| (Just(p), 0..=p.min(60)))
            .prop_flat_map(|(precision, scale)| {
                let ty = ColumnType::Decimal { precision, scale };
                let number = (
                    any::<bool>(),
                    proptest::collection::vec(0u8..10, 1..=precision.min(120) as usize),
                )
                    .prop_map(move |(negative, digits)| {
                        let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
                        let n: BigInt = text.parse().expect("digits");
                        Value::Decimal {
                            unscaled: if negative { -n } else { n },
                            scale,
                        }
                    });
                let special = proptest::sample::select(DECIMAL_SPECIALS.to_vec())
                    .prop_map(|s| Value::Text(s.to_string()));
                (Just(ty), prop_oneof![4 => number, 1 => special])
            }),
        "[^\u{0}]*".prop_map(|v| (ColumnType::Text, Value::Text(v))),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|v| (ColumnType::Bytes, Value::Bytes(v))),
        prop_oneof![
            4 => DATE_MIN..=DATE_MAX,
            1 => prop_oneof![Just(DATE_MIN), Just(DATE_MAX), Just(i32::MAX), Just(i32::MIN)],
        ]
        .prop_map(|v| (ColumnType::Date, Value::Date(v))),
        edgy(0, 86_400_000_000).prop_map(|v| (ColumnType::Time, Value::Time(v))),
        prop_oneof![4 => edgy(TS_MIN, TS_MAX), 1 => prop_oneof![Just(i64::MIN), Just(i64::MAX)]]
            .prop_map(|v| (ColumnType::Timestamp, Value::Timestamp(v))),
        prop_oneof![4 => edgy(TS_MIN, TS_MAX), 1 => prop_oneof![Just(i64::MIN), Just(i64::MAX)]]
            .prop_map(|v| (ColumnType::TimestampTz, Value::TimestampTz(v))),
        any::<[u8; 16]>().prop_map(|b| (ColumnType::Uuid, Value::Uuid(uuid::Uuid::from_bytes(b)))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn literal_parses_back_to_the_value((ty, value) in typed_value()) {
        let text = literal(&value).expect("not NULL");
        let parsed = parse_value(&ty, &text);
        prop_assert_eq!(parsed.as_ref(), Ok(&value), "literal {:?}", text);
    }

    /// A row written as a COPY text line splits back into the same fields.
    #[test]
    fn copy_line_splits_back_into_the_fields(row in proptest::collection::vec(prop_oneof![1 => Just(None), 4 => typed_value().prop_map(Some)], 1..6)) {
        let mut line = String::new();
        for (i, field) in row.iter().enumerate() {
            if i > 0 {
                line.push('\t');
            }
            match field {
                None => kappa_materialize::pg_text::copy_field(&Value::Null, &mut line),
                Some((_, value)) => kappa_materialize::pg_text::copy_field(value, &mut line),
            }
        }
        let fields = copy_fields(line.as_bytes()).expect("a line kappa wrote");
        prop_assert_eq!(fields.len(), row.len());
        for (field, expected) in fields.iter().zip(&row) {
            match (field, expected) {
                (None, None) => {}
                (Some(text), Some((ty, value))) => {
                    let parsed = parse_value(ty, text);
                    prop_assert_eq!(parsed.as_ref(), Ok(value), "field {:?}", text);
                }
                (field, expected) => prop_assert!(false, "field {:?} for {:?}", field, expected),
            }
        }
    }
}
