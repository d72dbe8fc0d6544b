//! `kappa-chaos`: one seeded chaos run against real services. It creates
//! eleven tables in a schema (PostgreSQL) or database (MySQL) of its own,
//! fills them, starts `kappa run` while the writer keeps writing (so the
//! initial snapshot races the stream), injects the seed's faults at the
//! seed's times, stops the writer, waits until kappa has delivered every
//! commit, stops kappa and runs `kappa verify` on every table: 0 differences
//! or the run fails, printing the seed that reproduces it.
//!
//! Server faults (broker, registry, database restarts) use the private
//! services of `dev/chaos up`; run campaigns with `dev/chaos --seeds N`.

mod check;
mod db;
mod faults;
mod kappa;
mod rng;
mod schema;
mod workload;

use anyhow::{bail, Context, Result};
use clap::Parser;
use faults::Fault;
use schema::Dialect;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "kappa-chaos",
    about = "One seeded chaos run of kappa (see dev/chaos)"
)]
struct Args {
    /// The seed: it decides the workload, the partition count and the faults' kinds and times.
    #[arg(long)]
    seed: u64,
    /// postgres or mysql.
    #[arg(long, value_parser = ["postgres", "mysql"])]
    database: String,
    /// Seconds of workload and faults (catching up and verify come after).
    #[arg(long, default_value_t = 45)]
    duration: u64,
    /// The kappa binary.
    #[arg(long, default_value = "target/debug/kappa")]
    kappa: PathBuf,
    #[arg(
        long,
        env = "KAPPA_CHAOS_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5442/postgres"
    )]
    pg_url: String,
    #[arg(
        long,
        env = "KAPPA_CHAOS_MYSQL_URL",
        default_value = "mysql://root@127.0.0.1:3312/"
    )]
    mysql_url: String,
    #[arg(long, env = "KAPPA_CHAOS_BROKERS", default_value = "127.0.0.1:19092")]
    brokers: String,
    #[arg(
        long,
        env = "KAPPA_CHAOS_REGISTRY",
        default_value = "http://127.0.0.1:18081/apis/ccompat/v7"
    )]
    registry: String,
    /// The command that injects server faults (`dev/chaos fault`); without it only kappa and
    /// its replication connection are faulted.
    #[arg(long, env = "KAPPA_CHAOS_FAULTS")]
    faults_cmd: Option<String>,
    /// Only these fault kinds (comma-separated names); default: every kind the setup allows.
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// The producer's message.timeout.ms in the run's config (the broker outage lasts longer).
    #[arg(long, default_value_t = 10_000)]
    message_timeout_ms: u64,
    /// Directory for the run's config, logs and event log.
    #[arg(long, default_value = "target/chaos")]
    work: PathBuf,
    /// Append a JSON summary line here.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Extra arguments for every `kappa verify` (e.g. `--oracle sql`).
    #[arg(long, allow_hyphen_values = true)]
    verify_arg: Vec<String>,
    /// Extra `[kafka.properties]` of the run's config, `KEY=VALUE` (e.g. `debug=eos,msg`).
    #[arg(long)]
    kafka_property: Vec<String>,
    /// Keep the tables, slot and topics of a passing run too.
    #[arg(long)]
    keep: bool,
}

/// The run's event log: stdout and a file, every line with the seed and time.
#[derive(Clone)]
struct Events {
    seed: u64,
    start: Instant,
    file: Arc<Mutex<std::fs::File>>,
}

impl Events {
    fn log(&self, line: &str) {
        let text = format!(
            "[chaos seed={} t={:6.1}s] {line}",
            self.seed,
            self.start.elapsed().as_secs_f64()
        );
        println!("{text}");
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{text}");
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (seed, database, duration) = (args.seed, args.database.clone(), args.duration);
    let summary = args.summary.clone();
    let injected = Arc::new(Mutex::new(BTreeMap::new()));
    match run(args, injected.clone()).await {
        Ok(true) => println!("chaos seed {seed} ({database}): PASSED"),
        Ok(false) => {
            println!("chaos seed {seed} ({database}): FAILED; reproduce: kappa-chaos --seed {seed} --database {database} --duration {duration}");
            std::process::exit(1);
        }
        Err(e) => {
            // A run that could not finish is a failed seed in the record too.
            if let Some(path) = summary {
                let faults = injected.lock().map(|f| f.clone()).unwrap_or_default();
                let line = serde_json::json!({
                    "seed": seed, "database": database, "duration": duration, "ok": false,
                    "faults": faults, "changes": 0, "transactions": 0, "rows_compared": 0,
                    "differences": 0, "error": format!("{e:#}"),
                });
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                {
                    let _ = writeln!(f, "{line}");
                }
            }
            println!("chaos seed {seed} ({database}): ERROR {e:#}; reproduce: kappa-chaos --seed {seed} --database {database} --duration {duration}");
            std::process::exit(2);
        }
    }
}

/// Faults injected so far, by kind (shared so a run that errors still reports them).
type Injected = Arc<Mutex<BTreeMap<&'static str, u64>>>;

async fn run(args: Args, injected_so_far: Injected) -> Result<bool> {
    let dialect = if args.database == "postgres" {
        Dialect::Postgres
    } else {
        Dialect::Mysql
    };
    let url = match dialect {
        Dialect::Postgres => args.pg_url.clone(),
        Dialect::Mysql => args.mysql_url.clone(),
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = format!(
        "chaos_{}_s{}_{stamp}",
        if dialect == Dialect::Postgres {
            "pg"
        } else {
            "my"
        },
        args.seed
    );
    let dir = args.work.join(&name);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let events = Events {
        seed: args.seed,
        start: Instant::now(),
        file: Arc::new(Mutex::new(std::fs::File::create(dir.join("events.log"))?)),
    };
    let mut rng = rng::Rng::new(args.seed);
    let partitions = rng.range(3, 9) as i32;
    let initial_rows = rng.range(120, 300) as usize;
    let kinds = fault_kinds(&args)?;
    let fault_count = (args.duration / 12).max(2) as usize + rng.below(3);
    let mut fault_rng = rng.fork(1);
    let plan = faults::schedule(
        &mut fault_rng,
        &kinds,
        fault_count,
        2.0,
        args.duration as f64 * 0.85,
    );
    events.log(&format!(
        "{} run {name}: {partitions} partitions, {initial_rows} initial rows per table, faults planned: {}",
        args.database,
        plan.iter().map(|(t, f)| format!("{}@{t:.1}s", f.name())).collect::<Vec<_>>().join(" ")
    ));
    events.log(&format!("work dir {}", dir.display()));

    // Tables, filled before kappa starts.
    let mut admin = db::Db::connect(dialect, &url).await?;
    match dialect {
        Dialect::Postgres => admin.execute(&format!("CREATE SCHEMA {name}")).await?,
        // Binary collation: keys that differ only in case or accents are distinct keys.
        Dialect::Mysql => {
            admin
                .execute(&format!(
                    "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                ))
                .await?
        }
    }
    let mut workload = workload::Workload::new(dialect, &name, schema::tables(), rng.fork(2));
    let setup = workload.setup(&mut admin, initial_rows).await?;
    let tables: Vec<String> = (0..workload.tables.len())
        .map(|t| workload.qualified(t))
        .collect();
    let config = dir.join("kappa.toml");
    std::fs::write(
        &config,
        config_toml(&args, dialect, &url, &name, partitions),
    )?;

    // The writer starts with kappa: the initial snapshot reads while rows change.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, url, events) = (stop.clone(), url.clone(), events.clone());
        tokio::spawn(async move {
            let counts = workload.run(&url, stop, 25, |line| events.log(&line)).await;
            (workload, counts)
        })
    };
    let mut kappa = kappa::Kappa::new(&args.kappa, &config, &dir);
    kappa.start()?;
    events.log("kappa started (initial snapshot with the writer running)");

    let injector = faults::Injector {
        dialect,
        source_url: url.clone(),
        faults_cmd: args
            .faults_cmd
            .as_ref()
            .map(|c| c.split_whitespace().map(String::from).collect()),
        slot: name.clone(),
        message_timeout: Duration::from_millis(args.message_timeout_ms),
    };
    let mut injected: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut pending = plan.into_iter().peekable();
    let end = events.start + Duration::from_secs(args.duration);
    while Instant::now() < end {
        supervise(&mut kappa, &events).await?;
        if let Some((at, fault)) = pending.peek().copied() {
            if events.start.elapsed().as_secs_f64() >= at {
                pending.next();
                events.log(&format!("fault {} …", fault.name()));
                let what = injector.inject(fault, &mut fault_rng, &mut kappa).await?;
                events.log(&format!("fault {}: {what}", fault.name()));
                *injected.entry(fault.name()).or_default() += 1;
                if let Ok(mut shared) = injected_so_far.lock() {
                    *shared = injected.clone();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    // A writer that cannot finish its transaction is itself a finding: e.g.
    // a TRUNCATE waiting for the lock of a snapshot that kappa stopped reading.
    let Ok(joined) = tokio::time::timeout(Duration::from_secs(120), writer).await else {
        bail!(
            "the writer's last transaction did not finish within 120 s of the workload's end (a lock held by a \
             stuck kappa snapshot?); last kappa log lines:\n{}",
            kappa.log_tail(20)
        );
    };
    let (mut workload, counts) = joined.context("writer task")?;
    let counts = counts.context("writer")?;
    events.log(&format!(
        "writer stopped: {} transactions ({} large, {} key changes, {} truncates), {} row changes, {} failed by faults",
        counts.transactions, counts.large_transactions, counts.key_changes, counts.truncates, counts.changes, counts.failed
    ));
    let mut source = db::Db::connect_retrying(dialect, &url, 120).await?;
    workload.resync(&mut source).await?;

    check::wait_caught_up(&args, dialect, &mut source, &name, &mut kappa, &events).await?;
    let status = kappa.stop()?;
    events.log(&format!("kappa stopped with SIGTERM: {status}"));
    let stopped_cleanly = status.success();

    let report = check::verify_all(
        &args.kappa,
        &config,
        &tables,
        &args.brokers,
        &args.registry,
        &args.verify_arg,
        &events,
    )?;
    let ok = report.ok && stopped_cleanly;
    events.log(&format!(
        "verify: {} tables, {} rows compared, {} differences{}; kappa starts {}, exits on its own: {}",
        tables.len(),
        report.rows,
        report.differences,
        if report.ok { "" } else { " — FAILED" },
        kappa.starts,
        if kappa.own_exits.is_empty() { "none".to_string() } else { kappa.own_exits.join(", ") }
    ));
    if let Some(path) = &args.summary {
        let line = serde_json::json!({
            "seed": args.seed,
            "database": args.database,
            "duration": args.duration,
            "ok": ok,
            "faults": injected,
            "changes": setup.changes + counts.changes,
            "transactions": counts.transactions,
            "rows_compared": report.rows,
            "differences": report.differences,
            "partitions": partitions,
            "kappa_starts": kappa.starts,
            "kappa_own_exits": kappa.own_exits.len(),
        });
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{line}")?;
    }
    if ok && !args.keep {
        cleanup(dialect, &mut source, &name, &args.brokers, &tables).await;
        let _ = std::fs::remove_dir_all(&dir);
    } else if !ok {
        events.log(&format!(
            "kept for inspection: {} (tables in {name}, slot/connector {name})",
            dir.display()
        ));
    }
    Ok(ok)
}

/// Restarts kappa when it exited by itself (after 1 s, as a service manager would).
async fn supervise(kappa: &mut kappa::Kappa, events: &Events) -> Result<()> {
    if let Some(status) = kappa.exited()? {
        events.log(&format!(
            "kappa exited by itself ({status}); last log lines:\n{}",
            kappa.log_tail(6)
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        kappa.start()?;
        events.log("kappa restarted");
    }
    Ok(())
}

fn fault_kinds(args: &Args) -> Result<Vec<Fault>> {
    let kinds: Vec<Fault> = if args.faults.is_empty() {
        Fault::ALL
            .into_iter()
            .filter(|f| args.faults_cmd.is_some() || !f.needs_services())
            .collect()
    } else {
        args.faults
            .iter()
            .map(|n| Fault::parse(n))
            .collect::<Result<_>>()?
    };
    if let Some(f) = kinds
        .iter()
        .find(|f| f.needs_services() && args.faults_cmd.is_none())
    {
        bail!("fault {} needs --faults-cmd (dev/chaos fault) and the private services of dev/chaos up", f.name());
    }
    Ok(kinds)
}

fn config_toml(args: &Args, dialect: Dialect, url: &str, name: &str, partitions: i32) -> String {
    let source = match dialect {
        Dialect::Postgres => format!(
            "[source.postgres]\nurl = \"{url}\"\ntables = [\"{name}.*\"]\nslot = \"{name}\"\npublication = \"{name}\"\nsnapshot_chunk_rows = 100\n"
        ),
        Dialect::Mysql => format!(
            "[source.mysql]\nurl = \"{url}\"\ntables = [\"{name}.*\"]\nserver_id = {}\nheartbeat_secs = 1\nsnapshot_chunk_rows = 100\n",
            6000 + args.seed % 10_000
        ),
    };
    format!(
        r#"name = "{name}"

{source}
[kafka]
brokers = "{brokers}"
topic_prefix = "{name}"
partitions = {partitions}
offsets_topic = "kappa-chaos-offsets"

[kafka.properties]
"message.timeout.ms" = "{timeout}"
{extra}
[schema_registry]
url = "{registry}"
"#,
        brokers = args.brokers,
        registry = args.registry,
        timeout = args.message_timeout_ms,
        extra = args
            .kafka_property
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| format!("{k:?} = {v:?}\n"))
            .collect::<String>(),
    )
}

/// Drops what a passing run made: tables, slot, publication, topics.
async fn cleanup(dialect: Dialect, db: &mut db::Db, name: &str, brokers: &str, tables: &[String]) {
    match dialect {
        Dialect::Postgres => {
            for _ in 0..50 {
                let sql = format!("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{name}' AND NOT active");
                if db.execute(&sql).await.is_ok()
                    && db
                        .scalar(&format!(
                            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{name}'"
                        ))
                        .await
                        .ok()
                        .as_deref()
                        == Some("0")
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let _ = db
                .execute(&format!(
                    "DROP PUBLICATION IF EXISTS {name}; DROP SCHEMA {name} CASCADE"
                ))
                .await;
        }
        Dialect::Mysql => {
            let _ = db.execute(&format!("DROP DATABASE {name}")).await;
        }
    }
    let topics: Vec<String> = tables.iter().map(|t| format!("{name}.{t}")).collect();
    check::delete_topics(brokers, &topics).await;
}
