//! A lossless byte form of a [`Row`] for scratch files (verify's spill
//! sort). Deliberately not Avro: verify checks what the Avro path wrote, so
//! the source rows it sorts must not pass through that same encoder, where a
//! loss would be hidden on both sides alike.

use crate::value::{Row, Value};
use num_bigint::BigInt;

/// The row as bytes: per value a tag, then fixed-width or length-prefixed
/// payload (little-endian).
pub fn encode(row: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(row.len() * 9);
    for value in row {
        match value {
            Value::Null => out.push(0),
            Value::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
            Value::Int(n) => tagged(&mut out, 2, &n.to_le_bytes()),
            Value::Float32(f) => tagged(&mut out, 3, &f.to_bits().to_le_bytes()),
            Value::Float64(f) => tagged(&mut out, 4, &f.to_bits().to_le_bytes()),
            Value::Decimal { unscaled, scale } => {
                tagged(&mut out, 5, &scale.to_le_bytes());
                sized(&mut out, &unscaled.to_signed_bytes_le());
            }
            Value::Text(text) => {
                out.push(6);
                sized(&mut out, text.as_bytes());
            }
            Value::Bytes(bytes) => {
                out.push(7);
                sized(&mut out, bytes);
            }
            Value::Date(days) => tagged(&mut out, 8, &days.to_le_bytes()),
            Value::Time(micros) => tagged(&mut out, 9, &micros.to_le_bytes()),
            Value::Timestamp(micros) => tagged(&mut out, 10, &micros.to_le_bytes()),
            Value::TimestampTz(micros) => tagged(&mut out, 11, &micros.to_le_bytes()),
            Value::Uuid(uuid) => tagged(&mut out, 12, uuid.as_bytes()),
        }
    }
    out
}

fn tagged(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    out.push(tag);
    out.extend_from_slice(payload);
}

fn sized(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The row back from [`encode`]'s bytes; an error (never a panic) on bytes
/// that are not such a row, e.g. a damaged scratch file.
pub fn decode(mut bytes: &[u8]) -> Result<Row, String> {
    let mut row = Row::new();
    while let Some((&tag, rest)) = bytes.split_first() {
        bytes = rest;
        let value = match tag {
            0 => Value::Null,
            1 => Value::Bool(take::<1>(&mut bytes)?[0] != 0),
            2 => Value::Int(i64::from_le_bytes(take(&mut bytes)?)),
            3 => Value::Float32(f32::from_bits(u32::from_le_bytes(take(&mut bytes)?))),
            4 => Value::Float64(f64::from_bits(u64::from_le_bytes(take(&mut bytes)?))),
            5 => {
                let scale = u32::from_le_bytes(take(&mut bytes)?);
                let unscaled = BigInt::from_signed_bytes_le(take_sized(&mut bytes)?);
                Value::Decimal { unscaled, scale }
            }
            6 => Value::Text(
                String::from_utf8(take_sized(&mut bytes)?.to_vec())
                    .map_err(|e| format!("row bytes: text is not UTF-8: {e}"))?,
            ),
            7 => Value::Bytes(take_sized(&mut bytes)?.to_vec()),
            8 => Value::Date(i32::from_le_bytes(take(&mut bytes)?)),
            9 => Value::Time(i64::from_le_bytes(take(&mut bytes)?)),
            10 => Value::Timestamp(i64::from_le_bytes(take(&mut bytes)?)),
            11 => Value::TimestampTz(i64::from_le_bytes(take(&mut bytes)?)),
            12 => Value::Uuid(uuid::Uuid::from_bytes(take(&mut bytes)?)),
            other => return Err(format!("row bytes: unknown value tag {other}")),
        };
        row.push(value);
    }
    Ok(row)
}

fn take<const N: usize>(bytes: &mut &[u8]) -> Result<[u8; N], String> {
    let (head, rest) = bytes
        .split_first_chunk::<N>()
        .ok_or_else(|| format!("row bytes: {N} bytes expected, {} left", bytes.len()))?;
    *bytes = rest;
    Ok(*head)
}

fn take_sized<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let len = u64::from_le_bytes(take(bytes)?);
    let len = usize::try_from(len).map_err(|_| format!("row bytes: length {len} too large"))?;
    if bytes.len() < len {
        return Err(format!(
            "row bytes: {len} bytes expected, {} left",
            bytes.len()
        ));
    }
    let (head, rest) = bytes.split_at(len);
    *bytes = rest;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_kind_round_trips_exactly() {
        let row: Row = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(i64::MIN),
            Value::Float32(-0.0),
            Value::Float64(f64::NAN),
            Value::Decimal {
                unscaled: "-123456789012345678901234567890123456789"
                    .parse()
                    .expect("big"),
                scale: 30,
            },
            Value::Text("é 🎉 \0".into()),
            Value::Text(String::new()),
            Value::Bytes(vec![0, 255]),
            Value::Date(i32::MIN),
            Value::Time(86_399_999_999),
            Value::Timestamp(i64::MAX),
            Value::TimestampTz(-1),
            Value::Uuid(uuid::Uuid::from_bytes([7; 16])),
        ];
        let back = decode(&encode(&row)).expect("decodes");
        assert_eq!(back, row);
        // -0 stays -0 (canonical equality tells it from +0).
        assert!(matches!(back[3], Value::Float32(f) if f.to_bits() == (-0.0f32).to_bits()));
    }

    #[test]
    fn damaged_bytes_are_an_error_not_a_panic() {
        let bytes = encode(&[Value::Text("hello".into()), Value::Int(5)]);
        for cut in 0..bytes.len() {
            let _ = decode(&bytes[..cut]);
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&[99]).is_err());
        assert!(decode(&[6, 255, 255, 255, 255, 255, 255, 255, 255]).is_err());
    }
}
