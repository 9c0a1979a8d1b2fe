//! End-to-end: a backfill killed (`MARKETFLOW_FAILPOINT=parquet:N` aborts the process
//! like `kill -9` halfway through its N-th partition file, `journal:N` right after its
//! N-th journal batch) and rerun with
//! `--resume RUN_ID` skips the partitions its journal recorded as durable and ends with
//! the same per-set checksums as an uninterrupted run: on one process at several kill
//! points, on a staged run (then promoted), and on two processes. A resume with other
//! arguments, of a run that succeeded, or of an unknown id is a usage error.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

/// The per-set checksums and row counts of a run's manifest.
/// The per-set sums of an uninterrupted run `u` of the sample under `dir/full`.
fn uninterrupted(dir: &Path) -> Vec<(String, String, u64)> {
    let full = dir.join("full");
    assert_ok(&backfill_sample(
        &sample_config(),
        &full,
        &["--run-id", "u"],
    ));
    sums(&full.join("_runs/u.json"))
}

fn sums(manifest: &Path) -> Vec<(String, String, u64)> {
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    assert_eq!(m["status"], "succeeded", "{m}");
    m["feature_sets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let checksum = v["checksum"].as_str().unwrap().to_string();
            (k.clone(), checksum, v["rows"].as_u64().unwrap())
        })
        .collect()
}

fn backfill_logged(out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let input = sample();
    let cfg = sample_config();
    Command::new(env!("CARGO_BIN_EXE_marketflow"))
        .args(["backfill", "--config", cfg.to_str().unwrap(), "--input"])
        .arg(input)
        .args(["--output", out.to_str().unwrap()])
        .args(extra)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// `durable=K` of the resume's log line.
fn durable(out: &Output) -> usize {
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("resuming"))
        .unwrap_or_else(|| panic!("no resume line in {err}"));
    let k = line.split("durable=").nth(1).unwrap();
    k.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn a_killed_backfill_resumes_to_the_same_checksums_on_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let want = uninterrupted(dir.path());
    let mut skipped = 0;
    // Halfway through the 1st and the 14th partition file, and right after the 2nd
    // batch of the journal (so some partitions are durable, whatever the timing).
    for point in ["parquet:1", "journal:2", "parquet:14"] {
        let out = dir.path().join(point.replace(':', ""));
        let crash = backfill_logged(&out, &["--run-id", "k"], &[("MARKETFLOW_FAILPOINT", point)]);
        assert!(!crash.status.success(), "failpoint {point} was not reached");
        assert!(
            !out.join("_runs/k.json").exists(),
            "a killed run leaves no manifest"
        );
        let resumed = backfill_logged(&out, &["--resume", "k"], &[]);
        assert_ok(&resumed);
        skipped += durable(&resumed);
        assert_eq!(sums(&out.join("_runs/k.json")), want, "kill at {point}");
    }
    assert!(skipped > 0, "some partitions were skipped");

    // A staged run killed, resumed, then promoted.
    let lake = dir.path().join("lake");
    let env = [("MARKETFLOW_FAILPOINT", "parquet:9")];
    let crash = backfill_logged(&lake, &["--stage", "--run-id", "s"], &env);
    assert!(!crash.status.success());
    let resumed = backfill_logged(&lake, &["--resume", "s"], &[]);
    assert_ok(&resumed);
    assert_eq!(sums(&lake.join("_staging/s/_runs/s.json")), want);
    assert_ok(&marketflow(&[
        "promote",
        "s",
        "--output",
        lake.to_str().unwrap(),
    ]));

    // Usage errors.
    let other = backfill_logged(
        &dir.path().join("journal2"),
        &["--resume", "k", "--to", "2024-08-09T00:00:00Z"],
        &[],
    );
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr).contains("already succeeded"));
    let unknown = backfill_logged(&lake, &["--resume", "nope"], &[]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no run nope to resume"));
    let out = dir.path().join("differ");
    let crash = backfill_logged(
        &out,
        &["--run-id", "x"],
        &[("MARKETFLOW_FAILPOINT", "parquet:3")],
    );
    assert!(!crash.status.success());
    let differ = backfill_logged(
        &out,
        &["--resume", "x", "--from", "2024-08-09T00:00:00Z"],
        &[],
    );
    assert_eq!(differ.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&differ.stderr).contains("--from: the run had None"));
}

#[test]
fn a_killed_two_process_backfill_resumes_to_the_same_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let want = uninterrupted(dir.path());
    let out = dir.path().join("lake");
    let cluster = |extra: &[&str], failpoint: Option<&str>| -> Vec<Output> {
        let ports = free_ports(2);
        let hosts = dir.path().join("hosts");
        let lines: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        std::fs::write(&hosts, lines.join("\n") + "\n").unwrap();
        let input = sample();
        let cfg = sample_config();
        let children: Vec<_> = (0..2)
            .map(|p| {
                let mut c = Command::new(env!("CARGO_BIN_EXE_marketflow"));
                c.args(["backfill", "--config", cfg.to_str().unwrap(), "--input"])
                    .arg(&input)
                    .args(["--output", out.to_str().unwrap()])
                    .args(extra)
                    .args(["-w", "1", "-n", "2", "-p", &p.to_string(), "-h"])
                    .arg(&hosts)
                    .env("RUST_LOG", "info")
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                if let (0, Some(f)) = (p, failpoint) {
                    c.env("MARKETFLOW_FAILPOINT", f);
                }
                c.spawn().unwrap()
            })
            .collect();
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    };
    let crashed = cluster(&["--run-id", "k2"], Some("journal:1"));
    assert!(!crashed[0].status.success(), "process 0 was killed");
    assert!(
        !crashed[1].status.success(),
        "process 1 fails with its peer"
    );
    let resumed = cluster(&["--resume", "k2"], None);
    for r in &resumed {
        assert_ok(r);
    }
    assert!(
        durable(&resumed[0]) > 0,
        "the journal had durable partitions"
    );
    assert_eq!(sums(&out.join("_runs/k2.json")), want);
}
