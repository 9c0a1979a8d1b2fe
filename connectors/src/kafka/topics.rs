//! Feature topics made by the job: every `<topic_prefix><set>.<resolution>` topic it
//! will write is created at start with the configured partitions and replication
//! (existing topics are kept as they are, with a warning when their partition count
//! differs), so that consumers see the layout the job was configured with rather than
//! the broker's auto-creation defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::{KafkaSettings, METADATA_TIMEOUT};
use crate::{ConnectorError, Result};

/// The topic of feature `set` at resolution `resolution` (its label, e.g. `1m`).
///
/// ```
/// assert_eq!(connectors::kafka::feature_topic("feature.", "bars", "1m"), "feature.bars.1m");
/// ```
pub fn feature_topic(prefix: &str, set: &str, resolution: &str) -> String {
    format!("{prefix}{set}.{resolution}")
}

/// How the job creates its feature topics (`[sinks.kafka]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicLayout {
    /// Partitions of each created topic (rows are keyed by symbol).
    pub partitions: i32,
    /// Replication factor of each created topic; -1 takes the broker's default.
    pub replication_factor: i32,
}

/// Creates every topic of `names` that does not exist yet with `layout`; returns the
/// names it created. A topic another process created meanwhile is not an error.
pub fn ensure_topics(
    settings: &KafkaSettings,
    names: &[String],
    layout: TopicLayout,
) -> Result<Vec<String>> {
    let existing = partition_counts(settings)?;
    for name in names {
        if let Some(n) = existing.get(name).filter(|n| **n != layout.partitions) {
            tracing::warn!(
                topic = %name,
                partitions = n,
                configured = layout.partitions,
                "feature topic exists with another partition count; kept as it is"
            );
        }
    }
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !existing.contains_key(*n))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let admin: AdminClient<DefaultClientContext> = settings
        .client_config()
        .create()
        .map_err(|e| ConnectorError::Kafka(format!("creating an admin client: {e}")))?;
    let topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|n| {
            NewTopic::new(
                n,
                layout.partitions,
                TopicReplication::Fixed(layout.replication_factor),
            )
        })
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(METADATA_TIMEOUT))
        .request_timeout(Some(METADATA_TIMEOUT + Duration::from_secs(5)));
    let results = crate::store::runtime()
        .block_on(admin.create_topics(&topics, &opts))
        .map_err(|e| ConnectorError::Kafka(format!("creating feature topics: {e}")))?;
    let mut created = Vec::new();
    for r in results {
        match r {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(ConnectorError::Kafka(format!(
                    "creating feature topic {name} ({} partitions, replication {}): {code}",
                    layout.partitions, layout.replication_factor
                )))
            }
        }
    }
    Ok(created)
}

/// Every topic of the cluster and its partition count.
fn partition_counts(settings: &KafkaSettings) -> Result<BTreeMap<String, i32>> {
    let consumer = settings.plain_consumer(None)?;
    let md = consumer
        .fetch_metadata(None, METADATA_TIMEOUT)
        .map_err(|e| ConnectorError::Kafka(format!("listing topics: {e}")))?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect())
}
