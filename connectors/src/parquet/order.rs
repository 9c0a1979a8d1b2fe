//! The order of rows in a file: by window end, then symbol (or pair), computed on
//! integer ranks of the key's strings.

use crate::parquet::rows::{FeatureRow, SortKey};

/// The indices of `rows` in file order: window end, then the rest of
/// [`FeatureRow::sort_key`] (symbol or pair, then its tail), then the latest revision
/// first; the same as a stable sort by that key. The strings of the key are ranked once
/// per distinct value, so the sort itself compares integers, and the rows themselves
/// are not moved.
pub(crate) fn sort_order<R: FeatureRow>(rows: &[R]) -> Vec<usize> {
    let keys: Vec<SortKey<'_>> = rows.iter().map(FeatureRow::sort_key).collect();
    let groups = ranks(keys.iter().map(|k| k.group));
    let tails = ranks(keys.iter().map(|k| k.tail));
    let mut order: Vec<(i64, u32, u32, std::cmp::Reverse<u32>, usize)> = keys
        .iter()
        .zip(rows)
        .enumerate()
        .map(|(i, (k, r))| {
            let revision = std::cmp::Reverse(r.revision());
            (k.window_end, groups[i], tails[i], revision, i)
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
