//! The keys of one table that the stream changed since a re-snapshot was
//! requested (DBLog with keys tracked from the request, see
//! `postgres::resnapshot` and `mysql::resnapshot`): a chunk row with such a
//! key is dropped, the stream's own newer change carries it.

use kappa_schemas::{row_bytes, Change, Row, TableName, Value};
use std::collections::HashSet;

/// Keys are kept as exact bytes ([`row_bytes`]): a display form could make
/// two keys equal and drop an unchanged row from a chunk.
#[derive(Debug)]
pub(crate) struct ChangedKeys {
    table: TableName,
    keys: HashSet<Vec<u8>>,
}

impl ChangedKeys {
    /// Tracks changes of `table`.
    pub(crate) fn new(table: TableName) -> Self {
        Self {
            table,
            keys: HashSet::new(),
        }
    }

    /// Notes the keys of the changes to the table among `changes`.
    pub(crate) fn observe(&mut self, changes: &[Change]) {
        for change in changes {
            if change.table().name == self.table {
                self.keys.insert(row_bytes::encode(&change.key()));
            }
        }
    }

    /// Whether the stream changed the key of `row` (key columns at
    /// `key_columns`) since the request.
    pub(crate) fn touched(&self, row: &Row, key_columns: &[usize]) -> bool {
        let key: Vec<Value> = key_columns.iter().map(|&i| row[i].clone()).collect();
        self.keys.contains(&row_bytes::encode(&key))
    }

    /// How many keys were changed.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn keys_differing_past_a_display_prefix_stay_apart() {
        let name = TableName::new("db", "t");
        let schema = Arc::new(kappa_schemas::TableSchema {
            name: name.clone(),
            columns: Vec::new(),
            key_columns: vec![0],
        });
        let long = |last: u8| {
            let mut bytes = vec![7u8; 100];
            bytes.push(last);
            Value::Bytes(bytes)
        };
        let mut keys = ChangedKeys::new(name);
        keys.observe(&[Change::Delete {
            table: schema,
            key: vec![long(1)],
        }]);
        assert!(keys.touched(&vec![long(1), Value::Int(5)], &[0]));
        assert!(!keys.touched(&vec![long(2), Value::Int(5)], &[0]));
        assert_eq!(keys.len(), 1);
    }
}
