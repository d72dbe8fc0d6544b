//! For the rebuild benchmark: copies every record of a topic (key, value,
//! partition) into a new topic with `cleanup.policy=delete`, then deletes
//! the source topic. The broker compacts every compacted topic key by key,
//! continuously; a 1M-record compacted topic would keep it busy during the
//! very reads being timed, so the benchmark reads a non-compacted copy.
//!
//! usage: copy_topic BROKERS SOURCE_TOPIC TARGET_TOPIC

use kappa_sink::replay::replay;
use kappa_sink::KafkaConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, source, target] = args.as_slice() else {
        return Err("usage: copy_topic BROKERS SOURCE_TOPIC TARGET_TOPIC".into());
    };
    let kafka = KafkaConfig::new(brokers.clone());
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    let metadata = admin
        .inner()
        .fetch_metadata(Some(source), Duration::from_secs(30))?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len()) as i32;
    if partitions == 0 {
        return Err(format!("topic {source} has no partitions").into());
    }
    let new = NewTopic::new(target, partitions, TopicReplication::Fixed(1))
        .set("cleanup.policy", "delete");
    for result in admin.create_topics(&[new], &AdminOptions::new()).await? {
        result.map_err(|(topic, code)| format!("creating {topic}: {code}"))?;
    }
    let producer: BaseProducer = kafka
        .client_config()
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .create()?;
    let (source_name, target_name) = (source.clone(), target.clone());
    let copied = tokio::task::spawn_blocking(move || {
        replay(&kafka, &source_name, |r| {
            let mut record = BaseRecord::to(&target_name).partition(r.partition);
            if let Some(key) = r.key {
                record = record.key(key);
            }
            if let Some(value) = r.value {
                record = record.payload(value);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(50));
                    }
                    Err((e, _)) => return Err(e.to_string()),
                }
            }
            producer.poll(Duration::ZERO);
            Ok(())
        })
        .map_err(|e| e.to_string())
        .and_then(|stats| {
            producer
                .flush(Duration::from_secs(300))
                .map_err(|e| e.to_string())?;
            Ok(stats.records)
        })
    })
    .await??;
    admin
        .delete_topics(&[source.as_str()], &AdminOptions::new())
        .await?;
    println!("{copied}");
    Ok(())
}
