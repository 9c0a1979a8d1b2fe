//! Entry points for local files: planning into pieces, detecting the file type
//! (Parquet, gzip, zstd, plain; then JSON lines or CSV) and opening the right reader.

use std::path::Path;

use super::csv::CsvReader;
use super::fields::symbol_from_file_name;
use super::jsonl::JsonLinesReader;
use super::parquet_plan;
use super::parquet_reader::ParquetReader;
use super::text::{open_text, sniff, Magic};
use super::{Chunk, DecodeOptions};
use crate::{ConnectorError, Result};

/// A splittable piece of one local file: a whole file, or some row groups of a
/// Parquet file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Piece {
    /// The Parquet row groups to read (None: the whole file).
    pub row_groups: Option<Vec<usize>>,
    /// Number of rows, when known without reading.
    pub rows: Option<u64>,
    /// Least event time (ms), when known from statistics.
    pub min_ts: Option<i64>,
}

/// A decoder over one piece of one input, yielding bounded chunks.
pub trait RecordReader: Send {
    /// Decodes up to `max_rows` more rows (accepted or rejected) into `chunk`.
    /// Returns `Ok(false)` once the input is exhausted: a call that returns `false`
    /// added nothing to `chunk`, so every call that returns `true` should be followed
    /// by another.
    fn read_chunk(&mut self, max_rows: usize, chunk: &mut Chunk) -> Result<bool>;

    /// Bytes of the underlying file consumed so far (for a progress bar); 0 when unknown.
    fn bytes_read(&self) -> u64 {
        0
    }
}

/// Pieces of a local file: for Parquet one [`Piece`] per row group with its row count
/// and least event time from the `ts_ms` column statistics (None if the statistics
/// are missing); for every other format a single `Piece { row_groups: None, rows:
/// None, min_ts: None }`.
pub fn plan_file(path: &Path, display: &str, opts: &DecodeOptions) -> Result<Vec<Piece>> {
    match sniff(path, display)? {
        Magic::Parquet => parquet_plan::plan(path, display, opts),
        _ => Ok(vec![Piece::default()]),
    }
}

/// Opens a reader over `piece` of the local file `path`. `display` is the URL the
/// user gave (used as `Reject::source` and in error messages).
///
/// The type is detected from the content: Parquet by its `PAR1` magic, gzip and zstd
/// by theirs (decompressed while streaming), then JSON lines when the first
/// non-blank byte is `{`, CSV otherwise. A bad layout, or a Binance dump whose symbol
/// cannot be derived from the file name, is a [`ConnectorError::Format`].
pub fn open(
    path: &Path,
    display: &str,
    piece: &Piece,
    opts: &DecodeOptions,
) -> Result<Box<dyn RecordReader>> {
    let magic = sniff(path, display)?;
    if magic == Magic::Parquet {
        return Ok(Box::new(ParquetReader::new(path, display, piece, opts)?));
    }
    if piece.row_groups.is_some() {
        return Err(ConnectorError::format(
            display,
            "row groups were asked of a file that is not Parquet",
        ));
    }
    let (mut lines, bytes) = open_text(path, display, magic)?;
    match lines
        .first_byte()
        .map_err(|e| ConnectorError::io(display, e))?
    {
        None => Ok(Box::new(Empty)),
        Some(b'{') => Ok(Box::new(JsonLinesReader::new(lines, bytes, display, opts)?)),
        Some(_) => {
            let name = display.split(['?', '#']).next().unwrap_or(display);
            let symbol = symbol_from_file_name(name).or_else(|| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(symbol_from_file_name)
            });
            match CsvReader::new(lines, bytes, display, symbol, opts)? {
                Some(reader) => Ok(Box::new(reader)),
                None => Ok(Box::new(Empty)),
            }
        }
    }
}

/// The reader of an input without records.
struct Empty;

impl RecordReader for Empty {
    fn read_chunk(&mut self, _max_rows: usize, _chunk: &mut Chunk) -> Result<bool> {
        Ok(false)
    }
}
