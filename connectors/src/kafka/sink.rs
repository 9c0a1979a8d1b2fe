//! The Kafka sinks: feature rows to `<prefix><set>.<resolution>` topics and rejects to
//! the dead-letter topic, through one idempotent producer per worker, flushed before the
//! sink's output frontier advances (a probe on that output tells when records are
//! durable on the brokers).

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use operators::Reject;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::{Stream, StreamVec};

use crate::kafka::json::rows_to_json;
use crate::kafka::{KafkaSettings, WatermarkLatency};
use crate::parquet::FeatureRow;
use crate::rejects::to_json_line;
use crate::sync::ErrorSlot;
use crate::{ConnectorError, Result};

/// How long a flush may take before the sink fails the job.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Counts failed deliveries so a sink can fail the job instead of losing records, and
/// times acknowledged feature rows against the watermark.
#[derive(Clone, Default)]
pub struct DeliveryErrors {
    failed: Arc<AtomicU64>,
    last: Arc<Mutex<Option<String>>>,
    latency: Arc<OnceLock<Arc<WatermarkLatency>>>,
}

impl ClientContext for DeliveryErrors {}

impl ProducerContext for DeliveryErrors {
    /// The window end of a feature row (0 for other records).
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, window_end: usize) {
        match result {
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            }
            Ok(_) if window_end > 0 => {
                if let Some(l) = self.latency.get() {
                    let set = SETS[(window_end >> SET_SHIFT).min(SETS.len() - 1)];
                    l.record(set, (window_end & END_MASK) as i64, Instant::now());
                }
            }
            Ok(_) => {}
        }
    }
}

/// Feature sets as numbered in a delivery opaque: `set index << SET_SHIFT | window end`.
const SETS: [&str; 6] = [
    "bars",
    "indicators",
    "alerts",
    "correlation",
    "beta",
    "other",
];
const SET_SHIFT: usize = 56;
const END_MASK: usize = (1 << SET_SHIFT) - 1;

/// The delivery opaque of a feature row of `set` ending at `window_end`.
fn row_opaque(set: &str, window_end: i64) -> usize {
    let i = SETS
        .iter()
        .position(|s| *s == set)
        .unwrap_or(SETS.len() - 1);
    (i << SET_SHIFT) | (window_end.max(0) as usize & END_MASK)
}

/// The producer type of the sinks: librdkafka's events are served by its own thread,
/// so acknowledgements are seen as they arrive.
pub type SinkProducer = rdkafka::producer::ThreadedProducer<DeliveryErrors>;

/// One idempotent producer shared by the Kafka sinks of a worker.
#[derive(Clone)]
pub struct SharedProducer {
    inner: Rc<SinkProducer>,
    errors: DeliveryErrors,
}

impl SharedProducer {
    /// An idempotent producer (`enable.idempotence = true`, `acks = all`).
    pub fn new(settings: &KafkaSettings) -> Result<SharedProducer> {
        let errors = DeliveryErrors::default();
        let mut c = settings.client_config();
        c.set("enable.idempotence", "true");
        c.set("linger.ms", "1");
        let inner: SinkProducer = c
            .create_with_context(errors.clone())
            .map_err(|e| ConnectorError::Kafka(format!("creating a producer: {e}")))?;
        Ok(SharedProducer {
            inner: Rc::new(inner),
            errors,
        })
    }

    /// Measures the delay from the watermark passing a row's window end to the row's
    /// acknowledgement into `latency`.
    pub fn with_latency(self, latency: Arc<WatermarkLatency>) -> SharedProducer {
        let _ = self.errors.latency.set(latency);
        self
    }

    /// Queues one record, waiting while librdkafka's queue is full.
    pub fn send(&self, topic: &str, key: &str, value: &[u8]) -> Result<()> {
        self.send_row(topic, key, value, None)
    }

    /// Queues one feature record of `set` whose window ends at `window_end` (timed
    /// from the watermark passing it to its acknowledgement when latency is measured).
    pub fn send_row(
        &self,
        topic: &str,
        key: &str,
        value: &[u8],
        window_end: Option<(&str, i64)>,
    ) -> Result<()> {
        let opaque = window_end.map_or(0, |(set, e)| row_opaque(set, e));
        let mut record = BaseRecord::with_opaque_to(topic, opaque)
            .key(key)
            .payload(value);
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    return Err(ConnectorError::Kafka(format!("producing to {topic}: {e}")))
                }
            }
        }
    }

    /// Waits until every queued record is acknowledged; an error if any delivery failed.
    pub fn flush(&self) -> Result<()> {
        self.inner
            .flush(FLUSH_TIMEOUT)
            .map_err(|e| ConnectorError::Kafka(format!("flushing: {e}")))?;
        if self.errors.failed.swap(0, Ordering::Relaxed) > 0 {
            let last = self
                .errors
                .last
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            return Err(ConnectorError::Kafka(format!(
                "delivery failed: {}",
                last.unwrap_or_default()
            )));
        }
        Ok(())
    }
}

/// Produces every record of a stream and advances the (empty) output frontier only
/// after a flush, so a probe on the output tells when the records are durable.
fn produce_stream<'scope, T, F>(
    stream: StreamVec<'scope, i64, T>,
    name: &str,
    producer: SharedProducer,
    errors: ErrorSlot,
    mut encode: F,
) -> StreamVec<'scope, i64, ()>
where
    T: Clone + 'static,
    F: FnMut(Vec<T>, &SharedProducer) -> Result<usize> + 'static,
{
    stream.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        name,
        move |cap, _info| {
            let mut cap = Some(cap);
            let mut unflushed = 0usize;
            move |(input, frontier), _out| {
                input.for_each(|_time, data| {
                    if errors.is_set() {
                        return;
                    }
                    match encode(std::mem::take(data), &producer) {
                        Ok(n) => unflushed += n,
                        Err(e) => errors.set(e.to_string()),
                    }
                });
                let f = frontier.frontier().first().copied();
                let Some(c) = cap.as_mut() else { return };
                if f.is_none_or(|f| f > *c.time()) {
                    if unflushed > 0 {
                        if let Err(e) = producer.flush() {
                            errors.set(e.to_string());
                            return;
                        }
                        unflushed = 0;
                    }
                    match f {
                        Some(f) => c.downgrade(&f),
                        None => cap = None,
                    }
                }
            }
        },
    )
}

/// Extension trait: write feature rows to their Kafka topics.
pub trait KafkaFeatureSink<'scope, R: FeatureRow> {
    /// Produces every row to `<topic_prefix><set>.<resolution>` (key = symbol or `a|b`,
    /// `revision` 0). The returned stream carries nothing; its frontier passes a time
    /// once every row before it is acknowledged by the brokers.
    fn kafka_sink(
        self,
        producer: SharedProducer,
        topic_prefix: &str,
        errors: ErrorSlot,
    ) -> StreamVec<'scope, i64, ()>;
}

impl<'scope, R: FeatureRow> KafkaFeatureSink<'scope, R> for Stream<'scope, i64, Vec<R>> {
    fn kafka_sink(
        self,
        producer: SharedProducer,
        topic_prefix: &str,
        errors: ErrorSlot,
    ) -> StreamVec<'scope, i64, ()> {
        let prefix = format!("{topic_prefix}{}.", R::SET);
        let name = format!("KafkaSink({})", R::SET);
        produce_stream(self, &name, producer, errors, move |rows, p| {
            let records = rows_to_json(&rows)?;
            let mut topic = String::new();
            for (r, row) in records.iter().zip(&rows) {
                topic.clear();
                topic.push_str(&prefix);
                topic.push_str(&r.resolution);
                // Restatements are not timed: the watermark passed them long ago.
                let end = (row.revision() == 0).then(|| (R::SET, row.window_end()));
                p.send_row(&topic, &r.key, r.value.as_bytes(), end)?;
            }
            Ok(records.len())
        })
    }
}

/// Extension trait: write rejects to the dead-letter topic.
pub trait DeadLetterSink<'scope> {
    /// Produces every reject to `topic` as a JSON object with `reason`, `source`,
    /// `position`, `detail` and the raw record (key = its `topic/partition`).
    fn dead_letter_sink(
        self,
        producer: SharedProducer,
        topic: &str,
        errors: ErrorSlot,
    ) -> StreamVec<'scope, i64, ()>;
}

impl<'scope> DeadLetterSink<'scope> for StreamVec<'scope, i64, Reject> {
    fn dead_letter_sink(
        self,
        producer: SharedProducer,
        topic: &str,
        errors: ErrorSlot,
    ) -> StreamVec<'scope, i64, ()> {
        let topic = topic.to_string();
        produce_stream(
            self,
            "DeadLetterSink",
            producer,
            errors,
            move |rejects, p| {
                for r in &rejects {
                    p.send(&topic, &r.source, to_json_line(r, &[]).as_bytes())?;
                }
                Ok(rejects.len())
            },
        )
    }
}
