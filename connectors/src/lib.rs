//! marketflow's connectors: file and object-store inputs, input decoders, Kafka sources
//! and sinks, the Parquet sink, charts, the dead-letter writer, the run manifest, Prometheus metrics
//! and the market simulator.

pub mod chart;
pub mod checkpoint;
pub mod decode;
pub mod error;
pub mod failpoint;
pub mod files;
pub mod jobs;
pub mod kafka;
pub mod manifest;
pub mod metrics;
pub mod pace;
pub mod parquet;
pub mod rejects;
pub mod runs;
pub mod simulate;
pub mod store;
pub mod sync;
pub mod upload;

pub use error::{ConnectorError, Result};
