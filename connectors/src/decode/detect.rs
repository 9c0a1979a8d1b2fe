//! Entry points for local files: planning into pieces, detecting the file type
//! (Parquet, gzip, zstd, plain; then JSON lines or CSV) and opening the right reader.

use std::path::Path;

use super::csv::CsvReader;
use super::fields::symbol_from_file_name;
use super::jsonl::JsonLinesReader;
use super::parquet_plan;
use super::parquet_reader::ParquetReader;
use super::tardis::{TardisReader, TARDIS_HEADER};
use super::text::{open_text, sniff, LineSource, Magic};
use super::{Chunk, DecodeOptions};
use crate::{ConnectorError, Result};

/// A splittable piece of one local file: a whole file, or some row groups (or a
/// range of rows) of a Parquet file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Piece {
    /// The Parquet row groups to read (None: the whole file).
    pub row_groups: Option<Vec<usize>>,
    /// Only the file rows `start..end` (global row numbers) of those row groups
    /// (None: all their rows).
    pub row_range: Option<(u64, u64)>,
    /// Number of rows, when known without reading.
    pub rows: Option<u64>,
    /// Least event time (ms), when known from statistics.
    pub min_ts: Option<i64>,
    /// Event-time lower bounds of consecutive blocks of the piece's rows, when known
    /// from statistics: `(rows from the piece's start to the block's end, least event
    /// time of this block and every later one)`, ascending; the last block ends at
    /// the piece's end. Empty when unknown.
    pub blocks: Vec<(u64, i64)>,
}

impl Piece {
    /// A lower bound on the event time of the rows after the first `done` rows of
    /// the piece (`i64::MAX` when they are all read), when known from statistics.
    ///
    /// ```
    /// use connectors::decode::Piece;
    /// let p = Piece { blocks: vec![(10, 5), (20, 7)], ..Piece::default() };
    /// assert_eq!((p.bound_after(0), p.bound_after(10), p.bound_after(20)), (Some(5), Some(7), Some(i64::MAX)));
    /// assert_eq!(Piece::default().bound_after(0), None);
    /// ```
    pub fn bound_after(&self, done: u64) -> Option<i64> {
        if self.blocks.is_empty() {
            return self.min_ts;
        }
        let k = self.blocks.partition_point(|b| b.0 <= done);
        Some(self.blocks.get(k).map_or(i64::MAX, |b| b.1))
    }
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

/// Pieces of a local file: for Parquet [`Piece`]s of at most 262,144 rows (row ranges
/// of one row group each) with their row counts and event-time lower bounds from the
/// `ts_ms` column statistics (None if the statistics are missing); for every other
/// format a single `Piece::default()` (the whole file).
pub fn plan_file(path: &Path, display: &str, opts: &DecodeOptions) -> Result<Vec<Piece>> {
    let opts = &opts.for_readers();
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
    let opts = &opts.for_readers();
    let magic = sniff(path, display)?;
    if magic == Magic::Parquet {
        return Ok(Box::new(ParquetReader::new(path, display, piece, opts)?));
    }
    if piece.row_groups.is_some() || piece.row_range.is_some() {
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
        Some(b'0'..=b'9') if is_capture(&mut lines, display)? => {
            Ok(Box::new(JsonLinesReader::new(lines, bytes, display, opts)?))
        }
        Some(b'e') if is_tardis(&mut lines, display)? => {
            Ok(Box::new(TardisReader::new(lines, bytes, display, opts)))
        }
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

/// True when the first line is a raw-capture line `<local_recv_ns> {json}`.
fn is_capture(lines: &mut LineSource, display: &str) -> Result<bool> {
    let first = lines
        .next_line()
        .map_err(|e| ConnectorError::io(display, e))?;
    let capture = first.is_some_and(|(_, l)| {
        let (recv, rest) = super::book::split_capture_prefix(l);
        recv.is_some() && rest.first() == Some(&b'{')
    });
    lines.unread();
    Ok(capture)
}

/// True when the first line is the header of a Tardis `incremental_book_L2` file.
fn is_tardis(lines: &mut LineSource, display: &str) -> Result<bool> {
    let first = lines
        .next_line()
        .map_err(|e| ConnectorError::io(display, e))?;
    let tardis = first.is_some_and(|(_, l)| l.trim_ascii().starts_with(TARDIS_HEADER.as_bytes()));
    lines.unread();
    Ok(tardis)
}

/// The reader of an input without records.
struct Empty;

impl RecordReader for Empty {
    fn read_chunk(&mut self, _max_rows: usize, _chunk: &mut Chunk) -> Result<bool> {
        Ok(false)
    }
}
