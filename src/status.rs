//! `kappa status`: where a connector stands — what its source says (the
//! slot and the WAL it holds back, or the server's and the stored binlog
//! position), which snapshots are complete, and what its topics hold.

use crate::config::Config;
use crate::sources::{with_source, OnSource};
use kappa_sink::topics::table_topic;
use kappa_source::Source;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;

/// Prints the status; false when the connector cannot resume (the slot is
/// missing or lost its WAL, the stored binlog was purged).
pub async fn status(config: &Config) -> anyhow::Result<bool> {
    with_source(config, Status).await
}

struct Status;

impl OnSource for Status {
    type Output = bool;

    async fn on<S: Source>(self, source: S, config: &Config) -> anyhow::Result<bool> {
        println!("connector  {}", config.name);
        let kafka = config.kafka();
        let state =
            crate::state::load::<S::Position>(&kafka, &config.kafka.offsets_topic, &config.name)
                .await?;
        let source_status = source.status(state.as_ref()).await?;
        for (label, text) in &source_status.lines {
            println!("{label:<10} {text}");
        }
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
        let consumer: BaseConsumer = kafka.client_config().create()?;
        for table in source.tables() {
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
        Ok(source_status.healthy)
    }
}
