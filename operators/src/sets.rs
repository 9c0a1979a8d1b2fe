//! `FeatureSet`: the one list of the feature sets a job writes, by the name that
//! names their Parquet folder, Kafka topics (`<prefix><set>.<resolution>`), schema
//! (`<set>.v1`) and progress counters.

use std::fmt;

/// A feature set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FeatureSet {
    /// OHLCV bars.
    Bars,
    /// Indicators on the close grid.
    Indicators,
    /// zscore and volume-spike alerts.
    Alerts,
    /// The rolling correlation matrix.
    Correlation,
    /// Rolling beta against the benchmark.
    Beta,
    /// Risk and trend measures.
    Risk,
    /// Order-book features from depth snapshots and diffs.
    Book,
    /// Best-quote features from `bookTicker`.
    Quotes,
}

impl FeatureSet {
    /// Every set, in the order they are listed to users.
    pub const ALL: [FeatureSet; 8] = [
        FeatureSet::Bars,
        FeatureSet::Indicators,
        FeatureSet::Alerts,
        FeatureSet::Correlation,
        FeatureSet::Beta,
        FeatureSet::Risk,
        FeatureSet::Book,
        FeatureSet::Quotes,
    ];

    /// The set's name.
    ///
    /// ```
    /// use operators::FeatureSet;
    /// assert_eq!(FeatureSet::Risk.name(), "risk");
    /// assert_eq!(FeatureSet::from_name("risk"), Some(FeatureSet::Risk));
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            FeatureSet::Bars => "bars",
            FeatureSet::Indicators => "indicators",
            FeatureSet::Alerts => "alerts",
            FeatureSet::Correlation => "correlation",
            FeatureSet::Beta => "beta",
            FeatureSet::Risk => "risk",
            FeatureSet::Book => "book",
            FeatureSet::Quotes => "quotes",
        }
    }

    /// The set of a name.
    pub fn from_name(name: &str) -> Option<FeatureSet> {
        FeatureSet::ALL.into_iter().find(|s| s.name() == name)
    }

    /// True for the sets computed from order-book records (`book`, `quotes`): a run
    /// without them writes none.
    pub fn from_book_records(self) -> bool {
        matches!(self, FeatureSet::Book | FeatureSet::Quotes)
    }

    /// The set's position in [`FeatureSet::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for FeatureSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
