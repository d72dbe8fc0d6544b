//! PostgreSQL type OIDs → kappa column types.
//!
//! Built-in types have fixed OIDs (the same in every PostgreSQL version that
//! has them), so they are mapped statically here: numbers, times, UUIDs and
//! bytes to typed Avro values, everything else to its exact text form. Arrays
//! of built-in types are always their text form: PostgreSQL does not fix an
//! array column's dimensions or lower bounds, and its text form keeps both,
//! with NULL elements. Domains (`CREATE DOMAIN`, over built-in types, over
//! other domains, arrays of them) map as their base type does: a domain's
//! values are its base type's, in the same text form. Types with
//! per-database OIDs (enums, extension types such as hstore, arrays of
//! those) fall back to their text form, with a warning, in
//! [`super::catalog`]. See docs/postgres-types.md.

use kappa_schemas::ColumnType;
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

/// A user-defined type that maps as a built-in one, from `pg_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Domain {
    /// A domain, followed through domains of domains to its base type; the
    /// modifier is the innermost one a domain in the chain sets, if any.
    Scalar { base_oid: u32, base_modifier: i32 },
    /// The array type of a domain (`typelem` is the domain).
    Array { element_oid: u32 },
}

/// Domains seen in the catalog, by OID. pgoutput's Relation messages name a
/// domain column by the domain's OID, and the stream cannot query the
/// catalog while it decodes, so [`super::catalog::load_table`] (run for
/// every table before it is snapshotted or streamed) records every domain
/// of the database here. OIDs are unique in a cluster, so one map serves.
fn domains() -> &'static RwLock<HashMap<u32, Domain>> {
    static DOMAINS: OnceLock<RwLock<HashMap<u32, Domain>>> = OnceLock::new();
    DOMAINS.get_or_init(Default::default)
}

/// Records domains read from the catalog (see [`domains`]).
pub(crate) fn remember_domains(found: impl IntoIterator<Item = (u32, Domain)>) {
    // A poisoned lock only means another thread panicked mid-insert; the
    // map holds whole entries either way.
    let mut map = domains().write().unwrap_or_else(|e| e.into_inner());
    map.extend(found);
}

/// [`column_type`], for a built-in type or a domain (of domains, or an
/// array of domains) over one. A domain column's own modifier is -1; the
/// domain's applies (`CREATE DOMAIN d AS numeric(10,2)`).
pub(crate) fn resolved_column_type(
    type_oid: u32,
    type_modifier: i32,
) -> Option<(ColumnType, String)> {
    if let Some(found) = column_type(type_oid, type_modifier) {
        return Some(found);
    }
    let domain = *domains()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&type_oid)?;
    match domain {
        Domain::Scalar {
            base_oid,
            base_modifier,
        } => {
            let modifier = if type_modifier != -1 {
                type_modifier
            } else {
                base_modifier
            };
            column_type(base_oid, modifier)
        }
        Domain::Array { element_oid } => {
            // The element is a domain too, never an array (a domain's array
            // type is one level deep); no recursion past that.
            let element = *domains()
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&element_oid)?;
            let Domain::Scalar {
                base_oid,
                base_modifier,
            } = element
            else {
                return None;
            };
            let (_, name) = column_type(base_oid, base_modifier)?;
            Some((ColumnType::Text, format!("{name}[]")))
        }
    }
}

/// `numeric`: its modifier decides between a decimal and exact text.
const NUMERIC: u32 = 1700;

/// Built-in types: OID, OID of its array type, name, and the kappa type of a
/// value (`Text` = carried as its exact PostgreSQL text form).
const BUILT_IN: &[(u32, u32, &str, ColumnType)] = &[
    (16, 1000, "boolean", ColumnType::Bool),
    (17, 1001, "bytea", ColumnType::Bytes),
    (18, 1002, "\"char\"", ColumnType::Text),
    (19, 1003, "name", ColumnType::Text),
    (20, 1016, "bigint", ColumnType::Int64),
    (21, 1005, "smallint", ColumnType::Int16),
    (22, 1006, "int2vector", ColumnType::Text),
    (23, 1007, "integer", ColumnType::Int32),
    (25, 1009, "text", ColumnType::Text),
    (26, 1028, "oid", ColumnType::Int64),
    (27, 1010, "tid", ColumnType::Text),
    (28, 1011, "xid", ColumnType::Text),
    (29, 1012, "cid", ColumnType::Text),
    (30, 1013, "oidvector", ColumnType::Text),
    (114, 199, "json", ColumnType::Json),
    (142, 143, "xml", ColumnType::Text),
    (600, 1017, "point", ColumnType::Text),
    (601, 1018, "lseg", ColumnType::Text),
    (602, 1019, "path", ColumnType::Text),
    (603, 1020, "box", ColumnType::Text),
    (604, 1027, "polygon", ColumnType::Text),
    (628, 629, "line", ColumnType::Text),
    (650, 651, "cidr", ColumnType::Text),
    (700, 1021, "real", ColumnType::Float32),
    (701, 1022, "double precision", ColumnType::Float64),
    (718, 719, "circle", ColumnType::Text),
    (774, 775, "macaddr8", ColumnType::Text),
    (790, 791, "money", ColumnType::Money),
    (829, 1040, "macaddr", ColumnType::Text),
    (869, 1041, "inet", ColumnType::Text),
    (1042, 1014, "character", ColumnType::Text),
    (1043, 1015, "character varying", ColumnType::Text),
    (1082, 1182, "date", ColumnType::Date),
    (1083, 1183, "time without time zone", ColumnType::Time),
    (
        1114,
        1115,
        "timestamp without time zone",
        ColumnType::Timestamp,
    ),
    (
        1184,
        1185,
        "timestamp with time zone",
        ColumnType::TimestampTz,
    ),
    (1186, 1187, "interval", ColumnType::Text),
    (1266, 1270, "time with time zone", ColumnType::Text),
    (1560, 1561, "bit", ColumnType::Text),
    (1562, 1563, "bit varying", ColumnType::Text),
    (NUMERIC, 1231, "numeric", ColumnType::NumericText),
    (1790, 2201, "refcursor", ColumnType::Text),
    (2950, 2951, "uuid", ColumnType::Uuid),
    (2970, 2949, "txid_snapshot", ColumnType::Text),
    (3220, 3221, "pg_lsn", ColumnType::Text),
    (3614, 3643, "tsvector", ColumnType::Text),
    (3615, 3645, "tsquery", ColumnType::Text),
    (3802, 3807, "jsonb", ColumnType::Json),
    (3904, 3905, "int4range", ColumnType::Text),
    (3906, 3907, "numrange", ColumnType::Text),
    (3908, 3909, "tsrange", ColumnType::Text),
    (3910, 3911, "tstzrange", ColumnType::Text),
    (3912, 3913, "daterange", ColumnType::Text),
    (3926, 3927, "int8range", ColumnType::Text),
    (4072, 4073, "jsonpath", ColumnType::Text),
    (4451, 6150, "int4multirange", ColumnType::Text),
    (4532, 6151, "nummultirange", ColumnType::Text),
    (4533, 6152, "tsmultirange", ColumnType::Text),
    (4534, 6153, "tstzmultirange", ColumnType::Text),
    (4535, 6155, "datemultirange", ColumnType::Text),
    (4536, 6157, "int8multirange", ColumnType::Text),
    (5038, 5039, "pg_snapshot", ColumnType::Text),
    (5069, 271, "xid8", ColumnType::Text),
];

/// Maps a column's type OID and modifier (`atttypmod`) to its kappa type and
/// a readable type name. `None` for types without a fixed OID.
pub(crate) fn column_type(type_oid: u32, type_modifier: i32) -> Option<(ColumnType, String)> {
    if type_oid == NUMERIC {
        return Some(numeric_type(type_modifier));
    }
    BUILT_IN.iter().find_map(|(oid, array_oid, name, ty)| {
        if *oid == type_oid {
            Some((ty.clone(), name.to_string()))
        } else if *array_oid == type_oid {
            Some((ColumnType::Text, format!("{name}[]")))
        } else {
            None
        }
    })
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
        assert_eq!(
            column_type(1231, (10 << 16 | 2) + 4).unwrap(),
            (ColumnType::Text, "numeric[]".to_string())
        );
    }

    #[test]
    fn typed_built_ins_and_arrays_as_text() {
        assert_eq!(column_type(790, -1).unwrap().0, ColumnType::Money);
        assert_eq!(column_type(1083, 3).unwrap().0, ColumnType::Time);
        assert_eq!(column_type(26, -1).unwrap().0, ColumnType::Int64);
        assert_eq!(
            column_type(600, -1).unwrap(),
            (ColumnType::Text, "point".to_string())
        );
        assert_eq!(
            column_type(1007, -1).unwrap(),
            (ColumnType::Text, "integer[]".to_string())
        );
        assert_eq!(
            column_type(6155, -1).unwrap(),
            (ColumnType::Text, "datemultirange[]".to_string())
        );
    }

    #[test]
    fn oids_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (oid, array_oid, name, _) in BUILT_IN {
            assert!(seen.insert(*oid), "{name}");
            assert!(seen.insert(*array_oid), "{name}[]");
        }
    }

    #[test]
    fn domains_map_as_their_base_type() {
        // OIDs no real type has in this test process.
        remember_domains([
            (
                4_000_000_001,
                Domain::Scalar {
                    base_oid: 1700,
                    base_modifier: (10 << 16 | 2) + 4,
                },
            ),
            (
                4_000_000_002,
                Domain::Scalar {
                    base_oid: 1184,
                    base_modifier: -1,
                },
            ),
            (
                4_000_000_003,
                Domain::Array {
                    element_oid: 4_000_000_001,
                },
            ),
            (
                4_000_000_004,
                Domain::Scalar {
                    base_oid: 16_385,
                    base_modifier: -1,
                },
            ),
        ]);
        assert_eq!(
            resolved_column_type(4_000_000_001, -1).unwrap(),
            (
                ColumnType::Decimal {
                    precision: 10,
                    scale: 2
                },
                "numeric(10,2)".to_string()
            )
        );
        assert_eq!(
            resolved_column_type(4_000_000_002, -1).unwrap().0,
            ColumnType::TimestampTz
        );
        assert_eq!(
            resolved_column_type(4_000_000_003, -1).unwrap(),
            (ColumnType::Text, "numeric(10,2)[]".to_string())
        );
        // A domain over an enum or extension type: unknown, as its base is.
        assert!(resolved_column_type(4_000_000_004, -1).is_none());
        assert!(resolved_column_type(4_000_000_005, -1).is_none());
        assert_eq!(resolved_column_type(23, -1).unwrap().0, ColumnType::Int32);
    }

    #[test]
    fn types_without_fixed_oids_are_none() {
        assert!(column_type(16_385, -1).is_none()); // an enum, domain or extension type
        assert!(column_type(2205, -1).is_none()); // regclass: depends on search_path
    }
}
