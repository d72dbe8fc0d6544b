//! A canonical, order-preserving byte encoding of a row's key values.
//!
//! `verify` merges two key-ordered streams, the rebuilt table and the source
//! table, so both must be ordered the same way. The key bytes in the topic do
//! not serve: Avro zig-zag varints do not sort like the numbers they encode,
//! and they embed the key schema id. Instead every rebuilt row stores this
//! encoding of its *decoded* key values (column `ord` of `kappa_rows`), and
//! `verify` computes the same encoding for every source row. Byte order of
//! the encoding equals the natural order of the typed values (`memcmp`
//! order): integers, dates, times and timestamps numerically (the
//! ±infinity sentinels at the ends), fixed-scale decimals
//! by value, floats numerically with NaN last, text and bytes by their bytes
//! (UTF-8 byte order is code-point order), UUIDs by their 16 bytes. Equal
//! values give equal bytes, so the encoding is also the key's identity.

use kappa_schemas::Value;
use num_bigint::Sign;

/// Tags keep values of different kinds apart (a column has one kind, so they
/// never decide the order between two rows of one table).
mod tag {
    pub(super) const NULL: u8 = 0;
    pub(super) const BOOL: u8 = 1;
    pub(super) const INT: u8 = 2;
    pub(super) const FLOAT: u8 = 3;
    pub(super) const DECIMAL: u8 = 4;
    pub(super) const TEXT: u8 = 5;
    pub(super) const BYTES: u8 = 6;
    pub(super) const UUID: u8 = 7;
}

/// Encodes the key values (in key-column order).
pub fn encode_key<'a>(values: impl IntoIterator<Item = &'a Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    for value in values {
        encode_value(value, &mut out);
    }
    out
}

fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(tag::NULL),
        Value::Bool(v) => out.extend([tag::BOOL, u8::from(*v)]),
        Value::Int(v) => int(*v, out),
        Value::Date(v) => int(i64::from(*v), out),
        Value::Time(v) => int(*v, out),
        Value::Timestamp(v) | Value::TimestampTz(v) => int(*v, out),
        Value::Float32(v) => float(f64::from(*v), out),
        Value::Float64(v) => float(*v, out),
        Value::Decimal { unscaled, .. } => decimal(unscaled, out),
        Value::Text(v) => escaped(tag::TEXT, v.as_bytes(), out),
        Value::Bytes(v) => escaped(tag::BYTES, v, out),
        Value::Uuid(v) => {
            out.push(tag::UUID);
            out.extend_from_slice(v.as_bytes());
        }
    }
}

fn int(v: i64, out: &mut Vec<u8>) {
    out.push(tag::INT);
    out.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
}

/// IEEE total order with every NaN made the one positive quiet NaN, so NaN
/// sorts after +Infinity as PostgreSQL sorts it.
fn float(v: f64, out: &mut Vec<u8>) {
    let bits = if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    };
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    out.push(tag::FLOAT);
    out.extend_from_slice(&ordered.to_be_bytes());
}

/// A column's decimals share one scale, so the unscaled integers order the
/// values: sign, then length, then magnitude (all inverted when negative).
/// A length below 255 bytes is one byte; a longer magnitude (more than 612
/// digits: PostgreSQL's numeric holds up to 147,455) is 255 and then its
/// length in two bytes, so it sorts after every shorter one.
fn decimal(unscaled: &num_bigint::BigInt, out: &mut Vec<u8>) {
    out.push(tag::DECIMAL);
    let (sign, magnitude) = unscaled.to_bytes_be();
    let mut length = Vec::with_capacity(3);
    match u8::try_from(magnitude.len()) {
        Ok(n) if n < u8::MAX => length.push(n),
        _ => {
            length.push(u8::MAX);
            let n = u16::try_from(magnitude.len()).unwrap_or(u16::MAX);
            length.extend_from_slice(&n.to_be_bytes());
        }
    }
    match sign {
        Sign::NoSign => out.push(1),
        Sign::Plus => {
            out.push(2);
            out.extend_from_slice(&length);
            out.extend_from_slice(&magnitude);
        }
        Sign::Minus => {
            out.push(0);
            out.extend(length.iter().map(|b| !b));
            out.extend(magnitude.iter().map(|b| !b));
        }
    }
}

/// Bytes with 0x00 escaped as 0x00 0xFF and a 0x00 0x00 terminator, so a
/// prefix sorts before its extensions and a following value cannot bleed in.
fn escaped(tag: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend([0, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_by_encoding(mut values: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
        values.sort_by_key(|v| encode_key(v));
        values
    }

    fn check_order(expected: Vec<Vec<Value>>) {
        let mut shuffled = expected.clone();
        shuffled.reverse();
        shuffled.rotate_left(expected.len() / 3);
        assert_eq!(sorted_by_encoding(shuffled), expected);
    }

    #[test]
    fn integers_sort_numerically() {
        check_order(
            [i64::MIN, -300, -1, 0, 1, 255, 256, i64::MAX]
                .into_iter()
                .map(|v| vec![Value::Int(v)])
                .collect(),
        );
    }

    #[test]
    fn floats_sort_numerically_with_nan_last() {
        check_order(
            [
                f64::NEG_INFINITY,
                -1e300,
                -0.5,
                0.0,
                1e-300,
                2.5,
                f64::INFINITY,
                f64::NAN,
            ]
            .into_iter()
            .map(|v| vec![Value::Float64(v)])
            .collect(),
        );
    }

    #[test]
    fn decimals_sort_by_value() {
        check_order(
            [-100_000i64, -256, -255, -1, 0, 1, 255, 256, 100_000]
                .into_iter()
                .map(|v| {
                    vec![Value::Decimal {
                        unscaled: v.into(),
                        scale: 2,
                    }]
                })
                .collect(),
        );
    }

    /// Magnitudes of 255 bytes and more (613+ digits) used to share the
    /// length byte 255 and sort by their leading bytes alone: 2^2400 (301
    /// bytes, leading 0x01) sorted before 255·2^2048 (257 bytes, leading 0xFF).
    #[test]
    fn long_decimals_sort_by_value() {
        let shifted = |v: u32, bits: usize| num_bigint::BigInt::from(v) << bits;
        check_order(
            [
                -shifted(1, 2400),
                -shifted(255, 2048),
                -shifted(1, 2032),
                -shifted(255, 1000),
                shifted(255, 1000),
                shifted(1, 2032),
                shifted(255, 2048),
                shifted(1, 2400),
            ]
            .into_iter()
            .map(|unscaled| vec![Value::Decimal { unscaled, scale: 0 }])
            .collect(),
        );
    }

    #[test]
    fn text_sorts_by_bytes_and_prefixes_first() {
        check_order(
            ["", "a", "a\u{1}", "ab", "b", "é", "🎉"]
                .into_iter()
                .map(|v| vec![Value::Text(v.into())])
                .collect(),
        );
        check_order(vec![
            vec![Value::Bytes(vec![])],
            vec![Value::Bytes(vec![0])],
            vec![Value::Bytes(vec![0, 0])],
            vec![Value::Bytes(vec![0, 1])],
            vec![Value::Bytes(vec![1])],
        ]);
    }

    #[test]
    fn composite_keys_sort_column_by_column() {
        check_order(vec![
            vec![Value::Text("a".into()), Value::Int(2)],
            vec![Value::Text("a".into()), Value::Int(10)],
            vec![Value::Text("ab".into()), Value::Int(1)],
            vec![Value::Text("b".into()), Value::Int(-5)],
        ]);
    }
}
