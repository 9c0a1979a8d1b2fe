//! Oracle tests of restatements through the rolling operators: random bars restated
//! (and bars added to silent windows) within the lateness, sent after their window
//! end; the last revision of every row equals a from-scratch run over the final bars,
//! on 1 and 3 workers, and after a restart from any checkpoint cut.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::checkpoint::{CheckpointPlan, Restore};
use crate::comoments::tests::{on_time, random_bars, run_with, sort, Outputs, R};
use crate::comoments::CorrMatrix;
use crate::splitmix::splitmix64;
use crate::Bar;

/// The allowed lateness of these tests.
const L: i64 = 5 * R;

fn unit(rng: &mut u64) -> f64 {
    (splitmix64(rng) >> 11) as f64 / (1u64 << 53) as f64
}

/// The bars on time plus late ones: about 1 in 8 bars restated once or twice, and bars
/// added to about 1 in 6 silent windows of a started symbol, each sent 1 to L − R after
/// its window end. Returns the events and the final bars.
fn late_events(bars: &[Bar], seed: u64) -> (Vec<(i64, Bar)>, Vec<Bar>) {
    let mut rng = seed;
    let mut events = on_time(bars.to_vec());
    let mut last: BTreeMap<(String, i64), Bar> = bars
        .iter()
        .map(|b| ((b.symbol.to_string(), b.window_start), b.clone()))
        .collect();
    let end = bars.iter().map(|b| b.window_start).max().unwrap();
    let restate = |b: &Bar, rng: &mut u64| -> Bar {
        let close = b.close * (1.0 + (unit(rng) - 0.5) * 0.03);
        Bar {
            close,
            high: b.high.max(close),
            low: b.low.min(close),
            volume: b.volume + unit(rng),
            revision: b.revision + 1,
            ..b.clone()
        }
    };
    for b in bars {
        if unit(&mut rng) < 0.125 {
            let mut at = b.window_end;
            let mut cur = b.clone();
            for _ in 0..1 + (unit(&mut rng) < 0.3) as usize {
                at += 1 + (unit(&mut rng) * (L - R - (at - b.window_end)) as f64 / 2.0) as i64;
                cur = restate(&cur, &mut rng);
                events.push((at, cur.clone()));
            }
            last.insert((b.symbol.to_string(), b.window_start), cur);
        }
    }
    // Symbol B's first four bars come late, together, before its fifth (a symbol
    // whose first records were held up).
    let b_start = bars
        .iter()
        .filter(|b| &*b.symbol == "B")
        .map(|b| b.window_start)
        .min()
        .unwrap();
    for (t, b) in events.iter_mut() {
        if &*b.symbol == "B" && b.window_start < b_start + 5 * R {
            // Restatements of them still come after them.
            *t = (*t).max(b_start + 5 * R - 1 + b.revision as i64);
        }
    }
    let symbols: Vec<String> = bars.iter().map(|b| b.symbol.to_string()).collect();
    let mut starts: BTreeMap<&str, i64> = BTreeMap::new();
    for (b, s) in bars.iter().zip(&symbols) {
        let v = starts.entry(s).or_insert(b.window_start);
        *v = (*v).min(b.window_start);
    }
    for (s, first) in starts {
        let mut t = first + R;
        while t < end {
            let key = (s.to_string(), t);
            if !last.contains_key(&key) && unit(&mut rng) < 0.16 {
                let price = last.range(..key.clone()).next_back().unwrap().1.close;
                let mut b = crate::comoments::tests::bar(s, t, price * 1.01, 0.5);
                b.revision = 0;
                events.push((
                    b.window_end + 1 + (unit(&mut rng) * (L - 2 * R) as f64) as i64,
                    b.clone(),
                ));
                last.insert(key, b);
            }
            t += R;
        }
    }
    (events, last.into_values().collect())
}

/// The last revision of every row (a retracted alert left out), revisions set to 0;
/// and the number of rows sent with a revision above 0, per set.
fn final_rows(mut o: Outputs) -> (Outputs, [usize; 5]) {
    let restated = [
        o.0.iter().filter(|r| r.revision > 0).count(),
        o.1.iter().filter(|r| r.revision > 0).count(),
        o.2.iter().filter(|r| r.revision > 0).count(),
        o.3.iter().filter(|r| r.revision > 0).count(),
        o.4.iter().filter(|r| r.revision > 0).count(),
    ];
    fn last<T: Clone, K: Ord>(
        rows: &mut Vec<T>,
        key: impl Fn(&T) -> K,
        rev: impl Fn(&mut T) -> &mut u32,
    ) {
        let mut by: BTreeMap<K, T> = BTreeMap::new();
        for mut r in rows.drain(..) {
            let k = key(&r);
            let newer = by.get_mut(&k).is_none_or(|old| *rev(old) <= *rev(&mut r));
            if newer {
                by.insert(k, r);
            }
        }
        rows.extend(by.into_values().map(|mut r| {
            *rev(&mut r) = 0;
            r
        }));
    }
    last(
        &mut o.0,
        |r| (r.symbol.to_string(), r.window_end),
        |r| &mut r.revision,
    );
    last(
        &mut o.1,
        |r| (r.symbol.to_string(), r.window_end, r.kind.clone()),
        |r| &mut r.revision,
    );
    o.1.retain(|r| !r.retracted);
    last(
        &mut o.2,
        |r| (r.symbol_a.to_string(), r.symbol_b.to_string(), r.window_end),
        |r| &mut r.revision,
    );
    last(
        &mut o.3,
        |r| (r.symbol.to_string(), r.window_end),
        |r| &mut r.revision,
    );
    last(
        &mut o.4,
        |r| (r.symbol.to_string(), r.window_end),
        |r| &mut r.revision,
    );
    sort(&mut o);
    (o, restated)
}

/// The last revision of each matrix, revision set to 0.
fn final_matrices(ms: Vec<CorrMatrix>) -> Vec<CorrMatrix> {
    let mut by: BTreeMap<(i64, i64), CorrMatrix> = BTreeMap::new();
    for m in ms {
        let k = (m.resolution_ms, m.window_end);
        if by.get(&k).is_none_or(|old| old.revision <= m.revision) {
            by.insert(k, m);
        }
    }
    by.into_values()
        .map(|mut m| {
            m.revision = 0;
            m
        })
        .collect()
}

#[test]
fn restated_bars_give_the_rows_of_the_final_bars_on_1_and_3_workers() {
    for seed in [3u64, 4] {
        let bars = random_bars(seed, 120);
        let (events, fin) = late_events(&bars, seed + 100);
        let (want, _, want_m) = run_with(on_time(fin.clone()), timely::Config::thread(), None, 0);
        for workers in [1, 3] {
            let (got, _, got_m) =
                run_with(events.clone(), timely::Config::process(workers), None, L);
            let (got, restated) = final_rows(got);
            assert!(
                restated.iter().enumerate().all(|(i, n)| i == 1 || *n > 0),
                "{restated:?}"
            );
            if got.0 != want.0 {
                let d = got.0.iter().zip(&want.0).find(|(g, w)| g != w);
                panic!(
                    "indicators, {workers} workers: {} vs {} rows, first difference {d:?}",
                    got.0.len(),
                    want.0.len()
                );
            }
            assert_eq!(got.1, want.1, "alerts, {workers} workers");
            assert_eq!(got.2, want.2, "correlation, {workers} workers");
            assert_eq!(got.3, want.3, "beta, {workers} workers");
            assert_eq!(got.4, want.4, "risk, {workers} workers");
            assert_eq!(final_matrices(got_m), want_m, "matrices, {workers} workers");
        }
    }
}

/// The checkpoint of a cut is taken once the lateness has passed it, with every
/// restatement of the windows before it: a restart from it, fed the records of the
/// windows from the cut on, ends with the rows of the uninterrupted run.
#[test]
fn a_restart_from_a_cut_keeps_the_restatements_before_it() {
    let interval = 20 * R;
    let bars = random_bars(9, 140);
    let (events, _) = late_events(&bars, 77);
    for workers in [1, 2] {
        let plan = CheckpointPlan {
            interval_ms: interval,
            keep: 3,
            restore: None,
        };
        let config = timely::Config::process(workers);
        let (full, snaps, _) = run_with(events.clone(), config, Some(plan), L);
        let (full, _) = final_rows(full);
        let mut cuts: Vec<i64> = snaps.iter().map(|s| s.cut).collect();
        cuts.sort();
        cuts.dedup();
        let complete: Vec<i64> = cuts
            .into_iter()
            .filter(|c| snaps.iter().filter(|s| s.cut == *c).count() == 4 * workers)
            .collect();
        assert!(complete.len() >= 3, "complete cuts {complete:?}");
        for &cut in &complete[..complete.len() - 1] {
            let states: HashMap<(String, usize), Vec<u8>> = snaps
                .iter()
                .filter(|s| s.cut == cut)
                .map(|s| ((s.operator.clone(), s.worker), s.state.clone()))
                .collect();
            let plan = CheckpointPlan {
                interval_ms: interval,
                keep: 3,
                restore: Some(Arc::new(Restore { cut, states })),
            };
            let replay: Vec<(i64, Bar)> = events
                .iter()
                .filter(|(_, b)| b.window_end >= cut)
                .cloned()
                .collect();
            let config = timely::Config::process(workers);
            let (again, ..) = run_with(replay, config, Some(plan), L);
            let (again, _) = final_rows(again);
            let mut want = full.clone();
            want.0.retain(|r| r.window_end >= cut);
            want.1.retain(|r| r.window_end >= cut);
            want.2.retain(|r| r.window_end >= cut);
            want.3.retain(|r| r.window_end >= cut);
            want.4.retain(|r| r.window_end >= cut);
            assert_eq!(again.0, want.0, "indicators after cut {cut}");
            assert_eq!(again.1, want.1, "alerts after cut {cut}");
            assert_eq!(again.2, want.2, "correlation after cut {cut}");
            assert_eq!(again.3, want.3, "beta after cut {cut}");
            assert_eq!(again.4, want.4, "risk after cut {cut}");
        }
    }
}
