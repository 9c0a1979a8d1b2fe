//! The `risk` operator: per symbol and resolution, on the dense close grid, value at
//! risk and expected shortfall, Sharpe and Sortino ratios, drawdowns, the average true
//! range, long moving averages with a trend label, and the volume moving average.
//!
//! Definitions (README "Feature definitions"), with W the rolling window in grid bars
//! and P the bars in a 365-day year: a row per grid bar once W returns exist;
//! `var_95 = −q` with q the 5% quantile of the W returns (linear interpolation),
//! `cvar_95 = −mean(r ≤ q)`; `sharpe = mean/std·√P` (std with ddof 1),
//! `sortino = mean/√(Σmin(r,0)²/W)·√P`; drawdowns over the W+1 closes of the window;
//! `atr_14` Wilder's average of the true range; `sma_50`, `sma_200`, `trend`;
//! `volume_ma_20` and `volume_ratio`.

mod rolling;
mod state;
#[cfg(test)]
mod tests;

pub use rolling::{Drawdowns, Tail, TailQuantile};
pub use state::RiskState;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::StreamVec;

use crate::checkpoint::{Checkpointed, Checkpointing};
use crate::grid::GridPoint;
use crate::restate::{Restatable, SeriesStep};
use crate::route::symbol_route;
use crate::window::{SeriesStates, WindowLogic, WindowOperator};
use crate::Symbol;

/// The direction of the long moving averages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trend {
    /// close > sma_50 > sma_200.
    Up,
    /// close < sma_50 < sma_200.
    Down,
    /// Neither.
    Sideways,
}

impl Trend {
    /// The label written to the sinks.
    pub fn as_str(self) -> &'static str {
        match self {
            Trend::Up => "up",
            Trend::Down => "down",
            Trend::Sideways => "sideways",
        }
    }
}

/// One row of the `risk` set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RiskRow {
    /// The instrument.
    pub symbol: Symbol,
    /// Window length in ms.
    pub resolution_ms: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// Grid close.
    pub close: f64,
    /// Log return.
    pub ret: f64,
    /// Minus the 5% quantile of the window's returns.
    pub var_95: Option<f64>,
    /// Minus the mean of the window's returns at or below that quantile.
    pub cvar_95: Option<f64>,
    /// mean/std·√P (std with ddof 1); null when std is 0.
    pub sharpe: Option<f64>,
    /// mean/downside deviation·√P; null when there is no negative return.
    pub sortino: Option<f64>,
    /// close / max of the W+1 closes − 1.
    pub drawdown: f64,
    /// The most negative drawdown within the W+1 closes (0 when prices only rise).
    pub max_drawdown: f64,
    /// Wilder's average true range of 14 bars.
    pub atr_14: Option<f64>,
    /// Mean of the last 50 closes.
    pub sma_50: Option<f64>,
    /// Mean of the last 200 closes.
    pub sma_200: Option<f64>,
    /// Direction of close, sma_50 and sma_200; null until sma_200 exists.
    pub trend: Option<Trend>,
    /// Mean volume of the last 20 grid bars.
    pub volume_ma_20: Option<f64>,
    /// volume / volume_ma_20; null when that is 0.
    pub volume_ratio: Option<f64>,
    /// 0 when first sent, then +1 for each restatement of this row by late data.
    #[serde(default)]
    pub revision: u32,
}

/// Settings of the risk operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskConfig {
    /// W, in grid bars.
    pub window: usize,
    /// How far behind the watermark a restatement can reach, ms (`time.allowed_lateness`):
    /// the history kept per series.
    #[serde(default)]
    pub lateness_ms: i64,
}

/// The risk operator's state at a checkpoint cut, by (symbol, resolution).
pub type RiskStates = SeriesStates<RiskState>;

/// The risk operator: one [`RiskState`] per (symbol, resolution).
pub struct RiskLogic {
    config: RiskConfig,
    states: Restatable<RiskState>,
}

impl SeriesStep for RiskState {
    type Memo = ();
    type Out = Vec<RiskRow>;

    fn step(&mut self, p: &GridPoint, revision: u32, _: &mut (), out: &mut Vec<RiskRow>) {
        if let Some(mut row) = self.push(p) {
            row.revision = revision;
            out.push(row);
        }
    }
}

impl Checkpointed for RiskLogic {
    const NAME: &'static str = "risk";
    type State = RiskStates;
}

impl WindowLogic for RiskLogic {
    type In = GridPoint;
    type Out = Vec<RiskRow>;

    fn window_end(p: &GridPoint) -> i64 {
        p.window_end
    }

    fn on_window(&mut self, _end: i64, points: Vec<GridPoint>, out: &mut Vec<RiskRow>) {
        let config = self.config;
        for p in points {
            let r = p.resolution_ms;
            self.states.push(p, || RiskState::new(config, r), out);
        }
    }

    fn flush(&mut self, out: &mut Vec<RiskRow>) {
        self.states.flush(out);
    }

    fn cut_delay(&self) -> i64 {
        self.config.lateness_ms
    }

    fn snapshot_at(&self, cut: i64) -> RiskStates {
        self.states.snapshot_at(cut)
    }

    fn snapshot(&self) -> RiskStates {
        self.states.snapshot_at(i64::MAX)
    }

    fn restore(&mut self, state: RiskStates) {
        self.states.restore(state);
    }
}

/// Extension trait: risk rows of a grid stream.
///
/// ```
/// use operators::grid::GridPoint;
/// use operators::risk::{Risk, RiskConfig};
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Event;
///
/// let closes = [100.0, 101.0, 99.0, 102.0];
/// let points: Vec<GridPoint> = closes.iter().enumerate().map(|(i, &c)| GridPoint {
///     symbol: "A".into(), resolution_ms: 60_000, window_end: (i as i64 + 1) * 60_000,
///     close: c, high: c, low: c, volume: 1.0,
///     ret: (i > 0).then(|| (c / closes[i - 1]).ln()), revision: 0,
/// }).collect();
/// let rows = timely::execute_directly(move |worker| {
///     worker.dataflow::<i64, _, _>(|scope| {
///         points.to_stream(scope).risk(RiskConfig { window: 2, lateness_ms: 0 }, None).capture()
///     })
/// });
/// let rows: Vec<_> = rows.try_iter().flat_map(|e| match e {
///     Event::Messages(_, rows) => rows,
///     Event::Progress(_) => Vec::new(),
/// }).collect();
/// assert_eq!(rows.len(), 2); // from the third point: two returns in the window
/// assert_eq!(rows[1].drawdown, 102.0 / 102.0 - 1.0);
/// assert_eq!(rows[1].max_drawdown, 99.0 / 101.0 - 1.0);
/// ```
pub trait Risk<'scope> {
    /// Returns the risk rows; with `checkpoint`, the states are snapshotted at every
    /// cut and, after a restart, restored (points before the restored cut are ignored).
    fn risk(
        self,
        config: RiskConfig,
        checkpoint: Option<Checkpointing>,
    ) -> StreamVec<'scope, i64, RiskRow>;
}

impl<'scope> Risk<'scope> for StreamVec<'scope, i64, GridPoint> {
    fn risk(
        self,
        config: RiskConfig,
        checkpoint: Option<Checkpointing>,
    ) -> StreamVec<'scope, i64, RiskRow> {
        let logic = RiskLogic {
            config,
            states: Restatable::new(config.lateness_ms),
        };
        let pact = Exchange::new(|p: &GridPoint| symbol_route(&p.symbol));
        self.window_operator(pact, logic, checkpoint)
    }
}
