//! The one mechanism of every rolling operator: records wait by window end until the
//! input frontier reaches it, then the operator's math runs once per window, in time
//! order, with checkpoint cuts taken between windows; this module holds the
//! capabilities, so an operator file holds only its math (a [`WindowLogic`]).
//!
//! A stream fed to a window operator sends each record at a time at or before its
//! window end (the dense grid sends the point ending at `e` once its input frontier
//! reaches `e`), so once the input frontier is at `f`, every window ending at or before
//! `f` is complete. A restated record (late data) comes after its window was processed;
//! it is handed to the logic at once, with its window end, and the logic tells it from
//! a new one by that end.

use std::collections::BTreeMap;
use std::time::Instant;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::ParallelizationContract;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

use crate::checkpoint::{Checkpointed, Checkpointer, Checkpointing};
use crate::Symbol;

/// The math of a rolling operator: state per key, advanced one complete window at a
/// time. Its checkpoint name and state type come from [`Checkpointed`].
pub trait WindowLogic: Checkpointed + 'static {
    /// The records it reads.
    type In: Clone + 'static;
    /// What it writes: `Vec<Row>` for one output, `(Vec<A>, Vec<B>)` for two.
    type Out: WindowOutputs;
    /// The window end of a record.
    fn window_end(record: &Self::In) -> i64;
    /// Processes every record of the window ending at `end` (in arrival order), pushing
    /// rows into `out`.
    fn on_window(&mut self, end: i64, records: Vec<Self::In>, out: &mut Self::Out);
    /// The state at a checkpoint cut (deterministic: same state, same bytes).
    fn snapshot(&self) -> Self::State;
    /// Continues from a restored state.
    fn restore(&mut self, state: Self::State);
    /// Called once, when the input has ended.
    fn on_end(&mut self) {}
    /// Called after the complete windows of an activation: sends what restated records
    /// changed (an operator that replays a restatement lazily does it here at the
    /// latest).
    fn flush(&mut self, _out: &mut Self::Out) {}
    /// How long after a cut its snapshot is taken, ms: an operator whose windows late
    /// data can restate waits out the allowed lateness, then takes the state at the cut
    /// from its history ([`WindowLogic::snapshot_at`]), restatements included.
    fn cut_delay(&self) -> i64 {
        0
    }
    /// The state at `cut`, once [`WindowLogic::cut_delay`] has passed it (by default
    /// the current state, for an operator without delay).
    fn snapshot_at(&self, _cut: i64) -> Self::State {
        self.snapshot()
    }
}

/// Takes the snapshots of the cuts due at `key` (a window end, or the frontier): the
/// current state, or with a delay, the state at each cut once the delay has passed it.
fn take_cuts<L: WindowLogic>(cp: &mut Checkpointer, logic: &mut L, key: i64, out: &mut L::Out) {
    let delay = logic.cut_delay();
    if delay == 0 {
        cp.take_due(key, || logic.snapshot());
        return;
    }
    // The end of input (`i64::MAX`) takes no cut, nor does the start (`i64::MIN`).
    let cuts = cp.due(if key == i64::MAX {
        key
    } else {
        key.saturating_sub(delay)
    });
    if !cuts.is_empty() {
        logic.flush(out);
        for cut in cuts {
            cp.take(&[cut], &logic.snapshot_at(cut));
        }
    }
}

/// The capabilities of an operator's outputs, held at its input frontier: the one
/// place where this crate's operators move and drop capabilities.
pub struct Held(Option<Vec<Capability<i64>>>);

impl Held {
    /// Holds the capabilities an operator was built with, one per output.
    pub fn new(caps: Vec<Capability<i64>>) -> Held {
        Held(Some(caps))
    }

    /// The capabilities, until the input has ended.
    pub fn caps(&self) -> Option<&[Capability<i64>]> {
        self.0.as_deref()
    }

    /// Sends the rows buffered in `out` at the held capabilities; once nothing is held
    /// (the input ended), drops them.
    pub fn send<O: WindowOutputs>(&self, out: &mut O, handles: &mut O::Handles) {
        match self.caps() {
            Some(caps) => out.send(handles, caps),
            None => out.clear(),
        }
    }

    /// Moves every capability up to `frontier`; at the end of input (`i64::MAX`) drops
    /// them all.
    pub fn advance(&mut self, frontier: i64) {
        if frontier == i64::MAX {
            self.0 = None;
        } else if let Some(caps) = self.0.as_mut() {
            for c in caps.iter_mut() {
                if *c.time() < frontier {
                    c.downgrade(&frontier);
                }
            }
        }
    }
}

/// The outputs of an operator, built and flushed in one place.
pub trait WindowOutputs: Default + 'static {
    /// The output streams.
    type Streams<'scope>;
    /// The output handles.
    type Handles: 'static;
    /// Adds the outputs to `builder`.
    fn new_outputs<'scope>(
        builder: &mut OperatorBuilder<'scope, i64>,
    ) -> (Self::Handles, Self::Streams<'scope>);
    /// Sends the buffered rows, output `k` at `caps[k]`.
    fn send(&mut self, handles: &mut Self::Handles, caps: &[Capability<i64>]);
    /// Drops buffered rows (the operator has no capability left).
    fn clear(&mut self);
    /// Rows buffered.
    fn len(&self) -> usize;
    /// True when no row is buffered.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The handle of one `Vec<A>` output.
type VecOutput<A> = OutputBuilder<i64, CapacityContainerBuilder<Vec<A>>>;

fn send_vec<A: Clone + 'static>(
    rows: &mut Vec<A>,
    handle: &mut VecOutput<A>,
    cap: &Capability<i64>,
) {
    if !rows.is_empty() {
        handle.activate().session(cap).give_iterator(rows.drain(..));
    }
}

impl<A: Clone + 'static> WindowOutputs for Vec<A> {
    type Streams<'scope> = StreamVec<'scope, i64, A>;
    type Handles = VecOutput<A>;

    fn new_outputs<'scope>(
        builder: &mut OperatorBuilder<'scope, i64>,
    ) -> (Self::Handles, Self::Streams<'scope>) {
        let (out, stream) = builder.new_output();
        (OutputBuilder::from(out), stream)
    }

    fn send(&mut self, handles: &mut Self::Handles, caps: &[Capability<i64>]) {
        send_vec(self, handles, &caps[0]);
    }

    fn clear(&mut self) {
        Vec::clear(self);
    }

    fn len(&self) -> usize {
        Vec::len(self)
    }
}

impl<A: Clone + 'static, B: Clone + 'static> WindowOutputs for (Vec<A>, Vec<B>) {
    type Streams<'scope> = (StreamVec<'scope, i64, A>, StreamVec<'scope, i64, B>);
    type Handles = (VecOutput<A>, VecOutput<B>);

    fn new_outputs<'scope>(
        builder: &mut OperatorBuilder<'scope, i64>,
    ) -> (Self::Handles, Self::Streams<'scope>) {
        let (a, sa) = <Vec<A>>::new_outputs(builder);
        let (b, sb) = <Vec<B>>::new_outputs(builder);
        ((a, b), (sa, sb))
    }

    fn send(&mut self, handles: &mut Self::Handles, caps: &[Capability<i64>]) {
        send_vec(&mut self.0, &mut handles.0, &caps[0]);
        send_vec(&mut self.1, &mut handles.1, &caps[1]);
    }

    fn clear(&mut self) {
        self.0.clear();
        self.1.clear();
    }

    fn len(&self) -> usize {
        self.0.len() + self.1.len()
    }
}

/// The checkpoint form of per-series states: a list in key order (same states, same
/// bytes).
pub type SeriesStates<S> = Vec<((Symbol, i64), S)>;

/// Rows an operator buffers before it sends them and yields (when many windows complete
/// at once).
const MAX_BUFFERED: usize = 1 << 16;
/// Work per activation before an operator yields (when many windows complete at once).
const BUDGET: std::time::Duration = std::time::Duration::from_millis(20);

/// Extension trait: runs a [`WindowLogic`] over a stream.
///
/// ```
/// use operators::checkpoint::Checkpointed;
/// use operators::window::{WindowLogic, WindowOperator};
/// use timely::dataflow::channels::pact::Pipeline;
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Extract;
///
/// /// Sums the values of each window end.
/// #[derive(Default)]
/// struct Sums;
/// impl Checkpointed for Sums {
///     const NAME: &'static str = "sums";
///     type State = ();
/// }
/// impl WindowLogic for Sums {
///     type In = (i64, i64);
///     type Out = Vec<(i64, i64)>;
///     fn window_end(r: &(i64, i64)) -> i64 { r.0 }
///     fn on_window(&mut self, end: i64, rs: Vec<(i64, i64)>, out: &mut Self::Out) {
///         out.push((end, rs.iter().map(|r| r.1).sum()));
///     }
///     fn snapshot(&self) {}
///     fn restore(&mut self, _: ()) {}
/// }
///
/// let sums = timely::execute_directly(|worker| {
///     worker.dataflow::<i64, _, _>(|scope| {
///         vec![(2, 1), (1, 5), (2, 3)]
///             .to_stream(scope)
///             .window_operator(Pipeline, Sums, None)
///             .capture()
///     })
/// });
/// let got: Vec<_> = sums.extract().into_iter().flat_map(|(_, v)| v).collect();
/// assert_eq!(got, vec![(1, 5), (2, 4)]);
/// ```
pub trait WindowOperator<'scope, D> {
    /// Runs `logic` once per complete window; with `checkpoint`, its state is
    /// snapshotted at every cut and restored after a restart (records of windows before
    /// the restored cut are ignored).
    fn window_operator<L, P>(
        self,
        pact: P,
        logic: L,
        checkpoint: Option<Checkpointing>,
    ) -> <L::Out as WindowOutputs>::Streams<'scope>
    where
        L: WindowLogic<In = D>,
        P: ParallelizationContract<i64, Vec<D>>;
}

impl<'scope, D: Clone + 'static> WindowOperator<'scope, D> for StreamVec<'scope, i64, D> {
    fn window_operator<L, P>(
        self,
        pact: P,
        mut logic: L,
        checkpoint: Option<Checkpointing>,
    ) -> <L::Out as WindowOutputs>::Streams<'scope>
    where
        L: WindowLogic<In = D>,
        P: ParallelizationContract<i64, Vec<D>>,
    {
        let (index, peers) = (self.scope().index(), self.scope().peers());
        let scope = self.scope();
        let mut builder = OperatorBuilder::new(L::NAME.to_owned(), self.scope());
        let activator = scope.activator_for(builder.operator_info().address);
        let mut input = builder.new_input(self, pact);
        let (mut handles, streams) = L::Out::new_outputs(&mut builder);
        builder.build(move |caps| {
            let mut held = Held::new(caps);
            let mut cp = checkpoint.map(|c| c.checkpointer::<L>(index, peers));
            let skip_before = cp
                .as_ref()
                .and_then(|c| c.restored_cut())
                .unwrap_or(i64::MIN);
            if let Some((_, state)) = cp.as_ref().and_then(|c| c.restored::<L::State>()) {
                logic.restore(state);
            }
            let mut pending: BTreeMap<i64, Vec<D>> = BTreeMap::new();
            // Reused across invocations (growing fresh vectors each time costs more).
            let mut out = L::Out::default();
            let mut ended = false;
            move |frontiers| {
                input.for_each(|_, data| {
                    for r in data.drain(..) {
                        let end = L::window_end(&r);
                        if end >= skip_before {
                            pending.entry(end).or_default().push(r);
                        }
                    }
                });
                let f = frontiers[0].frontier().first().copied().unwrap_or(i64::MAX);
                let started = Instant::now();
                while let Some(entry) = pending.first_entry() {
                    if *entry.key() > f {
                        break;
                    }
                    if out.len() >= MAX_BUFFERED || started.elapsed() > BUDGET {
                        // Many windows completed at once (the input jumped ahead): send
                        // what is done, move the outputs' time up to the window before
                        // the next (every window up to it is out), and go on at the next
                        // activation, so that the operators downstream take these rows
                        // first and memory holds a few windows, not the whole jump.
                        let next = *entry.key();
                        held.send(&mut out, &mut handles);
                        held.advance(next - 1);
                        activator.activate();
                        return;
                    }
                    if let Some(cp) = cp.as_mut() {
                        // The state before the first window at or after a cut.
                        take_cuts(cp, &mut logic, *entry.key(), &mut out);
                    }
                    let (end, records) = entry.remove_entry();
                    logic.on_window(end, records, &mut out);
                }
                logic.flush(&mut out);
                if let Some(cp) = cp.as_mut() {
                    take_cuts(cp, &mut logic, f, &mut out);
                }
                if f == i64::MAX && !ended {
                    ended = true;
                    logic.on_end();
                }
                held.send(&mut out, &mut handles);
                held.advance(f);
            }
        });
        streams
    }
}
