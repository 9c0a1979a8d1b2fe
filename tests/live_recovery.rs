//! End-to-end tests of the live job's event-time edge cases and restarts, against the
//! separate test broker: late trades within the allowed lateness restate their bars
//! (revision 1 on the topic, the last revision in the lake), an idle partition does not
//! stall the watermark, and a job stopped mid-stream and restarted loses no input and
//! writes no Parquet row twice.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::live::*;
use common::{assert_ok, marketflow, sample};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::{Map, Value};

/// Sends canonical trades of BTCUSDT at `(ts_ms, price)` to one partition of `topic`.
fn send(brokers: &str, topic: &str, partition: i32, trades: &[(i64, f64)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for (ts, price) in trades {
        let value = format!(
            r#"{{"ts_ms":{ts},"symbol":"BTCUSDT","price":{price},"qty":1,"is_buyer_maker":false}}"#
        );
        producer
            .send(
                BaseRecord::<str, str>::to(topic)
                    .key("BTCUSDT")
                    .partition(partition)
                    .payload(&value),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// Waits until `topic` holds at least `n` records and returns them.
fn wait_for(config: &Path, topic: &str, n: usize, what: &str) -> Vec<Map<String, Value>> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = consume(config, topic);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {n} records on {topic} after 90 s",
            got.len()
        );
    }
}

fn window(m: &Map<String, Value>) -> (i64, i64, f64, f64, f64) {
    (
        m["window_end"].as_i64().unwrap(),
        m["revision"].as_i64().unwrap(),
        m["open"].as_f64().unwrap(),
        m["close"].as_f64().unwrap(),
        m["volume"].as_f64().unwrap(),
    )
}

#[test]
fn late_trades_within_the_allowed_lateness_restate_their_bars() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("restate{}", std::process::id());
    let topic = format!("{tag}.raw");
    create_topic(&topic, 1);
    let prefix = format!("{tag}.feature.");
    let config = write_config_with(dir.path(), &brokers, &tag, &topic, &prefix, "5s");
    send(
        &brokers,
        &topic,
        0,
        &[(1_000, 10.0), (3_500, 11.0), (9_000, 13.0)],
    );
    let job = spawn_run(&config);
    // Watermark 7 s: the bars ending at 2 s and 4 s are out.
    wait_for(&config, &format!("{prefix}bars.1s"), 2, "first bars");
    send(
        &brokers,
        &topic,
        0,
        &[
            (3_200, 12.0),     // 3.8 s late, within 5 s: restates the bar ending at 4 s
            (1_500, 14.0),     // 5.5 s late: dead letter
            (3_700_000, 15.0), // moves the watermark past the hour plus the lateness
        ],
    );
    let dlq = wait_for(&config, &format!("dlq.{tag}"), 1, "dead letters");
    let bars = wait_for(&config, &format!("{prefix}bars.1s"), 4, "restated bar");
    let lake = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let rows = parquet_rows(&dir.path().join("live"), "bars", "1s");
            if !rows.is_empty() {
                break rows;
            }
            assert!(Instant::now() < deadline, "hour 0 not in the lake");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    stop(job);
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0]["reason"], "late");
    let got: Vec<_> = bars.iter().map(window).collect();
    assert_eq!(
        got,
        [
            (2_000, 0, 10.0, 10.0, 1.0),
            (4_000, 0, 11.0, 11.0, 1.0),
            (4_000, 1, 12.0, 11.0, 2.0),
            (10_000, 0, 13.0, 13.0, 1.0),
        ]
    );
    // The lake holds the last revision only.
    let closes: Vec<(i64, f64, f64)> = lake
        .iter()
        .map(|m| {
            (
                m["window_end"].as_i64().unwrap(),
                m["open"].as_f64().unwrap(),
                m["volume"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        closes,
        [(2_000, 10.0, 1.0), (4_000, 12.0, 2.0), (10_000, 13.0, 1.0)]
    );
}

#[test]
fn an_idle_partition_does_not_stall_the_watermark() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("idle{}", std::process::id());
    let topic = format!("{tag}.raw");
    create_topic(&topic, 2);
    let prefix = format!("{tag}.feature.");
    let config = write_config(dir.path(), &brokers, &tag, &topic, &prefix);
    // Partition 1 never receives anything; idle_timeout is 1 s.
    send(&brokers, &topic, 0, &[(1_000, 10.0), (5_000, 11.0)]);
    let job = spawn_run(&config);
    let bars = wait_for(&config, &format!("{prefix}bars.1s"), 1, "idle partition");
    send(&brokers, &topic, 0, &[(8_000, 12.0)]);
    let more = wait_for(&config, &format!("{prefix}bars.1s"), 2, "after idleness");
    stop(job);
    assert_eq!(window(&bars[0]), (2_000, 0, 10.0, 10.0, 1.0));
    assert_eq!(window(&more[1]), (6_000, 0, 11.0, 11.0, 1.0));
}

/// Writes the sample's CSV lines whose event time satisfies `keep` to `path`.
fn sample_part(path: &Path, keep: impl Fn(i64) -> bool) -> usize {
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(sample()).unwrap()),
        &mut text,
    )
    .unwrap();
    let mut out = std::fs::File::create(path).unwrap();
    let mut lines = text.lines();
    writeln!(out, "{}", lines.next().unwrap()).unwrap();
    let mut n = 0;
    for line in lines {
        let ts: i64 = line.split(',').next().unwrap().parse().unwrap();
        if keep(ts) {
            writeln!(out, "{line}").unwrap();
            n += 1;
        }
    }
    n
}

#[test]
fn a_stopped_and_restarted_job_loses_nothing_and_duplicates_nothing() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("restart{}", std::process::id());
    let topic = format!("{tag}.raw");
    create_topic(&topic, 4);
    let prefix = format!("{tag}.feature.");
    let config = write_config(dir.path(), &brokers, &tag, &topic, &prefix);
    // Without 5m bars the trades before 23:59 have all their outputs in hour 23, so
    // offsets can be committed in this 11-minute sample (blocks of 4096 records).
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(r#"["1s", "1m", "5m"]"#, r#"["1s", "1m"]"#),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    // Stop two minutes after midnight: hour 23 is final and in the lake by then.
    let split = 1_723_161_720_000;
    let (first, second) = (dir.path().join("first.csv"), dir.path().join("second.csv"));
    assert!(sample_part(&first, |ts| ts < split) > 0);
    assert!(sample_part(&second, |ts| ts >= split) > 0);
    let produce = |file: &Path| {
        let f = file.to_str().unwrap();
        assert_ok(&marketflow(&[
            "--config", cfg, "produce", "--input", f, "--topic", &topic,
        ]));
    };
    let backfill_out = dir.path().join("backfill");
    assert_ok(&marketflow(&[
        "--config",
        cfg,
        "backfill",
        "--input",
        sample().to_str().unwrap(),
        "--output",
        backfill_out.to_str().unwrap(),
    ]));
    let bars_topic = format!("{prefix}bars.1s");
    let want_1s = |up_to: i64| -> Vec<Map<String, Value>> {
        parquet_rows(&backfill_out, "bars", "1s")
            .into_iter()
            .filter(|m| m["window_end"].as_i64().unwrap() <= up_to)
            .collect()
    };
    let distinct = |rows: &[Map<String, Value>]| {
        rows.iter()
            .map(key_of)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };

    produce(&first);
    let job = spawn_run(&config);
    let want_first = want_1s(split - 2_000 - 1_000).len();
    let deadline = Instant::now() + Duration::from_secs(90);
    while distinct(&consume(&config, &bars_topic)) < want_first {
        assert!(Instant::now() < deadline, "first run: too few bars");
    }
    stop(job);
    let hour_23 = parquet_rows(&dir.path().join("live"), "bars", "1m");
    assert!(
        !hour_23.is_empty(),
        "hour 23 was not written before the stop"
    );
    // The checkpoint at midnight holds the offsets of the input whose outputs are after
    // it: the restart resumes there, not at the beginning.
    let cuts = checkpoint_offsets(&dir.path().join("live"), &tag);
    let (cut, offsets) = cuts.last_key_value().expect("a checkpoint before the stop");
    assert_eq!(*cut, 1_723_161_600_000);
    let resumed: i64 = offsets.iter().sum();
    assert!(resumed > 0, "no offset committed before the stop");

    produce(&second);
    let job = spawn_run(&config);
    let watermark = 1_723_161_905_800 - 2_000;
    let want = want_1s(watermark);
    let deadline = Instant::now() + Duration::from_secs(90);
    let got = loop {
        let got = consume(&config, &bars_topic);
        if distinct(&got) >= want.len() {
            break got;
        }
        assert!(Instant::now() < deadline, "second run: too few bars");
    };
    stop(job);

    // Every bar up to the watermark, each with the backfill's values; a bar produced
    // by both runs is repeated with the same value and revision.
    let mut by_key: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for mut m in got {
        assert_eq!(m.remove("revision"), Some(Value::from(0)));
        m.remove("schema");
        if let Some(prev) = by_key.insert(key_of(&m), m.clone()) {
            assert_eq!(prev, m, "a bar changed between the runs");
        }
    }
    assert_eq!(by_key.len(), want.len());
    for w in &want {
        let g = &by_key[&key_of(w)];
        for (k, v) in w {
            assert!(
                same(v, &g[k]),
                "{} {k}: live {} backfill {v}",
                key_of(w),
                g[k]
            );
        }
    }
    // The lake: hour 23 written once, by the first run, equal to the backfill's.
    let lake = parquet_rows(&dir.path().join("live"), "bars", "1m");
    assert_eq!(
        lake, hour_23,
        "the restarted job rewrote a finished partition"
    );
    let want_23: Vec<_> = parquet_rows(&backfill_out, "bars", "1m")
        .into_iter()
        .filter(|m| m["window_end"].as_i64().unwrap() < 1_723_161_600_000)
        .collect();
    assert_eq!(lake, want_23);
}
