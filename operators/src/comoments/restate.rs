//! Restated returns in the co-moments: a return changed by late data replaces its
//! value in the series' ring and corrects the current sums exactly (integer deltas);
//! every window of an owned pair that contains a changed return is then recomputed
//! from the rings and sent again with its revision + 1. The cost is O(affected windows
//! × pairs of the changed symbols × W), nothing for the other pairs.

use crate::comoments::pairs::{CoMoments, PairSums};
use crate::comoments::{BetaRow, CorrRow};
use crate::fixed::moment;
use crate::Symbol;

impl CoMoments {
    /// Takes restated returns of grid time `end` (already applied once): each changed
    /// one replaces its ring value and corrects the current window's sums; the rows
    /// wait for [`CoMoments::flush`].
    pub(super) fn restate(&mut self, end: i64, rets: Vec<(Symbol, Option<i64>)>) {
        let (w, r) = (self.config.window, self.resolution_ms.max(1));
        for (name, ret) in rets {
            let idx = match self.by_name.get(&name) {
                Some(&i) => i,
                None => self.add_symbol(name.clone()),
            };
            let Some(x) = ret else { continue };
            let s = &self.series[idx];
            if s.last_end < end {
                // A point the series had not had yet (a symbol whose first records came
                // late, catching up): appended; its pairs are rebuilt from the rings.
                self.append_late(idx, end, x);
                continue;
            }
            let k = ((s.last_end - end) / r) as usize;
            if k >= s.ring.len() {
                tracing::debug!(symbol = %name, end, "restated return older than the ring");
                continue;
            }
            let pos = s.ring.len() - 1 - k;
            let old = s.ring[pos];
            if old == x {
                continue;
            }
            let d = i128::from(x) - i128::from(old);
            if k < w {
                // The current window holds it: exact integer corrections.
                for p in self.pairs.iter_mut().filter(|p| p.a == idx || p.b == idx) {
                    if p.joint as usize > k {
                        let o = &self.series[if p.a == idx { p.b } else { p.a }];
                        let y = o.ring[o.ring.len() - 1 - ((o.last_end - end) / r) as usize];
                        p.sum_ab += d * i128::from(y);
                    }
                }
                let s = &mut self.series[idx];
                s.sum += d;
                s.sum_sq += i128::from(x) * i128::from(x) - i128::from(old) * i128::from(old);
                s.var = moment(w as i128, s.sum_sq, s.sum, s.sum);
            }
            self.series[idx].ring[pos] = x;
            let span = self.dirty.entry(idx).or_insert((end, end));
            *span = (span.0.min(end), span.1.max(end));
        }
    }

    /// Appends return `x` at grid time `end` to a series behind it, and rebuilds the
    /// pairs of the series from the rings.
    fn append_late(&mut self, idx: usize, end: i64, x: i64) {
        let (w, r, cap) = (
            self.config.window,
            self.resolution_ms.max(1),
            self.ring_cap(),
        );
        let s = &mut self.series[idx];
        if s.last_end != i64::MIN && end != s.last_end + r {
            tracing::debug!(symbol = %s.name, end, "late point out of order");
            return;
        }
        s.ring.push_back(x);
        if s.ring.len() > cap {
            s.ring.pop_front();
        }
        s.count += 1;
        s.last_end = end;
        s.resum(w);
        for pi in 0..self.pairs.len() {
            let (a, b) = (self.pairs[pi].a, self.pairs[pi].b);
            if a == idx || b == idx {
                let (joint, sum_ab) = self.rebuild(a, b);
                (self.pairs[pi].joint, self.pairs[pi].sum_ab) = (joint, sum_ab);
            }
        }
        let span = self.dirty.entry(idx).or_insert((end, end));
        *span = (span.0.min(end), span.1.max(end));
    }

    /// A pair's joint count and Σab over its last min(joint, W) common grid times, up
    /// to the older of the two series' last times, from the rings.
    fn rebuild(&self, a: usize, b: usize) -> (u64, i128) {
        let (w, r) = (self.config.window, self.resolution_ms.max(1));
        let (sa, sb) = (&self.series[a], &self.series[b]);
        if sa.count == 0 || sb.count == 0 {
            return (0, 0);
        }
        let first = |s: &crate::comoments::pairs::Series| s.last_end - (s.count as i64 - 1) * r;
        let last = sa.last_end.min(sb.last_end);
        let start = first(sa).max(first(sb));
        if last < start {
            return (0, 0);
        }
        let joint = ((last - start) / r + 1) as u64;
        let at = |s: &crate::comoments::pairs::Series, e: i64| -> Option<i128> {
            let k = ((s.last_end - e) / r) as usize;
            s.ring
                .get(s.ring.len().checked_sub(1 + k)?)
                .map(|&v| i128::from(v))
        };
        let mut sum_ab = 0i128;
        for j in 0..(joint as usize).min(w) {
            let e = last - j as i64 * r;
            match (at(sa, e), at(sb, e)) {
                (Some(x), Some(y)) => sum_ab += x * y,
                _ => return (joint, sum_ab),
            }
        }
        (joint, sum_ab)
    }

    /// Sends again, with revision + 1, every full window of an owned pair that holds a
    /// restated return, recomputed from the rings.
    pub(super) fn flush(&mut self, corr_rows: &mut Vec<CorrRow>, beta_rows: &mut Vec<BetaRow>) {
        if self.dirty.is_empty() {
            return;
        }
        let (w, r) = (self.config.window, self.resolution_ms.max(1));
        let dirty = std::mem::take(&mut self.dirty);
        let mut done = rustc_hash::FxHashSet::default();
        for (&idx, &(first, last)) in &dirty {
            let until = self.last_end.min(last + (w as i64 - 1) * r);
            for pi in 0..self.pairs.len() {
                let (a, b) = (self.pairs[pi].a, self.pairs[pi].b);
                if a != idx && b != idx {
                    continue;
                }
                let mut end = first;
                while end <= until {
                    // A pair with two changed symbols is sent once per window.
                    if done.insert((pi, end)) {
                        if let Some(sums) = self.window_sums(a, b, end) {
                            let rev = self.revisions.entry((pi, end)).or_insert(0);
                            *rev += 1;
                            let rev = *rev;
                            self.rows((a, b), end, sums, rev, corr_rows, beta_rows);
                        }
                    }
                    end += r;
                }
            }
        }
    }

    /// Σab and each series' (Σx, W·Σx² − (Σx)²) over the W grid times ending at `end`,
    /// when both rings hold them (the pair's window was full then).
    fn window_sums(&self, a: usize, b: usize, end: i64) -> Option<PairSums> {
        let (w, r) = (self.config.window, self.resolution_ms.max(1));
        let (sa, sb) = (&self.series[a], &self.series[b]);
        let from = |s: &crate::comoments::pairs::Series| -> Option<usize> {
            if s.last_end < end {
                return None;
            }
            let k = ((s.last_end - end) / r) as usize;
            (k + w <= s.ring.len()).then(|| s.ring.len() - k - w)
        };
        let (ia, ib) = (from(sa)?, from(sb)?);
        let (mut xa, mut xaa, mut xb, mut xbb, mut xab) = (0i128, 0i128, 0i128, 0i128, 0i128);
        for j in 0..w {
            let (x, y) = (i128::from(sa.ring[ia + j]), i128::from(sb.ring[ib + j]));
            xa += x;
            xaa += x * x;
            xb += y;
            xbb += y * y;
            xab += x * y;
        }
        let wi = w as i128;
        Some((
            xab,
            (xa, moment(wi, xaa, xa, xa)),
            (xb, moment(wi, xbb, xb, xb)),
        ))
    }

    /// Drops the revisions of windows no restatement can reach any more.
    pub(super) fn forget(&mut self, end: i64) {
        if !self.revisions.is_empty() {
            let oldest = end - self.config.lateness_ms - 2 * self.resolution_ms;
            self.revisions.retain(|(_, e), _| *e > oldest);
        }
    }

    /// The sums as they were before grid time `cut` (every return before it, none
    /// after), recomputed exactly from the rings: the checkpoint of a cut taken once the
    /// lateness has passed it.
    pub(super) fn at(&self, cut: i64) -> CoMoments {
        let (w, r) = (self.config.window, self.resolution_ms.max(1));
        let mut cm = self.clone();
        cm.dirty.clear();
        cm.revisions.clear();
        let mut dropped = Vec::with_capacity(cm.series.len());
        for s in cm.series.iter_mut() {
            let mut n = 0u64;
            while !s.ring.is_empty() && s.last_end >= cut {
                s.ring.pop_back();
                s.last_end -= r;
                n += 1;
            }
            if s.ring.is_empty() && n > 0 {
                s.last_end = i64::MIN;
            }
            s.count -= n.min(s.count);
            s.resum(w);
            dropped.push(n);
        }
        for p in cm.pairs.iter_mut() {
            p.joint -= dropped[p.a].max(dropped[p.b]).min(p.joint);
            let (sa, sb) = (&cm.series[p.a], &cm.series[p.b]);
            let n = (p.joint as usize).min(w);
            p.sum_ab = (1..=n)
                .map(|k| {
                    i128::from(sa.ring[sa.ring.len() - k]) * i128::from(sb.ring[sb.ring.len() - k])
                })
                .sum();
        }
        cm.last_end = cm
            .series
            .iter()
            .map(|s| s.last_end)
            .max()
            .unwrap_or(i64::MIN);
        cm
    }
}
