//! One `kappa run` process of a test: started and restarted (each start
//! keeps its own log), stopped with SIGTERM or SIGKILL, and killed when the
//! test ends, also when it fails.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    dir: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Daemon {
    /// A daemon that will run with `config` and log into `dir`.
    pub fn new(dir: &Path, config: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            config: config.to_path_buf(),
            child: None,
            starts: 0,
        }
    }

    fn log_path(&self, n: u32) -> PathBuf {
        self.dir.join(format!("kappa-run-{n}.log"))
    }

    /// Starts `kappa run` in the background without waiting.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_kappa"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env("KAPPA_LOG", "info,kappa=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn kappa run");
        self.child = Some(child);
    }

    /// The log of the latest start only.
    pub fn current_log(&self) -> String {
        std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default()
    }

    /// Every start's log, in order (for assertion messages).
    pub fn log(&self) -> String {
        let mut text = String::new();
        for n in 1..=self.starts {
            let _ =
                std::fs::File::open(self.log_path(n)).and_then(|mut f| f.read_to_string(&mut text));
        }
        text
    }

    /// Whether the latest start is still running (false once it exited by
    /// itself, or when none was started).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("wait").is_none(),
            None => false,
        }
    }

    /// Fails the test if the daemon has exited (with its log).
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait().expect("wait") {
                panic!("kappa run exited early with {status}; log:\n{}", self.log());
            }
        }
    }

    /// SIGTERM, then the exit status must be success.
    pub fn stop(&mut self) {
        let pid = self.pid().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let status = self.wait_exit();
        assert!(
            status.success(),
            "kappa run exited with {status} after SIGTERM; log:\n{}",
            self.log()
        );
    }

    /// kill -9: no drain, no final confirmation.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("daemon running");
        child.kill().expect("kill -9");
        let _ = child.wait();
    }

    /// Waits up to 60 s for the daemon to exit; returns its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "kappa run did not exit within 60 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `kill -STOP` or `-CONT` (a connector frozen in place, then let go).
    pub fn signal(&self, which: &str) {
        let pid = self.pid().to_string();
        let status = std::process::Command::new("kill")
            .args([which, &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {which} {pid}");
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    /// Kills the daemon if it runs (cleanup; never fails).
    pub fn kill_quietly(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill_quietly();
    }
}

/// A test fixture that runs `kappa run`: the daemon's controls, reachable on
/// the fixture itself (`p.stop()`), written once for every kind of pipeline.
pub trait RunsKappa {
    fn daemon(&self) -> &Daemon;
    fn daemon_mut(&mut self) -> &mut Daemon;

    /// Starts `kappa run` in the background without waiting.
    fn spawn(&mut self) {
        self.daemon_mut().spawn();
    }

    /// The log of the latest start only.
    fn current_log(&self) -> String {
        self.daemon().current_log()
    }

    /// Every start's log (for assertion messages).
    fn log(&self) -> String {
        self.daemon().log()
    }

    /// SIGTERM, then the exit status must be success.
    fn stop(&mut self) {
        self.daemon_mut().stop();
    }

    /// kill -9: no drain, no final confirmation.
    fn kill9(&mut self) {
        self.daemon_mut().kill9();
    }

    /// Waits for the daemon to exit by itself; returns its status.
    fn wait_exit(&mut self) -> ExitStatus {
        self.daemon_mut().wait_exit()
    }

    /// The daemon's process id.
    fn pid(&self) -> u32 {
        self.daemon().pid()
    }

    /// Fails the test if the daemon has exited (with its log).
    fn assert_running(&mut self) {
        self.daemon_mut().assert_running();
    }
}
