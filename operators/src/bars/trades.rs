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
    /// The trades, in arrival order.
    trades: Vec<Trade>,
}

/// Pending trades and dedup memory of one symbol on one shard.
#[derive(Default)]
pub(crate) struct TradeState {
    /// Trades of not-yet-final windows of the finest resolution, in arrival order,
    /// in runs with their time bounds: finalize moves a run that is all final whole
    /// and skips one that is all in the future without looking at its trades.
    pending: Vec<Run>,
    /// Least event time in `pending` (None when empty): finalize skips the scan of
    /// `pending` when no trade can be final.
    pending_min: Option<i64>,
    /// Scratch: the trades being finalized.
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
        self.pending_min = Some(self.pending_min.map_or(min, |p| p.min(min)));
        match self.pending.last_mut() {
            // Small runs (live input) are joined so the list stays short.
            Some(last) if last.trades.len() + trades.len() <= SMALL_RUN => {
                last.trades.extend_from_slice(&trades);
                last.min = last.min.min(min);
                last.max = last.max.max(max);
            }
            _ => self.pending.push(Run { min, max, trades }),
        }
    }

    /// Sums the trades of every finest window that ends at or before `frontier` into
    /// parts, oldest first. Trades of windows sent by an earlier call (late trades)
    /// make parts too while within the allowed lateness, and are rejected after it.
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
        let cut = if frontier == i64::MAX {
            i64::MAX
        } else {
            frontier.div_euclid(plan.finest) * plan.finest
        };
        let is_final = |t: &Trade| frontier == i64::MAX || t.ts_ms < cut;
        if self
            .pending_min
            .is_some_and(|m| frontier == i64::MAX || m < cut)
        {
            let ready = &mut self.ready;
            let mut least = i64::MAX;
            self.pending.retain_mut(|run| {
                if frontier == i64::MAX || run.max < cut {
                    if ready.is_empty() {
                        std::mem::swap(ready, &mut run.trades);
                    } else {
                        ready.extend_from_slice(&run.trades);
                    }
                    return false;
                }
                if run.min < cut {
                    ready.reserve(run.trades.len());
                    let mut run_least = i64::MAX;
                    run.trades.retain(|t| {
                        let keep = !is_final(t);
                        if keep {
                            run_least = run_least.min(t.ts_ms);
                        } else {
                            ready.push(*t);
                        }
                        keep
                    });
                    run.min = run_least;
                }
                least = least.min(run.min);
                true
            });
            self.pending_min = (!self.pending.is_empty()).then_some(least);
        }
        if !self.ready.is_empty() {
            // Stable, so equal keys keep their arrival order (SPEC section 5).
            self.ready.sort_by_key(Trade::order_key);
            let mut ready = std::mem::take(&mut self.ready);
            // Windows sent by an earlier call; sorted by time, their trades are a prefix.
            let late = self.closed_to.map_or(0, |f| {
                let prev_cut = f.div_euclid(plan.finest) * plan.finest;
                ready.partition_point(|t| t.ts_ms < prev_cut)
            });
            let horizon = self
                .closed_to
                .unwrap_or(i64::MIN)
                .saturating_sub(plan.lateness_ms);
            for (trades, is_late) in [(&ready[..late], true), (&ready[late..], false)] {
                for (start, window) in windows(trades, plan.finest) {
                    if is_late && start.saturating_add(plan.finest) <= horizon {
                        rejects.extend(window.iter().map(|t| late_trade(symbol, t, horizon)));
                        continue;
                    }
                    if let Some(acc) = self.accumulate(symbol, window, rejects) {
                        parts.push(Part {
                            resolution_ms: plan.finest,
                            start,
                            acc,
                        });
                    }
                }
            }
            ready.clear();
            self.ready = ready;
        }
        self.seen
            .expire(frontier.saturating_sub(plan.dedup_horizon_ms));
        self.closed_to = Some(frontier);
    }

    /// The bar of one window's final trades, rejecting trade ids already seen as
    /// duplicates; `None` when every trade was a duplicate.
    fn accumulate(
        &mut self,
        symbol: &str,
        trades: &[Trade],
        rejects: &mut Vec<Reject>,
    ) -> Option<BarAcc> {
        let mut acc: Option<BarAcc> = None;
        for t in trades {
            if t.trade_id != NO_TRADE_ID && !self.seen.insert(t.exchange, t.trade_id, t.ts_ms) {
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

    /// True when no trade is pending (dedup memory aside).
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Approximate number of records held.
    pub fn size(&self) -> usize {
        self.pending.iter().map(|r| r.trades.len()).sum::<usize>() + self.seen.len()
    }
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
