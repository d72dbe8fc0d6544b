//! pgoutput messages → changes: relation ids to table shapes, tuples to
//! full rows. Pure (no I/O): an unchanged TOAST value is taken from the old
//! tuple (REPLICA IDENTITY FULL) or, in fetch mode, recorded as a hole in the
//! [`Buffered`] changes it belongs to, filled by key before they leave (see
//! [`super::toast`]).

use super::catalog::{build_schema, RawColumn};
use super::pgoutput::{decode, PgOutput, TupleValue};
use super::text::parse_value;
use super::toast::Buffered;
use super::types::resolved_column_type;
use crate::error::SourceError;
use kappa_schemas::{Change, Row, TableName, TableSchema, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What one message meant beyond the changes it appended.
#[derive(Debug)]
pub enum Decoded {
    Changes,
    /// These tables were truncated, after the changes appended before.
    Truncate(Vec<Arc<TableSchema>>),
    /// A Relation message names column types neither built in nor among the
    /// domains known: nothing was applied. The caller refreshes the domains
    /// from the catalog (a domain created while streaming) and applies the
    /// same message again; types still unknown then are carried as text.
    UnknownTypes(Vec<u32>),
}

/// Turns relation ids into table shapes and tuples into changes.
pub struct ChangeDecoder {
    /// Key column names per configured table (from the catalog).
    keys: HashMap<TableName, Vec<String>>,
    relations: HashMap<u32, Arc<TableSchema>>,
    /// Relations seen that are not configured tables (warned once).
    foreign: HashSet<u32>,
    /// Tables whose unchanged TOAST values are fetched, not refused.
    fetch_toast: HashSet<TableName>,
    /// Type OIDs the caller looked up after [`Decoded::UnknownTypes`]: not
    /// asked about again (an extension type stays unknown for good).
    looked_up: HashSet<u32>,
}

impl ChangeDecoder {
    pub fn new(keys: HashMap<TableName, Vec<String>>) -> Self {
        Self {
            keys,
            relations: HashMap::new(),
            foreign: HashSet::new(),
            fetch_toast: HashSet::new(),
            looked_up: HashSet::new(),
        }
    }

    /// Lets UPDATEs of `tables` leave TOAST holes (recorded with the change
    /// in its [`Buffered`]) instead of failing.
    pub fn fetch_toast_for(mut self, tables: impl IntoIterator<Item = TableName>) -> Self {
        self.fetch_toast.extend(tables);
        self
    }

    /// After [`Decoded::UnknownTypes`]: the catalog was read again for
    /// `oids`; the next Relation message naming them applies, mapping those
    /// still unknown as text.
    pub fn looked_up(&mut self, oids: &[u32]) {
        self.looked_up.extend(oids.iter().copied());
    }

    /// Decodes one pgoutput message, appending the changes it means.
    pub fn apply(&mut self, bytes: &[u8], out: &mut Buffered) -> Result<Decoded, SourceError> {
        match decode(bytes).map_err(|reason| SourceError::PgOutputUnreadable { reason })? {
            PgOutput::Relation {
                relation_id,
                namespace,
                name,
                columns,
                ..
            } => {
                let table = TableName::new(namespace, name);
                let Some(key_names) = self.keys.get(&table) else {
                    tracing::warn!(%table, "publication includes a table that is not configured: its changes are not streamed");
                    self.foreign.insert(relation_id);
                    return Ok(Decoded::Changes);
                };
                let raw: Vec<RawColumn> = columns
                    .into_iter()
                    .map(|c| RawColumn {
                        name: c.name,
                        type_oid: c.type_oid,
                        type_modifier: c.type_modifier,
                    })
                    .collect();
                let unknown: Vec<u32> = raw
                    .iter()
                    .filter(|c| {
                        !self.looked_up.contains(&c.type_oid)
                            && resolved_column_type(c.type_oid, c.type_modifier).is_none()
                    })
                    .map(|c| c.type_oid)
                    .collect();
                if !unknown.is_empty() {
                    return Ok(Decoded::UnknownTypes(unknown));
                }
                let schema = build_schema(&table, &raw, key_names)?;
                tracing::debug!(%table, columns = schema.columns.len(), "relation");
                self.relations.insert(relation_id, Arc::new(schema));
            }
            PgOutput::Insert { relation_id, new } => {
                if let Some(table) = self.table(relation_id)? {
                    let (row, _) = row(&table, &new, None, false)?;
                    out.push(Change::Upsert { table, row });
                }
            }
            PgOutput::Update {
                relation_id,
                old,
                new,
            } => {
                if let Some(table) = self.table(relation_id)? {
                    let fetch = self.fetch_toast.contains(&table.name);
                    let (row, holes) = row(&table, &new, old.as_deref(), fetch)?;
                    if let Some(old) = old {
                        let old_key = key_of(&table, &old)?;
                        let new_key: Vec<Value> =
                            table.key_columns.iter().map(|&i| row[i].clone()).collect();
                        if old_key != new_key {
                            out.push(Change::Delete {
                                table: table.clone(),
                                key: old_key,
                            });
                        }
                    }
                    if !holes.is_empty() {
                        let key_text = table
                            .key_columns
                            .iter()
                            .map(|&i| match &new[i] {
                                TupleValue::Text(bytes) => {
                                    Ok(String::from_utf8_lossy(bytes).into_owned())
                                }
                                _ => Err(SourceError::MissingKeyValue {
                                    what: "a new tuple",
                                    table: table.name.clone(),
                                    column: table.columns[i].name.clone(),
                                }),
                            })
                            .collect::<Result<_, _>>()?;
                        out.push_with_holes(Change::Upsert { table, row }, holes, key_text);
                    } else {
                        out.push(Change::Upsert { table, row });
                    }
                }
            }
            PgOutput::Delete { relation_id, old } => {
                if let Some(table) = self.table(relation_id)? {
                    let key = key_of(&table, &old)?;
                    out.push(Change::Delete { table, key });
                }
            }
            PgOutput::Truncate { relation_ids, .. } => {
                // CASCADE lists every truncated table; RESTART IDENTITY only
                // resets sequences, which are not captured.
                let mut tables = Vec::new();
                for relation_id in relation_ids {
                    if let Some(table) = self.table(relation_id)? {
                        tables.push(table);
                    }
                }
                if !tables.is_empty() {
                    return Ok(Decoded::Truncate(tables));
                }
            }
            PgOutput::Ignored(_) => {}
        }
        Ok(Decoded::Changes)
    }

    /// Whether `table` is one this reader captures.
    pub fn captures(&self, table: &TableName) -> bool {
        self.keys.contains_key(table)
    }

    /// The stream's current shape of `table`, once a Relation message gave it.
    pub fn schema_of(&self, table: &TableName) -> Option<Arc<TableSchema>> {
        self.relations.values().find(|s| &s.name == table).cloned()
    }

    fn table(&self, relation_id: u32) -> Result<Option<Arc<TableSchema>>, SourceError> {
        if self.foreign.contains(&relation_id) {
            return Ok(None);
        }
        self.relations
            .get(&relation_id)
            .cloned()
            .map(Some)
            .ok_or_else(|| SourceError::UnknownRelation { relation_id })
    }
}

/// Builds a full row from a tuple. An unchanged TOAST value is taken from the
/// old tuple (REPLICA IDENTITY FULL); else, in fetch mode, it is left as a
/// hole (returned) to fill by key; else the reader stops rather than emit a
/// placeholder that compaction would make the only copy.
fn row(
    table: &TableSchema,
    tuple: &[TupleValue],
    old: Option<&[TupleValue]>,
    fetch: bool,
) -> Result<(Row, Vec<usize>), SourceError> {
    if tuple.len() != table.columns.len() {
        return Err(SourceError::RowShape {
            what: "a tuple",
            table: table.name.clone(),
            got: tuple.len(),
            want: table.columns.len(),
        });
    }
    let mut holes = Vec::new();
    let row = tuple
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let value = match (value, old.and_then(|o| o.get(i))) {
                (TupleValue::UnchangedToast, Some(old @ TupleValue::Text(_))) => old,
                (TupleValue::UnchangedToast, _) if fetch => {
                    holes.push(i);
                    return Ok(Value::Null);
                }
                (TupleValue::UnchangedToast, _) => {
                    return Err(SourceError::Unsupported {
                        table: table.name.clone(),
                        reason: format!(
                            "an UPDATE left the large (TOASTed) column {} unchanged, and with REPLICA IDENTITY DEFAULT \
                             its value is not in the stream. Run: ALTER TABLE {} REPLICA IDENTITY FULL; or restart kappa, which then \
                             fetches such values by key (unless the table is set to unchanged_toast = \"refuse\")",
                            table.columns[i].name,
                            super::setup::quote_table(&table.name)
                        ),
                    })
                }
                (value, _) => value,
            };
            column_value(table, i, value)
        })
        .collect::<Result<Row, SourceError>>()?;
    Ok((row, holes))
}

fn column_value(
    table: &TableSchema,
    index: usize,
    value: &TupleValue,
) -> Result<Value, SourceError> {
    let column = &table.columns[index];
    match value {
        TupleValue::Null => Ok(Value::Null),
        TupleValue::UnchangedToast => Err(SourceError::MissingKeyValue {
            what: "a tuple (an unchanged TOAST marker)",
            table: table.name.clone(),
            column: column.name.clone(),
        }),
        TupleValue::Text(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                SourceError::bad_value(
                    &table.name,
                    &column.name,
                    String::from_utf8_lossy(bytes),
                    "UTF-8 text",
                    e.to_string(),
                )
            })?;
            parse_value(&column.column_type, text).map_err(|reason| {
                SourceError::bad_value(&table.name, &column.name, text, &column.source_type, reason)
            })
        }
    }
}

fn key_of(table: &TableSchema, old: &[TupleValue]) -> Result<Vec<Value>, SourceError> {
    table
        .key_columns
        .iter()
        .map(|&i| {
            let value = old.get(i).ok_or_else(|| SourceError::MissingKeyValue {
                what: "the old tuple",
                table: table.name.clone(),
                column: table
                    .columns
                    .get(i)
                    .map_or_else(|| i.to_string(), |c| c.name.clone()),
            })?;
            column_value(table, i, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::types::{remember_domains, Domain};
    use kappa_schemas::ColumnType;

    /// A Relation message of `public.t` with columns `id int4` and `v` of
    /// type `v_oid`.
    /// Relation 7, `public.t (id int, v <v_oid>)`.
    fn relation_with(v_oid: u32) -> Vec<u8> {
        relation_of(7, "v", v_oid)
    }

    #[test]
    fn a_domain_created_while_streaming_is_looked_up_before_its_relation_applies() {
        // An OID no other test uses: the domain map is process-global.
        let domain_oid = 4_000_000_123u32;
        let mut decoder = ChangeDecoder::new(HashMap::from([(
            TableName::new("public", "t"),
            vec!["id".into()],
        )]));
        let mut out = Buffered::default();
        let first = decoder
            .apply(&relation_with(domain_oid), &mut out)
            .expect("apply");
        assert!(
            matches!(&first, Decoded::UnknownTypes(oids) if oids == &[domain_oid]),
            "{first:?}"
        );
        assert!(decoder.relations.is_empty(), "nothing applied yet");
        // Until the caller says it looked, the message stays unapplied.
        assert!(matches!(
            decoder.apply(&relation_with(domain_oid), &mut out),
            Ok(Decoded::UnknownTypes(_))
        ));
        // What the caller's catalog refresh finds: a domain over int8.
        remember_domains([(
            domain_oid,
            Domain::Scalar {
                base_oid: 20,
                base_modifier: -1,
            },
        )]);
        decoder.looked_up(&[domain_oid]);
        let again = decoder
            .apply(&relation_with(domain_oid), &mut out)
            .expect("apply");
        assert!(matches!(again, Decoded::Changes), "{again:?}");
        let schema = decoder.relations.get(&7).expect("relation applied");
        assert_eq!(schema.columns[1].column_type, ColumnType::Int64);
    }

    #[test]
    fn a_type_still_unknown_after_the_lookup_is_carried_as_text() {
        let mut decoder = ChangeDecoder::new(HashMap::from([(
            TableName::new("public", "t"),
            vec!["id".into()],
        )]));
        let mut out = Buffered::default();
        let unknown = 4_000_000_456u32;
        assert!(matches!(
            decoder.apply(&relation_with(unknown), &mut out),
            Ok(Decoded::UnknownTypes(_))
        ));
        decoder.looked_up(&[unknown]);
        assert!(matches!(
            decoder.apply(&relation_with(unknown), &mut out),
            Ok(Decoded::Changes)
        ));
        let schema = decoder.relations.get(&7).expect("relation applied");
        assert_eq!(schema.columns[1].column_type, ColumnType::Text);
        // The next Relation message of the same shape asks no more.
        assert!(matches!(
            decoder.apply(&relation_with(unknown), &mut out),
            Ok(Decoded::Changes)
        ));
    }

    fn relation() -> Vec<u8> {
        relation_of(1, "body", 25)
    }

    /// A Relation message: relation `id`, `public.t (id int key, <name> <oid>)`,
    /// replica identity DEFAULT.
    fn relation_of(id: u32, name: &str, oid: u32) -> Vec<u8> {
        let mut msg = vec![b'R'];
        msg.extend(id.to_be_bytes());
        msg.extend(b"public\0t\0");
        msg.push(b'd');
        msg.extend(2i16.to_be_bytes());
        for (flags, column, type_oid) in [(1u8, "id", 23u32), (0, name, oid)] {
            msg.push(flags);
            msg.extend(column.as_bytes());
            msg.push(0);
            msg.extend(type_oid.to_be_bytes());
            msg.extend((-1i32).to_be_bytes());
        }
        msg
    }

    /// An INSERT ('I') or UPDATE ('U') of id `id`; `body: None` is an
    /// unchanged TOAST value.
    fn tuple_message(tag: u8, id: &str, body: Option<&str>) -> Vec<u8> {
        let mut msg = vec![tag];
        msg.extend(1u32.to_be_bytes());
        msg.push(b'N');
        msg.extend(2i16.to_be_bytes());
        msg.push(b't');
        msg.extend((id.len() as i32).to_be_bytes());
        msg.extend(id.as_bytes());
        match body {
            None => msg.push(b'u'),
            Some(text) => {
                msg.push(b't');
                msg.extend((text.len() as i32).to_be_bytes());
                msg.extend(text.as_bytes());
            }
        }
        msg
    }

    fn decoder() -> ChangeDecoder {
        let table = TableName::new("public", "t");
        ChangeDecoder::new(HashMap::from([(table.clone(), vec!["id".to_string()])]))
            .fetch_toast_for([table])
    }

    #[tokio::test]
    async fn holes_die_with_the_changes_of_a_lost_session() {
        let mut decoder = decoder();
        let mut lost = Buffered::default();
        decoder.apply(&relation(), &mut lost).unwrap();
        decoder
            .apply(&tuple_message(b'U', "7", None), &mut lost)
            .unwrap();
        assert!(lost.has_holes());
        drop(lost);
        // The next session decodes into a new buffer: no hole of the lost one
        // may point into it. (Before, the decoder kept the holes: the next
        // hand-over filled change 0 — another key's row — by key 7.)
        let mut next = Buffered::default();
        decoder
            .apply(&tuple_message(b'I', "1", Some("x")), &mut next)
            .unwrap();
        assert!(!next.has_holes());
        let changes = next.into_changes(None).await.expect("no fetch needed");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].key(), vec![Value::Int(1)]);
    }

    #[test]
    fn a_hole_indexes_its_own_upsert() {
        let mut decoder = decoder();
        let mut buffer = Buffered::default();
        decoder.apply(&relation(), &mut buffer).unwrap();
        decoder
            .apply(&tuple_message(b'I', "1", Some("x")), &mut buffer)
            .unwrap();
        decoder
            .apply(&tuple_message(b'U', "2", None), &mut buffer)
            .unwrap();
        assert_eq!(buffer.len(), 2);
        assert!(buffer.has_holes());
        buffer.clear();
        assert!(buffer.is_empty() && !buffer.has_holes());
    }
}
