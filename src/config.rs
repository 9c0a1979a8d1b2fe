//! The TOML configuration (README "Configuration"): structs with defaults, `MARKETFLOW__SECTION__KEY`
//! environment overrides, unknown-key detection and validation that reports every
//! problem at once, each with its key.

use std::collections::BTreeMap;
use std::path::Path;

use operators::resolution::parse_duration_ms;
use operators::Resolution;
use serde::Deserialize;

/// The embedded default configuration (used when `--config` is not given).
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Kafka connection.
    pub kafka: KafkaConfig,
    /// Input sources (live topics; the first one's kind and format also apply to backfills).
    pub sources: Vec<SourceConfig>,
    /// Event-time settings.
    pub time: TimeConfig,
    /// Which features to compute.
    pub features: FeaturesConfig,
    /// Output sinks.
    pub sinks: SinksConfig,
    /// Progress reporting.
    pub progress: ProgressConfig,
    /// `[checkpoint]` (live only)
    pub checkpoint: CheckpointConfig,
}

/// `[kafka]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `host:port,...`, or `embedded` for the in-process broker fed with the bundled sample.
    pub brokers: String,
    /// librdkafka properties passed through unchanged (never logged).
    pub client: BTreeMap<String, String>,
}

/// `[[sources]]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// Source name (dead-letter topic is `dlq.<name>`).
    pub name: String,
    /// `trades` or `candles`.
    pub kind: String,
    /// Kafka topic of the live job.
    pub topic: String,
    /// `auto`, `canonical` or `binance`.
    pub format: String,
    /// Prefix added to every symbol of this source.
    pub symbol_prefix: String,
}

/// `[time]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeConfig {
    /// Watermark = min over live partitions of max event time minus this.
    pub max_out_of_orderness: String,
    /// Later events restate closed windows on Kafka, up to this.
    pub allowed_lateness: String,
    /// A silent partition stops holding the watermark back after this.
    pub idle_timeout: String,
}

/// `[features]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeaturesConfig {
    /// Bar sizes; each must be a whole multiple of the smallest.
    pub resolutions: Vec<String>,
    /// W, in bars of each resolution.
    pub rolling_window: i64,
    /// Benchmark symbol for beta.
    pub benchmark: String,
    /// Compute the correlation matrix.
    pub correlation: bool,
    /// Compute rolling beta against the benchmark.
    pub beta: bool,
    /// Compute indicators.
    pub indicators: bool,
    /// Compute risk and trend measures.
    pub risk: bool,
    /// |zscore| above this raises an alert.
    pub zscore_alert: f64,
}

/// `[sinks]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinksConfig {
    /// `[sinks.kafka]`
    pub kafka: KafkaSinkConfig,
    /// `[sinks.parquet]`
    pub parquet: ParquetSinkConfig,
}

/// `[sinks.kafka]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSinkConfig {
    /// Feature topics are `<topic_prefix><set>.<resolution>`.
    pub topic_prefix: String,
}

/// `[sinks.parquet]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParquetSinkConfig {
    /// Output root: a path or any object-store URL.
    pub output: String,
    /// Parquet compression (only `zstd` is supported).
    pub compression: String,
}

/// `[checkpoint]`: durable cuts of input offsets and operator state under
/// `<output>/_checkpoints/` (live only).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Event time between cuts; a whole number of hours (a cut is where a Parquet
    /// partition ends). A restart replays at most about this much input.
    pub interval: String,
    /// Complete cuts kept; older ones are pruned.
    pub keep: i64,
}

/// `[progress]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProgressConfig {
    /// How often each worker logs a progress line.
    pub interval: String,
}

// The one place where defaults live: the embedded default file mirrors these.
impl Default for Config {
    fn default() -> Self {
        Config {
            kafka: KafkaConfig::default(),
            sources: vec![SourceConfig::default()],
            time: TimeConfig::default(),
            features: FeaturesConfig::default(),
            sinks: SinksConfig::default(),
            progress: ProgressConfig::default(),
            checkpoint: CheckpointConfig::default(),
        }
    }
}
impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "embedded".into(),
            client: BTreeMap::new(),
        }
    }
}
impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            name: "trades".into(),
            kind: "trades".into(),
            topic: "raw.trades".into(),
            format: "auto".into(),
            symbol_prefix: String::new(),
        }
    }
}
impl Default for TimeConfig {
    fn default() -> Self {
        TimeConfig {
            max_out_of_orderness: "2s".into(),
            allowed_lateness: "0s".into(),
            idle_timeout: "10s".into(),
        }
    }
}
impl Default for FeaturesConfig {
    fn default() -> Self {
        FeaturesConfig {
            resolutions: vec!["1s".into(), "1m".into(), "5m".into()],
            rolling_window: 60,
            benchmark: "BTCUSDT".into(),
            correlation: true,
            beta: true,
            indicators: true,
            risk: true,
            zscore_alert: 3.0,
        }
    }
}
impl Default for KafkaSinkConfig {
    fn default() -> Self {
        KafkaSinkConfig {
            topic_prefix: "feature.".into(),
        }
    }
}
impl Default for ParquetSinkConfig {
    fn default() -> Self {
        ParquetSinkConfig {
            output: "file://./out".into(),
            compression: "zstd".into(),
        }
    }
}
impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            interval: "1h".into(),
            keep: 3,
        }
    }
}
impl Default for ProgressConfig {
    fn default() -> Self {
        ProgressConfig {
            interval: "5s".into(),
        }
    }
}

/// Configuration problems, each `origin: key: message`; exit code 2.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem{}):",
            self.0.len(),
            if self.0.len() == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Values derived from a validated config.
#[derive(Clone, Debug)]
pub struct Validated {
    /// The config as loaded.
    pub config: Config,
    /// Parsed resolutions, ascending.
    pub resolutions: Vec<Resolution>,
    /// Progress interval in ms.
    pub progress_ms: i64,
    /// Checkpoint interval in ms.
    pub checkpoint_ms: i64,
}

/// Loads `path` (or the embedded default), applies env overrides from `env`, and validates.
pub fn load(
    path: Option<&Path>,
    env: impl Iterator<Item = (String, String)>,
) -> Result<Validated, ConfigErrors> {
    let (origin, text) = match path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => (p.display().to_string(), t),
            Err(e) => {
                return Err(ConfigErrors(vec![format!(
                    "{}: cannot read: {e}",
                    p.display()
                )]))
            }
        },
        None => ("<embedded default>".to_string(), DEFAULT_TOML.to_string()),
    };
    let mut value: toml::Table = text
        .parse::<toml::Table>()
        .map_err(|e| ConfigErrors(vec![format!("{origin}: {}", e.to_string().trim())]))?;
    let mut errors = Vec::new();
    crate::config_keys::apply_env(&mut value, env, &mut errors);
    crate::config_keys::unknown_keys(&value, &origin, &mut errors);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let config: Config = Config::deserialize(toml::Value::Table(value))
        .map_err(|e| ConfigErrors(vec![format!("{origin}: {}", e.to_string().trim())]))?;
    validate(config, &origin)
}

fn validate(config: Config, origin: &str) -> Result<Validated, ConfigErrors> {
    let mut errors = Vec::new();
    let mut err = |key: &str, msg: String| errors.push(format!("{origin}: {key}: {msg}"));
    let mut resolutions = Vec::new();
    for r in &config.features.resolutions {
        match Resolution::parse(r) {
            Ok(r) => resolutions.push(r),
            Err(e) => err("features.resolutions", e.to_string()),
        }
    }
    let resolutions = match operators::resolution::validate(&resolutions) {
        Ok(r) => r,
        Err(e) => {
            if config.features.resolutions.len() == resolutions.len() {
                err("features.resolutions", e.to_string());
            }
            Vec::new()
        }
    };
    for (key, value) in [
        (
            "time.max_out_of_orderness",
            &config.time.max_out_of_orderness,
        ),
        ("time.allowed_lateness", &config.time.allowed_lateness),
        ("time.idle_timeout", &config.time.idle_timeout),
        ("progress.interval", &config.progress.interval),
    ] {
        if parse_duration_ms(value).is_none() {
            err(
                key,
                format!("`{value}` is not a duration (like 500ms, 2s, 1m)"),
            );
        }
    }
    match parse_duration_ms(&config.checkpoint.interval) {
        None => err(
            "checkpoint.interval",
            format!(
                "`{}` is not a duration (like 1h, 2h)",
                config.checkpoint.interval
            ),
        ),
        Some(ms) if ms <= 0 || ms % 3_600_000 != 0 => err(
            "checkpoint.interval",
            format!(
                "must be a whole number of hours (cuts fall where Parquet partitions end), got `{}`",
                config.checkpoint.interval
            ),
        ),
        Some(_) => {}
    }
    if config.checkpoint.keep < 1 {
        err(
            "checkpoint.keep",
            format!("must be at least 1, got {}", config.checkpoint.keep),
        );
    }
    if parse_duration_ms(&config.progress.interval) == Some(0) {
        err("progress.interval", "must be positive".into());
    }
    if config.features.rolling_window < 2 {
        err(
            "features.rolling_window",
            format!("must be at least 2, got {}", config.features.rolling_window),
        );
    }
    if !(config.features.zscore_alert > 0.0 && config.features.zscore_alert.is_finite()) {
        err(
            "features.zscore_alert",
            format!(
                "must be a positive number, got {}",
                config.features.zscore_alert
            ),
        );
    }
    if config.features.benchmark.trim().is_empty() {
        err("features.benchmark", "must name a symbol".into());
    }
    if config.kafka.brokers.trim().is_empty() {
        err(
            "kafka.brokers",
            "must be `embedded` or host:port[,host:port...]".into(),
        );
    }
    if config.sources.is_empty() {
        err(
            "sources",
            "at least one [[sources]] entry is required".into(),
        );
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, s) in config.sources.iter().enumerate() {
        if !["trades", "candles"].contains(&s.kind.as_str()) {
            err(
                &format!("sources[{i}].kind"),
                format!("`{}` is not one of trades, candles", s.kind),
            );
        }
        if !["auto", "canonical", "binance"].contains(&s.format.as_str()) {
            err(
                &format!("sources[{i}].format"),
                format!("`{}` is not one of auto, canonical, binance", s.format),
            );
        }
        if s.name.trim().is_empty() || !names.insert(s.name.clone()) {
            err(
                &format!("sources[{i}].name"),
                format!("`{}` must be non-empty and unique", s.name),
            );
        }
    }
    if config.sinks.parquet.compression != "zstd" {
        err(
            "sinks.parquet.compression",
            format!(
                "`{}` is not supported (use zstd)",
                config.sinks.parquet.compression
            ),
        );
    }
    if let Err(e) = connectors::store::Location::parse(&config.sinks.parquet.output) {
        err("sinks.parquet.output", e.to_string());
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let progress_ms = parse_duration_ms(&config.progress.interval).unwrap_or(5000);
    let checkpoint_ms = parse_duration_ms(&config.checkpoint.interval).unwrap_or(3_600_000);
    Ok(Validated {
        config,
        resolutions,
        progress_ms,
        checkpoint_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, env: &[(&str, &str)]) -> Result<Validated, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        load(
            Some(&path),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn embedded_default_is_valid() {
        let v = load(None, std::iter::empty()).unwrap();
        assert_eq!(v.resolutions.len(), 3);
        assert_eq!(v.config.kafka.brokers, "embedded");
    }

    #[test]
    fn reports_every_problem_with_its_key() {
        let err = load_str(
            "[features]\nresolutions = [\"1m\", \"90s\"]\nrolling_window = 1\nbogus = 1\n[time]\nidle_timeout = \"soon\"\n[nope]\n",
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("features.bogus"), "{text}");
        assert!(text.contains("nope"), "{text}");
        let err = load_str("[features]\nresolutions = [\"1m\", \"90s\"]\nrolling_window = 1\n[time]\nidle_timeout = \"soon\"\n", &[])
            .unwrap_err()
            .to_string();
        for key in [
            "features.resolutions",
            "features.rolling_window",
            "time.idle_timeout",
        ] {
            assert!(err.contains(key), "{key} missing in {err}");
        }
    }

    #[test]
    fn env_overrides_apply_and_are_checked() {
        let v = load_str(
            "",
            &[
                ("MARKETFLOW__FEATURES__ROLLING_WINDOW", "30"),
                ("MARKETFLOW__KAFKA__BROKERS", "h:9092"),
            ],
        )
        .unwrap();
        assert_eq!(v.config.features.rolling_window, 30);
        assert_eq!(v.config.kafka.brokers, "h:9092");
        let v = load_str("", &[("MARKETFLOW__FEATURES__RESOLUTIONS", "[\"1m\"]")]).unwrap();
        assert_eq!(v.resolutions.len(), 1);
        let e = load_str("", &[("MARKETFLOW__FEATURES__NOPE", "1")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("features.nope"), "{e}");
        let e = load_str("", &[("MARKETFLOW__FEATURES__ROLLING_WINDOW", "abc")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("rolling_window"), "{e}");
    }
}
