//! Property: the order of encoded keys (`memcmp`) is the natural order of
//! the key values — for one column of every kind, and column by column for
//! composite keys — and equal keys encode equally.

use kappa_materialize::order_key::encode_key;
use kappa_schemas::Value;
use num_bigint::BigInt;
use proptest::prelude::*;
use std::cmp::Ordering;

/// The kinds of key column, each generating values of one column (decimals
/// share a scale, as a column's do).
fn kind() -> impl Strategy<Value = u8> {
    0u8..10
}

fn value_of(kind: u8) -> BoxedStrategy<Value> {
    match kind {
        0 => any::<bool>().prop_map(Value::Bool).boxed(),
        1 => prop_oneof![any::<i64>(), -300i64..300, Just(i64::MIN), Just(i64::MAX)]
            .prop_map(Value::Int)
            .boxed(),
        2 => prop_oneof![
            proptest::num::f32::ANY,
            Just(f32::NAN),
            Just(-0.0f32),
            Just(0.0f32)
        ]
        .prop_map(Value::Float32)
        .boxed(),
        3 => prop_oneof![
            proptest::num::f64::ANY,
            Just(f64::NAN),
            Just(-f64::NAN),
            Just(0.0),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY)
        ]
        .prop_map(Value::Float64)
        .boxed(),
        // Up to PostgreSQL's numeric precision limit of 1000 digits.
        4 => (
            any::<bool>(),
            prop_oneof![
                proptest::collection::vec(0u8..10, 1..40),
                proptest::collection::vec(0u8..10, 600..1000),
            ],
        )
            .prop_map(|(negative, digits)| {
                let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
                let n: BigInt = text.parse().expect("digits");
                Value::Decimal {
                    unscaled: if negative { -n } else { n },
                    scale: 3,
                }
            })
            .boxed(),
        5 => any::<String>().prop_map(Value::Text).boxed(),
        6 => proptest::collection::vec(
            prop_oneof![Just(0u8), Just(1u8), Just(255u8), any::<u8>()],
            0..8,
        )
        .prop_map(Value::Bytes)
        .boxed(),
        7 => any::<[u8; 16]>()
            .prop_map(|b| Value::Uuid(uuid::Uuid::from_bytes(b)))
            .boxed(),
        8 => any::<i32>().prop_map(Value::Date).boxed(),
        _ => any::<i64>().prop_map(Value::TimestampTz).boxed(),
    }
}

fn canonical_f64(v: f64) -> f64 {
    if v.is_nan() {
        f64::NAN
    } else {
        v
    }
}

/// The natural order of two values of one column kind (NaN after +∞, as
/// PostgreSQL sorts it; -0 before +0, since they are different values).
fn natural(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Int(a), Value::Int(b)) => a.cmp(b),
        (Value::Float32(a), Value::Float32(b)) => {
            canonical_f64(f64::from(*a)).total_cmp(&canonical_f64(f64::from(*b)))
        }
        (Value::Float64(a), Value::Float64(b)) => canonical_f64(*a).total_cmp(&canonical_f64(*b)),
        (Value::Decimal { unscaled: a, .. }, Value::Decimal { unscaled: b, .. }) => a.cmp(b),
        (Value::Text(a), Value::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
        (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
        (Value::Uuid(a), Value::Uuid(b)) => a.as_bytes().cmp(b.as_bytes()),
        (Value::Date(a), Value::Date(b)) => a.cmp(b),
        (Value::TimestampTz(a), Value::TimestampTz(b)) => a.cmp(b),
        _ => unreachable!("one column kind per comparison"),
    }
}

fn natural_tuple(a: &[Value], b: &[Value]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(a, b)| natural(a, b))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// Two keys of the same shape (1..=3 columns of chosen kinds).
fn two_keys() -> impl Strategy<Value = (Vec<Value>, Vec<Value>)> {
    proptest::collection::vec(kind(), 1..=3).prop_flat_map(|kinds| {
        let key = || kinds.iter().map(|&k| value_of(k)).collect::<Vec<_>>();
        (key(), key())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn encoded_order_is_value_order((a, b) in two_keys()) {
        let (ea, eb) = (encode_key(&a), encode_key(&b));
        prop_assert_eq!(ea.cmp(&eb), natural_tuple(&a, &b), "{:?} vs {:?}", a, b);
    }

    /// Near-equal keys (one differs from the other in its last column only)
    /// are where prefixes and terminators matter.
    #[test]
    fn a_key_and_its_neighbour_order((a, b) in two_keys()) {
        let mut near = a.clone();
        if let Some(last) = near.last_mut() {
            *last = b.last().cloned().unwrap_or(Value::Null);
        }
        prop_assert_eq!(encode_key(&a).cmp(&encode_key(&near)), natural_tuple(&a, &near));
        prop_assert_eq!(encode_key(&a), encode_key(&a.clone()));
    }
}
