//! A billing period: one calendar month, in the time zone of the Workspace billed.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: i32,
    month: u32,
}

impl Period {
    pub fn new(year: i32, month: u32) -> Option<Self> {
        NaiveDate::from_ymd_opt(year, month, 1).map(|_| Period { year, month })
    }

    /// The period that contains `date`.
    pub fn containing(date: NaiveDate) -> Self {
        Period {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    pub fn previous(self) -> Self {
        match self.month {
            1 => Period {
                year: self.year - 1,
                month: 12,
            },
            m => Period {
                year: self.year,
                month: m - 1,
            },
        }
    }

    /// The period that contains `instant` in `zone`.
    pub fn at(instant: DateTime<Utc>, zone: Tz) -> Self {
        Period::containing(instant.with_timezone(&zone).date_naive())
    }

    pub fn next(self) -> Self {
        match self.month {
            12 => Period {
                year: self.year + 1,
                month: 1,
            },
            m => Period {
                year: self.year,
                month: m + 1,
            },
        }
    }

    /// The instants the period spans in `zone`: [first midnight, next period's first midnight).
    pub fn bounds(self, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            local_midnight(self.first_day(), zone),
            local_midnight(self.next().first_day(), zone),
        )
    }
}

/// The first instant of `day` in `zone`. Where a DST change skips midnight, the day starts
/// when the clocks do (the first valid local time after it).
fn local_midnight(day: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let mut local = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        match zone.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.with_timezone(&Utc),
            LocalResult::None => local += chrono::Duration::minutes(30),
        }
    }
    Utc.from_utc_datetime(&local)
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Period {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not a billing period like 2026-11");
        let (year, month) = text.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let year = year.parse().map_err(|_| bad())?;
        let month = month.parse().map_err(|_| bad())?;
        Period::new(year, month).ok_or_else(bad)
    }
}

/// The UTC days an instant range touches, for pruning on `usage_date` (UTC days).
pub fn utc_days_covering(start: DateTime<Utc>, end: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let last = end - chrono::Duration::microseconds(1);
    (start.date_naive(), last.date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Period {
        text.parse().unwrap()
    }

    #[test]
    fn parses_and_prints_year_month() {
        assert_eq!(p("2026-11").to_string(), "2026-11");
        assert_eq!(p("2026-12").next(), p("2027-01"));
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-00"] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
    }

    #[test]
    fn utc_bounds_are_calendar_months() {
        let (start, end) = p("2026-11").bounds(Tz::UTC);
        assert_eq!(start.to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-12-01T00:00:00+00:00");
    }

    #[test]
    fn zoned_bounds_start_at_local_midnight() {
        // Berlin is UTC+1 in November and December.
        let (start, end) = p("2026-11").bounds(Tz::Europe__Berlin);
        assert_eq!(start.to_rfc3339(), "2026-10-31T23:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-11-30T23:00:00+00:00");
    }

    #[test]
    fn a_midnight_skipped_by_dst_starts_the_day_when_clocks_do() {
        // Santiago skips 00:00-01:00 local on the first Sunday of September (2026-09-06).
        let start = local_midnight(
            NaiveDate::from_ymd_opt(2026, 9, 6).unwrap(),
            Tz::America__Santiago,
        );
        assert_eq!(start.to_rfc3339(), "2026-09-06T04:00:00+00:00");
    }
}
