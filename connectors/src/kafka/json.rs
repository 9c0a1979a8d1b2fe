//! Feature rows as Kafka records: the row's Parquet columns as a JSON
//! object, plus `schema` and `revision`, timestamps as epoch ms, nulls as JSON null;
//! the key is the symbol, or `a|b` for a correlation pair (the resolution for a
//! correlation matrix); a record above [`MAX_RECORD_BYTES`] is sent in parts.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use crate::parquet::FeatureRow;
use crate::Result;

/// One feature record ready to produce.
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaRecord {
    /// The index of the row it encodes (a row too large for one message is sent as
    /// several records of the same row).
    pub row: usize,
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
///     symbol_b: "B".into(), corr: None, n: 60, revision: 0 };
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
        let retracted = if row.retracted() {
            ",\"retracted\":true"
        } else {
            ""
        };
        let tail = format!(
            ",\"schema\":\"{}.v1\",\"revision\":{}{retracted}}}",
            R::SET,
            row.revision()
        );
        let resolution = text(&batch, "resolution", i).unwrap_or_default();
        let key = row_key(&batch, i);
        let mut push = |value: String| {
            out.push(KafkaRecord {
                row: i,
                resolution: resolution.clone(),
                key: key.clone(),
                value,
            })
        };
        let value = encode(&batch, i, None) + &tail;
        let Some(list) = split_list(&batch, i, value.len()) else {
            push(value);
            continue;
        };
        // A record above the size limit (a wide correlation matrix): its list goes out
        // in parts, each with the offset of its first item.
        let parts = list.len.div_ceil(list.per_part);
        for p in 0..parts {
            let from = p * list.per_part;
            let slice = (from, (from + list.per_part).min(list.len));
            let extra = format!(
                ",\"{}_offset\":{from},\"part\":{p},\"parts\":{parts}",
                list.name
            );
            push(encode(&batch, i, Some((list.column, slice))) + &extra + &tail);
        }
    }
    Ok(out)
}

/// The largest JSON value sent as one record (the brokers' default
/// `message.max.bytes` is 1 MB).
pub const MAX_RECORD_BYTES: usize = 900_000;

/// The list column a record too large for one message is split along.
struct ListSplit {
    name: String,
    column: usize,
    len: usize,
    per_part: usize,
}

fn split_list(batch: &RecordBatch, i: usize, size: usize) -> Option<ListSplit> {
    if size <= MAX_RECORD_BYTES {
        return None;
    }
    // The longest list column of the row.
    let (column, len) = batch
        .columns()
        .iter()
        .enumerate()
        .filter_map(|(c, col)| {
            let list = col.as_list_opt::<i32>()?;
            (!list.is_null(i)).then(|| (c, list.value_length(i) as usize))
        })
        .max_by_key(|(_, len)| *len)?;
    let parts = size.div_ceil(MAX_RECORD_BYTES * 3 / 4).max(2);
    Some(ListSplit {
        name: batch.schema().field(column).name().clone(),
        column,
        len,
        per_part: len.div_ceil(parts).max(1),
    })
}

/// Row `i` as a JSON object without its closing brace; with `slice`, only the items
/// `[from, to)` of that list column.
fn encode(batch: &RecordBatch, i: usize, slice: Option<(usize, (usize, usize))>) -> String {
    let mut value = String::with_capacity(256);
    value.push('{');
    for (c, field) in batch.schema().fields().iter().enumerate() {
        if c > 0 {
            value.push(',');
        }
        push_str(&mut value, field.name());
        value.push(':');
        match slice {
            Some((column, (from, to))) if column == c => {
                let items = batch.column(c).as_list::<i32>().value(i);
                push_items(&mut value, items.as_ref(), from..to);
            }
            _ => push_cell(&mut value, batch.column(c).as_ref(), i),
        }
    }
    value
}

fn push_items(out: &mut String, items: &dyn Array, range: std::ops::Range<usize>) {
    out.push('[');
    for (n, j) in range.enumerate() {
        if n > 0 {
            out.push(',');
        }
        push_cell(out, items, j);
    }
    out.push(']');
}

/// The key of row `i`: `symbol`, or `symbol_a|symbol_b`, or (a correlation matrix)
/// the resolution.
pub fn row_key(batch: &RecordBatch, i: usize) -> String {
    match text(batch, "symbol", i) {
        Some(s) => s,
        None if batch.column_by_name("symbol_a").is_none() => {
            text(batch, "resolution", i).unwrap_or_default()
        }
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
        DataType::List(_) => {
            let items = col.as_list::<i32>().value(i);
            push_items(out, items.as_ref(), 0..items.len());
        }
        other => push_str(out, &format!("unsupported {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use operators::comoments::CorrMatrix;

    fn matrix(k: usize) -> CorrMatrix {
        let symbols: Vec<operators::Symbol> = (0..k).map(|i| format!("S{i:04}").into()).collect();
        let corr = (0..k * (k - 1) / 2)
            .map(|i| (i % 11 != 0).then(|| (i as f64).sin()))
            .collect();
        CorrMatrix {
            resolution_ms: 1_000,
            window_end: 5_000,
            symbols,
            corr,
            n: 60,
            revision: 0,
        }
    }

    #[test]
    fn a_small_matrix_is_one_record_keyed_by_resolution() {
        let recs = rows_to_json(&[matrix(3)]).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].key, "1s");
        let v: serde_json::Value = serde_json::from_str(&recs[0].value).unwrap();
        assert_eq!(v["symbols"], serde_json::json!(["S0000", "S0001", "S0002"]));
        assert_eq!(v["corr"][0], serde_json::Value::Null);
        assert_eq!(v["corr"].as_array().unwrap().len(), 3);
        assert_eq!(v["schema"], "correlation.v1");
    }

    #[test]
    fn a_wide_matrix_is_split_into_parts_that_fit_a_message() {
        let m = matrix(500);
        let recs = rows_to_json(std::slice::from_ref(&m)).unwrap();
        assert!(recs.len() >= 3, "{} parts", recs.len());
        assert!(recs.iter().all(|r| r.row == 0));
        let mut corr = Vec::new();
        for (p, r) in recs.iter().enumerate() {
            assert!(r.value.len() <= MAX_RECORD_BYTES, "{} bytes", r.value.len());
            let v: serde_json::Value = serde_json::from_str(&r.value).unwrap();
            assert_eq!(v["part"], p);
            assert_eq!(v["parts"], recs.len());
            assert_eq!(v["corr_offset"], corr.len());
            assert_eq!(v["symbols"].as_array().unwrap().len(), 500);
            corr.extend(v["corr"].as_array().unwrap().iter().map(|c| c.as_f64()));
        }
        assert_eq!(corr.len(), m.corr.len());
        // serde_json's default parser may land one ulp off the shortest decimal it
        // reads (Python's json does not): equal within 2 ulps, nulls alike.
        let near = |a: &Option<f64>, b: &Option<f64>| match (a, b) {
            (Some(x), Some(y)) => (x - y).abs() <= 2.0 * f64::EPSILON * y.abs(),
            _ => a == b,
        };
        let first_diff = corr.iter().zip(&m.corr).position(|(a, b)| !near(a, b));
        assert_eq!(
            first_diff,
            None,
            "{:?}",
            first_diff.map(|i| (corr[i], m.corr[i]))
        );
    }
}
