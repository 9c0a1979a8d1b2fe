//! The Tardis `incremental_book_L2` CSV reader (`exchange, symbol, timestamp,
//! local_timestamp, is_snapshot, side, price, amount`, times in µs): consecutive rows of
//! one symbol, time and snapshot flag form one book record (one exchange message).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use operators::book::{BookKind, BookRecord, Dec};
use operators::RejectReason;

use super::fields::reject;
use super::text::{is_blank, LineSource};
use super::{seq, Chunk, DecodeOptions, RecordReader};
use crate::{ConnectorError, Result};

/// The header that marks a Tardis `incremental_book_L2` file.
pub(crate) const TARDIS_HEADER: &str =
    "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount";

/// Reads a Tardis `incremental_book_L2` CSV file.
pub(crate) struct TardisReader {
    lines: LineSource,
    bytes: Arc<AtomicU64>,
    prefix: String,
    source: String,
    file_index: u32,
    row: u64,
    /// The record being gathered: its symbol and the rows so far.
    open: Option<(String, BookRecord)>,
}

/// One row: symbol, time (ms), snapshot flag, bid side, price, amount.
type Row<'a> = (&'a str, i64, bool, bool, Dec, Dec);

fn parse_row(line: &str) -> std::result::Result<Row<'_>, (RejectReason, String)> {
    let f: Vec<&str> = line.split(',').collect();
    let bad = |what: &str| {
        (
            RejectReason::ParseError,
            format!("{what} in a Tardis incremental_book_L2 row"),
        )
    };
    if f.len() != 8 {
        return Err(bad(&format!("{} columns instead of 8", f.len())));
    }
    let ts_us: i64 = f[2]
        .trim()
        .parse()
        .map_err(|_| bad("`timestamp` is not an integer"))?;
    let snapshot = match f[4].trim() {
        "true" | "True" | "1" => true,
        "false" | "False" | "0" => false,
        _ => return Err(bad("`is_snapshot` is not a boolean")),
    };
    let bid = match f[5].trim() {
        "bid" => true,
        "ask" => false,
        _ => return Err(bad("`side` is neither bid nor ask")),
    };
    let price = Dec::parse(f[6]).filter(|p| p.is_positive()).ok_or((
        RejectReason::InvalidPrice,
        format!("price `{}` is not a positive decimal", f[6]),
    ))?;
    let amount = Dec::parse(f[7]).filter(|q| q.0 >= 0).ok_or((
        RejectReason::InvalidQty,
        format!("amount `{}` is not a quantity", f[7]),
    ))?;
    Ok((
        f[1].trim(),
        ts_us.div_euclid(1000),
        snapshot,
        bid,
        price,
        amount,
    ))
}

impl TardisReader {
    /// A reader over `lines`, whose first line is [`TARDIS_HEADER`].
    pub(crate) fn new(
        lines: LineSource,
        bytes: Arc<AtomicU64>,
        display: &str,
        opts: &DecodeOptions,
    ) -> TardisReader {
        TardisReader {
            lines,
            bytes,
            prefix: opts.symbol_prefix.clone(),
            source: display.to_string(),
            file_index: opts.file_index,
            row: 0,
            open: None,
        }
    }

    fn flush(&mut self, chunk: &mut Chunk) {
        if let Some((symbol, rec)) = self.open.take() {
            chunk.push_book(&symbol, rec);
        }
    }
}

impl RecordReader for TardisReader {
    fn read_chunk(&mut self, max_rows: usize, chunk: &mut Chunk) -> Result<bool> {
        let mut n = 0;
        while n < max_rows {
            let next = self
                .lines
                .next_line()
                .map_err(|e| ConnectorError::io(&self.source, e))?;
            let Some((position, line)) = next else {
                self.flush(chunk);
                return Ok(n > 0);
            };
            if is_blank(line) || line.starts_with(b"exchange,") {
                continue;
            }
            let seq = seq(self.file_index, self.row);
            self.row += 1;
            n += 1;
            let text = String::from_utf8_lossy(line);
            match parse_row(text.trim_end()) {
                Ok((symbol, ts_ms, snapshot, bid, price, amount)) => {
                    let kind = if snapshot {
                        BookKind::Snapshot {
                            last_update_id: None,
                        }
                    } else {
                        BookKind::Levels
                    };
                    let same = self.open.as_ref().is_some_and(|(s, r)| {
                        s.strip_prefix(self.prefix.as_str()) == Some(symbol)
                            && r.ts_ms == ts_ms
                            && r.kind == kind
                    });
                    if !same {
                        if let Some((symbol, rec)) = self.open.take() {
                            chunk.push_book(&symbol, rec);
                        }
                        let rec = BookRecord {
                            ts_ms,
                            seq,
                            kind,
                            bids: Vec::new(),
                            asks: Vec::new(),
                        };
                        self.open = Some((format!("{}{symbol}", self.prefix), rec));
                    }
                    if let Some((_, rec)) = self.open.as_mut() {
                        let side = if bid { &mut rec.bids } else { &mut rec.asks };
                        side.push((price, amount));
                    }
                    // The chunk counts records; the other rows of a record count here.
                    if same {
                        chunk.rows += 1;
                    }
                }
                Err((reason, detail)) => {
                    chunk.push_reject(reject(reason, &self.source, position, seq, detail, line))
                }
            }
        }
        Ok(true)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}
