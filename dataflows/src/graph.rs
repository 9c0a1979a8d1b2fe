//! The feature graph shared by live and backfill runs.

use std::cell::RefCell;
use std::rc::Rc;

use operators::{Bar, Bars, BarsConfig, BarsStats, Reject, SymbolBatch};
use timely::dataflow::operators::Concat;
use timely::dataflow::StreamVec;

/// What the features are computed with.
#[derive(Clone, Debug)]
pub struct FeatureConfig {
    /// Bar resolutions and dedup horizon.
    pub bars: BarsConfig,
}

/// Every feature stream of the graph, plus the records it rejected.
pub struct FeatureStreams<'scope> {
    /// OHLCV bars at every resolution.
    pub bars: StreamVec<'scope, i64, Bar>,
    /// Records rejected inside the graph (for example duplicates).
    pub rejects: StreamVec<'scope, i64, Reject>,
}

/// Builds the feature graph over a stream of per-symbol trade/candle batches whose
/// timely time is event time. `source_rejects` are merged into the output rejects.
pub fn features<'scope>(
    batches: StreamVec<'scope, i64, SymbolBatch>,
    source_rejects: StreamVec<'scope, i64, Reject>,
    config: &FeatureConfig,
    stats: Rc<RefCell<BarsStats>>,
) -> FeatureStreams<'scope> {
    let (bars, duplicates) = batches.bars(config.bars.clone(), Some(stats));
    FeatureStreams { bars, rejects: source_rejects.concat(duplicates) }
}
