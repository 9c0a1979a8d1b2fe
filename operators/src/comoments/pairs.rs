//! `CoMoments`: exact rolling sums per symbol and per owned pair at one resolution.

use std::collections::{BTreeMap, VecDeque};

use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};

use crate::comoments::{BetaRow, CoMomentConfig, CorrRow};
use crate::fixed::moment;
use crate::grid::RET_SCALE;
use crate::route::symbol_route;
use crate::Symbol;

/// Returns of one symbol: the last W+1 (fixed-point; more within the allowed
/// lateness), one per grid time up to `last_end`, and exact sums over the last W.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Series {
    pub(super) name: Symbol,
    block: u64,
    pub(super) ring: VecDeque<i64>,
    pub(super) count: u64,
    pub(super) sum: i128,
    pub(super) sum_sq: i128,
    /// Grid time of the last return.
    pub(super) last_end: i64,
    /// `W·Σx² − (Σx)²` of the current window (W² times the population variance).
    pub(super) var: f64,
}

impl Series {
    /// Σx, Σx² and the variance term over the last W returns of the ring, from
    /// scratch (after the ring changed other than by one step).
    pub(super) fn resum(&mut self, w: usize) {
        let tail = self.ring.iter().rev().take(w);
        self.sum = tail.clone().map(|&x| i128::from(x)).sum();
        self.sum_sq = tail.map(|&x| i128::from(x) * i128::from(x)).sum();
        self.var = moment(w as i128, self.sum_sq, self.sum, self.sum);
    }
}

/// The exact sums of a pair's window: Σab, and (Σx, W·Σx² − (Σx)²) of each series.
pub(super) type PairSums = (i128, (i128, f64), (i128, f64));

/// Exact co-moment sums of one owned pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairStats {
    pub(super) a: usize,
    pub(super) b: usize,
    pub(super) sum_ab: i128,
    /// Grid times where both had a return (the last ones, both being dense).
    pub(super) joint: u64,
}

/// Rolling co-moments of every pair this worker owns, at one resolution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoMoments {
    pub(super) config: CoMomentConfig,
    index: usize,
    peers: usize,
    pub(super) series: Vec<Series>,
    pub(super) by_name: HashMap<Symbol, usize>,
    pub(super) pairs: Vec<PairStats>,
    benchmark: Option<usize>,
    bench_name: Symbol,
    /// The resolution, ms.
    #[serde(default)]
    pub(super) resolution_ms: i64,
    /// The last grid time advanced to.
    #[serde(default = "never")]
    pub(super) last_end: i64,
    /// Revisions sent of (pair, window end) rows restated within the lateness.
    #[serde(skip)]
    pub(super) revisions: HashMap<(usize, i64), u32>,
    /// Series with restated returns not yet sent: index -> (first, last) grid time.
    #[serde(skip)]
    pub(super) dirty: BTreeMap<usize, (i64, i64)>,
}

fn never() -> i64 {
    i64::MIN
}

impl CoMoments {
    /// Empty state for worker `index` of `peers`.
    pub fn new(config: CoMomentConfig, index: usize, peers: usize) -> CoMoments {
        CoMoments {
            bench_name: Symbol::new(&config.benchmark),
            config,
            index,
            peers,
            series: Vec::new(),
            by_name: HashMap::default(),
            pairs: Vec::new(),
            benchmark: None,
            resolution_ms: 0,
            last_end: i64::MIN,
            revisions: HashMap::default(),
            dirty: BTreeMap::new(),
        }
    }

    /// Returns kept per series: W + 1, plus the grid times a restatement can reach.
    pub(super) fn ring_cap(&self) -> usize {
        let r = self.resolution_ms.max(1);
        self.config.window + 1 + (self.config.lateness_ms.max(0) / r) as usize + 2
    }

    /// True once the benchmark symbol has been seen.
    pub fn has_benchmark(&self) -> bool {
        self.benchmark.is_some()
    }

    /// The worker owning pair `(a, b)` (a < b by byte order): the matrix is cut into
    /// `peers` x `peers` blocks by symbol hash, and block (i, j) goes to worker
    /// (i + j) mod peers, so every worker owns one block of each block row and column.
    fn owner(&self, a: &Series, b: &Series) -> usize {
        ((a.block + b.block) % self.peers as u64) as usize
    }

    pub(super) fn add_symbol(&mut self, name: Symbol) -> usize {
        let idx = self.series.len();
        self.series.push(Series {
            name: name.clone(),
            block: symbol_route(&name) % self.peers as u64,
            ring: VecDeque::with_capacity(self.config.window + 2),
            count: 0,
            sum: 0,
            sum_sq: 0,
            last_end: i64::MIN,
            var: 0.0,
        });
        if name.as_str() == self.config.benchmark {
            self.benchmark = Some(idx);
        }
        for other in 0..idx {
            let (a, b) = if self.series[other].name < name {
                (other, idx)
            } else {
                (idx, other)
            };
            let wanted =
                self.config.correlation || self.benchmark.is_some_and(|bm| bm == a || bm == b);
            if wanted && self.owner(&self.series[a], &self.series[b]) == self.index {
                self.pairs.push(PairStats {
                    a,
                    b,
                    sum_ab: 0,
                    joint: 0,
                });
            }
        }
        self.by_name.insert(name, idx);
        idx
    }

    /// Applies the returns of grid time `end` (every symbol's point at that time) and
    /// emits the rows of owned pairs whose windows are full. Returns of a grid time
    /// already applied are restatements: sent at the next advance or flush.
    pub fn advance(
        &mut self,
        resolution_ms: i64,
        end: i64,
        mut rets: Vec<(Symbol, Option<i64>)>,
        corr_rows: &mut Vec<CorrRow>,
        beta_rows: &mut Vec<BetaRow>,
    ) {
        self.resolution_ms = resolution_ms;
        if end <= self.last_end {
            self.restate(end, rets);
            return;
        }
        self.flush(corr_rows, beta_rows);
        self.last_end = end;
        self.forget(end);
        let w = self.config.window;
        let cap = self.ring_cap();
        rets.sort();
        for (name, ret) in rets {
            let idx = match self.by_name.get(&name) {
                Some(&i) => i,
                None => self.add_symbol(name.clone()),
            };
            let Some(x) = ret else { continue };
            let s = &mut self.series[idx];
            s.ring.push_back(x);
            s.sum += i128::from(x);
            s.sum_sq += i128::from(x) * i128::from(x);
            if s.ring.len() > w {
                let y = i128::from(s.ring[s.ring.len() - 1 - w]);
                s.sum -= y;
                s.sum_sq -= y * y;
            }
            if s.ring.len() > cap {
                s.ring.pop_front();
            }
            s.count += 1;
            s.last_end = end;
            s.var = moment(w as i128, s.sum_sq, s.sum, s.sum);
        }
        for pi in 0..self.pairs.len() {
            let p = &mut self.pairs[pi];
            let (a, b) = (&self.series[p.a], &self.series[p.b]);
            if a.last_end != end || b.last_end != end {
                continue;
            }
            let (xa, xb) = (a.ring[a.ring.len() - 1], b.ring[b.ring.len() - 1]);
            p.sum_ab += i128::from(xa) * i128::from(xb);
            p.joint += 1;
            if p.joint > w as u64 {
                let (ya, yb) = (a.ring[a.ring.len() - 1 - w], b.ring[b.ring.len() - 1 - w]);
                p.sum_ab -= i128::from(ya) * i128::from(yb);
            }
            if p.joint < w as u64 {
                continue;
            }
            let sums = (p.sum_ab, (a.sum, a.var), (b.sum, b.var));
            let ab = (p.a, p.b);
            self.rows(ab, end, sums, 0, corr_rows, beta_rows);
        }
    }

    /// The rows of pair `(a, b)` at grid time `end` from its exact sums over the window:
    /// Σab, and (Σx, W·Σx² − (Σx)²) of each series.
    pub(super) fn rows(
        &self,
        (a, b): (usize, usize),
        end: i64,
        (sum_ab, (sum_a, den_a), (sum_b, den_b)): PairSums,
        revision: u32,
        corr_rows: &mut Vec<CorrRow>,
        beta_rows: &mut Vec<BetaRow>,
    ) {
        let w = self.config.window;
        let resolution_ms = self.resolution_ms;
        let (sa, sb) = (&self.series[a], &self.series[b]);
        let num = moment(w as i128, sum_ab, sum_a, sum_b);
        let corr = (den_a != 0.0 && den_b != 0.0).then(|| num / den_a.sqrt() / den_b.sqrt());
        if self.config.correlation {
            corr_rows.push(CorrRow {
                resolution_ms,
                window_end: end,
                symbol_a: sa.name.clone(),
                symbol_b: sb.name.clone(),
                corr,
                n: w as i64,
                revision,
            });
        }
        if let Some(bm) = self.benchmark {
            let (s, den_bm, sum_s, sum_bm) = if bm == b {
                (sa, den_b, sum_a, sum_b)
            } else if bm == a {
                (sb, den_a, sum_b, sum_a)
            } else {
                return;
            };
            let beta = (den_bm != 0.0).then(|| num / den_bm);
            let scale = w as f64 * RET_SCALE;
            beta_rows.push(BetaRow {
                symbol: s.name.clone(),
                benchmark: self.bench_name.clone(),
                resolution_ms,
                window_end: end,
                beta,
                alpha: beta.map(|beta| sum_s as f64 / scale - beta * (sum_bm as f64 / scale)),
                r2: corr.map(|c| c * c),
                n: w as i64,
                revision,
            });
        }
    }
}
