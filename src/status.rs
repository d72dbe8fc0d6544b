//! `kappa status`: where a connector stands — its slot and how much WAL it
//! holds back, which snapshots are complete, and what its topics hold.

use crate::config::Config;
use kappa_schemas::{BinlogPosition, Lsn};
use kappa_sink::topics::table_topic;
use kappa_source::postgres::{connect, setup, PostgresSource};
use kappa_source::Source;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;

/// Prints the status; fails when the slot is missing or its WAL is lost.
pub async fn status(config: &Config) -> anyhow::Result<bool> {
    if let crate::config::SourceKind::Mysql(_) = config.source_kind()? {
        return mysql_status(config).await;
    }
    let postgres = config.postgres()?;
    let client = connect(&postgres.url, postgres.password.as_deref()).await?;
    println!("connector  {}", config.name);
    let mut healthy = true;
    match setup::slot_info(&client, &postgres.slot).await? {
        None => {
            healthy = false;
            println!("slot       {}  MISSING", postgres.slot);
        }
        Some(info) => {
            let lag = setup::slot_lag_bytes(&client, &postgres.slot).await?;
            let wal_status = info.wal_status.clone().unwrap_or_else(|| "?".into());
            healthy &= wal_status != "lost";
            println!(
                "slot       {}  confirmed_flush_lsn={}  wal_status={}  lag_bytes={}",
                postgres.slot,
                info.confirmed_flush
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "-".into()),
                wal_status,
                lag.map(|l| l.to_string()).unwrap_or_else(|| "-".into())
            );
        }
    }
    let kafka = config.kafka();
    let state =
        crate::state::load::<Lsn>(&kafka, &config.kafka.offsets_topic, &config.name).await?;
    match &state {
        Some(state) => println!(
            "snapshot   complete for {} table(s): {}",
            state.snapshotted.len(),
            state.snapshotted_list()
        ),
        None => println!(
            "snapshot   not yet complete (no offsets record in {})",
            config.kafka.offsets_topic
        ),
    }
    let tables = PostgresSource::open(postgres).await?.tables();
    let consumer: BaseConsumer = kafka.client_config().create()?;
    for table in tables {
        let topic = table_topic(&config.kafka.topic_prefix, &table);
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut offsets = Vec::new();
        for partition in &partitions {
            let (low, high) =
                consumer.fetch_watermarks(&topic, *partition, Duration::from_secs(10))?;
            offsets.push(format!("{partition}:{low}..{high}"));
        }
        println!(
            "topic      {topic}  partitions={}  offsets={}",
            partitions.len(),
            offsets.join(" ")
        );
    }
    Ok(healthy)
}

/// MySQL: the stored binlog position against the server's binlogs; fails
/// when the stored position was purged.
async fn mysql_status(config: &Config) -> anyhow::Result<bool> {
    let mysql = config.mysql()?;
    println!("connector  {}", config.name);
    let state = crate::state::load::<BinlogPosition>(
        &config.kafka(),
        &config.kafka.offsets_topic,
        &config.name,
    )
    .await?;
    let mut conn = kappa_source::mysql::connect(&mysql.url, mysql.password.as_deref()).await?;
    let current = kappa_source::mysql::snapshot::current_position(&mut conn).await?;
    println!("server     binlog at {current}");
    let Some(state) = state else {
        println!("stored     nothing yet (the initial snapshot is not delivered)");
        return Ok(true);
    };
    println!("snapshots  {}", state.snapshotted_list());
    match &state.position {
        Some(binlog) => {
            let exists =
                kappa_source::mysql::stream::check_position_exists(&mut conn, binlog).await;
            println!(
                "stored     binlog {binlog}{}",
                if exists.is_ok() {
                    ""
                } else {
                    "  PURGED (re-snapshot needed)"
                }
            );
            Ok(exists.is_ok())
        }
        None => Ok(true),
    }
}
