//! Stable routing hashes: which worker owns a symbol, an exchange name's dedup hash.
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
