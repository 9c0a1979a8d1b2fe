//! The correlation heatmap: one cell per symbol pair (the lower triangle of the
//! matrix, rows and columns in symbol byte order), coloured from −1 (blue) through 0
//! (light grey) to +1 (red), with the value written in cells large enough for it.
//!
//! Each cell is outlined by a rectangle stroked with [`CELL_EDGE`], a colour nothing
//! else in the image uses, so a reader (or a test) can count the cells of an SVG.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::chart::config::ChartFormat;
use crate::chart::error::ChartResult;
use crate::chart::render::{encode, msg, utc_text, Drawing};

/// Stroke of the outline of every heatmap cell (and of nothing else).
pub const CELL_EDGE: RGBColor = RGBColor(51, 51, 51);
const NEG: RGBColor = RGBColor(59, 76, 192);
const ZERO: RGBColor = RGBColor(236, 236, 236);
const POS: RGBColor = RGBColor(180, 4, 38);
const NULL: RGBColor = RGBColor(190, 190, 190);

/// The correlation matrix at one window end: the value of each pair `a < b` present in
/// the lake (`None`: null, a variance was 0).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CorrelationMatrix {
    /// Bar length, ms.
    pub resolution_ms: i64,
    /// The window end of the matrix, epoch ms.
    pub window_end: i64,
    /// `(symbol_a, symbol_b) -> corr`, with `symbol_a < symbol_b`.
    pub pairs: BTreeMap<(String, String), Option<f64>>,
}

impl CorrelationMatrix {
    /// The symbols of the pairs, in byte order.
    pub fn symbols(&self) -> Vec<String> {
        let mut s: Vec<String> = self
            .pairs
            .keys()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect();
        s.sort();
        s.dedup();
        s
    }
}

/// The colour of a correlation `v` in [−1, 1].
fn color_of(v: f64) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    let (from, to, t) = if v < 0.0 {
        (ZERO, NEG, -v)
    } else {
        (ZERO, POS, v)
    };
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
    RGBColor(mix(from.0, to.0), mix(from.1, to.1), mix(from.2, to.2))
}

impl Drawing for CorrelationMatrix {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (w, h) = root.dim_in_pixel();
        let res = operators::Resolution::from_ms(self.resolution_ms);
        let title = format!(
            "Correlation of {} returns, window ending {} UTC",
            res.label(),
            utc_text(self.window_end, "%Y-%m-%d %H:%M:%S")
        );
        let font = |size: u32| ("sans-serif", size).into_font().color(&BLACK);
        root.draw(&Text::new(title, (12, 9), font(18)))
            .map_err(msg)?;
        let symbols = self.symbols();
        let n = symbols.len();
        if n < 2 {
            return Ok(());
        }
        let index: BTreeMap<&str, usize> = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        let longest = symbols.iter().map(|s| s.chars().count()).max().unwrap_or(1) as i32;
        let (left, top, bottom, right) = (longest * 8 + 24, 48, longest * 6 + 40, 110);
        let k = (n - 1) as i32;
        let cell = ((w as i32 - left - right) / k)
            .min((h as i32 - top - bottom) / k)
            .max(4);
        let at = |row: usize, col: usize| {
            let x = left + col as i32 * cell;
            let y = top + (row as i32 - 1) * cell;
            ((x, y), (x + cell, y + cell))
        };
        let value_font = (cell / 4).clamp(9, 16) as u32;
        for ((a, b), v) in &self.pairs {
            let (Some(&i), Some(&j)) = (index.get(a.as_str()), index.get(b.as_str())) else {
                continue;
            };
            // Lower triangle: the row is the later symbol.
            let (row, col) = (i.max(j), i.min(j));
            let (p0, p1) = at(row, col);
            let fill = v.map_or(NULL, color_of);
            root.draw(&Rectangle::new([p0, p1], fill.filled()))
                .map_err(msg)?;
            root.draw(&Rectangle::new([p0, p1], CELL_EDGE.stroke_width(1)))
                .map_err(msg)?;
            if cell >= 34 {
                let text = v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
                let ink = if v.is_some_and(|v| v.abs() > 0.6) {
                    WHITE
                } else {
                    BLACK
                };
                let style = ("sans-serif", value_font)
                    .into_font()
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                root.draw(&Text::new(
                    text,
                    ((p0.0 + p1.0) / 2, (p0.1 + p1.1) / 2),
                    style,
                ))
                .map_err(msg)?;
            }
        }
        // Row labels (symbols 1..n) and column labels (symbols 0..n-1, rotated).
        let label = ("sans-serif", 13).into_font().color(&BLACK);
        for (i, s) in symbols.iter().enumerate().skip(1) {
            let ((_, y), _) = at(i, 0);
            let style = label.clone().pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(s.as_str(), (left - 6, y + cell / 2), style))
                .map_err(msg)?;
        }
        for (j, s) in symbols.iter().enumerate().take(n - 1) {
            let ((x, _), _) = at(n - 1, j);
            let style = label
                .clone()
                .transform(FontTransform::Rotate90)
                .pos(Pos::new(HPos::Left, VPos::Center));
            root.draw(&Text::new(
                s.as_str(),
                (x + cell / 2, top + k * cell + 6),
                style,
            ))
            .map_err(msg)?;
        }
        // The colour scale, drawn with lines (not rectangles).
        let (bx, by, bh) = (left + k * cell + 40, top, (k * cell).clamp(60, 400));
        for y in 0..bh {
            let v = 1.0 - 2.0 * y as f64 / (bh - 1).max(1) as f64;
            root.draw(&PathElement::new(
                [(bx, by + y), (bx + 18, by + y)],
                color_of(v).stroke_width(1),
            ))
            .map_err(msg)?;
        }
        for (v, y) in [("+1", by), ("0", by + bh / 2), ("−1", by + bh - 1)] {
            let style = label.clone().pos(Pos::new(HPos::Left, VPos::Center));
            root.draw(&Text::new(v, (bx + 24, y), style)).map_err(msg)?;
        }
        Ok(())
    }
}

/// The heatmap of `matrix` as an image.
pub fn render_correlation(
    matrix: &CorrelationMatrix,
    format: ChartFormat,
    size: (u32, u32),
) -> ChartResult<Vec<u8>> {
    encode(matrix, format, size)
}
