//! Restatements in the per-series operators (indicators, risk): each series keeps, for
//! the grid points inside the allowed lateness, the state before the point, the point
//! and the revision of its rows; a restated point rewinds the series to the state
//! before it and steps forward again over the kept points, sending every row again
//! with its revision + 1. A late record therefore costs the steps from its window to
//! the newest one, for its series only; with no lateness nothing is kept.

use std::collections::VecDeque;

use rustc_hash::FxHashMap as HashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::grid::GridPoint;
use crate::Symbol;

/// The math of one series of a restatable operator, one grid point at a time.
pub trait SeriesStep: Clone + Serialize + DeserializeOwned + 'static {
    /// What a step leaves behind for a restatement of it (the alerts it raised, so
    /// that one no longer raised is retracted).
    type Memo: Clone + Default + 'static;
    /// The rows it writes.
    type Out;
    /// Steps over `point`, writing its rows stamped with `revision`. `memo` holds what
    /// the previous revision of this step wrote (default at revision 0) and is left
    /// with what this one wrote.
    fn step(
        &mut self,
        point: &GridPoint,
        revision: u32,
        memo: &mut Self::Memo,
        out: &mut Self::Out,
    );
}

/// One kept step of a series.
#[derive(Clone)]
struct Kept<S: SeriesStep> {
    before: S,
    point: GridPoint,
    memo: S::Memo,
    revision: u32,
}

/// One series: its state, the last window end stepped and the kept steps.
#[derive(Clone)]
struct Track<S: SeriesStep> {
    state: S,
    last_end: i64,
    kept: VecDeque<Kept<S>>,
    /// The first kept step whose point changed since the last replay.
    dirty: Option<usize>,
}

impl<S: SeriesStep> Track<S> {
    /// Steps again from the first changed point to the newest, each at revision + 1.
    fn replay(&mut self, out: &mut S::Out) {
        let Some(first) = self.dirty.take() else {
            return;
        };
        let mut state = self.kept[first].before.clone();
        for k in self.kept.iter_mut().skip(first) {
            k.before = state.clone();
            k.revision += 1;
            state.step(&k.point, k.revision, &mut k.memo, out);
        }
        self.state = state;
    }

    /// The state before the first step at or after `cut` (the current one when there
    /// is none).
    fn state_at(&self, cut: i64) -> &S {
        self.kept
            .iter()
            .find(|k| k.point.window_end >= cut)
            .map_or(&self.state, |k| &k.before)
    }
}

/// The series of a per-series operator, by (symbol, resolution), with the history a
/// restatement within `lateness_ms` needs.
pub struct Restatable<S: SeriesStep> {
    lateness_ms: i64,
    tracks: HashMap<(Symbol, i64), Track<S>>,
    /// Series with a changed point not yet replayed.
    dirty: Vec<(Symbol, i64)>,
    /// Restated points older than the kept history (none when the grid and this
    /// operator share the lateness).
    pub missed: u64,
}

/// A [`Restatable`] at a checkpoint cut: each series' state, in key order.
pub type TrackStates<S> = Vec<((Symbol, i64), S)>;

impl<S: SeriesStep> Restatable<S> {
    /// Empty, keeping what a restatement within `lateness_ms` needs.
    pub fn new(lateness_ms: i64) -> Restatable<S> {
        Restatable {
            lateness_ms,
            tracks: HashMap::default(),
            dirty: Vec::new(),
            missed: 0,
        }
    }

    /// Takes one grid point: a point after the series' last is stepped (after replaying
    /// any restatement waiting on the series); a point at a window already stepped is a
    /// restatement, replayed at the next [`Restatable::flush`] or the next new point.
    pub fn push(&mut self, point: GridPoint, new: impl FnOnce() -> S, out: &mut S::Out) {
        let key = (point.symbol.clone(), point.resolution_ms);
        let track = self.tracks.entry(key.clone()).or_insert_with(|| Track {
            state: new(),
            last_end: i64::MIN,
            kept: VecDeque::new(),
            dirty: None,
        });
        let end = point.window_end;
        if end <= track.last_end {
            match track
                .kept
                .binary_search_by_key(&end, |k| k.point.window_end)
            {
                Ok(i) => {
                    track.kept[i].point = point;
                    if track.dirty.is_none() {
                        self.dirty.push(key);
                    }
                    track.dirty = Some(track.dirty.map_or(i, |d| d.min(i)));
                }
                Err(_) => self.missed += 1,
            }
            return;
        }
        track.replay(out);
        track.last_end = end;
        if self.lateness_ms <= 0 {
            let mut memo = S::Memo::default();
            track.state.step(&point, 0, &mut memo, out);
            return;
        }
        let before = track.state.clone();
        let mut memo = S::Memo::default();
        track.state.step(&point, 0, &mut memo, out);
        let oldest = end - self.lateness_ms - point.resolution_ms;
        track.kept.push_back(Kept {
            before,
            point,
            memo,
            revision: 0,
        });
        while track
            .kept
            .front()
            .is_some_and(|k| k.point.window_end <= oldest)
        {
            track.kept.pop_front();
            track.dirty = track.dirty.map(|d| d.saturating_sub(1));
        }
    }

    /// Replays every series with a restated point.
    pub fn flush(&mut self, out: &mut S::Out) {
        for key in self.dirty.drain(..) {
            if let Some(track) = self.tracks.get_mut(&key) {
                track.replay(out);
            }
        }
    }

    /// Every series' state before its first point at or after `cut`, in key order:
    /// taken once the lateness has passed the cut, it holds the restatements of the
    /// windows before it.
    pub fn snapshot_at(&self, cut: i64) -> TrackStates<S> {
        let mut v: TrackStates<S> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.last_end != i64::MIN)
            .map(|(k, t)| (k.clone(), t.state_at(cut).clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Continues from restored states (points before the cut are not sent again).
    pub fn restore(&mut self, states: TrackStates<S>) {
        for (key, state) in states {
            self.tracks.insert(
                key,
                Track {
                    state,
                    last_end: i64::MIN,
                    kept: VecDeque::new(),
                    dirty: None,
                },
            );
        }
    }
}

#[cfg(test)]
#[path = "restate_tests.rs"]
mod tests;
