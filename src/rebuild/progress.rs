//! Rebuild progress: a bar with records/s and ETA on a terminal, a plain log
//! line every few seconds otherwise (CI logs, pipes).
//!
//! Progress is measured in offsets covered (gaps left by compaction count as
//! covered), so the total is known from the plan and the ETA is honest.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kappa_sink::replay::ReplayProgress;
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const LOG_EVERY: Duration = Duration::from_secs(5);

/// How progress reaches the person or the log reading it.
#[derive(Debug, Clone, Copy)]
pub enum Display {
    /// A redrawn bar on a terminal.
    Bar,
    /// A plain `rebuild progress` log line this often (logs, pipes).
    LogEvery(Duration),
}

impl Display {
    /// A bar when stderr is a terminal, a log line every 5 s otherwise.
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            Display::Bar
        } else {
            Display::LogEvery(LOG_EVERY)
        }
    }
}

/// Shows `progress` until `done` turns true.
pub async fn show(
    topic: String,
    total: u64,
    progress: Arc<ReplayProgress>,
    mut done: watch::Receiver<bool>,
    display: Display,
) {
    let started = Instant::now();
    let bar = matches!(display, Display::Bar).then(|| {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {percent:>3}% {msg} · ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(topic.clone());
        bar
    });
    let tick = match display {
        Display::Bar => Duration::from_millis(200),
        Display::LogEvery(every) => every,
    };
    loop {
        let finished = tokio::select! {
            _ = tokio::time::sleep(tick) => false,
            _ = done.changed() => true,
        };
        let covered = progress.covered.load(Ordering::Relaxed);
        let records = progress.records.load(Ordering::Relaxed);
        let rate = records as f64 / started.elapsed().as_secs_f64().max(1e-3);
        match &bar {
            Some(bar) => {
                bar.set_position(covered.min(total));
                bar.set_message(format!("{records} records, {rate:.0} records/s"));
            }
            None if !finished => tracing::info!(
                topic = %topic,
                records,
                offsets = covered,
                of = total,
                records_per_second = format!("{rate:.0}"),
                "rebuild progress"
            ),
            None => {}
        }
        if finished || *done.borrow() {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Collects what the log subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn without_a_terminal_progress_is_a_periodic_log_line() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        // The current-thread runtime polls `show` on this thread.
        let _guard = tracing::subscriber::set_default(subscriber);
        let progress = Arc::new(ReplayProgress::default());
        progress.records.store(500, Ordering::Relaxed);
        progress.covered.store(600, Ordering::Relaxed);
        let (done_tx, done_rx) = watch::channel(false);
        let shown = show(
            "orders".into(),
            1000,
            progress,
            done_rx,
            Display::LogEvery(Duration::from_millis(20)),
        );
        let watch_log = async {
            let deadline = Instant::now() + Duration::from_secs(30);
            while captured.text().matches("rebuild progress").count() < 2 {
                assert!(
                    Instant::now() < deadline,
                    "no progress lines: {}",
                    captured.text()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            done_tx.send(true).expect("show is running");
        };
        tokio::join!(shown, watch_log);
        let text = captured.text();
        let line = text
            .lines()
            .find(|l| l.contains("rebuild progress"))
            .expect("a progress line");
        for field in [
            "topic=orders",
            "records=500",
            "offsets=600",
            "of=1000",
            "records_per_second=",
        ] {
            assert!(line.contains(field), "{field} missing in {line:?}");
        }
    }
}
