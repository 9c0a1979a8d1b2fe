//! The Parquet reader for canonical trades and candles, converting whole Arrow columns
//! of each batch at a time.

use std::fs::File;
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Schema};
use operators::RejectReason;
use parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;

use super::arrow_cols::{
    bool_cells, convert, f64_cells, int_cells, resolution_cells, ts_cells, StrCol,
};
use super::fields::reject;
use super::infer::settle_first;
use super::parquet_plan::{dictionary_field, field_index, open_builder, pq_err};
use super::parquet_rows::{candle_row, f64_opt, int_opt, row_json, trade_row, Bufs};
use super::{seq, Chunk, DecodeOptions, Kind, Piece, RecordReader};
use crate::{ConnectorError, Result};

/// Columns of a canonical layout: required (name, aliases) and optional ones.
struct Spec {
    required: &'static [&'static [&'static str]],
    optional: &'static [&'static [&'static str]],
}

const TRADES: Spec = Spec {
    required: &[
        &["ts_ms"],
        &["symbol"],
        &["price"],
        &["qty", "quantity"],
        &["is_buyer_maker"],
    ],
    optional: &[&["trade_id"], &["exchange"]],
};

const CANDLES: Spec = Spec {
    required: &[
        &["ts_ms"],
        &["symbol"],
        &["open"],
        &["high"],
        &["low"],
        &["close"],
        &["volume"],
    ],
    optional: &[
        &["quote_volume"],
        &["trades"],
        &["buy_volume"],
        &["resolution"],
    ],
};

/// Reads canonical trades or candles from some row groups of a Parquet file.
pub(crate) struct ParquetReader {
    builder: Option<ParquetRecordBatchReaderBuilder<File>>,
    reader: Option<ParquetRecordBatchReader>,
    pending: Option<RecordBatch>,
    kind: Kind,
    /// Position in the projected batch of each required, then optional, column.
    required: Vec<usize>,
    optional: Vec<Option<usize>>,
    prefix: String,
    source: String,
    file_index: u32,
    /// (first global row, rows) of each selected row group, in reading order.
    groups: Vec<(u64, u64)>,
    group: usize,
    in_group: u64,
    rows_done: u64,
    rows_total: u64,
    bytes_total: u64,
    bufs: Bufs,
    sym: String,
    infer_pending: bool,
    resolution: i64,
}

impl ParquetReader {
    /// Opens `piece` of the Parquet file at `path`, checking the columns.
    pub(crate) fn new(
        path: &Path,
        display: &str,
        piece: &Piece,
        opts: &DecodeOptions,
    ) -> Result<ParquetReader> {
        let builder = open_builder(path, display, opts, piece.row_range.is_some())?;
        let spec = if opts.kind == Kind::Trades {
            &TRADES
        } else {
            &CANDLES
        };
        let schema = builder.schema().clone();
        let mut missing = Vec::new();
        let req_idx: Vec<usize> = spec
            .required
            .iter()
            .map(|names| {
                field_index(&schema, names).unwrap_or_else(|| {
                    missing.push(names[0]);
                    0
                })
            })
            .collect();
        if !missing.is_empty() {
            let reason = format!(
                "lacks the canonical column(s) {} (has {})",
                missing.join(", "),
                column_list(&schema)
            );
            return Err(ConnectorError::format(display, reason));
        }
        let builder = match schema.field(req_idx[1]).data_type() {
            DataType::Utf8 => dictionary_field(builder, path, display, req_idx[1])?,
            _ => builder,
        };
        let opt_idx: Vec<Option<usize>> = spec
            .optional
            .iter()
            .map(|names| field_index(&schema, names))
            .collect();
        let mut roots: Vec<usize> = req_idx
            .iter()
            .copied()
            .chain(opt_idx.iter().flatten().copied())
            .collect();
        roots.sort_unstable();
        roots.dedup();
        let pos = |r: usize| roots.binary_search(&r).unwrap_or(0);
        let required = req_idx.iter().map(|&r| pos(r)).collect();
        let optional = opt_idx.iter().map(|r| r.map(pos)).collect();

        let meta = builder.metadata().clone();
        let all: Vec<usize> = (0..meta.num_row_groups()).collect();
        let selected = piece.row_groups.clone().unwrap_or(all);
        let mut starts = Vec::with_capacity(meta.num_row_groups());
        let mut acc = 0u64;
        for rg in meta.row_groups() {
            starts.push(acc);
            acc += u64::try_from(rg.num_rows()).unwrap_or(0);
        }
        let (lo, hi) = piece.row_range.unwrap_or((0, u64::MAX));
        let mut groups = Vec::new();
        let mut selectors = Vec::new();
        let mut bytes_total = 0u64;
        for &g in &selected {
            let Some(rg) = meta.row_groups().get(g) else {
                let reason = format!(
                    "row group {g} does not exist (the file has {})",
                    meta.num_row_groups()
                );
                return Err(ConnectorError::format(display, reason));
            };
            let n = u64::try_from(rg.num_rows()).unwrap_or(0);
            let (start, end) = (starts[g], starts[g] + n);
            let (a, b) = (
                lo.clamp(start, end),
                hi.clamp(start, end).max(lo.clamp(start, end)),
            );
            for (rows, skip) in [(a - start, true), (b - a, false), (end - b, true)] {
                if rows > 0 {
                    let rows = usize::try_from(rows).unwrap_or(usize::MAX);
                    selectors.push(if skip {
                        RowSelector::skip(rows)
                    } else {
                        RowSelector::select(rows)
                    });
                }
            }
            if b > a {
                groups.push((a, b - a));
            }
            let size = u64::try_from(rg.compressed_size()).unwrap_or(0);
            bytes_total += (size * (b - a)).checked_div(n).unwrap_or(0);
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
        let mut builder = builder.with_projection(mask).with_row_groups(selected);
        if piece.row_range.is_some() {
            builder = builder.with_row_selection(RowSelection::from(selectors));
        }
        Ok(ParquetReader {
            builder: Some(builder),
            reader: None,
            pending: None,
            kind: opts.kind,
            required,
            optional,
            prefix: opts.symbol_prefix.clone(),
            source: display.to_string(),
            file_index: opts.file_index,
            rows_total: groups.iter().map(|g| g.1).sum(),
            groups,
            group: 0,
            in_group: 0,
            rows_done: 0,
            bytes_total,
            bufs: Bufs::default(),
            sym: String::new(),
            infer_pending: opts.kind == Kind::Candles,
            resolution: 0,
        })
    }

    /// The global row index of the next row.
    fn next_row(&mut self) -> u64 {
        while let Some(&(start, rows)) = self.groups.get(self.group) {
            if self.in_group < rows {
                self.in_group += 1;
                return start + self.in_group - 1;
            }
            self.group += 1;
            self.in_group = 0;
        }
        self.rows_done
    }

    /// The next batch of at most `max_rows` rows.
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>> {
        let max_rows = max_rows.max(1);
        if let Some(builder) = self.builder.take() {
            let reader = builder
                .with_batch_size(max_rows)
                .build()
                .map_err(|e| pq_err(&self.source, e))?;
            self.reader = Some(reader);
        }
        loop {
            let batch = match self.pending.take() {
                Some(b) => b,
                None => match self.reader.as_mut().and_then(Iterator::next) {
                    None => return Ok(None),
                    Some(b) => b.map_err(|e| {
                        pq_err(&self.source, ParquetError::ArrowError(e.to_string()))
                    })?,
                },
            };
            if batch.num_rows() == 0 {
                continue;
            }
            if batch.num_rows() > max_rows {
                self.pending = Some(batch.slice(max_rows, batch.num_rows() - max_rows));
                return Ok(Some(batch.slice(0, max_rows)));
            }
            return Ok(Some(batch));
        }
    }

    fn read_rows(&mut self, max_rows: usize, chunk: &mut Chunk) -> Result<bool> {
        let Some(batch) = self.next_batch(max_rows)? else {
            return Ok(false);
        };
        let fail = |col: &str, why: String| {
            ConnectorError::format(&self.source, format!("column `{col}` {why}"))
        };
        let col = |i: usize| batch.column(i).as_ref();
        let names: Vec<&str> = if self.kind == Kind::Trades {
            TRADES.required
        } else {
            CANDLES.required
        }
        .iter()
        .map(|n| n[0])
        .collect();
        let b = &mut self.bufs;
        convert(col(self.required[0]), &mut b.ts, ts_cells).map_err(|e| fail("ts_ms", e))?;
        let symbols = StrCol::new(col(self.required[1]))
            .ok_or_else(|| fail("symbol", "is not a string column".into()))?;
        let n_f = if self.kind == Kind::Trades { 2 } else { 5 };
        for k in 0..n_f {
            convert(col(self.required[2 + k]), &mut b.f[k], f64_cells)
                .map_err(|e| fail(names[2 + k], e))?;
        }
        let opt = |k: usize| self.optional[k].map(col);
        let exchange = match self.kind {
            Kind::Trades | Kind::Book => {
                convert(col(self.required[4]), &mut b.bm, bool_cells)
                    .map_err(|e| fail("is_buyer_maker", e))?;
                int_opt(opt(0), &mut b.int[0], int_cells).map_err(|e| fail("trade_id", e))?;
                match opt(1) {
                    Some(a) => Some(
                        StrCol::new(a)
                            .ok_or_else(|| fail("exchange", "is not a string column".into()))?,
                    ),
                    None => None,
                }
            }
            Kind::Candles => {
                f64_opt(opt(0), &mut b.f[5]).map_err(|e| fail("quote_volume", e))?;
                int_opt(opt(1), &mut b.int[0], int_cells).map_err(|e| fail("trades", e))?;
                f64_opt(opt(2), &mut b.f[6]).map_err(|e| fail("buy_volume", e))?;
                int_opt(opt(3), &mut b.int[1], resolution_cells)
                    .map_err(|e| fail("resolution", e))?;
                None
            }
        };
        let mut first = Chunk::default();
        let infer = std::mem::take(&mut self.infer_pending);
        let out = if infer { &mut first } else { &mut *chunk };
        // A dictionary-encoded symbol column is looked up once per distinct value.
        let dict = symbols.dict_keys();
        let mut slots: Vec<Option<usize>> = vec![None; dict.map_or(0, |d| d.1)];
        for i in 0..batch.num_rows() {
            let row = self.next_row();
            let seq = seq(self.file_index, row);
            let b = &self.bufs;
            let key = dict.and_then(|(keys, _)| keys.get(i).copied().flatten());
            let slot = match key.and_then(|k| slots.get(k).copied().flatten()) {
                Some(slot) => Ok(slot),
                None => match symbols.get(i) {
                    Some(s) if !s.is_empty() && self.prefix.is_empty() => Ok(s),
                    Some(s) if !s.is_empty() => {
                        self.sym.clear();
                        self.sym.push_str(&self.prefix);
                        self.sym.push_str(s);
                        Ok(self.sym.as_str())
                    }
                    _ => Err((
                        RejectReason::ParseError,
                        "symbol is null or empty".to_string(),
                    )),
                }
                .map(|sym| {
                    let slot = out.batch_index(sym);
                    if let Some(k) = key {
                        slots[k] = Some(slot);
                    }
                    slot
                }),
            };
            let result = slot.and_then(|slot| match self.kind {
                Kind::Trades | Kind::Book => {
                    let exch = exchange
                        .as_ref()
                        .and_then(|e| e.get(i))
                        .filter(|e| !e.is_empty());
                    trade_row(b, i, exch).map(|mut t| {
                        t.seq = seq;
                        out.push_trade_at(slot, t);
                    })
                }
                Kind::Candles => candle_row(b, i, self.resolution).map(|mut c| {
                    c.seq = seq;
                    out.push_candle_at(slot, c);
                }),
            });
            if let Err((reason, detail)) = result {
                let raw = row_json(&batch, i);
                out.push_reject(reject(
                    reason,
                    &self.source,
                    row,
                    seq,
                    detail,
                    raw.as_bytes(),
                ));
            }
        }
        self.rows_done += batch.num_rows() as u64;
        if infer {
            self.resolution = settle_first(first, chunk);
        }
        Ok(true)
    }
}

fn column_list(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl RecordReader for ParquetReader {
    fn read_chunk(&mut self, max_rows: usize, chunk: &mut Chunk) -> Result<bool> {
        self.read_rows(max_rows, chunk)
    }

    fn bytes_read(&self) -> u64 {
        if self.rows_total == 0 {
            return 0;
        }
        (self.bytes_total as f64
            * (self.rows_done.min(self.rows_total) as f64 / self.rows_total as f64)) as u64
    }
}
