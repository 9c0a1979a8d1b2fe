//! Planning Parquet files: one piece per row group, with row counts and the least
//! event time from the `ts_ms` column statistics; shared opening helpers.

use std::fs::File;
use std::path::Path;

use arrow_schema::{DataType, Schema, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::errors::ParquetError;
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

/// Opens the Parquet metadata of `path` (refusing `format = binance`).
pub(crate) fn open_builder(
    path: &Path,
    display: &str,
    opts: &DecodeOptions,
) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    if opts.format == FormatHint::Binance {
        return Err(ConnectorError::format(
            display,
            "Binance layouts are CSV, but this is a Parquet file",
        ));
    }
    let file = File::open(path).map_err(|e| ConnectorError::io(display, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| pq_err(display, e))
}

/// Index of the top-level field named `name` (case-insensitively).
pub(crate) fn field_index(schema: &Schema, names: &[&str]) -> Option<usize> {
    schema
        .fields()
        .iter()
        .position(|f| names.iter().any(|n| f.name().eq_ignore_ascii_case(n)))
}

/// One piece per row group, with its row count and least `ts_ms` from the statistics.
pub(crate) fn plan(path: &Path, display: &str, opts: &DecodeOptions) -> Result<Vec<Piece>> {
    let builder = open_builder(path, display, opts)?;
    let meta = builder.metadata();
    let ts_type = field_index(builder.schema(), &["ts_ms"])
        .map(|i| builder.schema().field(i).data_type().clone());
    let leaf = meta
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().parts().len() == 1 && c.name().eq_ignore_ascii_case("ts_ms"));
    let pieces = meta
        .row_groups()
        .iter()
        .enumerate()
        .map(|(i, rg)| Piece {
            row_groups: Some(vec![i]),
            rows: Some(u64::try_from(rg.num_rows()).unwrap_or(0)),
            min_ts: match (leaf, &ts_type) {
                (Some(j), Some(t)) if j < rg.num_columns() => min_ts(rg.column(j).statistics(), t),
                _ => None,
            },
        })
        .collect();
    Ok(pieces)
}

/// The least event time (ms) in column statistics of type `dt`.
fn min_ts(stats: Option<&Statistics>, dt: &DataType) -> Option<i64> {
    let v = match stats? {
        Statistics::Int64(s) => *s.min_opt()?,
        Statistics::Int32(s) => i64::from(*s.min_opt()?),
        _ => return None,
    };
    Some(match dt {
        DataType::Timestamp(TimeUnit::Second, _) => v.saturating_mul(1000),
        DataType::Timestamp(TimeUnit::Millisecond, _) => v,
        DataType::Timestamp(TimeUnit::Microsecond, _) => v.div_euclid(1000),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => v.div_euclid(1_000_000),
        _ => normalise_ts(v),
    })
}
