//! Drawing charts with `plotters` (pure Rust: no system library at build or run
//! time) into SVG or PNG bytes, and the candle chart: candles with volume, Bollinger
//! bands and RSI.
//!
//! Candle bodies and volume bars are the only rectangles filled with
//! [`CANDLE_UP`], [`CANDLE_DOWN`], [`VOLUME_UP`] and [`VOLUME_DOWN`], one per bar,
//! so a reader (or a test) can count them in an SVG.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::chart::config::ChartFormat;
use crate::chart::error::{ChartError, ChartResult};

/// DejaVu Sans (Bitstream Vera licence, `connectors/assets/DejaVuSans-LICENSE.txt`):
/// text in charts is drawn with it, so no system font is needed.
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Fill of the body of a candle that closed at or above its open.
pub const CANDLE_UP: RGBColor = RGBColor(38, 166, 154);
/// Fill of the body of a candle that closed below its open.
pub const CANDLE_DOWN: RGBColor = RGBColor(239, 83, 80);
/// Fill of the volume bar of an up candle.
pub const VOLUME_UP: RGBColor = RGBColor(146, 210, 204);
/// Fill of the volume bar of a down candle.
pub const VOLUME_DOWN: RGBColor = RGBColor(247, 169, 167);
const BAND: RGBColor = RGBColor(41, 98, 255);
const MID: RGBColor = RGBColor(255, 152, 0);
const RSI: RGBColor = RGBColor(126, 87, 194);
const GUIDE: RGBColor = RGBColor(160, 160, 160);

/// One bar of the chart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candle {
    /// Window start, epoch ms.
    pub window_start: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// Open price.
    pub open: f64,
    /// High price.
    pub high: f64,
    /// Low price.
    pub low: f64,
    /// Close price.
    pub close: f64,
    /// Σ qty.
    pub volume: f64,
}

/// The indicators drawn over and under the candles, at one window end.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IndicatorPoint {
    /// Window end, epoch ms.
    pub window_end: i64,
    /// Bollinger middle band.
    pub bb_mid: Option<f64>,
    /// Bollinger upper band.
    pub bb_upper: Option<f64>,
    /// Bollinger lower band.
    pub bb_lower: Option<f64>,
    /// Wilder RSI(14).
    pub rsi_14: Option<f64>,
}

/// What a candle chart shows: one symbol at one resolution, candles ascending by time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriceSeries {
    /// The symbol.
    pub symbol: String,
    /// Bar length, ms.
    pub resolution_ms: i64,
    /// Bars ascending by window start, at most one per window.
    pub candles: Vec<Candle>,
    /// Indicator rows ascending by window end.
    pub indicators: Vec<IndicatorPoint>,
}

/// Something drawable on any plotters backend.
pub trait Drawing {
    /// Draws on `root` (already cleared to white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Registers the bundled font once (plotters looks fonts up by family name).
fn fonts() -> ChartResult<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        [FontStyle::Normal, FontStyle::Bold]
            .into_iter()
            .all(|style| register_font("sans-serif", style, FONT).is_ok())
    });
    ok.then_some(())
        .ok_or_else(|| ChartError::Draw("the bundled font does not load".into()))
}

/// `d` as an image of `size` pixels in `format`.
pub fn encode(d: &impl Drawing, format: ChartFormat, size: (u32, u32)) -> ChartResult<Vec<u8>> {
    fonts()?;
    match format {
        ChartFormat::Svg => {
            let mut text = String::new();
            {
                let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
                root.fill(&WHITE).map_err(draw_error)?;
                d.draw(&root).map_err(ChartError::Draw)?;
                root.present().map_err(draw_error)?;
            }
            Ok(text.into_bytes())
        }
        ChartFormat::Png => {
            let mut pixels = vec![255u8; size.0 as usize * size.1 as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
                root.fill(&WHITE).map_err(draw_error)?;
                d.draw(&root).map_err(ChartError::Draw)?;
                root.present().map_err(draw_error)?;
            }
            let mut out = Vec::new();
            let mut encoder = png::Encoder::new(&mut out, size.0, size.1);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_compression(png::Compression::Best);
            let mut writer = encoder.write_header().map_err(draw_error)?;
            writer.write_image_data(&pixels).map_err(draw_error)?;
            writer.finish().map_err(draw_error)?;
            Ok(out)
        }
    }
}

fn draw_error(e: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// `e` as a message (plotters' errors are generic over the backend).
pub(crate) fn msg(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A time as text in UTC with `pattern` (chrono's strftime).
pub fn utc_text(ms: i64, pattern: &str) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format(pattern).to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// The strftime pattern of time-axis labels for a chart spanning `span_ms` of bars of
/// `resolution_ms`.
fn axis_pattern(span_ms: i64, resolution_ms: i64) -> &'static str {
    if span_ms > 2 * 86_400_000 {
        "%m-%d %H:%M"
    } else if resolution_ms < 60_000 {
        "%H:%M:%S"
    } else {
        "%H:%M"
    }
}

/// `(lo, hi)` widened by 5% each side, and to a non-empty range.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-6).max(1e-9);
    (lo - pad, hi + pad)
}

impl PriceSeries {
    /// The chart's title: symbol, resolution and time range (UTC).
    pub fn title(&self) -> String {
        let res = operators::Resolution::from_ms(self.resolution_ms);
        let (a, b) = self.span();
        format!(
            "{}  {}  {} – {} UTC",
            self.symbol,
            res.label(),
            utc_text(a, "%Y-%m-%d %H:%M:%S"),
            utc_text(b, "%Y-%m-%d %H:%M:%S")
        )
    }

    fn span(&self) -> (i64, i64) {
        let a = self.candles.first().map_or(0, |c| c.window_start);
        let b = self.candles.last().map_or(1, |c| c.window_end);
        (a, b.max(a + 1))
    }
}

impl Drawing for PriceSeries {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (w, h) = root.dim_in_pixel();
        let (title, body) = root.split_vertically(36);
        title
            .draw(&Text::new(
                self.title(),
                (12, 9),
                ("sans-serif", 18).into_font().color(&BLACK),
            ))
            .map_err(msg)?;
        let rest = h.saturating_sub(36);
        let (price, lower) = body.split_vertically(rest * 58 / 100);
        let (volume, rsi) = lower.split_vertically(rest * 16 / 100);
        let (x0, x1) = self.span();
        let label_w = (w / 12).clamp(60, 110);
        let pattern = axis_pattern(x1 - x0, self.resolution_ms);
        let x_fmt = |x: &i64| utc_text(*x, pattern);
        let pad = (self.resolution_ms * 15 / 100).max(0);

        // Price: candles and Bollinger bands.
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for c in &self.candles {
            lo = lo.min(c.low);
            hi = hi.max(c.high);
        }
        for p in &self.indicators {
            for v in [p.bb_lower, p.bb_upper].into_iter().flatten() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if !lo.is_finite() || !hi.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        let (lo, hi) = padded(lo, hi);
        let mut chart = ChartBuilder::on(&price)
            .margin_right(16)
            .margin_left(10)
            .margin_top(4)
            .y_label_area_size(label_w)
            .build_cartesian_2d(x0..x1, lo..hi)
            .map_err(msg)?;
        chart
            .configure_mesh()
            .x_labels(0)
            .y_labels(8)
            .y_desc("price")
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .draw()
            .map_err(msg)?;
        let band = |f: fn(&IndicatorPoint) -> Option<f64>| -> Vec<(i64, f64)> {
            self.indicators
                .iter()
                .filter(|p| p.window_end >= x0 && p.window_end <= x1)
                .filter_map(|p| f(p).map(|v| (p.window_end - self.resolution_ms / 2, v)))
                .collect()
        };
        let (upper, lower, mid) = (
            band(|p| p.bb_upper),
            band(|p| p.bb_lower),
            band(|p| p.bb_mid),
        );
        if upper.len() > 1 && lower.len() > 1 {
            let mut area = upper.clone();
            area.extend(lower.iter().rev());
            chart
                .draw_series(std::iter::once(Polygon::new(area, BAND.mix(0.07))))
                .map_err(msg)?;
            for (i, line) in [upper, lower].into_iter().enumerate() {
                let s = chart
                    .draw_series(LineSeries::new(line, BAND.stroke_width(1)))
                    .map_err(msg)?;
                if i == 0 {
                    s.label("bb_upper / bb_lower").legend(|(x, y)| {
                        PathElement::new([(x, y), (x + 18, y)], BAND.stroke_width(2))
                    });
                }
            }
            chart
                .draw_series(LineSeries::new(mid, MID.stroke_width(1)))
                .map_err(msg)?
                .label("bb_mid")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], MID.stroke_width(2)));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(msg)?;
        }
        for c in &self.candles {
            let color = if c.close >= c.open {
                CANDLE_UP
            } else {
                CANDLE_DOWN
            };
            let mid_x = c.window_start + (c.window_end - c.window_start) / 2;
            chart
                .draw_series([PathElement::new(
                    [(mid_x, c.low), (mid_x, c.high)],
                    color.stroke_width(1),
                )])
                .map_err(msg)?;
            let (top, bottom) = (c.open.max(c.close), c.open.min(c.close));
            chart
                .draw_series([Rectangle::new(
                    [(c.window_start + pad, top), (c.window_end - pad, bottom)],
                    color.filled(),
                )])
                .map_err(msg)?;
        }

        // Volume.
        let vmax = self.candles.iter().fold(0.0f64, |m, c| m.max(c.volume));
        let vmax = if vmax > 0.0 { vmax * 1.1 } else { 1.0 };
        let mut chart = ChartBuilder::on(&volume)
            .margin_right(16)
            .margin_left(10)
            .margin_top(10)
            .y_label_area_size(label_w)
            .build_cartesian_2d(x0..x1, 0.0..vmax)
            .map_err(msg)?;
        chart
            .configure_mesh()
            .x_labels(0)
            .y_labels(3)
            .y_desc("volume")
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .draw()
            .map_err(msg)?;
        chart
            .draw_series(self.candles.iter().map(|c| {
                let color = if c.close >= c.open {
                    VOLUME_UP
                } else {
                    VOLUME_DOWN
                };
                Rectangle::new(
                    [(c.window_start + pad, c.volume), (c.window_end - pad, 0.0)],
                    color.filled(),
                )
            }))
            .map_err(msg)?;

        // RSI.
        let mut chart = ChartBuilder::on(&rsi)
            .margin_right(16)
            .margin_left(10)
            .margin_top(10)
            .margin_bottom(6)
            .y_label_area_size(label_w)
            .x_label_area_size(34)
            .build_cartesian_2d(x0..x1, 0.0..100.0)
            .map_err(msg)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&x_fmt)
            .y_labels(5)
            .y_desc("RSI 14")
            .x_desc("UTC")
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .draw()
            .map_err(msg)?;
        for level in [30.0, 70.0] {
            chart
                .draw_series(LineSeries::new([(x0, level), (x1, level)], GUIDE))
                .map_err(msg)?;
        }
        let rsi_points = band(|p| p.rsi_14);
        if rsi_points.is_empty() {
            chart
                .plotting_area()
                .draw(&Text::new(
                    "no RSI in this range (the first value needs 15 bars)",
                    (x0 + (x1 - x0) / 50, 55.0),
                    ("sans-serif", 14).into_font().color(&GUIDE),
                ))
                .map_err(msg)?;
        } else {
            chart
                .draw_series(LineSeries::new(rsi_points, RSI.stroke_width(2)))
                .map_err(msg)?;
        }
        Ok(())
    }
}

/// The candle chart of `series` as an image.
pub fn render_price(
    series: &PriceSeries,
    format: ChartFormat,
    size: (u32, u32),
) -> ChartResult<Vec<u8>> {
    encode(series, format, size)
}
