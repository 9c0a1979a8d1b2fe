//! Dedup memory of one symbol: which `(exchange, trade_id)`s were kept within the
//! retention horizon.
//!
//! Trade ids mostly arrive in increasing order per exchange, so those are kept in a
//! sorted run per exchange (appended at the back, expired from the front, looked up
//! by binary search, no hashing); ids that arrive out of order go to a hash map.
//! Ids are inserted in non-decreasing event time (the order the bars operator
//! finalizes trades in), which is what lets both structures expire from the front.

use std::collections::VecDeque;

use rustc_hash::FxHashMap as HashMap;

/// Trade ids seen within the horizon, with the event time of the kept trade.
#[derive(Default)]
pub(crate) struct Dedup {
    /// Per exchange: `(trade_id, ts_ms)` with increasing ids and non-decreasing times.
    runs: Vec<(u64, VecDeque<(i64, i64)>)>,
    /// Ids that did not extend their exchange's run: `(exchange, trade_id) -> ts_ms`.
    other: HashMap<(u64, i64), i64>,
    /// Expiry order of `other`: `(ts_ms, key)`, non-decreasing in time.
    other_by_ts: VecDeque<(i64, (u64, i64))>,
}

impl Dedup {
    /// Records `(exchange, id)` kept at `ts_ms`; false when it is already remembered.
    /// Calls must come in non-decreasing `ts_ms`.
    #[inline]
    pub fn insert(&mut self, exchange: u64, id: i64, ts_ms: i64) -> bool {
        let r = match self.runs.iter().position(|r| r.0 == exchange) {
            Some(r) => r,
            None => {
                self.runs.push((exchange, VecDeque::new()));
                self.runs.len() - 1
            }
        };
        let run = &mut self.runs[r].1;
        let key = (exchange, id);
        if run.back().is_none_or(|b| id > b.0) {
            if !self.other.is_empty() && self.other.contains_key(&key) {
                return false;
            }
            run.push_back((id, ts_ms));
            return true;
        }
        if run.binary_search_by_key(&id, |e| e.0).is_ok() || self.other.contains_key(&key) {
            return false;
        }
        self.other.insert(key, ts_ms);
        self.other_by_ts.push_back((ts_ms, key));
        true
    }

    /// Forgets ids of trades older than `before`.
    pub fn expire(&mut self, before: i64) {
        for (_, run) in self.runs.iter_mut() {
            while run.front().is_some_and(|e| e.1 < before) {
                run.pop_front();
            }
        }
        while let Some(&(ts, key)) = self.other_by_ts.front() {
            if ts >= before {
                break;
            }
            self.other_by_ts.pop_front();
            self.other.remove(&key);
        }
    }

    /// Number of ids remembered.
    pub fn len(&self) -> usize {
        self.runs.iter().map(|r| r.1.len()).sum::<usize>() + self.other.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Dedup;

    #[test]
    fn bars_dedup_runs_and_out_of_order_ids() {
        let mut d = Dedup::default();
        assert!(d.insert(0, 5, 10));
        assert!(d.insert(0, 7, 10));
        assert!(!d.insert(0, 5, 11), "in the run");
        assert!(d.insert(0, 6, 11), "out of order, new");
        assert!(!d.insert(0, 6, 12), "out of order, seen");
        assert!(d.insert(1, 5, 12), "another exchange");
        assert!(d.insert(0, 9, 13));
        assert_eq!(d.len(), 5);
        d.expire(11);
        assert_eq!(d.len(), 3);
        assert!(d.insert(0, 5, 14), "forgotten after the horizon");
        assert!(!d.insert(0, 6, 14) && !d.insert(0, 9, 14));
        d.expire(100);
        assert_eq!(d.len(), 0);
        assert!(d.insert(0, 1, 100), "an empty run takes any id");
    }

    /// The run fast path (ids compared with the last one) against a plain set with the
    /// same expiry, on seeded streams of increasing ids with a few out of order, whole
    /// ranges repeated (a feed reconnecting), two exchanges, and expiries between.
    #[test]
    fn bars_dedup_fast_path_equals_a_set() {
        use std::collections::HashMap;
        for seed in 0..20u64 {
            let mut state = seed;
            let mut rand = |n: u64| crate::splitmix::splitmix64(&mut state) % n;
            let mut fast = Dedup::default();
            // The reference: every kept (exchange, id) with the time it was kept.
            let mut set: HashMap<(u64, i64), i64> = HashMap::new();
            let mut next_id = [1_000i64, 50_000];
            let mut ts = 0i64;
            let (mut kept, mut dropped) = (0, 0);
            for step in 0..20_000 {
                ts += rand(3) as i64;
                let ex = rand(2);
                let id = match rand(100) {
                    // A repeated range: an id up to 200 back.
                    0..=4 => next_id[ex as usize] - 1 - rand(200) as i64,
                    // Out of order: a little ahead, leaving a gap to fill later.
                    5..=7 => next_id[ex as usize] + 1 + rand(5) as i64,
                    _ => {
                        next_id[ex as usize] += 1;
                        next_id[ex as usize]
                    }
                };
                let want = !set.contains_key(&(ex, id));
                if want {
                    set.insert((ex, id), ts);
                }
                assert_eq!(
                    fast.insert(ex, id, ts),
                    want,
                    "seed {seed} step {step}: {ex}/{id}"
                );
                if want {
                    kept += 1;
                } else {
                    dropped += 1;
                }
                if step % 997 == 0 {
                    let before = ts - 300;
                    fast.expire(before);
                    set.retain(|_, t| *t >= before);
                    assert_eq!(fast.len(), set.len(), "seed {seed} step {step}");
                }
            }
            assert!(
                kept > 10_000 && dropped > 100,
                "seed {seed}: {kept} kept, {dropped} dropped"
            );
        }
    }
}
