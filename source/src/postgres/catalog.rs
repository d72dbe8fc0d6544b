//! Table shapes from the PostgreSQL catalog and from pgoutput Relation
//! messages, built the same way so a snapshot row and a streamed row of one
//! table have one schema.

use super::types::{remember_domains, resolved_column_type, Domain};
use crate::error::SourceError;
use crate::table_filter::select_tables;
use kappa_schemas::{Column, ColumnType, TableName, TableSchema};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use tokio_postgres::Client;

/// A table as the catalog describes it now: its OID, its shape, the names of
/// its key columns in key order (the primary key, or else the replica
/// identity index), and what decides how complete its change images are.
#[derive(Debug, Clone)]
pub struct PgTable {
    pub oid: u32,
    pub schema: Arc<TableSchema>,
    pub key_names: Vec<String>,
    /// `relreplident`: 'd' default, 'f' full, 'i' index, 'n' nothing.
    pub replica_identity: char,
    /// A partitioned table: its partitions' changes are published as its own.
    pub partitioned: bool,
    /// Non-key columns PostgreSQL may store out of line (TOAST).
    pub toastable: Vec<String>,
    /// SQL type of each column (`format_type`), for casts in queries.
    pub sql_types: Vec<String>,
}

/// One column as both sources (catalog row or Relation message) describe it.
pub struct RawColumn {
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// Builds a table shape. Key columns are NOT NULL; every other column is
/// nullable in the Avro schema whatever its constraint says, so a later
/// `DROP NOT NULL` never makes old and new schemas incompatible.
pub fn build_schema(
    name: &TableName,
    columns: &[RawColumn],
    key_names: &[String],
) -> Result<TableSchema, SourceError> {
    let mut key_columns = Vec::with_capacity(key_names.len());
    for key in key_names {
        let index = columns.iter().position(|c| &c.name == key).ok_or_else(|| {
            SourceError::NoPrimaryKey {
                table: name.clone(),
            }
        })?;
        key_columns.push(index);
    }
    if key_columns.is_empty() {
        return Err(SourceError::NoPrimaryKey {
            table: name.clone(),
        });
    }
    let columns = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (column_type, source_type) = resolved_column_type(c.type_oid, c.type_modifier)
                .unwrap_or_else(|| unknown_type(name, &c.name, c.type_oid));
            Column {
                name: c.name.clone(),
                column_type,
                nullable: !key_columns.contains(&i),
                source_type,
            }
        })
        .collect();
    Ok(TableSchema {
        name: name.clone(),
        columns,
        key_columns,
    })
}

/// Types kappa has no mapping for travel as their text form; warn once per
/// column so the user knows the Avro type is a string.
fn unknown_type(table: &TableName, column: &str, type_oid: u32) -> (ColumnType, String) {
    static WARNED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let id = format!("{table}.{column}");
    let first = WARNED
        .get_or_init(Default::default)
        .lock()
        .map(|mut seen| seen.insert(id))
        .unwrap_or(true);
    if first {
        tracing::warn!(%table, column, type_oid, "no Avro mapping for this type: carried as its text form (Avro string)");
    }
    (ColumnType::Text, format!("oid {type_oid} (as text)"))
}

const TABLE_QUERY: &str = "
SELECT c.oid::int8, a.attname::text, a.atttypid::int8, a.atttypmod,
       coalesce((SELECT k.n FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(att, n) WHERE k.att = a.attnum), 0)::int4,
       c.relreplident::text, c.relkind::text, a.attstorage::text, format_type(a.atttypid, a.atttypmod)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
LEFT JOIN LATERAL (
    SELECT x.indkey FROM pg_index x
    WHERE x.indrelid = c.oid AND (x.indisprimary OR x.indisreplident)
    ORDER BY x.indisprimary DESC LIMIT 1
) i ON true
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
ORDER BY a.attnum";

/// Every domain of the database, followed through domains of domains to a
/// type that is not one (with the innermost modifier a domain sets), and
/// the array types of domains.
const DOMAIN_QUERY: &str = "
WITH RECURSIVE chain(oid, base, modifier, depth) AS (
    SELECT t.oid, t.typbasetype, t.typtypmod, 1 FROM pg_type t WHERE t.typtype = 'd'
    UNION ALL
    SELECT c.oid, b.typbasetype, CASE WHEN b.typtypmod <> -1 THEN b.typtypmod ELSE c.modifier END, c.depth + 1
    FROM chain c JOIN pg_type b ON b.oid = c.base AND b.typtype = 'd'
    WHERE c.depth < 100
)
SELECT * FROM (
    SELECT DISTINCT ON (oid) oid::int8, base::int8, modifier, false FROM chain ORDER BY oid, depth DESC
) AS scalars
UNION ALL
SELECT a.oid::int8, a.typelem::int8, -1, true FROM pg_type a JOIN pg_type e ON e.oid = a.typelem
WHERE e.typtype = 'd' AND e.typarray = a.oid";

/// Reads the database's domains into the map pgoutput's Relation messages
/// are resolved with ([`super::types::remember_domains`]).
pub(crate) async fn load_domains(client: &Client) -> Result<(), SourceError> {
    let rows = client
        .query(DOMAIN_QUERY, &[])
        .await
        .map_err(|source| SourceError::Query {
            doing: "reading the database's domains (pg_type)".into(),
            source,
        })?;
    remember_domains(rows.iter().map(|row| {
        let oid = row.get::<_, i64>(0) as u32;
        let base = row.get::<_, i64>(1) as u32;
        let domain = match row.get::<_, bool>(3) {
            true => Domain::Array { element_oid: base },
            false => Domain::Scalar {
                base_oid: base,
                base_modifier: row.get(2),
            },
        };
        (oid, domain)
    }));
    Ok(())
}

/// Reads a table's current shape and key from the catalog. The key is the
/// primary key, or else the `REPLICA IDENTITY USING INDEX` columns; a table
/// with neither is refused (its records could not be keyed). Also refreshes
/// the known domains, so a stream that sees this table's Relation message
/// maps its domain columns as this shape does.
pub async fn load_table(client: &Client, name: &TableName) -> Result<PgTable, SourceError> {
    load_domains(client).await?;
    let rows = client
        .query(TABLE_QUERY, &[&name.schema, &name.table])
        .await
        .map_err(|source| SourceError::Query {
            doing: format!("reading the columns of {name}"),
            source,
        })?;
    let Some(first) = rows.first() else {
        return Err(SourceError::NoSuchTable {
            table: name.clone(),
        });
    };
    let oid = first.get::<_, i64>(0) as u32;
    let first_char = |i: usize| first.get::<_, String>(i).chars().next().unwrap_or('?');
    let replica_identity = first_char(5);
    let partitioned = first_char(6) == 'p';
    let mut keyed: Vec<(i32, String)> = Vec::new();
    let mut columns = Vec::with_capacity(rows.len());
    let mut storage = Vec::with_capacity(rows.len());
    let mut sql_types = Vec::with_capacity(rows.len());
    for row in &rows {
        let column = RawColumn {
            name: row.get(1),
            type_oid: row.get::<_, i64>(2) as u32,
            type_modifier: row.get(3),
        };
        let key_position: i32 = row.get(4);
        if key_position > 0 {
            keyed.push((key_position, column.name.clone()));
        }
        storage.push(row.get::<_, String>(7));
        sql_types.push(row.get::<_, String>(8));
        columns.push(column);
    }
    keyed.sort();
    let key_names: Vec<String> = keyed.into_iter().map(|(_, n)| n).collect();
    let schema = build_schema(name, &columns, &key_names)?;
    let toastable = columns
        .iter()
        .zip(&storage)
        .filter(|(c, storage)| storage.as_str() != "p" && !key_names.contains(&c.name))
        .map(|(c, _)| c.name.clone())
        .collect();
    Ok(PgTable {
        oid,
        schema: Arc::new(schema),
        key_names,
        replica_identity,
        partitioned,
        toastable,
        sql_types,
    })
}

/// Tables matching any of `patterns` (`schema.table`, `*` matching any run of
/// characters) and none of `excluded`, in name order.
pub async fn matching_tables(
    client: &Client,
    patterns: &[String],
    excluded: &[String],
) -> Result<Vec<TableName>, SourceError> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
             ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(|source| SourceError::Query {
            doing: "listing tables".into(),
            source,
        })?;
    Ok(select_tables(
        rows.iter()
            .map(|r| TableName::new(r.get::<_, String>(0), r.get::<_, String>(1))),
        patterns,
        excluded,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str, type_oid: u32) -> RawColumn {
        RawColumn {
            name: name.into(),
            type_oid,
            type_modifier: -1,
        }
    }

    #[test]
    fn key_columns_follow_key_order_and_are_not_null() {
        let table = TableName::new("public", "t");
        let schema = build_schema(
            &table,
            &[raw("a", 23), raw("b", 25), raw("c", 20)],
            &["c".to_string(), "a".to_string()],
        )
        .unwrap();
        assert_eq!(schema.key_columns, vec![2, 0]);
        assert!(!schema.columns[0].nullable && schema.columns[1].nullable);
    }

    #[test]
    fn a_table_without_key_is_refused() {
        let table = TableName::new("public", "t");
        let err = build_schema(&table, &[raw("a", 23)], &[]).unwrap_err();
        assert!(err.to_string().contains("ADD PRIMARY KEY"), "{err}");
    }

    #[test]
    fn a_relation_names_a_domain_by_its_oid_and_it_maps_as_its_base() {
        // An OID no real type has in this test process.
        remember_domains([(
            4_000_100_001,
            Domain::Scalar {
                base_oid: 1184,
                base_modifier: -1,
            },
        )]);
        let table = TableName::new("public", "t");
        let schema = build_schema(
            &table,
            &[raw("id", 23), raw("at", 4_000_100_001)],
            &["id".into()],
        )
        .unwrap();
        assert_eq!(schema.columns[1].column_type, ColumnType::TimestampTz);
        assert_eq!(schema.columns[1].source_type, "timestamp with time zone");
    }

    #[test]
    fn unknown_types_become_text() {
        let table = TableName::new("public", "t");
        let schema = build_schema(&table, &[raw("id", 23), raw("p", 600)], &["id".into()]).unwrap();
        assert_eq!(schema.columns[1].column_type, ColumnType::Text);
    }
}
