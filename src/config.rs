//! The TOML configuration: the top-level struct that composes each component's section
//! (defined next to the component), file loading, `MARKETFLOW__SECTION__KEY`
//! environment overrides, and validation that reports every problem at once, each with
//! its key: unknown keys, values of the wrong type or form, and values out of range.

use std::path::Path;

use connectors::chart::ChartSinkConfig;
use connectors::kafka::{KafkaConfig, KafkaSinkConfig, SourceConfig};
use connectors::metrics::MetricsConfig;
use connectors::parquet::ParquetSinkConfig;
use dataflows::config::{CheckpointConfig, FeaturesConfig, ProgressConfig, TimeConfig};
use operators::Resolution;
use serde::Deserialize;
use toml::{Table, Value};

/// The embedded default configuration (used when `--config` is not given).
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// The whole configuration; a missing section or key takes its default.
#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    /// `[kafka]`: the Kafka cluster.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// `[[sources]]`: live topics; the first one's kind and format also apply to backfills.
    #[serde(default = "default_sources")]
    pub sources: Vec<SourceConfig>,
    /// `[time]`: event-time settings.
    #[serde(default)]
    pub time: TimeConfig,
    /// `[features]`: which features to compute.
    #[serde(default)]
    pub features: FeaturesConfig,
    /// `[sinks]`: outputs.
    #[serde(default)]
    pub sinks: SinksConfig,
    /// `[progress]`: progress reporting.
    #[serde(default)]
    pub progress: ProgressConfig,
    /// `[checkpoint]` (live only).
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// `[metrics]`: the Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

fn default_sources() -> Vec<SourceConfig> {
    vec![SourceConfig::default()]
}

impl Default for Config {
    fn default() -> Self {
        Config {
            kafka: KafkaConfig::default(),
            sources: default_sources(),
            time: TimeConfig::default(),
            features: FeaturesConfig::default(),
            sinks: SinksConfig::default(),
            progress: ProgressConfig::default(),
            checkpoint: CheckpointConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

/// `[sinks]`
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SinksConfig {
    /// `[sinks.kafka]` (live only).
    #[serde(default)]
    pub kafka: KafkaSinkConfig,
    /// `[sinks.parquet]`
    #[serde(default)]
    pub parquet: ParquetSinkConfig,
    /// `[sinks.charts]`: a chart per symbol and closed lake partition.
    #[serde(default)]
    pub charts: ChartSinkConfig,
}

impl Config {
    /// The first source: its kind, format and prefix apply to backfills and `produce`.
    pub fn first_source(&self) -> SourceConfig {
        self.sources.first().cloned().unwrap_or_default()
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

/// A validated config and the values derived from it.
#[derive(Clone, Debug)]
pub struct Validated {
    /// The config as loaded.
    pub config: Config,
    /// Parsed resolutions, ascending.
    pub resolutions: Vec<Resolution>,
}

impl Validated {
    /// The resolutions as labels (`1s`, `1m`, ...), ascending, as a run manifest lists
    /// them.
    pub fn resolution_labels(&self) -> Vec<String> {
        self.resolutions
            .iter()
            .map(|r| r.label().to_string())
            .collect()
    }
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
    let mut table: Table = text
        .parse::<Table>()
        .map_err(|e| ConfigErrors(vec![format!("{origin}: {}", e.to_string().trim())]))?;
    let mut errors = Vec::new();
    crate::config_env::apply_env(&mut table, env, &mut errors);
    let mut problems = Vec::new();
    let config = deserialize(table, &mut problems);
    let resolutions = validate(&config, &mut problems);
    errors.extend(
        problems
            .into_iter()
            .map(|(key, msg)| format!("{origin}: {key}: {msg}")),
    );
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(Validated {
        config,
        resolutions,
    })
}

/// Deserializes `table`, collecting every unknown key and every value that does not
/// deserialize (that key then takes its default, so the rest is still checked).
fn deserialize(mut table: Table, problems: &mut Vec<(String, String)>) -> Config {
    // Each pass removes one bad value; a table has finitely many.
    loop {
        let mut unknown = Vec::new();
        let mut on_ignored = |path: serde_ignored::Path<'_>| unknown.push(ignored_key(&path));
        let de = serde_ignored::Deserializer::new(Value::Table(table.clone()), &mut on_ignored);
        let result: Result<Config, _> = serde_path_to_error::deserialize(de);
        match result {
            Ok(config) => {
                problems.extend(unknown.into_iter().map(|(key, top)| {
                    let what = if top {
                        "unknown section"
                    } else {
                        "unknown key"
                    };
                    (key, what.to_string())
                }));
                return config;
            }
            Err(e) => {
                let segments: Vec<_> = e.path().iter().cloned().collect();
                problems.push((dotted(&segments), message(&e.inner().to_string())));
                if !remove(&mut table, &segments) {
                    return Config::default();
                }
            }
        }
    }
}

/// A deserialization error's message without the key toml appends (`in `key``): the
/// key is reported in front of it.
fn message(text: &str) -> String {
    let text = text.trim();
    match text.rsplit_once('\n') {
        Some((first, last)) if last.starts_with("in `") => first.trim().to_string(),
        _ => text.to_string(),
    }
}

/// The dotted key of an ignored (unknown) value, and whether it is a top-level one.
fn ignored_key(path: &serde_ignored::Path<'_>) -> (String, bool) {
    use serde_ignored::Path as P;
    match path {
        P::Root => (String::new(), true),
        P::Map { parent, key } => {
            let (p, _) = ignored_key(parent);
            if p.is_empty() {
                (key.clone(), true)
            } else {
                (format!("{p}.{key}"), false)
            }
        }
        P::Seq { parent, index } => (format!("{}[{index}]", ignored_key(parent).0), false),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_key(parent)
        }
    }
}

/// `sources[0].kind` for a deserialization error's path.
fn dotted(segments: &[serde_path_to_error::Segment]) -> String {
    use serde_path_to_error::Segment as S;
    let mut out = String::new();
    for s in segments {
        match s {
            S::Seq { index } => out.push_str(&format!("[{index}]")),
            S::Map { key } | S::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            S::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// Removes the value at `segments` from `table`; false when there is none.
fn remove(table: &mut Table, segments: &[serde_path_to_error::Segment]) -> bool {
    use serde_path_to_error::Segment as S;
    match segments {
        [S::Map { key }] => table.remove(key).is_some(),
        [S::Map { key }, rest @ ..] => table.get_mut(key).is_some_and(|v| remove_in(v, rest)),
        _ => false,
    }
}

fn remove_in(value: &mut Value, segments: &[serde_path_to_error::Segment]) -> bool {
    use serde_path_to_error::Segment as S;
    match (value, segments) {
        (Value::Table(t), _) => remove(t, segments),
        (Value::Array(a), [S::Seq { index }]) if *index < a.len() => {
            a.remove(*index);
            true
        }
        (Value::Array(a), [S::Seq { index }, rest @ ..]) => {
            a.get_mut(*index).is_some_and(|v| remove_in(v, rest))
        }
        _ => false,
    }
}

/// Every problem of the deserialized config that its type cannot express; the
/// resolutions when there is none among them.
fn validate(config: &Config, problems: &mut Vec<(String, String)>) -> Vec<Resolution> {
    problems.extend(config.features.check());
    problems.extend(config.checkpoint.check());
    problems.extend(config.progress.check());
    problems.extend(config.metrics.check());
    problems.extend(config.sinks.kafka.check());
    if let Some(msg) = config.kafka.check() {
        problems.push(("kafka.brokers".into(), msg));
    }
    problems.extend(connectors::kafka::config::check_sources(&config.sources));
    if let Err(e) = config.sinks.parquet.build(None) {
        problems.push(("sinks.parquet.output".into(), e.to_string()));
    }
    let resolutions = config.features.resolutions().unwrap_or_default();
    if !resolutions.is_empty() {
        problems.extend(config.sinks.charts.check(&resolutions));
    }
    resolutions
}

#[cfg(test)]
mod tests;
