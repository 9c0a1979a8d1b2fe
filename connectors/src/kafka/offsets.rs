//! When a live record's outputs are durable ([`DoneRule`]) and where the durable frontier
//! of each partition is kept ([`OffsetStore`]) so a restarted job neither loses input
//! nor rewrites finished Parquet partitions.

use serde::{Deserialize, Serialize};

use crate::store::Location;
use crate::{ConnectorError, Result};

const HOUR: i64 = 3_600_000;

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

/// The durable frontier and first offset not yet durable of one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOffset {
    /// The first offset whose outputs were not all durable.
    pub offset: i64,
    /// The sinks' durable frontier when it was recorded.
    pub frontier: i64,
}

/// Per-partition durable frontiers under `<output>/_live/<source>/`, written before the
/// matching consumer-group commit (Kafka commit metadata is not kept by every broker).
///
/// ```
/// use connectors::kafka::OffsetStore;
/// use connectors::store::Location;
/// let dir = tempfile::tempdir().unwrap();
/// let store = OffsetStore::new(Location::parse(dir.path().to_str().unwrap()).unwrap(), "trades");
/// assert_eq!(store.read("raw", 0).unwrap(), None);
/// store.write("raw", 0, 42, 7_200_000).unwrap();
/// assert_eq!(store.read("raw", 0).unwrap().unwrap().offset, 42);
/// assert_eq!(store.max_frontier("raw", &[0, 1]).unwrap(), Some(7_200_000));
/// ```
#[derive(Clone, Debug)]
pub struct OffsetStore {
    root: Location,
    source: String,
}

impl OffsetStore {
    /// The store of source `source` under the output root.
    pub fn new(root: Location, source: &str) -> OffsetStore {
        OffsetStore {
            root,
            source: source.to_string(),
        }
    }

    fn rel(&self, topic: &str, partition: i32) -> String {
        format!("_live/{}/{topic}/{partition}.json", self.source)
    }

    /// What was recorded for a partition, if anything.
    pub fn read(&self, topic: &str, partition: i32) -> Result<Option<StoredOffset>> {
        let rel = self.rel(topic, partition);
        match self.root.get(&rel)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                ConnectorError::format(
                    self.root.child_url(&rel),
                    format!("corrupt offsets file: {e}"),
                )
            }),
        }
    }

    /// Records a partition's first offset not durable and the durable frontier.
    pub fn write(&self, topic: &str, partition: i32, offset: i64, frontier: i64) -> Result<()> {
        let body = serde_json::to_vec(&StoredOffset { offset, frontier })
            .map_err(|e| ConnectorError::Kafka(e.to_string()))?;
        self.root.put(&self.rel(topic, partition), body)
    }

    /// The largest durable frontier recorded for any of `partitions`: every Parquet
    /// partition final at it was written before the job stopped.
    pub fn max_frontier(&self, topic: &str, partitions: &[i32]) -> Result<Option<i64>> {
        let mut best = None;
        for p in partitions {
            if let Some(s) = self.read(topic, *p)? {
                best = Some(best.map_or(s.frontier, |b: i64| b.max(s.frontier)));
            }
        }
        Ok(best)
    }
}
