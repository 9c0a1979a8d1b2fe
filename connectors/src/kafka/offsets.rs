//! When a live record's outputs are durable ([`DoneRule`]): a restarted job resumes from
//! the offsets of a checkpoint cut and skips records whose outputs are all before it.

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
