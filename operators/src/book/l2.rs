//! `L2`: the local level-2 book of one symbol and Binance's sequence rule (spot and
//! futures), with diffs held until a snapshot and the book invalid after a gap or a
//! crossed update until the next snapshot.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::tape::{ofi, spread_bps, Top, View};
use super::{book_reject, BookKind, BookRecord, Dec, Level, MAX_HELD_DIFFS};
use crate::{Reject, RejectReason};

/// Where the book stands in the update sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
enum Sync {
    /// No usable snapshot: diffs are held for the next one.
    #[default]
    Waiting,
    /// A snapshot with this `lastUpdateId` is applied, no diff yet.
    Snapshot(u64),
    /// Diffs apply in sequence; this is the last `u` applied.
    Synced(u64),
    /// Built from Tardis rows (no update ids); `true` after snapshot rows, so that the
    /// next snapshot rows add to the same snapshot.
    Tardis(bool),
}

/// What happened to the book when a record was applied, for the tapes.
pub(crate) trait Hooks {
    /// Before a record stamped `stamp` changes the book.
    fn before(&mut self, book: &L2, stamp: i64);
    /// After it changed the book; `update` is the order-flow contribution of a diff
    /// (`Some(0)` when the top was missing on either side), `None` for a snapshot.
    fn after(&mut self, book: &L2, stamp: i64, update: Option<i128>);
}

/// One symbol's book.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct L2 {
    bids: BTreeMap<Dec, Dec>,
    asks: BTreeMap<Dec, Dec>,
    sync: Sync,
    /// The book crossed after its last update.
    crossed: bool,
    /// Diffs waiting for a snapshot, in arrival order.
    held: VecDeque<BookRecord>,
    /// Book time: the greatest stamp so far.
    pub time: i64,
}

impl View for L2 {
    fn valid(&self) -> bool {
        self.top().is_some()
    }

    fn spread_bps(&self) -> Option<f64> {
        self.top().map(|t| spread_bps(&t))
    }
}

impl L2 {
    /// Best levels while the book is synced, two-sided and not crossed.
    pub fn top(&self) -> Option<Top> {
        if self.sync == Sync::Waiting || self.crossed {
            return None;
        }
        let (b, qb) = self.bids.last_key_value()?;
        let (a, qa) = self.asks.first_key_value()?;
        (b < a).then_some((*b, *qb, *a, *qa))
    }

    /// The best `k` bid levels, best first.
    pub fn bids(&self, k: usize) -> impl Iterator<Item = (&Dec, &Dec)> {
        self.bids.iter().rev().take(k)
    }

    /// The best `k` ask levels, best first.
    pub fn asks(&self, k: usize) -> impl Iterator<Item = (&Dec, &Dec)> {
        self.asks.iter().take(k)
    }

    /// Σ qty of bid levels priced at or above `p`.
    pub fn bid_depth_from(&self, p: Dec) -> Dec {
        self.bids.range(p..).map(|(_, q)| *q).sum()
    }

    /// Σ qty of ask levels priced at or below `p`.
    pub fn ask_depth_to(&self, p: Dec) -> Dec {
        self.asks.range(..=p).map(|(_, q)| *q).sum()
    }

    /// Applies one record of `symbol` (a snapshot, diff or Tardis rows; never a quote)
    /// by the sequence rule, with the tapes' `hooks` around each change, pushing dead
    /// letters to `rejects`.
    pub fn apply(
        &mut self,
        symbol: &str,
        r: BookRecord,
        hooks: &mut impl Hooks,
        rejects: &mut Vec<Reject>,
    ) {
        match r.kind {
            BookKind::Snapshot {
                last_update_id: Some(id),
            } => {
                let stamp = self.stamp(r.ts_ms, hooks);
                self.load(&r.bids, &r.asks);
                self.sync = Sync::Snapshot(id);
                self.check_crossed(symbol, &r, rejects);
                hooks.after(self, stamp, None);
                // Replay what waited for it, by the same rule.
                let held = std::mem::take(&mut self.held);
                for d in held {
                    self.diff(symbol, d, hooks, rejects);
                }
            }
            BookKind::Snapshot {
                last_update_id: None,
            } => {
                let stamp = self.stamp(r.ts_ms, hooks);
                if self.sync != Sync::Tardis(true) {
                    self.load(&[], &[]);
                    self.sync = Sync::Tardis(true);
                }
                self.set_levels(&r.bids, &r.asks);
                self.check_crossed(symbol, &r, rejects);
                hooks.after(self, stamp, None);
            }
            BookKind::Levels => {
                if !matches!(self.sync, Sync::Tardis(_)) {
                    let detail = "a level update before any snapshot of the book".to_string();
                    rejects.push(book_reject(RejectReason::SequenceGap, symbol, &r, detail));
                    return;
                }
                let stamp = self.stamp(r.ts_ms, hooks);
                let before = self.top();
                self.sync = Sync::Tardis(false);
                self.set_levels(&r.bids, &r.asks);
                self.check_crossed(symbol, &r, rejects);
                let e = ofi(before, self.top()).unwrap_or(0);
                hooks.after(self, stamp, Some(e));
            }
            BookKind::Diff { .. } => self.diff(symbol, r, hooks, rejects),
            BookKind::Ticker => {}
        }
    }

    /// The stamp of a record applied now, announced to the tapes.
    fn stamp(&mut self, ts_ms: i64, hooks: &mut impl Hooks) -> i64 {
        let stamp = ts_ms.max(self.time);
        hooks.before(self, stamp);
        self.time = stamp;
        stamp
    }

    /// A diff by the sequence rule: held, dropped as older than the snapshot, applied,
    /// or a gap.
    fn diff(
        &mut self,
        symbol: &str,
        r: BookRecord,
        hooks: &mut impl Hooks,
        rejects: &mut Vec<Reject>,
    ) {
        let BookKind::Diff { first, last, prev } = r.kind else {
            return;
        };
        let in_sequence = match (self.sync, prev) {
            (Sync::Waiting, _) => {
                if self.held.len() >= MAX_HELD_DIFFS {
                    if let Some(old) = self.held.pop_front() {
                        let detail =
                            format!("no snapshot came within {MAX_HELD_DIFFS} diffs of this one");
                        rejects.push(book_reject(RejectReason::SequenceGap, symbol, &old, detail));
                    }
                }
                self.held.push_back(r);
                return;
            }
            // Spot: drop u <= lastUpdateId; the first applied has U <= id + 1 <= u.
            (Sync::Snapshot(id), None) if last <= id => return,
            (Sync::Snapshot(id), None) => first <= id + 1 && id < last,
            // Futures: drop u < lastUpdateId; the first applied has U <= id <= u.
            (Sync::Snapshot(id), Some(_)) if last < id => return,
            (Sync::Snapshot(id), Some(_)) => first <= id && id <= last,
            (Sync::Synced(u), None) => first == u + 1,
            (Sync::Synced(u), Some(pu)) => pu == u,
            (Sync::Tardis(_), _) => false,
        };
        if !in_sequence {
            let expected = match (self.sync, prev) {
                (Sync::Synced(u), None) => format!("U = {}", u + 1),
                (Sync::Synced(u), Some(_)) => format!("pu = {u}"),
                (Sync::Snapshot(id), None) => format!("U <= {} <= u", id + 1),
                (Sync::Snapshot(id), Some(_)) => format!("U <= {id} <= u"),
                _ => "a Binance book (this one is built from Tardis rows)".to_string(),
            };
            let detail = format!(
                "update ids U = {first}, u = {last} break the sequence (expected {expected}); the book is invalid until the next snapshot"
            );
            rejects.push(book_reject(RejectReason::SequenceGap, symbol, &r, detail));
            let stamp = self.stamp(r.ts_ms, hooks);
            self.sync = Sync::Waiting;
            hooks.after(self, stamp, None);
            return;
        }
        let stamp = self.stamp(r.ts_ms, hooks);
        let before = self.top();
        self.set_levels(&r.bids, &r.asks);
        self.sync = Sync::Synced(last);
        self.check_crossed(symbol, &r, rejects);
        let e = ofi(before, self.top()).unwrap_or(0);
        hooks.after(self, stamp, Some(e));
    }

    /// Replaces both sides (levels with quantity 0 are left out).
    fn load(&mut self, bids: &[Level], asks: &[Level]) {
        self.bids.clear();
        self.asks.clear();
        self.crossed = false;
        self.set_levels(bids, asks);
    }

    /// Sets levels to absolute quantities; 0 removes a level.
    fn set_levels(&mut self, bids: &[Level], asks: &[Level]) {
        for (side, levels) in [(&mut self.bids, bids), (&mut self.asks, asks)] {
            for &(p, q) in levels {
                if q.is_positive() {
                    side.insert(p, q);
                } else {
                    side.remove(&p);
                }
            }
        }
    }

    /// Marks the book crossed (invalid until the next snapshot) when best bid >= best
    /// ask, with a dead letter for the record that crossed it.
    fn check_crossed(&mut self, symbol: &str, r: &BookRecord, rejects: &mut Vec<Reject>) {
        let (Some((b, _)), Some((a, _))) =
            (self.bids.last_key_value(), self.asks.first_key_value())
        else {
            return;
        };
        if b >= a && !self.crossed {
            let detail = format!(
                "best bid {b} >= best ask {a} after this record; the book is invalid until the next snapshot"
            );
            rejects.push(book_reject(RejectReason::CrossedBook, symbol, r, detail));
            self.crossed = true;
            if !matches!(self.sync, Sync::Tardis(_)) {
                self.sync = Sync::Waiting;
            }
        }
    }

    /// Diffs still held when the input ended: dead letters, as no snapshot came.
    pub fn drain_held(&mut self, symbol: &str, rejects: &mut Vec<Reject>) {
        for r in self.held.drain(..) {
            let detail = "no snapshot of the book came after this diff".to_string();
            rejects.push(book_reject(RejectReason::SequenceGap, symbol, &r, detail));
        }
    }
}
