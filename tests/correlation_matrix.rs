//! The `matrix` layout of the correlation set (`features.correlation_layout`): on the
//! bundled sample, every matrix holds exactly the values of the `pairs` layout's rows
//! (bit for bit), and the matrix files are the same bytes on 1 and 3 workers.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::Array;
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

type Pairs = BTreeMap<(String, i64, String, String), (Option<u64>, i64)>;

fn run(dir: &Path, layout: &str, workers: &str) -> std::path::PathBuf {
    let config = dir.join(format!("{layout}.toml"));
    let base = std::fs::read_to_string(sample_config()).unwrap();
    let with_layout = base.replacen(
        "[features]",
        &format!("[features]\ncorrelation_layout = \"{layout}\""),
        1,
    );
    assert_ne!(
        base, with_layout,
        "config/sample.toml has a [features] section"
    );
    std::fs::write(&config, with_layout).unwrap();
    let out = dir.join(format!("{layout}-w{workers}"));
    assert_ok(&backfill_sample(
        &config,
        &out,
        &["--run-id", "m", "-w", workers],
    ));
    out
}

fn read(out: &Path, matrix: bool) -> Pairs {
    let mut pairs = Pairs::new();
    for file in parquet_files(&out.join("correlation")) {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap()).unwrap();
        for b in reader.build().unwrap() {
            let b = b.unwrap();
            let res = b["resolution"].as_string::<i32>();
            let we = b["window_end"].as_primitive::<TimestampMillisecondType>();
            let n = b["n"].as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                let key = |a: &str, c: &str| {
                    (
                        res.value(i).to_string(),
                        we.value(i),
                        a.to_string(),
                        c.to_string(),
                    )
                };
                if matrix {
                    let symbols = b["symbols"].as_list::<i32>().value(i);
                    let symbols = symbols.as_string::<i32>();
                    let corr = b["corr"].as_list::<i32>().value(i);
                    let corr = corr.as_primitive::<Float64Type>();
                    let k = symbols.len();
                    assert_eq!(corr.len(), k * (k - 1) / 2);
                    let mut at = 0;
                    for x in 0..k {
                        for y in x + 1..k {
                            assert!(symbols.value(x) < symbols.value(y), "symbols in byte order");
                            let v = corr.is_valid(at).then(|| corr.value(at).to_bits());
                            pairs.insert(key(symbols.value(x), symbols.value(y)), (v, n.value(i)));
                            at += 1;
                        }
                    }
                } else {
                    let a = b["symbol_a"].as_string::<i32>();
                    let c = b["symbol_b"].as_string::<i32>();
                    let corr = b["corr"].as_primitive::<Float64Type>();
                    let v = corr.is_valid(i).then(|| corr.value(i).to_bits());
                    pairs.insert(key(a.value(i), c.value(i)), (v, n.value(i)));
                }
            }
        }
    }
    pairs
}

#[test]
fn the_matrix_layout_holds_exactly_the_pairs_values_on_any_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = read(&run(dir.path(), "pairs", "2"), false);
    assert!(pairs.len() > 1000, "{} pairs", pairs.len());
    let one = run(dir.path(), "matrix", "1");
    let three = run(dir.path(), "matrix", "3");
    assert_eq!(read(&one, true), pairs);
    let sums = |out: &Path| manifests(out)[0]["feature_sets"]["correlation"].clone();
    assert_eq!(sums(&one), sums(&three), "same bytes on 1 and 3 workers");
    assert!(sums(&one)["rows"].as_u64().unwrap() > 0);
}
