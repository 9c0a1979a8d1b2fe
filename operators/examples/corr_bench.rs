//! Benchmark of a rolling operator alone, the co-moments (default) or the risk operator
//! (`--operator risk`): N symbols of random-walk grid points, one grid bar at a time,
//! the wall time from a bar's input to its rows (correlation matrix and beta, or risk
//! rows) being complete on every worker, and the state size.
//!
//! ```text
//! cargo run --release -p operators --example corr_bench -- --symbols 500 --bars 300 --window 60 -w 2
//! cargo run --release -p operators --example corr_bench -- --operator risk --symbols 500 --bars 550 --window 250 -w 2
//! ```
//! Prints one line `symbols=.. workers=.. window=.. bars=.. pairs=.. p50_ms=.. p99_ms=..
//! mean_ms=.. rows_per_bar=.. state_mb=.. peak_rss_mb=..`; times are measured after
//! the first W bars (full windows, every pair emitting).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use operators::comoments::{CoMomentConfig, RollingCoMoments};
use operators::grid::GridPoint;
use operators::risk::{Risk, RiskConfig};
use timely::dataflow::operators::{Input, Inspect, Probe};
use timely::dataflow::InputHandle;

struct Args {
    risk: bool,
    symbols: usize,
    bars: usize,
    window: usize,
    rest: Vec<String>,
}

fn parse() -> Args {
    let mut args = Args {
        risk: false,
        symbols: 100,
        bars: 300,
        window: 60,
        rest: vec!["corr_bench".into()],
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--symbols" => args.symbols = num("--symbols"),
            "--bars" => args.bars = num("--bars"),
            "--window" => args.window = num("--window"),
            "--operator" => args.risk = it.next().as_deref() == Some("risk"),
            _ => args.rest.push(a),
        }
    }
    args
}

/// A small deterministic generator (splitmix64).
fn next(state: &mut u64) -> f64 {
    (operators::splitmix::splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64 - 0.5
}

fn vm_hwm_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args = parse();
    let (n, bars, w) = (args.symbols, args.bars, args.window);
    let times = Arc::new(Mutex::new(Vec::new()));
    let rows = Arc::new(Mutex::new(0u64));
    let peers = Arc::new(Mutex::new(1usize));
    let (times2, rows2, peers2) = (times.clone(), rows.clone(), peers.clone());
    let names: Vec<String> = (0..n).map(|i| format!("SYM{i:04}USDT")).collect();
    let benchmark = names[0].clone();
    timely::execute_from_args(args.rest.clone().into_iter(), move |worker| {
        let index = worker.index();
        *peers2.lock().unwrap() = worker.peers();
        let config = CoMomentConfig {
            window: w,
            benchmark: benchmark.clone(),
            correlation: true,
            lateness_ms: 0,
        };
        let mut input = InputHandle::new();
        let counted = rows2.clone();
        let risk = args.risk;
        let probe = worker.dataflow::<i64, _, _>(|scope| {
            let grid = scope.input_from(&mut input);
            if risk {
                let rows = grid.risk(
                    RiskConfig {
                        window: w,
                        lateness_ms: 0,
                    },
                    None,
                );
                let rows = rows.inspect_core(move |e| {
                    if let Ok((_, d)) = e {
                        *counted.lock().unwrap() += d.len() as u64;
                    }
                });
                return rows.probe().0;
            }
            let (corr, beta) = grid.rolling_comoments(config, None);
            let c2 = counted.clone();
            let corr = corr.inspect_core(move |e| {
                if let Ok((_, d)) = e {
                    *c2.lock().unwrap() += d.len() as u64;
                }
            });
            let beta = beta.inspect_core(move |e| {
                if let Ok((_, d)) = e {
                    *counted.lock().unwrap() += d.len() as u64;
                }
            });
            let (probe, _) = corr.probe();
            beta.probe_with(&probe);
            probe
        });
        let mut rng = 42u64;
        let mut closes = vec![100.0f64; n];
        for bar in 0..bars as i64 {
            let started = Instant::now();
            if index == 0 {
                let factor = next(&mut rng) * 0.002;
                for (i, name) in names.iter().enumerate() {
                    let prev = closes[i];
                    closes[i] = prev * (1.0 + factor + next(&mut rng) * 0.002);
                    input.send(GridPoint {
                        symbol: name.as_str().into(),
                        resolution_ms: 60_000,
                        window_end: (bar + 1) * 60_000,
                        close: closes[i],
                        high: closes[i] * 1.001,
                        low: closes[i] * 0.999,
                        volume: 1.0,
                        ret: (bar > 0).then(|| (closes[i] / prev).ln()),
                        revision: 0,
                    });
                }
            }
            input.advance_to((bar + 1) * 60_000);
            while probe.less_than(input.time()) {
                worker.step();
            }
            if index == 0 && bar as usize > w {
                times2
                    .lock()
                    .unwrap()
                    .push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
    })
    .expect("timely");
    let mut t = times.lock().unwrap().clone();
    t.sort_by(f64::total_cmp);
    let pct = |q: f64| t[((t.len() as f64 - 1.0) * q).round() as usize];
    let mean = t.iter().sum::<f64>() / t.len() as f64;
    let pairs = if args.risk { 0 } else { n * (n - 1) / 2 };
    let state = if args.risk {
        // Per symbol: W returns (16 bytes each) in the ring and the quantile's two
        // B-tree multisets (about 40 bytes a value with node overhead), W+1 closes in
        // the drawdown stacks (24 bytes), 270 closes and volumes of the moving
        // averages (8 bytes), and the header.
        (n * (w * (16 + 40) + (w + 1) * 24 + 270 * 8 + 512)) as f64 / 1e6
    } else {
        // Per symbol: a ring of W+2 i64 plus the series header; per pair 48 bytes.
        (n * ((w + 2) * 8 + 96) + pairs * 48) as f64 / 1e6
    };
    let timed = bars.saturating_sub(w + 2).max(1) as f64;
    println!(
        "operator={} symbols={n} workers={} window={w} bars={bars} pairs={pairs} p50_ms={:.3} p99_ms={:.3} mean_ms={:.3} rows_per_bar={:.0} state_mb={state:.2} peak_rss_mb={:.1}",
        if args.risk { "risk" } else { "comoments" },
        *peers.lock().unwrap(),
        pct(0.5),
        pct(0.99),
        mean,
        *rows.lock().unwrap() as f64 / timed.max(1.0),
        vm_hwm_mb()
    );
}
