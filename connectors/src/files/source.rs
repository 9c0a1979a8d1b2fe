//! The `FileSource` operator: reads this worker's units in bounded chunks and emits
//! per-symbol batches at event time, never behind its own capability.
//!
//! A first pass over each unit without Parquet statistics records the least event
//! time of every chunk (Parquet pieces have per-block bounds from their statistics).
//! While reading, the capability is held at the least event time of everything this
//! worker has still to emit, so downstream windows close as soon as no input can fall
//! into them, files may be out of order with each other, rows may be out of order
//! within a file, and no event is ever late in a backfill.
//!
//! Back-pressure: given a probe downstream (after the bars and the Parquet sinks), the
//! source reads at most [`MAX_AHEAD_CHUNKS`] chunks past the probe's frontier (plus a
//! quarter piece when several workers read, see [`ahead_budget`]; fewer for a pairwise
//! output over many symbols, see [`width_budget`]), so memory grows neither with the
//! input nor with the width of the output. It waits by re-activating itself, never by
//! holding a lower capability.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use operators::{Reject, SymbolBatch};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::{Scope, StreamVec};

use crate::decode::{
    open, scan_piece, Chunk, DecodeOptions, Piece, RecordReader, PIECE_ROWS, SCAN_BLOCK,
};
use crate::files::plan::Unit;
use crate::manifest::RunEvent;
use crate::pace::{HoldClock, HOLD_RETRY};
use crate::store::fetch_local;
use crate::sync::ErrorSlot;

/// Settings of a file source.
#[derive(Clone, Debug)]
pub struct FileSourceConfig {
    /// All units of the run (every worker gets the same list and reads its share).
    pub units: Vec<Unit>,
    /// Decoding options (the file index is set per unit).
    pub decode: DecodeOptions,
    /// Keep records with `from_ms <= ts_ms < to_ms`.
    pub from_ms: i64,
    /// See `from_ms`.
    pub to_ms: i64,
    /// Rows per chunk (the unit of back-pressure).
    pub chunk_rows: usize,
    /// Extra Parquet pieces of read-ahead when several workers read, for graphs whose
    /// work after the bars lands unevenly on the workers (see [`ahead_budget`]).
    pub slack_pieces: usize,
    /// The graph writes a row per pair of symbols and window (the correlation
    /// matrix): the read-ahead shrinks as the symbols grow (see [`width_budget`]).
    pub pairwise: bool,
    /// Where remote inputs are downloaded.
    pub scratch: PathBuf,
}

/// Progress counters shared by the sources of one process.
#[derive(Debug, Default)]
pub struct SourceProgress {
    /// Rows this process will read (known after planning and the first pass).
    pub rows_total: AtomicU64,
    /// Rows read so far (second pass).
    pub rows_done: AtomicU64,
    /// Records accepted so far.
    pub records: AtomicU64,
    /// Rejected records so far.
    pub rejects: AtomicU64,
    /// Workers of this process that finished their first pass.
    pub workers_scanned: AtomicU64,
    /// When the sources' watermark (their least capability) passed each event time, for
    /// the watermark-to-sink delay.
    pub latency: Arc<crate::metrics::WatermarkLatency>,
    /// Microseconds the sources of this process waited for the graph and the sinks
    /// (back-pressure), summed over workers.
    pub held_us: AtomicU64,
}

/// Chunks a source may read past what the downstream probe has seen complete.
pub const MAX_AHEAD_CHUNKS: usize = 8;

/// Chunks a source of `peers` workers reading `chunk_rows` rows at a time may read past
/// the probe's frontier: [`MAX_AHEAD_CHUNKS`] (one Parquet piece), plus a quarter piece
/// and `slack_pieces` whole pieces when several workers read.
///
/// Workers read consecutive pieces of a file at once, so every reader but the one on
/// the earliest piece is about a piece ahead of the frontier by construction; without
/// the quarter piece it waits at every piece for the slowest reader (more slack gains
/// little in a bars backfill and costs memory). With rolling features, each symbol's
/// grid, indicators and co-moments run on one worker, so from one step to the next one
/// worker can be busy with them while the other would stall at the budget; two more
/// pieces let it keep reading through such a spell, for some more peak memory (over a
/// whole run both workers use about the same CPU).
///
/// ```
/// use connectors::files::{ahead_budget, MAX_AHEAD_CHUNKS};
/// assert_eq!(ahead_budget(1, 32_768, 2), MAX_AHEAD_CHUNKS);
/// assert_eq!(ahead_budget(4, 32_768, 0), MAX_AHEAD_CHUNKS + 2);
/// assert_eq!(ahead_budget(4, 32_768, 2), 3 * MAX_AHEAD_CHUNKS + 2);
/// ```
pub fn ahead_budget(peers: usize, chunk_rows: usize, slack_pieces: usize) -> usize {
    if peers > 1 {
        let piece = (PIECE_ROWS as usize).div_ceil(chunk_rows.max(1));
        MAX_AHEAD_CHUNKS
            + (PIECE_ROWS as usize / 4).div_ceil(chunk_rows.max(1))
            + slack_pieces * piece
    } else {
        MAX_AHEAD_CHUNKS
    }
}

/// Symbols up to which a pairwise output does not shrink the read-ahead.
pub const NARROW_SYMBOLS: usize = 8;

/// The read-ahead, in chunks, of a source whose graph writes a row per pair of
/// symbols and window: an input row brings about `symbols / 2` output rows, so past
/// [`NARROW_SYMBOLS`] symbols the budget shrinks in proportion (to 2 chunks at least)
/// and the rows queued ahead of the sinks stay about the same at any width. Measured
/// with -w 2: 200 symbols at 1s, 20 minutes: peak RSS 1.46 GB with 26 chunks ahead,
/// 0.43 GB with 2, same wall time; 100 symbols of 1m candles: 0.91 GB with 4 chunks
/// (16 symbols as the threshold), 0.60 GB with 2 (8 symbols), 0.94x the wall time.
///
/// ```
/// use connectors::files::width_budget;
/// assert_eq!(width_budget(26, 5), 26);
/// assert_eq!(width_budget(26, 32), 6);
/// assert_eq!(width_budget(26, 200), 2);
/// ```
pub fn width_budget(ahead: usize, symbols: usize) -> usize {
    if symbols <= NARROW_SYMBOLS {
        ahead
    } else {
        (ahead * NARROW_SYMBOLS / symbols).max(2)
    }
}

/// Lower bounds on event time, per chunk of a unit.
enum Bounds {
    /// From the piece's statistics ([`crate::decode::Piece::bound_after`]).
    Stats,
    /// One bound per chunk, from the first pass.
    PerChunk(Vec<i64>),
}

enum Phase {
    Scan {
        unit: usize,
        reader: Option<Box<dyn RecordReader>>,
        mins: Vec<i64>,
    },
    Read {
        unit: usize,
        chunk: usize,
        /// Rows of the unit read so far.
        rows: u64,
        reader: Option<Box<dyn RecordReader>>,
    },
    Done,
}

/// Extension trait on a scope: add a file source.
pub trait FileSource<'scope> {
    /// Reads the units assigned to this worker. Returns trades/candles grouped by
    /// symbol, rejected records, and one [`RunEvent::Source`] summary per worker.
    ///
    /// With `backpressure`, a probe on the stream that consumes the batches (for
    /// example the bars), the source stops reading while the probe's frontier is
    /// behind the time of the chunk it emitted [`ahead_budget`] chunks ago.
    fn file_source(
        self,
        config: FileSourceConfig,
        progress: Arc<SourceProgress>,
        errors: ErrorSlot,
        backpressure: Option<ProbeHandle<i64>>,
    ) -> (
        StreamVec<'scope, i64, SymbolBatch>,
        StreamVec<'scope, i64, Reject>,
        StreamVec<'scope, i64, RunEvent>,
    );
}

impl<'scope> FileSource<'scope> for Scope<'scope, i64> {
    fn file_source(
        self,
        config: FileSourceConfig,
        progress: Arc<SourceProgress>,
        errors: ErrorSlot,
        backpressure: Option<ProbeHandle<i64>>,
    ) -> (
        StreamVec<'scope, i64, SymbolBatch>,
        StreamVec<'scope, i64, Reject>,
        StreamVec<'scope, i64, RunEvent>,
    ) {
        let mut builder = OperatorBuilder::new("FileSource".to_owned(), self);
        let info = builder.operator_info();
        let activator = self.activator_for(info.address);
        let (batches_out, batches) = builder.new_output();
        let (rejects_out, rejects) = builder.new_output();
        let (events_out, events) = builder.new_output();
        let mut batches_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<SymbolBatch>>>::from(batches_out);
        let mut rejects_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<Reject>>>::from(rejects_out);
        let mut events_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<RunEvent>>>::from(events_out);
        let (index, peers) = (self.index(), self.peers());

        builder.build(move |caps| {
            let mut caps: Option<Vec<_>> = Some(caps);
            let mine: Vec<Unit> = config
                .units
                .iter()
                .skip(index)
                .step_by(peers)
                .cloned()
                .collect();
            let mut paths: Vec<Option<PathBuf>> = vec![None; mine.len()];
            let mut bounds: Vec<Bounds> = Vec::with_capacity(mine.len());
            // Pieces given finer bounds by reading their `ts_ms` column (wide inputs).
            let mut refined: Vec<Option<Piece>> = vec![None; mine.len()];
            let mut after: Vec<i64> = Vec::new();
            let mut phase = Phase::Scan {
                unit: 0,
                reader: None,
                mins: Vec::new(),
            };
            let mut summary = RunEvent::source(index);
            let mut chunk = Chunk::default();
            // Pre-split for the bars operator's trade shards (one per worker).
            chunk.set_shards(peers as u64);
            // Capability times of the last `ahead` chunks emitted.
            let ahead = ahead_budget(peers, config.chunk_rows, config.slack_pieces);
            let mut emitted: VecDeque<i64> = VecDeque::with_capacity(ahead + 1);
            let mut hold_clock = HoldClock::default();
            let mark = progress.latency.register_source();
            activator.activate();

            move |_frontiers| {
                if errors.is_set() {
                    caps = None;
                    return;
                }
                let Some(cap_vec) = caps.as_mut() else { return };
                let opts_for = |u: &Unit| DecodeOptions {
                    file_index: u.file_index,
                    ..config.decode.clone()
                };
                let open_unit = |u: usize,
                                 paths: &mut Vec<Option<PathBuf>>|
                 -> crate::Result<Box<dyn RecordReader>> {
                    if paths[u].is_none() {
                        paths[u] = Some(fetch_local(&mine[u].url, &config.scratch)?);
                    }
                    let path = paths[u].as_ref().expect("fetched");
                    open(path, &mine[u].url, &mine[u].piece, &opts_for(&mine[u]))
                };
                let mut waiting = false;
                let now = Instant::now();
                let result: crate::Result<()> = (|| {
                    match &mut phase {
                        Phase::Scan { unit, reader, mins } => {
                            if *unit >= mine.len() {
                                // First pass done: suffix minima over units.
                                after = vec![i64::MAX; mine.len() + 1];
                                for u in (0..mine.len()).rev() {
                                    let m = match &bounds[u] {
                                        Bounds::Stats => {
                                            mine[u].piece.bound_after(0).unwrap_or(i64::MIN)
                                        }
                                        Bounds::PerChunk(v) => {
                                            v.iter().copied().min().unwrap_or(i64::MAX)
                                        }
                                    };
                                    after[u] = after[u + 1].min(m);
                                }
                                for b in bounds.iter_mut() {
                                    if let Bounds::PerChunk(v) = b {
                                        for k in (0..v.len().saturating_sub(1)).rev() {
                                            v[k] = v[k].min(v[k + 1]);
                                        }
                                    }
                                }
                                progress.workers_scanned.fetch_add(1, Ordering::Relaxed);
                                let start = after[0].max(config.from_ms);
                                for c in cap_vec.iter_mut() {
                                    if after[0] != i64::MAX && *c.time() < start {
                                        c.downgrade(&start);
                                    }
                                }
                                phase = Phase::Read {
                                    unit: 0,
                                    chunk: 0,
                                    rows: 0,
                                    reader: None,
                                };
                                return Ok(());
                            }
                            let u = &mine[*unit];
                            if let (Some(_), None) = (u.piece.min_ts, reader.as_ref()) {
                                bounds.push(Bounds::Stats);
                                progress
                                    .rows_total
                                    .fetch_add(u.piece.rows.unwrap_or(0), Ordering::Relaxed);
                                *unit += 1;
                                return Ok(());
                            }
                            if reader.is_none() {
                                *reader = Some(open_unit(*unit, &mut paths)?);
                            }
                            let mut c = Chunk::default();
                            let more = reader
                                .as_mut()
                                .expect("opened")
                                .read_chunk(config.chunk_rows, &mut c)?;
                            progress.rows_total.fetch_add(c.rows, Ordering::Relaxed);
                            if c.rows > 0 || mins.is_empty() {
                                mins.push(c.min_ts().unwrap_or(i64::MAX));
                            }
                            if !more {
                                bounds.push(Bounds::PerChunk(std::mem::take(mins)));
                                *reader = None;
                                *unit += 1;
                            }
                        }
                        Phase::Read {
                            unit,
                            chunk: k,
                            rows,
                            reader,
                        } => {
                            let budget = if config.pairwise {
                                width_budget(ahead, chunk.symbols())
                            } else {
                                ahead
                            };
                            let oldest = emitted.len().checked_sub(budget).map(|k| emitted[k]);
                            if let (Some(probe), Some(oldest)) = (&backpressure, oldest) {
                                if probe.less_than(&oldest) {
                                    waiting = true;
                                    return Ok(());
                                }
                            }
                            if *unit >= mine.len() {
                                let cap = &cap_vec[2];
                                events_out.activate().session(cap).give(summary.clone());
                                phase = Phase::Done;
                                return Ok(());
                            }
                            if reader.is_none() {
                                *reader = Some(open_unit(*unit, &mut paths)?);
                            }
                            let more = reader
                                .as_mut()
                                .expect("opened")
                                .read_chunk(config.chunk_rows, &mut chunk)?;
                            chunk.retain_range(config.from_ms, config.to_ms);
                            summary.add_chunk(&chunk);
                            progress.rows_done.fetch_add(chunk.rows, Ordering::Relaxed);
                            progress
                                .records
                                .fetch_add(chunk.records() as u64, Ordering::Relaxed);
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
                            emitted.push_back(*cap_vec[0].time());
                            if emitted.len() > ahead {
                                emitted.pop_front();
                            }
                            *rows += chunk.rows;
                            chunk.rows = 0;
                            *k += 1;
                            // A wide pairwise input whose piece has one bound (no page
                            // index) would run every row of the piece at its first event
                            // time: read its `ts_ms` column once for finer bounds.
                            let u = &mine[*unit];
                            if more
                                && *k == 1
                                && config.pairwise
                                && chunk.symbols() > NARROW_SYMBOLS
                                && matches!(bounds[*unit], Bounds::Stats)
                                && u.piece.blocks.len() <= 1
                                && u.piece.rows.unwrap_or(0) > SCAN_BLOCK as u64
                            {
                                if let Some(path) = paths[*unit].as_ref() {
                                    refined[*unit] =
                                        scan_piece(path, &u.url, &opts_for(u), &u.piece)?;
                                }
                            }
                            let next = if more {
                                match &bounds[*unit] {
                                    Bounds::Stats => refined[*unit]
                                        .as_ref()
                                        .unwrap_or(&mine[*unit].piece)
                                        .bound_after(*rows)
                                        .unwrap_or(i64::MIN),
                                    Bounds::PerChunk(v) => v.get(*k).copied().unwrap_or(i64::MAX),
                                }
                                .min(after[*unit + 1])
                            } else {
                                *reader = None;
                                if let Some(p) = paths[*unit].take() {
                                    if !p.starts_with(&config.scratch)
                                        || mine[*unit + 1..]
                                            .iter()
                                            .any(|u| u.url == mine[*unit].url)
                                    {
                                        paths[*unit] = Some(p);
                                    } else {
                                        let _ = std::fs::remove_file(p);
                                    }
                                }
                                *unit += 1;
                                *k = 0;
                                *rows = 0;
                                after[*unit]
                            };
                            if next != i64::MAX {
                                let next = next.max(*cap_vec[0].time());
                                for c in cap_vec.iter_mut() {
                                    c.downgrade(&next);
                                }
                            }
                        }
                        Phase::Done => {}
                    }
                    Ok(())
                })();
                if let Err(e) = result {
                    errors.set(e.to_string());
                    caps = None;
                    return;
                }
                if matches!(phase, Phase::Done) {
                    caps = None;
                    progress
                        .latency
                        .source_watermark(mark, i64::MAX, Instant::now());
                    return;
                }
                if let Some(t) = caps.as_ref().and_then(|c| c.first()).map(|c| *c.time()) {
                    progress.latency.source_watermark(mark, t, Instant::now());
                }
                let held = hold_clock.tick(waiting, now);
                progress
                    .held_us
                    .fetch_add(held.as_micros() as u64, Ordering::Relaxed);
                if waiting {
                    activator.activate_after(HOLD_RETRY);
                } else {
                    activator.activate();
                }
            }
        });
        (batches, rejects, events)
    }
}
