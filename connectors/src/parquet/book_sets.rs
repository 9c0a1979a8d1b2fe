//! `FeatureRow` for the order-book sets `book` and `quotes` (columns as listed in the
//! README's "Order books" section).

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use operators::book::{BookRow, QuoteRow};
use operators::FeatureSet;

use crate::parquet::rows::{
    f64_array, f64_fields, i64_array, labels, str_array, ts_array, ts_field,
};
use crate::parquet::{FeatureRow, SortKey};

/// The leading columns of both sets: symbol, resolution, window_end.
fn key_fields() -> Vec<Field> {
    vec![
        Field::new("symbol", DataType::Utf8, true),
        Field::new("resolution", DataType::Utf8, true),
        ts_field("window_end"),
    ]
}

/// The book set's f64 columns, in order.
const BOOK_VALUES: [&str; 16] = [
    "bid_px",
    "bid_qty",
    "ask_px",
    "ask_qty",
    "mid",
    "spread",
    "spread_bps",
    "microprice",
    "imbalance_1",
    "imbalance_5",
    "imbalance_10",
    "depth_bid_10bps",
    "depth_ask_10bps",
    "tw_spread_bps",
    "ofi",
    "updates",
];

/// The quotes set's f64 columns, in order.
const QUOTE_VALUES: [&str; 10] = [
    "bid_px",
    "bid_qty",
    "ask_px",
    "ask_qty",
    "mid",
    "spread_bps",
    "microprice",
    "imbalance_1",
    "tw_spread_bps",
    "updates",
];

/// The schema of a set: key fields, f64 values, and `updates` as int64 last.
fn schema_of(values: &[&str]) -> SchemaRef {
    let mut fields = key_fields();
    let (floats, last) = values.split_at(values.len() - 1);
    fields.extend(f64_fields(floats));
    fields.push(Field::new(last[0], DataType::Int64, true));
    Arc::new(Schema::new(fields))
}

impl FeatureRow for BookRow {
    const SET: FeatureSet = FeatureSet::Book;

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
        schema_of(&BOOK_VALUES)
    }

    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, ArrowError> {
        let f = |get: fn(&BookRow) -> Option<f64>| f64_array(rows.iter().map(|r| get(r)));
        let columns: Vec<ArrayRef> = vec![
            str_array(rows.iter().map(|r| r.symbol.as_str())),
            labels(rows.iter().map(|r| r.resolution_ms)),
            ts_array(rows.iter().map(|r| r.window_end)),
            f(|r| Some(r.bid_px)),
            f(|r| Some(r.bid_qty)),
            f(|r| Some(r.ask_px)),
            f(|r| Some(r.ask_qty)),
            f(|r| Some(r.mid)),
            f(|r| Some(r.spread)),
            f(|r| Some(r.spread_bps)),
            f(|r| Some(r.microprice)),
            f(|r| Some(r.imbalance_1)),
            f(|r| Some(r.imbalance_5)),
            f(|r| Some(r.imbalance_10)),
            f(|r| Some(r.depth_bid_10bps)),
            f(|r| Some(r.depth_ask_10bps)),
            f(|r| r.tw_spread_bps),
            f(|r| r.ofi),
            i64_array(rows.iter().map(|r| Some(r.updates))),
        ];
        RecordBatch::try_new(Self::schema(), columns)
    }
}

impl FeatureRow for QuoteRow {
    const SET: FeatureSet = FeatureSet::Quotes;

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
        schema_of(&QUOTE_VALUES)
    }

    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, ArrowError> {
        let f = |get: fn(&QuoteRow) -> Option<f64>| f64_array(rows.iter().map(|r| get(r)));
        let columns: Vec<ArrayRef> = vec![
            str_array(rows.iter().map(|r| r.symbol.as_str())),
            labels(rows.iter().map(|r| r.resolution_ms)),
            ts_array(rows.iter().map(|r| r.window_end)),
            f(|r| Some(r.bid_px)),
            f(|r| Some(r.bid_qty)),
            f(|r| Some(r.ask_px)),
            f(|r| Some(r.ask_qty)),
            f(|r| Some(r.mid)),
            f(|r| Some(r.spread_bps)),
            f(|r| Some(r.microprice)),
            f(|r| Some(r.imbalance_1)),
            f(|r| r.tw_spread_bps),
            i64_array(rows.iter().map(|r| Some(r.updates))),
        ];
        RecordBatch::try_new(Self::schema(), columns)
    }
}
