//! End-to-end: bad config, bad flags and bad input give clear errors and the exit codes
//! of README "Commands" (2 bad usage or config, 1 runtime failure), never a panic.

mod common;

use common::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn bad_config_lists_every_problem_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[features]\nresolutions = [\"1m\", \"7x\"]\nrolling_window = 0\ncolor = \"red\"\n[progress]\ninterval = \"often\"\n").unwrap();
    let sample = sample();
    let out = marketflow(&[
        "backfill",
        "--config",
        cfg.to_str().unwrap(),
        "--input",
        sample.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("features.color"), "{err}");
    let cfg2 = dir.path().join("bad2.toml");
    std::fs::write(&cfg2, "[features]\nresolutions = [\"1m\", \"7x\"]\nrolling_window = 0\n[progress]\ninterval = \"often\"\n").unwrap();
    let out = marketflow(&[
        "backfill",
        "--config",
        cfg2.to_str().unwrap(),
        "--input",
        sample.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for key in [
        "features.resolutions",
        "features.rolling_window",
        "progress.interval",
        "bad2.toml",
    ] {
        assert!(err.contains(key), "{key} missing in: {err}");
    }
    assert!(!err.contains("panicked"));
}

#[test]
fn env_override_is_validated() {
    let sample = sample();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_marketflow"))
        .args(["backfill", "--input", sample.to_str().unwrap()])
        .env("MARKETFLOW__FEATURES__RESOLUTIONS", "[\"0s\"]")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("features.resolutions"));
}

#[test]
fn missing_input_and_bad_flags_are_usage_errors() {
    let out = marketflow(&["backfill", "--input", "/nonexistent/*.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no input matches"),
        "{}",
        stderr(&out)
    );
    let out = marketflow(&["backfill"]);
    assert_eq!(out.status.code(), Some(2));
    let out = marketflow(&["backfill", "--input", "x", "--from", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    let out = marketflow(&["backfill", "--input", "x", "--output", "ftp://host/x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn malformed_hostfile_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "localhost:2101\nnot-an-address\n").unwrap();
    let sample = sample();
    let out = marketflow(&[
        "backfill",
        "--input",
        sample.to_str().unwrap(),
        "-n",
        "2",
        "-p",
        "0",
        "-h",
        hosts.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    let out = marketflow(&[
        "backfill",
        "--input",
        sample.to_str().unwrap(),
        "-n",
        "2",
        "-p",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreadable_input_fails_with_exit_1_and_a_failed_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.parquet");
    std::fs::write(&bad, b"PAR1 this is not really parquet").unwrap();
    let out_dir = dir.path().join("out");
    let out = marketflow(&[
        "backfill",
        "--input",
        bad.to_str().unwrap(),
        "--output",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("broken.parquet"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
}

#[test]
fn malformed_records_are_rejected_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("t.csv");
    std::fs::write(
        &input,
        "ts_ms,symbol,price,qty,is_buyer_maker,trade_id\n1723161600000,BTC,10,1,true,1\nnot,a,row\n1723161600001,BTC,-1,1,true,2\n1723161600002,BTC,10,0,false,3\n1723161600003,BTC,11,2,maybe,4\n1723161600000,BTC,10,1,true,1\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    assert_ok(&marketflow(&[
        "backfill",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out_dir.to_str().unwrap(),
    ]));
    let rejects = std::fs::read_to_string(out_dir.join("_rejects/part-00000.jsonl")).unwrap();
    let mut reasons: Vec<String> = rejects
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "duplicate",
            "invalid_price",
            "invalid_qty",
            "parse_error",
            "parse_error"
        ]
    );
    assert!(rejects.contains("not,a,row"), "raw text kept: {rejects}");
    let bars = read_bars(&out_dir);
    assert_eq!(
        bars.len(),
        3,
        "one bar per resolution from the single good trade"
    );
    assert!(bars.iter().all(|b| b.trades == Some(1)));
}
