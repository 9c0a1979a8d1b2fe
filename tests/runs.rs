//! End-to-end: `marketflow runs` lists a lake's backfill runs (succeeded and failed)
//! from their manifests, as a table and as JSON, and `runs show` prints one readably;
//! an unknown id is a usage error naming the runs there are.

mod common;

use common::*;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn runs_lists_succeeded_and_failed_backfills_and_shows_one() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    let cfg = sample_config();
    let cfg = cfg.to_str().unwrap();
    let input = sample();
    let input = input.to_str().unwrap();
    let backfill = |extra: &[&str]| {
        let mut args = vec!["--config", cfg, "backfill", "--input"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--output", lake_s]);
        marketflow(&args)
    };
    assert_ok(&backfill(&[input, "--run-id", "r1"]));
    assert_ok(&backfill(&[
        input,
        "--from",
        "2024-08-08T23:58:00Z",
        "--run-id",
        "r2",
    ]));
    let bad = dir.path().join("broken.parquet");
    std::fs::write(&bad, b"PAR1 this is not really parquet").unwrap();
    let failed = backfill(&[bad.to_str().unwrap(), "--run-id", "r3"]);
    assert_eq!(failed.status.code(), Some(1));

    let manifests = manifests(&lake);
    let rows_of = |id: &str| -> f64 {
        let m = manifests.iter().find(|m| m["run_id"] == id).unwrap();
        m["feature_sets"]
            .as_object()
            .unwrap()
            .values()
            .map(|s| s["rows"].as_f64().unwrap())
            .sum()
    };

    let out = marketflow(&["runs", "--output", lake_s, "--format", "json"]);
    assert_ok(&out);
    let runs: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3, "{runs:?}");
    let by_id = |id: &str| runs.iter().find(|r| r["run_id"] == id).unwrap().clone();
    let (r1, r2, r3) = (by_id("r1"), by_id("r2"), by_id("r3"));
    assert_eq!(r1["status"], "succeeded");
    assert_eq!(r1["records"], 73_826);
    assert_eq!(r1["rows"].as_f64().unwrap(), rows_of("r1"));
    assert_eq!(r2["status"], "succeeded");
    assert!(r2["records"].as_u64().unwrap() < 73_826);
    assert_eq!(r2["requested"][0], 1_723_161_480_000i64);
    assert_eq!(r2["rows"].as_f64().unwrap(), rows_of("r2"));
    assert_eq!(r3["status"], "failed");
    assert!(
        r3["error"].as_str().unwrap().contains("broken.parquet"),
        "{r3}"
    );
    assert!(r1["duration_s"].as_f64().unwrap() >= 0.0);

    let out = marketflow(&["runs", "--output", lake_s]);
    assert_ok(&out);
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("run_id"), "{table}");
    for (id, status) in [("r1", "succeeded"), ("r2", "succeeded"), ("r3", "failed")] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(id) && l.contains(status)),
            "{table}"
        );
    }

    let out = marketflow(&["runs", "show", "r1", "--output", lake_s]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("status       succeeded"), "{text}");
    assert!(text.contains("records      73826"), "{text}");
    for set in [
        "bars",
        "indicators",
        "alerts",
        "correlation",
        "beta",
        "risk",
    ] {
        assert!(text.contains(&format!("  {set} ")), "{set}: {text}");
    }
    let out = marketflow(&["runs", "show", "r1", "--output", lake_s, "--format", "json"]);
    assert_ok(&out);
    let m: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(m["run_id"], "r1");

    let out = marketflow(&["runs", "show", "nope", "--output", lake_s]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no run nope") && err.contains("r1, r2, r3"),
        "{err}"
    );

    let empty = dir.path().join("empty");
    let out = marketflow(&["runs", "--output", empty.to_str().unwrap()]);
    assert_ok(&out);
    assert!(stdout(&out).contains("(no runs)"));
}
