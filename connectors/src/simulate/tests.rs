//! Tests of the simulator: determinism, rates, ordering, the factor correlation and the
//! file formats read back.

use std::collections::HashMap;
use std::path::Path;

use arrow_array::{Array, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::write::{push_decimal, push_int};
use super::*;

fn config(symbols: usize, minutes: u64, seed: u64) -> SimConfig {
    SimConfig::new(symbols, minutes, seed)
}

fn write(dir: &Path, name: &str, config: &SimConfig) -> (u64, Vec<u8>) {
    let path = dir.join(name);
    let format = SimFormat::from_path(name).expect("known extension");
    let n = write_trades(config, &path, format).expect("write");
    (n, std::fs::read(&path).expect("read back"))
}

#[test]
fn simulate_same_seed_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(5, 20, 7);
    for name in [
        "a.parquet",
        "a.csv",
        "a.csv.gz",
        "a.csv.zst",
        "a.jsonl",
        "a.jsonl.gz",
    ] {
        let (n1, b1) = write(dir.path(), name, &c);
        let (n2, b2) = write(&dir.path().join("again"), name, &c);
        assert!(n1 > 100_000, "{name}: only {n1} trades");
        assert_eq!(n1, n2, "{name}");
        assert!(b1 == b2, "{name}: bytes differ between runs");
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        7,
        "no temporary file is left behind: {names:?}"
    );
}

#[test]
fn simulate_different_seeds_differ() {
    let dir = tempfile::tempdir().unwrap();
    let (_, a) = write(dir.path(), "a.csv", &config(3, 5, 1));
    let (_, b) = write(dir.path(), "b.csv", &config(3, 5, 2));
    assert_ne!(a, b);
    let (_, pa) = write(dir.path(), "a.parquet", &config(3, 5, 1));
    let (_, pb) = write(dir.path(), "b.parquet", &config(3, 5, 2));
    assert_ne!(pa, pb);
}

#[test]
fn simulate_count_matches_rate() {
    for (symbols, minutes) in [(1, 30), (5, 30), (20, 10), (100, 2)] {
        let c = config(symbols, minutes, 11);
        let expected = c.expected_trades();
        let n = simulator(&c).count() as f64;
        // Poisson: the standard deviation is sqrt(expected), under 1 % here.
        assert!(
            (n - expected).abs() < 5.0 * expected.sqrt(),
            "{symbols}x{minutes}: {n} vs {expected}"
        );
    }
    let rates = trade_rates(5);
    assert!((rates.iter().sum::<f64>() - 100.0).abs() < 1e-9);
    assert!(
        rates.windows(2).all(|w| w[0] > w[1]),
        "BTC is the busiest: {rates:?}"
    );
    assert!((trade_rates(100).iter().sum::<f64>() - 100.0 * 20f64.sqrt()).abs() < 1e-9);
    // The README's example: 5 symbols for 1667 minutes is about 10 million trades.
    assert!((config(5, 1667, 0).expected_trades() - 1.0e7).abs() < 1e4);
}

#[test]
fn simulate_order_ids_and_values() {
    let c = config(12, 15, 3);
    let names: Vec<String> = simulator(&c).symbols().map(|s| s.to_string()).collect();
    assert_eq!(names[0], "BTCUSDT");
    assert_eq!(names[9], "DOTUSDT");
    assert_eq!(names[10], "SYM010USDT");
    assert_eq!(names[11], "SYM011USDT");
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut last_id = vec![0i64; names.len()];
    let mut prev = (i64::MIN, 0usize);
    let mut sells = 0usize;
    let mut n = 0usize;
    for (k, (sym, t)) in simulator(&c).enumerate() {
        let i = index[&*sym];
        assert!(
            (t.ts_ms, i) >= prev,
            "event-time order, ties by symbol index"
        );
        prev = (t.ts_ms, i);
        assert!(t.ts_ms >= c.start_ms && t.ts_ms < c.start_ms + 15 * 60_000);
        assert_eq!(t.seq, k as u64);
        assert_eq!(t.exchange, 0);
        assert_eq!(t.trade_id, last_id[i] + 1, "per-symbol ids count from 1");
        last_id[i] = t.trade_id;
        assert!(t.price > 0.0 && t.price.is_finite());
        assert!(t.qty > 0.0 && t.qty.is_finite());
        sells += usize::from(t.is_buyer_maker);
        n += 1;
    }
    assert!(last_id.iter().all(|&id| id > 0), "every symbol trades");
    let share = sells as f64 / n as f64;
    assert!((share - 0.5).abs() < 0.05, "sides about 50/50: {share}");
}

/// Last price of each minute of `symbol`.
fn minute_closes(c: &SimConfig, symbol: &str) -> Vec<f64> {
    let mut closes = vec![f64::NAN; c.minutes as usize];
    for (s, t) in simulator(c) {
        if &*s == symbol {
            closes[((t.ts_ms - c.start_ms) / 60_000) as usize] = t.price;
        }
    }
    closes
}

fn log_returns(closes: &[f64]) -> Vec<f64> {
    closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect()
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma) * (x - ma)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb) * (y - mb)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn simulate_btc_factor_correlates_returns() {
    let c = config(5, 300, 5);
    let btc = log_returns(&minute_closes(&c, "BTCUSDT"));
    let eth = log_returns(&minute_closes(&c, "ETHUSDT"));
    assert!(
        btc.iter().chain(&eth).all(|r| r.is_finite()),
        "every minute has trades"
    );
    let rho = pearson(&btc, &eth);
    assert!(rho > 0.4, "BTC/ETH 1-minute return correlation {rho}");
    let sd = (btc.iter().map(|r| r * r).sum::<f64>() / btc.len() as f64).sqrt();
    let model = SIGMA_BTC_PER_SEC * 60f64.sqrt();
    assert!(
        sd > 0.7 * model && sd < 1.5 * model,
        "BTC 1-minute volatility {sd} vs {model}"
    );
}

#[test]
fn simulate_parquet_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(5, 200, 9); // about 1.2 million trades: two row groups
    let path = dir.path().join("t.parquet");
    let n = write_trades(&c, &path, SimFormat::Parquet).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let groups: Vec<i64> = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    assert_eq!(groups[0], ROW_GROUP_ROWS as i64);
    assert_eq!(groups.iter().sum::<i64>() as u64, n);
    let schema = builder.schema().clone();
    let expected = [
        ("ts_ms", DataType::Int64),
        ("symbol", DataType::Utf8),
        ("price", DataType::Float64),
        ("qty", DataType::Float64),
        ("is_buyer_maker", DataType::Boolean),
        ("trade_id", DataType::Int64),
    ];
    assert_eq!(schema.fields().len(), expected.len());
    for (field, (name, ty)) in schema.fields().iter().zip(expected) {
        assert_eq!((field.name().as_str(), field.data_type()), (name, &ty));
    }
    let mut sim = simulator(&c);
    let mut rows = 0u64;
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        let col = |i: usize| batch.column(i).as_any();
        let ts = col(0).downcast_ref::<Int64Array>().unwrap();
        let sym = col(1).downcast_ref::<StringArray>().unwrap();
        let price = col(2).downcast_ref::<Float64Array>().unwrap();
        let qty = col(3).downcast_ref::<Float64Array>().unwrap();
        let maker = col(4).downcast_ref::<BooleanArray>().unwrap();
        let id = col(5).downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ts.null_count() + sym.null_count() + price.null_count(), 0);
        for r in 0..batch.num_rows() {
            let (s, t) = sim.next().unwrap();
            assert_eq!(
                (
                    ts.value(r),
                    sym.value(r),
                    price.value(r),
                    qty.value(r),
                    maker.value(r),
                    id.value(r)
                ),
                (t.ts_ms, &*s, t.price, t.qty, t.is_buyer_maker, t.trade_id)
            );
        }
        rows += batch.num_rows() as u64;
    }
    assert_eq!(rows, n);
    assert!(sim.next().is_none());
}

#[test]
fn simulate_text_formats_match_the_iterator() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(8, 5, 4);
    let trades: Vec<_> = simulator(&c).collect();
    let (n, csv) = write(dir.path(), "t.csv", &c);
    assert_eq!(n as usize, trades.len());
    let csv = String::from_utf8(csv).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    for ((s, t), line) in trades.iter().zip(lines.by_ref()) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[0].parse::<i64>().unwrap(), t.ts_ms);
        assert_eq!(f[1], &**s);
        assert_eq!(f[2].parse::<f64>().unwrap(), t.price, "{line}");
        assert_eq!(f[3].parse::<f64>().unwrap(), t.qty, "{line}");
        assert_eq!(f[4], if t.is_buyer_maker { "true" } else { "false" });
        assert_eq!(f[5].parse::<i64>().unwrap(), t.trade_id);
    }
    assert_eq!(lines.next(), None);

    let (_, jsonl) = write(dir.path(), "t.ndjson", &c);
    let jsonl = String::from_utf8(jsonl).unwrap();
    assert_eq!(jsonl.lines().count(), trades.len());
    for ((s, t), line) in trades.iter().zip(jsonl.lines()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["ts_ms"].as_i64(), Some(t.ts_ms));
        assert_eq!(v["symbol"].as_str(), Some(&**s));
        assert_eq!(v["price"].as_f64(), Some(t.price));
        assert_eq!(v["qty"].as_f64(), Some(t.qty));
        assert_eq!(v["is_buyer_maker"].as_bool(), Some(t.is_buyer_maker));
        assert_eq!(v["trade_id"].as_i64(), Some(t.trade_id));
    }
}

#[test]
fn simulate_decimal_formatting_is_shortest() {
    let mut buf = Vec::new();
    for (units, decimals, text) in [
        (6_000_001, 2, "60000.01"),
        (6_000_000, 2, "60000.0"),
        (1, 8, "0.00000001"),
        (120, 5, "0.0012"),
        (7, 0, "7.0"),
        (-25, 1, "-2.5"),
    ] {
        buf.clear();
        push_decimal(&mut buf, units, decimals);
        assert_eq!(std::str::from_utf8(&buf).unwrap(), text);
    }
    // Same digits as Rust's shortest round-trip formatting of units / 10^decimals.
    let mut x = 12_345u64;
    for _ in 0..100_000 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let units = ((x >> 20) % 10_000_000_000) as i64 + 1;
        let decimals = ((x >> 8) % 9) as u32;
        buf.clear();
        push_decimal(&mut buf, units, decimals);
        let mut shortest = format!("{}", units as f64 / 10f64.powi(decimals as i32));
        if !shortest.contains('.') {
            shortest.push_str(".0");
        }
        assert_eq!(std::str::from_utf8(&buf).unwrap(), shortest);
    }
    buf.clear();
    push_int(&mut buf, i64::MIN);
    assert_eq!(std::str::from_utf8(&buf).unwrap(), i64::MIN.to_string());
}

#[test]
fn simulate_format_from_path() {
    use SimFormat::*;
    for (p, f) in [
        ("a.parquet", Some(Parquet)),
        ("a.csv", Some(Csv)),
        ("A.CSV.GZ", Some(CsvGz)),
        ("a.csv.zst", Some(CsvZst)),
        ("a.jsonl", Some(Jsonl)),
        ("a.json", Some(Jsonl)),
        ("a.ndjson", Some(Jsonl)),
        ("a.jsonl.gz", Some(JsonlGz)),
        ("a.csv.bz2", None),
        ("parquet", None),
    ] {
        assert_eq!(SimFormat::from_path(p), f, "{p}");
        if let Some(f) = f {
            assert_eq!(
                SimFormat::from_path(&format!("x.{}", f.extension())),
                Some(f)
            );
        }
    }
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Same seed, same bytes, across releases too: this changes only on purpose (and then
/// it is a breaking change of `marketflow simulate`).
#[test]
fn simulate_golden_csv_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (n, csv) = write(dir.path(), "g.csv", &config(5, 10, 1));
    assert_eq!(
        (n, csv.len(), fnv1a(&csv)),
        (59_776, 2_836_942, 0xBD05_FFE1_6CC8_28E3)
    );
}

#[test]
fn simulate_empty_market_writes_valid_files() {
    let dir = tempfile::tempdir().unwrap();
    for c in [config(0, 10, 1), config(3, 0, 1)] {
        assert_eq!(simulator(&c).count(), 0);
        let (n, csv) = write(dir.path(), "e.csv", &c);
        assert_eq!((n, csv), (0, format!("{CSV_HEADER}\n").into_bytes()));
        let path = dir.path().join("e.parquet");
        assert_eq!(write_trades(&c, &path, SimFormat::Parquet).unwrap(), 0);
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 0);
        assert_eq!(reader.schema().fields().len(), 6);
    }
}
