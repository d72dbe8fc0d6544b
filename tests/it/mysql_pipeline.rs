//! MySQL/MariaDB end to end on real services: snapshot + binlog stream into
//! compacted topics, restarts (clean and kill -9) resuming from the stored
//! binlog position, and `verify` proving the rebuilt tables equal the source.

use crate::common;

use common::mysql::{topic_rows, MysqlPipeline};
use common::RunsKappa;
use kappa_schemas::Value;

const TABLE: &str =
    "CREATE TABLE {db0}.orders (id BIGINT PRIMARY KEY, customer VARCHAR(40) NOT NULL,
    amount DECIMAL(12,2), note TEXT, placed DATETIME(6), version INT NOT NULL DEFAULT 0)";

fn insert(db: &str, first: u64, count: u64) -> String {
    let rows: Vec<String> = (first..first + count)
        .map(|i| {
            format!(
                "({i}, 'customer {}', {}.{:02}, {}, '2024-01-{:02} 10:{:02}:00.{:06}', 0)",
                i % 97,
                i * 3,
                i % 100,
                if i % 7 == 0 {
                    "NULL".to_string()
                } else {
                    format!("'note é {i}'")
                },
                i % 28 + 1,
                i % 60,
                i % 1_000_000
            )
        })
        .collect();
    format!("INSERT INTO {db}.orders VALUES {}", rows.join(", "))
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_and_stream_rebuild_exactly() {
    // The column is added to a table holding logical types (decimal, timestamp-micros in
    // nullable unions), registered under the registry's BACKWARD rule, unrelaxed.
    let setup = format!(
        "{TABLE}; CREATE TABLE {{db0}}.evolving (id INT PRIMARY KEY, v VARCHAR(10), amount DECIMAL(10,2), at DATETIME(6));
         INSERT INTO {{db0}}.evolving VALUES (1, 'old', 12.50, '2026-01-02 03:04:05.678901')"
    );
    let mut p = MysqlPipeline::new("kmy_e2e", 1, &setup).await;
    let db = p.databases[0].clone();
    let table = format!("{db}.orders");
    p.commit(&insert(&db, 1, 2000)).await;
    p.start().await;
    p.commit(&insert(&db, 10_001, 300)).await;
    p.commit(&format!(
        "UPDATE {table} SET amount = amount + 1, note = NULL, version = version + 1 WHERE id % 10 = 3"
    ))
    .await;
    p.commit(&format!("DELETE FROM {table} WHERE id % 10 = 4"))
        .await;
    // Primary-key changes: tombstone of the old key, then the new row.
    p.commit(&format!(
        "UPDATE {table} SET id = id + 100000 WHERE id % 10 = 5"
    ))
    .await;
    // A column added mid-stream must not break the stream.
    let evolving = format!("{db}.evolving");
    p.commit(&format!(
        "INSERT INTO {evolving} VALUES (2, 'before', -0.01, '1999-12-31 23:59:59.000001')"
    ))
    .await;
    p.exec(&format!(
        "ALTER TABLE {evolving} ADD COLUMN extra VARCHAR(10) NULL, ADD COLUMN price DECIMAL(12,4) NULL"
    ))
    .await;
    p.commit(&format!(
        "INSERT INTO {evolving} VALUES (3, 'after ddl', 7.00, NOW(6), 'x', 1.2345); \
         UPDATE {evolving} SET extra = 'y', price = 99.9999 WHERE id = 1"
    ))
    .await;
    let end = p
        .commit(&format!(
            "INSERT INTO {table} (id, customer) VALUES (50000, 'last')"
        ))
        .await;
    p.wait_stored(&end).await;
    p.stop();
    let rows = p.count(&table).await;
    assert_eq!(rows, 2000 + 300 - 230 + 1, "deleted every id ending in 4");
    p.assert_verified(&table, rows);
    p.assert_verified(&evolving, 3);
    let subject = format!("{}-value", p.topic(&evolving));
    let versions = common::registry_get(&format!("/subjects/{subject}/versions"));
    assert_eq!(
        versions.as_array().map(Vec::len),
        Some(2),
        "{subject}: the added columns are a second version: {versions}"
    );
    let log = p.log();
    assert!(log.contains("lock_held_ms"), "{log}");
    assert!(log.contains("initial snapshot delivered"), "{log}");
    assert!(log.contains("stored position"), "{log}");
    assert!(log.contains("table shape reloaded after DDL"), "{log}");
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_snapshot_and_stream_loses_nothing() {
    let mut p = MysqlPipeline::new("kmy_kill", 1, TABLE).await;
    let db = p.databases[0].clone();
    let table = format!("{db}.orders");
    for chunk in 0..4 {
        p.commit(&insert(&db, chunk * 2500 + 1, 2500)).await;
    }
    // Killed once the snapshot position is taken: nothing is stored yet, so
    // the restart snapshots again.
    p.spawn();
    p.wait_for_current_log("snapshot position read").await;
    p.kill9();
    p.commit(&format!("DELETE FROM {table} WHERE id % 100 = 0"))
        .await;
    p.start().await;
    let mut last = p.master_position().await;
    for round in 0..30u64 {
        last = p
            .commit(&format!(
                "UPDATE {table} SET version = version + 1, note = 'round {round}' WHERE id % 30 = {round};
                 INSERT INTO {table} (id, customer) VALUES ({}, 'new')",
                200_000 + round
            ))
            .await;
        if round == 10 {
            // Some progress is stored before the kill, so the restart resumes
            // mid-stream rather than from the snapshot position.
            p.wait_stored(&last).await;
        }
        if round == 20 {
            p.kill9();
            p.commit(&format!(
                "UPDATE {table} SET version = -1 WHERE id % 50 = 7"
            ))
            .await;
            p.start().await;
            assert!(
                p.current_log()
                    .contains("resuming from the stored binlog position"),
                "{}",
                p.current_log()
            );
        }
    }
    p.wait_stored(&last).await;
    p.stop();
    let rows = p.count(&table).await;
    assert_eq!(rows, 10_000 - 100 + 30);
    p.assert_verified(&table, rows);
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_tables_in_two_databases() {
    let mut p = MysqlPipeline::new(
        "kmy_two",
        2,
        "CREATE TABLE {db0}.a (id INT PRIMARY KEY, v VARCHAR(10));
         CREATE TABLE {db1}.b (k1 VARCHAR(8) NOT NULL, k2 INT NOT NULL, v DOUBLE, PRIMARY KEY (k1, k2));
         INSERT INTO {db0}.a VALUES (1, 'one'), (2, 'two');
         INSERT INTO {db1}.b VALUES ('x', 1, 1.5), ('y', 2, -0.25), ('Z', 3, NULL);",
    )
    .await;
    let (a, b) = (
        format!("{}.a", p.databases[0]),
        format!("{}.b", p.databases[1]),
    );
    p.start().await;
    p.commit(&format!(
        "INSERT INTO {a} VALUES (3, 'three'); UPDATE {b} SET v = 2.5 WHERE k1 = 'x';
         DELETE FROM {a} WHERE id = 1; INSERT INTO {b} VALUES ('é', 9, 9.75)"
    ))
    .await;
    // The server drops the binlog connection: kappa reconnects from the
    // last commit it handed over (other tests' connectors reconnect too).
    let first = p.master_position().await;
    p.wait_stored(&first).await;
    let dumps: Vec<u64> = {
        use mysql_async::prelude::Queryable;
        p.conn
            .query(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
            )
            .await
            .expect("processlist")
    };
    assert!(!dumps.is_empty(), "no binlog dump thread");
    for id in dumps {
        use mysql_async::prelude::Queryable;
        // A thread may be gone already (another test's connector stopping).
        let _ = p.conn.query_drop(format!("KILL {id}")).await;
    }
    p.commit(&format!("INSERT INTO {a} VALUES (4, 'four')"))
        .await;
    p.wait_for_current_log("binlog connection lost; reconnecting")
        .await;
    // An idle table's stored position still advances with other tables' commits.
    let end = p
        .commit(&format!("UPDATE {b} SET k2 = 20 WHERE k1 = 'y'"))
        .await;
    p.wait_stored(&end).await;
    p.stop();
    p.assert_verified(&a, 3);
    p.assert_verified(&b, 4);
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn column_masking_applies_to_mysql_tables() {
    let mut p = MysqlPipeline::new(
        "kmy_mask",
        1,
        "CREATE TABLE {db0}.users (id INT PRIMARY KEY, email VARCHAR(50), ssn VARCHAR(20), phone VARCHAR(20));
         INSERT INTO {db0}.users VALUES (1, 'a@example.com', '123-45-6789', '555-0100')",
    )
    .await;
    let users = format!("{}.users", p.databases[0]);
    p.append_config(&format!(
        "\n[source.mysql.table_options.\"{users}\"]\nexclude_columns = [\"ssn\"]\nhash_columns = [\"email\"]\nconstant_columns = {{ phone = \"***\" }}\n"
    ));
    p.start().await;
    let end = p
        .commit(&format!(
            "INSERT INTO {users} VALUES (2, 'b@example.com', '987-65-4321', '555-0199')"
        ))
        .await;
    p.wait_stored(&end).await;
    p.stop();
    let rows = topic_rows(&p.topic(&users));
    assert_eq!(rows.len(), 2);
    for (id, email) in [(1, "a@example.com"), (2, "b@example.com")] {
        let row = &rows[&id];
        assert!(
            !row.contains_key("ssn"),
            "excluded column in the record: {row:?}"
        );
        assert_eq!(row["phone"], Value::Text("***".into()));
        let Value::Text(hashed) = &row["email"] else {
            panic!("email is not text: {row:?}");
        };
        assert_eq!(hashed.len(), 64, "hex SHA-256: {hashed}");
        assert!(!hashed.contains(email));
    }
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_decodes_events_older_than_a_later_add_column_and_truncate_tombstones() {
    let mut p = MysqlPipeline::new(
        "kmy_ddl",
        1,
        "CREATE TABLE {db0}.evolving (id INT PRIMARY KEY, v VARCHAR(10));
         CREATE TABLE {db0}.scratch (id INT PRIMARY KEY);
         INSERT INTO {db0}.evolving VALUES (1, 'old');
         INSERT INTO {db0}.scratch VALUES (1), (2), (3)",
    )
    .await;
    let evolving = format!("{}.evolving", p.databases[0]);
    let scratch = format!("{}.scratch", p.databases[0]);
    p.start().await;
    let streamed = p
        .commit(&format!("INSERT INTO {evolving} VALUES (2, 'streamed')"))
        .await;
    p.wait_stored(&streamed).await;
    p.stop();
    // While kappa is down: a row of the old shape, the new column, a row of
    // the new shape. On restart the catalog already has the column, and the
    // replayed old event must still decode.
    p.commit(&format!("INSERT INTO {evolving} VALUES (3, 'old shape')"))
        .await;
    p.exec(&format!(
        "ALTER TABLE {evolving} ADD COLUMN extra VARCHAR(10) NULL"
    ))
    .await;
    p.commit(&format!("INSERT INTO {evolving} VALUES (4, 'new', 'x')"))
        .await;
    p.exec(&format!("TRUNCATE TABLE {scratch}")).await;
    let end = p
        .commit(&format!("INSERT INTO {scratch} VALUES (10)"))
        .await;
    p.start().await;
    p.wait_stored(&end).await;
    p.stop();
    p.assert_verified(&evolving, 4);
    p.assert_verified(&scratch, 1);
    let log = p.log();
    assert!(log.contains("TRUNCATE in the binlog"), "{log}");
    assert!(log.contains("a tombstone for every live key"), "{log}");
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_replays_events_older_than_a_drop_column_and_refuses_a_rename() {
    let mut p = MysqlPipeline::new(
        "kmy_drop",
        1,
        "CREATE TABLE {db0}.shrinking (id INT PRIMARY KEY, v VARCHAR(10), doomed VARCHAR(10), n INT);
         INSERT INTO {db0}.shrinking VALUES (1, 'a', 'x', 1)",
    )
    .await;
    let table = format!("{}.shrinking", p.databases[0]);
    p.start().await;
    let streamed = p
        .commit(&format!("INSERT INTO {table} VALUES (2, 'b', 'y', 2)"))
        .await;
    p.wait_stored(&streamed).await;
    p.stop();
    // While kappa is down: changes of the old shape, then DROP COLUMN. On
    // restart the catalog no longer has the column, and the replayed old
    // events must still decode (their value of it left out).
    p.commit(&format!(
        "UPDATE {table} SET doomed = 'z', v = 'a2' WHERE id = 1"
    ))
    .await;
    p.commit(&format!("INSERT INTO {table} VALUES (3, 'c', 'w', 3)"))
        .await;
    p.exec(&format!("ALTER TABLE {table} DROP COLUMN doomed"))
        .await;
    let end = p
        .commit(&format!("INSERT INTO {table} VALUES (4, 'd', 4)"))
        .await;
    p.start().await;
    p.wait_stored(&end).await;
    p.stop();
    p.assert_verified(&table, 4);
    assert!(p.log().contains("dropped since"), "{}", p.log());

    // A rename cannot be told from a drop and an add: an old event's value
    // would land under no name and the new column would read NULL. Refused.
    p.commit(&format!("UPDATE {table} SET n = 20 WHERE id = 2"))
        .await;
    p.exec(&format!("ALTER TABLE {table} RENAME COLUMN n TO m"))
        .await;
    p.spawn();
    let status = p.wait_exit();
    let log = p.current_log();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("a column was renamed"), "{log}");
    assert!(log.contains("[\"n\"]") && log.contains("[\"m\"]"), "{log}");
    assert!(log.contains("re-snapshot the table"), "{log}");
    p.cleanup().await;
}

/// A SAVEPOINT inside a transaction is not a commit point (the rows of the
/// transaction, less the part rolled back to the savepoint, arrive whole),
/// and a two-phase XA transaction on a captured table stops the connector
/// before any of its rows: this one is rolled back after XA PREPARE, so a
/// row emitted at XA END would exist in the topic and nowhere else.
#[tokio::test(flavor = "multi_thread")]
async fn savepoints_stream_whole_and_two_phase_xa_is_refused_before_its_rows() {
    let mut p = MysqlPipeline::new("kmy_xa", 1, TABLE).await;
    let db = p.databases[0].clone();
    let table = format!("{db}.orders");
    p.commit(&insert(&db, 1, 10)).await;
    p.start().await;
    let end = p
        .commit(&format!(
            "INSERT INTO {table} (id, customer) VALUES (100, 'kept'); SAVEPOINT s1; \
             INSERT INTO {table} (id, customer) VALUES (101, 'rolled back'); ROLLBACK TO SAVEPOINT s1; \
             INSERT INTO {table} (id, customer) VALUES (102, 'kept too')"
        ))
        .await;
    p.wait_stored(&end).await;
    p.assert_running();
    p.exec(&format!(
        "XA START 'kappa_xa'; INSERT INTO {table} (id, customer) VALUES (200, 'prepared'); \
         XA END 'kappa_xa'; XA PREPARE 'kappa_xa'; XA ROLLBACK 'kappa_xa'"
    ))
    .await;
    let status = p.wait_exit();
    let log = p.log();
    assert_eq!(status.code(), Some(78), "{log}");
    assert!(
        log.contains("two-phase XA") && log.contains(&table),
        "{log}"
    );
    assert!(log.contains("ONE PHASE"), "the fix is named: {log}");
    let rows = topic_rows(&p.topic(&table));
    assert!(
        rows.contains_key(&100) && rows.contains_key(&102),
        "{:?}",
        rows.keys()
    );
    assert!(!rows.contains_key(&101), "rolled back to the savepoint");
    assert!(!rows.contains_key(&200), "nothing of the XA transaction");
    p.cleanup().await;
}

/// A snapshot and a transaction of wide rows leave in chunks and pieces
/// bounded by bytes, not only by row count. Measured here (debug build), for
/// a snapshot of 60 rows of 1 MB and 60 more streamed in one transaction:
/// 84 MB peak with both byte bounds, 107 MB without the snapshot's, 120 MB
/// and more without the stream's.
#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_of_wide_rows_streams_in_bounded_memory() {
    let mut p = MysqlPipeline::new(
        "kmy_wide",
        1,
        "CREATE TABLE {db0}.blobs (id INT PRIMARY KEY, body LONGTEXT)",
    )
    .await;
    let db = p.databases[0].clone();
    let table = format!("{db}.blobs");
    // seq_1_to_60: MariaDB's Sequence engine, in any database.
    p.commit(&format!(
        "INSERT INTO {table} SELECT seq + 1000, REPEAT(MD5(seq), 32768) FROM {db}.seq_1_to_60"
    ))
    .await;
    p.start().await;
    let end = p
        .commit(&format!(
            "INSERT INTO {table} SELECT seq, REPEAT(MD5(seq), 32768) FROM {db}.seq_1_to_60"
        ))
        .await;
    p.wait_stored(&end).await;
    let peak_kb = common::peak_rss_kb(p.pid());
    p.stop();
    eprintln!("wide rows: peak RSS {peak_kb} kB");
    assert!(
        peak_kb < 96 * 1024,
        "peak RSS {peak_kb} kB for a snapshot and a transaction of 60 rows of 1 MB each; must stay under 96 MB"
    );
    p.assert_verified(&table, 120);
    p.cleanup().await;
}

/// A TRUNCATE committed after the snapshot's read view was taken makes
/// InnoDB refuse to read the table through it (ERROR 1412): the table is
/// read again through a later read view, streaming still starts at the
/// snapshot position, and the topic ends exact (see `mysql/snapshot.rs`).
#[tokio::test(flavor = "multi_thread")]
async fn a_table_truncated_during_the_snapshot_is_read_again_at_the_end() {
    let mut p = MysqlPipeline::new(
        "kmy_snaptrunc",
        1,
        "CREATE TABLE {db0}.a_big (id INT PRIMARY KEY, pad VARCHAR(200));
         CREATE TABLE {db0}.b_trunc (id INT PRIMARY KEY, v INT);
         INSERT INTO {db0}.b_trunc VALUES (1, 1), (2, 2), (3, 3);",
    )
    .await;
    let db = p.databases[0].clone();
    let (big, trunc) = (format!("{db}.a_big"), format!("{db}.b_trunc"));
    // a_big is read first and long enough (1,000 chunks) for the TRUNCATE of
    // b_trunc to commit before b_trunc's turn.
    p.commit(&format!(
        "INSERT INTO {big} SELECT seq, REPEAT(MD5(seq), 6) FROM {db}.seq_1_to_100000"
    ))
    .await;
    common::edit_config(
        &p.config,
        "snapshot_chunk_rows = 1000",
        "snapshot_chunk_rows = 100",
    );
    p.spawn();
    p.wait_for_current_log("snapshot position read").await;
    p.commit(&format!("UPDATE {trunc} SET v = 20 WHERE id = 2"))
        .await;
    p.exec(&format!("TRUNCATE TABLE {trunc}")).await;
    p.commit(&format!("INSERT INTO {trunc} VALUES (4, 4), (1, 10)"))
        .await;
    p.wait_for_current_log("streaming changes").await;
    assert!(
        p.current_log().contains("it is read again at the end"),
        "the TRUNCATE did not land during the snapshot (a_big was read too fast?):\n{}",
        p.current_log()
    );
    let end = p
        .commit(&format!("UPDATE {trunc} SET v = 40 WHERE id = 4"))
        .await;
    p.wait_stored(&end).await;
    p.stop();
    p.assert_verified(&trunc, 2);
    p.assert_verified(&big, 100_000);
    p.cleanup().await;
}

/// A server that refuses the login when kappa reconnects (here: its user
/// was dropped; MariaDB answers 1698, MySQL 1045, both SQLSTATE 28000) stops kappa at once with the server's answer,
/// instead of retrying forever; the password in the source URL never
/// reaches the log. What is retried is decided by the server's error number
/// (`source/src/mysql/errors.rs`), and this refusal is not.
#[tokio::test(flavor = "multi_thread")]
async fn a_login_refused_on_reconnect_stops_kappa_with_the_servers_answer() {
    let mut p = MysqlPipeline::new(
        "kmy_refused",
        1,
        "CREATE TABLE {db0}.t (id INT PRIMARY KEY, v INT)",
    )
    .await;
    let secret = format!("pw-{}-secret", p.name);
    let user = p.use_own_user(Some(&secret)).await;
    p.start().await;
    let t = format!("{}.t", p.databases[0]);
    let end = p.commit(&format!("INSERT INTO {t} VALUES (1, 1)")).await;
    p.wait_stored(&end).await;

    p.exec(&format!("DROP USER '{user}'@'127.0.0.1'")).await;
    p.kill_binlog_dumps_of(&user).await;
    let started = std::time::Instant::now();
    let status = p.daemon.wait_exit();
    let log = p.log();
    assert_eq!(status.code(), Some(78), "{log}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(45),
        "exited only after {:?}",
        started.elapsed()
    );
    assert!(log.contains("(28000)"), "{log}");
    assert!(
        !log.contains(&secret),
        "the password reached the log:\n{log}"
    );
    p.cleanup().await;
}

/// Upgrades keep working: an offsets record exactly as earlier releases
/// wrote it (these bytes) is resumed from, not re-snapshotted, and the record
/// written back keeps that format, field for field.
#[tokio::test(flavor = "multi_thread")]
async fn a_connector_resumes_from_an_offsets_record_of_an_earlier_release() {
    let mut p = MysqlPipeline::new("kmy_upgrade", 1, TABLE).await;
    let db = p.databases[0].clone();
    p.commit(&insert(&db, 1, 100)).await;
    let stored = p.master_position().await;
    // The earlier release's bytes: its field names and order, `slot` empty.
    let record = format!(
        r#"{{"slot":"","snapshotted":[{{"schema":"{db}","table":"orders"}}],"snapshot_lsn":null,"binlog":{{"file":"{}","pos":{}}}}}"#,
        stored.file, stored.pos
    );
    let kafka = kappa_sink::KafkaConfig::new(common::brokers());
    kappa_sink::offsets::ensure_offsets_topic(&kafka, common::mysql::OFFSETS_TOPIC, 1)
        .await
        .expect("offsets topic");
    let producer = kappa_sink::Producer::new(&kafka).expect("producer");
    kappa_sink::offsets::write_state(
        &producer,
        common::mysql::OFFSETS_TOPIC,
        &p.name,
        record.as_bytes(),
    )
    .await
    .expect("write the earlier release's record");
    // Rows after the stored position: the only ones the topic may hold.
    p.commit(&insert(&db, 1001, 40)).await;
    p.start().await;
    assert!(
        p.log().contains("resuming from the stored binlog position"),
        "{}",
        p.log()
    );
    let end = p
        .commit(&format!(
            "UPDATE {db}.orders SET version = 1 WHERE id = 1001"
        ))
        .await;
    p.wait_stored(&end).await;
    let rows = topic_rows(&p.topic(&format!("{db}.orders")));
    let mut keys: Vec<i64> = rows.keys().copied().collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        (1001..1041).collect::<Vec<i64>>(),
        "resumed at the stored position: no snapshot of the 100 earlier rows"
    );
    let bytes = kappa_sink::offsets::read_state(&kafka, common::mysql::OFFSETS_TOPIC, &p.name)
        .await
        .expect("read the record")
        .expect("a record");
    let written = String::from_utf8(bytes).expect("JSON text");
    let prefix = format!(
        r#"{{"slot":"","snapshotted":[{{"schema":"{db}","table":"orders"}}],"snapshot_lsn":null,"binlog":{{"file":"{}","pos":"#,
        end.file
    );
    assert!(
        written.starts_with(&prefix),
        "the record is written back in the earlier format: {written}"
    );
    // `kappa status` reads the same record through the same source.
    let stdout = common::kappa_status(&p.config);
    for line in [
        "server     binlog at ".to_string(),
        format!("stored     binlog {}:", end.file),
        "snapshot   complete for 1 table(s)".to_string(),
        format!("topic      {}", p.topic(&format!("{db}.orders"))),
    ] {
        assert!(stdout.contains(&line), "{line:?} in:\n{stdout}");
    }
    p.cleanup().await;
}
