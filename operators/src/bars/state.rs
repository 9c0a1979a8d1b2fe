//! Per-symbol state of the bars operator: buffered trades, open windows and the
//! dedup horizon.

use std::collections::BTreeMap;

use crate::bars::acc::{Bar, BarAcc};
use crate::bars::dedup::Dedup;
use crate::{Candle, Reject, RejectReason, Trade, NO_TRADE_ID};

/// Open windows and dedup memory of one symbol.
#[derive(Default)]
pub(crate) struct SymbolState {
    /// Trades of not-yet-final windows of the finest resolution, in arrival order.
    pending: Vec<Trade>,
    /// Least event time in `pending` (None when empty): finalize skips the scan of
    /// `pending` when no trade can be final.
    pending_min: Option<i64>,
    /// Scratch: the trades being finalized.
    ready: Vec<Trade>,
    /// Partial bars of coarser (and candle) resolutions: `(resolution_ms, start) -> acc`.
    accs: BTreeMap<i64, BTreeMap<i64, BarAcc>>,
    /// Trade ids kept within the dedup horizon.
    seen: Dedup,
    /// Emitted bars kept for restatement within the allowed lateness:
    /// `(resolution_ms, start) -> (acc, revision)`.
    emitted: BTreeMap<i64, BTreeMap<i64, (BarAcc, u32)>>,
    /// Candle parts that fell into windows already emitted: `(resolution_ms, start, acc)`.
    late_candles: Vec<(i64, i64, BarAcc)>,
    /// The frontier of the last `finalize`: windows ending at or before it were emitted.
    closed_to: Option<i64>,
}

/// What the operator needs to know about resolutions.
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

impl SymbolState {
    /// Buffers trades; they are aggregated when their window is final.
    pub fn push_trades(&mut self, trades: &[Trade]) {
        self.pending.extend_from_slice(trades);
        if let Some(m) = trades.iter().map(|t| t.ts_ms).min() {
            self.pending_min = Some(self.pending_min.map_or(m, |p| p.min(m)));
        }
    }

    /// Adds candles at their own resolution and every configured multiple of it.
    pub fn push_candles(&mut self, plan: &Plan, candles: &[Candle]) {
        for c in candles {
            let acc = BarAcc::from_candle(c);
            let targets = std::iter::once(c.resolution_ms).chain(
                plan.all
                    .iter()
                    .copied()
                    .filter(|r| *r > c.resolution_ms && r % c.resolution_ms == 0),
            );
            for r in targets {
                let start = c.ts_ms.div_euclid(r) * r;
                if self.closed_to.is_some_and(|f| start.saturating_add(r) <= f) {
                    self.late_candles.push((r, start, acc.clone()));
                } else {
                    merge_into(self.accs.entry(r).or_default(), start, &acc);
                }
            }
        }
    }

    /// Emits every window that ends at or before `frontier`, oldest first.
    pub fn finalize(
        &mut self,
        symbol: &str,
        plan: &Plan,
        frontier: i64,
        bars: &mut Vec<Bar>,
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
            if self.pending.iter().all(is_final) {
                std::mem::swap(ready, &mut self.pending);
                self.pending_min = None;
            } else {
                let mut least = i64::MAX;
                self.pending.retain(|t| {
                    let keep = !is_final(t);
                    if keep {
                        least = least.min(t.ts_ms);
                    } else {
                        ready.push(*t);
                    }
                    keep
                });
                self.pending_min = Some(least);
            }
        }
        if !self.ready.is_empty() {
            // Stable, so equal keys keep their arrival order (SPEC section 5).
            self.ready.sort_by_key(Trade::order_key);
            let mut ready = std::mem::take(&mut self.ready);
            // Trades of windows emitted by an earlier call restate them; sorted by
            // time, they are a prefix.
            let late = self.closed_to.map_or(0, |f| {
                let prev_cut = f.div_euclid(plan.finest) * plan.finest;
                ready.partition_point(|t| t.ts_ms < prev_cut)
            });
            self.restate(symbol, plan, &ready[..late], bars, rejects);
            self.aggregate(symbol, plan, &ready[late..], bars, rejects);
            ready.clear();
            self.ready = ready;
        }
        let horizon = self.restate_horizon(plan);
        for (r, start, acc) in std::mem::take(&mut self.late_candles) {
            if start.saturating_add(r) <= horizon {
                rejects.push(late_candle(symbol, r, start, horizon));
            } else {
                self.restate_window(symbol, r, start, &acc, bars);
            }
        }
        let keep = plan.lateness_ms > 0;
        for (&r, windows) in self.accs.iter_mut() {
            while let Some(entry) = windows.first_entry() {
                if entry.key().saturating_add(r) > frontier {
                    break;
                }
                let (start, acc) = entry.remove_entry();
                bars.push(acc.finish(symbol, r, start));
                if keep {
                    self.emitted.entry(r).or_default().insert(start, (acc, 0));
                }
            }
        }
        // No trade the sources accept can reach a window ending lateness behind.
        let horizon = frontier.saturating_sub(plan.lateness_ms);
        for (&r, windows) in self.emitted.iter_mut() {
            while let Some(entry) = windows.first_entry() {
                if entry.key().saturating_add(r) > horizon {
                    break;
                }
                entry.remove();
            }
        }
        self.seen
            .expire(frontier.saturating_sub(plan.dedup_horizon_ms));
        self.closed_to = Some(frontier);
    }

    /// Windows ending at or before this can no longer be restated: the frontier of the
    /// last `finalize` minus the allowed lateness.
    fn restate_horizon(&self, plan: &Plan) -> i64 {
        self.closed_to
            .unwrap_or(i64::MIN)
            .saturating_sub(plan.lateness_ms)
    }

    /// Applies trades whose finest windows were already emitted: within the allowed
    /// lateness every bar containing them is emitted again with `revision` + 1 (a bar
    /// still open takes them as usual); older ones are rejected as `late`.
    fn restate(
        &mut self,
        symbol: &str,
        plan: &Plan,
        trades: &[Trade],
        bars: &mut Vec<Bar>,
        rejects: &mut Vec<Reject>,
    ) {
        let horizon = self.restate_horizon(plan);
        for (start, window) in windows(trades, plan.finest) {
            if start.saturating_add(plan.finest) <= horizon {
                rejects.extend(window.iter().map(|t| late(symbol, t, horizon)));
                continue;
            }
            let Some(acc) = self.accumulate(symbol, window, rejects) else {
                continue;
            };
            for &r in &plan.all {
                self.restate_window(symbol, r, start.div_euclid(r) * r, &acc, bars);
            }
        }
    }

    /// Merges `acc` into window `(r, start)`: an emitted window is emitted again with
    /// its revision + 1, an emitted-empty one for the first time, an open one waits.
    fn restate_window(
        &mut self,
        symbol: &str,
        r: i64,
        start: i64,
        acc: &BarAcc,
        bars: &mut Vec<Bar>,
    ) {
        if self.closed_to.is_none_or(|f| start.saturating_add(r) > f) {
            merge_into(self.accs.entry(r).or_default(), start, acc);
            return;
        }
        let windows = self.emitted.entry(r).or_default();
        let (merged, revision) = match windows.get_mut(&start) {
            Some((a, rev)) => {
                a.merge(acc);
                *rev += 1;
                (a.clone(), *rev)
            }
            None => {
                windows.insert(start, (acc.clone(), 0));
                (acc.clone(), 0)
            }
        };
        let mut bar = merged.finish(symbol, r, start);
        bar.revision = revision;
        bars.push(bar);
    }

    /// Aggregates final trades sorted by their order key into finest bars (and rolls
    /// those up into the coarser resolutions), rejecting duplicate trade ids.
    fn aggregate(
        &mut self,
        symbol: &str,
        plan: &Plan,
        trades: &[Trade],
        bars: &mut Vec<Bar>,
        rejects: &mut Vec<Reject>,
    ) {
        for (start, window) in windows(trades, plan.finest) {
            let Some(acc) = self.accumulate(symbol, window, rejects) else {
                continue;
            };
            bars.push(acc.finish(symbol, plan.finest, start));
            if plan.lateness_ms > 0 {
                let emitted = self.emitted.entry(plan.finest).or_default();
                emitted.insert(start, (acc.clone(), 0));
            }
            for &r in plan.all.iter().filter(|r| **r > plan.finest) {
                merge_into(
                    self.accs.entry(r).or_default(),
                    start.div_euclid(r) * r,
                    &acc,
                );
            }
        }
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

    /// True when nothing is pending (dedup memory aside).
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
            && self.accs.values().all(BTreeMap::is_empty)
            && self.emitted.values().all(BTreeMap::is_empty)
    }

    /// Approximate number of records held.
    pub fn size(&self) -> usize {
        self.pending.len()
            + self.accs.values().map(BTreeMap::len).sum::<usize>()
            + self.emitted.values().map(BTreeMap::len).sum::<usize>()
            + self.seen.len()
    }
}

/// Trades sorted by time, grouped by finest window: `(window start, trades)`.
fn windows(trades: &[Trade], finest: i64) -> impl Iterator<Item = (i64, &[Trade])> {
    let start = move |t: &Trade| t.ts_ms.div_euclid(finest) * finest;
    trades
        .chunk_by(move |a, b| start(a) == start(b))
        .map(move |w| (start(&w[0]), w))
}

fn merge_into(windows: &mut BTreeMap<i64, BarAcc>, start: i64, acc: &BarAcc) {
    match windows.get_mut(&start) {
        Some(a) => a.merge(acc),
        None => {
            windows.insert(start, acc.clone());
        }
    }
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

fn late(symbol: &str, t: &Trade, horizon: i64) -> Reject {
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

fn late_candle(symbol: &str, r: i64, start: i64, horizon: i64) -> Reject {
    Reject {
        reason: RejectReason::Late,
        source: String::new(),
        position: 0,
        seq: 0,
        detail: format!(
            "candle of window {start}+{r} ms is behind the watermark minus the allowed lateness ({horizon})"
        ),
        raw: format!(r#"{{"symbol":{symbol:?},"window_start":{start},"resolution_ms":{r}}}"#),
    }
}
