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

/// `[sinks.parquet]`
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ParquetSinkConfig {
    /// Output root: a path or any object-store URL (`--output` overrides it).
    #[serde(default = "default_output")]
    pub output: String,
    /// Parquet compression (only `zstd` is supported).
    #[serde(default)]
    pub compression: Compression,
}

fn default_output() -> String {
    "file://./out".into()
}

impl Default for ParquetSinkConfig {
    fn default() -> Self {
        ParquetSinkConfig {
            output: default_output(),
            compression: Compression::default(),
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
    }

    #[test]
    fn the_flag_overrides_the_output() {
        let c = ParquetSinkConfig::default();
        assert!(c.build(Some("ftp://x/y")).is_err());
        assert!(c.build(None).is_ok());
    }
}
