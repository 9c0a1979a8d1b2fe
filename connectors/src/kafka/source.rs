//! The `KafkaSource` operator: reads this worker's share of a topic's partitions, woken
//! by librdkafka when a partition queue becomes non-empty, and emits per-symbol batches
//! under a capability held at the event-time watermark. Offsets are committed only for
//! records whose outputs are durable in every sink (see [`CommitTracker`]).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use operators::{Reject, SymbolBatch};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::{Scope, StreamVec};

use crate::checkpoint::CheckpointStore;
use crate::decode::{Chunk, Kind};
use crate::kafka::lag::LagWatcher;
use crate::kafka::message::Ctx;
use crate::kafka::offsets::{checkpoint, open_partitions, DoneRule};
use crate::kafka::{CommitTracker, KafkaSettings, Replay, Watermarks};
use crate::pace::{HoldClock, Pacer, HOLD_RETRY};
use crate::sync::ErrorSlot;

/// Settings of a Kafka trade/candle source.
#[derive(Clone, Debug)]
pub struct KafkaSourceConfig {
    /// Brokers and client properties.
    pub settings: KafkaSettings,
    /// The source's name (consumer group `marketflow.<name>`, topic `dlq.<name>`).
    pub name: String,
    /// The topic read.
    pub topic: String,
    /// Every partition of the topic; partition `partitions[i]` is read by worker `i % peers`.
    pub partitions: Vec<i32>,
    /// Trades or candles.
    pub kind: Kind,
    /// Prefix added to every symbol.
    pub symbol_prefix: String,
    /// Watermark = min over live partitions of max event time − this.
    pub max_out_of_orderness_ms: i64,
    /// A partition silent this long stops holding the watermark back.
    pub idle_timeout: Duration,
    /// When a record's outputs are durable.
    pub done: DoneRule,
    /// Where this source records its offsets at each checkpoint cut, and where it resumes.
    pub checkpoints: SourceCheckpoints,
    /// Messages taken from one partition per activation.
    pub max_poll: usize,
    /// A bounded re-read of a time range (`run --from`): the partitions start at its
    /// offsets, only records of the range are kept, nothing is committed, and the
    /// source ends (its outputs become final) once every partition is past the range.
    pub replay: Option<Replay>,
    /// The job computes a pairwise set (correlation): its rows out grow with the
    /// symbols, so the source holds off reading at fewer records in flight ([`Pacer`]).
    pub pairwise: bool,
}

/// A source's side of checkpoints.
#[derive(Clone, Debug)]
pub struct SourceCheckpoints {
    /// The job's checkpoints.
    pub store: CheckpointStore,
    /// Event time between cuts, ms (a whole number of hours).
    pub interval_ms: i64,
    /// The cut restored from, with the first offset to read per partition.
    pub restored: Option<(i64, std::collections::HashMap<i32, i64>)>,
}

/// Consumer lag of one partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionLag {
    /// The next offset this job will read.
    pub next: i64,
    /// The partition's high watermark when last asked.
    pub high: i64,
    /// The partition's low watermark when last asked (records below it are gone).
    pub low: i64,
}

impl PartitionLag {
    /// True when records are known to wait in the partition: its high watermark is past
    /// the next offset to read (and past what retention deleted).
    pub fn unread(&self) -> bool {
        self.high > self.next.max(self.low)
    }
}

/// Live counters shared by the sources of one process (for the progress line).
#[derive(Debug, Default)]
pub struct LiveProgress {
    /// Largest event time seen by any source of this process (idle partitions follow it).
    pub max_ts: AtomicI64,
    /// Records accepted.
    pub records: AtomicU64,
    /// Records rejected by the sources.
    pub rejects: AtomicU64,
    /// Records skipped after a restart because their outputs were already durable.
    pub skipped: AtomicU64,
    /// Lag per `topic/partition`.
    pub lag: Mutex<BTreeMap<String, PartitionLag>>,
    /// Records accepted per source name (see [`LiveProgress::source_counter`]).
    pub by_source: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    /// Set on SIGINT/SIGTERM: stop reading, let in-flight work finish.
    pub stop: AtomicBool,
    /// Delay from the watermark passing a window's end to its rows on the topics.
    pub latency: Arc<crate::metrics::WatermarkLatency>,
    /// Microseconds the sources of this process held off reading because the sinks
    /// were behind (summed over sources and workers).
    pub held_us: AtomicU64,
}

impl LiveProgress {
    /// The counter of records accepted by the source named `name` (shared by its
    /// operators on every worker of the process).
    pub fn source_counter(&self, name: &str) -> Arc<AtomicU64> {
        self.by_source
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Fresh counters.
    pub fn new() -> LiveProgress {
        LiveProgress {
            max_ts: AtomicI64::new(i64::MIN),
            ..LiveProgress::default()
        }
    }
}

/// Probes the source consults.
#[derive(Clone)]
pub struct SourceProbes {
    /// On every sink's output: passes a time once all outputs before it are durable.
    pub durable: ProbeHandle<i64>,
    /// On the sources' output: the job's watermark.
    pub watermark: ProbeHandle<i64>,
}

/// How often the source stores its partitions' next offsets for the lag.
const LAG_INTERVAL: Duration = Duration::from_secs(1);
/// How often the source looks at the durable frontier to commit offsets.
const COMMIT_INTERVAL: Duration = Duration::from_millis(500);

/// Extension trait on a scope: add a Kafka source.
pub trait KafkaSource<'scope> {
    /// Reads this worker's partitions. Returns per-symbol batches and rejects (as data,
    /// timely time = the watermark when read). Offsets are committed for records whose
    /// outputs the `durable` probe has passed. Once
    /// `progress.stop` is set the source reads no more, waits until every sink is
    /// durable up to its watermark, commits, and then sets `stopped`.
    fn kafka_source(
        self,
        config: KafkaSourceConfig,
        progress: Arc<LiveProgress>,
        errors: ErrorSlot,
        probes: SourceProbes,
        stopped: Rc<Cell<bool>>,
    ) -> (
        StreamVec<'scope, i64, SymbolBatch>,
        StreamVec<'scope, i64, Reject>,
    );
}

/// Bookkeeping of one assigned partition.
pub(super) struct PartState {
    /// The partition id.
    pub(super) id: i32,
    /// `topic/partition`.
    pub(super) label: String,
    /// Which offsets may be committed.
    pub(super) tracker: CommitTracker,
    /// Records whose outputs were durable before a restart are skipped.
    pub(super) skip_below: i64,
    /// The next offset to read.
    pub(super) next: i64,
}

impl<'scope> KafkaSource<'scope> for Scope<'scope, i64> {
    fn kafka_source(
        self,
        config: KafkaSourceConfig,
        progress: Arc<LiveProgress>,
        errors: ErrorSlot,
        probes: SourceProbes,
        stopped: Rc<Cell<bool>>,
    ) -> (
        StreamVec<'scope, i64, SymbolBatch>,
        StreamVec<'scope, i64, Reject>,
    ) {
        let SourceProbes {
            durable,
            watermark: job_watermark,
        } = probes;
        let name = format!("KafkaSource({})", config.topic);
        let mut builder = OperatorBuilder::new(name, self);
        let info = builder.operator_info();
        let activator = self.activator_for(info.address.clone());
        let sync = Arc::new(self.worker().sync_activator_for(info.address.to_vec()));
        let (batches_out, batches) = builder.new_output();
        let (rejects_out, rejects) = builder.new_output();
        let mut batches_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<SymbolBatch>>>::from(batches_out);
        let mut rejects_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<Reject>>>::from(rejects_out);
        let (index, peers) = (self.index(), self.peers());

        builder.build(move |caps| {
            let mut caps = Some(caps);
            let mine: Vec<i32> = config
                .partitions
                .iter()
                .copied()
                .enumerate()
                .filter(|(i, _)| i % peers == index)
                .map(|(_, p)| p)
                .collect();
            let opened = open_partitions(&config, &mine, &sync);
            let (mut consumer, mut parts) = match opened {
                Ok(Some(x)) => x,
                Ok(None) => {
                    // No partition here: hold nothing back.
                    caps = None;
                    stopped.set(true);
                    (None, Vec::new())
                }
                Err(e) => {
                    errors.set(e.to_string());
                    caps = None;
                    (None, Vec::new())
                }
            };
            let lag_watcher = consumer.as_ref().map(|_| {
                let labels = parts.iter().map(|p| (p.id, p.label.clone())).collect();
                LagWatcher::spawn(&config.settings, &config.topic, labels, progress.clone())
            });
            let latency_slot = consumer
                .as_ref()
                .map(|_| progress.latency.register_source());
            let source_accepted = progress.source_counter(&config.name);
            let started = Instant::now();
            let mut marks = Watermarks::new(
                parts.len(),
                config.max_out_of_orderness_ms,
                config.idle_timeout,
                started,
            );
            if config.replay.is_some() {
                marks = marks.holding_idle();
            }
            let mut last_commit = started;
            // Cuts up to the restored one hold the previous run's offsets: they are
            // never recorded again (this run has not read what came before its start).
            let mut last_cut: Option<i64> = config.checkpoints.restored.as_ref().map(|r| r.0);
            let mut last_lag = started - LAG_INTERVAL;
            let mut chunk = Chunk::default();
            let kind = config.kind;
            // Back-pressure: records read but not passed by every sink stay under a
            // budget that shrinks with the symbols seen when a pairwise set is on.
            let mut pacer = Pacer::new(Pacer::budget_for(config.pairwise, 0));
            let mut hold_clock = HoldClock::default();
            // Since when this source has left records unread (holding off, or more
            // queued than one activation takes): a partition is silent only while the
            // queue is drained, so a backlog read slowly never makes one idle.
            let mut unread_since: Option<Instant> = None;
            activator.activate();

            move |_frontiers| {
                let _watching = &lag_watcher;
                let Some(cap_vec) = caps.as_mut() else { return };
                let mut close = false;
                let Some(client) = consumer.as_ref() else {
                    return;
                };
                if errors.is_set() {
                    caps = None;
                    return;
                }
                let now = Instant::now();
                let stopping = progress.stop.load(Ordering::Relaxed);
                let watermark = *cap_vec[0].time();
                let holding = !stopping && pacer.hold(&durable, watermark, now);
                if let Some(since) = unread_since.take() {
                    // Not reading is not silence: idle clocks stood still meanwhile.
                    marks.pause(now.saturating_duration_since(since), now);
                }
                // Nor is a partition silent while the brokers hold records of it this
                // source has not received yet (a backlog fetched unevenly).
                LagWatcher::keep_unread_active(&progress, &parts, &mut marks, now);
                let held = hold_clock.tick(holding, now);
                progress
                    .held_us
                    .fetch_add(held.as_micros() as u64, Ordering::Relaxed);
                let mut more = false;
                let mut ctx = Ctx {
                    config: &config,
                    progress: &progress,
                    chunk: &mut chunk,
                    marks: &mut marks,
                    watermark,
                    now,
                    kind,
                };
                // One queue for all of this worker's partitions; librdkafka wakes the
                // operator when it becomes non-empty.
                let mut taken = 0;
                while !stopping && !holding && taken < config.max_poll {
                    let Some(r) = client.poll(Duration::ZERO) else {
                        break;
                    };
                    taken += 1;
                    match r {
                        Ok(msg) => {
                            if let Some(pi) = parts.iter().position(|p| p.id == msg.partition()) {
                                ctx.handle(pi, &mut parts[pi], &msg);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(topic = %config.topic, error = %e, "kafka consumer")
                        }
                    }
                }
                more |= taken == config.max_poll;
                if more || holding {
                    unread_since = Some(Instant::now());
                }
                let accepted = chunk.records();
                pacer.widen(config.pairwise, chunk.symbols());
                pacer.emitted(watermark, accepted as u64);
                progress
                    .records
                    .fetch_add(accepted as u64, Ordering::Relaxed);
                source_accepted.fetch_add(accepted as u64, Ordering::Relaxed);
                progress
                    .rejects
                    .fetch_add(chunk.rejects.len() as u64, Ordering::Relaxed);
                let batches = chunk.take_batches();
                if !batches.is_empty() {
                    batches_out
                        .activate()
                        .session(&cap_vec[0])
                        .give_iterator(batches.into_iter());
                }
                if !chunk.rejects.is_empty() {
                    rejects_out
                        .activate()
                        .session(&cap_vec[1])
                        .give_iterator(chunk.rejects.drain(..));
                }
                chunk.rows = 0;
                if let Some(m) = marks.max_seen() {
                    progress.max_ts.fetch_max(m, Ordering::Relaxed);
                }
                if !stopping {
                    let shared = progress.max_ts.load(Ordering::Relaxed);
                    if let Some(wm) = marks.advance(now, shared) {
                        if wm > *cap_vec[0].time() {
                            for c in cap_vec.iter_mut() {
                                c.downgrade(&wm);
                            }
                            if let Some(slot) = latency_slot {
                                progress.latency.source_watermark(slot, wm, Instant::now());
                            }
                        }
                    }
                }
                if let Some(replay) = &config.replay {
                    // A re-read commits nothing; it ends once past its range (or at
                    // the end of the topic), and its outputs then become final. A stop
                    // signal abandons it.
                    let ended = replay.passed(*cap_vec[0].time(), config.done.lateness_ms)
                        || marks.all_idle(now);
                    if ended || stopping {
                        tracing::info!(topic = %config.topic, worker = index, ended, watermark = *cap_vec[0].time(), "replay source finished");
                        caps = None;
                        if stopping {
                            stopped.set(true);
                        }
                        if let Some(c) = consumer.take() {
                            std::mem::forget(c);
                        }
                        return;
                    }
                } else if now.duration_since(last_commit) >= COMMIT_INTERVAL || stopping {
                    last_commit = now;
                    // While stopping: once the sinks are durable up to the watermark,
                    // the last commit covers everything read.
                    let drained = stopping
                        && job_watermark
                            .with_frontier(|w| w.first().is_none_or(|w| !durable.less_than(w)));
                    match checkpoint(
                        client,
                        &config,
                        &mut parts,
                        &durable,
                        &mut last_cut,
                        index == 0,
                    ) {
                        Ok(()) if drained => {
                            stopped.set(true);
                            let _ = client.unassign();
                            close = true;
                        }
                        Ok(()) => {}
                        Err(e) => {
                            tracing::warn!(topic = %config.topic, error = %e, "offset commit")
                        }
                    }
                }
                if now.duration_since(last_lag) >= LAG_INTERVAL {
                    last_lag = now;
                    for p in &parts {
                        LagWatcher::next(&progress, &p.label, p.next);
                    }
                }
                if close {
                    // Offsets are committed: drop the client without the blocking close
                    // handshake (the process is about to exit).
                    if let Some(c) = consumer.take() {
                        std::mem::forget(c);
                    }
                    return;
                }
                if more && !stopping {
                    activator.activate();
                } else if holding {
                    activator.activate_after(HOLD_RETRY);
                } else {
                    // librdkafka wakes us when data arrives; a timer covers idleness,
                    // commits and lag.
                    let mut wait = if stopping {
                        Duration::from_millis(20)
                    } else {
                        COMMIT_INTERVAL
                    };
                    if let Some(at) = marks.next_idle_at(now) {
                        wait =
                            wait.min(at.saturating_duration_since(now) + Duration::from_millis(1));
                    }
                    activator.activate_after(wait);
                }
            }
        });
        (batches, rejects)
    }
}
