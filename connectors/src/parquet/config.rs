//! `[sinks.parquet]`: where the feature lake is written and how it is compressed.

use serde::Deserialize;

use crate::store::Location;

/// Compression of the Parquet files (only zstd is supported).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Zstandard.
    #[default]
    Zstd,
}

/// How the lake's time partitions are sized, per resolution
/// (`sinks.parquet.partitioning`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Partitioning {
    /// Hourly under a minute, daily under five minutes, monthly from five minutes up:
    /// a partition holds about a thousand rows per symbol or more (fewer only for
    /// hourly and daily bars, where a month is the coarsest partition).
    #[default]
    Auto,
    /// `dt=YYYY-MM-DD/hour=HH` for every resolution.
    Hour,
    /// `dt=YYYY-MM-DD` for every resolution.
    Day,
    /// `dt=YYYY-MM` for every resolution.
    Month,
}

/// `[sinks.parquet]`
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ParquetSinkConfig {
    /// Output root: a path or any object-store URL (`--output` overrides it).
    #[serde(default = "default_output")]
    pub output: String,
    /// Parquet compression (only `zstd` is supported).
    #[serde(default)]
    pub compression: Compression,
    /// The time partition of each resolution (default `auto`).
    #[serde(default)]
    pub partitioning: Partitioning,
}

fn default_output() -> String {
    "file://./out".into()
}

impl Default for ParquetSinkConfig {
    fn default() -> Self {
        ParquetSinkConfig {
            output: default_output(),
            compression: Compression::default(),
            partitioning: Partitioning::default(),
        }
    }
}

impl ParquetSinkConfig {
    /// The output root: `output` (the `--output` flag) if given, else the configured one.
    pub fn build(&self, output: Option<&str>) -> crate::Result<Location> {
        Location::parse(output.unwrap_or(&self.output))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_zstd_is_accepted() {
        let c: ParquetSinkConfig = toml::from_str("compression = \"zstd\"").unwrap();
        assert_eq!(c.compression, Compression::Zstd);
        assert_eq!(c.output, "file://./out");
        assert!(toml::from_str::<ParquetSinkConfig>("compression = \"snappy\"").is_err());
        assert_eq!(c.partitioning, Partitioning::Auto);
        let c: ParquetSinkConfig = toml::from_str("partitioning = \"month\"").unwrap();
        assert_eq!(c.partitioning, Partitioning::Month);
        assert!(toml::from_str::<ParquetSinkConfig>("partitioning = \"week\"").is_err());
    }

    #[test]
    fn the_flag_overrides_the_output() {
        let c = ParquetSinkConfig::default();
        assert!(c.build(Some("ftp://x/y")).is_err());
        assert!(c.build(None).is_ok());
    }
}
