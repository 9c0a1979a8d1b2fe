//! Decode throughput: reads each file named on the command line to the end with the
//! file decoders (CSV, JSON lines or Parquet, detected as in a backfill) and prints
//! rows, rejects, seconds and MB/s of decoded input per file.
//!
//! `cargo run --release -p connectors --example decode_bench -- [--candles] FILE...`

use std::path::Path;
use std::time::Instant;

use connectors::decode::{open, Chunk, DecodeOptions, Kind, Piece};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut kind = Kind::Trades;
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--candles" => kind = Kind::Candles,
            _ => files.push(arg),
        }
    }
    for (i, file) in files.iter().enumerate() {
        let opts = DecodeOptions {
            kind,
            file_index: u32::try_from(i)?,
            ..DecodeOptions::default()
        };
        let path = Path::new(file);
        let bytes = std::fs::metadata(path)?.len();
        let start = Instant::now();
        let mut reader = open(path, file, &Piece::default(), &opts)?;
        let (mut rows, mut rejects, mut records) = (0u64, 0usize, 0usize);
        let mut chunk = Chunk::default();
        while reader.read_chunk(100_000, &mut chunk)? {
            rows += chunk.rows;
            rejects += chunk.rejects.len();
            chunk.rejects.clear();
            for b in chunk.take_batches() {
                records += b.trades.len() + b.candles.len();
            }
            chunk.rows = 0;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{file}: {rows} rows, {records} records, {rejects} rejects, {secs:.3} s, {:.1} MB/s",
            bytes as f64 / secs / 1e6
        );
    }
    Ok(())
}
