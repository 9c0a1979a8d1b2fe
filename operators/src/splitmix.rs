//! splitmix64: a small, well-mixed 64-bit generator and hash finalizer, the one
//! definition behind the routing hash, the simulator's seeding and the seeded random
//! inputs of tests and benchmarks.

/// The 64-bit golden ratio, splitmix64's increment.
pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// One step of splitmix64: advances `state` by [`GOLDEN`] and returns the mixed output.
///
/// ```
/// use operators::splitmix::splitmix64;
/// let mut state = 0;
/// assert_eq!(splitmix64(&mut state), 0xE220_A839_7B1D_CDAF);
/// assert_eq!(splitmix64(&mut state), 0x6E78_9E6A_A1B9_65F4);
/// ```
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
