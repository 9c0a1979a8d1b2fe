//! Oracle tests of the bars operator: dataflow output on 1 and 3 workers against a
//! from-scratch recomputation, on seeded random trades with disorder and duplicates.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use timely::dataflow::operators::vec::input::Handle as InputHandle;
use timely::dataflow::operators::{Input, Inspect, Probe};

use super::*;
use crate::{Fixed, Resolution, Trade, NO_TRADE_ID};

/// A small deterministic generator (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        crate::splitmix::splitmix64(&mut self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Seeded trades of several symbols over a few minutes, with local disorder,
/// repeated trade ids (exact duplicates and conflicting ones) and id-less trades.
fn random_trades(seed: u64, n: usize) -> Vec<(String, Trade)> {
    let mut rng = Rng(seed);
    let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"];
    let mut out: Vec<(String, Trade)> = Vec::new();
    let mut ts = 1_700_000_000_000i64;
    for i in 0..n {
        ts += rng.below(40) as i64;
        let sym = symbols[rng.below(symbols.len() as u64) as usize];
        let jitter = rng.below(1500) as i64; // rows up to 1.5 s out of order
        let trade = Trade {
            ts_ms: ts - jitter,
            trade_id: if rng.below(20) == 0 {
                NO_TRADE_ID
            } else {
                i as i64
            },
            seq: i as u64,
            exchange: 0,
            price: 100.0 + (rng.unit() * 1000.0).round() / 100.0,
            qty: (rng.unit() * 5.0 * 1e6).round() / 1e6 + 1e-6,
            is_buyer_maker: rng.below(2) == 0,
        };
        out.push((sym.to_string(), trade));
        if rng.below(50) == 0 {
            // an exact duplicate later in the input
            let mut dup = trade;
            dup.seq = (n + i) as u64;
            out.push((sym.to_string(), dup));
        }
    }
    // a slightly shuffled input order
    for i in (1..out.len()).rev() {
        if rng.below(4) == 0 {
            out.swap(i, i - 1);
        }
    }
    out
}

/// The from-scratch reference: sort, dedup by id keeping the first, group per window.
fn reference(trades: &[(String, Trade)], resolutions: &[i64]) -> Vec<Bar> {
    let mut by_symbol: BTreeMap<&str, Vec<Trade>> = BTreeMap::new();
    for (s, t) in trades {
        by_symbol.entry(s).or_default().push(*t);
    }
    let mut bars = Vec::new();
    for (sym, mut ts) in by_symbol {
        ts.sort_by_key(Trade::order_key);
        let mut seen = std::collections::HashSet::new();
        ts.retain(|t| t.trade_id == NO_TRADE_ID || seen.insert(t.trade_id));
        for &r in resolutions {
            let mut windows: BTreeMap<i64, Vec<Trade>> = BTreeMap::new();
            for t in &ts {
                windows
                    .entry(t.ts_ms.div_euclid(r) * r)
                    .or_default()
                    .push(*t);
            }
            for (start, w) in windows {
                let volume: f64 = w.iter().map(|t| t.qty).sum();
                let quote: f64 = w.iter().map(|t| t.price * t.qty).sum();
                let buy: f64 = w.iter().filter(|t| !t.is_buyer_maker).map(|t| t.qty).sum();
                bars.push(Bar {
                    symbol: sym.into(),
                    resolution_ms: r,
                    window_start: start,
                    window_end: start + r,
                    open: w[0].price,
                    high: w.iter().map(|t| t.price).fold(f64::MIN, f64::max),
                    low: w.iter().map(|t| t.price).fold(f64::MAX, f64::min),
                    close: w[w.len() - 1].price,
                    volume,
                    quote_volume: Some(quote),
                    vwap: Some(quote / volume),
                    trades: Some(w.len() as i64),
                    buy_volume: Some(buy),
                    sell_volume: Some(volume - buy),
                    revision: 0,
                });
            }
        }
    }
    sort_bars(&mut bars);
    bars
}

fn sort_bars(bars: &mut [Bar]) {
    bars.sort_by(|a, b| {
        (&a.symbol, a.resolution_ms, a.window_start).cmp(&(
            &b.symbol,
            b.resolution_ms,
            b.window_start,
        ))
    });
}

/// Runs the operator on `workers` threads; each worker feeds a strided share of the
/// input in chunks, at the least event time of its remaining records.
fn run_dataflow(
    trades: Vec<(String, Trade)>,
    resolutions: &[&str],
    workers: usize,
) -> (Vec<Bar>, usize) {
    run_live(trades, resolutions, workers, None)
}

/// Like `run_dataflow`; with `live = Some((lag, lateness))` each worker's input time is
/// its largest event time so far minus `lag` (trades behind it are late) and the
/// operator keeps bars `lateness` ms for restatement.
fn run_live(
    trades: Vec<(String, Trade)>,
    resolutions: &[&str],
    workers: usize,
    live: Option<(i64, i64)>,
) -> (Vec<Bar>, usize) {
    let res: Vec<Resolution> = resolutions
        .iter()
        .map(|r| Resolution::parse(r).unwrap())
        .collect();
    let mut config = BarsConfig::new(&res).unwrap();
    config.lateness_ms = live.map_or(0, |l| l.1);
    let trades = Arc::new(trades);
    let bars = Arc::new(Mutex::new(Vec::new()));
    let dups = Arc::new(Mutex::new(0usize));
    let (bars2, dups2) = (bars.clone(), dups.clone());
    timely::execute(timely::Config::process(workers), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let mut input = InputHandle::<i64, SymbolBatch>::new();
        let (bars3, dups3) = (bars2.clone(), dups2.clone());
        let config = config.clone();
        let probe = worker.dataflow::<i64, _, _>(|scope| {
            let (b, r) = scope.input_from(&mut input).bars(config.clone(), None);
            r.inspect(move |_| *dups3.lock().unwrap() += 1);
            b.inspect(move |bar| bars3.lock().unwrap().push(bar.clone()))
                .probe()
                .0
        });
        let mine: Vec<&(String, Trade)> = trades.iter().skip(index).step_by(peers).collect();
        let chunks: Vec<&[&(String, Trade)]> =
            mine.chunks(if live.is_some() { 16 } else { 97 }).collect();
        let mut suffix_min = vec![i64::MAX; chunks.len() + 1];
        for k in (0..chunks.len()).rev() {
            let m = chunks[k].iter().map(|(_, t)| t.ts_ms).min().unwrap();
            suffix_min[k] = suffix_min[k + 1].min(m);
        }
        let mut max_ts = i64::MIN;
        for (k, chunk) in chunks.iter().enumerate() {
            match live {
                None => input.advance_to(suffix_min[k]),
                Some((lag, _)) => {
                    if max_ts > i64::MIN && max_ts - lag > *input.time() {
                        input.advance_to(max_ts - lag);
                        // Let the frontier pass the operator before the late trades.
                        while probe.less_than(input.time()) {
                            worker.step();
                        }
                    }
                    max_ts = max_ts.max(chunk.iter().map(|(_, t)| t.ts_ms).max().unwrap());
                }
            }
            let mut groups: BTreeMap<&str, Vec<Trade>> = BTreeMap::new();
            for (s, t) in chunk.iter() {
                groups.entry(s).or_default().push(*t);
            }
            for (s, ts) in groups {
                input.send(SymbolBatch {
                    symbol: s.into(),
                    trades: ts,
                    candles: vec![],
                    book: vec![],
                });
            }
            worker.step();
        }
        input.close();
        while !probe.done() {
            worker.step();
        }
    })
    .unwrap();
    let mut out = bars.lock().unwrap().clone();
    sort_bars(&mut out);
    let dups = *dups.lock().unwrap();
    (out, dups)
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

fn assert_matches(got: &[Bar], want: &[Bar]) {
    assert_eq!(got.len(), want.len(), "number of bars");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(
            (&g.symbol, g.resolution_ms, g.window_start, g.window_end),
            (&w.symbol, w.resolution_ms, w.window_start, w.window_end)
        );
        assert_eq!(
            (g.open, g.high, g.low, g.close, g.trades),
            (w.open, w.high, w.low, w.close, w.trades),
            "{g:?}"
        );
        for (x, y) in [
            (g.volume, w.volume),
            (g.quote_volume.unwrap(), w.quote_volume.unwrap()),
            (g.vwap.unwrap(), w.vwap.unwrap()),
            (g.buy_volume.unwrap(), w.buy_volume.unwrap()),
            (g.sell_volume.unwrap(), w.sell_volume.unwrap()),
        ] {
            assert!(close(x, y), "{x} vs {y} in {g:?}");
        }
    }
}

#[test]
fn oracle_one_and_three_workers_identical() {
    for seed in [1u64, 7, 42] {
        let trades = random_trades(seed, 6000);
        let want = reference(&trades, &[1000, 60_000, 300_000]);
        let expected_dups = trades.len() - {
            let mut ids = std::collections::HashSet::new();
            trades
                .iter()
                .filter(|(s, t)| t.trade_id == NO_TRADE_ID || ids.insert((s.clone(), t.trade_id)))
                .count()
        };
        let (one, d1) = run_dataflow(trades.clone(), &["1s", "1m", "5m"], 1);
        let (three, d3) = run_dataflow(trades, &["5m", "1s", "1m"], 3);
        assert_matches(&one, &want);
        assert_eq!(one, three, "1 and 3 workers must give identical rows");
        assert_eq!((d1, d3), (expected_dups, expected_dups));
    }
}

#[test]
fn coarser_bars_equal_bars_from_raw_trades() {
    let trades = random_trades(3, 3000);
    let (fine, _) = run_dataflow(trades.clone(), &["1s", "1m"], 2);
    let (coarse_only, _) = run_dataflow(trades, &["1m"], 2);
    let from_fine: Vec<Bar> = fine
        .into_iter()
        .filter(|b| b.resolution_ms == 60_000)
        .collect();
    assert_eq!(
        from_fine, coarse_only,
        "exact sums make 1m-from-1s equal 1m-from-trades"
    );
}

#[test]
fn candles_roll_up_to_coarser_resolutions() {
    let acc = |ts: i64, o: f64, c: f64| {
        BarAcc::from_candle(&crate::Candle {
            ts_ms: ts,
            resolution_ms: 60_000,
            seq: ts as u64,
            open: o,
            high: o.max(c) + 1.0,
            low: o.min(c) - 1.0,
            close: c,
            volume: 2.0,
            quote_volume: None,
            trades: Some(3),
            buy_volume: Some(1.0),
        })
    };
    let mut a = acc(60_000, 10.0, 11.0);
    a.merge(&acc(0, 9.0, 10.0));
    let bar = a.finish(&"X".into(), 300_000, 0);
    assert_eq!(
        (bar.open, bar.close, bar.high, bar.low),
        (9.0, 11.0, 12.0, 8.0)
    );
    assert_eq!(
        (bar.volume, bar.trades, bar.quote_volume, bar.vwap),
        (4.0, Some(6), None, None)
    );
    assert_eq!(bar.sell_volume, Some(2.0));
    assert_eq!(Fixed::from_f64(4.0).to_f64(), 4.0);
}

/// The last revision of every bar, checking that revisions count up from 0.
fn last_revisions(bars: Vec<Bar>) -> Vec<Bar> {
    let mut by_key: BTreeMap<(String, i64, i64), Vec<Bar>> = BTreeMap::new();
    for b in bars {
        by_key
            .entry((b.symbol.to_string(), b.resolution_ms, b.window_start))
            .or_default()
            .push(b);
    }
    let mut out = Vec::new();
    for (key, mut revs) in by_key {
        revs.sort_by_key(|b| b.revision);
        let numbers: Vec<u32> = revs.iter().map(|b| b.revision).collect();
        assert_eq!(
            numbers,
            (0..revs.len() as u32).collect::<Vec<_>>(),
            "{key:?}"
        );
        out.push(revs.pop().unwrap());
    }
    sort_bars(&mut out);
    out
}

#[test]
fn late_trades_within_lateness_restate_bars_exactly() {
    for seed in [3u64, 11] {
        // Unique trade ids, so the dedup's "first arrival" equals "first by order".
        let mut ids = std::collections::HashSet::new();
        let trades: Vec<_> = random_trades(seed, 5000)
            .into_iter()
            .filter(|(s, t)| t.trade_id == NO_TRADE_ID || ids.insert((s.clone(), t.trade_id)))
            .collect();
        let want = reference(&trades, &[1000, 60_000, 300_000]);
        for workers in [1, 3] {
            let (got, rejected) = run_live(
                trades.clone(),
                &["1s", "1m", "5m"],
                workers,
                Some((300, 5_000)),
            );
            assert!(
                got.iter().any(|b| b.revision > 0),
                "no restatement exercised on {workers} workers, seed {seed}"
            );
            assert_eq!(rejected, 0);
            assert_matches(&last_revisions(got), &want);
        }
    }
}

#[test]
fn trades_later_than_the_lateness_are_rejected() {
    let t = |ts: i64, id: i64| {
        (
            "BTC".to_string(),
            Trade {
                ts_ms: ts,
                trade_id: id,
                seq: id as u64,
                exchange: 0,
                price: 100.0 + id as f64,
                qty: 1.0,
                is_buyer_maker: false,
            },
        )
    };
    // Time moves to 100 s with the first trades; the late ones follow.
    let mut trades: Vec<_> = (0..97).map(|i| t(100_000 + i, i)).collect();
    trades.push(t(99_500, 200)); // within 1 s of lateness: restates the bar at 99 s
    trades.push(t(90_000, 201)); // 10 s late: rejected
    let (bars, rejected) = run_live(trades, &["1s"], 1, Some((0, 1_000)));
    assert_eq!(rejected, 1);
    let late: Vec<_> = bars.iter().filter(|b| b.window_start < 100_000).collect();
    assert_eq!(late.len(), 1);
    assert_eq!(
        (late[0].window_start, late[0].revision, late[0].close),
        (99_000, 0, 300.0)
    );
}
