//! `marketflow chart`: reads a lake and draws one symbol's candles (with volume,
//! Bollinger bands and RSI) or the correlation matrix, to an SVG or PNG file.

use anyhow::Context;
use connectors::chart::{render_correlation, render_price, ChartError, ChartFormat, Lake};

use crate::cli::ChartArgs;
use crate::commands::time::parse_time;
use crate::UsageError;

/// A chart error as a usage error (exit code 2) when the request does not fit the lake.
fn chart_error(e: ChartError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

/// Runs `marketflow chart`.
pub fn run(args: ChartArgs) -> anyhow::Result<()> {
    let name = args.output.display().to_string();
    let format = ChartFormat::of_file(&name).ok_or_else(|| {
        UsageError(format!(
            "--output `{name}`: the file name must end in .svg or .png"
        ))
    })?;
    let from = args
        .from
        .as_deref()
        .map(|t| parse_time("--from", t))
        .transpose()?
        .unwrap_or(i64::MIN);
    let to = args
        .to
        .as_deref()
        .map(|t| parse_time("--to", t))
        .transpose()?
        .unwrap_or(i64::MAX);
    if from > to {
        return Err(UsageError(format!(
            "empty range: --from `{}` is after --to `{}`",
            args.from.unwrap_or_default(),
            args.to.unwrap_or_default()
        ))
        .into());
    }
    let lake = Lake::open(&args.input).map_err(chart_error)?;
    let size = (args.width, args.height);
    let (bytes, what) = if args.correlation {
        let res = lake
            .resolution("correlation", args.resolution.as_deref())
            .map_err(chart_error)?;
        let matrix = lake.correlation_at(&res, from, to).map_err(chart_error)?;
        let what = format!(
            "correlation {} at {} ({} symbols)",
            res.label(),
            matrix.window_end,
            matrix.symbols().len()
        );
        (
            render_correlation(&matrix, format, size).map_err(chart_error)?,
            what,
        )
    } else {
        let symbol = args
            .symbol
            .as_deref()
            .ok_or_else(|| UsageError("--symbol is required without --correlation".into()))?;
        let res = lake
            .resolution("bars", args.resolution.as_deref())
            .map_err(chart_error)?;
        let series = lake
            .price_series(symbol, &res, from, to)
            .map_err(chart_error)?;
        let what = format!(
            "{symbol} {} ({} bars, {} indicator rows)",
            res.label(),
            series.candles.len(),
            series.indicators.len()
        );
        (
            render_price(&series, format, size).map_err(chart_error)?,
            what,
        )
    };
    std::fs::write(&args.output, &bytes).with_context(|| format!("writing `{name}`"))?;
    tracing::info!(output = %name, bytes = bytes.len(), chart = %what, "chart written");
    Ok(())
}
