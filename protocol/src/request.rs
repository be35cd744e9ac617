//! Signed mailbox requests.
//!
//! A mailbox belongs to whoever holds the Ed25519 key it was derived from
//! ([`MailboxId::for_key`]). To fetch or acknowledge a mailbox's envelopes, a
//! client signs the request: the method, the path with its query, a timestamp,
//! a random nonce and the SHA-256 of the body. The relay checks that the key
//! hashes to the mailbox in the path, that the timestamp is within a few
//! minutes of its clock, that it has not seen the nonce before, and the
//! signature. A captured request therefore cannot be replayed, re-targeted at
//! another mailbox or given another body.
//!
//! The proof travels in one header, `Amparo-Signature`, as base64url of 120
//! bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 32 | Ed25519 public key |
//! | 32 | 8 | timestamp, seconds since the epoch |
//! | 40 | 16 | nonce (random) |
//! | 56 | 64 | signature |
//!
//! The signature covers
//! `"amparo-request-v1" || 0x00 || method || 0x00 || path_and_query || 0x00 || timestamp (8) || nonce (16) || SHA-256(body)`.

use crate::codec::Reader;
use crate::entropy::{Entropy, random};
use crate::keys::MailboxId;
use crate::primitives::ed25519::{self, SIGNATURE_LEN, SigningKey, VerifyingKey};
use crate::primitives::{sha256, sha256_prefix};
use crate::{ProtocolError, Result, UnixTime, b64};

/// Name of the HTTP header that carries the proof.
pub const HEADER: &str = "Amparo-Signature";
/// How far a request's timestamp may be from the relay's clock, in seconds.
pub const MAX_SKEW_SECS: u64 = 300;
/// Length of the decoded header value.
pub const PROOF_LEN: usize = 32 + 8 + 16 + SIGNATURE_LEN;
const CONTEXT: &[u8] = b"amparo-request-v1";
const REPLAY_CONTEXT: &[u8] = b"amparo-request-replay-v1";
/// Longest method and path accepted (a request line is short).
const MAX_TARGET_LEN: usize = 2048;

/// The proof attached to a signed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestProof {
    /// The signer's Ed25519 public key.
    pub key: VerifyingKey,
    /// When the request was made.
    pub timestamp: u64,
    /// A random nonce; the relay refuses a nonce it has seen.
    pub nonce: [u8; 16],
    /// The signature.
    pub signature: [u8; SIGNATURE_LEN],
}

fn signed_message(
    method: &str,
    target: &str,
    timestamp: u64,
    nonce: &[u8; 16],
    body: &[u8],
) -> Result<Vec<u8>> {
    if method.len() + target.len() > MAX_TARGET_LEN
        || method.contains('\0')
        || target.contains('\0')
    {
        return Err(ProtocolError::Invalid("request method or path"));
    }
    let mut m = Vec::with_capacity(CONTEXT.len() + method.len() + target.len() + 3 + 8 + 16 + 32);
    m.extend_from_slice(CONTEXT);
    m.push(0);
    m.extend_from_slice(method.as_bytes());
    m.push(0);
    m.extend_from_slice(target.as_bytes());
    m.push(0);
    m.extend_from_slice(&timestamp.to_be_bytes());
    m.extend_from_slice(nonce);
    m.extend_from_slice(&sha256(&[body]));
    Ok(m)
}

impl RequestProof {
    /// Signs a request. `target` is the path with its query string exactly as
    /// sent (e.g. `/v1/mailboxes/X_c6m9n8QsgCC2QV/envelopes?after=0&limit=100`).
    pub fn sign(
        key: &SigningKey,
        method: &str,
        target: &str,
        body: &[u8],
        now: UnixTime,
        entropy: &mut dyn Entropy,
    ) -> Result<RequestProof> {
        let nonce = random(entropy)?;
        let message = signed_message(method, target, now.0, &nonce, body)?;
        Ok(RequestProof {
            key: key.verifying_key(),
            timestamp: now.0,
            nonce,
            signature: key.sign(&[&message]),
        })
    }

    /// The header value.
    pub fn to_header(&self) -> String {
        let mut raw = Vec::with_capacity(PROOF_LEN);
        raw.extend_from_slice(self.key.as_bytes());
        raw.extend_from_slice(&self.timestamp.to_be_bytes());
        raw.extend_from_slice(&self.nonce);
        raw.extend_from_slice(&self.signature);
        b64::encode(&raw)
    }

    /// Parses a header value.
    pub fn parse(header: &str) -> Result<RequestProof> {
        let raw = b64::decode_array::<PROOF_LEN>(header.trim(), "request signature header")?;
        let mut r = Reader::new(&raw);
        let proof = RequestProof {
            key: ed25519::VerifyingKey(r.array()?),
            timestamp: r.u64()?,
            nonce: r.array()?,
            signature: r.array()?,
        };
        r.finish()?;
        Ok(proof)
    }

    /// Checks that the request is for `mailbox`, fresh at `now`, and signed.
    /// The caller must also check [`Self::replay_id`] has not been seen.
    pub fn verify(
        &self,
        mailbox: &MailboxId,
        method: &str,
        target: &str,
        body: &[u8],
        now: UnixTime,
    ) -> Result<()> {
        if MailboxId::for_key(&self.key) != *mailbox {
            return Err(ProtocolError::UnknownSigner("request"));
        }
        if self.timestamp.abs_diff(now.0) > MAX_SKEW_SECS {
            return Err(ProtocolError::StaleRequest);
        }
        let message = signed_message(method, target, self.timestamp, &self.nonce, body)?;
        self.key.verify(&[&message], &self.signature, "request")
    }

    /// What the relay remembers to refuse a replay (16 bytes; does not reveal
    /// the key).
    pub fn replay_id(&self) -> [u8; 16] {
        sha256_prefix(&[REPLAY_CONTEXT, self.key.as_bytes(), &self.nonce])
    }

    /// Until when the replay id must be remembered: past this, the timestamp
    /// check alone refuses the request.
    pub fn replay_horizon(&self) -> UnixTime {
        UnixTime(self.timestamp.saturating_add(MAX_SKEW_SECS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DangerousSeededEntropy;
    use crate::keys::RecipientKeys;

    #[test]
    fn sign_parse_verify_and_refuse_changes() {
        let mut e = DangerousSeededEntropy::new(b"request");
        let k = RecipientKeys::generate(&mut e).unwrap();
        let mb = k.mailbox();
        let target = format!("/v1/mailboxes/{mb}/envelopes?after=0&limit=10");
        let now = UnixTime(1_790_000_000);
        let p = RequestProof::sign(k.signing(), "GET", &target, b"", now, &mut e).unwrap();
        let parsed = RequestProof::parse(&p.to_header()).unwrap();
        assert_eq!(parsed, p);
        parsed.verify(&mb, "GET", &target, b"", now).unwrap();
        parsed
            .verify(&mb, "GET", &target, b"", UnixTime(now.0 + 300))
            .unwrap();
        assert_eq!(
            parsed.verify(&mb, "GET", &target, b"", UnixTime(now.0 + 301)),
            Err(ProtocolError::StaleRequest)
        );
        assert_eq!(
            parsed.verify(&mb, "GET", &target, b"", UnixTime(now.0 - 301)),
            Err(ProtocolError::StaleRequest)
        );
        assert!(parsed.verify(&mb, "POST", &target, b"", now).is_err());
        assert!(
            parsed
                .verify(&mb, "GET", &target.replace("10", "11"), b"", now)
                .is_err()
        );
        assert!(parsed.verify(&mb, "GET", &target, b"x", now).is_err());
        let other = RecipientKeys::generate(&mut e).unwrap();
        assert_eq!(
            parsed.verify(&other.mailbox(), "GET", &target, b"", now),
            Err(ProtocolError::UnknownSigner("request"))
        );
        assert!(RequestProof::parse("short").is_err());
        assert!(RequestProof::parse(&"A".repeat(5000)).is_err());
        let p2 = RequestProof::sign(k.signing(), "GET", &target, b"", now, &mut e).unwrap();
        assert_ne!(p.replay_id(), p2.replay_id());
    }
}
