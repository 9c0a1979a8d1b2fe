//! Per-file resolution inference for candle inputs without a resolution column.

use super::Chunk;

/// Resolution assumed when a file never shows two bars of one symbol.
pub(crate) const DEFAULT_RESOLUTION_MS: i64 = 60_000;

/// The smallest positive gap between consecutive distinct open times of one symbol
/// among the candles of `chunk`; [`DEFAULT_RESOLUTION_MS`] if no symbol has two.
pub(crate) fn infer_resolution(chunk: &Chunk) -> i64 {
    let mut best: Option<i64> = None;
    let mut ts = Vec::new();
    for b in &chunk.batches {
        ts.clear();
        ts.extend(b.candles.iter().map(|c| c.ts_ms));
        ts.sort_unstable();
        ts.dedup();
        for w in ts.windows(2) {
            let gap = w[1] - w[0];
            if gap > 0 && best.is_none_or(|g| gap < g) {
                best = Some(gap);
            }
        }
    }
    best.unwrap_or(DEFAULT_RESOLUTION_MS)
}

/// Gives every candle of `first` whose resolution is unknown (0) the resolution
/// inferred from `first`, then moves all of its records into `into`. Returns the
/// inferred resolution.
pub(crate) fn settle_first(mut first: Chunk, into: &mut Chunk) -> i64 {
    let res = infer_resolution(&first);
    for mut b in first.take_batches() {
        for t in b.trades.drain(..) {
            into.push_trade(&b.symbol, t);
        }
        for mut c in b.candles.drain(..) {
            if c.resolution_ms == 0 {
                c.resolution_ms = res;
            }
            into.push_candle(&b.symbol, c);
        }
    }
    for r in first.rejects.drain(..) {
        into.push_reject(r);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use operators::Candle;

    fn candle(ts_ms: i64) -> Candle {
        Candle {
            ts_ms,
            resolution_ms: 0,
            seq: 0,
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            volume: 1.0,
            quote_volume: None,
            trades: None,
            buy_volume: None,
        }
    }

    #[test]
    fn decode_infer_smallest_gap_per_symbol() {
        let mut c = Chunk::default();
        c.push_candle("A", candle(0));
        c.push_candle("B", candle(30_000));
        c.push_candle("A", candle(300_000));
        c.push_candle("A", candle(600_000));
        c.push_candle("A", candle(600_000));
        assert_eq!(infer_resolution(&c), 300_000);
        let mut into = Chunk::default();
        assert_eq!(settle_first(c, &mut into), 300_000);
        assert_eq!(into.rows, 5);
        assert!(into
            .batches
            .iter()
            .flat_map(|b| &b.candles)
            .all(|c| c.resolution_ms == 300_000));
        let mut single = Chunk::default();
        single.push_candle("A", candle(0));
        assert_eq!(infer_resolution(&single), DEFAULT_RESOLUTION_MS);
    }
}
