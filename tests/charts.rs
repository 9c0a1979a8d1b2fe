//! Charts: `marketflow chart` over a backfilled lake of the bundled sample draws one
//! candle per bar of the range (SVG and PNG), the correlation heatmap has one cell per
//! pair, `[sinks.charts]` writes one chart per symbol and lake partition, and bad
//! requests exit with a clear message.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use common::*;
use connectors::chart::{ChartColor, CANDLE_DOWN, CANDLE_UP, CELL_EDGE, VOLUME_DOWN, VOLUME_UP};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// `#RRGGBB` of a chart colour, as the SVG backend writes it.
fn hex(c: &ChartColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

const SYMBOL: &str = "spot:BTCUSDT";
const FROM: &str = "2024-08-08T23:56:00Z";
const TO: &str = "2024-08-09T00:03:00Z";

fn ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis()
}

/// The sample backfilled once (with `[sinks.charts] enabled = true`, SVG, every
/// resolution) into the test target directory.
fn lake() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("charts");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("charts.toml");
        let text = std::fs::read_to_string(sample_config()).unwrap();
        std::fs::write(&config, format!("{text}\n[sinks.charts]\nenabled = true\n")).unwrap();
        let out = dir.join("lake");
        assert_ok(&backfill_sample(
            &config,
            &out,
            &["--run-id", "charts", "-w", "2"],
        ));
        out
    })
}

/// A fresh directory for one test's images.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("charts-out")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Bars of `symbol` at `resolution` whose windows lie in `[from, to]`, read from the
/// lake's Parquet files.
fn bars_in(symbol: &str, resolution: &str, from: i64, to: i64) -> Vec<BarRow> {
    read_bars(lake())
        .into_iter()
        .filter(|b| b.symbol == symbol && b.resolution == resolution)
        .filter(|b| b.window_start >= from && b.window_end <= to)
        .collect()
}

fn chart(args: &[&str]) -> std::process::Output {
    let mut all = vec!["chart", "--input", lake().to_str().unwrap()];
    all.extend_from_slice(args);
    marketflow(&all)
}

/// Every element named `tag` of an SVG, as attribute maps.
fn elements(svg: &str, tag: &str) -> Vec<BTreeMap<String, String>> {
    let doc = roxmltree::Document::parse(svg).expect("the chart is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.tag_name().name() == tag)
        .map(|n| {
            n.attributes()
                .map(|a| (a.name().to_string(), a.value().to_string()))
                .collect()
        })
        .collect()
}

fn count(svg: &str, tag: &str, attr: &str, value: &str) -> usize {
    elements(svg, tag)
        .iter()
        .filter(|e| e.get(attr).is_some_and(|v| v == value))
        .count()
}

/// (up candles, down candles) of a candle chart: bodies by fill colour.
fn candles(svg: &str) -> (usize, usize) {
    (
        count(svg, "rect", "fill", &hex(&CANDLE_UP)),
        count(svg, "rect", "fill", &hex(&CANDLE_DOWN)),
    )
}

fn up_down(bars: &[BarRow]) -> (usize, usize) {
    let up = bars.iter().filter(|b| b.close >= b.open).count();
    (up, bars.len() - up)
}

#[test]
fn a_candle_chart_has_one_candle_and_one_volume_bar_per_bar_of_the_range() {
    let dir = scratch("candles");
    let file = dir.join("btc.svg");
    let out = chart(&[
        "--symbol",
        SYMBOL,
        "--resolution",
        "1m",
        "--from",
        FROM,
        "--to",
        TO,
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let svg = std::fs::read_to_string(&file).unwrap();
    let bars = bars_in(SYMBOL, "1m", ms(FROM), ms(TO));
    assert_eq!(bars.len(), 7, "23:56..00:03 holds seven 1m bars");
    assert_eq!(candles(&svg), up_down(&bars));
    let volume = (
        count(&svg, "rect", "fill", &hex(&VOLUME_UP)),
        count(&svg, "rect", "fill", &hex(&VOLUME_DOWN)),
    );
    assert_eq!(volume, up_down(&bars));
    // Epoch ms work as well as RFC 3339 and give the same candles.
    let file2 = dir.join("btc-ms.svg");
    let (from, to) = (ms(FROM).to_string(), ms(TO).to_string());
    assert_ok(&chart(&[
        "--symbol",
        SYMBOL,
        "--resolution",
        "1m",
        "--from",
        &from,
        "--to",
        &to,
        "--output",
        file2.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read_to_string(&file2).unwrap(), svg);
}

#[test]
fn the_default_resolution_is_the_finest_and_bands_and_rsi_are_drawn() {
    let dir = scratch("finest");
    let file = dir.join("btc.svg");
    let (from, to) = ("2024-08-08T23:58:00Z", "2024-08-09T00:01:00Z");
    assert_ok(&chart(&[
        "--symbol",
        SYMBOL,
        "--from",
        from,
        "--to",
        to,
        "--output",
        file.to_str().unwrap(),
    ]));
    let svg = std::fs::read_to_string(&file).unwrap();
    let bars = bars_in(SYMBOL, "1s", ms(from), ms(to));
    assert!(bars.len() > 100, "{} 1s bars", bars.len());
    assert_eq!(candles(&svg), up_down(&bars));
    // Bollinger bands (upper, lower: blue; mid: orange) and the RSI line (purple) are
    // polylines of their own colours, each with one point per indicator row.
    let lines = |color: &str| -> Vec<usize> {
        elements(&svg, "polyline")
            .iter()
            .filter(|e| e.get("stroke").is_some_and(|s| s == color))
            .map(|e| e["points"].split_whitespace().count())
            .collect()
    };
    let rsi = lines("#7E57C2");
    assert_eq!(rsi.len(), 1, "one RSI line");
    assert!(rsi[0] > 100, "{} RSI points", rsi[0]);
    // (The legend's sample lines have two points.)
    let bands = lines("#2962FF");
    assert_eq!(bands.iter().filter(|n| **n > 100).count(), 2, "{bands:?}");
    assert!(!lines("#FF9800").is_empty(), "bb_mid");
}

#[test]
fn a_png_chart_is_a_png_of_the_asked_size() {
    let dir = scratch("png");
    let file = dir.join("btc.png");
    assert_ok(&chart(&[
        "--symbol",
        SYMBOL,
        "--resolution",
        "1m",
        "--width",
        "900",
        "--height",
        "600",
        "--output",
        file.to_str().unwrap(),
    ]));
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
    let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (900, 600));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let has = |c: (u8, u8, u8)| {
        pixels[..info.buffer_size()]
            .chunks_exact(3)
            .any(|p| (p[0], p[1], p[2]) == c)
    };
    assert!(has((CANDLE_UP.0, CANDLE_UP.1, CANDLE_UP.2)), "an up candle");
    assert!(has((0, 0, 0)), "black text");
}

/// The correlation pairs of `resolution` in the lake, by window end.
fn correlation_pairs(resolution: &str) -> BTreeMap<i64, BTreeSet<(String, String)>> {
    let mut out: BTreeMap<i64, BTreeSet<(String, String)>> = BTreeMap::new();
    let dir = lake().join(format!("correlation/resolution={resolution}"));
    for file in parquet_files(&dir) {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap()).unwrap();
        for b in reader.build().unwrap() {
            let b = b.unwrap();
            let we = b["window_end"].as_primitive::<TimestampMillisecondType>();
            let (a, c) = (
                b["symbol_a"].as_string::<i32>(),
                b["symbol_b"].as_string::<i32>(),
            );
            for i in 0..b.num_rows() {
                out.entry(we.value(i))
                    .or_default()
                    .insert((a.value(i).to_string(), c.value(i).to_string()));
            }
        }
    }
    out
}

fn heatmap_cells(args: &[&str], name: &str) -> usize {
    let file = scratch(name).join("corr.svg");
    let mut all = vec!["--correlation", "--output", file.to_str().unwrap()];
    all.extend_from_slice(args);
    assert_ok(&chart(&all));
    let svg = std::fs::read_to_string(&file).unwrap();
    count(&svg, "rect", "stroke", &hex(&CELL_EDGE))
}

#[test]
fn the_heatmap_has_one_cell_per_pair() {
    // The last matrix of the finest resolution (1s).
    let pairs = correlation_pairs("1s");
    let (_, last) = pairs.last_key_value().expect("1s correlation rows");
    let symbols: BTreeSet<&String> = last.iter().flat_map(|(a, b)| [a, b]).collect();
    let n = symbols.len();
    assert!(n >= 3, "{n} symbols");
    assert_eq!(last.len(), n * (n - 1) / 2);
    assert_eq!(heatmap_cells(&[], "corr-last"), n * (n - 1) / 2);
    // At a time: the latest window end at or before --to (the sample is too short for
    // a 60-bar window of 1m bars, so 1s again). Epoch ms and a between-bars time.
    let to = ms("2024-08-08T23:59:30Z") + 500;
    let (at, want) = pairs
        .range(..=to)
        .next_back()
        .expect("correlation before --to");
    assert_eq!(*at, to - 500);
    let to = to.to_string();
    let got = heatmap_cells(&["--resolution", "1s", "--to", &to], "corr-at");
    assert_eq!(got, want.len());
    assert!(got >= 3, "{got} cells");
}

#[test]
fn the_chart_sink_writes_one_chart_per_symbol_and_partition() {
    let charts = lake().join("_charts");
    let mut got = BTreeSet::new();
    let mut stack = vec![charts.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(&charts).unwrap().to_path_buf();
                got.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let bars = read_bars(lake());
    let want: BTreeSet<String> = bars
        .iter()
        .map(|b| {
            format!(
                "{}/{}.svg",
                auto_partition(&b.resolution, b.window_end),
                b.symbol.replace(':', "_")
            )
        })
        .collect();
    assert!(want.len() > 6, "{want:?}");
    assert_eq!(got, want);
    // A partition's chart has one candle per bar of its symbol in that partition.
    let name = "resolution=1m/dt=2024-08-08/hour=__HIVE_DEFAULT_PARTITION__/spot_BTCUSDT.svg";
    let svg = std::fs::read_to_string(charts.join(name)).unwrap();
    let mine: Vec<BarRow> = bars
        .into_iter()
        .filter(|b| b.symbol == SYMBOL && b.resolution == "1m")
        .filter(|b| auto_partition("1m", b.window_end).starts_with("resolution=1m/dt=2024-08-08/"))
        .collect();
    assert!(!mine.is_empty());
    assert_eq!(candles(&svg), up_down(&mine));
}

/// Asserts a failed run: exit code 2, `needle` in stderr, no panic.
fn assert_usage(out: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_requests_exit_2_with_a_clear_message() {
    let dir = scratch("bad");
    let svg = dir.join("x.svg");
    let svg = svg.to_str().unwrap();
    let out = chart(&["--symbol", "spot:DOGEUSDT", "--output", svg]);
    assert_usage(&out, "unknown symbol `spot:DOGEUSDT`");
    assert!(String::from_utf8_lossy(&out.stderr).contains("spot:ETHUSDT"));
    let out = chart(&[
        "--symbol",
        SYMBOL,
        "--from",
        "2030-01-01T00:00:00Z",
        "--output",
        svg,
    ]);
    assert_usage(&out, "no spot:BTCUSDT 1s bars in the range");
    let out = chart(&[
        "--symbol", SYMBOL, "--from", TO, "--to", FROM, "--output", svg,
    ]);
    assert_usage(&out, "empty range");
    let out = chart(&["--symbol", SYMBOL, "--resolution", "7m", "--output", svg]);
    assert_usage(&out, "resolution `7m` is not in the lake");
    let out = chart(&["--symbol", SYMBOL, "--to", "soon", "--output", svg]);
    assert_usage(&out, "--to `soon`");
    let gif = dir.join("x.gif");
    let out = chart(&["--symbol", SYMBOL, "--output", gif.to_str().unwrap()]);
    assert_usage(&out, ".svg or .png");
    let out = chart(&["--correlation", "--to", "2020-01-01", "--output", svg]);
    assert_usage(&out, "correlation in the range");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = marketflow(&[
        "chart",
        "--input",
        empty.to_str().unwrap(),
        "--symbol",
        SYMBOL,
        "--output",
        svg,
    ]);
    assert_usage(&out, "no `bars` data");
    assert!(!Path::new(svg).exists(), "no file written on failure");
}

#[test]
fn sinks_charts_config_is_checked_with_its_keys() {
    let dir = scratch("config");
    let config = dir.join("bad.toml");
    let text = std::fs::read_to_string(sample_config()).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}\n[sinks.charts]\nenabled = true\nformat = \"gif\"\nresolutions = [\"5s\"]\n\
             width = 10\ncolour = \"red\"\n"
        ),
    )
    .unwrap();
    let out = backfill_sample(&config, &dir.join("lake"), &[]);
    for key in [
        "sinks.charts.format",
        "sinks.charts.colour: unknown key",
        "sinks.charts.resolutions: `5s` is not one of features.resolutions",
        "sinks.charts.width",
    ] {
        assert_usage(&out, key);
    }
    assert!(!dir.join("lake").exists(), "nothing written");
}
