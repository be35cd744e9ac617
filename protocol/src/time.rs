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

#[cfg(test)]
mod tests {
    use super::*;

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
