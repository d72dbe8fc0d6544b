//! What `mysql_common`'s binlog value decoder needs of a column's TABLE_MAP
//! metadata. It indexes the metadata bytes without a bounds check
//! (`col_meta[0]`, `col_meta[1]` in `binlog/value.rs`), so a TABLE_MAP whose
//! metadata is shorter than its column types say — or unreadable, which
//! `TableMapEvent::get_column_metadata` reports as `None` and the row plan
//! keeps as empty — would panic there. The row plan checks first and
//! refuses the value. Found by the `binlog_rows` fuzz target.

use mysql_async::consts::ColumnType;
use std::io;

/// Bytes of metadata the decoder reads for a column of type `ty`.
pub fn needed(ty: ColumnType, metadata: &[u8]) -> usize {
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
/// says what the decoder cannot take: a NEWDECIMAL whose scale exceeds its
/// precision (`decimal_bin_size` subtracts them unchecked).
pub fn check(ty: ColumnType, metadata: &[u8]) -> io::Result<()> {
    let need = needed(ty, metadata);
    let bad = |reason: String| Err(io::Error::new(io::ErrorKind::InvalidData, reason));
    if metadata.len() < need {
        return bad(format!(
            "TABLE_MAP has {} bytes of metadata for a {ty:?} column, which needs {need}",
            metadata.len()
        ));
    }
    if let (ColumnType::MYSQL_TYPE_NEWDECIMAL, [precision, scale, ..]) = (ty, metadata) {
        if scale > precision {
            return bad(format!(
                "TABLE_MAP gives a DECIMAL column precision {precision} and scale {scale}"
            ));
        }
    }
    Ok(())
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
            assert!(check(ty, &[]).is_err());
            assert!(check(ty, &[1]).is_err());
            assert!(check(ty, &[2, 1]).is_ok());
        }
        assert!(check(MYSQL_TYPE_BLOB, &[]).is_err());
        assert!(check(MYSQL_TYPE_BLOB, &[2]).is_ok());
        assert!(check(MYSQL_TYPE_LONG, &[]).is_ok());
        assert!(check(MYSQL_TYPE_TYPED_ARRAY, &[]).is_err());
        // A typed array of VARCHAR reads two bytes of the same metadata.
        assert!(check(MYSQL_TYPE_TYPED_ARRAY, &[15]).is_err());
        assert!(check(MYSQL_TYPE_TYPED_ARRAY, &[15, 0]).is_ok());
        // DECIMAL(precision, scale): the fuzzer's DECIMAL(0, 4).
        assert!(check(MYSQL_TYPE_NEWDECIMAL, &[0, 4]).is_err());
        assert!(check(MYSQL_TYPE_NEWDECIMAL, &[65, 30]).is_ok());
    }

    /// The fuzzer's case: a VAR_STRING column, which the TABLE_MAP gives no
    /// metadata (`mysql_common` says so) but whose value decoder reads two
    /// bytes of it. A row must be an error, not a panic.
    #[test]
    fn a_row_of_a_column_without_its_metadata_is_an_error() {
        use crate::mysql::kind::{MysqlColumn, MysqlKind};
        use crate::mysql::rows::RowPlan;
        use kappa_schemas::TableName;
        use mysql_async::binlog::events::TableMapEvent;
        use mysql_common::binlog::consts::{BinlogVersion, EventType};
        use mysql_common::binlog::events::FormatDescriptionEvent;
        use mysql_common::binlog::BinlogCtx;
        use mysql_common::io::ParseBuf;
        use mysql_common::proto::MyDeserialize;

        // table id, flags, "d", "t", 1 column of type 253, no metadata,
        // nullable bitmap, no optional metadata.
        let mut tme = vec![7, 0, 0, 0, 0, 0, 0, 0];
        tme.extend([1, b'd', 0, 1, b't', 0, 1, 253, 0, 1]);
        let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
        let ctx = BinlogCtx::new(tme.len(), &fde, EventType::TABLE_MAP_EVENT as u8);
        let tme = TableMapEvent::deserialize(ctx, &mut ParseBuf(&tme)).unwrap();
        let kinds = [MysqlColumn {
            name: "c".into(),
            kind: MysqlKind::Enum(vec!["a".into()]),
        }];
        let plan = RowPlan::new(&tme, &kinds, None).unwrap();
        let row = [0u8, 1, b'x'];
        let decoded = plan.decode(&TableName::new("d", "t"), &kinds, &mut ParseBuf(&row));
        assert!(decoded.is_err(), "{decoded:?}");
    }
}
