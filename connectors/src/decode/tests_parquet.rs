//! Tests of the Parquet decoder and planner: row groups, statistics, column types,
//! rejects with global row numbers, candles.

use std::path::Path;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, Float32Array, Float64Array, Int32Array, Int64Array,
    Int8Array, LargeStringArray, RecordBatch, StringArray, StringViewArray,
    TimestampMicrosecondArray,
};
use operators::route::stable_hash;
use operators::RejectReason::{InvalidPrice, InvalidQty, ParseError};
use operators::NO_TRADE_ID;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::tests_util::{opts, read_all, read_piece, reasons, write};
use super::{plan_file, seq, FormatHint, Kind, Piece};
use crate::ConnectorError;

const AUTO: FormatHint = FormatHint::Auto;
const T0: i64 = 1_723_161_255_000;

/// Writes `columns` to `path` with row groups of `group_rows` rows.
fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>, group_rows: usize) {
    let batch = RecordBatch::try_from_iter(columns).expect("batch");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let file = std::fs::File::create(path).expect("create");
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

/// Ten trades in three row groups (4, 4, 2); ts decreasing inside each group; row 2
/// has no trade id, row 5 a null price, row 8 a bad qty.
fn ten_trades(path: &Path) {
    let ts: Vec<i64> = (0..10)
        .map(|i: i64| T0 + (i / 4) * 100_000 + (3 - i % 4) * 1000)
        .collect();
    let symbols: Vec<&str> = (0..10)
        .map(|i| if i % 2 == 0 { "BTCUSDT" } else { "ETHUSDT" })
        .collect();
    let prices: Vec<Option<f64>> = (0..10)
        .map(|i| if i == 5 { None } else { Some(100.0 + i as f64) })
        .collect();
    let qty: Vec<String> = (0..10)
        .map(|i| {
            if i == 8 {
                "abc".to_string()
            } else {
                format!("0.{}", i + 1)
            }
        })
        .collect();
    let bm: Vec<bool> = (0..10).map(|i| i % 3 == 0).collect();
    let ids: Vec<Option<i64>> = (0..10)
        .map(|i| if i == 2 { None } else { Some(1000 + i) })
        .collect();
    write_parquet(
        path,
        vec![
            (
                "note",
                Arc::new(StringArray::from(vec!["x"; 10])) as ArrayRef,
            ),
            ("ts_ms", Arc::new(Int64Array::from(ts))),
            ("symbol", Arc::new(StringArray::from(symbols))),
            ("price", Arc::new(Float64Array::from(prices))),
            ("qty", Arc::new(StringArray::from(qty))),
            ("is_buyer_maker", Arc::new(BooleanArray::from(bm))),
            ("trade_id", Arc::new(Int64Array::from(ids))),
            ("exchange", Arc::new(StringArray::from(vec!["binance"; 10]))),
        ],
        4,
    );
}

#[test]
fn decode_parquet_plan_row_groups_and_min_ts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.parquet");
    ten_trades(&path);
    let pieces = plan_file(&path, "t.parquet", &opts(Kind::Trades, AUTO, "", 0)).expect("plan");
    let want: Vec<Piece> = [
        (0, 0, 4, T0),
        (1, 4, 4, T0 + 100_000),
        (2, 8, 2, T0 + 200_000 + 2000),
    ]
    .into_iter()
    .map(|(g, first, rows, min)| Piece {
        row_groups: Some(vec![g]),
        row_range: Some((first, first + rows)),
        rows: Some(rows),
        min_ts: Some(min),
        blocks: vec![(rows, min)],
    })
    .collect();
    assert_eq!(pieces, want);
}

#[test]
fn decode_parquet_trades_whole_file_and_pieces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.parquet");
    ten_trades(&path);
    let o = opts(Kind::Trades, AUTO, "pq:", 4);
    let d = read_piece(&path, &Piece::default(), &o, 3).expect("read");
    assert_eq!(d.rows, 10);
    assert!(d.chunks >= 4, "{} chunks", d.chunks);
    assert_eq!(d.trades.len(), 8);
    assert_eq!(reasons(&d), vec![(InvalidPrice, 5), (InvalidQty, 8)]);
    let r = &d.rejects[0];
    assert_eq!(r.seq, seq(4, 5));
    let raw: serde_json::Value = serde_json::from_str(&r.raw).expect("raw is JSON");
    assert_eq!(raw["price"], serde_json::Value::Null);
    assert_eq!(raw["symbol"], "ETHUSDT");
    assert!(r.detail.contains("price"), "{}", r.detail);
    let (s, t) = &d.trades[0];
    assert_eq!(s, "pq:BTCUSDT");
    assert_eq!(
        (t.ts_ms, t.price, t.qty, t.is_buyer_maker, t.trade_id, t.seq),
        (T0 + 3000, 100.0, 0.1, true, 1000, seq(4, 0))
    );
    assert_eq!(t.exchange, stable_hash(b"binance"));
    assert_eq!(d.trades[2].1.trade_id, NO_TRADE_ID);
    assert!(d.bytes > 0);

    // Pieces read separately keep the global row numbers.
    let second = Piece {
        row_groups: Some(vec![1]),
        ..Piece::default()
    };
    let d = read_piece(&path, &second, &o, 100).expect("read");
    let seqs: Vec<u64> = d.trades.iter().map(|(_, t)| t.seq).collect();
    assert_eq!(seqs, vec![seq(4, 4), seq(4, 6), seq(4, 7)]);
    assert_eq!(reasons(&d), vec![(InvalidPrice, 5)]);
    let last_two = Piece {
        row_groups: Some(vec![0, 2]),
        ..Piece::default()
    };
    let d = read_piece(&path, &last_two, &o, 5).expect("read");
    assert_eq!(d.rows, 6);
    assert_eq!(d.trades.last().map(|(_, t)| t.seq), Some(seq(4, 9)));
    assert_eq!(reasons(&d), vec![(InvalidQty, 8)]);
}

#[test]
fn decode_parquet_dictionary_timestamp_and_narrow_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.parquet");
    let keys = Int32Array::from(vec![0, 1, 0, 1]);
    let dict = DictionaryArray::<Int32Type>::try_new(
        keys,
        Arc::new(StringArray::from(vec!["BTCUSDT", "ETHUSDT"])),
    )
    .expect("dictionary");
    let ts_us = TimestampMicrosecondArray::from(vec![
        1_735_689_600_123_456,
        1_735_689_600_000_999,
        1_735_689_601_000_000,
        1_735_689_602_000_000,
    ]);
    write_parquet(
        &path,
        vec![
            ("TS_MS", Arc::new(ts_us) as ArrayRef),
            ("symbol", Arc::new(dict)),
            (
                "price",
                Arc::new(Float32Array::from(vec![1.5, 2.5, -1.0, 4.0])),
            ),
            (
                "quantity",
                Arc::new(LargeStringArray::from(vec!["1", "2", "3", "4"])),
            ),
            (
                "is_buyer_maker",
                Arc::new(Int8Array::from(vec![1, 0, 1, 7])),
            ),
        ],
        100,
    );
    let o = opts(Kind::Trades, FormatHint::Canonical, "", 0);
    let pieces = plan_file(&path, "d", &o).expect("plan");
    assert_eq!(pieces[0].min_ts, Some(1_735_689_600_000));
    let d = read_all(&path, &o).expect("read");
    let got: Vec<_> = d
        .trades
        .iter()
        .map(|(s, t)| (s.as_str(), t.ts_ms, t.price, t.qty, t.is_buyer_maker))
        .collect();
    assert_eq!(
        got,
        vec![
            ("BTCUSDT", 1_735_689_600_123, 1.5, 1.0, true),
            ("ETHUSDT", 1_735_689_600_000, 2.5, 2.0, false)
        ]
    );
    assert_eq!(reasons(&d), vec![(InvalidPrice, 2), (ParseError, 3)]);

    let path = dir.path().join("v.parquet");
    write_parquet(
        &path,
        vec![
            (
                "ts_ms",
                Arc::new(Int64Array::from(vec![1_735_689_600_123_456i64])) as ArrayRef,
            ),
            ("symbol", Arc::new(StringViewArray::from(vec!["SOLUSDT"]))),
            ("price", Arc::new(StringArray::from(vec!["189.5"]))),
            ("qty", Arc::new(Float64Array::from(vec![3.0]))),
            ("is_buyer_maker", Arc::new(StringArray::from(vec!["False"]))),
        ],
        100,
    );
    let d = read_all(&path, &o).expect("read");
    let (s, t) = &d.trades[0];
    assert_eq!(
        (s.as_str(), t.ts_ms, t.price, t.is_buyer_maker),
        ("SOLUSDT", 1_735_689_600_123, 189.5, false)
    );
    assert_eq!(
        plan_file(&path, "v", &o).expect("plan")[0].min_ts,
        Some(1_735_689_600_123)
    );
}

#[test]
fn decode_parquet_candles_with_and_without_resolution() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ts: Vec<i64> = (0..6).map(|i| T0 + i * 300_000).collect();
    let f = |v: f64| Arc::new(Float64Array::from(vec![v; 6])) as ArrayRef;
    let base = |extra: Vec<(&'static str, ArrayRef)>| {
        let mut cols = vec![
            ("ts_ms", Arc::new(Int64Array::from(ts.clone())) as ArrayRef),
            ("symbol", Arc::new(StringArray::from(vec!["A"; 6]))),
            ("open", f(1.0)),
            ("high", f(2.0)),
            ("low", f(0.5)),
            ("close", f(1.5)),
            ("volume", f(10.0)),
        ];
        cols.extend(extra);
        cols
    };
    let path = dir.path().join("r.parquet");
    let res = StringArray::from(vec![
        Some("5m"),
        None,
        Some("1h"),
        Some("bad"),
        Some("5m"),
        Some("5m"),
    ]);
    let extra = vec![
        ("resolution", Arc::new(res) as ArrayRef),
        ("quote_volume", f(15.0)),
        (
            "trades",
            Arc::new(Int32Array::from(vec![
                Some(3),
                None,
                Some(1),
                Some(1),
                Some(1),
                Some(1),
            ])) as ArrayRef,
        ),
    ];
    write_parquet(&path, base(extra), 4);
    let d = read_all(&path, &opts(Kind::Candles, AUTO, "", 0)).expect("read");
    let got: Vec<_> = d
        .candles
        .iter()
        .map(|(_, c)| (c.resolution_ms, c.quote_volume, c.trades, c.buy_volume))
        .collect();
    assert_eq!(got[0], (300_000, Some(15.0), Some(3), None));
    assert_eq!((got[1].0, got[1].2), (300_000, None));
    assert_eq!(got[2].0, 3_600_000);
    assert_eq!(reasons(&d), vec![(ParseError, 3)]);
    assert_eq!(d.candles.len(), 5);

    let path = dir.path().join("n.parquet");
    write_parquet(&path, base(vec![]), 4);
    let d = read_piece(
        &path,
        &Piece::default(),
        &opts(Kind::Candles, AUTO, "", 0),
        2,
    )
    .expect("read");
    assert_eq!(d.candles.len(), 6);
    assert!(
        d.candles.iter().all(|(_, c)| c.resolution_ms == 300_000),
        "{:?}",
        d.candles
    );
    let err = read_all(&path, &opts(Kind::Trades, AUTO, "", 0)).expect_err("candles as trades");
    assert!(err.to_string().contains("price"), "{err}");
}

#[test]
fn decode_parquet_format_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.parquet");
    ten_trades(&path);
    let err =
        read_all(&path, &opts(Kind::Trades, FormatHint::Binance, "", 0)).expect_err("binance hint");
    assert!(matches!(err, ConnectorError::Format { .. }));
    let bad_group = Piece {
        row_groups: Some(vec![7]),
        ..Piece::default()
    };
    assert!(read_piece(&path, &bad_group, &opts(Kind::Trades, AUTO, "", 0), 10).is_err());
    let csv = write(
        dir.path(),
        "c.csv",
        b"ts_ms,symbol,price,qty,is_buyer_maker\n1,A,1,1,1\n",
    );
    let err = read_piece(
        &csv,
        &Piece {
            row_groups: Some(vec![0]),
            ..Piece::default()
        },
        &opts(Kind::Trades, AUTO, "", 0),
        10,
    )
    .expect_err("row groups of a CSV");
    assert!(matches!(err, ConnectorError::Format { .. }));
}
