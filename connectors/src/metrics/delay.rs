//! Delay from the job's watermark passing a window's end to the window's rows reaching
//! a sink (acknowledged on their feature topic, or handed to the Parquet writer): the
//! watermark's history, percentiles for the progress line, and the exported histogram.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::Metrics;

/// Watermark history (when the job's watermark first reached each value) and latency
/// samples of acknowledged rows. Shared by the workers of a process.
///
/// ```
/// use std::time::{Duration, Instant};
/// use connectors::metrics::WatermarkLatency;
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
    /// The process's metrics, once served: every row's delay is also observed there.
    export: OnceLock<Arc<Metrics>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The current watermark of every source operator of the process.
    sources: Vec<Option<i64>>,
    marks: VecDeque<(i64, Instant)>,
    /// Delays per feature set.
    delays: std::collections::BTreeMap<&'static str, Histogram>,
}

impl Inner {
    /// The delay at `at` of a row whose end is passed by mark `i` (see
    /// [`WatermarkLatency::record_rows`]).
    fn delay_at(marks: &VecDeque<(i64, Instant)>, i: usize, at: Instant) -> Duration {
        marks.get(i).map_or(Duration::ZERO, |(_, passed)| {
            at.saturating_duration_since(*passed)
        })
    }
}

/// Counts of delays in µs: exact below 1024 µs, then 512 buckets per power of two
/// (within 0.2%), so a summary costs the same however many rows were measured.
#[derive(Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
}

/// Mantissa bits of a bucket above the exact range.
const SUB_BITS: u32 = 9;
/// Values below this are counted exactly.
const EXACT: u64 = 2 << SUB_BITS;

impl Histogram {
    fn bucket(us: u64) -> usize {
        if us < EXACT {
            return us as usize;
        }
        let e = 63 - us.leading_zeros() - SUB_BITS;
        let half = 1 << SUB_BITS;
        EXACT as usize + (e as usize - 1) * half + ((us >> e) as usize - half)
    }

    /// The smallest delay of bucket `b`.
    fn lower(b: usize) -> u64 {
        if b < EXACT as usize {
            return b as u64;
        }
        let half = 1usize << SUB_BITS;
        let e = (b - EXACT as usize) / half + 1;
        (((b - EXACT as usize) % half + half) as u64) << e
    }

    fn add(&mut self, us: u64) {
        let b = Self::bucket(us);
        if self.counts.len() <= b {
            self.counts.resize(b + 1, 0);
        }
        self.counts[b] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }
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

    /// Also observes every row's delay into `metrics` (histogram
    /// `marketflow_sink_delay_seconds`).
    pub fn export_to(&self, metrics: Arc<Metrics>) {
        let _ = self.export.set(metrics);
    }

    /// Records a row of `set` whose window ends at `end`, acknowledged on its topic at
    /// `acked`. The percentiles leave out rows whose window end was not seen being
    /// passed (before the job started, or not yet noted); the exported histogram counts
    /// every row (see [`WatermarkLatency::record_rows`]).
    pub fn record(&self, set: &'static str, end: i64, acked: Instant) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let i = g.marks.partition_point(|(w, _)| *w < end);
        if let Some(m) = self.export.get() {
            let d = Inner::delay_at(&g.marks, i, acked);
            m.sink_delay("kafka", set).observe(d.as_secs_f64());
        }
        if i == 0 || i == g.marks.len() {
            return;
        }
        let us = acked.saturating_duration_since(g.marks[i].1).as_micros() as u64;
        g.delays.entry(set).or_default().add(us);
    }

    /// Observes rows of `set` reaching `sink` at `at`, one window end each, into the
    /// exported histogram (nothing when metrics are off). A row whose end was passed
    /// before the watermark history starts is timed from its first mark; one whose end
    /// is not noted as passed yet counts as no delay.
    pub fn record_rows(
        &self,
        sink: &'static str,
        set: &'static str,
        ends: impl Iterator<Item = i64>,
        at: Instant,
    ) {
        let Some(m) = self.export.get() else { return };
        let hist = m.sink_delay(sink, set).local();
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut last: Option<(i64, f64)> = None;
        for end in ends {
            let secs = match last {
                Some((e, s)) if e == end => s,
                _ => {
                    let i = g.marks.partition_point(|(w, _)| *w < end);
                    Inner::delay_at(&g.marks, i, at).as_secs_f64()
                }
            };
            last = Some((end, secs));
            hist.observe(secs);
        }
        drop(g);
        hist.flush();
    }

    /// The feature sets measured so far.
    pub fn sets(&self) -> Vec<&'static str> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.delays.keys().copied().collect()
    }

    /// Percentiles over every delay so far of one set (or of all), if any (within 0.2%
    /// above 1 ms; the largest is exact).
    pub fn summary(&self, set: Option<&str>) -> Option<LatencySummary> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let hs: Vec<&Histogram> = g
            .delays
            .iter()
            .filter(|(k, _)| set.is_none_or(|s| s == **k))
            .map(|(_, h)| h)
            .collect();
        let total: u64 = hs.iter().map(|h| h.total).sum();
        if total == 0 {
            return None;
        }
        let buckets = hs.iter().map(|h| h.counts.len()).max().unwrap_or(0);
        let count = |b: usize| -> u64 { hs.iter().filter_map(|h| h.counts.get(b)).sum() };
        let ranks = [0.5, 0.99].map(|q| ((total as f64 * q).ceil() as u64).clamp(1, total));
        let mut found = [0u64; 2];
        let mut seen = 0u64;
        let mut next = 0;
        for b in 0..buckets {
            seen += count(b);
            while next < ranks.len() && seen >= ranks[next] {
                found[next] = Histogram::lower(b);
                next += 1;
            }
            if next == ranks.len() {
                break;
            }
        }
        Some(LatencySummary {
            samples: total as usize,
            p50: Duration::from_micros(found[0]),
            p99: Duration::from_micros(found[1]),
            max: Duration::from_micros(hs.iter().map(|h| h.max_us).max().unwrap_or(0)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Buckets are exact below 1024 µs, contiguous, and within 0.2% above.
    #[test]
    fn histogram_buckets_cover_every_value_in_order() {
        let mut last = 0;
        for us in (0..5_000u64).chain([1 << 20, (1 << 20) + 4095, u64::MAX >> 1]) {
            let b = Histogram::bucket(us);
            let lo = Histogram::lower(b);
            assert!(
                lo <= us && (us - lo) as f64 <= us as f64 * 0.002,
                "{us}: {lo}"
            );
            assert!(b >= last);
            if us < 5_000 {
                assert!(b <= last + 1);
                last = b;
            }
        }
        assert_eq!(Histogram::bucket(1023), 1023);
        assert_eq!(Histogram::lower(Histogram::bucket(3_000)), 3_000);
    }

    /// Percentiles agree with sorting the samples (to the bucket).
    #[test]
    fn summary_percentiles_match_a_sort() {
        let l = WatermarkLatency::default();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut all = Vec::new();
        let t0 = Instant::now();
        let slot = l.register_source();
        l.source_watermark(slot, 0, t0);
        l.source_watermark(slot, 1_000_000, t0);
        for _ in 0..10_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let us = rng % 200_000;
            all.push(us);
            l.record("bars", 1, t0 + Duration::from_micros(us));
        }
        all.sort_unstable();
        let s = l.summary(Some("bars")).unwrap();
        let at = |q: f64| all[((all.len() as f64 * q).ceil() as usize) - 1];
        for (got, want) in [(s.p50, at(0.5)), (s.p99, at(0.99))] {
            let got = got.as_micros() as u64;
            assert!(
                got <= want && want - got <= want / 500 + 1,
                "{got} vs {want}"
            );
        }
        assert_eq!(s.max, Duration::from_micros(*all.last().unwrap()));
        assert_eq!(s.samples, 10_000);
        assert!(l.summary(Some("correlation")).is_none());
    }
}
