//! RFC 9180 HPKE, base mode only, for the one suite Amparo uses:
//! DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305
//! (kem 0x0020, kdf 0x0001, aead 0x0003).
//!
//! Built by hand on [`crate::primitives`] rather than on the `hpke` crate: the
//! whole construction is the labeled key schedule below, written straight from
//! RFC 9180 §4–§5, and keeping it here means one HMAC (ring), one X25519
//! (x25519-dalek) and one AEAD in the build, the all-zero check under our
//! control, and the intermediate values (shared secret, key, nonce, exporter
//! secret) reachable by the official test vectors. The `hpke` crate is used in
//! tests as the independent implementation that must interoperate with this one.

use core::fmt;

use zeroize::Zeroizing;

use crate::entropy::Entropy;
use crate::primitives::{aead, hkdf, x25519};
use crate::{ProtocolError, Result};

/// KEM identifier: DHKEM(X25519, HKDF-SHA256).
pub const KEM_ID: u16 = 0x0020;
/// KDF identifier: HKDF-SHA256.
pub const KDF_ID: u16 = 0x0001;
/// AEAD identifier: ChaCha20-Poly1305.
pub const AEAD_ID: u16 = 0x0003;
/// Length of the encapsulated key (`enc`), an X25519 public key.
pub const N_ENC: usize = 32;
/// Length of the KEM shared secret.
pub const N_SECRET: usize = 32;
/// AEAD key length.
pub const N_K: usize = aead::KEY_LEN;
/// AEAD nonce length.
pub const N_N: usize = aead::NONCE_LEN;
/// AEAD tag length.
pub const N_T: usize = aead::TAG_LEN;

const MODE_BASE: u8 = 0x00;
const VERSION_LABEL: &[u8] = b"HPKE-v1";

/// `"KEM" || I2OSP(kem_id, 2)`
const KEM_SUITE_ID: [u8; 5] = [b'K', b'E', b'M', 0x00, 0x20];
/// `"HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2)`
const HPKE_SUITE_ID: [u8; 10] = [b'H', b'P', b'K', b'E', 0x00, 0x20, 0x00, 0x01, 0x00, 0x03];

fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; 32]> {
    hkdf::extract(salt, &[VERSION_LABEL, suite, label, ikm])
}

fn labeled_expand(
    suite: &[u8],
    prk: &[u8],
    label: &[u8],
    info: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let l = u16::try_from(len).map_err(|_| ProtocolError::TooLarge {
        what: "HPKE labeled output",
        len,
        max: usize::from(u16::MAX),
    })?;
    hkdf::expand(
        prk,
        &[&l.to_be_bytes(), VERSION_LABEL, suite, label, info],
        len,
    )
}

fn labeled_expand_array<const N: usize>(
    suite: &[u8],
    prk: &[u8],
    label: &[u8],
    info: &[u8],
) -> Result<Zeroizing<[u8; N]>> {
    let v = labeled_expand(suite, prk, label, info, N)?;
    let mut out = Zeroizing::new([0u8; N]);
    out.copy_from_slice(&v);
    Ok(out)
}

/// RFC 9180 §7.1.3 DeriveKeyPair for X25519: a key pair from input keying
/// material (at least 32 bytes of entropy).
pub fn derive_key_pair(ikm: &[u8]) -> Result<x25519::SecretKey> {
    let dkp_prk = labeled_extract(&KEM_SUITE_ID, b"", b"dkp_prk", ikm);
    let sk = labeled_expand_array::<32>(&KEM_SUITE_ID, &*dkp_prk, b"sk", b"")?;
    Ok(x25519::SecretKey::from_bytes(&sk))
}

/// The KEM shared secret (zeroized on drop).
pub struct SharedSecret(Zeroizing<[u8; N_SECRET]>);

impl SharedSecret {
    /// The raw bytes (for test vectors).
    pub fn dangerously_as_bytes(&self) -> &[u8; N_SECRET] {
        &self.0
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

fn extract_and_expand(dh: &[u8], kem_context: &[u8]) -> Result<SharedSecret> {
    let eae_prk = labeled_extract(&KEM_SUITE_ID, b"", b"eae_prk", dh);
    let ss =
        labeled_expand_array::<N_SECRET>(&KEM_SUITE_ID, &*eae_prk, b"shared_secret", kem_context)?;
    Ok(SharedSecret(ss))
}

/// Encap with a given ephemeral secret: returns the shared secret and `enc`.
/// Rejects an all-zero Diffie-Hellman output.
pub fn encap_with_ephemeral(
    pk_r: &x25519::PublicKey,
    sk_e: &x25519::SecretKey,
) -> Result<(SharedSecret, [u8; N_ENC])> {
    let dh = sk_e.diffie_hellman(pk_r)?;
    let enc = sk_e.public_key().0;
    let mut kem_context = [0u8; 2 * N_ENC];
    kem_context[..N_ENC].copy_from_slice(&enc);
    kem_context[N_ENC..].copy_from_slice(pk_r.as_bytes());
    Ok((extract_and_expand(&*dh, &kem_context)?, enc))
}

/// Decap: the shared secret for `enc` under the recipient's secret key.
/// Rejects an all-zero Diffie-Hellman output.
pub fn decap(enc: &[u8; N_ENC], sk_r: &x25519::SecretKey) -> Result<SharedSecret> {
    let dh = sk_r.diffie_hellman(&x25519::PublicKey(*enc))?;
    let mut kem_context = [0u8; 2 * N_ENC];
    kem_context[..N_ENC].copy_from_slice(enc);
    kem_context[N_ENC..].copy_from_slice(sk_r.public_key().as_bytes());
    extract_and_expand(&*dh, &kem_context)
}

/// An HPKE encryption context (RFC 9180 §5.2), base mode.
///
/// A sender context seals with sequence numbers 0, 1, 2…; a receiver context
/// opens in the same order. Amparo's envelopes use only sequence 0
/// (single-shot), which is why a fresh ephemeral key per envelope is required.
pub struct Context {
    key: Zeroizing<[u8; N_K]>,
    base_nonce: Zeroizing<[u8; N_N]>,
    exporter_secret: Zeroizing<[u8; 32]>,
    seq: u64,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("hpke::Context")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// KeySchedule for mode_base (empty psk and psk_id).
    pub fn base(shared_secret: &SharedSecret, info: &[u8]) -> Result<Context> {
        let psk_id_hash = labeled_extract(&HPKE_SUITE_ID, b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract(&HPKE_SUITE_ID, b"", b"info_hash", info);
        let mut ksc = [0u8; 1 + 32 + 32];
        ksc[0] = MODE_BASE;
        ksc[1..33].copy_from_slice(&*psk_id_hash);
        ksc[33..].copy_from_slice(&*info_hash);
        let secret = labeled_extract(&HPKE_SUITE_ID, &*shared_secret.0, b"secret", b"");
        Ok(Context {
            key: labeled_expand_array(&HPKE_SUITE_ID, &*secret, b"key", &ksc)?,
            base_nonce: labeled_expand_array(&HPKE_SUITE_ID, &*secret, b"base_nonce", &ksc)?,
            exporter_secret: labeled_expand_array(&HPKE_SUITE_ID, &*secret, b"exp", &ksc)?,
            seq: 0,
        })
    }

    fn nonce(&self) -> [u8; N_N] {
        let mut nonce = *self.base_nonce;
        let seq = self.seq.to_be_bytes();
        for (n, s) in nonce[N_N - 8..].iter_mut().zip(seq.iter()) {
            *n ^= s;
        }
        nonce
    }

    fn increment(&mut self) -> Result<()> {
        self.seq = self.seq.checked_add(1).ok_or(ProtocolError::MessageLimit)?;
        Ok(())
    }

    /// Seals the next message.
    pub fn seal(&mut self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let ct = aead::seal(&self.key, &self.nonce(), aad, plaintext)?;
        self.increment()?;
        Ok(ct)
    }

    /// Opens the next message; the sequence number advances only on success.
    pub fn open(&mut self, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
        let pt = aead::open(&self.key, &self.nonce(), aad, ciphertext)?;
        self.increment()?;
        Ok(pt)
    }

    /// Secret export (RFC 9180 §5.3).
    pub fn export(&self, exporter_context: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
        labeled_expand(
            &HPKE_SUITE_ID,
            &*self.exporter_secret,
            b"sec",
            exporter_context,
            len,
        )
    }

    /// Key, base nonce and exporter secret, for the official test vectors.
    pub fn dangerously_secrets(&self) -> (&[u8; N_K], &[u8; N_N], &[u8; 32]) {
        (&self.key, &self.base_nonce, &self.exporter_secret)
    }
}

/// Single-shot base-mode seal with a fresh ephemeral key from `entropy`.
/// Returns `(enc, ciphertext)`.
pub fn seal_base(
    pk_r: &x25519::PublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    entropy: &mut dyn Entropy,
) -> Result<([u8; N_ENC], Vec<u8>)> {
    let sk_e = x25519::SecretKey::generate(entropy)?;
    seal_base_with_ephemeral(pk_r, &sk_e, info, aad, plaintext)
}

/// Single-shot seal with a given ephemeral secret (test vectors and
/// reproducible examples only: reusing an ephemeral key reuses the nonce).
pub fn seal_base_with_ephemeral(
    pk_r: &x25519::PublicKey,
    sk_e: &x25519::SecretKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<([u8; N_ENC], Vec<u8>)> {
    let (ss, enc) = encap_with_ephemeral(pk_r, sk_e)?;
    let ct = Context::base(&ss, info)?.seal(aad, plaintext)?;
    Ok((enc, ct))
}

/// Single-shot base-mode open.
pub fn open_base(
    enc: &[u8; N_ENC],
    sk_r: &x25519::SecretKey,
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>> {
    let ss = decap(enc, sk_r)?;
    Context::base(&ss, info)?.open(aad, ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DangerousSeededEntropy;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let mut e = DangerousSeededEntropy::new(b"hpke");
        let sk = x25519::SecretKey::generate(&mut e).unwrap();
        let (enc, ct) = seal_base(&sk.public_key(), b"info", b"aad", b"secret", &mut e).unwrap();
        assert_eq!(
            open_base(&enc, &sk, b"info", b"aad", &ct).unwrap(),
            b"secret"
        );
        assert!(open_base(&enc, &sk, b"inf0", b"aad", &ct).is_err());
        assert!(open_base(&enc, &sk, b"info", b"aae", &ct).is_err());
        let other = x25519::SecretKey::generate(&mut e).unwrap();
        assert!(open_base(&enc, &other, b"info", b"aad", &ct).is_err());
    }

    #[test]
    fn fresh_ephemeral_each_time() {
        let mut e = DangerousSeededEntropy::new(b"hpke2");
        let sk = x25519::SecretKey::generate(&mut e).unwrap();
        let (enc1, ct1) = seal_base(&sk.public_key(), b"", b"", b"x", &mut e).unwrap();
        let (enc2, ct2) = seal_base(&sk.public_key(), b"", b"", b"x", &mut e).unwrap();
        assert_ne!(enc1, enc2);
        assert_ne!(ct1, ct2);
    }

    #[test]
    fn zero_public_key_is_rejected_both_ways() {
        let mut e = DangerousSeededEntropy::new(b"hpke3");
        let zero = x25519::PublicKey([0u8; 32]);
        assert_eq!(
            seal_base(&zero, b"", b"", b"x", &mut e).unwrap_err(),
            ProtocolError::WeakPublicKey
        );
        let sk = x25519::SecretKey::generate(&mut e).unwrap();
        assert_eq!(
            decap(&[0u8; 32], &sk).unwrap_err(),
            ProtocolError::WeakPublicKey
        );
    }
}
