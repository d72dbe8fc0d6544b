//! The product's promise, end to end on real services: a table rebuilt from
//! its compacted topic alone equals the source table.

use crate::common;

use common::Pipeline;
use common::RunsKappa;

/// Every type of the walking skeleton, NULLs allowed everywhere but the key.
const ALL_TYPES: &str = "id bigint PRIMARY KEY, s smallint, i integer, n numeric(12,3), r real, d double precision,
    b boolean, t text, v varchar(20), c char(4), by bytea, dt date, ts timestamp, tstz timestamptz(6), u uuid,
    j json, jb jsonb";

/// `count` rows starting at id `first`, with edge values mixed in and a NULL
/// in every nullable column of every seventh row.
fn insert_rows(table: &str, first: i64, count: i64) -> String {
    format!(
        "INSERT INTO {table} SELECT g,
            CASE WHEN g % 7 = 0 THEN NULL WHEN g % 5 = 0 THEN -32768 ELSE (g % 32767)::smallint END,
            CASE WHEN g % 7 = 0 THEN NULL WHEN g % 11 = 0 THEN 2147483647 ELSE g::int END,
            CASE WHEN g % 7 = 0 THEN NULL ELSE (g * 1.001 - 500)::numeric(12,3) END,
            CASE WHEN g % 7 = 0 THEN NULL WHEN g % 13 = 0 THEN 'NaN'::real ELSE g / 3.0 END,
            CASE WHEN g % 7 = 0 THEN NULL WHEN g % 13 = 0 THEN '-Infinity'::float8 WHEN g % 17 = 0 THEN '-0'::float8 ELSE g / 7.0 END,
            CASE WHEN g % 7 = 0 THEN NULL ELSE g % 2 = 0 END,
            CASE WHEN g % 7 = 0 THEN NULL WHEN g % 3 = 0 THEN '' ELSE 'row ' || g || E' héllo 🎉 tab\\there\\nnewline \\\\ backslash' END,
            CASE WHEN g % 7 = 0 THEN NULL ELSE 'v' || g END,
            CASE WHEN g % 7 = 0 THEN NULL ELSE 'ab' END,
            CASE WHEN g % 7 = 0 THEN NULL WHEN g % 3 = 0 THEN ''::bytea ELSE decode(md5(g::text), 'hex') END,
            CASE WHEN g % 7 = 0 THEN NULL ELSE date '1960-01-01' + (g % 30000)::int END,
            CASE WHEN g % 7 = 0 THEN NULL ELSE timestamp '1999-12-31 23:59:59.999999' + g * interval '1 minute 0.000001 second' END,
            CASE WHEN g % 7 = 0 THEN NULL ELSE timestamptz '1969-07-20 20:17:40.5+00' + g * interval '1 hour 1 microsecond' END,
            CASE WHEN g % 7 = 0 THEN NULL ELSE md5(g::text)::uuid END,
            CASE WHEN g % 7 = 0 THEN NULL ELSE json_build_object('g', g, 'nested', json_build_array(1, 'two', null), 'u', 'é\\u00e9') END,
            CASE WHEN g % 7 = 0 THEN NULL ELSE jsonb_build_object('g', g, 'k', repeat('x', (g % 50)::int)) END
         FROM generate_series({first}, {last}) g",
        last = first + count - 1
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_and_stream_rebuild_exactly() {
    let mut p = Pipeline::new("kappa_e2e", ALL_TYPES).await;
    let table = p.table.clone();
    // Rows that exist before the connector first starts: the snapshot.
    p.commit(&insert_rows(&table, 1, 2500)).await;
    p.start();
    // Streamed: inserts, updates of every column, deletes, a primary-key change.
    p.commit(&insert_rows(&table, 10_001, 500)).await;
    p.commit(&format!(
        "UPDATE {table} SET s = 1, i = -1, n = 0.001, r = 'Infinity', d = 1e300, b = NOT coalesce(b, false),
           t = 'updated ' || id, v = NULL, c = 'zz', by = '\\x00ff'::bytea, dt = '2000-02-29', ts = '2038-01-19 03:14:08',
           tstz = '2000-01-01 00:00:00+05:30', u = NULL, j = '[]', jb = '{{\"a\": [1, 2, {{\"b\": null}}]}}'
         WHERE id % 10 = 3"
    ))
    .await;
    p.commit(&format!("DELETE FROM {table} WHERE id % 10 = 4"))
        .await;
    p.commit(&format!(
        "UPDATE {table} SET id = id + 100000 WHERE id % 10 = 5"
    ))
    .await;
    p.commit(&format!("UPDATE {table} SET id = 99999 WHERE id = 100005"))
        .await;
    let lsn = p
        .commit(&format!("UPDATE {table} SET t = NULL WHERE id = 1"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    let rows = p.count().await;
    assert_eq!(rows, 2700, "2500 + 500 inserted, 300 deleted");
    p.assert_verified(rows);
    let log = p.log();
    assert!(log.contains("created replication slot"), "{log}");
    assert!(
        log.contains("confirmed the slot up to the last delivered commit"),
        "{log}"
    );
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_snapshot_and_stream_loses_nothing() {
    let mut p = Pipeline::new(
        "kappa_kill",
        "id int PRIMARY KEY, payload text, version int NOT NULL",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, repeat(md5(g::text), 4), 0 FROM generate_series(1, 20000) g"
    ))
    .await;
    // Killed as soon as the snapshot starts: 20,000 rows take seconds to deliver.
    p.spawn();
    p.wait_for_log("created replication slot").await;
    p.kill9();
    assert!(
        !p.log().contains("initial snapshot delivered"),
        "snapshot finished before the kill:\n{}",
        p.log()
    );
    // Changes while kappa is down, including deletes of snapshotted rows:
    // a restart must not keep them as ghosts.
    p.commit(&format!("DELETE FROM {table} WHERE id % 100 = 0"))
        .await;
    p.commit(&format!(
        "UPDATE {table} SET version = 1 WHERE id % 100 = 1"
    ))
    .await;
    p.start();
    p.wait_for_log("overlapping the slot's retained changes")
        .await;
    // Writes while kappa streams; killed in the middle of them.
    for round in 0..20 {
        p.commit(&format!(
            "UPDATE {table} SET version = version + 1, payload = 'round {round}' WHERE id % 20 = {}",
            round % 20
        ))
        .await;
        p.commit(&format!(
            "INSERT INTO {table} VALUES ({}, 'new', 0)",
            100_000 + round
        ))
        .await;
        if round == 10 {
            p.kill9();
            p.start();
        }
    }
    let lsn = p
        .commit(&format!("DELETE FROM {table} WHERE id = 100003"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    let rows = p.count().await;
    assert_eq!(rows, 20000 - 200 + 20 - 1);
    p.assert_verified(rows);
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_finds_changes_made_behind_the_connectors_back() {
    let mut p = Pipeline::new("kappa_diff", "id int PRIMARY KEY, name text").await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 'n' || g FROM generate_series(1, 50) g"
    ))
    .await;
    p.start();
    let lsn = p
        .commit(&format!(
            "UPDATE {table} SET name = 'streamed' WHERE id = 1"
        ))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    p.assert_verified(50);
    // Behind kappa's back (it is stopped): one changed, one removed, one added.
    p.commit(&format!(
        "UPDATE {table} SET name = 'sneaky' WHERE id = 2; DELETE FROM {table} WHERE id = 3;
         INSERT INTO {table} VALUES (51, 'new')"
    ))
    .await;
    let output = p.verify();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "verify must exit 1:\n{stdout}"
    );
    assert!(
        stdout.contains("source rows: 50  rebuilt rows: 50  missing: 1  extra: 1  different: 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("name: source \"sneaky\" / rebuilt \"n2\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("verdict: DIFFERENT, 3 differences"),
        "{stdout}"
    );
    p.cleanup().await;
}
