//! The CSV reader: canonical and Binance trades and candles, decoded line by line
//! from a buffered [`LineSource`] without allocating per line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use operators::route::stable_hash;
use operators::{Candle, RejectReason, Trade, NO_TRADE_ID};

use super::fields::{
    lossy, parse_bool, parse_f64, parse_i64, parse_ts, positive, reject, volume_value,
};
use super::infer::settle_first;
use super::layout::{from_header, headerless, is_header, CandleCols, Layout, TradeCols};
use super::split::{Fields, Splitter};
use super::text::{is_blank, LineSource};
use super::{seq, Chunk, DecodeOptions, RecordReader};
use crate::{ConnectorError, Result};

/// Why a line was rejected, and the detail.
type Bad = (RejectReason, String);

/// Reads a CSV file of one of the layouts of [`Layout`].
pub(crate) struct CsvReader {
    lines: LineSource,
    dec: LineDecoder,
    bytes: Arc<AtomicU64>,
    /// Canonical candles without a resolution column: the first chunk is still to be
    /// read (and buffered for inference).
    infer_pending: bool,
}

/// Per-file decoding state, apart from the line source.
struct LineDecoder {
    layout: Layout,
    prefix: String,
    /// Prefix plus the symbol from the file name (Binance layouts).
    file_symbol: String,
    /// Scratch for prefix plus the symbol column.
    sym: String,
    splitter: Splitter,
    source: String,
    file_index: u32,
    row: u64,
    /// Resolution of candles without one of their own (0 until inferred).
    resolution: i64,
}

impl CsvReader {
    /// Reads the first line to find the layout. Returns None for an input without any
    /// non-blank line. `file_symbol` is the symbol derived from the file name.
    pub(crate) fn new(
        mut lines: LineSource,
        bytes: Arc<AtomicU64>,
        display: &str,
        file_symbol: Option<String>,
        opts: &DecodeOptions,
    ) -> Result<Option<CsvReader>> {
        let mut splitter = Splitter::default();
        let layout = loop {
            let (_, line) = match lines
                .next_line()
                .map_err(|e| ConnectorError::io(display, e))?
            {
                None => return Ok(None),
                Some((_, l)) if is_blank(l) => continue,
                Some(l) => l,
            };
            let f = splitter
                .split(line)
                .map_err(|reason| ConnectorError::format(display, reason))?;
            let layout = if is_header(&f) {
                from_header(&f, opts.kind, opts.format)
            } else {
                let layout = headerless(&f, opts.kind, opts.format);
                lines.unread();
                layout
            };
            break layout.map_err(|reason| ConnectorError::format(display, reason))?;
        };
        let file_symbol = if layout.is_binance() {
            let Some(symbol) = file_symbol else {
                return Err(ConnectorError::format(
                    display,
                    "a Binance dump has no symbol column and its file name gives none; name the file \
                     `<SYMBOL>-<kind>-<date>.csv[.gz]` like Binance does, e.g. \
                     `BTCUSDT-trades-2024-08-08.csv.gz`",
                ));
            };
            format!("{}{symbol}", opts.symbol_prefix)
        } else {
            String::new()
        };
        let infer_pending = matches!(&layout, Layout::Candles(c) if c.close_time.is_none() && c.resolution.is_none());
        let dec = LineDecoder {
            layout,
            prefix: opts.symbol_prefix.clone(),
            file_symbol,
            sym: String::with_capacity(64),
            splitter,
            source: display.to_string(),
            file_index: opts.file_index,
            row: 0,
            resolution: 0,
        };
        Ok(Some(CsvReader {
            lines,
            dec,
            bytes,
            infer_pending,
        }))
    }

    /// Decodes up to `max_rows` rows; false when the input ended before any row.
    fn read_rows(&mut self, max_rows: usize, chunk: &mut Chunk) -> Result<bool> {
        let mut n = 0;
        while n < max_rows {
            let next = self
                .lines
                .next_line()
                .map_err(|e| ConnectorError::io(&self.dec.source, e))?;
            let Some((position, line)) = next else {
                return Ok(n > 0);
            };
            if is_blank(line) {
                continue;
            }
            self.dec.decode(line, position, chunk);
            n += 1;
        }
        Ok(true)
    }
}

impl RecordReader for CsvReader {
    fn read_chunk(&mut self, max_rows: usize, chunk: &mut Chunk) -> Result<bool> {
        if self.infer_pending {
            self.infer_pending = false;
            let mut first = Chunk::default();
            let more = self.read_rows(max_rows, &mut first)?;
            self.dec.resolution = settle_first(first, chunk);
            return Ok(more);
        }
        self.read_rows(max_rows, chunk)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl LineDecoder {
    /// Decodes one non-blank line into `chunk` (a record or a reject).
    #[inline]
    fn decode(&mut self, line: &[u8], position: u64, chunk: &mut Chunk) {
        let seq = seq(self.file_index, self.row);
        self.row += 1;
        let result = match self.splitter.split(line) {
            Err(detail) => Err((RejectReason::ParseError, detail)),
            Ok(f) => match &self.layout {
                Layout::Trades(c) => trade(c, &f, &self.prefix, &mut self.sym).map(|mut t| {
                    t.seq = seq;
                    let symbol = if c.symbol.is_some() {
                        &self.sym
                    } else {
                        &self.file_symbol
                    };
                    chunk.push_trade(symbol, t);
                }),
                Layout::Candles(c) => candle(c, &f, &self.prefix, &mut self.sym, self.resolution)
                    .map(|mut k| {
                        k.seq = seq;
                        let symbol = if c.symbol.is_some() {
                            &self.sym
                        } else {
                            &self.file_symbol
                        };
                        chunk.push_candle(symbol, k);
                    }),
            },
        };
        if let Err((reason, detail)) = result {
            chunk.push_reject(reject(reason, &self.source, position, seq, detail, line));
        }
    }
}

/// Checks the field count.
#[inline]
fn check_count(f: &Fields<'_>, ncols: usize) -> std::result::Result<(), Bad> {
    if f.ranges.len() == ncols {
        Ok(())
    } else {
        Err((
            RejectReason::ParseError,
            format!("expected {ncols} fields, found {}", f.ranges.len()),
        ))
    }
}

/// Parses a timestamp field (normalised to ms).
#[inline]
fn ts_field(f: &Fields<'_>, i: usize, name: &str) -> std::result::Result<i64, Bad> {
    let raw = f.get(i);
    parse_ts(raw).ok_or_else(|| {
        (
            RejectReason::ParseError,
            format!("{name} `{}` is not an integer timestamp", lossy(raw)),
        )
    })
}

/// Writes prefix plus the symbol of column `i` into `sym`.
#[inline]
fn symbol_field(
    f: &Fields<'_>,
    i: usize,
    prefix: &str,
    sym: &mut String,
) -> std::result::Result<(), Bad> {
    let raw = f.get(i);
    let s = std::str::from_utf8(raw)
        .map_err(|_| (RejectReason::ParseError, "symbol is not UTF-8".to_string()))?;
    if s.is_empty() {
        return Err((RejectReason::ParseError, "symbol is empty".to_string()));
    }
    sym.clear();
    sym.push_str(prefix);
    sym.push_str(s);
    Ok(())
}

/// Parses an integer field; an empty optional field gives None.
#[inline]
fn int_field(
    f: &Fields<'_>,
    i: usize,
    name: &str,
    required: bool,
) -> std::result::Result<Option<i64>, Bad> {
    let raw = f.get(i);
    if raw.is_empty() && !required {
        return Ok(None);
    }
    match parse_i64(raw) {
        Some(v) => Ok(Some(v)),
        None => Err((
            RejectReason::ParseError,
            format!("{name} `{}` is not an integer", lossy(raw)),
        )),
    }
}

/// Parses a finite number field; an empty optional field gives None.
#[inline]
fn num_field(
    f: &Fields<'_>,
    i: usize,
    name: &str,
    required: bool,
) -> std::result::Result<Option<f64>, Bad> {
    let raw = f.get(i);
    if raw.is_empty() && !required {
        return Ok(None);
    }
    match parse_f64(raw) {
        Some(v) if v.is_finite() => Ok(Some(v)),
        _ => Err((
            RejectReason::ParseError,
            format!("{name} `{}` is not a finite number", lossy(raw)),
        )),
    }
}

/// Decodes a trade line; a symbol column is written into `sym`.
#[inline]
fn trade(
    c: &TradeCols,
    f: &Fields<'_>,
    prefix: &str,
    sym: &mut String,
) -> std::result::Result<Trade, Bad> {
    check_count(f, c.ncols)?;
    let ts_ms = ts_field(f, c.ts, c.ts_name)?;
    if let Some(i) = c.symbol {
        symbol_field(f, i, prefix, sym)?;
    }
    let bm = f.get(c.bm);
    let is_buyer_maker = parse_bool(bm).ok_or_else(|| {
        (
            RejectReason::ParseError,
            format!("is_buyer_maker `{}` is not a boolean", lossy(bm)),
        )
    })?;
    let trade_id = match c.id {
        Some(i) => int_field(f, i, "trade_id", c.binance)?.unwrap_or(NO_TRADE_ID),
        None => NO_TRADE_ID,
    };
    let exchange = match c.exchange.map(|i| f.get(i)) {
        Some(e) if !e.is_empty() => stable_hash(e),
        _ => 0,
    };
    let price = positive(f.get(c.price), "price").map_err(|d| (RejectReason::InvalidPrice, d))?;
    let qty = positive(f.get(c.qty), "qty").map_err(|d| (RejectReason::InvalidQty, d))?;
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

/// Decodes a candle line; a symbol column is written into `sym`. `resolution` is used
/// when the layout carries none.
#[inline]
fn candle(
    c: &CandleCols,
    f: &Fields<'_>,
    prefix: &str,
    sym: &mut String,
    resolution: i64,
) -> std::result::Result<Candle, Bad> {
    check_count(f, c.ncols)?;
    let ts_ms = ts_field(f, c.ts, if c.binance { "open_time" } else { "ts_ms" })?;
    if let Some(i) = c.symbol {
        symbol_field(f, i, prefix, sym)?;
    }
    let resolution_ms = if let Some(i) = c.close_time {
        let close = ts_field(f, i, "close_time")?;
        let r = close - ts_ms + 1;
        if r <= 0 {
            return Err((
                RejectReason::ParseError,
                format!("close_time {close} is before open_time {ts_ms}"),
            ));
        }
        r
    } else if let Some(i) = c.resolution {
        let raw = f.get(i);
        match std::str::from_utf8(raw)
            .ok()
            .and_then(operators::resolution::parse_duration_ms)
        {
            Some(r) if r > 0 => r,
            _ => {
                let d = format!(
                    "resolution `{}` is not a duration such as `1m` or `60000`",
                    lossy(raw)
                );
                return Err((RejectReason::ParseError, d));
            }
        }
    } else {
        resolution
    };
    let trades = match c.trades {
        Some(i) => int_field(f, i, "trades", c.binance)?,
        None => None,
    };
    let quote_volume = match c.quote_volume {
        Some(i) => num_field(f, i, "quote_volume", c.binance)?,
        None => None,
    };
    let buy_volume = match c.buy_volume {
        Some(i) => num_field(f, i, "buy_volume", c.binance)?,
        None => None,
    };
    let mut ohlc = [0.0; 4];
    for ((slot, &i), name) in ohlc
        .iter_mut()
        .zip(&c.ohlc)
        .zip(["open", "high", "low", "close"])
    {
        *slot = positive(f.get(i), name).map_err(|d| (RejectReason::InvalidPrice, d))?;
    }
    let raw = f.get(c.volume);
    let volume =
        volume_value(parse_f64(raw), "volume").map_err(|d| (RejectReason::InvalidQty, d))?;
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
