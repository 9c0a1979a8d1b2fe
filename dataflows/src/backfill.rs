//! The backfill run: file sources into the feature graph, Parquet and dead-letter sinks,
//! and the run manifest written last.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connectors::chart::ChartSpec;
use connectors::decode::DecodeOptions;
use connectors::files::{FileSource, FileSourceConfig, SourceProgress, Unit};
use connectors::jobs::journal::{Durable, JournalParts};
use connectors::manifest::{Manifest, ReportStatus, RunEvent, RunInfo, WriteManifest};
use connectors::metrics::Metrics;
use connectors::parquet::{
    FeatureRow, LakeMode, LakeSpec, ParquetSink, PartitionWritten, Partitioning,
};
use connectors::rejects::WriteRejects;
use connectors::store::Location;
use connectors::sync::ErrorSlot;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::vec::ToStream;
use timely::dataflow::operators::{Concat, Inspect, Probe};
use timely::dataflow::StreamVec;
use timely::worker::Worker;

use crate::graph::{attach_charts, features, FeatureConfig, SetSinks};
use crate::progress::{MetricsPush, ProcessLeader, Reporter, WorkerStats};

/// Everything a backfill worker needs; shared by all workers of a process.
#[derive(Clone, Debug)]
pub struct BackfillJob {
    /// Sorted input URLs (file index = position).
    pub inputs: Arc<Vec<String>>,
    /// Units of reading, identical in every process.
    pub units: Vec<Unit>,
    /// How to decode inputs.
    pub decode: DecodeOptions,
    /// Keep events with `from_ms <= ts < to_ms`.
    pub from_ms: i64,
    /// See `from_ms`.
    pub to_ms: i64,
    /// Rows per source chunk.
    pub chunk_rows: usize,
    /// Download directory for remote inputs.
    pub scratch: PathBuf,
    /// The output root.
    pub output: Location,
    /// The lake's time partition per resolution.
    pub partitioning: Partitioning,
    /// Feature settings.
    pub features: FeatureConfig,
    /// The chart sink, when `[sinks.charts]` is enabled.
    pub charts: Option<ChartSpec>,
    /// Facts for the manifest.
    pub info: RunInfo,
    /// Progress log interval.
    pub progress_interval: Duration,
    /// Show a progress bar on a terminal.
    pub progress_bar: bool,
    /// The source the files are read as (its name labels the metrics).
    pub source_name: String,
    /// The process's metrics, when served.
    pub metrics: Option<Arc<Metrics>>,
    /// A resumed run's partitions already durable: their directories are not written
    /// again and their records go into the manifest as they are.
    pub durable: Durable,
}

/// Process-wide state of a backfill.
#[derive(Clone, Debug, Default)]
pub struct BackfillShared {
    /// The first fatal error.
    pub errors: ErrorSlot,
    /// Source progress of this process.
    pub progress: Arc<SourceProgress>,
    /// The process's first worker reports the process's counters.
    pub leader: ProcessLeader,
    /// The manifest, once worker 0 wrote it.
    pub manifest: Arc<Mutex<Option<Manifest>>>,
}

/// Builds and runs the backfill dataflow on this worker until it completes or fails.
pub fn run_worker(worker: &mut Worker, job: &BackfillJob, shared: &BackfillShared) {
    let index = worker.index();
    let mut reporter = Reporter::new(index, job.progress_interval, job.progress_bar);
    reporter.leader = shared.leader.claim();
    reporter.metrics = job
        .metrics
        .clone()
        .map(|m| MetricsPush::new(m, vec![job.source_name.clone()]));
    let (bars_stats, stats) = (reporter.bars.clone(), reporter.stats.clone());
    let errors = shared.errors.clone();
    let (probe, watermark) = worker.dataflow::<i64, _, _>(|scope| {
        let config = FileSourceConfig {
            units: job.units.clone(),
            decode: job.decode.clone(),
            from_ms: job.from_ms,
            to_ms: job.to_ms,
            chunk_rows: job.chunk_rows,
            slack_pieces: if job.features.needs_grid() { 2 } else { 0 },
            pairwise: job.features.comoments.correlation,
            scratch: job.scratch.clone(),
        };
        // Back-pressure: the sources read only a few chunks past what the bars finished.
        let consumed = ProbeHandle::new();
        let (batches, source_rejects, source_events) = scope.file_source(
            config,
            shared.progress.clone(),
            errors.clone(),
            Some(consumed.clone()),
        );
        let (watermark, batches) = batches.probe();
        let mut out = features(batches, source_rejects, &job.features, bars_stats, None);
        out.bars = out.bars.probe_with(&consumed);
        // Charts carry no rows into the manifest, but it waits for them.
        let charts = job.charts.clone().map(|spec| {
            attach_charts(
                &out.bars,
                out.indicators.as_ref(),
                spec,
                errors.clone(),
                stats.clone(),
            )
            .flat_map(|_| None::<RunEvent>)
        });
        let mut sinks = LakeSinks {
            lake: LakeSpec {
                output: job.output.clone(),
                partitioning: job.partitioning,
                lateness_ms: 0,
                mode: LakeMode::Backfill,
                delay: shared.progress.latency.clone(),
            },
            errors: errors.clone(),
            stats: stats.clone(),
            written: None,
            skip: Arc::new(job.durable.skip_dirs()),
        };
        let counted = stats.clone();
        let rejects = out
            .attach_sinks(&mut sinks)
            .inspect(move |r| counted.borrow_mut().reject(0, r.reason));
        // Back-pressure from the lake: the sources also wait for the Parquet sinks, so
        // rows routed to the worker that writes their file do not queue without bound.
        let written = sinks
            .written
            .expect("the bars sink is always attached")
            .probe_with(&consumed);
        // The journal records each file as it becomes visible; a resumed run's durable
        // files enter the manifest from worker 0 as if written again.
        let prior = if index == 0 {
            job.durable.parts.clone()
        } else {
            Vec::new()
        };
        let events = written
            .journal(job.output.clone(), job.info.run_id.clone(), errors.clone())
            .concat(prior.to_stream(scope))
            .map(RunEvent::Partition)
            .concat(source_events)
            .concat(rejects.write_rejects(job.output.clone(), job.inputs.clone(), errors.clone()));
        let events = match charts {
            Some(c) => events.concat(c),
            None => events,
        };
        let threads = (job.info.workers / job.info.processes.max(1)).max(1);
        let done = events
            .report_status(index / threads, errors.clone())
            .write_manifest(
                job.output.clone(),
                job.info.clone(),
                errors.clone(),
                shared.manifest.clone(),
            )
            .probe()
            .0;
        (done, watermark)
    });
    while !probe.done() && !errors.is_set() {
        worker.step_or_park(Some(Duration::from_millis(20)));
        reporter.tick(&watermark, Some(&shared.progress), false);
    }
    reporter.tick(&watermark, Some(&shared.progress), true);
    reporter.finish();
}

/// The backfill's sinks: every set to the Parquet lake (a backfill's partitions are
/// final when the input ends: no lateness), counting rows as `parquet:<set>`.
struct LakeSinks<'scope> {
    lake: LakeSpec,
    errors: ErrorSlot,
    stats: Rc<RefCell<WorkerStats>>,
    written: Option<StreamVec<'scope, i64, PartitionWritten>>,
    skip: Arc<HashSet<String>>,
}

impl<'scope> SetSinks<'scope> for LakeSinks<'scope> {
    fn attach<R: FeatureRow>(&mut self, rows: StreamVec<'scope, i64, R>) {
        let counted = self.stats.clone();
        let w = rows
            .parquet_sink_skipping(self.lake.clone(), self.errors.clone(), self.skip.clone())
            .inspect(move |p: &PartitionWritten| {
                counted
                    .borrow_mut()
                    .rows("parquet", R::SET, p.resolution_ms, p.rows)
            });
        self.written = Some(match self.written.take() {
            Some(prev) => prev.concat(w),
            None => w,
        });
    }
}
