//! Progress reporting: one log line per worker every interval, and a progress bar on
//! a terminal for backfills.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use connectors::files::SourceProgress;
use connectors::kafka::LiveProgress;
use operators::BarsStats;
use timely::dataflow::ProbeHandle;

/// The progress counter of `set` written by `sink` (`parquet:bars`, `kafka:risk`).
pub fn rows_out_key(sink: &str, set: operators::FeatureSet) -> String {
    format!("{sink}:{set}")
}

/// Counters one worker keeps for its progress line.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Rejected records seen by this worker, by reason.
    pub rejects: BTreeMap<&'static str, u64>,
    /// Rows written per feature set by this worker.
    pub rows_out: BTreeMap<String, u64>,
}

/// Emits the periodic progress line of a worker and drives the progress bar.
pub struct Reporter {
    worker: usize,
    interval: Duration,
    last: Instant,
    last_records: u64,
    bar: Option<indicatif::ProgressBar>,
    /// Shared bars counters of this worker.
    pub bars: Rc<RefCell<BarsStats>>,
    /// Other counters of this worker.
    pub stats: Rc<RefCell<WorkerStats>>,
    /// Live source counters (consumer lag per partition), for a live job.
    pub live: Option<Arc<LiveProgress>>,
}

impl Reporter {
    /// A reporter for `worker`; the progress bar is shown on worker 0 when stderr is a
    /// terminal and `show_bar` is set.
    pub fn new(worker: usize, interval: Duration, show_bar: bool) -> Reporter {
        let bar = (show_bar && worker == 0 && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} rows {per_sec} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Reporter {
            worker,
            interval,
            last: Instant::now(),
            last_records: 0,
            bar,
            bars: Rc::default(),
            stats: Rc::default(),
            live: None,
        }
    }

    /// Logs a progress line if the interval has passed; updates the bar.
    pub fn tick(
        &mut self,
        probe: &ProbeHandle<i64>,
        source: Option<&Arc<SourceProgress>>,
        force: bool,
    ) {
        if let (Some(bar), Some(src)) = (self.bar.as_ref(), source) {
            bar.set_length(src.rows_total.load(Ordering::Relaxed));
            bar.set_position(src.rows_done.load(Ordering::Relaxed));
        }
        let elapsed = self.last.elapsed();
        if !force && elapsed < self.interval {
            return;
        }
        self.last = Instant::now();
        let bars = self.bars.borrow();
        let stats = self.stats.borrow();
        let rate = (bars.records_in - self.last_records) as f64 / elapsed.as_secs_f64().max(1e-9);
        self.last_records = bars.records_in;
        let watermark = probe.with_frontier(|f| f.first().copied());
        let watermark = match watermark {
            Some(t) => chrono::DateTime::from_timestamp_millis(t)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_else(|| t.to_string()),
            None => "done".to_string(),
        };
        let rejects: u64 = stats.rejects.values().sum();
        if let Some(live) = &self.live {
            let lag: Vec<String> = live
                .lag
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(p, l)| format!("{p}={}", (l.high - l.next).max(0)))
                .collect();
            let latency = live.latency.summary(None);
            let ms = |d: std::time::Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
            tracing::info!(
                worker = self.worker,
                records_in = bars.records_in,
                rate = format!("{rate:.0}/s"),
                watermark = %watermark,
                read = live.records.load(Ordering::Relaxed),
                source_rejects = live.rejects.load(Ordering::Relaxed),
                skipped = live.skipped.load(Ordering::Relaxed),
                lag = %lag.join(","),
                latency_p50_ms = latency.map(|l| ms(l.p50)).unwrap_or_default(),
                latency_p99_ms = latency.map(|l| ms(l.p99)).unwrap_or_default(),
                latency_samples = latency.map_or(0, |l| l.samples),
                rows_out = ?stats.rows_out,
                rejects,
                rejects_by_reason = ?stats.rejects,
                state_records = bars.state_records,
                "progress"
            );
            return;
        }
        tracing::info!(
            worker = self.worker,
            records_in = bars.records_in,
            rate = format!("{rate:.0}/s"),
            watermark = %watermark,
            bars_out = bars.bars_out,
            rows_out = ?stats.rows_out,
            rejects,
            rejects_by_reason = ?stats.rejects,
            state_records = bars.state_records,
            "progress"
        );
    }

    /// Clears the progress bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
