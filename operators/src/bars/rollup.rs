//! Stage two of the bars operator: the partial bars of one symbol from every trade
//! shard merged into its open windows at every resolution, emitted when final, and
//! kept for restatement within the allowed lateness.

use std::collections::{BTreeMap, VecDeque};

use crate::bars::acc::{Bar, BarAcc};
use crate::bars::trades::{Part, Plan};
use crate::{Reject, RejectReason, Symbol};

/// Open and recently emitted windows of one symbol.
#[derive(Default)]
pub(crate) struct RollupState {
    /// Partial bars of open windows: `(resolution_ms, start) -> acc`.
    accs: BTreeMap<i64, Windows<BarAcc>>,
    /// Emitted bars kept for restatement within the allowed lateness:
    /// `(resolution_ms, start) -> (acc, revision)`.
    emitted: BTreeMap<i64, Windows<(BarAcc, u32)>>,
    /// The frontier of the last `finalize`: windows ending at or before it were emitted.
    closed_to: Option<i64>,
}

impl RollupState {
    /// Adds a part to its window and the windows of every configured multiple of its
    /// resolution. A window still open takes it; an emitted one within the allowed
    /// lateness is emitted again with `revision` + 1; an older one rejects it as late.
    pub fn apply(
        &mut self,
        symbol: &Symbol,
        plan: &Plan,
        part: &Part,
        bars: &mut Vec<Bar>,
        rejects: &mut Vec<Reject>,
    ) {
        let r0 = part.resolution_ms;
        let targets =
            std::iter::once(r0).chain(plan.all.iter().copied().filter(|r| *r > r0 && r % r0 == 0));
        let horizon = self
            .closed_to
            .unwrap_or(i64::MIN)
            .saturating_sub(plan.lateness_ms);
        for r in targets {
            let start = part.start.div_euclid(r) * r;
            let end = start.saturating_add(r);
            if self.closed_to.is_none_or(|f| end > f) {
                merge_into(self.accs.entry(r).or_default(), start, &part.acc);
            } else if end <= horizon {
                rejects.push(late_part(symbol, r, start, horizon));
            } else {
                self.restate(symbol, r, start, &part.acc, bars);
            }
        }
    }

    /// Merges `acc` into the emitted window `(r, start)` and emits it again with its
    /// revision + 1 (an emitted-empty window for the first time, revision 0).
    fn restate(&mut self, symbol: &Symbol, r: i64, start: i64, acc: &BarAcc, bars: &mut Vec<Bar>) {
        let windows = self.emitted.entry(r).or_default();
        let (merged, revision) = match windows.get_mut(start) {
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

    /// Emits every window that ends at or before `frontier`, by resolution and start.
    pub fn finalize(&mut self, symbol: &Symbol, plan: &Plan, frontier: i64, bars: &mut Vec<Bar>) {
        let keep = plan.lateness_ms > 0;
        for (&r, windows) in self.accs.iter_mut() {
            while let Some((start, acc)) = windows.pop_first_before(frontier.saturating_sub(r)) {
                bars.push(acc.finish(symbol, r, start));
                if keep {
                    self.emitted.entry(r).or_default().insert(start, (acc, 0));
                }
            }
        }
        // No part the first stage accepts can reach a window ending lateness behind.
        let horizon = frontier.saturating_sub(plan.lateness_ms);
        for (&r, windows) in self.emitted.iter_mut() {
            while windows
                .pop_first_before(horizon.saturating_sub(r))
                .is_some()
            {}
        }
        self.closed_to = Some(frontier);
    }

    /// True when no window is open or kept.
    pub fn is_idle(&self) -> bool {
        self.accs.values().all(Windows::is_empty) && self.emitted.values().all(Windows::is_empty)
    }

    /// Approximate number of records held.
    pub fn size(&self) -> usize {
        self.accs.values().map(Windows::len).sum::<usize>()
            + self.emitted.values().map(Windows::len).sum::<usize>()
    }
}

fn merge_into(windows: &mut Windows<BarAcc>, start: i64, acc: &BarAcc) {
    match windows.get_mut(start) {
        Some(a) => a.merge(acc),
        None => windows.insert(start, acc.clone()),
    }
}

/// Values by window start, sorted: parts mostly arrive in time order, so a lookup
/// mostly hits the last entry, an insert appends, and finished windows leave from the
/// front, with no tree nodes to rebalance.
/// With several workers, each sends its parts of a span of windows in order, so the
/// last position found (and the one after it) is tried before a binary search.
struct Windows<V> {
    items: VecDeque<(i64, V)>,
    /// The index of the last window looked up.
    hint: usize,
}

impl<V> Default for Windows<V> {
    fn default() -> Self {
        Windows {
            items: VecDeque::new(),
            hint: 0,
        }
    }
}

impl<V> Windows<V> {
    fn position(&mut self, start: i64) -> Result<usize, usize> {
        let found = match self.items.back() {
            Some((s, _)) if *s == start => Ok(self.items.len() - 1),
            Some((s, _)) if *s < start => Err(self.items.len()),
            _ => {
                let at = |i: usize| self.items.get(i).map(|(s, _)| *s);
                if at(self.hint) == Some(start) {
                    Ok(self.hint)
                } else if at(self.hint + 1) == Some(start) {
                    Ok(self.hint + 1)
                } else {
                    self.items.binary_search_by_key(&start, |(s, _)| *s)
                }
            }
        };
        if let Ok(i) = found {
            self.hint = i;
        }
        found
    }

    fn get_mut(&mut self, start: i64) -> Option<&mut V> {
        let i = self.position(start).ok()?;
        Some(&mut self.items[i].1)
    }

    fn insert(&mut self, start: i64, value: V) {
        match self.position(start) {
            Ok(i) => self.items[i].1 = value,
            Err(i) => self.items.insert(i, (start, value)),
        }
    }

    /// Removes and returns the first window when it starts at or before `start`.
    fn pop_first_before(&mut self, start: i64) -> Option<(i64, V)> {
        if self.items.front()?.0 <= start {
            self.hint = self.hint.saturating_sub(1);
            self.items.pop_front()
        } else {
            None
        }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

fn late_part(symbol: &Symbol, r: i64, start: i64, horizon: i64) -> Reject {
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
