//! Publication and replication-slot housekeeping on the source database.

use crate::error::SourceError;
use kappa_schemas::{Lsn, TableName};
use tokio_postgres::Client;

/// Double-quotes an identifier for SQL.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// `"schema"."table"`.
pub fn quote_table(table: &TableName) -> String {
    format!(
        "{}.{}",
        quote_ident(&table.schema),
        quote_ident(&table.table)
    )
}

fn query_error(doing: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> SourceError {
    let doing = doing.into();
    move |source| SourceError::Query { doing, source }
}

/// Makes sure `publication` exists and publishes every table in `tables`.
/// It must exist before the slot: decoding looks it up by name.
pub async fn ensure_publication(
    client: &Client,
    publication: &str,
    tables: &[TableName],
) -> Result<(), SourceError> {
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(query_error(format!("looking up publication {publication}")))?
        .is_some();
    let list = tables
        .iter()
        .map(quote_table)
        .collect::<Vec<_>>()
        .join(", ");
    if !exists {
        tracing::info!(publication, tables = %list, "creating publication");
        client
            .batch_execute(&format!(
                "CREATE PUBLICATION {} FOR TABLE {list} WITH (publish_via_partition_root = true)",
                quote_ident(publication)
            ))
            .await
            .map_err(query_error(format!("creating publication {publication}")))?;
        return Ok(());
    }
    // Partitions' changes must arrive as their partitioned table's.
    let via_root: bool = client
        .query_one(
            "SELECT pubviaroot FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(query_error(format!("reading publication {publication}")))?
        .get(0);
    if !via_root {
        client
            .batch_execute(&format!(
                "ALTER PUBLICATION {} SET (publish_via_partition_root = true)",
                quote_ident(publication)
            ))
            .await
            .map_err(query_error(format!(
                "setting publish_via_partition_root on {publication}"
            )))?;
    }
    for table in tables {
        let published = client
            .query_opt(
                "SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
                &[&publication, &table.schema, &table.table],
            )
            .await
            .map_err(query_error(format!("checking publication {publication}")))?
            .is_some();
        if !published {
            tracing::info!(publication, %table, "adding table to publication");
            client
                .batch_execute(&format!(
                    "ALTER PUBLICATION {} ADD TABLE {}",
                    quote_ident(publication),
                    quote_table(table)
                ))
                .await
                .map_err(query_error(format!(
                    "adding {table} to publication {publication}"
                )))?;
        }
    }
    Ok(())
}

/// What the server says about a replication slot.
#[derive(Debug, Clone)]
pub struct SlotInfo {
    pub plugin: Option<String>,
    pub database: Option<String>,
    pub confirmed_flush: Option<Lsn>,
    pub wal_status: Option<String>,
}

/// Looks up a replication slot by name.
pub async fn slot_info(client: &Client, slot: &str) -> Result<Option<SlotInfo>, SourceError> {
    let row = client
        .query_opt(
            "SELECT plugin::text, database::text, confirmed_flush_lsn::text, wal_status
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(query_error(format!("looking up replication slot {slot}")))?;
    Ok(row.map(|row| SlotInfo {
        plugin: row.get(0),
        database: row.get(1),
        confirmed_flush: row
            .get::<_, Option<String>>(2)
            .and_then(|t| Lsn::parse(&t).ok()),
        wal_status: row.get(3),
    }))
}

/// Checks that an existing slot can serve kappa: logical, pgoutput, this
/// database, WAL not lost.
pub fn check_slot(slot: &str, info: &SlotInfo, database: &str) -> Result<(), SourceError> {
    if info.plugin.as_deref() != Some("pgoutput") {
        return Err(SourceError::Setup(format!(
            "replication slot {slot} exists but uses plugin {:?}, not pgoutput; choose another `slot` name in the config",
            info.plugin
        )));
    }
    if info.database.as_deref() != Some(database) {
        return Err(SourceError::Setup(format!(
            "replication slot {slot} belongs to database {:?}, not {database}; choose another `slot` name",
            info.database
        )));
    }
    if info.wal_status.as_deref() == Some("lost") {
        return Err(SourceError::Setup(format!(
            "replication slot {slot} has lost WAL it still needed (wal_status = lost): changes are gone. \
             Drop the slot (SELECT pg_drop_replication_slot('{slot}')), delete the topics and the connector's \
             offsets record, and start again to re-snapshot"
        )));
    }
    Ok(())
}
