//! The lake reads back as one Hive dataset per feature set in pyarrow, polars and DuckDB
//! (tests/pandas/readers.py), with resolutions in hourly, daily and monthly partitions
//! side by side, and a filter on `dt` prunes files. The venv is made by
//! scripts/pyenv.sh (scripts/test.sh runs it); this test installs nothing.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn every_set_reads_back_as_one_dataset_in_pyarrow_polars_and_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sim/trades.parquet");
    // Two days of market time: two daily partitions, 48 hourly ones, one monthly.
    assert_ok(&marketflow(&[
        "simulate",
        "--symbols",
        "3",
        "--minutes",
        "2880",
        "--seed",
        "11",
        "--output",
        input.to_str().unwrap(),
    ]));
    let config = dir.path().join("lake.toml");
    std::fs::write(
        &config,
        "[features]\nresolutions = [\"30s\", \"1m\", \"5m\"]\nrolling_window = 20\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    assert_ok(&marketflow(&[
        "backfill",
        "--config",
        config.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--run-id",
        "readers",
        "-w",
        "2",
    ]));
    // The second day of the run.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_runs/readers.json")).unwrap()).unwrap();
    let first = manifest["event_range"][0]
        .as_i64()
        .expect("event range in the manifest");
    let day = chrono::DateTime::from_timestamp_millis(first + 86_400_000)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = Command::new(root.join("scripts/pyenv.sh"))
        .arg("--check")
        .output()
        .unwrap();
    assert_ok(&python);
    let check = Command::new(String::from_utf8(python.stdout).unwrap().trim())
        .arg(root.join("tests/pandas/readers.py"))
        .args(["--output", out.to_str().unwrap()])
        .args([
            "--manifest",
            out.join("_runs/readers.json").to_str().unwrap(),
        ])
        .args(["--day", &day])
        .output()
        .unwrap();
    println!("{}", String::from_utf8_lossy(&check.stdout));
    assert_ok(&check);
}
