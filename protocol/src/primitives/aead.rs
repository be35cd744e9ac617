//! ChaCha20-Poly1305 (RFC 8439), single messages with explicit key and nonce.
//!
//! Used by HPKE and by amparo-core's encryption at rest. Callers are
//! responsible for never repeating a nonce under one key: HPKE derives a fresh
//! key per envelope, and the store draws a random nonce per value.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::{ProtocolError, Result};

/// Key length in bytes.
pub const KEY_LEN: usize = 32;
/// Nonce length in bytes.
pub const NONCE_LEN: usize = 12;
/// Authentication tag length in bytes.
pub const TAG_LEN: usize = 16;

fn cipher(key: &[u8; KEY_LEN]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(&Key::from(*key))
}

/// Encrypts `plaintext`, returning ciphertext followed by the 16-byte tag.
pub fn seal(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    cipher(key)
        .encrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| ProtocolError::TooLarge {
            what: "AEAD plaintext",
            len: plaintext.len(),
            max: usize::MAX,
        })
}

/// Decrypts and authenticates `ciphertext` (with its trailing tag).
pub fn open(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>> {
    if ciphertext.len() < TAG_LEN {
        return Err(ProtocolError::OpenFailed);
    }
    cipher(key)
        .decrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| ProtocolError::OpenFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = [7u8; 32];
        let nonce = [1u8; 12];
        let ct = seal(&key, &nonce, b"aad", b"hola").unwrap();
        assert_eq!(ct.len(), 4 + TAG_LEN);
        assert_eq!(open(&key, &nonce, b"aad", &ct).unwrap(), b"hola");
        assert_eq!(
            open(&key, &nonce, b"aae", &ct),
            Err(ProtocolError::OpenFailed)
        );
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(
            open(&key, &nonce, b"aad", &bad),
            Err(ProtocolError::OpenFailed)
        );
        assert_eq!(
            open(&key, &nonce, b"aad", &ct[..3]),
            Err(ProtocolError::OpenFailed)
        );
    }
}
