//! The `dense_grid` operator: per symbol and resolution, one point per window from the
//! symbol's first bar on, forward-filling the close over windows without trades, with
//! the log return to the previous point.
//!
//! A point for the window ending at `e` is emitted once the input frontier reaches `e`
//! (live: up to the watermark). When the input ends (backfill), every symbol is filled
//! up to the last bar of the whole input at that resolution, known from the broadcast
//! `last_bars` side input.

mod last;
#[cfg(test)]
mod tests;

pub use last::LastBars;

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::{Stream, StreamVec};

use crate::checkpoint::{Checkpointed, Checkpointing};
use crate::route::symbol_route;
use crate::window::Held;
use crate::{Bar, Symbol};

/// Scale of fixed-point returns: 2^52.
pub const RET_SCALE: f64 = 4_503_599_627_370_496.0;

/// One point of the dense close grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    /// The instrument.
    pub symbol: Symbol,
    /// Window length in ms.
    pub resolution_ms: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// Close of the window's bar, or the previous close when it had no trade.
    pub close: f64,
    /// High of the window's bar, or the previous close when it had no trade.
    pub high: f64,
    /// Low of the window's bar, or the previous close when it had no trade.
    pub low: f64,
    /// Volume of the window (0 when it had no trade).
    pub volume: f64,
    /// ln(close / previous close); `None` for the symbol's first point.
    pub ret: Option<f64>,
}

impl GridPoint {
    /// The return as a fixed-point integer with 52 fractional bits (saturating), the
    /// exact unit of the co-moment sums.
    pub fn ret_fixed(&self) -> Option<i64> {
        self.ret.map(|r| (r * RET_SCALE).round() as i64)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Series {
    /// Next window start to emit.
    next_start: i64,
    /// Last emitted close.
    last_close: Option<f64>,
    /// Bars not yet emitted: start -> (high, low, close, volume).
    pending: BTreeMap<i64, (f64, f64, f64, f64)>,
}

impl Series {
    fn fill(&mut self, key: &(Symbol, i64), until_end: i64, out: &mut Vec<GridPoint>) {
        let r = key.1;
        while self.next_start.saturating_add(r) <= until_end {
            let start = self.next_start;
            let (high, low, close, volume) = match self.pending.remove(&start) {
                Some(bar) => bar,
                None => match self.last_close {
                    Some(c) => (c, c, c, 0.0),
                    None => {
                        // Not started yet: jump to the first bar.
                        match self.pending.keys().next() {
                            Some(&s) => {
                                self.next_start = s;
                                continue;
                            }
                            None => return,
                        }
                    }
                },
            };
            let ret = self.last_close.map(|prev| (close / prev).ln());
            out.push(GridPoint {
                symbol: key.0.clone(),
                resolution_ms: r,
                window_end: start + r,
                close,
                high,
                low,
                volume,
                ret,
            });
            self.last_close = Some(close);
            self.next_start = start + r;
        }
    }
}

/// The grid's state at a checkpoint cut: every series with the bars before the cut.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GridState {
    series: Vec<((Symbol, i64), Series)>,
}

impl GridState {
    /// The state of `series` at `cut`: bars ending at or after it are left out (they are
    /// read again after a restart), and so are series that only hold such bars.
    fn at(series: &HashMap<(Symbol, i64), Series>, cut: i64) -> GridState {
        let mut kept: Vec<((Symbol, i64), Series)> = series
            .iter()
            .filter_map(|(key, s)| {
                let mut s = s.clone();
                s.pending.retain(|start, _| start + key.1 < cut);
                (s.last_close.is_some() || !s.pending.is_empty()).then(|| (key.clone(), s))
            })
            .collect();
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        GridState { series: kept }
    }
}

/// The dense grid as a checkpointed operator.
pub struct DenseGridOp;

impl Checkpointed for DenseGridOp {
    const NAME: &'static str = "grid";
    type State = GridState;
}

/// Extension trait: the dense close grid of a bar stream.
pub trait DenseGrid<'scope> {
    /// Builds grid points from final bars; `last_bars` carries `(resolution_ms, last
    /// window_end)` of the whole input, broadcast to every worker when the input ends.
    /// With `checkpoint`, its state is snapshotted at every cut and, after a restart,
    /// restored (bars ending before the restored cut are ignored).
    fn dense_grid(
        self,
        last_bars: StreamVec<'scope, i64, (i64, i64)>,
        checkpoint: Option<Checkpointing>,
    ) -> StreamVec<'scope, i64, GridPoint>;
}

impl<'scope> DenseGrid<'scope> for Stream<'scope, i64, Vec<Bar>> {
    fn dense_grid(
        self,
        last_bars: StreamVec<'scope, i64, (i64, i64)>,
        checkpoint: Option<Checkpointing>,
    ) -> StreamVec<'scope, i64, GridPoint> {
        let (index, peers) = (self.scope().index(), self.scope().peers());
        let pact = Exchange::new(|b: &Bar| symbol_route(&b.symbol));
        self.binary_frontier(
            last_bars,
            pact,
            timely::dataflow::channels::pact::Pipeline,
            "DenseGrid",
            |cap, _| {
                let mut held = Held::new(vec![cap]);
                let mut series: HashMap<(Symbol, i64), Series> = HashMap::default();
                let mut cp = checkpoint.map(|c| c.checkpointer::<DenseGridOp>(index, peers));
                let mut skip_before = i64::MIN;
                if let Some(c) = cp.as_ref().and_then(|c| c.restored_cut()) {
                    skip_before = c;
                }
                if let Some((_, state)) = cp.as_ref().and_then(|c| c.restored::<GridState>()) {
                    series.extend(state.series);
                }
                let mut last_end: HashMap<i64, i64> = HashMap::default();
                let mut seen_frontier = i64::MIN;
                let mut out = Vec::new();
                move |(bars, f1), (ends, f2), output| {
                    bars.for_each(|_, data| {
                        for bar in data.drain(..) {
                            if bar.revision > 0 || bar.window_end < skip_before {
                                // Restatements reach the bar sinks only; the grid has
                                // moved past their windows.
                                continue;
                            }
                            let s = series
                                .entry((bar.symbol.clone(), bar.resolution_ms))
                                .or_insert_with(|| Series {
                                    next_start: bar.window_start,
                                    ..Series::default()
                                });
                            if s.last_close.is_none() && bar.window_start < s.next_start {
                                s.next_start = bar.window_start;
                            } else if bar.window_start < s.next_start {
                                continue; // a late first bar of a window already filled
                            }
                            let ohlcv = (bar.high, bar.low, bar.close, bar.volume);
                            s.pending.insert(bar.window_start, ohlcv);
                        }
                    });
                    ends.for_each(|_, data| {
                        for (r, e) in data.drain(..) {
                            let v = last_end.entry(r).or_insert(e);
                            *v = (*v).max(e);
                        }
                    });
                    let f = f1.frontier().first().copied().unwrap_or(i64::MAX);
                    let ended = f == i64::MAX && f2.is_empty();
                    if f > seen_frontier && f != i64::MAX {
                        seen_frontier = f;
                        let mut keys: Vec<_> = series.keys().cloned().collect();
                        keys.sort();
                        if let Some(cp) = cp.as_mut() {
                            for cut in cp.due(f) {
                                // Points before the cut first, then the state at the cut.
                                for key in &keys {
                                    if let Some(s) = series.get_mut(key) {
                                        s.fill(key, cut - 1, &mut out);
                                    }
                                }
                                cp.take(&[cut], &GridState::at(&series, cut));
                            }
                        }
                        for key in keys {
                            if let Some(s) = series.get_mut(&key) {
                                s.fill(&key, f, &mut out);
                            }
                        }
                    }
                    if ended {
                        let mut keys: Vec<_> = series.keys().cloned().collect();
                        keys.sort();
                        for key in keys {
                            let until = last_end.get(&key.1).copied().unwrap_or(i64::MIN);
                            if let Some(s) = series.get_mut(&key) {
                                s.fill(&key, until, &mut out);
                            }
                        }
                        series.clear();
                    }
                    match held.caps() {
                        Some([c]) if !out.is_empty() => {
                            output.session(c).give_iterator(out.drain(..));
                        }
                        _ => out.clear(),
                    }
                    // Once the bars are complete, the points still to come (filled up to
                    // the last bar of the whole input) end after `seen_frontier`: hold
                    // there, so none is sent at a time after its window end (downstream,
                    // a Parquet partition would be written twice).
                    let upper = if f == i64::MAX { seen_frontier } else { f };
                    let hold = upper.min(f2.frontier().first().copied().unwrap_or(i64::MAX));
                    if ended {
                        held.advance(i64::MAX);
                    } else if hold != i64::MAX {
                        held.advance(hold);
                    }
                }
            },
        )
    }
}
