//! `FeatureRow` for the rolling feature sets: `indicators`, `correlation`, `beta` and
//! `alerts`.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use operators::comoments::{BetaRow, CorrRow};
use operators::indicators::{AlertRow, IndicatorRow};

use crate::parquet::rows::{
    f64_array, f64_fields, i64_array, labels, str_array, ts_array, ts_field,
};
use crate::parquet::{FeatureRow, SortKey};

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

impl FeatureRow for IndicatorRow {
    const SET: &'static str = "indicators";

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
        let mut fields = vec![utf8("symbol"), utf8("resolution"), ts_field("window_end")];
        fields.extend(f64_fields(&[
            "close",
            "ret",
            "sma_20",
            "ema_12",
            "ema_26",
            "macd",
            "macd_signal",
            "rsi_14",
            "bb_mid",
            "bb_upper",
            "bb_lower",
            "realized_vol",
            "zscore",
        ]));
        Arc::new(Schema::new(fields))
    }

    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, ArrowError> {
        let res = labels(rows.iter().map(|r| r.resolution_ms));
        let f = |get: fn(&IndicatorRow) -> Option<f64>| f64_array(rows.iter().map(|r| get(r)));
        let columns: Vec<ArrayRef> = vec![
            str_array(rows.iter().map(|r| r.symbol.as_str())),
            res,
            ts_array(rows.iter().map(|r| r.window_end)),
            f(|r| Some(r.close)),
            f(|r| r.ret),
            f(|r| r.sma_20),
            f(|r| r.ema_12),
            f(|r| r.ema_26),
            f(|r| r.macd),
            f(|r| r.macd_signal),
            f(|r| r.rsi_14),
            f(|r| r.bb_mid),
            f(|r| r.bb_upper),
            f(|r| r.bb_lower),
            f(|r| r.realized_vol),
            f(|r| r.zscore),
        ];
        RecordBatch::try_new(Self::schema(), columns)
    }
}

impl FeatureRow for CorrRow {
    const SET: &'static str = "correlation";

    fn resolution_ms(&self) -> i64 {
        self.resolution_ms
    }

    fn window_end(&self) -> i64 {
        self.window_end
    }

    /// Pairs have no single symbol: files are sorted by (symbol_a, symbol_b, window_end).
    fn sort_key(&self) -> SortKey<'_> {
        SortKey {
            group: (&self.symbol_a, &self.symbol_b),
            window_end: self.window_end,
            tail: "",
        }
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            utf8("resolution"),
            ts_field("window_end"),
            utf8("symbol_a"),
            utf8("symbol_b"),
            Field::new("corr", DataType::Float64, true),
            Field::new("n", DataType::Int64, true),
        ]))
    }

    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, ArrowError> {
        let res = labels(rows.iter().map(|r| r.resolution_ms));
        let columns: Vec<ArrayRef> = vec![
            res,
            ts_array(rows.iter().map(|r| r.window_end)),
            str_array(rows.iter().map(|r| &*r.symbol_a)),
            str_array(rows.iter().map(|r| &*r.symbol_b)),
            f64_array(rows.iter().map(|r| r.corr)),
            i64_array(rows.iter().map(|r| Some(r.n))),
        ];
        RecordBatch::try_new(Self::schema(), columns)
    }
}

impl FeatureRow for BetaRow {
    const SET: &'static str = "beta";

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
            utf8("symbol"),
            utf8("benchmark"),
            utf8("resolution"),
            ts_field("window_end"),
        ];
        fields.extend(f64_fields(&["beta", "alpha", "r2"]));
        fields.push(Field::new("n", DataType::Int64, true));
        Arc::new(Schema::new(fields))
    }

    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, ArrowError> {
        let res = labels(rows.iter().map(|r| r.resolution_ms));
        let columns: Vec<ArrayRef> = vec![
            str_array(rows.iter().map(|r| &*r.symbol)),
            str_array(rows.iter().map(|r| &*r.benchmark)),
            res,
            ts_array(rows.iter().map(|r| r.window_end)),
            f64_array(rows.iter().map(|r| r.beta)),
            f64_array(rows.iter().map(|r| r.alpha)),
            f64_array(rows.iter().map(|r| r.r2)),
            i64_array(rows.iter().map(|r| Some(r.n))),
        ];
        RecordBatch::try_new(Self::schema(), columns)
    }
}

impl FeatureRow for AlertRow {
    const SET: &'static str = "alerts";

    fn resolution_ms(&self) -> i64 {
        self.resolution_ms
    }

    fn window_end(&self) -> i64 {
        self.window_end
    }

    fn sort_key(&self) -> SortKey<'_> {
        SortKey {
            group: (&self.symbol, ""),
            window_end: self.window_end,
            tail: &self.kind,
        }
    }

    fn schema() -> SchemaRef {
        let mut fields = vec![
            utf8("symbol"),
            utf8("resolution"),
            ts_field("window_end"),
            utf8("kind"),
        ];
        fields.extend(f64_fields(&["value", "threshold"]));
        Arc::new(Schema::new(fields))
    }

    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, ArrowError> {
        let res = labels(rows.iter().map(|r| r.resolution_ms));
        let columns: Vec<ArrayRef> = vec![
            str_array(rows.iter().map(|r| r.symbol.as_str())),
            res,
            ts_array(rows.iter().map(|r| r.window_end)),
            str_array(rows.iter().map(|r| r.kind.as_str())),
            f64_array(rows.iter().map(|r| Some(r.value))),
            f64_array(rows.iter().map(|r| Some(r.threshold))),
        ];
        RecordBatch::try_new(Self::schema(), columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_set_builds_a_batch_of_its_schema() {
        let ind = IndicatorRow {
            symbol: "BTCUSDT".into(),
            resolution_ms: 60_000,
            window_end: 60_000,
            close: 1.0,
            ret: None,
            sma_20: Some(1.0),
            ema_12: None,
            ema_26: None,
            macd: None,
            macd_signal: None,
            rsi_14: None,
            bb_mid: None,
            bb_upper: None,
            bb_lower: None,
            realized_vol: None,
            zscore: Some(f64::NAN),
        };
        let b = IndicatorRow::to_batch(&[&ind]).unwrap();
        assert_eq!(b.num_columns(), 16);
        assert_eq!(b.column(15).null_count(), 1, "NaN is written as null");
        let corr = CorrRow {
            resolution_ms: 1_000,
            window_end: 1_000,
            symbol_a: "A".into(),
            symbol_b: "B".into(),
            corr: None,
            n: 60,
        };
        assert_eq!(CorrRow::to_batch(&[&corr]).unwrap().num_columns(), 6);
        let beta = BetaRow {
            symbol: "A".into(),
            benchmark: "B".into(),
            resolution_ms: 1_000,
            window_end: 1_000,
            beta: Some(1.0),
            alpha: Some(0.0),
            r2: Some(1.0),
            n: 60,
        };
        assert_eq!(BetaRow::to_batch(&[&beta]).unwrap().num_columns(), 8);
        let alert = AlertRow {
            symbol: "A".into(),
            resolution_ms: 1_000,
            window_end: 1_000,
            kind: "zscore".into(),
            value: 4.0,
            threshold: 3.0,
        };
        assert_eq!(AlertRow::to_batch(&[&alert]).unwrap().num_columns(), 6);
    }
}
