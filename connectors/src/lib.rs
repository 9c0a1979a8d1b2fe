//! marketflow's connectors: file and object-store inputs, input decoders, the Parquet
//! sink, the dead-letter writer, the run manifest and the market simulator.

pub mod decode;
pub mod error;

pub use error::{ConnectorError, Result};
