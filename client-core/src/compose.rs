//! Sealing a report, with its attachments, to one focal point.
//!
//! A report becomes several envelopes: one chunk envelope per piece of each
//! attachment, then the report itself, which references the attachments by id
//! and SHA-256. A fresh reply key set is made for every report, so nothing
//! links two reports of the same person; the phone keeps those keys (they are
//! how she reads the answer) and forgets everything else once the envelopes
//! are in the outbox.

use amparo_protocol::compression;
use amparo_protocol::envelope::{Compression, Envelope, Purpose};
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::{AttachmentKind, AttachmentRef, Payload, Report, chunk};
use amparo_protocol::primitives::sha256;
use amparo_protocol::{Entropy, UnixTime};

use crate::Result;

/// A file the person attaches. Its metadata must already be stripped.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// Kind of media.
    pub kind: AttachmentKind,
    /// MIME type.
    pub mime: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A report sealed and ready for the outbox.
#[derive(Debug)]
pub struct SealedReport {
    /// The report id (the inner message id of the report envelope).
    pub report_id: [u8; 16],
    /// The reply keys: the only way to read the focal point's answer.
    pub reply_keys: RecipientKeys,
    /// Chunk envelopes first, then the report envelope.
    pub envelopes: Vec<Envelope>,
}

/// How bodies are sealed to a peer whose `reads` list (a focal point's
/// directory entry, a report's `reads`) is `reads`: compressed only if it
/// says it opens them (PROTOCOL.md §5.1), since software that predates
/// compression would refuse the envelope.
pub fn compression_for(reads: &[String]) -> Compression {
    if compression::reads_compressed(reads) {
        Compression::IfSmaller
    } else {
        Compression::Off
    }
}

/// Seals `report` (whose `reply_to` and `attachments` are filled in here) and
/// `attachments` to `focal_point`, the report compressed if `compression`
/// allows it. Attachments are never compressed: photos, audio and video are
/// compressed by their own formats.
pub fn seal_report(
    focal_point: &RecipientPublic,
    mut report: Report,
    attachments: &[Attachment],
    compression: Compression,
    entropy: &mut dyn Entropy,
    now: UnixTime,
) -> Result<SealedReport> {
    let reply_keys = RecipientKeys::generate(entropy)?;
    report.reply_to = reply_keys.public();
    report.attachments.clear();
    let mut envelopes = Vec::new();
    for a in attachments {
        let mut id = [0u8; 16];
        entropy.fill(&mut id)?;
        let pieces = chunk::split_attachment(id, &a.data)?;
        report.attachments.push(AttachmentRef {
            id,
            kind: a.kind,
            mime: a.mime.clone(),
            size: a.data.len() as u64,
            sha256: sha256(&[&a.data]),
            chunks: u32::try_from(pieces.len()).unwrap_or(u32::MAX),
        });
        for piece in pieces {
            let header = InnerHeader::new(entropy, now)?;
            envelopes.push(Envelope::seal(
                focal_point,
                Purpose::Chunk,
                &header,
                &piece,
                entropy,
            )?);
        }
    }
    let json = report.to_json()?;
    let header = InnerHeader::new(entropy, now)?;
    envelopes.push(Envelope::seal_with(
        focal_point,
        Purpose::Report,
        &header,
        &json,
        compression,
        entropy,
    )?);
    Ok(SealedReport {
        report_id: header.message_id,
        reply_keys,
        envelopes,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::inbox::{Incoming, open};
    use amparo_protocol::entropy::DangerousSeededEntropy;
    use amparo_protocol::payload::{Language, Place};

    pub(crate) fn blank_report() -> Report {
        Report {
            reads: Vec::new(),
            statistics_consent: false,
            age_band: None,
            reported_elsewhere: None,
            alert: None,
            v: 1,
            violence: vec![],
            violence_other: None,
            when: None,
            place: Place::default(),
            aggressors: vec![],
            aggressor_other: None,
            needs: vec![],
            language: Language::Pt,
            text: "texto".into(),
            attachments: vec![],
            reply_to: amparo_protocol::keys::RecipientPublic {
                sealing_key: [0; 32],
                signing_key: [0; 32],
            },
            referral: None,
        }
    }

    #[test]
    fn report_with_attachment_becomes_chunks_then_report() {
        let mut e = DangerousSeededEntropy::new(b"compose");
        let fp = RecipientKeys::generate(&mut e).unwrap();
        let photo = Attachment {
            kind: AttachmentKind::Photo,
            mime: "image/jpeg".into(),
            data: vec![0x42; chunk::CHUNK_DATA_MAX + 5],
        };
        let sealed = seal_report(
            &fp.public(),
            blank_report(),
            &[photo],
            Compression::IfSmaller,
            &mut e,
            UnixTime(0),
        )
        .unwrap();
        assert_eq!(sealed.envelopes.len(), 3);
        assert_eq!(sealed.envelopes[0].size_class(), 65536);
        let last = sealed.envelopes.last().unwrap();
        match open(last, &fp).unwrap() {
            Incoming::Report { message_id, report } => {
                assert_eq!(message_id, sealed.report_id);
                assert_eq!(report.reply_to, sealed.reply_keys.public());
                assert_eq!(report.attachments.len(), 1);
                assert_eq!(report.attachments[0].chunks, 2);
            }
            other => panic!("expected a report, got {other:?}"),
        }
    }
}
