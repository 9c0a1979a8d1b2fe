//! `Chunk`: decoded records of a slice of one input, grouped by symbol for exchange.

use std::collections::HashMap;

use operators::{Candle, Reject, SymbolBatch, Trade};

/// Records decoded from a bounded slice of one input, grouped by symbol, plus the
/// rejects met on the way.
///
/// ```
/// use connectors::decode::Chunk;
/// use operators::{Trade, NO_TRADE_ID};
/// let mut chunk = Chunk::default();
/// let t = Trade { ts_ms: 5, trade_id: NO_TRADE_ID, seq: 0, exchange: 0, price: 1.0, qty: 1.0,
///     is_buyer_maker: true };
/// chunk.push_trade("BTCUSDT", t);
/// chunk.push_trade("ETHUSDT", t);
/// chunk.push_trade("BTCUSDT", t);
/// assert_eq!(chunk.rows, 3);
/// assert_eq!(chunk.min_ts(), Some(5));
/// assert_eq!(chunk.take_batches().len(), 2);
/// ```
#[derive(Debug, Default)]
pub struct Chunk {
    /// One batch per symbol seen in this chunk.
    pub batches: Vec<SymbolBatch>,
    /// Index of each symbol's batch in `batches`.
    index: HashMap<String, usize>,
    /// Rows read (accepted and rejected), for progress.
    pub rows: u64,
    /// Rejected records.
    pub rejects: Vec<Reject>,
}

impl Chunk {
    fn batch(&mut self, symbol: &str) -> &mut SymbolBatch {
        let i = match self.index.get(symbol) {
            Some(&i) => i,
            None => {
                self.batches.push(SymbolBatch {
                    symbol: symbol.to_string(),
                    ..Default::default()
                });
                self.index
                    .insert(symbol.to_string(), self.batches.len() - 1);
                self.batches.len() - 1
            }
        };
        &mut self.batches[i]
    }

    /// Adds a decoded trade of `symbol` (counts one row).
    #[inline]
    pub fn push_trade(&mut self, symbol: &str, trade: Trade) {
        self.rows += 1;
        self.batch(symbol).trades.push(trade);
    }

    /// Adds a decoded candle of `symbol` (counts one row).
    pub fn push_candle(&mut self, symbol: &str, candle: Candle) {
        self.rows += 1;
        self.batch(symbol).candles.push(candle);
    }

    /// Adds a rejected record (counts one row).
    pub fn push_reject(&mut self, reject: Reject) {
        self.rows += 1;
        self.rejects.push(reject);
    }

    /// Number of accepted records.
    pub fn records(&self) -> usize {
        self.batches.iter().map(SymbolBatch::len).sum()
    }

    /// The least event time of the accepted records.
    pub fn min_ts(&self) -> Option<i64> {
        self.batches.iter().filter_map(SymbolBatch::min_ts).min()
    }

    /// Drops records outside `[from, to)` (a backfill's `--from`/`--to`).
    pub fn retain_range(&mut self, from: i64, to: i64) {
        for b in &mut self.batches {
            b.trades.retain(|t| t.ts_ms >= from && t.ts_ms < to);
            b.candles.retain(|c| c.ts_ms >= from && c.ts_ms < to);
        }
        self.batches.retain(|b| !b.is_empty());
        self.index = self
            .batches
            .iter()
            .enumerate()
            .map(|(i, b)| (b.symbol.clone(), i))
            .collect();
    }

    /// Takes the per-symbol batches, leaving the chunk empty of records.
    pub fn take_batches(&mut self) -> Vec<SymbolBatch> {
        self.index.clear();
        std::mem::take(&mut self.batches)
    }
}
