//! Tests of the dense grid's timing: every point is sent at a timely time no later than
//! its window end, even when the bars complete before the `last_bars` side input.

use timely::dataflow::operators::capture::{Capture, Event};
use timely::dataflow::operators::vec::input::Handle as InputHandle;
use timely::dataflow::operators::Input;

use crate::comoments::tests::R;
use crate::grid::DenseGrid;
use crate::Bar;

/// Bars of symbol `A`.
fn bar(start: i64, close: f64) -> Bar {
    crate::comoments::tests::bar("A", start, close, 1.0)
}

/// The bars end (frontier jumps to the end of input) while the side input is still
/// open at a later time: the final fill up to the last bar must still be sent at times
/// before the points' window ends, or a downstream Parquet partition could be written
/// before its last rows arrive.
#[test]
fn points_filled_at_the_end_are_sent_before_their_window_end() {
    let captured = timely::execute_directly(move |worker| {
        let mut bars = InputHandle::<i64, Bar>::new();
        let mut side = InputHandle::<i64, (i64, i64)>::new();
        let rx = worker.dataflow::<i64, _, _>(|scope| {
            let ends = scope.input_from(&mut side);
            scope
                .input_from(&mut bars)
                .dense_grid(ends, 0, None)
                .capture()
        });
        bars.send(bar(0, 1.0));
        bars.send(bar(R, 2.0));
        bars.advance_to(R);
        side.advance_to(R);
        for _ in 0..10 {
            worker.step();
        }
        // The side input runs ahead, then the bars complete.
        side.advance_to(10 * R);
        bars.close();
        for _ in 0..10 {
            worker.step();
        }
        side.send((R, 4 * R));
        side.close();
        while worker.step() {}
        rx
    });
    let seen: Vec<(i64, i64)> = captured
        .try_iter()
        .flat_map(|e| match e {
            Event::Messages(t, points) => {
                let t = *t.expect_singleton();
                points.into_iter().map(|p| (t, p.window_end)).collect()
            }
            Event::Progress(_) => Vec::new(),
        })
        .collect();
    let ends: Vec<i64> = seen.iter().map(|(_, e)| *e).collect();
    assert_eq!(ends, vec![R, 2 * R, 3 * R, 4 * R]);
    for (time, end) in seen {
        assert!(time < end, "point ending at {end} sent at time {time}");
    }
}
