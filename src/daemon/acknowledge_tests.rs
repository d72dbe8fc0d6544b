//! The acknowledgement protocol without real services: records go to an
//! rdkafka mock cluster (librdkafka's in-process broker), and the tests
//! watch what `acknowledge` makes durable. What they pin down: a checkpoint
//! takes effect only after every record before it is delivered; a failed
//! delivery ends the task with its error and nothing after it takes effect;
//! a MySQL position reaches the offsets record once delivered, and the last
//! one is stored when the stream ends.

use super::*;
use kappa_schemas::{BinlogPosition, Lsn};
use kappa_sink::KafkaConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::RDKafkaRespErr;

const TOPIC: &str = "kappa_ack_records";
const OFFSETS: &str = "offsets";

fn cluster() -> MockCluster<'static, DefaultProducerContext> {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic(TOPIC, 1, 1).expect("topic");
    mock.create_topic(OFFSETS, 1, 1).expect("offsets topic");
    mock
}

/// A producer on the mock cluster; deliveries give up after 3 s.
fn kafka(mock: &MockCluster<'static, DefaultProducerContext>) -> KafkaConfig {
    let mut kafka = KafkaConfig::new(mock.bootstrap_servers());
    kafka
        .properties
        .push(("message.timeout.ms".into(), "3000".into()));
    kafka
}

fn spawn_acknowledge(
    kafka: &KafkaConfig,
    durable: DurablePosition,
) -> (
    InFlight,
    tokio::task::JoinHandle<anyhow::Result<()>>,
    Producer,
) {
    let producer = Producer::new(kafka).expect("producer");
    let (in_flight, acknowledging) = in_flight();
    let task = tokio::spawn(acknowledge(
        acknowledging,
        durable,
        producer.clone(),
        OFFSETS.into(),
        "c".into(),
        ConnectorState::default(),
        "slot".into(),
    ));
    (in_flight, task, producer)
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
    let (in_flight, task, producer) = spawn_acknowledge(&kafka(&mock), durable.clone());
    mock.broker_down(1).expect("broker down");
    let pending = producer
        .send(TOPIC, b"k", Some(b"v"))
        .await
        .expect("queued");
    in_flight
        .send(vec![pending], Some(Checkpoint::PgLsn(Lsn(100))), None)
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
    let (in_flight, task, producer) = spawn_acknowledge(&kafka(&mock), durable.clone());
    let first = producer
        .send(TOPIC, b"a", Some(b"1"))
        .await
        .expect("queued");
    in_flight
        .send(vec![first], Some(Checkpoint::PgLsn(Lsn(10))), None)
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
        .send(vec![second], Some(Checkpoint::PgLsn(Lsn(20))), None)
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
    let (in_flight, task, producer) = spawn_acknowledge(&kafka, DurablePosition::default());
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
            .send(vec![pending], Some(Checkpoint::Binlog(position(pos))), None)
            .await
            .expect("handed over");
    }
    // The stream ends: the last delivered position is stored at once.
    drop(in_flight);
    task.await.expect("joined").expect("acknowledged");
    let stored = kappa_sink::offsets::read_state(&kafka, OFFSETS, "c")
        .await
        .expect("read the offsets record")
        .expect("an offsets record");
    let state: ConnectorState = serde_json::from_slice(&stored).expect("state JSON");
    assert_eq!(state.binlog, Some(position(200)));
}
