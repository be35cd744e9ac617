//! The report: a structured form shaped around what survivors told the
//! organisations Amparo was built from (violence by clients, police and
//! security agents, partners, pimps and organised crime; needs that range from
//! legal advice to PEP and shelter), plus free text and attachments.
//!
//! Coarse by default: the place is a region with an optional free detail, the
//! date may be approximate, and nothing identifies the person unless she
//! writes it herself.

use serde::{Deserialize, Serialize};

use super::{Payload, check_len, check_text};
use crate::b64;
use crate::keys::RecipientPublic;
use crate::{ProtocolError, Result};

/// Longest free text of a report, in characters (fits one 64 KiB envelope even
/// when every character takes four bytes of UTF-8 and needs JSON escaping).
pub const MAX_TEXT_CHARS: usize = 12_000;
/// Longest short free field (other kind, place detail), in characters.
pub const MAX_SHORT_CHARS: usize = 200;
/// Most attachments one report references.
pub const MAX_ATTACHMENTS: usize = 32;
/// Largest attachment, in bytes (64 MiB: a few minutes of audio or video).
pub const MAX_ATTACHMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Kind of violence (several may apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolenceKind {
    /// Physical violence.
    Physical,
    /// Sexual violence, including rape and forced unprotected sex.
    Sexual,
    /// Psychological violence, humiliation.
    Psychological,
    /// Threats, including threats with a weapon.
    Threats,
    /// Harassment and stalking, persecution by the aggressor.
    Harassment,
    /// Extortion, demands for money or sex, including by officials.
    Extortion,
    /// Robbery, theft of earnings or documents.
    Robbery,
    /// Arbitrary detention, raids, abuse in custody.
    ArbitraryDetention,
    /// Discrimination, refusal of service (health, justice), transphobia.
    Discrimination,
    /// Trafficking, forced work, debt bondage, exploitation.
    Trafficking,
    /// Something else (described in `violence_other`).
    Other,
}

/// Who the aggressor was (several may apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggressorKind {
    /// A client.
    Client,
    /// Police, military, municipal or private security agents.
    PoliceOrSecurity,
    /// Current or former intimate partner.
    IntimatePartner,
    /// A third party who profits: pimp, manager, owner of the venue.
    ThirdPartyOrPimp,
    /// Organised crime, gangs, traffickers.
    OrganizedCrime,
    /// Someone else (described in `aggressor_other`).
    Other,
    /// Unknown or prefers not to say.
    Unknown,
}

/// What the person needs (several may apply). Also the categories of help a
/// focal point offers in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// Legal advice, filing a complaint, accompaniment.
    LegalAdvice,
    /// Health care.
    HealthCare,
    /// STI/HIV testing and treatment, post-exposure prophylaxis (PEP),
    /// emergency contraception.
    StiHivPep,
    /// Psychological support.
    PsychologicalSupport,
    /// Protection measures, safe shelter.
    ProtectionShelter,
    /// Help with children.
    Children,
    /// Migration status, documents, refuge.
    MigrationStatus,
    /// Something else.
    Other,
}

/// Languages of the form, replies and directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// Español.
    Es,
    /// Português.
    Pt,
    /// English.
    En,
}

/// How old she was when it happened, in the bands that gender-based
/// violence statistics use (GBVIMS: children 0–11, adolescents 12–17,
/// adults 18 and over). A band, never an age: an age narrows who she is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AgeBand {
    /// 0 to 11 years old.
    #[serde(rename = "age_0_11")]
    Child,
    /// 12 to 17 years old.
    #[serde(rename = "age_12_17")]
    Adolescent,
    /// 18 or older.
    #[serde(rename = "age_18_plus")]
    Adult,
}

impl AgeBand {
    /// Every band, youngest first.
    pub const ALL: [AgeBand; 3] = [AgeBand::Child, AgeBand::Adolescent, AgeBand::Adult];
}

/// The kind of place, next to the region: the protection sector asks for
/// the risks of border areas, cities and the countryside apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaceSetting {
    /// A border area or crossing.
    Border,
    /// A city or town.
    Urban,
    /// The countryside, a village, a river community.
    Rural,
}

impl PlaceSetting {
    /// Every kind of place, in the form's order.
    pub const ALL: [PlaceSetting; 3] = [
        PlaceSetting::Border,
        PlaceSetting::Urban,
        PlaceSetting::Rural,
    ];
}

impl ViolenceKind {
    /// Every kind, in the form's order.
    pub const ALL: [ViolenceKind; 11] = [
        ViolenceKind::Physical,
        ViolenceKind::Sexual,
        ViolenceKind::Psychological,
        ViolenceKind::Threats,
        ViolenceKind::Harassment,
        ViolenceKind::Extortion,
        ViolenceKind::Robbery,
        ViolenceKind::ArbitraryDetention,
        ViolenceKind::Discrimination,
        ViolenceKind::Trafficking,
        ViolenceKind::Other,
    ];
}

impl AggressorKind {
    /// Every kind, in the form's order.
    pub const ALL: [AggressorKind; 7] = [
        AggressorKind::Client,
        AggressorKind::PoliceOrSecurity,
        AggressorKind::IntimatePartner,
        AggressorKind::ThirdPartyOrPimp,
        AggressorKind::OrganizedCrime,
        AggressorKind::Other,
        AggressorKind::Unknown,
    ];
}

impl Need {
    /// Every need, in the form's order.
    pub const ALL: [Need; 8] = [
        Need::LegalAdvice,
        Need::HealthCare,
        Need::StiHivPep,
        Need::PsychologicalSupport,
        Need::ProtectionShelter,
        Need::Children,
        Need::MigrationStatus,
        Need::Other,
    ];
}

impl Language {
    /// Every language.
    pub const ALL: [Language; 3] = [Language::Es, Language::Pt, Language::En];
}

/// When it happened. Any part may be left out; `approximate` says the person
/// is not sure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentDate {
    /// Year (e.g. 2026).
    pub year: u16,
    /// Month 1–12.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<u8>,
    /// Day 1–31 (needs a month).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<u8>,
    /// The person is not sure of the date.
    #[serde(default)]
    pub approximate: bool,
}

impl IncidentDate {
    fn validate(&self) -> Result<()> {
        if !(1900..=2999).contains(&self.year) {
            return Err(ProtocolError::Invalid("incident year"));
        }
        match (self.month, self.day) {
            (None, Some(_)) => Err(ProtocolError::Invalid("incident day without a month")),
            (Some(m), _) if !(1..=12).contains(&m) => Err(ProtocolError::Invalid("incident month")),
            (Some(m), Some(d)) if d < 1 || d > days_in_month(self.year, m) => {
                Err(ProtocolError::Invalid("incident day"))
            }
            _ => Ok(()),
        }
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

/// Where it happened: coarse by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// ISO 3166-1 alpha-2 country code (e.g. "PE").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Region, department or province, as listed in the directory
    /// (e.g. "PE-UCA" for Ucayali).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Optional free description, only if the person wants to give one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The kind of place: border, urban or rural.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting: Option<PlaceSetting>,
}

impl Place {
    fn validate(&self) -> Result<()> {
        if let Some(c) = &self.country
            && (c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(ProtocolError::Invalid("country code"));
        }
        if let Some(r) = &self.region {
            check_text(r, 64, "region")?;
        }
        if let Some(d) = &self.detail {
            check_text(d, MAX_SHORT_CHARS, "place detail")?;
        }
        Ok(())
    }
}

/// Kind of attached media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// A photo (metadata stripped before sealing).
    Photo,
    /// An audio recording.
    Audio,
    /// A video.
    Video,
    /// A document.
    Document,
}

/// A reference from a report to an attachment sent as chunk envelopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// Random id shared by the attachment's chunks.
    #[serde(with = "b64::array")]
    pub id: [u8; 16],
    /// Kind of media.
    pub kind: AttachmentKind,
    /// MIME type (e.g. "image/jpeg").
    pub mime: String,
    /// Total length in bytes.
    pub size: u64,
    /// SHA-256 of the whole attachment, checked after reassembly.
    #[serde(with = "b64::array")]
    pub sha256: [u8; 32],
    /// Number of chunks.
    pub chunks: u32,
}

impl AttachmentRef {
    fn validate(&self) -> Result<()> {
        check_text(&self.mime, 100, "attachment MIME type")?;
        if !self.mime.is_ascii() || !self.mime.contains('/') {
            return Err(ProtocolError::Invalid("attachment MIME type"));
        }
        if self.size > MAX_ATTACHMENT_BYTES {
            return Err(ProtocolError::TooLarge {
                what: "attachment",
                len: usize::try_from(self.size).unwrap_or(usize::MAX),
                max: usize::try_from(MAX_ATTACHMENT_BYTES).unwrap_or(usize::MAX),
            });
        }
        if u64::from(self.chunks) != super::chunk::chunk_count(self.size) {
            return Err(ProtocolError::Invalid("attachment chunk count"));
        }
        Ok(())
    }
}

/// A referral note: set when a focal point re-seals a case to another focal
/// point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    /// Directory id of the focal point that refers the case.
    pub from_focal_point: String,
    /// Note for the receiving focal point.
    pub note: String,
    /// The `seq` of the referring office's "referred" status on the
    /// survivor's channel. The receiving office numbers its own messages on
    /// from it, so that the survivor's phone orders the two offices'
    /// messages even when they fall in the same second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u32>,
}

/// A report from a survivor to a focal point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Payload version (1).
    pub v: u8,
    /// Kinds of violence.
    #[serde(default)]
    pub violence: Vec<ViolenceKind>,
    /// Free description when `violence` includes `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violence_other: Option<String>,
    /// When it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<IncidentDate>,
    /// Where it happened.
    #[serde(default)]
    pub place: Place,
    /// Who the aggressor was.
    #[serde(default)]
    pub aggressors: Vec<AggressorKind>,
    /// Free description when `aggressors` includes `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggressor_other: Option<String>,
    /// What the person needs.
    #[serde(default)]
    pub needs: Vec<Need>,
    /// Language the person prefers for replies.
    pub language: Language,
    /// Free text in the person's words.
    #[serde(default)]
    pub text: String,
    /// Attachments sent as chunk envelopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
    /// Where replies go: the public half of the per-report reply keys.
    pub reply_to: RecipientPublic,
    /// Set when a focal point refers the case to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<Referral>,
    /// She agrees that the case is counted, anonymously, in the statistics
    /// the office shares. Absent means no: only a yes is counted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub statistics_consent: bool,
    /// Her age band when it happened, if she says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_band: Option<AgeBand>,
    /// Whether she also reported it to another organisation that helps
    /// survivors, if she says (statistics leave such cases out, so that no
    /// incident is counted twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_elsewhere: Option<bool>,
    /// Set when the report is a check-in timer's alert (PROTOCOL.md §17):
    /// sealed when she set the timer, held by the relay, and released
    /// because she stopped checking in. The focal point treats it as urgent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<TimerAlert>,
    /// Body encodings her phone opens (PROTOCOL.md §5.1): the focal point
    /// compresses its replies and status updates on this report's channel
    /// only if [`crate::compression::READS_DEFLATE_D1`] is listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<String>,
}

/// What a check-in timer's alert says about the timer (PROTOCOL.md §17.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerAlert {
    /// The hour she set the timer (hours since the epoch).
    pub set_hour: u32,
    /// The hour it was first due to be released (her first check-in time
    /// with the grace period); check-ins since may have moved it later.
    pub due_hour: u32,
    /// How many hours each check-in bought.
    pub every_hours: u32,
}

impl Payload for Report {
    const WHAT: &'static str = "report";

    fn version(&self) -> u8 {
        self.v
    }

    fn validate(&self) -> Result<()> {
        check_len(&self.violence, 16, "list of kinds of violence")?;
        check_len(&self.aggressors, 16, "list of aggressors")?;
        check_len(&self.needs, 16, "list of needs")?;
        check_len(&self.attachments, MAX_ATTACHMENTS, "list of attachments")?;
        check_text(&self.text, MAX_TEXT_CHARS, "report text")?;
        for (field, what) in [
            (&self.violence_other, "description of the violence"),
            (&self.aggressor_other, "description of the aggressor"),
        ] {
            if let Some(t) = field {
                check_text(t, MAX_SHORT_CHARS, what)?;
            }
        }
        if let Some(d) = &self.when {
            d.validate()?;
        }
        self.place.validate()?;
        for a in &self.attachments {
            a.validate()?;
        }
        if let Some(r) = &self.referral {
            crate::directory::check_id(&r.from_focal_point)?;
            check_text(&r.note, MAX_TEXT_CHARS, "referral note")?;
        }
        if let Some(a) = &self.alert {
            let ahead = a.due_hour.checked_sub(a.set_hour);
            if !ahead.is_some_and(|h| (1..=crate::timer::MAX_AHEAD_HOURS).contains(&h))
                || !(1..=crate::timer::MAX_AHEAD_HOURS).contains(&a.every_hours)
            {
                return Err(ProtocolError::Invalid(
                    "an alert is due 1 to 744 hours after it is set, and each check-in buys 1 to 744 hours",
                ));
            }
        }
        crate::compression::check_reads(&self.reads)
    }
}
