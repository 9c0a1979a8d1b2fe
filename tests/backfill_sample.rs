//! End-to-end: `marketflow backfill` on the bundled real Binance sample, read back from
//! Parquet, against a from-scratch reference; the same rows on 1 worker, 3 workers and
//! serialized exchange (-z), for every feature set (config/sample.toml computes bars,
//! indicators, alerts, correlation and beta); reruns overwrite. Several processes:
//! tests/cluster.rs.

mod common;

use std::path::Path;

use common::*;

const RES: [i64; 3] = [1_000, 60_000, 300_000];

fn backfill(out: &Path, extra: &[&str]) {
    backfill_with(&sample_config(), out, extra);
}

/// `backfill` of the sample with another config.
fn backfill_with(config: &Path, out: &Path, extra: &[&str]) {
    let sample = sample();
    let mut args = vec![
        "backfill",
        "--config",
        config.to_str().unwrap(),
        "--input",
        sample.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--run-id",
        "test",
    ];
    args.extend_from_slice(extra);
    assert_ok(&marketflow(&args));
}

/// The content checksum of every feature set; each set must have rows.
fn checksum(out: &Path) -> Vec<(String, String)> {
    let m = manifests(out);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["status"], "succeeded");
    let sets = m[0]["feature_sets"].as_object().unwrap();
    let names: Vec<_> = sets.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "alerts",
            "bars",
            "beta",
            "correlation",
            "indicators",
            "risk"
        ]
    );
    sets.iter()
        .map(|(name, s)| {
            assert!(s["rows"].as_u64().unwrap() > 0, "{name} has rows");
            (name.clone(), s["checksum"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn sample_bars_equal_reference_and_do_not_depend_on_workers() {
    let want = reference_bars(&sample_trades(), &RES);
    let dir = tempfile::tempdir().unwrap();
    let runs = [
        ("w1", vec!["-w", "1"]),
        ("w3", vec!["-w", "3"]),
        ("w2z", vec!["-w", "2", "-z"]),
    ];
    let mut sums = Vec::new();
    for (name, flags) in &runs {
        let out = dir.path().join(name);
        backfill(&out, flags);
        let got = read_bars(&out);
        assert_bars_match(&got, &want);
        let m = &manifests(&out)[0];
        assert_eq!(m["records"], 73_826);
        assert_eq!(m["rejects"]["total"], 0);
        assert_eq!(m["feature_sets"]["bars"]["rows"], want.len() as u64);
        sums.push(checksum(&out));
    }
    assert!(
        sums.windows(2).all(|w| w[0] == w[1]),
        "identical files on every worker count: {sums:?}"
    );
}

#[test]
fn rerun_overwrites_instead_of_duplicating() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    backfill(&out, &["-w", "2"]);
    let first = parquet_files(&out);
    let sum = checksum(&out);
    backfill(&out, &["-w", "1"]);
    assert_eq!(parquet_files(&out), first, "same files, no duplicates");
    assert_eq!(checksum(&out), sum);
}

#[test]
fn from_and_to_restrict_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    backfill(
        &out,
        &["--from", "2024-08-08T23:58:00Z", "--to", "1723161660000"],
    );
    let (from, to) = (1_723_161_480_000i64, 1_723_161_660_000i64);
    let trades: Vec<_> = sample_trades()
        .into_iter()
        .filter(|t| t.ts_ms >= from && t.ts_ms < to)
        .collect();
    assert_bars_match(&read_bars(&out), &reference_bars(&trades, &RES));
}

#[test]
fn switched_off_sets_are_not_computed_and_bars_stay_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bars.toml");
    std::fs::write(
        &config,
        "[features]\nresolutions = [\"1s\", \"1m\", \"5m\"]\n\
         correlation = false\nbeta = false\nindicators = false\nrisk = false\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    backfill_with(&config, &out, &["-w", "2"]);
    let m = &manifests(&out)[0];
    let names: Vec<_> = m["feature_sets"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["bars"]);
    for set in ["beta", "correlation", "indicators", "alerts", "risk"] {
        assert!(!out.join(set).exists(), "{set} is off but was written");
    }
    assert_bars_match(&read_bars(&out), &reference_bars(&sample_trades(), &RES));
}
