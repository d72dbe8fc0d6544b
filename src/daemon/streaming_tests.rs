//! The running daemon without real services: a scripted [`Source`] hands
//! over batches, records go to an rdkafka mock cluster (librdkafka's
//! in-process broker), schemas to a stand-in registry that gives every
//! schema id 1. What they pin down: the source hears `drained` only after
//! every position it handed over is acknowledged; a failed delivery ends
//! the daemon with its error and the source never hears `drained`; a
//! TRUNCATE tombstones every key delivered before it and none after.

use super::streaming::{stream, Streaming};
use kappa_schemas::mask::Masking;
use kappa_schemas::{
    Change, ChangeBatch, Checkpoint, Column, ColumnType, ConnectorState, Lsn, RecordEncoder,
    Registry, TableName, TableSchema, Value,
};
use kappa_sink::{KafkaConfig, Producer};
use kappa_source::{Acknowledger, CatchUp, Shutdown, Source, SourceError, SourceStatus};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::RDKafkaRespErr;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

const PREFIX: &str = "t";
const OFFSETS: &str = "offsets";

fn table() -> Arc<TableSchema> {
    Arc::new(TableSchema {
        name: TableName::new("public", "items"),
        columns: vec![
            Column {
                name: "id".into(),
                column_type: ColumnType::Int64,
                nullable: false,
                source_type: "bigint".into(),
            },
            Column {
                name: "name".into(),
                column_type: ColumnType::Text,
                nullable: true,
                source_type: "text".into(),
            },
        ],
        key_columns: vec![0],
    })
}

fn topic() -> String {
    kappa_sink::topics::table_topic(PREFIX, &table().name)
}

fn upsert(id: i64) -> Change {
    Change::Upsert {
        table: table(),
        row: vec![Value::Int(id), Value::Text(format!("item {id}"))],
    }
}

/// One transaction: its changes and the position of its commit.
fn commit(position: u64, changes: Vec<Change>) -> ChangeBatch<Lsn> {
    ChangeBatch {
        truncate: Vec::new(),
        changes,
        checkpoint: Some(Checkpoint::Committed(Lsn(position))),
    }
}

/// What the scripted source saw.
#[derive(Debug, Default)]
struct Seen {
    acknowledged: Vec<Lsn>,
    /// Whether `drained` resolved (`Some(false)`: it was dropped), and what
    /// had been acknowledged by then.
    drained: Option<(bool, Vec<Lsn>)>,
}

/// Hands over its batches, ends its stream, then waits for `drained`.
struct Scripted {
    batches: Vec<ChangeBatch<Lsn>>,
    seen: Arc<Mutex<Seen>>,
}

impl Source for Scripted {
    type Position = Lsn;
    const STORES_COMMITTED: bool = false;

    fn tables(&self) -> Vec<TableName> {
        vec![table().name.clone()]
    }

    fn origin(&self) -> String {
        "scripted".into()
    }

    fn check_resume(&self, _: &str, _: &ConnectorState<Lsn>) -> Result<(), SourceError> {
        Ok(())
    }

    fn acknowledger(&self) -> Acknowledger<Lsn> {
        let seen = self.seen.clone();
        Acknowledger::new(move |lsn: &Lsn| {
            if let Ok(mut seen) = seen.lock() {
                seen.acknowledged.push(*lsn);
            }
        })
    }

    async fn status(&self, _: Option<&ConnectorState<Lsn>>) -> Result<SourceStatus, SourceError> {
        Ok(SourceStatus::default())
    }

    async fn request_resnapshot(&self, _: &str, _: &TableName) -> Result<String, SourceError> {
        Ok(String::new())
    }

    fn catch_up(&self) -> CatchUp {
        CatchUp::OffsetsRecord
    }

    async fn run(
        self,
        _resume: ConnectorState<Lsn>,
        changes: mpsc::Sender<ChangeBatch<Lsn>>,
        shutdown: Shutdown,
    ) -> Result<(), SourceError> {
        for batch in self.batches {
            changes
                .send(batch)
                .await
                .map_err(|_| SourceError::ConsumerGone)?;
        }
        drop(changes);
        let drained = shutdown.drained.await.is_ok();
        let mut seen = self.seen.lock().map_err(|_| SourceError::ConsumerGone)?;
        let acknowledged = seen.acknowledged.clone();
        seen.drained = Some((drained, acknowledged));
        Ok(())
    }
}

/// A stand-in schema registry: every registration gets id 1.
async fn registry() -> Registry {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request: headers, then Content-Length bytes of body.
                    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let headers = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                    let length: usize = headers
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buffer.len() < end + 4 + length {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    }
                    buffer.drain(..end + 4 + length);
                    let body = r#"{"id":1}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Registry::new(&format!("http://{address}"))
}

fn cluster() -> MockCluster<'static, DefaultProducerContext> {
    super::mock_kafka::cluster(&[&topic(), OFFSETS])
}

use super::mock_kafka::kafka;

/// Streams `batches` from a scripted source; what it saw, and how the
/// daemon ended.
async fn run_script(
    kafka: &KafkaConfig,
    batches: Vec<ChangeBatch<Lsn>>,
) -> (Seen, anyhow::Result<()>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let source = Scripted {
        batches,
        seen: seen.clone(),
    };
    let streaming = Streaming {
        kafka: kafka.clone(),
        producer: Producer::new(kafka).expect("producer"),
        encoder: RecordEncoder::new(registry().await),
        masking: Masking::new(HashMap::new(), String::new()),
        prefix: PREFIX.into(),
        max_record_bytes: 1 << 20,
        offsets_topic: OFFSETS.into(),
        connector: "c".into(),
        stop: watch::channel(false),
    };
    let ended = tokio::time::timeout(
        Duration::from_secs(90),
        stream(source, ConnectorState::default(), streaming),
    )
    .await
    .expect("the daemon ended within 90 s");
    let seen = std::mem::take(&mut *seen.lock().expect("seen"));
    (seen, ended)
}

/// The topic's keys that hold a row (the newest record is not a tombstone).
fn live_ids(kafka: &KafkaConfig) -> Vec<i64> {
    let mut keys = Vec::new();
    kappa_sink::live_keys::live_keys(kafka, &topic(), 100, |batch| {
        keys.extend(batch);
        Ok(())
    })
    .expect("live keys");
    // A Confluent-framed Avro key of one long: 5 framing bytes, then the
    // zig-zag varint.
    let mut ids: Vec<i64> = keys
        .iter()
        .map(|key| {
            let (mut value, mut shift) = (0u64, 0);
            for byte in &key[5..] {
                value |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            ((value >> 1) as i64) ^ -((value & 1) as i64)
        })
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn the_source_hears_drained_only_after_every_position_is_acknowledged() {
    let mock = cluster();
    let kafka = kafka(&mock);
    let batches = (1..=5)
        .map(|n| commit(n * 10, vec![upsert(n as i64)]))
        .collect();
    let (seen, ended) = run_script(&kafka, batches).await;
    ended.expect("a clean end");
    let expected: Vec<Lsn> = (1..=5).map(|n| Lsn(n * 10)).collect();
    assert_eq!(seen.acknowledged, expected, "in order, each once");
    assert_eq!(
        seen.drained,
        Some((true, expected)),
        "drained after the last acknowledgement"
    );
    assert_eq!(live_ids(&kafka), vec![1, 2, 3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_delivery_ends_the_daemon_and_the_source_never_hears_drained() {
    let mock = cluster();
    let kafka = kafka(&mock);
    mock.request_errors(
        rdkafka::types::RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 64],
    );
    let (seen, ended) = run_script(&kafka, vec![commit(10, vec![upsert(1)])]).await;
    let error = ended.expect_err("the failed delivery is the daemon's error");
    assert!(format!("{error:#}").contains(&topic()), "{error:#}");
    assert!(seen.acknowledged.is_empty(), "{seen:?}");
    assert_eq!(seen.drained.map(|(drained, _)| drained), Some(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncate_tombstones_every_key_delivered_before_it_and_none_after() {
    let mock = cluster();
    let kafka = kafka(&mock);
    let before = commit(10, (1..=50).map(upsert).collect());
    let truncated = ChangeBatch {
        truncate: vec![table()],
        changes: vec![upsert(100), upsert(101)],
        checkpoint: Some(Checkpoint::Committed(Lsn(20))),
    };
    let after = commit(30, vec![upsert(7)]);
    let (seen, ended) = run_script(&kafka, vec![before, truncated, after]).await;
    ended.expect("a clean end");
    assert_eq!(seen.acknowledged, vec![Lsn(10), Lsn(20), Lsn(30)]);
    assert_eq!(
        live_ids(&kafka),
        vec![7, 100, 101],
        "the 50 rows before the TRUNCATE are tombstoned, the rows after it live"
    );
}
