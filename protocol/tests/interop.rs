//! Interoperability with an independent HPKE implementation (the `hpke`
//! crate, RustCrypto-based): it must open what we seal — including a whole
//! Amparo envelope, using only the layout and `info` rule of PROTOCOL.md — and
//! we must open what it seals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_protocol::UnixTime;
use amparo_protocol::entropy::{DangerousSeededEntropy, SystemEntropy};
use amparo_protocol::envelope::{self, Envelope, Purpose};
use amparo_protocol::hpke as ours;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::{self, InnerHeader};
use amparo_protocol::primitives::x25519;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};

type TheirPrivate = <X25519HkdfSha256 as Kem>::PrivateKey;
type TheirPublic = <X25519HkdfSha256 as Kem>::PublicKey;
type TheirEnc = <X25519HkdfSha256 as Kem>::EncappedKey;

fn their_open(
    sk: &[u8; 32],
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ct: &[u8],
) -> Result<Vec<u8>, hpke::HpkeError> {
    let sk = TheirPrivate::from_bytes(sk)?;
    let enc = TheirEnc::from_bytes(enc)?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk,
        &enc,
        info,
        ct,
        aad,
    )
}

#[test]
fn they_open_what_we_seal() {
    let mut e = SystemEntropy::new();
    for len in [0usize, 1, 100, 5000] {
        let sk = x25519::SecretKey::generate(&mut e).unwrap();
        let msg = vec![0xA5u8; len];
        let (enc, ct) = ours::seal_base(&sk.public_key(), b"info", b"aad", &msg, &mut e).unwrap();
        let pt = their_open(&sk.dangerously_export(), &enc, b"info", b"aad", &ct).unwrap();
        assert_eq!(pt, msg);
        // And a different info is refused by them too.
        assert!(their_open(&sk.dangerously_export(), &enc, b"other", b"aad", &ct).is_err());
    }
}

#[test]
fn we_open_what_they_seal() {
    let mut e = SystemEntropy::new();
    for len in [0usize, 1, 100, 5000] {
        let sk = x25519::SecretKey::generate(&mut e).unwrap();
        let pk = TheirPublic::from_bytes(sk.public_key().as_bytes()).unwrap();
        let msg = vec![0x5Au8; len];
        let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
            &OpModeS::Base,
            &pk,
            b"info",
            &msg,
            b"aad",
        )
        .unwrap();
        let enc: [u8; 32] = enc.to_bytes().as_slice().try_into().unwrap();
        assert_eq!(
            ours::open_base(&enc, &sk, b"info", b"aad", &ct).unwrap(),
            msg
        );
    }
}

/// An independent implementation opens a whole Amparo envelope using only
/// what PROTOCOL.md says: header = bytes 0..14, enc = 14..46, ciphertext from
/// 46, info = "amparo-envelope" || 0x01 || purpose || header, empty AAD.
#[test]
fn they_open_a_whole_envelope_from_the_spec() {
    let mut e = DangerousSeededEntropy::new(b"interop envelope");
    let keys = RecipientKeys::generate(&mut e).unwrap();
    let inner = InnerHeader::new(&mut e, UnixTime(1_790_000_000)).unwrap();
    let env = Envelope::seal(
        &keys.public(),
        Purpose::Status,
        &inner,
        b"{\"v\":1}",
        &mut e,
    )
    .unwrap();
    let b = env.as_bytes();
    let header = &b[..14];
    let mut info = b"amparo-envelope".to_vec();
    info.extend_from_slice(&[1, 4]);
    info.extend_from_slice(header);
    let header_arr: [u8; envelope::HEADER_LEN] = header.try_into().unwrap();
    assert_eq!(info, envelope::info(Purpose::Status, &header_arr));
    let padded = their_open(
        &keys.sealing().dangerously_export(),
        &b[14..46],
        &info,
        b"",
        &b[46..],
    )
    .unwrap();
    let (h, body) = padding::unpad(&padded).unwrap();
    assert_eq!(h, inner);
    assert_eq!(body, b"{\"v\":1}");
}

/// We open an envelope that the independent implementation built from the
/// spec.
#[test]
fn we_open_an_envelope_they_built() {
    let mut e = DangerousSeededEntropy::new(b"interop envelope 2");
    let keys = RecipientKeys::generate(&mut e).unwrap();
    let inner = InnerHeader::new(&mut e, UnixTime(1_790_000_000)).unwrap();
    let padded = padding::pad(&inner, b"hola desde otra implementacion").unwrap();
    let mut header = vec![1u8, 1];
    header.extend_from_slice(&keys.mailbox().0);
    let mut info = b"amparo-envelope".to_vec();
    info.extend_from_slice(&[1, Purpose::Report as u8]);
    info.extend_from_slice(&header);
    let pk = TheirPublic::from_bytes(&keys.public().sealing_key).unwrap();
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeS::Base,
        &pk,
        &info,
        &padded,
        b"",
    )
    .unwrap();
    let mut bytes = header;
    bytes.extend_from_slice(&enc.to_bytes());
    bytes.extend_from_slice(&ct);
    let env = Envelope::from_bytes(bytes).unwrap();
    let opened = env.open(&keys, &Purpose::FOR_FOCAL_POINT).unwrap();
    assert_eq!(opened.purpose, Purpose::Report);
    assert_eq!(&**opened.body, b"hola desde otra implementacion");
}
