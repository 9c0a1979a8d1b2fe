//! Late data through every feature, live, against the local broker, with
//! `allowed_lateness = "30s"`: the sample with the trades of three symbols (the
//! benchmark among them) in the first 3 s of every minute moved 15 s later, produced at
//! 10x event time while the job runs, so that the watermark has passed each moved
//! trade when it comes. On every feature topic the last revision of each key equals the
//! backfill's row (a retracted alert: absent), and every finished lake partition (the
//! hour before midnight holds restated rows) equals the backfill's, on 1 process x 2
//! workers and 2 x 2.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::live::*;
use common::{assert_ok, marketflow, parquet_files, sample};
use serde_json::{Map, Value};

/// The symbols whose trades come late.
const LATE: [&str; 3] = ["spot:BTCUSDT", "usdm:ETHUSDT", "cm:ETHUSD_PERP"];
/// How much later (in event time) a late trade is placed in the topic.
const DELAY_MS: i64 = 15_000;
/// The watermark at the end: the last trade − 2 s.
const WATERMARK: i64 = 1_723_161_905_800 - 2_000;

/// The sample with the trades of [`LATE`] in the first 3 s of every minute moved to
/// after the first trade 15 s younger; returns the file and how many were moved.
fn late_sample(dir: &Path) -> (PathBuf, usize) {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(sample()).unwrap());
    let mut lines = std::io::BufReader::new(gz).lines().map(Result::unwrap);
    let header = lines.next().unwrap();
    let mut out: Vec<String> = Vec::new();
    let mut waiting: std::collections::VecDeque<(i64, String)> = Default::default();
    let mut moved = 0;
    for l in lines {
        let ts: i64 = l.split(',').next().unwrap().parse().unwrap();
        while waiting.front().is_some_and(|(due, _)| *due <= ts) {
            out.push(waiting.pop_front().unwrap().1);
        }
        let late = LATE.iter().any(|s| l.split(',').nth(1) == Some(s)) && ts % 60_000 < 3_000;
        if late {
            waiting.push_back((ts + DELAY_MS, l));
            moved += 1;
        } else {
            out.push(l);
        }
    }
    out.extend(waiting.into_iter().map(|(_, l)| l));
    let path = dir.join("late.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(f, "{header}").unwrap();
    for l in out {
        writeln!(f, "{l}").unwrap();
    }
    (path, moved)
}

/// The last revision of every key of a topic, and how many records were restatements.
fn last_revisions(
    records: Vec<Map<String, Value>>,
    set: &str,
) -> (BTreeMap<String, Map<String, Value>>, usize) {
    let mut by: BTreeMap<String, (i64, Map<String, Value>)> = BTreeMap::new();
    let mut restated = 0;
    for mut m in records {
        assert_eq!(m.remove("schema"), Some(Value::from(format!("{set}.v1"))));
        let rev = m.remove("revision").and_then(|v| v.as_i64()).unwrap();
        restated += (rev > 0) as usize;
        let key = key_of(&m);
        if by.get(&key).is_none_or(|(r, _)| *r <= rev) {
            by.insert(key, (rev, m));
        }
    }
    let last = by
        .into_iter()
        .filter(|(_, (_, m))| !m.contains_key("retracted"))
        .map(|(k, (_, m))| (k, m))
        .collect();
    (last, restated)
}

#[test]
fn late_trades_restate_every_feature_on_one_process_of_two_workers() {
    late_parity("late1x2", |config| {
        vec![spawn_run_with(config, &["-w".into(), "2".into()])]
    });
}

#[test]
fn late_trades_restate_every_feature_on_two_processes_of_two_workers() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    let lines: Vec<String> = common::free_ports(2)
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    std::fs::write(&hosts, lines.join("\n") + "\n").unwrap();
    late_parity("late2x2", |config| {
        (0..2)
            .map(|p| {
                let flags = ["-w", "2", "-n", "2", "-p", &p.to_string(), "-h"];
                let mut extra: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
                extra.push(hosts.to_str().unwrap().to_string());
                spawn_run_with(config, &extra)
            })
            .collect()
    });
}

fn late_parity(name: &str, start: impl Fn(&Path) -> Vec<Job>) {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("{name}{}", std::process::id());
    let topic = format!("{tag}.raw");
    create_topic(&topic, 4);
    let prefix = format!("{tag}.feature.");
    let config = write_config_with(dir.path(), &brokers, &tag, &topic, &prefix, "30s");
    let (late, moved) = late_sample(dir.path());
    assert!(moved > 300, "{moved} trades moved");
    // The backfill reads the same records in time order.
    let backfill_out = dir.path().join("backfill");
    assert_ok(&marketflow(&[
        "--config",
        config.to_str().unwrap(),
        "backfill",
        "--input",
        sample().to_str().unwrap(),
        "--output",
        backfill_out.to_str().unwrap(),
    ]));
    let expected = |set: &str, res: &str, until: i64| -> Vec<_> {
        parquet_rows(&backfill_out, set, res)
            .into_iter()
            .filter(|m| m["window_end"].as_i64().unwrap() <= until)
            .collect()
    };
    let jobs = start(&config);
    assert_ok(&marketflow(&[
        "--config",
        config.to_str().unwrap(),
        "produce",
        "--input",
        late.to_str().unwrap(),
        "--topic",
        &topic,
        "--speed",
        "10",
    ]));
    // Every set and resolution ends with the backfill's rows, the late trades included.
    let deadline = Instant::now() + Duration::from_secs(90);
    for set in FEATURE_SETS {
        for res in ["1s", "1m", "5m"] {
            let want = expected(set, res, WATERMARK);
            let topic = format!("{prefix}{set}.{res}");
            loop {
                let (got, restated) = last_revisions(consume(&config, &topic), set);
                let diff = differences(&got, &want);
                let restatement_seen = restated > 0 || res != "1s" || set == "alerts";
                if diff.is_empty() && restatement_seen {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{set}.{res}: {} keys, {restated} restated records; {}",
                    got.len(),
                    diff.join("; ")
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    stop_all(jobs);
    // Every partition the live job finished holds the backfill's rows of it.
    let live = dir.path().join("live");
    let mut dirs: Vec<PathBuf> = parquet_files(&live)
        .iter()
        .map(|f| {
            f.parent()
                .unwrap()
                .strip_prefix(&live)
                .unwrap()
                .to_path_buf()
        })
        .filter(|d| !d.to_string_lossy().contains('_'))
        .collect();
    dirs.sort();
    dirs.dedup();
    let sorted = |mut rows: Vec<Map<String, Value>>| {
        rows.sort_by_key(key_of);
        rows
    };
    for d in &dirs {
        let got = sorted(file_rows(&parquet_files(&live.join(d))));
        let want = sorted(file_rows(&parquet_files(&backfill_out.join(d))));
        assert_eq!(got, want, "lake partition {}", d.display());
    }
    assert!(
        dirs.len() >= 6,
        "{} finished partitions in the live lake",
        dirs.len()
    );
}

/// What differs between the topic's last revisions and the backfill's rows (at most 3).
fn differences(
    got: &BTreeMap<String, Map<String, Value>>,
    want: &[Map<String, Value>],
) -> Vec<String> {
    let mut out = Vec::new();
    if got.len() != want.len() {
        out.push(format!("{} keys, backfill {}", got.len(), want.len()));
    }
    for w in want {
        let Some(g) = got.get(&key_of(w)) else {
            out.push(format!("missing {}", key_of(w)));
            continue;
        };
        for (k, v) in w {
            if !g.get(k).is_some_and(|x| same(v, x)) {
                out.push(format!(
                    "{} {k}: live {:?} backfill {v}",
                    key_of(w),
                    g.get(k)
                ));
            }
        }
        if out.len() >= 3 {
            break;
        }
    }
    out
}
