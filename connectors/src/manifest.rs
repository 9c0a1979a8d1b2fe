//! Run events and the run manifest `_runs/<run-id>.json`, written last by worker 0
//! once every partition and the rejects file are durable.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

use crate::decode::Chunk;
use crate::parquet::PartitionWritten;
use crate::store::Location;
use crate::sync::ErrorSlot;

/// What one source worker read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSummary {
    /// Global worker index.
    pub worker: usize,
    /// Rows read, accepted or rejected.
    pub rows: u64,
    /// Records accepted.
    pub records: u64,
    /// Records rejected by the decoders.
    pub rejects: u64,
    /// Least event time accepted.
    pub min_ts: Option<i64>,
    /// Greatest event time accepted.
    pub max_ts: Option<i64>,
}

/// What the rejects writer wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectsSummary {
    /// Path relative to the output root.
    pub path: String,
    /// Rejected records.
    pub total: u64,
    /// Count per reason (`parse_error`, `duplicate`, ...).
    pub by_reason: BTreeMap<String, u64>,
}

/// Facts that flow to the manifest writer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunEvent {
    /// A source worker finished.
    Source(SourceSummary),
    /// A partition file is durable.
    Partition(PartitionWritten),
    /// The rejects file is durable.
    Rejects(RejectsSummary),
    /// A worker saw every output of the run durable (see [`ReportStatus`]).
    Worker(WorkerStatus),
}

/// The end-of-run report of one worker: the first fatal error of its process, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Global worker index.
    pub worker: usize,
    /// Index of the worker's process.
    pub process: usize,
    /// The process's first fatal error.
    pub error: Option<String>,
}

impl RunEvent {
    /// An empty source summary of `worker`.
    pub fn source(worker: usize) -> RunEvent {
        RunEvent::Source(SourceSummary {
            worker,
            ..Default::default()
        })
    }

    /// Counts a chunk into a source summary (no-op for other events).
    pub fn add_chunk(&mut self, chunk: &Chunk) {
        if let RunEvent::Source(s) = self {
            s.rows += chunk.rows;
            s.records += chunk.records() as u64;
            s.rejects += chunk.rejects.len() as u64;
            for b in &chunk.batches {
                // Plain min/max folds per column (they vectorize), then one update.
                let bounds = |(lo, hi): (i64, i64), t: i64| (lo.min(t), hi.max(t));
                let all = (i64::MAX, i64::MIN);
                let trades = b.trades.iter().map(|t| t.ts_ms).fold(all, bounds);
                let (lo, hi) = b.candles.iter().map(|c| c.ts_ms).fold(trades, bounds);
                if lo <= hi {
                    s.min_ts = Some(s.min_ts.map_or(lo, |m| m.min(lo)));
                    s.max_ts = Some(s.max_ts.map_or(hi, |m| m.max(hi)));
                }
            }
        }
    }
}

/// Facts about a run known before it starts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run id (file name of the manifest).
    pub run_id: String,
    /// `trades` or `candles`.
    pub kind: String,
    /// Input URLs, sorted.
    pub inputs: Vec<String>,
    /// Requested `--from`, epoch ms.
    pub from_ms: Option<i64>,
    /// Requested `--to`, epoch ms.
    pub to_ms: Option<i64>,
    /// Resolutions, as labels.
    pub resolutions: Vec<String>,
    /// Total workers of the run.
    pub workers: usize,
    /// Processes of the run.
    pub processes: usize,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// The feature sets the run computes; each gets an entry, even when empty.
    #[serde(skip)]
    pub feature_sets: Vec<String>,
}

/// Per feature set totals in the manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSummary {
    /// Rows written.
    pub rows: u64,
    /// Partition files written.
    pub partitions: u64,
    /// Bytes written.
    pub bytes: u64,
    /// `sha256:` of the sorted list of `(path, file sha256)`: equal outputs, equal checksum.
    pub checksum: String,
    /// Every file of the set, sorted by path (what `promote` validates a staged run
    /// against; empty in manifests written before it was recorded).
    #[serde(default)]
    pub files: Vec<FileEntry>,
}

/// One partition file of a run, as listed in its manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the run's output root.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
}

/// `sha256:` of the sorted `(path, sha256)` pairs: a feature set's checksum.
pub fn set_checksum(files: &mut [(String, String)]) -> String {
    files.sort();
    let mut h = Sha256::new();
    for (path, sha) in files.iter() {
        h.update(format!("{path} {sha}\n").as_bytes());
    }
    format!("sha256:{}", crate::parquet::hex_digest(&h.finalize()))
}

/// The manifest written to `_runs/<run-id>.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Run facts.
    #[serde(flatten)]
    pub info: RunInfo,
    /// `succeeded` or `failed`.
    pub status: String,
    /// End time, RFC 3339.
    pub finished_at: String,
    /// Error message of a failed run.
    pub error: Option<String>,
    /// Rows read (accepted and rejected).
    pub input_rows: u64,
    /// Records accepted by the decoders.
    pub records: u64,
    /// Least and greatest event time read, epoch ms.
    pub event_range: Option<(i64, i64)>,
    /// Totals per feature set.
    pub feature_sets: BTreeMap<String, SetSummary>,
    /// Rejected records.
    pub rejects: RejectsSummary,
}

impl Manifest {
    /// A manifest from the run facts and the events seen.
    pub fn build(info: RunInfo, events: &[RunEvent], error: Option<String>) -> Manifest {
        let mut sets: BTreeMap<String, (SetSummary, Vec<(String, String)>)> = info
            .feature_sets
            .iter()
            .map(|s| (s.clone(), Default::default()))
            .collect();
        let (mut rows, mut records, mut range) = (0, 0, None::<(i64, i64)>);
        let mut rejects = RejectsSummary::default();
        for e in events {
            match e {
                RunEvent::Source(s) => {
                    rows += s.rows;
                    records += s.records;
                    if let (Some(a), Some(b)) = (s.min_ts, s.max_ts) {
                        range = Some(range.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
                    }
                }
                RunEvent::Partition(p) => {
                    let (sum, files) = sets.entry(p.set.clone()).or_default();
                    sum.rows += p.rows;
                    sum.partitions += 1;
                    sum.bytes += p.bytes;
                    files.push((p.path.clone(), p.sha256.clone()));
                    sum.files.push(FileEntry {
                        path: p.path.clone(),
                        rows: p.rows,
                        bytes: p.bytes,
                        sha256: p.sha256.clone(),
                    });
                }
                RunEvent::Rejects(r) => rejects = r.clone(),
                RunEvent::Worker(_) => {}
            }
        }
        let feature_sets = sets
            .into_iter()
            .map(|(set, (mut sum, mut files))| {
                sum.checksum = set_checksum(&mut files);
                sum.files.sort_by(|a, b| a.path.cmp(&b.path));
                (set, sum)
            })
            .collect();
        Manifest {
            info,
            status: if error.is_none() {
                "succeeded"
            } else {
                "failed"
            }
            .to_string(),
            finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            error,
            input_rows: rows,
            records,
            event_range: range,
            feature_sets,
            rejects,
        }
    }

    /// Writes the manifest to `<output>/_runs/<run-id>.json`.
    pub fn write(&self, output: &Location) -> crate::Result<String> {
        let rel = format!("_runs/{}.json", self.info.run_id);
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        output.put(&rel, bytes)?;
        Ok(output.child_url(&rel))
    }
}

/// The first failure reported by a worker, or a message when fewer than `peers`
/// workers reported: the run must not be declared a success then.
fn worker_failure(events: &[RunEvent], peers: usize) -> Option<String> {
    let statuses: Vec<&WorkerStatus> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Worker(s) => Some(s),
            _ => None,
        })
        .collect();
    if let Some(s) = statuses.iter().find(|s| s.error.is_some()) {
        let error = s.error.as_deref().unwrap_or_default();
        return Some(format!("process {} failed: {error}", s.process));
    }
    (statuses.len() < peers).then(|| {
        format!(
            "only {} of {peers} workers reported the end of the run",
            statuses.len()
        )
    })
}

/// Extension trait: each worker appends its [`WorkerStatus`] to the run events.
pub trait ReportStatus<'scope> {
    /// Passes the events through; once every event is in (all outputs of all workers
    /// are durable), adds this worker's status with the first error of `errors`. The
    /// manifest writer declares success only when every worker reported no error, so
    /// a failure on any process fails the whole run.
    fn report_status(self, process: usize, errors: ErrorSlot) -> StreamVec<'scope, i64, RunEvent>;
}

impl<'scope> ReportStatus<'scope> for StreamVec<'scope, i64, RunEvent> {
    fn report_status(self, process: usize, errors: ErrorSlot) -> StreamVec<'scope, i64, RunEvent> {
        let worker = self.scope().index();
        self.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<RunEvent>>, _, _, _>(
            timely::dataflow::channels::pact::Pipeline,
            "ReportStatus",
            move |cap, _| {
                let mut cap = Some(cap);
                move |(input, frontier), output| {
                    input.for_each(|time, data| {
                        output.session(&time).give_iterator(data.drain(..));
                    });
                    if let Some(t) = frontier.frontier().first() {
                        if let Some(c) = cap.as_mut() {
                            if c.time() < t {
                                c.downgrade(t);
                            }
                        }
                    } else if let Some(c) = cap.take() {
                        let status = WorkerStatus {
                            worker,
                            process,
                            error: errors.get(),
                        };
                        output.session(&c).give(RunEvent::Worker(status));
                    }
                }
            },
        )
    }
}

/// Extension trait: collect run events on worker 0 and write the manifest last.
pub trait WriteManifest<'scope> {
    /// When every event is in (the input is complete), worker 0 writes a `succeeded`
    /// manifest unless an error was recorded, and leaves it in `done`. The events must
    /// hold every worker's [`WorkerStatus`] (apply [`ReportStatus::report_status`]
    /// first): a status with an error, or a missing one, records an error instead of
    /// success. The returned stream carries no data; its frontier empties once the
    /// manifest is durable.
    fn write_manifest(
        self,
        output: Location,
        info: RunInfo,
        errors: ErrorSlot,
        done: Arc<Mutex<Option<Manifest>>>,
    ) -> StreamVec<'scope, i64, ()>;
}

impl<'scope> WriteManifest<'scope> for StreamVec<'scope, i64, RunEvent> {
    fn write_manifest(
        self,
        output: Location,
        info: RunInfo,
        errors: ErrorSlot,
        done: Arc<Mutex<Option<Manifest>>>,
    ) -> StreamVec<'scope, i64, ()> {
        let (index, peers) = (self.scope().index(), self.scope().peers());
        self.unary_frontier::<timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Exchange::new(|_| 0),
            "WriteManifest",
            move |cap, _| {
                let mut cap = Some(cap);
                let mut events = Vec::new();
                let mut info = Some(info);
                move |(input, frontier), _out| {
                    input.for_each(|_, data| events.append(data));
                    if let Some(t) = frontier.frontier().first() {
                        if let Some(c) = cap.as_mut() {
                            if c.time() < t {
                                c.downgrade(t);
                            }
                        }
                        return;
                    }
                    if index == 0 && !errors.is_set() {
                        if let Some(e) = worker_failure(&events, peers) {
                            errors.set(e);
                        }
                    }
                    if index == 0 && !errors.is_set() {
                        if let Some(info) = info.take() {
                            let manifest = Manifest::build(info, &events, None);
                            match manifest.write(&output) {
                                Ok(url) => tracing::info!(manifest = %url, "run manifest written"),
                                Err(e) => errors.set(format!("writing the run manifest: {e}")),
                            }
                            *done.lock().unwrap_or_else(|p| p.into_inner()) = Some(manifest);
                        }
                    }
                    cap = None;
                }
            },
        )
    }
}
