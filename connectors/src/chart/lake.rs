//! Reading a feature lake for charts: the bars and indicators of one symbol and
//! resolution over a time range, and the correlation matrix at a time (either
//! layout), from local paths or object stores through [`Location`].

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use operators::Resolution;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::chart::error::{ChartError, ChartResult};
use crate::chart::heatmap::CorrelationMatrix;
use crate::chart::render::{utc_text, Candle, IndicatorPoint, PriceSeries};
use crate::parquet::Span;
use crate::store::Location;

/// A lake opened for reading.
#[derive(Clone, Debug)]
pub struct Lake {
    root: Location,
    url: String,
}

/// `[from, to)` in epoch ms as text for messages.
fn range_text(from: i64, to: i64) -> String {
    let t = |ms: i64| match ms {
        i64::MIN => "-∞".to_string(),
        i64::MAX => "+∞".to_string(),
        ms => utc_text(ms, "%Y-%m-%dT%H:%M:%SZ"),
    };
    format!("[{}, {}]", t(from), t(to))
}

/// The `[start, end)` of the Hive partition a lake file lies in (from its `dt=` and
/// `hour=` keys), or `None` when the path has no such keys.
///
/// ```
/// use connectors::chart::partition_bounds;
/// let (a, b) = partition_bounds("bars/resolution=1s/dt=2024-08-09/hour=01/part-00000.parquet").unwrap();
/// assert_eq!((a, b), (1_723_165_200_000, 1_723_168_800_000));
/// let (a, b) = partition_bounds("bars/resolution=5m/dt=2024-08/hour=__HIVE_DEFAULT_PARTITION__/x.parquet").unwrap();
/// assert_eq!(b - a, 31 * 86_400_000);
/// ```
pub fn partition_bounds(path: &str) -> Option<(i64, i64)> {
    Span::of_path(path).map(|(span, start)| (start, span.end(start)))
}

fn bad(path: &str, reason: impl Into<String>) -> ChartError {
    ChartError::BadFile {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// A column of `batch` by name, or an error naming the file.
fn column<'a>(batch: &'a RecordBatch, name: &str, path: &str) -> ChartResult<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| bad(path, format!("no column `{name}`")))
}

fn strings(batch: &RecordBatch, name: &str, path: &str) -> ChartResult<Vec<String>> {
    let c = column(batch, name, path)?;
    let a = c
        .as_string_opt::<i32>()
        .ok_or_else(|| bad(path, format!("column `{name}` is not a string")))?;
    Ok((0..a.len()).map(|i| a.value(i).to_string()).collect())
}

fn times(batch: &RecordBatch, name: &str, path: &str) -> ChartResult<Vec<Option<i64>>> {
    let c = column(batch, name, path)?;
    let a = c
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| bad(path, format!("column `{name}` is not timestamp[ms]")))?;
    Ok((0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect())
}

fn floats(batch: &RecordBatch, name: &str, path: &str) -> ChartResult<Vec<Option<f64>>> {
    let c = column(batch, name, path)?;
    let a = c
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(|| bad(path, format!("column `{name}` is not float64")))?;
    Ok((0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect())
}

impl Lake {
    /// Opens the lake at `url` (a path or an object-store URL).
    pub fn open(url: &str) -> ChartResult<Lake> {
        Ok(Lake {
            root: Location::parse(url)?,
            url: url.to_string(),
        })
    }

    /// The Parquet files of `set` at `resolution` (`None`: every resolution), with
    /// their resolution labels.
    fn files(&self, set: &str, resolution: Option<&str>) -> ChartResult<Vec<(String, String)>> {
        let below = match resolution {
            Some(r) => format!("{set}/resolution={r}"),
            None => set.to_string(),
        };
        let mut out = Vec::new();
        for path in self.root.list_files(&below)? {
            let name = path.rsplit('/').next().unwrap_or("");
            if name.starts_with('.') || !name.ends_with(".parquet") {
                continue;
            }
            let res = path
                .split('/')
                .find_map(|seg| seg.strip_prefix("resolution="))
                .map(str::to_string);
            if let Some(res) = res {
                out.push((path, res));
            }
        }
        Ok(out)
    }

    /// The resolutions present in `set`, ascending.
    pub fn resolutions(&self, set: &str) -> ChartResult<Vec<Resolution>> {
        let labels: BTreeSet<String> = self.files(set, None)?.into_iter().map(|f| f.1).collect();
        let mut out: Vec<Resolution> = labels
            .iter()
            .filter_map(|l| Resolution::parse(l).ok())
            .collect();
        out.sort_by_key(|r| r.ms);
        Ok(out)
    }

    /// `asked` if `set` has it, else its finest resolution when `asked` is `None`.
    pub fn resolution(&self, set: &str, asked: Option<&str>) -> ChartResult<Resolution> {
        let present = self.resolutions(set)?;
        let Some(finest) = present.first().cloned() else {
            return Err(ChartError::NoData {
                set: set.into(),
                lake: self.url.clone(),
            });
        };
        let Some(asked) = asked else {
            return Ok(finest);
        };
        let labels = || {
            present
                .iter()
                .map(|r| r.label().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let unknown = || ChartError::UnknownResolution {
            set: set.into(),
            asked: asked.into(),
            present: labels(),
        };
        let r = Resolution::parse(asked).map_err(|_| unknown())?;
        present
            .iter()
            .find(|p| p.ms == r.ms)
            .cloned()
            .ok_or_else(unknown)
    }

    /// The record batches of one file.
    fn batches(&self, path: &str) -> ChartResult<Vec<RecordBatch>> {
        let bytes = self
            .root
            .get(path)?
            .ok_or_else(|| bad(path, "vanished while reading"))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .and_then(|b| b.build())
            .map_err(|e| bad(path, e.to_string()))?;
        reader
            .map(|b| b.map_err(|e| bad(path, e.to_string())))
            .collect()
    }

    /// The bars and indicators of `symbol` at `resolution` whose windows lie inside
    /// `[from, to]` (`from <= window_start`, `window_end <= to`), ascending.
    pub fn price_series(
        &self,
        symbol: &str,
        resolution: &Resolution,
        from: i64,
        to: i64,
    ) -> ChartResult<PriceSeries> {
        let r = resolution.ms;
        let overlaps = |path: &str| {
            partition_bounds(path).is_none_or(|(a, b)| a <= to && b >= from.saturating_add(r))
        };
        let mut candles: BTreeMap<i64, Candle> = BTreeMap::new();
        for (path, _) in self.files("bars", Some(resolution.label()))? {
            if !overlaps(&path) {
                continue;
            }
            for b in self.batches(&path)? {
                let sym = strings(&b, "symbol", &path)?;
                let (ws, we) = (
                    times(&b, "window_start", &path)?,
                    times(&b, "window_end", &path)?,
                );
                let cols: Vec<Vec<Option<f64>>> = ["open", "high", "low", "close", "volume"]
                    .iter()
                    .map(|c| floats(&b, c, &path))
                    .collect::<ChartResult<_>>()?;
                for i in 0..b.num_rows() {
                    let (Some(s), Some(e)) = (ws[i], we[i]) else {
                        continue;
                    };
                    if sym[i] != symbol || s < from || e > to {
                        continue;
                    }
                    let v = |k: usize| cols[k][i];
                    let (Some(open), Some(high), Some(low), Some(close)) = (v(0), v(1), v(2), v(3))
                    else {
                        continue;
                    };
                    let c = Candle {
                        window_start: s,
                        window_end: e,
                        open,
                        high,
                        low,
                        close,
                        volume: v(4).unwrap_or(0.0),
                    };
                    candles.insert(s, c);
                }
            }
        }
        if candles.is_empty() {
            return Err(self.why_empty(symbol, resolution, from, to));
        }
        let mut indicators = BTreeMap::new();
        for (path, _) in self.files("indicators", Some(resolution.label()))? {
            if !overlaps(&path) {
                continue;
            }
            for b in self.batches(&path)? {
                let sym = strings(&b, "symbol", &path)?;
                let we = times(&b, "window_end", &path)?;
                let cols: Vec<Vec<Option<f64>>> = ["bb_mid", "bb_upper", "bb_lower", "rsi_14"]
                    .iter()
                    .map(|c| floats(&b, c, &path))
                    .collect::<ChartResult<_>>()?;
                for i in 0..b.num_rows() {
                    let Some(e) = we[i] else { continue };
                    if sym[i] != symbol || e - r < from || e > to {
                        continue;
                    }
                    let p = IndicatorPoint {
                        window_end: e,
                        bb_mid: cols[0][i],
                        bb_upper: cols[1][i],
                        bb_lower: cols[2][i],
                        rsi_14: cols[3][i],
                    };
                    indicators.insert(e, p);
                }
            }
        }
        Ok(PriceSeries {
            symbol: symbol.to_string(),
            resolution_ms: r,
            candles: candles.into_values().collect(),
            indicators: indicators.into_values().collect(),
        })
    }

    /// Why no bar of `symbol` lies in the range: an unknown symbol, or an empty range
    /// (with the range the lake holds for it). Reads every file of the resolution.
    fn why_empty(&self, symbol: &str, resolution: &Resolution, from: i64, to: i64) -> ChartError {
        let mut known = BTreeSet::new();
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        let files = self
            .files("bars", Some(resolution.label()))
            .unwrap_or_default();
        for (path, _) in files {
            let Ok(batches) = self.batches(&path) else {
                continue;
            };
            for b in batches {
                let (Ok(sym), Ok(ws), Ok(we)) = (
                    strings(&b, "symbol", &path),
                    times(&b, "window_start", &path),
                    times(&b, "window_end", &path),
                ) else {
                    continue;
                };
                for i in 0..b.num_rows() {
                    if sym[i] == symbol {
                        first = first.min(ws[i].unwrap_or(i64::MAX));
                        last = last.max(we[i].unwrap_or(i64::MIN));
                    } else if known.len() < 50 {
                        known.insert(sym[i].clone());
                    }
                }
            }
        }
        if first > last {
            return ChartError::UnknownSymbol {
                symbol: symbol.into(),
                resolution: resolution.label().into(),
                known: known.into_iter().collect::<Vec<_>>().join(", "),
            };
        }
        ChartError::EmptyRange {
            what: format!("{symbol} {} bars", resolution.label()),
            range: range_text(from, to),
            available: range_text(first, last),
        }
    }

    /// The correlation matrix at the latest window end `<= at` (`i64::MAX`: the last
    /// one in the lake) and `>= not_before`, in the `pairs` or the `matrix` layout.
    pub fn correlation_at(
        &self,
        resolution: &Resolution,
        not_before: i64,
        at: i64,
    ) -> ChartResult<CorrelationMatrix> {
        let files = self.files("correlation", Some(resolution.label()))?;
        // Partitions newest first: the first one holding a window end <= at has it.
        let mut ordered: Vec<(Option<(i64, i64)>, String)> = files
            .into_iter()
            .map(|(p, _)| (partition_bounds(&p), p))
            .collect();
        ordered.sort_by(|a, b| b.cmp(a));
        if ordered.is_empty() {
            return Err(ChartError::NoData {
                set: "correlation".into(),
                lake: self.url.clone(),
            });
        }
        let mut best: Option<CorrelationMatrix> = None;
        let mut seen = (i64::MAX, i64::MIN);
        for (bounds, path) in ordered {
            if let Some((start, end)) = bounds {
                // Window ends of a partition lie in [start, end).
                if start > at || best.as_ref().is_some_and(|m| m.window_end >= end) {
                    continue;
                }
            }
            for b in self.batches(&path)? {
                let we = times(&b, "window_end", &path)?;
                let matrix = b.column_by_name("symbols").is_some();
                let pairs = read_pairs(&b, matrix, &path)?;
                for (i, row) in pairs.into_iter().enumerate() {
                    let Some(e) = we[i] else { continue };
                    seen = (seen.0.min(e), seen.1.max(e));
                    if e > at || e < not_before {
                        continue;
                    }
                    let m = match &mut best {
                        Some(m) if m.window_end > e => continue,
                        Some(m) if m.window_end == e => m,
                        _ => best.insert(CorrelationMatrix {
                            resolution_ms: resolution.ms,
                            window_end: e,
                            pairs: BTreeMap::new(),
                        }),
                    };
                    m.pairs.extend(row);
                }
            }
        }
        best.ok_or_else(|| ChartError::EmptyRange {
            what: format!("{} correlation", resolution.label()),
            range: range_text(not_before, at),
            available: if seen.0 <= seen.1 {
                range_text(seen.0, seen.1)
            } else {
                "only later window ends".into()
            },
        })
    }
}

type PairRow = Vec<((String, String), Option<f64>)>;

/// The pairs of each row of a correlation batch: one pair a row (`pairs` layout) or
/// the upper triangle of a matrix row by row (`matrix` layout).
fn read_pairs(b: &RecordBatch, matrix: bool, path: &str) -> ChartResult<Vec<PairRow>> {
    let mut out = Vec::with_capacity(b.num_rows());
    if !matrix {
        let (a, c) = (strings(b, "symbol_a", path)?, strings(b, "symbol_b", path)?);
        let corr = floats(b, "corr", path)?;
        for i in 0..b.num_rows() {
            let (x, y) = if a[i] <= c[i] {
                (a[i].clone(), c[i].clone())
            } else {
                (c[i].clone(), a[i].clone())
            };
            out.push(vec![((x, y), corr[i])]);
        }
        return Ok(out);
    }
    let symbols = column(b, "symbols", path)?
        .as_list_opt::<i32>()
        .ok_or_else(|| bad(path, "column `symbols` is not a list"))?;
    let corr = column(b, "corr", path)?
        .as_list_opt::<i32>()
        .ok_or_else(|| bad(path, "column `corr` is not a list"))?;
    for i in 0..b.num_rows() {
        let s = symbols.value(i);
        let s = s
            .as_string_opt::<i32>()
            .ok_or_else(|| bad(path, "`symbols` holds no strings"))?;
        let v = corr.value(i);
        let v = v
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| bad(path, "`corr` holds no float64"))?;
        let k = s.len();
        if v.len() != k * k.saturating_sub(1) / 2 {
            return Err(bad(
                path,
                format!(
                    "{} values for {k} symbols (not the upper triangle)",
                    v.len()
                ),
            ));
        }
        let mut row = Vec::with_capacity(v.len());
        let mut at = 0;
        for x in 0..k {
            for y in x + 1..k {
                let value = v.is_valid(at).then(|| v.value(at));
                row.push(((s.value(x).to_string(), s.value(y).to_string()), value));
                at += 1;
            }
        }
        out.push(row);
    }
    Ok(out)
}
