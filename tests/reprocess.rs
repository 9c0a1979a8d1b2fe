//! End-to-end: reprocessing a time range from Kafka (`run --from --to --topic-prefix`).
//! The sample is produced to the test broker; the reprocess rewinds to the range and
//! ends by itself; its staged run equals a staged backfill of the same range over the
//! file, set by set, by content checksum (1 process × 2 workers and 2 processes × 2
//! workers); its side topics hold the staged lake's rows; it promotes like a backfill
//! and `runs` lists it. Flags that would overwrite the live job's topics are refused.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::live::*;
use common::*;
use serde_json::Value;

/// The range: 23:56 to 00:03 of the sample (23:54:15 to 00:05:05).
const FROM: &str = "2024-08-08T23:56:00Z";
const TO: &str = "2024-08-09T00:03:00Z";

/// `marketflow --config CONFIG run ARGS...` on every process of `-n processes`; each
/// must exit 0 within 120 s. Returns process 0's stdout.
fn reprocess(config: &Path, args: &[&str], processes: usize) -> String {
    let ports = free_ports(processes);
    let hosts = config.with_file_name("hosts.txt");
    let lines: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    std::fs::write(&hosts, lines.join("\n")).unwrap();
    let children: Vec<_> = (0..processes)
        .map(|p| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_marketflow"));
            cmd.args(["--config", config.to_str().unwrap(), "run"])
                .args(args)
                .args(["-w", "2"])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            if processes > 1 {
                cmd.args(["-n", &processes.to_string(), "-p", &p.to_string()])
                    .args(["--hostfile", hosts.to_str().unwrap()]);
            }
            cmd.spawn().unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stdout = String::new();
    for (p, mut child) in children.into_iter().enumerate() {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "reprocess process {p} exited with {status}"
                );
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("reprocess process {p} did not end within 120 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if p == 0 {
            use std::io::Read;
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut stdout)
                .unwrap();
        }
    }
    stdout
}

fn manifest(lake: &Path, id: &str) -> Value {
    let path = lake.join(format!("_staging/{id}/_runs/{id}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn a_reprocess_equals_the_staged_backfill_of_its_range_and_promotes() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("rp{}", std::process::id());
    let topic = format!("{tag}.raw");
    create_topic(&topic, 4);
    let config = write_config(
        dir.path(),
        &brokers,
        &tag,
        &topic,
        &format!("{tag}.feature."),
    );
    produce(&config, &sample(), &topic);
    let lake = dir.path().join("lake");
    let lake_arg = lake.to_str().unwrap();
    assert_ok(&backfill_sample(
        &config,
        &lake,
        &[
            "--from", FROM, "--to", TO, "--stage", "--run-id", "bf", "-w", "2",
        ],
    ));
    let want = manifest(&lake, "bf");
    for (id, processes) in [("rp1", 1), ("rp2", 2)] {
        let prefix = format!("{tag}.{id}.");
        let args = [
            "--from",
            FROM,
            "--to",
            TO,
            "--topic-prefix",
            &prefix,
            "--run-id",
            id,
            "--output",
            lake_arg,
        ];
        let stdout = reprocess(&config, &args, processes);
        assert!(stdout.contains(&format!("staged run {id}")), "{stdout}");
        let got = manifest(&lake, id);
        assert_eq!(got["status"], "succeeded", "{got}");
        assert_eq!(got["from_ms"], want["from_ms"]);
        for (set, sum) in want["feature_sets"].as_object().unwrap() {
            assert!(
                sum["rows"].as_u64().unwrap() > 0,
                "{set}: the backfill wrote nothing"
            );
            assert_eq!(
                got["feature_sets"][set]["checksum"], sum["checksum"],
                "{id} {set}: the reprocess's files differ from the backfill's"
            );
        }
        // The side topics hold the staged lake's rows.
        let staged = lake.join(format!("_staging/{id}"));
        for set in ["bars", "correlation"] {
            let rows = parquet_rows(&staged, set, "1m");
            let mut topic_rows = consume(&config, &format!("{prefix}{set}.1m"));
            topic_rows.sort_by_key(key_of);
            let mut lake_rows = rows.clone();
            lake_rows.sort_by_key(key_of);
            assert_eq!(topic_rows.len(), lake_rows.len(), "{prefix}{set}.1m");
            for (t, l) in topic_rows.iter().zip(&lake_rows) {
                for (k, v) in l {
                    assert!(
                        same(&t[k], v),
                        "{set} {}: {k} topic {} lake {v}",
                        key_of(l),
                        t[k]
                    );
                }
            }
        }
    }
    // Promoted like a staged backfill; `runs` lists it.
    assert_ok(&marketflow(&["promote", "rp1", "--output", lake_arg]));
    assert_eq!(
        parquet_rows(&lake, "bars", "1m").len() as u64,
        parquet_rows(&lake.join("_staging/rp1"), "bars", "1m").len() as u64
    );
    let runs = marketflow(&["runs", "--output", lake_arg, "--format", "json"]);
    assert_ok(&runs);
    let listed: Vec<Value> = serde_json::from_slice(&runs.stdout).unwrap();
    let stage = |id: &str| {
        let run = listed.iter().find(|r| r["run_id"] == id).expect(id);
        run["stage"].as_str().unwrap().to_string()
    };
    assert_eq!(
        (stage("rp1"), stage("rp2")),
        ("promoted".into(), "staged".into())
    );
    let shown = marketflow(&["runs", "show", "rp2", "--output", lake_arg]);
    assert_ok(&shown);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains(&format!("kafka:{topic}")), "{text}");
}

#[test]
fn a_reprocess_may_not_write_the_live_topics_nor_read_the_embedded_sample() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "127.0.0.1:1", "s", "t", "feature.");
    let out = marketflow(&[
        "--config",
        config.to_str().unwrap(),
        "run",
        "--from",
        FROM,
        "--topic-prefix",
        "feature.",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("other than the live job's"));
    let out = marketflow(&["run", "--from", FROM, "--topic-prefix", "rp."]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("real broker"));
    let out = marketflow(&["run", "--to", TO]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
