//! `IndicatorState`: the recursions and windows of one symbol at one resolution.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::grid::GridPoint;
use crate::indicators::{AlertRow, IndicatorConfig, IndicatorRow};

/// An EMA seeded with its first input (pandas `ewm(adjust=False)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Ema {
    alpha: f64,
    value: Option<f64>,
}

impl Ema {
    fn span(n: f64) -> Ema {
        Ema {
            alpha: 2.0 / (n + 1.0),
            value: None,
        }
    }

    fn push(&mut self, x: f64) -> f64 {
        let v = match self.value {
            None => x,
            Some(prev) => self.alpha * x + (1.0 - self.alpha) * prev,
        };
        self.value = Some(v);
        v
    }
}

/// Mean and population std of a window (two passes, like a from-scratch recomputation).
/// A window of identical values has a std of exactly 0 (as pandas reports it).
fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let mut it = values.clone();
    if let Some(first) = it.next() {
        if it.all(|x| x == first) {
            return (first, 0.0);
        }
    }
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Indicator state of one symbol and resolution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndicatorState {
    config: IndicatorConfig,
    closes: VecDeque<f64>,
    rets: VecDeque<f64>,
    volumes: VecDeque<f64>,
    ema_12: Ema,
    ema_26: Ema,
    signal: Ema,
    prev_close: Option<f64>,
    changes: usize,
    avg_gain: f64,
    avg_loss: f64,
}

impl IndicatorState {
    /// Fresh state.
    pub fn new(config: IndicatorConfig) -> IndicatorState {
        IndicatorState {
            config,
            closes: VecDeque::with_capacity(21),
            rets: VecDeque::with_capacity(config.window + 1),
            volumes: VecDeque::with_capacity(config.window + 1),
            ema_12: Ema::span(12.0),
            ema_26: Ema::span(26.0),
            signal: Ema::span(9.0),
            prev_close: None,
            changes: 0,
            avg_gain: 0.0,
            avg_loss: 0.0,
        }
    }

    /// Advances by one grid point; returns its row and any alerts.
    pub fn push(&mut self, p: &GridPoint) -> (IndicatorRow, Vec<AlertRow>) {
        let w = self.config.window;
        let mut alerts = Vec::new();
        // volume spike against the previous W grid bars (before adding this one)
        if self.volumes.len() == w {
            let mean = self.volumes.iter().sum::<f64>() / w as f64;
            let threshold = 5.0 * mean;
            if p.volume > threshold {
                alerts.push(alert(p, "volume_spike", p.volume, threshold));
            }
        }
        push_window(&mut self.volumes, p.volume, w);
        push_window(&mut self.closes, p.close, 20);

        let (sma_20, bb) = if self.closes.len() == 20 {
            let (mean, std) = mean_std(self.closes.iter().copied());
            (Some(mean), Some((mean + 2.0 * std, mean - 2.0 * std)))
        } else {
            (None, None)
        };
        let e12 = self.ema_12.push(p.close);
        let e26 = self.ema_26.push(p.close);
        let macd = e12 - e26;
        let macd_signal = self.signal.push(macd);

        let rsi_14 = match self.prev_close {
            None => None,
            Some(prev) => {
                let change = p.close - prev;
                let (gain, loss) = (change.max(0.0), (-change).max(0.0));
                self.changes += 1;
                if self.changes == 1 {
                    self.avg_gain = gain;
                    self.avg_loss = loss;
                } else {
                    let a = 1.0 / 14.0;
                    self.avg_gain = a * gain + (1.0 - a) * self.avg_gain;
                    self.avg_loss = a * loss + (1.0 - a) * self.avg_loss;
                }
                (self.changes >= 14).then(|| {
                    if self.avg_loss == 0.0 {
                        100.0
                    } else {
                        100.0 - 100.0 / (1.0 + self.avg_gain / self.avg_loss)
                    }
                })
            }
        };
        self.prev_close = Some(p.close);

        let (mut realized_vol, mut zscore) = (None, None);
        if let Some(r) = p.ret {
            push_window(&mut self.rets, r, w);
            if self.rets.len() == w {
                let (mean, std) = mean_std(self.rets.iter().copied());
                realized_vol = Some(std);
                if std != 0.0 {
                    let z = (r - mean) / std;
                    zscore = Some(z);
                    if z.abs() > self.config.zscore_alert {
                        alerts.push(alert(p, "zscore", z, self.config.zscore_alert));
                    }
                }
            }
        }
        let row = IndicatorRow {
            symbol: p.symbol.clone(),
            resolution_ms: p.resolution_ms,
            window_end: p.window_end,
            close: p.close,
            ret: p.ret,
            sma_20,
            ema_12: Some(e12),
            ema_26: Some(e26),
            macd: Some(macd),
            macd_signal: Some(macd_signal),
            rsi_14,
            bb_mid: sma_20,
            bb_upper: bb.map(|b| b.0),
            bb_lower: bb.map(|b| b.1),
            realized_vol,
            zscore,
            revision: 0,
        };
        (row, alerts)
    }
}

fn push_window(window: &mut VecDeque<f64>, x: f64, n: usize) {
    if window.len() == n {
        window.pop_front();
    }
    window.push_back(x);
}

fn alert(p: &GridPoint, kind: &str, value: f64, threshold: f64) -> AlertRow {
    AlertRow {
        symbol: p.symbol.clone(),
        resolution_ms: p.resolution_ms,
        window_end: p.window_end,
        kind: kind.to_string(),
        value,
        threshold,
        revision: 0,
        retracted: false,
    }
}
