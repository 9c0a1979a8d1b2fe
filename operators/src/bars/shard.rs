//! Trade shards of the bars operator: trades are deduplicated and summed on the
//! worker that owns their `(exchange, trade_id)`, so the work of a symbol is spread
//! over every worker however few symbols there are.

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::StreamVec;

use crate::route::{symbol_route, trade_shard};
use crate::{SymbolBatch, Trade};

/// The worker a batch made by [`ShardTrades::shard_trades`] goes to: its trades'
/// shard, or for a batch of candles only, the symbol's.
pub(crate) fn batch_shard(b: &SymbolBatch, peers: u64) -> u64 {
    match b.trades.first() {
        Some(t) => trade_shard(t, peers),
        None => symbol_route(&b.symbol) % peers,
    }
}

/// Extension trait: split batches so that each holds the trades of one shard.
pub(crate) trait ShardTrades<'scope> {
    /// Splits every batch into one batch per trade shard among `peers` workers (and
    /// one of its candles); [`batch_shard`] then routes each to its worker. Batches
    /// already of one shard (as the file source makes them) pass unchanged.
    fn shard_trades(self, peers: u64) -> StreamVec<'scope, i64, SymbolBatch>;
}

impl<'scope> ShardTrades<'scope> for StreamVec<'scope, i64, SymbolBatch> {
    fn shard_trades(self, peers: u64) -> StreamVec<'scope, i64, SymbolBatch> {
        let mut buckets: Vec<Vec<Trade>> = (0..peers).map(|_| Vec::new()).collect();
        self.unary(Pipeline, "BarsShard", move |_cap, _info| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let mut session = output.session(&cap);
                    for batch in data.drain(..) {
                        let first = batch.trades.first().map(|t| trade_shard(t, peers));
                        let one_shard = first.is_some_and(|s| {
                            batch.trades[1..].iter().all(|t| trade_shard(t, peers) == s)
                        });
                        if (one_shard && batch.candles.is_empty()) || batch.trades.is_empty() {
                            session.give(batch);
                            continue;
                        }
                        for t in &batch.trades {
                            buckets[trade_shard(t, peers) as usize].push(*t);
                        }
                        for bucket in buckets.iter_mut().filter(|b| !b.is_empty()) {
                            let cap = bucket.len();
                            session.give(SymbolBatch {
                                symbol: batch.symbol.clone(),
                                trades: std::mem::replace(bucket, Vec::with_capacity(cap)),
                                candles: Vec::new(),
                                book: Vec::new(),
                            });
                        }
                        if !batch.candles.is_empty() {
                            session.give(SymbolBatch {
                                symbol: batch.symbol,
                                trades: Vec::new(),
                                candles: batch.candles,
                                book: Vec::new(),
                            });
                        }
                    }
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_of_a_trade_share_a_shard_and_ids_spread_evenly() {
        let t = |id: i64, seq: u64| Trade {
            ts_ms: 0,
            trade_id: id,
            seq,
            exchange: 7,
            price: 1.0,
            qty: 1.0,
            is_buyer_maker: false,
        };
        assert_eq!(trade_shard(&t(42, 1), 3), trade_shard(&t(42, 99), 3));
        let mut counts = [0usize; 2];
        for id in 0..10_000 {
            counts[trade_shard(&t(id, 0), 2) as usize] += 1;
        }
        assert!(
            counts.iter().all(|c| (4_500..5_500).contains(c)),
            "{counts:?}"
        );
    }
}
