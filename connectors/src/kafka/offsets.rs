//! A live source's offsets: where each partition starts (a checkpoint cut's offsets, a
//! replay's rewind, or the beginning), when a record's outputs are durable
//! ([`DoneRule`]), and the offsets recorded at each checkpoint cut. A restarted job
//! resumes from the offsets of a cut and skips records whose outputs are all before it.

use std::sync::Arc;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use timely::dataflow::operators::probe::Handle as ProbeHandle;

use crate::kafka::source::PartState;
use crate::kafka::{group_id, CommitTracker, KafkaSourceConfig};
use crate::parquet::HOUR_MS as HOUR;

/// Decides from the sinks' durable frontier whether every output of a record is durable.
/// A record at event time `ts` feeds one bar per resolution; each lands in the Parquet
/// partition of its window end's hour, which is written once the frontier has passed
/// the hour's end plus the allowed lateness (Kafka records are flushed sooner).
///
/// ```
/// use connectors::kafka::DoneRule;
/// let rule = DoneRule { resolutions_ms: vec![1_000, 300_000], lateness_ms: 0 };
/// // 00:59:30 feeds the 5m bar ending 01:00, in the partition of hour 01.
/// assert!(!rule.done(3_570_000, 3_600_000));
/// assert!(rule.done(3_570_000, 7_200_000));
/// assert!(rule.final_partition(3_600_000, 7_200_000));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DoneRule {
    /// Bar resolutions of the job, ms.
    pub resolutions_ms: Vec<i64>,
    /// Allowed lateness, ms.
    pub lateness_ms: i64,
}

impl DoneRule {
    /// True when every output of a record at `ts` is durable at frontier `frontier`.
    pub fn done(&self, ts: i64, frontier: i64) -> bool {
        let end = self
            .resolutions_ms
            .iter()
            .map(|r| (ts.div_euclid(*r) + 1) * r)
            .max()
            .unwrap_or(ts);
        self.final_partition(end, frontier)
    }

    /// True when the partition of rows ending at `window_end` was written at `frontier`.
    pub fn final_partition(&self, window_end: i64, frontier: i64) -> bool {
        (window_end.div_euclid(HOUR) * HOUR)
            .saturating_add(HOUR)
            .saturating_add(self.lateness_ms)
            <= frontier
    }
}

/// A worker's consumer (none without partitions) and its partitions' bookkeeping.
pub(super) type Opened = (Option<BaseConsumer>, Vec<PartState>);

/// Creates this worker's consumer, finds where each partition resumes, assigns them and
/// splits their queues with a wake-up callback.
pub(super) fn open_partitions(
    config: &KafkaSourceConfig,
    mine: &[i32],
    sync: &Arc<timely::scheduling::SyncActivator>,
) -> crate::Result<Option<Opened>> {
    if mine.is_empty() {
        return Ok(None);
    }
    let group = config
        .replay
        .as_ref()
        .map_or_else(|| group_id(&config.name), |r| r.group.clone());
    let mut consumer = config.settings.plain_consumer(Some(&group))?;
    let wake = sync.clone();
    consumer.set_nonempty_callback(move || {
        let _ = wake.activate();
    });
    let mut tpl = TopicPartitionList::new();
    for p in mine {
        tpl.add_partition(&config.topic, *p);
    }
    let mut assign = TopicPartitionList::new();
    let mut starts = Vec::new();
    let restored = config.checkpoints.restored.as_ref();
    // Records whose outputs all end before the restored cut are in final Parquet
    // partitions and in the restored operator state: they are skipped.
    let skip_below = restored.map_or(i64::MIN, |(cut, _)| {
        cut.saturating_add(config.done.lateness_ms)
    });
    for p in mine {
        let start = match &config.replay {
            Some(r) => r.starts.get(p).copied(),
            None => restored.and_then(|(_, offsets)| offsets.get(p).copied()),
        };
        tracing::info!(group = %group, topic = %config.topic, partition = p, start = ?start, restored_cut = ?restored.map(|r| r.0), replay = config.replay.is_some(), "partition assigned");
        assign
            .add_partition_offset(
                &config.topic,
                *p,
                start.map_or(Offset::Beginning, Offset::Offset),
            )
            .map_err(|e| crate::ConnectorError::Kafka(e.to_string()))?;
        starts.push((start.unwrap_or(0), skip_below));
    }
    consumer
        .assign(&assign)
        .map_err(|e| crate::ConnectorError::Kafka(format!("assigning partitions: {e}")))?;
    let mut parts = Vec::new();
    for (p, (start, skip_below)) in mine.iter().zip(starts) {
        let mut tracker = CommitTracker::new(4096);
        if start > 0 {
            tracker.skip(start - 1);
        }
        parts.push(PartState {
            id: *p,
            label: format!("{}/{p}", config.topic),
            tracker,
            skip_below,
            next: start,
        });
    }
    Ok(Some((Some(consumer), parts)))
}

/// Records this source's offsets at every checkpoint cut the sinks' durable frontier
/// has passed: per partition, the first offset of a record with an output at or after
/// the cut (every Parquet partition before the cut is written then). The newest cut's
/// offsets are also committed to the consumer group. Worker 0 prunes old cuts.
pub(super) fn checkpoint(
    consumer: &BaseConsumer,
    config: &KafkaSourceConfig,
    parts: &mut [PartState],
    durable: &ProbeHandle<i64>,
    last_cut: &mut Option<i64>,
    prunes: bool,
) -> crate::Result<()> {
    let frontier = durable.with_frontier(|f| f.first().copied().unwrap_or(i64::MAX));
    if frontier == i64::MIN || frontier == i64::MAX {
        return Ok(());
    }
    let cp = &config.checkpoints;
    let (interval, lateness) = (cp.interval_ms.max(HOUR), config.done.lateness_ms);
    let final_before = frontier.saturating_sub(lateness).div_euclid(HOUR) * HOUR;
    let cut = final_before.div_euclid(interval) * interval;
    let cuts: Vec<i64> = match *last_cut {
        Some(l) if cut <= l => return Ok(()),
        Some(l) => (1..)
            .map(|k| l + k * interval)
            .take_while(|c| *c <= cut)
            .collect(),
        // The first cut seen: this run has tracked every record since it started, so
        // the last few cuts (whose operator states may exist) can all be recorded.
        None => (0..cp.store.keep() as i64)
            .rev()
            .map(|k| cut - k * interval)
            .collect(),
    };
    let started = Instant::now();
    let written_from = cut - (cp.store.keep() as i64 - 1) * interval;
    let mut tpl = TopicPartitionList::new();
    for c in cuts {
        for part in parts.iter_mut() {
            let offset = part
                .tracker
                .position(|ts| config.done.done(ts, c.saturating_add(lateness)))
                .unwrap_or(part.next);
            if c >= written_from {
                cp.store
                    .write_offset(c, &config.name, &config.topic, part.id, offset)?;
            }
            if c == cut {
                tpl.add_partition_offset(&config.topic, part.id, Offset::Offset(offset))
                    .map_err(|e| crate::ConnectorError::Kafka(e.to_string()))?;
            }
        }
    }
    *last_cut = Some(cut);
    tracing::info!(
        cut,
        source = %config.name,
        partitions = parts.len(),
        ms = started.elapsed().as_millis() as u64,
        "checkpoint offsets written"
    );
    if tpl.count() > 0 {
        consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| crate::ConnectorError::Kafka(format!("commit: {e}")))?;
    }
    if prunes {
        let removed = cp.store.prune(cut)?;
        if removed > 0 {
            tracing::debug!(removed, cut, "old checkpoints pruned");
        }
    }
    Ok(())
}
