//! Tests of the CSV decoders: canonical and Binance trades and candles, compression,
//! rejects, numbering and the real websocket-trades capture.

use operators::route::stable_hash;
use operators::RejectReason::{InvalidPrice, InvalidQty, ParseError};
use operators::NO_TRADE_ID;

use super::tests_util::{gz, opts, read_all, read_piece, reasons, write, zst};
use super::{plan_file, seq, FormatHint, Kind, Piece};
use crate::ConnectorError;

const AUTO: FormatHint = FormatHint::Auto;

#[test]
fn decode_csv_canonical_trades_any_order_and_extras() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "event_ms,Quantity,price,symbol,is_buyer_maker,TS_MS,trade_id,exchange\n\
                1723161255343,0.02,61837.63,BTCUSDT,True,1723161255342,3735683259,binance\n\
                1723161255612,0.5,2683.8,ETHUSDT,false,1723161255611,,\n";
    let path = write(dir.path(), "trades.csv", text.as_bytes());
    let d = read_all(&path, &opts(Kind::Trades, AUTO, "x:", 2)).expect("read");
    assert!(d.rejects.is_empty(), "{:?}", d.rejects);
    assert_eq!(d.trades.len(), 2);
    let (s, t) = &d.trades[0];
    assert_eq!(s, "x:BTCUSDT");
    assert_eq!(
        (t.ts_ms, t.trade_id, t.price, t.qty, t.is_buyer_maker),
        (1723161255342, 3735683259, 61837.63, 0.02, true)
    );
    assert_eq!(t.exchange, stable_hash(b"binance"));
    assert_eq!(t.seq, seq(2, 0));
    let (s, t) = &d.trades[1];
    assert_eq!(s, "x:ETHUSDT");
    assert_eq!(
        (t.trade_id, t.exchange, t.is_buyer_maker, t.seq),
        (NO_TRADE_ID, 0, false, seq(2, 1))
    );
    assert_eq!(
        plan_file(&path, "trades.csv", &opts(Kind::Trades, AUTO, "", 0)).expect("plan"),
        vec![Piece::default()]
    );
}

#[test]
fn decode_csv_canonical_needs_a_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "t.csv",
        b"1723161255342,BTCUSDT,61837.63,0.02,true\n",
    );
    let err = read_all(&path, &opts(Kind::Trades, AUTO, "", 0)).expect_err("headerless canonical");
    assert!(matches!(err, ConnectorError::Format { .. }), "{err}");
    let path = write(dir.path(), "u.csv", b"ts_ms,symbol,price,qty\n1,A,1,1\n");
    let err = read_all(&path, &opts(Kind::Trades, AUTO, "", 0)).expect_err("missing column");
    assert!(err.to_string().contains("is_buyer_maker"), "{err}");
}

#[test]
fn decode_csv_binance_spot_trades_ms_and_us() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ms = "3735683259,61837.63000000,0.02000000,1236.75260000,1723161255342,True,True\n\
              3735683260,61837.63000000,0.04800000,2968.20624000,1723161255617,False,True\n";
    let path = write(dir.path(), "BTCUSDT-trades-2024-08-08.csv", ms.as_bytes());
    let d = read_all(
        &path,
        &opts(Kind::Trades, FormatHint::Binance, "binance:", 0),
    )
    .expect("read");
    assert!(d.rejects.is_empty());
    let got: Vec<_> = d
        .trades
        .iter()
        .map(|(s, t)| (s.as_str(), t.ts_ms, t.trade_id, t.qty, t.is_buyer_maker))
        .collect();
    assert_eq!(
        got,
        vec![
            ("binance:BTCUSDT", 1723161255342, 3735683259, 0.02, true),
            ("binance:BTCUSDT", 1723161255617, 3735683260, 0.048, false)
        ]
    );
    let us = "4390000000,93500.1,0.001,93.5001,1735689600123456,true,true\n";
    let path = write(dir.path(), "BTCUSDT-trades-2025-01-01.csv", us.as_bytes());
    let d = read_all(&path, &opts(Kind::Trades, AUTO, "", 0)).expect("read");
    assert_eq!(d.trades[0].1.ts_ms, 1735689600123);
    assert_eq!(d.trades[0].0, "BTCUSDT");
}

#[test]
fn decode_csv_binance_agg_trades_with_and_without_best_match() {
    let dir = tempfile::tempdir().expect("tempdir");
    let eight = "26129,0.01633102,4.70443515,27781,27781,1498793709153,true,true\n";
    let path = write(dir.path(), "ETHBTC-aggTrades-2017-07.csv", eight.as_bytes());
    let d = read_all(&path, &opts(Kind::Trades, AUTO, "", 0)).expect("read");
    let (s, t) = &d.trades[0];
    assert_eq!(
        (
            s.as_str(),
            t.trade_id,
            t.ts_ms,
            t.price,
            t.qty,
            t.is_buyer_maker
        ),
        ("ETHBTC", 26129, 1498793709153, 0.01633102, 4.70443515, true)
    );
    let seven = "26129,0.01633102,4.70443515,27781,27781,1498793709153,false\n";
    let path = write(dir.path(), "ETHBTC-aggTrades-2017-08.csv", seven.as_bytes());
    let d = read_all(&path, &opts(Kind::Trades, AUTO, "", 0)).expect("read");
    assert_eq!(
        (d.trades[0].1.ts_ms, d.trades[0].1.is_buyer_maker),
        (1498793709153, false)
    );
}

#[test]
fn decode_csv_binance_futures_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trades = "id,price,qty,quote_qty,time,is_buyer_maker\n5200000000,61800.10,0.005,309.0005,1723161255342,true\n";
    let path = write(
        dir.path(),
        "BTCUSDT-trades-2024-08-08.csv",
        trades.as_bytes(),
    );
    let d = read_all(&path, &opts(Kind::Trades, AUTO, "usdm:", 0)).expect("read");
    let (s, t) = &d.trades[0];
    assert_eq!(
        (s.as_str(), t.trade_id, t.ts_ms, t.qty),
        ("usdm:BTCUSDT", 5200000000, 1723161255342, 0.005)
    );
    assert_eq!(t.seq, seq(0, 0), "the header is not a row");
    let agg =
        "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n\
               2200000000,61800.1,0.010,5200000000,5200000001,1723161255342,false\n";
    let path = write(
        dir.path(),
        "BTCUSDT-aggTrades-2024-08-08.csv",
        agg.as_bytes(),
    );
    let d = read_all(&path, &opts(Kind::Trades, FormatHint::Binance, "", 0)).expect("read");
    let t = d.trades[0].1;
    assert_eq!(
        (t.trade_id, t.qty, t.is_buyer_maker),
        (2200000000, 0.01, false)
    );
}

#[test]
fn decode_csv_binance_without_symbol_in_name_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "trades.csv",
        b"1,1.5,2,3,1723161255342,true,true\n",
    );
    let err = read_all(&path, &opts(Kind::Trades, AUTO, "", 0)).expect_err("no symbol");
    assert!(matches!(err, ConnectorError::Format { .. }));
    assert!(
        err.to_string().contains("BTCUSDT-trades-2024-08-08.csv"),
        "{err}"
    );
}

#[test]
fn decode_csv_format_hint_mismatch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let canon = write(
        dir.path(),
        "c.csv",
        b"ts_ms,symbol,price,qty,is_buyer_maker\n1,A,1,1,true\n",
    );
    let err = read_all(&canon, &opts(Kind::Trades, FormatHint::Binance, "", 0))
        .expect_err("binance only");
    assert!(matches!(err, ConnectorError::Format { .. }));
    let bin = write(
        dir.path(),
        "BTCUSDT-trades-x.csv",
        b"1,1.5,2,3,1723161255342,true,true\n",
    );
    let err = read_all(&bin, &opts(Kind::Trades, FormatHint::Canonical, "", 0))
        .expect_err("canonical only");
    assert!(matches!(err, ConnectorError::Format { .. }));
}

const KLINES: &str = "1723075200000,61837.63,61900.00,61800.00,61850.10,12.5,1723075259999,773000.5,1500,6.25,386500.2,0\n\
                      1723075260000,61850.10,61950.00,61850.00,61900.00,10.0,1723075319999,619000.0,1200,4.0,247600.0,0\n";

#[test]
fn decode_csv_binance_klines_with_and_without_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n";
    for (name, text) in [
        ("BTCUSDT-1m-2024-08-08.csv", KLINES.to_string()),
        ("BTCUSDT-1m-2024-08-09.csv", format!("{header}{KLINES}")),
    ] {
        let path = write(dir.path(), name, text.as_bytes());
        let d = read_all(&path, &opts(Kind::Candles, AUTO, "b:", 1)).expect("read");
        assert!(d.rejects.is_empty(), "{:?}", d.rejects);
        assert_eq!(d.candles.len(), 2);
        let (s, c) = &d.candles[0];
        assert_eq!(s, "b:BTCUSDT");
        assert_eq!(
            (c.ts_ms, c.resolution_ms, c.seq),
            (1723075200000, 60_000, seq(1, 0))
        );
        assert_eq!(
            (c.open, c.high, c.low, c.close, c.volume),
            (61837.63, 61900.0, 61800.0, 61850.1, 12.5)
        );
        assert_eq!(
            (c.quote_volume, c.trades, c.buy_volume),
            (Some(773000.5), Some(1500), Some(6.25))
        );
    }
    let us = "1735689600000000,1,2,0.5,1.5,10,1735693199999999,15,3,5,7.5,0\n";
    let path = write(dir.path(), "ETHUSDT-1h-2025-01-01.csv", us.as_bytes());
    let d = read_all(&path, &opts(Kind::Candles, AUTO, "", 0)).expect("read");
    assert_eq!(
        (d.candles[0].1.ts_ms, d.candles[0].1.resolution_ms),
        (1735689600000, 3_600_000)
    );
    let err = read_all(&path, &opts(Kind::Trades, AUTO, "", 0)).expect_err("klines as trades");
    assert!(err.to_string().contains("candles"), "{err}");
}

#[test]
fn decode_csv_canonical_candles_resolution_column_and_inference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with = "ts_ms,symbol,open,high,low,close,volume,resolution,trades\n\
                1723075200000,A,1,2,0.5,1.5,10,5m,7\n1723075200000,B,1,2,0.5,1.5,0,60000,\n";
    let path = write(dir.path(), "c.csv", with.as_bytes());
    let d = read_all(&path, &opts(Kind::Candles, AUTO, "", 0)).expect("read");
    let res: Vec<_> = d
        .candles
        .iter()
        .map(|(_, c)| (c.resolution_ms, c.trades, c.volume))
        .collect();
    assert_eq!(res, vec![(300_000, Some(7), 10.0), (60_000, None, 0.0)]);
    assert_eq!(d.candles[0].1.quote_volume, None);

    let mut inferred = String::from("ts_ms,symbol,open,high,low,close,volume\n");
    for i in 0..10 {
        inferred.push_str(&format!(
            "{},A,1,1,1,1,1\n{},B,1,1,1,1,1\n",
            i * 900_000,
            i * 300_000
        ));
    }
    let path = write(dir.path(), "d.csv", inferred.as_bytes());
    let d = read_piece(
        &path,
        &Piece::default(),
        &opts(Kind::Candles, AUTO, "", 0),
        4,
    )
    .expect("read");
    assert_eq!(d.candles.len(), 20);
    assert!(
        d.candles.iter().all(|(_, c)| c.resolution_ms == 300_000),
        "{:?}",
        d.candles
    );

    let single = "ts_ms,symbol,open,high,low,close,volume\n1,A,1,1,1,1,1\n2,B,1,1,1,1,1\n";
    let path = write(dir.path(), "e.csv", single.as_bytes());
    let d = read_all(&path, &opts(Kind::Candles, AUTO, "", 0)).expect("read");
    assert!(d.candles.iter().all(|(_, c)| c.resolution_ms == 60_000));
}

#[test]
fn decode_csv_gzip_and_zstd_by_magic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text =
        "ts_ms,symbol,price,qty,is_buyer_maker\n1723161255342,A,1.5,2,1\n1723161255343,A,1.6,3,0\n";
    for (name, bytes) in [
        ("a.csv", gz(text.as_bytes())),
        ("b.txt", zst(text.as_bytes())),
        ("c.csv.gz", text.as_bytes().to_vec()),
    ] {
        let path = write(dir.path(), name, &bytes);
        let d = read_all(&path, &opts(Kind::Trades, AUTO, "", 0)).expect("read");
        assert_eq!(d.trades.len(), 2, "{name}");
        assert_eq!(d.trades[1].1.price, 1.6);
        assert_eq!(d.bytes, bytes.len() as u64, "{name}: bytes_read");
    }
    let klines = write(
        dir.path(),
        "BTCUSDT-1m-2024-08-08.csv.gz",
        &gz(KLINES.as_bytes()),
    );
    assert_eq!(
        read_all(&klines, &opts(Kind::Candles, AUTO, "", 0))
            .expect("read")
            .candles
            .len(),
        2
    );
}

#[test]
fn decode_csv_rejects_and_numbering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "ts_ms,symbol,price,qty,is_buyer_maker,trade_id\r\n\
                1000,A,10,1,true,1\r\n\
                \r\n\
                1001,A,0,1,true,2\n\
                1002,A,10,-1,true,3\n\
                abc,A,10,1,true,4\n\
                1003,A,10,1,maybe,5\n\
                1004,A,10,1,true\n\
                1005,A,NaN,1,true,7\n\
                1006,A,10,,true,8\n\
                1007,A,,1,true,9\n\
                1008,A,x,0,true,10\n\
                1009,A,10,inf,true,11\n\
                1010,,10,1,true,12\n\
                1011,A,10,1,true,z\n\
                1012,B,11,2,false,14\n\
                \n";
    let path = write(dir.path(), "r.csv", text.as_bytes());
    let d = read_all(&path, &opts(Kind::Trades, AUTO, "", 3)).expect("read");
    let ids: Vec<i64> = d.trades.iter().map(|(_, t)| t.trade_id).collect();
    assert_eq!(ids, vec![1, 14]);
    assert_eq!(d.trades[1].1.seq, seq(3, 13));
    assert_eq!(
        reasons(&d),
        vec![
            (InvalidPrice, 4),
            (InvalidQty, 5),
            (ParseError, 6),
            (ParseError, 7),
            (ParseError, 8),
            (InvalidPrice, 9),
            (InvalidQty, 10),
            (InvalidPrice, 11),
            (InvalidPrice, 12),
            (InvalidQty, 13),
            (ParseError, 14),
            (ParseError, 15),
        ]
    );
    let r = &d.rejects[0];
    assert_eq!(
        (r.seq, r.raw.as_str(), r.source.as_str()),
        (
            seq(3, 1),
            "1001,A,0,1,true,2",
            format!("file://{}", path.display()).as_str()
        )
    );
    assert!(r.detail.contains("price"), "{}", r.detail);
    assert!(d.rejects[1].detail.contains("qty"));
    assert!(d.rejects[2].detail.contains("ts_ms"));
    assert!(d.rejects[3].detail.contains("is_buyer_maker"));
    assert!(d.rejects[4].detail.contains("fields"));
    assert_eq!(d.rows, 14);
}

#[test]
fn decode_csv_rfc4180_quoted_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "\"ts_ms\",\"symbol\",price,qty,is_buyer_maker,trade_id,exchange\n\
                1000,\"BTC,USDT\",10,1,true,1,\"x \"\"y\"\"\"\n\
                1001,\"ETH\"\"USDT\",\"10.5\",\"2\",\"false\",\"2\",\n\
                1002,\"BTC,USDT,10,1,true,3,\n";
    let path = write(dir.path(), "q.csv", text.as_bytes());
    let d = read_all(&path, &opts(Kind::Trades, AUTO, "p:", 0)).expect("read");
    let got: Vec<_> = d
        .trades
        .iter()
        .map(|(s, t)| (s.as_str(), t.price, t.qty, t.is_buyer_maker, t.trade_id))
        .collect();
    assert_eq!(
        got,
        vec![
            ("p:BTC,USDT", 10.0, 1.0, true, 1),
            ("p:ETH\"USDT", 10.5, 2.0, false, 2)
        ]
    );
    assert_eq!(d.trades[0].1.exchange, stable_hash(b"x \"y\""));
    assert_eq!(reasons(&d), vec![(ParseError, 4)]);
    assert!(
        d.rejects[0].detail.contains("not closed"),
        "{}",
        d.rejects[0].detail
    );
}

#[test]
fn decode_csv_chunks_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::new();
    for i in 0..1000 {
        text.push_str(&format!(
            "{i},{}.5,1,0.5,{},true,true\n",
            100 + i,
            1723161255342i64 + i
        ));
    }
    let path = write(
        dir.path(),
        "BTCUSDT-trades-2024-08-08.csv.zst",
        &zst(text.as_bytes()),
    );
    let d = read_piece(
        &path,
        &Piece::default(),
        &opts(Kind::Trades, AUTO, "", 0),
        7,
    )
    .expect("read");
    assert_eq!(d.trades.len(), 1000);
    assert_eq!(d.chunks, 143);
    assert!(d
        .trades
        .iter()
        .enumerate()
        .all(|(i, (_, t))| t.trade_id == i as i64 && t.seq == i as u64));
    let empty = write(dir.path(), "empty.csv", b"\n\n");
    let d = read_all(&empty, &opts(Kind::Trades, AUTO, "", 0)).expect("read");
    assert_eq!((d.rows, d.chunks), (0, 0));
}

#[test]
fn decode_csv_real_binance_ws_trades_capture() {
    let path = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/binance_ws_trades_2024-08-08.csv.gz"
    ));
    let d = read_piece(
        path,
        &Piece::default(),
        &opts(Kind::Trades, FormatHint::Canonical, "", 0),
        8192,
    )
    .expect("read");
    assert!(
        d.rejects.is_empty(),
        "{:?}",
        &d.rejects[..d.rejects.len().min(3)]
    );
    assert_eq!(d.trades.len(), 73_826);
    let mut counts = std::collections::BTreeMap::new();
    for (s, _) in &d.trades {
        *counts.entry(s.as_str()).or_insert(0usize) += 1;
    }
    let want = [
        ("cm:BTCUSD_PERP", 2_286),
        ("cm:ETHUSD_PERP", 1_732),
        ("spot:BTCUSDT", 19_904),
        ("spot:ETHUSDT", 14_515),
        ("usdm:BTCUSDT", 21_313),
        ("usdm:ETHUSDT", 14_076),
    ];
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), want.to_vec());
    let (s, t) = &d.trades[0];
    assert_eq!(
        (
            s.as_str(),
            t.ts_ms,
            t.price,
            t.qty,
            t.is_buyer_maker,
            t.trade_id
        ),
        (
            "spot:BTCUSDT",
            1723161255342,
            61837.63,
            0.02,
            true,
            3735683259
        )
    );
    assert_eq!(d.bytes, std::fs::metadata(path).expect("stat").len());
}
