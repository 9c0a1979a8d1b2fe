//! Tests of Parquet row-range pieces: a large file is split into pieces that cover
//! every row exactly once, each with event-time bounds no later than its rows.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::parquet_plan::{split_group, PIECE_ROWS};
use super::tests_util::{opts, read_piece};
use super::{plan_file, unseq, FormatHint, Kind};

const T0: i64 = 1_723_161_255_000;

/// Trades at `ts` of `symbols`, with a constant price and size and ids 0, 1, ....
fn trades(ts: &[i64], symbols: Vec<&str>) -> RecordBatch {
    let n = ts.len();
    RecordBatch::try_from_iter(vec![
        ("ts_ms", Arc::new(Int64Array::from(ts.to_vec())) as ArrayRef),
        ("symbol", Arc::new(StringArray::from(symbols))),
        ("price", Arc::new(Float64Array::from(vec![1.5; n]))),
        ("qty", Arc::new(Float64Array::from(vec![2.0; n]))),
        (
            "is_buyer_maker",
            Arc::new(BooleanArray::from(vec![true; n])),
        ),
        (
            "trade_id",
            Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
        ),
    ])
    .expect("batch")
}

#[test]
fn decode_parquet_pieces_cover_every_row_once_with_sound_bounds() {
    let n: i64 = 600_000;
    // Out of order inside a small jitter, with a slow upward trend.
    let ts: Vec<i64> = (0..n).map(|i| T0 + i * 10 + (i * 7919) % 5000).collect();
    let symbols: Vec<&str> = (0..n).map(|i| ["A", "B", "C"][(i % 3) as usize]).collect();
    let batch = trades(&ts, symbols);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.parquet");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(500_000))
        .set_data_page_row_count_limit(10_000)
        .set_write_batch_size(1000)
        .build();
    let file = std::fs::File::create(&path).expect("create");
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");

    let o = opts(Kind::Trades, FormatHint::Auto, "", 2);
    let pieces = plan_file(&path, "big.parquet", &o).expect("plan");
    assert_eq!(pieces.len(), 3, "{pieces:?}");
    let mut next = 0u64;
    let mut rows = Vec::new();
    for p in &pieces {
        let (a, b) = p.row_range.expect("row range");
        assert_eq!(a, next, "pieces are contiguous");
        assert!(b - a <= PIECE_ROWS && p.rows == Some(b - a));
        next = b;
        assert!(p.blocks.len() > 1, "page-level bounds: {:?}", p.blocks);
        assert_eq!(p.blocks.last().map(|k| k.0), Some(b - a));
        let d = read_piece(&path, p, &o, 65_536).expect("read");
        assert_eq!(d.rows, b - a);
        let min = d.trades.iter().map(|(_, t)| t.ts_ms).min().expect("rows");
        assert!(p.min_ts.expect("bound") <= min);
        for (_, t) in &d.trades {
            let (file, row) = unseq(t.seq);
            assert_eq!((file, t.ts_ms), (2, ts[row as usize]));
            let bound = p.bound_after(row - a).expect("bound");
            assert!(bound <= t.ts_ms, "row {row}: bound {bound} > {}", t.ts_ms);
            rows.push(row);
        }
    }
    assert_eq!(next, n as u64);
    rows.sort_unstable();
    assert_eq!(
        rows,
        (0..n as u64).collect::<Vec<_>>(),
        "every row exactly once"
    );
}

#[test]
fn decode_parquet_split_group_bounds() {
    // 600k rows, pages every 100k; page 2 has no statistics and takes the group's.
    let pages: Vec<(u64, Option<i64>)> = (0..6u64)
        .map(|k| (k * 100_000, (k != 2).then_some(100 + k as i64)))
        .collect();
    let pieces = split_group(4, 1000, 600_000, Some(7), &pages);
    assert_eq!(pieces.len(), 3);
    let ranges: Vec<_> = pieces.iter().map(|p| p.row_range.unwrap()).collect();
    assert_eq!(
        ranges,
        vec![(1000, 201_000), (201_000, 401_000), (401_000, 601_000)]
    );
    assert_eq!(pieces[0].blocks, vec![(100_000, 100), (200_000, 101)]);
    assert_eq!(pieces[1].blocks, vec![(100_000, 7), (200_000, 103)]);
    assert_eq!(pieces[2].blocks, vec![(100_000, 104), (200_000, 105)]);
    assert_eq!(pieces[1].min_ts, Some(7));
    assert!(pieces.iter().all(|p| p.row_groups == Some(vec![4])));
    // Without any statistics there is no bound (the source scans the piece).
    let none = split_group(0, 0, 10, None, &[(0, None)]);
    assert_eq!(
        (none.len(), none[0].min_ts, none[0].blocks.len()),
        (1, None, 0)
    );
}

/// A file without a page index (pyarrow's default) gives one bound per piece; reading
/// the piece's `ts_ms` column gives a bound per block of rows, each no later than any
/// row from its block on, and later blocks later bounds on time-sorted rows.
#[test]
fn decode_a_piece_without_page_index_gets_block_bounds_from_its_ts_column() {
    use parquet::file::properties::EnabledStatistics;
    let n: i64 = 300_000;
    let ts: Vec<i64> = (0..n).map(|i| T0 + i * 10 + (i * 7919) % 5000).collect();
    let batch = trades(&ts, vec!["A"; n as usize]);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flat.parquet");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(100_000))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .build();
    let file = std::fs::File::create(&path).expect("create");
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");

    let o = opts(Kind::Trades, FormatHint::Auto, "", 0);
    let pieces = plan_file(&path, "flat.parquet", &o).expect("plan");
    assert_eq!(pieces.len(), 3);
    for p in &pieces {
        assert!(p.blocks.len() <= 1, "no page index: {:?}", p.blocks);
        let (a, b) = p.row_range.expect("row range");
        let fine = super::scan_piece(&path, "flat.parquet", &o, p)
            .expect("scan")
            .expect("a row range of one group");
        assert_eq!(
            fine.blocks.len(),
            (b - a).div_ceil(super::SCAN_BLOCK as u64) as usize
        );
        assert_eq!(fine.blocks.last().map(|k| k.0), Some(b - a));
        assert!(
            fine.blocks.windows(2).all(|w| w[0].1 < w[1].1),
            "time-sorted: rising"
        );
        for row in a..b {
            let bound = fine.bound_after(row - a).expect("bound");
            assert!(bound <= ts[row as usize], "row {row}: bound {bound}");
        }
        // The first block's bound is the piece's least time.
        assert_eq!(
            fine.blocks[0].1,
            ts[a as usize..b as usize].iter().copied().min().unwrap()
        );
    }
}
