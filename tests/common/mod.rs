//! Shared plumbing for the integration tests: real PostgreSQL, real broker,
//! real registry (started by `dev/services up`), and the real `kappa` binary.
//! Every test makes its own uniquely named table, slot, publication, topics
//! and connector name, so tests run in parallel and leave nothing that breaks
//! the next run. A missing service fails the test with its name.

#![allow(dead_code)]

pub mod daemon;
pub mod mysql;

use daemon::Daemon;
pub use daemon::RunsKappa;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

pub fn pg_url() -> String {
    std::env::var("PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}
pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}
pub fn registry_url() -> String {
    std::env::var("SCHEMA_REGISTRY_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8081/apis/ccompat/v7".into())
}

/// `GET {registry}{path}`, `path` as in the Confluent API (`/schemas/ids/1`):
/// the JSON body of a 200 answer; anything else fails the test with the body.
pub fn registry_get(path: &str) -> serde_json::Value {
    let url = format!("{}{path}", registry_url());
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}", &url])
        .output()
        .expect("curl (dev/services installs it)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    assert!(
        output.status.success() && status == "200",
        "GET {url}: HTTP {status} {body} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
}

/// Fails loudly when a service the tests need is not answering.
pub fn require_services() {
    let broker = brokers();
    let registry = registry_url();
    // host:port of http://host:port/path
    let registry_addr = registry
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    for (service, address) in [
        ("Kafka broker", broker.as_str()),
        ("Schema Registry", registry_addr.as_str()),
    ] {
        let reachable = address
            .parse()
            .ok()
            .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).ok())
            .is_some();
        assert!(
            reachable,
            "{service} is not reachable at {address}: run `dev/services up` (or dev/test)"
        );
    }
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

pub async fn pg() -> Client {
    let url = pg_url();
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable at {url}: {e}; run `dev/services up`")
        });
    tokio::spawn(connection);
    client
}

/// One captured table with its own connector.
pub struct Pipeline {
    pub name: String,
    pub table: String,
    pub topic: String,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub client: Client,
    pub daemon: Daemon,
    cleaned: bool,
}

impl Pipeline {
    /// Creates the table with `columns_sql` (the part inside CREATE TABLE (…))
    /// with REPLICA IDENTITY FULL (complete images even for unchanged TOAST
    /// values), and a config capturing it.
    pub async fn new(prefix: &str, columns_sql: &str) -> Self {
        Self::build(
            prefix,
            &format!("({columns_sql})"),
            "ALTER TABLE {table} REPLICA IDENTITY FULL",
            "",
        )
        .await
    }

    /// Creates the table as `CREATE TABLE public.<name> <definition>`, runs
    /// `after_sql`, and appends `extra_toml` to the config; `{table}` in both
    /// stands for `public.<name>`, `{name}` in `after_sql` for `<name>`.
    pub async fn build(prefix: &str, definition: &str, after_sql: &str, extra_toml: &str) -> Self {
        require_services();
        let name = unique(prefix);
        let client = pg().await;
        let table = format!("public.{name}");
        let after_sql = after_sql
            .replace("{table}", &table)
            .replace("{name}", &name);
        client
            .batch_execute(&format!("CREATE TABLE {table} {definition}; {after_sql}"))
            .await
            .expect("create table");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("kappa.toml");
        let topic = format!("{name}.public.{name}");
        std::fs::write(
            &config,
            format!(
                r#"name = "{name}"

[source.postgres]
url = "{pg}"
tables = ["public.{name}"]
slot = "{name}"
publication = "{name}"
snapshot_chunk_rows = 1000

[kafka]
brokers = "{brokers}"
topic_prefix = "{name}"
partitions = 1
offsets_topic = "kappa-test-offsets"

[schema_registry]
url = "{registry}"
{extra}
"#,
                pg = pg_url(),
                brokers = brokers(),
                registry = registry_url(),
                extra = extra_toml.replace("{table}", &table),
            ),
        )
        .expect("write config");
        Self {
            table: format!("public.{name}"),
            name,
            topic,
            daemon: Daemon::new(dir.path(), &config),
            dir,
            config,
            client,
            cleaned: false,
        }
    }

    /// Starts `kappa run` and waits until it streams (its initial snapshot
    /// read, so every later commit is captured by the stream), or until it
    /// exits by itself (a refusal the test then checks).
    pub fn start(&mut self) {
        self.spawn();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.current_log().contains("streaming changes") {
            if !self.daemon.is_running() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kappa run did not start streaming in 120 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the connector's offsets record lists this pipeline's
    /// table as snapshotted: the initial snapshot's records are all
    /// acknowledged and the record that says so is stored, which is what a
    /// restart reads (the product's own readiness, not a log line).
    pub async fn wait_snapshot_stored(&mut self) {
        let table = kappa_schemas::TableName::parse(&self.table).expect("table name");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !snapshot_stored(&self.name, &table).await {
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "the offsets record never listed {table} as snapshotted in 120 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the daemon's log contains `needle`.
    pub async fn wait_for_log(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.log().contains(needle) {
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "log never said {needle:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs `sql` in one transaction and returns a WAL position after its
    /// commit, which the slot passes only once that transaction is delivered.
    pub async fn commit(&self, sql: &str) -> String {
        let full = format!("BEGIN; {sql}; COMMIT");
        self.client.batch_execute(&full).await.expect("changes");
        // Taken after COMMIT: a position inside the transaction can be
        // confirmed by an idle keepalive before the transaction is decoded
        // (PostgreSQL then still replays it, as its commit lies beyond).
        let row = self
            .client
            .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
            .await
            .expect("lsn");
        row.get(0)
    }

    /// Waits until the slot has confirmed `lsn` (everything before it is
    /// acknowledged by the broker).
    pub async fn wait_confirmed(&mut self, lsn: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            self.assert_running();
            let row = self
                .client
                .query_opt(
                    "SELECT confirmed_flush_lsn >= $1::text::pg_lsn FROM pg_replication_slots WHERE slot_name = $2",
                    &[&lsn, &self.name],
                )
                .await
                .expect("slot query");
            if row
                .map(|r| r.get::<_, Option<bool>>(0) == Some(true))
                .unwrap_or(false)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "slot did not confirm {lsn} within 120 s; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `kappa verify` against this table (rebuilding the topic first).
    pub fn verify(&self) -> Output {
        self.verify_with(&[])
    }

    /// `kappa verify` against this table, plus `extra` arguments.
    fn verify_with(&self, extra: &[&str]) -> Output {
        let (source, brokers, registry) = (pg_url(), brokers(), registry_url());
        let mut args = vec![
            "verify",
            "--topic",
            &self.topic,
            "--source",
            &source,
            "--table",
            &self.table,
            "--brokers",
            &brokers,
            "--registry",
            &registry,
        ];
        args.extend_from_slice(extra);
        kappa(&args)
    }

    /// `kappa rebuild` into a file in this test's directory.
    pub fn rebuild(&self, file: &str) -> (PathBuf, Output) {
        let path = self.dir.path().join(file);
        let into = format!("sqlite:{}", path.display());
        let output = kappa(&[
            "rebuild",
            "--topic",
            &self.topic,
            "--into",
            &into,
            "--brokers",
            &brokers(),
            "--registry",
            &registry_url(),
        ]);
        (path, output)
    }

    /// Asserts verify reports zero differences for `expected_rows` rows,
    /// and so does the SQL oracle (`--oracle sql`: the source server's own
    /// `EXCEPT ALL` both ways). Every caller verifies a stopped or caught-up,
    /// idle connector, which the oracle needs.
    pub fn assert_verified(&self, expected_rows: i64) {
        let output = self.verify_with(&["--oracle", "sql"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "verify failed ({}):\n{stdout}\n{stderr}\ndaemon log:\n{}",
            output.status,
            self.log()
        );
        assert!(stdout.contains("verdict: OK, 0 differences"), "{stdout}");
        assert!(
            stdout.contains(&format!(
                "source rows: {expected_rows}  rebuilt rows: {expected_rows} "
            )),
            "expected {expected_rows} rows on both sides:\n{stdout}"
        );
        assert_oracle_agrees(&stdout, expected_rows as u64);
    }

    pub async fn count(&self) -> i64 {
        self.client
            .query_one(&format!("SELECT count(*) FROM {}", self.table), &[])
            .await
            .expect("count")
            .get(0)
    }

    /// Drops the slot, publication and table, and deletes the topic (the
    /// broker compacts every compacted topic at each pass: leftovers would
    /// slow every later test down).
    pub async fn cleanup(mut self) {
        self.daemon.kill_quietly();
        remove(self.name.clone(), self.table.clone(), self.topic.clone()).await;
        self.cleaned = true;
    }
}

/// Waits (up to 30 s) until no walsender holds `slot`: the server releases
/// the slot of a killed connector only once it notices the dead connection,
/// and a held slot can be neither dropped nor streamed from.
pub async fn wait_slot_released(client: &tokio_postgres::Client, slot: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let active = client
            .query_opt(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .ok()
            .flatten()
            .is_some_and(|row| row.get::<_, bool>(0));
        if !active {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deletes what a pipeline made: its topic, slot, publication and table.
/// A slot left behind would pin WAL and use up `max_replication_slots`; a
/// topic left behind would slow the broker's compaction passes.
async fn remove(name: String, table: String, topic: String) {
    delete_topic(&topic).await;
    let url = pg_url();
    if let Ok((client, connection)) = tokio_postgres::connect(&url, NoTls).await {
        tokio::spawn(connection);
        wait_slot_released(&client, &name).await;
        let _ = client
            .batch_execute(&format!(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{name}' AND NOT active;
                 DROP PUBLICATION IF EXISTS {name}; DROP TABLE IF EXISTS {table} CASCADE;"
            ))
            .await;
    }
}

impl RunsKappa for Pipeline {
    fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    fn daemon_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}

impl Drop for Pipeline {
    /// Also after a failed assertion: the test's leftovers must not break the next tests.
    fn drop(&mut self) {
        self.daemon.kill_quietly();
        if self.cleaned {
            return;
        }
        let (name, table, topic) = (self.name.clone(), self.table.clone(), self.topic.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(remove(name, table, topic));
            }
        })
        .join();
    }
}

/// The reconnect tests' starting point: a streaming connector that has
/// captured 100 rows of `(id, v)`.
pub async fn streaming_hundred_rows(prefix: &str) -> Pipeline {
    let mut p = Pipeline::new(prefix, "id int PRIMARY KEY, v int").await;
    let table = p.table.clone();
    p.start();
    p.commit(&format!(
        "INSERT INTO {table} SELECT g, g FROM generate_series(1, 100) g"
    ))
    .await;
    p
}

/// After the replication connection was cut: changes made since arrive
/// through the reconnected stream, and the rebuilt table verifies.
pub async fn assert_streams_on_after_reconnect(mut p: Pipeline) {
    let table = p.table.clone();
    p.commit(&format!("UPDATE {table} SET v = -v")).await;
    let lsn = p
        .commit(&format!("DELETE FROM {table} WHERE id > 90"))
        .await;
    p.wait_confirmed(&lsn).await;
    p.assert_running();
    assert!(p.log().contains("reconnected"), "{}", p.log());
    p.stop();
    p.assert_verified(90);
    p.cleanup().await;
}

/// Deletes a topic (best effort: a test's result does not depend on it).
pub async fn delete_topic(topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: Result<AdminClient<DefaultClientContext>, _> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create();
    if let Ok(admin) = admin {
        let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
        let _ = admin.delete_topics(&[topic], &options).await;
    }
}

/// A finished kappa command, whole, for assertions and their messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `kappa verify --config CONFIG --table TABLE` against the test broker and
/// registry, plus `extra` arguments.
pub fn verify_with_config(config: &Path, table: &str, extra: &[&str]) -> Output {
    let config = config.display().to_string();
    let (brokers, registry) = (brokers(), registry_url());
    let mut args = vec![
        "verify",
        "--config",
        &config,
        "--table",
        table,
        "--brokers",
        &brokers,
        "--registry",
        &registry,
    ];
    args.extend_from_slice(extra);
    kappa(&args)
}

/// Asserts verify's output carries the SQL oracle's line with no row only
/// in the source, none only in the rebuilt table, and `rows` on each side.
pub fn assert_oracle_agrees(stdout: &str, rows: u64) {
    assert!(
        stdout.contains(&format!(
            "oracle (sql, in the source server): 0 rows only in the source, 0 rows only in the rebuilt table ({rows} source rows, {rows} rebuilt rows)"
        )),
        "the SQL oracle did not agree on {rows} rows:\n{stdout}"
    );
}

/// Runs the kappa binary to completion.
pub fn kappa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kappa"))
        .args(args)
        .output()
        .expect("run kappa")
}

/// Counts the records currently in `topic` (all partitions, start to end).
pub fn topic_records(topic: &str) -> u64 {
    let kafka = kappa_sink::KafkaConfig::new(brokers());
    kappa_sink::replay::replay(&kafka, topic, |_| Ok::<_, String>(()))
        .expect("replay")
        .records
}

/// The sum of `topic`'s end offsets: how many records were ever written to
/// it (offsets never change, compaction only leaves gaps).
pub fn topic_end_offsets(topic: &str) -> i64 {
    let kafka = kappa_sink::KafkaConfig::new(brokers());
    kappa_sink::replay::replay(&kafka, topic, |_| Ok::<_, String>(()))
        .expect("replay")
        .end_offsets
        .iter()
        .map(|(_, end)| end)
        .sum()
}

/// Whether connector `name`'s offsets record (in the tests' offsets topic)
/// lists `table` as snapshotted.
pub async fn snapshot_stored(name: &str, table: &kappa_schemas::TableName) -> bool {
    let kafka = kappa_sink::KafkaConfig::new(brokers());
    let bytes = kappa_sink::offsets::read_state(&kafka, "kappa-test-offsets", name)
        .await
        .expect("read offsets record");
    let record: Option<kappa_schemas::StateRecord> =
        bytes.map(|b| serde_json::from_slice(&b).expect("offsets record JSON"));
    record.is_some_and(|r| r.snapshotted.contains(table))
}

/// `kappa status` of the connector `config` runs, which must succeed; its
/// output.
pub fn kappa_status(config: &Path) -> String {
    let output = kappa(&["status", "--config", &config.display().to_string()]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kappa status failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `kappa snapshot --config CONFIG --table TABLE`: a re-snapshot request.
pub fn kappa_snapshot(config: &Path, table: &str) -> Output {
    kappa(&[
        "snapshot",
        "--config",
        &config.display().to_string(),
        "--table",
        table,
    ])
}

/// [`kappa_snapshot`], which must succeed.
pub fn request_resnapshot(config: &Path, table: &str) -> Output {
    let output = kappa_snapshot(config, table);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The peak resident memory (`VmHWM`, kB) of a running process.
pub fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM")
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// Terminates the connector's walsender (SQLSTATE 57P01, what a server
/// restart does to it) without disturbing other tests' sessions; fails the
/// test when there is none.
pub async fn terminate_walsender(p: &Pipeline) {
    let terminated: bool = p
        .client
        .query_one(
            "SELECT bool_or(pg_terminate_backend(pid)) FROM pg_stat_replication WHERE application_name = $1",
            &[&format!("kappa:{}", p.name)],
        )
        .await
        .expect("terminate")
        .get::<_, Option<bool>>(0)
        .unwrap_or(false);
    assert!(terminated, "no walsender found for kappa:{}", p.name);
}

/// `dev/services ARGS` (e.g. `restart kafka`), with this run's environment
/// (ports, state dir); fails the test, with the script's output, when it
/// fails.
pub fn dev_services(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("dev/services");
    let output = Command::new("bash")
        .arg(&script)
        .args(args)
        .output()
        .expect("bash dev/services");
    assert!(
        output.status.success(),
        "dev/services {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Replaces `from` by `to` in the config file at `path` (once); fails the
/// test when the config does not hold `from`.
pub fn edit_config(path: &Path, from: &str, to: &str) {
    let config = std::fs::read_to_string(path).expect("read config");
    assert!(
        config.contains(from),
        "{} has no {from:?}:\n{config}",
        path.display()
    );
    std::fs::write(path, config.replacen(from, to, 1)).expect("write config");
}
