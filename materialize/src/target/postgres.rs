//! The PostgreSQL rebuild target: a real table with typed columns.
//!
//! Columns come from the latest value schema, in its field order: the SQL
//! type is the field's `kappa.source_type` when it names a PostgreSQL type
//! kappa knows, otherwise one derived from the Avro type; the primary key is
//! the key schema's fields. Records arrive in batches; each batch is reduced
//! to the newest record per key, copied into a staging table and applied in
//! one transaction (delete the batch's keys, insert its live rows). The table
//! is built under a scratch name and swapped in, with the old one dropped, in
//! one transaction at the end, so a reader sees the old table or the new one.

pub use super::shape::TargetShape;
use super::shape::{self, TypeMapping};
use super::{Applied, Finishing, TargetWriter, Written};
use crate::pg_text::copy_field;
use crate::resolve::DecodedRecord;
use anyhow::{bail, Context};
use kappa_schemas::{AvroSchema, TableName, Value};
use kappa_source::postgres::setup::{quote_ident, quote_table};
use std::collections::HashMap;
use tokio_postgres::Client;

/// `postgres://…/db?table=schema.table` → connection URL and table.
pub fn parse_url(into: &str) -> anyhow::Result<(String, TableName)> {
    let (base, query) = into.split_once('?').unwrap_or((into, ""));
    let mut table = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("table=") {
            Some(name) => table = Some(TableName::parse(name).map_err(anyhow::Error::msg)?),
            None => rest.push(pair),
        }
    }
    let Some(table) = table else {
        bail!(
            "--into {:?}: name the target table, e.g. postgres://user@host/db?table=public.orders_rebuilt",
            kappa_source::redact_url(into)
        );
    };
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, table))
}

/// PostgreSQL type names the reader writes into `kappa.source_type`, and
/// the type a rebuilt column gets for them: built-in types (and arrays of
/// them) verbatim — their text form, which is what the topic carries for
/// the untyped ones, parses back into them. Lengths are not recorded, so
/// length-limited types get their unbounded form.
fn known_source_type(source_type: &str) -> Option<String> {
    const BUILT_IN: &[&str] = &[
        "boolean",
        "bytea",
        "\"char\"",
        "name",
        "bigint",
        "smallint",
        "integer",
        "text",
        "oid",
        "json",
        "jsonb",
        "xml",
        "point",
        "lseg",
        "path",
        "box",
        "polygon",
        "line",
        "circle",
        "cidr",
        "inet",
        "macaddr",
        "macaddr8",
        "real",
        "double precision",
        "money",
        "date",
        "time without time zone",
        "time with time zone",
        "timestamp without time zone",
        "timestamp with time zone",
        "interval",
        "numeric",
        "uuid",
        "pg_lsn",
        "tsvector",
        "tsquery",
        "jsonpath",
        "int4range",
        "int8range",
        "numrange",
        "tsrange",
        "tstzrange",
        "daterange",
        "int4multirange",
        "int8multirange",
        "nummultirange",
        "tsmultirange",
        "tstzmultirange",
        "datemultirange",
    ];
    let (base, array) = match source_type.strip_suffix("[]") {
        Some(base) => (base, "[]"),
        None => (source_type, ""),
    };
    let base = match base {
        "character" => "bpchar".to_string(),
        "character varying" => "varchar".to_string(),
        "bit" | "bit varying" => "varbit".to_string(),
        known if BUILT_IN.contains(&known) => known.to_string(),
        other => {
            let inner = other.strip_prefix("numeric(")?.strip_suffix(')')?;
            let (p, s) = inner.split_once(',')?;
            let (p, s) = (p.trim().parse::<u32>().ok()?, s.trim().parse::<i32>().ok()?);
            format!("numeric({p},{s})")
        }
    };
    Some(format!("{base}{array}"))
}

/// The SQL type for an Avro field type when the source type is unknown.
fn avro_sql_type(schema: &AvroSchema) -> anyhow::Result<String> {
    Ok(match shape::first_non_null(schema)? {
        AvroSchema::Boolean => "boolean".into(),
        AvroSchema::Int => "integer".into(),
        AvroSchema::Long => "bigint".into(),
        AvroSchema::Float => "real".into(),
        AvroSchema::Double => "double precision".into(),
        AvroSchema::Decimal(d) => format!("numeric({},{})", d.precision, d.scale),
        AvroSchema::Bytes => "bytea".into(),
        AvroSchema::String => "text".into(),
        AvroSchema::Uuid => "uuid".into(),
        AvroSchema::Date => "date".into(),
        AvroSchema::TimestampMicros => "timestamp with time zone".into(),
        AvroSchema::LocalTimestampMicros => "timestamp without time zone".into(),
        AvroSchema::TimeMicros => "time without time zone".into(),
        other => bail!("Avro type {other:?} has no PostgreSQL column type in kappa"),
    })
}

/// Derives the target shape from the latest value and key schemas.
pub fn shape(value: &AvroSchema, key: &AvroSchema) -> anyhow::Result<TargetShape> {
    shape::derive(
        value,
        key,
        &TypeMapping {
            known_source_type,
            avro_sql_type,
        },
    )
}

/// A batch reduced to the newest record per key and laid out as `COPY`
/// text for the staging table, with what it counted.
pub struct Staged {
    pub text: String,
    pub upserts: u64,
    pub tombstones: u64,
}

/// Reduces a batch to the newest record per key and writes it as `COPY`
/// text (the row, or the key with NULLs for a tombstone, then the
/// tombstone flag). Pure: runs beside the transaction of the batch before.
pub fn copy_text(shape: &TargetShape, batch: &[DecodedRecord]) -> anyhow::Result<Staged> {
    let (mut upserts, mut tombstones) = (0, 0);
    let mut newest: HashMap<&[u8], &DecodedRecord> = HashMap::with_capacity(batch.len());
    for record in batch {
        match &record.row {
            Some(_) => upserts += 1,
            None => tombstones += 1,
        }
        newest.insert(&record.ord, record);
    }
    let mut text = String::with_capacity(newest.len() * 128);
    let width = shape.columns.len();
    for record in newest.values() {
        match &record.row {
            Some(row) if row.len() == width => {
                for value in row {
                    copy_field(value, &mut text);
                    text.push('\t');
                }
                text.push_str("f\n");
            }
            Some(row) => bail!("a decoded row has {} fields for {width} columns", row.len()),
            None => {
                let mut values = vec![&Value::Null; width];
                for (&i, value) in shape.key.iter().zip(&record.key) {
                    values[i] = value;
                }
                for value in values {
                    copy_field(value, &mut text);
                    text.push('\t');
                }
                text.push_str("t\n");
            }
        }
    }
    Ok(Staged {
        text,
        upserts,
        tombstones,
    })
}

/// A table being rebuilt in PostgreSQL.
pub struct PgTableBuilder {
    client: Client,
    target: TableName,
    building: TableName,
    shape: TargetShape,
    pub upserts: u64,
    pub tombstones: u64,
}

/// `<target><suffix>`, cut so that its key index `<name>_pkey` still fits
/// PostgreSQL's 63 bytes: the swap renames that index by its full name.
fn scratch_name(target: &TableName, suffix: &str) -> TableName {
    let room = 63 - suffix.len() - "_pkey".len();
    let mut base: String = target.table.clone();
    while base.len() > room {
        base.pop();
    }
    TableName::new(target.schema.clone(), format!("{base}{suffix}"))
}

impl PgTableBuilder {
    /// Creates the scratch table (replacing a leftover from a failed run)
    /// and the session's staging table.
    pub async fn create(
        client: Client,
        target: TableName,
        shape: TargetShape,
    ) -> anyhow::Result<Self> {
        let building = scratch_name(&target, "__kappa_rebuild");
        let columns = shape.column_definitions(quote_ident);
        let key = shape.key_names(quote_ident);
        let sql = format!(
            "SET client_min_messages = warning;
             DROP TABLE IF EXISTS {building}; CREATE TABLE {building} ({}, PRIMARY KEY ({}));
             CREATE TEMP TABLE kappa_stage (LIKE {building}, kappa_tombstone boolean NOT NULL) ON COMMIT DELETE ROWS;",
            columns.join(", "),
            key.join(", "),
            building = quote_table(&building),
        );
        client
            .batch_execute(&sql)
            .await
            .with_context(|| format!("creating {building} to rebuild {target} into"))?;
        Ok(Self {
            client,
            target,
            building,
            shape,
            upserts: 0,
            tombstones: 0,
        })
    }

    /// Applies a batch laid out by [`copy_text`] in one transaction.
    /// Nested loops over the key index are forced: the staging table has no
    /// statistics, and a hash join would scan the whole table per batch.
    pub async fn apply_staged(&mut self, staged: Staged) -> anyhow::Result<()> {
        self.upserts += staged.upserts;
        self.tombstones += staged.tombstones;
        let text = staged.text;
        let building = quote_table(&self.building);
        let columns: Vec<String> = self
            .shape
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        let key_names: Vec<String> = self
            .shape
            .key
            .iter()
            .map(|&i| quote_ident(&self.shape.columns[i].name))
            .collect();
        let key_match: Vec<String> = key_names.iter().map(|c| format!("b.{c} = s.{c}")).collect();
        let updates: Vec<String> = self
            .shape
            .columns
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.shape.key.contains(i))
            .map(|(_, c)| format!("{0} = EXCLUDED.{0}", quote_ident(&c.name)))
            .collect();
        let on_conflict = if updates.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        let context = || format!("applying a batch to {}", self.building);
        self.client
            .batch_execute("BEGIN")
            .await
            .with_context(context)?;
        let sink = self
            .client
            .copy_in("COPY kappa_stage FROM STDIN")
            .await
            .with_context(context)?;
        futures::pin_mut!(sink);
        futures::SinkExt::send(&mut sink, bytes::Bytes::from(text))
            .await
            .with_context(context)?;
        sink.as_mut().finish().await.with_context(context)?;
        self.client
            .batch_execute(&format!(
                "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;
                 DELETE FROM {building} b USING kappa_stage s WHERE s.kappa_tombstone AND {};
                 INSERT INTO {building} ({cols}) SELECT {cols} FROM kappa_stage WHERE NOT kappa_tombstone
                   ON CONFLICT ({keys}) {on_conflict};
                 COMMIT;",
                key_match.join(" AND "),
                cols = columns.join(", "),
                keys = key_names.join(", "),
            ))
            .await
            .with_context(context)?;
        Ok(())
    }

    /// Swaps the finished table in for the target in one transaction and
    /// returns the number of live rows.
    pub async fn finish(self, comment: &str) -> anyhow::Result<u64> {
        let target = quote_table(&self.target);
        let building = quote_table(&self.building);
        let old_key = quote_ident(&format!("{}_pkey", self.building.table));
        let new_key = quote_ident(&format!("{}_pkey", self.target.table));
        let index_schema = quote_ident(&self.target.schema);
        self.client
            .batch_execute(&format!(
                "BEGIN; DROP TABLE IF EXISTS {target};
                 ALTER TABLE {building} RENAME TO {name};
                 ALTER INDEX {index_schema}.{old_key} RENAME TO {new_key};
                 COMMENT ON TABLE {target} IS '{comment}';
                 COMMIT;",
                name = quote_ident(&self.target.table),
                comment = comment.replace('\'', "''"),
            ))
            .await
            .with_context(|| format!("swapping the rebuilt table in as {}", self.target))?;
        let live: i64 = self
            .client
            .query_one(&format!("SELECT count(*) FROM {target}"), &[])
            .await?
            .get(0);
        Ok(live as u64)
    }

    /// Drops the scratch table (a failed or refused rebuild leaves nothing).
    pub async fn discard(self) {
        let building = quote_table(&self.building);
        if let Err(e) = self
            .client
            .batch_execute(&format!("DROP TABLE IF EXISTS {building}"))
            .await
        {
            tracing::warn!(table = %self.building, error = %e, "could not drop the scratch table of an abandoned rebuild");
        }
    }
}

/// Records per PostgreSQL transaction, at most.
const PG_BATCH: usize = 20_000;

/// The PostgreSQL target behind [`TargetWriter`]: batches are laid out as
/// COPY text here while the batch before is applied by PostgreSQL on the
/// applier task. One staged batch waits at most, so memory stays bounded;
/// while PostgreSQL is busy, records gather (up to [`PG_BATCH`]) so that
/// transactions stay large.
pub struct PgWriter {
    shape: TargetShape,
    pending: Vec<DecodedRecord>,
    staged: tokio::sync::mpsc::Sender<Staged>,
    /// Taken when awaited.
    applier: Option<tokio::task::JoinHandle<anyhow::Result<PgTableBuilder>>>,
}

impl PgWriter {
    /// Creates the scratch table for `table` on the server at `url`, typed
    /// from the value schema `value` and the key schema `key`.
    pub async fn open(
        url: &str,
        password: Option<&str>,
        table: &TableName,
        value: &AvroSchema,
        key: &AvroSchema,
    ) -> anyhow::Result<Self> {
        let shape = shape(value, key)?;
        let client = kappa_source::postgres::connect(url, password).await?;
        let mut builder = PgTableBuilder::create(client, table.clone(), shape.clone()).await?;
        let (staged, mut staged_rx) = tokio::sync::mpsc::channel::<Staged>(1);
        let applier = tokio::spawn(async move {
            while let Some(batch) = staged_rx.recv().await {
                builder.apply_staged(batch).await?;
            }
            anyhow::Ok(builder)
        });
        Ok(Self {
            shape,
            pending: Vec::with_capacity(PG_BATCH),
            staged,
            applier: Some(applier),
        })
    }

    /// The applier's end: the builder once every staged batch is applied,
    /// or the error that stopped it.
    async fn applier(&mut self) -> anyhow::Result<PgTableBuilder> {
        let Some(applier) = self.applier.take() else {
            bail!("the PostgreSQL applier stopped");
        };
        applier.await.context("PostgreSQL applier task")?
    }

    /// Hands the pending records to the applier, waiting for it if `wait`
    /// (else only when it is free).
    async fn stage(&mut self, wait: bool) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let sent = if wait {
            match self.staged.reserve().await {
                Ok(permit) => {
                    permit.send(copy_text(&self.shape, &self.pending)?);
                    true
                }
                Err(_) => false,
            }
        } else {
            match self.staged.try_reserve() {
                Ok(permit) => {
                    permit.send(copy_text(&self.shape, &self.pending)?);
                    true
                }
                Err(tokio::sync::mpsc::error::TrySendError::Full(())) => return Ok(()),
                Err(tokio::sync::mpsc::error::TrySendError::Closed(())) => false,
            }
        };
        if !sent {
            // The applier failed: its error is the one to report.
            self.applier().await?;
            bail!("the PostgreSQL applier stopped");
        }
        self.pending.clear();
        Ok(())
    }
}

impl TargetWriter for PgWriter {
    const KEEPS_RECORD_BYTES: bool = false;

    async fn apply(&mut self, batch: Vec<Applied>) -> anyhow::Result<()> {
        self.pending.extend(batch.into_iter().map(|a| a.record));
        let full = self.pending.len() >= PG_BATCH;
        self.stage(full).await
    }

    async fn finish(mut self, end: Finishing<'_>) -> anyhow::Result<Written> {
        self.stage(true).await?;
        let (closed, _) = tokio::sync::mpsc::channel(1);
        drop(std::mem::replace(&mut self.staged, closed));
        let builder = self.applier().await?;
        let (upserts, tombstones) = (builder.upserts, builder.tombstones);
        let live_keys = builder.finish(&end.table_comment()?).await?;
        Ok(Written {
            upserts,
            tombstones,
            live_keys,
        })
    }

    async fn abort(mut self) {
        let (closed, _) = tokio::sync::mpsc::channel(1);
        drop(std::mem::replace(&mut self.staged, closed));
        if let Ok(builder) = self.applier().await {
            builder.discard().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_urls_name_their_table() {
        let (url, table) = parse_url("postgres://u@h:5432/db?table=public.t_rebuilt").unwrap();
        assert_eq!(url, "postgres://u@h:5432/db");
        assert_eq!(table, TableName::new("public", "t_rebuilt"));
        let (url, _) = parse_url("postgres://u@h/db?sslmode=disable&table=s.t").unwrap();
        assert_eq!(url, "postgres://u@h/db?sslmode=disable");
        assert!(parse_url("postgres://u@h/db").is_err());
    }

    #[test]
    fn a_long_target_name_leaves_room_for_the_key_index_name() {
        let target = TableName::new("s", "t".repeat(63));
        let scratch = scratch_name(&target, "__kappa_rebuild");
        assert!(scratch.table.ends_with("__kappa_rebuild"));
        assert_eq!(format!("{}_pkey", scratch.table).len(), 63);
    }

    #[test]
    fn columns_take_source_types_and_fall_back_on_avro() {
        let value = AvroSchema::parse_str(
            r#"{"type":"record","name":"V","fields":[
                {"name":"id","type":"long","kappa.source_type":"bigint","kappa.column":"id"},
                {"name":"n","type":["null",{"type":"bytes","logicalType":"decimal","precision":12,"scale":3}],"default":null,"kappa.source_type":"numeric(12,3)"},
                {"name":"at_tz","type":["null",{"type":"long","logicalType":"timestamp-micros"}],"default":null,"kappa.source_type":"datetime(6)","kappa.column":"at tz"},
                {"name":"c","type":["null","string"],"default":null,"kappa.source_type":"character"}]}"#,
        )
        .unwrap();
        let key = AvroSchema::parse_str(
            r#"{"type":"record","name":"K","fields":[{"name":"id","type":"long"}]}"#,
        )
        .unwrap();
        let shape = shape(&value, &key).unwrap();
        let types: Vec<&str> = shape.columns.iter().map(|c| c.sql_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "bigint",
                "numeric(12,3)",
                "timestamp with time zone",
                "bpchar"
            ]
        );
        assert_eq!(shape.columns[2].name, "at tz");
        assert_eq!(shape.key, vec![0]);
    }
}
