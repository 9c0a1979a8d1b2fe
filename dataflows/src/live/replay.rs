//! The end of a Kafka reprocess (`run --from TIME`): what the sources read and the lake
//! files and rejects written become run events, and worker 0 writes the run manifest
//! once every output is durable (lake files written, topic rows acknowledged), as a
//! backfill's.

use std::sync::Arc;

use connectors::manifest::{ReportStatus, RunEvent, SourceSummary, WriteManifest};
use connectors::parquet::PartitionWritten;
use connectors::rejects::WriteRejects;
use operators::{Reject, SymbolBatch};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concat, Probe};
use timely::dataflow::StreamVec;

use super::{LiveJob, LiveShared};

/// The streams a reprocess's manifest is made of.
pub(super) struct ReplayOutputs<'s> {
    /// Every batch the sources emitted.
    pub batches: StreamVec<'s, i64, SymbolBatch>,
    /// Every reject (sources and graph).
    pub rejects: Vec<StreamVec<'s, i64, Reject>>,
    /// Every lake file written.
    pub written: Vec<StreamVec<'s, i64, PartitionWritten>>,
    /// Every sink's durability (Kafka rows acknowledged, lake files written): the
    /// manifest waits for all of them.
    pub durable: Vec<StreamVec<'s, i64, ()>>,
}

/// Writes the rejects file and the run manifest of a reprocess; the returned probe is
/// done once the manifest is durable.
pub(super) fn write_manifest<'s>(
    outputs: ReplayOutputs<'s>,
    job: &LiveJob,
    shared: &LiveShared,
) -> ProbeHandle<i64> {
    let info = job
        .replay
        .clone()
        .expect("write_manifest is only called for a reprocess");
    let errors = shared.errors.clone();
    let scope = outputs.batches.scope();
    let worker = scope.index();
    let topics: Vec<String> = job.sources.iter().map(|s| s.topic.clone()).collect();
    let mut rejects = outputs.rejects.into_iter();
    let first = rejects.next().expect("every source has a reject stream");
    let rejects = rejects.fold(first, |a, b| a.concat(b));
    let mut events = tally(outputs.batches, worker).concat(rejects.write_rejects(
        job.output.clone(),
        Arc::new(topics),
        errors.clone(),
    ));
    for w in outputs.written {
        events = events.concat(w.map(RunEvent::Partition));
    }
    for d in outputs.durable {
        events = events.concat(d.flat_map(|_| None::<RunEvent>));
    }
    let threads = (info.workers / info.processes.max(1)).max(1);
    events
        .report_status(worker / threads, errors.clone())
        .write_manifest(job.output.clone(), info, errors, shared.manifest.clone())
        .probe()
        .0
}

/// One [`RunEvent::Source`] per worker once its sources ended: records read and their
/// event-time range.
fn tally<'s>(
    batches: StreamVec<'s, i64, SymbolBatch>,
    worker: usize,
) -> StreamVec<'s, i64, RunEvent> {
    batches.unary_frontier(Pipeline, "ReplayTally", move |cap, _| {
        let mut cap = Some(cap);
        let mut sum = SourceSummary {
            worker,
            ..Default::default()
        };
        move |(input, frontier), out| {
            input.for_each(|_, data| {
                for b in data.iter() {
                    let times = b
                        .trades
                        .iter()
                        .map(|t| t.ts_ms)
                        .chain(b.candles.iter().map(|c| c.ts_ms))
                        .chain(b.book.iter().map(|r| r.ts_ms));
                    for ts in times {
                        sum.records += 1;
                        sum.min_ts = Some(sum.min_ts.map_or(ts, |m| m.min(ts)));
                        sum.max_ts = Some(sum.max_ts.map_or(ts, |m| m.max(ts)));
                    }
                }
            });
            if frontier.is_empty() {
                if let Some(c) = cap.take() {
                    sum.rows = sum.records;
                    out.session(&c).give(RunEvent::Source(sum.clone()));
                }
            } else if let (Some(c), Some(t)) = (cap.as_mut(), frontier.frontier().first()) {
                if c.time() < t {
                    c.downgrade(t);
                }
            }
        }
    })
}
