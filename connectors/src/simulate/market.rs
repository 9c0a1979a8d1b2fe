//! The market model: symbols, their parameters, the BTC-factor price process and the
//! Poisson trade arrivals, merged into one event-time ordered stream.

use std::cmp::Reverse;
use std::collections::binary_heap::{BinaryHeap, PeekMut};
use std::sync::Arc;

use operators::Trade;

use super::rng::{exp, ln, Rng};
use super::SimConfig;

/// Total trade rate, trades per second, of a 5-symbol market.
pub const BASE_RATE_PER_SEC: f64 = 100.0;
/// Per-second standard deviation of the BTC factor's log return (about 56 %/year).
pub const SIGMA_BTC_PER_SEC: f64 = 1.0e-4;

/// Exponent of the Zipf weights that split the total rate over symbols.
const ZIPF: f64 = 0.8;
/// Half spread (fraction of the mid) paid by a taker.
const HALF_SPREAD: f64 = 0.5e-4;
/// Standard deviation of the extra price noise around bid/ask (fraction of the mid).
const PRICE_NOISE: f64 = 0.2e-4;
/// Median notional of one trade, in quote currency.
const MEDIAN_NOTIONAL: f64 = 150.0;
/// Standard deviation of the log trade size.
const SIZE_SIGMA: f64 = 1.3;
/// Probability that a trade has the same taker side as the previous one of its symbol.
const SAME_SIDE: f64 = 0.6;

/// Stream numbers of the independent random streams of one seed.
const MARKET_STREAM: u64 = 1;
const PARAM_STREAM: u64 = 1 << 32;
const TRADE_STREAM: u64 = 2 << 32;

/// Exact powers of ten for the tick and lot decimals.
pub(crate) const POW10: [f64; 9] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];

/// The named symbols: name, starting price, price decimals (tick), qty decimals (lot).
const NAMED: [(&str, f64, u32, u32); 10] = [
    ("BTCUSDT", 60_000.0, 2, 5),
    ("ETHUSDT", 3_000.0, 2, 4),
    ("SOLUSDT", 150.0, 2, 3),
    ("BNBUSDT", 550.0, 2, 3),
    ("XRPUSDT", 0.6, 4, 1),
    ("ADAUSDT", 0.45, 4, 1),
    ("DOGEUSDT", 0.15, 5, 0),
    ("AVAXUSDT", 35.0, 2, 2),
    ("LINKUSDT", 15.0, 3, 2),
    ("DOTUSDT", 7.0, 3, 2),
];

/// The name of symbol `i`: `BTCUSDT`, `ETHUSDT`, ... `DOTUSDT`, then `SYM010USDT`, ...
pub fn symbol_name(i: usize) -> String {
    match NAMED.get(i) {
        Some(named) => named.0.to_string(),
        None => format!("SYM{i:03}USDT"),
    }
}

/// Trades per second of each of `n` symbols.
///
/// The total is `100 * sqrt(n / 5)` trades/s (100/s for 5 symbols, 447/s for 100),
/// split in proportion to Zipf weights `(i + 1)^-0.8`, so BTC is the busiest symbol
/// (38/s of the 100/s with 5 symbols, then ETH 22/s, SOL 16/s, BNB 13/s, XRP 11/s).
pub fn trade_rates(n: usize) -> Vec<f64> {
    let weights: Vec<f64> = (0..n).map(|i| exp(-ZIPF * ln((i + 1) as f64))).collect();
    let total_weight: f64 = weights.iter().sum();
    let total_rate = BASE_RATE_PER_SEC * (n as f64 / 5.0).sqrt();
    weights
        .iter()
        .map(|w| total_rate * w / total_weight)
        .collect()
}

/// One generated trade before conversion: prices and sizes in integer ticks and lots.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawTrade {
    pub(crate) sym: u32,
    pub(crate) ts_ms: i64,
    pub(crate) trade_id: i64,
    pub(crate) seq: u64,
    pub(crate) price_units: i64,
    pub(crate) qty_units: i64,
    pub(crate) is_buyer_maker: bool,
}

/// Static description of one symbol, shared with the writers.
#[derive(Clone, Debug)]
pub(crate) struct SymbolInfo {
    pub(crate) name: Arc<str>,
    /// Number of decimals of the price tick.
    pub(crate) price_decimals: u32,
    /// Number of decimals of the lot step.
    pub(crate) qty_decimals: u32,
    /// `10^price_decimals`, exact.
    pub(crate) price_scale: f64,
    /// `10^qty_decimals`, exact.
    pub(crate) qty_scale: f64,
}

/// Moving state of one symbol.
#[derive(Clone, Debug)]
struct SymbolState {
    rng: Rng,
    /// Arrivals per millisecond.
    rate_ms: f64,
    /// Time of the next arrival, ms since the start (continuous).
    next_t: f64,
    next_trade_id: i64,
    last_buyer_maker: bool,
    median_qty: f64,
    /// Log mid price, its exponential, and the factor model.
    log_mid: f64,
    mid: f64,
    beta: f64,
    sigma: f64,
    drift: f64,
}

/// Deterministic trades in event-time order (ties by symbol index), as `(symbol, Trade)`.
///
/// The mid prices follow a correlated geometric Brownian motion stepped once per
/// second: the BTC factor `f ~ N(0, 1e-4)`, symbol `i` moves by `beta_i * f + N(0,
/// sigma_i)` in log terms (BTC: `beta = 1`, no idiosyncratic part; others `beta_i` in
/// 0.6..1.4 and `sigma_i` in 0.6..1.2 times the factor's, from the seed), with the
/// Itô drift removed so prices are martingales. Trades arrive as independent Poisson
/// processes (rates in [`trade_rates`]); a trade prints at the mid plus or minus half a
/// 0.5 bp spread by taker side, plus 0.2 bp of noise, rounded to the tick; sizes are
/// log-normal around a $150 median notional, rounded to the lot step (at least one
/// lot); taker sides are 50/50 and repeat the previous side with probability 0.6.
///
/// `seq` is the running index of the trade, `exchange` is 0 and `trade_id` counts from
/// 1 per symbol. Generation allocates nothing per trade.
#[derive(Clone, Debug)]
pub struct Simulator {
    info: Vec<SymbolInfo>,
    state: Vec<SymbolState>,
    /// Next arrival of each live symbol: `(ms since start, symbol index)`.
    heap: BinaryHeap<Reverse<(i64, u32)>>,
    market: Rng,
    /// The second the mids currently describe.
    market_sec: i64,
    duration_ms: i64,
    start_ms: i64,
    seq: u64,
}

impl Simulator {
    /// A simulator for `config`.
    pub(crate) fn new(config: &SimConfig) -> Simulator {
        let n = config.symbols;
        let rates = trade_rates(n);
        let mut info = Vec::with_capacity(n);
        let mut state = Vec::with_capacity(n);
        for (i, &rate) in rates.iter().enumerate() {
            let mut params = Rng::stream(config.seed, PARAM_STREAM + i as u64);
            let (price, price_decimals, qty_decimals) = match NAMED.get(i) {
                Some(&(_, price, pd, qd)) => (price, pd, qd),
                None => {
                    // Log-uniform in 0.1..100; about 6 significant digits of tick.
                    let price = exp(params.range(ln(0.1), ln(100.0)));
                    let magnitude = (ln(price) / std::f64::consts::LN_10).floor() as i64;
                    let pd = (5 - magnitude).clamp(2, 8) as u32;
                    let qd = (magnitude + 2).clamp(0, 8) as u32;
                    (price, pd, qd)
                }
            };
            let (beta, sigma) = if i == 0 {
                (1.0, 0.0)
            } else {
                (
                    params.range(0.6, 1.4),
                    SIGMA_BTC_PER_SEC * params.range(0.6, 1.2),
                )
            };
            let variance = beta * beta * SIGMA_BTC_PER_SEC * SIGMA_BTC_PER_SEC + sigma * sigma;
            info.push(SymbolInfo {
                name: Arc::from(symbol_name(i)),
                price_decimals,
                qty_decimals,
                price_scale: POW10[price_decimals as usize],
                qty_scale: POW10[qty_decimals as usize],
            });
            let mut rng = Rng::stream(config.seed, TRADE_STREAM + i as u64);
            let last_buyer_maker = rng.uniform() < 0.5;
            state.push(SymbolState {
                rng,
                rate_ms: rate / 1000.0,
                next_t: 0.0,
                next_trade_id: 1,
                last_buyer_maker,
                median_qty: MEDIAN_NOTIONAL / price,
                log_mid: ln(price),
                mid: price,
                beta,
                sigma,
                drift: -0.5 * variance,
            });
        }
        let duration_ms = i64::try_from(config.minutes.saturating_mul(60_000)).unwrap_or(i64::MAX);
        let mut heap = BinaryHeap::with_capacity(n);
        for (i, s) in state.iter_mut().enumerate() {
            s.next_t = s.rng.exponential() / s.rate_ms;
            let t = s.next_t as i64; // >= 0: truncation is floor
            if t < duration_ms {
                heap.push(Reverse((t, i as u32)));
            }
        }
        Simulator {
            info,
            state,
            heap,
            market: Rng::stream(config.seed, MARKET_STREAM),
            market_sec: 0,
            duration_ms,
            start_ms: config.start_ms,
            seq: 0,
        }
    }

    /// The symbols, by index.
    pub fn symbols(&self) -> impl ExactSizeIterator<Item = &Arc<str>> + '_ {
        self.info.iter().map(|i| &i.name)
    }

    /// Per-symbol static description (ticks, lots).
    pub(crate) fn info(&self) -> &[SymbolInfo] {
        &self.info
    }

    /// The mid price of symbol `i` at second `sec` of the simulation (seconds only move
    /// forward; the mids do not depend on the trades drawn).
    pub(crate) fn mid_at(&mut self, i: usize, sec: i64) -> f64 {
        self.advance_market(sec);
        self.state[i].mid
    }

    /// Length of the simulation in ms, and its start (epoch ms).
    pub(crate) fn span(&self) -> (i64, i64) {
        (self.duration_ms, self.start_ms)
    }

    /// Steps every mid price from second `market_sec` to second `sec`.
    fn advance_market(&mut self, sec: i64) {
        while self.market_sec < sec {
            let f = SIGMA_BTC_PER_SEC * self.market.normal();
            for (i, s) in self.state.iter_mut().enumerate() {
                let idio = if i == 0 {
                    0.0
                } else {
                    s.sigma * self.market.normal()
                };
                s.log_mid += s.beta * f + idio + s.drift;
                s.mid = exp(s.log_mid);
            }
            self.market_sec += 1;
        }
    }

    /// The next trade with its price and size in ticks and lots.
    pub(crate) fn next_raw(&mut self) -> Option<RawTrade> {
        let Reverse((t, sym)) = *self.heap.peek()?;
        self.advance_market(t.div_euclid(1000));
        let i = sym as usize;
        let s = &mut self.state[i];
        let info = &self.info[i];

        if s.rng.uniform() >= SAME_SIDE {
            s.last_buyer_maker = !s.last_buyer_maker;
        }
        let is_buyer_maker = s.last_buyer_maker;
        let side = if is_buyer_maker { -1.0 } else { 1.0 }; // taker sells at the bid
        let price = s.mid * (1.0 + side * HALF_SPREAD + PRICE_NOISE * s.rng.normal());
        let price_units = ((price * info.price_scale + 0.5) as i64).max(1);
        let z = s.rng.normal().clamp(-4.0, 4.0);
        let qty = s.median_qty * exp(SIZE_SIGMA * z);
        let qty_units = ((qty * info.qty_scale + 0.5) as i64).max(1);

        let trade = RawTrade {
            sym,
            ts_ms: self.start_ms + t,
            trade_id: s.next_trade_id,
            seq: self.seq,
            price_units,
            qty_units,
            is_buyer_maker,
        };
        s.next_trade_id += 1;
        self.seq += 1;

        s.next_t += s.rng.exponential() / s.rate_ms;
        let next = s.next_t as i64;
        let mut top = self.heap.peek_mut().expect("the heap held this trade");
        if next < self.duration_ms {
            *top = Reverse((next, sym));
        } else {
            PeekMut::pop(top);
        }
        Some(trade)
    }

    /// Converts a raw trade to the record the dataflow consumes.
    #[inline]
    pub(crate) fn to_trade(&self, raw: &RawTrade) -> Trade {
        let info = &self.info[raw.sym as usize];
        Trade {
            ts_ms: raw.ts_ms,
            trade_id: raw.trade_id,
            seq: raw.seq,
            exchange: 0,
            price: raw.price_units as f64 / info.price_scale,
            qty: raw.qty_units as f64 / info.qty_scale,
            is_buyer_maker: raw.is_buyer_maker,
        }
    }
}

impl Iterator for Simulator {
    type Item = (Arc<str>, Trade);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let raw = self.next_raw()?;
        let trade = self.to_trade(&raw);
        Some((Arc::clone(&self.info[raw.sym as usize].name), trade))
    }
}

impl std::iter::FusedIterator for Simulator {}
