//! The Kafka connector: client settings, topic metadata, the live trade source with
//! event-time watermarks (and its bounded re-read of a time range), the feature-topic
//! and dead-letter sinks, JSON encoding of feature rows, loading files into a topic,
//! and the embedded in-process broker.

pub mod config;
mod embedded;
mod json;
mod lag;

mod load;
mod message;
mod offsets;
mod replay;
mod sink;
mod source;
mod topics;
mod watermark;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

pub use config::{KafkaConfig, KafkaSinkConfig, SourceConfig};
pub use embedded::EmbeddedBroker;
pub use json::{row_key, rows_to_json, KafkaRecord};

pub use load::{
    book_json, candle_json, feed_in_background, produce_chunks, trade_json, Feed, Pace,
    ProduceStats, Speed,
};
pub use offsets::DoneRule;
/// The Kafka client library, for commands that read topics directly.
pub use rdkafka;
pub use replay::{check_answer, rewind, Answer, Replay};
pub use sink::{DeadLetterSink, DeliveryErrors, KafkaFeatureSink, SharedProducer};
pub use source::{
    KafkaSource, KafkaSourceConfig, LiveProgress, PartitionLag, SourceCheckpoints, SourceProbes,
};
pub use topics::{ensure_topics, feature_topic, TopicLayout};
pub use watermark::{CommitTracker, Watermarks};

use crate::{ConnectorError, Result};

/// How long metadata and admin requests may take before they are an error.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the brokers are and how to talk to them.
///
/// ```
/// let s = connectors::kafka::KafkaSettings::new("127.0.0.1:9092");
/// let c = s.client_config();
/// assert_eq!(c.get("bootstrap.servers"), Some("127.0.0.1:9092"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct KafkaSettings {
    /// `host:port,...` (for `embedded`, the in-process broker's address).
    pub brokers: String,
    /// librdkafka properties passed through unchanged (never logged: may hold secrets).
    pub client: BTreeMap<String, String>,
}

impl KafkaSettings {
    /// Settings for `brokers` with no extra client properties.
    pub fn new(brokers: &str) -> KafkaSettings {
        KafkaSettings {
            brokers: brokers.to_string(),
            client: BTreeMap::new(),
        }
    }

    /// A client configuration with the brokers and every pass-through property.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c.set("log_level", "3");
        for (k, v) in &self.client {
            c.set(k, v);
        }
        c
    }

    /// A consumer of this cluster without a group (for metadata and reading).
    pub fn plain_consumer(&self, group: Option<&str>) -> Result<BaseConsumer> {
        let mut c = self.client_config();
        c.set("enable.auto.commit", "false");
        c.set("enable.auto.offset.store", "false");
        c.set("enable.partition.eof", "false");
        c.set("auto.offset.reset", "earliest");
        c.set("group.id", group.unwrap_or("marketflow-reader"));
        c.create()
            .map_err(|e| ConnectorError::Kafka(format!("creating a consumer: {e}")))
    }
}

/// The partition ids of `topic`, sorted; an error naming the topic if it does not exist
/// or the brokers cannot be reached within [`METADATA_TIMEOUT`].
pub fn topic_partitions(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>> {
    let md = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| ConnectorError::Kafka(format!("metadata of topic {topic}: {e}")))?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Err(ConnectorError::Kafka(format!(
            "topic {topic} does not exist"
        )));
    };
    if let Some(e) = t.error() {
        return Err(ConnectorError::Kafka(format!(
            "topic {topic} does not exist or is unavailable ({e:?})"
        )));
    }
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    if ids.is_empty() {
        return Err(ConnectorError::Kafka(format!(
            "topic {topic} has no partitions"
        )));
    }
    Ok(ids)
}

/// The consumer group of a job's source: offsets of source `name` are committed there.
///
/// ```
/// assert_eq!(connectors::kafka::group_id("trades"), "marketflow.trades");
/// ```
pub fn group_id(source: &str) -> String {
    format!("marketflow.{source}")
}
