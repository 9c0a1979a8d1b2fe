//! Where a row goes in the lake: the time partition of its resolution ([`Span`]), the
//! partition's Hive directory, and the names of the files inside it ([`FileRange`]).
//!
//! Every partition has the same two keys, `dt` and `hour`, so that all resolutions of a
//! set read back as one Hive dataset in pyarrow, polars and DuckDB (they reject a
//! dataset whose files differ in partition keys). A daily or monthly partition has no
//! hour: its `hour` is Hive's null, `__HIVE_DEFAULT_PARTITION__`.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use operators::Resolution;

use crate::parquet::config::Partitioning;

/// One hour in ms.
pub const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Hive's spelling of a null partition value (read back as null by every reader).
pub const HIVE_NULL: &str = "__HIVE_DEFAULT_PARTITION__";

/// The file name of a partition written whole in one piece (hourly partitions).
pub const PART_FILE: &str = "part-00000.parquet";

/// The length of a time partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Span {
    /// `dt=YYYY-MM-DD/hour=HH`.
    Hour,
    /// `dt=YYYY-MM-DD/hour=<null>`.
    Day,
    /// `dt=YYYY-MM/hour=<null>` (calendar months, UTC).
    Month,
}

impl Partitioning {
    /// The partition span of `resolution_ms` bars.
    ///
    /// ```
    /// use connectors::parquet::{Partitioning, Span};
    /// assert_eq!(Partitioning::Auto.span(1_000), Span::Hour);
    /// assert_eq!(Partitioning::Auto.span(60_000), Span::Day);
    /// assert_eq!(Partitioning::Auto.span(300_000), Span::Month);
    /// assert_eq!(Partitioning::Hour.span(86_400_000), Span::Hour);
    /// ```
    pub fn span(self, resolution_ms: i64) -> Span {
        match self {
            Partitioning::Hour => Span::Hour,
            Partitioning::Day => Span::Day,
            Partitioning::Month => Span::Month,
            Partitioning::Auto if resolution_ms < 60_000 => Span::Hour,
            Partitioning::Auto if resolution_ms < 300_000 => Span::Day,
            Partitioning::Auto => Span::Month,
        }
    }
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn month_start(year: i32, month: u32) -> i64 {
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(0, |d| d.and_utc().timestamp_millis())
}

impl Span {
    /// The start of the partition holding `window_end`.
    pub fn start(self, window_end: i64) -> i64 {
        match self {
            Span::Hour => window_end.div_euclid(HOUR_MS) * HOUR_MS,
            Span::Day => window_end.div_euclid(DAY_MS) * DAY_MS,
            Span::Month => {
                let t = utc(window_end);
                month_start(t.year(), t.month())
            }
        }
    }

    /// The end of the partition starting at `start` (the next one's start).
    pub fn end(self, start: i64) -> i64 {
        match self {
            Span::Hour => start + HOUR_MS,
            Span::Day => start + DAY_MS,
            Span::Month => {
                let t = utc(start);
                match t.month() {
                    12 => month_start(t.year() + 1, 1),
                    m => month_start(t.year(), m + 1),
                }
            }
        }
    }

    /// The Hive directory of the partition of `set` and `resolution_ms` starting at
    /// `start`.
    ///
    /// ```
    /// use connectors::parquet::Span;
    /// let t = 1_723_165_200_000; // 2024-08-09 01:00 UTC
    /// assert_eq!(Span::Hour.dir("bars", 1_000, t), "bars/resolution=1s/dt=2024-08-09/hour=01");
    /// assert_eq!(
    ///     Span::Month.dir("risk", 86_400_000, Span::Month.start(t)),
    ///     "risk/resolution=1d/dt=2024-08/hour=__HIVE_DEFAULT_PARTITION__"
    /// );
    /// ```
    pub fn dir(self, set: &str, resolution_ms: i64, start: i64) -> String {
        let t = utc(start);
        let res = Resolution::from_ms(resolution_ms);
        let res = res.label();
        match self {
            Span::Hour => format!(
                "{set}/resolution={res}/dt={}/hour={}",
                t.format("%Y-%m-%d"),
                t.format("%H")
            ),
            Span::Day => format!(
                "{set}/resolution={res}/dt={}/hour={HIVE_NULL}",
                t.format("%Y-%m-%d")
            ),
            Span::Month => format!(
                "{set}/resolution={res}/dt={}/hour={HIVE_NULL}",
                t.format("%Y-%m")
            ),
        }
    }
}

impl Span {
    /// The span and start of the partition a lake path lies in, read from its `dt=`
    /// and `hour=` keys (the inverse of [`Span::dir`]); `None` without them.
    ///
    /// ```
    /// use connectors::parquet::Span;
    /// let p = "bars/resolution=1s/dt=2024-08-09/hour=01/part-00000.parquet";
    /// assert_eq!(Span::of_path(p), Some((Span::Hour, 1_723_165_200_000)));
    /// let p = "risk/resolution=1d/dt=2024-08/hour=__HIVE_DEFAULT_PARTITION__/x.parquet";
    /// assert_eq!(Span::of_path(p), Some((Span::Month, 1_722_470_400_000)));
    /// ```
    pub fn of_path(path: &str) -> Option<(Span, i64)> {
        let key = |k: &str| path.split('/').find_map(|seg| seg.strip_prefix(k));
        let dt = key("dt=")?;
        let midnight = |d: NaiveDate| Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
        if let Ok(day) = NaiveDate::parse_from_str(dt, "%Y-%m-%d") {
            let start = midnight(day)?;
            return Some(match key("hour=").and_then(|h| h.parse::<i64>().ok()) {
                Some(h) => (Span::Hour, start + h * HOUR_MS),
                None => (Span::Day, start),
            });
        }
        let first = NaiveDate::parse_from_str(&format!("{dt}-01"), "%Y-%m-%d").ok()?;
        Some((Span::Month, midnight(first)?))
    }
}

/// The window ends `first..=last` a file of a daily or monthly partition holds (those
/// of its first and last row); its name is `part-<first>-<last>.parquet` (UTC,
/// `YYYYMMDDTHHMMSS`), so that a rerun over the same rows writes the same name, and a
/// rerun replaces the rows of earlier files within its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileRange {
    /// The first window end (inclusive).
    pub first: i64,
    /// The last window end (inclusive).
    pub last: i64,
}

const NAME_TIME: &str = "%Y%m%dT%H%M%S";

impl FileRange {
    /// The file name of the range.
    ///
    /// ```
    /// use connectors::parquet::FileRange;
    /// let r = FileRange { first: 1_723_165_200_000, last: 1_723_165_260_000 };
    /// assert_eq!(r.file_name(), "part-20240809T010000-20240809T010100.parquet");
    /// assert_eq!(FileRange::parse(&r.file_name()), Some(r));
    /// ```
    pub fn file_name(&self) -> String {
        format!(
            "part-{}-{}.parquet",
            utc(self.first).format(NAME_TIME),
            utc(self.last).format(NAME_TIME)
        )
    }

    /// The range a file name stands for (to the second); `None` for a name not of this
    /// form.
    pub fn parse(name: &str) -> Option<FileRange> {
        let stem = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
        let (a, b) = stem.split_once('-')?;
        let t = |s: &str| {
            NaiveDateTime::parse_from_str(s, NAME_TIME)
                .ok()
                .map(|d| d.and_utc().timestamp_millis())
        };
        let range = FileRange {
            first: t(a)?,
            last: t(b)?,
        };
        (range.first <= range.last).then_some(range)
    }

    /// True when a window end in `[first, last]` (to the second) lies in this range.
    pub fn holds(&self, window_end: i64) -> bool {
        let second = window_end.div_euclid(1_000) * 1_000;
        self.first <= second && second <= self.last
    }

    /// True when the two ranges share a second.
    pub fn overlaps(&self, other: &FileRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_723_165_200_000; // 2024-08-09 01:00 UTC

    #[test]
    fn months_are_calendar_months() {
        let dec = 1_733_011_200_000; // 2024-12-01 00:00
        assert_eq!(Span::Month.start(dec + 5), dec);
        assert_eq!(Span::Month.end(dec), 1_735_689_600_000); // 2025-01-01
        assert_eq!(Span::Month.start(dec - 1), 1_730_419_200_000); // 2024-11-01
        assert_eq!(Span::Day.start(T), T - HOUR_MS);
        assert_eq!(Span::Day.end(T - HOUR_MS), T + 23 * HOUR_MS);
        // Before 1970 too.
        assert_eq!(Span::Hour.start(-1), -HOUR_MS);
        assert_eq!(Span::Month.start(-1), -DAY_MS * 31);
    }

    #[test]
    fn day_partitions_have_a_null_hour() {
        assert_eq!(
            Span::Day.dir("bars", 60_000, T),
            "bars/resolution=1m/dt=2024-08-09/hour=__HIVE_DEFAULT_PARTITION__"
        );
    }

    #[test]
    fn ranges_are_named_to_the_second() {
        let r = FileRange {
            first: T,
            last: T + 2 * DAY_MS + 1_500,
        };
        let back = FileRange::parse(&r.file_name()).unwrap();
        assert_eq!(back.first, T);
        assert_eq!(back.last, T + 2 * DAY_MS + 1_000);
        assert!(back.holds(r.last) && back.holds(T) && !back.holds(T - 1));
        let inner = FileRange {
            first: T + DAY_MS,
            last: T + DAY_MS,
        };
        assert!(r.overlaps(&inner) && inner.overlaps(&r));
        assert!(!inner.overlaps(&FileRange { first: T, last: T }));
        assert_eq!(FileRange::parse(PART_FILE), None);
        assert_eq!(
            FileRange::parse("part-20240809T050000-20240809T010000.parquet"),
            None
        );
    }
}
