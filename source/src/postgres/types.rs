//! PostgreSQL type OIDs → kappa column types.
//!
//! Only built-in types with fixed OIDs are mapped here. A type kappa does not
//! know yet is carried as its text form, with a warning, so an unusual column
//! never stops a table from streaming.

use kappa_schemas::ColumnType;

/// Maps a column's type OID and modifier (`atttypmod`) to its kappa type and
/// a readable type name. `None` for types without a dedicated mapping.
pub fn column_type(type_oid: u32, type_modifier: i32) -> Option<(ColumnType, String)> {
    let named = |t: ColumnType, name: &str| Some((t, name.to_string()));
    match type_oid {
        16 => named(ColumnType::Bool, "boolean"),
        17 => named(ColumnType::Bytes, "bytea"),
        20 => named(ColumnType::Int64, "bigint"),
        21 => named(ColumnType::Int16, "smallint"),
        23 => named(ColumnType::Int32, "integer"),
        25 => named(ColumnType::Text, "text"),
        114 => named(ColumnType::Json, "json"),
        700 => named(ColumnType::Float32, "real"),
        701 => named(ColumnType::Float64, "double precision"),
        1042 => named(ColumnType::Text, "character"),
        1043 => named(ColumnType::Text, "character varying"),
        1082 => named(ColumnType::Date, "date"),
        1114 => named(ColumnType::Timestamp, "timestamp without time zone"),
        1184 => named(ColumnType::TimestampTz, "timestamp with time zone"),
        1700 => Some(numeric_type(type_modifier)),
        2950 => named(ColumnType::Uuid, "uuid"),
        3802 => named(ColumnType::Json, "jsonb"),
        _ => None,
    }
}

/// `numeric(p,s)` is an Avro decimal; unconstrained `numeric` (or a negative
/// scale, allowed since PostgreSQL 15) has no fixed scale and stays exact text.
fn numeric_type(type_modifier: i32) -> (ColumnType, String) {
    if type_modifier < 4 {
        return (ColumnType::NumericText, "numeric".into());
    }
    let packed = type_modifier - 4;
    let precision = (packed >> 16) & 0xffff;
    let scale_bits = packed & 0x7ff;
    // The scale is an 11-bit signed field.
    let scale = if scale_bits & 0x400 != 0 {
        scale_bits - 0x800
    } else {
        scale_bits
    };
    if scale < 0 || scale > precision {
        return (
            ColumnType::NumericText,
            format!("numeric({precision},{scale})"),
        );
    }
    (
        ColumnType::Decimal {
            precision: precision as u32,
            scale: scale as u32,
        },
        format!("numeric({precision},{scale})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_modifiers_decode() {
        // numeric(10,2): ((10 << 16) | 2) + 4
        assert_eq!(
            column_type(1700, (10 << 16 | 2) + 4).unwrap().0,
            ColumnType::Decimal {
                precision: 10,
                scale: 2
            }
        );
        assert_eq!(column_type(1700, -1).unwrap().0, ColumnType::NumericText);
        // numeric(3,-2): scale stored as 11-bit two's complement
        assert_eq!(
            column_type(1700, ((3 << 16) | 0x7fe) + 4).unwrap().0,
            ColumnType::NumericText
        );
    }

    #[test]
    fn unknown_types_are_none() {
        assert!(column_type(600, -1).is_none()); // point
    }
}
