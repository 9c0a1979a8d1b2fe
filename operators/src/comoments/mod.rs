//! The `comoments` operator: rolling co-moments of grid returns for every pair of
//! symbols, kept incrementally and exactly, and the two views of them: the
//! correlation matrix and rolling beta / alpha / r2 against a benchmark.
//!
//! Returns are fixed-point integers (52 fractional bits, see [`GridPoint::ret_fixed`]);
//! per symbol Σr and Σr² and per pair Σr_a·r_b over the last W grid bars are `i128`
//! sums updated by adding the newest bar and subtracting the one leaving the window.
//! Integer sums cannot drift and do not depend on order, so results are identical on
//! any number of workers. Work per bar is O(N²) for N symbols, state O(N·W + N²).
//! Returns are broadcast; each worker owns the pairs of some blocks of the matrix.

mod pairs;
#[cfg(test)]
pub(crate) mod tests;

pub use pairs::{CoMoments, PairStats};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::{Stream, StreamVec};

use crate::checkpoint::Checkpointing;
use crate::grid::GridPoint;
use crate::Symbol;

/// One row of the `correlation` set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorrRow {
    /// Window length in ms.
    pub resolution_ms: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// The first symbol (byte order).
    pub symbol_a: Symbol,
    /// The second symbol.
    pub symbol_b: Symbol,
    /// Pearson correlation of returns; null when either variance is 0.
    pub corr: Option<f64>,
    /// Returns in the window (W).
    pub n: i64,
}

/// One row of the `beta` set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BetaRow {
    /// The instrument.
    pub symbol: Symbol,
    /// The benchmark.
    pub benchmark: Symbol,
    /// Window length in ms.
    pub resolution_ms: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// cov(ret_s, ret_B)/var(ret_B); null when var(ret_B) is 0.
    pub beta: Option<f64>,
    /// mean(ret_s) − beta·mean(ret_B).
    pub alpha: Option<f64>,
    /// corr(ret_s, ret_B)².
    pub r2: Option<f64>,
    /// Returns in the window (W).
    pub n: i64,
}

/// Settings of the co-moments operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoMomentConfig {
    /// W, in grid bars.
    pub window: usize,
    /// The benchmark symbol for beta.
    pub benchmark: String,
    /// Emit the full correlation matrix (otherwise only benchmark pairs are kept).
    pub correlation: bool,
}

/// A return of one symbol at one grid time, as broadcast to the pair owners.
pub type RetRecord = (i64, i64, Symbol, Option<i64>);

/// Returns waiting for their grid time to complete, keyed by (resolution, window_end).
type Pending = BTreeMap<(i64, i64), Vec<(Symbol, Option<i64>)>>;

/// The co-moments operator's state at a checkpoint cut, by resolution.
pub type CoMomentStates = Vec<(i64, CoMoments)>;

/// Extension trait: rolling correlation and beta of a grid stream.
pub trait RollingCoMoments<'scope> {
    /// Returns the correlation rows (empty unless `correlation`) and the beta rows.
    fn rolling_comoments(
        self,
        config: CoMomentConfig,
    ) -> (
        StreamVec<'scope, i64, CorrRow>,
        StreamVec<'scope, i64, BetaRow>,
    );

    /// `rolling_comoments` taking part in checkpoints: the sums are snapshotted at
    /// every cut and, after a restart, restored (returns before the cut are ignored).
    fn rolling_comoments_with(
        self,
        config: CoMomentConfig,
        checkpoint: Option<Checkpointing>,
    ) -> (
        StreamVec<'scope, i64, CorrRow>,
        StreamVec<'scope, i64, BetaRow>,
    );
}

/// The sums by resolution, in order.
fn snapshot(state: &BTreeMap<i64, CoMoments>) -> CoMomentStates {
    state.iter().map(|(r, cm)| (*r, cm.clone())).collect()
}

impl<'scope> RollingCoMoments<'scope> for Stream<'scope, i64, Vec<GridPoint>> {
    fn rolling_comoments(
        self,
        config: CoMomentConfig,
    ) -> (
        StreamVec<'scope, i64, CorrRow>,
        StreamVec<'scope, i64, BetaRow>,
    ) {
        self.rolling_comoments_with(config, None)
    }

    fn rolling_comoments_with(
        self,
        config: CoMomentConfig,
        checkpoint: Option<Checkpointing>,
    ) -> (
        StreamVec<'scope, i64, CorrRow>,
        StreamVec<'scope, i64, BetaRow>,
    ) {
        let scope = self.scope();
        let (index, peers) = (scope.index(), scope.peers());
        let rets = self
            .map(|p: GridPoint| -> RetRecord {
                (
                    p.resolution_ms,
                    p.window_end,
                    p.symbol.clone(),
                    p.ret_fixed(),
                )
            })
            .broadcast();
        let mut builder = OperatorBuilder::new("RollingCoMoments".to_owned(), scope);
        let mut input = builder.new_input(rets, Pipeline);
        let (corr_out, corr) = builder.new_output();
        let (beta_out, beta) = builder.new_output();
        let mut corr_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<CorrRow>>>::from(corr_out);
        let mut beta_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<BetaRow>>>::from(beta_out);
        builder.build(move |caps| {
            let mut caps = Some(caps);
            let mut pending: Pending = BTreeMap::new();
            let mut state: BTreeMap<i64, CoMoments> = BTreeMap::new();
            let mut cp = checkpoint.map(|c| c.checkpointer("comoments", index, peers));
            let skip_before = cp.as_ref().and_then(|c| c.restored_cut()).unwrap_or(i64::MIN);
            if let Some((_, restored)) = cp.as_ref().and_then(|c| c.restored::<CoMomentStates>()) {
                state.extend(restored);
            }
            let mut warned = false;
            // Reused across invocations: a bar of N = 500 makes 126k rows.
            let (mut corr_rows, mut beta_rows) = (Vec::new(), Vec::new());
            move |frontiers| {
                input.for_each(|_, data| {
                    for (r, end, sym, ret) in data.drain(..) {
                        if end < skip_before {
                            continue;
                        }
                        pending.entry((end, r)).or_default().push((sym, ret));
                    }
                });
                let f = frontiers[0].frontier().first().copied().unwrap_or(i64::MAX);
                while let Some(entry) = pending.first_entry() {
                    if entry.key().0 > f {
                        break;
                    }
                    if let Some(cp) = cp.as_mut() {
                        // The sums before the first return at or after a cut.
                        cp.take_due(entry.key().0, || snapshot(&state));
                    }
                    let ((end, r), rets) = entry.remove_entry();
                    let cm = state.entry(r).or_insert_with(|| CoMoments::new(config.clone(), index, peers));
                    cm.advance(r, end, rets, &mut corr_rows, &mut beta_rows);
                }
                if let Some(cp) = cp.as_mut() {
                    cp.take_due(f, || snapshot(&state));
                }
                if f == i64::MAX && !warned && index == 0 {
                    warned = true;
                    if !state.is_empty() && state.values().all(|cm| !cm.has_benchmark()) {
                        tracing::warn!(benchmark = %config.benchmark, "benchmark symbol never appeared in the data: no beta rows");
                    }
                }
                let Some(cv) = caps.as_mut() else {
                    corr_rows.clear();
                    beta_rows.clear();
                    return;
                };
                if !corr_rows.is_empty() {
                    corr_out.activate().session(&cv[0]).give_iterator(corr_rows.drain(..));
                }
                if !beta_rows.is_empty() {
                    beta_out.activate().session(&cv[1]).give_iterator(beta_rows.drain(..));
                }
                if f == i64::MAX {
                    caps = None;
                } else {
                    for c in cv.iter_mut() {
                        if *c.time() < f {
                            c.downgrade(&f);
                        }
                    }
                }
            }
        });
        (corr, beta)
    }
}
