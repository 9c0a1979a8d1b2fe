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
}
