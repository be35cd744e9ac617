//! Fetch grants: a survivor lets a facilitator fetch her reply mailbox while
//! she is out of reach.
//!
//! A signed mailbox request (§12.7) must be fresh within five minutes, so a
//! survivor without signal cannot sign one for a facilitator to use hours
//! later. A grant is the narrower, longer-lived alternative: signed with the
//! reply mailbox's own key, it allows *reading* that mailbox — sealed
//! envelopes the facilitator cannot open — until a stated time at most
//! [`MAX_VALIDITY_SECS`] ahead. It cannot acknowledge (delete) anything: the
//! survivor does that herself when she next has signal, and the relay keeps
//! the replies until then. Whoever holds a grant learns how many sealed
//! replies wait in one opaque mailbox, and when; nothing else.
//!
//! Layout (121 bytes):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `"AMPG"` |
//! | 4 | 1 | version = 1 |
//! | 5 | 12 | mailbox id |
//! | 17 | 32 | the mailbox's Ed25519 key |
//! | 49 | 8 | not after (seconds since the epoch) |
//! | 57 | 64 | Ed25519 signature over `"amparo-fetch-grant-v1" || bytes[0..57]` |

use crate::codec::Reader;
use crate::keys::{MAILBOX_ID_LEN, MailboxId};
use crate::primitives::ed25519::{self, SIGNATURE_LEN, SigningKey};
use crate::{ProtocolError, Result, UnixTime, b64};

/// HTTP header carrying a grant (base64url).
pub const HEADER: &str = "Amparo-Grant";
/// Encoded length.
pub const LEN: usize = 4 + 1 + MAILBOX_ID_LEN + 32 + 8 + SIGNATURE_LEN;
/// Longest validity a relay accepts, counted from when it checks: 14 days.
pub const MAX_VALIDITY_SECS: u64 = 14 * 24 * 3600;
const MAGIC: [u8; 4] = *b"AMPG";
const VERSION: u8 = 1;
const CONTEXT: &[u8] = b"amparo-fetch-grant-v1";
const SIGNED_LEN: usize = LEN - SIGNATURE_LEN;

/// A read-only, time-limited permission to fetch one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchGrant {
    bytes: [u8; LEN],
    mailbox: MailboxId,
    key: ed25519::VerifyingKey,
    not_after: u64,
}

impl FetchGrant {
    /// The owner of a mailbox (its signing key) grants reading it until
    /// `not_after`.
    pub fn sign(key: &SigningKey, not_after: UnixTime) -> FetchGrant {
        let verifying = key.verifying_key();
        let mailbox = MailboxId::for_key(&verifying);
        let mut bytes = [0u8; LEN];
        let mut signed = Vec::with_capacity(SIGNED_LEN);
        signed.extend_from_slice(&MAGIC);
        signed.push(VERSION);
        signed.extend_from_slice(&mailbox.0);
        signed.extend_from_slice(verifying.as_bytes());
        signed.extend_from_slice(&not_after.0.to_be_bytes());
        let signature = key.sign(&[CONTEXT, &signed]);
        for (dst, src) in bytes.iter_mut().zip(signed.iter().chain(signature.iter())) {
            *dst = *src;
        }
        FetchGrant {
            bytes,
            mailbox,
            key: verifying,
            not_after: not_after.0,
        }
    }

    /// Parses a grant and checks its signature and that its key owns its
    /// mailbox (not its time: see [`FetchGrant::allows`]).
    pub fn decode(bytes: &[u8]) -> Result<FetchGrant> {
        let mut r = Reader::new(bytes);
        if r.array::<4>()? != MAGIC {
            return Err(ProtocolError::Invalid("fetch grant magic"));
        }
        if r.u8()? != VERSION {
            return Err(ProtocolError::Invalid("fetch grant version"));
        }
        let mailbox = MailboxId(r.array()?);
        let key = ed25519::VerifyingKey(r.array()?);
        let not_after = r.u64()?;
        let signature: [u8; SIGNATURE_LEN] = r.array()?;
        r.finish()?;
        if MailboxId::for_key(&key) != mailbox {
            return Err(ProtocolError::UnknownSigner("fetch grant"));
        }
        let signed = bytes
            .get(..SIGNED_LEN)
            .ok_or(ProtocolError::Invalid("fetch grant"))?;
        key.verify(&[CONTEXT, signed], &signature, "fetch grant")?;
        let bytes: [u8; LEN] = bytes
            .try_into()
            .map_err(|_| ProtocolError::Invalid("fetch grant"))?;
        Ok(FetchGrant {
            bytes,
            mailbox,
            key,
            not_after,
        })
    }

    /// Whether it lets its holder read `mailbox` at `now`: the right
    /// mailbox, not expired, and not valid for longer than a relay accepts.
    pub fn allows(&self, mailbox: &MailboxId, now: UnixTime) -> Result<()> {
        if self.mailbox != *mailbox {
            return Err(ProtocolError::UnknownSigner("fetch grant"));
        }
        if now.0 > self.not_after || self.not_after - now.0 > MAX_VALIDITY_SECS {
            return Err(ProtocolError::StaleRequest);
        }
        Ok(())
    }

    /// The mailbox it is for.
    pub fn mailbox(&self) -> MailboxId {
        self.mailbox
    }

    /// When it stops working.
    pub fn not_after(&self) -> UnixTime {
        UnixTime(self.not_after)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8; LEN] {
        &self.bytes
    }

    /// The header value.
    pub fn to_header(&self) -> String {
        b64::encode(&self.bytes)
    }

    /// Parses and checks a header value.
    pub fn from_header(text: &str) -> Result<FetchGrant> {
        FetchGrant::decode(&b64::decode_array::<LEN>(text.trim(), "fetch grant")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DangerousSeededEntropy;

    fn key(seed: u8) -> SigningKey {
        SigningKey::generate(&mut DangerousSeededEntropy::new(&[seed; 32])).unwrap()
    }

    #[test]
    fn a_grant_round_trips_and_allows_only_its_mailbox_in_time() {
        let k = key(1);
        let mailbox = MailboxId::for_key(&k.verifying_key());
        let g = FetchGrant::sign(&k, UnixTime(1_000_000));
        assert_eq!(g.as_bytes().len(), LEN);
        let back = FetchGrant::from_header(&g.to_header()).unwrap();
        assert_eq!(back, g);
        assert!(back.allows(&mailbox, UnixTime(999_000)).is_ok());
        assert!(back.allows(&mailbox, UnixTime(1_000_000)).is_ok());
        assert!(
            back.allows(&mailbox, UnixTime(1_000_001)).is_err(),
            "expired"
        );
        let other = MailboxId::for_key(&key(2).verifying_key());
        assert!(back.allows(&other, UnixTime(999_000)).is_err());
        // Too long a validity is refused, whatever the signer wanted.
        let long = FetchGrant::sign(&k, UnixTime(1_000 + MAX_VALIDITY_SECS + 1));
        assert!(long.allows(&mailbox, UnixTime(1_000)).is_err());
    }

    #[test]
    fn tampering_and_foreign_keys_are_refused() {
        let g = FetchGrant::sign(&key(3), UnixTime(5_000));
        for i in 0..LEN {
            let mut b = *g.as_bytes();
            b[i] ^= 0x01;
            assert!(FetchGrant::decode(&b).is_err(), "byte {i}");
        }
        assert!(FetchGrant::decode(&g.as_bytes()[..LEN - 1]).is_err());
        let mut longer = g.as_bytes().to_vec();
        longer.push(0);
        assert!(FetchGrant::decode(&longer).is_err());
        // A key that does not own the mailbox named.
        let mut b = *g.as_bytes();
        b[5..17].copy_from_slice(&MailboxId::for_key(&key(4).verifying_key()).0);
        assert!(FetchGrant::decode(&b).is_err());
    }
}
