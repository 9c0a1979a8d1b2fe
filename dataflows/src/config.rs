//! The graph's sections of the configuration: `[features]`, `[time]`, `[checkpoint]`
//! and `[progress]`, with their defaults, their checks (each problem with its key) and
//! the step that turns `[features]` into the graph's [`FeatureConfig`].

use operators::book::BookConfig;
use operators::comoments::CoMomentConfig;
use operators::comoments::CorrelationLayout;
use operators::duration::DurationMs;
use operators::indicators::IndicatorConfig;
use operators::risk::RiskConfig;
use operators::{BarsConfig, FeatureSet, Resolution};
use serde::Deserialize;

use crate::graph::FeatureConfig;

/// A configuration problem: the dotted key and what is wrong with it.
pub type Problem = (String, String);

/// `[features]`: which features to compute, and over which windows.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct FeaturesConfig {
    /// Bar sizes (`1s`, `1m`, `5m`); each must be a whole multiple of the smallest.
    #[serde(default = "default_resolutions")]
    pub resolutions: Vec<String>,
    /// W, in bars of each resolution (at least 2).
    #[serde(default = "default_rolling_window")]
    pub rolling_window: i64,
    /// Benchmark symbol for beta.
    #[serde(default = "default_benchmark")]
    pub benchmark: String,
    /// Compute the correlation matrix.
    #[serde(default = "yes")]
    pub correlation: bool,
    /// One record per pair (`pairs`, the default) or one matrix per window end
    /// (`matrix`).
    #[serde(default)]
    pub correlation_layout: CorrelationLayout,
    /// Compute rolling beta against the benchmark.
    #[serde(default = "yes")]
    pub beta: bool,
    /// Compute indicators and alerts.
    #[serde(default = "yes")]
    pub indicators: bool,
    /// Compute risk and trend measures.
    #[serde(default = "yes")]
    pub risk: bool,
    /// Compute the order-book sets `book` and `quotes` from book records.
    #[serde(default = "yes")]
    pub book: bool,
    /// |zscore| above this raises an alert.
    #[serde(default = "default_zscore_alert")]
    pub zscore_alert: f64,
}

fn default_resolutions() -> Vec<String> {
    vec!["1s".into(), "1m".into(), "5m".into()]
}

fn default_rolling_window() -> i64 {
    60
}

fn default_benchmark() -> String {
    "BTCUSDT".into()
}

fn yes() -> bool {
    true
}

fn default_zscore_alert() -> f64 {
    3.0
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        FeaturesConfig {
            resolutions: default_resolutions(),
            rolling_window: default_rolling_window(),
            benchmark: default_benchmark(),
            correlation: true,
            correlation_layout: CorrelationLayout::default(),
            beta: true,
            indicators: true,
            risk: true,
            book: true,
            zscore_alert: default_zscore_alert(),
        }
    }
}

impl FeaturesConfig {
    /// The parsed resolutions, ascending and deduplicated, or every problem with them.
    pub fn resolutions(&self) -> Result<Vec<Resolution>, Vec<Problem>> {
        let key = || "features.resolutions".to_string();
        let mut problems = Vec::new();
        let mut parsed = Vec::new();
        for r in &self.resolutions {
            match Resolution::parse(r) {
                Ok(r) => parsed.push(r),
                Err(e) => problems.push((key(), e.to_string())),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        operators::resolution::validate(&parsed).map_err(|e| vec![(key(), e.to_string())])
    }

    /// Every problem of the section, resolutions included.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = self.resolutions().err().unwrap_or_default();
        if self.rolling_window < 2 {
            problems.push((
                "features.rolling_window".into(),
                format!("must be at least 2, got {}", self.rolling_window),
            ));
        }
        if !(self.zscore_alert > 0.0 && self.zscore_alert.is_finite()) {
            problems.push((
                "features.zscore_alert".into(),
                format!("must be a positive number, got {}", self.zscore_alert),
            ));
        }
        if self.benchmark.trim().is_empty() {
            problems.push(("features.benchmark".into(), "must name a symbol".into()));
        }
        problems
    }

    /// The graph's feature settings, computing bars with `bars`.
    pub fn build(&self, bars: BarsConfig) -> FeatureConfig {
        let window = self.rolling_window.max(2) as usize;
        let lateness_ms = bars.lateness_ms;
        let book = self.book.then(|| BookConfig {
            resolutions: bars.resolutions.iter().map(|r| r.ms).collect(),
        });
        FeatureConfig {
            book,
            bars,
            indicators: self.indicators.then_some(IndicatorConfig {
                window,
                zscore_alert: self.zscore_alert,
                lateness_ms,
            }),
            comoments: CoMomentConfig {
                window,
                benchmark: self.benchmark.clone(),
                correlation: self.correlation,
                lateness_ms,
            },
            correlation_layout: self.correlation_layout,
            beta: self.beta,
            risk: self.risk.then_some(RiskConfig {
                window,
                lateness_ms,
            }),
            checkpoint: None,
        }
    }

    /// The names of the feature sets a run with these settings writes.
    pub fn enabled_sets(&self) -> Vec<String> {
        FeatureSet::ALL
            .into_iter()
            .filter(|s| match s {
                FeatureSet::Bars => true,
                FeatureSet::Beta => self.beta,
                FeatureSet::Indicators | FeatureSet::Alerts => self.indicators,
                FeatureSet::Correlation => self.correlation,
                FeatureSet::Risk => self.risk,
                FeatureSet::Book | FeatureSet::Quotes => self.book,
            })
            .map(|s| s.name().to_string())
            .collect()
    }
}

/// `[time]`: event-time settings of the live job.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct TimeConfig {
    /// Watermark = min over live partitions of max event time minus this.
    #[serde(default = "default_out_of_orderness")]
    pub max_out_of_orderness: DurationMs,
    /// Later events restate closed windows on Kafka, up to this.
    #[serde(default = "zero")]
    pub allowed_lateness: DurationMs,
    /// A silent partition stops holding the watermark back after this.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: DurationMs,
}

fn default_out_of_orderness() -> DurationMs {
    DurationMs::from_ms(2_000)
}

fn zero() -> DurationMs {
    DurationMs::from_ms(0)
}

fn default_idle_timeout() -> DurationMs {
    DurationMs::from_ms(10_000)
}

impl Default for TimeConfig {
    fn default() -> Self {
        TimeConfig {
            max_out_of_orderness: default_out_of_orderness(),
            allowed_lateness: zero(),
            idle_timeout: default_idle_timeout(),
        }
    }
}

/// `[checkpoint]` (live only): durable cuts of input offsets and operator state under
/// `<output>/_checkpoints/`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CheckpointConfig {
    /// Event time between cuts; a whole number of hours (a cut is where a Parquet
    /// partition ends). A restart replays at most about this much input.
    #[serde(default = "default_checkpoint_interval")]
    pub interval: DurationMs,
    /// Complete cuts kept; older ones are pruned.
    #[serde(default = "default_keep")]
    pub keep: i64,
}

fn default_checkpoint_interval() -> DurationMs {
    DurationMs::from_ms(3_600_000)
}

fn default_keep() -> i64 {
    3
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            interval: default_checkpoint_interval(),
            keep: default_keep(),
        }
    }
}

impl CheckpointConfig {
    /// Every problem of the section.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let ms = self.interval.as_ms();
        if ms <= 0 || ms % 3_600_000 != 0 {
            problems.push((
                "checkpoint.interval".into(),
                format!(
                    "must be a whole number of hours (cuts fall where Parquet partitions end), got `{}`",
                    self.interval
                ),
            ));
        }
        if self.keep < 1 {
            problems.push((
                "checkpoint.keep".into(),
                format!("must be at least 1, got {}", self.keep),
            ));
        }
        problems
    }

    /// Complete cuts kept (at least 1).
    pub fn keep(&self) -> usize {
        self.keep.max(1) as usize
    }
}

/// `[progress]`: progress reporting.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ProgressConfig {
    /// How often each worker logs a progress line.
    #[serde(default = "default_progress_interval")]
    pub interval: DurationMs,
}

fn default_progress_interval() -> DurationMs {
    DurationMs::from_ms(5_000)
}

impl Default for ProgressConfig {
    fn default() -> Self {
        ProgressConfig {
            interval: default_progress_interval(),
        }
    }
}

impl ProgressConfig {
    /// Every problem of the section.
    pub fn check(&self) -> Vec<Problem> {
        if self.interval.as_ms() == 0 {
            return vec![("progress.interval".into(), "must be positive".into())];
        }
        Vec::new()
    }

    /// The interval between progress lines (at least 1 ms).
    pub fn build(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.interval.as_ms().max(1) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_report_every_problem_with_its_key() {
        let f: FeaturesConfig = toml::from_str(
            "resolutions = [\"1m\", \"7x\"]\nrolling_window = 1\nzscore_alert = -1.0\nbenchmark = \" \"",
        )
        .unwrap();
        let keys: Vec<String> = f.check().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "features.resolutions",
                "features.rolling_window",
                "features.zscore_alert",
                "features.benchmark"
            ]
        );
        let f = FeaturesConfig {
            resolutions: vec!["1m".into(), "90s".into()],
            ..FeaturesConfig::default()
        };
        assert!(f.check()[0].1.contains("multiple"), "{:?}", f.check());
    }

    #[test]
    fn features_build_the_graph_settings() {
        let f = FeaturesConfig {
            risk: false,
            correlation: false,
            ..FeaturesConfig::default()
        };
        let res = f.resolutions().unwrap();
        assert_eq!(res.len(), 3);
        let built = f.build(BarsConfig::new(&res).unwrap());
        assert!(built.risk.is_none() && built.indicators.is_some());
        assert_eq!(built.comoments.window, 60);
        let sets = f.enabled_sets();
        assert!(sets.contains(&"beta".to_string()) && !sets.contains(&"risk".to_string()));
    }

    #[test]
    fn durations_are_typed_and_checked() {
        let t: TimeConfig = toml::from_str("idle_timeout = \"1.5s\"").unwrap();
        assert_eq!(t.idle_timeout.as_ms(), 1_500);
        assert_eq!(t.max_out_of_orderness.as_ms(), 2_000);
        assert!(toml::from_str::<TimeConfig>("idle_timeout = \"10\"").is_err());
        let c: CheckpointConfig = toml::from_str("interval = \"90m\"\nkeep = 0").unwrap();
        assert_eq!(c.check().len(), 2);
        assert!(c.check()[0].1.contains("`90m`"));
        assert!(CheckpointConfig::default().check().is_empty());
        let p: ProgressConfig = toml::from_str("interval = \"0s\"").unwrap();
        assert_eq!(p.check()[0].0, "progress.interval");
    }
}
