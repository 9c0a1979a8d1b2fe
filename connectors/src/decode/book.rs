//! Order-book payloads: Binance `depthUpdate` diffs (spot and futures), REST depth
//! snapshots and `bookTicker` quotes, bare or in the combined-stream envelope, and the
//! `<local_recv_ns> <json>` lines of raw captures. Prices and quantities are kept as
//! exact [`Dec`]s of their decimal text.

use operators::book::{BookKind, BookRecord, Dec, Level};
use operators::RejectReason;
use serde::Deserialize;

/// Why a payload was rejected, and the detail.
type Bad = (RejectReason, String);

/// What a JSON payload is, judged from its text without parsing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Depth,
    Snapshot,
    Ticker,
    Levels,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn shape(bytes: &[u8]) -> Option<Shape> {
    if contains(bytes, b"\"depthUpdate\"") {
        Some(Shape::Depth)
    } else if contains(bytes, b"\"bookLevels\"") {
        Some(Shape::Levels)
    } else if contains(bytes, b"\"lastUpdateId\"") {
        Some(Shape::Snapshot)
    } else if contains(bytes, b"bookTicker")
        || (contains(bytes, b"\"B\":\"")
            && contains(bytes, b"\"A\":\"")
            && contains(bytes, b"\"u\":"))
    {
        Some(Shape::Ticker)
    } else {
        None
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct Depth<'a> {
    #[serde(rename = "E")]
    event_time: Option<i64>,
    #[serde(borrow)]
    s: Option<&'a str>,
    #[serde(rename = "U")]
    first: u64,
    u: u64,
    pu: Option<u64>,
    #[serde(borrow)]
    b: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    a: Vec<[&'a str; 2]>,
}

#[derive(Deserialize)]
struct Snapshot<'a> {
    #[serde(rename = "E")]
    event_time: Option<i64>,
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    #[serde(borrow)]
    bids: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    asks: Vec<[&'a str; 2]>,
}

/// Tardis `incremental_book_L2` rows of one time, as `produce` writes them.
#[derive(Deserialize)]
struct Levels<'a> {
    #[serde(rename = "E")]
    event_time: i64,
    #[serde(borrow)]
    s: &'a str,
    snapshot: bool,
    #[serde(borrow)]
    b: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    a: Vec<[&'a str; 2]>,
}

#[derive(Deserialize)]
struct Ticker<'a> {
    #[serde(rename = "E")]
    event_time: Option<i64>,
    #[serde(borrow)]
    s: &'a str,
    #[serde(borrow)]
    b: &'a str,
    #[serde(borrow, rename = "B")]
    bq: &'a str,
    #[serde(borrow)]
    a: &'a str,
    #[serde(borrow, rename = "A")]
    aq: &'a str,
}

/// Parses `T`, bare or inside `{"stream":..,"data":{..}}`.
fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Bad> {
    let bad = |e: serde_json::Error| {
        (
            RejectReason::ParseError,
            format!("not a valid order-book payload: {e}"),
        )
    };
    if contains(bytes, b"\"data\":") {
        serde_json::from_slice::<Envelope<T>>(bytes)
            .map(|e| e.data)
            .map_err(bad)
    } else {
        serde_json::from_slice::<T>(bytes).map_err(bad)
    }
}

/// Levels from their decimal text: prices above 0, quantities at or above 0 (0 removes
/// a level in a diff); `positive_qty` also refuses 0 (quotes).
fn levels(raw: &[[&str; 2]], side: &str, positive_qty: bool) -> Result<Vec<Level>, Bad> {
    raw.iter()
        .map(|[p, q]| {
            let price = Dec::parse(p).filter(|p| p.is_positive()).ok_or_else(|| {
                (
                    RejectReason::InvalidPrice,
                    format!("{side} price `{p}` is not a positive decimal"),
                )
            })?;
            let qty = Dec::parse(q)
                .filter(|q| q.0 > 0 || (!positive_qty && q.0 == 0))
                .ok_or_else(|| {
                    (
                        RejectReason::InvalidQty,
                        format!("{side} quantity `{q}` at {p} is not a valid quantity"),
                    )
                })?;
            Ok((price, qty))
        })
        .collect()
}

/// The event time: `E`, else the receive time.
fn event_time(e: Option<i64>, recv_ms: Option<i64>) -> Result<i64, Bad> {
    e.or(recv_ms).ok_or_else(|| {
        (
            RejectReason::ParseError,
            "an order-book record without `E` needs a receive time (the capture prefix or the Kafka timestamp)".to_string(),
        )
    })
}

/// Decodes one order-book payload. `None` when `bytes` is not one (a trade, a candle,
/// anything else: the caller decodes it as such); otherwise the record, with its
/// symbol (`None` for a REST snapshot, which names none; the caller knows it), or why
/// it was rejected. `recv_ms` is the receive time, the event time of records without
/// `E`. Symbols get `prefix`.
///
/// ```
/// use connectors::decode::decode_book;
/// use operators::book::{BookKind, Dec};
/// let msg = br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,
///   "s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],
///   "a":[["61838.04000000","0.32332000"]]}}"#;
/// let (symbol, rec) = decode_book(msg, "", None).unwrap().unwrap();
/// assert_eq!(symbol.as_deref(), Some("BTCUSDT"));
/// assert_eq!(rec.kind, BookKind::Diff { first: 50093239203, last: 50093239207, prev: None });
/// assert_eq!(rec.asks, vec![(Dec::parse("61838.04").unwrap(), Dec::parse("0.32332").unwrap())]);
/// assert!(decode_book(br#"{"e":"trade","T":1,"p":"1","q":"1"}"#, "", None).is_none());
/// ```
#[allow(clippy::type_complexity)]
pub fn decode_book(
    bytes: &[u8],
    prefix: &str,
    recv_ms: Option<i64>,
) -> Option<Result<(Option<String>, BookRecord), Bad>> {
    let shape = shape(bytes)?;
    let symbol = |s: &str| format!("{prefix}{s}");
    Some((|| match shape {
        Shape::Depth => {
            let m: Depth<'_> = parse(bytes)?;
            let rec = BookRecord {
                ts_ms: event_time(m.event_time, recv_ms)?,
                seq: 0,
                kind: BookKind::Diff {
                    first: m.first,
                    last: m.u,
                    prev: m.pu,
                },
                bids: levels(&m.b, "bid", false)?,
                asks: levels(&m.a, "ask", false)?,
            };
            Ok((m.s.map(symbol), rec))
        }
        Shape::Snapshot => {
            let m: Snapshot<'_> = parse(bytes)?;
            let rec = BookRecord {
                ts_ms: event_time(m.event_time, recv_ms)?,
                seq: 0,
                kind: BookKind::Snapshot {
                    last_update_id: Some(m.last_update_id),
                },
                bids: levels(&m.bids, "bid", false)?,
                asks: levels(&m.asks, "ask", false)?,
            };
            Ok((None, rec))
        }
        Shape::Levels => {
            let m: Levels<'_> = parse(bytes)?;
            let kind = if m.snapshot {
                BookKind::Snapshot {
                    last_update_id: None,
                }
            } else {
                BookKind::Levels
            };
            let rec = BookRecord {
                ts_ms: m.event_time,
                seq: 0,
                kind,
                bids: levels(&m.b, "bid", false)?,
                asks: levels(&m.a, "ask", false)?,
            };
            Ok((Some(symbol(m.s)), rec))
        }
        Shape::Ticker => {
            let m: Ticker<'_> = parse(bytes)?;
            let rec = BookRecord {
                ts_ms: event_time(m.event_time, recv_ms)?,
                seq: 0,
                kind: BookKind::Ticker,
                bids: levels(&[[m.b, m.bq]], "bid", true)?,
                asks: levels(&[[m.a, m.aq]], "ask", true)?,
            };
            Ok((Some(symbol(m.s)), rec))
        }
    })())
}

/// [`decode_book`] for a Kafka record: a REST snapshot, which names no symbol, takes
/// the record key (with `prefix`); without a key it is an `unknown_symbol` reject.
///
/// ```
/// use connectors::decode::decode_keyed_book;
/// let snap = br#"{"lastUpdateId":7,"E":5,"bids":[],"asks":[]}"#;
/// let (symbol, _) = decode_keyed_book(snap, "binance:", None, Some(b"BTCUSDT")).unwrap().unwrap();
/// assert_eq!(symbol, "binance:BTCUSDT");
/// assert!(decode_keyed_book(snap, "", None, None).unwrap().is_err());
/// ```
#[allow(clippy::type_complexity)]
pub fn decode_keyed_book(
    bytes: &[u8],
    prefix: &str,
    recv_ms: Option<i64>,
    key: Option<&[u8]>,
) -> Option<Result<(String, BookRecord), Bad>> {
    let keyed = || {
        let key = std::str::from_utf8(key?).ok()?;
        Some(format!("{prefix}{key}"))
    };
    Some(decode_book(bytes, prefix, recv_ms)?.and_then(
        |(symbol, rec)| match symbol.or_else(keyed) {
            Some(symbol) => Ok((symbol, rec)),
            None => Err((
                RejectReason::UnknownSymbol,
                "a depth snapshot names no symbol: key its record by the symbol".to_string(),
            )),
        },
    ))
}

/// Splits a raw-capture line `<local_recv_ns> <json>` into the receive time in ms and
/// the payload; a line without the prefix is returned whole.
///
/// ```
/// use connectors::decode::split_capture_prefix;
/// assert_eq!(split_capture_prefix(b"1723161253937085768 {\"u\":1}"), (Some(1723161253937), &b"{\"u\":1}"[..]));
/// assert_eq!(split_capture_prefix(b"{\"u\":1}"), (None, &b"{\"u\":1}"[..]));
/// ```
pub fn split_capture_prefix(line: &[u8]) -> (Option<i64>, &[u8]) {
    let digits = line.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || line.get(digits) != Some(&b' ') {
        return (None, line);
    }
    let ns: Option<i64> = std::str::from_utf8(&line[..digits])
        .ok()
        .and_then(|s| s.parse().ok());
    match ns {
        Some(ns) => (
            Some(ns.div_euclid(1_000_000)),
            line[digits + 1..].trim_ascii_start(),
        ),
        None => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_snapshots_tickers_and_futures_diffs_and_rejects_bad_levels() {
        let snap = br#"{"lastUpdateId":7,"bids":[["10.5","1"]],"asks":[["11","2"]]}"#;
        let (s, r) = decode_book(snap, "", Some(5)).unwrap().unwrap();
        assert_eq!(
            (s, r.ts_ms, r.kind),
            (
                None,
                5,
                BookKind::Snapshot {
                    last_update_id: Some(7)
                }
            )
        );
        assert!(decode_book(snap, "", None).unwrap().is_err());
        let tick = br#"{"u":9,"s":"BTCUSDT","b":"10","B":"1","a":"11","A":"2"}"#;
        let (s, r) = decode_book(tick, "binance:", Some(3)).unwrap().unwrap();
        assert_eq!(
            (s.as_deref(), r.kind),
            (Some("binance:BTCUSDT"), BookKind::Ticker)
        );
        let fut = br#"{"e":"depthUpdate","E":12,"T":11,"s":"BTCUSDT","U":5,"u":8,"pu":4,"b":[],"a":[["11","0"]]}"#;
        let (_, r) = decode_book(fut, "", None).unwrap().unwrap();
        assert_eq!(
            r.kind,
            BookKind::Diff {
                first: 5,
                last: 8,
                prev: Some(4)
            }
        );
        let neg = br#"{"e":"depthUpdate","E":12,"s":"X","U":5,"u":8,"b":[["10","-1"]],"a":[]}"#;
        assert_eq!(
            decode_book(neg, "", None).unwrap().unwrap_err().0,
            RejectReason::InvalidQty
        );
        let bad = br#"{"e":"depthUpdate","E":12,"s":"X","U":5}"#;
        assert_eq!(
            decode_book(bad, "", None).unwrap().unwrap_err().0,
            RejectReason::ParseError
        );
    }
}
