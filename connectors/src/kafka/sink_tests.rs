//! Tests of the Kafka feature sink against the embedded broker: its frontier passes a
//! time only once the brokers acknowledged every row before it.

use std::time::{Duration, Instant};

use operators::Bar;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use timely::dataflow::operators::vec::input::Handle as InputHandle;
use timely::dataflow::operators::{Input, Probe};

use super::{KafkaFeatureSink, SharedProducer};
use crate::kafka::{EmbeddedBroker, KafkaSettings};
use crate::parquet::FeatureRow;
use crate::sync::ErrorSlot;

fn bar(symbol: &str, end: i64) -> Bar {
    Bar {
        symbol: symbol.into(),
        resolution_ms: 1_000,
        window_start: end - 1_000,
        window_end: end,
        open: 1.0,
        high: 2.0,
        low: 0.5,
        close: 1.5,
        volume: 3.0,
        quote_volume: Some(4.5),
        vwap: Some(1.5),
        trades: Some(2),
        buy_volume: Some(1.0),
        sell_volume: Some(2.0),
        revision: 0,
    }
}

/// Runs a sink of `rows` through `settings`: sends them at time 0, closes the input,
/// and steps until the sink's frontier is empty or an error is set (at most 60 s).
/// Returns the error, the records still unacknowledged when the frontier emptied, and
/// whether it did.
fn run_sink<R: FeatureRow + Send + Sync>(
    settings: KafkaSettings,
    rows: Vec<R>,
) -> (Option<String>, u64, bool) {
    timely::execute_directly(move |worker| {
        let producer = SharedProducer::new(&settings).expect("producer");
        let errors = ErrorSlot::default();
        let mut input = InputHandle::<i64, R>::new();
        let (p, e) = (producer.clone(), errors.clone());
        let probe = worker.dataflow::<i64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .kafka_sink(p, "t.", e)
                .probe()
                .0
        });
        for r in rows {
            input.send(r);
        }
        input.close();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut done = false;
        while Instant::now() < deadline && !errors.is_set() {
            worker.step_or_park(Some(Duration::from_millis(10)));
            if probe.done() {
                done = true;
                break;
            }
        }
        // Records sent but not yet reported to a sink slot when the frontier emptied.
        let slots = producer.errors.slots.read().expect("slots");
        let reported: u64 = slots
            .iter()
            .map(|s| s.reported.load(std::sync::atomic::Ordering::SeqCst))
            .sum();
        (
            errors.get(),
            producer.sent.load(std::sync::atomic::Ordering::SeqCst) - reported,
            done,
        )
    })
}

#[test]
fn the_frontier_passes_only_acknowledged_rows() {
    let broker = EmbeddedBroker::start(&[("t.bars.1s", 2)]).expect("broker");
    let settings = KafkaSettings::new(&broker.bootstrap_servers());
    let bars: Vec<Bar> = (1..=50)
        .map(|i| bar(["A", "B"][i % 2], i as i64 * 1_000))
        .collect();
    let (error, in_flight, done) = run_sink(settings.clone(), bars);
    assert_eq!(error, None);
    assert!(done, "the sink's frontier never emptied");
    assert_eq!(in_flight, 0, "frontier passed rows still in flight");

    let consumer = settings
        .plain_consumer(Some("sink-test"))
        .expect("consumer");
    consumer.subscribe(&["t.bars.1s"]).expect("subscribe");
    let mut ends = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ends.len() < 50 && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let v: serde_json::Value =
                serde_json::from_slice(m.payload().unwrap_or_default()).expect("json");
            assert_eq!(v["revision"], 0);
            assert_eq!(m.key(), v["symbol"].as_str().map(str::as_bytes));
            ends.push(v["window_end"].as_i64().expect("window_end"));
        }
    }
    ends.sort_unstable();
    assert_eq!(ends, (1..=50).map(|i| i * 1_000).collect::<Vec<i64>>());
}

#[test]
fn a_row_split_into_several_records_is_sent_whole() {
    // A 500-symbol correlation matrix (124,750 values) is larger than one message.
    let broker = EmbeddedBroker::start(&[("t.correlation.1s", 1)]).expect("broker");
    let settings = KafkaSettings::new(&broker.bootstrap_servers());
    let k = 500;
    let symbols: Vec<operators::Symbol> = (0..k).map(|i| format!("S{i:04}").into()).collect();
    let row = |end: i64| operators::comoments::CorrMatrix {
        resolution_ms: 1_000,
        window_end: end,
        symbols: symbols.clone(),
        corr: (0..k * (k - 1) / 2)
            .map(|i| Some((i as f64 * 0.37).sin()))
            .collect(),
        n: 60,
        revision: 0,
    };
    let (error, in_flight, done) = run_sink(settings.clone(), vec![row(1_000), row(2_000)]);
    assert_eq!(error, None);
    assert!(done, "the sink's frontier never emptied");
    assert_eq!(in_flight, 0);

    let consumer = settings
        .plain_consumer(Some("sink-test-split"))
        .expect("consumer");
    consumer
        .subscribe(&["t.correlation.1s"])
        .expect("subscribe");
    let mut values = std::collections::BTreeMap::<i64, usize>::new();
    let mut parts = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while values.values().sum::<usize>() < 2 * k * (k - 1) / 2 && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let v: serde_json::Value =
                serde_json::from_slice(m.payload().unwrap_or_default()).expect("json");
            let end = v["window_end"].as_i64().expect("window_end");
            *values.entry(end).or_default() += v["corr"].as_array().expect("corr").len();
            parts = parts.max(v["parts"].as_u64().unwrap_or(1));
        }
    }
    assert!(parts >= 3, "{parts} parts");
    let whole = k * (k - 1) / 2;
    assert_eq!(
        values,
        [(1_000, whole), (2_000, whole)].into_iter().collect()
    );
}
