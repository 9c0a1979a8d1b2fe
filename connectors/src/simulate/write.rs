//! Writes a whole simulation to a local file in the canonical trade layout: Parquet
//! (zstd), CSV or JSON lines, plain, gzip or zstd compressed, streamed in bounded memory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, StringBuilder};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::market::{RawTrade, Simulator, POW10};
use super::{SimConfig, SimFormat};
use crate::{ConnectorError, Result};

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 1_048_576;
/// Rows per Arrow batch handed to the Parquet writer.
const BATCH_ROWS: usize = 65_536;
/// Bytes of text gathered before each write.
const TEXT_CHUNK: usize = 1 << 16;
/// The CSV header line.
pub const CSV_HEADER: &str = "ts_ms,symbol,price,qty,is_buyer_maker,trade_id";

/// The Arrow schema of canonical trades as written by the simulator.
pub fn trade_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts_ms", DataType::Int64, false),
        Field::new("symbol", DataType::Utf8, false),
        Field::new("price", DataType::Float64, false),
        Field::new("qty", DataType::Float64, false),
        Field::new("is_buyer_maker", DataType::Boolean, false),
        Field::new("trade_id", DataType::Int64, false),
    ]))
}

/// Writes the whole simulation of `config` to `path` in `format`; returns the number of
/// trades written. The file appears atomically (written next to it, then renamed);
/// missing parent directories are created.
pub fn write_trades(config: &SimConfig, path: &Path, format: SimFormat) -> Result<u64> {
    let shown = path.display().to_string();
    let name = path.file_name().ok_or_else(|| ConnectorError::InvalidUrl {
        url: shown.clone(),
        reason: "not a file path".into(),
    })?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| ConnectorError::io(parent.display().to_string(), e))?;
    }
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp: PathBuf = path.with_file_name(tmp_name);

    let result = write_to(config, &tmp, format).and_then(|n| {
        std::fs::rename(&tmp, path).map_err(|e| ConnectorError::io(shown.clone(), e))?;
        Ok(n)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes the simulation to `tmp`.
fn write_to(config: &SimConfig, tmp: &Path, format: SimFormat) -> Result<u64> {
    let shown = tmp.display().to_string();
    let io_err = |e: io::Error| ConnectorError::io(shown.clone(), e);
    let file = File::create(tmp).map_err(io_err)?;
    let mut sim = Simulator::new(config);
    match format {
        SimFormat::Parquet => write_parquet(&mut sim, file, &shown),
        SimFormat::Csv | SimFormat::Jsonl => {
            let json = format == SimFormat::Jsonl;
            let mut file = file;
            let n = write_text(&mut sim, &mut file, json).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
            Ok(n)
        }
        SimFormat::CsvGz | SimFormat::JsonlGz => {
            let json = format == SimFormat::JsonlGz;
            let mut gz =
                flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
            let n = write_text(&mut sim, &mut gz, json).map_err(io_err)?;
            finish(gz.finish().map_err(io_err)?).map_err(io_err)?;
            Ok(n)
        }
        SimFormat::CsvZst => {
            let mut zst =
                zstd::stream::write::Encoder::new(BufWriter::new(file), 3).map_err(io_err)?;
            zst.include_checksum(true).map_err(io_err)?;
            let n = write_text(&mut sim, &mut zst, false).map_err(io_err)?;
            finish(zst.finish().map_err(io_err)?).map_err(io_err)?;
            Ok(n)
        }
    }
}

/// Flushes the buffer and syncs the file.
fn finish(w: BufWriter<File>) -> io::Result<()> {
    w.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// Streams the simulation as Parquet: zstd, row groups of [`ROW_GROUP_ROWS`].
fn write_parquet(sim: &mut Simulator, file: File, shown: &str) -> Result<u64> {
    let pq_err = |source| ConnectorError::Parquet {
        path: shown.to_string(),
        source,
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let schema = trade_schema();
    let mut writer =
        ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).map_err(pq_err)?;
    let names: Vec<Arc<str>> = sim.symbols().cloned().collect();
    let mut total = 0u64;
    loop {
        let mut ts = Vec::with_capacity(BATCH_ROWS);
        let mut symbol = StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 8);
        let mut price = Vec::with_capacity(BATCH_ROWS);
        let mut qty = Vec::with_capacity(BATCH_ROWS);
        let mut maker = BooleanBuilder::with_capacity(BATCH_ROWS);
        let mut trade_id = Vec::with_capacity(BATCH_ROWS);
        while ts.len() < BATCH_ROWS {
            let Some(raw) = sim.next_raw() else { break };
            let t = sim.to_trade(&raw);
            ts.push(t.ts_ms);
            symbol.append_value(&names[raw.sym as usize]);
            price.push(t.price);
            qty.push(t.qty);
            maker.append_value(t.is_buyer_maker);
            trade_id.push(t.trade_id);
        }
        if ts.is_empty() {
            break;
        }
        total += ts.len() as u64;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ts)),
            Arc::new(symbol.finish()),
            Arc::new(Float64Array::from(price)),
            Arc::new(Float64Array::from(qty)),
            Arc::new(maker.finish()),
            Arc::new(Int64Array::from(trade_id)),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        writer.write(&batch).map_err(pq_err)?;
    }
    let file = writer.into_inner().map_err(pq_err)?;
    file.sync_all()
        .map_err(|e| ConnectorError::io(shown.to_string(), e))?;
    Ok(total)
}

/// Streams the simulation as CSV (with a header) or JSON lines into `w`.
fn write_text<W: Write>(sim: &mut Simulator, w: &mut W, json: bool) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(TEXT_CHUNK + 256);
    if !json {
        buf.extend_from_slice(CSV_HEADER.as_bytes());
        buf.push(b'\n');
    }
    let mut total = 0u64;
    while let Some(raw) = sim.next_raw() {
        let info = &sim.info()[raw.sym as usize];
        if json {
            push_json(
                &mut buf,
                &raw,
                &info.name,
                info.price_decimals,
                info.qty_decimals,
            );
        } else {
            push_csv(
                &mut buf,
                &raw,
                &info.name,
                info.price_decimals,
                info.qty_decimals,
            );
        }
        total += 1;
        if buf.len() >= TEXT_CHUNK {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    w.flush()?;
    Ok(total)
}

/// Appends one CSV line.
fn push_csv(buf: &mut Vec<u8>, raw: &RawTrade, name: &str, pd: u32, qd: u32) {
    push_int(buf, raw.ts_ms);
    buf.push(b',');
    buf.extend_from_slice(name.as_bytes());
    buf.push(b',');
    push_decimal(buf, raw.price_units, pd);
    buf.push(b',');
    push_decimal(buf, raw.qty_units, qd);
    buf.extend_from_slice(if raw.is_buyer_maker {
        b",true,"
    } else {
        b",false,"
    });
    push_int(buf, raw.trade_id);
    buf.push(b'\n');
}

/// Appends one JSON object and a newline (symbol names need no escaping).
fn push_json(buf: &mut Vec<u8>, raw: &RawTrade, name: &str, pd: u32, qd: u32) {
    buf.extend_from_slice(b"{\"ts_ms\":");
    push_int(buf, raw.ts_ms);
    buf.extend_from_slice(b",\"symbol\":\"");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\",\"price\":");
    push_decimal(buf, raw.price_units, pd);
    buf.extend_from_slice(b",\"qty\":");
    push_decimal(buf, raw.qty_units, qd);
    buf.extend_from_slice(if raw.is_buyer_maker {
        b",\"is_buyer_maker\":true"
    } else {
        b",\"is_buyer_maker\":false"
    });
    buf.extend_from_slice(b",\"trade_id\":");
    push_int(buf, raw.trade_id);
    buf.extend_from_slice(b"}\n");
}

/// Appends the decimal digits of `v`.
pub(crate) fn push_int(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    let mut n = v.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// Appends `units / 10^decimals` in the shortest form that reads back as the same
/// `f64`, always with a decimal point (`60000.0`, `0.00125`), so readers infer a float.
pub(crate) fn push_decimal(buf: &mut Vec<u8>, units: i64, decimals: u32) {
    if units < 0 {
        buf.push(b'-');
    }
    let scale = POW10[decimals as usize] as u64;
    let units = units.unsigned_abs();
    push_int(buf, (units / scale) as i64);
    buf.push(b'.');
    let mut frac = units % scale;
    if frac == 0 {
        buf.push(b'0');
        return;
    }
    let mut width = decimals;
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    let mut digits = 1;
    let mut rest = frac / 10;
    while rest > 0 {
        digits += 1;
        rest /= 10;
    }
    buf.extend(std::iter::repeat_n(b'0', width as usize - digits));
    push_int(buf, frac as i64);
}
