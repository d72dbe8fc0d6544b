//! The faults and their seeded schedule. Faults on kappa itself and on its
//! replication connection need nothing but the source; faults that stop a
//! server run `dev/chaos fault KIND` (the `--faults-cmd`), which acts on the
//! private services of `dev/chaos up` only.

use crate::db::Db;
use crate::kappa::Kappa;
use crate::rng::Rng;
use crate::schema::Dialect;
use anyhow::{bail, Context, Result};
use std::time::Duration;
use tokio::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL of kappa, restarted after up to 3 s.
    KillKappa,
    /// The server ends kappa's replication connection (walsender / Binlog Dump).
    KillReplication,
    /// SIGKILL of the broker, restarted after up to 4 s.
    KillBroker,
    /// The broker down for longer than the producer's `message.timeout.ms`.
    BrokerOutage,
    RestartRegistry,
    /// A clean (fast) restart of the source database.
    RestartDatabase,
    /// The source database killed (PostgreSQL immediate stop, MariaDB SIGKILL) and started.
    CrashDatabase,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::KillKappa,
        Fault::KillReplication,
        Fault::KillBroker,
        Fault::BrokerOutage,
        Fault::RestartRegistry,
        Fault::RestartDatabase,
        Fault::CrashDatabase,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::KillKappa => "kill-kappa",
            Fault::KillReplication => "kill-replication",
            Fault::KillBroker => "kill-broker",
            Fault::BrokerOutage => "broker-outage",
            Fault::RestartRegistry => "restart-registry",
            Fault::RestartDatabase => "restart-database",
            Fault::CrashDatabase => "crash-database",
        }
    }

    pub fn parse(name: &str) -> Result<Fault> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .with_context(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!("unknown fault {name:?}; known: {}", names.join(", "))
            })
    }

    /// Whether the fault needs the private services' switches.
    pub fn needs_services(self) -> bool {
        !matches!(self, Fault::KillKappa | Fault::KillReplication)
    }
}

/// `count` faults at seeded times within `[from, until)` seconds, one in
/// each of `count` equal slots (spread over the run, not bunched).
pub fn schedule(
    rng: &mut Rng,
    kinds: &[Fault],
    count: usize,
    from: f64,
    until: f64,
) -> Vec<(f64, Fault)> {
    if kinds.is_empty() || count == 0 {
        return Vec::new();
    }
    let slot = (until - from).max(0.0) / count as f64;
    (0..count)
        .map(|i| (from + slot * (i as f64 + rng.unit()), *rng.pick(kinds)))
        .collect()
}

pub struct Injector {
    pub dialect: Dialect,
    pub source_url: String,
    /// `dev/chaos fault` (split on whitespace), when server faults are enabled.
    pub faults_cmd: Option<Vec<String>>,
    pub slot: String,
    /// The producer's delivery timeout the config sets.
    pub message_timeout: Duration,
}

impl Injector {
    /// Injects one fault and returns a line describing what was done.
    pub async fn inject(&self, fault: Fault, rng: &mut Rng, kappa: &mut Kappa) -> Result<String> {
        match fault {
            Fault::KillKappa => {
                let pid = kappa.pid();
                kappa.kill9();
                let pause = Duration::from_millis(rng.range(0, 3000) as u64);
                tokio::time::sleep(pause).await;
                kappa.start()?;
                Ok(format!(
                    "kill -9 of kappa (pid {pid:?}), restarted after {:.1} s",
                    pause.as_secs_f64()
                ))
            }
            Fault::KillReplication => self.kill_replication().await,
            Fault::KillBroker => {
                self.switch("kafka-kill").await?;
                let pause = Duration::from_millis(rng.range(0, 4000) as u64);
                tokio::time::sleep(pause).await;
                self.switch("kafka-start").await?;
                Ok(format!(
                    "kill -9 of the broker, started again after {:.1} s (+ its start-up)",
                    pause.as_secs_f64()
                ))
            }
            Fault::BrokerOutage => {
                self.switch("kafka-kill").await?;
                let pause =
                    self.message_timeout + Duration::from_millis(rng.range(2000, 8000) as u64);
                tokio::time::sleep(pause).await;
                self.switch("kafka-start").await?;
                Ok(format!(
                    "broker killed for {:.1} s (message.timeout.ms = {}), started again",
                    pause.as_secs_f64(),
                    self.message_timeout.as_millis()
                ))
            }
            Fault::RestartRegistry => {
                self.switch("registry-restart").await?;
                Ok("registry restarted (SIGTERM, start, ready)".into())
            }
            Fault::RestartDatabase | Fault::CrashDatabase => {
                let (db, how) = match self.dialect {
                    Dialect::Postgres => (
                        "pg",
                        if fault == Fault::CrashDatabase {
                            "crash"
                        } else {
                            "restart"
                        },
                    ),
                    Dialect::Mysql => (
                        "mysql",
                        if fault == Fault::CrashDatabase {
                            "crash"
                        } else {
                            "restart"
                        },
                    ),
                };
                self.switch(&format!("{db}-{how}")).await?;
                Ok(format!(
                    "{db}-{how}: source database {}",
                    if how == "crash" {
                        "killed and started"
                    } else {
                        "restarted"
                    }
                ))
            }
        }
    }

    async fn kill_replication(&self) -> Result<String> {
        let mut db = Db::connect_retrying(self.dialect, &self.source_url, 60).await?;
        let killed = match self.dialect {
            Dialect::Postgres => db
                .text_rows(&format!(
                    "SELECT active_pid, pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{}' AND active_pid IS NOT NULL",
                    self.slot
                ))
                .await?
                .into_iter()
                .map(|r| r.join(":"))
                .collect::<Vec<_>>(),
            Dialect::Mysql => {
                // The private server has one binlog reader: kappa.
                let ids = db
                    .text_rows("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
                    .await?;
                let mut killed = Vec::new();
                for id in ids.into_iter().filter_map(|r| r.into_iter().next()) {
                    if db.execute(&format!("KILL {id}")).await.is_ok() {
                        killed.push(id);
                    }
                }
                killed
            }
        };
        Ok(format!(
            "replication connection killed server-side: {}",
            if killed.is_empty() {
                "none was active".to_string()
            } else {
                killed.join(", ")
            }
        ))
    }

    async fn switch(&self, what: &str) -> Result<()> {
        let Some(cmd) = &self.faults_cmd else {
            bail!("fault {what} needs --faults-cmd (dev/chaos fault)");
        };
        let (program, args) = cmd.split_first().context("empty --faults-cmd")?;
        let output = Command::new(program)
            .args(args)
            .arg(what)
            .output()
            .await
            .with_context(|| format!("run {program} {what}"))?;
        if !output.status.success() {
            bail!(
                "{} {what} failed ({}): {}{}",
                cmd.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}
