//! Ed25519 signatures (RFC 8032) through ring.
//!
//! The coordinator signs the directory, focal points and reply-mailbox holders
//! sign their mailbox requests, and the relay signs receipts. Every signed
//! message starts with a context string naming what it is (see PROTOCOL.md),
//! so that a signature made for one purpose can never be replayed as another.

use core::fmt;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use crate::entropy::{Entropy, random};
use crate::{ProtocolError, Result};

/// Length of a public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of a signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a secret seed.
pub const SEED_LEN: usize = 32;

/// An Ed25519 secret key: its 32-byte seed (zeroized on drop) and ring's
/// expanded key pair, kept so that signing (a relay signs a receipt per
/// envelope) does not re-derive the key each time.
pub struct SigningKey {
    seed: Zeroizing<[u8; SEED_LEN]>,
    pair: Ed25519KeyPair,
    public: VerifyingKey,
}

impl SigningKey {
    /// A fresh key from `entropy`.
    pub fn generate(entropy: &mut dyn Entropy) -> Result<Self> {
        let seed = Zeroizing::new(random::<SEED_LEN>(entropy)?);
        Self::from_seed(&seed)
    }

    /// The key for a stored seed.
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Result<Self> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| ProtocolError::InvalidKey("Ed25519 secret"))?;
        let mut public = [0u8; PUBLIC_KEY_LEN];
        public.copy_from_slice(pair.public_key().as_ref());
        Ok(SigningKey {
            seed: Zeroizing::new(*seed),
            pair,
            public: VerifyingKey(public),
        })
    }

    /// The seed, for storing the key encrypted. Handle with care.
    pub fn dangerously_export_seed(&self) -> Zeroizing<[u8; SEED_LEN]> {
        Zeroizing::new(*self.seed)
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    /// Signs the concatenation of `parts`.
    pub fn sign(&self, parts: &[&[u8]]) -> [u8; SIGNATURE_LEN] {
        let message: Zeroizing<Vec<u8>> = Zeroizing::new(parts.concat());
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(self.pair.sign(&message).as_ref());
        out
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyingKey(pub [u8; PUBLIC_KEY_LEN]);

impl VerifyingKey {
    /// Verifies `signature` over the concatenation of `parts`.
    pub fn verify(&self, parts: &[&[u8]], signature: &[u8], what: &'static str) -> Result<()> {
        let message = parts.concat();
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(&message, signature)
            .map_err(|_| ProtocolError::BadSignature(what))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", crate::b64::encode(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DangerousSeededEntropy;

    #[test]
    fn sign_verify_and_reject() {
        let k = SigningKey::generate(&mut DangerousSeededEntropy::new(b"k")).unwrap();
        let sig = k.sign(&[b"ctx", b"msg"]);
        let vk = k.verifying_key();
        vk.verify(&[b"ctxmsg"], &sig, "test").unwrap();
        assert!(vk.verify(&[b"ctx", b"msh"], &sig, "test").is_err());
        assert!(vk.verify(&[b"ctx", b"msg"], &sig[..63], "test").is_err());
        let again = SigningKey::from_seed(&k.dangerously_export_seed()).unwrap();
        assert_eq!(again.verifying_key(), vk);
        assert!(!format!("{k:?}").contains(&format!("{:?}", &*k.seed)));
    }

    #[test]
    fn rfc8032_test_1() {
        // RFC 8032 §7.1 TEST 1 (empty message).
        let seed: [u8; 32] = [
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
            0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
            0x1c, 0xae, 0x7f, 0x60,
        ];
        let k = SigningKey::from_seed(&seed).unwrap();
        assert_eq!(k.verifying_key().0[..4], [0xd7, 0x5a, 0x98, 0x01]);
        let sig = k.sign(&[]);
        assert_eq!(sig[..4], [0xe5, 0x56, 0x43, 0x00]);
    }
}
