//! The `dense_grid` operator: per symbol and resolution, one point per window from the
//! symbol's first bar on, forward-filling the close over windows without trades, with
//! the log return to the previous point.
//!
//! A point for the window ending at `e` is emitted once the input frontier reaches `e`
//! (live: up to the watermark); a bar restated by late data changes the points it
//! reaches (its window, the forward-filled ones after it, the next bar's return), which
//! are sent again with their revision + 1. When the input ends (backfill), every symbol is filled
//! up to the last bar of the whole input at that resolution, known from the broadcast
//! `last_bars` side input.

mod last;
mod series;
#[cfg(test)]
mod tests;

pub use last::LastBars;

use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::{Stream, StreamVec};

use crate::checkpoint::{Checkpointed, Checkpointing};
use crate::route::symbol_route;
use crate::window::Held;
use crate::{Bar, Symbol};
use series::Series;

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
    /// 0 when first sent, then +1 for each restatement of this row by late data.
    #[serde(default)]
    pub revision: u32,
}

impl GridPoint {
    /// The return as a fixed-point integer with 52 fractional bits (saturating), the
    /// exact unit of the co-moment sums.
    pub fn ret_fixed(&self) -> Option<i64> {
        self.ret.map(|r| (r * RET_SCALE).round() as i64)
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
            .filter_map(|(key, s)| Some((key.clone(), s.at(key.1, cut)?)))
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
    /// restored (bars ending before the restored cut are ignored). A bar restated
    /// within `lateness_ms` sends again, with revision + 1, every point it changes.
    fn dense_grid(
        self,
        last_bars: StreamVec<'scope, i64, (i64, i64)>,
        lateness_ms: i64,
        checkpoint: Option<Checkpointing>,
    ) -> StreamVec<'scope, i64, GridPoint>;
}

impl<'scope> DenseGrid<'scope> for Stream<'scope, i64, Vec<Bar>> {
    fn dense_grid(
        self,
        last_bars: StreamVec<'scope, i64, (i64, i64)>,
        lateness_ms: i64,
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
                    let mut behind = Vec::new();
                    bars.for_each(|_, data| {
                        for bar in data.drain(..) {
                            if bar.window_end < skip_before {
                                continue;
                            }
                            let key = (bar.symbol.clone(), bar.resolution_ms);
                            let s = series
                                .entry(key.clone())
                                .or_insert_with(|| Series::starting(bar.window_start));
                            if !s.take(&bar, &mut out) {
                                tracing::debug!(symbol = %bar.symbol, window_end = bar.window_end, "restated bar older than the grid keeps");
                            }
                            if bar.window_end <= seen_frontier {
                                behind.push(key); // a late bar of a window not filled yet
                            }
                        }
                    });
                    // Late bars of a series behind the frontier (a symbol whose first
                    // records came late) are filled now, not at the next frontier move.
                    behind.sort();
                    behind.dedup();
                    for key in behind {
                        if let Some(s) = series.get_mut(&key) {
                            s.fill(&key, seen_frontier, lateness_ms, &mut out);
                        }
                    }
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
                            // With lateness, a cut is taken once no restatement can
                            // reach a window before it (the kept points give the state).
                            for cut in cp.due(f.saturating_sub(lateness_ms)) {
                                // Points before the cut first, then the state at the cut.
                                for key in &keys {
                                    if let Some(s) = series.get_mut(key) {
                                        s.fill(key, cut - 1, lateness_ms, &mut out);
                                    }
                                }
                                cp.take(&[cut], &GridState::at(&series, cut));
                            }
                        }
                        for key in keys {
                            if let Some(s) = series.get_mut(&key) {
                                s.fill(&key, f, lateness_ms, &mut out);
                            }
                        }
                    }
                    if ended {
                        let mut keys: Vec<_> = series.keys().cloned().collect();
                        keys.sort();
                        for key in keys {
                            let until = last_end.get(&key.1).copied().unwrap_or(i64::MIN);
                            if let Some(s) = series.get_mut(&key) {
                                s.fill(&key, until, lateness_ms, &mut out);
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
