//! The live job: Kafka sources into the feature graph, feature rows to Kafka topics and
//! Parquet, rejects to the dead-letter topics, offsets committed once outputs are durable.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use connectors::chart::ChartSpec;
use connectors::checkpoint::CheckpointStore;
use connectors::kafka::{
    DeadLetterSink, DoneRule, KafkaFeatureSink, KafkaSource, KafkaSourceConfig, LiveProgress,
    SharedProducer, SourceProbes,
};
use connectors::manifest::{Manifest, RunInfo};
use connectors::metrics::Metrics;
use connectors::parquet::{
    FeatureRow, LakeMode, LakeSpec, ParquetSink, PartitionWritten, Partitioning,
};
use connectors::store::Location;
use connectors::sync::ErrorSlot;
use operators::checkpoint::{Snapshot, SnapshotSink};
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::vec::{Filter, Partition};
use timely::dataflow::operators::{Concat, Inspect, Probe};
use timely::dataflow::StreamVec;
use timely::worker::Worker;

mod build;
mod replay;

pub use build::{check_topics, embedded_topics, LiveBuildError, LiveSpec, ReplaySpec};

use crate::graph::{attach_charts, features, FeatureConfig, SetSinks};
use crate::progress::{MetricsPush, ProcessLeader, Reporter, WorkerStats};

/// Everything a live worker needs; shared by all workers of a process.
#[derive(Clone, Debug)]
pub struct LiveJob {
    /// One Kafka source per configured source.
    pub sources: Vec<KafkaSourceConfig>,
    /// Feature settings.
    pub features: FeatureConfig,
    /// The chart sink, when `[sinks.charts]` is enabled.
    pub charts: Option<ChartSpec>,
    /// Parquet output root.
    pub output: Location,
    /// The lake's time partition per resolution.
    pub partitioning: Partitioning,
    /// Feature topics are `<topic_prefix><set>.<resolution>`.
    pub topic_prefix: String,
    /// Allowed lateness, ms (Parquet partitions wait for it).
    pub lateness_ms: i64,
    /// The checkpoint cut the job resumes from, if any.
    pub restored_cut: Option<i64>,
    /// Durable frontier found at start (the restored cut plus the allowed lateness):
    /// rows of Parquet partitions final at it were written before the job stopped and
    /// are not produced again.
    pub restored_frontier: Option<i64>,
    /// Where the rolling operators' snapshots are written.
    pub checkpoints: CheckpointStore,
    /// Progress log interval.
    pub progress_interval: Duration,
    /// The process's metrics, when served.
    pub metrics: Option<Arc<Metrics>>,
    /// A reprocess of a time range (`run --from`): its run facts. The sources then end
    /// past the range, the lake (the run's staging root) is written as a backfill's,
    /// one file per partition, and worker 0 writes the run manifest last.
    pub replay: Option<RunInfo>,
    /// Dead-letter topics are `<dead_letter_prefix>dlq.<source>`.
    pub dead_letter_prefix: String,
}

impl LiveJob {
    /// Whether a row ending at a window end still has to be written: false for rows of
    /// Parquet partitions that were final (durable) before a restart.
    fn not_durable_at_start(&self) -> impl Fn(i64) -> bool + Clone + 'static {
        let rule = DoneRule {
            resolutions_ms: Vec::new(),
            lateness_ms: self.lateness_ms,
        };
        let restored = self.restored_frontier;
        move |w| restored.is_none_or(|f| !rule.final_partition(w, f))
    }
}

/// Process-wide state of a live job.
#[derive(Clone, Debug)]
pub struct LiveShared {
    /// The first fatal error.
    pub errors: ErrorSlot,
    /// Live counters and the stop flag.
    pub progress: Arc<LiveProgress>,
    /// The Kafka producer every worker's sinks share.
    pub producer: ProcessProducer,
    /// The process's first worker reports the process's counters.
    pub leader: ProcessLeader,
    /// A reprocess's manifest, once worker 0 wrote it.
    pub manifest: Arc<std::sync::Mutex<Option<Manifest>>>,
}

/// The Kafka producer of a process's sinks, made by the first worker that asks for it:
/// rows that several workers write to one topic partition then share a produce request.
#[derive(Clone, Default)]
pub struct ProcessProducer(Arc<std::sync::OnceLock<Result<SharedProducer, String>>>);

impl std::fmt::Debug for ProcessProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProcessProducer")
    }
}

impl ProcessProducer {
    /// The process's producer (created with `settings` on first use), timing rows
    /// against the watermark into `progress.latency`.
    fn get(
        &self,
        settings: &connectors::kafka::KafkaSettings,
        progress: &LiveProgress,
    ) -> Result<SharedProducer, String> {
        self.0
            .get_or_init(|| {
                SharedProducer::new(settings)
                    .map(|p| p.with_latency(progress.latency.clone()))
                    .map_err(|e| e.to_string())
            })
            .clone()
    }
}

/// Builds and runs the live dataflow on this worker until it is stopped (then in-flight
/// work is finished, sinks flushed and offsets committed) or fails.
pub fn run_worker(worker: &mut Worker, job: &LiveJob, shared: &LiveShared) {
    let index = worker.index();
    let mut reporter = Reporter::new(index, job.progress_interval, false);
    reporter.live = Some(shared.progress.clone());
    reporter.leader = shared.leader.claim();
    let names = job.sources.iter().map(|s| s.name.clone()).collect();
    reporter.metrics = job.metrics.clone().map(|m| MetricsPush::new(m, names));
    let (bars_stats, stats) = (reporter.bars.clone(), reporter.stats.clone());
    let errors = shared.errors.clone();
    let producer = match shared
        .producer
        .get(&job.sources[0].settings, &shared.progress)
    {
        Ok(p) => p,
        Err(e) => {
            errors.set(e);
            return;
        }
    };
    let stopped: Vec<Rc<Cell<bool>>> = job.sources.iter().map(|_| Rc::default()).collect();
    let (watermark, finished) = worker.dataflow::<i64, _, _>(|scope| {
        let probes = SourceProbes {
            durable: ProbeHandle::new(),
            watermark: ProbeHandle::new(),
        };
        let mut batches = None;
        let mut durable_streams: Vec<StreamVec<'_, i64, ()>> = Vec::new();
        let mut all_rejects = Vec::new();
        for (i, source) in job.sources.iter().enumerate() {
            let (b, r) = scope.kafka_source(
                source.clone(),
                shared.progress.clone(),
                errors.clone(),
                probes.clone(),
                stopped[i].clone(),
            );
            batches = Some(match batches {
                None => b,
                Some(prev) => b.concat(prev),
            });
            let counted = r.inspect(count_rejects(&stats, i));
            all_rejects.push(counted.clone());
            durable_streams.push(counted.dead_letter_sink(
                producer.clone(),
                &format!("{}dlq.{}", job.dead_letter_prefix, source.name),
                errors.clone(),
            ));
        }
        let batches = batches
            .expect("at least one source")
            .probe_with(&probes.watermark);
        let no_rejects = timely::dataflow::operators::vec::ToStream::to_stream(
            Vec::<operators::Reject>::new(),
            scope,
        );
        // A reprocess is not checkpointed: it is rerun whole.
        let snapshots = job
            .replay
            .is_none()
            .then(|| snapshot_sink(&job.checkpoints, &errors, job.metrics.clone()));
        let out = features(
            batches.clone(),
            no_rejects,
            &job.features,
            bars_stats,
            snapshots,
        );
        if let Some(spec) = job.charts.clone() {
            // Charts are derived output: Kafka offsets do not wait for them. Rows of
            // partitions final before a restart are dropped as for the lake, so a
            // chart drawn before the restart is not overwritten.
            let keep = job.not_durable_at_start();
            let k = keep.clone();
            let bars = out.bars.clone().filter(move |b| k(b.window_end));
            let indicators = out
                .indicators
                .clone()
                .map(|s| s.filter(move |r| keep(r.window_end)));
            attach_charts(
                &bars,
                indicators.as_ref(),
                spec,
                errors.clone(),
                stats.clone(),
            );
        }
        let mut sinks = LiveSinks {
            job,
            producer: &producer,
            errors: &errors,
            stats: &stats,
            latency: shared.progress.latency.clone(),
            durable: durable_streams,
            written: Vec::new(),
        };
        let graph_rejects = out.attach_sinks(&mut sinks);
        let (mut durable_streams, written) = (sinks.durable, sinks.written);
        // Rejects found by the graph (duplicates) go to the dead-letter topic of the
        // source they came from.
        let topics: Vec<String> = job.sources.iter().map(|s| s.topic.clone()).collect();
        let routed = graph_rejects.partition(job.sources.len() as u64, move |r| {
            let topic = r.source.rsplit_once('/').map_or("", |(t, _)| t);
            let i = topics.iter().position(|t| t == topic).unwrap_or(0);
            (i as u64, r)
        });
        for (i, stream) in routed.into_iter().enumerate() {
            let topic = format!("{}dlq.{}", job.dead_letter_prefix, job.sources[i].name);
            let stream = stream.inspect(count_rejects(&stats, i));
            all_rejects.push(stream.clone());
            durable_streams.push(stream.dead_letter_sink(producer.clone(), &topic, errors.clone()));
        }
        let durable: Vec<_> = durable_streams
            .into_iter()
            .map(|s| s.probe_with(&probes.durable))
            .collect();
        let finished = job.replay.is_some().then(|| {
            let outputs = replay::ReplayOutputs {
                batches,
                rejects: all_rejects,
                written,
                durable,
            };
            replay::write_manifest(outputs, job, shared)
        });
        (probes.watermark, finished)
    });
    loop {
        worker.step_or_park(Some(Duration::from_millis(100)));
        reporter.tick(&watermark, None, false);
        // A reprocess ends when its manifest is durable; a stop signal abandons it.
        let done = match &finished {
            Some(p) => p.done() || shared.progress.stop.load(Ordering::Relaxed),
            None => stopped.iter().all(|s| s.get()),
        };
        if errors.is_set() || done {
            break;
        }
    }
    reporter.tick(&watermark, None, true);
    // The sources still hold their capabilities (open windows are not final and must
    // not be flushed); drop the dataflow so the worker can exit.
    for id in worker.installed_dataflows() {
        worker.drop_dataflow(id);
    }
}

/// Writes each snapshot durably before the operator moves past its cut; a failed write
/// fails the job (its offsets are then never recorded for that cut).
fn snapshot_sink(
    store: &CheckpointStore,
    errors: &ErrorSlot,
    metrics: Option<Arc<Metrics>>,
) -> SnapshotSink {
    let (store, errors) = (store.clone(), errors.clone());
    Rc::new(move |snap: Snapshot| {
        let started = Instant::now();
        let written = store.write_state(&snap);
        if let (Ok(bytes), Some(m)) = (&written, &metrics) {
            m.checkpoint(*bytes as u64, started.elapsed().as_secs_f64());
        }
        match written {
            Ok(bytes) => tracing::info!(
                cut = snap.cut,
                operator = %snap.operator,
                worker = snap.worker,
                bytes,
                ms = started.elapsed().as_millis() as u64,
                "checkpoint state written"
            ),
            Err(e) => errors.set(format!("writing checkpoint {}: {e}", snap.cut)),
        }
    })
}

/// Counts rejects of source `source` (its index) by reason.
fn count_rejects(
    stats: &Rc<std::cell::RefCell<WorkerStats>>,
    source: usize,
) -> impl FnMut(&operators::Reject) + 'static {
    let stats = stats.clone();
    move |r| stats.borrow_mut().reject(source, r.reason)
}

/// The live job's sinks: every set to its Kafka topics and the Parquet lake, each
/// sink's durability stream kept for the offsets probe.
struct LiveSinks<'a, 's> {
    job: &'a LiveJob,
    producer: &'a SharedProducer,
    errors: &'a ErrorSlot,
    stats: &'a Rc<std::cell::RefCell<WorkerStats>>,
    latency: Arc<connectors::metrics::WatermarkLatency>,
    durable: Vec<StreamVec<'s, i64, ()>>,
    /// The lake files written (a reprocess's manifest lists them).
    written: Vec<StreamVec<'s, i64, PartitionWritten>>,
}

impl<'s> SetSinks<'s> for LiveSinks<'_, 's> {
    /// Sends `rows` to the Kafka topics and the Parquet lake. Rows of partitions
    /// already final before a restart are dropped.
    fn attach<R: FeatureRow>(&mut self, rows: StreamVec<'s, i64, R>) {
        let keep = self.job.not_durable_at_start();
        let rows = rows.filter(move |r| keep(r.window_end()));
        let counted = self.stats.clone();
        let kafka = rows
            .clone()
            .inspect(move |r: &R| {
                counted
                    .borrow_mut()
                    .rows("kafka", R::SET, r.resolution_ms(), 1)
            })
            .kafka_sink(
                self.producer.clone(),
                &self.job.topic_prefix,
                self.errors.clone(),
            );
        let counted = self.stats.clone();
        let parquet = rows
            .parquet_sink(
                LakeSpec {
                    output: self.job.output.clone(),
                    partitioning: self.job.partitioning,
                    lateness_ms: self.job.lateness_ms,
                    mode: if self.job.replay.is_some() {
                        LakeMode::Backfill
                    } else {
                        LakeMode::Live
                    },
                    delay: self.latency.clone(),
                },
                self.errors.clone(),
            )
            .inspect(move |p| {
                counted
                    .borrow_mut()
                    .rows("parquet", R::SET, p.resolution_ms, p.rows)
            });
        self.durable.push(kafka);
        if self.job.replay.is_some() {
            self.written.push(parquet.clone());
        }
        self.durable
            .push(timely::dataflow::operators::vec::Map::map(parquet, |_| ()));
    }
}
