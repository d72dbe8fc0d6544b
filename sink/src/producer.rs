//! The idempotent producer. Per-key order is kept (one key → one partition
//! by `murmur2_random`, as Java clients place it; idempotence keeps order
//! across retries), and every send returns a future that resolves once the
//! broker has acknowledged the record with `acks=all`.

use crate::error::SinkError;
use crate::kafka::KafkaConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use std::time::Duration;

/// A connected producer, cheap to clone.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    brokers: String,
    delivery_limit: Duration,
}

/// Beyond `message.timeout.ms`, how long a delivery may stay unanswered
/// before it counts as stuck.
const DELIVERY_GRACE: Duration = Duration::from_secs(30);

/// An acknowledgement to wait for.
pub struct Pending {
    topic: String,
    future: DeliveryFuture,
    limit: Duration,
}

impl Pending {
    /// Resolves when the broker has the record, or with the reason it never
    /// will. librdkafka answers every record within `message.timeout.ms`; one
    /// still unanswered `DELIVERY_GRACE` after that (seen after kill -9 of
    /// the broker during a snapshot of 1 MB rows: `kappa-chaos --seed 2
    /// --database postgres`) fails here, so kappa stops and a restart resumes
    /// from the last confirmed position instead of waiting forever.
    pub async fn delivered(self) -> Result<(), SinkError> {
        match tokio::time::timeout(self.limit, self.future).await {
            Err(_) => Err(SinkError::Delivery {
                topic: self.topic,
                reason: format!(
                    "neither delivered nor failed within {} s (message.timeout.ms + {} s): the producer is \
                     stuck; stopping so that a restart resumes from the last confirmed position",
                    self.limit.as_secs(),
                    DELIVERY_GRACE.as_secs()
                ),
                cause: None,
            }),
            Ok(Ok(Ok(_))) => Ok(()),
            Ok(Ok(Err((e, _)))) => Err(SinkError::Delivery {
                topic: self.topic,
                reason: e.to_string(),
                cause: Some(Box::new(e)),
            }),
            // The producer was dropped with the record in flight; rdkafka's
            // own futures report this as KafkaError::Canceled.
            Ok(Err(_)) => Err(SinkError::Delivery {
                topic: self.topic,
                reason: "the producer was closed before the broker answered".into(),
                cause: Some(Box::new(KafkaError::Canceled)),
            }),
        }
    }
}

impl Producer {
    pub fn new(kafka: &KafkaConfig) -> Result<Self, SinkError> {
        let mut config = kafka.client_config();
        // Bounds the producer's memory: a huge transaction waits for
        // acknowledgements instead of piling up in the local queue. 8 MB, or
        // room for the largest record and its framing (a record larger than
        // the whole queue would never fit in it).
        let queue_kbytes = (kafka.max_record_bytes / 1024)
            .saturating_add(2 * crate::kafka::FRAMING_BYTES / 1024)
            .max(8192);
        // The largest request: one record of max_record_bytes and its framing.
        let max_request = kafka
            .max_record_bytes
            .saturating_add(crate::kafka::FRAMING_BYTES);
        for (key, value) in [
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("partitioner", "murmur2_random"),
            ("compression.type", "lz4"),
            ("linger.ms", "20"),
            ("message.timeout.ms", "120000"),
            ("queue.buffering.max.messages", "20000"),
            ("queue.buffering.max.kbytes", &queue_kbytes.to_string()),
            ("message.max.bytes", &max_request.to_string()),
        ] {
            if !kafka.properties.iter().any(|(k, _)| k == key) {
                config.set(key, value);
            }
        }
        let inner = config.create().map_err(|e| SinkError::Broker {
            brokers: kafka.brokers.clone(),
            reason: e.to_string(),
            cause: Some(Box::new(e)),
        })?;
        let message_timeout_ms = kafka
            .properties
            .iter()
            .find(|(k, _)| k == "message.timeout.ms")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .unwrap_or(120_000);
        Ok(Self {
            inner,
            brokers: kafka.brokers.clone(),
            delivery_limit: Duration::from_millis(message_timeout_ms) + DELIVERY_GRACE,
        })
    }

    /// How long a delivery may take before [`Pending::delivered`] calls the
    /// producer stuck (tests shorten it).
    pub fn with_delivery_limit(mut self, limit: Duration) -> Self {
        self.delivery_limit = limit;
        self
    }

    /// Queues one record (`value: None` is a tombstone), waiting while the
    /// local queue is full.
    pub async fn send(
        &self,
        topic: &str,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<Pending, SinkError> {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).key(key);
        if let Some(value) = value {
            record = record.payload(value);
        }
        let started = std::time::Instant::now();
        loop {
            match self.inner.send_result(record) {
                Ok(future) => {
                    return Ok(Pending {
                        topic: topic.to_string(),
                        future,
                        limit: self.delivery_limit,
                    })
                }
                Err((e @ KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if started.elapsed() > self.delivery_limit =>
                {
                    // The queue empties as records are answered or expire; one
                    // that stays full this long belongs to a stuck producer.
                    return Err(SinkError::Delivery {
                        topic: topic.to_string(),
                        reason: format!(
                            "the producer's queue stayed full for {} s (message.timeout.ms + {} s): the \
                             broker does not answer; stopping so that a restart resumes from the last \
                             confirmed position",
                            self.delivery_limit.as_secs(),
                            DELIVERY_GRACE.as_secs()
                        ),
                        cause: Some(Box::new(e)),
                    });
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    return Err(SinkError::Delivery {
                        topic: topic.to_string(),
                        reason: e.to_string(),
                        cause: Some(Box::new(e)),
                    })
                }
            }
        }
    }

    /// Waits until everything queued is acknowledged (or `timeout` passes).
    pub fn flush(&self, timeout: Duration) -> Result<(), SinkError> {
        self.inner
            .flush(Timeout::After(timeout))
            .map_err(|e| SinkError::Broker {
                brokers: self.brokers.clone(),
                reason: format!("flushing the producer: {e}"),
                cause: Some(Box::new(e)),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record librdkafka holds without an answer (no broker; its own
    /// timeout far away) fails once the delivery limit passes.
    #[tokio::test]
    async fn a_delivery_without_an_answer_fails_at_the_limit() {
        let mut kafka = KafkaConfig::new("127.0.0.1:1");
        kafka
            .properties
            .push(("message.timeout.ms".into(), "600000".into()));
        let producer = Producer::new(&kafka)
            .expect("producer")
            .with_delivery_limit(Duration::from_millis(500));
        let pending = producer
            .send("kappa-never", b"key", Some(b"value"))
            .await
            .expect("queued");
        let started = std::time::Instant::now();
        let err = pending.delivered().await.expect_err("no broker answered");
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(
            err.to_string()
                .contains("neither delivered nor failed within"),
            "{err}"
        );
        assert_eq!(err.kind(), crate::ErrorKind::Transient, "{err:?}");
    }

    /// A queue that stays full (no broker answers) fails the send at the limit.
    #[tokio::test]
    async fn a_queue_that_stays_full_fails_at_the_limit() {
        let mut kafka = KafkaConfig::new("127.0.0.1:1");
        for (k, v) in [
            ("message.timeout.ms", "600000"),
            ("queue.buffering.max.messages", "1"),
        ] {
            kafka.properties.push((k.into(), v.into()));
        }
        let producer = Producer::new(&kafka)
            .expect("producer")
            .with_delivery_limit(Duration::from_millis(500));
        let _first = producer
            .send("kappa-never", b"a", Some(b"1"))
            .await
            .expect("queued");
        let err = match producer.send("kappa-never", b"b", Some(b"2")).await {
            Err(err) => err,
            Ok(_) => panic!("a second record fitted a queue of one"),
        };
        assert!(err.to_string().contains("queue stayed full"), "{err}");
        // The last refusal is kept as the cause, and decides the kind.
        assert!(
            matches!(
                &err,
                SinkError::Delivery { cause: Some(e), .. }
                    if matches!(**e, KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull))
            ),
            "{err:?}"
        );
        assert_eq!(err.kind(), crate::ErrorKind::Transient, "{err:?}");
    }

    #[test]
    fn the_limit_follows_message_timeout_ms() {
        let mut kafka = KafkaConfig::new("127.0.0.1:1");
        kafka
            .properties
            .push(("message.timeout.ms".into(), "10000".into()));
        let producer = Producer::new(&kafka).expect("producer");
        assert_eq!(producer.delivery_limit, Duration::from_secs(40));
        let producer = Producer::new(&KafkaConfig::new("127.0.0.1:1")).expect("producer");
        assert_eq!(producer.delivery_limit, Duration::from_secs(150));
    }
}
