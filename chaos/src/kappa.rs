//! The `kappa run` process under test: started, killed with SIGKILL,
//! stopped with SIGTERM, and restarted when it exits by itself (as a
//! service manager would), each start logging into its own file.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Kappa {
    binary: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    pub starts: u32,
    /// Exits kappa made by itself (an error it stopped on), with their status.
    pub own_exits: Vec<String>,
}

impl Kappa {
    pub fn new(binary: &Path, config: &Path, dir: &Path) -> Self {
        Self {
            binary: binary.to_path_buf(),
            config: config.to_path_buf(),
            dir: dir.to_path_buf(),
            child: None,
            starts: 0,
            own_exits: Vec::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_path(&self, n: u32) -> PathBuf {
        self.dir.join(format!("kappa-run-{n}.log"))
    }

    pub fn start(&mut self) -> Result<()> {
        anyhow::ensure!(self.child.is_none(), "kappa already running");
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).context("kappa log file")?;
        let child = Command::new(&self.binary)
            .args(["run", "--config"])
            .arg(&self.config)
            .env(
                "KAPPA_LOG",
                std::env::var("KAPPA_CHAOS_LOG").unwrap_or_else(|_| "info,kappa=debug".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// When kappa has exited by itself: its status (and it is no longer
    /// tracked, so `start` may run it again).
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let status = child.try_wait().context("wait for kappa")?;
        if let Some(status) = status {
            self.child = None;
            self.own_exits
                .push(format!("start {}: {status}", self.starts));
        }
        Ok(status)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait (60 s): the status of a clean stop.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("kappa is not running");
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("kappa did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last `lines` lines of the latest start's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Kappa {
    fn drop(&mut self) {
        self.kill9();
    }
}
