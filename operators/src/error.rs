//! The error type of the `operators` crate.

use thiserror::Error;

/// Errors raised while configuring operators (operators themselves never fail on data:
/// bad records flow to the dead-letter output instead).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum OperatorError {
    /// A resolution string such as `1m` could not be parsed.
    #[error("invalid resolution `{0}`: expected a positive number followed by ms, s, m, h or d")]
    InvalidResolution(String),
    /// A resolution is not a whole multiple of the finest one, so it cannot be rolled up.
    #[error("resolution {coarse} is not a whole multiple of the finest resolution {finest}")]
    NotAMultiple {
        /// The finest configured resolution.
        finest: String,
        /// The resolution that is not a multiple of it.
        coarse: String,
    },
    /// No resolution was configured.
    #[error("at least one resolution is required")]
    NoResolution,
}
