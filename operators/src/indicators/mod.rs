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
use crate::restate::{Restatable, SeriesStep};
use crate::route::symbol_route;
use crate::window::{SeriesStates, WindowLogic, WindowOperator};
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
    /// 0 when first sent, then +1 for each restatement of this row by late data.
    #[serde(default)]
    pub revision: u32,
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
    /// 0 when first sent, then +1 for each restatement of this row by late data.
    #[serde(default)]
    pub revision: u32,
    /// True when a restatement found that the alert no longer holds (sent on the
    /// topic with `"retracted": true`; absent from the lake).
    #[serde(default)]
    pub retracted: bool,
}

/// Settings of the indicators operator.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndicatorConfig {
    /// W, in grid bars.
    pub window: usize,
    /// |zscore| above this raises an alert.
    pub zscore_alert: f64,
    /// How far behind the watermark a restatement can reach, ms (`time.allowed_lateness`):
    /// the history kept per series.
    #[serde(default)]
    pub lateness_ms: i64,
}

/// The indicators operator's state at a checkpoint cut, by (symbol, resolution).
pub type IndicatorStates = SeriesStates<IndicatorState>;

/// The indicators operator: one [`IndicatorState`] per (symbol, resolution).
pub struct IndicatorLogic {
    config: IndicatorConfig,
    states: Restatable<IndicatorState>,
}

impl SeriesStep for IndicatorState {
    /// The alerts the step raised.
    type Memo = Vec<AlertRow>;
    type Out = (Vec<IndicatorRow>, Vec<AlertRow>);

    fn step(
        &mut self,
        p: &GridPoint,
        revision: u32,
        memo: &mut Vec<AlertRow>,
        out: &mut Self::Out,
    ) {
        let (mut row, mut alerts) = self.push(p);
        row.revision = revision;
        out.0.push(row);
        for a in alerts.iter_mut() {
            a.revision = revision;
        }
        // An alert of the previous revision that no longer holds is retracted.
        for old in memo
            .iter()
            .filter(|o| alerts.iter().all(|a| a.kind != o.kind))
        {
            out.1.push(AlertRow {
                revision,
                retracted: true,
                ..old.clone()
            });
        }
        if !alerts.is_empty() || !memo.is_empty() {
            out.1.extend(alerts.iter().cloned());
            *memo = alerts;
        }
    }
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
        let config = self.config;
        for p in points {
            self.states.push(p, || IndicatorState::new(config), out);
        }
    }

    fn flush(&mut self, out: &mut Self::Out) {
        self.states.flush(out);
    }

    fn cut_delay(&self) -> i64 {
        self.config.lateness_ms
    }

    fn snapshot_at(&self, cut: i64) -> IndicatorStates {
        self.states.snapshot_at(cut)
    }

    fn snapshot(&self) -> IndicatorStates {
        self.states.snapshot_at(i64::MAX)
    }

    fn restore(&mut self, state: IndicatorStates) {
        self.states.restore(state);
    }
}

/// Extension trait: indicators and alerts of a grid stream.
pub trait Indicators<'scope> {
    /// Returns the indicator rows and the alerts; with `checkpoint`, the states are
    /// snapshotted at every cut and, after a restart, restored (points before the
    /// restored cut are ignored). A restated point sends its row and every later one
    /// of its series again with revision + 1, and retracts alerts that no longer hold.
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
            states: Restatable::new(config.lateness_ms),
        };
        let pact = Exchange::new(|p: &GridPoint| symbol_route(&p.symbol));
        self.window_operator(pact, logic, checkpoint)
    }
}
