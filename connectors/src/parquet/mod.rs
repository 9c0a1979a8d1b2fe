//! The Parquet sink: Hive-partitioned feature files on an object store, streamed out
//! as rows become final (README "Output").

mod book_sets;
pub mod config;
mod file;
mod layout;
mod order;
mod rows;
mod sets;
mod sink;
#[cfg(test)]
mod tests;

pub use config::{Compression, ParquetSinkConfig, Partitioning};
pub use file::{FileKey, ROW_GROUP};
pub use layout::{FileRange, Span, HIVE_NULL, HOUR_MS, PART_FILE};
pub use rows::{FeatureRow, SortKey};
pub use sink::{hex_digest, LakeMode, LakeSpec, ParquetSink, PartitionWritten};
