//! The `bars` operator: exact OHLCV bars per symbol at every configured resolution.
//!
//! Input is a stream of [`SymbolBatch`]es whose timely time is event time (ms) and whose
//! records carry event times at or after their message's time. The operator routes by
//! symbol, buffers trades of each finest-resolution window until the input frontier
//! passes the window's end, then sorts them by `(ts_ms, trade_id, seq)`, drops
//! duplicate `(exchange, trade_id)`s (keeping the first by that order), and rolls the
//! finished bar up into every coarser resolution. Only windows with a trade are emitted.

mod acc;
mod dedup;
mod state;
#[cfg(test)]
mod tests;

pub use acc::{Bar, BarAcc, OrderKey};

use std::collections::HashMap;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::{Stream, StreamVec};

use crate::resolution::{validate, Resolution};
use crate::route::symbol_route;
use crate::{OperatorError, Reject, SymbolBatch};
use state::{Plan, SymbolState};

/// Settings of the bars operator.
#[derive(Clone, Debug)]
pub struct BarsConfig {
    /// Resolutions to emit; each must be a whole multiple of the finest.
    pub resolutions: Vec<Resolution>,
    /// How long trade ids are remembered behind the frontier for dedup, in ms.
    pub dedup_horizon_ms: i64,
    /// How long emitted bars are kept so that a late trade restates them (revision + 1),
    /// in ms behind the frontier. Later trades are rejected as `late`.
    pub lateness_ms: i64,
}

impl BarsConfig {
    /// A config for `resolutions`, remembering trade ids for one largest window.
    pub fn new(resolutions: &[Resolution]) -> Result<BarsConfig, OperatorError> {
        let resolutions = validate(resolutions)?;
        let dedup_horizon_ms = resolutions.last().map(|r| r.ms).unwrap_or(0);
        Ok(BarsConfig {
            resolutions,
            dedup_horizon_ms,
            lateness_ms: 0,
        })
    }
}

/// Shared counters a bars operator publishes for progress logs.
#[derive(Clone, Debug, Default)]
pub struct BarsStats {
    /// Records (trades and candles) in.
    pub records_in: u64,
    /// Bars out.
    pub bars_out: u64,
    /// Records held in open windows and dedup memory.
    pub state_records: u64,
}

/// Extension trait: turn trades and candles into bars.
pub trait Bars<'scope> {
    /// Builds bars; returns the bars and the duplicate rejects.
    ///
    /// ```
    /// use operators::{Bars, BarsConfig, Resolution, SymbolBatch, Trade, NO_TRADE_ID};
    /// use timely::dataflow::operators::{Capture, ToStream, capture::Event};
    ///
    /// let config = BarsConfig::new(&[Resolution::parse("1s").unwrap()]).unwrap();
    /// let out = timely::execute_directly(move |worker| worker.dataflow::<i64, _, _>(|scope| {
    ///     let trade = |ts, p| Trade { ts_ms: ts, trade_id: NO_TRADE_ID, seq: ts as u64,
    ///         exchange: 0, price: p, qty: 1.0, is_buyer_maker: false };
    ///     let batch = SymbolBatch { symbol: "BTC".into(),
    ///         trades: vec![trade(10, 1.0), trade(900, 3.0), trade(1500, 2.0)], candles: vec![] };
    ///     let (bars, _rejects) = vec![batch].to_stream(scope).container::<Vec<_>>()
    ///         .bars(config.clone(), None);
    ///     bars.capture()
    /// }));
    /// let bars: Vec<_> = out.try_iter()
    ///     .flat_map(|e| match e { Event::Messages(_, b) => b, _ => vec![] }).collect();
    /// assert_eq!(bars.len(), 2);
    /// ```
    fn bars(
        self,
        config: BarsConfig,
        stats: Option<std::rc::Rc<std::cell::RefCell<BarsStats>>>,
    ) -> (StreamVec<'scope, i64, Bar>, StreamVec<'scope, i64, Reject>);
}

impl<'scope> Bars<'scope> for Stream<'scope, i64, Vec<SymbolBatch>> {
    fn bars(
        self,
        config: BarsConfig,
        stats: Option<std::rc::Rc<std::cell::RefCell<BarsStats>>>,
    ) -> (StreamVec<'scope, i64, Bar>, StreamVec<'scope, i64, Reject>) {
        let mut builder = OperatorBuilder::new("Bars".to_owned(), self.scope());
        let pact = Exchange::new(|b: &SymbolBatch| symbol_route(&b.symbol));
        let mut input = builder.new_input(self, pact);
        let (bars_out, bars_stream) = builder.new_output();
        let (rejects_out, rejects_stream) = builder.new_output();
        let mut bars_out = OutputBuilder::<_, CapacityContainerBuilder<Vec<Bar>>>::from(bars_out);
        let mut rejects_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<Reject>>>::from(rejects_out);

        let plan = Plan {
            finest: config.resolutions.first().map(|r| r.ms).unwrap_or(1000),
            all: config.resolutions.iter().map(|r| r.ms).collect(),
            dedup_horizon_ms: config.dedup_horizon_ms.max(config.lateness_ms),
            lateness_ms: config.lateness_ms,
        };

        builder.build(move |mut caps| {
            let mut rejects_cap = caps.pop();
            let mut bars_cap = caps.pop();
            let mut symbols: HashMap<String, SymbolState> = HashMap::new();
            let mut last_frontier = i64::MIN;
            let mut bars = Vec::new();
            let mut rejects = Vec::new();
            move |frontiers| {
                let mut records_in = 0u64;
                input.for_each(|_cap, data| {
                    for batch in data.drain(..) {
                        records_in += batch.len() as u64;
                        let state = match symbols.get_mut(&batch.symbol) {
                            Some(s) => s,
                            None => symbols.entry(batch.symbol.clone()).or_default(),
                        };
                        state.push_trades(&batch.trades);
                        state.push_candles(&plan, &batch.candles);
                    }
                });

                let frontier = frontiers[0].frontier().first().copied().unwrap_or(i64::MAX);
                if frontier > last_frontier || frontier == i64::MAX {
                    last_frontier = frontier;
                    for (symbol, state) in symbols.iter_mut() {
                        state.finalize(symbol, &plan, frontier, &mut bars, &mut rejects);
                    }
                    symbols.retain(|_, s| !s.is_idle() || frontier != i64::MAX);
                }
                if let Some(stats) = stats.as_ref() {
                    let mut stats = stats.borrow_mut();
                    stats.records_in += records_in;
                    stats.bars_out += bars.len() as u64;
                    stats.state_records =
                        symbols.values().map(SymbolState::size).sum::<usize>() as u64;
                }
                if let Some(cap) = bars_cap.as_ref() {
                    if !bars.is_empty() {
                        bars_out
                            .activate()
                            .session(cap)
                            .give_iterator(bars.drain(..));
                    }
                }
                if let Some(cap) = rejects_cap.as_ref() {
                    if !rejects.is_empty() {
                        rejects_out
                            .activate()
                            .session(cap)
                            .give_iterator(rejects.drain(..));
                    }
                }
                if frontier == i64::MAX {
                    bars_cap = None;
                    rejects_cap = None;
                } else {
                    for cap in bars_cap.iter_mut().chain(rejects_cap.iter_mut()) {
                        if *cap.time() < frontier {
                            cap.downgrade(&frontier);
                        }
                    }
                }
            }
        });
        (bars_stream, rejects_stream)
    }
}
