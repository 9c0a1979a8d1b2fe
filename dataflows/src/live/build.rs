//! Assembling a [`LiveJob`] from the configuration: the source topics and their
//! partitions, the newest complete checkpoint to resume from, and one Kafka source per
//! configured source.

use std::sync::Arc;

use connectors::chart::ChartSinkConfig;
use connectors::checkpoint::{CheckpointStore, Expected};
use connectors::kafka::{
    group_id, rewind, topic_partitions, DoneRule, KafkaSettings, KafkaSinkConfig,
    KafkaSourceConfig, Replay, SourceCheckpoints, SourceConfig,
};
use connectors::manifest::RunInfo;
use connectors::parquet::Partitioning;
use connectors::store::Location;
use connectors::ConnectorError;
use operators::checkpoint::CheckpointPlan;
use operators::{BarsConfig, OperatorError, Resolution};
use thiserror::Error;

use super::LiveJob;
use crate::config::{CheckpointConfig, FeaturesConfig, ProgressConfig, TimeConfig};

/// Messages a Kafka source takes from one partition per activation.
const MAX_POLL: usize = 10_000;

/// Why a live job could not be assembled.
#[derive(Debug, Error)]
pub enum LiveBuildError {
    /// Sources without a topic, one line each.
    #[error("{}", .0.join("\n"))]
    NoTopic(Vec<String>),
    /// The checkpoints under the output cannot be read.
    #[error("checkpoint: {0}")]
    Checkpoint(ConnectorError),
    /// Topic metadata could not be fetched.
    #[error(transparent)]
    Kafka(#[from] ConnectorError),
    /// The bar settings are invalid.
    #[error(transparent)]
    Operator(#[from] OperatorError),
}

impl LiveBuildError {
    /// True for a problem of the configuration or the output (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            LiveBuildError::NoTopic(_) | LiveBuildError::Checkpoint(_)
        )
    }
}

/// What a live job is built from: the configuration sections it reads, the brokers
/// and output resolved by the command, and the size of the cluster.
#[derive(Clone, Debug)]
pub struct LiveSpec<'a> {
    /// Brokers and client properties (the embedded broker's address for `embedded`).
    pub settings: KafkaSettings,
    /// `[[sources]]`
    pub sources: &'a [SourceConfig],
    /// `[time]`
    pub time: &'a TimeConfig,
    /// `[features]`
    pub features: &'a FeaturesConfig,
    /// The validated resolutions of `[features]`.
    pub resolutions: &'a [Resolution],
    /// `[checkpoint]`
    pub checkpoint: &'a CheckpointConfig,
    /// `[progress]`
    pub progress: &'a ProgressConfig,
    /// `[sinks.kafka]`
    pub sink: &'a KafkaSinkConfig,
    /// `[sinks.charts]`
    pub charts: &'a ChartSinkConfig,
    /// Parquet output root (also where checkpoints live).
    pub output: Location,
    /// The lake's time partition per resolution.
    pub partitioning: Partitioning,
    /// Workers of the whole cluster.
    pub workers: usize,
    /// A reprocess of a time range instead of the live job.
    pub replay: Option<ReplaySpec>,
}

/// A reprocess of a time range from Kafka (`run --from TIME [--to TIME]`): the sources
/// are rewound to the range's start, no checkpoint is read or written, no offset is
/// committed, and the outputs go to side topics and a staged run.
#[derive(Clone, Debug)]
pub struct ReplaySpec {
    /// The run's facts; `from_ms` is required, `to_ms` optional (to the topics' end).
    pub info: RunInfo,
    /// Feature and dead-letter topics of the run start with this.
    pub topic_prefix: String,
}

/// Checks that every source names a topic (before any broker is started).
pub fn check_topics(sources: &[SourceConfig]) -> Result<(), LiveBuildError> {
    let problems: Vec<String> = sources
        .iter()
        .enumerate()
        .filter(|(_, s)| s.topic.trim().is_empty())
        .map(|(i, _)| format!("sources[{i}].topic: a live source needs a topic"))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LiveBuildError::NoTopic(problems))
    }
}

/// The topics an embedded broker needs: each source's topic with `partitions`
/// partitions, and each source's one-partition dead-letter topic.
pub fn embedded_topics(sources: &[SourceConfig], partitions: i32) -> Vec<(String, i32)> {
    let mut topics: Vec<(String, i32)> = sources
        .iter()
        .map(|s| (s.topic.clone(), partitions))
        .collect();
    topics.extend(sources.iter().map(|s| (s.dead_letter_topic(), 1)));
    topics
}

impl LiveJob {
    /// Assembles the live job: fetches every source topic's partitions, finds the
    /// newest complete checkpoint under the output (the states of every operator on
    /// every worker and the offsets of every partition) and configures one Kafka
    /// source per configured source to resume from it.
    pub fn build(spec: LiveSpec<'_>) -> Result<LiveJob, LiveBuildError> {
        check_topics(spec.sources)?;
        let lateness_ms = spec.time.allowed_lateness.as_ms();
        let done = DoneRule {
            resolutions_ms: spec.resolutions.iter().map(|r| r.ms).collect(),
            lateness_ms,
        };
        let meta = spec.settings.plain_consumer(None)?;
        let mut partitions = Vec::new();
        for s in spec.sources {
            partitions.push(topic_partitions(&meta, &s.topic)?);
        }
        drop(meta);
        let mut bars = BarsConfig::new(spec.resolutions)?;
        bars.lateness_ms = lateness_ms;
        let mut features = spec.features.build(bars);
        let keep = spec.checkpoint.keep();
        let store = CheckpointStore::new(spec.output.clone(), keep);
        let expected = Expected {
            workers: spec.workers,
            operators: features.checkpointed_operators(),
            partitions: spec
                .sources
                .iter()
                .zip(&partitions)
                .flat_map(|(s, ps)| ps.iter().map(|p| (s.name.clone(), *p)))
                .collect(),
        };
        let loaded = match spec.replay {
            Some(_) => None,
            None => store
                .latest(&expected)
                .map_err(LiveBuildError::Checkpoint)?,
        };
        let restored_cut = loaded.as_ref().map(|l| l.restore.cut);
        let interval_ms = spec.checkpoint.interval.as_ms();
        features.checkpoint = spec.replay.is_none().then(|| CheckpointPlan {
            interval_ms,
            keep,
            restore: loaded.as_ref().map(|l| Arc::new(l.restore.clone())),
        });
        let max_ooo_ms = spec.time.max_out_of_orderness.as_ms();
        let mut sources = Vec::new();
        for (s, partitions) in spec.sources.iter().zip(partitions) {
            let offsets = loaded.as_ref().map(|l| {
                let mine = l
                    .offsets
                    .iter()
                    .filter(|((source, _), _)| *source == s.name)
                    .map(|((_, p), o)| (*p, *o))
                    .collect();
                (l.restore.cut, mine)
            });
            let replay = match &spec.replay {
                Some(r) => Some(replay_of(
                    &spec.settings,
                    s,
                    &partitions,
                    r,
                    max_ooo_ms + lateness_ms,
                )?),
                None => None,
            };
            sources.push(KafkaSourceConfig {
                settings: spec.settings.clone(),
                name: s.name.clone(),
                topic: s.topic.clone(),
                partitions,
                kind: s.kind,
                symbol_prefix: s.symbol_prefix.clone(),
                max_out_of_orderness_ms: max_ooo_ms,
                idle_timeout: std::time::Duration::from_millis(
                    spec.time.idle_timeout.as_ms().max(1) as u64,
                ),
                done: done.clone(),
                checkpoints: SourceCheckpoints {
                    store: store.clone(),
                    interval_ms,
                    restored: offsets,
                },
                max_poll: MAX_POLL,
                pairwise: features.comoments.correlation,
                replay,
            });
        }
        let charts = spec.charts.build(
            &spec.output,
            spec.partitioning,
            lateness_ms,
            spec.resolutions,
        );
        Ok(LiveJob {
            sources,
            features,
            charts,
            output: spec.output,
            partitioning: spec.partitioning,
            topic_prefix: spec.replay.as_ref().map_or_else(
                || spec.sink.topic_prefix.clone(),
                |r| r.topic_prefix.clone(),
            ),
            dead_letter_prefix: spec
                .replay
                .as_ref()
                .map_or_else(String::new, |r| r.topic_prefix.clone()),
            replay: spec.replay.as_ref().map(|r| r.info.clone()),
            lateness_ms,
            restored_cut,
            restored_frontier: restored_cut.map(|cut| cut.saturating_add(lateness_ms)),
            checkpoints: store,
            progress_interval: spec.progress.build(),
            metrics: None,
        })
    }

    /// A hash of what must be equal on every process of the job: the topics, their
    /// partitions and the feature settings.
    pub fn hash(&self) -> u64 {
        operators::route::stable_hash(
            format!(
                "run\n{:?}\n{:?}\n{:?}",
                self.sources
                    .iter()
                    .map(|s| (&s.topic, &s.partitions))
                    .collect::<Vec<_>>(),
                self.features,
                self.replay
                    .as_ref()
                    .map(|r| (&r.run_id, r.from_ms, r.to_ms))
            )
            .as_bytes(),
        )
    }
}

/// Where source `s` re-reads from for a reprocess: each partition's first record
/// stamped at or after the range's start minus `margin_ms` (records stamped by their
/// producer up to that much before their event time are still read).
fn replay_of(
    settings: &KafkaSettings,
    s: &SourceConfig,
    partitions: &[i32],
    r: &ReplaySpec,
    margin_ms: i64,
) -> Result<Replay, LiveBuildError> {
    let from_ms = r.info.from_ms.unwrap_or(i64::MIN);
    let starts = rewind(
        settings,
        &s.topic,
        partitions,
        from_ms.saturating_sub(margin_ms).max(0),
    )?;
    Ok(Replay {
        from_ms,
        to_ms: r.info.to_ms,
        starts,
        group: format!("{}.replay.{}", group_id(&s.name), r.info.run_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, topic: &str) -> SourceConfig {
        SourceConfig {
            name: name.into(),
            topic: topic.into(),
            ..SourceConfig::default()
        }
    }

    #[test]
    fn sources_need_topics() {
        assert!(check_topics(&[source("a", "t")]).is_ok());
        let e = check_topics(&[source("a", "t"), source("b", " "), source("c", "")]).unwrap_err();
        assert!(e.is_usage());
        assert_eq!(
            e.to_string(),
            "sources[1].topic: a live source needs a topic\nsources[2].topic: a live source needs a topic"
        );
    }

    #[test]
    fn embedded_topics_include_dead_letters() {
        let topics = embedded_topics(&[source("a", "t1"), source("b", "t2")], 4);
        assert_eq!(
            topics,
            [
                ("t1".to_string(), 4),
                ("t2".to_string(), 4),
                ("dlq.a".to_string(), 1),
                ("dlq.b".to_string(), 1)
            ]
        );
    }

    #[test]
    fn an_unreadable_checkpoint_is_a_usage_error() {
        let e = LiveBuildError::Checkpoint(ConnectorError::NoInput("x".into()));
        assert!(e.is_usage() && e.to_string().starts_with("checkpoint: "));
    }
}
