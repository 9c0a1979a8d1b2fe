//! Row-level decoding of converted Parquet columns into trades and candles, and the
//! JSON rendering of rejected rows.

use arrow_array::{Array, RecordBatch};
use operators::route::stable_hash;
use operators::{Candle, RejectReason, Trade, NO_TRADE_ID};

use super::arrow_cols::{cell_json, convert, f64_cells, Cell, Convert};
use super::fields::{positive_value, volume_value};

type Bad = (RejectReason, String);

/// Reusable per-batch column buffers.
#[derive(Default)]
pub(crate) struct Bufs {
    /// Event times.
    pub ts: Vec<Cell<i64>>,
    /// Numbers: price, qty (trades) or open, high, low, close, volume, quote and buy
    /// volume (candles).
    pub f: [Vec<Cell<f64>>; 7],
    /// Buyer-is-maker flags.
    pub bm: Vec<Cell<bool>>,
    /// Integers: trade id (trades) or trades and resolution (candles).
    pub int: [Vec<Cell<i64>>; 2],
}

/// Converts an optional integer column (absent: all null).
pub(crate) fn int_opt(
    arr: Option<&dyn Array>,
    out: &mut Vec<Cell<i64>>,
    f: Convert<i64>,
) -> std::result::Result<(), String> {
    match arr {
        Some(a) => convert(a, out, f),
        None => {
            out.clear();
            Ok(())
        }
    }
}

/// Converts an optional number column (absent: all null).
pub(crate) fn f64_opt(
    arr: Option<&dyn Array>,
    out: &mut Vec<Cell<f64>>,
) -> std::result::Result<(), String> {
    match arr {
        Some(a) => convert(a, out, f64_cells),
        None => {
            out.clear();
            Ok(())
        }
    }
}

/// Row `i` of the projected batch as a JSON object.
pub(crate) fn row_json(batch: &RecordBatch, i: usize) -> String {
    let mut obj = serde_json::Map::new();
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        obj.insert(field.name().clone(), cell_json(col.as_ref(), i));
    }
    serde_json::Value::Object(obj).to_string()
}

fn get<T: Copy>(v: &[Cell<T>], i: usize) -> Cell<T> {
    v.get(i).copied().unwrap_or(Cell::Null)
}

fn ts_at(b: &Bufs, i: usize) -> std::result::Result<i64, Bad> {
    match get(&b.ts, i) {
        Cell::Val(v) => Ok(v),
        Cell::Null => Err((RejectReason::ParseError, "ts_ms is null".to_string())),
        Cell::Bad => Err((
            RejectReason::ParseError,
            "ts_ms is not an integer timestamp".to_string(),
        )),
    }
}

fn value(c: Cell<f64>) -> Option<f64> {
    match c {
        Cell::Val(v) => Some(v),
        _ => None,
    }
}

fn opt_f64(c: Cell<f64>, name: &str) -> std::result::Result<Option<f64>, Bad> {
    match c {
        Cell::Val(v) if v.is_finite() => Ok(Some(v)),
        Cell::Null => Ok(None),
        _ => Err((
            RejectReason::ParseError,
            format!("{name} is not a finite number"),
        )),
    }
}

/// Decodes row `i` of a trades batch.
pub(crate) fn trade_row(
    b: &Bufs,
    i: usize,
    exchange: Option<&str>,
) -> std::result::Result<Trade, Bad> {
    let ts_ms = ts_at(b, i)?;
    let is_buyer_maker = match get(&b.bm, i) {
        Cell::Val(v) => v,
        Cell::Null => {
            return Err((
                RejectReason::ParseError,
                "is_buyer_maker is null".to_string(),
            ))
        }
        Cell::Bad => {
            return Err((
                RejectReason::ParseError,
                "is_buyer_maker is not a boolean".to_string(),
            ))
        }
    };
    let trade_id = match get(&b.int[0], i) {
        Cell::Val(v) => v,
        Cell::Null => NO_TRADE_ID,
        Cell::Bad => {
            return Err((
                RejectReason::ParseError,
                "trade_id is not an integer".to_string(),
            ))
        }
    };
    let exchange = exchange.map_or(0, |e| stable_hash(e.as_bytes()));
    let price = positive_value(value(get(&b.f[0], i)), "price")
        .map_err(|d| (RejectReason::InvalidPrice, d))?;
    let qty =
        positive_value(value(get(&b.f[1], i)), "qty").map_err(|d| (RejectReason::InvalidQty, d))?;
    Ok(Trade {
        ts_ms,
        trade_id,
        seq: 0,
        exchange,
        price,
        qty,
        is_buyer_maker,
    })
}

/// Decodes row `i` of a candles batch; `resolution` stands in for a missing one.
pub(crate) fn candle_row(b: &Bufs, i: usize, resolution: i64) -> std::result::Result<Candle, Bad> {
    let ts_ms = ts_at(b, i)?;
    let resolution_ms = match get(&b.int[1], i) {
        Cell::Val(v) => v,
        Cell::Null => resolution,
        Cell::Bad => {
            return Err((
                RejectReason::ParseError,
                "resolution is not a duration".to_string(),
            ))
        }
    };
    let trades = match get(&b.int[0], i) {
        Cell::Val(v) => Some(v),
        Cell::Null => None,
        Cell::Bad => {
            return Err((
                RejectReason::ParseError,
                "trades is not an integer".to_string(),
            ))
        }
    };
    let quote_volume = opt_f64(get(&b.f[5], i), "quote_volume")?;
    let buy_volume = opt_f64(get(&b.f[6], i), "buy_volume")?;
    let mut ohlc = [0.0; 4];
    for (k, name) in ["open", "high", "low", "close"].into_iter().enumerate() {
        ohlc[k] = positive_value(value(get(&b.f[k], i)), name)
            .map_err(|d| (RejectReason::InvalidPrice, d))?;
    }
    let volume = volume_value(value(get(&b.f[4], i)), "volume")
        .map_err(|d| (RejectReason::InvalidQty, d))?;
    let [open, high, low, close] = ohlc;
    Ok(Candle {
        ts_ms,
        resolution_ms,
        seq: 0,
        open,
        high,
        low,
        close,
        volume,
        quote_volume,
        trades,
        buy_volume,
    })
}
