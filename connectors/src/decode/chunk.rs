//! `Chunk`: decoded records of a slice of one input, grouped by symbol for exchange.

use std::collections::HashMap;

use operators::route::trade_shard;
use operators::{Candle, Reject, Symbol, SymbolBatch, Trade};

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
    /// Records of each symbol in the last chunk taken: `(trades, candles)`, the
    /// capacity a new batch of that symbol starts with.
    sizes: HashMap<Symbol, (usize, usize)>,
    /// Trades are split into this many batches per symbol by
    /// [`trade_shard`] (0 or 1: one batch per symbol).
    shards: u64,
}

/// Up to this many symbols a chunk finds a symbol's batch by comparing names, which
/// is cheaper than hashing them.
const LINEAR_SYMBOLS: usize = 8;

impl Chunk {
    /// Splits each symbol's trades into `shards` batches by [`trade_shard`], the way
    /// the bars operator routes them over `shards` workers, so that it need not copy
    /// them again. Candles stay in the symbol's first batch.
    ///
    /// ```
    /// use connectors::decode::Chunk;
    /// use operators::{route::trade_shard, Trade};
    /// let mut chunk = Chunk::default();
    /// chunk.set_shards(2);
    /// for id in 0..10 {
    ///     let t = Trade { ts_ms: 5, trade_id: id, seq: 0, exchange: 0, price: 1.0, qty: 1.0,
    ///         is_buyer_maker: true };
    ///     chunk.push_trade("BTCUSDT", t);
    /// }
    /// for b in chunk.take_batches() {
    ///     let s = trade_shard(&b.trades[0], 2);
    ///     assert!(b.trades.iter().all(|t| trade_shard(t, 2) == s));
    /// }
    /// ```
    pub fn set_shards(&mut self, shards: u64) {
        self.shards = shards;
    }

    #[inline]
    fn batch(&mut self, symbol: &str) -> &mut SymbolBatch {
        let i = self.batch_index(symbol);
        &mut self.batches[i]
    }

    /// The index of `symbol`'s batch (made when missing), for the `_at` methods;
    /// valid until the batches are taken or filtered.
    #[inline]
    pub(crate) fn batch_index(&mut self, symbol: &str) -> usize {
        let found = if self.batches.len() <= LINEAR_SYMBOLS {
            self.batches.iter().position(|b| b.symbol == symbol)
        } else {
            self.index.get(symbol).copied()
        };
        match found {
            Some(i) => i,
            None => {
                let (t, c) = self.sizes.get(symbol).copied().unwrap_or_default();
                let base = self.batches.len();
                let name = Symbol::new(symbol);
                for k in 0..self.shards.max(1) {
                    self.batches.push(SymbolBatch {
                        symbol: name.clone(),
                        trades: Vec::with_capacity(t + t / 8),
                        candles: Vec::with_capacity(if k == 0 { c + c / 8 } else { 0 }),
                        book: Vec::new(),
                    });
                }
                self.index.insert(symbol.to_string(), base);
                base
            }
        }
    }

    /// Adds a decoded trade to batch `i` of [`Chunk::batch_index`] (counts one row).
    #[inline]
    pub(crate) fn push_trade_at(&mut self, i: usize, trade: Trade) {
        self.rows += 1;
        let i = if self.shards > 1 {
            i + trade_shard(&trade, self.shards) as usize
        } else {
            i
        };
        self.batches[i].trades.push(trade);
    }

    /// Adds a decoded candle to batch `i` of [`Chunk::batch_index`] (counts one row).
    pub(crate) fn push_candle_at(&mut self, i: usize, candle: Candle) {
        self.rows += 1;
        self.batches[i].candles.push(candle);
    }

    /// Adds a decoded trade of `symbol` (counts one row).
    #[inline]
    pub fn push_trade(&mut self, symbol: &str, trade: Trade) {
        let i = self.batch_index(symbol);
        self.push_trade_at(i, trade);
    }

    /// Adds a decoded candle of `symbol` (counts one row).
    pub fn push_candle(&mut self, symbol: &str, candle: Candle) {
        self.rows += 1;
        self.batch(symbol).candles.push(candle);
    }

    /// Adds an order-book record of `symbol` (counts one row).
    pub fn push_book(&mut self, symbol: &str, record: operators::book::BookRecord) {
        self.rows += 1;
        self.batch(symbol).book.push(record);
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
    /// Batches left empty stay (with their shards, so the index holds) until
    /// [`Chunk::take_batches`] drops them.
    pub fn retain_range(&mut self, from: i64, to: i64) {
        if from == i64::MIN && to == i64::MAX {
            return;
        }
        for b in &mut self.batches {
            b.trades.retain(|t| t.ts_ms >= from && t.ts_ms < to);
            b.candles.retain(|c| c.ts_ms >= from && c.ts_ms < to);
            b.book.retain(|r| r.ts_ms >= from && r.ts_ms < to);
        }
    }

    /// Distinct symbols seen by this chunk builder so far (counted up to 4096).
    pub fn symbols(&self) -> usize {
        self.sizes.len()
    }

    /// Takes the per-symbol (and per-shard) batches that hold records, leaving the
    /// chunk empty of records.
    pub fn take_batches(&mut self) -> Vec<SymbolBatch> {
        self.index.clear();
        self.batches.retain(|b| !b.is_empty());
        for b in &self.batches {
            let size = (b.trades.len(), b.candles.len());
            if let Some(s) = self.sizes.get_mut(&b.symbol) {
                *s = size;
            } else if self.sizes.len() < 4096 {
                self.sizes.insert(b.symbol.clone(), size);
            }
        }
        std::mem::take(&mut self.batches)
    }
}
