//! The `matrix` layout of the correlation set (`features.correlation_layout`): one
//! record per (resolution, window end) holding the symbols in order and the upper
//! triangle of their correlations, instead of one record per pair.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::StreamVec;

use crate::checkpoint::Checkpointed;
use crate::comoments::CorrRow;
use crate::window::{WindowLogic, WindowOperator};
use crate::Symbol;

/// One record of the correlation set in the matrix layout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorrMatrix {
    /// Window length in ms.
    pub resolution_ms: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// The symbols with a full window, in byte order.
    pub symbols: Vec<Symbol>,
    /// The correlation of `symbols[i]` and `symbols[j]` for every `i < j`, row by row:
    /// `(0,1), (0,2), …, (0,k-1), (1,2), …` ([`CorrMatrix::index`]); null where a
    /// variance is 0.
    pub corr: Vec<Option<f64>>,
    /// Returns in the window (W).
    pub n: i64,
    /// 0 when first sent, then +1 for each restatement of this row by late data.
    #[serde(default)]
    pub revision: u32,
}

impl CorrMatrix {
    /// The position of the pair `(i, j)`, `i < j`, in [`CorrMatrix::corr`] for `k`
    /// symbols.
    ///
    /// ```
    /// use operators::comoments::CorrMatrix;
    /// assert_eq!(CorrMatrix::index(4, 0, 1), 0);
    /// assert_eq!(CorrMatrix::index(4, 0, 3), 2);
    /// assert_eq!(CorrMatrix::index(4, 1, 2), 3);
    /// assert_eq!(CorrMatrix::index(4, 2, 3), 5);
    /// ```
    pub fn index(k: usize, i: usize, j: usize) -> usize {
        i * (2 * k - i - 1) / 2 + (j - i - 1)
    }

    /// The matrices of the pair rows of one window end (of any resolutions), one per
    /// resolution. Symbols are told apart by address first (the rows of one worker
    /// share one allocation per symbol), so a row costs two map lookups, not string
    /// comparisons.
    pub fn gather(rows: Vec<CorrRow>) -> Vec<CorrMatrix> {
        use rustc_hash::FxHashMap;
        let mut by_res: FxHashMap<i64, Vec<CorrRow>> = FxHashMap::default();
        for r in rows {
            by_res.entry(r.resolution_ms).or_default().push(r);
        }
        let mut out: Vec<CorrMatrix> = by_res
            .into_values()
            .map(|group| {
                // Distinct symbols: by address, then by name for a copy made elsewhere.
                let mut by_addr: FxHashMap<usize, usize> = FxHashMap::default();
                let mut by_name: FxHashMap<&str, usize> = FxHashMap::default();
                let mut symbols: Vec<&Symbol> = Vec::new();
                let mut ids: Vec<(usize, usize)> = Vec::with_capacity(group.len());
                for r in &group {
                    let mut pair = [0; 2];
                    for (slot, s) in pair.iter_mut().zip([&r.symbol_a, &r.symbol_b]) {
                        *slot = *by_addr.entry(s.addr()).or_insert_with(|| {
                            *by_name.entry(s.as_str()).or_insert_with(|| {
                                symbols.push(s);
                                symbols.len() - 1
                            })
                        });
                    }
                    ids.push((pair[0], pair[1]));
                }
                // Rank in byte order.
                let mut order: Vec<usize> = (0..symbols.len()).collect();
                order.sort_unstable_by(|&a, &b| symbols[a].as_str().cmp(symbols[b].as_str()));
                let mut rank = vec![0; symbols.len()];
                for (r, &id) in order.iter().enumerate() {
                    rank[id] = r;
                }
                let k = symbols.len();
                let mut corr = vec![None; k * k.saturating_sub(1) / 2];
                for (row, &(a, b)) in group.iter().zip(&ids) {
                    let (i, j) = (rank[a], rank[b]);
                    if i < j {
                        corr[CorrMatrix::index(k, i, j)] = row.corr;
                    }
                }
                CorrMatrix {
                    resolution_ms: group[0].resolution_ms,
                    window_end: group[0].window_end,
                    n: group.iter().map(|r| r.n).max().unwrap_or(0),
                    symbols: order.iter().map(|&id| symbols[id].clone()).collect(),
                    corr,
                    revision: 0,
                }
            })
            .collect();
        out.sort_unstable_by_key(|m| m.resolution_ms);
        out
    }

    /// The pair rows of the matrix, in (symbol_a, symbol_b) order.
    pub fn pairs(&self) -> Vec<CorrRow> {
        let k = self.symbols.len();
        let mut out = Vec::with_capacity(self.corr.len());
        for i in 0..k {
            for j in i + 1..k {
                out.push(CorrRow {
                    resolution_ms: self.resolution_ms,
                    window_end: self.window_end,
                    symbol_a: self.symbols[i].clone(),
                    symbol_b: self.symbols[j].clone(),
                    corr: self.corr[CorrMatrix::index(k, i, j)],
                    n: self.n,
                    revision: self.revision,
                });
            }
        }
        out
    }
}

/// Gathers the pair rows of each window end into matrices; with lateness it keeps the
/// matrices a restatement can reach, and a restated pair sends its matrix again whole,
/// with revision + 1.
#[derive(Default)]
pub struct MatrixLogic {
    lateness_ms: i64,
    /// The newest window end gathered, by resolution.
    last: BTreeMap<i64, i64>,
    /// Matrices sent within the lateness, by (resolution, window end).
    kept: BTreeMap<(i64, i64), CorrMatrix>,
}

impl Checkpointed for MatrixLogic {
    const NAME: &'static str = "correlation_matrix";
    type State = ();
}

impl WindowLogic for MatrixLogic {
    type In = CorrRow;
    type Out = Vec<CorrMatrix>;

    fn window_end(r: &CorrRow) -> i64 {
        r.window_end
    }

    fn on_window(&mut self, end: i64, records: Vec<CorrRow>, out: &mut Vec<CorrMatrix>) {
        let mut restated: BTreeMap<i64, Vec<CorrRow>> = BTreeMap::new();
        let mut fresh = Vec::with_capacity(records.len());
        let mut records = records;
        if records.iter().any(|r| r.revision > 0) {
            // A pair row and its restatement can come together: the newest only.
            let key = |r: &CorrRow| (r.resolution_ms, r.symbol_a.clone(), r.symbol_b.clone());
            records.sort_by_key(|r| (key(r), r.revision));
            records.dedup_by(|later, kept| {
                let same = key(later) == key(kept);
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
        }
        for r in records {
            if self.last.get(&r.resolution_ms).is_some_and(|l| end <= *l) {
                restated.entry(r.resolution_ms).or_default().push(r);
            } else {
                fresh.push(r);
            }
        }
        for (res, rows) in restated {
            let Some(old) = self.kept.get(&(res, end)) else {
                tracing::debug!(window_end = end, "restated matrix older than the kept ones");
                continue;
            };
            // The pairs sent before, with the restated ones in their place.
            let revision = old.revision + 1;
            let mut all: BTreeMap<(Symbol, Symbol), CorrRow> = BTreeMap::new();
            for p in old.pairs().into_iter().chain(rows) {
                all.insert((p.symbol_a.clone(), p.symbol_b.clone()), p);
            }
            for mut whole in CorrMatrix::gather(all.into_values().collect()) {
                whole.revision = revision;
                self.kept.insert((res, end), whole.clone());
                out.push(whole);
            }
        }
        for m in CorrMatrix::gather(fresh) {
            let res = m.resolution_ms;
            self.last.insert(res, end);
            if self.lateness_ms > 0 {
                let oldest = end - self.lateness_ms - 2 * res;
                self.kept.retain(|(r, e), _| *r != res || *e > oldest);
                self.kept.insert((res, end), m.clone());
            }
            out.push(m);
        }
    }

    fn snapshot(&self) {}

    fn restore(&mut self, _: ()) {}
}

/// Extension trait: the correlation pairs as matrices.
pub trait CorrelationMatrix<'scope> {
    /// One [`CorrMatrix`] per (resolution, window end), gathered on the worker of that
    /// key, sent as soon as the window end is complete; restated pairs within
    /// `lateness_ms` send their matrix again whole.
    fn correlation_matrix(self, lateness_ms: i64) -> StreamVec<'scope, i64, CorrMatrix>;
}

impl<'scope> CorrelationMatrix<'scope> for StreamVec<'scope, i64, CorrRow> {
    fn correlation_matrix(self, lateness_ms: i64) -> StreamVec<'scope, i64, CorrMatrix> {
        let route = |r: &CorrRow| {
            (r.window_end as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(r.resolution_ms as u64)
                >> 7
        };
        let logic = MatrixLogic {
            lateness_ms,
            ..MatrixLogic::default()
        };
        self.window_operator(Exchange::new(route), logic, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(res: i64, a: &str, b: &str, corr: Option<f64>) -> CorrRow {
        CorrRow {
            resolution_ms: res,
            window_end: 60_000,
            symbol_a: a.into(),
            symbol_b: b.into(),
            corr,
            n: 60,
            revision: 0,
        }
    }

    #[test]
    fn a_matrix_holds_exactly_its_pairs() {
        let names = ["ETH", "BTC", "SOL", "ADA", "XRP"];
        let mut sorted = names;
        sorted.sort();
        let mut rows = Vec::new();
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate().skip(i + 1) {
                let c = (i != 2).then_some((i * 10 + j) as f64 / 100.0);
                rows.push(pair(1_000, a, b, c));
            }
        }
        rows.push(pair(60_000, "BTC", "ETH", Some(0.5)));
        rows.reverse();
        let m = CorrMatrix::gather(rows.clone());
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].symbols.len(), 5);
        assert_eq!(m[0].corr.len(), 10);
        let mut back: Vec<CorrRow> = m.iter().flat_map(|x| x.pairs()).collect();
        back.sort_by(|a, b| {
            (a.resolution_ms, &a.symbol_a, &a.symbol_b).cmp(&(
                b.resolution_ms,
                &b.symbol_a,
                &b.symbol_b,
            ))
        });
        rows.sort_by(|a, b| {
            (a.resolution_ms, &a.symbol_a, &a.symbol_b).cmp(&(
                b.resolution_ms,
                &b.symbol_a,
                &b.symbol_b,
            ))
        });
        assert_eq!(back, rows);
        assert_eq!(m[1].corr, [Some(0.5)]);
    }
}
