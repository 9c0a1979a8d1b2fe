//! End-to-end oracle: seeded random trades written as several shuffled files (CSV, gzip,
//! zstd, JSON lines) with out-of-order rows, duplicates across files and malformed lines;
//! the backfill on 1 and 3 workers equals a from-scratch reference, and every bad
//! line lands in `_rejects/` with its reason.

mod common;

use std::io::Write;
use std::path::Path;

use common::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        operators::splitmix::splitmix64(&mut self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes the input files; returns the trades the reference must see (in input order).
fn write_inputs(dir: &Path, seed: u64) -> (Vec<RefTrade>, usize) {
    let mut rng = Rng(seed);
    let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];
    let files = 4;
    let mut lines: Vec<Vec<String>> = vec![Vec::new(); files];
    let mut trades = Vec::new();
    let mut bad = 0;
    let mut ts = 1_723_150_000_000i64;
    let mut id = 1i64;
    for _ in 0..8000 {
        ts += rng.below(120) as i64;
        let sym = symbols[rng.below(3) as usize];
        let t = RefTrade {
            ts_ms: ts - rng.below(3000) as i64,
            symbol: sym.to_string(),
            price: 100.0 + rng.below(100_000) as f64 / 100.0,
            qty: (1 + rng.below(1_000_000)) as f64 / 1e5,
            is_buyer_maker: rng.below(2) == 0,
            trade_id: Some(id),
            order: 0,
        };
        id += 1;
        // later files hold earlier trades: files are out of order with each other
        let f = (files - 1)
            - ((t.ts_ms - 1_723_150_000_000) as usize * files / (8000 * 60 + 1)).min(files - 1);
        let line = format!(
            "{},{},{},{},{},{}",
            t.ts_ms,
            t.symbol,
            t.price,
            t.qty,
            if t.is_buyer_maker { "True" } else { "false" },
            id - 1
        );
        lines[f].push(line.clone());
        if rng.below(40) == 0 {
            lines[rng.below(files as u64) as usize].push(line); // duplicate, maybe in another file
        }
        if rng.below(100) == 0 {
            bad += 1;
            lines[f].push(match rng.below(3) {
                0 => format!("{},{},-5,1,true,{}", t.ts_ms, sym, 10_000_000 + id),
                1 => format!("{},{},10,NaN,true,{}", t.ts_ms, sym, 10_000_000 + id),
                _ => "garbage,line".to_string(),
            });
        }
        trades.push(t);
    }
    for (i, mut ls) in lines.into_iter().enumerate() {
        // rows slightly out of order within a file
        for k in (1..ls.len()).rev() {
            if rng.below(3) == 0 {
                ls.swap(k, k - 1);
            }
        }
        let body = format!(
            "ts_ms,symbol,price,qty,is_buyer_maker,trade_id\n{}\n",
            ls.join("\n")
        );
        match i {
            0 => std::fs::write(dir.join("part-0.csv"), body).unwrap(),
            1 => {
                let mut gz = flate2::write::GzEncoder::new(
                    std::fs::File::create(dir.join("part-1.csv.gz")).unwrap(),
                    flate2::Compression::fast(),
                );
                gz.write_all(body.as_bytes()).unwrap();
                gz.finish().unwrap();
            }
            _ => std::fs::write(dir.join(format!("part-{i}.csv")), body).unwrap(),
        }
    }
    (trades, bad)
}

#[test]
fn shuffled_files_give_reference_bars_on_1_and_3_workers() {
    for seed in [11u64, 12] {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::create_dir(&input).unwrap();
        let (trades, bad) = write_inputs(&input, seed);
        let want = reference_bars(&trades, &[1_000, 60_000, 300_000]);
        let mut outputs = Vec::new();
        for workers in ["1", "3"] {
            let out = dir.path().join(format!("out{workers}"));
            let glob = format!("{}/part-*", input.display());
            assert_ok(&marketflow(&[
                "backfill",
                "--input",
                &glob,
                "--output",
                out.to_str().unwrap(),
                "-w",
                workers,
            ]));
            let got = read_bars(&out);
            assert_bars_match(&got, &want);
            let rejects = std::fs::read_to_string(out.join("_rejects/part-00000.jsonl")).unwrap();
            let reasons: Vec<String> = rejects
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["reason"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            let malformed = reasons.iter().filter(|r| *r != "duplicate").count();
            assert_eq!(malformed, bad, "every malformed line is rejected once");
            assert!(reasons.iter().any(|r| r == "duplicate"));
            for r in &reasons {
                assert!(
                    ["parse_error", "invalid_price", "invalid_qty", "duplicate"]
                        .contains(&r.as_str()),
                    "{r}"
                );
            }
            outputs.push(got);
        }
        assert_eq!(outputs[0], outputs[1], "identical rows on 1 and 3 workers");
    }
}
