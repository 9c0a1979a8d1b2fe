//! The `indicators` operator: per symbol and resolution, indicators on the dense close
//! grid and alerts, seeded as pandas' `ewm(adjust=False)` and null while short of
//! history (README "Feature definitions").

mod state;

pub use state::IndicatorState;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::StreamVec;

use crate::checkpoint::{Checkpointed, Checkpointing};
use crate::grid::GridPoint;
use crate::route::symbol_route;
use crate::window::{BySeries, SeriesStates, WindowLogic, WindowOperator};
use crate::Symbol;

/// One row of the `indicators` set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndicatorRow {
    /// The instrument.
    pub symbol: Symbol,
    /// Window length in ms.
    pub resolution_ms: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// Grid close.
    pub close: f64,
    /// Log return.
    pub ret: Option<f64>,
    /// Simple moving average of 20 closes.
    pub sma_20: Option<f64>,
    /// EMA(12) of close, seeded with the first close.
    pub ema_12: Option<f64>,
    /// EMA(26) of close, seeded with the first close.
    pub ema_26: Option<f64>,
    /// ema_12 − ema_26.
    pub macd: Option<f64>,
    /// EMA(9) of macd, seeded with the first macd.
    pub macd_signal: Option<f64>,
    /// Wilder RSI(14).
    pub rsi_14: Option<f64>,
    /// Bollinger middle band (= sma_20).
    pub bb_mid: Option<f64>,
    /// mid + 2·std_20.
    pub bb_upper: Option<f64>,
    /// mid − 2·std_20.
    pub bb_lower: Option<f64>,
    /// Population std of ret over W.
    pub realized_vol: Option<f64>,
    /// (ret − mean_W)/std_W.
    pub zscore: Option<f64>,
}

/// One row of the `alerts` set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    /// The instrument.
    pub symbol: Symbol,
    /// Window length in ms.
    pub resolution_ms: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// `zscore` or `volume_spike`.
    pub kind: String,
    /// The zscore, or the bar's volume.
    pub value: f64,
    /// The configured zscore threshold, or 5 × the mean volume of the previous W bars.
    pub threshold: f64,
}

/// Settings of the indicators operator.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndicatorConfig {
    /// W, in grid bars.
    pub window: usize,
    /// |zscore| above this raises an alert.
    pub zscore_alert: f64,
}

/// The indicators operator's state at a checkpoint cut, by (symbol, resolution).
pub type IndicatorStates = SeriesStates<IndicatorState>;

/// The indicators operator: one [`IndicatorState`] per (symbol, resolution).
pub struct IndicatorLogic {
    config: IndicatorConfig,
    states: BySeries<IndicatorState>,
}

impl Checkpointed for IndicatorLogic {
    const NAME: &'static str = "indicators";
    type State = IndicatorStates;
}

impl WindowLogic for IndicatorLogic {
    type In = GridPoint;
    type Out = (Vec<IndicatorRow>, Vec<AlertRow>);

    fn window_end(p: &GridPoint) -> i64 {
        p.window_end
    }

    fn on_window(&mut self, _end: i64, mut points: Vec<GridPoint>, out: &mut Self::Out) {
        points.sort_by(|a, b| (&a.symbol, a.resolution_ms).cmp(&(&b.symbol, b.resolution_ms)));
        for p in points {
            let config = self.config;
            let state = self
                .states
                .get(&p.symbol, p.resolution_ms, || IndicatorState::new(config));
            let (row, alerts) = state.push(&p);
            out.0.push(row);
            out.1.extend(alerts);
        }
    }

    fn snapshot(&self) -> IndicatorStates {
        self.states.snapshot()
    }

    fn restore(&mut self, state: IndicatorStates) {
        self.states.restore(state);
    }
}

/// Extension trait: indicators and alerts of a grid stream.
pub trait Indicators<'scope> {
    /// Returns the indicator rows and the alerts; with `checkpoint`, the states are
    /// snapshotted at every cut and, after a restart, restored (points before the
    /// restored cut are ignored).
    fn indicators(
        self,
        config: IndicatorConfig,
        checkpoint: Option<Checkpointing>,
    ) -> (
        StreamVec<'scope, i64, IndicatorRow>,
        StreamVec<'scope, i64, AlertRow>,
    );
}

impl<'scope> Indicators<'scope> for StreamVec<'scope, i64, GridPoint> {
    fn indicators(
        self,
        config: IndicatorConfig,
        checkpoint: Option<Checkpointing>,
    ) -> (
        StreamVec<'scope, i64, IndicatorRow>,
        StreamVec<'scope, i64, AlertRow>,
    ) {
        let logic = IndicatorLogic {
            config,
            states: BySeries::default(),
        };
        let pact = Exchange::new(|p: &GridPoint| symbol_route(&p.symbol));
        self.window_operator(pact, logic, checkpoint)
    }
}
