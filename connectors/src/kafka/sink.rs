//! The Kafka sinks: feature rows to `<prefix><set>.<resolution>` topics and rejects to
//! the dead-letter topic, through one idempotent producer per worker, flushed before the
//! sink's output frontier advances (a probe on that output tells when records are
//! durable on the brokers).

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
use crate::kafka::KafkaSettings;
use crate::parquet::FeatureRow;
use crate::rejects::to_json_line;
use crate::sync::ErrorSlot;
use crate::{ConnectorError, Result};

/// How long a flush may take before the sink fails the job.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Counts failed deliveries so a sink can fail the job instead of losing records.
#[derive(Clone, Default)]
pub struct DeliveryErrors {
    failed: Arc<AtomicU64>,
    last: Arc<Mutex<Option<String>>>,
}

impl ClientContext for DeliveryErrors {}

impl ProducerContext for DeliveryErrors {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
    }
}

/// The producer type of the sinks.
pub type SinkProducer = rdkafka::producer::BaseProducer<DeliveryErrors>;

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

    /// Queues one record, waiting while librdkafka's queue is full.
    pub fn send(&self, topic: &str, key: &str, value: &[u8]) -> Result<()> {
        let mut record = BaseRecord::to(topic).key(key).payload(value);
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.inner.poll(Duration::from_millis(10));
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
                } else {
                    producer.inner.poll(Duration::ZERO);
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
            for r in &records {
                topic.clear();
                topic.push_str(&prefix);
                topic.push_str(&r.resolution);
                p.send(&topic, &r.key, r.value.as_bytes())?;
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
