//! `FeatureRow` for the rolling feature sets: `indicators`, `correlation`, `beta`,
//! `alerts` and `risk` (columns as listed in the README's "Output" section).

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use operators::comoments::{BetaRow, CorrMatrix, CorrRow};
use operators::indicators::{AlertRow, IndicatorRow};
use operators::risk::RiskRow;
use operators::FeatureSet;

use crate::parquet::rows::{
    f64_array, f64_fields, i64_array, labels, str_array, ts_array, ts_field,
};
use crate::parquet::{FeatureRow, SortKey, ROW_GROUP};

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

impl FeatureRow for IndicatorRow {
    const SET: FeatureSet = FeatureSet::Indicators;

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
    const SET: FeatureSet = FeatureSet::Correlation;

    fn revision(&self) -> u32 {
        self.revision
    }

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

/// The matrix layout: one row per (resolution, window end), the symbols and the upper
/// triangle as list columns.
impl FeatureRow for CorrMatrix {
    const SET: FeatureSet = FeatureSet::Correlation;

    fn revision(&self) -> u32 {
        self.revision
    }

    /// About [`ROW_GROUP`] x 8 correlations a row group (4 MB of values), at least 16
    /// rows: 26 rows of 200 symbols' 19,900 pairs instead of 65,536 (1.3 GB).
    fn row_group_rows(&self) -> usize {
        (ROW_GROUP * 8 / self.corr.len().max(1)).clamp(16, ROW_GROUP)
    }

    fn resolution_ms(&self) -> i64 {
        self.resolution_ms
    }

    fn window_end(&self) -> i64 {
        self.window_end
    }

    fn sort_key(&self) -> SortKey<'_> {
        SortKey {
            group: ("", ""),
            window_end: self.window_end,
            tail: "",
        }
    }

    fn schema() -> SchemaRef {
        let item = |t: DataType| Arc::new(Field::new("item", t, true));
        Arc::new(Schema::new(vec![
            utf8("resolution"),
            ts_field("window_end"),
            Field::new("symbols", DataType::List(item(DataType::Utf8)), true),
            Field::new("corr", DataType::List(item(DataType::Float64)), true),
            Field::new("n", DataType::Int64, true),
        ]))
    }

    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, ArrowError> {
        use arrow_array::builder::{Float64Builder, ListBuilder, StringBuilder};
        let mut symbols = ListBuilder::new(StringBuilder::new());
        let mut corr = ListBuilder::new(Float64Builder::new());
        for r in rows {
            for s in &r.symbols {
                symbols.values().append_value(&**s);
            }
            symbols.append(true);
            for c in &r.corr {
                corr.values().append_option(c.filter(|x| x.is_finite()));
            }
            corr.append(true);
        }
        let columns: Vec<ArrayRef> = vec![
            labels(rows.iter().map(|r| r.resolution_ms)),
            ts_array(rows.iter().map(|r| r.window_end)),
            Arc::new(symbols.finish()),
            Arc::new(corr.finish()),
            i64_array(rows.iter().map(|r| Some(r.n))),
        ];
        RecordBatch::try_new(Self::schema(), columns)
    }
}

impl FeatureRow for BetaRow {
    const SET: FeatureSet = FeatureSet::Beta;

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
    const SET: FeatureSet = FeatureSet::Alerts;

    fn revision(&self) -> u32 {
        self.revision
    }

    fn retracted(&self) -> bool {
        self.retracted
    }

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

impl FeatureRow for RiskRow {
    const SET: FeatureSet = FeatureSet::Risk;

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
        let mut fields = vec![utf8("symbol"), utf8("resolution"), ts_field("window_end")];
        fields.extend(f64_fields(&[
            "close",
            "ret",
            "var_95",
            "cvar_95",
            "sharpe",
            "sortino",
            "drawdown",
            "max_drawdown",
            "atr_14",
            "sma_50",
            "sma_200",
        ]));
        fields.push(utf8("trend"));
        fields.extend(f64_fields(&["volume_ma_20", "volume_ratio"]));
        Arc::new(Schema::new(fields))
    }

    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, ArrowError> {
        let f = |get: fn(&RiskRow) -> Option<f64>| f64_array(rows.iter().map(|r| get(r)));
        let trend: ArrayRef = Arc::new(
            rows.iter()
                .map(|r| r.trend.map(|t| t.as_str()))
                .collect::<arrow_array::StringArray>(),
        );
        let columns: Vec<ArrayRef> = vec![
            str_array(rows.iter().map(|r| r.symbol.as_str())),
            labels(rows.iter().map(|r| r.resolution_ms)),
            ts_array(rows.iter().map(|r| r.window_end)),
            f(|r| Some(r.close)),
            f(|r| Some(r.ret)),
            f(|r| r.var_95),
            f(|r| r.cvar_95),
            f(|r| r.sharpe),
            f(|r| r.sortino),
            f(|r| Some(r.drawdown)),
            f(|r| Some(r.max_drawdown)),
            f(|r| r.atr_14),
            f(|r| r.sma_50),
            f(|r| r.sma_200),
            trend,
            f(|r| r.volume_ma_20),
            f(|r| r.volume_ratio),
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
            revision: 0,
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
            revision: 0,
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
            revision: 0,
        };
        assert_eq!(BetaRow::to_batch(&[&beta]).unwrap().num_columns(), 8);
        let alert = AlertRow {
            symbol: "A".into(),
            resolution_ms: 1_000,
            window_end: 1_000,
            kind: "zscore".into(),
            value: 4.0,
            threshold: 3.0,
            revision: 0,
            retracted: false,
        };
        assert_eq!(AlertRow::to_batch(&[&alert]).unwrap().num_columns(), 6);
        let risk = RiskRow {
            symbol: "A".into(),
            resolution_ms: 86_400_000,
            window_end: 86_400_000,
            close: 1.0,
            ret: 0.0,
            var_95: Some(0.01),
            cvar_95: Some(0.02),
            sharpe: None,
            sortino: None,
            drawdown: 0.0,
            max_drawdown: -0.1,
            atr_14: None,
            sma_50: None,
            sma_200: None,
            trend: Some(operators::risk::Trend::Up),
            volume_ma_20: Some(2.0),
            volume_ratio: Some(0.5),
            revision: 0,
        };
        let b = RiskRow::to_batch(&[&risk]).unwrap();
        assert_eq!(b.num_columns(), 17);
        assert_eq!(
            b.column(14)
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .unwrap()
                .value(0),
            "up"
        );
    }
}
