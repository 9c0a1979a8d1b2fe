//! End-to-end: staged backfills and their promotion. A staged run promoted (three
//! times, back and forth) while pyarrow keeps reading the lake: every read sees each
//! partition whole, old or new (never a mix of both runs' files, nor a gap), and the
//! last read sees the new run exactly. Promotion refuses a failed run, a tampered or
//! incomplete one, wrong `--expect-rows` and partitions it cannot swap atomically
//! (exit 2, with the reasons, the lake untouched); `runs` shows direct, staged and
//! promoted runs; `gc` deletes the superseded files and keeps the registry.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn stage(lake: &Path, id: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--stage", "--run-id", id];
    args.extend_from_slice(extra);
    backfill_sample(&sample_config(), lake, &args)
}

fn promote(lake: &Path, id: &str, extra: &[&str]) -> Output {
    let mut args = vec!["promote", id, "--output", lake.to_str().unwrap()];
    args.extend_from_slice(extra);
    marketflow(&args)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn staged_manifest(lake: &Path, id: &str) -> serde_json::Value {
    json(&lake.join(format!("_staging/{id}/_runs/{id}.json")))
}

/// Rows per partition directory (`set/resolution=../dt=../hour=..`) of a manifest.
fn partition_rows(m: &serde_json::Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for set in m["feature_sets"].as_object().unwrap().values() {
        for f in set["files"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            let dir = path.rsplit_once('/').unwrap().0.to_string();
            *out.entry(dir).or_default() += f["rows"].as_u64().unwrap();
        }
    }
    out
}

fn refused(out: &Output, reason: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(reason), "expected `{reason}` in:\n{err}");
}

#[test]
fn promotion_under_a_pyarrow_reader_is_atomic_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    assert_ok(&stage(&lake, "old", &["--to", "2024-08-09T00:02:00Z"]));
    assert_ok(&promote(&lake, "old", &[]));
    assert_ok(&stage(&lake, "new", &[]));
    let (old_m, new_m) = (staged_manifest(&lake, "old"), staged_manifest(&lake, "new"));
    let (old, new) = (partition_rows(&old_m), partition_rows(&new_m));
    assert_ne!(old, new, "the two runs differ");
    let sets: Vec<String> = new_m["feature_sets"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();

    let (stop, log) = (dir.path().join("stop"), dir.path().join("reads.jsonl"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let reader = Command::new(python())
        .arg(root.join("tests/pandas/promote_reader.py"))
        .args(["--lake", lake.to_str().unwrap(), "--sets", &sets.join(",")])
        .args([
            "--stop",
            stop.to_str().unwrap(),
            "--out",
            log.to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reads = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let started = Instant::now();
    while reads() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the reader never read"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for id in ["new", "old", "new"] {
        let out = promote(&lake, id, &[]);
        assert_ok(&out);
        std::thread::sleep(Duration::from_millis(150));
    }
    std::fs::write(&stop, b"").unwrap();
    let done = reader.wait_with_output().unwrap();
    assert_ok(&done);

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 4, "{} reads", lines.len());
    let (mut mixed, mut all_new) = (0, 0);
    for line in &lines {
        assert!(line.get("error").is_none(), "a read failed: {line}");
        let counts: BTreeMap<String, u64> = serde_json::from_value(line["counts"].clone()).unwrap();
        for (dir, n) in &counts {
            assert!(
                old.get(dir) == Some(n) || new.get(dir) == Some(n),
                "read {}: {dir} has {n} rows, neither old {:?} nor new {:?}",
                line["read"],
                old.get(dir),
                new.get(dir)
            );
        }
        for dir in old.keys().chain(new.keys()) {
            assert!(
                counts.contains_key(dir),
                "read {}: {dir} missing",
                line["read"]
            );
        }
        let is = |v: &BTreeMap<String, u64>| counts.iter().all(|(d, n)| v.get(d) == Some(n));
        all_new += is(&new) as usize;
        mixed += (!is(&new) && !is(&old)) as usize;
    }
    assert_eq!(
        serde_json::from_value::<BTreeMap<String, u64>>(lines[0]["counts"].clone()).unwrap(),
        old,
        "the first read sees the old run"
    );
    let last: BTreeMap<String, u64> =
        serde_json::from_value(lines[lines.len() - 1]["counts"].clone()).unwrap();
    assert_eq!(last, new, "the last read sees the new run");
    println!(
        "{} reads: {all_new} all new, {mixed} with partitions of both runs (each whole)",
        lines.len()
    );
    // The superseded files are kept out of the datasets until gc.
    assert!(parquet_files(&lake.join("_versions")).len() >= 3);
}

#[test]
fn promotion_is_refused_with_reasons_and_runs_shows_the_stages() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_s = lake.to_str().unwrap();
    let production = || {
        parquet_files(&lake)
            .into_iter()
            .filter(|p| {
                let rel = p.strip_prefix(&lake).unwrap().to_str().unwrap().to_string();
                !rel.starts_with('_')
            })
            .count()
    };

    // A failed staged run.
    let bad = dir.path().join("broken.parquet");
    std::fs::write(&bad, b"PAR1 this is not really parquet").unwrap();
    let out = marketflow(&[
        "backfill",
        "--input",
        bad.to_str().unwrap(),
        "--output",
        lake_s,
        "--stage",
        "--run-id",
        "f",
    ]);
    assert_eq!(out.status.code(), Some(1));
    refused(
        &promote(&lake, "f", &[]),
        "the run did not succeed (status failed",
    );
    refused(&promote(&lake, "nope", &[]), "no staged run nope");

    // A good run: wrong expectations, then tampered and incomplete copies of it.
    assert_ok(&stage(&lake, "t", &[]));
    let m = staged_manifest(&lake, "t");
    let bars = m["feature_sets"]["bars"]["rows"].as_u64().unwrap();
    refused(
        &promote(
            &lake,
            "t",
            &["--expect-rows", &format!("bars={}", bars + 1)],
        ),
        &format!("set bars has {bars} rows, --expect-rows says {}", bars + 1),
    );
    refused(
        &promote(&lake, "t", &["--expect-rows", "nosuch=1"]),
        "the run has no set nosuch",
    );
    let bad_rows = promote(&lake, "t", &["--expect-rows", "bars"]);
    assert_eq!(bad_rows.status.code(), Some(2));
    let files = parquet_files(&lake.join("_staging/t"));
    let (victim, gone) = (&files[0], &files[files.len() - 1]);
    let original = std::fs::read(victim).unwrap();
    let mut altered = original.clone();
    let mid = altered.len() / 2;
    altered[mid] ^= 0xff;
    std::fs::write(victim, &altered).unwrap();
    let rel = |p: &Path| {
        p.strip_prefix(lake.join("_staging/t"))
            .unwrap()
            .display()
            .to_string()
    };
    refused(
        &promote(&lake, "t", &[]),
        &format!("{}: checksum differs", rel(victim)),
    );
    std::fs::write(victim, &original).unwrap();
    let kept = std::fs::read(gone).unwrap();
    std::fs::remove_file(gone).unwrap();
    refused(
        &promote(&lake, "t", &[]),
        &format!("{}: missing", rel(gone)),
    );
    std::fs::write(gone, kept).unwrap();
    assert_eq!(production(), 0, "refusals change nothing");
    assert_ok(&promote(
        &lake,
        "t",
        &["--expect-rows", &format!("bars={bars}")],
    ));
    let promoted = production();
    assert_eq!(promoted, files.len());

    // A direct backfill's partition files cannot be swapped in one step.
    let other = dir.path().join("other");
    assert_ok(&backfill_sample(
        &sample_config(),
        &other,
        &["--run-id", "d"],
    ));
    assert_ok(&stage(&other, "s", &["--from", "2024-08-09T00:00:00Z"]));
    refused(&promote(&other, "s", &[]), "--allow-non-atomic");
    assert_ok(&promote(&other, "s", &["--allow-non-atomic"]));

    // The registry: direct, staged (failed) and promoted runs.
    assert_ok(&stage(&other, "later", &[]));
    let out = marketflow(&[
        "runs",
        "--output",
        other.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_ok(&out);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stage_of = |id: &str| {
        let r = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run_id"] == id)
            .unwrap();
        (
            r["stage"].as_str().unwrap().to_string(),
            r["promoted_at"].is_string(),
        )
    };
    assert_eq!(stage_of("d"), ("direct".into(), false));
    assert_eq!(stage_of("s"), ("promoted".into(), true));
    assert_eq!(stage_of("later"), ("staged".into(), false));
    let out = marketflow(&["runs", "--output", lake_s]);
    assert_ok(&out);
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(table.lines().next().unwrap().contains("stage"), "{table}");
    for (id, status, stage) in [("f", "failed", "staged"), ("t", "succeeded", "promoted")] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(id) && l.contains(status) && l.contains(stage)),
            "{table}"
        );
    }
    let out = marketflow(&["runs", "show", "t", "--output", lake_s]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("stage        promoted at "));

    // gc: nothing young enough goes; then the superseded and staged files do.
    let gc = |older: &str| {
        let out = marketflow(&[
            "gc",
            "--output",
            other.to_str().unwrap(),
            "--older-than",
            older,
        ]);
        assert_ok(&out);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(gc("1h").contains("0 file(s) deleted"));
    assert!(!parquet_files(&other.join("_versions")).is_empty());
    let text = gc("0s");
    assert!(text.contains("from 1 promotion(s) (s)"), "{text}");
    assert!(parquet_files(&other.join("_versions")).is_empty());
    assert!(parquet_files(&other.join("_staging/s")).is_empty());
    assert!(!parquet_files(&other.join("_staging/later")).is_empty());
    assert!(
        other.join("_staging/s/_runs/s.json").exists(),
        "the registry keeps the run"
    );
    let out = marketflow(&[
        "gc",
        "--output",
        other.to_str().unwrap(),
        "--older-than",
        "7",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
