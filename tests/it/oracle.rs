//! `kappa verify --oracle sql` on the real services: the source server's own
//! `EXCEPT ALL` finds no difference on an exact pipeline (varied types,
//! masked columns hashed, constant and excluded), and finds a difference
//! planted behind a stopped connector's back with the right count each way;
//! and the MySQL/MariaDB rebuild target it builds on (typed columns, primary
//! key, deletes, the atomic swap), read back by `verify --rebuilt mysql://…`.

use crate::common;

use common::mysql::{mysql_db_url, MysqlPipeline};
use common::RunsKappa;
use common::{brokers, kappa, registry_url, text, verify_with_config, Pipeline};
use mysql_async::prelude::Queryable;
use std::process::Output;

fn oracle_line(only_in_source: u64, only_in_rebuilt: u64) -> String {
    format!(
        "oracle (sql, in the source server): {only_in_source} rows only in the source, {only_in_rebuilt} rows only in the rebuilt table"
    )
}

/// The oracle's table, `schema.table`, as the output names it.
fn oracle_table(output: &str) -> (String, String) {
    let name = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("rebuilt as "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no oracle table named: {output}"));
    let (schema, table) = name.split_once('.').expect("schema.table");
    (schema.to_string(), table.to_string())
}

fn oracle_verify(config: &std::path::Path, table: &str) -> Output {
    verify_with_config(config, table, &["--oracle", "sql"])
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_oracle_agrees_on_an_exact_pipeline_and_finds_a_planted_difference() {
    let client = common::pg().await;
    let mood = common::unique("kappa_omood");
    client
        .batch_execute(&format!(
            "CREATE TYPE public.{mood} AS ENUM ('sad', 'ok', 'happy')"
        ))
        .await
        .expect("enum");
    let mut p = Pipeline::build(
        "kappa_opg",
        &format!(
            "(id int PRIMARY KEY, small smallint, big bigint, n numeric(12,3), f float8, r real,
              t text, vc varchar(10), c char(5), b boolean, bin bytea, d date, ts timestamp,
              tstz timestamptz, tm time, u uuid, j json, jb jsonb, pt point, m {mood}, arr int[],
              ip inet, iv interval,
              email text, born date, seen timestamptz, code int, score float8, phone text, ssn text)"
        ),
        "ALTER TABLE {table} REPLICA IDENTITY FULL",
        "[source.postgres.table_options.\"{table}\"]\nexclude_columns = [\"ssn\"]\nhash_columns = [\"email\", \"born\", \"seen\", \"code\", \"score\"]\nconstant_columns = { phone = \"***\" }\n",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, g % 100, g::bigint * 1000000007, g * 1.125, g / 7.0, g / 3.0,
                'text ' || g, 'v' || g, 'c' || (g % 10), g % 2 = 0, decode(md5(g::text), 'hex'),
                date '2026-01-01' + g, timestamp '2026-01-01 10:00' + g * interval '1 minute 0.5 second',
                timestamptz '2026-01-01 10:00+02' + g * interval '1 hour', time '10:00' + g * interval '1 second',
                md5(g::text)::uuid, json_build_object('g', g, 'x', '  spaced'), jsonb_build_object('g', g),
                point(g, -g), (ARRAY['sad','ok','happy']::{mood}[])[g % 3 + 1], ARRAY[g, g + 1],
                ('10.0.0.' || (g % 250))::inet, g * interval '1 day 3 minutes',
                'user' || g || '@example.com', date '1990-01-01' + g, timestamptz '2020-02-02 02:02:02.123456+00' + g * interval '1 day',
                g * 7, g / 9.0, '555-' || g, 'ssn-' || g
         FROM generate_series(1, 300) g;
         INSERT INTO {table} (id) VALUES (0);
         INSERT INTO {table} (id, n, d, ts, c) VALUES (-1, 'NaN', 'infinity', '-infinity', 'a  ')"
    ))
    .await;
    p.start();
    p.wait_snapshot_stored().await;
    p.stop();

    let output = oracle_verify(&p.config, &table);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(all.contains("verdict: OK, 0 differences"), "{all}");
    assert!(all.contains(&oracle_line(0, 0)), "{all}");
    assert!(all.contains("(302 source rows, 302 rebuilt rows)"), "{all}");
    // json, point, the enum, the array compare as text; the hashed float is
    // reported as not compared rather than guessed.
    for column in ["j", "pt", "m", "arr"] {
        assert!(
            all.lines().any(|l| l.contains("compared as text:")
                && l.split([':', ',']).any(|w| w.trim() == column)),
            "{column} not compared as text: {all}"
        );
    }
    assert!(
        all.contains("masked in SQL: email, born, seen, code, phone"),
        "{all}"
    );
    assert!(all.contains("not compared: score: hashed"), "{all}");
    assert!(all.contains("not compared: ssn: excluded"), "{all}");

    // The same topic into MySQL: a value MySQL cannot hold (numeric NaN, in
    // the union's string branch) goes to the server as its text and the
    // refusal names the table, the key and the column.
    let mut conn = common::mysql::mysql().await;
    let scratch_db = format!("{}_my", p.name);
    conn.query_drop(format!("CREATE DATABASE `{scratch_db}`"))
        .await
        .expect("create database");
    let into = format!("{}?table=t", mysql_db_url(&scratch_db));
    let output = rebuild_into(&p.topic, &into);
    let refused = text(&output);
    conn.query_drop(format!("DROP DATABASE `{scratch_db}`"))
        .await
        .expect("drop database");
    assert_eq!(output.status.code(), Some(2), "{refused}");
    assert!(
        refused.contains(&format!("rebuilding {scratch_db}.t"))
            && refused.contains(
                "key (-1) column n holds \"NaN\", which a numeric(12,3) column may not accept"
            ),
        "{refused}"
    );

    // Behind the stopped connector's back: one row changed (only in the
    // source as it is now, only in the rebuilt table as it was), one row
    // deleted (only in the rebuilt table), two rows added (only in the
    // source), and a hashed column changed (only through its hash).
    p.commit(&format!(
        "UPDATE {table} SET jb = '{{\"changed\": true}}' WHERE id = 10;
         DELETE FROM {table} WHERE id = 11;
         INSERT INTO {table} (id, t) VALUES (1000, 'new'), (1001, 'new');
         UPDATE {table} SET born = born + 1 WHERE id = 12"
    ))
    .await;
    let output = oracle_verify(&p.config, &table);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains(&oracle_line(4, 3)), "{all}");
    assert!(all.contains("missing: 2  extra: 1  different: 2"), "{all}");

    // The oracle's table is dropped after each run.
    let (schema, name) = oracle_table(&all);
    assert_eq!(schema, "kappa_oracle");
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE $2 || '%'",
            &[&schema, &name],
        )
        .await
        .expect("pg_tables")
        .get(0);
    assert_eq!(left, 0, "oracle tables left behind");
    // With a live connector to wait for, the oracle is refused with why.
    let output = verify_with_config(
        &p.config,
        &table,
        &["--oracle", "sql", "--wait-for-connector"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("stopped or caught-up"),
        "{}",
        text(&output)
    );
    p.cleanup().await;
    client
        .batch_execute(&format!("DROP TYPE public.{mood}"))
        .await
        .expect("drop enum");
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_oracle_agrees_on_an_exact_pipeline_and_finds_a_planted_difference() {
    let mut p = MysqlPipeline::new(
        "kmy_oracle",
        1,
        "CREATE TABLE {db0}.t (id INT PRIMARY KEY, u INT UNSIGNED, big BIGINT UNSIGNED, tiny TINYINT,
            n DECIMAL(12,3), f FLOAT, d DOUBLE, vc VARCHAR(20) CHARACTER SET latin1, ci VARCHAR(20) COLLATE utf8mb4_general_ci,
            tx TEXT, bin VARBINARY(16), fixed BINARY(4), bl BLOB, dt DATE, dtm DATETIME(6), ts TIMESTAMP(3) NULL,
            tm TIME(2), y YEAR, e ENUM('a','b','c'), s SET('x','y'), j JSON, bits BIT(8),
            email VARCHAR(60), born DATE, code INT, phone VARCHAR(20), ssn VARCHAR(20));
         INSERT INTO {db0}.t (id) VALUES (0)",
    )
    .await;
    let table = format!("{}.t", p.databases[0]);
    p.append_config(&format!(
        "\n[source.mysql.table_options.\"{table}\"]\nexclude_columns = [\"ssn\"]\nhash_columns = [\"tm\", \"email\", \"born\", \"code\"]\nconstant_columns = {{ phone = \"***\" }}\n"
    ));
    let mut values = Vec::new();
    for g in 1..=200u64 {
        values.push(format!(
            "({g}, {g} * 20000000, 18446744073709551615 - {g}, {tiny}, {g} * 1.125, {g} / 8, {g} / 7,
              'caf\u{e9} {g}', '{case}{g}', REPEAT('x', {g}), UNHEX(MD5({g})), 'ab', REPEAT('b', {g}),
              '2026-01-01' + INTERVAL {g} DAY, '2026-01-01 10:00:00.123456' + INTERVAL {g} MINUTE,
              '2026-01-01 10:00:00.5' + INTERVAL {g} HOUR, '{sign}{g}:00:00.25', 2000 + {g} % 100,
              ELT({g} % 3 + 1, 'a', 'b', 'c'), 'x,y', '{{\"g\": {g}}}', b'101',
              'user{g}@example.com', '1990-01-01' + INTERVAL {g} DAY, {g} * 7, '555-{g}', 'ssn-{g}')",
            tiny = g as i64 % 256 - 128,
            case = if g % 2 == 0 { "A" } else { "a" },
            sign = if g % 2 == 0 { "-" } else { "" },
        ));
    }
    p.exec(&format!("INSERT INTO {table} VALUES {}", values.join(", ")))
        .await;
    p.start().await;
    let end = p.master_position().await;
    p.wait_stored(&end).await;
    p.stop();

    let output = oracle_verify(&p.config, &table);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(all.contains("verdict: OK, 0 differences"), "{all}");
    assert!(all.contains(&oracle_line(0, 0)), "{all}");
    assert!(all.contains("(201 source rows, 201 rebuilt rows)"), "{all}");
    assert!(
        all.contains("masked in SQL: tm, email, born, code, phone"),
        "{all}"
    );
    assert!(all.contains("not compared: ssn: excluded"), "{all}");

    // The topic rebuilt into a MySQL table and read back by kappa's verify
    // (`--rebuilt mysql://…`, read as a MySQL source table is): every type
    // above round-trips.
    let into = format!("{}?table=t_rebuilt", mysql_db_url(&p.databases[0]));
    let output = rebuild_into(&p.topic(&table), &into);
    assert!(output.status.success(), "{}", text(&output));
    let rebuilt_verify =
        |p: &MysqlPipeline| verify_with_config(&p.config, &table, &["--rebuilt", &into]);
    let output = rebuilt_verify(&p);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(
        all.contains("source rows: 201  rebuilt rows: 201  missing: 0  extra: 0  different: 0"),
        "{all}"
    );

    // A case-only change in a case-insensitive column is a difference the
    // server's bytes see; a row deleted and a TIME changed, too.
    p.exec(&format!(
        "UPDATE {table} SET ci = UPPER(ci) WHERE id = 3; DELETE FROM {table} WHERE id = 4;
         UPDATE {table} SET tm = '-01:00:00.01' WHERE id = 5"
    ))
    .await;
    let output = oracle_verify(&p.config, &table);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains(&oracle_line(2, 3)), "{all}");
    // kappa's verify against the MySQL table rebuilt before the changes: the
    // deleted row is extra there, the two updated rows differ.
    let output = rebuilt_verify(&p);
    let by_kappa = text(&output);
    assert_eq!(output.status.code(), Some(1), "{by_kappa}");
    assert!(
        by_kappa.contains("missing: 0  extra: 1  different: 2"),
        "{by_kappa}"
    );
    let mut conn = common::mysql::mysql().await;
    let (schema, name) = oracle_table(&all);
    assert_eq!(schema, "kappa_oracle");
    let left: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name LIKE CONCAT(?, '%')",
            (&schema, &name),
        )
        .await
        .expect("information_schema");
    assert_eq!(left, Some(0), "oracle tables left behind");
    p.cleanup().await;
}

/// region, id, amount, at, length of note.
type RebuiltRow = (String, i32, String, Option<String>, Option<u64>);

fn rebuild_into(topic: &str, into: &str) -> Output {
    kappa(&[
        "rebuild",
        "--topic",
        topic,
        "--into",
        into,
        "--brokers",
        &brokers(),
        "--registry",
        &registry_url(),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_rebuild_target_builds_typed_tables_applies_deletes_and_swaps_atomically() {
    let mut p = MysqlPipeline::new(
        "kmy_rbt",
        1,
        "CREATE TABLE {db0}.t (region VARCHAR(10), id INT, amount DECIMAL(10,2), at DATETIME(3), note MEDIUMTEXT,
            PRIMARY KEY (region, id));
         INSERT INTO {db0}.t VALUES ('eu', 1, 1.50, '2026-01-01 00:00:00.125', 'one'),
           ('eu', 2, 2.50, NULL, NULL), ('us', 1, -3.00, '1999-12-31 23:59:59.999', 'three')",
    )
    .await;
    let table = format!("{}.t", p.databases[0]);
    let topic = p.topic(&table);
    p.start().await;
    let end = p
        .commit(&format!(
            "DELETE FROM {table} WHERE region = 'eu' AND id = 2; UPDATE {table} SET note = 'uno' WHERE id = 1 AND region = 'eu';
             INSERT INTO {table} VALUES ('us', 2, 9.99, NULL, REPEAT('z', 70000))"
        ))
        .await;
    p.wait_stored(&end).await;
    p.stop();

    let db = &p.databases[0].clone();
    let into = format!("{}?table=t_rebuilt", mysql_db_url(db));
    // The target table already exists: it is replaced by the rebuilt one.
    p.exec(&format!(
        "CREATE TABLE {db}.t_rebuilt (old INT); INSERT INTO {db}.t_rebuilt VALUES (1)"
    ))
    .await;
    let output = rebuild_into(&topic, &into);
    assert!(output.status.success(), "{}", text(&output));
    let mut conn = common::mysql::mysql().await;
    let columns: Vec<(String, String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, COLUMN_TYPE, COLUMN_KEY FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 't_rebuilt' ORDER BY ORDINAL_POSITION",
            (db,),
        )
        .await
        .expect("columns");
    let expected = [
        ("region", "varchar(10)", "PRI"),
        ("id", "int(11)", "PRI"),
        ("amount", "decimal(10,2)", ""),
        ("at", "datetime(3)", ""),
        ("note", "longtext", ""),
    ];
    let got: Vec<(&str, &str, &str)> = columns
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(got, expected);
    let rows: Vec<RebuiltRow> = conn
        .query(format!(
            "SELECT region, id, CAST(amount AS CHAR), CAST(at AS CHAR), LENGTH(note) FROM {db}.t_rebuilt ORDER BY region, id"
        ))
        .await
        .expect("rows");
    assert_eq!(
        rows,
        vec![
            (
                "eu".into(),
                1,
                "1.50".into(),
                Some("2026-01-01 00:00:00.125".into()),
                Some(3)
            ),
            (
                "us".into(),
                1,
                "-3.00".into(),
                Some("1999-12-31 23:59:59.999".into()),
                Some(5)
            ),
            ("us".into(), 2, "9.99".into(), None, Some(70000)),
        ]
    );
    // No scratch table left behind, and the comment says where it came from.
    let leftovers: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name LIKE 't_rebuilt\\_\\_%'",
            (db,),
        )
        .await
        .expect("tables");
    assert_eq!(leftovers, Some(0));
    let comment: Option<String> = conn
        .exec_first(
            "SELECT TABLE_COMMENT FROM information_schema.tables WHERE table_schema = ? AND table_name = 't_rebuilt'",
            (db,),
        )
        .await
        .expect("comment");
    assert!(
        comment
            .as_deref()
            .is_some_and(|c| c.starts_with("rebuilt by kappa")),
        "{comment:?}"
    );
    // A refused target names the table and does not leak the password.
    let output = rebuild_into(
        &topic,
        &format!("mysql://nobody:s3cret@127.0.0.1:3306/{db}?table=t_rebuilt"),
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(!text(&output).contains("s3cret"), "{}", text(&output));
    p.cleanup().await;
}
