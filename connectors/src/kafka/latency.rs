//! Delay from the job's watermark passing a window's end to the window's rows being
//! acknowledged on their feature topic: the watermark's history and the samples.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Watermark history (when the job's watermark first reached each value) and latency
/// samples of acknowledged rows. Shared by the workers of a process.
///
/// ```
/// use std::time::{Duration, Instant};
/// use connectors::kafka::WatermarkLatency;
/// let l = WatermarkLatency::default();
/// let (a, b) = (l.register_source(), l.register_source());
/// let t0 = Instant::now();
/// l.source_watermark(a, 1_000, t0);
/// l.source_watermark(b, 1_500, t0);
/// l.source_watermark(a, 5_000, t0 + Duration::from_millis(2));
/// l.source_watermark(b, 6_000, t0 + Duration::from_millis(10)); // the job passes 5 s
/// // A window ending at 2 s was passed at t0 + 10 ms; its row acked 3 ms later.
/// l.record("bars", 2_000, t0 + Duration::from_millis(13));
/// let s = l.summary(None).unwrap();
/// assert_eq!((s.samples, s.p50), (1, Duration::from_millis(3)));
/// assert_eq!(l.sets(), ["bars"]);
/// ```
#[derive(Debug, Default)]
pub struct WatermarkLatency {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The current watermark of every source operator of the process.
    sources: Vec<Option<i64>>,
    marks: VecDeque<(i64, Instant)>,
    /// Delays in µs, per feature set.
    samples_us: std::collections::BTreeMap<&'static str, Vec<u64>>,
}

/// Percentiles of the recorded delays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencySummary {
    /// Rows measured.
    pub samples: usize,
    /// Median delay.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest delay.
    pub max: Duration,
}

/// Watermark marks kept (older ones are forgotten).
const MAX_MARKS: usize = 100_000;
/// Samples kept; later ones replace earlier ones round-robin.
const MAX_SAMPLES: usize = 1_000_000;

impl WatermarkLatency {
    /// A new source operator; its watermark holds the job's back from now on.
    pub fn register_source(&self) -> usize {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.sources.push(None);
        g.sources.len() - 1
    }

    /// Notes that source `slot` moved its watermark to `wm` at `at`: the job's watermark
    /// (the least over the process's sources) passes new values at that moment.
    pub fn source_watermark(&self, slot: usize, wm: i64, at: Instant) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = g.sources.get_mut(slot) {
            *s = Some(wm);
        }
        let Some(Some(wm)) = g.sources.iter().copied().min() else {
            return;
        };
        if g.marks.back().is_none_or(|(w, _)| wm > *w) {
            g.marks.push_back((wm, at));
            if g.marks.len() > MAX_MARKS {
                g.marks.pop_front();
            }
        }
    }

    /// Records a row of `set` whose window ends at `end`, acknowledged at `acked`. Rows
    /// whose window end was not seen being passed (before the job started) are not
    /// measured.
    pub fn record(&self, set: &'static str, end: i64, acked: Instant) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let i = g.marks.partition_point(|(w, _)| *w < end);
        if i == 0 || i == g.marks.len() {
            return;
        }
        let us = acked.saturating_duration_since(g.marks[i].1).as_micros() as u64;
        let samples = g.samples_us.entry(set).or_default();
        if samples.len() < MAX_SAMPLES {
            samples.push(us);
        } else {
            let k = (us as usize) % MAX_SAMPLES;
            samples[k] = us;
        }
    }

    /// The feature sets measured so far.
    pub fn sets(&self) -> Vec<&'static str> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.samples_us.keys().copied().collect()
    }

    /// Percentiles over every sample so far of one set (or of all), if any.
    pub fn summary(&self, set: Option<&str>) -> Option<LatencySummary> {
        let mut s: Vec<u64> = {
            let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            g.samples_us
                .iter()
                .filter(|(k, _)| set.is_none_or(|s| s == **k))
                .flat_map(|(_, v)| v.iter().copied())
                .collect()
        };
        if s.is_empty() {
            return None;
        }
        s.sort_unstable();
        let at = |q: f64| {
            let i = ((s.len() as f64 * q).ceil() as usize).clamp(1, s.len()) - 1;
            Duration::from_micros(s[i])
        };
        Some(LatencySummary {
            samples: s.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: Duration::from_micros(*s.last().unwrap_or(&0)),
        })
    }
}
