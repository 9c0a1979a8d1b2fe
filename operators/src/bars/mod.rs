//! The `bars` operator: exact OHLCV bars per symbol at every configured resolution.
//!
//! Input is a stream of [`SymbolBatch`]es whose timely time is event time (ms) and whose
//! records carry event times at or after their message's time. It runs in two stages:
//! 1. trades are routed by `(exchange, trade_id)` shard, so every worker takes a share
//!    of every symbol; each buffers its trades of a finest-resolution window until the
//!    input frontier passes the window's end, sorts them by `(ts_ms, trade_id, seq)`,
//!    drops duplicate `(exchange, trade_id)`s (keeping the first by that order) and
//!    sums the rest into a partial bar ([`Part`]);
//! 2. parts are routed by symbol and merged (exactly: [`BarAcc::merge`] is associative)
//!    into the window of every resolution, emitted once the frontier passes its end.
//!
//! Only windows with a trade are emitted.

mod acc;
mod dedup;
mod rollup;
mod shard;
#[cfg(test)]
mod tests;
mod trades;

pub use acc::{Bar, BarAcc, OrderKey};
pub use trades::{Part, PartBatch};

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use rustc_hash::FxHashMap as HashMap;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::Concat;
use timely::dataflow::{Stream, StreamVec};

use crate::resolution::{validate, Resolution};
use crate::route::symbol_route;
use crate::window::{Held, WindowOutputs};
use crate::{OperatorError, Reject, Symbol, SymbolBatch};
use rollup::RollupState;
use shard::{batch_shard, ShardTrades};
use trades::{candle_part, Plan, TradeState};

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
    ///         trades: vec![trade(10, 1.0), trade(900, 3.0), trade(1500, 2.0)], candles: vec![], book: vec![] };
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
        stats: Option<Rc<RefCell<BarsStats>>>,
    ) -> (StreamVec<'scope, i64, Bar>, StreamVec<'scope, i64, Reject>);
}

impl<'scope> Bars<'scope> for Stream<'scope, i64, Vec<SymbolBatch>> {
    fn bars(
        self,
        config: BarsConfig,
        stats: Option<Rc<RefCell<BarsStats>>>,
    ) -> (StreamVec<'scope, i64, Bar>, StreamVec<'scope, i64, Reject>) {
        let plan = Plan {
            finest: config.resolutions.first().map(|r| r.ms).unwrap_or(1000),
            all: config.resolutions.iter().map(|r| r.ms).collect(),
            dedup_horizon_ms: config.dedup_horizon_ms.max(config.lateness_ms),
            lateness_ms: config.lateness_ms,
        };
        let peers = self.scope().peers() as u64;
        let sharded = if peers > 1 {
            self.shard_trades(peers)
        } else {
            self
        };
        let held = Rc::new(Cell::new(0u64));
        let (parts, trade_rejects) =
            bar_parts(sharded, peers, plan.clone(), stats.clone(), held.clone());
        let (bars, part_rejects) = roll_up(parts, plan, stats, held);
        (bars, trade_rejects.concat(part_rejects))
    }
}

/// Stage one ("BarParts"): trades routed by trade shard, deduplicated and summed per
/// finest window once it is final; candles passed on as parts. `peers` is the number
/// of shards; `held` gets the number of records this stage holds.
fn bar_parts<'scope>(
    batches: StreamVec<'scope, i64, SymbolBatch>,
    peers: u64,
    plan: Plan,
    stats: Option<Rc<RefCell<BarsStats>>>,
    held: Rc<Cell<u64>>,
) -> (
    StreamVec<'scope, i64, PartBatch>,
    StreamVec<'scope, i64, Reject>,
) {
    let mut builder = OperatorBuilder::new("BarParts".to_owned(), batches.scope());
    let pact = Exchange::new(move |b: &SymbolBatch| batch_shard(b, peers));
    let mut input = builder.new_input(batches, pact);
    type Out = (Vec<PartBatch>, Vec<Reject>);
    let (mut handles, streams) = Out::new_outputs(&mut builder);
    builder.build(move |caps| {
        let mut holding = Held::new(caps);
        let mut symbols: HashMap<Symbol, TradeState> = HashMap::default();
        let mut last_frontier = i64::MIN;
        let mut buffered = Out::default();
        move |frontiers| {
            let (out, rejects) = &mut buffered;
            let mut records_in = 0u64;
            // Symbols with trades of windows already closed (late data): their parts go
            // out now, even when the frontier stands still.
            let mut late: Vec<Symbol> = Vec::new();
            input.for_each(|_cap, data| {
                for batch in data.drain(..) {
                    records_in += batch.len() as u64;
                    if batch.trades.iter().any(|t| t.ts_ms < last_frontier) {
                        late.push(batch.symbol.clone());
                    }
                    if !batch.candles.is_empty() {
                        out.push(PartBatch {
                            symbol: batch.symbol.clone(),
                            parts: batch.candles.iter().map(candle_part).collect(),
                        });
                    }
                    if !batch.trades.is_empty() {
                        state_of(&mut symbols, &batch.symbol).push_trades(batch.trades);
                    }
                }
            });
            let frontier = frontiers[0].frontier().first().copied().unwrap_or(i64::MAX);
            if frontier > last_frontier || frontier == i64::MAX {
                last_frontier = frontier;
                for (symbol, state) in symbols.iter_mut() {
                    let mut parts = Vec::new();
                    state.finalize(symbol, &plan, frontier, &mut parts, rejects);
                    if !parts.is_empty() {
                        out.push(PartBatch {
                            symbol: symbol.clone(),
                            parts,
                        });
                    }
                }
                symbols.retain(|_, s| !s.is_idle() || frontier != i64::MAX);
                held.set(symbols.values().map(TradeState::size).sum::<usize>() as u64);
            } else {
                late.sort();
                late.dedup();
                for symbol in late {
                    if let Some(state) = symbols.get_mut(&symbol) {
                        let mut parts = Vec::new();
                        state.finalize(&symbol, &plan, last_frontier, &mut parts, rejects);
                        if !parts.is_empty() {
                            out.push(PartBatch { symbol, parts });
                        }
                    }
                }
            }
            if let Some(stats) = stats.as_ref() {
                stats.borrow_mut().records_in += records_in;
            }
            holding.send(&mut buffered, &mut handles);
            holding.advance(frontier);
        }
    });
    streams
}

/// Stage two ("BarRollup"): parts routed by symbol, merged into every resolution's
/// windows and emitted once final; restated within the allowed lateness.
fn roll_up<'scope>(
    parts: StreamVec<'scope, i64, PartBatch>,
    plan: Plan,
    stats: Option<Rc<RefCell<BarsStats>>>,
    held: Rc<Cell<u64>>,
) -> (StreamVec<'scope, i64, Bar>, StreamVec<'scope, i64, Reject>) {
    let mut builder = OperatorBuilder::new("BarRollup".to_owned(), parts.scope());
    let pact = Exchange::new(|b: &PartBatch| symbol_route(&b.symbol));
    let mut input = builder.new_input(parts, pact);
    type Out = (Vec<Bar>, Vec<Reject>);
    let (mut handles, streams) = Out::new_outputs(&mut builder);
    builder.build(move |caps| {
        let mut holding = Held::new(caps);
        let mut symbols: HashMap<Symbol, RollupState> = HashMap::default();
        let mut last_frontier = i64::MIN;
        let mut buffered = Out::default();
        move |frontiers| {
            let (bars, rejects) = &mut buffered;
            input.for_each(|_cap, data| {
                for batch in data.drain(..) {
                    let state = state_of(&mut symbols, &batch.symbol);
                    for part in &batch.parts {
                        state.apply(&batch.symbol, &plan, part, bars, rejects);
                    }
                }
            });
            let frontier = frontiers[0].frontier().first().copied().unwrap_or(i64::MAX);
            if frontier > last_frontier || frontier == i64::MAX {
                last_frontier = frontier;
                for (symbol, state) in symbols.iter_mut() {
                    state.finalize(symbol, &plan, frontier, bars);
                }
                symbols.retain(|_, s| !s.is_idle() || frontier != i64::MAX);
            }
            if let Some(stats) = stats.as_ref() {
                let mut stats = stats.borrow_mut();
                stats.bars_out += bars.len() as u64;
                stats.state_records =
                    symbols.values().map(RollupState::size).sum::<usize>() as u64 + held.get();
            }
            holding.send(&mut buffered, &mut handles);
            holding.advance(frontier);
        }
    });
    streams
}

/// The state of `symbol`, made on first sight (the key is allocated only then).
fn state_of<'a, S: Default>(symbols: &'a mut HashMap<Symbol, S>, symbol: &Symbol) -> &'a mut S {
    if !symbols.contains_key(symbol) {
        symbols.insert(symbol.clone(), S::default());
    }
    symbols.get_mut(symbol).expect("inserted above")
}
