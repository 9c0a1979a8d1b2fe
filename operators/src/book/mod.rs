//! Order books: book records (depth snapshots, diffs, best quotes), the local L2 book
//! per symbol with the exchange's sequence rule, and the `book` and `quotes` feature
//! sets per resolution (README "Order books").
//!
//! Records of a symbol apply in arrival order: the operator takes them by timely time
//! and, within a time, in the order they arrived, which is the input order of a file
//! or of a Kafka partition. Each applied record stamps its book with
//! `max(event time, book time so far)`; the book at time t is the book after every
//! record stamped before t. A row for the window ending at `e` is built from the book
//! at `e`, once the input frontier reaches `e`.

mod dec;
mod l2;
mod op;
mod quote;
mod rows;
mod tape;
#[cfg(test)]
mod tests;

pub use dec::{Dec, DEC_DIGITS};
pub use op::{BookStreams, Books, OrderBooks, OrderBooksOp, SplitBooks};
pub use rows::{BookRow, QuoteRow};

use serde::{Deserialize, Serialize};

use crate::{Reject, RejectReason};

/// One price level: price and quantity (absolute; 0 removes the level in a diff).
pub type Level = (Dec, Dec);

/// What a book record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BookKind {
    /// A full depth snapshot: replaces the book. `last_update_id` is the REST
    /// snapshot's `lastUpdateId`; `None` for a row of a Tardis snapshot (consecutive
    /// snapshot rows build one book).
    Snapshot {
        /// The snapshot's `lastUpdateId`.
        last_update_id: Option<u64>,
    },
    /// A Binance `depthUpdate`: first and last update ids `U`, `u`, and the futures
    /// streams' previous last id `pu` (`None` on spot).
    Diff {
        /// `U`.
        first: u64,
        /// `u`.
        last: u64,
        /// `pu` (futures only).
        prev: Option<u64>,
    },
    /// Tardis `incremental_book_L2` rows that set levels (no update ids).
    Levels,
    /// A best bid/ask quote (`bookTicker`): one level a side.
    Ticker,
}

/// One order-book record of a symbol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BookRecord {
    /// Event time, ms: the payload's `E`, else the receive time.
    pub ts_ms: i64,
    /// Input order (as `Trade::seq`).
    pub seq: u64,
    /// Snapshot, diff, levels or quote.
    pub kind: BookKind,
    /// Bid levels.
    pub bids: Vec<Level>,
    /// Ask levels.
    pub asks: Vec<Level>,
}

/// Settings of the order-book operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookConfig {
    /// Window lengths in ms, ascending.
    pub resolutions: Vec<i64>,
}

/// Diffs held per symbol while its book waits for a snapshot; past this, the oldest
/// goes to the dead letters as `sequence_gap`, so memory is bounded by levels and this.
pub const MAX_HELD_DIFFS: usize = 100_000;

/// A dead letter for a book record, with a compact JSON of the record as its raw text.
fn book_reject(reason: RejectReason, symbol: &str, r: &BookRecord, detail: String) -> Reject {
    let ids = match r.kind {
        BookKind::Snapshot {
            last_update_id: Some(id),
        } => format!(r#","lastUpdateId":{id}"#),
        BookKind::Diff { first, last, prev } => match prev {
            Some(p) => format!(r#","U":{first},"u":{last},"pu":{p}"#),
            None => format!(r#","U":{first},"u":{last}"#),
        },
        _ => String::new(),
    };
    let levels = |ls: &[Level]| {
        ls.iter()
            .map(|(p, q)| format!(r#"["{p}","{q}"]"#))
            .collect::<Vec<_>>()
            .join(",")
    };
    Reject {
        reason,
        source: String::new(),
        position: 0,
        seq: r.seq,
        detail,
        raw: format!(
            r#"{{"s":{symbol:?},"E":{}{ids},"b":[{}],"a":[{}]}}"#,
            r.ts_ms,
            levels(&r.bids),
            levels(&r.asks)
        ),
    }
}
