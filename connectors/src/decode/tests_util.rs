//! Helpers shared by the decoder tests: fixture files, compression, reading a whole
//! input into flat lists.

use std::io::Write;
use std::path::{Path, PathBuf};

use operators::{Candle, Reject, Trade};

use super::{open, Chunk, DecodeOptions, FormatHint, Kind, Piece};
use crate::Result;

/// Writes `bytes` to `dir/name`.
pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write fixture");
    path
}

/// gzip-compresses `bytes`.
pub(crate) fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

/// zstd-compresses `bytes`.
pub(crate) fn zst(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 3).expect("zstd")
}

/// Options for `kind` with the given format, prefix and file index.
pub(crate) fn opts(kind: Kind, format: FormatHint, prefix: &str, file_index: u32) -> DecodeOptions {
    DecodeOptions {
        kind,
        format,
        symbol_prefix: prefix.to_string(),
        file_index,
    }
}

/// Everything decoded from one input, records in seq order.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// (symbol, trade).
    pub trades: Vec<(String, Trade)>,
    /// (symbol, candle).
    pub candles: Vec<(String, Candle)>,
    /// Rejects in seq order.
    pub rejects: Vec<Reject>,
    /// Rows counted by the chunks.
    pub rows: u64,
    /// Number of `read_chunk` calls that returned true.
    pub chunks: usize,
    /// `bytes_read` at the end.
    pub bytes: u64,
}

/// Reads `piece` of `path` to the end in chunks of `max_rows`.
pub(crate) fn read_piece(
    path: &Path,
    piece: &Piece,
    opts: &DecodeOptions,
    max_rows: usize,
) -> Result<Decoded> {
    let display = format!("file://{}", path.display());
    let mut reader = open(path, &display, piece, opts)?;
    let mut out = Decoded::default();
    loop {
        let mut chunk = Chunk::default();
        let more = reader.read_chunk(max_rows, &mut chunk)?;
        assert!(
            chunk.rows <= max_rows as u64,
            "chunk of {} rows > {max_rows}",
            chunk.rows
        );
        out.rows += chunk.rows;
        out.rejects.append(&mut chunk.rejects);
        for b in chunk.take_batches() {
            out.trades
                .extend(b.trades.iter().map(|t| (b.symbol.to_string(), *t)));
            out.candles
                .extend(b.candles.iter().map(|c| (b.symbol.to_string(), *c)));
        }
        if !more {
            assert_eq!(chunk.rows, 0, "a false read_chunk added rows");
            break;
        }
        out.chunks += 1;
    }
    out.bytes = reader.bytes_read();
    out.trades.sort_by_key(|(_, t)| t.seq);
    out.candles.sort_by_key(|(_, c)| c.seq);
    out.rejects.sort_by_key(|r| r.seq);
    Ok(out)
}

/// Reads the whole of `path` with chunks of 1000 rows.
pub(crate) fn read_all(path: &Path, opts: &DecodeOptions) -> Result<Decoded> {
    read_piece(path, &Piece::default(), opts, 1000)
}

/// The (reason, position) of each reject.
pub(crate) fn reasons(d: &Decoded) -> Vec<(operators::RejectReason, u64)> {
    d.rejects.iter().map(|r| (r.reason, r.position)).collect()
}
