//! Benchmark of the order-book operator alone: one worker, `--symbols` books of
//! `--levels` levels a side, `--diffs` depth diffs each setting `--per-diff` levels
//! (mostly near the top, some removals), sent in batches of 1,000 records per 100 ms of
//! event time, with the `book` rows of 1s windows computed. Prints one line
//! `diffs=.. levels=.. seconds=.. diffs_per_s=.. level_updates_per_s=.. rows=..`.
//!
//! ```text
//! cargo run --release -p operators --example book_bench -- --levels 1000 --diffs 2000000
//! ```

use std::time::Instant;

use operators::book::{BookConfig, BookKind, BookRecord, Dec, OrderBooks, SplitBooks};
use operators::SymbolBatch;
use timely::dataflow::operators::{Input, Inspect, Probe};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (splitmix64).
fn next(state: &mut u64) -> u64 {
    operators::splitmix::splitmix64(state)
}

fn main() {
    let symbols = arg("--symbols", 1) as usize;
    let levels = arg("--levels", 1_000) as i128;
    let diffs = arg("--diffs", 1_000_000);
    let per_diff = arg("--per-diff", 10);
    let tick = Dec::parse("0.01").expect("tick").0;
    let mid = Dec::parse("60000").expect("mid").0;
    // Records built before the clock starts: (symbol, record) in time order.
    let mut seed = 7u64;
    let mut records: Vec<(usize, BookRecord)> = Vec::with_capacity(diffs as usize + symbols);
    let t0 = 1_700_000_000_000i64;
    for s in 0..symbols {
        let side = |sign: i128| -> Vec<(Dec, Dec)> {
            (1..=levels)
                .map(|k| (Dec(mid + sign * k * tick), Dec(1_000_000_000_000)))
                .collect()
        };
        records.push((
            s,
            BookRecord {
                ts_ms: t0,
                seq: s as u64,
                kind: BookKind::Snapshot {
                    last_update_id: Some(0),
                },
                bids: side(-1),
                asks: side(1),
            },
        ));
    }
    let mut ids = vec![0u64; symbols];
    for i in 0..diffs {
        let s = (i as usize) % symbols;
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        for _ in 0..per_diff {
            let r = next(&mut seed);
            // Near the top: depth k in 1..=levels, skewed to the first 20.
            let k = if r.is_multiple_of(4) {
                1 + (r >> 8) as i128 % levels
            } else {
                1 + (r >> 8) as i128 % 20
            };
            let qty = if (r >> 40).is_multiple_of(8) {
                0
            } else {
                ((r >> 20) % 5_000 + 1) as i128 * 1_000_000_000
            };
            if r & 2 == 0 {
                bids.push((Dec(mid - k * tick), Dec(qty)));
            } else {
                asks.push((Dec(mid + k * tick), Dec(qty)));
            }
        }
        ids[s] += 1;
        records.push((
            s,
            BookRecord {
                ts_ms: t0 + 1 + (i as i64) / symbols as i64 / 10,
                seq: symbols as u64 + i,
                kind: BookKind::Diff {
                    first: ids[s],
                    last: ids[s],
                    prev: None,
                },
                bids,
                asks,
            },
        ));
    }
    let names: Vec<operators::Symbol> = (0..symbols)
        .map(|s| format!("S{s}").as_str().into())
        .collect();
    let started = Instant::now();
    let rows = timely::execute_directly(move |worker| {
        let count = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let c = count.clone();
        let (mut input, probe) = worker.dataflow::<i64, _, _>(|scope| {
            let (input, stream) = scope.new_input::<Vec<SymbolBatch>>();
            let (_, books, last) = stream.split_books();
            let config = BookConfig {
                resolutions: vec![1_000],
            };
            let (rows, _, _) = books.order_books(last, config, None);
            let probe = rows.inspect(move |_| c.set(c.get() + 1)).probe().0;
            (input, probe)
        });
        let mut batch: Vec<Vec<BookRecord>> = vec![Vec::new(); symbols];
        let mut n: u64 = 0;
        for (s, r) in records {
            let t = r.ts_ms;
            batch[s].push(r);
            n += 1;
            if n.is_multiple_of(1_000) {
                for (s, recs) in batch.iter_mut().enumerate() {
                    if !recs.is_empty() {
                        input.send(SymbolBatch {
                            symbol: names[s].clone(),
                            book: std::mem::take(recs),
                            ..SymbolBatch::default()
                        });
                    }
                }
                input.advance_to(t);
                worker.step_while(|| probe.less_than(input.time()));
            }
        }
        for (s, recs) in batch.iter_mut().enumerate() {
            if !recs.is_empty() {
                input.send(SymbolBatch {
                    symbol: names[s].clone(),
                    book: std::mem::take(recs),
                    ..SymbolBatch::default()
                });
            }
        }
        input.close();
        while worker.step() {}
        count.get()
    });
    let secs = started.elapsed().as_secs_f64();
    println!(
        "diffs={diffs} symbols={symbols} levels={levels} per_diff={per_diff} seconds={secs:.3} diffs_per_s={:.0} level_updates_per_s={:.0} rows={rows}",
        diffs as f64 / secs,
        (diffs * per_diff) as f64 / secs
    );
}
