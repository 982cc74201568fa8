use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

/// An instant in UTC, to the millisecond: the precision of the wire format and of every
/// ownership boundary.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct UtcMillis(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("'{0}' is not an RFC 3339 timestamp")]
    Malformed(String),
    #[error("'{0}' is finer than a millisecond")]
    SubMillisecond(String),
}

const MILLIS_PER_DAY: i64 = 86_400_000;

impl UtcMillis {
    pub const fn from_millis(ms: i64) -> Self {
        UtcMillis(ms)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    pub fn micros(self) -> i64 {
        self.0 * 1000
    }

    /// Days since 1970-01-01 of this instant's UTC date (Arrow's Date32).
    pub fn utc_days(self) -> i32 {
        self.0.div_euclid(MILLIS_PER_DAY) as i32
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }

    pub fn now() -> Self {
        UtcMillis(Utc::now().timestamp_millis())
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`. Hand-written because it runs
    /// twice per usage record; the property test below holds it to chrono's parser.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimestampError> {
        let malformed = || TimestampError::Malformed(text.to_owned());
        let b = text.as_bytes();
        if b.len() < 20 {
            return Err(malformed());
        }
        let num = |range: std::ops::Range<usize>| -> Option<u32> {
            let mut v = 0u32;
            for &c in b.get(range)? {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + u32::from(c - b'0');
            }
            Some(v)
        };
        let sep_ok = b[4] == b'-'
            && b[7] == b'-'
            && matches!(b[10], b'T' | b't' | b' ')
            && b[13] == b':'
            && b[16] == b':';
        if !sep_ok {
            return Err(malformed());
        }
        let (year, month, day) = (num(0..4), num(5..7), num(8..10));
        let (hour, minute, second) = (num(11..13), num(14..16), num(17..19));
        let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) =
            (year, month, day, hour, minute, second)
        else {
            return Err(malformed());
        };
        // RFC 3339 allows a leap second (`:60`) in the last minute of an hour (the minute
        // before a UTC midnight, wherever the offset puts it); it is taken as the instant
        // after `:59`, the first of the next minute.
        if hour > 23 || minute > 59 || second > 60 || (second == 60 && minute != 59) {
            return Err(malformed());
        }
        let date = NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(malformed)?;

        let mut pos = 19;
        let mut millis = 0u32;
        if b[pos] == b'.' {
            let start = pos + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            if end == start {
                return Err(malformed());
            }
            let fraction = &b[start..end];
            for i in 0..3 {
                millis = millis * 10 + fraction.get(i).map_or(0, |c| u32::from(c - b'0'));
            }
            if fraction.iter().skip(3).any(|&c| c != b'0') {
                return Err(TimestampError::SubMillisecond(text.to_owned()));
            }
            pos = end;
        }
        let offset_seconds: i64 = match &b[pos..] {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                let (Some(oh), Some(om)) = (num(pos + 1..pos + 3), num(pos + 4..pos + 6)) else {
                    return Err(malformed());
                };
                if oh > 23 || om > 59 {
                    return Err(malformed());
                }
                let magnitude = i64::from(oh * 3600 + om * 60);
                if *sign == b'-' {
                    -magnitude
                } else {
                    magnitude
                }
            }
            _ => return Err(malformed()),
        };
        let days = i64::from(date.num_days_from_ce()) - i64::from(EPOCH_DAYS_FROM_CE);
        let local_seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
        Ok(UtcMillis(
            (local_seconds - offset_seconds) * 1000 + i64::from(millis),
        ))
    }
}

/// `NaiveDate::from_ymd(1970, 1, 1).num_days_from_ce()`.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

use chrono::Datelike;

impl fmt::Display for UtcMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            self.to_datetime()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_utc_and_offsets() {
        let a = UtcMillis::parse_rfc3339("2026-11-04T03:27:07.716Z").unwrap();
        let b = UtcMillis::parse_rfc3339("2026-11-04T04:27:07.716+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2026-11-04T03:27:07.716Z");
        assert_eq!(
            UtcMillis::parse_rfc3339("1970-01-01T00:00:00Z")
                .unwrap()
                .millis(),
            0
        );
    }

    #[test]
    fn a_leap_second_is_the_next_instant() {
        let leap = UtcMillis::parse_rfc3339("2016-12-31T23:59:60Z").unwrap();
        let next = UtcMillis::parse_rfc3339("2017-01-01T00:00:00Z").unwrap();
        assert_eq!(leap, next);
        let leap = UtcMillis::parse_rfc3339("2016-12-31T23:59:60.250Z").unwrap();
        assert_eq!(leap.millis(), next.millis() + 250);
        let offset = UtcMillis::parse_rfc3339("2017-01-01T00:59:60+01:00").unwrap();
        assert_eq!(offset, next);
        assert!(UtcMillis::parse_rfc3339("2016-12-31T23:58:60Z").is_err());
        assert!(UtcMillis::parse_rfc3339("2016-12-31T23:59:61Z").is_err());
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-01T24:00:00Z",
            "2026-11-01T00:00:00",
            "2026-11-01T00:00:00.Z",
            "2026-11-01T00:00:00+0100",
        ] {
            assert!(UtcMillis::parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            UtcMillis::parse_rfc3339("2026-11-01T00:00:00.0001Z"),
            Err(TimestampError::SubMillisecond(_))
        ));
    }

    proptest! {
        #[test]
        fn agrees_with_chrono(ms in -2_000_000_000_000i64..8_000_000_000_000i64, offset_min in -1439i32..1439) {
            let offset = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
            let dt = DateTime::from_timestamp_millis(ms).unwrap().with_timezone(&offset);
            let text = dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            prop_assert_eq!(UtcMillis::parse_rfc3339(&text).unwrap().millis(), ms);
            prop_assert_eq!(UtcMillis::from_millis(ms).utc_days(),
                dt.with_timezone(&Utc).date_naive().signed_duration_since(NaiveDate::from_ymd_opt(1970,1,1).unwrap()).num_days() as i32);
        }
    }
}
