//! `[sinks.charts]`: whether the job draws one chart per symbol and closed lake
//! partition under `<output>/_charts/`, in which format, size and resolutions.

use serde::Deserialize;

/// The image format of a chart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartFormat {
    /// Scalable vector graphics (text stays text; small for short ranges).
    #[default]
    Svg,
    /// A PNG bitmap (text drawn with the bundled DejaVu Sans font).
    Png,
}

impl ChartFormat {
    /// The file extension of the format, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ChartFormat::Svg => "svg",
            ChartFormat::Png => "png",
        }
    }

    /// The format of a file named `name` (by its extension, case-insensitive).
    ///
    /// ```
    /// use connectors::chart::ChartFormat;
    /// assert_eq!(ChartFormat::of_file("a/b.PNG"), Some(ChartFormat::Png));
    /// assert_eq!(ChartFormat::of_file("b.svg"), Some(ChartFormat::Svg));
    /// assert_eq!(ChartFormat::of_file("b.jpg"), None);
    /// ```
    pub fn of_file(name: &str) -> Option<ChartFormat> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "svg" => Some(ChartFormat::Svg),
            "png" => Some(ChartFormat::Png),
            _ => None,
        }
    }
}

/// `[sinks.charts]`
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ChartSinkConfig {
    /// Draw charts while the job runs (`backfill` and `run`); off by default.
    #[serde(default)]
    pub enabled: bool,
    /// `svg` (the default) or `png`.
    #[serde(default)]
    pub format: ChartFormat,
    /// The bar resolutions to chart, each one of `features.resolutions`; absent: all
    /// of them.
    #[serde(default)]
    pub resolutions: Option<Vec<String>>,
    /// Image width in pixels.
    #[serde(default = "default_width")]
    pub width: u32,
    /// Image height in pixels.
    #[serde(default = "default_height")]
    pub height: u32,
}

fn default_width() -> u32 {
    1280
}

fn default_height() -> u32 {
    800
}

/// The smallest image side that leaves room for the panels and their labels.
pub const MIN_SIDE: u32 = 320;
/// The largest image side (a PNG of this size is about 100 MB of pixels).
pub const MAX_SIDE: u32 = 8192;

impl Default for ChartSinkConfig {
    fn default() -> Self {
        ChartSinkConfig {
            enabled: false,
            format: ChartFormat::default(),
            resolutions: None,
            width: default_width(),
            height: default_height(),
        }
    }
}

impl ChartSinkConfig {
    /// Every problem of the section as `(key, message)`, given the configured
    /// resolutions' labels (`features.resolutions`, parsed).
    pub fn check(&self, configured: &[operators::Resolution]) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (key, side) in [("width", self.width), ("height", self.height)] {
            if !(MIN_SIDE..=MAX_SIDE).contains(&side) {
                problems.push((
                    format!("sinks.charts.{key}"),
                    format!("must be between {MIN_SIDE} and {MAX_SIDE} pixels, got {side}"),
                ));
            }
        }
        if let Err(msg) = self.resolutions_ms(configured) {
            problems.push(("sinks.charts.resolutions".into(), msg));
        }
        problems
    }

    /// The chart sink's settings when enabled: charts of the lake at `output`
    /// (partitioned by `partitioning`), final `lateness_ms` after a partition ends, for
    /// the listed resolutions that are among `configured` (all of them when none is
    /// listed).
    pub fn build(
        &self,
        output: &crate::store::Location,
        partitioning: crate::parquet::Partitioning,
        lateness_ms: i64,
        configured: &[operators::Resolution],
    ) -> Option<crate::chart::ChartSpec> {
        if !self.enabled {
            return None;
        }
        let resolutions_ms = self
            .resolutions_ms(configured)
            .unwrap_or_else(|_| configured.iter().map(|r| r.ms).collect());
        Some(crate::chart::ChartSpec {
            output: output.clone(),
            partitioning,
            lateness_ms,
            resolutions_ms,
            format: self.format,
            size: (
                self.width.clamp(MIN_SIDE, MAX_SIDE),
                self.height.clamp(MIN_SIDE, MAX_SIDE),
            ),
        })
    }

    /// The resolutions to chart, in ms: the listed ones, or every configured one.
    pub fn resolutions_ms(&self, configured: &[operators::Resolution]) -> Result<Vec<i64>, String> {
        let Some(listed) = &self.resolutions else {
            return Ok(configured.iter().map(|r| r.ms).collect());
        };
        let mut out = Vec::new();
        for text in listed {
            let r = operators::Resolution::parse(text).map_err(|e| e.to_string())?;
            if !configured.iter().any(|c| c.ms == r.ms) {
                let known: Vec<&str> = configured.iter().map(|c| c.label()).collect();
                return Err(format!(
                    "`{text}` is not one of features.resolutions ({})",
                    known.join(", ")
                ));
            }
            if !out.contains(&r.ms) {
                out.push(r.ms);
            }
        }
        if out.is_empty() {
            return Err("must list at least one resolution (or be left out: all)".into());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use operators::Resolution;

    fn configured() -> Vec<Resolution> {
        ["1s", "1m"]
            .iter()
            .map(|r| Resolution::parse(r).unwrap())
            .collect()
    }

    #[test]
    fn defaults_are_off_svg_and_every_resolution() {
        let c: ChartSinkConfig = toml::from_str("").unwrap();
        assert_eq!(c, ChartSinkConfig::default());
        assert!(!c.enabled && c.format == ChartFormat::Svg);
        assert_eq!(c.resolutions_ms(&configured()).unwrap(), [1_000, 60_000]);
        assert!(c.check(&configured()).is_empty());
    }

    #[test]
    fn format_is_an_enum_and_resolutions_are_checked() {
        let c: ChartSinkConfig =
            toml::from_str("enabled = true\nformat = \"png\"\nresolutions = [\"1m\"]").unwrap();
        assert_eq!(c.format, ChartFormat::Png);
        assert_eq!(c.resolutions_ms(&configured()).unwrap(), [60_000]);
        assert!(toml::from_str::<ChartSinkConfig>("format = \"gif\"").is_err());
        let c: ChartSinkConfig = toml::from_str("resolutions = [\"5m\"]\nwidth = 10").unwrap();
        let keys: Vec<String> = c.check(&configured()).into_iter().map(|p| p.0).collect();
        assert_eq!(keys, ["sinks.charts.width", "sinks.charts.resolutions"]);
    }
}
