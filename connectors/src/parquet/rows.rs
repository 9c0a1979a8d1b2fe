//! `FeatureRow`: how a feature record maps to an Arrow schema, a partition and a sort
//! order; the `bars` schema; and Parquet encoding (zstd, statistics on).

use std::sync::Arc;

use arrow_array::builder::{
    Float64Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use operators::{Bar, FeatureSet, Resolution};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The key of a row: `group` (the symbol, or the pair), window end and `tail` (what
/// tells apart rows of one symbol and window, e.g. an alert's kind). Files are ordered
/// by window end, then group, then tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortKey<'a> {
    /// `(symbol, "")`, or `(symbol_a, symbol_b)` for pairs.
    pub group: (&'a str, &'a str),
    /// The window end.
    pub window_end: i64,
    /// The last tie-breaker (`""` when none).
    pub tail: &'a str,
}

impl<'a> SortKey<'a> {
    /// The key of a per-symbol row.
    pub fn symbol(symbol: &'a str, window_end: i64) -> SortKey<'a> {
        SortKey {
            group: (symbol, ""),
            window_end,
            tail: "",
        }
    }
}

/// A record of one feature set, as written to Parquet.
pub trait FeatureRow: Clone + Send + Serialize + DeserializeOwned + 'static {
    /// The feature set (the output directory and topic stem).
    const SET: FeatureSet;
    /// The bar resolution of this row, in ms.
    fn resolution_ms(&self) -> i64;
    /// The end of the row's window, epoch ms (partitions are by window end).
    fn window_end(&self) -> i64;
    /// The row's key (files are ordered by window end, then the rest of it); rows equal
    /// under it are revisions of one row.
    fn sort_key(&self) -> SortKey<'_>;
    /// Compares two rows by [`FeatureRow::sort_key`] (equal: revisions of one row).
    fn sort_cmp(a: &Self, b: &Self) -> std::cmp::Ordering {
        a.sort_key().cmp(&b.sort_key())
    }
    /// 0 when first emitted, then +1 for each restatement by late data.
    fn revision(&self) -> u32 {
        0
    }
    /// True for a row a restatement withdrew (an alert that no longer holds): sent on
    /// the topic with `"retracted": true`, left out of the lake.
    fn retracted(&self) -> bool {
        false
    }
    /// Rows per row group in a file of rows like this one: [`ROW_GROUP`], or fewer for
    /// rows so wide that a row group of that many would hold the writer's memory.
    ///
    /// [`ROW_GROUP`]: crate::parquet::ROW_GROUP
    fn row_group_rows(&self) -> usize {
        crate::parquet::ROW_GROUP
    }
    /// The Arrow schema of the set.
    fn schema() -> SchemaRef;
    /// Rows (by reference, in file order) as one Arrow batch of `schema()`.
    fn to_batch(rows: &[&Self]) -> std::result::Result<RecordBatch, ArrowError>;
}

/// A UTC millisecond timestamp field, nullable like every field of our sets.
pub(crate) fn ts_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        true,
    )
}

/// `n` columns of f64 named `names`.
pub(crate) fn f64_fields(names: &[&str]) -> Vec<Field> {
    names
        .iter()
        .map(|n| Field::new(*n, DataType::Float64, true))
        .collect()
}

pub(crate) fn ts_array(values: impl Iterator<Item = i64>) -> ArrayRef {
    let mut b = TimestampMillisecondBuilder::new().with_timezone("UTC");
    values.for_each(|v| b.append_value(v));
    Arc::new(b.finish())
}

pub(crate) fn f64_array(values: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    let mut b = Float64Builder::new();
    values.for_each(|v| b.append_option(v.filter(|x| x.is_finite())));
    Arc::new(b.finish())
}

/// The `resolution` column: one label per row, formatted once per run of equal values.
pub(crate) fn labels(res: impl Iterator<Item = i64>) -> ArrayRef {
    let mut b = StringBuilder::new();
    let mut last: Option<(i64, Resolution)> = None;
    for ms in res {
        if last.as_ref().is_none_or(|(m, _)| *m != ms) {
            last = Some((ms, Resolution::from_ms(ms)));
        }
        b.append_value(last.as_ref().map_or("", |(_, r)| r.label()));
    }
    Arc::new(b.finish())
}

pub(crate) fn str_array<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    let mut b = StringBuilder::new();
    values.for_each(|v| b.append_value(v));
    Arc::new(b.finish())
}

pub(crate) fn i64_array(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    let mut b = Int64Builder::new();
    values.for_each(|v| b.append_option(v));
    Arc::new(b.finish())
}

impl FeatureRow for Bar {
    const SET: FeatureSet = FeatureSet::Bars;

    fn revision(&self) -> u32 {
        self.revision
    }

    fn resolution_ms(&self) -> i64 {
        self.resolution_ms
    }

    fn window_end(&self) -> i64 {
        self.window_end
    }

    fn sort_key(&self) -> SortKey<'_> {
        SortKey::symbol(&self.symbol, self.window_end)
    }

    fn schema() -> SchemaRef {
        let mut fields = vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("resolution", DataType::Utf8, true),
            ts_field("window_start"),
            ts_field("window_end"),
        ];
        fields.extend(f64_fields(&[
            "open",
            "high",
            "low",
            "close",
            "volume",
            "quote_volume",
            "vwap",
        ]));
        fields.push(Field::new("trades", DataType::Int64, true));
        fields.extend(f64_fields(&["buy_volume", "sell_volume"]));
        Arc::new(Schema::new(fields))
    }

    fn to_batch(rows: &[&Self]) -> std::result::Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            str_array(rows.iter().map(|r| r.symbol.as_str())),
            labels(rows.iter().map(|r| r.resolution_ms)),
            ts_array(rows.iter().map(|r| r.window_start)),
            ts_array(rows.iter().map(|r| r.window_end)),
            f64_array(rows.iter().map(|r| Some(r.open))),
            f64_array(rows.iter().map(|r| Some(r.high))),
            f64_array(rows.iter().map(|r| Some(r.low))),
            f64_array(rows.iter().map(|r| Some(r.close))),
            f64_array(rows.iter().map(|r| Some(r.volume))),
            f64_array(rows.iter().map(|r| r.quote_volume)),
            f64_array(rows.iter().map(|r| r.vwap)),
            i64_array(rows.iter().map(|r| r.trades)),
            f64_array(rows.iter().map(|r| r.buy_volume)),
            f64_array(rows.iter().map(|r| r.sell_volume)),
        ];
        RecordBatch::try_new(Self::schema(), columns)
    }
}

/// The writer settings of every lake file of `R`: zstd, statistics on, row groups of
/// [`ROW_GROUP`](crate::parquet::ROW_GROUP) rows, dictionary pages for the string
/// columns only (symbols repeat; prices and statistics are mostly distinct, where a
/// dictionary is work thrown away).
pub(crate) fn writer_properties<R: FeatureRow>() -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by("marketflow".to_string())
        .set_max_row_group_row_count(Some(crate::parquet::ROW_GROUP))
        .set_dictionary_enabled(false);
    for field in R::schema().fields() {
        if matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8) {
            props =
                props.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), true);
        }
    }
    props.build()
}
