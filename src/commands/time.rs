//! Parsing `--from`/`--to` times: RFC 3339 or epoch milliseconds.

use crate::UsageError;

/// Epoch ms of `text` (RFC 3339, a date `YYYY-MM-DD`, or an integer of epoch ms).
pub fn parse_time(flag: &str, text: &str) -> Result<i64, UsageError> {
    if let Ok(ms) = text.trim().parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or(0));
    }
    Err(UsageError(format!(
        "{flag} `{text}`: expected RFC 3339 (2024-08-08T23:55:00Z) or epoch milliseconds"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        assert_eq!(
            parse_time("--from", "1723161600000").unwrap(),
            1_723_161_600_000
        );
        assert_eq!(
            parse_time("--from", "2024-08-09T00:00:00Z").unwrap(),
            1_723_161_600_000
        );
        assert_eq!(
            parse_time("--from", "2024-08-09").unwrap(),
            1_723_161_600_000
        );
        assert!(parse_time("--from", "yesterday").is_err());
    }
}
