//! The error type of the `dataflows` crate.

use thiserror::Error;

/// Failures of a dataflow run.
#[derive(Debug, Error)]
pub enum DataflowError {
    /// An operator or connector recorded a fatal error.
    #[error("{0}")]
    Fatal(String),
    /// A worker thread panicked or the cluster could not start.
    #[error("worker failure: {0}")]
    Worker(String),
    /// A connector failed while preparing the run.
    #[error(transparent)]
    Connector(#[from] connectors::ConnectorError),
    /// Operator configuration was invalid.
    #[error(transparent)]
    Operator(#[from] operators::OperatorError),
}
