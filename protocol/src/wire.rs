//! The binary bodies of the relay's HTTP API: envelope batches, the
//! per-envelope results, and pages of a mailbox. Envelopes travel as bytes,
//! not JSON or base64, because phones on 2G pay for every byte.
//!
//! ```text
//! batch   = (length (4) || envelope)*                      POST /v1/envelopes request
//! results = (0x01 || receipt (93) | 0x00 || reject code (1))*   its response, one per envelope, in order
//! page    = (cursor (8) || length (4) || envelope)*        GET /v1/mailboxes/{id}/envelopes response
//! ```

use crate::codec::Reader;
use crate::envelope::{self, Envelope};
use crate::receipt::{self, Receipt};
use crate::{ProtocolError, Result};

/// Media type of batches, results and pages.
pub const CONTENT_TYPE: &str = "application/octet-stream";

/// Why the relay refused one envelope of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RejectCode {
    /// Not a well-formed envelope (too short).
    Malformed = 1,
    /// An envelope version the relay does not speak.
    UnsupportedVersion = 2,
    /// A cipher suite the relay does not speak.
    UnsupportedSuite = 3,
    /// A length that is not one of the padded size classes.
    BadSizeClass = 4,
    /// The relay could not store it now; send it again later.
    Unavailable = 5,
    /// The recipient's mailbox already holds as much as the relay keeps for
    /// one mailbox (its envelope or byte cap); keep it and send it again
    /// later, when the mailbox's owner has fetched.
    MailboxFull = 6,
    /// The relay's storage is at its limit (its global cap, or the disk's
    /// low-space mark); keep it and send it again later.
    RelayFull = 7,
}

impl RejectCode {
    /// The code for a framing error of [`Envelope::decode`].
    pub fn for_error(e: &ProtocolError) -> RejectCode {
        match e {
            ProtocolError::UnsupportedVersion { .. } => RejectCode::UnsupportedVersion,
            ProtocolError::UnsupportedSuite(_) => RejectCode::UnsupportedSuite,
            ProtocolError::BadSizeClass(_) => RejectCode::BadSizeClass,
            _ => RejectCode::Malformed,
        }
    }

    fn parse(b: u8) -> Result<RejectCode> {
        Ok(match b {
            1 => RejectCode::Malformed,
            2 => RejectCode::UnsupportedVersion,
            3 => RejectCode::UnsupportedSuite,
            4 => RejectCode::BadSizeClass,
            5 => RejectCode::Unavailable,
            6 => RejectCode::MailboxFull,
            7 => RejectCode::RelayFull,
            _ => return Err(ProtocolError::Invalid("reject code")),
        })
    }

    /// A stable name, as used in metrics and documentation.
    pub fn name(self) -> &'static str {
        match self {
            RejectCode::Malformed => "malformed",
            RejectCode::UnsupportedVersion => "unsupported_version",
            RejectCode::UnsupportedSuite => "unsupported_suite",
            RejectCode::BadSizeClass => "bad_size_class",
            RejectCode::Unavailable => "unavailable",
            RejectCode::MailboxFull => "mailbox_full",
            RejectCode::RelayFull => "relay_full",
        }
    }

    /// Whether the envelope may be accepted if sent again later: the sender
    /// keeps it (never drops it) and retries after a pause. The other codes
    /// say the envelope itself is wrong and will never be accepted.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            RejectCode::Unavailable | RejectCode::MailboxFull | RejectCode::RelayFull
        )
    }
}

/// The relay's answer for one envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeResult {
    /// Stored durably; here is the receipt.
    Accepted(Receipt),
    /// Not stored.
    Rejected(RejectCode),
}

/// Frames envelopes into a batch body.
pub fn encode_batch<'a>(envelopes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in envelopes {
        out.extend_from_slice(&u32::try_from(e.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(e);
    }
    out
}

/// Splits a batch body into envelope byte strings (not yet validated), at
/// most `max_count` of them. Any framing error fails the whole batch.
pub fn decode_batch(body: &[u8], max_count: usize) -> Result<Vec<&[u8]>> {
    let mut r = Reader::new(body);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        if out.len() >= max_count {
            return Err(ProtocolError::TooLarge {
                what: "batch (envelopes)",
                len: out.len() + 1,
                max: max_count,
            });
        }
        let len = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if len > envelope::MAX_LEN {
            return Err(ProtocolError::TooLarge {
                what: "envelope",
                len,
                max: envelope::MAX_LEN,
            });
        }
        out.push(r.take(len)?);
    }
    Ok(out)
}

/// Encodes the results of a batch.
pub fn encode_results(results: &[EnvelopeResult]) -> Vec<u8> {
    let mut out = Vec::with_capacity(results.len() * (1 + receipt::LEN));
    for r in results {
        match r {
            EnvelopeResult::Accepted(receipt) => {
                out.push(1);
                out.extend_from_slice(&receipt.encode());
            }
            EnvelopeResult::Rejected(code) => {
                out.push(0);
                out.push(*code as u8);
            }
        }
    }
    out
}

/// Decodes the results of a batch.
pub fn decode_results(body: &[u8]) -> Result<Vec<EnvelopeResult>> {
    let mut r = Reader::new(body);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        match r.u8()? {
            1 => out.push(EnvelopeResult::Accepted(Receipt::decode(
                r.take(receipt::LEN)?,
            )?)),
            0 => out.push(EnvelopeResult::Rejected(RejectCode::parse(r.u8()?)?)),
            _ => return Err(ProtocolError::Invalid("result tag")),
        }
    }
    Ok(out)
}

/// Encodes a page of a mailbox.
pub fn encode_page<'a>(items: impl IntoIterator<Item = (u64, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (cursor, bytes) in items {
        out.extend_from_slice(&cursor.to_be_bytes());
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// Most bytes the results of an upload of `envelopes` envelopes can take.
pub fn max_results_len(envelopes: usize) -> usize {
    envelopes.saturating_mul(1 + receipt::LEN)
}

/// Most bytes a page of at most `limit` envelopes can take.
pub fn max_page_len(limit: u32) -> usize {
    usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_mul(envelope::MAX_LEN + 12)
}

/// Decodes a page of a mailbox into `(cursor, envelope)` pairs.
pub fn decode_page(body: &[u8]) -> Result<Vec<(u64, Envelope)>> {
    let mut r = Reader::new(body);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        let cursor = r.u64()?;
        let len = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if len > envelope::MAX_LEN {
            return Err(ProtocolError::TooLarge {
                what: "envelope",
                len,
                max: envelope::MAX_LEN,
            });
        }
        out.push((cursor, Envelope::decode(r.take(len)?)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_bounds_follow_the_limit() {
        assert_eq!(max_page_len(2), 2 * (envelope::MAX_LEN + 12));
        assert_eq!(
            max_page_len(u32::MAX),
            u32::MAX as usize * (envelope::MAX_LEN + 12)
        );
    }
    use crate::UnixTime;
    use crate::envelope::EnvelopeId;
    use crate::primitives::ed25519::SigningKey;
    use proptest::prelude::*;

    #[test]
    fn batch_round_trip_and_limits() {
        let a = vec![1u8; 10];
        let b = vec![2u8; 0];
        let body = encode_batch([a.as_slice(), b.as_slice()]);
        assert_eq!(
            decode_batch(&body, 10).unwrap(),
            vec![a.as_slice(), b.as_slice()]
        );
        assert!(matches!(
            decode_batch(&body, 1),
            Err(ProtocolError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_batch(&body[..7], 10),
            Err(ProtocolError::Truncated { .. })
        ));
        assert!(decode_batch(&[0xff, 0xff, 0xff, 0xff], 10).is_err());
        assert_eq!(decode_batch(&[], 10).unwrap(), Vec::<&[u8]>::new());
    }

    #[test]
    fn results_round_trip() {
        let key = SigningKey::from_seed(&[1; 32]).unwrap();
        let results = vec![
            EnvelopeResult::Accepted(Receipt::sign(EnvelopeId([3; 16]), UnixTime(0), &key)),
            EnvelopeResult::Rejected(RejectCode::BadSizeClass),
        ];
        assert_eq!(decode_results(&encode_results(&results)).unwrap(), results);
        assert!(decode_results(&[0, 9]).is_err());
        assert!(decode_results(&[2]).is_err());
        assert!(decode_results(&[1, 1]).is_err());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..500)) {
            let _ = decode_batch(&bytes, 100);
            let _ = decode_results(&bytes);
            let _ = decode_page(&bytes);
        }
    }
}
