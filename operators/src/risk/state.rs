//! `RiskState`: the rolling risk and trend measures of one symbol at one resolution,
//! each updated in O(log W) or better per grid bar, with exact sums where a value can
//! cancel (mean, variance, downside deviation, moving averages).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::fixed::moment;
use crate::grid::{GridPoint, RET_SCALE};
use crate::risk::rolling::{exact, exact_mean, Drawdowns, TailQuantile};
use crate::risk::{RiskConfig, RiskRow, Trend};
use crate::Fixed;

/// The quantile of value at risk.
const VAR_LEVEL: f64 = 0.05;
/// Wilder's smoothing of the average true range.
const ATR_PERIOD: usize = 14;
/// Milliseconds in a 365-day year.
const YEAR_MS: f64 = 365.0 * 24.0 * 3600.0 * 1000.0;

/// A rolling sum of the last `len` values, exact in fixed point.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct RollingMean {
    len: usize,
    values: VecDeque<f64>,
    sum: Fixed,
}

impl RollingMean {
    fn new(len: usize) -> RollingMean {
        RollingMean {
            len,
            values: VecDeque::with_capacity(len + 1),
            sum: Fixed::ZERO,
        }
    }

    fn push(&mut self, x: f64) {
        self.values.push_back(x);
        self.sum += Fixed::from_f64(x);
        if self.values.len() > self.len {
            if let Some(old) = self.values.pop_front() {
                self.sum = self.sum - Fixed::from_f64(old);
            }
        }
    }

    /// The mean once `len` values are in.
    fn mean(&self) -> Option<f64> {
        (self.values.len() == self.len).then(|| self.sum.to_f64() / self.len as f64)
    }

    /// `x` against the mean, exactly: `x · len` against the fixed-point sum (the f64
    /// mean is rounded twice and can land on the wrong side of a tie).
    fn cmp_to(&self, x: f64) -> std::cmp::Ordering {
        (Fixed::from_f64(x).0 * self.len as i128).cmp(&self.sum.0)
    }

    /// This mean against `other`'s, exactly: `sum · other.len` against
    /// `other.sum · len`.
    fn cmp_mean(&self, other: &RollingMean) -> std::cmp::Ordering {
        (self.sum.0 * other.len as i128).cmp(&(other.sum.0 * self.len as i128))
    }
}

/// Risk state of one symbol and resolution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RiskState {
    window: usize,
    /// √(bars per year).
    annualize: f64,
    /// The last W returns, as given and as fixed-point units of the co-moments.
    rets: VecDeque<(f64, i64)>,
    /// Σr over the window in exact units: the mean.
    sum: i128,
    /// Σr and Σr² in the 52-bit units of the co-moments: the variance.
    sum_units: i128,
    sum_sq_units: i128,
    /// Σ min(r, 0)² in 52-bit units: the downside deviation.
    down_sq_units: i128,
    quantile: TailQuantile,
    closes: Drawdowns,
    sma_50: RollingMean,
    sma_200: RollingMean,
    volume_20: RollingMean,
    prev_close: Option<f64>,
    true_ranges: usize,
    atr: f64,
}

impl RiskState {
    /// Fresh state at resolution `resolution_ms`.
    pub fn new(config: RiskConfig, resolution_ms: i64) -> RiskState {
        RiskState {
            window: config.window,
            annualize: (YEAR_MS / resolution_ms as f64).sqrt(),
            rets: VecDeque::with_capacity(config.window + 1),
            sum: 0,
            sum_units: 0,
            sum_sq_units: 0,
            down_sq_units: 0,
            quantile: TailQuantile::new(VAR_LEVEL, config.window),
            closes: Drawdowns::default(),
            sma_50: RollingMean::new(50),
            sma_200: RollingMean::new(200),
            volume_20: RollingMean::new(20),
            prev_close: None,
            true_ranges: 0,
            atr: 0.0,
        }
    }

    fn add_return(&mut self, r: f64, units: i64, sign: i128) {
        let u = i128::from(units);
        self.sum += sign * exact(r);
        if sign > 0 {
            self.quantile.insert(r);
        } else {
            self.quantile.remove(r);
        }
        self.sum_units += sign * u;
        self.sum_sq_units += sign * u * u;
        if units < 0 {
            self.down_sq_units += sign * u * u;
        }
    }

    /// Advances by one grid point; returns its row once the window holds W returns.
    pub fn push(&mut self, p: &GridPoint) -> Option<RiskRow> {
        let w = self.window;
        if let (Some(r), Some(units)) = (p.ret, p.ret_fixed()) {
            self.rets.push_back((r, units));
            self.add_return(r, units, 1);
            if self.rets.len() > w {
                if let Some((old, old_units)) = self.rets.pop_front() {
                    self.add_return(old, old_units, -1);
                }
            }
        }
        self.closes.push(p.close);
        if self.closes.len() > w + 1 {
            self.closes.pop();
        }
        self.sma_50.push(p.close);
        self.sma_200.push(p.close);
        self.volume_20.push(p.volume);
        let atr_14 = self.push_true_range(p);
        self.prev_close = Some(p.close);

        let ret = p.ret?;
        if self.rets.len() < w {
            return None;
        }
        let wi = w as i128;
        let scale_sq = RET_SCALE * RET_SCALE;
        let mean = exact_mean(self.sum, w);
        let var = moment(wi, self.sum_sq_units, self.sum_units, self.sum_units).max(0.0)
            / (w as f64 * (w as f64 - 1.0))
            / scale_sq;
        let std = var.sqrt();
        let dd = (self.down_sq_units as f64 / w as f64 / scale_sq).sqrt();
        let tail = self.quantile.tail(VAR_LEVEL);
        let (max, max_drawdown) = self.closes.summary().unwrap_or((p.close, 0.0));
        let sma_50 = self.sma_50.mean();
        let sma_200 = self.sma_200.mean();
        // Compared exactly: on flat stretches the close equals its moving averages.
        let trend = sma_200.and(sma_50).map(|_| {
            use std::cmp::Ordering::{Greater, Less};
            let close = self.sma_50.cmp_to(p.close);
            let long = self.sma_50.cmp_mean(&self.sma_200);
            match (close, long) {
                (Greater, Greater) => Trend::Up,
                (Less, Less) => Trend::Down,
                _ => Trend::Sideways,
            }
        });
        let volume_ma_20 = self.volume_20.mean();
        Some(RiskRow {
            symbol: p.symbol.clone(),
            resolution_ms: p.resolution_ms,
            window_end: p.window_end,
            close: p.close,
            ret,
            var_95: tail.map(|t| -t.quantile),
            cvar_95: tail.map(|t| -t.mean),
            sharpe: (std > 0.0 && w > 1).then(|| mean / std * self.annualize),
            sortino: (dd > 0.0).then(|| mean / dd * self.annualize),
            drawdown: p.close / max - 1.0,
            max_drawdown,
            atr_14,
            sma_50,
            sma_200,
            trend,
            volume_ma_20,
            volume_ratio: volume_ma_20.filter(|m| *m != 0.0).map(|m| p.volume / m),
            revision: 0,
        })
    }

    /// Wilder's average of the true range, from the second bar on, seeded with the
    /// first true range; a value from the 14th true range on.
    fn push_true_range(&mut self, p: &GridPoint) -> Option<f64> {
        let prev = self.prev_close?;
        let tr = (p.high - p.low)
            .max((p.high - prev).abs())
            .max((p.low - prev).abs());
        self.true_ranges += 1;
        self.atr = if self.true_ranges == 1 {
            tr
        } else {
            let a = 1.0 / ATR_PERIOD as f64;
            (1.0 - a) * self.atr + a * tr
        };
        (self.true_ranges >= ATR_PERIOD).then_some(self.atr)
    }
}
