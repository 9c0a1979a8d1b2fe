//! The `ParquetSink` operator: streams each lake file's rows out as they become final
//! and makes the file visible once, when the frontier has passed its end plus the
//! allowed lateness.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::{Stream, StreamVec};

use crate::metrics::WatermarkLatency;
use crate::parquet::config::Partitioning;
use crate::parquet::file::{FileKey, OpenFile};
use crate::parquet::layout::{Span, HOUR_MS};
use crate::parquet::rows::FeatureRow;
use crate::store::Location;
use crate::sync::ErrorSlot;

/// A lake file that is visible in the output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionWritten {
    /// The feature set.
    pub set: String,
    /// Path relative to the output root.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// Least window end in the file.
    pub min_window_end: i64,
    /// Greatest window end in the file.
    pub max_window_end: i64,
    /// The bar resolution of the file's rows, ms (for counters; not in the manifest).
    #[serde(skip)]
    pub resolution_ms: i64,
}

/// How a job writes its lake files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LakeMode {
    /// A backfill: one file per partition, made durable once, when the input ends (the
    /// run manifest is written after that).
    Backfill,
    /// A live job: a daily or monthly partition is filled hour by hour, one file per
    /// hour, so the lake is at most an hour (plus the allowed lateness) behind and a
    /// restart replays at most an hour; files are durable before the sink's frontier
    /// passes them (Kafka offsets are committed behind that frontier).
    Live,
}

/// Where and how a Parquet sink writes.
#[derive(Clone, Debug)]
pub struct LakeSpec {
    /// The lake's root.
    pub output: Location,
    /// The time partition of each resolution.
    pub partitioning: Partitioning,
    /// Allowed lateness, ms: a file is complete once the frontier passed its end plus
    /// this.
    pub lateness_ms: i64,
    /// Backfill or live.
    pub mode: LakeMode,
    /// Times rows reaching the sink against the watermark (when metrics are served).
    pub delay: Arc<WatermarkLatency>,
}

impl LakeSpec {
    /// The file a row of `resolution_ms` ending at `window_end` goes to.
    pub fn file_of(&self, resolution_ms: i64, window_end: i64) -> FileKey {
        let span = self.partitioning.span(resolution_ms);
        let partition = span.start(window_end);
        let (start, end) = match (self.mode, span) {
            (LakeMode::Live, Span::Day | Span::Month) => {
                let hour = Span::Hour.start(window_end);
                (hour, hour + HOUR_MS)
            }
            _ => (partition, span.end(partition)),
        };
        FileKey {
            resolution_ms,
            span,
            partition,
            start,
            end,
        }
    }
}

/// The file of the last row looked up: rows come in long runs of one file, and a
/// month's bounds cost a calendar computation.
struct FileCache {
    spec: LakeSpec,
    last: Option<FileKey>,
}

impl FileCache {
    fn file_of(&mut self, resolution_ms: i64, window_end: i64) -> FileKey {
        match self.last {
            Some(k)
                if k.resolution_ms == resolution_ms
                    && k.start <= window_end
                    && window_end < k.end =>
            {
                k
            }
            _ => {
                let k = self.spec.file_of(resolution_ms, window_end);
                self.last = Some(k);
                k
            }
        }
    }
}

/// Extension trait: write a stream of feature rows as Parquet files.
pub trait ParquetSink<'scope, R: FeatureRow> {
    /// Writes rows as `spec` says; emits one record per file written. Files are spread
    /// over workers by `(resolution, file start)`.
    fn parquet_sink(
        self,
        spec: LakeSpec,
        errors: ErrorSlot,
    ) -> StreamVec<'scope, i64, PartitionWritten>
    where
        Self: Sized,
    {
        self.parquet_sink_skipping(spec, errors, Default::default())
    }

    /// As [`ParquetSink::parquet_sink`], but drops the rows of the partitions whose
    /// directory (relative to the output root) is in `skip`: a resumed backfill's
    /// partitions already durable.
    fn parquet_sink_skipping(
        self,
        spec: LakeSpec,
        errors: ErrorSlot,
        skip: Arc<HashSet<String>>,
    ) -> StreamVec<'scope, i64, PartitionWritten>;
}

/// Work done per activation before the sink yields to the worker (and is activated
/// again): the worker keeps stepping and telling the others its progress.
const BUDGET: Duration = Duration::from_millis(20);

impl<'scope, R: FeatureRow> ParquetSink<'scope, R> for Stream<'scope, i64, Vec<R>> {
    fn parquet_sink_skipping(
        self,
        spec: LakeSpec,
        errors: ErrorSlot,
        skip: Arc<HashSet<String>>,
    ) -> StreamVec<'scope, i64, PartitionWritten> {
        // Consecutive files of one set and resolution go to consecutive workers (timely
        // takes the route modulo the worker count), so the writing is spread evenly as
        // they close; the start is offset by a hash of (set, resolution).
        let set_hash = operators::route::stable_hash(R::SET.name().as_bytes());
        let mut routes = FileCache {
            spec: spec.clone(),
            last: None,
        };
        let route = move |r: &R| {
            let key = routes.file_of(r.resolution_ms(), r.window_end());
            let res = (key.resolution_ms as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            ((set_hash ^ res) >> 32).wrapping_add(key.start.div_euclid(HOUR_MS) as u64)
        };
        let name = format!("ParquetSink({})", R::SET);
        let scope = self.scope();
        self.unary_frontier(Exchange::new(route), &name, move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut cap = Some(cap);
            let mut files: rustc_hash::FxHashMap<FileKey, OpenFile<R>> = Default::default();
            let mut skipped: rustc_hash::FxHashSet<FileKey> = Default::default();
            let mut unsynced = false;
            let mut file_cache = FileCache {
                spec: spec.clone(),
                last: None,
            };
            move |(input, frontier), out| {
                input.for_each(|_time, data| {
                    spec.delay.record_rows(
                        "parquet",
                        R::SET.name(),
                        data.iter().map(|r| r.window_end()),
                        Instant::now(),
                    );
                    for row in data.drain(..) {
                        let key = file_cache.file_of(row.resolution_ms(), row.window_end());
                        if !skip.is_empty() && !files.contains_key(&key) {
                            if skipped.contains(&key) {
                                continue;
                            }
                            if skip.contains(&key.span.dir(
                                R::SET.name(),
                                key.resolution_ms,
                                key.partition,
                            )) {
                                skipped.insert(key);
                                continue;
                            }
                        }
                        files
                            .entry(key)
                            .or_insert_with(|| OpenFile::new(key))
                            .push(row);
                    }
                });
                let f = frontier.frontier().first().copied().unwrap_or(i64::MAX);
                // A row ending at `w` is final once `w + lateness < f`.
                let final_below = f.saturating_sub(spec.lateness_ms);
                let started = Instant::now();
                let mut written = Vec::new();
                // The oldest files first, so that the durable frontier moves in order.
                let mut keys: Vec<FileKey> = files.keys().copied().collect();
                keys.sort_unstable_by_key(|k| (k.end, k.resolution_ms, k.start));
                let mut more = false;
                for key in keys {
                    if errors.is_set() {
                        // The job winds down: rows are dropped unwritten.
                        files.clear();
                        break;
                    }
                    if started.elapsed() > BUDGET {
                        more = true;
                        break;
                    }
                    let complete = key.end.saturating_add(spec.lateness_ms) <= f;
                    let result = if complete {
                        let file = files.remove(&key).expect("listed above");
                        file.commit(&spec.output).map(|w| {
                            unsynced |= w.is_some();
                            written.extend(w)
                        })
                    } else if let Some(file) = files.get_mut(&key) {
                        file.advance(final_below, &spec.output)
                    } else {
                        Ok(())
                    };
                    if let Err(e) = result {
                        errors.set(format!("writing {}: {e}", R::SET));
                    }
                }
                // Files are made durable before the frontier passes them: once at the
                // end of a backfill, and at every step of a live job.
                let moving = !more && cap.as_ref().is_some_and(|c| *c.time() < f);
                let sync_now = unsynced
                    && moving
                    && (spec.mode == LakeMode::Live || f == i64::MAX)
                    && !errors.is_set();
                if sync_now {
                    match spec.output.sync() {
                        Ok(()) => unsynced = false,
                        Err(e) => errors.set(format!("syncing the lake: {e}")),
                    }
                }
                if let Some(c) = cap.as_mut() {
                    if !written.is_empty() {
                        out.session(c).give_iterator(written.into_iter());
                    }
                    if more {
                        activator.activate();
                    } else if unsynced && spec.mode == LakeMode::Live {
                        // The sync failed: the frontier stays until the job stops.
                    } else if f == i64::MAX {
                        cap = None;
                    } else if *c.time() < f {
                        c.downgrade(&f);
                    }
                }
            }
        })
    }
}

/// Lower-case hex of `bytes` (a digest).
pub fn hex_digest(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
