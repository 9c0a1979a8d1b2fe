//! The Kafka sections of the configuration: `[kafka]` (the cluster), `[[sources]]`
//! (the input topics and what they hold) and `[sinks.kafka]` (the feature topics), each
//! with its defaults and the step that turns it into runtime settings.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::decode::{DecodeOptions, FormatHint, Kind};
use crate::kafka::KafkaSettings;

/// The `kafka.brokers` value that starts the in-process broker of `marketflow run`.
pub const EMBEDDED: &str = "embedded";

/// `[kafka]`: where the brokers are and how to talk to them.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct KafkaConfig {
    /// `host:port,...`, or `embedded` for the in-process broker fed with the bundled sample.
    #[serde(default = "default_brokers")]
    pub brokers: String,
    /// librdkafka properties passed through unchanged (never logged).
    #[serde(default)]
    pub client: BTreeMap<String, String>,
}

fn default_brokers() -> String {
    EMBEDDED.into()
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: default_brokers(),
            client: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// True for `brokers = "embedded"`.
    pub fn is_embedded(&self) -> bool {
        self.brokers.trim() == EMBEDDED
    }

    /// The problem with `brokers`, if any (it must name something).
    pub fn check(&self) -> Option<String> {
        self.brokers
            .trim()
            .is_empty()
            .then(|| "must be `embedded` or host:port[,host:port...]".to_string())
    }

    /// Client settings for `brokers` (the embedded broker's address for `embedded`)
    /// with every pass-through property.
    pub fn build(&self, brokers: &str) -> KafkaSettings {
        KafkaSettings {
            brokers: brokers.to_string(),
            client: self.client.clone(),
        }
    }

    /// Client settings for the configured brokers; `None` for `embedded`, which only
    /// exists inside `marketflow run`.
    pub fn settings(&self) -> Option<KafkaSettings> {
        (!self.is_embedded()).then(|| self.build(&self.brokers))
    }
}

/// `[[sources]]`: one input; the live job reads its topic, and the first source's kind,
/// format and prefix also apply to backfills and `produce`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SourceConfig {
    /// Source name (dead-letter topic is `dlq.<name>`, consumer group `marketflow.<name>`).
    #[serde(default = "default_name")]
    pub name: String,
    /// What the input holds: `trades` or `candles`.
    #[serde(default)]
    pub kind: Kind,
    /// Kafka topic of the live job.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Accepted layouts: `auto`, `canonical` or `binance`.
    #[serde(default)]
    pub format: FormatHint,
    /// Prefix added to every symbol of this source.
    #[serde(default)]
    pub symbol_prefix: String,
}

fn default_name() -> String {
    "trades".into()
}

fn default_topic() -> String {
    "raw.trades".into()
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            name: default_name(),
            kind: Kind::default(),
            topic: default_topic(),
            format: FormatHint::default(),
            symbol_prefix: String::new(),
        }
    }
}

impl SourceConfig {
    /// The name of the source's dead-letter topic.
    pub fn dead_letter_topic(&self) -> String {
        format!("dlq.{}", self.name)
    }

    /// How to decode this source's files: its kind unless `kind` overrides it (the
    /// `--kind` flag), its format and its symbol prefix.
    pub fn decode_options(&self, kind: Option<Kind>) -> DecodeOptions {
        DecodeOptions {
            kind: kind.unwrap_or(self.kind),
            format: self.format,
            symbol_prefix: self.symbol_prefix.clone(),
            file_index: 0,
        }
    }
}

/// Problems of a list of sources, each `(key, message)`: there must be at least one,
/// and every name must be non-empty and unique.
pub fn check_sources(sources: &[SourceConfig]) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if sources.is_empty() {
        problems.push((
            "sources".to_string(),
            "at least one [[sources]] entry is required".to_string(),
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, s) in sources.iter().enumerate() {
        if s.name.trim().is_empty() || !names.insert(s.name.clone()) {
            problems.push((
                format!("sources[{i}].name"),
                format!("`{}` must be non-empty and unique", s.name),
            ));
        }
    }
    problems
}

/// `[sinks.kafka]` (live only): where feature rows are produced.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct KafkaSinkConfig {
    /// Feature topics are `<topic_prefix><set>.<resolution>`.
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    /// Partitions of each feature topic the job creates at start (topics that exist
    /// are kept); 0 leaves creation to the broker (auto-create on first write).
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor of the topics the job creates; -1 takes the broker's
    /// `default.replication.factor`.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i32,
}

fn default_topic_prefix() -> String {
    "feature.".into()
}

fn default_partitions() -> i32 {
    1
}

fn default_replication_factor() -> i32 {
    -1
}

impl Default for KafkaSinkConfig {
    fn default() -> Self {
        KafkaSinkConfig {
            topic_prefix: default_topic_prefix(),
            partitions: default_partitions(),
            replication_factor: default_replication_factor(),
        }
    }
}

impl KafkaSinkConfig {
    /// Every problem of the section, each with its key.
    pub fn check(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.partitions < 0 {
            out.push((
                "sinks.kafka.partitions".into(),
                "must be 0 (broker default) or more".into(),
            ));
        }
        if self.replication_factor == 0 || self.replication_factor < -1 {
            out.push((
                "sinks.kafka.replication_factor".into(),
                "must be -1 (broker default) or at least 1".into(),
            ));
        }
        out
    }

    /// How the job creates its feature topics; `None` when the broker creates them.
    pub fn layout(&self) -> Option<crate::kafka::TopicLayout> {
        (self.partitions > 0).then_some(crate::kafka::TopicLayout {
            partitions: self.partitions,
            replication_factor: self.replication_factor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_deserialize_into_the_decoder_enums() {
        let s: SourceConfig =
            toml::from_str("name = \"x\"\nkind = \"candles\"\nformat = \"binance\"").unwrap();
        assert_eq!((s.kind, s.format), (Kind::Candles, FormatHint::Binance));
        assert_eq!(s.topic, "raw.trades");
        let o = s.decode_options(Some(Kind::Trades));
        assert_eq!((o.kind, o.format), (Kind::Trades, FormatHint::Binance));
        let b: SourceConfig = toml::from_str("kind = \"book\"").unwrap();
        assert_eq!(b.kind, Kind::Book);
        assert!(toml::from_str::<SourceConfig>("kind = \"depth\"").is_err());
        assert!(toml::from_str::<SourceConfig>("format = \"csv\"").is_err());
    }

    #[test]
    fn source_names_must_be_unique() {
        let s = SourceConfig::default();
        assert!(check_sources(std::slice::from_ref(&s)).is_empty());
        let problems = check_sources(&[s.clone(), s]);
        assert_eq!(problems[0].0, "sources[1].name");
        assert_eq!(check_sources(&[])[0].0, "sources");
    }

    #[test]
    fn embedded_has_no_settings() {
        assert!(KafkaConfig::default().settings().is_none());
        let k: KafkaConfig =
            toml::from_str("brokers = \"h:9092\"\n[client]\n\"security.protocol\" = \"SSL\"")
                .unwrap();
        let s = k.settings().unwrap();
        assert_eq!(s.brokers, "h:9092");
        assert_eq!(s.client["security.protocol"], "SSL");
        assert!(KafkaConfig {
            brokers: " ".into(),
            ..KafkaConfig::default()
        }
        .check()
        .is_some());
    }
}
