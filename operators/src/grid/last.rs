//! The `last_bars` operator: the last window end per resolution over the whole input,
//! broadcast to every worker once the input is complete.

use std::collections::BTreeMap;

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::{Stream, StreamVec};

use crate::Bar;

/// Extension trait: the last bar end per resolution, sent to all workers at the end.
pub trait LastBars<'scope> {
    /// Emits `(resolution_ms, max window_end)` of this worker's bars once its input is
    /// complete, broadcast to every worker (each keeps the max over all senders).
    fn last_bars(self) -> StreamVec<'scope, i64, (i64, i64)>;
}

impl<'scope> LastBars<'scope> for Stream<'scope, i64, Vec<Bar>> {
    fn last_bars(self) -> StreamVec<'scope, i64, (i64, i64)> {
        self.unary_frontier(Pipeline, "LastBars", |cap, _| {
            let mut cap = Some(cap);
            let mut last: BTreeMap<i64, i64> = BTreeMap::new();
            move |(input, frontier), output| {
                input.for_each(|_, data| {
                    for bar in data.iter() {
                        let v = last.entry(bar.resolution_ms).or_insert(bar.window_end);
                        *v = (*v).max(bar.window_end);
                    }
                });
                match frontier.frontier().first() {
                    Some(t) => {
                        if let Some(c) = cap.as_mut() {
                            if c.time() < t {
                                c.downgrade(t);
                            }
                        }
                    }
                    None => {
                        if let Some(c) = cap.take() {
                            output
                                .session(&c)
                                .give_iterator(std::mem::take(&mut last).into_iter());
                        }
                    }
                }
            }
        })
        .broadcast()
    }
}
