//! JSON decoding: canonical trade/candle objects and Binance websocket `trade`,
//! `aggTrade` and `kline` payloads (bare or in the combined-stream envelope), for
//! JSON-lines files and Kafka messages.

use std::borrow::Cow;

use operators::route::stable_hash;
use operators::{Candle, RejectReason, Trade, NO_TRADE_ID};
use serde::Deserialize;

use super::fields::{normalise_ts, parse_bool, parse_i64, positive_value, volume_value};
use super::jsonval::Any;
use super::Kind;

/// One decoded record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Record {
    /// A trade.
    Trade(Trade),
    /// A candle.
    Candle(Candle),
}

/// Why a payload was rejected, and the detail.
type Bad = (RejectReason, String);

/// A message: canonical fields, Binance payload fields, or the combined-stream envelope.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Msg<'a> {
    #[serde(borrow)]
    data: Option<Box<Msg<'a>>>,
    #[serde(borrow)]
    e: Option<Any<'a>>,
    #[serde(borrow)]
    s: Option<Any<'a>>,
    #[serde(borrow)]
    t: Option<Any<'a>>,
    #[serde(borrow)]
    a: Option<Any<'a>>,
    #[serde(borrow)]
    p: Option<Any<'a>>,
    #[serde(borrow)]
    q: Option<Any<'a>>,
    #[serde(borrow, rename = "T")]
    trade_time: Option<Any<'a>>,
    #[serde(borrow)]
    m: Option<Any<'a>>,
    #[serde(borrow)]
    k: Option<Kline<'a>>,
    #[serde(borrow)]
    ts_ms: Option<Any<'a>>,
    #[serde(borrow)]
    symbol: Option<Any<'a>>,
    #[serde(borrow)]
    price: Option<Any<'a>>,
    #[serde(borrow)]
    qty: Option<Any<'a>>,
    #[serde(borrow)]
    quantity: Option<Any<'a>>,
    #[serde(borrow)]
    is_buyer_maker: Option<Any<'a>>,
    #[serde(borrow)]
    trade_id: Option<Any<'a>>,
    #[serde(borrow)]
    exchange: Option<Any<'a>>,
    #[serde(borrow)]
    open: Option<Any<'a>>,
    #[serde(borrow)]
    high: Option<Any<'a>>,
    #[serde(borrow)]
    low: Option<Any<'a>>,
    #[serde(borrow)]
    close: Option<Any<'a>>,
    #[serde(borrow)]
    volume: Option<Any<'a>>,
    #[serde(borrow)]
    quote_volume: Option<Any<'a>>,
    #[serde(borrow)]
    trades: Option<Any<'a>>,
    #[serde(borrow)]
    buy_volume: Option<Any<'a>>,
    #[serde(borrow)]
    resolution: Option<Any<'a>>,
}

/// The candle inside a Binance `kline` payload.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Kline<'a> {
    #[serde(borrow)]
    t: Option<Any<'a>>,
    #[serde(borrow, rename = "T")]
    close_time: Option<Any<'a>>,
    #[serde(borrow)]
    s: Option<Any<'a>>,
    #[serde(borrow)]
    i: Option<Any<'a>>,
    #[serde(borrow)]
    o: Option<Any<'a>>,
    #[serde(borrow)]
    h: Option<Any<'a>>,
    #[serde(borrow)]
    l: Option<Any<'a>>,
    #[serde(borrow)]
    c: Option<Any<'a>>,
    #[serde(borrow)]
    v: Option<Any<'a>>,
    #[serde(borrow)]
    q: Option<Any<'a>>,
    #[serde(borrow)]
    n: Option<Any<'a>>,
    #[serde(borrow)]
    x: Option<Any<'a>>,
    #[serde(borrow, rename = "V")]
    buy_volume: Option<Any<'a>>,
}

/// Decodes one JSON value (one JSON-lines line, or one Kafka message payload):
/// canonical trade/candle objects (by `kind`), or Binance websocket `trade` /
/// `aggTrade` / `kline` payloads, bare or inside the combined-stream envelope
/// `{"stream":..,"data":{..}}`. Kline payloads that are not closed (`"x": false`) yield
/// `Ok(vec![])`. Binance event time is the trade time `T`, not `E`. Symbols get
/// `symbol_prefix`. Returned records have `seq = 0` (the caller sets it); canonical
/// candles without a `resolution` field get 60000 ms.
///
/// ```
/// use connectors::decode::{decode_json, Kind, Record};
/// let msg = br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT",
///   "t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#;
/// let recs = decode_json(msg, Kind::Trades, "binance:").unwrap();
/// assert_eq!(recs[0].0, "binance:BTCUSDT");
/// let Record::Trade(t) = recs[0].1 else { panic!() };
/// assert_eq!((t.ts_ms, t.trade_id, t.price, t.is_buyer_maker), (1723161255342, 3735683259, 61837.63, true));
/// ```
pub fn decode_json(
    bytes: &[u8],
    kind: Kind,
    symbol_prefix: &str,
) -> std::result::Result<Vec<(String, Record)>, (RejectReason, String)> {
    let mut out = decode_value(bytes, kind, symbol_prefix)?;
    for (_, r) in &mut out {
        if let Record::Candle(c) = r {
            if c.resolution_ms == 0 {
                c.resolution_ms = super::infer::DEFAULT_RESOLUTION_MS;
            }
        }
    }
    Ok(out)
}

/// True when `bytes` parses as a Binance payload or envelope (None: not valid JSON).
pub(crate) fn is_binance(bytes: &[u8]) -> Option<bool> {
    let msg: Msg<'_> = serde_json::from_slice(bytes).ok()?;
    Some(msg.data.is_some() || msg.e.is_some() || msg.k.is_some() || msg.trade_time.is_some())
}

/// As [`decode_json`], but canonical candles without a resolution get 0.
pub(crate) fn decode_value(
    bytes: &[u8],
    kind: Kind,
    prefix: &str,
) -> std::result::Result<Vec<(String, Record)>, Bad> {
    // A book source's trades (mixed in its files and topics) are trades.
    let kind = if kind == Kind::Book {
        Kind::Trades
    } else {
        kind
    };
    let msg: Msg<'_> = serde_json::from_slice(bytes).map_err(|e| {
        (
            RejectReason::ParseError,
            format!("not a supported JSON record: {e}"),
        )
    })?;
    let msg = match msg.data {
        Some(data) => *data,
        None => msg,
    };
    let event = match &msg.e {
        Some(e) => Some(e.text("e")?),
        None => None,
    };
    let is_trade = |e: &str| e == "trade" || e == "aggTrade";
    match event.as_deref() {
        Some(e) if is_trade(e) => binance_trade(&msg, kind, prefix),
        Some("kline") => binance_kline(&msg, kind, prefix),
        Some(e) => Err((RejectReason::ParseError, format!("unsupported Binance event type `{e}` (field `e`)"))),
        None if msg.k.is_some() => binance_kline(&msg, kind, prefix),
        None if msg.ts_ms.is_none() && msg.trade_time.is_some() => binance_trade(&msg, kind, prefix),
        None if msg.ts_ms.is_some() || msg.symbol.is_some() => canonical(&msg, kind, prefix),
        None => Err((
            RejectReason::ParseError,
            "neither a canonical record (ts_ms, symbol, ...) nor a Binance trade/aggTrade/kline payload".to_string(),
        )),
    }
}

/// A required field.
fn need<'m, 'a>(v: &'m Option<Any<'a>>, name: &str) -> std::result::Result<&'m Any<'a>, Bad> {
    v.as_ref()
        .ok_or_else(|| (RejectReason::ParseError, format!("`{name}` is missing")))
}

/// A price-like field: None when missing or not a number.
fn number(v: &Option<Any<'_>>) -> Option<f64> {
    v.as_ref().and_then(Any::number)
}

/// A required positive price.
fn price(v: &Option<Any<'_>>, name: &str) -> std::result::Result<f64, Bad> {
    positive_value(number(v), name).map_err(|d| (RejectReason::InvalidPrice, d))
}

/// A required positive quantity.
fn qty(v: &Option<Any<'_>>, name: &str) -> std::result::Result<f64, Bad> {
    positive_value(number(v), name).map_err(|d| (RejectReason::InvalidQty, d))
}

/// An optional finite number: null or absent gives None, anything else non-numeric is
/// a parse error.
fn opt_number(v: &Option<Any<'_>>, name: &str) -> std::result::Result<Option<f64>, Bad> {
    match v {
        None => Ok(None),
        Some(a) => match a.number() {
            Some(x) if x.is_finite() => Ok(Some(x)),
            _ => Err((
                RejectReason::ParseError,
                format!("`{name}` is not a finite number"),
            )),
        },
    }
}

/// Prefixed symbol.
fn symbol(v: &Option<Any<'_>>, name: &str, prefix: &str) -> std::result::Result<String, Bad> {
    let s = need(v, name)?.text(name)?;
    if s.is_empty() {
        return Err((RejectReason::ParseError, format!("`{name}` is empty")));
    }
    Ok(format!("{prefix}{s}"))
}

fn wrong_kind(what: &str, kind: Kind) -> Bad {
    let k = match kind {
        Kind::Trades | Kind::Book => "trades",
        Kind::Candles => "candles",
    };
    (RejectReason::ParseError, format!("a {what} in a {k} input"))
}

fn binance_trade(
    msg: &Msg<'_>,
    kind: Kind,
    prefix: &str,
) -> std::result::Result<Vec<(String, Record)>, Bad> {
    if kind != Kind::Trades {
        return Err(wrong_kind("Binance trade payload", kind));
    }
    let ts_ms = normalise_ts(need(&msg.trade_time, "T")?.int("T")?);
    let sym = symbol(&msg.s, "s", prefix)?;
    let is_buyer_maker = need(&msg.m, "m")?.boolean("m")?;
    let trade_id = match (&msg.t, &msg.a) {
        (Some(t), _) => t.int("t")?,
        (None, Some(a)) => a.int("a")?,
        (None, None) => NO_TRADE_ID,
    };
    let price = price(&msg.p, "p (price)")?;
    let qty = qty(&msg.q, "q (qty)")?;
    let t = Trade {
        ts_ms,
        trade_id,
        seq: 0,
        exchange: 0,
        price,
        qty,
        is_buyer_maker,
    };
    Ok(vec![(sym, Record::Trade(t))])
}

fn binance_kline(
    msg: &Msg<'_>,
    kind: Kind,
    prefix: &str,
) -> std::result::Result<Vec<(String, Record)>, Bad> {
    if kind != Kind::Candles {
        return Err(wrong_kind("Binance kline payload", kind));
    }
    let Some(k) = &msg.k else {
        return Err((
            RejectReason::ParseError,
            "kline payload without `k`".to_string(),
        ));
    };
    if !need(&k.x, "k.x")?.boolean("k.x")? {
        return Ok(Vec::new());
    }
    let ts_ms = normalise_ts(need(&k.t, "k.t")?.int("k.t")?);
    let sym = if k.s.is_some() {
        symbol(&k.s, "k.s", prefix)?
    } else {
        symbol(&msg.s, "s", prefix)?
    };
    let resolution_ms = match (&k.close_time, &k.i) {
        (Some(close), _) => normalise_ts(close.int("k.T")?) - ts_ms + 1,
        (None, Some(i)) => operators::resolution::parse_duration_ms(&i.text("k.i")?).unwrap_or(0),
        (None, None) => 0,
    };
    if resolution_ms <= 0 {
        return Err((
            RejectReason::ParseError,
            "kline close time `k.T` is not after open time `k.t`".to_string(),
        ));
    }
    let trades = match &k.n {
        Some(n) => Some(n.int("k.n")?),
        None => None,
    };
    let quote_volume = opt_number(&k.q, "k.q")?;
    let buy_volume = opt_number(&k.buy_volume, "k.V")?;
    let c = Candle {
        ts_ms,
        resolution_ms,
        seq: 0,
        open: price(&k.o, "k.o (open)")?,
        high: price(&k.h, "k.h (high)")?,
        low: price(&k.l, "k.l (low)")?,
        close: price(&k.c, "k.c (close)")?,
        volume: volume_value(number(&k.v), "k.v (volume)")
            .map_err(|d| (RejectReason::InvalidQty, d))?,
        quote_volume,
        trades,
        buy_volume,
    };
    Ok(vec![(sym, Record::Candle(c))])
}

fn canonical(
    msg: &Msg<'_>,
    kind: Kind,
    prefix: &str,
) -> std::result::Result<Vec<(String, Record)>, Bad> {
    let ts_ms = normalise_ts(need(&msg.ts_ms, "ts_ms")?.int("ts_ms")?);
    let sym = symbol(&msg.symbol, "symbol", prefix)?;
    match kind {
        Kind::Trades | Kind::Book => {
            let is_buyer_maker =
                need(&msg.is_buyer_maker, "is_buyer_maker")?.boolean("is_buyer_maker")?;
            let trade_id = match &msg.trade_id {
                Some(t) => t.int("trade_id")?,
                None => NO_TRADE_ID,
            };
            let exchange = match &msg.exchange {
                Some(e) => {
                    let e = e.text("exchange")?;
                    if e.is_empty() {
                        0
                    } else {
                        stable_hash(e.as_bytes())
                    }
                }
                None => 0,
            };
            let price = price(&msg.price, "price")?;
            let qty = qty(
                if msg.qty.is_some() {
                    &msg.qty
                } else {
                    &msg.quantity
                },
                "qty",
            )?;
            let t = Trade {
                ts_ms,
                trade_id,
                seq: 0,
                exchange,
                price,
                qty,
                is_buyer_maker,
            };
            Ok(vec![(sym, Record::Trade(t))])
        }
        Kind::Candles => {
            let resolution_ms = match &msg.resolution {
                None => 0,
                Some(Any::I(ms)) if *ms > 0 => *ms,
                Some(r) => match operators::resolution::parse_duration_ms(&r.text("resolution")?) {
                    Some(ms) if ms > 0 => ms,
                    _ => {
                        return Err((
                            RejectReason::ParseError,
                            "`resolution` is not a duration".to_string(),
                        ))
                    }
                },
            };
            let trades = match &msg.trades {
                Some(n) => Some(n.int("trades")?),
                None => None,
            };
            let quote_volume = opt_number(&msg.quote_volume, "quote_volume")?;
            let buy_volume = opt_number(&msg.buy_volume, "buy_volume")?;
            let c = Candle {
                ts_ms,
                resolution_ms,
                seq: 0,
                open: price(&msg.open, "open")?,
                high: price(&msg.high, "high")?,
                low: price(&msg.low, "low")?,
                close: price(&msg.close, "close")?,
                volume: volume_value(number(&msg.volume), "volume")
                    .map_err(|d| (RejectReason::InvalidQty, d))?,
                quote_volume,
                trades,
                buy_volume,
            };
            Ok(vec![(sym, Record::Candle(c))])
        }
    }
}

impl Any<'_> {
    /// The value as an integer (JSON integer, integral float, or decimal string).
    pub(crate) fn int(&self, name: &str) -> std::result::Result<i64, Bad> {
        let v = match self {
            Any::I(v) => Some(*v),
            Any::U(v) => i64::try_from(*v).ok(),
            Any::F(v) if v.fract() == 0.0 && v.abs() < 9.0e18 => Some(*v as i64),
            Any::S(s) => parse_i64(s.trim().as_bytes()),
            _ => None,
        };
        v.ok_or_else(|| {
            (
                RejectReason::ParseError,
                format!("`{name}` {} is not an integer", self.describe()),
            )
        })
    }

    /// The value as a boolean (JSON boolean, 0/1, or `true`/`True`/... string).
    pub(crate) fn boolean(&self, name: &str) -> std::result::Result<bool, Bad> {
        let v = match self {
            Any::Bool(b) => Some(*b),
            Any::I(0) | Any::U(0) => Some(false),
            Any::I(1) | Any::U(1) => Some(true),
            Any::S(s) => parse_bool(s.trim().as_bytes()),
            _ => None,
        };
        v.ok_or_else(|| {
            (
                RejectReason::ParseError,
                format!("`{name}` {} is not a boolean", self.describe()),
            )
        })
    }

    /// The value as text (a JSON string).
    pub(crate) fn text(&self, name: &str) -> std::result::Result<Cow<'_, str>, Bad> {
        match self {
            Any::S(s) => Ok(Cow::Borrowed(s.as_ref())),
            _ => Err((
                RejectReason::ParseError,
                format!("`{name}` {} is not a string", self.describe()),
            )),
        }
    }
}
