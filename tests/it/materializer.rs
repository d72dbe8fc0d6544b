//! `kappa rebuild` in depth, on the real services: parallel partitions,
//! as-of rebuilds and what compaction does to them, topics holding several
//! schema versions, poison records, and the PostgreSQL target.

use crate::common;

use common::RunsKappa;
use common::{brokers, kappa, pg_url, registry_url, text, unique, Pipeline};
use kappa_schemas::avro::{encode_key, encode_row, TableAvro};
use kappa_schemas::framing::frame;
use kappa_schemas::{Column, ColumnType, Registry, TableName, TableSchema, Value};
use kappa_sink::topics::{ensure_compacted_topic, TopicSpec};
use kappa_sink::{KafkaConfig, Producer};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `kappa rebuild --topic … --into …` plus extra arguments.
fn rebuild(topic: &str, into: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "rebuild",
        "--topic",
        topic,
        "--into",
        into,
        "--brokers",
        &brokers_static(),
        "--registry",
        &registry_static(),
    ];
    args.extend_from_slice(extra);
    kappa(&args)
}

fn brokers_static() -> &'static str {
    Box::leak(brokers().into_boxed_str())
}

fn registry_static() -> &'static str {
    Box::leak(registry_url().into_boxed_str())
}

/// `kappa verify` of `table` against an already rebuilt SQLite file.
fn verify_rebuilt(topic: &str, table: &str, path: &std::path::Path) -> Output {
    let rebuilt = format!("sqlite:{}", path.display());
    kappa(&[
        "verify",
        "--topic",
        topic,
        "--source",
        &pg_url(),
        "--table",
        table,
        "--rebuilt",
        &rebuilt,
        "--brokers",
        &brokers(),
        "--registry",
        &registry_url(),
    ])
}

/// `kappa verify` against an already rebuilt target (`sqlite:…` or `postgres://…?table=…`).
fn verify_rebuilt_into(topic: &str, table: &str, rebuilt: &str) -> Output {
    kappa(&[
        "verify",
        "--topic",
        topic,
        "--source",
        &pg_url(),
        "--table",
        table,
        "--rebuilt",
        rebuilt,
        "--brokers",
        &brokers(),
        "--registry",
        &registry_url(),
    ])
}

fn assert_ok(output: &Output) {
    let all = text(output);
    assert!(output.status.success(), "{all}");
}

fn assert_verified(output: &Output, rows: i64) {
    let all = text(output);
    assert!(output.status.success(), "{all}");
    assert!(all.contains("verdict: OK, 0 differences"), "{all}");
    assert!(
        all.contains(&format!("source rows: {rows}  rebuilt rows: {rows} ")),
        "{all}"
    );
}

/// Rows of `a` not in `b` plus rows of `b` not in `a`.
async fn except_both_ways(p: &Pipeline, a: &str, b: &str) -> i64 {
    p.client
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) x)
                      + (SELECT count(*) FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}) y)"
            ),
            &[],
        )
        .await
        .expect("except")
        .get(0)
}

/// A second connector on the same table, with its own slot, publication,
/// topic prefix and partition count.
struct SecondConnector {
    name: String,
    topic: String,
    child: Child,
}

/// A test that panics must not leave its connector running (and its slot
/// active) under the test binaries that run after it.
impl Drop for SecondConnector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SecondConnector {
    fn start(p: &Pipeline, suffix: &str, partitions: i32) -> Self {
        let name = format!("{}_{suffix}", p.name);
        let config = std::fs::read_to_string(&p.config)
            .expect("config")
            .replace(&format!("\"{}\"", p.name), &format!("\"{name}\""));
        // Whatever partition count the pipeline's own connector was given.
        let config: String = config
            .lines()
            .map(
                |line| match line.trim_start().starts_with("partitions = ") {
                    true => format!("partitions = {partitions}\n"),
                    false => format!("{line}\n"),
                },
            )
            .collect();
        assert!(
            config.contains(&format!("partitions = {partitions}\n")),
            "the config sets the partition count: {config}"
        );
        let path = p.dir.path().join(format!("{suffix}.toml"));
        std::fs::write(&path, config).expect("write config");
        let log = std::fs::File::create(p.dir.path().join(format!("{suffix}.log"))).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_kappa"))
            .args(["run", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn kappa run");
        Self {
            topic: format!("{name}.public.{}", p.name),
            name,
            child,
        }
    }

    /// Waits until this connector's offsets record lists the table as
    /// snapshotted (its snapshot acknowledged and recorded).
    async fn wait_for_snapshot(&mut self, p: &Pipeline) {
        let log = p
            .dir
            .path()
            .join(format!("{}.log", &self.name[p.name.len() + 1..]));
        let table = kappa_schemas::TableName::parse(&p.table).expect("table name");
        let deadline = Instant::now() + Duration::from_secs(180);
        while !common::snapshot_stored(&self.name, &table).await {
            let exited = self.child.try_wait().expect("wait").is_some();
            assert!(
                !exited && Instant::now() < deadline,
                "connector {} delivered no snapshot (exited: {exited}); log:\n{}",
                self.name,
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_confirmed(&self, p: &Pipeline, lsn: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let row = p
                .client
                .query_opt(
                    "SELECT confirmed_flush_lsn >= $1::text::pg_lsn FROM pg_replication_slots WHERE slot_name = $2",
                    &[&lsn, &self.name],
                )
                .await
                .expect("slot query");
            if row.is_some_and(|r| r.get::<_, Option<bool>>(0) == Some(true)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "slot {} did not confirm {lsn}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn stop(mut self, p: &Pipeline) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        common::delete_topic(&self.topic).await;
        let _ = p
            .client
            .batch_execute(&format!(
                "SELECT pg_drop_replication_slot('{0}'); DROP PUBLICATION IF EXISTS {0};",
                self.name
            ))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_four_partition_rebuild_equals_single_partition_rebuild() {
    let mut p = Pipeline::new(
        "kappa_par",
        "id int PRIMARY KEY, name text, amount numeric(10,2), at timestamptz",
    )
    .await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 'n' || g, g * 1.25, timestamptz '2026-01-01' + g * interval '1 minute'
         FROM generate_series(1, 3000) g"
    ))
    .await;
    // The pipeline's own connector writes 4 partitions, a second one 1.
    let config = std::fs::read_to_string(&p.config).unwrap();
    std::fs::write(
        &p.config,
        config.replace("partitions = 1", "partitions = 4"),
    )
    .unwrap();
    p.start();
    p.wait_snapshot_stored().await;
    let mut single = SecondConnector::start(&p, "one", 1);
    single.wait_for_snapshot(&p).await;
    p.commit(&format!(
        "UPDATE {table} SET name = 'u' || id WHERE id % 3 = 0"
    ))
    .await;
    p.commit(&format!("DELETE FROM {table} WHERE id % 10 = 7"))
        .await;
    let lsn = p
        .commit(&format!(
            "INSERT INTO {table} VALUES (5000, 'last', -1.5, now())"
        ))
        .await;
    p.wait_confirmed(&lsn).await;
    single.wait_confirmed(&p, &lsn).await;
    p.stop();
    let rows = p.count().await;

    let parallel_path = p.dir.path().join("four.sqlite");
    let output = rebuild(
        &p.topic,
        &format!("sqlite:{}", parallel_path.display()),
        &["--format", "json"],
    );
    assert_ok(&output);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json summary");
    let partitions = summary["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 4, "{summary}");
    assert!(
        partitions
            .iter()
            .all(|p| p["records"].as_u64().unwrap_or(0) > 0),
        "every partition holds records: {summary}"
    );
    assert_eq!(summary["live_keys"].as_i64(), Some(rows), "{summary}");
    assert_verified(&verify_rebuilt(&p.topic, &table, &parallel_path), rows);

    // Both topics rebuilt into typed PostgreSQL tables must hold the same rows.
    let four = format!("public.{}_four", p.name);
    let one = format!("public.{}_one_rb", p.name);
    assert_ok(&rebuild(
        &p.topic,
        &format!("{}?table={four}", pg_url()),
        &["--parallelism", "4"],
    ));
    let output = rebuild(
        &single.topic,
        &format!("{}?table={one}", pg_url()),
        &["--format", "json"],
    );
    assert_ok(&output);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json summary");
    assert_eq!(
        summary["partitions"].as_array().map(Vec::len),
        Some(1),
        "the second connector writes one partition: {summary}"
    );
    assert_eq!(except_both_ways(&p, &four, &one).await, 0);
    assert_eq!(except_both_ways(&p, &four, &table).await, 0);
    single.stop(&p).await;
    p.client
        .batch_execute(&format!("DROP TABLE {four}; DROP TABLE {one};"))
        .await
        .unwrap();
    p.cleanup().await;
}

fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread")]
async fn as_of_rebuild_equals_the_source_at_that_time() {
    let mut p = Pipeline::new("kappa_asof", "id int PRIMARY KEY, name text").await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 'n' || g FROM generate_series(1, 500) g"
    ))
    .await;
    p.start();
    p.wait_snapshot_stored().await;
    p.commit(&format!(
        "UPDATE {table} SET name = 'first' WHERE id % 4 = 0"
    ))
    .await;
    let lsn = p
        .commit(&format!("DELETE FROM {table} WHERE id % 9 = 0"))
        .await;
    p.wait_confirmed(&lsn).await;
    // The table at that moment, kept aside.
    let snapshot = format!("{table}_then");
    p.client
        .batch_execute(&format!(
            "CREATE TABLE {snapshot} (LIKE {table} INCLUDING ALL); INSERT INTO {snapshot} SELECT * FROM {table};"
        ))
        .await
        .unwrap();
    let rows_then: i64 = p
        .client
        .query_one(&format!("SELECT count(*) FROM {snapshot}"), &[])
        .await
        .unwrap()
        .get(0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let as_of = rfc3339_now();
    let watermarks = end_offsets(&p.topic);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Later history touches only keys that did not exist then: compaction
    // of these records can never remove a record from before the point.
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 'later' FROM generate_series(1001, 1200) g"
    ))
    .await;
    p.commit(&format!(
        "UPDATE {table} SET name = 'changed later' WHERE id > 1100"
    ))
    .await;
    let lsn = p
        .commit(&format!("DELETE FROM {table} WHERE id > 1150"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();

    let path = p.dir.path().join("as_of.sqlite");
    let output = rebuild(
        &p.topic,
        &format!("sqlite:{}", path.display()),
        &["--as-of", &as_of],
    );
    assert_ok(&output);
    assert!(text(&output).contains("history:"), "{}", text(&output));
    assert_verified(&verify_rebuilt(&p.topic, &snapshot, &path), rows_then);

    let until = watermarks
        .iter()
        .map(|(partition, offset)| format!("{partition}:{offset}"))
        .collect::<Vec<_>>()
        .join(",");
    let path = p.dir.path().join("until.sqlite");
    assert_ok(&rebuild(
        &p.topic,
        &format!("sqlite:{}", path.display()),
        &["--until-offsets", &until],
    ));
    assert_verified(&verify_rebuilt(&p.topic, &snapshot, &path), rows_then);
    // And today's table is something else.
    assert_verified(&p.verify(), p.count().await);
    p.client
        .batch_execute(&format!("DROP TABLE {snapshot}"))
        .await
        .unwrap();
    p.cleanup().await;
}

/// High watermarks of every partition of `topic`, now.
fn end_offsets(topic: &str) -> Vec<(i32, i64)> {
    let kafka = KafkaConfig::new(brokers());
    let plan =
        kappa_sink::replay::plan(&kafka, topic, &kappa_sink::replay::Bound::Latest).expect("plan");
    plan.partitions
        .iter()
        .map(|p| (p.partition, p.end))
        .collect()
}

/// Removes the records of partition 0 of `topic` below `offset`, as
/// retention (or compaction of a whole prefix) would.
/// A topic with `cleanup.policy=compact,delete` and unlimited retention:
/// kappa accepts it (it is compacted), and DeleteRecords works on it.
async fn create_compact_delete_topic(topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin client");
    let new_topic = NewTopic::new(topic, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact,delete")
        .set("retention.ms", "-1");
    let results = admin
        .create_topics([&new_topic], &AdminOptions::new())
        .await
        .expect("create topic");
    for result in results {
        result.expect("topic created");
    }
}

async fn delete_records_before(topic: &str, offset: i64) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin client");
    let mut offsets = rdkafka::TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 0, rdkafka::Offset::Offset(offset))
        .unwrap();
    let result = admin
        .delete_records(&offsets, &AdminOptions::new())
        .await
        .expect("delete records");
    for element in result.elements() {
        assert!(
            element.error().is_ok(),
            "delete records: {:?}",
            element.error()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_point_before_the_retained_history_is_reported() {
    // Records 0..10; the point is offset 6; records before 3 are then removed
    // (DeleteRecords: Kafka allows it only on topics whose cleanup.policy
    // includes delete, as an operator's compact,delete topic does).
    let topic = fresh_topic();
    create_compact_delete_topic(&topic).await;
    write_by_hand(&topic, &TopicSpec::new(1, 1), &[], 10).await;
    let dir = tempfile::tempdir().unwrap();
    let into = format!("sqlite:{}", dir.path().join("t.sqlite").display());
    let output = rebuild(&topic, &into, &["--until-offsets", "0:6"]);
    assert_ok(&output);
    let all = text(&output);
    assert!(
        all.contains("history: complete up to the end offsets (exact)"),
        "{all}"
    );
    assert!(all.contains("6 keys live"), "{all}");

    delete_records_before(&topic, 3).await;
    let output = rebuild(&topic, &into, &["--until-offsets", "0:6"]);
    assert_ok(&output);
    let all = text(&output);
    assert!(
        all.contains("history: NOT EXACT: 3 records before the end offsets"),
        "{all}"
    );
    let output = rebuild(
        &topic,
        &into,
        &["--until-offsets", "0:6", "--require-exact"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("--require-exact: 3 records"),
        "{}",
        text(&output)
    );
    // A refused rebuild leaves nothing behind: no partial file, the table
    // of the earlier rebuild untouched, and (a typed target) no scratch table.
    assert!(!common::exists(&dir.path().join("t.sqlite.partial")));
    assert!(common::exists(&dir.path().join("t.sqlite")));
    let client = common::pg().await;
    let target = unique("kexact");
    let pg_into = format!("{}?table=public.{target}", common::pg_url());
    let output = rebuild(
        &topic,
        &pg_into,
        &["--until-offsets", "0:6", "--require-exact"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let scratch: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE $1",
            &[&format!("{target}%")],
        )
        .await
        .expect("pg_tables")
        .get(0);
    assert_eq!(
        scratch, 0,
        "the scratch table of a refused rebuild is dropped"
    );

    // Nothing from before the point is retained any more.
    delete_records_before(&topic, 8).await;
    let output = rebuild(
        &topic,
        &into,
        &["--until-offsets", "0:6", "--require-exact"],
    );
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(all.contains("predates the retained history"), "{all}");
    assert!(all.contains("partitions [0]"), "{all}");
    common::delete_topic(&topic).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_column_added_mid_stream_rebuilds_with_defaults_for_older_records() {
    let mut p = Pipeline::new("kappa_mixed", "id int PRIMARY KEY, name text").await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 'n' || g FROM generate_series(1, 300) g"
    ))
    .await;
    p.start();
    p.wait_snapshot_stored().await;
    p.commit(&format!(
        "UPDATE {table} SET name = 'before' WHERE id <= 10"
    ))
    .await;
    p.commit(&format!(
        "ALTER TABLE {table} ADD COLUMN score numeric(8,2)"
    ))
    .await;
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, 'new', g / 4.0 FROM generate_series(301, 400) g"
    ))
    .await;
    let lsn = p
        .commit(&format!(
            "UPDATE {table} SET score = 1.5 WHERE id BETWEEN 5 AND 15"
        ))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    let rows = p.count().await;

    let path = p.dir.path().join("mixed.sqlite");
    assert_ok(&rebuild(
        &p.topic,
        &format!("sqlite:{}", path.display()),
        &[],
    ));
    let file = rusqlite::Connection::open(&path).unwrap();
    let schemas: Vec<String> = file
        .prepare("SELECT schema FROM kappa_schemas")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let values = schemas.iter().filter(|s| s.contains("Value")).count();
    let with_score = schemas.iter().filter(|s| s.contains("score")).count();
    assert!(
        values >= 2 && with_score >= 1 && with_score < values,
        "the topic holds both value schema versions: {schemas:#?}"
    );
    assert_verified(&verify_rebuilt(&p.topic, &table, &path), rows);

    let target = format!("{table}_rb");
    assert_ok(&rebuild(
        &p.topic,
        &format!("{}?table={target}", pg_url()),
        &[],
    ));
    assert_eq!(except_both_ways(&p, &table, &target).await, 0);
    p.client
        .batch_execute(&format!("DROP TABLE {target}"))
        .await
        .unwrap();
    p.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_target_round_trips_every_type_and_is_replaced_atomically() {
    let columns = "id bigint PRIMARY KEY, s smallint, i integer, n numeric(12,3), nt numeric, r real, d double precision,
        b boolean, t text, v varchar(20), c char(4), by bytea, dt date, ts timestamp, tstz timestamptz, u uuid, jb jsonb";
    let mut p = Pipeline::new("kappa_pgt", columns).await;
    let table = p.table.clone();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, (g % 100)::smallint, g * 7, g * 1.001 - 50, g / 3.0, g / 3.0, g / 7.0, g % 2 = 0,
           E'tab\\there ' || g, 'v' || g, 'ab', decode(md5(g::text), 'hex'), date '2000-01-01' + g,
           timestamp '2000-01-01 00:00:00.000001' + g * interval '1 minute', timestamptz '1999-12-31 23:00:00+00' + g * interval '1 hour',
           md5(g::text)::uuid, jsonb_build_object('g', g)
         FROM generate_series(1, 1000) g"
    ))
    .await;
    p.commit(&format!(
        "INSERT INTO {table} (id, r, d, t) VALUES (-1, 'NaN', '-Infinity', 'quote '' and \\ backslash'), (-2, '-0', '1e300', NULL)"
    ))
    .await;
    p.start();
    p.wait_snapshot_stored().await;
    p.commit(&format!(
        "UPDATE {table} SET t = NULL, n = NULL WHERE id % 5 = 0"
    ))
    .await;
    let lsn = p
        .commit(&format!("DELETE FROM {table} WHERE id % 50 = 1"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.stop();
    let target = format!("{table}_rb");
    let into = format!("{}?table={target}", pg_url());
    assert_ok(&rebuild(&p.topic, &into, &[]));
    assert_eq!(except_both_ways(&p, &table, &target).await, 0);
    // verify reads the PostgreSQL target like a source table, by column name.
    let rows = p.count().await;
    assert_verified(&verify_rebuilt_into(&p.topic, &table, &into), rows);
    let types: Vec<String> = p
        .client
        .query(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::text::regclass AND attnum > 0 ORDER BY attnum",
            &[&target],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(types[3], "numeric(12,3)");
    assert_eq!(types[14], "timestamp with time zone");
    // A second rebuild replaces the table; a reader never sees it missing.
    p.client
        .batch_execute(&format!(
            "UPDATE {target} SET t = 'stale' WHERE id % 10 = 3"
        ))
        .await
        .unwrap();
    let stale = verify_rebuilt_into(&p.topic, &table, &into);
    let all = text(&stale);
    assert_eq!(stale.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!(
            "source rows: {rows}  rebuilt rows: {rows}  missing: 0  extra: 0  different: 100"
        )),
        "{all}"
    );
    assert!(all.contains("different id=3"), "{all}");
    assert!(all.contains("/ rebuilt \"stale\""), "{all}");
    assert_ok(&rebuild(&p.topic, &into, &[]));
    assert_eq!(except_both_ways(&p, &table, &target).await, 0);
    p.client
        .batch_execute(&format!("DROP TABLE {target}"))
        .await
        .unwrap();
    p.cleanup().await;
}

/// A topic of valid records for (id bigint, name text) written by hand,
/// with `poison` records put at the given positions.
async fn topic_with_poison(poison: &[(usize, Vec<u8>)], total: usize) -> String {
    topic_written_by_hand(&TopicSpec::new(1, 1), poison, total).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebuild_that_outlasts_delete_retention_says_so() {
    let mut spec = TopicSpec::new(1, 1);
    spec.configs
        .insert("delete.retention.ms".into(), "1".into());
    let short = topic_written_by_hand(&spec, &[], 50).await;
    let dir = tempfile::tempdir().unwrap();
    let into = format!("sqlite:{}", dir.path().join("t.sqlite").display());
    let output = rebuild(&short, &into, &[]);
    assert_ok(&output);
    let all = text(&output);
    assert!(
        all.contains("longer than the topic's delete.retention.ms=1 ") && all.contains(&short),
        "{all}"
    );
    // The broker's default (24 h) is far longer than this replay: no warning.
    let default = topic_with_poison(&[], 50).await;
    let output = rebuild(&default, &into, &[]);
    assert_ok(&output);
    let all = text(&output);
    assert!(!all.contains("delete.retention.ms"), "{all}");
    common::delete_topic(&short).await;
    common::delete_topic(&default).await;
}

/// Like `topic_with_poison`, into a topic created with `spec`.
async fn topic_written_by_hand(
    spec: &TopicSpec,
    poison: &[(usize, Vec<u8>)],
    total: usize,
) -> String {
    let topic = fresh_topic();
    write_by_hand(&topic, spec, poison, total).await;
    topic
}

/// A topic name of the form kappa gives table topics, unused so far.
fn fresh_topic() -> String {
    let name = unique("kappa_poison");
    format!("{name}.public.{name}")
}

/// Writes `total` records for (id bigint, name text) into `topic` (created
/// with `spec` unless it exists), `poison` records at the given positions.
async fn write_by_hand(topic: &str, spec: &TopicSpec, poison: &[(usize, Vec<u8>)], total: usize) {
    common::require_services();
    let topic = topic.to_string();
    let name = topic.rsplit('.').next().expect("table name").to_string();
    let kafka = KafkaConfig::new(brokers());
    ensure_compacted_topic(&kafka, &topic, spec)
        .await
        .expect("topic");
    let table = TableSchema {
        name: TableName::new("public", &name),
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
    };
    let avro = TableAvro::new(&table, &topic).unwrap();
    let registry = Registry::new(&registry_url());
    let key_id = registry
        .register(&format!("{topic}-key"), &avro.key_json)
        .await
        .unwrap();
    let value_id = registry
        .register(&format!("{topic}-value"), &avro.value_json)
        .await
        .unwrap();
    let producer = Producer::new(&kafka).unwrap();
    let mut pending = Vec::new();
    for offset in 0..total {
        let id = offset as i64;
        let key = frame(
            key_id,
            &encode_key(&table, &avro, &[Value::Int(id)]).unwrap(),
        );
        let value = match poison.iter().find(|(at, _)| *at == offset) {
            Some((_, bytes)) => bytes.clone(),
            None => frame(
                value_id,
                &encode_row(
                    &table,
                    &avro,
                    &[Value::Int(id), Value::Text(format!("row {id}"))],
                )
                .unwrap(),
            ),
        };
        pending.push(producer.send(&topic, &key, Some(&value)).await.unwrap());
    }
    for p in pending {
        p.delivered().await.unwrap();
    }
}

/// A value framed with `id` whose datum stops in the middle of the record.
fn truncated(id: u32) -> Vec<u8> {
    frame(id, &[0x02])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_record_stops_the_rebuild_naming_its_offset_or_is_skipped() {
    let topic = topic_with_poison(&[(5, b"{\"not\": \"avro\"}".to_vec())], 10).await;
    let dir = tempfile::tempdir().unwrap();
    let into = format!("sqlite:{}", dir.path().join("t.sqlite").display());
    let output = rebuild(&topic, &into, &[]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(
        all.contains(&format!("topic {topic} partition 0 offset 5")),
        "{all}"
    );
    assert!(all.contains("not Confluent-framed"), "{all}");
    assert!(
        !dir.path().join("t.sqlite").exists(),
        "no table from a failed rebuild"
    );

    let output = rebuild(&topic, &into, &["--skip-invalid"]);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(all.contains("invalid records skipped: 1"), "{all}");
    assert!(
        all.contains("partition 0 offset 5: value is not Confluent-framed"),
        "{all}"
    );
    assert!(all.contains("9 keys live"), "{all}");
    common::delete_topic(&topic).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_schema_ids_and_undecodable_bytes_are_poison_too() {
    // A value schema id the registry does not have, and a truncated datum.
    let registry = Registry::new(&registry_url());
    let probe = unique("kappa_poison_probe");
    let known = registry
        .register(&format!("{probe}-value"), r#"{"type":"record","name":"P","fields":[{"name":"x","type":["null","string"],"default":null}]}"#)
        .await
        .unwrap();
    let unknown = frame(known + 100_000, &[0]);
    let topic_unknown = topic_with_poison(&[(3, unknown)], 6).await;
    let dir = tempfile::tempdir().unwrap();
    let into = format!("sqlite:{}", dir.path().join("t.sqlite").display());
    let all = text(&rebuild(&topic_unknown, &into, &[]));
    assert!(all.contains("partition 0 offset 3"), "{all}");
    assert!(all.contains("which the registry does not know"), "{all}");

    // A schema id the registry knows, for a datum that stops mid-record.
    let topic = topic_with_poison(&[], 1).await;
    let latest = kappa_materialize::resolve::latest_schema(&registry, &format!("{topic}-value"))
        .await
        .unwrap();
    let topic_bad = topic_with_poison(&[(2, truncated(latest.id))], 4).await;
    let output = rebuild(&topic_bad, &into, &[]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(all.contains("partition 0 offset 2"), "{all}");
    assert!(all.contains("cannot be decoded"), "{all}");
    let all = text(&rebuild(&topic_bad, &into, &["--skip-invalid"]));
    assert!(all.contains("invalid records skipped: 1"), "{all}");
    for topic in [topic_unknown, topic, topic_bad] {
        common::delete_topic(&topic).await;
    }
}
