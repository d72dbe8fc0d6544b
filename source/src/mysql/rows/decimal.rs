//! DECIMAL's binlog binary form → its unscaled integer, without text.

use mysql_common::io::ParseBuf;
use std::io;

fn take<'a>(buf: &mut ParseBuf<'a>, n: usize) -> io::Result<&'a [u8]> {
    buf.parse(n)
}

/// Bytes of a group of `digits` (< 9) decimal digits in DECIMAL's binary form.
const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// DECIMAL(`precision` ≤ 38, `scale`)'s binary form (MySQL's
/// `decimal2bin`: groups of 9 digits in 4 big-endian bytes, partial groups
/// at both ends, the sign in the first bit, negative numbers inverted) → the
/// unscaled integer. Every step is checked: a precision above 38 or below
/// the scale, a group of 9 digits above 999 999 999, or a total past i128 is
/// an error, never a panic or a wrapped number.
pub(super) fn decimal_bin(buf: &mut ParseBuf<'_>, precision: u8, scale: u8) -> io::Result<i128> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    if precision > 38 || scale > precision {
        return Err(bad(format!(
            "DECIMAL({precision},{scale}) is not a precision the direct decoder takes"
        )));
    }
    let (intg, frac) = (usize::from(precision - scale), usize::from(scale));
    let (intg0, intg0x) = (intg / 9, intg % 9);
    let (frac0, frac0x) = (frac / 9, frac % 9);
    let size = intg0 * 4 + DIG2BYTES[intg0x] + frac0 * 4 + DIG2BYTES[frac0x];
    let bytes = take(buf, size)?;
    if bytes.is_empty() {
        return Ok(0);
    }
    let negative = bytes[0] & 0x80 == 0;
    let mask: u8 = if negative { 0xFF } else { 0 };
    let mut at = 0;
    let mut group = |n: usize| -> io::Result<u64> {
        let mut v = 0u64;
        for (k, &b) in bytes[at..at + n].iter().enumerate() {
            let b = if at + k == 0 { b ^ 0x80 } else { b };
            v = (v << 8) | u64::from(b ^ mask);
        }
        at += n;
        Ok(v)
    };
    let mut acc: i128 = 0;
    let push = |acc: &mut i128, v: u64, digits: usize| -> io::Result<()> {
        // digits ≤ 9: 10^9 fits a u64.
        let base = 10u64.pow(digits as u32);
        if v >= base {
            return Err(bad(format!(
                "DECIMAL({precision},{scale}): a group of {digits} digits holds {v}"
            )));
        }
        *acc = acc
            .checked_mul(i128::from(base))
            .and_then(|a| a.checked_add(i128::from(v)))
            .ok_or_else(|| bad(format!("DECIMAL({precision},{scale}) overflows 128 bits")))?;
        Ok(())
    };
    if intg0x > 0 {
        let v = group(DIG2BYTES[intg0x])?;
        push(&mut acc, v, intg0x)?;
    }
    for _ in 0..intg0 {
        let v = group(4)?;
        push(&mut acc, v, 9)?;
    }
    for _ in 0..frac0 {
        let v = group(4)?;
        push(&mut acc, v, 9)?;
    }
    if frac0x > 0 {
        let v = group(DIG2BYTES[frac0x])?;
        push(&mut acc, v, frac0x)?;
    }
    Ok(if negative { -acc } else { acc })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(bytes: &[u8], precision: u8, scale: u8) -> i128 {
        decimal_bin(&mut ParseBuf(bytes), precision, scale).unwrap()
    }

    #[test]
    fn damaged_decimal_digits_are_errors() {
        // A 9-digit group of 0x3B9ACA00 = 1 000 000 000.
        let b = [0x80 | 0x3B, 0x9A, 0xCA, 0x00];
        assert!(decimal_bin(&mut ParseBuf(&b), 9, 0).is_err());
        assert!(decimal_bin(&mut ParseBuf(&b), 39, 0).is_err());
        assert!(decimal_bin(&mut ParseBuf(&b), 2, 3).is_err());
        assert!(decimal_bin(&mut ParseBuf(&b[..2]), 9, 0).is_err());
        // 38 nines, the largest the direct decoder takes.
        let nines = [
            0x80 | 0x63,
            0x3B,
            0x9A,
            0xC9,
            0xFF,
            0x3B,
            0x9A,
            0xC9,
            0xFF,
            0x3B,
            0x9A,
            0xC9,
            0xFF,
            0x3B,
            0x9A,
            0xC9,
            0xFF,
        ];
        assert_eq!(dec(&nines, 38, 0), 10_i128.pow(38) - 1);
    }

    #[test]
    fn decimal_binary_form() {
        // MySQL's documented example: 1234567890.1234 as DECIMAL(14,4).
        let b = [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2];
        assert_eq!(dec(&b, 14, 4), 12_345_678_901_234);
        // Negative: every byte inverted.
        let n: Vec<u8> = b.iter().map(|x| x ^ 0xFF).collect();
        assert_eq!(dec(&n, 14, 4), -12_345_678_901_234);
        // DECIMAL(12,2): 10 integer digits (1 group + 1 digit in 1 byte), 2 fraction digits (1 byte).
        // 1234.56 → int part 0, 000001234 ; frac 56
        let b = [0x80, 0x00, 0x00, 0x04, 0xD2, 56];
        assert_eq!(dec(&b, 12, 2), 123_456);
    }
}
