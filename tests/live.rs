//! End-to-end tests of the live path against a separate Kafka-protocol broker (tansu,
//! installed and started by `scripts/kafka-broker.sh`): feature topics equal the
//! backfill's rows value for value, on one process and on two sharing the partitions;
//! bad or late records land in the dead-letter topic; the job creates its feature
//! topics with the configured partition count.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::live::*;
use common::{assert_ok, marketflow, sample};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::Value;

#[test]
fn live_feature_topics_equal_the_backfill_value_for_value() {
    parity("parity", |config| vec![spawn_run(config)]);
}

#[test]
fn two_processes_of_two_workers_share_the_partitions_and_give_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    let ports = common::free_ports(2);
    let lines: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    std::fs::write(&hosts, lines.join("\n") + "\n").unwrap();
    parity("cluster", |config| {
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

/// Produces the sample into a 4-partition topic, starts the job with `start`, and checks
/// that all 15 feature topics equal the backfill's rows up to the watermark and that the
/// finished hour in the lake equals the backfill's.
fn parity(name: &str, start: impl Fn(&std::path::Path) -> Vec<Job>) {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("{name}{}", std::process::id());
    let topic = format!("{tag}.raw");
    create_topic(&topic, 4);
    let prefix = format!("{tag}.feature.");
    let config = write_config(dir.path(), &brokers, &tag, &topic, &prefix);
    let sample = sample();
    produce(&config, &sample, &topic);
    let backfill_out = dir.path().join("backfill");
    assert_ok(&marketflow(&[
        "--config",
        config.to_str().unwrap(),
        "backfill",
        "--input",
        sample.to_str().unwrap(),
        "--output",
        backfill_out.to_str().unwrap(),
    ]));
    // Live closes every window up to the watermark: max event time − 2 s.
    let watermark = 1_723_161_905_800 - 2_000;
    let expected = |set: &str, res: &str| -> Vec<_> {
        parquet_rows(&backfill_out, set, res)
            .into_iter()
            .filter(|m| m["window_end"].as_i64().unwrap() <= watermark)
            .collect()
    };
    let jobs = start(&config);
    let deadline = Instant::now() + Duration::from_secs(90);
    // Every set up to the watermark before the stop: the grid-based sets follow the
    // bars by a watermark step, which under load can be seconds, and each set has a
    // sink of its own (beta can trail correlation, computed in the same step).
    let sets = [
        "bars",
        "correlation",
        "indicators",
        "beta",
        "alerts",
        "risk",
    ];
    for (set, res) in sets.map(|s| (s, "1s")) {
        let want = expected(set, res).len();
        loop {
            let got = consume(&config, &format!("{prefix}{set}.{res}")).len();
            if got >= want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {got} of {want} {set}.{res} rows after 90 s"
            );
        }
    }
    stop_all(jobs);
    for set in FEATURE_SETS {
        for res in ["1s", "1m", "5m"] {
            let want = expected(set, res);
            let got = consume_at_least(&config, &format!("{prefix}{set}.{res}"), want.len());
            let mut got_by: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
            for mut m in got {
                assert_eq!(m.remove("schema"), Some(Value::from(format!("{set}.v1"))));
                assert_eq!(m.remove("revision"), Some(Value::from(0)));
                assert!(
                    got_by.insert(key_of(&m), m).is_none(),
                    "{set}.{res}: a key twice"
                );
            }
            assert_eq!(got_by.len(), want.len(), "{set}.{res}: row count");
            for w in &want {
                let g = got_by
                    .get(&key_of(w))
                    .unwrap_or_else(|| panic!("{set}.{res}: missing {}", key_of(w)));
                assert_eq!(g.len(), w.len(), "{set}.{res}: fields");
                for (k, v) in w {
                    assert!(
                        same(v, &g[k]),
                        "{set}.{res} {} {k}: live {} backfill {v}",
                        key_of(w),
                        g[k]
                    );
                }
            }
        }
    }
    // The lake holds the finished hour once, with the backfill's bars.
    let live_bars: Vec<_> = parquet_rows(&dir.path().join("live"), "bars", "1m");
    let want: Vec<_> = parquet_rows(&backfill_out, "bars", "1m")
        .into_iter()
        .filter(|m| m["window_end"].as_i64().unwrap() < 1_723_161_600_000)
        .collect();
    assert_eq!(live_bars, want);
}

#[test]
fn bad_and_late_records_go_to_the_dead_letter_topic() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("dlq{}", std::process::id());
    let topic = format!("{tag}.raw");
    create_topic(&topic, 1);
    let prefix = format!("{tag}.feature.");
    let config = write_config(dir.path(), &brokers, &tag, &topic, &prefix);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let t = |ts: i64, price: &str| {
        format!(
            r#"{{"ts_ms":{ts},"symbol":"BTCUSDT","price":{price},"qty":1,"is_buyer_maker":false}}"#
        )
    };
    let messages = vec![
        t(1_000, "10"),
        t(3_500, "11"),
        t(2_600, "12"), // out of order within 2 s: counted in its bar
        t(9_000, "13"),
        t(2_000, "14"), // behind the watermark (7 s): late
        "{not json".to_string(),
        t(9_100, "-5"),
        r#"{"ts_ms":9200,"symbol":"BTCUSDT","price":"x","qty":1,"is_buyer_maker":false}"#
            .to_string(),
        t(20_000, "15"),
    ];
    let send = |batch: &[String]| {
        for m in batch {
            producer
                .send(BaseRecord::<str, str>::to(&topic).key("BTCUSDT").payload(m))
                .unwrap();
        }
        producer.flush(Duration::from_secs(10)).unwrap();
    };
    send(&messages[..4]);
    let child = spawn_run(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    // Watermark 7 s: wait for the bar ending at 4 s before sending the rest.
    while consume(&config, &format!("{prefix}bars.1s")).len() < 3 {
        assert!(Instant::now() < deadline, "no bars after 60 s");
    }
    send(&messages[4..]);
    let dlq = loop {
        let got = consume(&config, &format!("dlq.{tag}"));
        if got.len() >= 4 {
            break got;
        }
        assert!(Instant::now() < deadline, "dead letters: {got:?}");
    };
    let bars = consume(&config, &format!("{prefix}bars.1s"));
    stop(child);
    let reasons: Vec<&str> = dlq.iter().map(|m| m["reason"].as_str().unwrap()).collect();
    assert_eq!(
        reasons,
        ["late", "parse_error", "invalid_price", "invalid_price"]
    );
    assert_eq!(dlq[0]["raw"].as_str().unwrap(), messages[4]);
    let closes: Vec<(i64, f64)> = bars
        .iter()
        .map(|b| {
            (
                b["window_end"].as_i64().unwrap(),
                b["close"].as_f64().unwrap(),
            )
        })
        .collect();
    // Bars up to the watermark (18 s): the out-of-order trade closes the 3 s bar.
    assert_eq!(
        closes,
        [(2_000, 10.0), (3_000, 12.0), (4_000, 11.0), (10_000, 13.0)]
    );
}

#[test]
fn the_job_creates_its_feature_topics_with_the_configured_partitions() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("topics{}", std::process::id());
    let topic = format!("{tag}.raw");
    create_topic(&topic, 1);
    let prefix = format!("{tag}.feature.");
    let config = write_config(dir.path(), &brokers, &tag, &topic, &prefix);
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        &format!("topic_prefix = \"{prefix}\""),
        &format!("topic_prefix = \"{prefix}\"\npartitions = 3"),
    );
    std::fs::write(&config, text).unwrap();
    let job = spawn_run(&config);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    // Every set at every resolution, before any row is written.
    let sets = [
        "bars",
        "indicators",
        "alerts",
        "correlation",
        "beta",
        "risk",
        "book",
        "quotes",
    ];
    let wanted: Vec<String> = sets
        .iter()
        .flat_map(|s| ["1s", "1m", "5m"].map(|r| format!("{prefix}{s}.{r}")))
        .collect();
    let started = Instant::now();
    let counts = loop {
        let md = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .unwrap();
        let counts: BTreeMap<String, usize> = md
            .topics()
            .iter()
            .filter(|t| t.name().starts_with(&prefix))
            .map(|t| (t.name().to_string(), t.partitions().len()))
            .collect();
        if counts.len() >= wanted.len() || started.elapsed().as_secs() > 30 {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    stop(job);
    for t in &wanted {
        assert_eq!(counts.get(t), Some(&3), "{t} in {counts:?}");
    }
    assert_eq!(counts.len(), wanted.len(), "{counts:?}");
}
