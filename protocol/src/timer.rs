//! Check-in timers (PROTOCOL.md §17): an alert sealed on the phone to a
//! focal point, held by the relay, and released into the focal point's
//! mailbox if she stops checking in — even when her phone is taken.
//!
//! A timer is a fresh Ed25519 key pair made for it alone: it is not her
//! reply mailbox key, nor any key a report carries, so the relay cannot
//! link a timer to her, her reports or another timer. The relay holds:
//!
//! - a **hold**: the sealed alert (an ordinary envelope for the focal
//!   point, opaque to the relay), the timer's public key and the hour it is
//!   released, signed with the timer key;
//! - for each timer, the release hour and the sequence number of the last
//!   check-in it took.
//!
//! A **check-in** is 110 bytes signed with the timer key: a sequence
//! number above the last one taken, and a release hour no earlier than the
//! one held (the same hour is a check-in that postpones nothing: what the
//! phone sends when she checks in with her duress PIN, alike on the wire).
//! A **cancel** is the same with the cancel action: the hold is deleted.
//! Check-ins carry no clock time, only the sequence number, so a facilitator
//! can carry one for hours in a bundle; one overtaken by a later check-in
//! is refused as stale. Times are whole hours since the epoch, as arrival
//! times are kept.

use crate::codec::{Reader, expect_version};
use crate::envelope::Envelope;
use crate::primitives::ed25519::{self, SIGNATURE_LEN, SigningKey, VerifyingKey};
use crate::primitives::{sha256, sha256_prefix};
use crate::{ProtocolError, Result, b64};

/// Version byte of a hold and a check-in.
pub const VERSION: u8 = 1;
/// Length of a timer id.
pub const TIMER_ID_LEN: usize = 12;
/// Length of an encoded check-in.
pub const CHECK_IN_LEN: usize = 2 + 32 + 8 + 4 + SIGNATURE_LEN;
/// Length of a hold's header (before the envelope).
pub const HOLD_HEADER_LEN: usize = 1 + 32 + 4 + SIGNATURE_LEN;
/// Furthest a release may be set ahead of the relay's current hour: 31
/// days (a timer is for tonight or for a trip, not for a year).
pub const MAX_AHEAD_HOURS: u32 = 31 * 24;
const ID_CONTEXT: &[u8] = b"amparo-timer-v1";
const HOLD_CONTEXT: &[u8] = b"amparo-hold-v1";
const CHECK_IN_CONTEXT: &[u8] = b"amparo-check-in-v1";

/// A timer's id: the first 12 bytes of
/// `SHA-256("amparo-timer-v1" || timer public key)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub [u8; TIMER_ID_LEN]);

impl TimerId {
    /// The timer of `key`.
    pub fn for_key(key: &VerifyingKey) -> TimerId {
        TimerId(sha256_prefix(&[ID_CONTEXT, key.as_bytes()]))
    }

    /// Parses the 16-character base64url form.
    pub fn parse(text: &str) -> Result<TimerId> {
        Ok(TimerId(b64::decode_array(text, "timer id")?))
    }
}

impl std::fmt::Display for TimerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&b64::encode(&self.0))
    }
}

impl std::fmt::Debug for TimerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TimerId({self})")
    }
}

/// A sealed alert for the relay to hold until `release_hour`.
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | version (1) |
/// | 1 | 32 | timer public key (Ed25519) |
/// | 33 | 4 | release hour, big-endian |
/// | 37 | 64 | signature |
/// | 101 | rest | the envelope |
///
/// The signature, by the timer key, covers `"amparo-hold-v1" || key ||
/// release hour (4) || SHA-256(envelope)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The timer's public key.
    pub key: VerifyingKey,
    /// The hour (since the epoch) at which the relay releases it.
    pub release_hour: u32,
    /// The timer key's signature.
    pub signature: [u8; SIGNATURE_LEN],
    /// The alert, sealed to a focal point.
    pub envelope: Envelope,
}

fn hold_message(key: &VerifyingKey, release_hour: u32, envelope: &Envelope) -> Vec<u8> {
    let mut out = HOLD_CONTEXT.to_vec();
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&release_hour.to_be_bytes());
    out.extend_from_slice(&sha256(&[envelope.as_bytes()]));
    out
}

impl Hold {
    /// Signs a hold of `envelope` until `release_hour` with the timer key.
    pub fn sign(timer: &SigningKey, release_hour: u32, envelope: Envelope) -> Hold {
        let key = timer.verifying_key();
        let signature = timer.sign(&[&hold_message(&key, release_hour, &envelope)]);
        Hold {
            key,
            release_hour,
            signature,
            envelope,
        }
    }

    /// The timer it belongs to.
    pub fn timer(&self) -> TimerId {
        TimerId::for_key(&self.key)
    }

    /// The bytes of the upload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HOLD_HEADER_LEN + self.envelope.as_bytes().len());
        out.push(VERSION);
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(&self.release_hour.to_be_bytes());
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(self.envelope.as_bytes());
        out
    }

    /// Parses an upload and checks its signature; the envelope is framed as
    /// any upload is ([`Envelope::from_bytes`]).
    pub fn decode(bytes: &[u8]) -> Result<Hold> {
        let mut r = Reader::new(bytes);
        expect_version("hold", r.u8()?, VERSION)?;
        let key = VerifyingKey(r.array()?);
        let release_hour = r.u32()?;
        let signature: [u8; SIGNATURE_LEN] = r.array()?;
        let envelope = Envelope::from_bytes(r.rest().to_vec())?;
        key.verify(
            &[&hold_message(&key, release_hour, &envelope)],
            &signature,
            "hold",
        )?;
        Ok(Hold {
            key,
            release_hour,
            signature,
            envelope,
        })
    }

    /// Checks the release hour against the relay's current hour: in the
    /// future, and at most [`MAX_AHEAD_HOURS`] ahead.
    pub fn check_release(&self, now_hour: u32) -> Result<()> {
        check_release(self.release_hour, now_hour)
    }
}

fn check_release(release_hour: u32, now_hour: u32) -> Result<()> {
    if release_hour <= now_hour || release_hour - now_hour > MAX_AHEAD_HOURS {
        return Err(ProtocolError::Invalid(
            "a release hour is after the current hour and at most 31 days ahead",
        ));
    }
    Ok(())
}

/// What a check-in asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Hold the alert until the new release hour.
    CheckIn = 1,
    /// Delete the hold: she is safe.
    Cancel = 2,
}

/// A check-in or a cancel, signed with the timer key.
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 1 | version (1) |
/// | 1 | 1 | action: 1 check-in, 2 cancel |
/// | 2 | 32 | timer public key |
/// | 34 | 8 | sequence number, big-endian |
/// | 42 | 4 | release hour, big-endian (0 for a cancel) |
/// | 46 | 64 | signature |
///
/// The signature covers `"amparo-check-in-v1" || bytes 0..46`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckIn {
    /// Check in or cancel.
    pub action: Action,
    /// The timer's public key.
    pub key: VerifyingKey,
    /// Above every sequence number the relay took for this timer.
    pub seq: u64,
    /// The new release hour (a check-in); 0 for a cancel.
    pub release_hour: u32,
    /// The timer key's signature.
    pub signature: [u8; SIGNATURE_LEN],
}

impl CheckIn {
    /// Signs a check-in that moves the release to `release_hour` (the same
    /// hour as before postpones nothing).
    pub fn postpone(timer: &SigningKey, seq: u64, release_hour: u32) -> CheckIn {
        Self::signed(timer, Action::CheckIn, seq, release_hour)
    }

    /// Signs a cancel.
    pub fn cancel(timer: &SigningKey, seq: u64) -> CheckIn {
        Self::signed(timer, Action::Cancel, seq, 0)
    }

    fn signed(timer: &SigningKey, action: Action, seq: u64, release_hour: u32) -> CheckIn {
        let mut c = CheckIn {
            action,
            key: timer.verifying_key(),
            seq,
            release_hour,
            signature: [0; SIGNATURE_LEN],
        };
        c.signature = timer.sign(&[CHECK_IN_CONTEXT, &c.head()]);
        c
    }

    /// The timer it is for.
    pub fn timer(&self) -> TimerId {
        TimerId::for_key(&self.key)
    }

    /// The signed part: every field but the signature (46 bytes).
    fn head(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(CHECK_IN_LEN);
        w.push(VERSION);
        w.push(self.action as u8);
        w.extend_from_slice(self.key.as_bytes());
        w.extend_from_slice(&self.seq.to_be_bytes());
        w.extend_from_slice(&self.release_hour.to_be_bytes());
        w
    }

    /// Its 110 bytes.
    pub fn encode(&self) -> [u8; CHECK_IN_LEN] {
        let mut w = self.head();
        w.extend_from_slice(&self.signature);
        let mut out = [0u8; CHECK_IN_LEN];
        out.copy_from_slice(&w);
        out
    }

    /// Parses 110 bytes and checks the signature.
    pub fn decode(bytes: &[u8]) -> Result<CheckIn> {
        let mut r = Reader::new(bytes);
        expect_version("check-in", r.u8()?, VERSION)?;
        let action = match r.u8()? {
            1 => Action::CheckIn,
            2 => Action::Cancel,
            _ => return Err(ProtocolError::Invalid("check-in action")),
        };
        let key = VerifyingKey(r.array()?);
        let seq = r.u64()?;
        let release_hour = r.u32()?;
        let signature: [u8; SIGNATURE_LEN] = r.array()?;
        r.finish()?;
        if action == Action::Cancel && release_hour != 0 {
            return Err(ProtocolError::Invalid("a cancel names no release hour"));
        }
        let c = CheckIn {
            action,
            key,
            seq,
            release_hour,
            signature,
        };
        key.verify(&[CHECK_IN_CONTEXT, &c.head()], &signature, "check-in")?;
        Ok(c)
    }
}

/// What the relay holds for a timer besides the sealed alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerState {
    /// When the alert is released (hours since the epoch).
    pub release_hour: u32,
    /// The last sequence number taken (0 before any check-in).
    pub seq: u64,
}

/// What a verified check-in does to a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The new state.
    Hold(TimerState),
    /// Delete the hold.
    Cancel,
}

/// Applies a check-in (already decoded, so signed by its key) to the state
/// of the timer it names, at the relay's current hour. Refused, with the
/// state left as it was: a sequence number not above the last taken
/// (replayed, or overtaken by a later one: stale), a release earlier than
/// the one held, not after the current hour, or more than
/// [`MAX_AHEAD_HOURS`] ahead. A timer already released takes nothing (the
/// caller no longer holds it).
pub fn apply(state: TimerState, check_in: &CheckIn, now_hour: u32) -> Result<Outcome> {
    if check_in.seq <= state.seq {
        return Err(ProtocolError::Invalid(
            "this check-in was replayed or overtaken by a later one",
        ));
    }
    match check_in.action {
        Action::Cancel => Ok(Outcome::Cancel),
        Action::CheckIn => {
            if check_in.release_hour < state.release_hour {
                return Err(ProtocolError::Invalid(
                    "a check-in never brings the release earlier",
                ));
            }
            check_release(check_in.release_hour, now_hour)?;
            Ok(Outcome::Hold(TimerState {
                release_hour: check_in.release_hour,
                seq: check_in.seq,
            }))
        }
    }
}

/// A fresh timer key.
pub fn new_timer_key(entropy: &mut dyn crate::Entropy) -> Result<SigningKey> {
    ed25519::SigningKey::generate(entropy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UnixTime;
    use crate::entropy::DangerousSeededEntropy;
    use crate::envelope::Purpose;
    use crate::keys::RecipientKeys;
    use crate::padding::InnerHeader;

    fn envelope(e: &mut DangerousSeededEntropy) -> Envelope {
        let focal = RecipientKeys::generate(e).unwrap();
        let header = InnerHeader::new(e, UnixTime(1_800_000_000)).unwrap();
        Envelope::seal(&focal.public(), Purpose::Report, &header, b"{}", e).unwrap()
    }

    #[test]
    fn a_hold_round_trips_and_refuses_any_altered_byte() {
        let mut e = DangerousSeededEntropy::new(b"hold");
        let timer = new_timer_key(&mut e).unwrap();
        let hold = Hold::sign(&timer, 500_010, envelope(&mut e));
        let bytes = hold.encode();
        assert_eq!(Hold::decode(&bytes).unwrap(), hold);
        assert_eq!(hold.timer(), TimerId::for_key(&timer.verifying_key()));
        for i in [0, 1, 33, 36, 40, 101, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(Hold::decode(&bad).is_err(), "byte {i}");
        }
        assert!(Hold::decode(&bytes[..100]).is_err());
        assert!(hold.check_release(500_009).is_ok());
        assert!(hold.check_release(500_010).is_err(), "not in the past");
        assert!(hold.check_release(500_010 - MAX_AHEAD_HOURS - 1).is_err());
        assert!(hold.check_release(500_010 - MAX_AHEAD_HOURS).is_ok());
    }

    #[test]
    fn check_ins_move_the_release_later_once_each_and_cancels_delete() {
        let mut e = DangerousSeededEntropy::new(b"check-in");
        let timer = new_timer_key(&mut e).unwrap();
        let other = new_timer_key(&mut e).unwrap();
        let held = TimerState {
            release_hour: 1000,
            seq: 0,
        };
        let now = 990;
        let c = CheckIn::postpone(&timer, 1, 1010);
        let bytes = c.encode();
        let back = CheckIn::decode(&bytes).unwrap();
        assert_eq!(back, c);
        let moved = apply(held, &back, now).unwrap();
        assert_eq!(
            moved,
            Outcome::Hold(TimerState {
                release_hour: 1010,
                seq: 1
            })
        );
        let Outcome::Hold(state) = moved else {
            panic!()
        };
        // Replayed, stale (a lower sequence carried late), earlier, too far.
        assert!(apply(state, &c, now).is_err());
        assert!(apply(state, &CheckIn::postpone(&timer, 1, 1020), now).is_err());
        assert!(apply(state, &CheckIn::postpone(&timer, 2, 1005), now).is_err());
        assert!(
            apply(
                state,
                &CheckIn::postpone(&timer, 2, now + MAX_AHEAD_HOURS + 1),
                now
            )
            .is_err()
        );
        // The duress check-in: the same hour, taken, postpones nothing.
        assert_eq!(
            apply(state, &CheckIn::postpone(&timer, 2, 1010), now).unwrap(),
            Outcome::Hold(TimerState {
                release_hour: 1010,
                seq: 2
            })
        );
        assert_eq!(
            apply(state, &CheckIn::cancel(&timer, 3), now).unwrap(),
            Outcome::Cancel
        );
        // Another key's signature does not pass for this key.
        let mut forged = CheckIn::postpone(&other, 9, 1100);
        forged.key = timer.verifying_key();
        assert!(CheckIn::decode(&forged.encode()).is_err());
        // Altered bytes, a wrong length, an unknown action, a cancel with
        // an hour.
        for i in [0, 1, 2, 40, 45, 46, 109] {
            let mut bad = bytes;
            bad[i] ^= 1;
            assert!(CheckIn::decode(&bad).is_err(), "byte {i}");
        }
        assert!(CheckIn::decode(&bytes[..109]).is_err());
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(CheckIn::decode(&long).is_err());
        let mut cancel = CheckIn::cancel(&timer, 4);
        cancel.release_hour = 5;
        assert!(CheckIn::decode(&cancel.encode()).is_err());
    }
}
