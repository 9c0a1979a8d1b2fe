//! Progress reporting: one log line per worker every interval, a progress bar on a
//! terminal for backfills, and the worker's counters pushed to the process's Prometheus
//! metrics.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connectors::files::SourceProgress;
use connectors::kafka::LiveProgress;
use connectors::metrics::Metrics;
use operators::{BarsStats, FeatureSet, RejectReason};
use timely::dataflow::ProbeHandle;

/// Rows of one set and resolution written by one sink: a counter of [`WorkerStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowsOut {
    /// `kafka` or `parquet`.
    pub sink: &'static str,
    /// The feature set.
    pub set: FeatureSet,
    /// The resolution, ms.
    pub resolution_ms: i64,
}

/// Counters one worker keeps for its progress line and metrics.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Rejected records seen by this worker, by (index of the source, reason).
    pub rejects: BTreeMap<(usize, RejectReason), u64>,
    /// Rows written by this worker.
    pub rows_out: BTreeMap<RowsOut, u64>,
}

impl WorkerStats {
    /// Counts one reject of source `source` (index in the job's sources).
    pub fn reject(&mut self, source: usize, reason: RejectReason) {
        *self.rejects.entry((source, reason)).or_default() += 1;
    }

    /// Counts `n` rows written.
    pub fn rows(&mut self, sink: &'static str, set: FeatureSet, resolution_ms: i64, n: u64) {
        let key = RowsOut {
            sink,
            set,
            resolution_ms,
        };
        *self.rows_out.entry(key).or_default() += n;
    }

    /// Rows out per `sink:set`, for the progress line.
    fn rows_by_set(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (k, n) in &self.rows_out {
            *out.entry(format!("{}:{}", k.sink, k.set)).or_default() += n;
        }
        out
    }

    /// Rejects per reason, for the progress line.
    fn rejects_by_reason(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for ((_, r), n) in &self.rejects {
            *out.entry(r.as_str()).or_default() += n;
        }
        out
    }
}

/// How often a worker pushes its counters to the metrics.
const METRICS_EVERY: Duration = Duration::from_millis(250);

/// A worker's link to the process's metrics: what it already pushed.
pub struct MetricsPush {
    metrics: Arc<Metrics>,
    /// Source names by index.
    sources: Vec<String>,
    last: Option<Instant>,
    rows_out: BTreeMap<RowsOut, u64>,
    rejects: BTreeMap<(usize, RejectReason), u64>,
    records: BTreeMap<String, u64>,
    /// Microseconds of back-pressure already pushed.
    held_us: u64,
}

impl MetricsPush {
    /// Pushes to `metrics`; `sources` names the job's sources by index.
    pub fn new(metrics: Arc<Metrics>, sources: Vec<String>) -> MetricsPush {
        MetricsPush {
            metrics,
            sources,
            last: None,
            rows_out: BTreeMap::new(),
            rejects: BTreeMap::new(),
            records: BTreeMap::new(),
            held_us: 0,
        }
    }

    /// Adds the process's back-pressure time (pushed by one worker) since the last push.
    fn push_held(&mut self, held_us: u64) {
        if held_us > self.held_us {
            self.metrics
                .source_held()
                .inc_by((held_us - self.held_us) as f64 / 1e6);
            self.held_us = held_us;
        }
    }

    fn source(&self, i: usize) -> &str {
        self.sources.get(i).map_or("unknown", |s| s.as_str())
    }

    /// Adds to the process's counters what this worker counted since the last push.
    fn push_worker(&mut self, worker: usize, stats: &WorkerStats, bars: &BarsStats) {
        for (k, n) in &stats.rows_out {
            let sent = self.rows_out.entry(*k).or_default();
            if *n > *sent {
                let res = operators::Resolution::from_ms(k.resolution_ms);
                self.metrics
                    .rows_out(k.sink, k.set.name(), res.label())
                    .inc_by(*n - *sent);
                *sent = *n;
            }
        }
        for (k, n) in &stats.rejects {
            let sent = self.rejects.get(k).copied().unwrap_or(0);
            if *n > sent {
                self.metrics
                    .rejects(self.source(k.0), k.1.as_str())
                    .inc_by(*n - sent);
                self.rejects.insert(*k, *n);
            }
        }
        self.metrics
            .state_records(worker)
            .set(bars.state_records as i64);
    }

    /// Adds the process's source counts (pushed by one worker) since the last push.
    fn push_records(&mut self, counts: impl Iterator<Item = (String, u64)>) {
        for (source, n) in counts {
            let sent = self.records.entry(source.clone()).or_default();
            if n > *sent {
                self.metrics.records_in(&source).inc_by(n - *sent);
                *sent = n;
            }
        }
    }
}

/// The job's watermark as a probe sees it.
enum Watermark {
    /// Before the first one: the sources still hold the least time.
    Before,
    /// Event time, epoch ms.
    At(i64),
    /// Every input is done.
    Done,
}

impl Watermark {
    fn of(probe: &ProbeHandle<i64>) -> Watermark {
        match probe.with_frontier(|f| f.first().copied()) {
            None => Watermark::Done,
            Some(i64::MIN) => Watermark::Before,
            Some(t) => Watermark::At(t),
        }
    }

    /// The time, once there is one and while inputs last.
    fn at(&self) -> Option<i64> {
        match self {
            Watermark::At(t) => Some(*t),
            _ => None,
        }
    }

    /// As written in the progress line.
    fn text(&self) -> String {
        match self {
            Watermark::Before => "none".into(),
            Watermark::Done => "done".into(),
            Watermark::At(t) => chrono::DateTime::from_timestamp_millis(*t)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_else(|| t.to_string()),
        }
    }
}

/// Which worker of a process pushes the process-wide counters: the first to claim.
#[derive(Clone, Debug, Default)]
pub struct ProcessLeader(Arc<AtomicBool>);

impl ProcessLeader {
    /// True for the first caller of the process only.
    pub fn claim(&self) -> bool {
        !self.0.swap(true, Ordering::SeqCst)
    }
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
    /// The process's metrics, when served.
    pub metrics: Option<MetricsPush>,
    /// The first worker of its process ([`ProcessLeader`]): it pushes the process's
    /// counters.
    pub leader: bool,
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
            metrics: None,
            leader: worker == 0,
        }
    }

    /// Pushes this worker's counters to the metrics (at most every 250 ms unless
    /// `force`); the leader also pushes the process's source counts, lag and watermark.
    fn push_metrics(
        &mut self,
        probe: &ProbeHandle<i64>,
        source: Option<&Arc<SourceProgress>>,
        force: bool,
    ) {
        let Some(push) = self.metrics.as_mut() else {
            return;
        };
        if !force && push.last.is_some_and(|t| t.elapsed() < METRICS_EVERY) {
            return;
        }
        push.last = Some(Instant::now());
        push.push_worker(self.worker, &self.stats.borrow(), &self.bars.borrow());
        if !self.leader {
            return;
        }
        push.metrics.set_watermark(Watermark::of(probe).at());
        if let Some(src) = source {
            let done = src.rows_done.load(Ordering::Relaxed);
            let total = src.rows_total.load(Ordering::Relaxed);
            push.metrics
                .lag("input")
                .set(total.saturating_sub(done) as i64);
            let name = push.source(0).to_string();
            push.push_records(std::iter::once((name, src.records.load(Ordering::Relaxed))));
            push.push_held(src.held_us.load(Ordering::Relaxed));
        }
        if let Some(live) = &self.live {
            for (p, l) in live.lag.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                push.metrics.lag(p).set((l.high - l.next).max(0));
            }
            let counts: Vec<(String, u64)> = live
                .by_source
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
                .collect();
            push.push_records(counts.into_iter());
            push.push_held(live.held_us.load(Ordering::Relaxed));
        }
    }

    /// Logs a progress line if the interval has passed; updates the bar.
    pub fn tick(
        &mut self,
        probe: &ProbeHandle<i64>,
        source: Option<&Arc<SourceProgress>>,
        force: bool,
    ) {
        self.push_metrics(probe, source, force);
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
        let watermark = Watermark::of(probe).text();
        let rejects: u64 = stats.rejects.values().sum();
        let rows_out = stats.rows_by_set();
        let rejects_by_reason = stats.rejects_by_reason();
        if let Some(live) = &self.live {
            let lag: Vec<String> = live
                .lag
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(p, l)| format!("{p}={}", (l.high - l.next).max(0)))
                .collect();
            let latency = live.latency.summary(None);
            // Tenths of a millisecond; fields without a value are left out of the line.
            let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
            let lag = (!lag.is_empty()).then(|| lag.join(","));
            tracing::info!(
                worker = self.worker,
                records_in = bars.records_in,
                rate = format!("{rate:.0}/s"),
                watermark = %watermark,
                read = live.records.load(Ordering::Relaxed),
                source_rejects = live.rejects.load(Ordering::Relaxed),
                skipped = live.skipped.load(Ordering::Relaxed),
                held_s = held_s(&live.held_us),
                lag = lag.as_deref(),
                latency_p50_ms = latency.map(|l| ms(l.p50)),
                latency_p99_ms = latency.map(|l| ms(l.p99)),
                latency_samples = latency.map(|l| l.samples),
                rows_out = (!rows_out.is_empty()).then(|| tracing::field::debug(&rows_out)),
                rejects,
                rejects_by_reason = (!rejects_by_reason.is_empty())
                    .then(|| tracing::field::debug(&rejects_by_reason)),
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
            held_s = source.map(|s| held_s(&s.held_us)),
            rows_out = (!rows_out.is_empty()).then(|| tracing::field::debug(&rows_out)),
            rejects,
            rejects_by_reason = (!rejects_by_reason.is_empty())
                .then(|| tracing::field::debug(&rejects_by_reason)),
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

/// Seconds the sources of a process held off for the sinks, to a tenth.
fn held_s(held_us: &std::sync::atomic::AtomicU64) -> f64 {
    (held_us.load(Ordering::Relaxed) as f64 / 1e5).round() / 10.0
}
