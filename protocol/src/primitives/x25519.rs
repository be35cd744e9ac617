//! X25519 (RFC 7748) through x25519-dalek, with the all-zero check RFC 9180
//! §7.1.4 requires.
//!
//! ring's X25519 only offers ephemeral keys; focal points and reply mailboxes
//! keep long-lived sealing keys, hence x25519-dalek's `StaticSecret`.

use core::fmt;

use x25519_dalek::{PublicKey as DalekPublic, StaticSecret};
use zeroize::Zeroizing;

use crate::entropy::{Entropy, random};
use crate::{ProtocolError, Result};

/// Length of keys and shared secrets.
pub const KEY_LEN: usize = 32;

/// An X25519 secret key (zeroized on drop by x25519-dalek), with its public
/// key computed once: opening an envelope needs it for the KEM context, and a
/// base-point multiplication per open would cost a sixth of the whole open.
pub struct SecretKey {
    secret: StaticSecret,
    public: PublicKey,
}

impl SecretKey {
    /// A fresh key from `entropy`.
    pub fn generate(entropy: &mut dyn Entropy) -> Result<Self> {
        let bytes = Zeroizing::new(random::<KEY_LEN>(entropy)?);
        Ok(Self::from_bytes(&bytes))
    }

    /// The key for 32 stored bytes (clamping happens inside the scalar
    /// multiplication, as RFC 7748 specifies).
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        let secret = StaticSecret::from(*bytes);
        let public = PublicKey(DalekPublic::from(&secret).to_bytes());
        SecretKey { secret, public }
    }

    /// The raw bytes, for storing the key encrypted. Handle with care.
    pub fn dangerously_export(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Diffie-Hellman with `their` public key, rejecting an all-zero result.
    pub fn diffie_hellman(&self, their: &PublicKey) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        let shared = self.secret.diffie_hellman(&DalekPublic::from(their.0));
        if !shared.was_contributory() {
            return Err(ProtocolError::WeakPublicKey);
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("x25519::SecretKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// An X25519 public key (any 32 bytes are accepted as a u-coordinate; weak
/// keys are caught when they give an all-zero shared secret).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; KEY_LEN]);

impl PublicKey {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "x25519::PublicKey({})", crate::b64::encode(&self.0))
    }
}

/// Raw X25519 (scalar, u-coordinate) with no zero check: the primitive the
/// Wycheproof vectors test. Sealing never uses this directly.
pub fn raw_x25519(scalar: [u8; KEY_LEN], u: [u8; KEY_LEN]) -> [u8; KEY_LEN] {
    x25519_dalek::x25519(scalar, u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DangerousSeededEntropy;

    #[test]
    fn agreement_is_symmetric() {
        let mut e = DangerousSeededEntropy::new(b"dh");
        let a = SecretKey::generate(&mut e).unwrap();
        let b = SecretKey::generate(&mut e).unwrap();
        assert_eq!(
            *a.diffie_hellman(&b.public_key()).unwrap(),
            *b.diffie_hellman(&a.public_key()).unwrap()
        );
    }

    #[test]
    fn low_order_point_is_rejected() {
        let a = SecretKey::from_bytes(&[9u8; 32]);
        assert_eq!(
            a.diffie_hellman(&PublicKey([0u8; 32])),
            Err(ProtocolError::WeakPublicKey)
        );
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(
            a.diffie_hellman(&PublicKey(one)),
            Err(ProtocolError::WeakPublicKey)
        );
    }
}
