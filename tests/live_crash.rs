//! Crash recovery end to end against the separate broker (tansu): the live job is killed
//! abruptly at random points (SIGKILL, and aborts halfway through a checkpoint write and
//! a Parquet write), its newest checkpoint is corrupted, and after each restart it goes
//! on from the newest complete checkpoint. At the end the lake and the last record per
//! key of every feature topic equal an uninterrupted computation over the same trades
//! (the backfill, which the parity tests hold equal to an uninterrupted live run). The
//! same on two processes with one of them killed (the first attempt runs as one process
//! of two workers, so checkpoints also move between process layouts).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::live::*;
use common::{assert_ok, marketflow};
use serde_json::{Map, Value};

const HOUR: i64 = 3_600_000;

/// A seeded pseudo-random sequence (for kill times and crash points).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// `marketflow run` with `extra` flags and environment, its stderr kept in `log`.
fn spawn(config: &Path, extra: &[String], env: &[(&str, String)], log: &Path) -> Job {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_marketflow"));
    cmd.args(["--config", config.to_str().unwrap(), "run"])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Job(Some(cmd.spawn().unwrap()))
}

fn kill9(job: &mut Job) {
    if let Some(c) = job.0.as_mut() {
        let _ = Command::new("kill")
            .args(["-KILL", &c.id().to_string()])
            .status();
    }
}

/// Waits for a process to exit (it must within `secs`); returns whether it succeeded.
fn wait_exit(job: &mut Job, secs: u64) -> bool {
    let child: &mut Child = job.0.as_mut().expect("running");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            job.0 = None;
            return status.success();
        }
        assert!(Instant::now() < deadline, "no exit within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How one attempt of the job is started: `(config, attempt, environment, log)` ->
/// processes (a process other than the first logs to `<log>.p<index>`).
type Start<'a> = &'a dyn Fn(&Path, usize, &[(&str, String)], &Path) -> Vec<Job>;

/// What a scenario leaves behind, for the comparisons.
struct Scenario {
    dir: tempfile::TempDir,
    config: PathBuf,
    prefix: String,
    backfill: PathBuf,
    watermark: i64,
    logs: Vec<PathBuf>,
}

/// Produces 130 simulated minutes of 3 symbols, backfills them, then runs the crash
/// sequence: abort in a checkpoint write, abort in a Parquet write, random kills,
/// corruption of the newest checkpoint, and a final run until every feature is out.
fn crash_run(name: &str, start: Start<'_>, kill: &dyn Fn(&mut Vec<Job>)) -> Scenario {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("{name}{}", std::process::id());
    let topic = format!("{tag}.raw");
    create_topic(&topic, 2);
    let prefix = format!("{tag}.feature.");
    let config = write_config(dir.path(), &brokers, &tag, &topic, &prefix);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("spot:BTCUSDT", "BTCUSDT")).unwrap();
    let cfg = config.to_str().unwrap();
    let sim = dir.path().join("sim.csv");
    let sim_s = sim.to_str().unwrap();
    assert_ok(&marketflow(&[
        "--config",
        cfg,
        "simulate",
        "--symbols",
        "3",
        "--minutes",
        "130",
        "--seed",
        "5",
        "--output",
        sim_s,
    ]));
    let max_ts = std::fs::read_to_string(&sim)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next()?.parse::<i64>().ok())
        .max()
        .unwrap();
    assert_ok(&marketflow(&[
        "--config", cfg, "produce", "--input", sim_s, "--topic", &topic,
    ]));
    let backfill = dir.path().join("backfill");
    assert_ok(&marketflow(&[
        "--config",
        cfg,
        "backfill",
        "--input",
        sim_s,
        "--output",
        backfill.to_str().unwrap(),
    ]));
    let live = dir.path().join("live");
    let mut rng = Rng(std::process::id() as u64);
    let mut logs = Vec::new();
    let mut attempt = 0;
    let mut log = |attempt: usize| {
        let p = dir.path().join(format!("run{attempt}.log"));
        logs.push(p.clone());
        p
    };
    // Aborts halfway through a checkpoint write and a Parquet write.
    for point in [
        format!("checkpoint:{}", 9 + rng.below(4)),
        format!("parquet:{}", 1 + rng.below(3)),
    ] {
        let env = [("MARKETFLOW_FAILPOINT", point.clone())];
        let mut jobs = start(&config, attempt, &env, &log(attempt));
        attempt += 1;
        let crashed = jobs.iter_mut().any(|j| !wait_exit(j, 120));
        assert!(crashed, "failpoint {point} was never reached");
        for j in jobs.iter_mut().filter(|j| j.0.is_some()) {
            kill9(j);
            wait_exit(j, 30);
        }
    }
    // SIGKILL at random moments, each after the job recorded a new cut (or 8 s).
    for _ in 0..3 {
        let before = cuts(&live).last().copied();
        let mut jobs = start(&config, attempt, &[], &log(attempt));
        attempt += 1;
        let deadline = Instant::now() + Duration::from_secs(8);
        while cuts(&live).last().copied() == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rng.below(1_500)));
        kill(&mut jobs);
        for j in jobs.iter_mut() {
            if j.0.is_some() {
                wait_exit(j, 30);
            }
        }
    }
    // Corrupt the newest checkpoint: the previous one must be used.
    let all = cuts(&live);
    assert!(all.len() >= 3, "cuts {all:?}");
    let (newest_cut, previous_cut) = (all[all.len() - 1], all[all.len() - 2]);
    let newest = live.join("_checkpoints").join(format!("{newest_cut:015}"));
    // A kill halfway through a write leaves a hidden temporary file, which is no part
    // of the checkpoint: corrupt a real state file.
    let state = std::fs::read_dir(newest.join("state"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .expect("a state file");
    let mut bytes = std::fs::read(&state).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x5a;
    std::fs::write(&state, bytes).unwrap();

    let final_log = log(attempt);
    let jobs = start(&config, attempt, &[], &final_log);
    let watermark = max_ts - 2_000;
    let want_bars = parquet_rows(&backfill, "bars", "1m")
        .into_iter()
        .filter(|m| m["window_end"].as_i64().unwrap() <= watermark)
        .count();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let got = last_by_key(consume(&config, &format!("{prefix}bars.1m"))).len();
        if got >= want_bars {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "final run: {got} of {want_bars} 1m bars"
        );
    }
    // The lake is written when the watermark passes an hour: wait for the last one.
    let last_hour = (watermark / HOUR - 1) * HOUR;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !parquet_rows(&live, "bars", "5m")
        .iter()
        .any(|m| m["window_end"].as_i64().unwrap() >= last_hour)
    {
        assert!(
            Instant::now() < deadline,
            "the last hour never reached the lake"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop_all(jobs);
    let text = std::fs::read_to_string(&final_log).unwrap_or_default();
    assert!(
        text.contains("checkpoint incomplete or corrupted"),
        "the corrupted checkpoint ({}) was not detected; cuts {:?}; log:\n{}",
        state.display(),
        cuts(&live),
        text.lines()
            .filter(|l| l.contains("checkpoint"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Restored from the cut before the corrupted one: operator state, not a cold start.
    assert!(
        text.contains(&format!("checkpoint restored cut={previous_cut}")),
        "not restored from {previous_cut}: {}",
        text.lines()
            .filter(|l| l.contains("checkpoint"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    Scenario {
        dir,
        config,
        prefix,
        backfill,
        watermark,
        logs,
    }
}

/// Cuts whose offsets were recorded, oldest first.
fn cuts(live: &Path) -> Vec<i64> {
    let mut cuts: Vec<i64> = std::fs::read_dir(live.join("_checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("offsets").exists())
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    cuts.sort();
    cuts
}

/// The last record per key of a topic, without `schema`.
fn last_by_key(rows: Vec<Map<String, Value>>) -> BTreeMap<String, Map<String, Value>> {
    let mut by: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for mut m in rows {
        m.remove("schema");
        by.insert(key_of(&m), m);
    }
    by
}

/// Rows in key order.
fn sorted(mut rows: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    rows.sort_by_key(key_of);
    rows
}

/// Row counts by (hour of window end, symbol), for failure messages.
fn census(rows: &[Map<String, Value>]) -> BTreeMap<(i64, String), usize> {
    let mut c = BTreeMap::new();
    for m in rows {
        let hour = m["window_end"].as_i64().unwrap_or(0) / HOUR;
        let sym = m
            .get("symbol")
            .or(m.get("symbol_a"))
            .and_then(Value::as_str)
            .unwrap_or("");
        *c.entry((hour, sym.to_string())).or_default() += 1;
    }
    c
}

fn assert_same_rows(what: &str, got: &[Map<String, Value>], want: &[Map<String, Value>]) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: row count; got {:?} want {:?}",
        census(got),
        census(want)
    );
    for (g, w) in got.iter().zip(want) {
        assert_eq!(key_of(g), key_of(w), "{what}: row order");
        assert_eq!(g.len(), w.len(), "{what}: fields");
        for (k, v) in w {
            assert!(
                same(v, &g[k]),
                "{what} {} {k}: live {} uninterrupted {v}",
                key_of(w),
                g[k]
            );
        }
    }
}

/// Every finished hour of the lake and the last record per key of every topic equal
/// the uninterrupted computation.
fn check(s: &Scenario) {
    let live = s.dir.path().join("live");
    let final_hours = (s.watermark / HOUR) * HOUR;
    for set in FEATURE_SETS {
        for res in ["1s", "1m", "5m"] {
            let backfill = parquet_rows(&s.backfill, set, res);
            let lake = sorted(parquet_rows(&live, set, res));
            let want = sorted(
                backfill
                    .iter()
                    .filter(|m| m["window_end"].as_i64().unwrap() < final_hours)
                    .cloned()
                    .collect(),
            );
            assert_same_rows(&format!("lake {set}.{res}"), &lake, &want);
            let got = last_by_key(consume(&s.config, &format!("{}{set}.{res}", s.prefix)));
            let want: Vec<_> = backfill
                .into_iter()
                .filter(|m| m["window_end"].as_i64().unwrap() <= s.watermark)
                .collect();
            assert_eq!(got.len(), want.len(), "topic {set}.{res}: keys");
            for w in &want {
                let mut g = got
                    .get(&key_of(w))
                    .unwrap_or_else(|| panic!("topic {set}.{res}: missing {}", key_of(w)))
                    .clone();
                assert_eq!(g.remove("revision"), Some(Value::from(0)));
                assert_same_rows(&format!("topic {set}.{res}"), &[g], std::slice::from_ref(w));
            }
        }
    }
}

#[test]
fn a_job_killed_at_random_points_restarts_from_its_checkpoints_with_the_same_rows() {
    let s = crash_run(
        "crash",
        &|config, _, env, log| vec![spawn(config, &["-w".into(), "2".into()], env, log)],
        &|jobs| jobs.iter_mut().for_each(kill9),
    );
    check(&s);
    assert!(s.logs.len() >= 6);
}

#[test]
fn killing_one_of_two_processes_and_restarting_gives_the_same_rows() {
    let s = crash_run(
        "crash2p",
        &|config, attempt, env, log| {
            // The first attempt runs as 1 process x 2 workers: a checkpoint is restored
            // on another process layout with the same total worker count.
            if attempt == 0 {
                return vec![spawn(config, &["-w".into(), "2".into()], env, log)];
            }
            let ports = common::free_ports(2);
            let hosts = config.with_file_name(format!("hosts{attempt}"));
            let lines: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
            std::fs::write(&hosts, lines.join("\n") + "\n").unwrap();
            (0..2)
                .map(|p| {
                    let flags = ["-w", "1", "-n", "2", "-p", &p.to_string(), "-h"];
                    let mut extra: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
                    extra.push(hosts.to_str().unwrap().to_string());
                    let log = match p {
                        0 => log.to_path_buf(),
                        _ => PathBuf::from(format!("{}.p{p}", log.display())),
                    };
                    spawn(config, &extra, env, &log)
                })
                .collect()
        },
        // Only process 1 is killed; process 0 must notice and exit non-zero.
        &|jobs| {
            kill9(&mut jobs[1]);
            assert!(!wait_exit(&mut jobs[0], 10), "the survivor exited 0");
        },
    );
    check(&s);
}
