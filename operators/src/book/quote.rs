//! `Quote`: a symbol's best bid and ask from `bookTicker` records.

use serde::{Deserialize, Serialize};

use super::tape::{spread_bps, Top, View};
use super::{book_reject, BookRecord};
use crate::{Reject, RejectReason};

/// The last quote of a symbol and its time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Quote {
    /// Best levels of the last quote; `None` before the first or after a crossed one.
    pub top: Option<Top>,
    /// Quote time: the greatest stamp so far.
    pub time: i64,
}

impl View for Quote {
    fn valid(&self) -> bool {
        self.top.is_some()
    }

    fn spread_bps(&self) -> Option<f64> {
        self.top.as_ref().map(spread_bps)
    }
}

impl Quote {
    /// The stamp of quote `r`: `max(event time, quote time so far)`.
    pub fn stamp(&mut self, r: &BookRecord) -> i64 {
        self.time = r.ts_ms.max(self.time);
        self.time
    }

    /// Takes quote `r` as the best levels; a crossed or one-sided quote makes them
    /// invalid until the next good one (a crossed one is also a dead letter).
    pub fn apply(&mut self, symbol: &str, r: &BookRecord, rejects: &mut Vec<Reject>) {
        self.top = match (r.bids.first(), r.asks.first()) {
            (Some(&(b, qb)), Some(&(a, qa))) if b < a => Some((b, qb, a, qa)),
            (Some(&(b, _)), Some(&(a, _))) => {
                let detail = format!("best bid {b} >= best ask {a}");
                rejects.push(book_reject(RejectReason::CrossedBook, symbol, r, detail));
                None
            }
            _ => None,
        };
    }
}
