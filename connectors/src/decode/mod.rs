//! Input decoders: canonical and Binance trades and candles in CSV, JSON lines and
//! Parquet, plain, gzip or zstd compressed (README "Backfill runs", Inputs).
//!
//! Every reader yields bounded [`Chunk`]s; bad records become rejects inside the chunk.

mod chunk;

pub use book::{decode_book, decode_keyed_book, split_capture_prefix};
pub use chunk::Chunk;

/// What a backfill reads: trades, candles or order books (a file or topic may mix
/// trades and book records whatever the kind: each record goes to its own stream).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Individual trades.
    #[default]
    Trades,
    /// Pre-aggregated candles.
    Candles,
    /// Order books: depth snapshots and diffs, best quotes (and trades mixed in).
    Book,
}

impl Kind {
    /// Every kind, in the order of their names in messages and flags.
    pub const ALL: [Kind; 3] = [Kind::Trades, Kind::Candles, Kind::Book];

    /// The name used in the config, on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Trades => "trades",
            Kind::Candles => "candles",
            Kind::Book => "book",
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    /// Parses `trades`, `candles` or `book`.
    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("`{s}` is not one of trades, candles, book"))
    }
}

/// Which family of layouts to accept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatHint {
    /// Detect from the content.
    #[default]
    Auto,
    /// Only the canonical columns.
    Canonical,
    /// Only Binance layouts.
    Binance,
}

/// How to decode one input file.
#[derive(Clone, Debug, Default)]
pub struct DecodeOptions {
    /// Trades or candles.
    pub kind: Kind,
    /// Accepted layouts.
    pub format: FormatHint,
    /// Prefix added to every symbol (`binance:`).
    pub symbol_prefix: String,
    /// Index of the file among all inputs of the run; the high bits of `seq`.
    pub file_index: u32,
}

impl DecodeOptions {
    /// The options the readers get: book records are found in any input, and the other
    /// records of a `book` input are trades.
    fn for_readers(&self) -> DecodeOptions {
        let kind = match self.kind {
            Kind::Book => Kind::Trades,
            k => k,
        };
        DecodeOptions {
            kind,
            ..self.clone()
        }
    }
}

/// Builds the input-order number of row `row` (0-based) of file `file_index`.
///
/// ```
/// assert!(connectors::decode::seq(1, 0) > connectors::decode::seq(0, 999_999));
/// ```
#[inline]
pub fn seq(file_index: u32, row: u64) -> u64 {
    (u64::from(file_index) << 40) | (row & ((1u64 << 40) - 1))
}

/// The file index and row encoded in a `seq`.
pub fn unseq(seq: u64) -> (u32, u64) {
    ((seq >> 40) as u32, seq & ((1u64 << 40) - 1))
}

mod arrow_cols;
mod book;
mod csv;
mod detect;
mod fields;
mod infer;
mod json;
mod jsonl;
mod jsonval;
mod layout;
mod parquet_plan;
mod parquet_reader;
mod parquet_rows;
mod split;
mod tardis;
mod text;

pub use detect::{open, plan_file, Piece, RecordReader};
pub use fields::symbol_from_file_name;
pub use json::{decode_json, Record};
pub use parquet_plan::{scan_piece, PIECE_ROWS, SCAN_BLOCK};

#[cfg(test)]
mod tests_csv;
#[cfg(test)]
mod tests_json;
#[cfg(test)]
mod tests_parquet;
#[cfg(test)]
mod tests_pieces;
#[cfg(test)]
mod tests_util;
