//! The rolling structures of the risk operator: the lower quantile with the mean of
//! the tail below it (an order-statistic split of the window, O(log W) per bar) and the
//! drawdowns of a window of closes (a two-stack sliding aggregate, amortized O(1)).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Scale of [`exact`]: 2^100.
const EXACT_SCALE: f64 = 1_267_650_600_228_229_401_496_703_205_376.0;

/// A return as an integer of 2^-100 units: exact for every return of magnitude 2^-48
/// or more (its last mantissa bit is then at or above 2^-100), so sums of returns that
/// nearly cancel keep their digits; sums of up to 2^20 returns below 2^6 fit in i128.
pub(crate) fn exact(x: f64) -> i128 {
    (x * EXACT_SCALE).round() as i128
}

/// The `f64` nearest to `sum / n` for a sum of [`exact`] units.
pub(crate) fn exact_mean(sum: i128, n: usize) -> f64 {
    sum as f64 / EXACT_SCALE / n as f64
}

/// An `f64` as an integer with the same order (for finite values; -0 is taken as +0).
fn ordered(x: f64) -> i64 {
    let x = if x == 0.0 { 0.0 } else { x };
    let bits = x.to_bits() as i64;
    if bits < 0 {
        bits ^ i64::MAX
    } else {
        bits
    }
}

/// The inverse of [`ordered`].
fn unordered(k: i64) -> f64 {
    f64::from_bits((if k < 0 { k ^ i64::MAX } else { k }) as u64)
}

/// A multiset of values with its size and exact sum (in [`exact`] units).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Multiset {
    counts: BTreeMap<i64, u32>,
    len: usize,
    sum: i128,
}

impl Multiset {
    fn insert(&mut self, k: i64) {
        *self.counts.entry(k).or_default() += 1;
        self.len += 1;
        self.sum += exact(unordered(k));
    }

    /// Removes one `k`; false when there is none.
    fn remove(&mut self, k: i64) -> bool {
        let Some(c) = self.counts.get_mut(&k) else {
            return false;
        };
        *c -= 1;
        if *c == 0 {
            self.counts.remove(&k);
        }
        self.len -= 1;
        self.sum -= exact(unordered(k));
        true
    }

    fn first(&self) -> Option<i64> {
        self.counts.keys().next().copied()
    }

    fn last(&self) -> Option<i64> {
        self.counts.keys().next_back().copied()
    }
}

/// The values of a sliding window split at a fixed rank: `low` holds the `rank + 1`
/// smallest, `high` the rest, so the order statistics `x[rank]` and `x[rank + 1]` are
/// the two ends of the split, and the tail below a quantile between them is `low` plus
/// the values of `high` equal to it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TailQuantile {
    rank: usize,
    low: Multiset,
    high: Multiset,
}

/// A lower quantile of a window and the tail at or below it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tail {
    /// The quantile, by linear interpolation between order statistics.
    pub quantile: f64,
    /// The mean of the values at or below it.
    pub mean: f64,
}

impl TailQuantile {
    /// An empty window whose quantile `p` is taken at `len` values.
    pub fn new(p: f64, len: usize) -> TailQuantile {
        let h = (len.saturating_sub(1)) as f64 * p;
        TailQuantile {
            rank: h.floor() as usize,
            ..TailQuantile::default()
        }
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.low.len + self.high.len
    }

    /// True when the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a value.
    pub fn insert(&mut self, x: f64) {
        let k = ordered(x);
        match self.low.last() {
            Some(top) if k <= top => self.low.insert(k),
            _ => self.high.insert(k),
        }
        self.rebalance();
    }

    /// Removes a value added before.
    pub fn remove(&mut self, x: f64) {
        let k = ordered(x);
        if !self.low.remove(k) {
            self.high.remove(k);
        }
        self.rebalance();
    }

    fn rebalance(&mut self) {
        while self.low.len > self.rank + 1 {
            let k = self.low.last().unwrap_or_default();
            self.low.remove(k);
            self.high.insert(k);
        }
        while self.low.len < self.rank + 1 {
            let Some(k) = self.high.first() else { break };
            self.high.remove(k);
            self.low.insert(k);
        }
    }

    /// The quantile `p` (as given to [`TailQuantile::new`]) of a full window, with
    /// `x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])` for h = (len − 1)·p, and the mean of
    /// the values at or below it; `None` until the window holds `rank + 2` values.
    pub fn tail(&self, p: f64) -> Option<Tail> {
        let (lo, hi) = (self.low.last()?, self.high.first()?);
        let (a, b) = (unordered(lo), unordered(hi));
        let h = (self.len() - 1) as f64 * p;
        let frac = h - h.floor();
        let q = a + frac * (b - a);
        let (mut sum, mut n) = (self.low.sum, self.low.len);
        if b <= q {
            let c = self.high.counts.get(&hi).copied().unwrap_or(0);
            sum += exact(b) * i128::from(c);
            n += c as usize;
        }
        Some(Tail {
            quantile: q,
            mean: exact_mean(sum, n),
        })
    }
}

/// The drawdown summary of a run of closes: its maximum and minimum, and the smallest
/// ratio `close_j / close_i` over i ≤ j (1 when the run only rises).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Run {
    max: f64,
    min: f64,
    worst: f64,
}

impl Run {
    fn one(x: f64) -> Run {
        Run {
            max: x,
            min: x,
            worst: 1.0,
        }
    }

    /// The summary of `self` followed by `next`.
    fn then(self, next: Run) -> Run {
        Run {
            max: self.max.max(next.max),
            min: self.min.min(next.min),
            worst: self.worst.min(next.worst).min(next.min / self.max),
        }
    }
}

/// A sliding window of closes with its running maximum and maximum drawdown, as a
/// queue of two stacks: `front` holds the summaries of the older values (each of
/// itself and every value after it in `front`), `back` the newer values with one
/// summary of all of them. Each value is pushed and popped once per stack.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Drawdowns {
    front: Vec<Run>,
    back: Vec<f64>,
    back_run: Option<Run>,
}

impl Drawdowns {
    /// The number of closes.
    pub fn len(&self) -> usize {
        self.front.len() + self.back.len()
    }

    /// True when there is no close.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the newest close.
    pub fn push(&mut self, x: f64) {
        self.back.push(x);
        self.back_run = Some(match self.back_run {
            Some(r) => r.then(Run::one(x)),
            None => Run::one(x),
        });
    }

    /// Drops the oldest close.
    pub fn pop(&mut self) {
        if self.front.is_empty() {
            let mut acc: Option<Run> = None;
            for &x in self.back.iter().rev() {
                let r = match acc {
                    Some(after) => Run::one(x).then(after),
                    None => Run::one(x),
                };
                self.front.push(r);
                acc = Some(r);
            }
            self.back.clear();
            self.back_run = None;
        }
        self.front.pop();
    }

    /// `(max, max_drawdown)` of the window: its largest close and the most negative
    /// `close_j / max(close_i, i ≤ j) − 1` (0 when prices only rise).
    pub fn summary(&self) -> Option<(f64, f64)> {
        let run = match (self.front.last(), self.back_run) {
            (Some(&f), Some(b)) => f.then(b),
            (Some(&f), None) => f,
            (None, Some(b)) => b,
            (None, None) => return None,
        };
        Some((run.max, run.worst - 1.0))
    }
}
