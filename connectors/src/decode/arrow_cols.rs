//! Whole-column conversions of Arrow arrays (from Parquet) into plain vectors of
//! cells, string column access, and JSON rendering of single cells for rejects.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, LargeStringArray, PrimitiveArray, StringArray,
    StringViewArray,
};
use arrow_buffer::ArrowNativeType;
use arrow_schema::{DataType, TimeUnit};

use super::fields::{normalise_ts, parse_bool, parse_i64};

/// One converted value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Cell<T> {
    /// Null.
    Null,
    /// A value.
    Val(T),
    /// Present but not convertible (e.g. a string that is not a number).
    Bad,
}

/// A column conversion: fills `out` with one cell per row, or says why the type is
/// not supported.
pub(crate) type Convert<T> = fn(&dyn Array, &mut Vec<Cell<T>>) -> Result<(), String>;

/// Read access to a string column (Utf8, LargeUtf8, Utf8View, or a dictionary of them).
pub(crate) enum StrCol<'a> {
    /// Utf8.
    Utf8(&'a StringArray),
    /// LargeUtf8.
    Large(&'a LargeStringArray),
    /// Utf8View.
    View(&'a StringViewArray),
    /// Dictionary: key of each row, and the string values.
    Dict(Vec<Option<usize>>, Box<StrCol<'a>>),
}

impl<'a> StrCol<'a> {
    /// Views `arr` as strings; None if it is not a string column.
    pub fn new(arr: &'a dyn Array) -> Option<StrCol<'a>> {
        if let Some(a) = arr.as_string_opt::<i32>() {
            Some(StrCol::Utf8(a))
        } else if let Some(a) = arr.as_string_opt::<i64>() {
            Some(StrCol::Large(a))
        } else if let Some(a) = arr.as_string_view_opt() {
            Some(StrCol::View(a))
        } else {
            let (keys, values) = dict_parts(arr)?;
            match StrCol::new(values.as_ref())? {
                StrCol::Dict(..) => None,
                inner => Some(StrCol::Dict(keys, Box::new(inner))),
            }
        }
    }

    /// The string of row `i` (None when null or out of range).
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            StrCol::Utf8(a) => (i < a.len() && a.is_valid(i)).then(|| a.value(i)),
            StrCol::Large(a) => (i < a.len() && a.is_valid(i)).then(|| a.value(i)),
            StrCol::View(a) => (i < a.len() && a.is_valid(i)).then(|| a.value(i)),
            StrCol::Dict(keys, values) => values.get(keys.get(i).copied().flatten()?),
        }
    }

    /// For a dictionary column: the value index of each row and the number of values.
    pub fn dict_keys(&self) -> Option<(&[Option<usize>], usize)> {
        match self {
            StrCol::Dict(keys, values) => Some((keys, values.len())),
            _ => None,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            StrCol::Utf8(a) => a.len(),
            StrCol::Large(a) => a.len(),
            StrCol::View(a) => a.len(),
            StrCol::Dict(keys, _) => keys.len(),
        }
    }
}

/// The keys (as indices) and values of a dictionary array.
fn dict_parts(arr: &dyn Array) -> Option<(Vec<Option<usize>>, &ArrayRef)> {
    macro_rules! try_key {
        ($($k:ty),*) => {$(
            if let Some(d) = arr.as_dictionary_opt::<$k>() {
                let keys = d.keys().iter().map(|k| k.and_then(|k| k.to_usize())).collect();
                return Some((keys, d.values()));
            }
        )*};
    }
    try_key!(
        Int32Type, UInt32Type, Int8Type, Int16Type, Int64Type, UInt8Type, UInt16Type, UInt64Type
    );
    None
}

/// Converts `arr` with `convert`, looking through a dictionary encoding.
pub(crate) fn convert<T: Copy>(
    arr: &dyn Array,
    out: &mut Vec<Cell<T>>,
    convert: Convert<T>,
) -> Result<(), String> {
    if let Some((keys, values)) = dict_parts(arr) {
        let mut dict = Vec::new();
        convert(values.as_ref(), &mut dict)?;
        out.clear();
        out.extend(
            keys.iter()
                .map(|k| k.and_then(|k| dict.get(k).copied()).unwrap_or(Cell::Null)),
        );
        return Ok(());
    }
    convert(arr, out)
}

/// Maps a primitive array through `f`.
#[inline]
fn prim<P: ArrowPrimitiveType, T>(
    arr: &dyn Array,
    out: &mut Vec<Cell<T>>,
    f: impl Fn(P::Native) -> Cell<T>,
) -> bool {
    let Some(a) = arr.as_primitive_opt::<P>() else {
        return false;
    };
    out.clear();
    out.reserve(a.len());
    if a.null_count() == 0 {
        out.extend(a.values().iter().map(|&v| f(v)));
    } else {
        out.extend(a.iter().map(|v| v.map_or(Cell::Null, &f)));
    }
    true
}

/// Maps a string array through `f`.
fn strings<T>(arr: &dyn Array, out: &mut Vec<Cell<T>>, f: impl Fn(&str) -> Cell<T>) -> bool {
    let Some(s) = StrCol::new(arr) else {
        return false;
    };
    out.clear();
    out.extend((0..s.len()).map(|i| s.get(i).map_or(Cell::Null, &f)));
    true
}

/// A cell from an optional conversion result.
#[inline]
fn cell<T>(v: Option<T>) -> Cell<T> {
    v.map_or(Cell::Bad, Cell::Val)
}

fn unsupported(arr: &dyn Array) -> Result<(), String> {
    Err(format!("has unsupported type {}", arr.data_type()))
}

/// Event times in ms: Int64 (unit by magnitude), Timestamp(s/ms/µs/ns), UInt64, or
/// integer strings.
pub(crate) fn ts_cells(arr: &dyn Array, out: &mut Vec<Cell<i64>>) -> Result<(), String> {
    let ok = match arr.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            prim::<TimestampSecondType, _>(arr, out, |v| cell(v.checked_mul(1000)))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            prim::<TimestampMillisecondType, _>(arr, out, Cell::Val)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            prim::<TimestampMicrosecondType, _>(arr, out, |v| Cell::Val(v.div_euclid(1000)))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            prim::<TimestampNanosecondType, _>(arr, out, |v| Cell::Val(v.div_euclid(1_000_000)))
        }
        DataType::Int64 => prim::<Int64Type, _>(arr, out, |v| Cell::Val(normalise_ts(v))),
        DataType::UInt64 => {
            prim::<UInt64Type, _>(arr, out, |v| cell(i64::try_from(v).ok().map(normalise_ts)))
        }
        _ => strings(arr, out, |s| {
            cell(parse_i64(s.trim().as_bytes()).map(normalise_ts))
        }),
    };
    if ok {
        Ok(())
    } else {
        unsupported(arr)
    }
}

/// Integers: any integer type, or integer strings.
pub(crate) fn int_cells(arr: &dyn Array, out: &mut Vec<Cell<i64>>) -> Result<(), String> {
    let ok = prim::<Int64Type, _>(arr, out, Cell::Val)
        || prim::<Int32Type, _>(arr, out, |v| Cell::Val(i64::from(v)))
        || prim::<Int16Type, _>(arr, out, |v| Cell::Val(i64::from(v)))
        || prim::<Int8Type, _>(arr, out, |v| Cell::Val(i64::from(v)))
        || prim::<UInt64Type, _>(arr, out, |v| cell(i64::try_from(v).ok()))
        || prim::<UInt32Type, _>(arr, out, |v| Cell::Val(i64::from(v)))
        || prim::<UInt16Type, _>(arr, out, |v| Cell::Val(i64::from(v)))
        || prim::<UInt8Type, _>(arr, out, |v| Cell::Val(i64::from(v)))
        || strings(arr, out, |s| cell(parse_i64(s.trim().as_bytes())));
    if ok {
        Ok(())
    } else {
        unsupported(arr)
    }
}

/// Numbers: floats, integers, decimals, or decimal strings.
pub(crate) fn f64_cells(arr: &dyn Array, out: &mut Vec<Cell<f64>>) -> Result<(), String> {
    let ok = match arr.data_type() {
        DataType::Decimal128(_, scale) => {
            let div = 10f64.powi(i32::from(*scale));
            prim::<Decimal128Type, _>(arr, out, |v| Cell::Val(v as f64 / div))
        }
        DataType::Null => {
            out.clear();
            out.resize(arr.len(), Cell::Null);
            true
        }
        _ => {
            prim::<Float64Type, _>(arr, out, Cell::Val)
                || prim::<Float32Type, _>(arr, out, |v| Cell::Val(f64::from(v)))
                || prim::<Int64Type, _>(arr, out, |v| Cell::Val(v as f64))
                || prim::<Int32Type, _>(arr, out, |v| Cell::Val(f64::from(v)))
                || prim::<UInt64Type, _>(arr, out, |v| Cell::Val(v as f64))
                || prim::<UInt32Type, _>(arr, out, |v| Cell::Val(f64::from(v)))
                || strings(arr, out, |s| cell(s.trim().parse::<f64>().ok()))
        }
    };
    if ok {
        Ok(())
    } else {
        unsupported(arr)
    }
}

/// Booleans: Boolean, integers 0/1, or `true`/`False`/... strings.
pub(crate) fn bool_cells(arr: &dyn Array, out: &mut Vec<Cell<bool>>) -> Result<(), String> {
    if let Some(b) = arr.as_boolean_opt() {
        out.clear();
        out.extend(b.iter().map(|v| v.map_or(Cell::Null, Cell::Val)));
        return Ok(());
    }
    if strings(arr, out, |s| cell(parse_bool(s.trim().as_bytes()))) {
        return Ok(());
    }
    let mut ints = Vec::new();
    int_cells(arr, &mut ints)?;
    out.clear();
    out.extend(ints.iter().map(|c| match c {
        Cell::Val(0) => Cell::Val(false),
        Cell::Val(1) => Cell::Val(true),
        Cell::Null => Cell::Null,
        _ => Cell::Bad,
    }));
    Ok(())
}

/// Candle resolutions in ms: integers (ms) or duration strings such as `1m`.
pub(crate) fn resolution_cells(arr: &dyn Array, out: &mut Vec<Cell<i64>>) -> Result<(), String> {
    let dur = |s: &str| match operators::resolution::parse_duration_ms(s) {
        Some(ms) if ms > 0 => Cell::Val(ms),
        _ => Cell::Bad,
    };
    if strings(arr, out, dur) {
        return Ok(());
    }
    int_cells(arr, out)?;
    for c in out.iter_mut() {
        if matches!(c, Cell::Val(v) if *v <= 0) {
            *c = Cell::Bad;
        }
    }
    Ok(())
}

/// Renders row `i` of `arr` as JSON (for the raw text of a reject).
pub(crate) fn cell_json(arr: &dyn Array, i: usize) -> serde_json::Value {
    use serde_json::Value;
    if i >= arr.len() || arr.is_null(i) {
        return Value::Null;
    }
    if let Some(s) = StrCol::new(arr) {
        return s
            .get(i)
            .map_or(Value::Null, |s| Value::String(s.to_string()));
    }
    if let Some((keys, values)) = dict_parts(arr) {
        return keys
            .get(i)
            .copied()
            .flatten()
            .map_or(Value::Null, |k| cell_json(values.as_ref(), k));
    }
    if let Some(b) = arr.as_boolean_opt() {
        return Value::Bool(b.value(i));
    }
    fn num<P: ArrowPrimitiveType>(arr: &dyn Array, i: usize) -> Option<String>
    where
        P::Native: std::fmt::Display,
    {
        let a: &PrimitiveArray<P> = arr.as_primitive_opt::<P>()?;
        Some(a.value(i).to_string())
    }
    let text = num::<Int64Type>(arr, i)
        .or_else(|| num::<Int32Type>(arr, i))
        .or_else(|| num::<Int16Type>(arr, i))
        .or_else(|| num::<Int8Type>(arr, i))
        .or_else(|| num::<UInt64Type>(arr, i))
        .or_else(|| num::<UInt32Type>(arr, i))
        .or_else(|| num::<UInt16Type>(arr, i))
        .or_else(|| num::<UInt8Type>(arr, i))
        .or_else(|| num::<Float64Type>(arr, i))
        .or_else(|| num::<Float32Type>(arr, i))
        .or_else(|| num::<TimestampSecondType>(arr, i))
        .or_else(|| num::<TimestampMillisecondType>(arr, i))
        .or_else(|| num::<TimestampMicrosecondType>(arr, i))
        .or_else(|| num::<TimestampNanosecondType>(arr, i));
    if let Some(t) = text {
        return serde_json::from_str::<serde_json::Number>(&t)
            .map_or(Value::String(t), Value::Number);
    }
    let mut one = Vec::new();
    if f64_cells(arr.slice(i, 1).as_ref(), &mut one).is_ok() {
        if let Some(Cell::Val(v)) = one.first() {
            return Value::String(v.to_string());
        }
    }
    Value::String(format!("<{}>", arr.data_type()))
}
