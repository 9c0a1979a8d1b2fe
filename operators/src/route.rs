//! Stable routing hashes: which worker owns a symbol or a trade id, an exchange name's
//! dedup hash.
//!
//! The hash must be the same in every process and every release, so it is a fixed
//! FNV-1a rather than std's randomly seeded hasher.

/// FNV-1a 64-bit hash of `bytes`; stable across processes and releases.
///
/// ```
/// assert_eq!(operators::route::stable_hash(b""), 0xcbf29ce484222325);
/// assert_ne!(operators::route::stable_hash(b"BTCUSDT"), operators::route::stable_hash(b"ETHUSDT"));
/// ```
#[inline]
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The routing key of a symbol for timely's `Exchange` pact (mixed so that the low bits,
/// which pick the worker, depend on every byte).
#[inline]
pub fn symbol_route(symbol: &str) -> u64 {
    let h = stable_hash(symbol.as_bytes());
    h ^ (h >> 29) ^ (h >> 47)
}

/// A well-mixed 64-bit hash of `x`: one splitmix64 step from state `x`.
#[inline]
fn mix(x: u64) -> u64 {
    let mut state = x;
    crate::splitmix::splitmix64(&mut state)
}

/// The shard of a trade among `shards` (the workers of the bars operator's first
/// stage): every copy of an `(exchange, trade_id)` lands on the same one, so
/// duplicates meet; trades without an id are spread by their input order.
///
/// ```
/// use operators::{route::trade_shard, Trade};
/// let t = |id, seq| Trade { ts_ms: 0, trade_id: id, seq, exchange: 0, price: 1.0, qty: 1.0,
///     is_buyer_maker: false };
/// assert_eq!(trade_shard(&t(42, 1), 4), trade_shard(&t(42, 9), 4));
/// assert!(trade_shard(&t(43, 1), 4) < 4);
/// ```
#[inline]
pub fn trade_shard(t: &crate::Trade, shards: u64) -> u64 {
    let key = if t.trade_id == crate::NO_TRADE_ID {
        t.seq
    } else {
        (t.trade_id as u64) ^ t.exchange.rotate_left(32)
    };
    // Lemire's multiply-shift range reduction: a division would cost more than the hash.
    ((u128::from(mix(key)) * u128::from(shards)) >> 64) as u64
}
