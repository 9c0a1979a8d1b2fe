//! Oracle tests of the risk operator: the rolling structures against sorting and
//! scanning, and the operator on 1 and 3 workers (bars through the dense grid, with
//! gaps, late starters and a constant symbol) against a from-scratch recomputation.

use crate::comoments::tests::{close, random_bars, reference_grid, run, W};
use crate::grid::GridPoint;
use crate::risk::rolling::{Drawdowns, TailQuantile};
use crate::risk::{RiskRow, Trend};
use crate::splitmix::splitmix64 as next;

/// The 5% quantile by sorting, and the mean of the values at or below it.
fn sorted_tail(xs: &[f64]) -> (f64, f64) {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let h = (s.len() - 1) as f64 * 0.05;
    let k = h.floor() as usize;
    let q = s[k] + (h - h.floor()) * (s[k + 1] - s[k]);
    let tail: Vec<f64> = s.iter().copied().filter(|x| *x <= q).collect();
    (q, tail.iter().sum::<f64>() / tail.len() as f64)
}

/// The maximum and the maximum drawdown by scanning.
fn scanned_drawdowns(xs: &[f64]) -> (f64, f64) {
    let (mut peak, mut worst) = (f64::MIN, 0.0f64);
    for &x in xs {
        peak = peak.max(x);
        worst = worst.min(x / peak - 1.0);
    }
    (peak, worst)
}

#[test]
fn the_tail_quantile_equals_sorting_with_ties_and_negative_zero() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for len in [2usize, 3, 5, 21, 60, 250] {
        let mut tq = TailQuantile::new(0.05, len);
        let mut window = std::collections::VecDeque::new();
        for i in 0..(len * 6) {
            // Coarse values make ties; some are exact zeros of either sign.
            let x = match next(&mut state) % 10 {
                0 => -0.0,
                1 => 0.0,
                _ => ((next(&mut state) % 41) as f64 - 20.0) * 1e-4,
            };
            window.push_back(x);
            tq.insert(x);
            if window.len() > len {
                tq.remove(window.pop_front().unwrap());
            }
            assert_eq!(tq.len(), window.len());
            if window.len() == len {
                let xs: Vec<f64> = window.iter().copied().collect();
                let (q, mean) = sorted_tail(&xs);
                let t = tq.tail(0.05).unwrap();
                assert_eq!(t.quantile, q, "len {len} step {i}");
                assert!(close(Some(t.mean), Some(mean)), "len {len} step {i}");
            }
        }
    }
}

#[test]
fn drawdowns_equal_a_scan_of_the_window() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for len in [1usize, 2, 7, 61] {
        let mut dd = Drawdowns::default();
        let mut window = std::collections::VecDeque::new();
        let mut price = 100.0;
        for _ in 0..(len * 8) {
            price *= 1.0 + ((next(&mut state) % 201) as f64 - 100.0) * 1e-4;
            window.push_back(price);
            dd.push(price);
            if window.len() > len {
                window.pop_front();
                dd.pop();
            }
            let xs: Vec<f64> = window.iter().copied().collect();
            assert_eq!(dd.summary(), Some(scanned_drawdowns(&xs)));
        }
    }
    let mut rising = Drawdowns::default();
    for x in [1.0, 2.0, 3.0] {
        rising.push(x);
    }
    assert_eq!(rising.summary(), Some((3.0, 0.0)));
}

/// The risk row of grid point `i` of one symbol, from scratch.
fn reference_row(pts: &[GridPoint], i: usize) -> Option<RiskRow> {
    let p = &pts[i];
    if i < W {
        return None;
    }
    let rets: Vec<f64> = pts[i + 1 - W..=i].iter().map(|p| p.ret.unwrap()).collect();
    let n = W as f64;
    let mean = rets.iter().sum::<f64>() / n;
    let var = rets.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / (n - 1.0);
    let down = (rets.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n).sqrt();
    let annualize = (365.0 * 24.0 * 3600.0 * 1000.0 / p.resolution_ms as f64).sqrt();
    let (q, tail) = sorted_tail(&rets);
    let closes: Vec<f64> = pts[i - W..=i].iter().map(|p| p.close).collect();
    let (peak, max_drawdown) = scanned_drawdowns(&closes);
    let mean_of = |k: usize, f: fn(&GridPoint) -> f64| {
        (i + 1 >= k).then(|| pts[i + 1 - k..=i].iter().map(f).sum::<f64>() / k as f64)
    };
    let (sma_50, sma_200) = (mean_of(50, |p| p.close), mean_of(200, |p| p.close));
    let volume_ma_20 = mean_of(20, |p| p.volume);
    let mut atr = None;
    for j in 1..=i {
        let prev = pts[j - 1].close;
        let (h, l) = (pts[j].high, pts[j].low);
        let tr = (h - l).max((h - prev).abs()).max((l - prev).abs());
        atr = Some(atr.map_or(tr, |a: f64| a + (tr - a) / 14.0));
    }
    Some(RiskRow {
        symbol: p.symbol.clone(),
        resolution_ms: p.resolution_ms,
        window_end: p.window_end,
        close: p.close,
        ret: p.ret.unwrap(),
        var_95: Some(-q),
        cvar_95: Some(-tail),
        sharpe: (var > 1e-30).then(|| mean / var.sqrt() * annualize),
        sortino: (down > 0.0).then(|| mean / down * annualize),
        drawdown: p.close / peak - 1.0,
        max_drawdown,
        atr_14: atr.filter(|_| i >= 14),
        sma_50,
        sma_200,
        trend: sma_200.and(sma_50).map(|_| {
            // Exactly: every close as a 2^-64 fixed-point integer, sums from scratch.
            let sum = |k: usize| -> i128 {
                pts[i + 1 - k..=i]
                    .iter()
                    .map(|p| crate::Fixed::from_f64(p.close).0)
                    .sum()
            };
            let close = crate::Fixed::from_f64(p.close).0 * 50;
            let (s50, s200) = (sum(50), sum(200));
            if close > s50 && s50 * 200 > s200 * 50 {
                Trend::Up
            } else if close < s50 && s50 * 200 < s200 * 50 {
                Trend::Down
            } else {
                Trend::Sideways
            }
        }),
        volume_ma_20,
        volume_ratio: volume_ma_20.filter(|m| *m != 0.0).map(|m| p.volume / m),
        revision: 0,
    })
}

fn assert_rows_match(got: &RiskRow, want: &RiskRow) {
    let ctx = format!("{} at {}", got.symbol, got.window_end);
    assert_eq!(
        (&got.symbol, got.window_end, got.close, got.ret, got.trend),
        (
            &want.symbol,
            want.window_end,
            want.close,
            want.ret,
            want.trend
        ),
        "{ctx}"
    );
    let pairs = [
        ("var_95", got.var_95, want.var_95),
        ("cvar_95", got.cvar_95, want.cvar_95),
        ("sharpe", got.sharpe, want.sharpe),
        ("sortino", got.sortino, want.sortino),
        ("drawdown", Some(got.drawdown), Some(want.drawdown)),
        (
            "max_drawdown",
            Some(got.max_drawdown),
            Some(want.max_drawdown),
        ),
        ("atr_14", got.atr_14, want.atr_14),
        ("sma_50", got.sma_50, want.sma_50),
        ("sma_200", got.sma_200, want.sma_200),
        ("volume_ma_20", got.volume_ma_20, want.volume_ma_20),
        ("volume_ratio", got.volume_ratio, want.volume_ratio),
    ];
    for (name, g, w) in pairs {
        assert!(close(g, w), "{name} of {ctx}: {g:?} vs {w:?}");
    }
}

#[test]
fn risk_rows_equal_a_recomputation_on_1_and_3_workers() {
    let bars = random_bars(23, 320);
    let grid = reference_grid(&bars);
    let want: Vec<RiskRow> = grid
        .values()
        .flat_map(|pts| (0..pts.len()).filter_map(|i| reference_row(pts, i)))
        .collect();
    assert!(
        want.iter().any(|r| r.trend.is_some()),
        "long enough for sma_200"
    );
    // E never moves: no variance and no loss.
    let flat: Vec<&RiskRow> = want.iter().filter(|r| r.symbol.as_str() == "E").collect();
    assert!(
        !flat.is_empty()
            && flat
                .iter()
                .all(|r| r.sharpe.is_none() && r.sortino.is_none())
    );
    for workers in [1, 3] {
        let got = run(bars.clone(), timely::Config::process(workers)).4;
        assert_eq!(got.len(), want.len(), "{workers} workers");
        for (g, w) in got.iter().zip(&want) {
            assert_rows_match(g, w);
        }
    }
}
