//! The JSON-lines reader: one canonical object or Binance websocket payload a line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::book::{decode_book, split_capture_prefix};
use super::fields::reject;
use super::infer::settle_first;
use super::json::{decode_value, is_binance, Record};
use super::text::{is_blank, LineSource};
use super::{seq, Chunk, DecodeOptions, FormatHint, Kind, RecordReader};
use crate::{ConnectorError, Result};
use operators::RejectReason;

/// Reads a JSON-lines file.
pub(crate) struct JsonLinesReader {
    lines: LineSource,
    bytes: Arc<AtomicU64>,
    kind: Kind,
    prefix: String,
    source: String,
    file_index: u32,
    row: u64,
    /// Candles: the first chunk is still to be read (buffered to infer the resolution
    /// of candles that carry none).
    infer_pending: bool,
    /// Resolution given to candles without one after the first chunk.
    resolution: i64,
    /// Whose the file's REST snapshots are.
    snapshots: SnapshotOwner,
}

/// The symbol of a file's book records, which its REST snapshots (naming none) belong
/// to.
#[derive(Default)]
struct SnapshotOwner {
    /// `None` until a record names it.
    symbol: Option<String>,
    /// The file's book records name more than one symbol.
    mixed: bool,
    /// Snapshots read before any record named the symbol: (position, line, record).
    waiting: Vec<(u64, Vec<u8>, operators::book::BookRecord)>,
}

impl JsonLinesReader {
    /// Checks the first line against `opts.format` and prepares the reader.
    pub(crate) fn new(
        mut lines: LineSource,
        bytes: Arc<AtomicU64>,
        display: &str,
        opts: &DecodeOptions,
    ) -> Result<JsonLinesReader> {
        if opts.format != FormatHint::Auto {
            loop {
                match lines
                    .next_line()
                    .map_err(|e| ConnectorError::io(display, e))?
                {
                    None => break,
                    Some((_, l)) if is_blank(l) => continue,
                    Some((_, l)) => {
                        let binance = is_binance(l);
                        lines.unread();
                        match (binance, opts.format) {
                            (Some(true), FormatHint::Canonical) => {
                                let reason =
                                    "holds Binance websocket payloads, but format = canonical";
                                return Err(ConnectorError::format(display, reason));
                            }
                            (Some(false), FormatHint::Binance) => {
                                let reason = "holds canonical JSON objects, but format = binance";
                                return Err(ConnectorError::format(display, reason));
                            }
                            _ => break,
                        }
                    }
                }
            }
        }
        Ok(JsonLinesReader {
            lines,
            bytes,
            kind: opts.kind,
            prefix: opts.symbol_prefix.clone(),
            source: display.to_string(),
            file_index: opts.file_index,
            row: 0,
            infer_pending: opts.kind == Kind::Candles,
            resolution: 0,
            snapshots: SnapshotOwner::default(),
        })
    }

    /// Decodes up to `max_rows` rows; false when the input ended before any row.
    fn read_rows(&mut self, max_rows: usize, chunk: &mut Chunk) -> Result<bool> {
        let mut n = 0;
        while n < max_rows {
            let next = self
                .lines
                .next_line()
                .map_err(|e| ConnectorError::io(&self.source, e))?;
            let Some((position, line)) = next else {
                self.snapshots.end(&self.source, chunk);
                return Ok(n > 0);
            };
            if is_blank(line) {
                continue;
            }
            let seq = seq(self.file_index, self.row);
            self.row += 1;
            n += 1;
            let (recv_ms, line) = split_capture_prefix(line);
            if let Some(book) = decode_book(line, &self.prefix, recv_ms) {
                match book {
                    Ok((symbol, mut rec)) => {
                        rec.seq = seq;
                        let at = (position, line);
                        self.snapshots.push(&self.source, symbol, at, rec, chunk);
                    }
                    Err((reason, detail)) => {
                        chunk.push_reject(reject(reason, &self.source, position, seq, detail, line))
                    }
                }
                continue;
            }
            match decode_value(line, self.kind, &self.prefix) {
                Ok(records) => {
                    for (symbol, record) in records {
                        match record {
                            Record::Trade(mut t) => {
                                t.seq = seq;
                                chunk.push_trade(&symbol, t);
                            }
                            Record::Candle(mut c) => {
                                c.seq = seq;
                                if c.resolution_ms == 0 {
                                    c.resolution_ms = self.resolution;
                                }
                                chunk.push_candle(&symbol, c);
                            }
                        }
                    }
                }
                Err((reason, detail)) => {
                    chunk.push_reject(reject(reason, &self.source, position, seq, detail, line));
                }
            }
        }
        Ok(true)
    }
}

impl SnapshotOwner {
    /// Adds a book record read at `(position, line)` of `source`: a REST snapshot (no
    /// symbol) goes to the file's symbol, and waits for the first record that names it.
    fn push(
        &mut self,
        source: &str,
        symbol: Option<String>,
        (position, line): (u64, &[u8]),
        rec: operators::book::BookRecord,
        chunk: &mut Chunk,
    ) {
        match symbol {
            Some(s) => {
                match &self.symbol {
                    None => self.symbol = Some(s.clone()),
                    Some(known) if *known != s => self.mixed = true,
                    _ => {}
                }
                if !self.waiting.is_empty() && !self.mixed {
                    for (_, _, snap) in std::mem::take(&mut self.waiting) {
                        chunk.push_book(&s, snap);
                    }
                }
                chunk.push_book(&s, rec);
            }
            None => match (&self.symbol, self.mixed) {
                (Some(s), false) => {
                    let s = s.clone();
                    chunk.push_book(&s, rec);
                }
                (_, true) => chunk.push_reject(reject(
                    RejectReason::UnknownSymbol,
                    source,
                    position,
                    rec.seq,
                    "a depth snapshot names no symbol, and this file holds several".to_string(),
                    line,
                )),
                (None, false) => self.waiting.push((position, line.to_vec(), rec)),
            },
        }
    }

    /// At the end of the file: snapshots whose symbol never showed are dead letters.
    fn end(&mut self, source: &str, chunk: &mut Chunk) {
        for (position, line, rec) in std::mem::take(&mut self.waiting) {
            let detail =
                "a depth snapshot names no symbol, and no record of this file does".to_string();
            chunk.push_reject(reject(
                RejectReason::UnknownSymbol,
                source,
                position,
                rec.seq,
                detail,
                &line,
            ));
        }
    }
}

impl RecordReader for JsonLinesReader {
    fn read_chunk(&mut self, max_rows: usize, chunk: &mut Chunk) -> Result<bool> {
        if self.infer_pending {
            self.infer_pending = false;
            let mut first = Chunk::default();
            let more = self.read_rows(max_rows, &mut first)?;
            self.resolution = settle_first(first, chunk);
            return Ok(more);
        }
        self.read_rows(max_rows, chunk)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}
