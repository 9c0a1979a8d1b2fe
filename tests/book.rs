//! End-to-end tests of the order-book sets: every `book` and `quotes` value of a
//! backfill equals an independent from-scratch rebuild of the books with exact
//! decimals (tests/pandas/book.py) on the bundled real capture (1 and 3 workers, and
//! its trades give bars in the same run), on simulated spot and futures books with
//! injected gaps and crossed updates (2 processes), and on Tardis CSV; bad records go to
//! the dead letters with their reasons and the run goes on; the live job over the test
//! broker gives the backfill's rows.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::live::*;
use common::*;

/// The bundled raw capture: depth diffs, a snapshot, bookTicker and trades.
fn capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/hftbacktest_spot_btcusdt_20240808.gz")
}

fn book_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pandas/book.py")
}

/// Runs tests/pandas/book.py over `inputs` against the lake `out`.
fn reference_check(inputs: &str, out: &Path, resolutions: &str) -> String {
    let check = Command::new(python())
        .arg(book_py())
        .args(["--input", inputs, "--output", out.to_str().unwrap()])
        .args(["--resolutions", resolutions])
        .output()
        .expect("run book.py");
    assert_ok(&check);
    String::from_utf8_lossy(&check.stdout).into_owned()
}

fn backfill(input: &str, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "backfill",
        "--input",
        input,
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    assert_ok(&marketflow(&args));
}

/// Every file of a set under `out`, by relative path.
fn set_files(out: &Path, set: &str) -> BTreeMap<String, Vec<u8>> {
    parquet_files(&out.join(set))
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(out).unwrap().display().to_string();
            (rel, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Rejects of a backfill by reason.
fn rejects(out: &Path) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for entry in std::fs::read_dir(out.join("_rejects")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            *by.entry(v["reason"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    by
}

#[test]
fn the_capture_gives_bars_book_and_quotes_equal_to_the_reference_on_1_and_3_workers() {
    let dir = tempfile::tempdir().unwrap();
    let input = capture();
    let input = input.to_str().unwrap();
    let (one, three) = (dir.path().join("w1"), dir.path().join("w3"));
    backfill(input, &one, &["-w", "1"]);
    backfill(input, &three, &["-w", "3"]);
    let report = reference_check(input, &one, "1s,1m,5m");
    assert!(
        report.contains("book/1s: 348 rows compared, 0 mismatches"),
        "{report}"
    );
    for set in ["bars", "book", "quotes"] {
        let files = set_files(&one, set);
        assert!(!files.is_empty(), "no {set} files");
        assert_eq!(
            files,
            set_files(&three, set),
            "{set}: 1 and 3 workers differ"
        );
    }
}

#[test]
fn simulated_books_with_gaps_and_crossed_updates_equal_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    for (name, futures) in [("spot", false), ("futures", true)] {
        let books = dir.path().join(name);
        let mut args = vec![
            "simulate",
            "--symbols",
            "4",
            "--minutes",
            "20",
            "--seed",
            "11",
            "--book",
        ];
        args.push(books.to_str().unwrap());
        args.extend(["--book-gaps", "0.002", "--book-crossed", "0.002"]);
        if futures {
            args.push("--book-futures");
        }
        assert_ok(&marketflow(&args));
    }
    // Spot on 2 processes of 2 workers; futures on 3 workers.
    let spot = format!("{}/spot/*.gz", dir.path().display());
    let out = dir.path().join("out-spot");
    let hosts = dir.path().join("hosts");
    let lines: Vec<String> = free_ports(2)
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    std::fs::write(&hosts, lines.join("\n") + "\n").unwrap();
    let children: Vec<_> = (0..2)
        .map(|p| {
            Command::new(env!("CARGO_BIN_EXE_marketflow"))
                .args([
                    "backfill",
                    "--input",
                    &spot,
                    "--output",
                    out.to_str().unwrap(),
                ])
                .args([
                    "--run-id",
                    "spot",
                    "-w",
                    "2",
                    "-n",
                    "2",
                    "-p",
                    &p.to_string(),
                    "-h",
                ])
                .arg(&hosts)
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        assert_ok(&child.wait_with_output().unwrap());
    }
    let report = reference_check(&spot, &out, "1s,1m");
    assert!(report.contains("0 mismatches"), "{report}");
    let got = rejects(&out);
    assert!(
        got["sequence_gap"] > 0 && got["crossed_book"] > 0,
        "{got:?}"
    );
    let futures = format!("{}/futures/*.gz", dir.path().display());
    let out = dir.path().join("out-futures");
    backfill(&futures, &out, &["-w", "3"]);
    reference_check(&futures, &out, "1s,1m");
    // The same books as Tardis incremental_book_L2 CSV (with crossing rows).
    let tardis = dir.path().join("incremental_book_L2.csv");
    let made = Command::new(python())
        .arg(book_py())
        .args([
            "--input",
            &futures,
            "--make-tardis",
            tardis.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_ok(&made);
    let out = dir.path().join("out-tardis");
    backfill(tardis.to_str().unwrap(), &out, &["-w", "2"]);
    reference_check(tardis.to_str().unwrap(), &out, "1s,1m");
}

/// A capture line: `<recv_ns> <json>`.
fn line(recv_ms: i64, json: &str) -> String {
    format!("{} {json}\n", recv_ms * 1_000_000)
}

#[test]
fn bad_book_records_are_dead_letters_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000_000_i64;
    let diff = |e: i64, id: u64, bids: &str| {
        format!(
            r#"{{"e":"depthUpdate","E":{},"s":"XUSDT","U":{id},"u":{id},"b":[{bids}],"a":[]}}"#,
            t0 + e
        )
    };
    let snap =
        |id: u64| format!(r#"{{"lastUpdateId":{id},"bids":[["10","1"]],"asks":[["11","1"]]}}"#);
    let ticker = |b: &str| format!(r#"{{"u":1,"s":"XUSDT","b":"{b}","B":"1","a":"11","A":"2"}}"#);
    let a = [
        line(t0 + 1_000, &snap(10)), // names no symbol: the file's (XUSDT)
        line(t0 + 1_000, &diff(1_100, 11, r#"["10","2"]"#)),
        line(t0 + 1_200, "not json"),
        line(t0 + 1_250, &diff(1_250, 12, r#"["10","-1"]"#)), // negative quantity
        line(t0 + 1_300, &diff(1_300, 13, r#"["10","3"]"#)),  // 12 never came: a gap
        line(t0 + 2_500, &snap(20)),
        line(t0 + 2_600, &diff(2_600, 21, r#"["10","4"]"#)),
        line(t0 + 4_600, &diff(4_600, 22, r#"["12","1"]"#)), // crosses the ask 11
        line(t0 + 4_700, &diff(4_700, 23, r#"["10","5"]"#)), // waits for a snapshot
        line(t0 + 4_800, &ticker("12")),                     // a crossed quote
        line(t0 + 4_900, &ticker("10")),
    ]
    .concat();
    std::fs::write(dir.path().join("a.capture"), a).unwrap();
    // A symbol whose book never gets a snapshot.
    let b = line(
        t0 + 1_000,
        &diff(1_000, 5, r#"["10","1"]"#).replace("XUSDT", "YUSDT"),
    );
    std::fs::write(dir.path().join("b.capture"), b).unwrap();
    let out = dir.path().join("out");
    let input = format!("{}/*.capture", dir.path().display());
    backfill(&input, &out, &["-w", "2", "--kind", "book"]);
    let got = rejects(&out);
    let want: BTreeMap<String, usize> = [
        ("parse_error", 1),
        ("invalid_qty", 1),
        ("sequence_gap", 3),
        ("crossed_book", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want);
    // Valid at 3 s (resynced at 2.5 s: an invalid moment) and 4 s (clean); invalid from
    // 4.6 s on, so no row ends at 5 s.
    let rows = parquet_rows(&out, "book", "1s");
    let ends: Vec<i64> = rows
        .iter()
        .map(|r| r["window_end"].as_i64().unwrap() - t0)
        .collect();
    assert_eq!(ends, vec![3_000, 4_000]);
    assert!(rows[0]["tw_spread_bps"].is_null() && rows[0]["ofi"].is_null());
    assert_eq!(rows[1]["bid_qty"].as_f64(), Some(4.0));
    assert_eq!(rows[1]["tw_spread_bps"].as_f64(), Some(1e4 / 10.5));
    assert_eq!(rows[1]["updates"].as_i64(), Some(0));
}

#[test]
fn the_live_book_equals_the_backfill_of_the_same_records() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("book{}", std::process::id());
    let topic = format!("{tag}.raw");
    create_topic(&topic, 1);
    let prefix = format!("{tag}.feature.");
    // The shared live config, on a book source at 1s and 1m.
    let config = write_config(dir.path(), &brokers, &tag, &topic, &prefix);
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("kind = \"trades\"", "kind = \"book\"")
        .replace(
            "resolutions = [\"1s\", \"1m\", \"5m\"]",
            "resolutions = [\"1s\", \"1m\"]",
        );
    std::fs::write(&config, text).unwrap();
    let cfg = config.to_str().unwrap();
    let input = capture();
    let input = input.to_str().unwrap();
    assert_ok(&marketflow(&[
        "--config", cfg, "produce", "--input", input, "--topic", &topic,
    ]));
    let backfill_out = dir.path().join("backfill");
    let out = backfill_out.to_str().unwrap();
    assert_ok(&marketflow(&[
        "--config", cfg, "backfill", "--input", input, "--output", out,
    ]));
    // Live closes the windows up to its watermark (the greatest event time − 2 s);
    // compare those that end 3 s before the backfill's last.
    let want_all = parquet_rows(&backfill_out, "book", "1s");
    let last = want_all
        .iter()
        .map(|r| r["window_end"].as_i64().unwrap())
        .max()
        .unwrap();
    let cutoff = last - 3_000;
    let job = spawn_run(&config);
    let deadline = Instant::now() + Duration::from_secs(90);
    for set in ["book", "quotes"] {
        let want: Vec<_> = parquet_rows(&backfill_out, set, "1s")
            .into_iter()
            .filter(|r| r["window_end"].as_i64().unwrap() <= cutoff)
            .collect();
        let got = loop {
            let got: BTreeMap<i64, _> = consume(&config, &format!("{prefix}{set}.1s"))
                .into_iter()
                .map(|mut m| {
                    assert_eq!(m.remove("schema"), Some(format!("{set}.v1").into()));
                    assert_eq!(m.remove("revision"), Some(0.into()));
                    (m["window_end"].as_i64().unwrap(), m)
                })
                .filter(|(e, _)| *e <= cutoff)
                .collect();
            if got.len() >= want.len() {
                break got;
            }
            assert!(
                Instant::now() < deadline,
                "{set}: {} of {} rows after 90 s",
                got.len(),
                want.len()
            );
            std::thread::sleep(Duration::from_millis(500));
        };
        assert_eq!(got.len(), want.len(), "{set}: row count");
        for w in &want {
            let g = &got[&w["window_end"].as_i64().unwrap()];
            for (k, v) in w {
                assert!(
                    same(v, &g[k]),
                    "{set} {} {k}: live {} backfill {v}",
                    w["window_end"],
                    g[k]
                );
            }
        }
    }
    stop(job);
}
