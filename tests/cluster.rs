//! End-to-end: one dataflow across processes. `scripts/launch.sh` over a localhost
//! hostfile (2 processes x 2 workers, serialized exchange) gives byte-identical
//! Parquet files to 1 process x 1 worker for every feature set; a killed peer, a
//! missing peer, a port clash, a `-w` mismatch, a malformed hostfile and a failure on
//! one process are clear errors, fast, instead of hangs or a `succeeded` manifest.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

fn launch_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/launch.sh")
}

/// A hostfile of `n` free localhost ports.
fn hostfile(dir: &Path) -> (PathBuf, Vec<String>) {
    let addresses: Vec<String> = free_ports(2)
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let path = dir.join("hosts");
    std::fs::write(&path, addresses.join("\n") + "\n").unwrap();
    (path, addresses)
}

/// `backfill` arguments over the bundled sample with every feature set.
fn backfill_args(out: &Path) -> Vec<String> {
    [
        "backfill",
        "--config",
        sample_config().to_str().unwrap(),
        "--input",
        sample().to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--run-id",
        "test",
    ]
    .map(String::from)
    .to_vec()
}

/// `backfill --input INPUT --output OUT [--run-id ID]` with the default config.
fn input_args(input: &Path, out: &Path, run_id: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = [
        "backfill",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    if let Some(id) = run_id {
        args.extend(["--run-id".to_string(), id.to_string()]);
    }
    args
}

/// Starts process `p` of the cluster in `hosts`; stderr is piped.
fn spawn(args: &[String], hosts: &Path, p: usize, threads: usize, env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_marketflow"))
        .args(args)
        .args(["-w", &threads.to_string(), "-n", "2", "-p", &p.to_string()])
        .arg("-h")
        .arg(hosts)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir` (relative path, bytes), sorted.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    parquet_files(dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn manifest(out: &Path) -> serde_json::Value {
    let m = manifests(out);
    assert_eq!(m.len(), 1, "one manifest in {}", out.display());
    m.into_iter().next().unwrap()
}

#[test]
fn launch_script_on_two_processes_gives_the_same_files_as_one_worker() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single");
    let mut args = backfill_args(&single);
    args.extend(["-w", "1"].map(String::from));
    let out = Command::new(env!("CARGO_BIN_EXE_marketflow"))
        .args(&args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let (hosts, _) = hostfile(dir.path());
    let multi = dir.path().join("multi");
    let started = Instant::now();
    let out = Command::new(launch_script())
        .arg(&hosts)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_marketflow"))
        .args(backfill_args(&multi))
        .args(["-w", "2", "-z"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    eprintln!("2 processes x 2 workers: {:?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[p0] ") && stderr.contains("[p1] "),
        "{stderr}"
    );
    assert!(stderr.contains("cluster connected"), "{stderr}");

    let (a, b) = (manifest(&single), manifest(&multi));
    assert_eq!(b["status"], "succeeded");
    assert_eq!(b["processes"], 2);
    assert_eq!(b["workers"], 4);
    let sets = a["feature_sets"].as_object().unwrap();
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
    for (name, s) in sets {
        assert!(s["rows"].as_u64().unwrap() > 0, "{name} has rows");
        assert_eq!(s, &b["feature_sets"][name], "{name}");
    }
    assert_eq!(a["records"], b["records"]);
    let (fa, fb) = (files(&single), files(&multi));
    assert!(!fa.is_empty());
    assert_eq!(
        fa.iter().map(|f| &f.0).collect::<Vec<_>>(),
        fb.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(fa == fb, "byte-identical Parquet files");
}

/// Reads `child`'s stderr on a thread, sending each line.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; all lines seen are appended to `seen`.
fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let hit = line.contains(needle);
        seen.push(line);
        if hit {
            return true;
        }
    }
    false
}

/// Waits for `child` to exit, at most `limit`; kills it and panics after that.
fn wait_exit(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A longer input than the sample, so that the run is still going when a peer dies.
fn long_input(dir: &Path) -> PathBuf {
    simulated(dir, 360)
}

/// A simulated market of 8 symbols over `minutes`.
fn simulated(dir: &Path, minutes: u32) -> PathBuf {
    let path = dir.join(format!("market-{minutes}.parquet"));
    let minutes = minutes.to_string();
    let out = marketflow(&[
        "simulate",
        "--symbols",
        "8",
        "--minutes",
        &minutes,
        "--seed",
        "3",
        "--output",
        path.to_str().unwrap(),
    ]);
    assert_ok(&out);
    path
}

#[test]
fn killing_one_process_stops_the_other_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let (hosts, addresses) = hostfile(dir.path());
    let input = long_input(dir.path());
    let out_dir = dir.path().join("out");
    let args = input_args(&input, &out_dir, Some("killed"));
    let mut p0 = spawn(&args, &hosts, 0, 1, &[]);
    let mut p1 = spawn(&args, &hosts, 1, 1, &[]);
    let (rx0, rx1) = (lines(&mut p0), lines(&mut p1));
    let (mut seen0, mut seen1) = (Vec::new(), Vec::new());
    assert!(wait_for(&rx1, "cluster connected", &mut seen1), "{seen1:?}");
    assert!(wait_for(&rx0, "cluster connected", &mut seen0), "{seen0:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        p0.try_wait().unwrap().is_none(),
        "the run lasts long enough"
    );
    p1.kill().unwrap();
    p1.wait().unwrap();
    let (status, took) = wait_exit(&mut p0, Duration::from_secs(10));
    eprintln!("process 0 exited {took:?} after its peer was killed");
    assert_eq!(status.code(), Some(1));
    std::thread::sleep(Duration::from_millis(100));
    seen0.extend(rx0.try_iter());
    let all = seen0.join("\n");
    let want = format!("lost connection to process 1 ({})", addresses[1]);
    assert!(all.contains(&want), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    let m = manifest(&out_dir);
    assert_eq!(m["status"], "failed");
    assert!(m["error"].as_str().unwrap().contains(&want), "{m}");
}

#[test]
fn a_missing_peer_times_out_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (hosts, addresses) = hostfile(dir.path());
    let args = backfill_args(&dir.path().join("out"));
    let env = [("MARKETFLOW_CONNECT_TIMEOUT", "1s")];
    for (p, missing) in [(0, 1), (1, 0)] {
        let started = Instant::now();
        let out = spawn(&args, &hosts, p, 1, &env).wait_with_output().unwrap();
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(took < Duration::from_secs(8), "{took:?}");
        let want = format!("process {missing} ({})", addresses[missing]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&want), "{stderr}");
        assert!(stderr.contains("MARKETFLOW_CONNECT_TIMEOUT"), "{stderr}");
    }
}

#[test]
fn a_port_clash_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (hosts, addresses) = hostfile(dir.path());
    let _holder = std::net::TcpListener::bind(&addresses[0]).unwrap();
    let args = backfill_args(&dir.path().join("out"));
    let out = spawn(&args, &hosts, 0, 1, &[]).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("port clash"), "{stderr}");
    assert!(stderr.contains(&addresses[0]), "{stderr}");
}

#[test]
fn a_thread_count_mismatch_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (hosts, addresses) = hostfile(dir.path());
    let args = backfill_args(&dir.path().join("out"));
    let p0 = spawn(&args, &hosts, 0, 1, &[]);
    let p1 = spawn(&args, &hosts, 1, 2, &[]);
    let (o0, o1) = (
        p0.wait_with_output().unwrap(),
        p1.wait_with_output().unwrap(),
    );
    for (out, peer) in [(&o0, 1), (&o1, 0)] {
        assert_eq!(out.status.code(), Some(2), "{}", text(out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("-w"), "{stderr}");
        let who = format!("process {peer} ({})", addresses[peer]);
        assert!(stderr.contains(&who), "{stderr}");
    }
}

#[test]
fn a_malformed_hostfile_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1:2101\n127.0.0.1\n").unwrap();
    let out = Command::new(launch_script())
        .arg(&hosts)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_marketflow"))
        .args(backfill_args(&dir.path().join("out")))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
    for body in ["127.0.0.1:2101\nhost:99999\n", "a:1\na:1\n"] {
        std::fs::write(&hosts, body).unwrap();
        let out = spawn(&backfill_args(dir.path()), &hosts, 0, 1, &[])
            .wait_with_output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
    }
}

#[test]
fn a_failure_on_one_process_fails_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let (hosts, _) = hostfile(dir.path());
    let out_dir = dir.path().join("out");
    // Process 1 writes its partitions below a regular file: every write fails.
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"").unwrap();
    let p0 = spawn(&backfill_args(&out_dir), &hosts, 0, 1, &[]);
    let p1 = spawn(&backfill_args(&blocker.join("out")), &hosts, 1, 1, &[]);
    let (o0, o1) = (
        p0.wait_with_output().unwrap(),
        p1.wait_with_output().unwrap(),
    );
    assert_eq!(o1.status.code(), Some(1), "{}", text(&o1));
    assert_eq!(o0.status.code(), Some(1), "{}", text(&o0));
    let stderr = String::from_utf8_lossy(&o0.stderr);
    assert!(stderr.contains("process 1"), "{stderr}");
    let m = manifest(&out_dir);
    assert_eq!(m["status"], "failed");
    assert!(m["error"].as_str().unwrap().contains("process 1"), "{m}");
}

/// `scripts/launch.sh HOSTFILE -- marketflow ARGS` with `extra` environment.
fn launch(hosts: &Path, args: &[String], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(launch_script());
    cmd.arg(hosts)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_marketflow"))
        .args(args)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied());
    cmd
}

#[test]
fn launch_script_starts_remote_lines_over_ssh() {
    let dir = tempfile::tempdir().unwrap();
    let (hosts, _) = hostfile(dir.path());
    // A stand-in for ssh that runs the remote command here: `fake-ssh HOST COMMAND`.
    let ssh = dir.path().join("fake-ssh");
    std::fs::write(&ssh, "#!/bin/sh\nexec sh -c \"$2\"\n").unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&ssh)
        .status()
        .unwrap();
    let out_dir = dir.path().join("out");
    let env = [
        ("LAUNCH_SSH", ssh.to_str().unwrap()),
        ("LAUNCH_SSH_ALL", "1"),
    ];
    let out = launch(&hosts, &backfill_args(&out_dir), &env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(manifest(&out_dir)["status"], "succeeded");
    assert_eq!(manifest(&out_dir)["processes"], 2);
}

#[test]
fn launch_script_stops_everything_when_a_process_dies() {
    let dir = tempfile::tempdir().unwrap();
    let (hosts, _) = hostfile(dir.path());
    let input = long_input(dir.path());
    let args = input_args(&input, &dir.path().join("out"), None);
    let mut child = launch(&hosts, &args, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(&mut child);
    let mut seen = Vec::new();
    assert!(wait_for(&rx, "started process 1", &mut seen), "{seen:?}");
    let pid = seen.last().unwrap().rsplit(' ').next().unwrap().to_string();
    assert!(wait_for(&rx, "[p1] ", &mut seen), "{seen:?}");
    assert!(wait_for(&rx, "cluster connected", &mut seen), "{seen:?}");
    let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(killed.success(), "killed process 1 (pid {pid})");
    let (status, took) = wait_exit(&mut child, Duration::from_secs(10));
    eprintln!("launch.sh exited {took:?} after process 1 was killed");
    assert!(!status.success());
    std::thread::sleep(Duration::from_millis(100));
    seen.extend(rx.try_iter());
    let all = seen.join("\n");
    assert!(all.contains("launch.sh: process"), "{all}");
}

#[test]
fn a_failure_early_in_a_long_run_stops_the_cluster_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let (hosts, addresses) = hostfile(dir.path());
    // A day of trades: several times longer to process than the failing process
    // waits (3 s) for the run to wind down before it exits.
    let input = simulated(dir.path(), 1440);
    let out_dir = dir.path().join("out");
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"").unwrap();
    let args = |out: &Path| input_args(&input, out, Some("early"));
    let started = Instant::now();
    let mut p0 = spawn(&args(&out_dir), &hosts, 0, 1, &[]);
    let mut p1 = spawn(&args(&blocker.join("out")), &hosts, 1, 1, &[]);
    let (s1, t1) = wait_exit(&mut p1, Duration::from_secs(120));
    let (s0, t0) = wait_exit(&mut p0, Duration::from_secs(10));
    eprintln!(
        "process 1 failed after {:?}; process 0 exited {t0:?} later",
        started.elapsed() - t0
    );
    let _ = t1;
    assert_eq!(s1.code(), Some(1));
    assert_eq!(s0.code(), Some(1));
    let m = manifest(&out_dir);
    assert_eq!(m["status"], "failed");
    let error = m["error"].as_str().unwrap();
    let who = format!("process 1 ({})", addresses[1]);
    assert!(
        error.contains("process 1 failed") || error.contains(&who),
        "{error}"
    );
}
