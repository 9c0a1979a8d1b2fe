//! Planning Parquet files: pieces of at most [`PIECE_ROWS`] rows (row ranges inside
//! row groups), each with lower bounds on event time per block of rows from the
//! `ts_ms` column statistics (page index when present, else row group); finer bounds
//! for a piece without a page index by reading its `ts_ms` column alone
//! ([`scan_piece`]); shared opening helpers.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_schema::{DataType, Field, FieldRef, Schema, TimeUnit};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelector,
};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::statistics::Statistics;

use super::fields::normalise_ts;
use super::{DecodeOptions, FormatHint, Piece};
use crate::{ConnectorError, Result};

/// A Parquet error on `display`.
pub(crate) fn pq_err(display: &str, e: ParquetError) -> ConnectorError {
    ConnectorError::Parquet {
        path: display.to_string(),
        source: e,
    }
}

/// Rows per piece at most: a larger file (or row group) is split into row ranges so
/// that one big file is spread over every worker.
pub const PIECE_ROWS: u64 = 262_144;

/// Rows per event-time bound found by [`scan_piece`] (a quarter of a source chunk).
pub const SCAN_BLOCK: usize = 8_192;

/// Opens the Parquet metadata of `path` (refusing `format = binance`), with the page
/// index when `page_index` and the file has one.
pub(crate) fn open_builder(
    path: &Path,
    display: &str,
    opts: &DecodeOptions,
    page_index: bool,
) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    if opts.format == FormatHint::Binance {
        return Err(ConnectorError::format(
            display,
            "Binance layouts are CSV, but this is a Parquet file",
        ));
    }
    let file = File::open(path).map_err(|e| ConnectorError::io(display, e))?;
    let policy = if page_index {
        PageIndexPolicy::Optional
    } else {
        PageIndexPolicy::Skip
    };
    let options = ArrowReaderOptions::new().with_page_index_policy(policy);
    ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .map_err(|e| pq_err(display, e))
}

/// The same reader with the top-level string field `field` read as a dictionary, so
/// that its distinct values (symbols) can be looked up once per batch. Falls back to
/// the file's own types when the reader cannot do that.
pub(crate) fn dictionary_field(
    builder: ParquetRecordBatchReaderBuilder<File>,
    path: &Path,
    display: &str,
    field: usize,
) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let schema = builder.schema().clone();
    let mut fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
    let Some(f) = fields.get(field).cloned() else {
        return Ok(builder);
    };
    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    fields[field] =
        Arc::new(Field::new(f.name(), dict, f.is_nullable()).with_metadata(f.metadata().clone()));
    let wanted = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let meta = builder.metadata().clone();
    let Ok(md) = ArrowReaderMetadata::try_new(meta, ArrowReaderOptions::new().with_schema(wanted))
    else {
        return Ok(builder);
    };
    let file = File::open(path).map_err(|e| ConnectorError::io(display, e))?;
    Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(file, md))
}

/// Index of the top-level field named `name` (case-insensitively).
pub(crate) fn field_index(schema: &Schema, names: &[&str]) -> Option<usize> {
    schema
        .fields()
        .iter()
        .position(|f| names.iter().any(|n| f.name().eq_ignore_ascii_case(n)))
}

/// Pieces of at most [`PIECE_ROWS`] rows, none spanning two row groups, in file
/// order; each with its row count and event-time lower bounds from the statistics.
pub(crate) fn plan(path: &Path, display: &str, opts: &DecodeOptions) -> Result<Vec<Piece>> {
    let builder = open_builder(path, display, opts, true)?;
    let meta = builder.metadata();
    let ts_type = field_index(builder.schema(), &["ts_ms"])
        .map(|i| builder.schema().field(i).data_type().clone());
    let leaf = ts_leaf(meta);
    let mut pieces = Vec::new();
    let mut first = 0u64;
    for (i, rg) in meta.row_groups().iter().enumerate() {
        let n = u64::try_from(rg.num_rows()).unwrap_or(0);
        let (rg_min, pages) = match (leaf, &ts_type) {
            (Some(j), Some(t)) if j < rg.num_columns() => {
                let pages = meta.page_index_for_row_group(i);
                let pages = match (pages.column_index(j), pages.offset_index(j)) {
                    (Some(ci), Some(oi)) => oi
                        .page_locations()
                        .iter()
                        .enumerate()
                        .map(|(k, loc)| {
                            let first = u64::try_from(loc.first_row_index).unwrap_or(0);
                            (first, page_min(ci, k).map(|v| to_ms(v, t)))
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                (min_ts(rg.column(j).statistics(), t), pages)
            }
            _ => (None, Vec::new()),
        };
        pieces.extend(split_group(i, first, n, rg_min, &pages));
        first += n;
    }
    Ok(pieces)
}

/// Splits row group `group` (file rows `first..first + rows`) into pieces of at most
/// [`PIECE_ROWS`] rows. `pages` are `(first row in the group, least event time)` of
/// the `ts_ms` pages in order (empty when there is no page index); a page without a
/// bound takes the group's bound `group_min`. Without any bound, pieces have none.
pub(crate) fn split_group(
    group: usize,
    first: u64,
    rows: u64,
    group_min: Option<i64>,
    pages: &[(u64, Option<i64>)],
) -> Vec<Piece> {
    let parts = rows.div_ceil(PIECE_ROWS).max(1);
    (0..parts)
        .map(|p| {
            let (a, b) = (rows * p / parts, rows * (p + 1) / parts);
            let mut blocks: Vec<(u64, i64)> = Vec::new();
            let mut known = !pages.is_empty();
            for (k, &(start, min)) in pages.iter().enumerate() {
                let end = pages.get(k + 1).map_or(rows, |n| n.0);
                if end <= a || start >= b {
                    continue;
                }
                match min.or(group_min) {
                    Some(m) => blocks.push((end.min(b) - a, m)),
                    None => known = false,
                }
            }
            if !known || blocks.is_empty() {
                blocks.clear();
                if let Some(m) = group_min {
                    blocks.push((b - a, m));
                }
            }
            suffix_minima(&mut blocks);
            Piece {
                row_groups: Some(vec![group]),
                row_range: Some((first + a, first + b)),
                rows: Some(b - a),
                min_ts: blocks.first().map(|b| b.1),
                blocks,
            }
        })
        .collect()
}

/// The piece with exact event-time lower bounds per block of [`SCAN_BLOCK`] rows,
/// read from the `ts_ms` column of its row group alone (a few ms for a piece of
/// [`PIECE_ROWS`] rows): for a piece whose statistics give one bound for all its rows
/// (pyarrow writes no page index), so that what follows its first rows is not held at
/// its first event time. `None` when the piece is not a row range of one row group or
/// the file has no `ts_ms` column.
pub fn scan_piece(
    path: &Path,
    display: &str,
    opts: &DecodeOptions,
    piece: &Piece,
) -> Result<Option<Piece>> {
    let (Some(groups), Some((a, b))) = (&piece.row_groups, piece.row_range) else {
        return Ok(None);
    };
    let [group] = groups.as_slice() else {
        return Ok(None);
    };
    let builder = open_builder(path, display, opts, false)?;
    let (Some(field), Some(leaf)) = (
        field_index(builder.schema(), &["ts_ms"]),
        ts_leaf(builder.metadata()),
    ) else {
        return Ok(None);
    };
    let dt = builder.schema().field(field).data_type().clone();
    let first: u64 = builder.metadata().row_groups()[..*group]
        .iter()
        .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
        .sum();
    let mask = ProjectionMask::leaves(builder.parquet_schema(), [leaf]);
    let rows = RowSelection::from(vec![
        RowSelector::skip((a - first) as usize),
        RowSelector::select((b - a) as usize),
    ]);
    let reader = builder
        .with_projection(mask)
        .with_row_groups(vec![*group])
        .with_row_selection(rows)
        .with_batch_size(SCAN_BLOCK)
        .build()
        .map_err(|e| pq_err(display, e))?;
    let block = SCAN_BLOCK as u64;
    let mut mins = vec![i64::MAX; (b - a).div_ceil(block) as usize];
    let mut row = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| ConnectorError::format(display, e.to_string()))?;
        for v in batch
            .columns()
            .iter()
            .flat_map(|c| column_values(c.as_ref()))
        {
            if let (Some(v), Some(m)) = (v, mins.get_mut((row / block) as usize)) {
                *m = (*m).min(to_ms(v, &dt));
            }
            row += 1;
        }
    }
    let mut blocks: Vec<(u64, i64)> = mins
        .iter()
        .enumerate()
        .map(|(k, m)| (((k as u64 + 1) * block).min(b - a), *m))
        .collect();
    suffix_minima(&mut blocks);
    Ok(Some(Piece {
        blocks,
        ..piece.clone()
    }))
}

/// The leaf column of the top-level `ts_ms` field, if any.
fn ts_leaf(meta: &parquet::file::metadata::ParquetMetaData) -> Option<usize> {
    meta.file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().parts().len() == 1 && c.name().eq_ignore_ascii_case("ts_ms"))
}

/// Makes each block's bound cover every later block too (suffix minima).
fn suffix_minima(blocks: &mut [(u64, i64)]) {
    for k in (0..blocks.len().saturating_sub(1)).rev() {
        blocks[k].1 = blocks[k].1.min(blocks[k + 1].1);
    }
}

/// The raw values of an integer or timestamp column (`None` for nulls; nothing for a
/// column of another type).
fn column_values(col: &dyn arrow_array::Array) -> Box<dyn Iterator<Item = Option<i64>> + '_> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
        TimestampNanosecondType, TimestampSecondType,
    };
    match col.data_type() {
        DataType::Int64 => Box::new(col.as_primitive::<Int64Type>().iter()),
        DataType::Int32 => Box::new(
            col.as_primitive::<Int32Type>()
                .iter()
                .map(|v| v.map(i64::from)),
        ),
        DataType::Timestamp(TimeUnit::Second, _) => {
            Box::new(col.as_primitive::<TimestampSecondType>().iter())
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Box::new(col.as_primitive::<TimestampMillisecondType>().iter())
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Box::new(col.as_primitive::<TimestampMicrosecondType>().iter())
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            Box::new(col.as_primitive::<TimestampNanosecondType>().iter())
        }
        _ => Box::new(std::iter::empty()),
    }
}

/// The least value of page `k` in a column index of integers.
fn page_min(ci: &ColumnIndexMetaData, k: usize) -> Option<i64> {
    if ci.is_null_page(k) {
        return None;
    }
    match ci {
        ColumnIndexMetaData::INT64(c) => c.min_value(k).copied(),
        ColumnIndexMetaData::INT32(c) => c.min_value(k).map(|v| i64::from(*v)),
        _ => None,
    }
}

/// The least event time (ms) in column statistics of type `dt`.
fn min_ts(stats: Option<&Statistics>, dt: &DataType) -> Option<i64> {
    let v = match stats? {
        Statistics::Int64(s) => *s.min_opt()?,
        Statistics::Int32(s) => i64::from(*s.min_opt()?),
        _ => return None,
    };
    Some(to_ms(v, dt))
}

/// A raw `ts_ms` value of type `dt` in milliseconds.
fn to_ms(v: i64, dt: &DataType) -> i64 {
    match dt {
        DataType::Timestamp(TimeUnit::Second, _) => v.saturating_mul(1000),
        DataType::Timestamp(TimeUnit::Millisecond, _) => v,
        DataType::Timestamp(TimeUnit::Microsecond, _) => v.div_euclid(1000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => v.div_euclid(1_000_000),
        _ => normalise_ts(v),
    }
}
