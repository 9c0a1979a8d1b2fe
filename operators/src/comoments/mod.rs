//! The `comoments` operator: rolling co-moments of grid returns for every pair of
//! symbols, kept incrementally and exactly, and the two views of them: the
//! correlation matrix and rolling beta / alpha / r2 against a benchmark.
//!
//! Returns are fixed-point integers (52 fractional bits, see [`GridPoint::ret_fixed`]);
//! per symbol Σr and Σr² and per pair Σr_a·r_b over the last W grid bars are `i128`
//! sums updated by adding the newest bar and subtracting the one leaving the window.
//! Integer sums cannot drift and do not depend on order, so results are identical on
//! any number of workers. Work per bar is O(N²) for N symbols, state O(N·W + N²).
//! A return restated by late data corrects the sums and sends again every window of
//! its symbol's pairs that holds it (`restate`).
//! Returns are broadcast; each worker owns the pairs of some blocks of the matrix.

mod matrix;
mod pairs;
mod restate;
#[cfg(test)]
pub(crate) mod tests;

pub use matrix::{CorrMatrix, CorrelationMatrix, MatrixLogic};
pub use pairs::{CoMoments, PairStats};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::StreamVec;

use crate::checkpoint::{Checkpointed, Checkpointing};
use crate::grid::GridPoint;
use crate::window::{WindowLogic, WindowOperator};
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
    /// 0 when first sent, then +1 for each restatement of this row by late data.
    #[serde(default)]
    pub revision: u32,
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
    /// 0 when first sent, then +1 for each restatement of this row by late data.
    #[serde(default)]
    pub revision: u32,
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
    /// How far behind the watermark a restatement can reach, ms (`time.allowed_lateness`):
    /// the history kept per series.
    #[serde(default)]
    pub lateness_ms: i64,
}

/// How the correlation set is written (`features.correlation_layout`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorrelationLayout {
    /// One record per pair (resolution, window_end, symbol_a, symbol_b, corr, n).
    #[default]
    Pairs,
    /// One [`CorrMatrix`] per (resolution, window end).
    Matrix,
}

/// A return of one symbol at one grid time, as broadcast to the pair owners:
/// (resolution, grid time, symbol, fixed-point return, revision).
pub type RetRecord = (i64, i64, Symbol, Option<i64>, u32);

/// The co-moments operator's state at a checkpoint cut, by resolution.
pub type CoMomentStates = Vec<(i64, CoMoments)>;

/// The co-moments operator: one [`CoMoments`] per resolution, fed every return.
pub struct CoMomentLogic {
    config: CoMomentConfig,
    index: usize,
    peers: usize,
    state: BTreeMap<i64, CoMoments>,
}

impl Checkpointed for CoMomentLogic {
    const NAME: &'static str = "comoments";
    type State = CoMomentStates;
}

impl WindowLogic for CoMomentLogic {
    type In = RetRecord;
    type Out = (Vec<CorrRow>, Vec<BetaRow>);

    fn window_end(r: &RetRecord) -> i64 {
        r.1
    }

    fn on_window(&mut self, end: i64, mut rets: Vec<RetRecord>, out: &mut Self::Out) {
        // By resolution and symbol, the newest revision of each return only (a point and
        // its restatement can reach a window not processed yet together).
        rets.sort_by(|a, b| (a.0, &a.2, a.4).cmp(&(b.0, &b.2, b.4)));
        rets.dedup_by(|later, kept| {
            let same = later.0 == kept.0 && later.2 == kept.2;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        let mut rets = rets.into_iter().peekable();
        while let Some(&(r, ..)) = rets.peek() {
            let mut batch = Vec::new();
            while let Some((_, _, sym, ret, _)) = rets.next_if(|x| x.0 == r) {
                batch.push((sym, ret));
            }
            let (config, index, peers) = (&self.config, self.index, self.peers);
            let cm = self
                .state
                .entry(r)
                .or_insert_with(|| CoMoments::new(config.clone(), index, peers));
            cm.advance(r, end, batch, &mut out.0, &mut out.1);
        }
    }

    fn flush(&mut self, out: &mut Self::Out) {
        for cm in self.state.values_mut() {
            cm.flush(&mut out.0, &mut out.1);
        }
    }

    fn cut_delay(&self) -> i64 {
        self.config.lateness_ms
    }

    fn snapshot_at(&self, cut: i64) -> CoMomentStates {
        self.state.iter().map(|(r, cm)| (*r, cm.at(cut))).collect()
    }

    fn snapshot(&self) -> CoMomentStates {
        self.state.iter().map(|(r, cm)| (*r, cm.clone())).collect()
    }

    fn restore(&mut self, state: CoMomentStates) {
        self.state.extend(state);
    }

    fn on_end(&mut self) {
        if self.index == 0
            && !self.state.is_empty()
            && self.state.values().all(|cm| !cm.has_benchmark())
        {
            tracing::warn!(benchmark = %self.config.benchmark, "benchmark symbol never appeared in the data: no beta rows");
        }
    }
}

/// Extension trait: rolling correlation and beta of a grid stream.
pub trait RollingCoMoments<'scope> {
    /// Returns the correlation rows (empty unless `correlation`) and the beta rows;
    /// with `checkpoint`, the sums are snapshotted at every cut and, after a restart,
    /// restored (returns before the cut are ignored).
    fn rolling_comoments(
        self,
        config: CoMomentConfig,
        checkpoint: Option<Checkpointing>,
    ) -> (
        StreamVec<'scope, i64, CorrRow>,
        StreamVec<'scope, i64, BetaRow>,
    );
}

impl<'scope> RollingCoMoments<'scope> for StreamVec<'scope, i64, GridPoint> {
    fn rolling_comoments(
        self,
        config: CoMomentConfig,
        checkpoint: Option<Checkpointing>,
    ) -> (
        StreamVec<'scope, i64, CorrRow>,
        StreamVec<'scope, i64, BetaRow>,
    ) {
        let scope = self.scope();
        let logic = CoMomentLogic {
            config,
            index: scope.index(),
            peers: scope.peers(),
            state: BTreeMap::new(),
        };
        let rets = self
            .map(|p: GridPoint| -> RetRecord {
                let ret = p.ret_fixed();
                (p.resolution_ms, p.window_end, p.symbol, ret, p.revision)
            })
            .broadcast();
        rets.window_operator(Pipeline, logic, checkpoint)
    }
}
