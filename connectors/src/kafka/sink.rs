//! The Kafka sinks: feature rows to `<prefix><set>.<resolution>` topics and rejects to
//! the dead-letter topic, through one idempotent producer per worker, flushed before the
//! sink's output frontier advances (a probe on that output tells when records are
//! durable on the brokers).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use operators::{FeatureSet, Reject};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::{Stream, StreamVec};
use timely::scheduling::SyncActivator;

use crate::kafka::json::rows_to_json;
use crate::kafka::{feature_topic, KafkaSettings};
use crate::metrics::WatermarkLatency;
use crate::parquet::FeatureRow;
use crate::rejects::to_json_line;
use crate::sync::ErrorSlot;
use crate::{ConnectorError, Result};

/// How long a flush may take before the sink fails the job, and the producer's default
/// message timeout.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// How much longer than the message timeout a sink waits for a round's reports.
const ROUND_GRACE: Duration = Duration::from_secs(5);

/// Counts failed deliveries so a sink can fail the job instead of losing records,
/// counts delivery reports so a flush wakes on the last one, and times acknowledged
/// feature rows against the watermark.
#[derive(Clone, Default)]
pub struct DeliveryErrors {
    failed: Arc<AtomicU64>,
    last: Arc<Mutex<Option<String>>>,
    latency: Arc<OnceLock<Arc<WatermarkLatency>>>,
    /// Delivery reports served so far (success or failure), and its wake-up.
    reported: Arc<(Mutex<u64>, Condvar)>,
    /// The sinks waiting on their own records' reports, by slot.
    slots: Arc<RwLock<Vec<Arc<SinkSlot>>>>,
}

/// Delivery reports of one sink operator's records, and how to wake it once the ones it
/// waits for are in.
struct SinkSlot {
    reported: AtomicU64,
    /// The report count the sink waits for (`u64::MAX`: none).
    target: AtomicU64,
    wake: SyncActivator,
}

impl SinkSlot {
    /// True once `target` reports are in; otherwise the sink is woken when they are.
    fn done_or_arm(&self, target: u64) -> bool {
        if self.reported.load(Ordering::SeqCst) >= target {
            return true;
        }
        self.target.store(target, Ordering::SeqCst);
        if self.reported.load(Ordering::SeqCst) >= target {
            self.target.store(u64::MAX, Ordering::SeqCst);
            return true;
        }
        false
    }
}

impl DeliveryErrors {
    /// Counts one delivery report and wakes a waiting flush.
    fn reported(&self) {
        let (count, wake) = &*self.reported;
        *count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        wake.notify_all();
    }
}

impl ClientContext for DeliveryErrors {}

impl ProducerContext for DeliveryErrors {
    /// The window end of a feature row (0 for other records).
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let window_end = opaque & !(SLOT_MASK << SLOT_SHIFT);
        let slot = (opaque >> SLOT_SHIFT) & SLOT_MASK;
        if slot > 0 {
            let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = slots.get(slot - 1) {
                let n = s.reported.fetch_add(1, Ordering::SeqCst) + 1;
                if n == s.target.load(Ordering::SeqCst) {
                    s.target.store(u64::MAX, Ordering::SeqCst);
                    let _ = s.wake.activate();
                }
            }
        }
        self.reported();
        match result {
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            }
            Ok(_) if window_end > 0 => {
                if let Some(l) = self.latency.get() {
                    if let Some(set) = FeatureSet::ALL.get(window_end >> SET_SHIFT) {
                        l.record(set.name(), (window_end & END_MASK) as i64, Instant::now());
                    }
                }
            }
            Ok(_) => {}
        }
    }
}

/// A delivery opaque holds `set index << SET_SHIFT | window end` ([`FeatureSet::index`]).
const SET_SHIFT: usize = 56;
/// Bits 48..56 of a delivery opaque: the sink slot + 1 (0: no slot).
const SLOT_SHIFT: usize = 48;
const SLOT_MASK: usize = 0xff;
const END_MASK: usize = (1 << SLOT_SHIFT) - 1;

/// The delivery opaque of a feature row of `set` ending at `window_end`.
fn row_opaque(set: FeatureSet, window_end: i64) -> usize {
    (set.index() << SET_SHIFT) | (window_end.max(0) as usize & END_MASK)
}

/// The producer type of the sinks: librdkafka's events are served by its own thread,
/// so acknowledgements are seen as they arrive.
pub type SinkProducer = rdkafka::producer::ThreadedProducer<DeliveryErrors>;

/// One idempotent producer shared by the Kafka sinks of every worker of a process, so
/// the rows that several workers write to one topic partition travel in one batch (the
/// brokers get one produce request per partition, not one per worker). Clones share the
/// producer; each sink registers its own delivery slot on its clone.
#[derive(Clone)]
pub struct SharedProducer {
    inner: Arc<SinkProducer>,
    errors: DeliveryErrors,
    /// Records queued so far by every clone; a flush waits until as many delivery
    /// reports arrived. Relaxed: a flush must cover its own thread's records, which
    /// program order makes visible; it orders nothing else.
    sent: Arc<AtomicU64>,
    /// The sink slot its records report to, shifted into place (0: none).
    slot_bits: usize,
    /// How long librdkafka tries to deliver a record before it reports a failure.
    ack_timeout: Duration,
}

impl SharedProducer {
    /// An idempotent producer (`enable.idempotence = true`, `acks = all`).
    pub fn new(settings: &KafkaSettings) -> Result<SharedProducer> {
        let errors = DeliveryErrors::default();
        let mut c = settings.client_config();
        c.set("enable.idempotence", "true");
        // Short batching by default; `[kafka.client] "linger.ms"` overrides it.
        if !settings.client.contains_key("linger.ms") {
            c.set("linger.ms", "1");
        }
        // A record the brokers have not acknowledged in time fails (its delivery report
        // wakes the waiting sink with the error) instead of holding the job.
        let set_timeout = ["message.timeout.ms", "delivery.timeout.ms"]
            .iter()
            .find_map(|k| settings.client.get(*k));
        let ack_timeout = match set_timeout.and_then(|v| v.parse::<u64>().ok()) {
            Some(ms) => Duration::from_millis(ms),
            None => FLUSH_TIMEOUT,
        };
        if set_timeout.is_none() {
            c.set("message.timeout.ms", FLUSH_TIMEOUT.as_millis().to_string());
        }
        let inner: SinkProducer = c
            .create_with_context(errors.clone())
            .map_err(|e| ConnectorError::Kafka(format!("creating a producer: {e}")))?;
        Ok(SharedProducer {
            inner: Arc::new(inner),
            errors,
            sent: Arc::new(AtomicU64::new(0)),
            slot_bits: 0,
            ack_timeout,
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

    /// Makes this producer's records report to a new slot, whose delivery reports wake
    /// `wake` once as many as it waits for are in; returns the slot.
    fn register_slot(&mut self, wake: SyncActivator) -> Result<Arc<SinkSlot>> {
        let mut slots = self.errors.slots.write().unwrap_or_else(|p| p.into_inner());
        if slots.len() >= SLOT_MASK {
            return Err(ConnectorError::Kafka(
                "too many Kafka sinks in a process".into(),
            ));
        }
        let slot = Arc::new(SinkSlot {
            reported: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            wake,
        });
        slots.push(slot.clone());
        self.slot_bits = slots.len() << SLOT_SHIFT;
        Ok(slot)
    }

    /// Queues one feature record of `set` whose window ends at `window_end` (timed
    /// from the watermark passing it to its acknowledgement when latency is measured).
    pub fn send_row(
        &self,
        topic: &str,
        key: &str,
        value: &[u8],
        window_end: Option<(FeatureSet, i64)>,
    ) -> Result<()> {
        let opaque = window_end.map_or(0, |(set, e)| row_opaque(set, e)) | self.slot_bits;
        let mut record = BaseRecord::with_opaque_to(topic, opaque)
            .key(key)
            .payload(value);
        loop {
            match self.inner.send(record) {
                Ok(()) => {
                    self.sent.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
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

    /// Fails with the last delivery error if any delivery failed since the last call.
    fn failures(&self) -> Result<()> {
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

    /// Waits until every record queued through any clone is acknowledged; an error if
    /// any delivery failed.
    ///
    /// Waits on the delivery reports that librdkafka's polling thread serves, so it
    /// returns as soon as the last one arrives (rdkafka's own `flush` would poll the
    /// already-served queue in 100 ms steps and hold the worker that long).
    pub fn flush(&self) -> Result<()> {
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        let sent = self.sent.load(Ordering::Relaxed);
        let (count, wake) = &*self.errors.reported;
        let mut reported = count.lock().unwrap_or_else(|p| p.into_inner());
        while *reported < sent {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ConnectorError::Kafka(format!(
                    "flushing: {} records not acknowledged within {FLUSH_TIMEOUT:?}",
                    sent - *reported
                )));
            }
            reported = wake
                .wait_timeout(reported, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(reported);
        self.failures()
    }
}

/// Produces every record of a stream and advances the (empty) output frontier only once
/// the brokers acknowledged every record before it, so a probe on the output tells when
/// the records are durable. The worker never waits: while one round of records is in
/// flight, input is kept back, and the last delivery report of the round wakes the
/// operator to advance and send the next round.
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
    let scope = stream.scope();
    stream.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        name,
        move |cap, info| {
            let mut cap = Some(cap);
            let wake = scope.worker().sync_activator_for(info.address.to_vec());
            let activator = scope.activator_for(info.address.clone());
            // A round not acknowledged by then fails the job (librdkafka should have
            // reported a failure at its message timeout already).
            let round_limit = producer.ack_timeout + ROUND_GRACE;
            let mut producer = producer;
            let slot = match producer.register_slot(wake) {
                Ok(slot) => Some(slot),
                Err(e) => {
                    errors.set(e.to_string());
                    None
                }
            };
            let mut kept: Vec<Vec<T>> = Vec::new();
            let mut sent = 0u64;
            // The round in flight: reports to wait for, the frontier to move to, and
            // when it was sent.
            let mut waiting: Option<(u64, Option<i64>, Instant)> = None;
            move |(input, frontier), _out| {
                input.for_each(|_time, data| kept.push(std::mem::take(data)));
                let Some(slot) = slot.as_ref() else { return };
                loop {
                    if errors.is_set() {
                        kept.clear();
                        return;
                    }
                    if let Some((target, to, at)) = waiting {
                        if !slot.done_or_arm(target) {
                            if at.elapsed() >= round_limit {
                                errors.set(format!(
                                    "{} records not acknowledged within {round_limit:?}",
                                    target - slot.reported.load(Ordering::SeqCst)
                                ));
                            }
                            return;
                        }
                        waiting = None;
                        if let Err(e) = producer.failures() {
                            errors.set(e.to_string());
                            return;
                        }
                        match (to, cap.as_mut()) {
                            (Some(t), Some(c)) if t > *c.time() => c.downgrade(&t),
                            (None, _) => cap = None,
                            _ => {}
                        }
                    }
                    let Some(c) = cap.as_mut() else { return };
                    let f = frontier.frontier().first().copied();
                    if kept.is_empty() {
                        match f {
                            Some(t) if t > *c.time() => c.downgrade(&t),
                            Some(_) => {}
                            None => cap = None,
                        }
                        return;
                    }
                    for data in kept.drain(..) {
                        match encode(data, &producer) {
                            Ok(n) => sent += n as u64,
                            Err(e) => errors.set(e.to_string()),
                        }
                    }
                    waiting = Some((sent, f, Instant::now()));
                    activator.activate_after(round_limit);
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
        let prefix = topic_prefix.to_string();
        let name = format!("KafkaSink({})", R::SET);
        // (resolution label, topic) of the resolutions seen so far.
        let mut topics: Vec<(String, String)> = Vec::new();
        produce_stream(self, &name, producer, errors, move |rows, p| {
            let records = rows_to_json(&rows)?;
            for r in &records {
                let row = &rows[r.row];
                let i = match topics.iter().position(|(res, _)| *res == r.resolution) {
                    Some(i) => i,
                    None => {
                        let topic = feature_topic(&prefix, R::SET.name(), &r.resolution);
                        topics.push((r.resolution.clone(), topic));
                        topics.len() - 1
                    }
                };
                // Restatements are not timed: the watermark passed them long ago.
                let end = (row.revision() == 0).then(|| (R::SET, row.window_end()));
                p.send_row(&topics[i].1, &r.key, r.value.as_bytes(), end)?;
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

#[cfg(test)]
#[path = "sink_tests.rs"]
mod tests;
