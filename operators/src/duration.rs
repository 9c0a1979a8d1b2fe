//! The one duration type of the configuration and the command line: `<number><unit>`
//! with unit `ms`, `s`, `m` (or `min`), `h` or `d`; a bare number is rejected.
//!
//! A bare number used to mean milliseconds in the config and seconds in
//! `MARKETFLOW_CONNECT_TIMEOUT`; it now has no meaning and the error says which unit
//! to add. Data columns keep their own rule (see [`crate::resolution::parse_duration_ms`]).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use thiserror::Error;

/// Why a text is not a [`DurationMs`].
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DurationError {
    /// A number without a unit, such as `30`.
    #[error("`{0}` has no unit: write {0}ms, {0}s, {0}m, {0}h or {0}d")]
    NoUnit(String),
    /// Not a number followed by a unit.
    #[error("`{0}` is not a duration (like 500ms, 2s, 1m)")]
    Invalid(String),
    /// A fraction finer than a millisecond (`1.0005s`) or a value too large.
    #[error("`{0}` is not a whole number of milliseconds below 2^63")]
    OutOfRange(String),
}

/// A non-negative duration in whole milliseconds, keeping the text it was written as
/// (for messages; equality compares the milliseconds only).
///
/// ```
/// use operators::duration::DurationMs;
/// assert_eq!(DurationMs::parse("1.5s").unwrap().as_ms(), 1500);
/// assert_eq!(DurationMs::parse("2h").unwrap().as_ms(), 7_200_000);
/// assert!(DurationMs::parse("30").is_err());
/// ```
#[derive(Clone, Debug)]
pub struct DurationMs {
    ms: i64,
    text: String,
}

impl DurationMs {
    /// Parses `<number><unit>`: a decimal number (`2`, `1.5`), optional spaces, and a
    /// unit `ms`, `s`, `m`, `min`, `h` or `d`.
    pub fn parse(text: &str) -> Result<DurationMs, DurationError> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() || (number.contains('.') && fraction.is_empty()) {
            return Err(DurationError::Invalid(text.to_string()));
        }
        if fraction.contains('.') {
            return Err(DurationError::Invalid(text.to_string()));
        }
        let factor: i128 = match unit.trim() {
            "" => return Err(DurationError::NoUnit(t.to_string())),
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(DurationError::Invalid(text.to_string())),
        };
        let out_of_range = || DurationError::OutOfRange(text.to_string());
        let digits: i128 = format!("{whole}{fraction}")
            .parse()
            .map_err(|_| out_of_range())?;
        let scale = 10i128
            .checked_pow(fraction.len() as u32)
            .ok_or_else(out_of_range)?;
        let scaled = digits.checked_mul(factor).ok_or_else(out_of_range)?;
        if scaled % scale != 0 {
            return Err(out_of_range());
        }
        let ms = i64::try_from(scaled / scale).map_err(|_| out_of_range())?;
        Ok(DurationMs {
            ms,
            text: t.to_string(),
        })
    }

    /// A duration of `ms` milliseconds (negative values count as zero), written in
    /// the largest unit that divides it (`90s`, `2h`).
    pub fn from_ms(ms: i64) -> DurationMs {
        let ms = ms.max(0);
        let text = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
        ]
        .iter()
        .find(|(unit, _)| ms > 0 && ms % unit == 0)
        .map(|(unit, suffix)| format!("{}{}", ms / unit, suffix))
        .unwrap_or_else(|| format!("{ms}ms"));
        DurationMs { ms, text }
    }

    /// Whole milliseconds.
    pub fn as_ms(&self) -> i64 {
        self.ms
    }

    /// As a `std::time::Duration`.
    pub fn as_std(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ms as u64)
    }

    /// The text it was written as (trimmed).
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl PartialEq for DurationMs {
    fn eq(&self, other: &Self) -> bool {
        self.ms == other.ms
    }
}

impl Eq for DurationMs {}

impl fmt::Display for DurationMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for DurationMs {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DurationMs::parse(s)
    }
}

impl<'de> Deserialize<'de> for DurationMs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = DurationMs;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"500ms\", \"2s\" or \"1m\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationMs, E> {
                DurationMs::parse(v).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationMs, E> {
                Err(E::custom(DurationError::NoUnit(v.to_string())))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationMs, E> {
                Err(E::custom(DurationError::NoUnit(v.to_string())))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationMs, E> {
                Err(E::custom(DurationError::NoUnit(v.to_string())))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Result<i64, DurationError> {
        DurationMs::parse(text).map(|d| d.as_ms())
    }

    #[test]
    fn parses_every_unit_and_fractions() {
        assert_eq!(ms("250ms"), Ok(250));
        assert_eq!(ms("2s"), Ok(2_000));
        assert_eq!(ms("1m"), Ok(60_000));
        assert_eq!(ms("1min"), Ok(60_000));
        assert_eq!(ms("1h"), Ok(3_600_000));
        assert_eq!(ms("1d"), Ok(86_400_000));
        assert_eq!(ms(" 10 s "), Ok(10_000));
        assert_eq!(ms("1.5s"), Ok(1_500));
        assert_eq!(ms("0.25m"), Ok(15_000));
        assert_eq!(ms("0s"), Ok(0));
    }

    #[test]
    fn rejects_bare_numbers_with_the_fix() {
        assert_eq!(ms("30"), Err(DurationError::NoUnit("30".into())));
        let text = DurationError::NoUnit("30".into()).to_string();
        assert!(text.contains("30s") && text.contains("30ms"), "{text}");
    }

    #[test]
    fn rejects_garbage_and_out_of_range() {
        for bad in ["", "soon", "5x", "s", "-1s", "1..5s", "1.s", ".5s", "1s2"] {
            assert!(
                matches!(ms(bad), Err(DurationError::Invalid(_))),
                "{bad}: {:?}",
                ms(bad)
            );
        }
        assert!(matches!(ms("1.0005s"), Err(DurationError::OutOfRange(_))));
        assert!(matches!(
            ms("99999999999999999999d"),
            Err(DurationError::OutOfRange(_))
        ));
    }

    #[test]
    fn keeps_the_text_for_messages() {
        let d = DurationMs::parse(" 90m").unwrap();
        assert_eq!(d.to_string(), "90m");
        assert_eq!(d.as_std(), std::time::Duration::from_secs(5_400));
        assert_eq!(DurationMs::from_ms(-5).as_ms(), 0);
        assert_eq!(DurationMs::from_ms(90_000).to_string(), "90s");
        assert_eq!(DurationMs::from_ms(0).to_string(), "0ms");
        assert_eq!(
            DurationMs::parse("60s").unwrap(),
            DurationMs::from_ms(60_000)
        );
    }

    #[derive(Debug, Deserialize)]
    struct Section {
        interval: DurationMs,
    }

    #[test]
    fn deserializes_from_strings_only() {
        let s: Section = toml::from_str("interval = \"5s\"").unwrap();
        assert_eq!(s.interval.as_ms(), 5_000);
        let e = toml::from_str::<Section>("interval = 5").unwrap_err();
        assert!(e.to_string().contains("has no unit"), "{e}");
        let e = toml::from_str::<Section>("interval = \"often\"").unwrap_err();
        assert!(e.to_string().contains("`often` is not a duration"), "{e}");
    }
}
