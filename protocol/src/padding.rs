//! Padding to fixed size classes, and the small header that travels inside
//! every seal.
//!
//! An observer (the relay, the network, a facilitator) sees only the length
//! of an envelope. Every plaintext is therefore padded to one of four sizes —
//! 1, 4, 16 or 64 KiB — and media larger than the top class are split into
//! equal top-class chunks ([`crate::payload::chunk`]), so the observer learns
//! a size class and a count of equal blobs, nothing finer. A compressed body
//! ([`crate::compression`]) may also use a fifth class, 1.5 KiB
//! ([`COMPRESSED_CLASS`]): a typical report of ~1,900 characters compresses
//! to 1.0–1.15 KB, just over the 1 KiB class, and would otherwise pay for
//! 4 KiB (PROTOCOL.md §5.1 has the measurements and what it reveals).
//!
//! Layout of a padded plaintext (all integers big-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | inner version = 1 |
//! | 1 | 1 | flags (bit 0: cover traffic; bit 1: compressed body; never both; other bits 0) |
//! | 2 | 16 | message id (random; the recipient deduplicates on it) |
//! | 18 | 4 | creation time, hours since the Unix epoch |
//! | 22 | 4 | body length `n` |
//! | 26 | n | body |
//! | 26+n | … | zero bytes up to the size class |

use zeroize::Zeroizing;

use crate::codec::{Reader, expect_version};
use crate::entropy::{Entropy, random};
use crate::{ProtocolError, Result, UnixTime};

/// The padded plaintext sizes, smallest first: every length a padded
/// plaintext may have.
pub const SIZE_CLASSES: [usize; 5] = [1024, COMPRESSED_CLASS, 4096, 16 * 1024, 64 * 1024];
/// The classes a plain (uncompressed) body uses. Software that predates
/// compression knows only these; it never receives a compressed body (the
/// sender asks first), and so never sees [`COMPRESSED_CLASS`].
pub const PLAIN_CLASSES: [usize; 4] = [1024, 4096, 16 * 1024, 64 * 1024];
/// The class only a compressed body may use.
pub const COMPRESSED_CLASS: usize = 1536;
/// The largest size class.
pub const MAX_CLASS: usize = 64 * 1024;
/// Length of the inner header.
pub const INNER_HEADER_LEN: usize = 26;
/// The largest body one envelope can carry.
pub const MAX_BODY: usize = MAX_CLASS - INNER_HEADER_LEN;
/// Inner format version.
pub const INNER_VERSION: u8 = 1;

/// Length of a message id.
pub const MESSAGE_ID_LEN: usize = 16;

/// Flag bit: this envelope is cover traffic and carries nothing.
pub const FLAG_COVER: u8 = 0b0000_0001;
/// Flag bit: the body is compressed ([`crate::compression`]); the opener
/// decompresses it before anything reads it.
pub const FLAG_COMPRESSED: u8 = 0b0000_0010;
const KNOWN_FLAGS: u8 = FLAG_COVER | FLAG_COMPRESSED;

/// The header inside the seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerHeader {
    /// Random id of the message. A report re-sealed for a resend keeps its id,
    /// so the focal point files it once.
    pub message_id: [u8; MESSAGE_ID_LEN],
    /// Creation time, in hours since the epoch (never finer).
    pub created_hour: u32,
    /// Flag bits ([`FLAG_COVER`], [`FLAG_COMPRESSED`]).
    pub flags: u8,
}

impl InnerHeader {
    /// A header with a fresh random message id, stamped with the hour of `now`.
    pub fn new(entropy: &mut dyn Entropy, now: UnixTime) -> Result<Self> {
        Ok(InnerHeader {
            message_id: random(entropy)?,
            created_hour: now.hours(),
            flags: 0,
        })
    }

    /// Whether this is cover traffic.
    pub fn is_cover(&self) -> bool {
        self.flags & FLAG_COVER != 0
    }

    /// Whether the body travelled compressed.
    pub fn is_compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }
}

/// The smallest plain size class that holds a body of `body_len` bytes.
pub fn class_for(body_len: usize) -> Result<usize> {
    smallest(&PLAIN_CLASSES, body_len)
}

/// The smallest size class that holds a compressed body of `body_len`
/// bytes ([`COMPRESSED_CLASS`] included).
pub fn class_for_compressed(body_len: usize) -> Result<usize> {
    smallest(&SIZE_CLASSES, body_len)
}

/// The class a body under `header` pads to: [`class_for_compressed`] when
/// its compressed flag is set, else [`class_for`].
pub fn class_for_header(header: &InnerHeader, body_len: usize) -> Result<usize> {
    if header.is_compressed() {
        class_for_compressed(body_len)
    } else {
        class_for(body_len)
    }
}

fn smallest(classes: &[usize], body_len: usize) -> Result<usize> {
    let needed = body_len.saturating_add(INNER_HEADER_LEN);
    classes
        .iter()
        .copied()
        .find(|&c| c >= needed)
        .ok_or(ProtocolError::TooLarge {
            what: "envelope body",
            len: body_len,
            max: MAX_BODY,
        })
}

/// Whether `len` is one of the size classes.
pub fn is_class(len: usize) -> bool {
    SIZE_CLASSES.contains(&len)
}

/// Header, body and zero padding up to the smallest class that fits
/// ([`class_for_header`]).
pub fn pad(header: &InnerHeader, body: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    pad_to(header, body, class_for_header(header, body.len())?)
}

/// Header, body and zero padding up to `class`, which must be a size class
/// large enough for the body ([`COMPRESSED_CLASS`] only for a compressed
/// body).
pub fn pad_to(header: &InnerHeader, body: &[u8], class: usize) -> Result<Zeroizing<Vec<u8>>> {
    if !is_class(class) || (class == COMPRESSED_CLASS && !header.is_compressed()) {
        return Err(ProtocolError::BadSizeClass(class));
    }
    if header.flags & !KNOWN_FLAGS != 0 || header.flags == FLAG_COVER | FLAG_COMPRESSED {
        return Err(ProtocolError::Invalid("inner header flags"));
    }
    let body_len = u32::try_from(body.len())
        .ok()
        .filter(|_| body.len() + INNER_HEADER_LEN <= class)
        .ok_or(ProtocolError::TooLarge {
            what: "envelope body",
            len: body.len(),
            max: class - INNER_HEADER_LEN,
        })?;
    let mut out = Zeroizing::new(Vec::with_capacity(class));
    out.push(INNER_VERSION);
    out.push(header.flags);
    out.extend_from_slice(&header.message_id);
    out.extend_from_slice(&header.created_hour.to_be_bytes());
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(body);
    out.resize(class, 0);
    Ok(out)
}

/// Checks the padding and splits a padded plaintext into header and body.
/// Rejects a length that is not a class, an unknown version or flag, a
/// plain body in [`COMPRESSED_CLASS`], a body length past the end, and any
/// non-zero padding byte.
pub fn unpad(padded: &[u8]) -> Result<(InnerHeader, &[u8])> {
    if !is_class(padded.len()) {
        return Err(ProtocolError::BadSizeClass(padded.len()));
    }
    let mut r = Reader::new(padded);
    expect_version("inner envelope", r.u8()?, INNER_VERSION)?;
    let flags = r.u8()?;
    if flags & !KNOWN_FLAGS != 0 || flags == FLAG_COVER | FLAG_COMPRESSED {
        return Err(ProtocolError::Invalid("inner header flags"));
    }
    if padded.len() == COMPRESSED_CLASS && flags & FLAG_COMPRESSED == 0 {
        return Err(ProtocolError::BadSizeClass(padded.len()));
    }
    let message_id = r.array()?;
    let created_hour = r.u32()?;
    let body_len = usize::try_from(r.u32()?).map_err(|_| ProtocolError::BadPadding)?;
    if body_len > r.remaining() {
        return Err(ProtocolError::BadPadding);
    }
    let body = r.take(body_len)?;
    if r.rest().iter().any(|&b| b != 0) {
        return Err(ProtocolError::BadPadding);
    }
    Ok((
        InnerHeader {
            message_id,
            created_hour,
            flags,
        },
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> InnerHeader {
        InnerHeader {
            message_id: [3; 16],
            created_hour: 493_000,
            flags: 0,
        }
    }

    #[test]
    fn picks_the_smallest_class() {
        assert_eq!(class_for(0).unwrap(), 1024);
        assert_eq!(class_for(1024 - 26).unwrap(), 1024);
        assert_eq!(class_for(1024 - 25).unwrap(), 4096);
        assert_eq!(class_for(MAX_BODY).unwrap(), MAX_CLASS);
        assert!(class_for(MAX_BODY + 1).is_err());
    }

    #[test]
    fn rejects_malformed_padding() {
        let good = pad(&header(), b"hola").unwrap();
        assert_eq!(unpad(&good).unwrap().1, b"hola");

        let mut nonzero = good.clone();
        nonzero[1000] = 1;
        assert_eq!(unpad(&nonzero), Err(ProtocolError::BadPadding));

        let mut long = good.clone();
        long[22..26].copy_from_slice(&2000u32.to_be_bytes());
        assert_eq!(unpad(&long), Err(ProtocolError::BadPadding));

        let mut max = good.clone();
        max[22..26].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(unpad(&max), Err(ProtocolError::BadPadding));

        assert_eq!(unpad(&good[..1023]), Err(ProtocolError::BadSizeClass(1023)));

        let mut version = good.clone();
        version[0] = 2;
        assert!(matches!(
            unpad(&version),
            Err(ProtocolError::UnsupportedVersion { .. })
        ));

        let mut both = good.clone();
        both[1] = FLAG_COVER | FLAG_COMPRESSED;
        assert_eq!(
            unpad(&both),
            Err(ProtocolError::Invalid("inner header flags"))
        );

        let mut flags = good.clone();
        flags[1] = 0x04;
        assert_eq!(
            unpad(&flags),
            Err(ProtocolError::Invalid("inner header flags"))
        );
    }

    #[test]
    fn only_a_compressed_body_uses_the_compressed_class() {
        let plain = header();
        let packed = InnerHeader {
            flags: FLAG_COMPRESSED,
            ..header()
        };
        // 1024 - 26 + 1 bytes: the next plain class is 4096, the next
        // compressed one 1536.
        let body = vec![7u8; 999];
        assert_eq!(pad(&plain, &body).unwrap().len(), 4096);
        assert_eq!(pad(&packed, &body).unwrap().len(), 1536);
        assert_eq!(class_for_compressed(1536 - 26).unwrap(), 1536);
        assert_eq!(class_for_compressed(1536 - 25).unwrap(), 4096);
        assert_eq!(class_for_compressed(998).unwrap(), 1024);
        assert_eq!(
            pad_to(&plain, &body, 1536).err(),
            Some(ProtocolError::BadSizeClass(1536))
        );
        // A plain body in the compressed class is refused on reading too.
        let mut forged = pad(&packed, &body).unwrap();
        assert!(unpad(&forged).is_ok());
        forged[1] = 0;
        assert_eq!(unpad(&forged), Err(ProtocolError::BadSizeClass(1536)));
    }

    #[test]
    fn cover_flag_round_trips() {
        let h = InnerHeader {
            flags: FLAG_COVER,
            ..header()
        };
        let p = pad(&h, b"").unwrap();
        assert!(unpad(&p).unwrap().0.is_cover());
    }

    proptest! {
        #[test]
        fn pad_unpad_round_trip(body in proptest::collection::vec(any::<u8>(), 0..5000),
                                id in any::<[u8; 16]>(), hour in any::<u32>(), cover in any::<bool>(),
                                compressed in any::<bool>()) {
            // Cover traffic carries nothing, so it is never compressed.
            let flags = if cover { FLAG_COVER } else if compressed { FLAG_COMPRESSED } else { 0 };
            let h = InnerHeader { message_id: id, created_hour: hour, flags };
            let p = pad(&h, &body).unwrap();
            prop_assert!(is_class(p.len()));
            let (h2, b2) = unpad(&p).unwrap();
            prop_assert_eq!(h2, h);
            prop_assert_eq!(b2, &body[..]);
        }

        #[test]
        fn unpad_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
            let _ = unpad(&bytes);
        }
    }
}
