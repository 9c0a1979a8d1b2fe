//! Tests of the Parquet sink on 1 and 3 workers: the bytes of a file do not depend on
//! the worker count or the batching, files are in (window_end, symbol) order with the
//! latest revision of a row, and a rerun replaces exactly what it covers.

use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMillisecondType};
use operators::Bar;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use timely::dataflow::operators::vec::input::Handle as InputHandle;
use timely::dataflow::operators::{Input, Inspect, Probe};

use crate::parquet::{LakeMode, LakeSpec, ParquetSink, PartitionWritten, Partitioning, ROW_GROUP};
use crate::store::Location;
use crate::sync::ErrorSlot;

const DAY: i64 = 86_400_000;
/// 2024-08-01 00:00 UTC.
const AUG: i64 = 1_722_470_400_000;

fn bar(symbol: &str, resolution_ms: i64, end: i64, close: f64, revision: u32) -> Bar {
    Bar {
        symbol: symbol.into(),
        resolution_ms,
        window_start: end - resolution_ms,
        window_end: end,
        open: 1.0,
        high: close.max(1.0),
        low: 0.5,
        close,
        volume: 3.0,
        quote_volume: Some(4.5),
        vwap: Some(1.5),
        trades: Some(2),
        buy_volume: Some(1.0),
        sell_volume: Some(2.0),
        revision,
    }
}

/// Runs a sink over `bars` on `workers` threads, each sending its share (every
/// `workers`-th row) in window-end order, at the time of the row's window start, in
/// batches of `batch` rows. Returns the files written, sorted by path.
fn run(spec: LakeSpec, bars: Vec<Bar>, workers: usize, batch: usize) -> Vec<PartitionWritten> {
    let written = Arc::new(Mutex::new(Vec::new()));
    let bars = Arc::new(bars);
    let out = written.clone();
    timely::execute(timely::Config::process(workers), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let errors = ErrorSlot::default();
        let mut input = InputHandle::<i64, Bar>::new();
        let (spec, out, e) = (spec.clone(), out.clone(), errors.clone());
        let probe = worker.dataflow::<i64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .parquet_sink(spec, e)
                .inspect(move |w| out.lock().unwrap().push(w.clone()))
                .probe()
                .0
        });
        let mine: Vec<&Bar> = bars.iter().skip(index).step_by(peers).collect();
        for chunk in mine.chunks(batch) {
            let t = chunk.iter().map(|b| b.window_start).min().unwrap();
            if t > *input.time() {
                input.advance_to(t);
            }
            for b in chunk {
                input.send((*b).clone());
            }
            worker.step();
        }
        input.close();
        while !probe.done() {
            worker.step();
        }
        assert_eq!(errors.get(), None);
    })
    .unwrap();
    let mut files = written.lock().unwrap().clone();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

fn lake(dir: &std::path::Path, partitioning: Partitioning, mode: LakeMode) -> LakeSpec {
    LakeSpec {
        output: Location::Local(dir.to_path_buf()),
        partitioning,
        lateness_ms: 0,
        mode,
        delay: Default::default(),
    }
}

/// (window_end, symbol, close) of every row of a file, in file order, and its row
/// group sizes.
fn read(path: &std::path::Path) -> (Vec<(i64, String, f64)>, Vec<i64>) {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    let groups = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    let mut rows = Vec::new();
    for b in builder.build().unwrap() {
        let b = b.unwrap();
        let we = b["window_end"].as_primitive::<TimestampMillisecondType>();
        let sym = b["symbol"].as_string::<i32>();
        let close = b["close"].as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            rows.push((we.value(i), sym.value(i).to_string(), close.value(i)));
        }
    }
    (rows, groups)
}

#[test]
fn files_are_the_same_bytes_on_any_worker_count_and_batching() {
    // 40 symbols of 1s bars over 75 minutes (a full hour of 144,000 rows: three row
    // groups) and of 1m bars over two days, with some bars restated.
    let symbols: Vec<String> = (0..40).map(|i| format!("S{i:02}")).collect();
    let mut bars = Vec::new();
    for t in (1..=4_500).map(|k| AUG + k * 1_000) {
        for (i, s) in symbols.iter().enumerate() {
            bars.push(bar(s, 1_000, t, (t / 1_000 % 97 + i as i64) as f64, 0));
        }
    }
    for t in (1..=2_880).map(|k| AUG + k * 60_000) {
        for s in &symbols[..3] {
            bars.push(bar(s, 60_000, t, 5.0, 0));
            if t % 7 == 0 {
                bars.push(bar(s, 60_000, t, 6.0, 1));
            }
        }
    }
    bars.sort_by_key(|b| b.window_end);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let spec = |i: usize| lake(dirs[i].path(), Partitioning::Auto, LakeMode::Backfill);
    let one = run(spec(0), bars.clone(), 1, 100_000);
    let three = run(spec(1), bars.clone(), 3, 7);
    let sums = |w: &[PartitionWritten]| -> Vec<(String, String, u64)> {
        w.iter()
            .map(|p| (p.path.clone(), p.sha256.clone(), p.rows))
            .collect()
    };
    assert_eq!(sums(&one), sums(&three));
    // Hours 00 and 01 of the 1s bars; days 01, 02 and 03 (the last window end) of 1m.
    assert_eq!(one.len(), 5, "{:?}", sums(&one));
    assert_eq!(
        one[3].path,
        "bars/resolution=1s/dt=2024-08-01/hour=00/part-00000.parquet"
    );
    let (rows, groups) = read(&dirs[0].path().join(&one[3].path));
    assert_eq!(
        groups,
        [
            ROW_GROUP as i64,
            ROW_GROUP as i64,
            143_960 - 2 * ROW_GROUP as i64
        ]
    );
    let mut sorted = rows.clone();
    sorted.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    assert_eq!(rows, sorted, "in (window_end, symbol) order");
    let day = &one[0];
    assert_eq!(
        day.path,
        "bars/resolution=1m/dt=2024-08-01/hour=__HIVE_DEFAULT_PARTITION__/part-20240801T000100-20240801T235900.parquet"
    );
    let (rows, _) = read(&dirs[0].path().join(&day.path));
    assert_eq!(rows.len(), 3 * 1_439, "one row per bar, revisions replaced");
    for (t, _, close) in rows {
        assert_eq!(close, if t % 7 == 0 { 6.0 } else { 5.0 });
    }
}

#[test]
fn a_rerun_replaces_what_it_covers_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let spec = lake(dir.path(), Partitioning::Month, LakeMode::Backfill);
    let days = |from: i64, to: i64, close: f64| -> Vec<Bar> {
        (from * 24..to * 24)
            .flat_map(|h| {
                ["A", "B"].map(|s| bar(s, 3_600_000, AUG + (h + 1) * 3_600_000, close, 0))
            })
            .collect()
    };
    let rows_by_close = || {
        let mut all = Vec::new();
        for f in Location::Local(dir.path().to_path_buf())
            .list_files("bars")
            .unwrap()
        {
            all.extend(read(&dir.path().join(f)).0);
        }
        all.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        all
    };
    // Days 1 to 10 of August (window ends 01:00 on the 1st to 00:00 on the 11th: the
    // last one opens the 11th).
    let first = run(spec.clone(), days(0, 10, 1.0), 1, 50);
    assert_eq!(first.len(), 1);
    let whole = "part-20240801T010000-20240811T000000.parquet";
    assert!(first[0].path.ends_with(whole), "{}", first[0].path);
    // A rerun of days 5 and 6 replaces them and keeps the rest.
    let second = run(spec.clone(), days(4, 6, 2.0), 2, 5);
    let rerun = "part-20240805T010000-20240807T000000.parquet";
    assert!(second[0].path.ends_with(rerun));
    let files = Location::Local(dir.path().to_path_buf())
        .list_files("bars")
        .unwrap();
    let names: Vec<&str> = files
        .iter()
        .map(|f| f.rsplit('/').next().unwrap())
        .collect();
    // The first file keeps its rows outside the rerun, under its own name.
    assert_eq!(names, [whole, rerun]);
    let rows = rows_by_close();
    assert_eq!(rows.len(), 2 * 240);
    for (t, _, close) in &rows {
        let in_rerun = (AUG + 4 * DAY < *t) && (*t <= AUG + 6 * DAY);
        assert_eq!(*close, if in_rerun { 2.0 } else { 1.0 }, "at {t}");
    }
    // A rerun of everything replaces every earlier file.
    run(spec, days(0, 10, 3.0), 3, 11);
    let rows = rows_by_close();
    assert_eq!(rows.len(), 2 * 240);
    assert!(rows.iter().all(|r| r.2 == 3.0));
    assert_eq!(
        Location::Local(dir.path().to_path_buf())
            .list_files("bars")
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_live_job_fills_a_coarse_partition_hour_by_hour() {
    let dir = tempfile::tempdir().unwrap();
    let spec = lake(dir.path(), Partitioning::Auto, LakeMode::Live);
    let bars: Vec<Bar> = (1..=150)
        .map(|k| bar("A", 60_000, AUG + k * 60_000, 1.0, 0))
        .collect();
    let files = run(spec, bars, 2, 10);
    let names: Vec<&str> = files
        .iter()
        .map(|f| f.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "part-20240801T000100-20240801T005900.parquet",
            "part-20240801T010000-20240801T015900.parquet",
            "part-20240801T020000-20240801T023000.parquet"
        ]
    );
    assert_eq!(
        files.iter().map(|f| f.rows).collect::<Vec<_>>(),
        [59, 60, 31]
    );
    assert!(files.iter().all(|f| f
        .path
        .contains("/dt=2024-08-01/hour=__HIVE_DEFAULT_PARTITION__/")));
}

/// Wide rows (a 200-symbol correlation matrix) go out in row groups of about 4 MB of
/// values, so the writer never holds thousands of them; every row reads back.
#[test]
fn a_wide_matrix_is_written_in_small_row_groups() {
    use crate::parquet::file::{FileKey, OpenFile};
    use crate::parquet::{FeatureRow, Span};
    use operators::comoments::CorrMatrix;
    let dir = tempfile::tempdir().unwrap();
    let output = Location::Local(dir.path().to_path_buf());
    let symbols: Vec<operators::Symbol> = (0..200).map(|i| format!("S{i:03}").into()).collect();
    let pairs = 200 * 199 / 2;
    let key = FileKey {
        resolution_ms: 1_000,
        span: Span::Hour,
        partition: AUG,
        start: AUG,
        end: AUG + 3_600_000,
    };
    let mut file = OpenFile::<CorrMatrix>::new(key);
    let rows: Vec<CorrMatrix> = (1..=100)
        .map(|k| CorrMatrix {
            resolution_ms: 1_000,
            window_end: AUG + k * 1_000,
            symbols: symbols.clone(),
            corr: (0..pairs).map(|p| Some((p % 97) as f64 / 97.0)).collect(),
            n: 60,
            revision: 0,
        })
        .collect();
    let group = rows[0].row_group_rows();
    assert_eq!(group, 26);
    for r in rows {
        file.push(r);
    }
    // Rows up to 60 s are final: two full row groups are written, the rest wait.
    file.advance(AUG + 61_000, &output).unwrap();
    assert_eq!(file.held_rows(), 100 - 2 * group);
    let written = file.commit(&output).unwrap().unwrap();
    assert_eq!(written.rows, 100);
    let path = dir.path().join(&written.path);
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    let meta = reader.metadata().clone();
    let sizes: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(sizes, [26, 26, 26, 22]);
    let n: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(n, 100);
}
