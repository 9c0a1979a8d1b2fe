//! Shared helpers of the end-to-end tests: running the binary, reading Parquet output
//! back with arrow, and a from-scratch reference for bars.
#![allow(dead_code)]

pub mod live;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::Array;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The bundled real Binance sample.
pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/binance_ws_trades_2024-08-08.csv.gz")
}

/// The sample's config: every feature set, benchmark `spot:BTCUSDT`.
pub fn sample_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sample.toml")
}

/// Runs `marketflow ARGS` and returns its output.
pub fn marketflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_marketflow"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run marketflow")
}

/// Panics with stderr unless the command exited 0.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One bar row as read back from Parquet.
#[derive(Clone, Debug, PartialEq)]
pub struct BarRow {
    pub symbol: String,
    pub resolution: String,
    pub window_start: i64,
    pub window_end: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub quote_volume: Option<f64>,
    pub vwap: Option<f64>,
    pub trades: Option<i64>,
    pub buy_volume: Option<f64>,
    pub sell_volume: Option<f64>,
}

/// Every Parquet file below `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(parquet_files(&p));
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The exact bars schema (the columns and types every `bars` file has), as `name: type`
/// strings.
pub const BARS_SCHEMA: &[(&str, &str)] = &[
    ("symbol", "Utf8"),
    ("resolution", "Utf8"),
    ("window_start", "Timestamp(ms, \"UTC\")"),
    ("window_end", "Timestamp(ms, \"UTC\")"),
    ("open", "Float64"),
    ("high", "Float64"),
    ("low", "Float64"),
    ("close", "Float64"),
    ("volume", "Float64"),
    ("quote_volume", "Float64"),
    ("vwap", "Float64"),
    ("trades", "Int64"),
    ("buy_volume", "Float64"),
    ("sell_volume", "Float64"),
];

fn f64s(batch: &arrow_array::RecordBatch, name: &str) -> Vec<Option<f64>> {
    let a = batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Float64Type>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect()
}

/// The partition directory of a row under `partitioning = "auto"`: hourly below a
/// minute, daily below five minutes, monthly above (with a null hour).
pub fn auto_partition(resolution: &str, window_end: i64) -> String {
    let (n, unit) = resolution.split_at(resolution.len() - 1);
    let ms = n.parse::<i64>().unwrap()
        * match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => panic!("unit {other}"),
        };
    let dt = chrono::DateTime::from_timestamp_millis(window_end).unwrap();
    let null = "__HIVE_DEFAULT_PARTITION__";
    match ms {
        ms if ms < 60_000 => format!(
            "resolution={resolution}/dt={}/hour={}",
            dt.format("%Y-%m-%d"),
            dt.format("%H")
        ),
        ms if ms < 300_000 => format!(
            "resolution={resolution}/dt={}/hour={null}",
            dt.format("%Y-%m-%d")
        ),
        _ => format!(
            "resolution={resolution}/dt={}/hour={null}",
            dt.format("%Y-%m")
        ),
    }
}

/// Reads every bars file under `<out>/bars`, checking the schema, the partition path
/// and the in-file order of each.
pub fn read_bars(out: &Path) -> Vec<BarRow> {
    let mut rows = Vec::new();
    for file in parquet_files(&out.join("bars")) {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap()).unwrap();
        let schema = reader.schema().clone();
        let got: Vec<(String, String)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), format!("{}", f.data_type())))
            .collect();
        let want: Vec<(String, String)> = BARS_SCHEMA
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        assert_eq!(got, want, "schema of {}", file.display());
        let mut file_rows = Vec::new();
        for batch in reader.build().unwrap() {
            let b = batch.unwrap();
            let sym = b.column_by_name("symbol").unwrap().as_string::<i32>();
            let res = b.column_by_name("resolution").unwrap().as_string::<i32>();
            let ws = b
                .column_by_name("window_start")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>();
            let we = b
                .column_by_name("window_end")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>();
            let tr = b
                .column_by_name("trades")
                .unwrap()
                .as_primitive::<Int64Type>();
            let col: BTreeMap<&str, Vec<Option<f64>>> = [
                "open",
                "high",
                "low",
                "close",
                "volume",
                "quote_volume",
                "vwap",
                "buy_volume",
                "sell_volume",
            ]
            .into_iter()
            .map(|n| (n, f64s(&b, n)))
            .collect();
            for i in 0..b.num_rows() {
                let cols = |n: &str| col[n].get(i).copied().flatten();
                file_rows.push(BarRow {
                    symbol: sym.value(i).to_string(),
                    resolution: res.value(i).to_string(),
                    window_start: ws.value(i),
                    window_end: we.value(i),
                    open: cols("open").unwrap(),
                    high: cols("high").unwrap(),
                    low: cols("low").unwrap(),
                    close: cols("close").unwrap(),
                    volume: cols("volume").unwrap(),
                    quote_volume: cols("quote_volume"),
                    vwap: cols("vwap"),
                    trades: tr.is_valid(i).then(|| tr.value(i)),
                    buy_volume: cols("buy_volume"),
                    sell_volume: cols("sell_volume"),
                });
            }
        }
        let path = file.display().to_string();
        for r in &file_rows {
            let dir = auto_partition(&r.resolution, r.window_end);
            assert!(path.contains(&dir), "{path} holds a row of {dir}");
        }
        let keys: Vec<_> = file_rows
            .iter()
            .map(|r| (r.window_end, r.symbol.clone()))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "{path} is sorted by (window_end, symbol)");
        rows.extend(file_rows);
    }
    rows.sort_by(|a, b| {
        (&a.symbol, &a.resolution, a.window_start).cmp(&(&b.symbol, &b.resolution, b.window_start))
    });
    rows
}

/// A trade as the reference sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct RefTrade {
    pub ts_ms: i64,
    pub symbol: String,
    pub price: f64,
    pub qty: f64,
    pub is_buyer_maker: bool,
    pub trade_id: Option<i64>,
    /// Input order.
    pub order: u64,
}

/// Reads the bundled sample (canonical CSV, gzip).
pub fn sample_trades() -> Vec<RefTrade> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(sample()).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .skip(1)
        .enumerate()
        .map(|(i, l)| {
            let f: Vec<&str> = l.split(',').collect();
            RefTrade {
                ts_ms: f[0].parse().unwrap(),
                symbol: f[1].to_string(),
                price: f[2].parse().unwrap(),
                qty: f[3].parse().unwrap(),
                is_buyer_maker: f[4].eq_ignore_ascii_case("true"),
                trade_id: Some(f[5].parse().unwrap()),
                order: i as u64,
            }
        })
        .collect()
}

fn label(ms: i64) -> String {
    for (unit, s) in [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ] {
        if ms % unit == 0 {
            return format!("{}{s}", ms / unit);
        }
    }
    format!("{ms}ms")
}

/// Bars computed from scratch: per symbol, sort by (ts, trade_id, order), drop repeated
/// trade ids keeping the first, group by window, plain f64 sums.
pub fn reference_bars(trades: &[RefTrade], resolutions: &[i64]) -> Vec<BarRow> {
    let mut by_symbol: BTreeMap<&str, Vec<&RefTrade>> = BTreeMap::new();
    for t in trades {
        by_symbol.entry(&t.symbol).or_default().push(t);
    }
    let mut out = Vec::new();
    for (sym, mut ts) in by_symbol {
        ts.sort_by_key(|t| (t.ts_ms, t.trade_id.unwrap_or(i64::MIN), t.order));
        let mut seen = std::collections::HashSet::new();
        ts.retain(|t| t.trade_id.is_none_or(|id| seen.insert(id)));
        for &r in resolutions {
            let mut windows: BTreeMap<i64, Vec<&RefTrade>> = BTreeMap::new();
            for t in &ts {
                windows
                    .entry(t.ts_ms.div_euclid(r) * r)
                    .or_default()
                    .push(t);
            }
            for (start, w) in windows {
                let volume: f64 = w.iter().map(|t| t.qty).sum();
                let quote: f64 = w.iter().map(|t| t.price * t.qty).sum();
                let buy: f64 = w.iter().filter(|t| !t.is_buyer_maker).map(|t| t.qty).sum();
                out.push(BarRow {
                    symbol: sym.to_string(),
                    resolution: label(r),
                    window_start: start,
                    window_end: start + r,
                    open: w[0].price,
                    high: w.iter().map(|t| t.price).fold(f64::MIN, f64::max),
                    low: w.iter().map(|t| t.price).fold(f64::MAX, f64::min),
                    close: w[w.len() - 1].price,
                    volume,
                    quote_volume: Some(quote),
                    vwap: Some(quote / volume),
                    trades: Some(w.len() as i64),
                    buy_volume: Some(buy),
                    sell_volume: Some(volume - buy),
                });
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.symbol, &a.resolution, a.window_start).cmp(&(&b.symbol, &b.resolution, b.window_start))
    });
    out
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn close_opt(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => close(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Asserts two bar lists match: keys, prices and counts exactly, sums at 1e-9.
pub fn assert_bars_match(got: &[BarRow], want: &[BarRow]) {
    assert_eq!(got.len(), want.len(), "number of bars");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(
            (
                &g.symbol,
                &g.resolution,
                g.window_start,
                g.window_end,
                g.trades
            ),
            (
                &w.symbol,
                &w.resolution,
                w.window_start,
                w.window_end,
                w.trades
            )
        );
        assert_eq!(
            (g.open, g.high, g.low, g.close),
            (w.open, w.high, w.low, w.close),
            "{g:?} vs {w:?}"
        );
        assert!(close(g.volume, w.volume), "volume {g:?} vs {w:?}");
        for (x, y) in [
            (g.quote_volume, w.quote_volume),
            (g.vwap, w.vwap),
            (g.buy_volume, w.buy_volume),
            (g.sell_volume, w.sell_volume),
        ] {
            assert!(close_opt(x, y), "{g:?} vs {w:?}");
        }
    }
}

/// The run manifest(s) under `<out>/_runs`.
pub fn manifests(out: &Path) -> Vec<serde_json::Value> {
    let mut v = Vec::new();
    if let Ok(entries) = std::fs::read_dir(out.join("_runs")) {
        for e in entries.flatten() {
            v.push(serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap());
        }
    }
    v
}

/// The venv's python (`scripts/pyenv.sh --check`: fails, naming the fix, when the venv
/// is missing; it does not install).
pub fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let out = Command::new(root.join("scripts/pyenv.sh"))
                .arg("--check")
                .output()
                .expect("run scripts/pyenv.sh");
            assert_ok(&out);
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        })
        .clone()
}

/// Two free localhost ports.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// `marketflow backfill --config CONFIG --input <the sample> --output OUT EXTRA...`.
pub fn backfill_sample(config: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["backfill", "--config", config.to_str().unwrap(), "--input"];
    let input = sample();
    args.push(input.to_str().unwrap());
    args.extend(["--output", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    marketflow(&args)
}
