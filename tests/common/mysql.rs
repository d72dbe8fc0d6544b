//! MySQL/MariaDB plumbing for the integration tests: a uniquely named
//! database per test (plus more when a test needs them), a connector with its
//! own name, replica id and topics, the real `kappa` binary, and cleanup even
//! when an assertion fails. Waits are on conditions (log lines, the stored
//! offsets record), never on time.

use super::daemon::{Daemon, RunsKappa};
use super::{brokers, delete_topic, kappa, registry_get, registry_url, require_services, unique};
use kappa_schemas::Value;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

pub fn mysql_url() -> String {
    std::env::var("MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/".into())
}

/// The server's URL with `db` as its database (`MYSQL_URL` may or may not
/// end with a `/`: dev/test's does not).
pub fn mysql_db_url(db: &str) -> String {
    format!("{}/{db}", mysql_url().trim_end_matches('/'))
}

/// The offsets topic of every MySQL test connector.
pub const OFFSETS_TOPIC: &str = "kappa-test-offsets";

pub async fn mysql() -> Conn {
    let url = mysql_url();
    Conn::from_url(&url).await.unwrap_or_else(|e| {
        panic!("MySQL/MariaDB is not reachable at {url}: {e}; run `dev/services up`")
    })
}

/// A binlog position as the tests compare them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub file: String,
    pub pos: u64,
}

/// A connector capturing tables of its own databases.
pub struct MysqlPipeline {
    pub name: String,
    /// The databases this test owns (dropped at cleanup).
    pub databases: Vec<String>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub conn: Conn,
    pub daemon: Daemon,
    cleaned: bool,
}

impl MysqlPipeline {
    /// Creates `databases` fresh databases (`<name>_0`, `<name>_1`, …), runs
    /// `setup_sql` (with `{db0}`, `{db1}`, … standing for them), and writes a
    /// config capturing every table of those databases.
    pub async fn new(prefix: &str, databases: usize, setup_sql: &str) -> Self {
        require_services();
        let name = unique(prefix);
        let mut conn = mysql().await;
        let dbs: Vec<String> = (0..databases).map(|i| format!("{name}_{i}")).collect();
        let mut sql = setup_sql.to_string();
        for (i, db) in dbs.iter().enumerate() {
            conn.query_drop(format!("CREATE DATABASE `{db}`"))
                .await
                .expect("create database");
            sql = sql.replace(&format!("{{db{i}}}"), db);
        }
        if !sql.trim().is_empty() {
            conn.query_drop(&sql).await.expect("setup sql");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("kappa.toml");
        let tables: Vec<String> = dbs.iter().map(|db| format!("\"{db}.*\"")).collect();
        // A replica id of its own: two connectors with one id kick each other off.
        let server_id = replica_id();
        std::fs::write(
            &config,
            format!(
                r#"name = "{name}"

[source.mysql]
url = "{url}"
tables = [{tables}]
server_id = {server_id}
heartbeat_secs = 1
snapshot_chunk_rows = 1000

[kafka]
brokers = "{brokers}"
topic_prefix = "{name}"
partitions = 1
offsets_topic = "{OFFSETS_TOPIC}"

[schema_registry]
url = "{registry}"
"#,
                url = mysql_url(),
                tables = tables.join(", "),
                brokers = brokers(),
                registry = registry_url(),
            ),
        )
        .expect("write config");
        let daemon = Daemon::new(dir.path(), &config);
        Self {
            name,
            databases: dbs,
            dir,
            config,
            conn,
            daemon,
            cleaned: false,
        }
    }

    /// The topic of `db.table`.
    pub fn topic(&self, table: &str) -> String {
        format!("{}.{table}", self.name)
    }

    /// Appends TOML to the config (e.g. table options).
    pub fn append_config(&self, toml: &str) {
        let mut text = std::fs::read_to_string(&self.config).expect("config");
        text.push_str(toml);
        std::fs::write(&self.config, text).expect("config");
    }

    /// Starts `kappa run` and waits until it streams the binlog (its
    /// snapshot read), or exits by itself.
    pub async fn start(&mut self) {
        self.spawn();
        self.wait_for_current_log("streaming changes").await;
    }

    /// Waits until the latest start's log contains `needle`; fails if the
    /// daemon exits first.
    pub async fn wait_for_current_log(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !self.current_log().contains(needle) {
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "log never said {needle:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs `sql` in one transaction; returns the binlog position after its
    /// commit.
    pub async fn commit(&mut self, sql: &str) -> Position {
        self.conn
            .query_drop(format!("START TRANSACTION; {sql}; COMMIT"))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        self.master_position().await
    }

    /// Runs statements outside a transaction (DDL).
    pub async fn exec(&mut self, sql: &str) {
        self.conn
            .query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn master_position(&mut self) -> Position {
        let row: mysql_async::Row = self
            .conn
            .query_first("SHOW MASTER STATUS")
            .await
            .expect("SHOW MASTER STATUS")
            .expect("binary logging is on");
        Position {
            file: row.get(0).expect("file"),
            pos: row.get(1).expect("position"),
        }
    }

    /// The binlog position in the connector's offsets record, if any.
    pub async fn stored_position(&self) -> Option<Position> {
        let kafka = kappa_sink::KafkaConfig::new(brokers());
        let bytes = kappa_sink::offsets::read_state(&kafka, OFFSETS_TOPIC, &self.name)
            .await
            .expect("read offsets record")?;
        let state: serde_json::Value = serde_json::from_slice(&bytes).expect("state JSON");
        let binlog = state.get("binlog")?;
        Some(Position {
            file: binlog["file"].as_str()?.to_string(),
            pos: binlog["pos"].as_u64()?,
        })
    }

    /// Waits until the offsets record stores a position at or past `target`:
    /// every change before it is acknowledged by the broker.
    pub async fn wait_stored(&mut self, target: &Position) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            self.assert_running();
            if self.stored_position().await.is_some_and(|p| &p >= target) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "offsets record never reached {target:?} in 300 s (stored {:?}); log:\n{}",
                self.stored_position().await,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kappa verify` of `db.table` against its topic.
    pub fn verify(&self, table: &str) -> Output {
        kappa(&[
            "verify",
            "--topic",
            &self.topic(table),
            "--source",
            &mysql_url(),
            "--table",
            table,
            "--brokers",
            &brokers(),
            "--registry",
            &registry_url(),
        ])
    }

    /// Asserts verify reports zero differences for `expected_rows` rows,
    /// and so does the SQL oracle (`--oracle sql`: the server's own `EXCEPT
    /// ALL` both ways). Every caller verifies a stopped or caught-up, idle
    /// connector, which the oracle needs.
    pub fn assert_verified(&self, table: &str, expected_rows: u64) {
        let output = kappa(&[
            "verify",
            "--topic",
            &self.topic(table),
            "--source",
            &mysql_url(),
            "--table",
            table,
            "--brokers",
            &brokers(),
            "--registry",
            &registry_url(),
            "--oracle",
            "sql",
        ]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "verify of {table} failed ({}):\n{stdout}\n{stderr}\ndaemon log:\n{}",
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
        super::assert_oracle_agrees(&stdout, expected_rows);
    }

    /// Gives the connector a user of its own (named as the connector, with
    /// every privilege, identified by `secret` when given) and points its
    /// config at it, so a test can find and kill only its sessions. Returns
    /// the user's name; `cleanup` does not drop it.
    pub async fn use_own_user(&mut self, secret: Option<&str>) -> String {
        let user = self.name.clone();
        let identified = secret.map_or(String::new(), |s| format!(" IDENTIFIED BY '{s}'"));
        self.exec(&format!(
            "CREATE USER '{user}'@'127.0.0.1'{identified}; \
             GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1'"
        ))
        .await;
        let url = mysql_url();
        let credentials = secret.map_or(user.clone(), |s| format!("{user}:{s}"));
        let own = url.replacen("://root@", &format!("://{credentials}@"), 1);
        assert_ne!(own, url, "MYSQL_URL names user root: {url}");
        super::edit_config(
            &self.config,
            &format!("url = \"{url}\""),
            &format!("url = \"{own}\""),
        );
        user
    }

    /// Kills the binlog dump sessions of `user` (the connector's stream,
    /// from the server's side); fails the test when there is none.
    pub async fn kill_binlog_dumps_of(&mut self, user: &str) {
        let dumps: Vec<u64> = self
            .conn
            .exec(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND LIKE 'Binlog Dump%'",
                (user,),
            )
            .await
            .expect("processlist");
        assert!(!dumps.is_empty(), "no binlog dump thread of user {user}");
        for id in dumps {
            // The thread may have ended meanwhile: an unknown thread is fine.
            let _ = self.conn.query_drop(format!("KILL CONNECTION {id}")).await;
        }
    }

    pub async fn count(&mut self, table: &str) -> u64 {
        self.conn
            .query_first(format!("SELECT COUNT(*) FROM {table}"))
            .await
            .expect("count")
            .expect("a count")
    }

    /// Kills the daemon, drops the databases and deletes the topics.
    pub async fn cleanup(mut self) {
        self.daemon.kill_quietly();
        remove(self.name.clone(), self.databases.clone()).await;
        self.cleaned = true;
    }
}

/// A replica id that differs between tests running at once (process id and
/// a counter), never the server's own.
fn replica_id() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    100_000 + (std::process::id() % 100_000) * 100 + NEXT.fetch_add(1, Ordering::Relaxed) % 100
}

/// Drops the databases and deletes every topic named after the connector.
async fn remove(name: String, databases: Vec<String>) {
    if let Ok(mut conn) = Conn::from_url(&mysql_url()).await {
        for db in &databases {
            let tables: Vec<String> = conn
                .exec(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
                    (db,),
                )
                .await
                .unwrap_or_default();
            for table in tables {
                delete_topic(&format!("{name}.{db}.{table}")).await;
            }
            let _ = conn
                .query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
                .await;
        }
        let _ = conn.disconnect().await;
    }
}

impl RunsKappa for MysqlPipeline {
    fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    fn daemon_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}

impl Drop for MysqlPipeline {
    /// Also after a failed assertion.
    fn drop(&mut self) {
        self.daemon.kill_quietly();
        if self.cleaned {
            return;
        }
        let (name, databases) = (self.name.clone(), self.databases.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(remove(name, databases));
            }
        })
        .join();
    }
}

/// The newest decoded row per `id` in the topic.
pub fn topic_rows(topic: &str) -> HashMap<i64, HashMap<String, Value>> {
    let kafka = kappa_sink::KafkaConfig::new(brokers());
    let mut schemas: HashMap<u32, apache_avro::Schema> = HashMap::new();
    let mut rows = HashMap::new();
    kappa_sink::replay::replay(&kafka, topic, |record| {
        let Some(value) = record.value else {
            return Ok::<_, String>(());
        };
        let id = u32::from_be_bytes(value[1..5].try_into().map_err(|_| "framing")?);
        let schema = schemas.entry(id).or_insert_with(|| {
            let text = registry_get(&format!("/schemas/ids/{id}"))["schema"]
                .as_str()
                .expect("schema")
                .to_string();
            apache_avro::Schema::parse_str(&text).expect("avro schema")
        });
        let fields = kappa_schemas::decode::decode_record(schema, &value[5..], id)
            .map_err(|e| e.to_string())?;
        let row: HashMap<String, Value> = fields.into_iter().collect();
        let Some(Value::Int(key)) = row.get("id").cloned() else {
            return Err("no id".into());
        };
        rows.insert(key, row);
        Ok(())
    })
    .expect("replay");
    rows
}
