//! Relay receipts: the relay's signed word that it holds an envelope durably.
//!
//! A phone keeps an envelope in its outbox until it holds a receipt for it; a
//! facilitator carries receipts back to the phones whose envelopes it
//! delivered. Layout (93 bytes, big-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version = 1 |
//! | 1 | 16 | envelope id |
//! | 17 | 4 | day of arrival (days since the Unix epoch) |
//! | 21 | 8 | relay key id |
//! | 29 | 64 | Ed25519 signature over `"amparo-receipt-v1" || bytes[0..29]` |
//!
//! Only the day is recorded: a receipt carried on a phone must not date a
//! report more precisely than that.

use crate::codec::{Reader, expect_version};
use crate::envelope::EnvelopeId;
use crate::keys::KeyId;
use crate::primitives::ed25519::{self, SIGNATURE_LEN};
use crate::{ProtocolError, Result, UnixTime};

/// Receipt format version.
pub const VERSION: u8 = 1;
/// Length of an encoded receipt.
pub const LEN: usize = 1 + 16 + 4 + 8 + SIGNATURE_LEN;
const SIGNED_LEN: usize = LEN - SIGNATURE_LEN;
const CONTEXT: &[u8] = b"amparo-receipt-v1";

/// A signed relay receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The envelope received.
    pub envelope_id: EnvelopeId,
    /// Day of arrival.
    pub day: u32,
    /// Which relay key signed.
    pub relay_key_id: KeyId,
    /// The signature.
    pub signature: [u8; SIGNATURE_LEN],
}

impl Receipt {
    /// The relay signs a receipt for `envelope_id` received at `now`.
    pub fn sign(
        envelope_id: EnvelopeId,
        now: UnixTime,
        relay_key: &ed25519::SigningKey,
    ) -> Receipt {
        let relay_key_id = KeyId::for_key(&relay_key.verifying_key());
        let day = now.days();
        let signed = signed_bytes(&envelope_id, day, &relay_key_id);
        Receipt {
            envelope_id,
            day,
            relay_key_id,
            signature: relay_key.sign(&[CONTEXT, &signed]),
        }
    }

    /// Checks the signature against the relay key the verifier trusts.
    pub fn verify(&self, relay_key: &ed25519::VerifyingKey) -> Result<()> {
        if KeyId::for_key(relay_key) != self.relay_key_id {
            return Err(ProtocolError::UnknownSigner("receipt"));
        }
        let signed = signed_bytes(&self.envelope_id, self.day, &self.relay_key_id);
        relay_key.verify(&[CONTEXT, &signed], &self.signature, "receipt")
    }

    /// Encodes the receipt.
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..SIGNED_LEN].copy_from_slice(&signed_bytes(
            &self.envelope_id,
            self.day,
            &self.relay_key_id,
        ));
        out[SIGNED_LEN..].copy_from_slice(&self.signature);
        out
    }

    /// Decodes a receipt (the signature is not checked: call [`Receipt::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Receipt> {
        let mut r = Reader::new(bytes);
        expect_version("receipt", r.u8()?, VERSION)?;
        let receipt = Receipt {
            envelope_id: EnvelopeId(r.array()?),
            day: r.u32()?,
            relay_key_id: KeyId(r.array()?),
            signature: r.array()?,
        };
        r.finish()?;
        Ok(receipt)
    }
}

fn signed_bytes(id: &EnvelopeId, day: u32, key: &KeyId) -> [u8; SIGNED_LEN] {
    let mut out = [0u8; SIGNED_LEN];
    out[0] = VERSION;
    out[1..17].copy_from_slice(&id.0);
    out[17..21].copy_from_slice(&day.to_be_bytes());
    out[21..].copy_from_slice(&key.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DangerousSeededEntropy;
    use proptest::prelude::*;

    #[test]
    fn sign_encode_decode_verify() {
        let mut e = DangerousSeededEntropy::new(b"relay");
        let relay = ed25519::SigningKey::generate(&mut e).unwrap();
        let other = ed25519::SigningKey::generate(&mut e).unwrap();
        let r = Receipt::sign(EnvelopeId([9; 16]), UnixTime(1_790_000_000), &relay);
        let bytes = r.encode();
        let back = Receipt::decode(&bytes).unwrap();
        assert_eq!(back, r);
        back.verify(&relay.verifying_key()).unwrap();
        assert_eq!(
            back.verify(&other.verifying_key()),
            Err(ProtocolError::UnknownSigner("receipt"))
        );
        let mut forged = back;
        forged.envelope_id = EnvelopeId([8; 16]);
        assert_eq!(
            forged.verify(&relay.verifying_key()),
            Err(ProtocolError::BadSignature("receipt"))
        );
        let mut later = back;
        later.day += 1;
        assert!(later.verify(&relay.verifying_key()).is_err());
        assert!(Receipt::decode(&bytes[..LEN - 1]).is_err());
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(Receipt::decode(&long), Err(ProtocolError::TrailingBytes(1)));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Receipt::decode(&bytes);
        }
    }
}
