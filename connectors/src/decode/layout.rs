//! CSV layouts: which column holds which field, from a header line (canonical, Binance
//! futures dumps) or from the shape of the first data line (headerless Binance dumps).

use super::fields::{looks_numeric, norm_name, parse_bool, parse_i64};
use super::split::Fields;
use super::{FormatHint, Kind};

/// Column positions of a trades CSV.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TradeCols {
    /// Number of fields of every line.
    pub ncols: usize,
    /// Event time.
    pub ts: usize,
    /// Price.
    pub price: usize,
    /// Quantity.
    pub qty: usize,
    /// Buyer-is-maker flag.
    pub bm: usize,
    /// Symbol; None: from the file name (Binance dumps).
    pub symbol: Option<usize>,
    /// Trade id (required for Binance dumps, optional in canonical files).
    pub id: Option<usize>,
    /// Exchange name.
    pub exchange: Option<usize>,
    /// A Binance layout (trade id required).
    pub binance: bool,
    /// Name of the time column, for messages.
    pub ts_name: &'static str,
}

/// Column positions of a candles CSV.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CandleCols {
    /// Number of fields of every line.
    pub ncols: usize,
    /// Bar open time.
    pub ts: usize,
    /// Open, high, low, close prices.
    pub ohlc: [usize; 4],
    /// Base volume.
    pub volume: usize,
    /// Symbol; None: from the file name (Binance klines).
    pub symbol: Option<usize>,
    /// Binance close time (resolution = close − open + 1).
    pub close_time: Option<usize>,
    /// Quote volume.
    pub quote_volume: Option<usize>,
    /// Number of trades.
    pub trades: Option<usize>,
    /// Taker-buy base volume.
    pub buy_volume: Option<usize>,
    /// Canonical resolution column (`1m` or ms).
    pub resolution: Option<usize>,
    /// A Binance layout (optional volumes required).
    pub binance: bool,
}

/// The layout of a CSV file.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Layout {
    /// Trades.
    Trades(TradeCols),
    /// Candles.
    Candles(CandleCols),
}

impl Layout {
    /// True for Binance dump layouts (symbol from the file name).
    pub fn is_binance(&self) -> bool {
        match self {
            Layout::Trades(c) => c.binance,
            Layout::Candles(c) => c.binance,
        }
    }
}

/// True when `fields` is a header line: none of its fields parses as a number.
pub(crate) fn is_header(fields: &Fields<'_>) -> bool {
    (0..fields.ranges.len()).all(|i| !looks_numeric(fields.get(i)))
}

const CANONICAL_TRADES: &str = "ts_ms,symbol,price,qty,is_buyer_maker[,trade_id][,exchange]";
const CANONICAL_CANDLES: &str =
    "ts_ms,symbol,open,high,low,close,volume[,quote_volume][,trades][,buy_volume][,resolution]";

/// The layout named by a header line.
pub(crate) fn from_header(
    fields: &Fields<'_>,
    kind: Kind,
    format: FormatHint,
) -> Result<Layout, String> {
    let names: Vec<String> = (0..fields.ranges.len())
        .map(|i| norm_name(fields.get(i)))
        .collect();
    let find = |aliases: &[&str]| names.iter().position(|n| aliases.contains(&n.as_str()));
    let ncols = names.len();
    let canonical = find(&["symbol"]).is_some() && find(&["tsms"]).is_some();
    let header = String::from_utf8_lossy(fields.line).into_owned();
    let mut missing = Vec::new();
    let mut need = |aliases: &[&str], label: &'static str| {
        let i = find(aliases);
        if i.is_none() {
            missing.push(label);
        }
        i.unwrap_or(0)
    };
    let layout = match (kind, canonical) {
        (_, true) if format == FormatHint::Binance => {
            return Err(format!(
                "header `{header}` is a canonical layout, but format = binance"
            ));
        }
        (_, false) if format == FormatHint::Canonical => {
            let want = if kind == Kind::Trades {
                CANONICAL_TRADES
            } else {
                CANONICAL_CANDLES
            };
            return Err(format!(
                "header `{header}` is not the canonical layout `{want}`"
            ));
        }
        (Kind::Trades | Kind::Book, true) => Layout::Trades(TradeCols {
            ncols,
            ts: need(&["tsms"], "ts_ms"),
            symbol: Some(need(&["symbol"], "symbol")),
            price: need(&["price"], "price"),
            qty: need(&["qty", "quantity"], "qty"),
            bm: need(&["isbuyermaker"], "is_buyer_maker"),
            id: find(&["tradeid"]),
            exchange: find(&["exchange"]),
            binance: false,
            ts_name: "ts_ms",
        }),
        (Kind::Trades | Kind::Book, false) => Layout::Trades(TradeCols {
            ncols,
            id: Some(need(&["id", "tradeid", "aggtradeid", "aggid", "a"], "id")),
            price: need(&["price"], "price"),
            qty: need(&["qty", "quantity"], "qty"),
            ts: need(&["time", "transacttime", "timestamp"], "time"),
            bm: need(&["isbuyermaker"], "is_buyer_maker"),
            symbol: None,
            exchange: None,
            binance: true,
            ts_name: "time",
        }),
        (Kind::Candles, true) => Layout::Candles(CandleCols {
            ncols,
            ts: need(&["tsms"], "ts_ms"),
            symbol: Some(need(&["symbol"], "symbol")),
            ohlc: [
                need(&["open"], "open"),
                need(&["high"], "high"),
                need(&["low"], "low"),
                need(&["close"], "close"),
            ],
            volume: need(&["volume"], "volume"),
            close_time: None,
            quote_volume: find(&["quotevolume"]),
            trades: find(&["trades", "count"]),
            buy_volume: find(&["buyvolume"]),
            resolution: find(&["resolution"]),
            binance: false,
        }),
        (Kind::Candles, false) => Layout::Candles(CandleCols {
            ncols,
            ts: need(&["opentime"], "open_time"),
            symbol: None,
            ohlc: [
                need(&["open"], "open"),
                need(&["high"], "high"),
                need(&["low"], "low"),
                need(&["close"], "close"),
            ],
            volume: need(&["volume"], "volume"),
            close_time: Some(need(&["closetime"], "close_time")),
            quote_volume: Some(need(&["quotevolume", "quoteassetvolume"], "quote_volume")),
            trades: Some(need(&["count", "numberoftrades", "trades"], "count")),
            buy_volume: Some(need(
                &[
                    "takerbuyvolume",
                    "takerbuybasevolume",
                    "takerbuybaseassetvolume",
                ],
                "taker_buy_volume",
            )),
            resolution: None,
            binance: true,
        }),
    };
    if missing.is_empty() {
        Ok(layout)
    } else {
        let family = if canonical { "canonical" } else { "Binance" };
        Err(format!(
            "header `{header}` lacks the {family} column(s) {}",
            missing.join(", ")
        ))
    }
}

/// The Binance layout of a headerless file, from its first data line.
pub(crate) fn headerless(
    fields: &Fields<'_>,
    kind: Kind,
    format: FormatHint,
) -> Result<Layout, String> {
    let line = String::from_utf8_lossy(fields.line).into_owned();
    if format == FormatHint::Canonical {
        let want = if kind == Kind::Trades {
            CANONICAL_TRADES
        } else {
            CANONICAL_CANDLES
        };
        return Err(format!(
            "canonical CSV needs a header line `{want}`; the first line is `{line}`"
        ));
    }
    let n = fields.ranges.len();
    let is_bool = |i: usize| parse_bool(fields.get(i)).is_some();
    let is_int = |i: usize| parse_i64(fields.get(i)).is_some();
    let trades = |id, price, qty, ts, bm| {
        Layout::Trades(TradeCols {
            ncols: n,
            ts,
            price,
            qty,
            bm,
            symbol: None,
            id: Some(id),
            exchange: None,
            binance: true,
            ts_name: "time",
        })
    };
    match kind {
        Kind::Trades | Kind::Book if n == 8 => Ok(trades(0, 1, 2, 5, 6)),
        Kind::Trades | Kind::Book if (n == 6 || n == 7) && is_bool(5) => Ok(trades(0, 1, 2, 4, 5)),
        Kind::Trades | Kind::Book if n == 7 && is_bool(6) && is_int(5) => Ok(trades(0, 1, 2, 5, 6)),
        Kind::Trades | Kind::Book if n == 12 => Err(format!(
            "the first line `{line}` has 12 columns like a Binance klines file; read it as candles"
        )),
        Kind::Trades | Kind::Book => Err(format!(
            "cannot tell the layout of the headerless line `{line}`: expected Binance trades \
             (id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch) or aggTrades \
             (aggId,price,qty,firstTradeId,lastTradeId,time,isBuyerMaker,isBestMatch)"
        )),
        Kind::Candles if n == 12 => Ok(Layout::Candles(CandleCols {
            ncols: n,
            ts: 0,
            ohlc: [1, 2, 3, 4],
            volume: 5,
            symbol: None,
            close_time: Some(6),
            quote_volume: Some(7),
            trades: Some(8),
            buy_volume: Some(9),
            resolution: None,
            binance: true,
        })),
        Kind::Candles => Err(format!(
            "cannot tell the layout of the headerless line `{line}`: expected Binance klines \
             (open_time,open,high,low,close,volume,close_time,quote_volume,count,\
             taker_buy_volume,taker_buy_quote_volume,ignore)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::split::Splitter;

    fn layout(line: &str, kind: Kind, format: FormatHint) -> Result<Layout, String> {
        let mut splitter = Splitter::default();
        let f = splitter.split(line.as_bytes())?;
        if is_header(&f) {
            from_header(&f, kind, format)
        } else {
            headerless(&f, kind, format)
        }
    }

    fn trade_cols(l: Result<Layout, String>) -> (usize, usize, usize, usize, Option<usize>) {
        match l {
            Ok(Layout::Trades(c)) => (c.ts, c.price, c.qty, c.bm, c.id),
            other => panic!("not a trades layout: {other:?}"),
        }
    }

    #[test]
    fn decode_layout_binance_trades_shapes() {
        let a = Kind::Trades;
        let auto = FormatHint::Auto;
        let spot = "3735683259,61837.63,0.02,1236.75,1723161255342,True,True";
        assert_eq!(trade_cols(layout(spot, a, auto)), (4, 1, 2, 5, Some(0)));
        let agg = "1,61837.63,0.02,10,12,1723161255342,false,true";
        assert_eq!(trade_cols(layout(agg, a, auto)), (5, 1, 2, 6, Some(0)));
        let agg7 = "1,61837.63,0.02,10,12,1723161255342,false";
        assert_eq!(trade_cols(layout(agg7, a, auto)), (5, 1, 2, 6, Some(0)));
        let fut =
            "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker";
        assert_eq!(trade_cols(layout(fut, a, auto)), (5, 1, 2, 6, Some(0)));
        let canon = "price,ts_ms,symbol,quantity,is_buyer_maker,event_ms";
        assert_eq!(trade_cols(layout(canon, a, auto)), (1, 0, 3, 4, None));
        assert!(layout(canon, a, FormatHint::Binance).is_err());
        assert!(layout(spot, a, FormatHint::Canonical).is_err());
        assert!(layout("1,2,3", a, auto).is_err());
        let err = layout("ts_ms,symbol,price,qty", a, auto).expect_err("missing column");
        assert!(err.contains("is_buyer_maker"), "{err}");
    }
}
