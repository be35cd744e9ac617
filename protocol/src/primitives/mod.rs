//! Thin, tested wrappers over the primitives Amparo calls directly: HKDF-SHA256
//! (on ring's HMAC), ChaCha20-Poly1305 (RustCrypto), Ed25519 (ring), X25519
//! (x25519-dalek) and SHA-256 (ring).
//!
//! Everything else in the workspace reaches cryptography through this module
//! or through [`crate::hpke`], so that the Wycheproof vectors in
//! `protocol/testdata/` cover every primitive call the project makes.

pub mod aead;
pub mod ed25519;
pub mod hkdf;
pub mod x25519;

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The first `N` bytes of SHA-256 over `parts` (N ≤ 32).
pub fn sha256_prefix<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    const { assert!(N <= 32) };
    let full = sha256(parts);
    let mut out = [0u8; N];
    for (o, f) in out.iter_mut().zip(full.iter()) {
        *o = *f;
    }
    out
}

/// Constant-time equality of two byte strings of equal length.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc() {
        // FIPS 180-2 appendix B.1.
        let d = sha256(&[b"a", b"bc"]);
        assert_eq!(
            d[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts ba7816bf"
        );
        assert_eq!(sha256_prefix::<4>(&[b"abc"]), [0xba, 0x78, 0x16, 0xbf]);
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
