//! Tests of the JSON decoders: Binance websocket payloads from real captures,
//! canonical objects, rejects, and JSON-lines files.

use std::io::{BufRead, BufReader};

use operators::route::stable_hash;
use operators::RejectReason::{InvalidPrice, InvalidQty, ParseError};
use operators::{Candle, Trade, NO_TRADE_ID};

use super::tests_util::{gz, opts, read_all, reasons, write};
use super::{decode_json, seq, FormatHint, Kind, Record};
use crate::ConnectorError;

const CRYPTOFEED: &str = "/work/shared/data/cryptofeed_sample_messages.jsonl";
const HFTBACKTEST: &str = "/work/shared/data/hftbacktest_spot_btcusdt_20240808.gz";

/// The `msg` of each cryptofeed sample, with its description.
fn cryptofeed() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(CRYPTOFEED).expect("cryptofeed sample");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("sample line");
            (
                v["desc"].as_str().unwrap_or_default().to_string(),
                v["msg"].to_string(),
            )
        })
        .collect()
}

fn one_trade(bytes: &[u8], prefix: &str) -> (String, Trade) {
    let mut recs = decode_json(bytes, Kind::Trades, prefix).expect("decodes");
    assert_eq!(recs.len(), 1);
    match recs.pop() {
        Some((s, Record::Trade(t))) => (s, t),
        other => panic!("not a trade: {other:?}"),
    }
}

fn one_candle(bytes: &[u8]) -> (String, Candle) {
    let mut recs = decode_json(bytes, Kind::Candles, "").expect("decodes");
    assert_eq!(recs.len(), 1);
    match recs.pop() {
        Some((s, Record::Candle(c))) => (s, c),
        other => panic!("not a candle: {other:?}"),
    }
}

#[test]
fn decode_json_cryptofeed_binance_payloads() {
    let msgs = cryptofeed();
    let (s, t) = one_trade(msgs[0].1.as_bytes(), "binance:");
    assert_eq!(s, "binance:NKNUSDT");
    assert_eq!(
        (t.ts_ms, t.trade_id, t.price, t.qty, t.is_buyer_maker, t.seq),
        (1633998523963, 15683430, 0.3528, 58.0, false, 0)
    );
    // USD-M aggTrade: event time E differs from trade time T; T wins.
    let usdm = msgs
        .iter()
        .find(|(d, _)| d.contains("usdm"))
        .expect("usdm sample");
    let (s, t) = one_trade(usdm.1.as_bytes(), "");
    assert_eq!(
        (s.as_str(), t.ts_ms, t.trade_id, t.price, t.qty),
        ("CTKUSDT", 1626992741421, 16599292, 1.011, 10.0)
    );
    // The bare payload (no envelope) decodes the same.
    let v: serde_json::Value = serde_json::from_str(&usdm.1).expect("json");
    assert_eq!(one_trade(v["data"].to_string().as_bytes(), "").1, t);
    // Open klines yield nothing; a closed one yields the candle.
    let kline = msgs
        .iter()
        .find(|(d, _)| d.contains("kline"))
        .expect("kline sample");
    assert_eq!(
        decode_json(kline.1.as_bytes(), Kind::Candles, ""),
        Ok(vec![])
    );
    let closed = kline.1.replace("\"x\":false", "\"x\":true");
    let (s, c) = one_candle(closed.as_bytes());
    assert_eq!(s, "NKNUSDT");
    assert_eq!(
        (c.ts_ms, c.resolution_ms, c.open, c.high, c.low, c.close),
        (1633998480000, 60_000, 0.3527, 0.3528, 0.3522, 0.3528)
    );
    assert_eq!(
        (c.volume, c.quote_volume, c.trades, c.buy_volume),
        (25877.0, Some(9116.046), Some(30), Some(58.0))
    );
    // Kind mismatches and other events are parse errors.
    assert_eq!(
        decode_json(closed.as_bytes(), Kind::Trades, "").map_err(|e| e.0),
        Err(ParseError)
    );
    assert_eq!(
        decode_json(msgs[0].1.as_bytes(), Kind::Candles, "").map_err(|e| e.0),
        Err(ParseError)
    );
    for (desc, msg) in msgs
        .iter()
        .filter(|(d, _)| !d.contains("aggTrade") && !d.contains("usdm") && !d.contains("kline"))
    {
        let got = decode_json(msg.as_bytes(), Kind::Trades, "");
        assert_eq!(
            got.as_ref().map_err(|e| e.0),
            Err(ParseError),
            "{desc}: {got:?}"
        );
    }
}

#[test]
fn decode_json_hftbacktest_capture_trades() {
    let file = std::fs::File::open(HFTBACKTEST).expect("capture");
    let lines = BufReader::new(flate2::read::GzDecoder::new(file));
    let (mut trades, mut other) = (Vec::new(), 0);
    for line in lines.lines() {
        let line = line.expect("line");
        let (_, json) = line.split_once(' ').expect("`<ns> <json>`");
        match decode_json(json.as_bytes(), Kind::Trades, "spot:") {
            Ok(recs) => trades.extend(recs),
            Err((reason, _)) => {
                assert_eq!(reason, ParseError);
                other += 1;
            }
        }
    }
    assert_eq!((trades.len(), other), (9_757, 41_249 - 9_757));
    let (s, Record::Trade(t)) = &trades[0] else {
        panic!("not a trade")
    };
    assert_eq!(s, "spot:BTCUSDT");
    // {"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000",
    //  "q":"0.02000000","T":1723161255342,"m":true,"M":true}
    assert_eq!(
        (t.ts_ms, t.trade_id, t.price, t.qty, t.is_buyer_maker),
        (1723161255342, 3735683259, 61837.63, 0.02, true)
    );
    let ids: Vec<i64> = trades
        .iter()
        .filter_map(|(_, r)| {
            if let Record::Trade(t) = r {
                Some(t.trade_id)
            } else {
                None
            }
        })
        .collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "trade ids have no gaps"
    );
}

#[test]
fn decode_json_canonical_objects_and_rejects() {
    let t = br#"{"ts_ms": 1723161255342, "symbol": "BTCUSDT", "price": "61837.63", "qty": 0.02,
                 "is_buyer_maker": "True", "trade_id": 7, "exchange": "binance", "extra": [1, {"a": 2}]}"#;
    let (s, tr) = one_trade(t, "p:");
    assert_eq!(s, "p:BTCUSDT");
    assert_eq!(
        (tr.ts_ms, tr.price, tr.qty, tr.is_buyer_maker, tr.trade_id),
        (1723161255342, 61837.63, 0.02, true, 7)
    );
    assert_eq!(tr.exchange, stable_hash(b"binance"));
    let us = br#"{"ts_ms": 1735689600123456, "symbol": "A", "price": 1, "quantity": "2", "is_buyer_maker": 0}"#;
    let (_, tr) = one_trade(us, "");
    assert_eq!(
        (
            tr.ts_ms,
            tr.qty,
            tr.is_buyer_maker,
            tr.trade_id,
            tr.exchange
        ),
        (1735689600123, 2.0, false, NO_TRADE_ID, 0)
    );
    let c = br#"{"ts_ms": 60000, "symbol": "A", "open": 1, "high": 2, "low": 0.5, "close": "1.5", "volume": 0, "resolution": "5m"}"#;
    let (_, k) = one_candle(c);
    assert_eq!(
        (k.resolution_ms, k.close, k.volume, k.trades),
        (300_000, 1.5, 0.0, None)
    );
    let no_res = br#"{"ts_ms": 60000, "symbol": "A", "open": 1, "high": 2, "low": 0.5, "close": 1, "volume": 3}"#;
    assert_eq!(one_candle(no_res).1.resolution_ms, 60_000);

    let base = r#""ts_ms": 1, "symbol": "A", "is_buyer_maker": true"#;
    let cases = [
        (
            format!(r#"{{{base}, "price": 0, "qty": 1}}"#),
            InvalidPrice,
            "price",
        ),
        (
            format!(r#"{{{base}, "price": "abc", "qty": 1}}"#),
            InvalidPrice,
            "price",
        ),
        (
            format!(r#"{{{base}, "price": true, "qty": 1}}"#),
            InvalidPrice,
            "price",
        ),
        (
            format!(r#"{{{base}, "price": null, "qty": 1}}"#),
            InvalidPrice,
            "price",
        ),
        (format!(r#"{{{base}, "qty": 1}}"#), InvalidPrice, "price"),
        (
            format!(r#"{{{base}, "price": 1, "qty": -2}}"#),
            InvalidQty,
            "qty",
        ),
        (
            format!(r#"{{{base}, "price": 1, "qty": "NaN"}}"#),
            InvalidQty,
            "qty",
        ),
        (
            format!(r#"{{{base}, "price": -1, "qty": -2}}"#),
            InvalidPrice,
            "price",
        ),
        (
            r#"{"ts_ms": "x", "symbol": "A", "is_buyer_maker": true, "price": 1, "qty": 1}"#
                .to_string(),
            ParseError,
            "ts_ms",
        ),
        (
            r#"{"ts_ms": 1, "symbol": 5, "is_buyer_maker": true, "price": 1, "qty": 1}"#
                .to_string(),
            ParseError,
            "symbol",
        ),
        (
            r#"{"ts_ms": 1, "symbol": "A", "is_buyer_maker": "yes", "price": 1, "qty": 1}"#
                .to_string(),
            ParseError,
            "is_buyer_maker",
        ),
        (
            r#"{"ts_ms": 1, "symbol": "A", "price": 1, "qty": 1}"#.to_string(),
            ParseError,
            "is_buyer_maker",
        ),
        (
            r#"{"ts_ms": 1, "symbol": "A", "#.to_string(),
            ParseError,
            "JSON",
        ),
        ("[1, 2]".to_string(), ParseError, "JSON"),
    ];
    for (json, reason, field) in cases {
        let got = decode_json(json.as_bytes(), Kind::Trades, "");
        match got {
            Err((r, detail)) => {
                assert_eq!(r, reason, "{json}: {detail}");
                assert!(detail.contains(field), "{json}: {detail}");
            }
            Ok(v) => panic!("{json} decoded to {v:?}"),
        }
    }
}

#[test]
fn decode_json_lines_file_mixed_and_compressed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let msgs = cryptofeed();
    let mut text = String::new();
    text.push_str(&msgs[0].1);
    text.push_str("\n\n{not json}\n");
    text.push_str(&msgs[1].1.replace("\"0.00000638\"", "\"0\""));
    text.push('\n');
    text.push_str(r#"{"ts_ms": 1633998534999, "symbol": "LRCBTC", "price": 1, "qty": 2, "is_buyer_maker": false}"#);
    text.push_str("\r\n");
    for (name, bytes) in [
        ("a.jsonl", text.clone().into_bytes()),
        ("b.json.gz", gz(text.as_bytes())),
    ] {
        let path = write(dir.path(), name, &bytes);
        let d = read_all(&path, &opts(Kind::Trades, FormatHint::Auto, "bn:", 5)).expect("read");
        let got: Vec<_> = d
            .trades
            .iter()
            .map(|(s, t)| (s.as_str(), t.ts_ms, t.seq))
            .collect();
        assert_eq!(
            got,
            vec![
                ("bn:NKNUSDT", 1633998523963, seq(5, 0)),
                ("bn:LRCBTC", 1633998534999, seq(5, 3))
            ]
        );
        assert_eq!(reasons(&d), vec![(ParseError, 3), (InvalidPrice, 4)]);
        assert_eq!(d.rejects[0].raw, "{not json}");
        assert_eq!(d.rejects[1].seq, seq(5, 2));
        assert_eq!(d.bytes, bytes.len() as u64);
    }
    let path = write(dir.path(), "c.jsonl", msgs[0].1.as_bytes());
    let err = read_all(&path, &opts(Kind::Trades, FormatHint::Canonical, "", 0))
        .expect_err("binance payloads");
    assert!(matches!(err, ConnectorError::Format { .. }));
}

#[test]
fn decode_json_lines_candles_infer_resolution() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::new();
    for i in 0..5 {
        let ts = 1_723_075_200_000i64 + i * 3_600_000;
        text.push_str(&format!(
            r#"{{"ts_ms":{ts},"symbol":"A","open":1,"high":1,"low":1,"close":1,"volume":1}}"#
        ));
        text.push('\n');
    }
    let path = write(dir.path(), "c.jsonl", text.as_bytes());
    let d = read_all(&path, &opts(Kind::Candles, FormatHint::Canonical, "", 0)).expect("read");
    assert_eq!(d.candles.len(), 5);
    assert!(d.candles.iter().all(|(_, c)| c.resolution_ms == 3_600_000));
}
