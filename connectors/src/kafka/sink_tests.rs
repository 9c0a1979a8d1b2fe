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

/// Runs a sink of bars through `settings`: sends `bars` at time 0, closes the input,
/// and steps until the sink's frontier is empty or an error is set (at most 60 s).
/// Returns the error, the records still unacknowledged when the frontier emptied, and
/// whether it did.
fn run_sink(settings: KafkaSettings, bars: Vec<Bar>) -> (Option<String>, u64, bool) {
    timely::execute_directly(move |worker| {
        let producer = SharedProducer::new(&settings).expect("producer");
        let errors = ErrorSlot::default();
        let mut input = InputHandle::<i64, Bar>::new();
        let (p, e) = (producer.clone(), errors.clone());
        let probe = worker.dataflow::<i64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .kafka_sink(p, "t.", e)
                .probe()
                .0
        });
        for b in bars {
            input.send(b);
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
