//! Back-pressure for the sources: a live source holds off reading while more of its
//! records than a budget are read but not yet passed by every sink ([`Pacer`]); every
//! source times its waits ([`HoldClock`]) for the progress line and the metrics.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use timely::dataflow::operators::probe::Handle as ProbeHandle;

/// Records a live source may have read past what every sink has passed, when the rows
/// out do not grow with the symbols (8 file chunks' worth of a backfill).
pub const LIVE_AHEAD_RECORDS: u64 = 8 * 65_536;

/// How long a source holding off waits before looking at the sinks again.
pub const HOLD_RETRY: Duration = Duration::from_millis(1);

/// Longest a source waits for a sink frontier that does not move at all: after this it
/// reads one more round, so an operator that holds a capability for reasons of its own
/// can never stall the job (the wait is then only a slower read).
pub const STUCK_AFTER: Duration = Duration::from_secs(2);

/// What a source has read and the sinks have not passed, by the timely time it was
/// emitted at.
///
/// Only records emitted before the source's current capability count: work at that
/// capability can finish only once the source moves on, so counting it could make the
/// source wait for itself.
///
/// ```
/// use connectors::pace::Pacer;
/// use std::time::Instant;
/// use timely::dataflow::operators::probe::Handle;
/// let probe = Handle::<i64>::new(); // an empty frontier: everything passed
/// let mut p = Pacer::new(10);
/// p.emitted(5, 100);
/// assert!(!p.hold(&probe, 6, Instant::now()));
/// assert_eq!(p.in_flight(), 0);
/// ```
#[derive(Debug)]
pub struct Pacer {
    budget: u64,
    /// (time emitted at, records), times nondecreasing.
    emitted: VecDeque<(i64, u64)>,
    /// When the sink frontier last moved, and where it was.
    moved: Option<(Instant, Option<i64>)>,
}

impl Pacer {
    /// A pacer allowing `budget` records in flight.
    pub fn new(budget: u64) -> Pacer {
        Pacer {
            budget: budget.max(1),
            emitted: VecDeque::new(),
            moved: None,
        }
    }

    /// The budget for a source whose rows out grow with `symbols` (a pairwise set: an
    /// input record brings about `symbols / 2` pair rows), scaled as a backfill's
    /// read-ahead is ([`crate::files::width_budget`]).
    pub fn budget_for(pairwise: bool, symbols: usize) -> u64 {
        if pairwise {
            crate::files::width_budget(LIVE_AHEAD_RECORDS as usize, symbols) as u64
        } else {
            LIVE_AHEAD_RECORDS
        }
    }

    /// The source has seen `symbols` distinct symbols: the budget follows them when
    /// `pairwise` (see [`Pacer::budget_for`]).
    pub fn widen(&mut self, pairwise: bool, symbols: usize) {
        if pairwise {
            self.budget = Self::budget_for(true, symbols).max(1);
        }
    }

    /// `records` were emitted at timely time `time`.
    pub fn emitted(&mut self, time: i64, records: u64) {
        if records == 0 {
            return;
        }
        match self.emitted.back_mut() {
            Some((t, n)) if *t == time => *n += records,
            _ => self.emitted.push_back((time, records)),
        }
    }

    /// Records emitted and not passed by the sinks when [`Pacer::hold`] last looked.
    pub fn in_flight(&self) -> u64 {
        self.emitted.iter().map(|(_, n)| n).sum()
    }

    /// True when the source should not read now: the records it emitted before `cap`
    /// (its capability) that `sinks` has not passed exceed the budget, and the sinks'
    /// frontier moved within [`STUCK_AFTER`].
    pub fn hold(&mut self, sinks: &ProbeHandle<i64>, cap: i64, now: Instant) -> bool {
        while let Some((t, _)) = self.emitted.front() {
            if sinks.less_equal(t) {
                break;
            }
            self.emitted.pop_front();
        }
        let before_cap: u64 = self
            .emitted
            .iter()
            .take_while(|(t, _)| *t < cap)
            .map(|(_, n)| n)
            .sum();
        let frontier = sinks.with_frontier(|f| f.first().copied());
        match self.moved {
            Some((_, f)) if f == frontier => {}
            _ => self.moved = Some((now, frontier)),
        }
        let stuck = self
            .moved
            .is_some_and(|(at, _)| now.duration_since(at) >= STUCK_AFTER);
        if stuck {
            // Read one round; the clock starts again.
            self.moved = Some((now, frontier));
        }
        before_cap > self.budget && !stuck
    }
}

/// Times a source's waits for the sinks.
///
/// ```
/// use std::time::{Duration, Instant};
/// use connectors::pace::HoldClock;
/// let (mut c, t) = (HoldClock::default(), Instant::now());
/// assert_eq!(c.tick(true, t), Duration::ZERO);
/// assert_eq!(c.tick(false, t + Duration::from_millis(7)), Duration::from_millis(7));
/// assert_eq!(c.tick(false, t + Duration::from_millis(9)), Duration::ZERO);
/// ```
#[derive(Debug, Default)]
pub struct HoldClock {
    since: Option<Instant>,
}

impl HoldClock {
    /// Called at every activation with whether the source holds off now: returns the
    /// time held off since the previous call (zero unless it was holding off then).
    pub fn tick(&mut self, holding: bool, now: Instant) -> Duration {
        let held = self
            .since
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        self.since = holding.then_some(now);
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timely::dataflow::operators::{Input, Probe};

    #[test]
    fn holds_past_the_budget_until_the_sinks_pass_and_never_counts_the_capability() {
        timely::execute_directly(|worker| {
            let (mut input, probe) = worker.dataflow::<i64, _, _>(|scope| {
                let (input, stream) = scope.new_input::<Vec<u64>>();
                (input, stream.probe().0)
            });
            let mut p = Pacer::new(10);
            input.advance_to(1);
            worker.step();
            // 20 records at the capability itself: never a reason to wait.
            p.emitted(1, 20);
            assert!(!p.hold(&probe, 1, Instant::now()));
            // The capability moves on; the sinks are still at 1.
            input.advance_to(2);
            assert!(p.hold(&probe, 2, Instant::now()));
            p.emitted(2, 5);
            // Once the sinks pass 1, only the 5 records at 2 are left.
            while probe.less_equal(&1) {
                worker.step();
            }
            assert!(!p.hold(&probe, 3, Instant::now()));
            assert_eq!(p.in_flight(), 5);
        });
    }

    #[test]
    fn a_frontier_that_does_not_move_stops_holding_after_a_while() {
        timely::execute_directly(|worker| {
            let (mut input, probe) = worker.dataflow::<i64, _, _>(|scope| {
                let (input, stream) = scope.new_input::<Vec<u64>>();
                (input, stream.probe().0)
            });
            input.advance_to(1);
            while probe.less_than(&1) {
                worker.step();
            }
            let mut p = Pacer::new(1);
            p.emitted(0, 5);
            assert!(
                !p.hold(&probe, 1, Instant::now()),
                "the sinks passed time 0"
            );
            p.emitted(1, 5);
            assert!(p.hold(&probe, 2, Instant::now()));
            p.moved = p.moved.map(|(at, f)| (at - STUCK_AFTER, f));
            assert!(
                !p.hold(&probe, 2, Instant::now()),
                "stuck: one round is read"
            );
            assert!(
                p.hold(&probe, 2, Instant::now()),
                "and the clock starts again"
            );
        });
    }

    #[test]
    fn the_budget_shrinks_with_the_symbols_of_a_pairwise_set() {
        assert_eq!(Pacer::budget_for(false, 500), LIVE_AHEAD_RECORDS);
        assert_eq!(Pacer::budget_for(true, 4), LIVE_AHEAD_RECORDS);
        assert_eq!(Pacer::budget_for(true, 200), LIVE_AHEAD_RECORDS * 8 / 200);
    }
}
