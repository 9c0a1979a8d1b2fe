//! One series of the dense grid: the points it filled, and the points kept inside the
//! allowed lateness, which a restated bar changes (its own window, then the
//! forward-filled points after it and the return of the next bar) and sends again
//! with their revision + 1.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::grid::GridPoint;
use crate::{Bar, Symbol};

/// (high, low, close, volume) of a bar.
type Ohlcv = (f64, f64, f64, f64);

/// A point sent, kept while a restatement can still change it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Kept {
    /// The window's bar; `None` when the point was forward-filled.
    bar: Option<Ohlcv>,
    /// The close of the point before it.
    prev_close: Option<f64>,
    point: GridPoint,
}

/// The grid of one (symbol, resolution).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Series {
    /// Next window start to emit.
    pub next_start: i64,
    /// Last emitted close.
    pub last_close: Option<f64>,
    /// Bars not yet emitted: start -> (high, low, close, volume).
    pub pending: BTreeMap<i64, Ohlcv>,
    /// Points sent within the lateness (empty without lateness).
    #[serde(skip)]
    kept: VecDeque<Kept>,
}

impl Series {
    /// A series starting at its first bar.
    pub fn starting(start: i64) -> Series {
        Series {
            next_start: start,
            ..Series::default()
        }
    }

    /// Takes a bar: one of a window not yet filled waits for the fill; one of a filled
    /// window (a restatement, or a late first bar of an empty window) changes the kept
    /// points and pushes the changed ones to `out`. Returns false when the window is
    /// older than what is kept.
    pub fn take(&mut self, bar: &Bar, out: &mut Vec<GridPoint>) -> bool {
        let ohlcv = (bar.high, bar.low, bar.close, bar.volume);
        if self.last_close.is_none() && bar.window_start < self.next_start {
            self.next_start = bar.window_start;
        }
        if bar.window_start >= self.next_start {
            self.pending.insert(bar.window_start, ohlcv);
            return true;
        }
        let Ok(i) = self
            .kept
            .binary_search_by_key(&bar.window_end, |k| k.point.window_end)
        else {
            return false;
        };
        self.kept[i].bar = Some(ohlcv);
        for j in i..self.kept.len() {
            if j > i {
                self.kept[j].prev_close = Some(self.kept[j - 1].point.close);
            }
            let k = &mut self.kept[j];
            let Some((high, low, close, volume)) = k.bar.or(k.prev_close.map(|c| (c, c, c, 0.0)))
            else {
                break;
            };
            let ret = k.prev_close.map(|prev| (close / prev).ln());
            let p = &mut k.point;
            let same = p.close == close
                && p.high == high
                && p.low == low
                && p.volume == volume
                && p.ret == ret;
            if same {
                break; // and so is every point after it
            }
            (p.close, p.high, p.low, p.volume, p.ret) = (close, high, low, volume, ret);
            p.revision += 1;
            out.push(p.clone());
        }
        self.last_close = self.kept.back().map(|k| k.point.close).or(self.last_close);
        true
    }

    /// Emits every point ending up to `until_end`, keeping those within `lateness_ms`
    /// of the newest (none when it is 0).
    pub fn fill(
        &mut self,
        key: &(Symbol, i64),
        until_end: i64,
        lateness_ms: i64,
        out: &mut Vec<GridPoint>,
    ) {
        let r = key.1;
        while self.next_start.saturating_add(r) <= until_end {
            let start = self.next_start;
            let bar = self.pending.remove(&start);
            let (high, low, close, volume) = match (bar, self.last_close) {
                (Some(bar), _) => bar,
                (None, Some(c)) => (c, c, c, 0.0),
                (None, None) => {
                    // Not started yet: jump to the first bar.
                    match self.pending.keys().next() {
                        Some(&s) => {
                            self.next_start = s;
                            continue;
                        }
                        None => return,
                    }
                }
            };
            let ret = self.last_close.map(|prev| (close / prev).ln());
            let point = GridPoint {
                symbol: key.0.clone(),
                resolution_ms: r,
                window_end: start + r,
                close,
                high,
                low,
                volume,
                ret,
                revision: 0,
            };
            if lateness_ms > 0 {
                let oldest = start - lateness_ms - r;
                while self
                    .kept
                    .front()
                    .is_some_and(|k| k.point.window_end <= oldest)
                {
                    self.kept.pop_front();
                }
                self.kept.push_back(Kept {
                    bar,
                    prev_close: self.last_close,
                    point: point.clone(),
                });
            }
            out.push(point);
            self.last_close = Some(close);
            self.next_start = start + r;
        }
    }

    /// The series at `cut` (every point ending before it filled, none after), with the
    /// bars before it that are not filled yet; `None` when it had not started by then.
    pub fn at(&self, r: i64, cut: i64) -> Option<Series> {
        let mut s = self.clone();
        s.kept.clear();
        s.pending.retain(|start, _| start + r < cut);
        if self.next_start + r > cut {
            // Filled past the cut (taken once the lateness passed it): go back to the
            // last point before it, which is kept.
            match self.kept.iter().rev().find(|k| k.point.window_end < cut) {
                Some(k) => {
                    s.next_start = k.point.window_end;
                    s.last_close = Some(k.point.close);
                }
                None if self.kept.front().is_some_and(|k| k.prev_close.is_none()) => {
                    // The series started at or after the cut.
                    return None;
                }
                None => return (s.last_close.is_some() || !s.pending.is_empty()).then_some(s),
            }
        }
        (s.last_close.is_some() || !s.pending.is_empty()).then_some(s)
    }
}
