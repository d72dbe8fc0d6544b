//! Baseline for the end-to-end benchmark: reads every record of topic A into
//! memory (the bytes kappa encoded), then times a plain rdkafka producer with
//! kappa's producer settings sending exactly those bytes to topic B and
//! awaiting every acknowledgement. Prints `records seconds`.
//!
//! usage: raw_produce BROKERS SOURCE_TOPIC TARGET_TOPIC

use kappa_sink::replay::replay;
use kappa_sink::topics::{ensure_compacted_topic, TopicSpec};
use kappa_sink::{KafkaConfig, Producer};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, source, target] = args.as_slice() else {
        return Err("usage: raw_produce BROKERS SOURCE_TOPIC TARGET_TOPIC".into());
    };
    let kafka = KafkaConfig::new(brokers.clone());
    let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let source_name = source.clone();
    let reader = kafka.clone();
    records = tokio::task::spawn_blocking(move || {
        replay(&reader, &source_name, |r| {
            records.push((
                r.key.unwrap_or_default().to_vec(),
                r.value.map(<[u8]>::to_vec),
            ));
            Ok::<_, String>(())
        })
        .map(|_| records)
    })
    .await??;
    ensure_compacted_topic(&kafka, target, &TopicSpec::new(1, 1)).await?;
    let producer = Producer::new(&kafka)?;
    let started = Instant::now();
    let mut pending = Vec::with_capacity(records.len());
    for (key, value) in &records {
        pending.push(producer.send(target, key, value.as_deref()).await?);
    }
    for delivery in pending {
        delivery.delivered().await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    // Both topics go: the broker compacts key by key over every compacted topic.
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        kafka.client_config().create()?;
    let options = rdkafka::admin::AdminOptions::new();
    let source_topic = args[2].as_str();
    admin
        .delete_topics(&[source_topic, target.as_str()], &options)
        .await?;
    println!("{} {:.3}", records.len(), seconds);
    Ok(())
}
