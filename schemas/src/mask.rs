//! Column masking for personal data (GDPR): columns are left out, hashed or
//! replaced by a constant before a record leaves the process, so no topic,
//! broker or consumer ever holds the original. Shared by every reader: it
//! works on [`Change`]s, whatever their source.

use crate::change::Change;
use crate::error::SchemaError;
use crate::table::{Column, ColumnType, TableName, TableSchema};
use crate::value::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// What happens to one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnRule {
    /// Left out of the record (and of its schema).
    Exclude,
    /// Replaced by the hex SHA-256 of a secret salt and the value: equal
    /// values stay equal (joins still work), the value is not readable.
    Hash,
    /// Replaced by a fixed text.
    Constant(String),
}

#[derive(Debug, Clone)]
enum Action {
    Keep(usize),
    Hash(usize),
    Constant(usize, String),
}

struct Plan {
    source: Arc<TableSchema>,
    masked: Arc<TableSchema>,
    actions: Vec<Action>,
}

/// The masking rules of every table, and the masked shapes derived from them.
pub struct Masking {
    rules: HashMap<TableName, Vec<(String, ColumnRule)>>,
    salt: String,
    plans: HashMap<TableName, Plan>,
}

impl Masking {
    pub fn new(rules: HashMap<TableName, Vec<(String, ColumnRule)>>, salt: String) -> Self {
        Self {
            rules,
            salt,
            plans: HashMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// One table's rules and the salt, for verify's SQL oracle (which masks in SQL).
    pub fn rules(&self, table: &TableName) -> Option<(&[(String, ColumnRule)], &str)> {
        (self.rules.get(table)).map(|rules| (rules.as_slice(), self.salt.as_str()))
    }

    /// Masks one change. Tables without rules pass through untouched.
    pub fn apply(&mut self, change: Change) -> Result<Change, SchemaError> {
        let table = change.table().clone();
        let Some(rules) = self.rules.get(&table.name) else {
            return Ok(change);
        };
        match self.plans.get_mut(&table.name) {
            Some(p) if Arc::ptr_eq(&p.source, &table) => {}
            // The same shape under another pointer (a new Relation message,
            // snapshot vs stream): keep the plan, remember the pointer, so
            // the next change takes the cheap comparison.
            Some(p) if *p.source == *table => p.source = table.clone(),
            _ => {
                let plan = plan(&table, rules)?;
                self.plans.insert(table.name.clone(), plan);
            }
        }
        let Some(plan) = self.plans.get(&table.name) else {
            unreachable!("planned just above")
        };
        Ok(match change {
            Change::Upsert { row, .. } => Change::Upsert {
                table: plan.masked.clone(),
                row: plan.actions.iter().map(|a| self.value(a, &row)).collect(),
            },
            Change::Delete { key, .. } => Change::Delete {
                table: plan.masked.clone(),
                key: table
                    .key_columns
                    .iter()
                    .zip(key)
                    .map(|(&i, value)| {
                        let action = plan
                            .actions
                            .iter()
                            .find(|a| matches!(a, Action::Hash(j) if *j == i));
                        match action {
                            Some(_) => self.hash(&value),
                            None => value,
                        }
                    })
                    .collect(),
            },
        })
    }

    fn value(&self, action: &Action, row: &[Value]) -> Value {
        mask_value(&self.salt, action, row)
    }

    /// The masked form of a value (NULL stays NULL).
    pub fn hash(&self, value: &Value) -> Value {
        hash(&self.salt, value)
    }

    /// The masking of one table, standalone (for `verify`, which masks the
    /// source rows the same way before comparing them with the topic's).
    /// `None` when the table has no rules.
    pub fn table(&self, table: &Arc<TableSchema>) -> Result<Option<TableMask>, SchemaError> {
        let Some(rules) = self.rules.get(&table.name) else {
            return Ok(None);
        };
        let plan = plan(table, rules)?;
        Ok(Some(TableMask {
            masked: plan.masked,
            actions: plan.actions,
            salt: self.salt.clone(),
        }))
    }
}

fn hash(salt: &str, value: &Value) -> Value {
    if matches!(value, Value::Null) {
        return Value::Null;
    }
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    match value {
        Value::Text(text) => hasher.update(text.as_bytes()),
        Value::Bytes(bytes) => hasher.update(bytes),
        other => hasher.update(other.to_string().as_bytes()),
    }
    let digest = hasher.finalize();
    Value::Text(format!("{digest:x}"))
}

/// One table's masking: the masked shape, and rows of the source shape
/// turned into it exactly as the readers do before encoding.
pub struct TableMask {
    masked: Arc<TableSchema>,
    actions: Vec<Action>,
    salt: String,
}

impl TableMask {
    /// The shape of masked rows (excluded columns gone, masked ones text).
    pub fn schema(&self) -> &Arc<TableSchema> {
        &self.masked
    }

    /// Whether a key column is hashed: masked keys then no longer sort, nor
    /// can be looked up, like the source's.
    pub fn hashes_key(&self) -> bool {
        self.masked
            .key_columns
            .iter()
            .any(|&k| matches!(self.actions.get(k), Some(Action::Hash(_))))
    }

    /// Masks a row of the source shape.
    pub fn row(&self, row: &[Value]) -> Vec<Value> {
        self.actions
            .iter()
            .map(|a| mask_value(&self.salt, a, row))
            .collect()
    }
}

fn mask_value(salt: &str, action: &Action, row: &[Value]) -> Value {
    match action {
        Action::Keep(i) => row[*i].clone(),
        Action::Hash(i) => hash(salt, &row[*i]),
        Action::Constant(i, text) => match row[*i] {
            Value::Null => Value::Null,
            _ => Value::Text(text.clone()),
        },
    }
}

fn plan(table: &Arc<TableSchema>, rules: &[(String, ColumnRule)]) -> Result<Plan, SchemaError> {
    for (column, _) in rules {
        if table.column_index(column).is_none() {
            return Err(SchemaError::Column {
                table: table.name.clone(),
                column: column.clone(),
                reason: "is named in a masking rule but the table has no such column".into(),
            });
        }
    }
    let mut columns = Vec::new();
    let mut actions = Vec::new();
    let mut key_columns = vec![0; table.key_columns.len()];
    for (i, column) in table.columns.iter().enumerate() {
        let rule = rules
            .iter()
            .find(|(name, _)| name == &column.name)
            .map(|(_, r)| r);
        let key_position = table.key_columns.iter().position(|&k| k == i);
        if key_position.is_some()
            && matches!(rule, Some(ColumnRule::Exclude | ColumnRule::Constant(_)))
        {
            return Err(SchemaError::Column {
                table: table.name.clone(),
                column: column.name.clone(),
                reason: "is a key column: it can be hashed (keys stay distinct) but not left out or made constant".into(),
            });
        }
        let masked_column = |source_type: String| Column {
            name: column.name.clone(),
            column_type: ColumnType::Text,
            nullable: column.nullable,
            source_type,
        };
        match rule {
            Some(ColumnRule::Exclude) => continue,
            Some(ColumnRule::Hash) => {
                actions.push(Action::Hash(i));
                columns.push(masked_column(format!("sha256({})", column.source_type)));
            }
            Some(ColumnRule::Constant(text)) => {
                actions.push(Action::Constant(i, text.clone()));
                columns.push(masked_column(format!("masked({})", column.source_type)));
            }
            None => {
                actions.push(Action::Keep(i));
                columns.push(column.clone());
            }
        }
        if let Some(position) = key_position {
            key_columns[position] = columns.len() - 1;
        }
    }
    Ok(Plan {
        source: table.clone(),
        masked: Arc::new(TableSchema {
            name: table.name.clone(),
            columns,
            key_columns,
        }),
        actions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, column_type: ColumnType, nullable: bool) -> Column {
        Column {
            name: name.into(),
            column_type,
            nullable,
            source_type: "t".into(),
        }
    }

    fn users() -> Arc<TableSchema> {
        Arc::new(TableSchema {
            name: TableName::new("public", "users"),
            columns: vec![
                column("email", ColumnType::Text, false),
                column("ssn", ColumnType::Text, true),
                column("phone", ColumnType::Text, true),
                column("age", ColumnType::Int32, true),
            ],
            key_columns: vec![0],
        })
    }

    fn masking(rules: Vec<(&str, ColumnRule)>) -> Masking {
        let rules = rules.into_iter().map(|(c, r)| (c.to_string(), r)).collect();
        Masking::new(
            HashMap::from([(TableName::new("public", "users"), rules)]),
            "salt".into(),
        )
    }

    #[test]
    fn excludes_hashes_and_replaces_before_encoding() {
        let mut m = masking(vec![
            ("email", ColumnRule::Hash),
            ("ssn", ColumnRule::Exclude),
            ("phone", ColumnRule::Constant("***".into())),
        ]);
        let row = vec![
            Value::Text("a@b.c".into()),
            Value::Text("123-45-6789".into()),
            Value::Text("555".into()),
            Value::Int(40),
        ];
        let Change::Upsert { table, row } = m
            .apply(Change::Upsert {
                table: users(),
                row,
            })
            .unwrap()
        else {
            panic!("not an upsert")
        };
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["email", "phone", "age"]);
        assert_eq!(table.key_columns, vec![0]);
        assert_eq!(row[0], m.hash(&Value::Text("a@b.c".into())));
        assert_ne!(row[0], Value::Text("a@b.c".into()));
        assert_eq!(row[1], Value::Text("***".into()));
        assert_eq!(row[2], Value::Int(40));
        // A delete's key is hashed the same way, so the tombstone hits the row's key.
        let Change::Delete { key, .. } = m
            .apply(Change::Delete {
                table: users(),
                key: vec![Value::Text("a@b.c".into())],
            })
            .unwrap()
        else {
            panic!("not a delete")
        };
        assert_eq!(key[0], row[0]);
    }

    #[test]
    fn a_table_mask_masks_rows_as_the_readers_do() {
        let m = masking(vec![
            ("email", ColumnRule::Hash),
            ("ssn", ColumnRule::Exclude),
            ("phone", ColumnRule::Constant("***".into())),
        ]);
        let row = vec![
            Value::Text("a@b.c".into()),
            Value::Text("123-45-6789".into()),
            Value::Null,
            Value::Int(40),
        ];
        let mask = m.table(&users()).unwrap().expect("users has rules");
        assert!(mask.hashes_key());
        let names: Vec<&str> = mask
            .schema()
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["email", "phone", "age"]);
        let Change::Upsert { row: expected, .. } = masking(vec![
            ("email", ColumnRule::Hash),
            ("ssn", ColumnRule::Exclude),
            ("phone", ColumnRule::Constant("***".into())),
        ])
        .apply(Change::Upsert {
            table: users(),
            row: row.clone(),
        })
        .unwrap() else {
            panic!("not an upsert")
        };
        assert_eq!(mask.row(&row), expected);
        let mut other = users().as_ref().clone();
        other.name = TableName::new("public", "other");
        assert!(m.table(&Arc::new(other)).unwrap().is_none());
    }

    #[test]
    fn refuses_to_drop_a_key_or_an_unknown_column() {
        let mut m = masking(vec![("email", ColumnRule::Exclude)]);
        let change = Change::Upsert {
            table: users(),
            row: vec![Value::Null; 4],
        };
        assert!(m
            .apply(change.clone())
            .unwrap_err()
            .to_string()
            .contains("key column"));
        let mut m = masking(vec![("nope", ColumnRule::Hash)]);
        assert!(m
            .apply(change)
            .unwrap_err()
            .to_string()
            .contains("no such column"));
    }
}
