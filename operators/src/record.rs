//! Records that flow between operators: trades, candles, per-symbol batches and rejects.
//!
//! Every type here crosses worker and process boundaries, so each is `serde`
//! round-trippable with bincode (no `skip_serializing_if` and similar attributes).

use serde::{Deserialize, Serialize};

use crate::Symbol;

/// `trade_id` of a trade whose input carried none.
pub const NO_TRADE_ID: i64 = i64::MIN;

/// One exchange trade. Event time is the exchange's trade time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// Trade time, milliseconds since the Unix epoch (UTC).
    pub ts_ms: i64,
    /// The exchange's trade id, or [`NO_TRADE_ID`].
    pub trade_id: i64,
    /// Input order: a number that increases with the record's position in the input
    /// (file index and row for files, partition and offset for Kafka). Ties on
    /// `(ts_ms, trade_id)` are broken by it, so results never depend on arrival order.
    pub seq: u64,
    /// A stable hash of the `exchange` column (0 when absent), part of the dedup key.
    pub exchange: u64,
    /// Trade price.
    pub price: f64,
    /// Traded quantity (base asset, or contracts).
    pub qty: f64,
    /// True when the buyer was the maker, i.e. the taker sold.
    pub is_buyer_maker: bool,
}

impl Trade {
    /// The key that orders trades inside a bar: `(ts_ms, trade_id, seq)`.
    #[inline]
    pub fn order_key(&self) -> (i64, i64, u64) {
        (self.ts_ms, self.trade_id, self.seq)
    }
}

/// A pre-aggregated candle (for example a Binance kline) at its own resolution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    /// Bar open time in milliseconds.
    pub ts_ms: i64,
    /// The candle's length in milliseconds.
    pub resolution_ms: i64,
    /// Input order, as for trades.
    pub seq: u64,
    /// Open price.
    pub open: f64,
    /// High price.
    pub high: f64,
    /// Low price.
    pub low: f64,
    /// Close price.
    pub close: f64,
    /// Base volume.
    pub volume: f64,
    /// Quote volume, when the input has it.
    pub quote_volume: Option<f64>,
    /// Number of trades, when the input has it.
    pub trades: Option<i64>,
    /// Taker-buy base volume, when the input has it.
    pub buy_volume: Option<f64>,
}

/// The unit exchanged between workers: records of one symbol, routed by the symbol.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SymbolBatch {
    /// The instrument, including any source prefix (`binance:BTCUSDT`).
    pub symbol: Symbol,
    /// Trades of this symbol, in input order.
    pub trades: Vec<Trade>,
    /// Candles of this symbol, in input order.
    pub candles: Vec<Candle>,
    /// Order-book records of this symbol, in input order.
    pub book: Vec<crate::book::BookRecord>,
}

impl SymbolBatch {
    /// Number of records in the batch.
    pub fn len(&self) -> usize {
        self.trades.len() + self.candles.len() + self.book.len()
    }

    /// True when the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The least event time in the batch, if any.
    pub fn min_ts(&self) -> Option<i64> {
        let t = self.trades.iter().map(|t| t.ts_ms);
        let c = self.candles.iter().map(|c| c.ts_ms);
        let b = self.book.iter().map(|b| b.ts_ms);
        t.chain(c).chain(b).min()
    }

    /// The greatest event time in the batch, if any.
    pub fn max_ts(&self) -> Option<i64> {
        let t = self.trades.iter().map(|t| t.ts_ms);
        let c = self.candles.iter().map(|c| c.ts_ms);
        let b = self.book.iter().map(|b| b.ts_ms);
        t.chain(c).chain(b).max()
    }
}

/// Why a record was rejected: the `reason` of its dead-letter row (README "Backfill runs").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RejectReason {
    /// The record could not be parsed.
    ParseError,
    /// Price missing, not finite, or not positive.
    InvalidPrice,
    /// Quantity missing, not finite, or not positive.
    InvalidQty,
    /// (exchange, symbol, trade_id) was already seen.
    Duplicate,
    /// Older than the watermark minus the allowed lateness.
    Late,
    /// The symbol is not known to the job.
    UnknownSymbol,
    /// An order-book diff broke the update-id sequence (or no snapshot came for it).
    SequenceGap,
    /// An order-book update left best bid >= best ask.
    CrossedBook,
}

impl RejectReason {
    /// Every reason, in a fixed order (for counters and logs).
    pub const ALL: [RejectReason; 8] = [
        RejectReason::ParseError,
        RejectReason::InvalidPrice,
        RejectReason::InvalidQty,
        RejectReason::Duplicate,
        RejectReason::Late,
        RejectReason::UnknownSymbol,
        RejectReason::SequenceGap,
        RejectReason::CrossedBook,
    ];

    /// The reason as written in dead-letter records, e.g. `parse_error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectReason::ParseError => "parse_error",
            RejectReason::InvalidPrice => "invalid_price",
            RejectReason::InvalidQty => "invalid_qty",
            RejectReason::Duplicate => "duplicate",
            RejectReason::Late => "late",
            RejectReason::UnknownSymbol => "unknown_symbol",
            RejectReason::SequenceGap => "sequence_gap",
            RejectReason::CrossedBook => "crossed_book",
        }
    }
}

/// A rejected input record, kept with its raw text so nothing is silently lost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// Why it was rejected.
    pub reason: RejectReason,
    /// Where it came from: a file URL, or `topic/partition`.
    pub source: String,
    /// Line number (1-based) in a file, row index in a Parquet file, or Kafka offset.
    pub position: u64,
    /// Input order of the record (as `Trade::seq`), used to order rejects.
    pub seq: u64,
    /// A human-readable detail, e.g. which field failed.
    pub detail: String,
    /// The raw record (lossy UTF-8 of its bytes).
    pub raw: String,
}
