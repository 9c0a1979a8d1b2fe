//! Oracle tests of the rolling features: bars through the dense grid, indicators and
//! co-moments on 1 and 3 workers, against a from-scratch recomputation, on seeded
//! random walks with gaps, late-starting and stopping symbols and constant prices.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use timely::dataflow::operators::vec::input::Handle as InputHandle;
use timely::dataflow::operators::{Input, Inspect, Probe};

use crate::checkpoint::{CheckpointPlan, Checkpointing, Restore, Snapshot, StateKind};
use crate::comoments::{
    BetaRow, CoMomentConfig, CorrMatrix, CorrRow, CorrelationMatrix, RollingCoMoments,
};
use crate::grid::{DenseGrid, GridPoint, LastBars};
use crate::indicators::{AlertRow, IndicatorConfig, IndicatorRow, Indicators};
use crate::risk::{Risk, RiskConfig, RiskRow};
use crate::Bar;

pub(crate) const R: i64 = 60_000;
pub(crate) const W: usize = 8;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        crate::splitmix::splitmix64(&mut self.0)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A one-trade bar at resolution `R`.
pub(crate) fn bar(symbol: &str, start: i64, close: f64, volume: f64) -> Bar {
    Bar {
        symbol: symbol.into(),
        resolution_ms: R,
        window_start: start,
        window_end: start + R,
        open: close,
        high: close * 1.002,
        low: close * 0.997,
        close,
        volume,
        quote_volume: Some(close * volume),
        vwap: Some(close),
        trades: Some(1),
        buy_volume: Some(volume),
        sell_volume: Some(0.0),
        revision: 0,
    }
}

/// Random walks: A trades always, B starts late, C stops early, D has long gaps,
/// E is constant (zero variance), F trades once.
pub(crate) fn random_bars(seed: u64, n: i64) -> Vec<Bar> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let mut prices = [100.0, 50.0, 10.0, 7.0, 3.0, 1.0];
    for t in 0..n {
        let start = 1_700_000_040_000 + t * R;
        let f = rng.unit() - 0.5;
        for (i, sym) in ["A", "B", "C", "D", "E", "F"].iter().enumerate() {
            let trades = match i {
                1 => t >= n / 3,
                2 => t < 2 * n / 3,
                3 => rng.unit() < 0.4,
                4 => true,
                _ => t == n / 2,
            };
            if i != 4 {
                prices[i] *= (0.01 * f + 0.01 * (rng.unit() - 0.5)).exp();
            }
            if trades {
                let spike = if rng.unit() < 0.05 { 20.0 } else { 1.0 };
                out.push(bar(sym, start, prices[i], (1.0 + rng.unit()) * spike));
            }
        }
    }
    out
}

/// Indicators, alerts, correlation, beta and risk rows.
pub(crate) type Outputs = (
    Vec<IndicatorRow>,
    Vec<AlertRow>,
    Vec<CorrRow>,
    Vec<BetaRow>,
    Vec<RiskRow>,
);

pub(crate) fn run(bars: Vec<Bar>, config: timely::Config) -> Outputs {
    run_with(on_time(bars), config, None, 0).0
}

/// Each bar sent at its window start, as the bars operator sends a bar on time.
pub(crate) fn on_time(bars: Vec<Bar>) -> Vec<(i64, Bar)> {
    bars.into_iter().map(|b| (b.window_start, b)).collect()
}

/// What a run gives: the rows, every snapshot taken and the correlation matrices.
pub(crate) type RunResult = (Outputs, Vec<Snapshot>, Vec<CorrMatrix>);

/// Runs the rolling features over `(time, bar)` events (a restated bar is sent after
/// its window end), with restatements kept for `lateness_ms` and checkpoints when
/// `plan` is given. The events of a symbol enter on one worker, in time order (as the
/// bars operator sends them).
pub(crate) fn run_with(
    events: Vec<(i64, Bar)>,
    config: timely::Config,
    plan: Option<CheckpointPlan>,
    lateness_ms: i64,
) -> RunResult {
    let mut events = events;
    events.sort_by_key(|e| e.0);
    let bars = Arc::new(events);
    let out: Arc<Mutex<Outputs>> = Arc::default();
    let snaps: Arc<Mutex<Vec<Snapshot>>> = Arc::default();
    let matrices: Arc<Mutex<Vec<CorrMatrix>>> = Arc::default();
    let (out2, snaps2, m2) = (out.clone(), snaps.clone(), matrices.clone());
    timely::execute(config, move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let mut input = InputHandle::<i64, Bar>::new();
        let o = out2.clone();
        let m = m2.clone();
        let s = snaps2.clone();
        let checkpointing = plan.is_some();
        let cp = plan.clone().map(|plan| Checkpointing {
            plan,
            sink: Rc::new(move |snap| s.lock().unwrap().push(snap)),
        });
        let probe = worker.dataflow::<i64, _, _>(|scope| {
            let bars = scope.input_from(&mut input);
            let grid = bars
                .clone()
                .dense_grid(bars.last_bars(), lateness_ms, cp.clone());
            let (rows, alerts) = grid.clone().indicators(
                IndicatorConfig {
                    window: W,
                    zscore_alert: 1.5,
                    lateness_ms,
                },
                cp.clone(),
            );
            let config = CoMomentConfig {
                window: W,
                benchmark: "A".into(),
                correlation: true,
                lateness_ms,
            };
            let risk = grid.clone().risk(
                RiskConfig {
                    window: W,
                    lateness_ms,
                },
                cp.clone(),
            );
            let (corr, beta) = grid.rolling_comoments(config, cp);
            corr.clone()
                .correlation_matrix(lateness_ms)
                .inspect(move |x| m.lock().unwrap().push(x.clone()));
            let (o1, o2, o3, o4, o5) = (o.clone(), o.clone(), o.clone(), o.clone(), o.clone());
            risk.inspect(move |r| o5.lock().unwrap().4.push(r.clone()));
            rows.inspect(move |r| o1.lock().unwrap().0.push(r.clone()));
            alerts.inspect(move |r| o2.lock().unwrap().1.push(r.clone()));
            beta.inspect(move |r| o4.lock().unwrap().3.push(r.clone()));
            corr.inspect(move |r| o3.lock().unwrap().2.push(r.clone()))
                .probe()
                .0
        });
        let mine = bars
            .iter()
            .filter(|(_, b)| crate::route::symbol_route(&b.symbol) % peers as u64 == index as u64);
        for (time, b) in mine {
            if input.time() < time {
                input.advance_to(*time);
                worker.step();
                // With checkpoints, let the frontier move one bar at a time, so that
                // every operator on every worker passes every cut; with lateness, so
                // that a late bar comes after its window was processed.
                while (checkpointing || lateness_ms > 0) && probe.less_than(input.time()) {
                    worker.step();
                }
            }
            input.send(b.clone());
        }
        input.close();
        while !probe.done() {
            worker.step();
        }
    })
    .unwrap();
    let mut o = out.lock().unwrap().clone();
    sort(&mut o);
    let snaps = snaps.lock().unwrap().clone();
    let mut m = matrices.lock().unwrap().clone();
    m.sort_by_key(|x| (x.window_end, x.revision));
    (o, snaps, m)
}

pub(crate) fn sort(o: &mut Outputs) {
    o.0.sort_by(|a, b| (&a.symbol, a.window_end).cmp(&(&b.symbol, b.window_end)));
    o.1.sort_by(|a, b| (&a.symbol, a.window_end, &a.kind).cmp(&(&b.symbol, b.window_end, &b.kind)));
    o.2.sort_by(|a, b| {
        (&a.symbol_a, &a.symbol_b, a.window_end).cmp(&(&b.symbol_a, &b.symbol_b, b.window_end))
    });
    o.3.sort_by(|a, b| (&a.symbol, a.window_end).cmp(&(&b.symbol, b.window_end)));
    o.4.sort_by(|a, b| (&a.symbol, a.window_end).cmp(&(&b.symbol, b.window_end)));
}

/// A job restarted from a checkpoint cut, fed only the bars ending at or after the cut,
/// gives exactly the rows of an uninterrupted run from the cut on, on 1 and 3 workers.
#[test]
fn a_restart_from_any_cut_gives_the_uninterrupted_rows() {
    let interval = 20 * R;
    for workers in [1, 3] {
        let bars = random_bars(11, 160);
        let plan = CheckpointPlan {
            interval_ms: interval,
            keep: 3,
            restore: None,
        };
        let events = on_time(bars.clone());
        let (full, snaps, _) = run_with(events, timely::Config::process(workers), Some(plan), 0);
        let mut cuts: Vec<i64> = snaps.iter().map(|s| s.cut).collect();
        cuts.sort();
        cuts.dedup();
        // A frontier jumping over more than a few cuts skips the older ones; restart
        // from every cut that every operator on every worker took.
        let complete: Vec<i64> = cuts
            .into_iter()
            .filter(|c| snaps.iter().filter(|s| s.cut == *c).count() == 4 * workers)
            .collect();
        assert!(complete.len() >= 4, "complete cuts {complete:?}");
        for &cut in &complete[1..complete.len() - 1] {
            let states: HashMap<(String, usize), Vec<u8>> = snaps
                .iter()
                .filter(|s| s.cut == cut)
                .map(|s| ((s.operator.clone(), s.worker), s.state.clone()))
                .collect();
            let kinds = [
                StateKind::of::<crate::grid::DenseGridOp>(),
                StateKind::of::<crate::indicators::IndicatorLogic>(),
                StateKind::of::<super::CoMomentLogic>(),
                StateKind::of::<crate::risk::RiskLogic>(),
            ];
            assert!(states
                .iter()
                .all(|((op, _), b)| kinds.iter().any(|k| k.name == op && k.decodes(b))));
            let plan = CheckpointPlan {
                interval_ms: interval,
                keep: 3,
                restore: Some(Arc::new(Restore { cut, states })),
            };
            let replay: Vec<Bar> = bars
                .iter()
                .filter(|b| b.window_end >= cut)
                .cloned()
                .collect();
            let (again, ..) = run_with(
                on_time(replay),
                timely::Config::process(workers),
                Some(plan),
                0,
            );
            let mut want = full.clone();
            want.0.retain(|r| r.window_end >= cut);
            want.1.retain(|r| r.window_end >= cut);
            want.2.retain(|r| r.window_end >= cut);
            want.3.retain(|r| r.window_end >= cut);
            want.4.retain(|r| r.window_end >= cut);
            assert!(!want.0.is_empty() && !want.2.is_empty());
            assert_eq!(
                again.0, want.0,
                "indicators after cut {cut}, {workers} workers"
            );
            assert_eq!(again.1, want.1, "alerts after cut {cut}, {workers} workers");
            assert_eq!(
                again.2, want.2,
                "correlation after cut {cut}, {workers} workers"
            );
            assert_eq!(again.3, want.3, "beta after cut {cut}, {workers} workers");
            assert_eq!(again.4, want.4, "risk after cut {cut}, {workers} workers");
        }
    }
}

/// The dense grid from scratch: every symbol from its first bar to the last bar overall.
pub(crate) fn reference_grid(bars: &[Bar]) -> BTreeMap<String, Vec<GridPoint>> {
    let last = bars.iter().map(|b| b.window_end).max().unwrap();
    let mut by: BTreeMap<String, BTreeMap<i64, &Bar>> = BTreeMap::new();
    for b in bars {
        by.entry(b.symbol.to_string())
            .or_default()
            .insert(b.window_end, b);
    }
    by.into_iter()
        .map(|(sym, bs)| {
            let first = *bs.keys().next().unwrap();
            let mut pts: Vec<GridPoint> = Vec::new();
            let mut e = first;
            while e <= last {
                let prev = pts.last().map(|p| p.close);
                let (high, low, close, volume) = bs
                    .get(&e)
                    .map(|b| (b.high, b.low, b.close, b.volume))
                    .unwrap_or_else(|| (prev.unwrap(), prev.unwrap(), prev.unwrap(), 0.0));
                pts.push(GridPoint {
                    symbol: sym.as_str().into(),
                    resolution_ms: R,
                    window_end: e,
                    close,
                    high,
                    low,
                    volume,
                    ret: prev.map(|p| (close / p).ln()),
                    revision: 0,
                });
                e += R;
            }
            (sym, pts)
        })
        .collect()
}

fn stats(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    (
        m,
        (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n).sqrt(),
    )
}

pub(crate) fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        (None, None) => true,
        _ => false,
    }
}

fn check(out: &Outputs, bars: &[Bar]) {
    let grid = reference_grid(bars);
    // indicators: one row per grid point
    let rows: Vec<&IndicatorRow> = out.0.iter().collect();
    assert_eq!(rows.len(), grid.values().map(Vec::len).sum::<usize>());
    let mut i = 0;
    let mut corr_want: BTreeMap<(String, String, i64), Option<f64>> = BTreeMap::new();
    for (sym, pts) in &grid {
        for (k, p) in pts.iter().enumerate() {
            let r = rows[i];
            i += 1;
            assert_eq!(
                (r.symbol.as_str(), r.window_end, r.close),
                (sym.as_str(), p.window_end, p.close)
            );
            assert!(close(r.ret, p.ret));
            let closes: Vec<f64> = pts[..=k].iter().map(|p| p.close).collect();
            let sma = (closes.len() >= 20).then(|| stats(&closes[closes.len() - 20..]));
            assert!(close(r.sma_20, sma.map(|s| s.0)), "sma {r:?}");
            assert!(close(r.bb_upper, sma.map(|s| s.0 + 2.0 * s.1)));
            let rets: Vec<f64> = pts[1..=k.max(1).min(pts.len() - 1)]
                .iter()
                .filter_map(|p| p.ret)
                .collect();
            let rets = if k == 0 { vec![] } else { rets };
            let win = (rets.len() >= W).then(|| stats(&rets[rets.len() - W..]));
            assert!(close(r.realized_vol, win.map(|s| s.1)), "vol {r:?}");
            let z = win.and_then(|(m, s)| (s != 0.0).then(|| (p.ret.unwrap() - m) / s));
            if sym == "E" {
                assert_eq!(r.zscore, None, "constant prices: zero variance gives null");
            }
            assert!(close(r.zscore, z), "z {r:?} vs {z:?}");
            let rsi_changes = k;
            assert_eq!(r.rsi_14.is_some(), rsi_changes >= 14, "{r:?}");
        }
    }
    // correlation: every pair, every time both have W returns
    let names: Vec<&String> = grid.keys().collect();
    for (ia, a) in names.iter().enumerate() {
        for b in &names[ia + 1..] {
            let (pa, pb) = (&grid[*a], &grid[*b]);
            for p in pa.iter() {
                let t = p.window_end;
                let wa: Vec<f64> = pa
                    .iter()
                    .filter(|q| q.window_end <= t)
                    .filter_map(|q| q.ret)
                    .collect();
                let wb: Vec<f64> = pb
                    .iter()
                    .filter(|q| q.window_end <= t)
                    .filter_map(|q| q.ret)
                    .collect();
                if wa.len() < W || wb.len() < W || !pb.iter().any(|q| q.window_end == t) {
                    continue;
                }
                let (xa, xb) = (&wa[wa.len() - W..], &wb[wb.len() - W..]);
                let ((ma, sa), (mb, sb)) = (stats(xa), stats(xb));
                let cov = xa
                    .iter()
                    .zip(xb)
                    .map(|(x, y)| (x - ma) * (y - mb))
                    .sum::<f64>()
                    / W as f64;
                let exact_zero = |xs: &[f64]| xs.iter().all(|x| *x == xs[0]);
                let c = (!exact_zero(xa) && !exact_zero(xb)).then(|| cov / (sa * sb));
                corr_want.insert(((*a).clone(), (*b).clone(), t), c);
            }
        }
    }
    let got: BTreeMap<(String, String, i64), Option<f64>> = out
        .2
        .iter()
        .map(|r| {
            (
                (r.symbol_a.to_string(), r.symbol_b.to_string(), r.window_end),
                r.corr,
            )
        })
        .collect();
    assert_eq!(got.len(), out.2.len(), "no repeated rows");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        corr_want.keys().collect::<Vec<_>>()
    );
    for (k, v) in &corr_want {
        assert!(close(got[k], *v), "{k:?}: {:?} vs {v:?}", got[k]);
    }
    // beta rows: one per (symbol != A) whenever its pair with A has a full window
    let want_beta = corr_want
        .keys()
        .filter(|(a, b, _)| a == "A" || b == "A")
        .count();
    assert_eq!(out.3.len(), want_beta);
    for r in &out.3 {
        let key = if &*r.symbol < "A" {
            (r.symbol.to_string(), "A".to_string(), r.window_end)
        } else {
            ("A".to_string(), r.symbol.to_string(), r.window_end)
        };
        assert!(close(r.r2, corr_want[&key].map(|c| c * c)));
    }
    assert!(out.1.iter().any(|a| a.kind == "volume_spike"));
}

#[test]
fn rolling_features_match_reference_on_1_and_3_workers() {
    for seed in [5u64, 6] {
        let bars = random_bars(seed, 90);
        let one = run(bars.clone(), timely::Config::thread());
        check(&one, &bars);
        let three = run(bars.clone(), timely::Config::process(3));
        assert_eq!(one, three, "identical rows on 1 and 3 workers");
        // Every exchanged type serialized (as between processes, or with -z).
        let serialized = timely::Config {
            communication: timely::CommunicationConfig::ProcessBinary(3),
            worker: timely::WorkerConfig::default(),
        };
        assert_eq!(
            one,
            run(bars, serialized),
            "identical rows with serialization"
        );
    }
}
