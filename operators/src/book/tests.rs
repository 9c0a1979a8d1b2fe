//! Tests of the order-book operator: the sequence rule, dead letters, dense windows,
//! time-weighted spread and order-flow imbalance, and the same rows on 1 and 3 workers.

use std::sync::mpsc::Receiver;

use timely::dataflow::operators::capture::Event;
use timely::dataflow::operators::{Capture, Input, Probe};

use super::*;
use crate::{RejectReason, SymbolBatch};

fn d(s: &str) -> Dec {
    Dec::parse(s).unwrap()
}

fn lv(levels: &[(&str, &str)]) -> Vec<Level> {
    levels.iter().map(|(p, q)| (d(p), d(q))).collect()
}

fn snap(ts: i64, id: u64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> BookRecord {
    BookRecord {
        ts_ms: ts,
        seq: 0,
        kind: BookKind::Snapshot {
            last_update_id: Some(id),
        },
        bids: lv(bids),
        asks: lv(asks),
    }
}

fn diff(
    ts: i64,
    first: u64,
    last: u64,
    bids: &[(&str, &str)],
    asks: &[(&str, &str)],
) -> BookRecord {
    BookRecord {
        ts_ms: ts,
        seq: 0,
        kind: BookKind::Diff {
            first,
            last,
            prev: None,
        },
        bids: lv(bids),
        asks: lv(asks),
    }
}

fn ticker(ts: i64, b: (&str, &str), a: (&str, &str)) -> BookRecord {
    BookRecord {
        ts_ms: ts,
        seq: 0,
        kind: BookKind::Ticker,
        bids: lv(&[b]),
        asks: lv(&[a]),
    }
}

/// Every record a captured stream received.
fn drain<D>(rx: Receiver<Event<i64, Vec<D>>>) -> Vec<D> {
    rx.try_iter()
        .flat_map(|e| match e {
            Event::Messages(_, v) => v,
            Event::Progress(_) => Vec::new(),
        })
        .collect()
}

type Outputs = (Vec<BookRow>, Vec<QuoteRow>, Vec<Reject>);

/// Runs the operator on `workers` threads over `records` per symbol, sent by worker 0
/// in order at their event time (each record its own batch), with the input's last
/// event time `last`.
fn run(workers: usize, records: Vec<(&'static str, BookRecord)>, res: Vec<i64>) -> Outputs {
    let seqs = (0..records.len() as u64).collect();
    run_seqs(workers, records, res, seqs)
}

/// `run` with the given input positions (`seq`) of the records.
fn run_seqs(
    workers: usize,
    records: Vec<(&'static str, BookRecord)>,
    res: Vec<i64>,
    seqs: Vec<u64>,
) -> Outputs {
    let config = BookConfig { resolutions: res };
    let (b, q, r) = timely::execute(timely::Config::process(workers), move |worker| {
        let records = records.clone();
        let seqs = seqs.clone();
        let config = config.clone();
        let (mut input, probe, caps) = worker.dataflow::<i64, _, _>(|scope| {
            let (input, stream) = scope.new_input::<Vec<SymbolBatch>>();
            let (rest, books, last) = stream.split_books();
            let (b, q, r) = books.order_books(last, config, None);
            let probe = rest.probe().0;
            (input, probe, (b.capture(), q.capture(), r.capture()))
        });
        if worker.index() == 0 {
            for ((symbol, mut rec), seq) in records.into_iter().zip(seqs) {
                rec.seq = seq; // input order (a replayed position is skipped)
                let t = rec.ts_ms.max(*input.time());
                input.advance_to(t);
                input.send(SymbolBatch {
                    symbol: symbol.into(),
                    book: vec![rec],
                    ..SymbolBatch::default()
                });
            }
        }
        input.close();
        while !probe.done() {
            worker.step();
        }
        for _ in 0..100 {
            worker.step();
        }
        caps
    })
    .unwrap()
    .join()
    .into_iter()
    .map(|r| r.unwrap())
    .fold((vec![], vec![], vec![]), |mut acc, (b, q, r)| {
        acc.0.extend(drain(b));
        acc.1.extend(drain(q));
        acc.2.extend(drain(r));
        acc
    });
    let mut b = b;
    b.sort_by(|x, y| {
        (x.symbol.as_str(), x.resolution_ms, x.window_end).cmp(&(
            y.symbol.as_str(),
            y.resolution_ms,
            y.window_end,
        ))
    });
    let mut q = q;
    q.sort_by(|x, y| {
        (x.symbol.as_str(), x.resolution_ms, x.window_end).cmp(&(
            y.symbol.as_str(),
            y.resolution_ms,
            y.window_end,
        ))
    });
    let mut r = r;
    r.sort_by(|x, y| x.raw.cmp(&y.raw));
    (b, q, r)
}

#[test]
fn spot_sequence_rule_holds_diffs_until_the_snapshot_and_fills_windows_densely() {
    let recs = vec![
        // Before the snapshot: held; the first is older than it (dropped), the second
        // straddles it (applied first).
        ("X", diff(1_100, 90, 100, &[("10", "1")], &[])),
        ("X", diff(1_200, 101, 105, &[("10", "2")], &[])),
        (
            "X",
            snap(
                1_500,
                102,
                &[("10", "1"), ("9", "4")],
                &[("11", "3"), ("12", "1")],
            ),
        ),
        ("X", diff(2_300, 106, 106, &[], &[("11", "1")])),
        ("X", diff(2_600, 107, 107, &[("10.5", "2")], &[])),
        ("X", diff(5_200, 108, 108, &[], &[("13", "1")])),
    ];
    let (books, _, rejects) = run(1, recs, vec![1_000]);
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(run(1, vec![], vec![1_000]).0, vec![]);
    let ends: Vec<i64> = books.iter().map(|r| r.window_end).collect();
    assert_eq!(ends, vec![2_000, 3_000, 4_000, 5_000, 6_000]);
    // Window 1: the book became valid inside it: values, but no tw/ofi.
    let w1 = &books[0];
    assert_eq!(
        (w1.bid_px, w1.bid_qty, w1.ask_px, w1.ask_qty),
        (10.0, 2.0, 11.0, 3.0)
    );
    assert_eq!((w1.tw_spread_bps, w1.ofi, w1.updates), (None, None, 1));
    // Window 2: two diffs; the top changes at 2.3 s (ask qty) and 2.6 s (new bid).
    let w2 = &books[1];
    assert_eq!(
        (w2.bid_px, w2.bid_qty, w2.ask_px, w2.ask_qty),
        (10.5, 2.0, 11.0, 1.0)
    );
    assert_eq!(w2.updates, 2);
    // e1: bid same (10, q 2): +2 −2; ask same 11: −1 +3 → 2. e2: new bid 10.5 > 10: +2.
    assert_eq!(w2.ofi, Some(4.0));
    let s1 = 1e4 * 1.0 / 10.5;
    let s2 = 1e4 * 0.5 / 10.75;
    let tw = (s1 * 600.0 + s2 * 400.0) / 1000.0;
    assert!((w2.tw_spread_bps.unwrap() - tw).abs() < 1e-12);
    // Windows 3 and 4: no updates, constant book.
    assert_eq!((books[2].updates, books[2].ofi), (0, Some(0.0)));
    assert!((books[3].tw_spread_bps.unwrap() - s2).abs() < 1e-12);
    // The last window holds the input's last event (5.2 s).
    assert_eq!(books[4].updates, 1);
    // Imbalance and depth: bids 10.5×2, 10×2, 9×4; asks 11×1, 12×1.
    assert!((w2.imbalance_1 - (2.0 - 1.0) / 3.0).abs() < 1e-15);
    assert!((w2.imbalance_5 - (8.0 - 2.0) / 10.0).abs() < 1e-15);
    // mid 10.75: bids >= 10.73925 → 10.5? no; asks <= 10.76075 → none.
    assert_eq!((w2.depth_bid_10bps, w2.depth_ask_10bps), (0.0, 0.0));
    let micro = (10.5 * 1.0 + 11.0 * 2.0) / 3.0;
    assert!((w2.microprice - micro).abs() < 1e-12);
}

#[test]
fn a_gap_invalidates_the_book_until_the_next_snapshot() {
    let recs = vec![
        ("X", snap(1_000, 10, &[("10", "1")], &[("11", "1")])),
        ("X", diff(1_100, 11, 11, &[("10", "2")], &[])),
        ("X", diff(2_500, 13, 13, &[("10", "3")], &[])), // gap: 12 missing
        ("X", diff(2_600, 14, 14, &[("10", "4")], &[])), // held
        ("X", snap(4_500, 13, &[("10", "5")], &[("11", "1")])),
        ("X", diff(5_500, 15, 15, &[("10", "6")], &[])),
    ];
    let (books, _, rejects) = run(1, recs, vec![1_000]);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].reason, RejectReason::SequenceGap);
    assert!(rejects[0].raw.contains(r#""U":13"#), "{}", rejects[0].raw);
    let ends: Vec<i64> = books.iter().map(|r| r.window_end).collect();
    // Invalid from 2.5 s to 4.5 s: no rows ending at 3 s, 4 s; 5 s is valid but has an
    // invalid moment; the held diff 14 was applied after the snapshot 13.
    assert_eq!(ends, vec![2_000, 5_000, 6_000]);
    assert_eq!(books[0].tw_spread_bps, None); // became valid in [1 s, 2 s)
    assert_eq!(books[1].bid_qty, 4.0);
    assert_eq!((books[1].tw_spread_bps, books[1].ofi), (None, None));
    assert!(books[2].tw_spread_bps.is_some());
    assert_eq!(books[2].bid_qty, 6.0);
}

#[test]
fn a_crossed_update_is_a_dead_letter_and_futures_use_pu() {
    let fut = |ts, first, last, prev, bids: &[(&str, &str)]| BookRecord {
        ts_ms: ts,
        seq: 0,
        kind: BookKind::Diff {
            first,
            last,
            prev: Some(prev),
        },
        bids: lv(bids),
        asks: vec![],
    };
    let recs = vec![
        ("F", snap(1_000, 100, &[("10", "1")], &[("11", "1")])),
        ("F", fut(1_100, 95, 100, 94, &[("10", "2")])), // U <= 100 <= u: first
        ("F", fut(1_200, 101, 103, 100, &[("10", "3")])), // pu = previous u
        ("F", fut(2_200, 104, 105, 103, &[("11", "1")])), // crosses
    ];
    let (books, _, rejects) = run(1, recs, vec![1_000]);
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0].reason, RejectReason::CrossedBook);
    assert_eq!(books.len(), 1);
    assert_eq!((books[0].bid_qty, books[0].updates), (3.0, 2));
}

#[test]
fn quotes_follow_tickers_and_rows_do_not_depend_on_the_worker_count() {
    let mut recs = Vec::new();
    for (i, sym) in ["A", "B", "C", "D"].into_iter().enumerate() {
        let k = i as i64;
        recs.push((sym, ticker(1_000 + k, ("10", "1"), ("10.5", "2"))));
        recs.push((sym, snap(1_010 + k, 1, &[("10", "1")], &[("11", "1")])));
        recs.push((sym, diff(1_700 + k, 2, 2, &[("10.2", "1")], &[])));
        recs.push((sym, ticker(2_500 + k, ("10.2", "1"), ("10.4", "3"))));
        recs.push((sym, diff(3_100 + k, 3, 3, &[], &[("10.9", "1")])));
    }
    recs.sort_by_key(|(_, r)| r.ts_ms);
    let one = run(1, recs.clone(), vec![1_000, 2_000]);
    let three = run(3, recs, vec![1_000, 2_000]);
    assert_eq!(one, three);
    let (books, quotes, _) = one;
    assert_eq!(books.len(), 4 * (3 + 2));
    let qa: Vec<&QuoteRow> = quotes.iter().filter(|q| q.symbol.as_str() == "A").collect();
    assert_eq!(qa.len(), 3 + 2);
    let q2 = qa
        .iter()
        .find(|q| q.resolution_ms == 1_000 && q.window_end == 3_000)
        .unwrap();
    assert_eq!((q2.bid_px, q2.ask_qty, q2.updates), (10.2, 3.0, 1));
    let s1 = 1e4 * 0.5 / 10.25;
    let s2 = 1e4 * 0.2 / 10.3;
    assert!((q2.tw_spread_bps.unwrap() - (s1 * 500.0 + s2 * 500.0) / 1000.0).abs() < 1e-12);
}

#[test]
fn a_record_replayed_at_an_applied_position_is_skipped() {
    let mut recs = vec![
        ("X", snap(1_000, 1, &[("10", "1")], &[("11", "1")])),
        ("X", diff(1_100, 2, 2, &[("10", "2")], &[])),
    ];
    let (once, _, _) = run(1, recs.clone(), vec![1_000]);
    // The same diff again (as after a restart from an earlier offset): `run` numbers
    // records by position, so give the copy the position of the original.
    recs.push(("X", diff(1_200, 2, 2, &[("10", "2")], &[])));
    let (twice, _, rejects) = run_seqs(1, recs, vec![1_000], vec![0, 1, 1]);
    assert!(rejects.is_empty(), "the replay is not a gap: {rejects:?}");
    assert_eq!(once, twice);
}
