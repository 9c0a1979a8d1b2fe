//! Benchmark of a restatement: N symbols of 1s bars through the dense grid, indicators,
//! risk and the co-moments (correlation pairs and beta, W bars) with the allowed
//! lateness kept; after the windows fill, every few bars the benchmark's bar from
//! `--back` bars ago is restated (a late trade). Reports the wall time of a bar with a
//! restatement against one without, and the rows sent again per restatement.
//!
//! ```text
//! cargo run --release -p operators --example restate_bench -- --symbols 500 --window 60 --lateness-s 30 --back 10 -w 2
//! ```
//! Prints one line `symbols=.. workers=.. window=.. lateness_s=.. back=.. plain_p50_ms=..
//! restated_p50_ms=.. cost_ms=.. rows_resent=.. rows_per_bar=..`; `--lateness-s 0`
//! (no restatement) measures what keeping the history costs a bar.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use operators::comoments::{CoMomentConfig, RollingCoMoments};
use operators::grid::{DenseGrid, LastBars};
use operators::indicators::{IndicatorConfig, Indicators};
use operators::risk::{Risk, RiskConfig};
use operators::Bar;
use timely::dataflow::operators::vec::input::Handle as InputHandle;
use timely::dataflow::operators::{Input, Inspect, Probe};

/// Parsed arguments; the rest go to timely (`-w 2`).
struct Args {
    symbols: usize,
    window: usize,
    lateness_s: i64,
    back: i64,
    bars: i64,
    rest: Vec<String>,
}

fn parse() -> Args {
    let mut args = Args {
        symbols: 500,
        window: 60,
        lateness_s: 30,
        back: 10,
        bars: 200,
        rest: vec!["restate_bench".into()],
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> i64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--symbols" => args.symbols = num("--symbols") as usize,
            "--window" => args.window = num("--window") as usize,
            "--lateness-s" => args.lateness_s = num("--lateness-s"),
            "--back" => args.back = num("--back"),
            "--bars" => args.bars = num("--bars"),
            _ => args.rest.push(a),
        }
    }
    args
}

/// A small deterministic generator (splitmix64), in [-0.5, 0.5).
fn next(state: &mut u64) -> f64 {
    (operators::splitmix::splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64 - 0.5
}

fn bar(symbol: &str, start: i64, close: f64, revision: u32) -> Bar {
    Bar {
        symbol: symbol.into(),
        resolution_ms: 1_000,
        window_start: start,
        window_end: start + 1_000,
        open: close,
        high: close * 1.001,
        low: close * 0.999,
        close,
        volume: 1.0,
        quote_volume: Some(close),
        vwap: Some(close),
        trades: Some(1),
        buy_volume: Some(1.0),
        sell_volume: Some(0.0),
        revision,
    }
}

fn main() {
    let args = parse();
    let (n, w, lateness_ms) = (args.symbols, args.window, args.lateness_s * 1_000);
    let (bars, back) = (args.bars, args.back);
    // (bar, restated, wall ms) per timed bar; rows sent again and rows in all.
    let times: Arc<Mutex<Vec<(i64, bool, f64)>>> = Arc::default();
    let counts: Arc<Mutex<(u64, u64)>> = Arc::default();
    let peers = Arc::new(Mutex::new(1usize));
    let (times2, counts2, peers2) = (times.clone(), counts.clone(), peers.clone());
    let names: Vec<String> = (0..n).map(|i| format!("SYM{i:04}USDT")).collect();
    let benchmark = names[0].clone();
    timely::execute_from_args(args.rest.clone().into_iter(), move |worker| {
        let index = worker.index();
        *peers2.lock().unwrap() = worker.peers();
        let mut input = InputHandle::<i64, Bar>::new();
        let counted = counts2.clone();
        let count = move |revision: u32| {
            let mut c = counted.lock().unwrap();
            c.0 += (revision > 0) as u64;
            c.1 += 1;
        };
        let (c1, c2, c3, c4) = (count.clone(), count.clone(), count.clone(), count);
        let probe = worker.dataflow::<i64, _, _>(|scope| {
            let bars = scope.input_from(&mut input);
            let grid = bars.clone().dense_grid(bars.last_bars(), lateness_ms, None);
            let (ind, _) = grid.clone().indicators(
                IndicatorConfig {
                    window: w,
                    zscore_alert: 3.0,
                    lateness_ms,
                },
                None,
            );
            let risk = grid.clone().risk(
                RiskConfig {
                    window: w,
                    lateness_ms,
                },
                None,
            );
            let config = CoMomentConfig {
                window: w,
                benchmark: benchmark.clone(),
                correlation: true,
                lateness_ms,
            };
            let (corr, beta) = grid.rolling_comoments(config, None);
            let (probe, _) = corr.inspect(move |r| c1(r.revision)).probe();
            beta.inspect(move |r| c2(r.revision)).probe_with(&probe);
            ind.inspect(move |r| c3(r.revision)).probe_with(&probe);
            risk.inspect(move |r| c4(r.revision)).probe_with(&probe);
            probe
        });
        let mut rng = 7u64;
        let mut closes = vec![100.0f64; names.len()];
        let mut history: Vec<f64> = Vec::new();
        for t in 0..bars {
            let started = Instant::now();
            let start = t * 1_000;
            let restate = lateness_ms > 0 && t > (w as i64 + back) && t % 5 == 0;
            if index == 0 {
                let factor = next(&mut rng) * 0.002;
                for (i, name) in names.iter().enumerate() {
                    closes[i] *= 1.0 + factor + next(&mut rng) * 0.002;
                    input.send(bar(name, start, closes[i], 0));
                }
                history.push(closes[0]);
                if restate {
                    // A late trade on the benchmark, `back` bars ago.
                    let at = (t - back) as usize;
                    history[at] *= 1.0005;
                    input.send(bar(&names[0], at as i64 * 1_000, history[at], 1));
                }
            }
            input.advance_to(start + 1_000);
            while probe.less_than(input.time()) {
                worker.step();
            }
            if index == 0 && t > w as i64 + back {
                let ms = started.elapsed().as_secs_f64() * 1e3;
                times2.lock().unwrap().push((t, restate, ms));
            }
        }
    })
    .unwrap();
    let times = times.lock().unwrap().clone();
    let p50 = |restated: bool| {
        let mut v: Vec<f64> = times
            .iter()
            .filter(|x| x.1 == restated)
            .map(|x| x.2)
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let restatements = times.iter().filter(|x| x.1).count().max(1) as f64;
    let (resent, all) = *counts.lock().unwrap();
    let (plain, restated) = (p50(false), p50(true));
    println!(
        "symbols={n} workers={} window={w} lateness_s={} back={back} plain_p50_ms={plain:.2} restated_p50_ms={restated:.2} cost_ms={:.2} rows_resent={:.0} rows_per_bar={:.0}",
        *peers.lock().unwrap(),
        args.lateness_s,
        (restated - plain).max(0.0),
        resent as f64 / restatements,
        all as f64 / bars as f64,
    );
}
