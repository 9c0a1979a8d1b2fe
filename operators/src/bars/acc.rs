//! The bar accumulator (`BarAcc`) and the finished bar row (`Bar`).
//!
//! `BarAcc::merge` is associative and commutative: open and close are picked by the
//! `(ts_ms, trade_id, seq)` order key, high and low by comparison, and sums are exact
//! [`Fixed`] integers. So a bar does not depend on arrival order, worker count, or
//! whether it was built from trades or from finer bars.

use serde::{Deserialize, Serialize};

use crate::{Candle, Fixed, Symbol, Trade};

/// The order key of an open or close price: `(ts_ms, trade_id, seq)`.
pub type OrderKey = (i64, i64, u64);

/// A mergeable partial bar.
///
/// ```
/// use operators::{BarAcc, Trade};
/// let t = |ts, id, p, q| Trade { ts_ms: ts, trade_id: id, seq: id as u64, exchange: 0,
///     price: p, qty: q, is_buyer_maker: false };
/// let mut a = BarAcc::from_trade(&t(5, 2, 11.0, 1.0));
/// a.merge(&BarAcc::from_trade(&t(1, 1, 10.0, 2.0)));
/// let bar = a.finish(&"X".into(), 60_000, 0);
/// assert_eq!((bar.open, bar.close, bar.high, bar.low), (10.0, 11.0, 11.0, 10.0));
/// assert_eq!(bar.volume, 3.0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BarAcc {
    /// Order key of the open price.
    pub open_key: OrderKey,
    /// Open price.
    pub open: f64,
    /// Order key of the close price.
    pub close_key: OrderKey,
    /// Close price.
    pub close: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Σ qty.
    pub volume: Fixed,
    /// Σ price·qty, when known.
    pub quote: Option<Fixed>,
    /// Σ qty of taker buys, when known.
    pub buy: Option<Fixed>,
    /// Number of trades, when known.
    pub trades: Option<i64>,
}

impl BarAcc {
    /// A bar of one trade.
    #[inline]
    pub fn from_trade(t: &Trade) -> BarAcc {
        let key = t.order_key();
        let volume = Fixed::from_f64(t.qty);
        BarAcc {
            open_key: key,
            open: t.price,
            close_key: key,
            close: t.price,
            high: t.price,
            low: t.price,
            volume,
            quote: Some(Fixed::from_f64(t.price * t.qty)),
            buy: Some(if t.is_buyer_maker {
                Fixed::ZERO
            } else {
                volume
            }),
            trades: Some(1),
        }
    }

    /// Adds one trade (the same as merging `from_trade`, without building it).
    #[inline]
    pub fn push_trade(&mut self, t: &Trade) {
        let key = t.order_key();
        if key < self.open_key {
            self.open_key = key;
            self.open = t.price;
        }
        if key > self.close_key {
            self.close_key = key;
            self.close = t.price;
        }
        if t.price > self.high {
            self.high = t.price;
        }
        if t.price < self.low {
            self.low = t.price;
        }
        let q = Fixed::from_f64(t.qty);
        self.volume += q;
        if let Some(quote) = self.quote.as_mut() {
            *quote += Fixed::from_f64(t.price * t.qty);
        }
        if let Some(buy) = self.buy.as_mut() {
            if !t.is_buyer_maker {
                *buy += q;
            }
        }
        if let Some(n) = self.trades.as_mut() {
            *n += 1;
        }
    }

    /// A bar from a candle: its open ranks first and its close last within the candle.
    pub fn from_candle(c: &Candle) -> BarAcc {
        BarAcc {
            open_key: (c.ts_ms, i64::MIN, c.seq),
            open: c.open,
            close_key: (c.ts_ms, i64::MAX, c.seq),
            close: c.close,
            high: c.high,
            low: c.low,
            volume: Fixed::from_f64(c.volume),
            quote: c.quote_volume.map(Fixed::from_f64),
            buy: c.buy_volume.map(Fixed::from_f64),
            trades: c.trades,
        }
    }

    /// Merges another partial bar of the same symbol and window into this one.
    pub fn merge(&mut self, o: &BarAcc) {
        if o.open_key < self.open_key {
            self.open_key = o.open_key;
            self.open = o.open;
        }
        if o.close_key > self.close_key {
            self.close_key = o.close_key;
            self.close = o.close;
        }
        if o.high > self.high {
            self.high = o.high;
        }
        if o.low < self.low {
            self.low = o.low;
        }
        self.volume += o.volume;
        self.quote = self.quote.zip(o.quote).map(|(a, b)| a + b);
        self.buy = self.buy.zip(o.buy).map(|(a, b)| a + b);
        self.trades = self.trades.zip(o.trades).map(|(a, b)| a + b);
    }

    /// The finished row for `symbol` at `resolution_ms`, window starting at `start`.
    pub fn finish(&self, symbol: &Symbol, resolution_ms: i64, start: i64) -> Bar {
        let volume = self.volume.to_f64();
        let quote_volume = self.quote.map(Fixed::to_f64);
        let buy_volume = self.buy.map(Fixed::to_f64);
        Bar {
            symbol: symbol.clone(),
            resolution_ms,
            window_start: start,
            window_end: start + resolution_ms,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume,
            quote_volume,
            vwap: quote_volume.filter(|_| volume > 0.0).map(|q| q / volume),
            trades: self.trades,
            buy_volume,
            sell_volume: self.buy.map(|b| (self.volume - b).to_f64()),
            revision: 0,
        }
    }
}

/// One finished OHLCV bar: a row of the `bars` feature set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    /// The instrument.
    pub symbol: Symbol,
    /// Window length in milliseconds.
    pub resolution_ms: i64,
    /// Window start (inclusive), epoch ms.
    pub window_start: i64,
    /// Window end (exclusive), epoch ms.
    pub window_end: i64,
    /// First price by `(ts_ms, trade_id, input order)`.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Last price by `(ts_ms, trade_id, input order)`.
    pub close: f64,
    /// Σ qty.
    pub volume: f64,
    /// Σ price·qty (null for candles without it).
    pub quote_volume: Option<f64>,
    /// quote_volume / volume.
    pub vwap: Option<f64>,
    /// Number of trades.
    pub trades: Option<i64>,
    /// Σ qty where the taker bought.
    pub buy_volume: Option<f64>,
    /// volume − buy_volume.
    pub sell_volume: Option<f64>,
    /// 0 when first emitted, then +1 for each restatement by a late trade.
    pub revision: u32,
}
