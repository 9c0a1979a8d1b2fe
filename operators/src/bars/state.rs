//! Per-symbol state of the bars operator: open windows and the dedup horizon.

use std::collections::{BTreeMap, HashMap};

use crate::bars::acc::{Bar, BarAcc};
use crate::{Candle, Reject, RejectReason, Trade, NO_TRADE_ID};

/// Open windows and dedup memory of one symbol.
#[derive(Default)]
pub(crate) struct SymbolState {
    /// Trades of not-yet-final windows of the finest resolution, by window start.
    raw: BTreeMap<i64, Vec<Trade>>,
    /// Partial bars of coarser (and candle) resolutions: `(resolution_ms, start) -> acc`.
    accs: BTreeMap<i64, BTreeMap<i64, BarAcc>>,
    /// Trade ids seen: `(exchange, trade_id) -> ts_ms` of the kept trade.
    seen: HashMap<(u64, i64), i64>,
    /// Expiry index of `seen`: `ts_ms -> keys`.
    seen_by_ts: BTreeMap<i64, Vec<(u64, i64)>>,
}

/// What the operator needs to know about resolutions.
pub(crate) struct Plan {
    /// The finest configured resolution, built from trades.
    pub finest: i64,
    /// Every configured resolution, ascending.
    pub all: Vec<i64>,
    /// How long trade ids are remembered behind the frontier, in ms.
    pub dedup_horizon_ms: i64,
}

impl SymbolState {
    /// Buffers trades; they are aggregated when their window is final.
    pub fn push_trades(&mut self, plan: &Plan, trades: &[Trade]) {
        let window = |t: &Trade| t.ts_ms.div_euclid(plan.finest) * plan.finest;
        let mut i = 0;
        while i < trades.len() {
            let start = window(&trades[i]);
            let run = trades[i..]
                .iter()
                .take_while(|t| window(t) == start)
                .count();
            self.raw
                .entry(start)
                .or_default()
                .extend_from_slice(&trades[i..i + run]);
            i += run;
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
                merge_into(self.accs.entry(r).or_default(), start, &acc);
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
        while let Some(entry) = self.raw.first_entry() {
            if entry.key().saturating_add(plan.finest) > frontier {
                break;
            }
            let (start, mut trades) = entry.remove_entry();
            trades.sort_unstable_by_key(Trade::order_key);
            let mut acc: Option<BarAcc> = None;
            for t in &trades {
                if t.trade_id != NO_TRADE_ID && !self.remember(t) {
                    rejects.push(duplicate(symbol, t));
                    continue;
                }
                match acc.as_mut() {
                    Some(a) => a.push_trade(t),
                    None => acc = Some(BarAcc::from_trade(t)),
                }
            }
            if let Some(acc) = acc {
                bars.push(acc.finish(symbol, plan.finest, start));
                for &r in plan.all.iter().filter(|r| **r > plan.finest) {
                    merge_into(
                        self.accs.entry(r).or_default(),
                        start.div_euclid(r) * r,
                        &acc,
                    );
                }
            }
        }
        for (&r, windows) in self.accs.iter_mut() {
            while let Some(entry) = windows.first_entry() {
                if entry.key().saturating_add(r) > frontier {
                    break;
                }
                let (start, acc) = entry.remove_entry();
                bars.push(acc.finish(symbol, r, start));
            }
        }
        self.expire(frontier.saturating_sub(plan.dedup_horizon_ms));
    }

    /// True when nothing is pending (dedup memory aside).
    pub fn is_idle(&self) -> bool {
        self.raw.is_empty() && self.accs.values().all(BTreeMap::is_empty)
    }

    /// Approximate number of records held.
    pub fn size(&self) -> usize {
        self.raw.values().map(Vec::len).sum::<usize>()
            + self.accs.values().map(BTreeMap::len).sum::<usize>()
            + self.seen.len()
    }

    /// Records `t`'s id; false when it was already seen.
    fn remember(&mut self, t: &Trade) -> bool {
        let key = (t.exchange, t.trade_id);
        if self.seen.contains_key(&key) {
            return false;
        }
        self.seen.insert(key, t.ts_ms);
        self.seen_by_ts.entry(t.ts_ms).or_default().push(key);
        true
    }

    /// Forgets ids of trades older than `before`.
    fn expire(&mut self, before: i64) {
        while let Some(entry) = self.seen_by_ts.first_entry() {
            if *entry.key() >= before {
                break;
            }
            for key in entry.remove() {
                self.seen.remove(&key);
            }
        }
    }
}

fn merge_into(windows: &mut BTreeMap<i64, BarAcc>, start: i64, acc: &BarAcc) {
    match windows.get_mut(&start) {
        Some(a) => a.merge(acc),
        None => {
            windows.insert(start, acc.clone());
        }
    }
}

fn duplicate(symbol: &str, t: &Trade) -> Reject {
    let raw = format!(
        r#"{{"ts_ms":{},"symbol":{:?},"price":{},"qty":{},"is_buyer_maker":{},"trade_id":{}}}"#,
        t.ts_ms, symbol, t.price, t.qty, t.is_buyer_maker, t.trade_id
    );
    Reject {
        reason: RejectReason::Duplicate,
        source: String::new(),
        position: 0,
        seq: t.seq,
        detail: format!("trade_id {} of {} already seen", t.trade_id, symbol),
        raw,
    }
}
