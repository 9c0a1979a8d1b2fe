//! The error type of the `connectors` crate.

use thiserror::Error;

/// Errors from sources and sinks. Bad *records* are not errors: they become
/// [`operators::Reject`]s. These are failures of whole inputs or outputs.
#[derive(Debug, Error)]
pub enum ConnectorError {
    /// A URL or path could not be understood.
    #[error("invalid location `{url}`: {reason}")]
    InvalidUrl {
        /// The location as the user wrote it.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An input pattern matched no file.
    #[error("no input matches `{0}`")]
    NoInput(String),
    /// The format of a file could not be detected or is not supported.
    #[error("cannot read `{path}`: {reason}")]
    Format {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Local file I/O failed.
    #[error("I/O error on `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The object store failed.
    #[error("object store error on `{path}`: {source}")]
    Store {
        /// The object.
        path: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },
    /// Parquet encoding or decoding failed.
    #[error("parquet error on `{path}`: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Arrow array construction failed.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The metrics endpoint could not be served.
    #[error("metrics endpoint {addr}: {reason}")]
    Metrics {
        /// The address asked for.
        addr: String,
        /// Why (e.g. address in use).
        reason: String,
    },
    /// A Kafka client, topic or broker failed.
    #[error("kafka: {0}")]
    Kafka(String),
    /// A run id names no run of the lake.
    #[error("{0}")]
    UnknownRun(String),
    /// A request on a run was refused (validation of a staged run, a resume with other
    /// arguments): every reason, one a line.
    #[error("{what}:\n  - {}", reasons.join("\n  - "))]
    Refused {
        /// What was refused.
        what: String,
        /// Why.
        reasons: Vec<String>,
    },
}

impl ConnectorError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<String>, source: std::io::Error) -> ConnectorError {
        ConnectorError::Io {
            path: path.into(),
            source,
        }
    }

    /// A format error on `path`.
    pub fn format(path: impl Into<String>, reason: impl Into<String>) -> ConnectorError {
        ConnectorError::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl ConnectorError {
    /// True for errors of the user's request (exit code 2), not of the run.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ConnectorError::UnknownRun(_)
                | ConnectorError::Refused { .. }
                | ConnectorError::NoInput(_)
                | ConnectorError::InvalidUrl { .. }
        )
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ConnectorError>;
