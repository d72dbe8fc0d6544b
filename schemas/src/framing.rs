//! The Confluent wire format: magic byte 0, a 4-byte big-endian schema id,
//! then the Avro datum. Consumers in any language find the writer schema from
//! the id alone.

use crate::error::SchemaError;

/// Prefixes an Avro datum with the Confluent header for `schema_id`.
pub fn frame(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + datum.len());
    out.push(0);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

/// Splits a Confluent-framed record into its schema id and Avro datum.
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8]), SchemaError> {
    if bytes.len() < 5 {
        return Err(SchemaError::Framing {
            reason: format!("{} bytes, shorter than the 5-byte header", bytes.len()),
        });
    }
    if bytes[0] != 0 {
        return Err(SchemaError::Framing {
            reason: format!("magic byte is {:#04x}, expected 0x00", bytes[0]),
        });
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[5..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_unframes() {
        let framed = frame(258, b"abc");
        assert_eq!(framed, vec![0, 0, 0, 1, 2, b'a', b'b', b'c']);
        let (id, datum) = unframe(&framed).unwrap();
        assert_eq!((id, datum), (258, &b"abc"[..]));
    }

    #[test]
    fn refuses_unframed_bytes() {
        assert!(unframe(b"{}").is_err());
        assert!(unframe(&[1, 0, 0, 0, 1, 9]).is_err());
    }
}
