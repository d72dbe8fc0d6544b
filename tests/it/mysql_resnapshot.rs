//! `kappa snapshot` for MySQL/MariaDB: re-snapshot one table through the
//! signal table while streaming goes on and a writer keeps changing rows.
//! The topic is broken on purpose (tombstones produced straight into it);
//! the re-snapshot must repair it exactly, survive a kill -9 in the middle
//! (the stored position held at the request), and leave `verify` with 0
//! differences.

use crate::common;

use common::mysql::{MysqlPipeline, Position};
use common::{brokers, RunsKappa};
use mysql_async::prelude::Queryable;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS: u64 = 4000;
const WRITER_ROUNDS: u64 = 400;

fn insert_rows(table: &str) -> String {
    let rows: Vec<String> = (1..=ROWS)
        .map(|i| format!("({i}, {i}, 'row {i}')"))
        .collect();
    format!("INSERT INTO {table} VALUES {}", rows.join(", "))
}

/// Sets `key = value` under `[source.mysql]` of the pipeline's config.
fn set_mysql_option(p: &MysqlPipeline, line: &str) {
    let text = std::fs::read_to_string(&p.config).expect("config");
    let text = text.replacen("[source.mysql]\n", &format!("[source.mysql]\n{line}\n"), 1);
    std::fs::write(&p.config, text).expect("config");
}

/// Tombstones for every `nth` key of `topic`, produced straight into it.
async fn break_topic(topic: &str, nth: usize) -> usize {
    let kafka = kappa_sink::KafkaConfig::new(brokers());
    let mut keys: Vec<Vec<u8>> = Vec::new();
    kappa_sink::replay::replay(&kafka, topic, |record| {
        if let (Some(key), Some(_)) = (record.key, record.value) {
            keys.push(key.to_vec());
        }
        Ok::<_, String>(())
    })
    .expect("replay");
    keys.sort();
    keys.dedup();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("producer");
    let mut broken = 0;
    for key in keys.iter().step_by(nth) {
        producer
            .send(
                FutureRecord::<Vec<u8>, Vec<u8>>::to(topic).key(key),
                Duration::from_secs(30),
            )
            .await
            .expect("tombstone delivered");
        broken += 1;
    }
    broken
}

/// The re-snapshot's request position (`at=` of "re-snapshot started").
fn started_at(log: &str) -> Option<Position> {
    let line = log.lines().find(|l| l.contains("re-snapshot started"))?;
    let at = line.split("at=").nth(1)?.split_whitespace().next()?;
    let (file, pos) = at.rsplit_once(':')?;
    Some(Position {
        file: file.to_string(),
        pos: pos.parse().ok()?,
    })
}

/// The positions of the daemon's "stored position" log lines
/// (`position=<file>:<pos> (gtid …)`).
fn stored_lines(log: &str) -> Vec<Position> {
    log.lines()
        .filter(|l| l.contains("stored position"))
        .filter_map(|l| {
            let at = l.split("position=").nth(1)?.split_whitespace().next()?;
            let (file, pos) = at.rsplit_once(':')?;
            Some(Position {
                file: file.to_string(),
                pos: pos.parse().ok()?,
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn resnapshot_repairs_a_broken_topic_while_a_writer_changes_rows() {
    let mut p = MysqlPipeline::new(
        "kmy_resnap",
        1,
        "CREATE TABLE {db0}.t (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(64))",
    )
    .await;
    let db = p.databases[0].clone();
    let table = format!("{db}.t");
    // The signal table matches the captured pattern `{db}.*`: it must be left out.
    set_mysql_option(&p, &format!("signal_table = \"{db}.kappa_signal\""));
    let config = std::fs::read_to_string(&p.config).expect("config");
    std::fs::write(
        &p.config,
        config.replace("snapshot_chunk_rows = 1000", "snapshot_chunk_rows = 200"),
    )
    .expect("config");
    p.commit(&insert_rows(&table)).await;
    p.start().await;
    let position = p
        .commit(&format!("UPDATE {table} SET note = 'seen' WHERE id = 1"))
        .await;
    p.wait_stored(&position).await;
    assert!(
        !p.log().contains("kappa_signal"),
        "the signal table is not captured:\n{}",
        p.log()
    );

    let broken = break_topic(&p.topic(&table), 7).await;
    assert!(broken > 500, "{broken} tombstones");
    let before = p.verify(&table);
    assert_eq!(
        before.status.code(),
        Some(1),
        "the broken topic differs before the re-snapshot:\n{}",
        String::from_utf8_lossy(&before.stdout)
    );

    // A writer racing the chunks: updates, deletes, inserts, key changes. It
    // stops after WRITER_ROUNDS (the table must not grow faster than the
    // chunks advance) or when told.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let table = table.clone();
        tokio::spawn(async move {
            let mut conn = common::mysql::mysql().await;
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) && round < WRITER_ROUNDS {
                let sql = format!(
                    "START TRANSACTION;
                     UPDATE {table} SET v = v + 1, note = 'race {round}' WHERE id % 97 = {m};
                     DELETE FROM {table} WHERE id = {gone};
                     INSERT INTO {table} VALUES ({new}, {round}, 'new {round}');
                     UPDATE {table} SET id = id + 1000000 WHERE id = {moved};
                     COMMIT",
                    m = round % 10,
                    gone = 3 + 40 * (round % 100),
                    new = 100_000 + round,
                    moved = 5 + 40 * (round % 100),
                );
                conn.query_drop(sql).await.expect("writer transaction");
                round += 1;
            }
            round
        })
    };

    let output = common::request_resnapshot(&p.config, &table);
    assert!(String::from_utf8_lossy(&output.stdout).contains("re-snapshot of"));

    // kill -9 in the middle, once the daemon stored positions twice after
    // the request was read (later commits were delivered meanwhile): no
    // stored position may have passed the request.
    p.wait_for_current_log("re-snapshot started").await;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let log = p.current_log();
        let (_, after) = log.split_once("re-snapshot started").unwrap_or_default();
        if log.contains("re-snapshot complete") || stored_lines(after).len() >= 2 {
            break;
        }
        p.assert_running();
        assert!(Instant::now() < deadline, "no progress:\n{log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.kill9();
    let killed_log = p.current_log();
    let cap = started_at(&killed_log).expect("request position in the log");
    let stored = p.stored_position().await.expect("a stored position");
    let completed = killed_log.contains("re-snapshot complete");
    if !completed {
        let (_, after) = killed_log
            .split_once("re-snapshot started")
            .unwrap_or_default();
        let stores = stored_lines(after);
        assert!(stores.len() >= 2, "{killed_log}");
        for position in &stores {
            assert!(
                *position <= cap,
                "stored {position:?} passed the request at {cap:?} before the re-snapshot completed"
            );
        }
        assert!(
            stored <= cap,
            "offsets record {stored:?} passed the request at {cap:?}"
        );
    }
    eprintln!(
        "killed mid re-snapshot: {}; stored {stored:?}, request at {cap:?}",
        !completed
    );
    p.start().await;
    if stored <= cap {
        // The request is read again and the re-snapshot runs from the start.
        p.wait_for_current_log("re-snapshot started").await;
        p.wait_for_current_log("re-snapshot complete").await;
    } else {
        // It completed, and a position past it was stored, before the kill:
        // the restart resumes after the request.
        assert!(
            completed,
            "stored {stored:?} past the request at {cap:?} without completing"
        );
    }

    stop.store(true, Ordering::Relaxed);
    let rounds = writer.await.expect("writer");
    assert!(rounds > 0);
    eprintln!("writer rounds: {rounds}");
    let last = p
        .commit(&format!("UPDATE {table} SET note = 'last' WHERE id = 2"))
        .await;
    p.wait_stored(&last).await;
    p.stop();
    let log = p.log();
    assert!(!log.contains("re-snapshot abandoned"), "{log}");
    // The writer touches about a tenth of the keys: most tombstoned keys are
    // repaired by the chunks, not by the stream.
    let emitted: u64 = log
        .lines()
        .rev()
        .filter(|l| l.contains("re-snapshot complete"))
        .filter_map(|l| {
            l.split(" rows=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .next()
        .expect("the re-snapshot's row count in the log");
    eprintln!("re-snapshot emitted {emitted} rows");
    assert!(emitted > ROWS / 2, "{emitted} rows emitted:\n{log}");
    assert!(!log.contains("already running"), "{log}");
    let rows = p.count(&table).await;
    p.assert_verified(&table, rows);
    p.cleanup().await;
}

/// A binlog connection lost in the middle of a re-snapshot ends it (one
/// failure policy for both readers), and the stream resumes from its request,
/// so it starts over and completes without a restart of kappa (as the
/// PostgreSQL reader's slot, held at the request, makes it there). The
/// connector has a user of its own, so only its binlog dump is killed.
#[tokio::test(flavor = "multi_thread")]
async fn a_resnapshot_cut_by_a_lost_binlog_connection_starts_over_and_completes() {
    let mut p = MysqlPipeline::new(
        "kmy_resnap_lost",
        1,
        "CREATE TABLE {db0}.t (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(64))",
    )
    .await;
    let db = p.databases[0].clone();
    let table = format!("{db}.t");
    let user = p.use_own_user(None).await;
    set_mysql_option(&p, &format!("signal_table = \"{db}.kappa_signal\""));
    // Small chunks: the re-snapshot runs long enough to be cut.
    common::edit_config(
        &p.config,
        "snapshot_chunk_rows = 1000",
        "snapshot_chunk_rows = 10",
    );
    p.commit(&insert_rows(&table)).await;
    p.start().await;
    let position = p
        .commit(&format!("UPDATE {table} SET note = 'seen' WHERE id = 1"))
        .await;
    p.wait_stored(&position).await;
    let broken = break_topic(&p.topic(&table), 7).await;
    assert!(broken > 500, "{broken} tombstones");

    let output = common::request_resnapshot(&p.config, &table);
    assert!(String::from_utf8_lossy(&output.stdout).contains("re-snapshot of"));
    p.wait_for_current_log("re-snapshot started").await;
    p.kill_binlog_dumps_of(&user).await;
    p.wait_for_current_log("re-snapshot interrupted").await;
    let log = p.current_log();
    assert!(
        !log.contains("re-snapshot complete"),
        "the re-snapshot completed before its connection was cut:\n{log}"
    );
    p.wait_for_current_log("re-snapshot complete").await;
    let log = p.current_log();
    assert!(
        log.matches("re-snapshot started").count() >= 2,
        "started over after the reconnect:\n{log}"
    );
    let last = p
        .commit(&format!("UPDATE {table} SET note = 'last' WHERE id = 2"))
        .await;
    p.wait_stored(&last).await;
    p.stop();
    p.assert_verified(&table, ROWS);
    p.exec(&format!("DROP USER '{user}'@'127.0.0.1'")).await;
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_without_a_signal_table_names_the_config_key() {
    let p = MysqlPipeline::new(
        "kmy_nosignal",
        1,
        "CREATE TABLE {db0}.t (id INT PRIMARY KEY)",
    )
    .await;
    let table = format!("{}.t", p.databases[0]);
    let output = common::kappa_snapshot(&p.config, &table);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("signal_table") && stderr.contains("[source.mysql]"),
        "{stderr}"
    );
    p.cleanup().await;
}
