//! End-to-end cross-check against pandas: every feature set of a backfill, read back from
//! Parquet, equals an independent pandas computation (tests/pandas/crosscheck.py) to
//! 1e-9 relative, on the bundled real Binance sample with 1s bars, on a simulated
//! market with 1m bars, and on simulated 1m and 1d candles (tests/pandas/make_candles.py:
//! gaps, a flat stretch, a late starter). The `risk` set is on in every case; where
//! pandas' rolling statistics drift, exact arithmetic (tests/pandas/exact.py) decides.
//! The venv with pandas is made by scripts/pyenv.sh, which the test command
//! scripts/test.sh runs first; these tests install nothing.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

struct Case<'a> {
    input: &'a Path,
    kind: &'a str,
    resolution: &'a str,
    window: usize,
    benchmark: &'a str,
    workers: &'a str,
}

fn crosscheck(dir: &Path, case: &Case) {
    let config = dir.join("features.toml");
    std::fs::write(
        &config,
        format!(
            "[features]\nresolutions = [\"{}\"]\nrolling_window = {}\nbenchmark = \"{}\"\nzscore_alert = 3.0\nrisk = true\n",
            case.resolution, case.window, case.benchmark
        ),
    )
    .unwrap();
    let out = dir.join("out");
    assert_ok(&marketflow(&[
        "backfill",
        "--config",
        config.to_str().unwrap(),
        "--input",
        case.input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--kind",
        case.kind,
        "-w",
        case.workers,
    ]));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pandas/crosscheck.py");
    let check = Command::new(python())
        .arg(script)
        .args(["--input", case.input.to_str().unwrap()])
        .args(["--output", out.to_str().unwrap()])
        .args(["--resolutions", case.resolution])
        .args(["--window", &case.window.to_string()])
        .args(["--benchmark", case.benchmark])
        .args(["--zscore", "3.0"])
        .args(["--kind", case.kind, "--risk"])
        .output()
        .expect("run crosscheck.py");
    println!("{}", String::from_utf8_lossy(&check.stdout));
    assert_ok(&check);
}

#[test]
fn sample_1s_features_equal_pandas() {
    let dir = tempfile::tempdir().unwrap();
    let sample = sample();
    crosscheck(
        dir.path(),
        &Case {
            input: &sample,
            kind: "trades",
            resolution: "1s",
            window: 60,
            benchmark: "spot:BTCUSDT",
            workers: "2",
        },
    );
}

#[test]
fn simulated_1m_features_equal_pandas() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sim/trades.parquet");
    assert_ok(&marketflow(&[
        "simulate",
        "--symbols",
        "5",
        "--minutes",
        "240",
        "--seed",
        "7",
        "--output",
        input.to_str().unwrap(),
    ]));
    crosscheck(
        dir.path(),
        &Case {
            input: &input,
            kind: "trades",
            resolution: "1m",
            window: 60,
            benchmark: "BTCUSDT",
            workers: "3",
        },
    );
}

/// Writes the simulated candles of `interval` (`1m` or `1d`) to `path` with the venv's
/// python.
fn make_candles(interval: &str, path: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pandas/make_candles.py");
    let out = Command::new(python())
        .arg(script)
        .args(["--interval", interval, "--seed", "7"])
        .args(["--output", path.to_str().unwrap()])
        .output()
        .expect("run make_candles.py");
    assert_ok(&out);
}

#[test]
fn simulated_1m_candles_features_equal_pandas() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("candles_1m.csv");
    make_candles("1m", &input);
    crosscheck(
        dir.path(),
        &Case {
            input: &input,
            kind: "candles",
            resolution: "1m",
            window: 60,
            benchmark: "BTCUSDT",
            workers: "2",
        },
    );
}

#[test]
fn simulated_1d_candles_features_equal_pandas() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("candles_1d.csv");
    make_candles("1d", &input);
    crosscheck(
        dir.path(),
        &Case {
            input: &input,
            kind: "candles",
            resolution: "1d",
            window: 30,
            benchmark: "BTCUSDT",
            workers: "3",
        },
    );
}
