//! The end of a run: wait until kappa has delivered every commit, then
//! `kappa verify` on every table. The verify arguments are built in one
//! place ([`verify_table`]), so a further check (`--oracle sql`) is one
//! more entry in `--verify-arg`.

use crate::db::Db;
use crate::kappa::Kappa;
use crate::schema::Dialect;
use crate::{Args, Events};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long kappa may take to deliver the backlog after the last fault
/// (`KAPPA_CHAOS_CATCH_UP_SECS` overrides).
fn catch_up() -> Duration {
    let secs = std::env::var("KAPPA_CHAOS_CATCH_UP_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// Commits a marker transaction (a row inserted and deleted again in the
/// key-only table) and waits until kappa has acknowledged it: every commit
/// before it is then in the topics. kappa is restarted if it exits.
pub async fn wait_caught_up(
    args: &Args,
    dialect: Dialect,
    db: &mut Db,
    name: &str,
    kappa: &mut Kappa,
    events: &Events,
) -> Result<()> {
    let marker = format!("{name}.t10");
    let row = "k1, k2) VALUES (-999999, 'a'";
    let target = match dialect {
        Dialect::Postgres => {
            db.execute(&format!(
                "BEGIN; INSERT INTO {marker} ({row}); DELETE FROM {marker} WHERE k1 = -999999"
            ))
            .await?;
            // Read before COMMIT: the commit's end, which the slot confirms, lies beyond it.
            let lsn = db
                .scalar("SELECT pg_current_wal_insert_lsn()::text")
                .await?;
            db.execute("COMMIT").await?;
            Target::Lsn(lsn)
        }
        Dialect::Mysql => {
            db.transaction(&[
                format!("INSERT INTO {marker} ({row})"),
                format!("DELETE FROM {marker} WHERE k1 = -999999"),
            ])
            .await?;
            // The marker's GTID (MariaDB; MySQL has no @@last_gtid): the
            // server's position may lie past the marker's commit by events
            // that are no commit (a Binlog_checkpoint written after a binlog
            // rotation), which kappa's stored position never covers.
            let gtid = db
                .scalar("SELECT @@last_gtid")
                .await
                .ok()
                .filter(|g| !g.is_empty());
            let rows = db.text_rows("SHOW MASTER STATUS").await?;
            let row = rows
                .into_iter()
                .next()
                .context("SHOW MASTER STATUS: binary logging is off")?;
            Target::Binlog(
                row[0].clone(),
                row[1].parse().context("binlog position")?,
                gtid,
            )
        }
    };
    events.log(&format!(
        "waiting until kappa has delivered everything up to {target:?}"
    ));
    let deadline = Instant::now() + catch_up();
    let kafka = kappa_sink::KafkaConfig::new(args.brokers.clone());
    loop {
        crate::supervise(kappa, events).await?;
        let reached = match &target {
            Target::Lsn(lsn) => db
                .scalar(&format!(
                    "SELECT coalesce(confirmed_flush_lsn >= '{lsn}'::pg_lsn, false)::text FROM pg_replication_slots WHERE slot_name = '{name}'"
                ))
                .await
                .map(|v| v == "true")
                .unwrap_or(false),
            Target::Binlog(file, pos, gtid) => {
                stored_binlog(&kafka, name)
                    .await
                    .is_some_and(|(f, p, stored_gtid)| {
                        (f.as_str(), p) >= (file.as_str(), *pos)
                            || gtid
                                .as_deref()
                                .zip(stored_gtid.as_deref())
                                .is_some_and(|(marker, stored)| gtid_covers(stored, marker))
                    })
            }
        };
        if reached {
            events.log("kappa caught up");
            return Ok(());
        }
        if Instant::now() > deadline {
            if let Some(pid) = kappa.pid() {
                stack_dump(pid, kappa.dir());
            }
            bail!(
                "kappa did not deliver up to {target:?} within {} s of the workload's end; last log lines:\n{}",
                catch_up().as_secs(),
                kappa.log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every thread's stack of a stuck kappa, into `dir/kappa-stack.txt` (when gdb is installed).
fn stack_dump(pid: u32, dir: &Path) {
    if let Ok(out) = Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .output()
    {
        let _ = std::fs::write(dir.join("kappa-stack.txt"), out.stdout);
    }
}

#[derive(Debug)]
enum Target {
    Lsn(String),
    /// The server's binlog file and position after the marker, and the
    /// marker's GTID when the server names it.
    Binlog(String, u64, Option<String>),
}

/// Whether the MariaDB GTID position `stored` (`domain-server-seq`, comma
/// separated per domain) includes the transaction `marker`
/// (`domain-server-seq`): the same domain at a sequence number at least
/// the marker's. Sequence numbers grow within a domain.
fn gtid_covers(stored: &str, marker: &str) -> bool {
    let parse = |g: &str| -> Option<(u64, u64)> {
        let mut parts = g.trim().split('-');
        let domain = parts.next()?.parse().ok()?;
        let _server: u64 = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some((domain, seq))
    };
    let Some((domain, seq)) = parse(marker) else {
        return false;
    };
    stored
        .split(',')
        .filter_map(parse)
        .any(|(d, s)| d == domain && s >= seq)
}

/// The binlog position in the connector's offsets record.
async fn stored_binlog(
    kafka: &kappa_sink::KafkaConfig,
    name: &str,
) -> Option<(String, u64, Option<String>)> {
    let bytes = kappa_sink::offsets::read_state(kafka, "kappa-chaos-offsets", name)
        .await
        .ok()??;
    let state: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let binlog = state.get("binlog")?;
    Some((
        binlog["file"].as_str()?.to_string(),
        binlog["pos"].as_u64()?,
        binlog["gtid"].as_str().map(str::to_string),
    ))
}

pub struct Report {
    pub ok: bool,
    pub rows: u64,
    pub differences: u64,
}

/// `kappa verify` on every table (the connector stopped).
pub fn verify_all(
    kappa: &Path,
    config: &Path,
    tables: &[String],
    brokers: &str,
    registry: &str,
    extra: &[String],
    events: &Events,
) -> Result<Report> {
    let mut report = Report {
        ok: true,
        rows: 0,
        differences: 0,
    };
    // A few at a time: each verify is a process that mostly waits for the broker.
    for group in tables.chunks(4) {
        let outcomes: Vec<Result<Outcome>> = std::thread::scope(|scope| {
            let handles: Vec<_> = group
                .iter()
                .map(|table| {
                    scope
                        .spawn(move || verify_table(kappa, config, table, brokers, registry, extra))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("verify thread panicked")))
                })
                .collect()
        });
        for (table, outcome) in group.iter().zip(outcomes) {
            let outcome = outcome?;
            report.rows += outcome.source_rows;
            report.differences += outcome.differences;
            if !outcome.ok {
                report.ok = false;
                events.log(&format!("verify {table}: FAILED\n{}", outcome.text));
            }
        }
    }
    Ok(report)
}

struct Outcome {
    ok: bool,
    source_rows: u64,
    differences: u64,
    text: String,
}

/// One `kappa verify --config C --table T --brokers B --registry R EXTRA…`.
fn verify_table(
    kappa: &Path,
    config: &Path,
    table: &str,
    brokers: &str,
    registry: &str,
    extra: &[String],
) -> Result<Outcome> {
    let output = Command::new(kappa)
        .arg("verify")
        .arg("--config")
        .arg(config)
        .args([
            "--table",
            table,
            "--brokers",
            brokers,
            "--registry",
            registry,
        ])
        .args(extra)
        .output()
        .with_context(|| format!("run {} verify", kappa.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let text = format!(
        "{}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let counts = parse_counts(&stdout);
    let ok = output.status.success()
        && stdout.contains("verdict: OK, 0 differences")
        && counts.is_some();
    let (source_rows, differences) = counts.unwrap_or((0, 0));
    Ok(Outcome {
        ok,
        source_rows,
        differences: if ok { 0 } else { differences.max(1) },
        text,
    })
}

/// `source rows: N  rebuilt rows: M  missing: a  extra: b  different: c` →
/// (N, a + b + c).
fn parse_counts(stdout: &str) -> Option<(u64, u64)> {
    let line = stdout.lines().find(|l| l.starts_with("source rows:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |label: &str| -> Option<u64> {
        let i = words.iter().position(|w| *w == label)?;
        words.get(i + 1)?.parse().ok()
    };
    Some((
        after("rows:")?,
        after("missing:")? + after("extra:")? + after("different:")?,
    ))
}

/// Deletes topics (best effort: leftovers only slow the broker's compaction).
pub async fn delete_topics(brokers: &str, topics: &[String]) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: Result<AdminClient<DefaultClientContext>, _> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create();
    if let Ok(admin) = admin {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
        let _ = admin.delete_topics(&names, &options).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{gtid_covers, parse_counts};

    #[test]
    fn a_stored_gtid_covers_the_marker_of_its_domain_only() {
        assert!(gtid_covers("0-1-21390", "0-1-21390"));
        assert!(gtid_covers("0-1-21391", "0-1-21390"));
        assert!(!gtid_covers("0-1-21389", "0-1-21390"));
        assert!(gtid_covers("1-1-5,0-1-21390", "0-1-21390"));
        assert!(!gtid_covers("1-1-99999", "0-1-21390"));
        assert!(!gtid_covers("0-1-21390", "not a gtid"));
        assert!(!gtid_covers("", "0-1-1"));
    }

    #[test]
    fn counts_come_from_the_verify_report() {
        let out = "verify a.b against topic x\nsource rows: 12  rebuilt rows: 11  missing: 1  extra: 0  different: 2\nverdict: DIFFERENT, 3 differences\n";
        assert_eq!(parse_counts(out), Some((12, 3)));
        assert_eq!(parse_counts("nothing"), None);
    }
}
