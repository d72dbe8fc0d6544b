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

/// A [`SourceError::SlotRefused`] checked against the catalog. The server's
/// SQLSTATEs 42704 and 55000 say the slot is missing or invalidated, but
/// also a missing publication (pgoutput's "publication … does not exist")
/// or a server setting; the slot-refused message tells the user to drop the
/// slot and re-snapshot, which for a healthy slot would throw its position
/// away. So when the slot exists and still holds its WAL, the error is the
/// server's refusal as it was (a `ReplicationStream` error, whose message is
/// the server's and names what it refused). Any other error, and a refusal
/// whose slot cannot be looked up, is returned unchanged.
pub async fn confirm_slot_refusal(
    url: &str,
    password: Option<&str>,
    error: SourceError,
) -> SourceError {
    let SourceError::SlotRefused { slot, source } = error else {
        return error;
    };
    let healthy = match super::connect(url, password).await {
        Ok(client) => matches!(
            slot_info(&client, &slot).await,
            Ok(Some(info)) if info.wal_status.as_deref() != Some("lost")
        ),
        Err(_) => false,
    };
    if healthy {
        SourceError::ReplicationStream {
            slot,
            doing: "streaming (the slot exists and holds its WAL; the server refused for the reason it gives)",
            source,
        }
    } else {
        SourceError::SlotRefused { slot, source }
    }
}

/// Checks that an existing slot can serve kappa: logical, pgoutput, this
/// database, WAL not lost.
pub fn check_slot(slot: &str, info: &SlotInfo, database: &str) -> Result<(), SourceError> {
    if info.plugin.as_deref() != Some("pgoutput") {
        return Err(SourceError::SlotPlugin {
            slot: slot.to_string(),
            plugin: info.plugin.clone(),
        });
    }
    if info.database.as_deref() != Some(database) {
        return Err(SourceError::SlotDatabase {
            slot: slot.to_string(),
            found: info.database.clone(),
            database: database.to_string(),
        });
    }
    if info.wal_status.as_deref() == Some("lost") {
        return Err(SourceError::SlotWalLost {
            slot: slot.to_string(),
        });
    }
    Ok(())
}

/// How long a slot may stay held by another process before start gives up.
/// A connector killed a moment ago keeps its slot until PostgreSQL notices
/// the dead connection (usually within a second).
pub const SLOT_RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until no other process streams from `slot`: START_REPLICATION on a
/// slot held elsewhere fails, and the usual holder is this connector's own
/// previous process, killed and not yet reaped by the server. A holder that
/// stays is a second connector with the same slot: a clear error, naming it.
pub async fn wait_slot_released(
    client: &Client,
    slot: &str,
    timeout: std::time::Duration,
) -> Result<(), SourceError> {
    let started = std::time::Instant::now();
    let mut warned = false;
    loop {
        let row = client
            .query_opt(
                "SELECT active_pid, (SELECT application_name FROM pg_stat_activity a WHERE a.pid = s.active_pid)
                 FROM pg_replication_slots s WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(query_error(format!("looking up replication slot {slot}")))?;
        let Some((pid, holder)) = row.and_then(|r| {
            r.get::<_, Option<i32>>(0)
                .map(|pid| (pid, r.get::<_, Option<String>>(1)))
        }) else {
            return Ok(());
        };
        let holder = holder.unwrap_or_default();
        if started.elapsed() >= timeout {
            return Err(SourceError::SlotInUse {
                slot: slot.to_string(),
                pid,
                holder,
                seconds: timeout.as_secs(),
            });
        }
        if !warned {
            tracing::warn!(%slot, pid, %holder, "replication slot is in use; waiting for it to be released");
            warned = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// How many bytes of WAL the slot holds back: `pg_current_wal_lsn()` minus
/// its confirmed position. `None` when the slot does not exist.
pub async fn slot_lag_bytes(client: &Client, slot: &str) -> Result<Option<i64>, SourceError> {
    let row = client
        .query_opt(
            "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::int8 FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(query_error(format!("measuring the lag of slot {slot}")))?;
    Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)))
}
