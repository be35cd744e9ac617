//! Wrong PINs on the phone: an attempt counter with growing waits, and an
//! optional wipe after N failed unlocks (as Tella has).
//!
//! Both live in the profile's database, outside the sealed data (they must
//! be read before the PIN is known), in two `meta` rows every profile has:
//! `attempts` (12 bytes: failed attempts in a row, big-endian u32, and the
//! time of the last one, u64 seconds) and `wipe_after` (u32, 0 = off).
//!
//! An attempt is counted *before* Argon2id runs and the count is cleared
//! when the PIN opens the profile, so killing the app while a PIN is being
//! checked does not spare the attempt (an attempt cut short counts as
//! failed). The real PIN and the duress PIN clear the count alike and write
//! the same bytes, so the row says how many wrong PINs came since the last
//! good one, never which good one it was, nor whether a duress PIN exists.
//!
//! What they stop: someone with the phone in hand typing PIN after PIN into
//! the app. The first [`FREE_ATTEMPTS`] wrong PINs cost nothing (typos);
//! then each waits [`delay`] — 30 s, doubling per wrong PIN up to a day —
//! so a 4-digit PIN takes years to run through on the phone, and with
//! `wipe_after` the profile is destroyed at the N-th wrong PIN in a row
//! (then the next open finds no profile).
//!
//! What they do not stop: a copy of the files carries its counter with it,
//! and a copy taken before the wrong PINs (or the same file put back by
//! someone with root on the phone) rolls it back; code that reads the file
//! without the app ignores it altogether. Only the device key
//! (`store::device`) makes a copy useless off the phone. The waits follow
//! the phone's clock: whoever can set the clock forward shortens them (the
//! wipe does not depend on the clock).

use amparo_protocol::UnixTime;

use crate::{CoreError, Result};

/// Wrong PINs in a row that cost no wait.
pub const FREE_ATTEMPTS: u32 = 5;
/// The first wait, after [`FREE_ATTEMPTS`] wrong PINs.
pub const FIRST_DELAY_SECS: u64 = 30;
/// The longest wait.
pub const MAX_DELAY_SECS: u64 = 24 * 60 * 60;

/// Seconds to wait after `failed` wrong PINs in a row before the next
/// attempt is taken: none for the first [`FREE_ATTEMPTS`], then 30 s,
/// doubling with each wrong PIN, at most a day.
pub fn delay(failed: u32) -> u64 {
    if failed < FREE_ATTEMPTS {
        return 0;
    }
    let doublings = (failed - FREE_ATTEMPTS).min(32);
    FIRST_DELAY_SECS
        .saturating_mul(1u64 << doublings)
        .min(MAX_DELAY_SECS)
}

/// The `attempts` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Attempts {
    /// Wrong PINs in a row (an attempt cut short counts).
    pub failed: u32,
    /// When the last of them was tried (seconds).
    pub last: u64,
}

impl Attempts {
    pub(crate) fn encode(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&self.failed.to_be_bytes());
        out[4..].copy_from_slice(&self.last.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Attempts> {
        let bytes: &[u8; 12] = bytes
            .try_into()
            .map_err(|_| CoreError::Corrupt("attempt counter"))?;
        let (failed, last) = bytes.split_at(4);
        Ok(Attempts {
            failed: u32::from_be_bytes(
                failed
                    .try_into()
                    .map_err(|_| CoreError::Corrupt("attempt counter"))?,
            ),
            last: u64::from_be_bytes(
                last.try_into()
                    .map_err(|_| CoreError::Corrupt("attempt counter"))?,
            ),
        })
    }

    /// Seconds before the next attempt may be taken at `now`. A clock set
    /// back before the last attempt counts the wait from `now` (see
    /// [`Attempts::rebased`]): never a lock that lasts until the clock
    /// catches up.
    pub(crate) fn wait(&self, now: UnixTime) -> u64 {
        let since = now.0.saturating_sub(self.last);
        delay(self.failed).saturating_sub(since)
    }

    /// The same count with its time moved back to `now` if the clock is
    /// now earlier than the last attempt.
    pub(crate) fn rebased(&self, now: UnixTime) -> Option<Attempts> {
        (now.0 < self.last).then_some(Attempts {
            failed: self.failed,
            last: now.0,
        })
    }
}

pub(crate) fn encode_wipe_after(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

pub(crate) fn decode_wipe_after(bytes: Option<&[u8]>) -> Result<u32> {
    match bytes {
        None => Ok(0),
        Some(b) => Ok(u32::from_be_bytes(
            b.try_into()
                .map_err(|_| CoreError::Corrupt("wipe-after setting"))?,
        )),
    }
}

/// What the lock screen may show before the PIN is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnlockStatus {
    /// Wrong PINs in a row since the last good one.
    pub failed_attempts: u32,
    /// Seconds before the next attempt is taken (0: now).
    pub wait_seconds: u64,
    /// The profile is destroyed at this many wrong PINs in a row (0: never).
    pub wipe_after: u32,
    /// The profile opens only with its phone's device key.
    pub device_bound: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_from_the_sixth_wrong_pin_to_a_day() {
        let waits: Vec<u64> = (0..12).map(delay).collect();
        assert_eq!(waits, vec![0, 0, 0, 0, 0, 30, 60, 120, 240, 480, 960, 1920]);
        assert_eq!(delay(17), MAX_DELAY_SECS);
        assert_eq!(delay(u32::MAX), MAX_DELAY_SECS);
        let a = Attempts {
            failed: 6,
            last: 1000,
        };
        assert_eq!(Attempts::decode(&a.encode()).unwrap(), a);
        assert!(Attempts::decode(&[0; 11]).is_err());
        assert_eq!(a.wait(UnixTime(1000)), 60);
        assert_eq!(a.wait(UnixTime(1059)), 1);
        assert_eq!(a.wait(UnixTime(1060)), 0);
        assert_eq!(a.rebased(UnixTime(1000)), None);
        assert_eq!(a.wait(UnixTime(10)), 60, "a clock set back waits in full");
        assert_eq!(
            a.rebased(UnixTime(10)),
            Some(Attempts {
                failed: 6,
                last: 10
            })
        );
        assert_eq!(decode_wipe_after(None).unwrap(), 0);
        assert_eq!(decode_wipe_after(Some(&encode_wipe_after(10))).unwrap(), 10);
        assert!(decode_wipe_after(Some(&[1, 2])).is_err());
    }
}
