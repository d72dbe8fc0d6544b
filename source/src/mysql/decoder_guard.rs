//! What `mysql_common`'s binlog value decoder would panic on, checked
//! before it runs (kappa never panics on server bytes). It indexes a
//! column's TABLE_MAP metadata without a bounds check (`col_meta[0]`,
//! `col_meta[1]` in `binlog/value.rs`), so a TABLE_MAP whose metadata is
//! shorter than its column types say — or unreadable, which
//! `TableMapEvent::get_column_metadata` reports as `None` and the row plan
//! keeps as empty — panicked there; it subtracts a DECIMAL's scale from its
//! precision unchecked; it multiplies a DECIMAL's last digit group
//! unchecked, so digits out of range overflowed; and it shifts a negative
//! DATETIME2 (which MySQL never writes) into an overflow. Found by the
//! `binlog_rows` fuzz target.

use mysql_async::consts::ColumnType;
use std::io;

/// Bytes of metadata the decoder reads for a column of type `ty`.
pub(crate) fn needed(ty: ColumnType, metadata: &[u8]) -> usize {
    use ColumnType::*;
    match ty {
        // The real type is the first byte, then that type's metadata is read
        // from the same bytes.
        MYSQL_TYPE_TYPED_ARRAY => match metadata.first().map(|&b| ColumnType::try_from(b)) {
            Some(Ok(MYSQL_TYPE_TYPED_ARRAY)) | None | Some(Err(_)) => 1,
            Some(Ok(inner)) => needed(inner, metadata).max(1),
        },
        MYSQL_TYPE_STRING
        | MYSQL_TYPE_BIT
        | MYSQL_TYPE_NEWDECIMAL
        | MYSQL_TYPE_ENUM
        | MYSQL_TYPE_SET
        | MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING => 2,
        MYSQL_TYPE_TIMESTAMP2
        | MYSQL_TYPE_DATETIME2
        | MYSQL_TYPE_TIME2
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_BLOB
        | MYSQL_TYPE_GEOMETRY
        | MYSQL_TYPE_VECTOR => 1,
        _ => 0,
    }
}

/// An error when `metadata` is too short for a column of type `ty`, or
/// says what the decoder cannot take (a NEWDECIMAL whose scale exceeds its
/// precision), or when the value at the start of `rest` is a DECIMAL with a
/// digit group out of range.
pub(crate) fn check(ty: ColumnType, metadata: &[u8], rest: &[u8]) -> io::Result<()> {
    let need = needed(ty, metadata);
    // A typed array is decoded as its element type, from the same metadata.
    let ty = match (ty, metadata.first().map(|&b| ColumnType::try_from(b))) {
        (ColumnType::MYSQL_TYPE_TYPED_ARRAY, Some(Ok(inner))) => inner,
        _ => ty,
    };
    let bad = |reason: String| Err(io::Error::new(io::ErrorKind::InvalidData, reason));
    if metadata.len() < need {
        return bad(format!(
            "TABLE_MAP has {} bytes of metadata for a {ty:?} column, which needs {need}",
            metadata.len()
        ));
    }
    // A DATETIME is never negative; below the 0x80_0000_0000 bias,
    // `my_packed_time_make` overflows shifting and adding the fraction.
    if let (ColumnType::MYSQL_TYPE_DATETIME2, Some(int)) = (ty, rest.get(..5)) {
        if int[0] & 0x80 == 0 {
            return bad("a DATETIME2 value is negative".into());
        }
    }
    if let (ColumnType::MYSQL_TYPE_NEWDECIMAL, [precision, scale, ..]) = (ty, metadata) {
        if scale > precision {
            return bad(format!(
                "TABLE_MAP gives a DECIMAL column precision {precision} and scale {scale}"
            ));
        }
        if !decimal_digits_valid(rest, usize::from(*precision), usize::from(*scale)) {
            return bad(format!(
                "a DECIMAL({precision},{scale}) value has digits out of range"
            ));
        }
    }
    Ok(())
}

/// Bytes of a group of `digits` (< 9) decimal digits in DECIMAL's binary form.
const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Whether DECIMAL(`precision`, `scale`)'s binary form at the start of
/// `bytes` has every digit group below 10^digits (MySQL's `decimal2bin`: the
/// sign in the first bit, negative numbers inverted). Too few bytes is left
/// to the decoder, which reports it.
fn decimal_digits_valid(bytes: &[u8], precision: usize, scale: usize) -> bool {
    let Some(intg) = precision.checked_sub(scale) else {
        return false;
    };
    let mut groups = Vec::with_capacity(precision / 9 + 2);
    groups.push(intg % 9);
    groups.extend(std::iter::repeat_n(9, intg / 9 + scale / 9));
    groups.push(scale % 9);
    let size: usize = groups.iter().map(|&d| DIG2BYTES[d]).sum();
    let Some(bytes) = bytes.get(..size) else {
        return true;
    };
    let Some(&first) = bytes.first() else {
        return true;
    };
    let mask: u8 = if first & 0x80 == 0 { 0xFF } else { 0 };
    let mut at = 0;
    for digits in groups {
        let n = DIG2BYTES[digits];
        let mut v: u64 = 0;
        for (k, &b) in bytes[at..at + n].iter().enumerate() {
            let b = if at + k == 0 { b ^ 0x80 } else { b };
            v = (v << 8) | u64::from(b ^ mask);
        }
        at += n;
        if n > 0 && v >= 10u64.pow(digits as u32) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_metadata_is_refused_for_the_types_that_index_it() {
        use ColumnType::*;
        for ty in [
            MYSQL_TYPE_VARCHAR,
            MYSQL_TYPE_STRING,
            MYSQL_TYPE_NEWDECIMAL,
            MYSQL_TYPE_BIT,
        ] {
            assert!(check(ty, &[], &[]).is_err());
            assert!(check(ty, &[1], &[]).is_err());
            assert!(check(ty, &[2, 1], &[]).is_ok());
        }
        assert!(check(MYSQL_TYPE_BLOB, &[], &[]).is_err());
        assert!(check(MYSQL_TYPE_BLOB, &[2], &[]).is_ok());
        assert!(check(MYSQL_TYPE_LONG, &[], &[]).is_ok());
        assert!(check(MYSQL_TYPE_TYPED_ARRAY, &[], &[]).is_err());
        // A typed array of VARCHAR reads two bytes of the same metadata.
        assert!(check(MYSQL_TYPE_TYPED_ARRAY, &[15], &[]).is_err());
        assert!(check(MYSQL_TYPE_TYPED_ARRAY, &[15, 0], &[]).is_ok());
        // DECIMAL(precision, scale): the fuzzer's DECIMAL(0, 4).
        assert!(check(MYSQL_TYPE_NEWDECIMAL, &[0, 4], &[]).is_err());
        assert!(check(MYSQL_TYPE_NEWDECIMAL, &[65, 30], &[]).is_ok());
    }

    #[test]
    fn decimal_digits_out_of_range_are_refused() {
        // MySQL's example: 1234567890.1234 as DECIMAL(14,4), and negated.
        let good = [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2];
        assert!(decimal_digits_valid(&good, 14, 4));
        let negative: Vec<u8> = good.iter().map(|b| b ^ 0xFF).collect();
        assert!(decimal_digits_valid(&negative, 14, 4));
        // The fractional group 1234 as 0x7FFF (32767 ≥ 10^4): mysql_common
        // multiplied it by 10^5 in an i32.
        let mut bad = good;
        bad[5..].copy_from_slice(&[0x7F, 0xFF]);
        assert!(!decimal_digits_valid(&bad, 14, 4));
        let decimal = ColumnType::MYSQL_TYPE_NEWDECIMAL;
        assert!(check(decimal, &[14, 4], &bad).is_err());
        assert!(check(decimal, &[14, 4], &good).is_ok());
        // Too short: the decoder says so.
        assert!(decimal_digits_valid(&good[..3], 14, 4));
    }

    /// A one-column TABLE_MAP of type `code` with `metadata`, its plan for
    /// `kind`, and `row` decoded with it.
    fn decode_one(
        code: u8,
        metadata: &[u8],
        kind: crate::mysql::kind::MysqlKind,
        row: &[u8],
    ) -> Result<Vec<kappa_schemas::Value>, crate::error::SourceError> {
        use crate::mysql::kind::MysqlColumn;
        use crate::mysql::rows::RowPlan;
        use kappa_schemas::TableName;
        use mysql_async::binlog::events::TableMapEvent;
        use mysql_common::binlog::consts::{BinlogVersion, EventType};
        use mysql_common::binlog::events::FormatDescriptionEvent;
        use mysql_common::binlog::BinlogCtx;
        use mysql_common::io::ParseBuf;
        use mysql_common::proto::MyDeserialize;

        // table id, flags, "d", "t", 1 column, its type, metadata, nullable
        // bitmap, no optional metadata.
        let mut tme = vec![7, 0, 0, 0, 0, 0, 0, 0];
        tme.extend([1, b'd', 0, 1, b't', 0, 1, code, metadata.len() as u8]);
        tme.extend_from_slice(metadata);
        tme.push(1);
        let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
        let ctx = BinlogCtx::new(tme.len(), &fde, EventType::TABLE_MAP_EVENT as u8);
        let tme = TableMapEvent::deserialize(ctx, &mut ParseBuf(&tme)).unwrap();
        let kinds = [MysqlColumn {
            name: "c".into(),
            kind,
        }];
        let plan = RowPlan::new(&tme, &kinds, None).unwrap();
        plan.decode(&TableName::new("d", "t"), &kinds, &mut ParseBuf(row))
    }

    /// The fuzzer's case: a VAR_STRING column, which the TABLE_MAP gives no
    /// metadata (`mysql_common` says so) but whose value decoder reads two
    /// bytes of it. A row must be an error, not a panic.
    #[test]
    fn a_row_of_a_column_without_its_metadata_is_an_error() {
        use crate::mysql::kind::MysqlKind;
        let decoded = decode_one(253, &[], MysqlKind::Enum(vec!["a".into()]), &[0, 1, b'x']);
        assert!(decoded.is_err(), "{decoded:?}");
    }

    /// A DECIMAL(40,4) (past the fast decoder's 38 digits) whose last
    /// group is out of range overflowed inside mysql_common.
    #[test]
    fn a_decimal_with_digits_out_of_range_is_an_error() {
        use crate::mysql::kind::MysqlKind;
        let kind = MysqlKind::Decimal {
            precision: 40,
            scale: 4,
        };
        // 36 integer digits: 4 groups of 9; 4 fraction digits in 2 bytes.
        let mut row = vec![0u8, 0x80, 0, 0, 0];
        row.extend([0; 12]);
        row.extend([0x7F, 0xFF]);
        let decoded = decode_one(246, &[40, 4], kind.clone(), &row);
        assert!(decoded.is_err(), "{decoded:?}");
        let n = row.len();
        row[n - 2..].copy_from_slice(&[0x04, 0xD2]);
        let decoded = decode_one(246, &[40, 4], kind, &row).unwrap();
        assert_eq!(
            decoded,
            vec![kappa_schemas::Value::Decimal {
                unscaled: 1234.into(),
                scale: 4
            }]
        );
    }

    /// A DATETIME2 with a negative integer part (zero bytes) overflowed in
    /// the fast decoder (`-packed` of i64::MIN).
    #[test]
    fn a_negative_datetime2_is_an_error() {
        use crate::mysql::kind::MysqlKind;
        let decoded = decode_one(18, &[0], MysqlKind::DateTime, &[0, 0, 0, 0, 0, 0]);
        assert!(decoded.is_err(), "{decoded:?}");
        // The same through mysql_common (a column the catalog calls a
        // TIMESTAMP: no fast decoder), with a negative fraction.
        let decoded = decode_one(18, &[2], MysqlKind::Timestamp, &[0, 0, 0, 0, 0, 0, 0xFF]);
        assert!(decoded.is_err(), "{decoded:?}");
        // 2024-01-02 03:04:05 still decodes on both.
        let bytes = [0, 0x99, 0xB2, 0x44, 0x31, 0x05];
        let fast = decode_one(18, &[0], MysqlKind::DateTime, &bytes).unwrap();
        assert_eq!(
            fast,
            vec![kappa_schemas::Value::Timestamp(1_704_164_645_000_000)]
        );
    }

    /// Values the conversion multiplied past an i64 (the fuzz targets'
    /// finds): errors now.
    #[test]
    fn conversions_past_an_i64_are_errors() {
        use crate::mysql::kind::{MysqlColumn, MysqlKind};
        use crate::mysql::types::{convert, Origin};
        use kappa_schemas::TableName;
        use mysql_async::Value as My;
        let table = TableName::new("d", "t");
        let column = |kind| MysqlColumn {
            name: "c".into(),
            kind,
        };
        let timestamp = column(MysqlKind::Timestamp);
        for value in [
            My::Int(i64::MAX),
            My::Bytes(b"9223372036854775807".to_vec()),
            My::Bytes(b"-9223372036854775807.5".to_vec()),
            // Slicing six bytes of this fraction cut a character in two.
            My::Bytes("1.\u{1F600}\u{1F600}".as_bytes().to_vec()),
        ] {
            let converted = convert(&table, &timestamp, value.clone(), Origin::Binlog);
            assert!(converted.is_err(), "{value:?}: {converted:?}");
        }
        let time = column(MysqlKind::Time);
        let converted = convert(
            &table,
            &time,
            My::Time(true, u32::MAX, 23, 59, 59, 0),
            Origin::Query,
        );
        assert!(converted.is_err(), "{converted:?}");
        let converted = convert(
            &table,
            &time,
            My::Time(true, 34, 22, 59, 59, 0),
            Origin::Query,
        );
        assert_eq!(
            converted.unwrap(),
            kappa_schemas::Value::Int(-3_020_399_000_000)
        );
    }
}
