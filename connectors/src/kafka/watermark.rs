//! Event-time bookkeeping of the live source, free of I/O: per-partition watermarks with
//! idleness, and which offsets are safe to commit once the sinks are durable.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Per-partition maximum event time and the watermark derived from it:
/// `min over live partitions of max event time − max_out_of_orderness`, never moving
/// backwards. A partition that has received nothing for `idle_timeout` stops holding
/// the watermark back; when every partition is idle the watermark follows the largest
/// event time seen (by this worker or, through `shared_max`, by its process).
///
/// ```
/// use std::time::{Duration, Instant};
/// use connectors::kafka::Watermarks;
/// let t0 = Instant::now();
/// let mut w = Watermarks::new(2, 2_000, Duration::from_secs(10), t0);
/// w.observe(0, 10_000, t0);
/// assert_eq!(w.advance(t0, i64::MIN), None); // partition 1 has not spoken yet
/// w.observe(1, 7_000, t0);
/// assert_eq!(w.advance(t0, i64::MIN), Some(5_000));
/// // partition 1 falls silent: after the idle timeout only partition 0 counts
/// w.observe(0, 20_000, t0 + Duration::from_secs(11));
/// assert_eq!(w.advance(t0 + Duration::from_secs(11), i64::MIN), Some(18_000));
/// ```
#[derive(Debug)]
pub struct Watermarks {
    max_ooo_ms: i64,
    idle: Duration,
    max_ts: Vec<Option<i64>>,
    last_seen: Vec<Instant>,
    current: Option<i64>,
    /// Whether an idle partition stops holding the watermark back.
    release_idle: bool,
}

impl Watermarks {
    /// Bookkeeping for `partitions` partitions, all considered active from `now`.
    pub fn new(partitions: usize, max_ooo_ms: i64, idle: Duration, now: Instant) -> Watermarks {
        Watermarks {
            max_ooo_ms,
            idle,
            max_ts: vec![None; partitions],
            last_seen: vec![now; partitions],
            current: None,
            release_idle: true,
        }
    }

    /// For a bounded re-read of records already in the topic: a silent partition is one
    /// the consumer has not fetched from yet, not one without data, so it keeps holding
    /// the watermark back (the result then does not depend on fetch timing); silence of
    /// every partition ([`Watermarks::all_idle`]) means the end.
    pub fn holding_idle(mut self) -> Watermarks {
        self.release_idle = false;
        self
    }

    /// Records an event of partition `p` (index into this worker's partitions).
    pub fn observe(&mut self, p: usize, ts: i64, now: Instant) {
        let m = &mut self.max_ts[p];
        *m = Some(m.map_or(ts, |m| m.max(ts)));
        self.last_seen[p] = now;
    }

    /// Marks partition `p` as active without an event (for example after a fetch).
    pub fn touch(&mut self, p: usize, now: Instant) {
        self.last_seen[p] = now;
    }

    /// The source left records unread for `held` (waiting for the sinks, or more queued
    /// than one activation takes): the partitions' silence clocks stand still for that
    /// long, so neither makes a partition idle.
    pub fn pause(&mut self, held: Duration, now: Instant) {
        for seen in &mut self.last_seen {
            *seen = (*seen + held).min(now);
        }
    }

    /// The largest event time seen by any partition of this worker.
    pub fn max_seen(&self) -> Option<i64> {
        self.max_ts.iter().flatten().copied().max()
    }

    /// The current watermark, if any event has been seen.
    pub fn current(&self) -> Option<i64> {
        self.current
    }

    /// True when every partition has been silent for the idle timeout at `now` (a
    /// bounded re-read has then reached the end of what its partitions hold).
    pub fn all_idle(&self, now: Instant) -> bool {
        self.last_seen
            .iter()
            .all(|seen| now.duration_since(*seen) >= self.idle)
    }

    /// When the next partition becomes idle, if any active partition would.
    pub fn next_idle_at(&self, now: Instant) -> Option<Instant> {
        self.last_seen
            .iter()
            .map(|t| *t + self.idle)
            .filter(|t| *t > now)
            .min()
    }

    /// Recomputes the watermark at `now` and returns it when it moved forward.
    /// `shared_max` is the largest event time seen by the process (or `i64::MIN`).
    pub fn advance(&mut self, now: Instant, shared_max: i64) -> Option<i64> {
        let mut live_min: Option<i64> = None;
        let mut any_live = false;
        for (m, seen) in self.max_ts.iter().zip(&self.last_seen) {
            if self.release_idle && now.duration_since(*seen) >= self.idle {
                continue;
            }
            any_live = true;
            match m {
                // A live partition that has said nothing yet holds everything back.
                None => return None,
                Some(m) => live_min = Some(live_min.map_or(*m, |x: i64| x.min(*m))),
            }
        }
        let candidate = if any_live {
            live_min?
        } else {
            let local = self.max_seen().unwrap_or(i64::MIN);
            let m = local.max(shared_max);
            if m == i64::MIN {
                return None;
            }
            m
        };
        let wm = candidate.saturating_sub(self.max_ooo_ms);
        if self.current.is_none_or(|c| wm > c) {
            self.current = Some(wm);
            return Some(wm);
        }
        None
    }
}

/// Records of one partition in offset order, in blocks, so that the offset to commit
/// (the first record whose outputs are not all durable) is known in O(1) memory per
/// block. A block is done when its largest event time is done; `done` must be monotone
/// in event time.
///
/// ```
/// use connectors::kafka::CommitTracker;
/// let mut c = CommitTracker::new(2);
/// for (off, ts) in [(10, 100), (11, 300), (12, 200), (13, 500)] { c.push(off, ts); }
/// assert_eq!(c.committable(|ts| ts < 250), Some(10)); // block [10, 11] holds ts 300
/// assert_eq!(c.committable(|ts| ts < 400), Some(12));
/// assert_eq!(c.committable(|ts| ts < 1000), Some(14));
/// ```
#[derive(Debug)]
pub struct CommitTracker {
    block: usize,
    /// (first offset, records, max ts) per block.
    blocks: VecDeque<(i64, usize, i64)>,
    next: Option<i64>,
    committed: Option<i64>,
}

impl CommitTracker {
    /// A tracker with blocks of `block` records.
    pub fn new(block: usize) -> CommitTracker {
        CommitTracker {
            block: block.max(1),
            blocks: VecDeque::new(),
            next: None,
            committed: None,
        }
    }

    /// Records that the record at `offset` (offsets increase) has event time `ts`.
    pub fn push(&mut self, offset: i64, ts: i64) {
        self.next = Some(offset + 1);
        match self.blocks.back_mut() {
            Some((_, n, max)) if *n < self.block => {
                *n += 1;
                *max = (*max).max(ts);
            }
            _ => self.blocks.push_back((offset, 1, ts)),
        }
    }

    /// Records a consumed offset that has no effect on any output (a reject or a
    /// record skipped after a restart).
    pub fn skip(&mut self, offset: i64) {
        if self.blocks.is_empty() {
            self.next = Some(offset + 1);
        } else {
            self.push(offset, i64::MIN);
        }
    }

    /// Drops finished blocks and returns the first offset whose record may not be done
    /// (`None` before any record was seen).
    pub fn position(&mut self, done: impl Fn(i64) -> bool) -> Option<i64> {
        while let Some(&(_, _, max)) = self.blocks.front() {
            if !done(max) {
                break;
            }
            self.blocks.pop_front();
        }
        match self.blocks.front() {
            Some(&(first, _, _)) => Some(first),
            None => self.next,
        }
    }

    /// Drops finished blocks and returns the offset to commit when it moved forward.
    pub fn committable(&mut self, done: impl Fn(i64) -> bool) -> Option<i64> {
        let offset = self.position(done)?;
        if self.committed.is_none_or(|c| offset > c) {
            self.committed = Some(offset);
            return Some(offset);
        }
        None
    }

    /// Records not yet committable.
    pub fn pending_blocks(&self) -> usize {
        self.blocks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_not_silent_while_the_source_leaves_records_unread() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(2);
        let mut w = Watermarks::new(2, 0, idle, t0);
        w.observe(0, 10_000, t0);
        w.observe(1, 5_000, t0);
        assert_eq!(w.advance(t0, i64::MIN), Some(5_000));
        // Partition 0 keeps talking; the source left records unread for 3 s of it.
        let t1 = t0 + Duration::from_secs(4);
        w.observe(0, 20_000, t1);
        w.pause(Duration::from_secs(3), t1);
        assert_eq!(
            w.advance(t1, i64::MIN),
            None,
            "partition 1 was silent 1 s only"
        );
        let t2 = t1 + Duration::from_secs(1);
        assert_eq!(w.advance(t2, i64::MIN), Some(20_000), "now 2 s");
    }

    #[test]
    fn idle_partitions_release_the_watermark_and_it_never_goes_back() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(5);
        let mut w = Watermarks::new(3, 1_000, idle, t0);
        w.observe(0, 50_000, t0);
        w.observe(1, 40_000, t0);
        assert_eq!(w.advance(t0, i64::MIN), None, "partition 2 never spoke");
        let t1 = t0 + idle;
        w.observe(0, 60_000, t1);
        w.observe(1, 45_000, t1);
        assert_eq!(w.advance(t1, i64::MIN), Some(44_000));
        // Every partition silent: the watermark follows the largest event time seen.
        let t2 = t1 + idle;
        assert_eq!(w.advance(t2, i64::MIN), Some(59_000));
        assert_eq!(w.advance(t2, 80_000), Some(79_000));
        // Partition 1 wakes up with an old event: no step back.
        w.observe(1, 46_000, t2);
        assert_eq!(w.advance(t2, i64::MIN), None);
        assert_eq!(w.current(), Some(79_000));
    }

    #[test]
    fn a_replay_keeps_silent_partitions_and_ends_when_all_are_silent() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(1);
        let mut w = Watermarks::new(2, 1_000, idle, t0).holding_idle();
        w.observe(0, 50_000, t0);
        w.observe(1, 40_000, t0);
        assert_eq!(w.advance(t0, i64::MIN), Some(39_000));
        // Partition 1 not fetched for a while: it still holds the watermark.
        let t1 = t0 + idle * 3;
        w.observe(0, 90_000, t1);
        assert_eq!(w.advance(t1, i64::MIN), None);
        assert!(!w.all_idle(t1));
        assert!(w.all_idle(t1 + idle));
    }

    #[test]
    fn commit_offsets_follow_the_first_record_not_durable() {
        let mut c = CommitTracker::new(3);
        assert_eq!(c.committable(|_| true), None);
        c.skip(4);
        assert_eq!(c.committable(|_| true), Some(5));
        // Blocks of 3 records: [5..=7] max 3, [8..=10] max 9, [11..=13] max 8, [14] max 9.
        for (o, ts) in (5..15).zip([1, 2, 3, 9, 4, 5, 6, 7, 8, 9]) {
            c.push(o, ts);
        }
        assert_eq!(c.committable(|ts| ts < 3), None);
        assert_eq!(c.committable(|ts| ts < 5), Some(8));
        assert_eq!(c.pending_blocks(), 3);
        assert_eq!(
            c.committable(|ts| ts < 9),
            None,
            "offset 8 still holds ts 9"
        );
        assert_eq!(c.committable(|ts| ts < 10), Some(15));
        assert_eq!(c.committable(|ts| ts < 10), None);
    }
}
