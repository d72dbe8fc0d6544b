//! The PostgreSQL reader's edge cases, each proven by a rebuild that verifies
//! (or by the clear error kappa stops with).

use crate::common;

use common::RunsKappa;
use common::{topic_records, Pipeline};
use std::time::Instant;

/// A text column stored out of line and uncompressed, so a 20 kB value is TOASTed.
const TOASTED: &str = "(id int PRIMARY KEY, n int NOT NULL, body text)";
const EXTERNAL: &str = "ALTER TABLE {table} ALTER COLUMN body SET STORAGE EXTERNAL";

fn big(seed: &str) -> String {
    format!("(SELECT string_agg(md5('{seed}' || g), '') FROM generate_series(1, 700) g)")
}

/// `unchanged_toast = "refuse"`, the strict option: a table whose UPDATEs
/// could leave a TOASTed value out of the stream is refused at start, with
/// both fixes. (The default fetches such values: tests/it/postgres_toast.rs.)
#[tokio::test(flavor = "multi_thread")]
async fn refuse_mode_refuses_default_identity_with_toastable_columns_with_the_fix() {
    let mut p = Pipeline::build(
        "kappa_refuse",
        TOASTED,
        EXTERNAL,
        "[source.postgres.table_options.\"{table}\"]\nunchanged_toast = \"refuse\"\n",
    )
    .await;
    p.start();
    let status = p.wait_exit();
    assert_eq!(status.code(), Some(78), "{}", p.log());
    let log = p.log();
    assert!(log.contains(&p.table), "{log}");
    assert!(log.contains("REPLICA IDENTITY FULL"), "{log}");
    assert!(log.contains("unchanged_toast = \"refuse\""), "{log}");
    assert!(log.contains("\"fetch\", the default"), "{log}");
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_toast_comes_from_the_old_tuple_with_full_identity() {
    let mut p = Pipeline::build(
        "kappa_full",
        TOASTED,
        &format!("{EXTERNAL}; ALTER TABLE {{table}} REPLICA IDENTITY FULL"),
        "",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 0, {} FROM generate_series(1, 20) g",
        big("a")
    ))
    .await;
    p.start();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 0, {} FROM generate_series(21, 30) g",
        big("b")
    ))
    .await;
    // Leaves every body unchanged: the new tuples carry 'u' for it.
    let lsn = p.commit(&format!("UPDATE {table} SET n = n + 1")).await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    p.assert_verified(30);
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_toast_is_fetched_by_key_when_configured() {
    let mut p = Pipeline::build(
        "kappa_fetch",
        TOASTED,
        EXTERNAL,
        "[source.postgres.table_options.\"{table}\"]\nunchanged_toast = \"fetch\"\n",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 0, {} FROM generate_series(1, 20) g",
        big("a")
    ))
    .await;
    p.start();
    p.commit(&format!("UPDATE {table} SET n = n + 1 WHERE id <= 10"))
        .await;
    // Updated, then deleted in the same transaction: the fetch finds no row,
    // the UPDATE is not emitted, and the DELETE writes the tombstone.
    p.commit(&format!(
        "UPDATE {table} SET n = 99 WHERE id = 15; DELETE FROM {table} WHERE id = 15"
    ))
    .await;
    // The body changed after the UPDATE being decoded: the newer value is
    // fetched, and the later UPDATE writes it again — it converges.
    p.commit(&format!("UPDATE {table} SET n = 5 WHERE id = 16"))
        .await;
    let lsn = p
        .commit(&format!(
            "UPDATE {table} SET body = 'short now' WHERE id = 16"
        ))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    p.assert_verified(19);
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replica_identity_index_is_the_key_of_a_table_without_primary_key() {
    let mut p = Pipeline::build(
        "kappa_ident",
        "(a int NOT NULL, b int NOT NULL, v int)",
        "CREATE UNIQUE INDEX {name}_ident ON {table} (b, a); ALTER TABLE {table} REPLICA IDENTITY USING INDEX {name}_ident",
        "",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, g % 7, g FROM generate_series(1, 100) g"
    ))
    .await;
    p.start();
    p.commit(&format!("UPDATE {table} SET v = -v WHERE a % 3 = 0"))
        .await;
    p.commit(&format!("UPDATE {table} SET a = a + 1000 WHERE a % 10 = 1"))
        .await;
    let lsn = p
        .commit(&format!("DELETE FROM {table} WHERE a % 10 = 2"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    p.assert_verified(90);
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_without_any_key_is_refused() {
    let mut p = Pipeline::build("kappa_nokey", "(a int, v int)", "", "").await;
    p.start();
    assert_eq!(p.wait_exit().code(), Some(78));
    let log = p.log();
    assert!(
        log.contains("no primary key and no replica identity index"),
        "{log}"
    );
    assert!(log.contains("skip_tables_without_key"), "{log}");
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn truncate_writes_a_tombstone_for_every_live_key() {
    let mut p = Pipeline::build("kappa_trunc", "(id serial PRIMARY KEY, v int)", "", "").await;
    let table = p.table.clone();
    let child = format!("{table}_child");
    p.client
        .batch_execute(&format!(
            "CREATE TABLE {child} (parent int REFERENCES {table}(id))"
        ))
        .await
        .expect("child table");
    p.commit(&format!(
        "INSERT INTO {table} (v) SELECT g FROM generate_series(1, 200) g"
    ))
    .await;
    p.start();
    p.commit(&format!(
        "INSERT INTO {table} (v) SELECT g FROM generate_series(1, 50) g"
    ))
    .await;
    p.commit(&format!(
        "DELETE FROM {table} WHERE id <= 10; INSERT INTO {child} VALUES (20)"
    ))
    .await;
    p.commit(&format!("TRUNCATE {table} RESTART IDENTITY CASCADE"))
        .await;
    let lsn = p
        .commit(&format!(
            "INSERT INTO {table} (v) SELECT g FROM generate_series(1, 5) g"
        ))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    let log = p.log();
    assert!(
        log.contains("tombstones=240"),
        "240 live keys before TRUNCATE:\n{log}"
    );
    // A consumer that only understands tombstones: every pre-truncate key's
    // newest record before the re-inserts is a tombstone, so only ids 1..5
    // (re-inserted after RESTART IDENTITY) are live.
    p.assert_verified(5);
    p.client
        .batch_execute(&format!("DROP TABLE {child}"))
        .await
        .expect("drop child");
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn partitions_land_in_the_partitioned_tables_topic() {
    let mut p = Pipeline::build(
        "kappa_part",
        "(id int NOT NULL, region text NOT NULL, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region)",
        "CREATE TABLE {table}_eu PARTITION OF {table} FOR VALUES IN ('eu');
         CREATE TABLE {table}_us PARTITION OF {table} FOR VALUES IN ('us');
         ALTER TABLE {table}_eu REPLICA IDENTITY FULL; ALTER TABLE {table}_us REPLICA IDENTITY FULL;
         ALTER TABLE {table} REPLICA IDENTITY FULL",
        "",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g FROM generate_series(1, 100) g"
    ))
    .await;
    p.start();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 'eu', g FROM generate_series(101, 120) g"
    ))
    .await;
    p.commit(&format!("UPDATE {table} SET v = 0 WHERE id % 5 = 0"))
        .await;
    // Moves rows across partitions (a DELETE + INSERT underneath).
    p.commit(&format!(
        "UPDATE {table} SET region = 'us' WHERE id IN (2, 4, 6)"
    ))
    .await;
    let lsn = p
        .commit(&format!("DELETE FROM {table} WHERE id % 7 = 0"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    let rows = p.count().await;
    p.assert_verified(rows);
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_column_added_mid_stream_gets_a_new_schema_and_keeps_streaming() {
    let mut p = Pipeline::new("kappa_addcol", "id int PRIMARY KEY, v int").await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, g FROM generate_series(1, 50) g"
    ))
    .await;
    p.start();
    p.commit(&format!("UPDATE {table} SET v = -v WHERE id <= 10"))
        .await;
    p.commit(&format!("ALTER TABLE {table} ADD COLUMN note text"))
        .await;
    p.commit(&format!(
        "UPDATE {table} SET note = 'after ' || id WHERE id % 2 = 0"
    ))
    .await;
    let lsn = p
        .commit(&format!("INSERT INTO {table} VALUES (51, 51, 'new')"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.assert_running();
    p.stop();
    p.assert_verified(51);
    let versions: Vec<u32> = reqwest_versions(&format!("{}-value", p.topic)).await;
    assert_eq!(versions.len(), 2, "two value schema versions: {versions:?}");
    p.cleanup().await;
}

/// The case the old stand-in registry hid: BACKWARD checks of value schemas
/// whose nullable unions hold logical types (decimal, timestamp-micros). The
/// registry keeps its default BACKWARD rule for the subject (nothing relaxed),
/// the new version is accepted, and a truly incompatible one is still refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_column_added_beside_numeric_and_timestamptz_registers_under_backward() {
    let mut p = Pipeline::new(
        "kappa_addlogical",
        "id int PRIMARY KEY, amount numeric(12,2), placed_at timestamptz, day date",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, g * 1.25, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour', \
         date '2026-01-01' + g FROM generate_series(1, 40) g"
    ))
    .await;
    p.start();
    p.commit(&format!(
        "UPDATE {table} SET amount = -amount WHERE id <= 10"
    ))
    .await;
    p.commit(&format!(
        "ALTER TABLE {table} ADD COLUMN price numeric(10,3), ADD COLUMN seen_at timestamptz"
    ))
    .await;
    p.commit(&format!(
        "UPDATE {table} SET price = id / 8.0, seen_at = placed_at + interval '1 day' WHERE id % 3 = 0"
    ))
    .await;
    let lsn = p
        .commit(&format!(
            "INSERT INTO {table} VALUES (41, 99.99, now(), current_date, 0.001, now())"
        ))
        .await;
    p.wait_confirmed(&lsn).await;
    p.assert_running();
    p.stop();
    p.assert_verified(41);

    let subject = format!("{}-value", p.topic);
    let versions: Vec<u32> = reqwest_versions(&subject).await;
    assert_eq!(versions.len(), 2, "two value schema versions: {versions:?}");
    let level = common::registry_get(&format!("/config/{subject}?defaultToGlobal=true"));
    assert!(
        level.to_string().contains("\"BACKWARD\""),
        "the subject kept the registry's BACKWARD rule: {level}"
    );
    // The rule is enforced: a required field without a default is refused.
    let latest = common::registry_get(&format!("/subjects/{subject}/versions/latest"));
    let mut schema: serde_json::Value =
        serde_json::from_str(latest["schema"].as_str().expect("schema text")).expect("schema");
    schema["fields"]
        .as_array_mut()
        .expect("fields")
        .push(serde_json::json!({"name": "required_without_default", "type": "string"}));
    let body = serde_json::json!({ "schema": schema.to_string() }).to_string();
    let url = format!("{}/subjects/{subject}/versions", common::registry_url());
    let output = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/vnd.schemaregistry.v1+json",
            "--data",
            &body,
            &url,
        ])
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "409",
        "an incompatible schema is refused under BACKWARD"
    );
    p.cleanup().await;
}

/// `GET /subjects/{subject}/versions` from the registry.
async fn reqwest_versions(subject: &str) -> Vec<u32> {
    serde_json::from_value(common::registry_get(&format!(
        "/subjects/{subject}/versions"
    )))
    .expect("versions json")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_table_does_not_pin_wal_while_others_write() {
    let mut p = Pipeline::new("kappa_idle", "id int PRIMARY KEY").await;
    let other = format!("{}_other", p.table);
    p.client
        .batch_execute(&format!("CREATE TABLE {other} (id int, pad text)"))
        .await
        .expect("other table");
    p.start();
    // WAL from a table kappa does not capture.
    for round in 0..5 {
        p.client
            .batch_execute(&format!(
                "INSERT INTO {other} SELECT g, repeat('x', 500) FROM generate_series(1, 2000) g; -- {round}"
            ))
            .await
            .expect("other writes");
    }
    let target: String = p
        .client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .expect("lsn")
        .get(0);
    p.wait_confirmed(&target).await;
    p.stop();
    p.client
        .batch_execute(&format!("DROP TABLE {other}"))
        .await
        .expect("drop other");
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reconnects_when_the_replication_connection_drops() {
    let p = common::streaming_hundred_rows("kappa_reconnect").await;
    common::terminate_walsender(&p).await;
    common::assert_streams_on_after_reconnect(p).await;
}

/// A lost replication connection resumes after the last commit handed
/// over, not from the slot's confirmed position, which lags it by up to a
/// confirm interval: nothing handed over is read again. Reading it again put
/// older states after newer ones in the topic while acknowledgements of the
/// newer ones still moved the slot past them, so a crash then left the
/// older states as the rows (chaos seed 64). The connection is cut at a
/// moment the topic holds a change the slot has not confirmed yet.
#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_resumes_after_what_was_handed_over_and_reads_none_of_it_again() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let mut p = Pipeline::new("kappa_resume_at", "id int PRIMARY KEY, v int").await;
    let table = p.table.clone();
    p.start();
    let lsn = p
        .commit(&format!(
            "INSERT INTO {table} SELECT g, g FROM generate_series(1, 10) g"
        ))
        .await;
    p.wait_confirmed(&lsn).await;
    let watermarks: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", common::brokers())
        .create()
        .expect("consumer");
    let topic = p.topic.clone();
    let written = || -> i64 {
        watermarks
            .fetch_watermarks(&topic, 0, std::time::Duration::from_secs(10))
            .expect("watermarks")
            .1
    };
    let mut records = written();
    let mut cut = false;
    for _ in 0..50 {
        let lsn = p
            .commit(&format!("UPDATE {table} SET v = v + 1 WHERE id = 1"))
            .await;
        records += 1;
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        while written() < records {
            assert!(
                Instant::now() < deadline,
                "the update never reached the topic"
            );
        }
        let lagging: bool = p
            .client
            .query_one(
                "SELECT confirmed_flush_lsn < $1::text::pg_lsn FROM pg_replication_slots WHERE slot_name = $2",
                &[&lsn, &p.name],
            )
            .await
            .expect("slot")
            .get(0);
        if lagging {
            common::terminate_walsender(&p).await;
            cut = true;
            break;
        }
    }
    assert!(cut, "the slot never lagged the topic in 50 rounds");
    p.wait_for_log("reconnected").await;
    let lsn = p
        .commit(&format!("UPDATE {table} SET v = -v WHERE id = 2"))
        .await;
    p.wait_confirmed(&lsn).await;
    assert_eq!(
        written(),
        records + 1,
        "only the change after the reconnect was written; a change handed over before it was read again:\n{}",
        p.log()
    );
    p.stop();
    p.assert_verified(10);
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slot_held_by_another_connector_is_a_clear_error() {
    let mut p = common::streaming_hundred_rows("kappa_held").await;
    // A second process with the same config (so the same slot) waits for
    // the slot to be released, then gives up naming the holder.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut second = common::daemon::Daemon::new(dir.path(), &p.config);
    second.spawn();
    let status = second.wait_exit();
    let log = second.log();
    assert_eq!(status.code(), Some(78), "{log}");
    assert!(
        log.contains(&format!(
            "replication slot {} is in use by server process",
            p.name
        )),
        "{log}"
    );
    assert!(log.contains(&format!("kappa:{}", p.name)), "{log}");
    assert!(
        log.contains("give this connector its own `slot` name"),
        "{log}"
    );
    // The first connector streams on, untouched.
    p.assert_running();
    let table = p.table.clone();
    let lsn = p
        .commit(&format!("INSERT INTO {table} VALUES (1000, 1)"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vanished_slot_is_fatal_never_silently_recreated() {
    let mut p = Pipeline::new("kappa_vanish", "id int PRIMARY KEY").await;
    let table = p.table.clone();
    p.commit(&format!("INSERT INTO {table} VALUES (1)")).await;
    p.start();
    p.wait_snapshot_stored().await;
    p.stop();
    common::wait_slot_released(&p.client, &p.name).await;
    p.client
        .batch_execute(&format!("SELECT pg_drop_replication_slot('{}')", p.name))
        .await
        .expect("drop slot");
    p.start();
    assert_eq!(p.wait_exit().code(), Some(78));
    let log = p.log();
    assert!(
        log.contains(&format!("replication slot {} is gone", p.name)),
        "{log}"
    );
    assert!(log.contains("Re-snapshot"), "{log}");
    let slots: i64 = p
        .client
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
            &[&p.name],
        )
        .await
        .expect("slots")
        .get(0);
    assert_eq!(slots, 0, "kappa must not create a new slot");
    p.cleanup().await;
}

/// SQLSTATE 42704 while streaming can name the publication, not the slot:
/// the error is the server's own (naming the publication), never the advice
/// to drop a healthy slot and re-snapshot, and the slot keeps its position.
#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_publication_is_named_not_taken_for_a_lost_slot() {
    let mut p = Pipeline::new("kappa_nopub", "id int PRIMARY KEY").await;
    let table = p.table.clone();
    p.commit(&format!("INSERT INTO {table} VALUES (1)")).await;
    p.start();
    p.wait_snapshot_stored().await;
    p.client
        .batch_execute(&format!("DROP PUBLICATION {}", p.name))
        .await
        .expect("drop publication");
    p.commit(&format!("INSERT INTO {table} VALUES (2)")).await;
    assert_eq!(p.wait_exit().code(), Some(78));
    let log = p.log();
    assert!(
        log.contains(&format!("publication \"{}\" does not exist", p.name)),
        "{log}"
    );
    assert!(
        !log.contains("is unusable") && !log.contains("Re-snapshot"),
        "a healthy slot is not called unusable: {log}"
    );
    let slots: i64 = p
        .client
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND wal_status <> 'lost'",
            &[&p.name],
        )
        .await
        .expect("slots")
        .get(0);
    assert_eq!(slots, 1, "the slot is still there, holding its WAL");
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_transaction_streams_in_bounded_memory() {
    let mut p = Pipeline::new("kappa_bigtx", "id int PRIMARY KEY, pad text").await;
    let table = p.table.clone();
    p.start();
    let rows = 80_000;
    let lsn = p
        .commit(&format!(
            "INSERT INTO {table} SELECT g, repeat(md5(g::text), 64) FROM generate_series(1, {rows}) g"
        ))
        .await;
    let started = Instant::now();
    p.wait_confirmed(&lsn).await;
    let peak_kb = common::peak_rss_kb(p.pid());
    p.stop();
    // Bounded, not proportional: the transaction is ~160 MB of row data,
    // kappa peaks at 60–70 MB (librdkafka's 8 MB queue and request buffers,
    // the reader's pieces, the runtime), whatever the load on the machine; a
    // reader or produce loop that buffered the transaction would pass 160 MB.
    assert!(
        peak_kb < 96 * 1024,
        "peak RSS {peak_kb} kB for a {rows}-row (~160 MB) transaction; must stay under 96 MB"
    );
    eprintln!(
        "{rows} rows in one transaction: peak RSS {peak_kb} kB, {:?}",
        started.elapsed()
    );
    assert!(topic_records(&p.topic) >= rows);
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_metrics_show_slot_lag_and_progress() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut p = Pipeline::build(
        "kappa_status",
        "(id int PRIMARY KEY, v int)",
        "",
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .await;
    let table = p.table.clone();
    p.start();
    let lsn = p
        .commit(&format!(
            "INSERT INTO {table} SELECT g, g FROM generate_series(1, 30) g"
        ))
        .await;
    p.wait_confirmed(&lsn).await;
    p.wait_snapshot_stored().await;
    // The lag gauge is sampled every 5 s.
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    let metrics = loop {
        let output = std::process::Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/metrics")])
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if text.contains("kappa_slot_lag_bytes") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert!(metrics.contains("kappa_slot_lag_bytes"), "{metrics}");
    assert!(
        metrics.contains("kappa_records_produced_total"),
        "{metrics}"
    );
    assert!(metrics.contains("kappa_durable_lsn"), "{metrics}");
    let stdout = common::kappa_status(&p.config);
    assert!(stdout.contains("lag_bytes="), "{stdout}");
    assert!(
        stdout.contains("snapshot   complete for 1 table(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("topic      {}", p.topic)),
        "{stdout}"
    );
    p.stop();
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resnapshot_on_demand_repairs_a_topic_while_streaming() {
    let mut p = Pipeline::new(
        "kappa_resnap",
        "id int PRIMARY KEY, v int NOT NULL, note text",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, g, 'n' FROM generate_series(1, 4000) g"
    ))
    .await;
    p.start();
    p.stop();
    // Changes the stream never sees: made while the table is out of the publication.
    p.client
        .batch_execute(&format!(
            "ALTER PUBLICATION {name} DROP TABLE {table};
             UPDATE {table} SET v = -v, note = 'missed' WHERE id % 3 = 0;
             INSERT INTO {table} SELECT g, g, 'missed' FROM generate_series(4001, 4100) g;
             ALTER PUBLICATION {name} ADD TABLE {table};",
            name = p.name
        ))
        .await
        .expect("changes behind the stream");
    p.start();
    let lsn = p
        .commit(&format!("UPDATE {table} SET note = 'seen' WHERE id = 1"))
        .await;
    p.wait_confirmed(&lsn).await;
    let before = p.verify();
    assert_eq!(
        before.status.code(),
        Some(1),
        "the topic misses changes before the re-snapshot"
    );
    common::request_resnapshot(&p.config, &table);
    // Writes race the chunks (1,000 rows each): the watermark windows must keep them.
    for round in 0..20 {
        p.commit(&format!(
            "UPDATE {table} SET v = v + 1, note = 'race {round}' WHERE id % 97 = {round}"
        ))
        .await;
    }
    p.wait_for_log("re-snapshot complete").await;
    let lsn = p
        .commit(&format!("UPDATE {table} SET note = 'last' WHERE id = 2"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    assert!(
        p.log().contains("rows=4100") || p.log().contains("re-snapshot complete"),
        "{}",
        p.log()
    );
    p.assert_verified(4100);
    p.cleanup().await;
}

/// A replication connection lost in the middle of a re-snapshot ends it
/// (one failure policy for both readers) and the next session starts from
/// its request, so it starts over and completes without a restart of kappa;
/// the checkpoints handed over while it ran were held at the request.
#[tokio::test(flavor = "multi_thread")]
async fn a_resnapshot_cut_by_a_lost_replication_connection_starts_over_and_completes() {
    let mut p = Pipeline::new(
        "kappa_resnap_cut",
        "id int PRIMARY KEY, v int NOT NULL, note text",
    )
    .await;
    common::edit_config(
        &p.config,
        "snapshot_chunk_rows = 1000",
        "snapshot_chunk_rows = 100",
    );
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, g, 'n' FROM generate_series(1, 4000) g"
    ))
    .await;
    p.start();
    common::request_resnapshot(&p.config, &table);
    p.wait_for_log("re-snapshot started").await;
    p.commit(&format!(
        "UPDATE {table} SET note = 'during' WHERE id % 50 = 0"
    ))
    .await;
    common::terminate_walsender(&p).await;
    p.wait_for_log("re-snapshot interrupted").await;
    assert!(
        !p.log().contains("re-snapshot complete"),
        "the re-snapshot completed before its connection was cut:\n{}",
        p.log()
    );
    p.wait_for_log("re-snapshot complete").await;
    assert!(
        p.log().matches("re-snapshot started").count() >= 2,
        "started over after the reconnect:\n{}",
        p.log()
    );
    let lsn = p
        .commit(&format!("UPDATE {table} SET note = 'last' WHERE id = 2"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    p.assert_verified(4000);
    p.cleanup().await;
}

/// Every record of `topic`, decoded: (field name → value) per row, `None` for tombstones.
async fn decoded_records(
    topic: &str,
) -> Vec<Option<std::collections::HashMap<String, kappa_schemas::Value>>> {
    let kafka = kappa_sink::KafkaConfig::new(common::brokers());
    let mut raw: Vec<Option<Vec<u8>>> = Vec::new();
    kappa_sink::replay::replay(&kafka, topic, |record| {
        raw.push(record.value.map(<[u8]>::to_vec));
        Ok::<_, String>(())
    })
    .expect("replay");
    let registry = kappa_schemas::Registry::new(&common::registry_url());
    let mut out = Vec::new();
    for value in raw {
        let Some(value) = value else {
            out.push(None);
            continue;
        };
        let (id, datum) = kappa_schemas::framing::unframe(&value).expect("framed");
        let (schema, _) = registry.schema(id).await.expect("schema");
        let fields = kappa_schemas::decode::decode_record(&schema, datum, id).expect("decode");
        out.push(Some(fields.into_iter().collect()));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn masked_columns_never_reach_the_topic() {
    let mut p = Pipeline::build(
        "kappa_mask",
        "(id int PRIMARY KEY, email text, ssn text, phone text, age int)",
        "ALTER TABLE {table} REPLICA IDENTITY FULL",
        "[source.postgres.table_options.\"{table}\"]\nexclude_columns = [\"ssn\"]\nhash_columns = [\"email\"]\nconstant_columns = { phone = \"***\" }\n",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} VALUES (1, 'ann@example.com', '111-22-3333', '555-0101', 40), (2, NULL, NULL, NULL, 7)"
    ))
    .await;
    p.start();
    let lsn = p
        .commit(&format!(
            "INSERT INTO {table} VALUES (3, 'bob@example.com', '999-88-7777', '555-0199', 51), (4, 'ann@example.com', '000-00-0000', '555-0101', 9); UPDATE {table} SET age = 41 WHERE id = 1"
        ))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    // The broker may compact id 1's first record away at any moment, so the
    // assertions look at every record that is there and at the newest per key.
    let records = decoded_records(&p.topic).await;
    let mut newest = std::collections::BTreeMap::new();
    for record in records.iter().flatten() {
        assert!(
            !record.contains_key("ssn"),
            "excluded column in the topic: {record:?}"
        );
        let email = record.get("email").expect("email field");
        let phone = record.get("phone").expect("phone field");
        if let kappa_schemas::Value::Text(hash) = email {
            assert_eq!(hash.len(), 64, "hex SHA-256: {hash}");
            assert!(!hash.contains('@'));
            assert_eq!(phone, &kappa_schemas::Value::Text("***".into()));
        } else {
            assert_eq!(email, &kappa_schemas::Value::Null, "NULL stays NULL");
            assert_eq!(phone, &kappa_schemas::Value::Null);
        }
        let id = format!("{:?}", record.get("id").expect("id field"));
        newest.insert(id, email.clone());
    }
    assert_eq!(newest.len(), 4, "one row per key: {newest:?}");
    let email_of = |id: i64| {
        newest
            .get(&format!("{:?}", kappa_schemas::Value::Int(id)))
            .cloned()
            .unwrap_or_else(|| panic!("id {id} missing: {newest:?}"))
    };
    // The same email hashes to the same value (ids 1 and 4), others differ.
    assert_eq!(email_of(1), email_of(4));
    assert_ne!(email_of(1), email_of(3));
    // Nothing of the original values anywhere in the topic's bytes.
    let kafka = kappa_sink::KafkaConfig::new(common::brokers());
    kappa_sink::replay::replay(&kafka, &p.topic, |record| {
        let bytes = record.value.unwrap_or_default();
        let text = String::from_utf8_lossy(bytes);
        for secret in ["111-22-3333", "999-88-7777", "ann@example.com", "555-0101"] {
            if text.contains(secret) {
                return Err(format!("{secret} leaked into offset {}", record.offset));
            }
        }
        Ok(())
    })
    .expect("no secret in the topic");
    p.cleanup().await;
}

/// An incompressible text of about `mb` MB (hex digits of md5s): lz4 does
/// not shrink it, so the record really is that large on the broker.
fn incompressible_mb(mb: u32) -> String {
    format!(
        "(SELECT string_agg(md5(random()::text || g), '') FROM generate_series(1, {}) g)",
        mb * 32_768
    )
}

/// Brokers take 1 MB per record by default; kappa's topics take
/// `[kafka] max_record_bytes` (8 MiB by default), so rows of several MB go
/// through snapshot, stream and rebuild. A row over the setting stops the
/// connector with the table, the key, the size and the setting named.
#[tokio::test(flavor = "multi_thread")]
async fn rows_of_several_megabytes_stream_and_a_larger_one_is_a_clear_error() {
    let mut p = Pipeline::new("kappa_bigrow", "id int PRIMARY KEY, body text").await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} VALUES (1, {}), (2, 'small')",
        incompressible_mb(3)
    ))
    .await;
    p.start();
    p.commit(&format!(
        "INSERT INTO {table} VALUES (3, {})",
        incompressible_mb(3)
    ))
    .await;
    let lsn = p
        .commit(&format!(
            "UPDATE {table} SET body = {} WHERE id = 2",
            incompressible_mb(2)
        ))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    p.assert_verified(3);

    // Lower the setting below the next row's size: the connector stops
    // with the fix, and nothing past the row is confirmed.
    let text = std::fs::read_to_string(&p.config).expect("config");
    std::fs::write(
        &p.config,
        text.replace("[kafka]\n", "[kafka]\nmax_record_bytes = 2097152\n"),
    )
    .expect("config");
    p.commit(&format!(
        "INSERT INTO {table} VALUES (4, {})",
        incompressible_mb(3)
    ))
    .await;
    p.spawn();
    let status = p.wait_exit();
    let log = p.log();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains(&format!("table {table}")) && log.contains("Int(4)"),
        "names the table and the key: {log}"
    );
    assert!(log.contains("max_record_bytes = 2097152"), "{log}");
    p.cleanup().await;
}

/// A re-snapshot that cannot run is abandoned with an error and streaming
/// goes on. Here the table is dropped between the request and the moment the
/// (frozen) connector reads it; before, the failure was fatal, and since the
/// slot is held at a running re-snapshot's request, every restart read the
/// request again: a crash loop.
#[tokio::test(flavor = "multi_thread")]
async fn a_resnapshot_that_cannot_run_is_abandoned_and_streaming_goes_on() {
    let mut p = Pipeline::new("kappa_rsfail", "id int PRIMARY KEY").await;
    let table = p.table.clone();
    p.commit(&format!("INSERT INTO {table} VALUES (1), (2)"))
        .await;
    p.start();
    p.wait_snapshot_stored().await;
    p.daemon.signal("-STOP");
    common::request_resnapshot(&p.config, &table);
    let after = p.commit(&format!("DROP TABLE {table}")).await;
    p.daemon.signal("-CONT");
    p.wait_for_log("re-snapshot abandoned").await;
    // The slot moves past the request: nothing holds it any more.
    p.wait_confirmed(&after).await;
    p.assert_running();
    p.stop();
    p.cleanup().await;
}

/// Waits until the re-snapshot's session last ran a chunk select of `p`'s
/// table (running, or its rows being decoded before the HIGH watermark).
async fn wait_for_chunk_select(p: &Pipeline) {
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let selecting: i64 = p
            .client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%AS c0%' \
                 AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
                &[&p.name],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if selecting > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no chunk select seen:\n{}",
            p.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A TRUNCATE of the table being re-snapshotted ends the re-snapshot, as
/// MySQL's does: every row the table holds after it comes through the
/// stream. Before, a chunk read before the TRUNCATE committed but whose HIGH
/// watermark followed it in the WAL was emitted after the TRUNCATE's
/// tombstones, and the deleted rows came back. Chunks of 50,000 rows make
/// the window between a chunk's select and its HIGH watermark wide (the rows
/// are decoded in it); the TRUNCATE is issued once the select is seen, so it
/// commits inside that window.
#[tokio::test(flavor = "multi_thread")]
async fn a_truncate_during_a_resnapshot_ends_it_and_no_row_comes_back() {
    let mut p = Pipeline::new(
        "kappa_rstrunc",
        "id int PRIMARY KEY, v int NOT NULL, note text",
    )
    .await;
    common::edit_config(
        &p.config,
        "snapshot_chunk_rows = 1000",
        "snapshot_chunk_rows = 50000",
    );
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, g, repeat('n', 200) FROM generate_series(1, 150000) g"
    ))
    .await;
    p.start();
    p.wait_snapshot_stored().await;
    common::request_resnapshot(&p.config, &table);
    wait_for_chunk_select(&p).await;
    p.commit(&format!("TRUNCATE {table}")).await;
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, -g, 'after' FROM generate_series(1, 10) g"
    ))
    .await;
    p.wait_for_log("re-snapshot complete").await;
    let lsn = p
        .commit(&format!("UPDATE {table} SET note = 'last' WHERE id = 2"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    p.assert_verified(10);
    assert!(
        p.log().contains("the table was truncated"),
        "the re-snapshot ended at the TRUNCATE:\n{}",
        p.log()
    );
    p.cleanup().await;
}

/// `kappa verify --slot` against `p`'s table, its source session opened
/// with `standard_conforming_strings = off` (as a role or database setting
/// would): backslashes in ordinary string literals are then escapes.
fn verify_without_conforming_strings(p: &Pipeline) -> std::process::Output {
    let base = common::pg_url();
    let separator = if base.contains('?') { '&' } else { '?' };
    let source = format!("{base}{separator}options=-c%20standard_conforming_strings%3Doff");
    common::kappa(&[
        "verify",
        "--topic",
        &p.topic,
        "--source",
        &source,
        "--table",
        &p.table,
        "--brokers",
        &common::brokers(),
        "--registry",
        &common::registry_url(),
        "--slot",
        &p.name,
        "--lag-timeout",
        "60",
        "--idle-after",
        "2",
    ])
}

/// Verify re-checks each difference against the current row by key, with
/// the key as a quoted literal (COPY takes no parameters). Every session
/// kappa opens pins `standard_conforming_strings = on`: before, a session
/// where it was off read `a\b` as `a` + backspace, found no current row,
/// called the planted difference "in flight" and reported 0 differences.
#[tokio::test(flavor = "multi_thread")]
async fn verify_finds_a_difference_on_a_backslash_key_with_conforming_strings_off() {
    let mut p = Pipeline::new("kappa_scs", "k text PRIMARY KEY, v int NOT NULL").await;
    let table = p.table.clone();
    p.commit(&format!(
        r"INSERT INTO {table} VALUES ($$a\b$$, 1), ($$it's$$, 2), ($$\\x\n'$$, 3), ($$plain$$, 4)"
    ))
    .await;
    p.start();
    let lsn = p
        .commit(&format!("UPDATE {table} SET v = v WHERE k = 'plain'"))
        .await;
    p.wait_confirmed(&lsn).await;
    let output = verify_without_conforming_strings(&p);
    let all = common::text(&output);
    assert!(all.contains("verdict: OK, 0 differences"), "{all}");
    assert!(all.contains("source rows: 4  rebuilt rows: 4 "), "{all}");
    // A change the stream never sees, on the backslash key.
    p.client
        .batch_execute(&format!(
            r"ALTER PUBLICATION {name} DROP TABLE {table};
             UPDATE {table} SET v = 100 WHERE k = $$a\b$$;
             ALTER PUBLICATION {name} ADD TABLE {table};",
            name = p.name
        ))
        .await
        .expect("a change behind the stream");
    let lsn = p
        .commit(&format!("UPDATE {table} SET v = v WHERE k = 'plain'"))
        .await;
    p.wait_confirmed(&lsn).await;
    let output = verify_without_conforming_strings(&p);
    let all = common::text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("verdict: DIFFERENT, 1 differences"), "{all}");
    p.stop();
    p.cleanup().await;
}

/// A server that refuses the login when kappa reconnects (here: its role
/// lost LOGIN, SQLSTATE 28000) stops kappa at once with the server's
/// answer, instead of retrying forever; the password in the source URL
/// never reaches the log. What is retried is decided by SQLSTATE
/// (`source/src/postgres/errors.rs`), and this refusal is not.
#[tokio::test(flavor = "multi_thread")]
async fn a_login_refused_on_reconnect_stops_kappa_with_the_servers_answer() {
    let mut p = Pipeline::new("kappa_refused", "id int PRIMARY KEY, v int").await;
    let table = p.table.clone();
    let secret = format!("pw-{}-secret", p.name);
    p.client
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN SUPERUSER REPLICATION PASSWORD '{secret}'",
            role = p.name
        ))
        .await
        .expect("create role");
    let url = common::pg_url();
    let own = url.replacen("://postgres@", &format!("://{}:{secret}@", p.name), 1);
    assert_ne!(own, url, "PG_URL names user postgres: {url}");
    common::edit_config(
        &p.config,
        &format!("url = \"{url}\""),
        &format!("url = \"{own}\""),
    );
    p.start();
    let lsn = p
        .commit(&format!("INSERT INTO {table} VALUES (1, 1)"))
        .await;
    p.wait_confirmed(&lsn).await;

    p.client
        .batch_execute(&format!("ALTER ROLE {} NOLOGIN", p.name))
        .await
        .expect("alter role");
    common::terminate_walsender(&p).await;
    let started = Instant::now();
    let status = p.wait_exit();
    let log = p.log();
    assert_eq!(status.code(), Some(78), "{log}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(45),
        "exited only after {:?}",
        started.elapsed()
    );
    assert!(log.contains("SQLSTATE 28000"), "{log}");
    assert!(log.contains(&format!("slot {}", p.name)), "{log}");
    assert!(
        !log.contains(&secret),
        "the password reached the log:\n{log}"
    );
    let role = p.name.clone();
    p.cleanup().await;
    common::pg()
        .await
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await
        .expect("drop role");
}
