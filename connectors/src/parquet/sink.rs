//! The `ParquetSink` operator: buffers rows per partition and writes each partition once,
//! when the frontier has passed its end plus the allowed lateness.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::{Stream, StreamVec};

use crate::parquet::rows::{encode_parquet, partition_dir, FeatureRow, SortKey};
use crate::store::Location;
use crate::sync::ErrorSlot;

/// The file name inside every partition; fixed, so a rerun overwrites it.
pub const PART_FILE: &str = "part-00000.parquet";

/// A partition file that is durable in the output.
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
}

/// Extension trait: write a stream of feature rows as Parquet partitions.
pub trait ParquetSink<'scope, R: FeatureRow> {
    /// Writes rows under `output`; emits one record per partition written.
    /// Partitions are spread over workers by `(resolution, hour)`.
    fn parquet_sink(
        self,
        output: Location,
        lateness_ms: i64,
        errors: ErrorSlot,
    ) -> StreamVec<'scope, i64, PartitionWritten>;
}

const HOUR: i64 = 3_600_000;

impl<'scope, R: FeatureRow> ParquetSink<'scope, R> for Stream<'scope, i64, Vec<R>> {
    fn parquet_sink(
        self,
        output: Location,
        lateness_ms: i64,
        errors: ErrorSlot,
    ) -> StreamVec<'scope, i64, PartitionWritten> {
        // One worker per partition (set, resolution, hour): consecutive hours of one
        // set and resolution go to consecutive workers (timely takes the route modulo
        // the worker count), so the writing is spread evenly as the hours close;
        // the start is offset by a hash of (set, resolution).
        let set_hash = operators::route::stable_hash(R::SET.name().as_bytes());
        let route = move |r: &R| {
            let res = (r.resolution_ms() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let hour = r.window_end().div_euclid(HOUR) as u64;
            ((set_hash ^ res) >> 32).wrapping_add(hour)
        };
        let name = format!("ParquetSink({})", R::SET);
        let scope = self.scope();
        self.unary_frontier(Exchange::new(route), &name, move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut cap = Some(cap);
            let mut pending: rustc_hash::FxHashMap<(i64, i64), Vec<R>> = Default::default();
            // Rows of the last partition written per resolution: a new partition's
            // buffer starts at that size instead of growing by copies.
            let mut sizes: rustc_hash::FxHashMap<i64, usize> = Default::default();
            move |(input, frontier), out| {
                input.for_each(|_time, data| {
                    for row in data.drain(..) {
                        let key = (
                            row.resolution_ms(),
                            row.window_end().div_euclid(HOUR) * HOUR,
                        );
                        pending
                            .entry(key)
                            .or_insert_with(|| {
                                Vec::with_capacity(sizes.get(&key.0).map_or(0, |n| n + n / 16))
                            })
                            .push(row);
                    }
                });
                let f = frontier.frontier().first().copied().unwrap_or(i64::MAX);
                let is_ready = |(_, hour): &&(i64, i64)| {
                    hour.saturating_add(HOUR).saturating_add(lateness_ms) <= f
                };
                // One partition per activation, the oldest first: encoding one takes
                // milliseconds, and between them the worker gets to step (and to tell
                // the other workers its progress). The capability stays put until all
                // ready ones are written, so the output frontier never runs ahead of
                // the files.
                let next = pending.keys().filter(is_ready).min().copied();
                let more = pending.keys().filter(is_ready).nth(1).is_some();
                let written = next.and_then(|key| {
                    let rows = pending.remove(&key).unwrap_or_default();
                    sizes.insert(key.0, rows.len());
                    // After an error the job winds down: rows are dropped unwritten.
                    (!errors.is_set())
                        .then(|| write_partition(&output, key, rows, &errors))
                        .flatten()
                });
                if let Some(c) = cap.as_mut() {
                    if let Some(w) = written {
                        out.session(c).give(w);
                    }
                    if more {
                        activator.activate();
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

/// Writes the rows of partition `(resolution, hour)` as one file, sorted, the last
/// revision of a restated row replacing the earlier ones; `None` (with `errors` set)
/// when the file cannot be written.
fn write_partition<R: FeatureRow>(
    output: &Location,
    (resolution_ms, hour): (i64, i64),
    rows: Vec<R>,
    errors: &ErrorSlot,
) -> Option<PartitionWritten> {
    let mut rows: Vec<&R> = sort_order(&rows).into_iter().map(|i| &rows[i]).collect();
    if rows.iter().any(|r| r.revision() > 0) {
        rows.dedup_by(|later, first| R::sort_cmp(later, first).is_eq());
    }
    let rel = format!(
        "{}/{PART_FILE}",
        partition_dir(R::SET.name(), resolution_ms, hour)
    );
    let written = encode_parquet(&rows, &rel).and_then(|bytes| {
        let digest = hex_digest(&Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        output.put(&rel, bytes).map(|_| (digest, size))
    });
    match written {
        Ok((sha256, bytes)) => {
            tracing::debug!(path = %rel, rows = rows.len(), bytes, "partition written");
            Some(PartitionWritten {
                set: R::SET.to_string(),
                rows: rows.len() as u64,
                bytes,
                sha256,
                min_window_end: rows.iter().map(|r| r.window_end()).min().unwrap_or(0),
                max_window_end: rows.iter().map(|r| r.window_end()).max().unwrap_or(0),
                path: rel,
            })
        }
        Err(e) => {
            errors.set(format!("writing {}: {e}", output.child_url(&rel)));
            None
        }
    }
}

/// Lower-case hex of `bytes` (a digest).
pub fn hex_digest(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The indices of `rows` in file order ([`FeatureRow::sort_key`], then the latest
/// revision first), the same as a stable sort by that key. The strings of the key are
/// ranked once per distinct value, so the sort itself compares integers, and the rows
/// themselves are not moved.
fn sort_order<R: FeatureRow>(rows: &[R]) -> Vec<usize> {
    let keys: Vec<SortKey<'_>> = rows.iter().map(FeatureRow::sort_key).collect();
    let groups = ranks(keys.iter().map(|k| k.group));
    let tails = ranks(keys.iter().map(|k| k.tail));
    let mut order: Vec<(u32, i64, u32, std::cmp::Reverse<u32>, usize)> = keys
        .iter()
        .zip(rows)
        .enumerate()
        .map(|(i, (k, r))| {
            let revision = std::cmp::Reverse(r.revision());
            (groups[i], k.window_end, tails[i], revision, i)
        })
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(.., i)| i).collect()
}

/// A key part that can be told apart by the address of its text: two values at the
/// same address (and length) are equal. Rows of one symbol share one allocation
/// ([`operators::Symbol`]), so ranking by address reads no string bytes.
trait ByAddress: Ord + std::hash::Hash + Copy {
    /// The address key of the value.
    type Addr: Eq + std::hash::Hash + Copy;
    /// The address (and length) of the value's text.
    fn addr(&self) -> Self::Addr;
}

impl ByAddress for &str {
    type Addr = (usize, usize);
    #[inline]
    fn addr(&self) -> (usize, usize) {
        (self.as_ptr() as usize, self.len())
    }
}

impl ByAddress for (&str, &str) {
    type Addr = ((usize, usize), (usize, usize));
    #[inline]
    fn addr(&self) -> Self::Addr {
        (self.0.addr(), self.1.addr())
    }
}

/// Addresses remembered at most per ranking: values not shared by address (each row
/// its own string) fall back to hashing their text without filling a map.
const MAX_ADDRESSES: usize = 4096;

/// Per value its rank among the distinct values in sorted order. A value is looked up
/// by its address first (the previous row's, then a map of addresses); only an unseen
/// address hashes the text.
fn ranks<K: ByAddress>(values: impl Iterator<Item = K>) -> Vec<u32> {
    use rustc_hash::FxHashMap;
    let mut by_value: FxHashMap<K, u32> = FxHashMap::default();
    let mut by_addr: FxHashMap<K::Addr, u32> = FxHashMap::default();
    let mut distinct: Vec<K> = Vec::new();
    let mut last: Option<(K::Addr, u32)> = None;
    let per_row: Vec<u32> = values
        .map(|v| {
            let a = v.addr();
            match last {
                Some((la, id)) if la == a => id,
                _ => {
                    let id = match by_addr.get(&a) {
                        Some(&id) => id,
                        None => {
                            let id = *by_value.entry(v).or_insert_with(|| {
                                distinct.push(v);
                                distinct.len() as u32 - 1
                            });
                            if by_addr.len() < MAX_ADDRESSES {
                                by_addr.insert(a, id);
                            }
                            id
                        }
                    };
                    last = Some((a, id));
                    id
                }
            }
        })
        .collect();
    let mut by_rank: Vec<u32> = (0..distinct.len() as u32).collect();
    by_rank.sort_unstable_by_key(|&id| distinct[id as usize]);
    let mut rank = vec![0u32; distinct.len()];
    for (r, id) in by_rank.into_iter().enumerate() {
        rank[id as usize] = r as u32;
    }
    per_row.into_iter().map(|id| rank[id as usize]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use operators::Symbol;

    #[test]
    fn ranks_equal_text_alike_whether_shared_or_not() {
        let shared = [Symbol::new("b"), Symbol::new("a"), Symbol::new("c")];
        // Owned strings at their own addresses, and a copy of "a" made on another thread.
        let owned: Vec<String> = ["c", "a", "b", "a"].iter().map(|s| s.to_string()).collect();
        let other = std::thread::spawn(|| Symbol::new("a")).join().unwrap();
        let mut values: Vec<&str> = Vec::new();
        for i in 0..3000 {
            values.push(&shared[i % 3]);
            values.push(&owned[i % 4]);
            values.push(&other);
        }
        let got = ranks(values.iter().copied());
        let want: Vec<u32> = values
            .iter()
            .map(|v| (v.as_bytes()[0] - b'a') as u32)
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn ranks_pairs_by_both_names() {
        let (a, b) = (Symbol::new("a"), Symbol::new("b"));
        let values = [(&*b, &*a), (&*a, &*b), (&*a, &*a), (&*a, &*b)];
        assert_eq!(ranks(values.iter().copied()), [2, 1, 0, 1]);
    }
}
