//! Bar resolutions: parsing `1s`/`1m`/`5m` and flooring timestamps to window starts.

use serde::{Deserialize, Serialize};

use crate::duration::DurationMs;
use crate::OperatorError;

/// A bar size in milliseconds, with the label users wrote (`1s`, `1m`, `5m`).
///
/// ```
/// use operators::Resolution;
/// let r = Resolution::parse("5m").unwrap();
/// assert_eq!(r.ms, 300_000);
/// assert_eq!(r.window_start(1_000_123), 900_000);
/// assert_eq!(r.label(), "5m");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Resolution {
    /// The window length in milliseconds.
    pub ms: i64,
    label: String,
}

impl Resolution {
    /// Parses `<n><unit>` with unit `ms`, `s`, `m`, `h` or `d` (the config's
    /// [`DurationMs`] rule: a bare number is rejected).
    pub fn parse(text: &str) -> Result<Resolution, OperatorError> {
        let ms = DurationMs::parse(text)
            .ok()
            .map(|d| d.as_ms())
            .filter(|ms| *ms > 0)
            .ok_or_else(|| OperatorError::InvalidResolution(text.to_string()))?;
        Ok(Resolution::from_ms(ms))
    }

    /// A resolution of `ms` milliseconds, labelled in the largest whole unit.
    pub fn from_ms(ms: i64) -> Resolution {
        let label = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
        ]
        .iter()
        .find(|(unit, _)| ms % unit == 0)
        .map(|(unit, suffix)| format!("{}{}", ms / unit, suffix))
        .unwrap_or_else(|| format!("{ms}ms"));
        Resolution { ms, label }
    }

    /// The label used in output paths and topic names, e.g. `1m`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The start of the window holding `ts_ms` (floor division, also for negative times).
    #[inline]
    pub fn window_start(&self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.ms) * self.ms
    }
}

/// Parses a duration found in input data (a candle's resolution or interval column):
/// a bare integer is milliseconds, as the canonical candle columns hold them; anything
/// else follows [`DurationMs::parse`] (`250ms`, `2s`, `1m`, `1h`, `1d`). Configuration
/// and flags use [`DurationMs`], which rejects bare numbers.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    DurationMs::parse(text).ok().map(|d| d.as_ms())
}

/// Validates a set of resolutions: sorted, deduplicated, each a multiple of the finest.
pub fn validate(resolutions: &[Resolution]) -> Result<Vec<Resolution>, OperatorError> {
    let mut sorted = resolutions.to_vec();
    sorted.sort();
    sorted.dedup_by_key(|r| r.ms);
    let finest = sorted.first().ok_or(OperatorError::NoResolution)?.clone();
    for r in &sorted {
        if r.ms % finest.ms != 0 {
            return Err(OperatorError::NotAMultiple {
                finest: finest.label().to_string(),
                coarse: r.label().to_string(),
            });
        }
    }
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_rejects_garbage() {
        assert_eq!(parse_duration_ms("1s"), Some(1000));
        assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("60000"), Some(60_000));
        assert_eq!(parse_duration_ms("soon"), None);
        assert!(Resolution::parse("60000").is_err());
        assert!(Resolution::parse("0s").is_err());
        assert!(Resolution::parse("abc").is_err());
        assert!(Resolution::parse("5x").is_err());
        assert_eq!(Resolution::from_ms(90_000).label(), "90s");
    }

    #[test]
    fn validate_requires_multiples() {
        let rs: Vec<_> = ["5m", "1s", "1m"]
            .iter()
            .map(|s| Resolution::parse(s).unwrap())
            .collect();
        let v = validate(&rs).unwrap();
        assert_eq!(
            v.iter().map(|r| r.ms).collect::<Vec<_>>(),
            vec![1000, 60_000, 300_000]
        );
        let bad: Vec<_> = ["1m", "90s"]
            .iter()
            .map(|s| Resolution::parse(s).unwrap())
            .collect();
        assert!(validate(&bad).is_err());
        assert_eq!(validate(&[]), Err(OperatorError::NoResolution));
    }

    #[test]
    fn window_start_floors_negative_times() {
        let r = Resolution::from_ms(1000);
        assert_eq!(r.window_start(-1), -1000);
        assert_eq!(r.window_start(999), 0);
    }
}
