//! The Parquet sink: Hive-partitioned feature files on an object store
//! (README "Backfill runs", Output).

pub mod config;
mod rows;
mod sets;
mod sink;

pub use config::{Compression, ParquetSinkConfig};
pub use rows::{encode_parquet, partition_dir, FeatureRow, SortKey};
pub use sink::{hex_digest, ParquetSink, PartitionWritten, PART_FILE};
