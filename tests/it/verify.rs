//! `kappa verify` in depth, on the real services: every kind of difference
//! in a 100,000-row table, key orders the database and the rebuilt table
//! must agree on, and verifying while the connector streams or lags.

use crate::common;

use common::RunsKappa;
use common::{brokers, kappa, pg_url, registry_url, text, Pipeline};
use std::process::Output;
use std::time::Duration;

fn verify(p: &Pipeline, extra: &[&str]) -> Output {
    let mut args = vec![
        "verify".to_string(),
        "--topic".into(),
        p.topic.clone(),
        "--source".into(),
        pg_url(),
        "--table".into(),
        p.table.clone(),
        "--brokers".into(),
        brokers(),
        "--registry".into(),
        registry_url(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kappa(&args)
}

/// Runs the connector until its initial snapshot (every row committed so
/// far) is acknowledged by the broker.
async fn capture_everything(p: &mut Pipeline) {
    p.start();
    p.wait_snapshot_stored().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_finds_each_kind_of_difference_in_a_100k_row_table() {
    let mut p = Pipeline::new(
        "kappa_vbig",
        "id int PRIMARY KEY, name text, amount numeric(12,2), at timestamptz",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 'name ' || g, g * 0.01, timestamptz '2026-01-01' + g * interval '1 second'
         FROM generate_series(1, 100000) g"
    ))
    .await;
    capture_everything(&mut p).await;
    p.stop();
    let (path, output) = p.rebuild("big.sqlite");
    assert!(output.status.success(), "{}", text(&output));
    let rebuilt = format!("sqlite:{}", path.display());
    let clean = verify(&p, &["--rebuilt", &rebuilt]);
    assert!(clean.status.success(), "{}", text(&clean));

    // Behind the connector's back: 2 rows added (missing from the rebuilt
    // table), 3 removed (extra in it), 4 changed in one column each.
    p.commit(&format!(
        "INSERT INTO {table} VALUES (100001, 'new', 1, now()), (0, 'zero', 0, now());
         DELETE FROM {table} WHERE id IN (1, 50000, 100000);
         UPDATE {table} SET name = 'renamed' WHERE id IN (2, 3);
         UPDATE {table} SET amount = -1 WHERE id = 77777;
         UPDATE {table} SET at = NULL WHERE id = 99999"
    ))
    .await;
    let output = verify(&p, &["--rebuilt", &rebuilt, "--show", "20"]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        all.contains(
            "source rows: 99999  rebuilt rows: 100000  missing: 2  extra: 3  different: 4"
        ),
        "{all}"
    );
    assert!(all.contains("verdict: DIFFERENT, 9 differences"), "{all}");
    assert!(all.contains("missing   id=0"), "{all}");
    assert!(all.contains("extra     id=50000"), "{all}");
    assert!(
        all.contains("name: source \"renamed\" / rebuilt \"name 2\""),
        "{all}"
    );
    assert!(
        all.contains("amount: source -1.00 / rebuilt 777.77"),
        "{all}"
    );
    assert!(all.contains("at: source NULL / rebuilt"), "{all}");

    let output = verify(
        &p,
        &["--rebuilt", &rebuilt, "--format", "json", "--show", "3"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["missing"], 2);
    assert_eq!(report["extra"], 3);
    assert_eq!(report["different"], 4);
    assert_eq!(
        report["first_differences"].as_array().map(Vec::len),
        Some(3)
    );
    // Differences sit in the first, sixth and last ranges of 10,000 keys.
    let ranges = report["differing_ranges"].as_u64().unwrap_or(0);
    assert!((3..=5).contains(&ranges), "{report}");
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn composite_text_and_unusual_keys_merge_in_one_order() {
    // Text keys in byte order (COLLATE "C"), a composite key, and key types
    // the database orders differently from the rebuilt table (char(n),
    // unconstrained numeric), which verify sorts itself.
    for (prefix, columns, insert) in [
        (
            "kappa_vtext",
            "region text, id int, v text, PRIMARY KEY (region, id)",
            "SELECT r, g, 'v' FROM unnest(ARRAY['a', 'B', 'b', 'é', 'Z', '', 'a b', 'ä', '🎉', 'a\u{1}']) r, generate_series(-3, 3) g",
        ),
        (
            "kappa_vchar",
            "code char(4) PRIMARY KEY, v int",
            "SELECT c, 1 FROM unnest(ARRAY['a', 'a b', 'ab', 'B', 'b\t', 'é']) c",
        ),
        (
            "kappa_vnum",
            "n numeric PRIMARY KEY, v int",
            "SELECT n, 1 FROM unnest(ARRAY[-10.5, -2, 0, 0.001, 2, 10, 100.25, 1e20]::numeric[]) n",
        ),
    ] {
        let mut p = Pipeline::new(prefix, columns).await;
        let table = p.table.clone();
        p.commit(&format!("INSERT INTO {table} {insert}")).await;
        capture_everything(&mut p).await;
        p.stop();
        let rows = p.count().await;
        p.assert_verified(rows);
        // One row changed behind kappa's back is found, not lost in a
        // misaligned merge.
        p.commit(&format!(
            "UPDATE {table} SET v = NULL WHERE ctid = (SELECT min(ctid) FROM {table})"
        ))
        .await;
        let output = p.verify();
        let all = text(&output);
        assert!(
            all.contains(&format!(
                "source rows: {rows}  rebuilt rows: {rows}  missing: 0  extra: 0  different: 1"
            )),
            "{prefix}: {all}"
        );
        p.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_while_streaming_reports_lag_instead_of_differences() {
    let mut p = Pipeline::new("kappa_vlag", "id int PRIMARY KEY, counter int NOT NULL").await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 2000) g"
    ))
    .await;
    capture_everything(&mut p).await;

    // Writes keep coming while verify runs against the streaming connector.
    let writer = {
        let table = table.clone();
        tokio::spawn(async move {
            let client = common::pg().await;
            for round in 0..40 {
                client
                    .batch_execute(&format!(
                        "UPDATE {table} SET counter = counter + 1 WHERE id % 40 = {round};
                         INSERT INTO {table} VALUES ({}, 0)",
                        10_000 + round
                    ))
                    .await
                    .expect("write");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // Generous waits: on a loaded machine the broker may pause its
    // acknowledgements for seconds, which must not read as an idle connector.
    let output = verify(
        &p,
        &[
            "--slot",
            &p.name,
            "--lag-timeout",
            "120",
            "--idle-after",
            "60",
        ],
    );
    let all = text(&output);
    writer.await.unwrap();
    assert!(output.status.success(), "{all}");
    assert!(all.contains("(caught up"), "{all}");
    assert!(all.contains("verdict: OK, 0 differences"), "{all}");
    // Every write above reaches the topic before the connector stops (a
    // SIGTERM drains what was received, not what the server still holds).
    let lsn = p
        .commit(&format!(
            "UPDATE {table} SET counter = counter WHERE id = 1"
        ))
        .await;
    p.wait_confirmed(&lsn).await;

    // The connector stops; changes made now are not in the topic, and the
    // slot never confirms them: that is lag, not a difference.
    p.stop();
    p.commit(&format!("UPDATE {table} SET counter = -1 WHERE id <= 5"))
        .await;
    let output = verify(&p, &["--slot", &p.name, "--lag-timeout", "2"]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("LAGGING"), "{all}");
    assert!(all.contains("missing: 0  extra: 0  different: 0"), "{all}");
    assert!(all.contains("lag: 5"), "{all}");
    assert!(all.contains("verdict: LAGGING, 5 keys"), "{all}");
    // Without --slot the connector is taken as stopped: the same changes
    // are differences, to verify and to the SQL oracle (each changed row
    // once each way). With --slot the oracle is refused: the connector may
    // be live.
    let output = verify(&p, &["--oracle", "sql"]);
    let all = text(&output);
    assert!(all.contains("verdict: DIFFERENT, 5 differences"), "{all}");
    assert!(
        all.contains("oracle (sql, in the source server): 5 rows only in the source, 5 rows only in the rebuilt table"),
        "{all}"
    );
    let output = verify(&p, &["--slot", &p.name, "--oracle", "sql"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("stopped or caught-up"),
        "{}",
        text(&output)
    );
    p.cleanup().await;
}

/// `kappa verify --config`: the connector's masking applied to the source.
fn verify_with_config(p: &Pipeline, extra: &[&str]) -> Output {
    common::verify_with_config(&p.config, &p.table, extra)
}

#[tokio::test(flavor = "multi_thread")]
async fn masked_table_verifies_and_a_masked_column_change_is_still_found() {
    let mut p = Pipeline::build(
        "kappa_vmask",
        "(id int PRIMARY KEY, email text, ssn text, phone text, age int)",
        "ALTER TABLE {table} REPLICA IDENTITY FULL",
        "[source.postgres.table_options.\"{table}\"]\nexclude_columns = [\"ssn\"]\nhash_columns = [\"email\"]\nconstant_columns = { phone = \"***\" }\n",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 'user' || g || '@example.com', 'ssn-' || g, '555-' || g, g % 90
         FROM generate_series(1, 3000) g;
         INSERT INTO {table} VALUES (0, NULL, NULL, NULL, NULL)"
    ))
    .await;
    capture_everything(&mut p).await;
    p.stop();

    // Without the rules every row differs (hashes, constants, a column
    // the topic does not have): masking must come from the config.
    let output = verify(&p, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let output = verify_with_config(&p, &[]);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(
        all.contains("source rows masked as the connector masks them"),
        "{all}"
    );
    assert!(
        all.contains("source rows: 3001  rebuilt rows: 3001  missing: 0  extra: 0  different: 0"),
        "{all}"
    );
    // The same against the table rebuilt into PostgreSQL.
    let target = format!("{table}_rb");
    let into = format!("{}?table={target}", pg_url());
    let rebuilt = kappa(&[
        "rebuild",
        "--topic",
        &p.topic,
        "--into",
        &into,
        "--brokers",
        &brokers(),
        "--registry",
        &registry_url(),
    ]);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    let output = verify_with_config(&p, &["--rebuilt", &into]);
    assert!(output.status.success(), "{}", text(&output));

    // Behind the connector's back: an email changed (found through its
    // hash), a phone set to NULL (the constant becomes NULL), and an
    // excluded column changed (not in the topic: nothing to compare).
    p.commit(&format!(
        "UPDATE {table} SET email = 'changed@example.com' WHERE id = 7;
         UPDATE {table} SET phone = NULL WHERE id = 8;
         UPDATE {table} SET ssn = 'other' WHERE id = 9"
    ))
    .await;
    for extra in [&[][..], &["--rebuilt", &into][..]] {
        let output = verify_with_config(&p, extra);
        let all = text(&output);
        assert_eq!(output.status.code(), Some(1), "{all}");
        assert!(all.contains("missing: 0  extra: 0  different: 2"), "{all}");
        assert!(all.contains("different id=7"), "{all}");
        assert!(all.contains("email: source \""), "{all}");
        assert!(
            !all.contains("changed@example.com"),
            "a masked value is never printed: {all}"
        );
        assert!(
            all.contains("phone: source NULL / rebuilt \"***\""),
            "{all}"
        );
    }
    // A different salt gives different hashes: every email differs.
    let config = p.config.display().to_string();
    let salted = std::process::Command::new(env!("CARGO_BIN_EXE_kappa"))
        .args([
            "verify",
            "--config",
            &config,
            "--table",
            &table,
            "--brokers",
            &brokers(),
            "--registry",
            &registry_url(),
        ])
        .env("KAPPA_HASH_SALT", "not-the-connector's-salt")
        .output()
        .expect("run kappa");
    assert!(
        text(&salted).contains("different: 3000"),
        "{}",
        text(&salted)
    );
    p.client
        .batch_execute(&format!("DROP TABLE {target}"))
        .await
        .unwrap();
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hashed_key_verifies_in_hash_order() {
    let mut p = Pipeline::build(
        "kappa_vhkey",
        "(email text PRIMARY KEY, v int)",
        "ALTER TABLE {table} REPLICA IDENTITY FULL",
        "[source.postgres.table_options.\"{table}\"]\nhash_columns = [\"email\"]\n",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT 'user' || g || '@example.com', g FROM generate_series(1, 2000) g"
    ))
    .await;
    capture_everything(&mut p).await;
    p.stop();
    let output = verify_with_config(&p, &[]);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(
        all.contains("source rows: 2000  rebuilt rows: 2000  missing: 0  extra: 0  different: 0"),
        "{all}"
    );
    p.commit(&format!(
        "UPDATE {table} SET v = -1 WHERE email = 'user5@example.com';
         DELETE FROM {table} WHERE email = 'user6@example.com'"
    ))
    .await;
    let output = verify_with_config(&p, &[]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("missing: 0  extra: 1  different: 1"), "{all}");
    assert!(all.contains("v: source -1 / rebuilt 5"), "{all}");
    // Rows cannot be looked up by a hashed key: --slot is refused, clearly.
    let output = verify_with_config(&p, &["--slot", &p.name]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(all.contains("key column is hashed"), "{all}");
    p.cleanup().await;
}
