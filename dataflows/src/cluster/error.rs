//! The error type of cluster start-up.

use thiserror::Error;

/// Why a cluster could not start. [`ClusterError::is_usage`] tells mistakes in how the
/// processes were invoked (exit code 2) from failures (exit code 1).
#[derive(Debug, Error)]
pub enum ClusterError {
    /// Inconsistent `-w -n -p` flags.
    #[error("{0}")]
    Flags(String),
    /// A hostfile that cannot be read or is malformed.
    #[error("{0}")]
    Hostfile(String),
    /// A bad `MARKETFLOW_CONNECT_TIMEOUT`.
    #[error("{0}")]
    Timeout(String),
    /// Processes that disagree on flags, hostfile or job, or on who is which process.
    #[error("{0}")]
    Mismatch(String),
    /// A peer that cannot be reached or listened for, or a lost connection.
    #[error("{0}")]
    Connect(String),
    /// The workers or network threads could not start.
    #[error("{0}")]
    Start(String),
    /// A socket operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ClusterError {
    /// True for a mistake in how the processes were invoked (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ClusterError::Flags(_)
                | ClusterError::Hostfile(_)
                | ClusterError::Timeout(_)
                | ClusterError::Mismatch(_)
        )
    }
}
