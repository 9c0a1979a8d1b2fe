//! The feature graph shared by live and backfill runs: bars, the dense close grid, and
//! the rolling features on it (indicators and alerts, correlation and beta).

use std::cell::RefCell;
use std::rc::Rc;

use operators::checkpoint::{CheckpointPlan, Checkpointing, SnapshotSink};
use operators::comoments::{BetaRow, CoMomentConfig, CorrRow, RollingCoMoments};
use operators::grid::{DenseGrid, LastBars};
use operators::indicators::{AlertRow, IndicatorConfig, IndicatorRow, Indicators};
use operators::{Bar, Bars, BarsConfig, BarsStats, Reject, SymbolBatch};
use timely::dataflow::operators::Concat;
use timely::dataflow::StreamVec;

/// What the features are computed with.
#[derive(Clone, Debug)]
pub struct FeatureConfig {
    /// Bar resolutions and dedup horizon.
    pub bars: BarsConfig,
    /// Indicators and alerts (`features.indicators`); `None` switches them off.
    pub indicators: Option<IndicatorConfig>,
    /// Correlation matrix and beta; `correlation = false` keeps beta only.
    pub comoments: CoMomentConfig,
    /// Checkpoint interval and restore point of the rolling operators (live only).
    pub checkpoint: Option<CheckpointPlan>,
}

impl FeatureConfig {
    /// The operators that take snapshots with this configuration.
    pub fn checkpointed_operators(&self) -> Vec<String> {
        let mut ops = vec!["grid".to_string()];
        if self.indicators.is_some() {
            ops.push("indicators".into());
        }
        ops.push("comoments".into());
        ops
    }
}

/// Every feature stream of the graph, plus the records it rejected.
pub struct FeatureStreams<'scope> {
    /// OHLCV bars at every resolution.
    pub bars: StreamVec<'scope, i64, Bar>,
    /// Indicator rows, when indicators are on.
    pub indicators: Option<StreamVec<'scope, i64, IndicatorRow>>,
    /// Alerts, when indicators are on.
    pub alerts: Option<StreamVec<'scope, i64, AlertRow>>,
    /// Correlation pairs, when the correlation matrix is on.
    pub correlation: Option<StreamVec<'scope, i64, CorrRow>>,
    /// Rolling beta against the benchmark.
    pub beta: StreamVec<'scope, i64, BetaRow>,
    /// Records rejected inside the graph (for example duplicates).
    pub rejects: StreamVec<'scope, i64, Reject>,
}

/// Builds the feature graph over a stream of per-symbol trade/candle batches whose
/// timely time is event time. `source_rejects` are merged into the output rejects.
/// With `snapshots` (live), the rolling operators checkpoint by `config.checkpoint`.
pub fn features<'scope>(
    batches: StreamVec<'scope, i64, SymbolBatch>,
    source_rejects: StreamVec<'scope, i64, Reject>,
    config: &FeatureConfig,
    stats: Rc<RefCell<BarsStats>>,
    snapshots: Option<SnapshotSink>,
) -> FeatureStreams<'scope> {
    let cp = match (&config.checkpoint, snapshots) {
        (Some(plan), Some(sink)) => Some(Checkpointing {
            plan: plan.clone(),
            sink,
        }),
        _ => None,
    };
    let (bars, duplicates) = batches.bars(config.bars.clone(), Some(stats));
    let grid = bars
        .clone()
        .dense_grid_with(bars.clone().last_bars(), cp.clone());
    let (indicators, alerts) = match config.indicators {
        Some(c) => {
            let (rows, alerts) = grid.clone().indicators_with(c, cp.clone());
            (Some(rows), Some(alerts))
        }
        None => (None, None),
    };
    let (correlation, beta) = grid.rolling_comoments_with(config.comoments.clone(), cp);
    FeatureStreams {
        bars,
        indicators,
        alerts,
        correlation: config.comoments.correlation.then_some(correlation),
        beta,
        rejects: source_rejects.concat(duplicates),
    }
}
