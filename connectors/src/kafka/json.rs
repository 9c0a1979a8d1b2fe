//! Feature rows as Kafka records: the row's Parquet columns as a JSON
//! object, plus `schema` and `revision`, timestamps as epoch ms, nulls as JSON null;
//! the key is the symbol, or `a|b` for a correlation pair.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use crate::parquet::FeatureRow;
use crate::Result;

/// One feature record ready to produce.
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaRecord {
    /// The resolution label (`1m`), for the topic name.
    pub resolution: String,
    /// The record key.
    pub key: String,
    /// The JSON value.
    pub value: String,
}

/// Encodes `rows` as Kafka records, each with its own [`FeatureRow::revision`].
///
/// ```
/// use connectors::kafka::rows_to_json;
/// use operators::comoments::CorrRow;
/// let row = CorrRow { resolution_ms: 60_000, window_end: 120_000, symbol_a: "A".into(),
///     symbol_b: "B".into(), corr: None, n: 60 };
/// let recs = rows_to_json(&[row]).unwrap();
/// assert_eq!(recs[0].key, "A|B");
/// assert_eq!(recs[0].resolution, "1m");
/// assert_eq!(recs[0].value, r#"{"resolution":"1m","window_end":120000,"symbol_a":"A","symbol_b":"B","corr":null,"n":60,"schema":"correlation.v1","revision":0}"#);
/// ```
pub fn rows_to_json<R: FeatureRow>(rows: &[R]) -> Result<Vec<KafkaRecord>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let refs: Vec<&R> = rows.iter().collect();
    let batch = R::to_batch(&refs)?;
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let mut value = String::with_capacity(256);
        value.push('{');
        for (c, field) in batch.schema().fields().iter().enumerate() {
            if c > 0 {
                value.push(',');
            }
            push_str(&mut value, field.name());
            value.push(':');
            push_cell(&mut value, batch.column(c).as_ref(), i);
        }
        value.push_str(",\"schema\":");
        push_str(&mut value, &format!("{}.v1", R::SET));
        value.push_str(&format!(",\"revision\":{}}}", row.revision()));
        out.push(KafkaRecord {
            resolution: text(&batch, "resolution", i).unwrap_or_default(),
            key: row_key(&batch, i),
            value,
        });
    }
    Ok(out)
}

/// The key of row `i`: `symbol`, or `symbol_a|symbol_b`.
pub fn row_key(batch: &RecordBatch, i: usize) -> String {
    match text(batch, "symbol", i) {
        Some(s) => s,
        None => format!(
            "{}|{}",
            text(batch, "symbol_a", i).unwrap_or_default(),
            text(batch, "symbol_b", i).unwrap_or_default()
        ),
    }
}

fn text(batch: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let col = batch.column_by_name(name)?;
    let s = col.as_string_opt::<i32>()?;
    s.is_valid(i).then(|| s.value(i).to_string())
}

fn push_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

fn push_cell(out: &mut String, col: &dyn Array, i: usize) {
    if col.is_null(i) {
        out.push_str("null");
        return;
    }
    match col.data_type() {
        DataType::Utf8 => push_str(out, col.as_string::<i32>().value(i)),
        DataType::Float64 => {
            let v = col.as_primitive::<Float64Type>().value(i);
            match serde_json::Number::from_f64(v) {
                Some(n) => out.push_str(&n.to_string()),
                None => out.push_str("null"),
            }
        }
        DataType::Int64 => out.push_str(&col.as_primitive::<Int64Type>().value(i).to_string()),
        DataType::Timestamp(..) => out.push_str(
            &col.as_primitive::<TimestampMillisecondType>()
                .value(i)
                .to_string(),
        ),
        DataType::Boolean => out.push_str(if col.as_boolean().value(i) {
            "true"
        } else {
            "false"
        }),
        other => push_str(out, &format!("unsupported {other}")),
    }
}
