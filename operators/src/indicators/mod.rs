//! The `indicators` operator: per symbol and resolution, indicators on the dense close
//! grid and alerts, seeded as pandas' `ewm(adjust=False)` and null while short of
//! history (README "Feature definitions").

mod state;

pub use state::IndicatorState;

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::{Stream, StreamVec};

use crate::checkpoint::Checkpointing;
use crate::grid::GridPoint;
use crate::route::symbol_route;
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
pub type IndicatorStates = Vec<((Symbol, i64), IndicatorState)>;

/// Extension trait: indicators and alerts of a grid stream.
pub trait Indicators<'scope> {
    /// Returns the indicator rows and the alerts.
    fn indicators(
        self,
        config: IndicatorConfig,
    ) -> (
        StreamVec<'scope, i64, IndicatorRow>,
        StreamVec<'scope, i64, AlertRow>,
    );

    /// `indicators` taking part in checkpoints: the states are snapshotted at every cut
    /// and, after a restart, restored (points before the restored cut are ignored).
    fn indicators_with(
        self,
        config: IndicatorConfig,
        checkpoint: Option<Checkpointing>,
    ) -> (
        StreamVec<'scope, i64, IndicatorRow>,
        StreamVec<'scope, i64, AlertRow>,
    );
}

/// The states in a deterministic order.
fn snapshot(states: &HashMap<(Symbol, i64), IndicatorState>) -> IndicatorStates {
    let mut v: IndicatorStates = states.iter().map(|(k, s)| (k.clone(), s.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

impl<'scope> Indicators<'scope> for Stream<'scope, i64, Vec<GridPoint>> {
    fn indicators(
        self,
        config: IndicatorConfig,
    ) -> (
        StreamVec<'scope, i64, IndicatorRow>,
        StreamVec<'scope, i64, AlertRow>,
    ) {
        self.indicators_with(config, None)
    }

    fn indicators_with(
        self,
        config: IndicatorConfig,
        checkpoint: Option<Checkpointing>,
    ) -> (
        StreamVec<'scope, i64, IndicatorRow>,
        StreamVec<'scope, i64, AlertRow>,
    ) {
        let (index, peers) = (self.scope().index(), self.scope().peers());
        let mut builder = OperatorBuilder::new("Indicators".to_owned(), self.scope());
        let mut input =
            builder.new_input(self, Exchange::new(|p: &GridPoint| symbol_route(&p.symbol)));
        let (rows_out, rows) = builder.new_output();
        let (alerts_out, alerts) = builder.new_output();
        let mut rows_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<IndicatorRow>>>::from(rows_out);
        let mut alerts_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<AlertRow>>>::from(alerts_out);
        builder.build(move |caps| {
            let mut caps = Some(caps);
            let mut pending: BTreeMap<i64, Vec<GridPoint>> = BTreeMap::new();
            let mut states: HashMap<(Symbol, i64), IndicatorState> = HashMap::default();
            let mut cp = checkpoint.map(|c| c.checkpointer("indicators", index, peers));
            let skip_before = cp
                .as_ref()
                .and_then(|c| c.restored_cut())
                .unwrap_or(i64::MIN);
            if let Some((_, restored)) = cp.as_ref().and_then(|c| c.restored::<IndicatorStates>()) {
                states.extend(restored);
            }
            // Reused across invocations (growing fresh vectors each time costs more).
            let (mut rows, mut alerts) = (Vec::new(), Vec::new());
            move |frontiers| {
                input.for_each(|_, data| {
                    for p in data.drain(..).filter(|p| p.window_end >= skip_before) {
                        pending.entry(p.window_end).or_default().push(p);
                    }
                });
                let f = frontiers[0].frontier().first().copied().unwrap_or(i64::MAX);
                while let Some(entry) = pending.first_entry() {
                    if *entry.key() > f {
                        break;
                    }
                    if let Some(cp) = cp.as_mut() {
                        // The state before the first point at or after a cut.
                        cp.take_due(*entry.key(), || snapshot(&states));
                    }
                    let mut points = entry.remove();
                    points.sort_by(|a, b| {
                        (&a.symbol, a.resolution_ms).cmp(&(&b.symbol, b.resolution_ms))
                    });
                    for p in points {
                        let state = states
                            .entry((p.symbol.clone(), p.resolution_ms))
                            .or_insert_with(|| IndicatorState::new(config));
                        let (row, alert) = state.push(&p);
                        rows.push(row);
                        alerts.extend(alert);
                    }
                }
                if let Some(cp) = cp.as_mut() {
                    cp.take_due(f, || snapshot(&states));
                }
                let Some(cv) = caps.as_mut() else {
                    rows.clear();
                    alerts.clear();
                    return;
                };
                if !rows.is_empty() {
                    rows_out
                        .activate()
                        .session(&cv[0])
                        .give_iterator(rows.drain(..));
                }
                if !alerts.is_empty() {
                    alerts_out
                        .activate()
                        .session(&cv[1])
                        .give_iterator(alerts.drain(..));
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
        (rows, alerts)
    }
}
