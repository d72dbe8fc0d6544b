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

/// Shows `progress` until `done` turns true.
pub async fn show(
    topic: String,
    total: u64,
    progress: Arc<ReplayProgress>,
    mut done: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {percent:>3}% {msg} · ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(topic.clone());
        bar
    });
    let tick = if bar.is_some() {
        Duration::from_millis(200)
    } else {
        LOG_EVERY
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
