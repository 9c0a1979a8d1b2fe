//! Helpers of the live end-to-end tests: the test broker (tansu, started by
//! `scripts/kafka-broker.sh`), job configs, running and stopping `marketflow run`, and
//! reading feature topics and Parquet partitions back as JSON objects.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::Array;
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use super::{assert_ok, marketflow, parquet_files};

pub const PORT: &str = "19093";

/// Starts (or finds) the test broker and returns its address. Installs nothing: tansu
/// is installed by scripts/test.sh (`scripts/kafka-broker.sh install`).
pub fn broker() -> String {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka-broker.sh"))
        .args(["start", "--no-install", "--port", PORT])
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/kafka-broker.sh");
    assert!(out.status.success(), "the broker did not start");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn create_topic(name: &str, partitions: u32) {
    let status =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka-broker.sh"))
            .args(["topic", name, &partitions.to_string(), "--port", PORT])
            .status()
            .unwrap();
    assert!(status.success(), "creating topic {name}");
}

/// `marketflow --config CONFIG produce --input FILE --topic TOPIC`, which must succeed.
pub fn produce(config: &Path, file: &Path, topic: &str) {
    assert_ok(&marketflow(&[
        "--config",
        config.to_str().unwrap(),
        "produce",
        "--input",
        file.to_str().unwrap(),
        "--topic",
        topic,
    ]));
}

/// A config for a live job on `brokers`, reading `topic`, writing under `dir`.
pub fn write_config(dir: &Path, brokers: &str, source: &str, topic: &str, prefix: &str) -> PathBuf {
    write_config_with(dir, brokers, source, topic, prefix, "0s")
}

/// `write_config` with an allowed lateness.
pub fn write_config_with(
    dir: &Path,
    brokers: &str,
    source: &str,
    topic: &str,
    prefix: &str,
    lateness: &str,
) -> PathBuf {
    let path = dir.join("live.toml");
    let text = format!(
        r#"[kafka]
brokers = "{brokers}"
[[sources]]
name = "{source}"
kind = "trades"
topic = "{topic}"
[time]
max_out_of_orderness = "2s"
allowed_lateness = "{lateness}"
idle_timeout = "1s"
[features]
resolutions = ["1s", "1m", "5m"]
rolling_window = 60
benchmark = "spot:BTCUSDT"
[sinks.kafka]
topic_prefix = "{prefix}"
[sinks.parquet]
output = "{}"
[progress]
interval = "1s"
[metrics]
listen = ""
"#,
        dir.join("live").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The running job; killed if a test fails before stopping it.
pub struct Job(pub Option<Child>);

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn spawn_run(config: &Path) -> Job {
    spawn_run_with(config, &[])
}

/// `marketflow --config CONFIG run EXTRA...` (for example cluster flags).
pub fn spawn_run_with(config: &Path, extra: &[String]) -> Job {
    let child = Command::new(env!("CARGO_BIN_EXE_marketflow"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .args(extra)
        .env(
            "RUST_LOG",
            std::env::var("LIVE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Job(Some(child))
}

/// SIGTERM to the job; it must exit 0 within 30 s.
pub fn stop(job: Job) {
    stop_all(vec![job]);
}

/// SIGTERM to every process of a job at once; each must exit 0 within 30 s.
pub fn stop_all(mut jobs: Vec<Job>) {
    let mut children: Vec<Child> = jobs
        .iter_mut()
        .map(|j| j.0.take().expect("running"))
        .collect();
    for child in &children {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for child in children.iter_mut() {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "run exited {status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "run did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Every record of `topic` once at least `want` have been read: a broker on busy cores
/// can pause longer than one read's idle exit (tansu's memory engine reports no high
/// watermarks to read up to), so a short read is tried again, for up to 60 s.
pub fn consume_at_least(
    config: &Path,
    topic: &str,
    want: usize,
) -> Vec<serde_json::Map<String, Value>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = consume(config, topic);
        if got.len() >= want || Instant::now() >= deadline {
            return got;
        }
    }
}

/// Every record of `topic` as JSON objects.
pub fn consume(config: &Path, topic: &str) -> Vec<serde_json::Map<String, Value>> {
    let out = marketflow(&[
        "--config",
        config.to_str().unwrap(),
        "consume",
        "--topic",
        topic,
        "--from-beginning",
        "--idle-exit",
        "2",
    ]);
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("does not exist") {
        return Vec::new(); // not created yet: the job has produced nothing to it so far
    }
    assert_ok(&out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| match serde_json::from_str(l).unwrap() {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        })
        .collect()
}

/// Rows of one feature set and resolution of a Parquet output as JSON objects.
pub fn parquet_rows(out: &Path, set: &str, res: &str) -> Vec<serde_json::Map<String, Value>> {
    file_rows(&parquet_files(
        &out.join(set).join(format!("resolution={res}")),
    ))
}

/// Rows of Parquet files, in order, as JSON objects.
pub fn file_rows(files: &[std::path::PathBuf]) -> Vec<serde_json::Map<String, Value>> {
    let mut rows = Vec::new();
    for file in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let b = batch.unwrap();
            for i in 0..b.num_rows() {
                let mut m = serde_json::Map::new();
                for (c, f) in b.schema().fields().iter().enumerate() {
                    let col = b.column(c);
                    let v = if col.is_null(i) {
                        Value::Null
                    } else {
                        match f.data_type() {
                            DataType::Utf8 => Value::from(col.as_string::<i32>().value(i)),
                            DataType::Float64 => {
                                Value::from(col.as_primitive::<Float64Type>().value(i))
                            }
                            DataType::Int64 => {
                                Value::from(col.as_primitive::<Int64Type>().value(i))
                            }
                            DataType::Timestamp(..) => {
                                Value::from(col.as_primitive::<TimestampMillisecondType>().value(i))
                            }
                            other => panic!("unexpected type {other}"),
                        }
                    };
                    m.insert(f.name().clone(), v);
                }
                rows.push(m);
            }
        }
    }
    rows
}

/// Every feature set the live job writes with the tests' configuration.
pub const FEATURE_SETS: [&str; 6] = [
    "bars",
    "indicators",
    "correlation",
    "beta",
    "alerts",
    "risk",
];

pub fn key_of(m: &serde_json::Map<String, Value>) -> String {
    let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let we = m.get("window_end").and_then(Value::as_i64).unwrap_or(0);
    format!(
        "{}|{}|{}|{}|{we}",
        s("symbol"),
        s("symbol_a"),
        s("symbol_b"),
        s("kind")
    )
}

pub fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_f64() || b.is_f64() => {
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        _ => a == b,
    }
}

/// Offsets recorded per checkpoint cut by source `source` under the output `out`
/// (each file is `MFCP1\n`, the JSON record, then its SHA-256).
pub fn checkpoint_offsets(out: &Path, source: &str) -> std::collections::BTreeMap<i64, Vec<i64>> {
    let mut cuts = std::collections::BTreeMap::new();
    let Ok(dirs) = std::fs::read_dir(out.join("_checkpoints")) else {
        return cuts;
    };
    for d in dirs.flatten() {
        let cut: i64 = d.file_name().to_string_lossy().parse().unwrap();
        let mut offsets = Vec::new();
        for f in std::fs::read_dir(d.path().join("offsets").join(source))
            .into_iter()
            .flatten()
            .flatten()
        {
            let bytes = std::fs::read(f.path()).unwrap();
            let body = &bytes[6..bytes.len() - 32];
            let v: Value = serde_json::from_slice(body).unwrap();
            offsets.push(v["offset"].as_i64().unwrap());
        }
        cuts.insert(cut, offsets);
    }
    cuts
}
