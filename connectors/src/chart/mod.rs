//! Charts of the feature lake: candles with volume, Bollinger bands and RSI for one
//! symbol, and the correlation matrix as a heatmap, drawn as SVG or PNG with
//! `plotters` (pure Rust). The `chart` command reads them from a lake ([`Lake`]); the
//! chart sink ([`ChartSink`], `[sinks.charts]`) draws one per symbol and closed
//! partition while a job runs.

pub mod config;
mod error;
mod heatmap;
mod lake;
mod render;
mod sink;

pub use config::{ChartFormat, ChartSinkConfig};
pub use error::{ChartError, ChartResult};
pub use heatmap::{render_correlation, CorrelationMatrix, CELL_EDGE};
pub use lake::{partition_bounds, Lake};
/// The colour type of the chart constants (plotters' RGB).
pub use plotters::style::RGBColor as ChartColor;
pub use render::{
    render_price, Candle, IndicatorPoint, PriceSeries, CANDLE_DOWN, CANDLE_UP, VOLUME_DOWN,
    VOLUME_UP,
};
pub use sink::{file_stem, ChartSink, ChartSpec, ChartWritten, CHARTS_DIR};
#[cfg(test)]
mod tests;
