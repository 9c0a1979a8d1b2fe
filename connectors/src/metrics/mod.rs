//! Prometheus metrics of a job (`run` or `backfill`): the metric families, their
//! low-cardinality labels (source, reason, topic partition, sink, set, resolution,
//! worker; never a symbol), the watermark-to-sink delay history, the `[metrics]` config
//! and the HTTP endpoint that serves them in the text format.

mod config;
mod delay;
mod server;

use operators::RejectReason;
use prometheus::{
    Counter, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

pub use config::{JobKind, MetricsConfig};
pub use delay::{LatencySummary, WatermarkLatency};
pub use server::MetricsServer;

/// Upper bounds (seconds) of the watermark-to-sink delay histogram.
const DELAY_BUCKETS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// Upper bounds (seconds) of the checkpoint duration histogram.
const CHECKPOINT_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// The metric families of one process, registered once; handles are cheap to clone and
/// safe to update from every worker thread.
///
/// ```
/// use connectors::metrics::Metrics;
/// let m = Metrics::new("backfill", &["trades"]);
/// m.records_in("trades").inc_by(3);
/// m.rows_out("parquet", "bars", "1m").inc_by(2);
/// m.sink_delay("parquet", "bars").observe(0.002);
/// m.lag("input").set(0);
/// m.state_records(0).set(12);
/// let text = m.encode();
/// assert!(text.contains("marketflow_records_in_total{source=\"trades\"} 3"));
/// assert!(text.contains("marketflow_sink_delay_seconds_count{set=\"bars\",sink=\"parquet\"} 1"));
/// assert!(m.families().iter().all(|f| text.contains(f.as_str())));
/// ```
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    records_in: IntCounterVec,
    rejects: IntCounterVec,
    watermark: Gauge,
    watermark_delay: Gauge,
    lag: IntGaugeVec,
    rows_out: IntCounterVec,
    sink_delay: HistogramVec,
    checkpoint_seconds: Histogram,
    checkpoint_bytes: IntCounter,
    state_records: IntGaugeVec,
    source_held: Counter,
    /// The name of every family, as registered.
    families: Vec<String>,
}

impl Metrics {
    /// The families of a `command` (`run` or `backfill`) whose sources are `sources`:
    /// the counters of each source and reject reason start at 0; the per-partition,
    /// per-worker and per-set series appear when first set.
    pub fn new(command: &str, sources: &[&str]) -> Metrics {
        let registry = Registry::new();
        let info = IntGaugeVec::new(
            Opts::new("marketflow_info", "The job: version and command (always 1)"),
            &["version", "command"],
        )
        .expect("valid metric");
        info.with_label_values(&[env!("CARGO_PKG_VERSION"), command])
            .set(1);
        let mut m = Metrics {
            records_in: IntCounterVec::new(
                Opts::new(
                    "marketflow_records_in_total",
                    "Records accepted by the sources (trades and candles)",
                ),
                &["source"],
            )
            .expect("valid metric"),
            rejects: IntCounterVec::new(
                Opts::new(
                    "marketflow_rejects_total",
                    "Records sent to the dead letters, by source and reason",
                ),
                &["source", "reason"],
            )
            .expect("valid metric"),
            watermark: Gauge::new(
                "marketflow_watermark_seconds",
                "The job's event-time watermark, epoch seconds (NaN before the first)",
            )
            .expect("valid metric"),
            watermark_delay: Gauge::new(
                "marketflow_watermark_delay_seconds",
                "Wall clock minus the watermark, seconds (NaN before the first)",
            )
            .expect("valid metric"),
            lag: IntGaugeVec::new(
                Opts::new(
                    "marketflow_partition_lag_records",
                    "Records not read yet: per topic partition (run), of the input files (backfill)",
                ),
                &["partition"],
            )
            .expect("valid metric"),
            rows_out: IntCounterVec::new(
                Opts::new(
                    "marketflow_rows_out_total",
                    "Feature rows written, by sink (kafka, parquet; charts: charts drawn), set and resolution",
                ),
                &["sink", "set", "resolution"],
            )
            .expect("valid metric"),
            sink_delay: HistogramVec::new(
                HistogramOpts::new(
                    "marketflow_sink_delay_seconds",
                    "From the watermark passing a row's window end to the row acknowledged on \
                     its topic (kafka) or reaching the lake writer (parquet)",
                )
                .buckets(DELAY_BUCKETS.to_vec()),
                &["sink", "set"],
            )
            .expect("valid metric"),
            checkpoint_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "marketflow_checkpoint_duration_seconds",
                    "Time to write one operator's checkpoint state",
                )
                .buckets(CHECKPOINT_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            checkpoint_bytes: IntCounter::new(
                "marketflow_checkpoint_bytes_total",
                "Bytes of checkpoint state written",
            )
            .expect("valid metric"),
            state_records: IntGaugeVec::new(
                Opts::new(
                    "marketflow_state_records",
                    "Records held in open windows and dedup memory, per worker",
                ),
                &["worker"],
            )
            .expect("valid metric"),
            source_held: Counter::new(
                "marketflow_source_held_seconds_total",
                "Seconds the sources held off reading because the graph or the sinks were \
                 behind (back-pressure), summed over workers",
            )
            .expect("valid metric"),
            registry,
            families: Vec::new(),
        };
        m.watermark.set(f64::NAN);
        m.watermark_delay.set(f64::NAN);

        let collectors: [Box<dyn prometheus::core::Collector>; 12] = [
            Box::new(info),
            Box::new(m.records_in.clone()),
            Box::new(m.rejects.clone()),
            Box::new(m.watermark.clone()),
            Box::new(m.watermark_delay.clone()),
            Box::new(m.lag.clone()),
            Box::new(m.rows_out.clone()),
            Box::new(m.sink_delay.clone()),
            Box::new(m.checkpoint_seconds.clone()),
            Box::new(m.checkpoint_bytes.clone()),
            Box::new(m.state_records.clone()),
            Box::new(m.source_held.clone()),
        ];
        for c in collectors {
            m.families
                .extend(c.desc().iter().map(|d| d.fq_name.clone()));
            m.registry.register(c).expect("each family registered once");
        }
        for s in sources {
            m.records_in(s);
            for r in RejectReason::ALL {
                m.rejects(s, r.as_str());
            }
        }
        m
    }

    /// Every family served (a histogram also as `_bucket`, `_sum` and `_count`).
    pub fn families(&self) -> &[String] {
        &self.families
    }

    /// Records accepted by `source`.
    pub fn records_in(&self, source: &str) -> IntCounter {
        self.records_in.with_label_values(&[source])
    }

    /// Records of `source` rejected for `reason`.
    pub fn rejects(&self, source: &str, reason: &str) -> IntCounter {
        self.rejects.with_label_values(&[source, reason])
    }

    /// Sets the watermark (epoch ms; `None` before the first one) and its delay behind
    /// the wall clock.
    pub fn set_watermark(&self, watermark_ms: Option<i64>) {
        let Some(ms) = watermark_ms else { return };
        self.watermark.set(ms as f64 / 1e3);
        let now = chrono::Utc::now().timestamp_millis();
        self.watermark_delay.set((now - ms) as f64 / 1e3);
    }

    /// Records not read yet of `partition` (`topic/partition`, or `input` for files).
    pub fn lag(&self, partition: &str) -> IntGauge {
        self.lag.with_label_values(&[partition])
    }

    /// Rows written by `sink` of `set` at `resolution` (e.g. `1m`).
    pub fn rows_out(&self, sink: &str, set: &str, resolution: &str) -> IntCounter {
        self.rows_out.with_label_values(&[sink, set, resolution])
    }

    /// The watermark-to-sink delay of rows of `set` written by `sink`, in seconds.
    pub fn sink_delay(&self, sink: &str, set: &str) -> Histogram {
        self.sink_delay.with_label_values(&[sink, set])
    }

    /// One operator's checkpoint state written: `bytes` in `seconds`.
    pub fn checkpoint(&self, bytes: u64, seconds: f64) {
        self.checkpoint_bytes.inc_by(bytes);
        self.checkpoint_seconds.observe(seconds);
    }

    /// Records held in state by `worker`.
    pub fn state_records(&self, worker: usize) -> IntGauge {
        self.state_records.with_label_values(&[&worker.to_string()])
    }

    /// Seconds the sources held off for the sinks (back-pressure).
    pub fn source_held(&self) -> Counter {
        self.source_held.clone()
    }

    /// Every family in the Prometheus text format.
    pub fn encode(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }
}
