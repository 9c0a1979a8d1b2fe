//! Operator state snapshots at checkpoint cuts: when an operator has processed every
//! input before a cut (a multiple of the checkpoint interval in event time) it hands its
//! state to a [`SnapshotSink`]; after a restart it starts from the state of a cut and
//! ignores input before it.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The state of one operator on one worker at one cut.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The operator ([`Checkpointed::NAME`]).
    pub operator: String,
    /// The worker index.
    pub worker: usize,
    /// Total workers of the job when it was taken.
    pub peers: usize,
    /// The cut: the state reflects every input with window end before it, none after.
    pub cut: i64,
    /// The operator's state, bincode-encoded.
    pub state: Vec<u8>,
}

/// Receives snapshots; it must make them durable before returning (an operator only
/// moves past a cut after handing over its snapshot).
pub type SnapshotSink = Rc<dyn Fn(Snapshot)>;

/// States of a cut to restart from, by (operator, worker).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Restore {
    /// The cut.
    pub cut: i64,
    /// Encoded states by (operator, worker).
    pub states: HashMap<(String, usize), Vec<u8>>,
}

impl std::fmt::Debug for Restore {
    /// The cut and the number of states (not their bytes): job descriptions that embed
    /// a plan stay short and equal on every process.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restore")
            .field("cut", &self.cut)
            .field("states", &self.states.len())
            .finish()
    }
}

/// How the feature operators take part in checkpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointPlan {
    /// Event time between cuts, ms; cuts are its multiples.
    pub interval_ms: i64,
    /// Cuts kept: when the frontier jumps over several cuts, only the newest this many
    /// are taken (older ones would be pruned at once).
    pub keep: usize,
    /// The cut to restart from, when there is one.
    pub restore: Option<Arc<Restore>>,
}

/// A checkpoint plan with the sink of this worker's snapshots, handed to operators.
#[derive(Clone)]
pub struct Checkpointing {
    /// Interval and restore point.
    pub plan: CheckpointPlan,
    /// Where snapshots go.
    pub sink: SnapshotSink,
}

impl Checkpointing {
    /// The checkpointer of operator `C` on `worker` of `peers`.
    pub fn checkpointer<C: Checkpointed>(&self, worker: usize, peers: usize) -> Checkpointer {
        Checkpointer::new(C::NAME, worker, peers, &self.plan, self.sink.clone())
    }
}

/// An operator that takes part in checkpoints: it declares its name (unique among the
/// operators of a job) and the type of its state, as tables are declared by the
/// operator that owns them.
pub trait Checkpointed {
    /// The operator's name in checkpoints.
    const NAME: &'static str;
    /// Its state at a cut.
    type State: Serialize + DeserializeOwned;
}

/// A checkpointed operator as a value: its name and a check that bytes decode as its
/// state, so a checkpoint can be validated before a job starts from it.
///
/// ```
/// use operators::checkpoint::{encode, StateKind};
/// use operators::grid::DenseGridOp;
/// let grid = StateKind::of::<DenseGridOp>();
/// let empty = encode(&operators::grid::GridState::default());
/// assert_eq!(grid.name, "grid");
/// assert!(grid.decodes(&empty));
/// assert!(!grid.decodes(&[1, 2, 3]));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct StateKind {
    /// The operator's name.
    pub name: &'static str,
    check: fn(&[u8]) -> bool,
}

/// Kinds are equal when their operators' names are (names are unique in a job).
impl PartialEq for StateKind {
    fn eq(&self, other: &StateKind) -> bool {
        self.name == other.name
    }
}

impl Eq for StateKind {}

impl StateKind {
    /// The kind of operator `C`.
    pub fn of<C: Checkpointed>() -> StateKind {
        StateKind {
            name: C::NAME,
            check: |bytes| decode::<C::State>(bytes).is_some(),
        }
    }

    /// True when `bytes` decode as this operator's state.
    pub fn decodes(&self, bytes: &[u8]) -> bool {
        (self.check)(bytes)
    }
}

/// Encodes a state.
pub fn encode<T: Serialize>(state: &T) -> Vec<u8> {
    bincode::serialize(state).unwrap_or_default()
}

/// Decodes a state; `None` when the bytes are not one.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    bincode::deserialize(bytes).ok()
}

/// One operator's side of a checkpoint plan on one worker: which cut is due next, the
/// state to start from, and where snapshots go.
pub struct Checkpointer {
    operator: &'static str,
    worker: usize,
    peers: usize,
    interval_ms: i64,
    restore: Option<Arc<Restore>>,
    sink: SnapshotSink,
    next_cut: Option<i64>,
    keep: i64,
}

impl Checkpointer {
    /// Snapshots of `operator` on `worker` of `peers` go to `sink`.
    pub fn new(
        operator: &'static str,
        worker: usize,
        peers: usize,
        plan: &CheckpointPlan,
        sink: SnapshotSink,
    ) -> Checkpointer {
        Checkpointer {
            operator,
            worker,
            peers,
            interval_ms: plan.interval_ms.max(1),
            next_cut: plan
                .restore
                .as_ref()
                .map(|r| r.cut.saturating_add(plan.interval_ms.max(1))),
            restore: plan.restore.clone(),
            sink,
            keep: plan.keep.max(1) as i64,
        }
    }

    /// The restored state of this operator and worker, and the cut input before which
    /// must be ignored.
    pub fn restored<T: DeserializeOwned>(&self) -> Option<(i64, T)> {
        let r = self.restore.as_ref()?;
        let bytes = r.states.get(&(self.operator.to_string(), self.worker))?;
        match decode(bytes) {
            Some(state) => Some((r.cut, state)),
            None => {
                tracing::error!(
                    operator = self.operator,
                    worker = self.worker,
                    cut = r.cut,
                    "undecodable checkpoint state; starting empty"
                );
                None
            }
        }
    }

    /// The cut restored from (input with a window end before it is ignored).
    pub fn restored_cut(&self) -> Option<i64> {
        self.restore.as_ref().map(|r| r.cut)
    }

    /// Called before processing input with window end `key` (or once everything up to
    /// the frontier `key` is processed): the cuts now due, oldest first, when
    /// `key` reached a cut not yet taken. All returned cuts share one state (nothing was
    /// processed between them); at most the last few are returned.
    pub fn due(&mut self, key: i64) -> Vec<i64> {
        if key == i64::MAX || key == i64::MIN {
            return Vec::new();
        }
        let i = self.interval_ms;
        let cut = key.div_euclid(i) * i;
        let from = match self.next_cut {
            Some(n) if cut < n => return Vec::new(),
            Some(n) => n.max(cut - (self.keep - 1) * i),
            None => cut,
        };
        self.next_cut = Some(cut + i);
        (0..)
            .map(|k| from + k * i)
            .take_while(|c| *c <= cut)
            .collect()
    }

    /// Hands the state (built only when needed) to the sink for every cut that `key`
    /// makes due (see [`Checkpointer::due`]).
    pub fn take_due<T: Serialize>(&mut self, key: i64, state: impl FnOnce() -> T) {
        let cuts = self.due(key);
        if !cuts.is_empty() {
            self.take(&cuts, &state());
        }
    }

    /// Hands the state for `cuts` to the sink.
    pub fn take<T: Serialize>(&self, cuts: &[i64], state: &T) {
        if cuts.is_empty() {
            return;
        }
        let bytes = encode(state);
        for &cut in cuts {
            (self.sink)(Snapshot {
                operator: self.operator.to_string(),
                worker: self.worker,
                peers: self.peers,
                cut,
                state: bytes.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn collector() -> (SnapshotSink, Rc<RefCell<Vec<Snapshot>>>) {
        let got = Rc::new(RefCell::new(Vec::new()));
        let g = got.clone();
        (Rc::new(move |s| g.borrow_mut().push(s)), got)
    }

    #[test]
    fn cuts_are_due_once_each_and_a_jump_keeps_only_the_last_few() {
        let (sink, _) = collector();
        let plan = CheckpointPlan {
            interval_ms: 10,
            keep: 3,
            restore: None,
        };
        let mut c = Checkpointer::new("grid", 0, 1, &plan, sink);
        assert_eq!(c.due(i64::MIN), Vec::<i64>::new());
        assert_eq!(c.due(25), vec![20]);
        assert_eq!(c.due(29), Vec::<i64>::new());
        assert_eq!(c.due(30), vec![30]);
        assert_eq!(c.due(55), vec![40, 50]);
        assert_eq!(c.due(1_000), vec![980, 990, 1_000]);
    }

    #[test]
    fn a_restored_operator_continues_after_its_cut() {
        let (sink, got) = collector();
        let mut states = HashMap::new();
        states.insert(("grid".to_string(), 1), encode(&7u32));
        let plan = CheckpointPlan {
            interval_ms: 10,
            keep: 3,
            restore: Some(Arc::new(Restore { cut: 20, states })),
        };
        let mut c = Checkpointer::new("grid", 1, 2, &plan, sink);
        assert_eq!(c.restored::<u32>(), Some((20, 7)));
        assert_eq!(c.due(25), Vec::<i64>::new());
        let cuts = c.due(31);
        assert_eq!(cuts, vec![30]);
        c.take(&cuts, &8u32);
        let got = got.borrow();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].cut, got[0].worker, got[0].peers), (30, 1, 2));
        assert_eq!(decode::<u32>(&got[0].state), Some(8));
    }
}
