//! The `ChartSink` operator (`[sinks.charts]`): buffers the bars and indicators of
//! each (symbol, resolution, lake partition), exchanged by symbol so each worker draws
//! its own symbols, and writes one chart per symbol and partition under
//! `<output>/_charts/` once the partition is final, i.e. when the frontier has passed
//! its end plus the allowed lateness (the rule by which the Parquet sink closes a
//! partition). The path mirrors the lake's partition keys:
//! `_charts/resolution=1m/dt=2024-08-08/hour=__HIVE_DEFAULT_PARTITION__/spot_BTCUSDT.svg`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use operators::indicators::IndicatorRow;
use operators::route::symbol_route;
use operators::Bar;
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::{Stream, StreamVec};

use crate::chart::config::ChartFormat;
use crate::chart::render::{render_price, Candle, IndicatorPoint, PriceSeries};
use crate::parquet::Partitioning;
use crate::store::Location;
use crate::sync::ErrorSlot;

/// The directory of the charts below the output root.
pub const CHARTS_DIR: &str = "_charts";

/// Where and how the chart sink draws.
#[derive(Clone, Debug)]
pub struct ChartSpec {
    /// The lake's root (charts go below `_charts/`).
    pub output: Location,
    /// The lake's time partition per resolution (a chart covers one partition).
    pub partitioning: Partitioning,
    /// Allowed lateness, ms: a partition is final once the frontier passed its end
    /// plus this.
    pub lateness_ms: i64,
    /// The resolutions to chart, ms.
    pub resolutions_ms: Vec<i64>,
    /// Image format.
    pub format: ChartFormat,
    /// Image size in pixels.
    pub size: (u32, u32),
}

/// A chart written to the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartWritten {
    /// Path relative to the output root.
    pub path: String,
    /// The bars' resolution, ms.
    pub resolution_ms: i64,
    /// Size in bytes.
    pub bytes: u64,
}

/// A symbol as a file name: characters other than ASCII letters, digits, `-`, `_`
/// and `.` become `_`.
///
/// ```
/// assert_eq!(connectors::chart::file_stem("spot:BTCUSDT"), "spot_BTCUSDT");
/// ```
pub fn file_stem(symbol: &str) -> String {
    symbol
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl ChartSpec {
    /// The path of the chart of `symbol` at `resolution_ms` for the partition
    /// starting at `partition`.
    pub fn path(&self, symbol: &str, resolution_ms: i64, partition: i64) -> String {
        let span = self.partitioning.span(resolution_ms);
        format!(
            "{}/{}.{}",
            span.dir(CHARTS_DIR, resolution_ms, partition),
            file_stem(symbol),
            self.format.extension()
        )
    }
}

/// Which chart a row goes to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ChartKey {
    /// When the partition ends (charts are drawn oldest first).
    end: i64,
    resolution_ms: i64,
    partition: i64,
    symbol: String,
}

/// The rows of one chart, by window end (a later revision of a bar replaces it).
#[derive(Default)]
struct Pending {
    candles: BTreeMap<i64, (u32, Candle)>,
    indicators: BTreeMap<i64, IndicatorPoint>,
}

/// Work done per activation before the sink yields to the worker.
const BUDGET: Duration = Duration::from_millis(50);

/// Extension trait: draw charts of a bar stream and its indicators.
pub trait ChartSink<'scope> {
    /// Draws one chart per symbol and final lake partition as `spec` says; emits one
    /// record per chart written. A write failure is set in `errors`.
    fn chart_sink(
        self,
        indicators: StreamVec<'scope, i64, IndicatorRow>,
        spec: ChartSpec,
        errors: ErrorSlot,
    ) -> StreamVec<'scope, i64, ChartWritten>;
}

impl<'scope> ChartSink<'scope> for Stream<'scope, i64, Vec<Bar>> {
    fn chart_sink(
        self,
        indicators: StreamVec<'scope, i64, IndicatorRow>,
        spec: ChartSpec,
        errors: ErrorSlot,
    ) -> StreamVec<'scope, i64, ChartWritten> {
        let scope = self.scope();
        let key_of = {
            let spec = spec.clone();
            move |symbol: &str, resolution_ms: i64, window_end: i64| {
                let span = spec.partitioning.span(resolution_ms);
                // The lake's partition of the row: by window end.
                let partition = span.start(window_end);
                ChartKey {
                    end: span.end(partition),
                    resolution_ms,
                    partition,
                    symbol: symbol.to_string(),
                }
            }
        };
        self.binary_frontier(
            indicators,
            Exchange::new(|b: &Bar| symbol_route(&b.symbol)),
            Exchange::new(|r: &IndicatorRow| symbol_route(&r.symbol)),
            "ChartSink",
            move |cap, info| {
                let activator = scope.activator_for(info.address);
                let mut cap = Some(cap);
                let mut pending: FxHashMap<ChartKey, Pending> = FxHashMap::default();
                move |(bars, f1), (rows, f2), out| {
                    let wanted = |r: i64| spec.resolutions_ms.contains(&r);
                    bars.for_each(|_, data| {
                        for b in data.drain(..).filter(|b| wanted(b.resolution_ms)) {
                            let key = key_of(&b.symbol, b.resolution_ms, b.window_end);
                            let p = pending.entry(key).or_default();
                            let candle = Candle {
                                window_start: b.window_start,
                                window_end: b.window_end,
                                open: b.open,
                                high: b.high,
                                low: b.low,
                                close: b.close,
                                volume: b.volume,
                            };
                            let slot = p.candles.entry(b.window_end).or_insert((0, candle));
                            if b.revision >= slot.0 {
                                *slot = (b.revision, candle);
                            }
                        }
                    });
                    rows.for_each(|_, data| {
                        for r in data.drain(..).filter(|r| wanted(r.resolution_ms)) {
                            let key = key_of(&r.symbol, r.resolution_ms, r.window_end);
                            let point = IndicatorPoint {
                                window_end: r.window_end,
                                bb_mid: r.bb_mid,
                                bb_upper: r.bb_upper,
                                bb_lower: r.bb_lower,
                                rsi_14: r.rsi_14,
                            };
                            let p = pending.entry(key).or_default();
                            p.indicators.insert(r.window_end, point);
                        }
                    });
                    let f = [f1.frontier().first(), f2.frontier().first()]
                        .into_iter()
                        .map(|t| t.copied().unwrap_or(i64::MAX))
                        .min()
                        .unwrap_or(i64::MAX);
                    let mut done: Vec<ChartKey> = pending
                        .keys()
                        .filter(|k| k.end.saturating_add(spec.lateness_ms) <= f)
                        .cloned()
                        .collect();
                    done.sort_unstable();
                    let started = Instant::now();
                    let mut more = false;
                    let mut written = Vec::new();
                    for key in done {
                        if errors.is_set() {
                            pending.clear();
                            break;
                        }
                        if started.elapsed() > BUDGET {
                            more = true;
                            break;
                        }
                        let Some(p) = pending.remove(&key) else {
                            continue;
                        };
                        if p.candles.is_empty() {
                            continue; // indicators of a partition without trades
                        }
                        let series = PriceSeries {
                            symbol: key.symbol.clone(),
                            resolution_ms: key.resolution_ms,
                            candles: p.candles.into_values().map(|(_, c)| c).collect(),
                            indicators: p.indicators.into_values().collect(),
                        };
                        let path = spec.path(&key.symbol, key.resolution_ms, key.partition);
                        let result = render_price(&series, spec.format, spec.size)
                            .map_err(|e| e.to_string())
                            .and_then(|bytes| {
                                let n = bytes.len() as u64;
                                spec.output
                                    .put(&path, bytes)
                                    .map(|()| n)
                                    .map_err(|e| e.to_string())
                            });
                        match result {
                            Ok(bytes) => {
                                tracing::debug!(path = %path, bytes, "chart written");
                                written.push(ChartWritten {
                                    path,
                                    resolution_ms: key.resolution_ms,
                                    bytes,
                                });
                            }
                            Err(e) => errors.set(format!("writing chart {path}: {e}")),
                        }
                    }
                    if let Some(c) = cap.as_mut() {
                        if !written.is_empty() {
                            out.session(c).give_iterator(written.into_iter());
                        }
                        if more {
                            activator.activate();
                        } else if f == i64::MAX {
                            cap = None;
                        } else if *c.time() < f {
                            c.downgrade(&f);
                        }
                    }
                }
            },
        )
    }
}
