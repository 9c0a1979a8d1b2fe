//! The rows of the `book` and `quotes` sets, built from a book at a window end.

use serde::{Deserialize, Serialize};

use super::l2::L2;
use super::tape::{spread_bps, Top, WindowStats};
use super::Dec;
use crate::Symbol;

/// One row of the `book` set: the L2 book of a symbol at a window end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BookRow {
    /// The instrument.
    pub symbol: Symbol,
    /// Window length in ms.
    pub resolution_ms: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// Best bid price.
    pub bid_px: f64,
    /// Best bid quantity.
    pub bid_qty: f64,
    /// Best ask price.
    pub ask_px: f64,
    /// Best ask quantity.
    pub ask_qty: f64,
    /// (bid_px + ask_px) / 2.
    pub mid: f64,
    /// ask_px − bid_px.
    pub spread: f64,
    /// 1e4 · spread / mid.
    pub spread_bps: f64,
    /// (bid_px·ask_qty + ask_px·bid_qty) / (bid_qty + ask_qty).
    pub microprice: f64,
    /// (Σ bid qty − Σ ask qty) / (Σ bid qty + Σ ask qty) over the best level.
    pub imbalance_1: f64,
    /// The same over the best 5 levels of each side.
    pub imbalance_5: f64,
    /// The same over the best 10 levels of each side.
    pub imbalance_10: f64,
    /// Σ qty of bid levels priced at or above mid·(1 − 0.001).
    pub depth_bid_10bps: f64,
    /// Σ qty of ask levels priced at or below mid·(1 + 0.001).
    pub depth_ask_10bps: f64,
    /// Time-weighted mean spread_bps over the window; null after an invalid moment.
    pub tw_spread_bps: Option<f64>,
    /// Order-flow imbalance of the window's diffs; null after an invalid moment.
    pub ofi: Option<f64>,
    /// Diffs applied in the window.
    pub updates: i64,
}

/// One row of the `quotes` set: the best quote of a symbol at a window end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuoteRow {
    /// The instrument.
    pub symbol: Symbol,
    /// Window length in ms.
    pub resolution_ms: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// Best bid price.
    pub bid_px: f64,
    /// Best bid quantity.
    pub bid_qty: f64,
    /// Best ask price.
    pub ask_px: f64,
    /// Best ask quantity.
    pub ask_qty: f64,
    /// (bid_px + ask_px) / 2.
    pub mid: f64,
    /// 1e4 · (ask_px − bid_px) / mid.
    pub spread_bps: f64,
    /// (bid_px·ask_qty + ask_px·bid_qty) / (bid_qty + ask_qty).
    pub microprice: f64,
    /// (bid_qty − ask_qty) / (bid_qty + ask_qty).
    pub imbalance_1: f64,
    /// Time-weighted mean spread_bps over the window; null after an invalid moment.
    pub tw_spread_bps: Option<f64>,
    /// Quotes applied in the window.
    pub updates: i64,
}

/// (x − y) / (x + y) of two exact sums, as f64 (0 when both are 0).
fn imbalance(x: Dec, y: Dec) -> f64 {
    let total = x + y;
    if total == Dec::ZERO {
        return 0.0;
    }
    (x - y).to_f64() / total.to_f64()
}

/// The microprice and mid of a top of book.
fn micro_mid(t: &Top) -> (f64, f64) {
    let (b, qb, a, qa) = *t;
    let (bf, qbf, af, qaf) = (b.to_f64(), qb.to_f64(), a.to_f64(), qa.to_f64());
    let micro = (bf * qaf + af * qbf) / (qb + qa).to_f64();
    (micro, (b + a).to_f64() / 2.0)
}

impl BookRow {
    /// The row of `book` (valid) at the end of window `w`.
    pub(crate) fn at(symbol: &Symbol, r: i64, book: &L2, w: WindowStats) -> Option<BookRow> {
        let t = book.top()?;
        let (b, qb, a, qa) = t;
        let (microprice, mid) = micro_mid(&t);
        let sums = |k: usize| -> (Dec, Dec) {
            (
                book.bids(k).map(|(_, q)| *q).sum(),
                book.asks(k).map(|(_, q)| *q).sum(),
            )
        };
        let imb = |k: usize| {
            let (x, y) = sums(k);
            imbalance(x, y)
        };
        // p >= mid·0.999 ⇔ 2000·p >= 999·(b + a), exactly: the least such price.
        let two_mid = (b + a).0;
        let lo = Dec((999 * two_mid + 1999).div_euclid(2000));
        let hi = Dec((1001 * two_mid).div_euclid(2000));
        Some(BookRow {
            symbol: symbol.clone(),
            resolution_ms: r,
            window_end: w.end,
            bid_px: b.to_f64(),
            bid_qty: qb.to_f64(),
            ask_px: a.to_f64(),
            ask_qty: qa.to_f64(),
            mid,
            spread: (a - b).to_f64(),
            spread_bps: spread_bps(&t),
            microprice,
            imbalance_1: imb(1),
            imbalance_5: imb(5),
            imbalance_10: imb(10),
            depth_bid_10bps: book.bid_depth_from(lo).to_f64(),
            depth_ask_10bps: book.ask_depth_to(hi).to_f64(),
            tw_spread_bps: w.tw_spread_bps,
            ofi: w.ofi,
            updates: w.updates,
        })
    }
}

impl QuoteRow {
    /// The row of quote `t` at the end of window `w`.
    pub(crate) fn at(symbol: &Symbol, r: i64, t: &Top, w: WindowStats) -> QuoteRow {
        let (b, qb, a, qa) = *t;
        let (microprice, mid) = micro_mid(t);
        QuoteRow {
            symbol: symbol.clone(),
            resolution_ms: r,
            window_end: w.end,
            bid_px: b.to_f64(),
            bid_qty: qb.to_f64(),
            ask_px: a.to_f64(),
            ask_qty: qa.to_f64(),
            mid,
            spread_bps: spread_bps(t),
            microprice,
            imbalance_1: imbalance(qb, qa),
            tw_spread_bps: w.tw_spread_bps,
            updates: w.updates,
        }
    }
}
