//! HKDF-SHA256 (RFC 5869) built on ring's HMAC.
//!
//! ring's own `hkdf` module hides the pseudorandom key, which RFC 9180's
//! labeled key schedule needs to handle as bytes; HMAC is all HKDF is made of.

use ring::hmac;
use zeroize::Zeroizing;

use crate::{ProtocolError, Result};

/// Output length of SHA-256 and size of a pseudorandom key.
pub const HASH_LEN: usize = 32;
/// The longest output HKDF-SHA256 may produce (255 blocks).
pub const MAX_OUTPUT: usize = 255 * HASH_LEN;

/// HKDF-Extract: `PRK = HMAC-SHA256(salt, ikm)`. An empty salt is the same as
/// `HASH_LEN` zero bytes (HMAC pads keys with zeros).
pub fn extract(salt: &[u8], ikm: &[&[u8]]) -> Zeroizing<[u8; HASH_LEN]> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, salt);
    let mut ctx = hmac::Context::with_key(&key);
    for part in ikm {
        ctx.update(part);
    }
    let mut prk = Zeroizing::new([0u8; HASH_LEN]);
    prk.copy_from_slice(ctx.sign().as_ref());
    prk
}

/// HKDF-Expand: `len` bytes of output keying material from `prk` and the
/// concatenation of `info`.
pub fn expand(prk: &[u8], info: &[&[u8]], len: usize) -> Result<Zeroizing<Vec<u8>>> {
    if len > MAX_OUTPUT {
        return Err(ProtocolError::TooLarge {
            what: "HKDF output",
            len,
            max: MAX_OUTPUT,
        });
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, prk);
    let mut okm = Zeroizing::new(Vec::with_capacity(len));
    let mut previous: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    let mut counter: u8 = 1;
    while okm.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&previous);
        for part in info {
            ctx.update(part);
        }
        ctx.update(&[counter]);
        let block = ctx.sign();
        let take = (len - okm.len()).min(HASH_LEN);
        okm.extend_from_slice(block.as_ref().get(..take).unwrap_or_default());
        *previous = block.as_ref().to_vec();
        counter = counter.wrapping_add(1);
    }
    Ok(okm)
}

/// Expands into a fixed-size array.
pub fn expand_array<const N: usize>(prk: &[u8], info: &[&[u8]]) -> Result<Zeroizing<[u8; N]>> {
    let okm = expand(prk, info, N)?;
    let mut out = Zeroizing::new([0u8; N]);
    out.copy_from_slice(&okm);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc5869_case_1() {
        let ikm = hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
        let salt = hex("000102030405060708090a0b0c");
        let info = hex("f0f1f2f3f4f5f6f7f8f9");
        let prk = extract(&salt, &[&ikm]);
        assert_eq!(
            prk.to_vec(),
            hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
        );
        let okm = expand(&*prk, &[&info], 42).unwrap();
        assert_eq!(
            okm.to_vec(),
            hex(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
        );
    }

    #[test]
    fn refuses_overlong_output() {
        assert!(expand(&[0u8; 32], &[], MAX_OUTPUT + 1).is_err());
        assert_eq!(
            expand(&[0u8; 32], &[], MAX_OUTPUT).unwrap().len(),
            MAX_OUTPUT
        );
    }
}
