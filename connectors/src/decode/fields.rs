//! Byte-level field helpers shared by the decoders: number, boolean and timestamp
//! parsing, price and quantity checks, file-name symbols.

use operators::{Reject, RejectReason};

/// Parses a decimal integer with an optional sign.
#[inline]
pub(crate) fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let (neg, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(d))?;
    }
    Some(if neg { -v } else { v })
}

/// Converts an epoch timestamp of unknown unit to milliseconds by its magnitude:
/// above 1e17 nanoseconds, above 1e14 microseconds, otherwise milliseconds.
#[inline]
pub(crate) fn normalise_ts(v: i64) -> i64 {
    if v > 100_000_000_000_000_000 {
        v.div_euclid(1_000_000)
    } else if v > 100_000_000_000_000 {
        v.div_euclid(1_000)
    } else {
        v
    }
}

/// Parses an integer timestamp and normalises it to milliseconds.
#[inline]
pub(crate) fn parse_ts(bytes: &[u8]) -> Option<i64> {
    parse_i64(bytes).map(normalise_ts)
}

/// Parses a decimal number (`str::parse::<f64>`); may return NaN or infinities.
#[inline]
pub(crate) fn parse_f64(bytes: &[u8]) -> Option<f64> {
    match fast_decimal(bytes) {
        Some(v) => Some(v),
        None => std::str::from_utf8(bytes).ok()?.parse().ok(),
    }
}

/// Exact powers of ten representable in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Clinger's fast path for plain decimals (`-123.456`): when the digits fit in 2^53
/// and there are at most 22 after the point, `mantissa / 10^k` is correctly rounded,
/// so the result equals `str::parse`. None: use the general parser.
#[inline]
fn fast_decimal(bytes: &[u8]) -> Option<f64> {
    let (neg, rest) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut frac: Option<usize> = None;
    for (i, &b) in rest.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                if digits >= 19 {
                    return None;
                }
                mantissa = mantissa * 10 + u64::from(b - b'0');
                if mantissa != 0 {
                    digits += 1;
                }
            }
            b'.' if frac.is_none() => frac = Some(i),
            _ => return None,
        }
    }
    let scale = match frac {
        Some(at) => rest.len() - at - 1,
        None => 0,
    };
    if rest.len() == usize::from(frac.is_some()) || mantissa > (1u64 << 53) || scale >= POW10.len()
    {
        return None;
    }
    let v = mantissa as f64 / POW10[scale];
    Some(if neg { -v } else { v })
}

/// Parses `true/false/True/False/TRUE/FALSE/1/0`.
#[inline]
pub(crate) fn parse_bool(bytes: &[u8]) -> Option<bool> {
    match bytes {
        b"true" | b"True" | b"TRUE" | b"1" => Some(true),
        b"false" | b"False" | b"FALSE" | b"0" => Some(false),
        _ => None,
    }
}

/// True when `bytes` reads as a number (used to tell a header line from data).
pub(crate) fn looks_numeric(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(b'0'..=b'9' | b'-' | b'+' | b'.')) && parse_f64(bytes).is_some()
}

/// Checks a price or quantity field: present, numeric, finite and positive.
/// On failure returns the detail naming `name`.
#[inline]
pub(crate) fn positive(bytes: &[u8], name: &str) -> Result<f64, String> {
    match parse_f64(bytes) {
        Some(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ if bytes.is_empty() => Err(format!("{name} is missing")),
        _ => Err(format!(
            "{name} `{}` is not a positive finite number",
            lossy(bytes)
        )),
    }
}

/// Checks an already parsed price or quantity (None = missing or not a number).
#[inline]
pub(crate) fn positive_value(v: Option<f64>, name: &str) -> Result<f64, String> {
    match v {
        Some(v) if v.is_finite() && v > 0.0 => Ok(v),
        Some(v) => Err(format!("{name} {v} is not a positive finite number")),
        None => Err(format!("{name} is missing or not a number")),
    }
}

/// Checks a volume: finite and not negative (zero-volume candles exist).
#[inline]
pub(crate) fn volume_value(v: Option<f64>, name: &str) -> Result<f64, String> {
    match v {
        Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Some(v) => Err(format!("{name} {v} is not a finite non-negative number")),
        None => Err(format!("{name} is missing or not a number")),
    }
}

/// Lossy UTF-8 of a field, for messages.
pub(crate) fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Normalises a header name for matching: lowercase, without `_`, blanks and quotes.
pub(crate) fn norm_name(name: &[u8]) -> String {
    name.iter()
        .filter(|b| !matches!(b, b'_' | b' ' | b'"' | b'\t'))
        .map(|b| b.to_ascii_lowercase() as char)
        .collect()
}

/// Builds a reject.
pub(crate) fn reject(
    reason: RejectReason,
    source: &str,
    position: u64,
    seq: u64,
    detail: String,
    raw: &[u8],
) -> Reject {
    Reject {
        reason,
        source: source.to_string(),
        position,
        seq,
        detail,
        raw: String::from_utf8_lossy(raw).into_owned(),
    }
}

/// The symbol of a Binance dump file name such as `BTCUSDT-trades-2024-08-08.csv.gz`,
/// `BTCUSDT-aggTrades-2024-08.csv` or `BTCUSDT-1m-2024-08-08.csv`: the text before the
/// first `-`, if it is non-empty and only ASCII letters, digits and `_`. Any directory
/// part of `name` is ignored.
///
/// ```
/// use connectors::decode::symbol_from_file_name;
/// assert_eq!(symbol_from_file_name("BTCUSDT-trades-2024-08-08.csv.gz").as_deref(), Some("BTCUSDT"));
/// assert_eq!(symbol_from_file_name("data/ETHUSDT-1m-2024-08-08.csv").as_deref(), Some("ETHUSDT"));
/// assert_eq!(symbol_from_file_name("trades.csv"), None);
/// ```
pub fn symbol_from_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let (symbol, _) = base.split_once('-')?;
    let ok = !symbol.is_empty()
        && symbol
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| symbol.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_fields_numbers_bools_and_timestamps() {
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"99999999999999999999"), None);
        assert_eq!(parse_i64(b"1.5"), None);
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_ts(b"1723161255342"), Some(1_723_161_255_342));
        assert_eq!(parse_ts(b"1735689600123456"), Some(1_735_689_600_123));
        assert_eq!(parse_ts(b"1735689600123456789"), Some(1_735_689_600_123));
        for t in [&b"true"[..], b"True", b"TRUE", b"1"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in [&b"false"[..], b"False", b"FALSE", b"0"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool(b"yes"), None);
        for text in [
            "61837.63",
            "0.00000638",
            "-1.5",
            "+2",
            "007.250",
            "1.",
            ".5",
            "9007199254740993",
            "1e5",
            "0.1234567890123456789",
            "123456789.123456789",
        ] {
            assert_eq!(
                parse_f64(text.as_bytes()),
                text.parse::<f64>().ok(),
                "{text}"
            );
        }
        assert_eq!(parse_f64(b"."), None);
        assert_eq!(parse_f64(b"1.2.3"), None);
        assert!(positive(b"0", "price").is_err());
        assert!(positive(b"NaN", "price").is_err());
        assert!(positive(b"inf", "price").is_err());
        assert!(positive(b"", "price").unwrap_err().contains("missing"));
        assert_eq!(positive(b"61837.63", "price"), Ok(61837.63));
        assert!(looks_numeric(b"12.5") && !looks_numeric(b"price") && !looks_numeric(b"inf"));
        assert_eq!(norm_name(b"Is_Buyer_Maker"), "isbuyermaker");
    }

    #[test]
    fn decode_fields_symbol_from_file_name() {
        assert_eq!(
            symbol_from_file_name("BTCUSDT-aggTrades-2024-08.csv").as_deref(),
            Some("BTCUSDT")
        );
        assert_eq!(
            symbol_from_file_name("/x/1000PEPE_USDT-1m-2024.csv").as_deref(),
            Some("1000PEPE_USDT")
        );
        assert_eq!(symbol_from_file_name("-trades.csv"), None);
        assert_eq!(symbol_from_file_name("BTC.USDT-trades.csv"), None);
    }
}
