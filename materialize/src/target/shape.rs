//! The shape of a typed rebuild target, shared by the PostgreSQL and MySQL
//! targets: columns in the latest value schema's field order, named by the
//! field's `kappa.column` (the source column's name), typed by the target's
//! own mapping, and the key schema's fields as the primary key. Only the
//! type mapping differs between targets.

use anyhow::{bail, Context};
use kappa_schemas::AvroSchema;

/// One column of the target table.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetColumn {
    pub name: String,
    pub sql_type: String,
}

/// The target table's shape: columns in value-schema field order, and the
/// positions of the key columns in key order.
#[derive(Debug, Clone)]
pub struct TargetShape {
    pub columns: Vec<TargetColumn>,
    pub key: Vec<usize>,
}

impl TargetShape {
    /// `name type` of every column, names quoted with the target's `quote`.
    pub fn column_definitions(&self, quote: fn(&str) -> String) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| format!("{} {}", quote(&c.name), c.sql_type))
            .collect()
    }

    /// The key columns' names, quoted with the target's `quote`.
    pub fn key_names(&self, quote: fn(&str) -> String) -> Vec<String> {
        self.key
            .iter()
            .map(|&i| quote(&self.columns[i].name))
            .collect()
    }
}

/// A target's type mapping: the type for a field's `kappa.source_type` when
/// the target knows it, and the type derived from the Avro type otherwise.
pub struct TypeMapping {
    pub known_source_type: fn(&str) -> Option<String>,
    pub avro_sql_type: fn(&AvroSchema) -> anyhow::Result<String>,
}

/// The first non-null branch of a union (`["null", T]`, or for a decimal or
/// timestamp with its text forms `["null", T, "string"]`): it decides the
/// column type. Other schemas are their own.
pub fn first_non_null(schema: &AvroSchema) -> anyhow::Result<&AvroSchema> {
    match schema {
        AvroSchema::Union(union) => union
            .variants()
            .iter()
            .find(|v| !matches!(v, AvroSchema::Null))
            .with_context(|| format!("union {schema:?} has no non-null type")),
        other => Ok(other),
    }
}

/// Derives the target shape from the latest value and key schemas.
pub fn derive(
    value: &AvroSchema,
    key: &AvroSchema,
    mapping: &TypeMapping,
) -> anyhow::Result<TargetShape> {
    let (AvroSchema::Record(value), AvroSchema::Record(key)) = (value, key) else {
        bail!("the topic's value and key schemas must be Avro records");
    };
    let text_attribute = |field: &apache_avro::schema::RecordField, name: &str| {
        field
            .custom_attributes
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let mut columns = Vec::with_capacity(value.fields.len());
    for field in &value.fields {
        let sql_type = match text_attribute(field, "kappa.source_type")
            .as_deref()
            .and_then(mapping.known_source_type)
        {
            Some(t) => t,
            None => (mapping.avro_sql_type)(&field.schema)
                .with_context(|| format!("value field {}", field.name))?,
        };
        columns.push(TargetColumn {
            name: text_attribute(field, "kappa.column").unwrap_or_else(|| field.name.clone()),
            sql_type,
        });
    }
    let mut key_positions = Vec::with_capacity(key.fields.len());
    for field in &key.fields {
        let position = value
            .fields
            .iter()
            .position(|f| f.name == field.name)
            .with_context(|| {
                format!(
                    "key field {} is not a field of the value schema",
                    field.name
                )
            })?;
        key_positions.push(position);
    }
    Ok(TargetShape {
        columns,
        key: key_positions,
    })
}
