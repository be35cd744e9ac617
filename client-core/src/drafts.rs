//! Drafts: reports being written, with their attachments, kept encrypted in
//! the profile until they are sent.

use amparo_protocol::keys::RecipientPublic;
use amparo_protocol::payload::{
    AgeBand, AggressorKind, AttachmentKind, IncidentDate, Language, Need, PAYLOAD_VERSION, Payload,
    Place, Report, ViolenceKind,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::compose::Attachment;
use crate::store::{ItemKind, Profile};
use crate::{CoreError, Result, metadata};

/// What the person fills in: the report form without the parts the core adds
/// when sending (reply keys, attachment references).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DraftForm {
    /// Kinds of violence.
    pub violence: Vec<ViolenceKind>,
    /// Description when `violence` includes `other`.
    pub violence_other: Option<String>,
    /// When it happened.
    pub when: Option<IncidentDate>,
    /// Where.
    pub place: Place,
    /// Who.
    pub aggressors: Vec<AggressorKind>,
    /// Description when `aggressors` includes `other`.
    pub aggressor_other: Option<String>,
    /// What she needs.
    pub needs: Vec<Need>,
    /// Language for replies (Spanish if not chosen).
    pub language: Option<Language>,
    /// Her own words.
    pub text: String,
    /// She agrees to be counted, anonymously, in shared statistics (no
    /// unless she says yes).
    #[serde(default)]
    pub statistics_consent: bool,
    /// Her age band, if she says.
    #[serde(default)]
    pub age_band: Option<AgeBand>,
    /// Whether she also reported to another organisation, if she says.
    #[serde(default)]
    pub reported_elsewhere: Option<bool>,
}

impl DraftForm {
    /// The report this form becomes, addressed for replies to `reply_to`.
    pub fn to_report(&self, reply_to: RecipientPublic) -> Report {
        Report {
            // This phone opens compressed replies (PROTOCOL.md §5.1).
            reads: vec![amparo_protocol::compression::READS_DEFLATE_D1.into()],
            statistics_consent: self.statistics_consent,
            age_band: self.age_band,
            reported_elsewhere: self.reported_elsewhere,
            alert: None,
            v: PAYLOAD_VERSION,
            violence: self.violence.clone(),
            violence_other: self.violence_other.clone(),
            when: self.when,
            place: self.place.clone(),
            aggressors: self.aggressors.clone(),
            aggressor_other: self.aggressor_other.clone(),
            needs: self.needs.clone(),
            language: self.language.unwrap_or(Language::Es),
            text: self.text.clone(),
            attachments: vec![],
            reply_to,
            referral: None,
        }
    }
}

/// A draft as listed and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Its id.
    pub id: [u8; 16],
    /// The form.
    pub form: DraftForm,
    /// Ids of its attachments, in the order added.
    pub attachments: Vec<[u8; 16]>,
}

#[derive(Serialize, Deserialize)]
struct StoredDraft {
    form: DraftForm,
    attachments: Vec<[u8; 16]>,
}

#[derive(Serialize, Deserialize)]
struct StoredAttachment {
    kind: AttachmentKind,
    mime: String,
    data: Vec<u8>,
}

/// Largest attachment accepted (as the protocol allows).
const MAX_ATTACHMENT: usize = amparo_protocol::payload::report::MAX_ATTACHMENT_BYTES as usize;

fn encode<T: Serialize>(v: &T) -> Result<Zeroizing<Vec<u8>>> {
    serde_json::to_vec(v)
        .map(Zeroizing::new)
        .map_err(|_| CoreError::Invalid("the draft cannot be encoded"))
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|_| CoreError::Corrupt("draft"))
}

impl Profile {
    /// Starts a draft.
    pub fn create_draft(&self, form: &DraftForm) -> Result<[u8; 16]> {
        check_form(form)?;
        let id = self.new_id()?;
        self.put_item(
            ItemKind::Draft,
            &id,
            0,
            &encode(&StoredDraft {
                form: form.clone(),
                attachments: vec![],
            })?,
        )?;
        Ok(id)
    }

    /// Reads a draft.
    pub fn draft(&self, id: &[u8; 16]) -> Result<Draft> {
        let (_, bytes) = self
            .get_item(ItemKind::Draft, id)?
            .ok_or(CoreError::NotFound)?;
        let stored: StoredDraft = decode(&bytes)?;
        Ok(Draft {
            id: *id,
            form: stored.form,
            attachments: stored.attachments,
        })
    }

    /// Replaces a draft's form (its attachments stay).
    pub fn update_draft(&self, id: &[u8; 16], form: &DraftForm) -> Result<()> {
        check_form(form)?;
        let current = self.draft(id)?;
        self.put_item(
            ItemKind::Draft,
            id,
            0,
            &encode(&StoredDraft {
                form: form.clone(),
                attachments: current.attachments,
            })?,
        )
    }

    /// Every draft, oldest first.
    pub fn drafts(&self) -> Result<Vec<Draft>> {
        self.item_ids(ItemKind::Draft, None)?
            .iter()
            .map(|id| self.draft(id))
            .collect()
    }

    /// Deletes a draft and its attachments.
    pub fn delete_draft(&self, id: &[u8; 16]) -> Result<()> {
        let draft = self.draft(id)?;
        for a in &draft.attachments {
            self.delete_item(ItemKind::Attachment, a)?;
        }
        self.delete_item(ItemKind::Draft, id)?;
        Ok(())
    }

    /// Attaches a file's bytes to a draft, after stripping photo metadata.
    pub fn add_attachment(
        &self,
        draft: &[u8; 16],
        kind: AttachmentKind,
        mime: &str,
        data: &[u8],
    ) -> Result<[u8; 16]> {
        if data.len() > MAX_ATTACHMENT {
            return Err(CoreError::Invalid("the file is larger than 64 MiB"));
        }
        if mime.len() > 100 || !mime.is_ascii() || !mime.contains('/') {
            return Err(CoreError::Invalid("the file type is not valid"));
        }
        let mut current = self.draft(draft)?;
        if current.attachments.len() >= amparo_protocol::payload::report::MAX_ATTACHMENTS {
            return Err(CoreError::Invalid(
                "a report can have at most 32 attachments",
            ));
        }
        let clean = Zeroizing::new(metadata::strip(data)?);
        let id = self.new_id()?;
        self.put_item(
            ItemKind::Attachment,
            &id,
            0,
            &encode(&StoredAttachment {
                kind,
                mime: mime.to_string(),
                data: clean.to_vec(),
            })?,
        )?;
        current.attachments.push(id);
        self.put_item(
            ItemKind::Draft,
            draft,
            0,
            &encode(&StoredDraft {
                form: current.form,
                attachments: current.attachments,
            })?,
        )?;
        Ok(id)
    }

    /// Attaches a file read from `path`.
    pub fn add_attachment_file(
        &self,
        draft: &[u8; 16],
        kind: AttachmentKind,
        mime: &str,
        path: &std::path::Path,
    ) -> Result<[u8; 16]> {
        let len = std::fs::metadata(path)
            .map_err(|e| CoreError::Io(e.kind().to_string()))?
            .len();
        if len > MAX_ATTACHMENT as u64 {
            return Err(CoreError::Invalid("the file is larger than 64 MiB"));
        }
        let data =
            Zeroizing::new(std::fs::read(path).map_err(|e| CoreError::Io(e.kind().to_string()))?);
        self.add_attachment(draft, kind, mime, &data)
    }

    /// Removes one attachment from a draft (and its stored bytes).
    pub fn remove_attachment(&self, draft: &[u8; 16], attachment: &[u8; 16]) -> Result<()> {
        let mut current = self.draft(draft)?;
        let before = current.attachments.len();
        current.attachments.retain(|a| a != attachment);
        if current.attachments.len() == before {
            return Err(CoreError::NotFound);
        }
        let stored = encode(&StoredDraft {
            form: current.form,
            attachments: current.attachments,
        })?;
        self.in_transaction(|| {
            self.delete_item(ItemKind::Attachment, attachment)?;
            self.put_item(ItemKind::Draft, draft, 0, &stored)
        })
    }

    /// A draft's attachments, ready for sealing.
    pub fn draft_attachments(&self, draft: &[u8; 16]) -> Result<Vec<Attachment>> {
        self.draft(draft)?
            .attachments
            .iter()
            .map(|id| {
                let (_, bytes) = self
                    .get_item(ItemKind::Attachment, id)?
                    .ok_or(CoreError::Corrupt("attachment"))?;
                let a: StoredAttachment = decode(&bytes)?;
                Ok(Attachment {
                    kind: a.kind,
                    mime: a.mime,
                    data: a.data,
                })
            })
            .collect()
    }
}

/// Why a date typed for the incident was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Not `YYYY`, `YYYY-MM` or `YYYY-MM-DD` in digits.
    #[error("the date must be written YYYY, YYYY-MM or YYYY-MM-DD")]
    Format,
    /// A year the form does not accept.
    #[error("the year is out of range")]
    Year,
    /// A month other than 1–12.
    #[error("the month must be from 01 to 12")]
    Month,
    /// A day the month does not have.
    #[error("that month does not have that day")]
    Day,
}

/// Reads a date as a person types it: `2026`, `2026-11` or `2026-11-03`
/// (also with `/`), and checks it as the protocol will, saying which part is
/// wrong.
pub fn parse_incident_date(
    text: &str,
    approximate: bool,
) -> std::result::Result<IncidentDate, DateError> {
    let mut parts = text.trim().split(['-', '/']);
    let mut number =
        |digits: std::ops::RangeInclusive<usize>| -> std::result::Result<Option<u16>, DateError> {
            match parts.next() {
                None => Ok(None),
                Some(p) if digits.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
                    p.parse().map(Some).map_err(|_| DateError::Format)
                }
                Some(_) => Err(DateError::Format),
            }
        };
    let year = number(4..=4)?.ok_or(DateError::Format)?;
    let month = number(1..=2)?;
    let day = number(1..=2)?;
    if parts.next().is_some() {
        return Err(DateError::Format);
    }
    let small = |n: Option<u16>| {
        n.map(|v| u8::try_from(v).map_err(|_| DateError::Format))
            .transpose()
    };
    let date = IncidentDate {
        year,
        month: small(month)?,
        day: small(day)?,
        approximate,
    };
    // The protocol's own check decides; the parts are tried in turn to say
    // which one it refused.
    let accepted = |d: IncidentDate| {
        check_form(&DraftForm {
            when: Some(d),
            text: "-".into(),
            ..DraftForm::default()
        })
        .is_ok()
    };
    if !accepted(IncidentDate {
        month: None,
        day: None,
        ..date
    }) {
        return Err(DateError::Year);
    }
    if !accepted(IncidentDate { day: None, ..date }) {
        return Err(DateError::Month);
    }
    if !accepted(date) {
        return Err(DateError::Day);
    }
    Ok(date)
}

/// Refuses a form that could never be sent (the protocol's limits).
fn check_form(form: &DraftForm) -> Result<()> {
    let probe = form.to_report(RecipientPublic {
        sealing_key: [0; 32],
        signing_key: [0; 32],
    });
    probe.validate()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KdfParams;

    fn form(text: &str) -> DraftForm {
        DraftForm {
            violence: vec![ViolenceKind::Physical],
            needs: vec![Need::HealthCare],
            language: Some(Language::Es),
            text: text.into(),
            ..DraftForm::default()
        }
    }

    #[test]
    fn incident_dates_are_read_and_each_wrong_part_named() {
        let d = parse_incident_date("2026-11-03", true).unwrap();
        assert_eq!(
            (d.year, d.month, d.day, d.approximate),
            (2026, Some(11), Some(3), true)
        );
        assert_eq!(parse_incident_date(" 2026 ", false).unwrap().month, None);
        assert_eq!(parse_incident_date("2026/2", false).unwrap().month, Some(2));
        assert_eq!(
            parse_incident_date("2024-02-29", false).unwrap().day,
            Some(29)
        );
        assert_eq!(
            parse_incident_date("2026-13-45", false),
            Err(DateError::Month)
        );
        assert_eq!(parse_incident_date("2026-00", false), Err(DateError::Month));
        assert_eq!(
            parse_incident_date("2026-02-30", false),
            Err(DateError::Day)
        );
        assert_eq!(
            parse_incident_date("2025-02-29", false),
            Err(DateError::Day)
        );
        assert_eq!(
            parse_incident_date("1200-01-01", false),
            Err(DateError::Year)
        );
        for bad in [
            "ayer",
            "",
            "26-11-03",
            "2026-11-03-1",
            "2026-111",
            "2026--3",
            "2026-1a",
        ] {
            assert_eq!(
                parse_incident_date(bad, false),
                Err(DateError::Format),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_attachment_can_be_removed_from_a_draft() {
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::create(dir.path(), "1234", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let d = p.create_draft(&form("con fotos")).unwrap();
        let one = p
            .add_attachment(&d, AttachmentKind::Audio, "audio/ogg", b"uno")
            .unwrap();
        let two = p
            .add_attachment(&d, AttachmentKind::Audio, "audio/ogg", b"dos")
            .unwrap();
        p.remove_attachment(&d, &one).unwrap();
        assert_eq!(p.draft(&d).unwrap().attachments, vec![two]);
        assert_eq!(p.draft_attachments(&d).unwrap()[0].data, b"dos");
        assert!(p.get_item(ItemKind::Attachment, &one).unwrap().is_none());
        assert!(matches!(
            p.remove_attachment(&d, &one),
            Err(CoreError::NotFound)
        ));
        assert!(matches!(
            p.remove_attachment(&[9; 16], &two),
            Err(CoreError::NotFound)
        ));
    }

    #[test]
    fn drafts_crud_and_attachments() {
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::create(dir.path(), "1234", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let a = p.create_draft(&form("primero")).unwrap();
        let b = p.create_draft(&form("segundo")).unwrap();
        assert_eq!(
            p.drafts().unwrap().iter().map(|d| d.id).collect::<Vec<_>>(),
            vec![a, b]
        );
        p.update_draft(&a, &form("primero, corregido")).unwrap();
        let photo = p
            .add_attachment(&a, AttachmentKind::Photo, "image/jpeg", b"\xFF\xD8\xFF\xD9")
            .unwrap();
        let d = p.draft(&a).unwrap();
        assert_eq!(d.form.text, "primero, corregido");
        assert_eq!(d.attachments, vec![photo]);
        assert_eq!(
            p.draft_attachments(&a).unwrap()[0].data,
            b"\xFF\xD8\xFF\xD9"
        );
        p.delete_draft(&a).unwrap();
        assert!(matches!(p.draft(&a), Err(CoreError::NotFound)));
        assert!(p.get_item(ItemKind::Attachment, &photo).unwrap().is_none());
        assert_eq!(p.drafts().unwrap().len(), 1);
        // A form the protocol would refuse is refused now.
        let mut bad = form("x");
        bad.text = "x".repeat(20_000);
        assert!(p.create_draft(&bad).is_err());
        assert!(
            p.add_attachment(&b, AttachmentKind::Photo, "nonsense", b"x")
                .is_err()
        );
    }
}
