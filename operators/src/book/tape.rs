//! `Tape`: one (symbol, resolution) series of book windows: what happened inside the
//! open window (updates, order-flow imbalance, time-weighted spread, invalid moments)
//! and the dense walk from one window end to the next.

use serde::{Deserialize, Serialize};

use super::Dec;

/// What a tape needs of a book: whether it is valid and its spread in bps.
pub(crate) trait View {
    /// True when the book can be read (synced, both sides, not crossed).
    fn valid(&self) -> bool;
    /// 1e4 · spread / mid while valid.
    fn spread_bps(&self) -> Option<f64>;
}

/// The window-scoped values of a row, besides the book at its end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct WindowStats {
    /// Window end, ms.
    pub end: i64,
    /// Time-weighted mean spread in bps; `None` when the window had an invalid moment.
    pub tw_spread_bps: Option<f64>,
    /// Order-flow imbalance; `None` when the window had an invalid moment.
    pub ofi: Option<f64>,
    /// Records applied in the window (diffs or quotes; snapshots are not updates).
    pub updates: i64,
}

/// One series' open window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tape {
    /// Window length, ms.
    pub r: i64,
    /// Start of the open window; `None` until the book is first valid.
    start: Option<i64>,
    /// Time up to which the spread is integrated.
    seg_from: i64,
    /// The book was invalid at some moment of the window.
    invalid: bool,
    /// Σ spread_bps · duration (ms) over the window so far.
    tw: f64,
    /// Updates applied in the window.
    updates: i64,
    /// Σ order-flow contributions, exact (in [`Dec`] units).
    ofi: i128,
}

impl Tape {
    /// A series of windows of `r` ms.
    pub fn new(r: i64) -> Tape {
        Tape {
            r,
            ..Tape::default()
        }
    }

    /// Integrates the book `b` (in force since `seg_from`) up to `t`.
    fn integrate(&mut self, b: &impl View, t: i64) {
        if t > self.seg_from {
            match b.spread_bps() {
                Some(s) if b.valid() => self.tw += s * (t - self.seg_from) as f64,
                _ => self.invalid = true,
            }
            self.seg_from = t;
        }
    }

    /// Closes every window ending at or before `to` with the book `b` as it is now (the
    /// book after every record stamped before `to`), calling `emit` for each window
    /// whose end finds the book valid.
    pub fn advance(&mut self, b: &impl View, to: i64, emit: &mut impl FnMut(WindowStats)) {
        while let Some(start) = self.start {
            let end = start + self.r;
            if end > to {
                break;
            }
            self.integrate(b, end);
            if b.valid() {
                let clean = !self.invalid;
                emit(WindowStats {
                    end,
                    tw_spread_bps: clean.then(|| self.tw / self.r as f64),
                    ofi: clean.then(|| Dec(self.ofi).to_f64()),
                    updates: self.updates,
                });
            }
            self.start = Some(end);
            self.seg_from = end;
            self.invalid = !b.valid();
            self.tw = 0.0;
            self.updates = 0;
            self.ofi = 0;
        }
    }

    /// Before a record stamped `stamp` changes `b`: closes the windows ending at or
    /// before it and integrates the book up to it.
    pub fn before(&mut self, b: &impl View, stamp: i64, emit: &mut impl FnMut(WindowStats)) {
        self.advance(b, stamp, emit);
        if self.start.is_some() {
            self.integrate(b, stamp);
        }
    }

    /// After a record stamped `stamp` changed `b`: starts the series at the first valid
    /// book, and counts an update with its order-flow contribution `ofi`.
    pub fn after(&mut self, b: &impl View, stamp: i64, update: Option<i128>) {
        if self.start.is_none() {
            if !b.valid() {
                return;
            }
            let start = stamp.div_euclid(self.r) * self.r;
            // The book was not valid before this record: the first window always has
            // an invalid moment.
            *self = Tape {
                r: self.r,
                start: Some(start),
                seg_from: stamp,
                invalid: true,
                ..Tape::default()
            };
        }
        if let Some(e) = update {
            self.updates += 1;
            self.ofi = self.ofi.saturating_add(e);
        }
    }
}

/// Best levels of a book: `(bid price, bid qty, ask price, ask qty)`.
pub(crate) type Top = (Dec, Dec, Dec, Dec);

/// The order-flow contribution of one update, from the best levels before and after
/// (Cont, Kukanov and Stoikov 2014):
/// `[b ≥ b′]·qb − [b ≤ b′]·qb′ − [a ≤ a′]·qa + [a ≥ a′]·qa′`.
pub(crate) fn ofi(before: Option<Top>, after: Option<Top>) -> Option<i128> {
    let ((b0, qb0, a0, qa0), (b, qb, a, qa)) = (before?, after?);
    let mut e: i128 = 0;
    if b >= b0 {
        e += qb.0;
    }
    if b <= b0 {
        e -= qb0.0;
    }
    if a <= a0 {
        e -= qa.0;
    }
    if a >= a0 {
        e += qa0.0;
    }
    Some(e)
}

/// mid and spread in bps of a top of book.
pub(crate) fn spread_bps(t: &Top) -> f64 {
    let (b, _, a, _) = *t;
    let mid = (b + a).to_f64() / 2.0;
    1e4 * (a - b).to_f64() / mid
}
