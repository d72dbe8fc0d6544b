//! The acknowledgement protocol without real services: records go to an
//! rdkafka mock cluster (librdkafka's in-process broker), and the tests
//! watch what `acknowledge` makes durable. What they pin down: a checkpoint
//! takes effect only after every record before it is delivered; a failed
//! delivery ends the task with its error and nothing after it takes effect;
//! a MySQL position reaches the offsets record once delivered, and the last
//! one is stored when the stream ends.

use super::acknowledge::{acknowledge, OffsetsRecord, Positions};
use crate::in_flight::{in_flight, InFlight};
use kappa_schemas::{BinlogPosition, Lsn};
use kappa_schemas::{Checkpoint, ConnectorState, StoredPosition};
use kappa_sink::KafkaConfig;
use kappa_sink::Producer;
use kappa_source::Acknowledger;
use kappa_source::DurablePosition;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::RDKafkaRespErr;
use std::fmt::Display;
use std::time::{Duration, Instant};

const TOPIC: &str = "kappa_ack_records";
const OFFSETS: &str = "offsets";

fn cluster() -> MockCluster<'static, DefaultProducerContext> {
    super::mock_kafka::cluster(&[TOPIC, OFFSETS])
}

use super::mock_kafka::kafka;

/// The acknowledgement task of a source that only acknowledges (as
/// PostgreSQL's does) when `stores_committed` is false, or whose committed
/// positions go into the offsets record (as MySQL's do).
fn spawn_acknowledge<P: StoredPosition + Display + Send + Sync + 'static>(
    kafka: &KafkaConfig,
    acknowledger: Acknowledger<P>,
    stores_committed: bool,
) -> (
    InFlight<P>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
    Producer,
) {
    let producer = Producer::new(kafka).expect("producer");
    let (in_flight, acknowledging) = in_flight();
    let task = tokio::spawn(acknowledge(
        acknowledging,
        Positions {
            acknowledger,
            stores_committed,
            origin: "slot".into(),
            state: ConnectorState::default(),
        },
        OffsetsRecord {
            producer: producer.clone(),
            topic: OFFSETS.into(),
            connector: "c".into(),
            unstored: false,
            stored_at: Instant::now(),
        },
    ));
    (in_flight, task, producer)
}

/// The acknowledgement task of a PostgreSQL-like source, whose acknowledged
/// positions land in `durable`.
fn spawn_lsn_acknowledge(
    kafka: &KafkaConfig,
    durable: &DurablePosition,
) -> (
    InFlight<Lsn>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
    Producer,
) {
    let durable = durable.clone();
    spawn_acknowledge(
        kafka,
        Acknowledger::new(move |lsn: &Lsn| durable.advance(*lsn)),
        false,
    )
}

async fn stored_state<P: StoredPosition>(kafka: &KafkaConfig) -> Option<ConnectorState<P>> {
    kappa_sink::offsets::read_state(kafka, OFFSETS, "c")
        .await
        .expect("read the offsets record")
        .map(|bytes| serde_json::from_slice(&bytes).expect("state JSON"))
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_commit_is_durable_only_once_its_records_are_delivered() {
    let mock = cluster();
    let durable = DurablePosition::default();
    let (in_flight, task, producer) = spawn_lsn_acknowledge(&kafka(&mock), &durable);
    mock.broker_down(1).expect("broker down");
    let pending = producer
        .send(TOPIC, b"k", Some(b"v"))
        .await
        .expect("queued");
    in_flight
        .send(vec![pending], Some(Checkpoint::Committed(Lsn(100))), None)
        .await
        .expect("handed over");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        durable.get(),
        Lsn(0),
        "nothing is durable while the broker is down"
    );
    mock.broker_up(1).expect("broker up");
    wait_until("the commit is durable once delivered", || {
        durable.get() == Lsn(100)
    })
    .await;
    drop(in_flight);
    task.await.expect("joined").expect("acknowledged");
}

#[tokio::test]
async fn a_failed_delivery_ends_the_task_and_nothing_after_it_takes_effect() {
    let mock = cluster();
    let durable = DurablePosition::default();
    let (in_flight, task, producer) = spawn_lsn_acknowledge(&kafka(&mock), &durable);
    let first = producer
        .send(TOPIC, b"a", Some(b"1"))
        .await
        .expect("queued");
    in_flight
        .send(vec![first], Some(Checkpoint::Committed(Lsn(10))), None)
        .await
        .expect("handed over");
    wait_until("the first commit is durable", || durable.get() == Lsn(10)).await;
    // Every produce request now fails for good: the next delivery fails.
    mock.request_errors(
        rdkafka::types::RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 64],
    );
    let second = producer
        .send(TOPIC, b"b", Some(b"2"))
        .await
        .expect("queued");
    let _ = in_flight
        .send(vec![second], Some(Checkpoint::Committed(Lsn(20))), None)
        .await;
    let ended = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the task ended")
        .expect("joined");
    let error = ended.expect_err("a failed delivery is the task's error");
    assert!(error.to_string().contains(TOPIC), "{error:#}");
    assert_eq!(
        durable.get(),
        Lsn(10),
        "the failed commit never became durable"
    );
}

#[tokio::test]
async fn a_binlog_position_reaches_the_offsets_record_once_delivered() {
    let mock = cluster();
    let kafka = kafka(&mock);
    let (in_flight, task, producer) = spawn_acknowledge(&kafka, Acknowledger::none(), true);
    let position = |pos| BinlogPosition {
        file: "mysql-bin.000001".into(),
        pos,
        gtid: None,
    };
    for pos in [100, 200] {
        let pending = producer
            .send(TOPIC, b"k", Some(b"v"))
            .await
            .expect("queued");
        in_flight
            .send(
                vec![pending],
                Some(Checkpoint::Committed(position(pos))),
                None,
            )
            .await
            .expect("handed over");
    }
    // The stream ends: the last delivered position is stored at once.
    drop(in_flight);
    task.await.expect("joined").expect("acknowledged");
    let state: ConnectorState<BinlogPosition> =
        stored_state(&kafka).await.expect("an offsets record");
    assert_eq!(state.position, Some(position(200)));
}

#[tokio::test]
async fn a_completed_snapshot_is_stored_with_its_origin_and_an_acknowledged_commit_is_not() {
    let mock = cluster();
    let kafka = kafka(&mock);
    let durable = DurablePosition::default();
    let (in_flight, task, producer) = spawn_lsn_acknowledge(&kafka, &durable);
    let table = kappa_schemas::TableName::new("public", "t");
    let pending = producer
        .send(TOPIC, b"k", Some(b"v"))
        .await
        .expect("queued");
    in_flight
        .send(
            vec![pending],
            Some(Checkpoint::SnapshotComplete {
                tables: vec![table.clone()],
                resume_from: Lsn(50),
            }),
            None,
        )
        .await
        .expect("handed over");
    let pending = producer
        .send(TOPIC, b"k", Some(b"w"))
        .await
        .expect("queued");
    in_flight
        .send(vec![pending], Some(Checkpoint::Committed(Lsn(80))), None)
        .await
        .expect("handed over");
    drop(in_flight);
    task.await.expect("joined").expect("acknowledged");
    assert_eq!(durable.get(), Lsn(80), "the commit was acknowledged");
    let state: ConnectorState<Lsn> = stored_state(&kafka).await.expect("an offsets record");
    assert_eq!(state.origin, "slot");
    assert_eq!(state.snapshotted, vec![table]);
    assert_eq!(
        state.position,
        Some(Lsn(50)),
        "the record keeps the snapshot's position: the slot, not the record, holds the commit's"
    );
}
