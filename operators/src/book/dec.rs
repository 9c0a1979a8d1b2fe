//! `Dec`: an exchange's decimal text (a price or a quantity) as an exact scaled integer.

use serde::{Deserialize, Serialize};

/// Fractional digits kept: values are integers in units of 10^-12.
pub const DEC_DIGITS: u32 = 12;
/// 10^[`DEC_DIGITS`].
const UNIT: i128 = 1_000_000_000_000;

/// A decimal number held exactly as an integer count of 10^-12 units, so sums of
/// quantities and comparisons of prices never round; it is turned into `f64` once,
/// where a ratio is computed.
///
/// ```
/// use operators::book::Dec;
/// let p = Dec::parse("61837.63000000").unwrap();
/// assert_eq!(p, Dec::parse("61837.63").unwrap());
/// assert_eq!(p.to_f64(), 61837.63);
/// assert_eq!(Dec::parse("0.1").unwrap() + Dec::parse("0.2").unwrap(), Dec::parse("0.3").unwrap());
/// assert!(Dec::parse("1e5").is_none());
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Dec(pub i128);

impl Dec {
    /// Zero.
    pub const ZERO: Dec = Dec(0);

    /// Parses plain decimal text (`-12.345`, `0.00100000`, `7`): `None` for anything
    /// else (exponents, more than [`DEC_DIGITS`] significant fractional digits, or a
    /// magnitude above about 1.7e26).
    pub fn parse(text: &str) -> Option<Dec> {
        let t = text.trim();
        let (neg, t) = match t.as_bytes().first()? {
            b'-' => (true, &t[1..]),
            b'+' => (false, &t[1..]),
            _ => (false, t),
        };
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) => (i, f),
            None => (t, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !digits(frac) {
            return None;
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > DEC_DIGITS as usize {
            return None;
        }
        let mut v: i128 = 0;
        for b in int.bytes() {
            v = v.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        v = v.checked_mul(UNIT)?;
        let mut f: i128 = 0;
        for b in frac.bytes() {
            f = f * 10 + i128::from(b - b'0');
        }
        f *= 10i128.pow(DEC_DIGITS - frac.len() as u32);
        let v = v.checked_add(f)?;
        Some(Dec(if neg { -v } else { v }))
    }

    /// The value as the nearest `f64` (one rounding of the integer, one of the scale).
    #[inline]
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / UNIT as f64
    }

    /// True when the value is above zero.
    #[inline]
    pub fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl std::ops::Add for Dec {
    type Output = Dec;
    #[inline]
    fn add(self, rhs: Dec) -> Dec {
        Dec(self.0.saturating_add(rhs.0))
    }
}

impl std::ops::Sub for Dec {
    type Output = Dec;
    #[inline]
    fn sub(self, rhs: Dec) -> Dec {
        Dec(self.0.saturating_sub(rhs.0))
    }
}

impl std::iter::Sum for Dec {
    fn sum<I: Iterator<Item = Dec>>(iter: I) -> Dec {
        iter.fold(Dec::ZERO, |a, b| a + b)
    }
}

impl std::fmt::Display for Dec {
    /// The shortest decimal text of the exact value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        let (int, frac) = (a / UNIT as u128, a % UNIT as u128);
        if frac == 0 {
            return write!(f, "{sign}{int}");
        }
        let frac = format!("{frac:012}");
        write!(f, "{sign}{int}.{}", frac.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_exactly() {
        for (text, shown) in [
            ("0.00000000", "0"),
            ("56854.58000000", "56854.58"),
            ("-1.5", "-1.5"),
            (".5", "0.5"),
            ("3.", "3"),
            ("0.000000000001", "0.000000000001"),
        ] {
            assert_eq!(Dec::parse(text).unwrap().to_string(), shown, "{text}");
        }
        for bad in [
            "",
            "-",
            ".",
            "1e3",
            "1.0000000000001",
            "abc",
            "1.2.3",
            "NaN",
        ] {
            assert!(Dec::parse(bad).is_none(), "{bad}");
        }
    }
}
