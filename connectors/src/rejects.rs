//! The dead-letter writer of a backfill: every rejected record as a JSON line in
//! `<output>/_rejects/part-00000.jsonl`, written by worker 0.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use operators::Reject;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

use crate::decode::unseq;
use crate::manifest::{RejectsSummary, RunEvent};
use crate::store::Location;
use crate::sync::ErrorSlot;

/// The rejects file, relative to the output root. Fixed, so a rerun overwrites it.
pub const REJECTS_FILE: &str = "_rejects/part-00000.jsonl";

/// One dead-letter line.
///
/// ```
/// use operators::{Reject, RejectReason};
/// let r = Reject { reason: RejectReason::InvalidPrice, source: "a.csv".into(), position: 3,
///     seq: 0, detail: "price is -1".into(), raw: "1,X,-1,1,true".into() };
/// let line = connectors::rejects::to_json_line(&r, &[]);
/// assert!(line.starts_with(r#"{"reason":"invalid_price","source":"a.csv","position":3"#));
/// ```
pub fn to_json_line(r: &Reject, inputs: &[String]) -> String {
    let source = if r.source.is_empty() {
        inputs
            .get(unseq(r.seq).0 as usize)
            .cloned()
            .unwrap_or_default()
    } else {
        r.source.clone()
    };
    let position = if r.source.is_empty() {
        unseq(r.seq).1
    } else {
        r.position
    };
    let line = RejectLine {
        reason: r.reason.as_str(),
        source: &source,
        position,
        detail: &r.detail,
        raw: &r.raw,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// One dead-letter line; field order is the file's column order.
#[derive(serde::Serialize)]
struct RejectLine<'a> {
    reason: &'a str,
    source: &'a str,
    position: u64,
    detail: &'a str,
    raw: &'a str,
}

/// Extension trait: write rejects to the dead-letter file.
pub trait WriteRejects<'scope> {
    /// Writes every reject (all routed to worker 0); emits one summary when complete.
    fn write_rejects(
        self,
        output: Location,
        inputs: Arc<Vec<String>>,
        errors: ErrorSlot,
    ) -> StreamVec<'scope, i64, RunEvent>;
}

impl<'scope> WriteRejects<'scope> for StreamVec<'scope, i64, Reject> {
    fn write_rejects(
        self,
        output: Location,
        inputs: Arc<Vec<String>>,
        errors: ErrorSlot,
    ) -> StreamVec<'scope, i64, RunEvent> {
        let index = self.scope().index();
        self.unary_frontier(Exchange::new(|_| 0), "WriteRejects", move |cap, _| {
            let mut cap = Some(cap);
            let mut buffer: Vec<u8> = Vec::new();
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            move |(input, frontier), out| {
                input.for_each(|_, data| {
                    for r in data.drain(..) {
                        *counts.entry(r.reason.as_str().to_string()).or_default() += 1;
                        let _ = writeln!(buffer, "{}", to_json_line(&r, &inputs));
                    }
                });
                if !frontier.is_empty() {
                    if let (Some(c), Some(t)) = (cap.as_mut(), frontier.frontier().first()) {
                        if c.time() < t {
                            c.downgrade(t);
                        }
                    }
                    return;
                }
                let Some(c) = cap.take() else { return };
                if index != 0 || errors.is_set() {
                    return;
                }
                let total = counts.values().sum();
                match output.put(REJECTS_FILE, std::mem::take(&mut buffer)) {
                    Ok(()) => {
                        let summary = RejectsSummary {
                            path: REJECTS_FILE.to_string(),
                            total,
                            by_reason: std::mem::take(&mut counts),
                        };
                        out.session(&c).give(RunEvent::Rejects(summary));
                    }
                    Err(e) => {
                        errors.set(format!("writing {}: {e}", output.child_url(REJECTS_FILE)))
                    }
                }
            }
        })
    }
}
