//! End-to-end: a real Prometheus server (Debian's `prometheus`, installed by
//! `scripts/test.sh`) scrapes `run` on the embedded default and a 2-process backfill;
//! the series read back through its HTTP API equal what the jobs did (records in, lag
//! 0, one delay observation per row sent). The Grafana dashboard only queries metric
//! families the job serves, and a port in use is a clear error.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Kills a child process when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` on `addr`; the status code and body.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of a PromQL query that returns one sample (None when it returns none).
fn query(prom: &str, q: &str) -> Option<f64> {
    let (code, body) = http_get(prom, &format!("/api/v1/query?query={}", encode(q)))?;
    assert_eq!(code, 200, "{q}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let result = v["data"]["result"].as_array()?;
    let first = result.first()?;
    first["value"][1].as_str()?.parse().ok()
}

/// Polls `q` until `ok` holds for its value; the last value.
fn wait_for(prom: &str, q: &str, ok: impl Fn(f64) -> bool, within: Duration) -> Option<f64> {
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < within {
        last = query(prom, q);
        if last.is_some_and(&ok) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    last
}

/// A base port with `n` consecutive free ports (process p serves on base + p).
fn consecutive_free(n: u16) -> u16 {
    for _ in 0..100 {
        let base = free_ports(1)[0];
        if base > 65000 {
            continue;
        }
        let held: Vec<_> = (0..n)
            .map_while(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == n as usize {
            return base;
        }
    }
    panic!("no {n} consecutive free ports");
}

fn prometheus_bin() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("prometheus");
        if p.is_file() {
            return p;
        }
    }
    panic!("the Prometheus server is not installed: scripts/test.sh installs it (apt-get install prometheus)");
}

/// Starts Prometheus scraping `jobs` (name, targets) every second; its address.
fn start_prometheus(dir: &Path, jobs: &[(&str, Vec<String>)]) -> (Kill, String) {
    let mut yaml =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (name, targets) in jobs {
        let t: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        yaml += &format!(
            "  - job_name: {name}\n    static_configs:\n      - targets: [{}]\n",
            t.join(", ")
        );
    }
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, yaml).unwrap();
    let addr = format!("127.0.0.1:{}", free_ports(1)[0]);
    let child = Command::new(prometheus_bin())
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("start prometheus");
    let prom = Kill(child);
    let started = Instant::now();
    while http_get(&addr, "/-/ready").map(|(c, _)| c) != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "prometheus is not ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Prometheus applies new targets a few seconds after it starts: wait until it
    // has tried every one (they are down until the jobs start).
    let want: usize = jobs.iter().map(|(_, t)| t.len()).sum();
    loop {
        let (_, body) = http_get(&addr, "/api/v1/targets").unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let tried = v["data"]["activeTargets"].as_array().map_or(0, |ts| {
            ts.iter()
                .filter(|t| t["health"].as_str().is_some_and(|h| h != "unknown"))
                .count()
        });
        if tried == want {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "prometheus scrapes no target"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (prom, addr)
}

/// Every `marketflow_*` name in the dashboard's queries.
fn dashboard_metrics() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grafana/marketflow.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("valid JSON");
    let mut names = Vec::new();
    let panels = dash["panels"].as_array().expect("panels");
    assert!(
        panels.len() >= 8,
        "throughput, lag, watermark, delay, rejects, checkpoints, state"
    );
    for p in panels {
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("a PromQL expression");
            let mut rest = expr;
            while let Some(i) = rest.find("marketflow_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                names.push(name);
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn prometheus_scrapes_a_live_job_and_a_two_process_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let run_port = free_ports(1)[0];
    let backfill_base = consecutive_free(2);
    let targets = |ports: &[u16]| ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let (_prom, prom) = start_prometheus(
        dir.path(),
        &[
            ("run", targets(&[run_port])),
            ("backfill", targets(&[backfill_base, backfill_base + 1])),
        ],
    );

    // The live job on the embedded default, the sample fed once as fast as possible.
    let run_out = dir.path().join("live");
    let run = Kill(
        Command::new(env!("CARGO_BIN_EXE_marketflow"))
            .args(["run", "--speed", "0", "--once", "-w", "2", "--output"])
            .arg(&run_out)
            .env(
                "MARKETFLOW__METRICS__LISTEN",
                format!("127.0.0.1:{run_port}"),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("run.log")).unwrap())
            .spawn()
            .unwrap(),
    );

    // A backfill of the same sample on 2 processes x 1 worker; each serves its metrics
    // on base + process and keeps serving them 5 s after the run.
    let hosts = dir.path().join("hosts");
    let peers: Vec<String> = free_ports(2)
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    std::fs::write(&hosts, peers.join("\n") + "\n").unwrap();
    let out = dir.path().join("lake");
    let procs: Vec<Child> = (0..2)
        .map(|p| {
            Command::new(env!("CARGO_BIN_EXE_marketflow"))
                .args([
                    "--config",
                    sample_config().to_str().unwrap(),
                    "backfill",
                    "--input",
                ])
                .arg(sample())
                .arg("--output")
                .arg(&out)
                .args(["-w", "1", "-n", "2", "-p", &p.to_string(), "-h"])
                .arg(&hosts)
                .env(
                    "MARKETFLOW__METRICS__LISTEN",
                    format!("127.0.0.1:{backfill_base}"),
                )
                .env("MARKETFLOW__METRICS__LINGER", "5s")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in procs {
        let o = p.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let m = &manifests(&out)[0];
    let records = m["records"].as_f64().unwrap();
    let rows: f64 = m["feature_sets"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["rows"].as_f64().unwrap())
        .sum();
    assert_eq!(records, 73_826.0);

    // The backfill's final values, as Prometheus stored them (the processes are gone).
    let last = |q: &str| format!("sum(last_over_time({q}[10m]))");
    let within = Duration::from_secs(20);
    for (family, want, what) in [
        (
            "marketflow_records_in_total",
            records,
            "records in of both processes",
        ),
        (
            "marketflow_rows_out_total",
            rows,
            "rows out = the manifest's rows",
        ),
        (
            "marketflow_sink_delay_seconds_count",
            rows,
            "one delay observation per row written",
        ),
    ] {
        let q = last(&format!("{family}{{job=\"backfill\"}}"));
        let got = wait_for(&prom, &q, |v| v == want, within);
        assert_eq!(got, Some(want), "{what}");
    }
    let got = query(
        &prom,
        "max(last_over_time(marketflow_partition_lag_records{job=\"backfill\"}[10m]))",
    );
    assert_eq!(got, Some(0.0), "no input left unread");
    let got = query(
        &prom,
        "count(last_over_time(marketflow_info{job=\"backfill\"}[10m]))",
    );
    assert_eq!(got, Some(2.0), "both processes scraped");

    // The live job: every record read (the trades sample on the `trades` source, the
    // bundled capture's 31,492 book records on the demo's `book` source), lag 0, one
    // delay observation per row sent.
    for (source, want) in [("trades", records), ("book", 31_492.0)] {
        let q = format!("sum(marketflow_records_in_total{{job=\"run\",source=\"{source}\"}})");
        let got = wait_for(&prom, &q, |v| v == want, Duration::from_secs(90));
        assert_eq!(
            got,
            Some(want),
            "{source}: see {}",
            dir.path().join("run.log").display()
        );
    }
    let got = wait_for(
        &prom,
        "max(marketflow_partition_lag_records{job=\"run\"})",
        |v| v == 0.0,
        Duration::from_secs(30),
    );
    assert_eq!(got, Some(0.0), "lag reaches 0");
    let diff = "sum(marketflow_rows_out_total{job=\"run\",sink=\"kafka\"}) - \
                sum(marketflow_sink_delay_seconds_count{job=\"run\",sink=\"kafka\"})";
    let got = wait_for(&prom, diff, |v| v == 0.0, Duration::from_secs(30));
    assert_eq!(got, Some(0.0), "delay observations = rows sent to Kafka");
    let sent = query(
        &prom,
        "sum(marketflow_rows_out_total{job=\"run\",sink=\"kafka\"})",
    );
    assert!(sent.is_some_and(|v| v > 1000.0), "rows were sent: {sent:?}");
    let got = query(
        &prom,
        "time() - max(marketflow_watermark_seconds{job=\"run\"})",
    );
    assert!(
        got.is_some_and(|v| v > 0.0),
        "a watermark in the past: {got:?}"
    );

    // Every metric the dashboard queries is served by the live job.
    let (code, text) = http_get(&format!("127.0.0.1:{run_port}"), "/metrics").unwrap();
    assert_eq!(code, 200);
    for name in dashboard_metrics() {
        assert!(
            text.lines().any(|l| l.starts_with(&name)),
            "the dashboard queries {name}, which the job does not serve"
        );
    }
    drop(run);
}

#[test]
fn a_metrics_port_in_use_is_a_clear_error() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_marketflow"))
        .args([
            "--config",
            sample_config().to_str().unwrap(),
            "backfill",
            "--input",
        ])
        .arg(sample())
        .arg("--output")
        .arg(dir.path())
        .env("MARKETFLOW__METRICS__LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("metrics endpoint 127.0.0.1:{port}")) && stderr.contains("in use"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let bad = Command::new(env!("CARGO_BIN_EXE_marketflow"))
        .args(["backfill", "--input"])
        .arg(sample())
        .env("MARKETFLOW__METRICS__LISTEN", "localhost")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("metrics.listen"), "{stderr}");
}
