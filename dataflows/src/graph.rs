//! The feature graph shared by live and backfill runs: bars, the dense close grid, and
//! the rolling features on it (indicators and alerts, correlation and beta, risk), and
//! the one place where every feature stream meets its sinks.

use std::cell::RefCell;
use std::rc::Rc;

use connectors::chart::{ChartSink, ChartSpec, ChartWritten};
use connectors::parquet::FeatureRow;
use connectors::sync::ErrorSlot;
use operators::book::{BookConfig, BookRow, OrderBooks, OrderBooksOp, QuoteRow, SplitBooks};
use operators::checkpoint::{CheckpointPlan, Checkpointing, SnapshotSink, StateKind};
use operators::comoments::{
    BetaRow, CoMomentConfig, CoMomentLogic, CorrMatrix, CorrRow, CorrelationLayout,
    CorrelationMatrix, RollingCoMoments,
};
use operators::grid::{DenseGrid, DenseGridOp, LastBars};
use operators::indicators::{AlertRow, IndicatorConfig, IndicatorLogic, IndicatorRow, Indicators};
use operators::risk::{Risk, RiskConfig, RiskLogic, RiskRow};
use operators::{Bar, Bars, BarsConfig, BarsStats, FeatureSet, Reject, SymbolBatch};
use timely::dataflow::operators::{Concat, Inspect, ToStream};
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
    /// How the correlation set is written.
    pub correlation_layout: CorrelationLayout,
    /// Emit rolling beta (`features.beta`).
    pub beta: bool,
    /// Risk and trend measures (`features.risk`); `None` switches them off.
    pub risk: Option<RiskConfig>,
    /// Checkpoint interval and restore point of the rolling operators (live only).
    pub checkpoint: Option<CheckpointPlan>,
    /// The order-book sets (`features.book`); `None` switches them off (book records
    /// are then dropped).
    pub book: Option<BookConfig>,
}

impl FeatureConfig {
    /// The operators that take snapshots with this configuration.
    pub fn checkpointed_operators(&self) -> Vec<StateKind> {
        let mut ops = Vec::new();
        if self.needs_grid() {
            ops.push(StateKind::of::<DenseGridOp>());
        }
        if self.indicators.is_some() {
            ops.push(StateKind::of::<IndicatorLogic>());
        }
        if self.needs_comoments() {
            ops.push(StateKind::of::<CoMomentLogic>());
        }
        if self.risk.is_some() {
            ops.push(StateKind::of::<RiskLogic>());
        }
        if self.book.is_some() {
            ops.push(StateKind::of::<OrderBooksOp>());
        }
        ops
    }

    /// True when correlation or beta is on, which the co-moments operator computes.
    fn needs_comoments(&self) -> bool {
        self.comoments.correlation || self.beta
    }

    /// True when a feature on the dense close grid is on (everything but bars).
    pub fn needs_grid(&self) -> bool {
        self.indicators.is_some() || self.needs_comoments() || self.risk.is_some()
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
    /// Correlation pairs, when the correlation matrix is on in the `pairs` layout.
    pub correlation: Option<StreamVec<'scope, i64, CorrRow>>,
    /// Correlation matrices, when it is on in the `matrix` layout.
    pub correlation_matrix: Option<StreamVec<'scope, i64, CorrMatrix>>,
    /// Rolling beta against the benchmark, when beta is on.
    pub beta: Option<StreamVec<'scope, i64, BetaRow>>,
    /// Risk rows, when risk is on.
    pub risk: Option<StreamVec<'scope, i64, RiskRow>>,
    /// Order-book rows, when the book sets are on.
    pub book: Option<StreamVec<'scope, i64, BookRow>>,
    /// Best-quote rows, when the book sets are on.
    pub quotes: Option<StreamVec<'scope, i64, QuoteRow>>,
    /// Records rejected inside the graph (for example duplicates).
    pub rejects: StreamVec<'scope, i64, Reject>,
}

/// Builds the feature graph over a stream of per-symbol trade/candle/book batches whose
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
    let (batches, books, last_ts) = batches.split_books();
    let (bars, duplicates) = batches.bars(config.bars.clone(), Some(stats));
    let mut out = FeatureStreams {
        bars: bars.clone(),
        indicators: None,
        alerts: None,
        correlation: None,
        correlation_matrix: None,
        beta: None,
        risk: None,
        book: None,
        quotes: None,
        rejects: source_rejects.concat(duplicates),
    };
    if let Some(c) = config.book.clone() {
        let (book, quotes, rejects) = books.order_books(last_ts, c, cp.clone());
        (out.book, out.quotes) = (Some(book), Some(quotes));
        out.rejects = out.rejects.concat(rejects);
    }
    if !config.needs_grid() {
        return out;
    }
    let lateness_ms = config.bars.lateness_ms;
    let grid = bars
        .clone()
        .dense_grid(bars.last_bars(), lateness_ms, cp.clone());
    if let Some(c) = config.risk {
        out.risk = Some(grid.clone().risk(c, cp.clone()));
    }
    if let Some(c) = config.indicators {
        let (rows, alerts) = grid.clone().indicators(c, cp.clone());
        (out.indicators, out.alerts) = (Some(rows), Some(alerts));
    }
    if config.needs_comoments() {
        let (correlation, beta) = grid.rolling_comoments(config.comoments.clone(), cp);
        if config.comoments.correlation {
            match config.correlation_layout {
                CorrelationLayout::Pairs => out.correlation = Some(correlation),
                CorrelationLayout::Matrix => {
                    out.correlation_matrix = Some(correlation.correlation_matrix(lateness_ms))
                }
            }
        }
        out.beta = config.beta.then_some(beta);
    }
    out
}

/// Attaches the chart sink (`[sinks.charts]`) to `bars` and `indicators` (none when
/// indicators are off), counting each chart as a `charts` row of `bars` in `stats`;
/// returns the charts written.
pub fn attach_charts<'scope>(
    bars: &StreamVec<'scope, i64, Bar>,
    indicators: Option<&StreamVec<'scope, i64, IndicatorRow>>,
    spec: ChartSpec,
    errors: ErrorSlot,
    stats: Rc<RefCell<crate::progress::WorkerStats>>,
) -> StreamVec<'scope, i64, ChartWritten> {
    let indicators = match indicators {
        Some(rows) => rows.clone(),
        None => Vec::<IndicatorRow>::new().to_stream(bars.scope()),
    };
    bars.clone()
        .chart_sink(indicators, spec, errors)
        .inspect(move |c: &ChartWritten| {
            stats
                .borrow_mut()
                .rows("charts", FeatureSet::Bars, c.resolution_ms, 1)
        })
}

/// Attaches a sink to feature streams of any set: live and backfill each implement it
/// once, and [`FeatureStreams::attach_sinks`] hands it every stream the graph made.
pub trait SetSinks<'scope> {
    /// Attaches the sink to the rows of one feature set.
    fn attach<R: FeatureRow>(&mut self, rows: StreamVec<'scope, i64, R>);
}

impl<'scope> FeatureStreams<'scope> {
    /// Hands every feature stream to `sinks` (bars first), and returns the rejects.
    pub fn attach_sinks(self, sinks: &mut impl SetSinks<'scope>) -> StreamVec<'scope, i64, Reject> {
        sinks.attach(self.bars);
        if let Some(s) = self.beta {
            sinks.attach(s);
        }
        if let Some(s) = self.indicators {
            sinks.attach(s);
        }
        if let Some(s) = self.alerts {
            sinks.attach(s);
        }
        if let Some(s) = self.correlation {
            sinks.attach(s);
        }
        if let Some(s) = self.correlation_matrix {
            sinks.attach(s);
        }
        if let Some(s) = self.risk {
            sinks.attach(s);
        }
        if let Some(s) = self.book {
            sinks.attach(s);
        }
        if let Some(s) = self.quotes {
            sinks.attach(s);
        }
        self.rejects
    }
}
