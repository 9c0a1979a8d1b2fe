//! Crash points for recovery tests: with `MARKETFLOW_FAILPOINT=<point>:<n>` the process
//! aborts (as abruptly as a `kill -9`) the n-th time it reaches `<point>`: `parquet` and
//! `checkpoint` are reached halfway through writing a Parquet file or a checkpoint file,
//! `journal` right after a backfill's run journal recorded a batch of partition files.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

fn armed() -> Option<&'static (String, u64)> {
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var("MARKETFLOW_FAILPOINT").ok()?;
            let (point, n) = v.split_once(':')?;
            Some((point.to_string(), n.parse().ok()?))
        })
        .as_ref()
}

/// Aborts the process when `point` is armed and reached for the n-th time.
///
/// ```
/// // Not armed in doc tests: nothing happens.
/// connectors::failpoint::reach("parquet");
/// ```
pub fn reach(point: &str) {
    static HITS: AtomicU64 = AtomicU64::new(0);
    let Some((armed, n)) = armed() else { return };
    if armed == point && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
        eprintln!("failpoint {point}:{n} reached: aborting");
        std::process::abort();
    }
}
