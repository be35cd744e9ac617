//! A voucher (PROTOCOL.md §14.2): a focal point's or the coordinator's
//! signed word that a facilitator may ask the relay for admission tokens.
//!
//! Facilitators are not in the public directory — how many there are, and
//! where, is itself sensitive — so the relay cannot look them up. A focal
//! point (or the coordinator) who knows one in person signs this for the
//! facilitator's own key, for a short time; the facilitator shows it with
//! each token request it signs. It is never published and the relay keeps
//! nothing of it.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version = 1 |
//! | 1 | 32 | the facilitator's Ed25519 public key |
//! | 33 | 8 | valid from (seconds since the epoch) |
//! | 41 | 8 | valid until (the first second it is no longer valid) |
//! | 49 | 32 | the voucher's Ed25519 public key (a focal point's signing key, or the coordinator's) |
//! | 81 | 64 | Ed25519 signature over `"amparo-voucher-v1" \|\| bytes[0..81]` |

use crate::codec::{Reader, expect_version};
use crate::primitives::ed25519::{self, SIGNATURE_LEN};
use crate::{ProtocolError, Result, UnixTime, b64};

/// Voucher format version.
pub const VERSION: u8 = 1;
/// Length of a voucher.
pub const VOUCHER_LEN: usize = 1 + 32 + 8 + 8 + 32 + SIGNATURE_LEN;
const SIGNED_LEN: usize = VOUCHER_LEN - SIGNATURE_LEN;
const CONTEXT: &[u8] = b"amparo-voucher-v1";
/// Longest a voucher may be valid: about three months, so a lost phone's
/// voucher lapses by itself.
pub const MAX_SECONDS: u64 = 92 * 86_400;

/// A facilitator's voucher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voucher {
    /// The facilitator's key: who may use it.
    pub facilitator: ed25519::VerifyingKey,
    /// First second it is valid.
    pub valid_from: UnixTime,
    /// First second it is no longer valid.
    pub valid_until: UnixTime,
    /// Who vouches.
    pub voucher: ed25519::VerifyingKey,
    signature: [u8; SIGNATURE_LEN],
}

impl Voucher {
    /// Signs a voucher for `facilitator` with `voucher` (a focal point's
    /// signing key or the coordinator's). Refuses an empty window or one
    /// longer than [`MAX_SECONDS`].
    pub fn sign(
        facilitator: &ed25519::VerifyingKey,
        valid_from: UnixTime,
        valid_until: UnixTime,
        voucher: &ed25519::SigningKey,
    ) -> Result<Voucher> {
        check_window(valid_from, valid_until)?;
        let mut v = Voucher {
            facilitator: *facilitator,
            valid_from,
            valid_until,
            voucher: voucher.verifying_key(),
            signature: [0; SIGNATURE_LEN],
        };
        v.signature = voucher.sign(&[CONTEXT, &v.signed_bytes()]);
        Ok(v)
    }

    fn signed_bytes(&self) -> [u8; SIGNED_LEN] {
        let mut out = [0u8; SIGNED_LEN];
        out[0] = VERSION;
        out[1..33].copy_from_slice(self.facilitator.as_bytes());
        out[33..41].copy_from_slice(&self.valid_from.0.to_be_bytes());
        out[41..49].copy_from_slice(&self.valid_until.0.to_be_bytes());
        out[49..81].copy_from_slice(self.voucher.as_bytes());
        out
    }

    /// The voucher's bytes.
    pub fn encode(&self) -> [u8; VOUCHER_LEN] {
        let mut out = [0u8; VOUCHER_LEN];
        out[..SIGNED_LEN].copy_from_slice(&self.signed_bytes());
        out[SIGNED_LEN..].copy_from_slice(&self.signature);
        out
    }

    /// As the `Amparo-Voucher` header carries it (base64url).
    pub fn to_header(&self) -> String {
        b64::encode(&self.encode())
    }

    /// Reads the header form.
    pub fn from_header(text: &str) -> Result<Voucher> {
        Voucher::decode(&b64::decode_array::<VOUCHER_LEN>(text.trim(), "voucher")?)
    }

    /// Reads a voucher and checks its own signature and window; whether
    /// its signer is trusted, and whether it is in force now, is for the
    /// reader to check ([`Voucher::in_force`]).
    pub fn decode(bytes: &[u8]) -> Result<Voucher> {
        let mut r = Reader::new(bytes);
        expect_version("voucher", r.u8()?, VERSION)?;
        let facilitator = ed25519::VerifyingKey(r.array::<32>()?);
        let valid_from = UnixTime(r.u64()?);
        let valid_until = UnixTime(r.u64()?);
        let voucher = ed25519::VerifyingKey(r.array::<32>()?);
        let signature = r.array::<SIGNATURE_LEN>()?;
        r.finish()?;
        check_window(valid_from, valid_until)?;
        let v = Voucher {
            facilitator,
            valid_from,
            valid_until,
            voucher,
            signature,
        };
        v.voucher
            .verify(&[CONTEXT, &v.signed_bytes()], &v.signature, "voucher")?;
        Ok(v)
    }

    /// Whether `now` is inside its window.
    pub fn in_force(&self, now: UnixTime) -> bool {
        self.valid_from <= now && now < self.valid_until
    }
}

fn check_window(from: UnixTime, until: UnixTime) -> Result<()> {
    if until <= from || until.0 - from.0 > MAX_SECONDS {
        return Err(ProtocolError::Invalid("voucher validity"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> ed25519::SigningKey {
        ed25519::SigningKey::from_seed(&[n; 32]).unwrap()
    }

    #[test]
    #[allow(clippy::indexing_slicing)]
    fn a_voucher_round_trips_and_its_signature_binds_every_field() {
        let v = Voucher::sign(
            &key(1).verifying_key(),
            UnixTime(1000),
            UnixTime(1000 + 86_400),
            &key(2),
        )
        .unwrap();
        let bytes = v.encode();
        assert_eq!(Voucher::decode(&bytes).unwrap(), v);
        assert_eq!(Voucher::from_header(&v.to_header()).unwrap(), v);
        for i in 0..VOUCHER_LEN {
            let mut b = bytes;
            b[i] ^= 0x01;
            assert!(Voucher::decode(&b).is_err(), "byte {i}");
        }
        assert!(v.in_force(UnixTime(1000)));
        assert!(!v.in_force(UnixTime(999)));
        assert!(!v.in_force(UnixTime(1000 + 86_400)));
    }

    #[test]
    fn a_voucher_window_is_short_and_not_empty() {
        let f = key(1).verifying_key();
        assert!(Voucher::sign(&f, UnixTime(5), UnixTime(5), &key(2)).is_err());
        assert!(Voucher::sign(&f, UnixTime(0), UnixTime(MAX_SECONDS + 1), &key(2)).is_err());
        assert!(Voucher::sign(&f, UnixTime(0), UnixTime(MAX_SECONDS), &key(2)).is_ok());
        assert!(Voucher::decode(&[1u8; VOUCHER_LEN - 1]).is_err());
    }
}
