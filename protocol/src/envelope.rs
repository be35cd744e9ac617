//! Envelope v1: what travels from a phone to a mailbox.
//!
//! Layout (all sizes in bytes):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version = 1 |
//! | 1 | 1 | suite = 1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) |
//! | 2 | 12 | recipient mailbox id |
//! | 14 | 32 | HPKE `enc` (ephemeral X25519 public key) |
//! | 46 | c + 16 | HPKE ciphertext of a padded plaintext of class `c`, with its tag |
//!
//! The fixed overhead beyond the padded plaintext is 62 bytes. The relay can
//! check the version, suite and size class without any key; only the
//! recipient can open the rest.
//!
//! The first 14 bytes (the cleartext header) are bound into the HPKE `info`
//! together with the purpose (report, chunk, reply, status), so an envelope
//! cannot be opened as another kind and its header cannot be swapped:
//!
//! `info = "amparo-envelope" || 0x01 || purpose || header[0..14]`
//!
//! The AEAD's associated data is empty (everything is already in `info`).
//!
//! The envelope id is never sent: it is the first 16 bytes of SHA-256 over the
//! whole envelope, computed by whoever holds it. Identical copies — sent
//! directly and also carried by a facilitator — have the same id.

use core::fmt;

use zeroize::Zeroizing;

use crate::codec::{Reader, expect_version};
use crate::entropy::Entropy;
use crate::keys::{MAILBOX_ID_LEN, MailboxId, RecipientKeys, RecipientPublic};
use crate::padding::{self, InnerHeader};
use crate::primitives::sha256_prefix;
use crate::{ProtocolError, Result, b64};
use crate::{compression, hpke};

/// Envelope format version.
pub const VERSION: u8 = 1;
/// Suite byte for DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305.
pub const SUITE_X25519_CHACHA20POLY1305: u8 = 1;
/// Length of the cleartext header (version, suite, mailbox).
pub const HEADER_LEN: usize = 2 + MAILBOX_ID_LEN;
/// Offset of the ciphertext.
pub const CIPHERTEXT_OFFSET: usize = HEADER_LEN + hpke::N_ENC;
/// Bytes an envelope adds to its padded plaintext.
pub const OVERHEAD: usize = CIPHERTEXT_OFFSET + hpke::N_T;
/// The largest valid envelope.
pub const MAX_LEN: usize = padding::MAX_CLASS + OVERHEAD;
/// Length of an envelope id.
pub const ID_LEN: usize = 16;

const INFO_LABEL: &[u8] = b"amparo-envelope";
const PROTOCOL_VERSION: u8 = 1;

/// What an envelope carries. Bound into the seal, never sent in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Purpose {
    /// A report from a survivor to a focal point (also a referral between
    /// focal points).
    Report = 1,
    /// A piece of an attachment that a report references.
    Chunk = 2,
    /// A message on a report's reply channel, either way.
    Reply = 3,
    /// A case-status update from a focal point to a survivor.
    Status = 4,
    /// A focal point's month of statistics, to the coordinator
    /// ([`crate::statistics::SignedMonthTable`]).
    Statistics = 5,
    /// A step of the statistics sum between offices and the coordinator
    /// ([`crate::aggregation::SignedMessage`]): to a focal point's mailbox
    /// and to the coordinator's statistics mailbox.
    Aggregation = 6,
}

impl Purpose {
    /// All purposes, in byte order.
    pub const ALL: [Purpose; 6] = [
        Purpose::Report,
        Purpose::Chunk,
        Purpose::Reply,
        Purpose::Status,
        Purpose::Statistics,
        Purpose::Aggregation,
    ];
    /// What a focal point's mailbox receives.
    pub const FOR_FOCAL_POINT: [Purpose; 4] = [
        Purpose::Report,
        Purpose::Chunk,
        Purpose::Reply,
        Purpose::Aggregation,
    ];
    /// What a survivor's reply mailbox receives.
    pub const FOR_REPLY_MAILBOX: [Purpose; 2] = [Purpose::Reply, Purpose::Status];
    /// What the coordinator's statistics mailbox receives.
    pub const FOR_STATISTICS: [Purpose; 2] = [Purpose::Statistics, Purpose::Aggregation];
}

impl Purpose {
    /// Whether a body of this purpose may travel compressed (PROTOCOL.md
    /// §5.1): the JSON payloads people write. Chunks are never compressed
    /// (photos, audio and video are compressed already, and a chunk fills
    /// its class by design); statistics messages are small and signed.
    pub fn may_compress(self) -> bool {
        matches!(self, Purpose::Report | Purpose::Reply | Purpose::Status)
    }
}

/// Whether [`Envelope::seal_with`] may compress the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Never: the recipient has not said it reads compressed bodies.
    Off,
    /// When the purpose allows it and the compressed form is shorter.
    IfSmaller,
}

/// The HPKE `info` for an envelope of `purpose` with cleartext `header`.
pub fn info(
    purpose: Purpose,
    header: &[u8; HEADER_LEN],
) -> [u8; INFO_LABEL.len() + 2 + HEADER_LEN] {
    let mut out = [0u8; INFO_LABEL.len() + 2 + HEADER_LEN];
    let (label, rest) = out.split_at_mut(INFO_LABEL.len());
    label.copy_from_slice(INFO_LABEL);
    let (tags, hdr) = rest.split_at_mut(2);
    tags.copy_from_slice(&[PROTOCOL_VERSION, purpose as u8]);
    hdr.copy_from_slice(header);
    out
}

/// The id of an envelope: the first 16 bytes of SHA-256 over its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvelopeId(pub [u8; ID_LEN]);

impl EnvelopeId {
    /// The id of `envelope_bytes` (any bytes; validity is not checked).
    pub fn of(envelope_bytes: &[u8]) -> EnvelopeId {
        EnvelopeId(sha256_prefix(&[envelope_bytes]))
    }

    /// Parses the 22-character base64url form.
    pub fn parse(text: &str) -> Result<EnvelopeId> {
        Ok(EnvelopeId(b64::decode_array(text, "envelope id")?))
    }
}

impl fmt::Display for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&b64::encode(&self.0))
    }
}

impl fmt::Debug for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvelopeId({self})")
    }
}

/// A well-formed sealed envelope (version, suite and size class checked).
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    bytes: Vec<u8>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Envelope(id {}, to {}, {} bytes)",
            self.id(),
            self.mailbox(),
            self.bytes.len()
        )
    }
}

/// An opened envelope.
pub struct Opened {
    /// What the sender sealed it as.
    pub purpose: Purpose,
    /// The inner header (message id, hour, flags). `header.is_compressed()`
    /// says whether the body travelled compressed.
    pub header: InnerHeader,
    /// The body, without padding and decompressed (zeroized on drop).
    pub body: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("purpose", &self.purpose)
            .field("header", &self.header)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Envelope {
    /// Checks the cleartext framing of `bytes` (version, suite, a length that
    /// matches a size class) and takes them as an envelope.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Envelope> {
        Self::check(&bytes)?;
        Ok(Envelope { bytes })
    }

    /// Like [`Envelope::from_bytes`] from a borrowed slice. Checks before it
    /// copies, so an oversize input costs no allocation.
    pub fn decode(bytes: &[u8]) -> Result<Envelope> {
        Self::check(bytes)?;
        Ok(Envelope {
            bytes: bytes.to_vec(),
        })
    }

    fn check(bytes: &[u8]) -> Result<()> {
        let mut r = Reader::new(bytes);
        expect_version("envelope", r.u8()?, VERSION)?;
        let suite = r.u8()?;
        if suite != SUITE_X25519_CHACHA20POLY1305 {
            return Err(ProtocolError::UnsupportedSuite(suite));
        }
        r.take(MAILBOX_ID_LEN + hpke::N_ENC)?;
        let ct_len = r.remaining();
        if ct_len < hpke::N_T || !padding::is_class(ct_len - hpke::N_T) {
            return Err(ProtocolError::BadSizeClass(bytes.len()));
        }
        Ok(())
    }

    /// Seals `body` for `recipient` as `purpose`, padded to the smallest class
    /// that fits, with a fresh ephemeral key drawn from `entropy`. The body
    /// travels as it is; see [`Envelope::seal_with`].
    pub fn seal(
        recipient: &RecipientPublic,
        purpose: Purpose,
        inner: &InnerHeader,
        body: &[u8],
        entropy: &mut dyn Entropy,
    ) -> Result<Envelope> {
        Self::seal_with(recipient, purpose, inner, body, Compression::Off, entropy)
    }

    /// Like [`Envelope::seal`], compressing the body first when `compression`
    /// allows it, the purpose may be compressed and the compressed form is
    /// shorter (PROTOCOL.md §5.1). A compressed body sets
    /// [`padding::FLAG_COMPRESSED`]; `inner` must not set it itself.
    pub fn seal_with(
        recipient: &RecipientPublic,
        purpose: Purpose,
        inner: &InnerHeader,
        body: &[u8],
        compression: Compression,
        entropy: &mut dyn Entropy,
    ) -> Result<Envelope> {
        if inner.is_compressed() {
            return Err(ProtocolError::Invalid("inner header flags"));
        }
        let packed = match compression {
            Compression::IfSmaller if purpose.may_compress() && !inner.is_cover() => {
                Some(compression::compress(body)?).filter(|p| p.len() < body.len())
            }
            _ => None,
        };
        let padded = match &packed {
            Some(p) => {
                let header = InnerHeader {
                    flags: inner.flags | padding::FLAG_COMPRESSED,
                    ..*inner
                };
                padding::pad(&header, p)?
            }
            None => padding::pad(inner, body)?,
        };
        let header = header_bytes(recipient.mailbox());
        let (enc, ct) = hpke::seal_base(
            &recipient.sealing_public(),
            &info(purpose, &header),
            b"",
            &padded,
            entropy,
        )?;
        let mut bytes = Vec::with_capacity(CIPHERTEXT_OFFSET + ct.len());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&enc);
        bytes.extend_from_slice(&ct);
        Ok(Envelope { bytes })
    }

    /// Opens the envelope with `keys`, accepting only the purposes in
    /// `accept`. Fails with [`ProtocolError::Misaddressed`] if the header names
    /// another mailbox, and [`ProtocolError::OpenFailed`] if it was sealed to
    /// another key, for a purpose not accepted, or altered in any byte.
    pub fn open(&self, keys: &RecipientKeys, accept: &[Purpose]) -> Result<Opened> {
        if self.mailbox() != keys.mailbox() {
            return Err(ProtocolError::Misaddressed);
        }
        let header = self.header();
        let shared = hpke::decap(&self.enc(), keys.sealing())?;
        for &purpose in accept {
            let mut ctx = hpke::Context::base(&shared, &info(purpose, &header))?;
            if let Ok(padded) = ctx.open(b"", self.ciphertext()) {
                let padded = Zeroizing::new(padded);
                let (inner, body) = padding::unpad(&padded)?;
                let body = if inner.is_compressed() {
                    if !purpose.may_compress() {
                        return Err(ProtocolError::Invalid("compressed body for this purpose"));
                    }
                    compression::decompress(body)?
                } else {
                    Zeroizing::new(body.to_vec())
                };
                return Ok(Opened {
                    purpose,
                    header: inner,
                    body,
                });
            }
        }
        Err(ProtocolError::OpenFailed)
    }

    /// The envelope's id.
    pub fn id(&self) -> EnvelopeId {
        EnvelopeId::of(&self.bytes)
    }

    /// The recipient mailbox named in the header.
    pub fn mailbox(&self) -> MailboxId {
        let mut id = [0u8; MAILBOX_ID_LEN];
        if let Some(src) = self.bytes.get(2..HEADER_LEN) {
            id.copy_from_slice(src);
        }
        MailboxId(id)
    }

    /// The padded plaintext size class (what an observer learns).
    pub fn size_class(&self) -> usize {
        self.bytes.len() - OVERHEAD
    }

    /// The cleartext header.
    pub fn header(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        if let Some(src) = self.bytes.get(..HEADER_LEN) {
            h.copy_from_slice(src);
        }
        h
    }

    fn enc(&self) -> [u8; hpke::N_ENC] {
        let mut e = [0u8; hpke::N_ENC];
        if let Some(src) = self.bytes.get(HEADER_LEN..CIPHERTEXT_OFFSET) {
            e.copy_from_slice(src);
        }
        e
    }

    fn ciphertext(&self) -> &[u8] {
        self.bytes.get(CIPHERTEXT_OFFSET..).unwrap_or_default()
    }

    /// The envelope's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The envelope's bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

fn header_bytes(mailbox: MailboxId) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = VERSION;
    h[1] = SUITE_X25519_CHACHA20POLY1305;
    h[2..].copy_from_slice(&mailbox.0);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UnixTime;
    use crate::entropy::DangerousSeededEntropy;
    use proptest::prelude::*;

    fn setup() -> (DangerousSeededEntropy, RecipientKeys) {
        let mut e = DangerousSeededEntropy::new(b"envelope tests");
        let k = RecipientKeys::generate(&mut e).unwrap();
        (e, k)
    }

    fn inner(e: &mut DangerousSeededEntropy) -> InnerHeader {
        InnerHeader::new(e, UnixTime(1_790_000_000)).unwrap()
    }

    #[test]
    fn overhead_is_within_target() {
        assert_eq!(OVERHEAD, 62);
        const { assert!(OVERHEAD <= 64) };
    }

    #[test]
    fn seal_and_open() {
        let (mut e, k) = setup();
        let h = inner(&mut e);
        let env = Envelope::seal(&k.public(), Purpose::Report, &h, b"report body", &mut e).unwrap();
        assert_eq!(env.as_bytes().len(), 1024 + OVERHEAD);
        assert_eq!(env.mailbox(), k.mailbox());
        assert_eq!(env.size_class(), 1024);
        let opened = env.open(&k, &Purpose::FOR_FOCAL_POINT).unwrap();
        assert_eq!(opened.purpose, Purpose::Report);
        assert_eq!(opened.header, h);
        assert_eq!(&**opened.body, b"report body");
        // The decoder accepts what the sealer produced.
        assert_eq!(Envelope::decode(env.as_bytes()).unwrap(), env);
    }

    /// An envelope sealed as `purpose` around a padded plaintext built by
    /// hand (what a sender that ignores the rules could make).
    fn seal_padded(
        k: &RecipientKeys,
        purpose: Purpose,
        padded: &[u8],
        e: &mut DangerousSeededEntropy,
    ) -> Envelope {
        let header = header_bytes(k.mailbox());
        let (enc, ct) = hpke::seal_base(
            &k.public().sealing_public(),
            &info(purpose, &header),
            b"",
            padded,
            e,
        )
        .unwrap();
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(&enc);
        bytes.extend_from_slice(&ct);
        Envelope::from_bytes(bytes).unwrap()
    }

    #[test]
    fn compressed_bodies_open_only_where_allowed() {
        let (mut e, k) = setup();
        let h = inner(&mut e);
        let body = "Me pidieron dinero para no detenerme. ".repeat(60);
        // A report: compressed, into the 1536 class, and opened back.
        let env = Envelope::seal_with(
            &k.public(),
            Purpose::Report,
            &h,
            body.as_bytes(),
            Compression::IfSmaller,
            &mut e,
        )
        .unwrap();
        assert!(env.size_class() < padding::class_for(body.len()).unwrap());
        let opened = env.open(&k, &[Purpose::Report]).unwrap();
        assert!(opened.header.is_compressed());
        assert_eq!(&opened.body[..], body.as_bytes());
        // Off, and for a chunk even when allowed: plain.
        for (purpose, compression) in [
            (Purpose::Report, Compression::Off),
            (Purpose::Chunk, Compression::IfSmaller),
            (Purpose::Statistics, Compression::IfSmaller),
        ] {
            let env = Envelope::seal_with(
                &k.public(),
                purpose,
                &h,
                body.as_bytes(),
                compression,
                &mut e,
            )
            .unwrap();
            assert!(!env.open(&k, &[purpose]).unwrap().header.is_compressed());
        }
        // A header that already says "compressed" is refused: the sealer sets it.
        let flagged = InnerHeader {
            flags: padding::FLAG_COMPRESSED,
            ..h
        };
        assert!(
            Envelope::seal_with(
                &k.public(),
                Purpose::Report,
                &flagged,
                b"x",
                Compression::IfSmaller,
                &mut e
            )
            .is_err()
        );
        // A compressed chunk, statistics or aggregation body is refused on opening.
        let packed = compression::compress(body.as_bytes()).unwrap();
        let padded = padding::pad(&flagged, &packed).unwrap();
        for purpose in [Purpose::Chunk, Purpose::Statistics, Purpose::Aggregation] {
            let env = seal_padded(&k, purpose, &padded, &mut e);
            assert_eq!(
                env.open(&k, &Purpose::ALL).unwrap_err(),
                ProtocolError::Invalid("compressed body for this purpose")
            );
        }
        assert!(
            seal_padded(&k, Purpose::Status, &padded, &mut e)
                .open(&k, &Purpose::ALL)
                .is_ok()
        );
    }

    #[test]
    fn purpose_is_bound() {
        let (mut e, k) = setup();
        let h = inner(&mut e);
        let env = Envelope::seal(&k.public(), Purpose::Reply, &h, b"x", &mut e).unwrap();
        assert_eq!(
            env.open(&k, &[Purpose::Report, Purpose::Chunk])
                .unwrap_err(),
            ProtocolError::OpenFailed
        );
        assert_eq!(env.open(&k, &Purpose::ALL).unwrap().purpose, Purpose::Reply);
    }

    #[test]
    fn header_swap_is_detected() {
        let (mut e, k) = setup();
        let other = RecipientKeys::generate(&mut e).unwrap();
        let h = inner(&mut e);
        let env = Envelope::seal(&k.public(), Purpose::Report, &h, b"x", &mut e).unwrap();
        // Re-address to another mailbox: the other recipient can't open it
        // (wrong key) and the right key refuses it as misaddressed.
        let mut bytes = env.clone().into_bytes();
        bytes[2..14].copy_from_slice(&other.mailbox().0);
        let swapped = Envelope::from_bytes(bytes).unwrap();
        assert_eq!(
            swapped.open(&k, &Purpose::ALL).unwrap_err(),
            ProtocolError::Misaddressed
        );
        assert_eq!(
            swapped.open(&other, &Purpose::ALL).unwrap_err(),
            ProtocolError::OpenFailed
        );
    }

    #[test]
    fn every_byte_is_authenticated() {
        let (mut e, k) = setup();
        let h = inner(&mut e);
        let env = Envelope::seal(&k.public(), Purpose::Report, &h, b"x", &mut e).unwrap();
        for i in [0usize, 1, 14, 30, 46, 500, env.as_bytes().len() - 1] {
            let mut b = env.clone().into_bytes();
            b[i] ^= 0x01;
            let result = Envelope::from_bytes(b).and_then(|t| t.open(&k, &Purpose::ALL));
            assert!(result.is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn decoder_checks_framing() {
        let (mut e, k) = setup();
        let h = inner(&mut e);
        let env = Envelope::seal(&k.public(), Purpose::Report, &h, b"x", &mut e).unwrap();
        let b = env.as_bytes();
        assert!(matches!(
            Envelope::decode(&b[..b.len() - 1]),
            Err(ProtocolError::BadSizeClass(_))
        ));
        assert!(matches!(
            Envelope::decode(&b[..10]),
            Err(ProtocolError::Truncated { .. })
        ));
        assert!(matches!(
            Envelope::decode(&[]),
            Err(ProtocolError::Truncated { .. })
        ));
        let mut v = b.to_vec();
        v[0] = 2;
        assert!(matches!(
            Envelope::decode(&v),
            Err(ProtocolError::UnsupportedVersion { .. })
        ));
        let mut s = b.to_vec();
        s[1] = 9;
        assert_eq!(
            Envelope::decode(&s),
            Err(ProtocolError::UnsupportedSuite(9))
        );
    }

    #[test]
    fn ids_collapse_identical_copies() {
        let (mut e, k) = setup();
        let h = inner(&mut e);
        let a = Envelope::seal(&k.public(), Purpose::Report, &h, b"x", &mut e).unwrap();
        let copy = Envelope::decode(a.as_bytes()).unwrap();
        assert_eq!(a.id(), copy.id());
        // Re-sealing the same message gives a new envelope (fresh ephemeral
        // key) but keeps the inner message id for deduplication.
        let b = Envelope::seal(&k.public(), Purpose::Report, &h, b"x", &mut e).unwrap();
        assert_ne!(a.id(), b.id());
        assert_eq!(
            a.open(&k, &Purpose::ALL).unwrap().header.message_id,
            b.open(&k, &Purpose::ALL).unwrap().header.message_id
        );
        assert_eq!(EnvelopeId::parse(&a.id().to_string()).unwrap(), a.id());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn round_trip(body in proptest::collection::vec(any::<u8>(), 0..20_000), p in 0usize..4) {
            let (mut e, k) = setup();
            let h = inner(&mut e);
            let purpose = Purpose::ALL[p];
            let env = Envelope::seal(&k.public(), purpose, &h, &body, &mut e).unwrap();
            let back = Envelope::decode(env.as_bytes()).unwrap();
            let o = back.open(&k, &Purpose::ALL).unwrap();
            prop_assert_eq!(o.purpose, purpose);
            prop_assert_eq!(&o.body[..], &body[..]);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = Envelope::decode(&bytes);
        }
    }
}
