//! Text in the character sets kappa decodes. MySQL sends text in the
//! column's own charset (kappa's sessions set `character_set_results =
//! NULL`, and the binlog always does), so snapshot, stream and verify decode
//! the same bytes the same way.

/// Character sets whose text kappa decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// utf8mb4, utf8mb3/utf8.
    Utf8,
    /// MySQL's latin1, which is Windows-1252.
    Latin1,
    Ascii,
}

/// The charset of a column from its `CHARACTER_SET_NAME`; others are refused
/// with the fix.
pub fn parse_charset(charset: Option<&str>) -> Result<Charset, String> {
    match charset {
        Some("utf8mb4" | "utf8mb3" | "utf8") => Ok(Charset::Utf8),
        Some("latin1") => Ok(Charset::Latin1),
        Some("ascii") => Ok(Charset::Ascii),
        other => Err(format!(
            "character set {other:?} is not supported; convert the column to utf8mb4 \
             (ALTER TABLE … MODIFY … CHARACTER SET utf8mb4)"
        )),
    }
}

/// Decodes text stored in `charset`.
pub fn decode(charset: Charset, bytes: &[u8]) -> Result<String, String> {
    match charset {
        Charset::Utf8 | Charset::Ascii => {
            String::from_utf8(bytes.to_vec()).map_err(|e| format!("not valid UTF-8: {e}"))
        }
        Charset::Latin1 => Ok(bytes.iter().map(|&b| cp1252(b)).collect()),
    }
}

/// MySQL's latin1 is Windows-1252; the five bytes 1252 leaves undefined map
/// to the C1 control of the same number, as the server converts them.
fn cp1252(b: u8) -> char {
    const HIGH: [u16; 32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013,
        0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ];
    if (0x80..0xA0).contains(&b) {
        char::from_u32(u32::from(HIGH[usize::from(b - 0x80)])).unwrap_or('\u{FFFD}')
    } else {
        char::from(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_is_windows_1252() {
        assert_eq!(decode(Charset::Latin1, &[0x80, b'a', 0xE9]).unwrap(), "€aé");
    }
}
