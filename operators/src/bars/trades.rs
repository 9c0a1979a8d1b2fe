//! Stage one of the bars operator: the trades of one symbol on one trade shard,
//! buffered until their finest window is final, then deduplicated and summed into
//! partial bars ([`Part`]s) that stage two merges per symbol.

use serde::{Deserialize, Serialize};

use crate::bars::acc::BarAcc;
use crate::bars::dedup::Dedup;
use crate::{Candle, Reject, RejectReason, Symbol, Trade, NO_TRADE_ID};

/// A partial bar: `acc` belongs to the window of `resolution_ms` starting at `start`,
/// and to the window containing it at every configured multiple of `resolution_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// The resolution the part was built at (the finest for trades, the candle's own).
    pub resolution_ms: i64,
    /// Window start at that resolution.
    pub start: i64,
    /// The partial bar.
    pub acc: BarAcc,
}

/// Partial bars of one symbol: the unit stage one sends to stage two, routed by symbol.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PartBatch {
    /// The instrument.
    pub symbol: Symbol,
    /// Its partial bars.
    pub parts: Vec<Part>,
}

/// What the operator needs to know about resolutions.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// The finest configured resolution, built from trades.
    pub finest: i64,
    /// Every configured resolution, ascending.
    pub all: Vec<i64>,
    /// How long trade ids are remembered behind the frontier, in ms.
    pub dedup_horizon_ms: i64,
    /// How long emitted bars can still be restated, in ms behind the frontier.
    pub lateness_ms: i64,
}

/// The part of a candle: at its own resolution (stage two adds it to the multiples).
pub(crate) fn candle_part(c: &Candle) -> Part {
    let r = c.resolution_ms;
    Part {
        resolution_ms: r,
        start: c.ts_ms.div_euclid(r) * r,
        acc: BarAcc::from_candle(c),
    }
}

/// Runs of pending trades up to this length are joined into one.
const SMALL_RUN: usize = 1024;

/// Pending trades of one input batch (or of several small ones) and their time bounds.
#[derive(Default)]
struct Run {
    /// Least event time in `trades`.
    min: i64,
    /// Greatest event time in `trades`.
    max: i64,
    /// True when `trades` are in `(ts_ms, trade_id, seq)` order (as a time-sorted
    /// input gives them); finalize sorts a run that is not.
    sorted: bool,
    /// The trades, in arrival order until sorted.
    trades: Vec<Trade>,
}

/// Pending trades and dedup memory of one symbol on one shard.
#[derive(Default)]
pub(crate) struct TradeState {
    /// Trades of not-yet-final windows of the finest resolution, in runs with their
    /// time bounds: finalize takes the final prefix of each run (sorted) and skips one
    /// that is all in the future without looking at its trades.
    pending: Vec<Run>,
    /// Least event time in `pending` (None when empty): finalize skips the scan of
    /// `pending` when no trade can be final.
    pending_min: Option<i64>,
    /// Scratch: the final trades of runs that interleave, merged and sorted.
    ready: Vec<Trade>,
    /// Trade ids kept within the dedup horizon.
    seen: Dedup,
    /// The frontier of the last `finalize`: windows ending at or before it were sent.
    closed_to: Option<i64>,
}

impl TradeState {
    /// Buffers trades; they are aggregated when their window is final.
    pub fn push_trades(&mut self, trades: Vec<Trade>) {
        let Some(first) = trades.first() else { return };
        let (min, max) = trades
            .iter()
            .fold((first.ts_ms, first.ts_ms), |(lo, hi), t| {
                (lo.min(t.ts_ms), hi.max(t.ts_ms))
            });
        let sorted = trades.is_sorted_by_key(Trade::order_key);
        let first_key = first.order_key();
        self.pending_min = Some(self.pending_min.map_or(min, |p| p.min(min)));
        match self.pending.last_mut() {
            // Small runs (live input) are joined so the list stays short.
            Some(last) if last.trades.len() + trades.len() <= SMALL_RUN => {
                last.sorted = last.sorted
                    && sorted
                    && last.trades.last().map(Trade::order_key) < Some(first_key);
                last.trades.extend_from_slice(&trades);
                last.min = last.min.min(min);
                last.max = last.max.max(max);
            }
            _ => self.pending.push(Run {
                min,
                max,
                sorted,
                trades,
            }),
        }
    }

    /// Sums the trades of every finest window that ends at or before `frontier` into
    /// parts, oldest first. Trades of windows sent by an earlier call (late trades)
    /// make parts too while within the allowed lateness, and are rejected after it.
    ///
    /// The final trades of each run are a prefix once the run is sorted. When those
    /// prefixes follow each other in key order and hold no late trade (the usual case:
    /// runs are chunks of time-sorted inputs), each is summed where it lies; a window
    /// cut between two of them gives two parts, which stage two merges exactly.
    /// Otherwise they are merged and sorted first.
    pub fn finalize(
        &mut self,
        symbol: &str,
        plan: &Plan,
        frontier: i64,
        parts: &mut Vec<Part>,
        rejects: &mut Vec<Reject>,
    ) {
        // A trade is final when its finest window ends at or before the frontier,
        // that is when it is before the last window boundary at or before it.
        let all = frontier == i64::MAX;
        let cut = if all {
            i64::MAX
        } else {
            frontier.div_euclid(plan.finest) * plan.finest
        };
        let emit = Emit {
            symbol,
            plan,
            prev_cut: self
                .closed_to
                .map(|f| f.div_euclid(plan.finest) * plan.finest),
            horizon: self
                .closed_to
                .unwrap_or(i64::MIN)
                .saturating_sub(plan.lateness_ms),
        };
        if self.pending_min.is_some_and(|m| all || m < cut) {
            let TradeState {
                pending,
                ready,
                seen,
                ..
            } = self;
            // (run, length of its final prefix), in key order of their first trades.
            let mut finals: Vec<(usize, usize)> = Vec::new();
            for (i, run) in pending.iter_mut().enumerate() {
                if !all && run.min >= cut {
                    continue;
                }
                if !run.sorted {
                    // Stable, so equal keys keep their arrival order: bars open and close by
                    // (ts_ms, trade_id, input order).
                    run.trades.sort_by_key(Trade::order_key);
                    run.sorted = true;
                }
                let n = if all || run.max < cut {
                    run.trades.len()
                } else {
                    run.trades.partition_point(|t| t.ts_ms < cut)
                };
                if n > 0 {
                    finals.push((i, n));
                }
            }
            let first = |&(i, _): &(usize, usize)| pending[i].trades[0].order_key();
            finals.sort_by_key(first);
            let in_place = finals.windows(2).all(|w| {
                let (a, n) = w[0];
                pending[a].trades[n - 1].order_key() < first(&w[1])
            }) && finals.iter().all(|&(i, _)| {
                emit.prev_cut
                    .is_none_or(|p| pending[i].trades[0].ts_ms >= p)
            });
            if in_place {
                for &(i, n) in &finals {
                    emit.sorted(&pending[i].trades[..n], seen, parts, rejects);
                }
            } else {
                // Interleaved runs, or late trades: merged, so that every window (a
                // late one is restated once) gets one part.
                for &(i, n) in &finals {
                    ready.extend_from_slice(&pending[i].trades[..n]);
                }
                ready.sort_by_key(Trade::order_key);
                emit.sorted(ready, seen, parts, rejects);
                ready.clear();
            }
            for &(i, n) in &finals {
                let run = &mut pending[i];
                if n == run.trades.len() {
                    run.trades = Vec::new();
                } else {
                    run.trades.drain(..n);
                    run.min = run.trades[0].ts_ms;
                }
            }
            pending.retain(|r| !r.trades.is_empty());
            self.pending_min = self.pending.iter().map(|r| r.min).min();
        }
        self.seen
            .expire(frontier.saturating_sub(plan.dedup_horizon_ms));
        self.closed_to = Some(frontier);
    }

    /// True when no trade is pending (dedup memory aside).
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Approximate number of records held.
    pub fn size(&self) -> usize {
        self.pending.iter().map(|r| r.trades.len()).sum::<usize>() + self.seen.len()
    }
}

/// How the final trades of one `finalize` call become parts.
struct Emit<'a> {
    symbol: &'a str,
    plan: &'a Plan,
    /// The last window boundary of the previous call: trades before it are late.
    prev_cut: Option<i64>,
    /// Windows ending at or before it are past the allowed lateness.
    horizon: i64,
}

impl Emit<'_> {
    /// Parts of `trades` (sorted by order key), one per finest window: late windows
    /// within the allowed lateness too, later ones rejected.
    fn sorted(
        &self,
        trades: &[Trade],
        seen: &mut Dedup,
        parts: &mut Vec<Part>,
        rejects: &mut Vec<Reject>,
    ) {
        let finest = self.plan.finest;
        let late = self
            .prev_cut
            .map_or(0, |p| trades.partition_point(|t| t.ts_ms < p));
        for (trades, is_late) in [(&trades[..late], true), (&trades[late..], false)] {
            for (start, window) in windows(trades, finest) {
                if is_late && start.saturating_add(finest) <= self.horizon {
                    let symbol = self.symbol;
                    rejects.extend(window.iter().map(|t| late_trade(symbol, t, self.horizon)));
                    continue;
                }
                if let Some(acc) = accumulate(seen, self.symbol, window, rejects) {
                    parts.push(Part {
                        resolution_ms: finest,
                        start,
                        acc,
                    });
                }
            }
        }
    }
}

/// The bar of one window's final trades, rejecting trade ids already seen as
/// duplicates; `None` when every trade was a duplicate.
fn accumulate(
    seen: &mut Dedup,
    symbol: &str,
    trades: &[Trade],
    rejects: &mut Vec<Reject>,
) -> Option<BarAcc> {
    let mut acc: Option<BarAcc> = None;
    for t in trades {
        if t.trade_id != NO_TRADE_ID && !seen.insert(t.exchange, t.trade_id, t.ts_ms) {
            rejects.push(duplicate(symbol, t));
            continue;
        }
        match acc.as_mut() {
            Some(a) => a.push_trade(t),
            None => acc = Some(BarAcc::from_trade(t)),
        }
    }
    acc
}

/// Trades sorted by time, grouped by finest window: `(window start, trades)`.
///
/// One division per window, not per trade: a trade is in the window of the one before
/// it while it is less than `finest` after the window's start.
fn windows(trades: &[Trade], finest: i64) -> impl Iterator<Item = (i64, &[Trade])> {
    let mut rest = trades;
    std::iter::from_fn(move || {
        let start = rest.first()?.ts_ms.div_euclid(finest) * finest;
        // Sorted by time, so every trade is at or after `start`: the difference fits u64.
        let n = rest
            .iter()
            .position(|t| t.ts_ms.wrapping_sub(start) as u64 >= finest as u64)
            .unwrap_or(rest.len());
        let (window, tail) = rest.split_at(n);
        rest = tail;
        Some((start, window))
    })
}

fn trade_json(symbol: &str, t: &Trade) -> String {
    format!(
        r#"{{"ts_ms":{},"symbol":{:?},"price":{},"qty":{},"is_buyer_maker":{},"trade_id":{}}}"#,
        t.ts_ms, symbol, t.price, t.qty, t.is_buyer_maker, t.trade_id
    )
}

fn duplicate(symbol: &str, t: &Trade) -> Reject {
    Reject {
        reason: RejectReason::Duplicate,
        source: String::new(),
        position: 0,
        seq: t.seq,
        detail: format!("trade_id {} of {} already seen", t.trade_id, symbol),
        raw: trade_json(symbol, t),
    }
}

fn late_trade(symbol: &str, t: &Trade, horizon: i64) -> Reject {
    Reject {
        reason: RejectReason::Late,
        source: String::new(),
        position: 0,
        seq: t.seq,
        detail: format!(
            "event time {} is behind the watermark minus the allowed lateness ({horizon})",
            t.ts_ms
        ),
        raw: trade_json(symbol, t),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn plan() -> Plan {
        Plan {
            finest: 1000,
            all: vec![1000],
            dedup_horizon_ms: 60_000,
            lateness_ms: 0,
        }
    }

    fn trade(ts_ms: i64, id: i64, price: f64) -> Trade {
        Trade {
            ts_ms,
            trade_id: id,
            seq: id as u64,
            exchange: 0,
            price,
            qty: 1.0 + (id % 3) as f64,
            is_buyer_maker: id % 2 == 0,
        }
    }

    /// Runs through `finalize` at each frontier; the parts merged per window.
    fn bars_of(runs: Vec<Vec<Trade>>, frontiers: &[i64]) -> (BTreeMap<i64, BarAcc>, usize) {
        let mut state = TradeState::default();
        for run in runs {
            state.push_trades(run);
        }
        let (mut parts, mut rejects) = (Vec::new(), Vec::new());
        for &f in frontiers {
            state.finalize("X", &plan(), f, &mut parts, &mut rejects);
        }
        let mut out: BTreeMap<i64, BarAcc> = BTreeMap::new();
        for p in parts {
            match out.get_mut(&p.start) {
                Some(acc) => acc.merge(&p.acc),
                None => {
                    out.insert(p.start, p.acc);
                }
            }
        }
        (out, rejects.len())
    }

    #[test]
    fn runs_summed_in_place_or_merged_give_the_same_bars_and_duplicates() {
        // 40 trades over 4 windows; id 7 repeated later (a duplicate).
        let mut all: Vec<Trade> = (0..40)
            .map(|i| trade(i * 100, i, 100.0 + i as f64))
            .collect();
        all.push(trade(3_950, 7, 1.0));
        all.sort_by_key(Trade::order_key);
        let frontiers = [1_500, 2_000, 3_700, i64::MAX];
        let want = bars_of(vec![all.clone()], &frontiers);
        assert_eq!(want.0.len(), 4);
        assert_eq!(want.1, 1, "one duplicate");
        // Consecutive sorted runs, cut inside windows: summed in place.
        let split: Vec<Vec<Trade>> = [0, 5, 13, 22, 41]
            .windows(2)
            .map(|w| all[w[0]..w[1]].to_vec())
            .collect();
        assert_eq!(bars_of(split, &frontiers), want);
        // The same runs arriving out of order, and one run reversed: merged first.
        let mut shuffled: Vec<Vec<Trade>> = [0, 5, 13, 22, 41]
            .windows(2)
            .map(|w| all[w[0]..w[1]].to_vec())
            .collect();
        shuffled.swap(0, 2);
        shuffled[1].reverse();
        assert_eq!(bars_of(shuffled, &frontiers), want);
        // Interleaved runs (every other trade).
        let (even, odd): (Vec<Trade>, Vec<Trade>) = all.iter().partition(|t| t.trade_id % 2 == 0);
        assert_eq!(bars_of(vec![odd, even], &frontiers), want);
    }
}
