//! [`ChartError`]: why a chart could not be drawn, and whether that is the user's
//! request (exit code 2) or a failure (exit code 1).

use thiserror::Error;

use crate::ConnectorError;

/// Errors of reading the lake for a chart and of drawing it.
#[derive(Debug, Error)]
pub enum ChartError {
    /// The lake has no rows of a set at all (wrong `--input`, or the set is off).
    #[error("no `{set}` data under `{lake}` (is it a marketflow lake?)")]
    NoData {
        /// The feature set looked for.
        set: String,
        /// The lake's root as given.
        lake: String,
    },
    /// The resolution asked for is not in the lake.
    #[error("resolution `{asked}` is not in the lake's `{set}` (present: {present})")]
    UnknownResolution {
        /// The feature set.
        set: String,
        /// The resolution asked for.
        asked: String,
        /// The resolutions present, comma separated.
        present: String,
    },
    /// No bar of the symbol at that resolution anywhere in the lake.
    #[error("unknown symbol `{symbol}` at resolution {resolution} (symbols in the lake: {known})")]
    UnknownSymbol {
        /// The symbol asked for.
        symbol: String,
        /// The resolution.
        resolution: String,
        /// Some of the symbols present, comma separated.
        known: String,
    },
    /// The symbol is in the lake, but nothing falls in the time range.
    #[error("no {what} in the range {range} (the lake has {available})")]
    EmptyRange {
        /// What was looked for, e.g. `spot:BTCUSDT 1m bars`.
        what: String,
        /// The range asked for, as text.
        range: String,
        /// The range the lake holds, as text.
        available: String,
    },
    /// A lake file does not have the columns of its set.
    #[error("cannot read `{path}`: {reason}")]
    BadFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Drawing the chart failed.
    #[error("drawing the chart: {0}")]
    Draw(String),
    /// The lake could not be listed or read.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
}

impl ChartError {
    /// True when the request cannot be met with this lake (exit code 2): an unknown
    /// symbol or resolution, an empty range, no data, or an invalid lake location.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ChartError::NoData { .. }
                | ChartError::UnknownResolution { .. }
                | ChartError::UnknownSymbol { .. }
                | ChartError::EmptyRange { .. }
                | ChartError::Connector(ConnectorError::InvalidUrl { .. })
        )
    }
}

/// Result alias of the chart module.
pub type ChartResult<T> = std::result::Result<T, ChartError>;
