//! Time as the protocol sees it: passed in by the caller, and coarsened before
//! it goes anywhere an observer could read it.

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch, supplied by the caller (the protocol crate
/// never reads a clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// Hours since the epoch: the resolution of creation times inside sealed
    /// envelopes and of arrival times at the relay.
    pub fn hours(self) -> u32 {
        u32::try_from(self.0 / 3600).unwrap_or(u32::MAX)
    }

    /// Days since the epoch: the resolution of relay receipts.
    pub fn days(self) -> u32 {
        u32::try_from(self.0 / 86_400).unwrap_or(u32::MAX)
    }

    /// The start of an hour number.
    pub fn from_hours(hours: u32) -> Self {
        UnixTime(u64::from(hours) * 3600)
    }

    /// The start of a day number.
    pub fn from_days(days: u32) -> Self {
        UnixTime(u64::from(days) * 86_400)
    }
}

/// Days since the epoch of a civil date (proleptic Gregorian, UTC), by
/// Howard Hinnant's `days_from_civil`. Dates before 1970 give 0.
pub fn days_from_civil(year: i64, month: u8, day: u8) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).unwrap_or(0)
}

/// The civil date (year, month 1–12, day 1–31) of a day since the epoch:
/// the inverse of [`days_from_civil`].
pub fn civil_from_days(days: u64) -> (i64, u8, u8) {
    let z = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u8::try_from(m).unwrap_or(1),
        u8::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 1, 1) * 86_400, 1_767_225_600);
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        for d in (0..40_000).step_by(7) {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn coarsening_truncates() {
        let t = UnixTime(1_700_000_000 + 3599);
        assert_eq!(UnixTime::from_hours(t.hours()).0 % 3600, 0);
        assert!(UnixTime::from_hours(t.hours()) <= t);
        assert_eq!(UnixTime(86_399).days(), 0);
        assert_eq!(UnixTime(86_400).days(), 1);
        assert_eq!(UnixTime(u64::MAX).hours(), u32::MAX);
    }
}
