//! The records and enums that cross the FFI, each mirroring an amparo-core or
//! amparo-protocol type, with the conversions both ways. Conversion only: no
//! rule of the protocol is checked here (amparo-core checks them all).
//!
//! Ids (drafts, reports, messages, cases, attachments) and keys cross as
//! base64url strings without padding, as the protocol writes them on
//! screens and in JSON: easy to compare, store and put in a navigation route
//! in any language.

use amparo_core::bundles;
use amparo_core::directory as core_dir;
use amparo_core::drafts;
use amparo_core::focal;
use amparo_core::survivor;
use amparo_protocol::b64;
use amparo_protocol::directory as proto_dir;
use amparo_protocol::keys::RecipientPublic;
use amparo_protocol::payload;

use crate::error::AmparoError;

/// Mirrors a fieldless protocol enum: same variants, conversions both ways.
macro_rules! mirror_enum {
    ($(#[$doc:meta])* $name:ident = $core:path { $($(#[$vdoc:meta])* $v:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
        pub enum $name {
            $($(#[$vdoc])* $v),+
        }

        impl From<$name> for $core {
            fn from(v: $name) -> Self {
                match v {
                    $($name::$v => <$core>::$v),+
                }
            }
        }

        impl From<$core> for $name {
            fn from(v: $core) -> Self {
                match v {
                    $(<$core>::$v => $name::$v),+
                }
            }
        }
    };
}

mirror_enum!(
    /// Kind of violence (several may apply).
    ViolenceKind = payload::ViolenceKind {
        /// Physical violence.
        Physical,
        /// Sexual violence, including rape and forced unprotected sex.
        Sexual,
        /// Psychological violence, humiliation.
        Psychological,
        /// Threats, including threats with a weapon.
        Threats,
        /// Harassment and stalking.
        Harassment,
        /// Extortion, demands for money or sex, including by officials.
        Extortion,
        /// Robbery, theft of earnings or documents.
        Robbery,
        /// Arbitrary detention, raids, abuse in custody.
        ArbitraryDetention,
        /// Discrimination, refusal of service.
        Discrimination,
        /// Trafficking, forced work, exploitation.
        Trafficking,
        /// Something else (described in `violence_other`).
        Other,
    }
);

mirror_enum!(
    /// Who the aggressor was (several may apply).
    AggressorKind = payload::AggressorKind {
        /// A client.
        Client,
        /// Police, military, municipal or private security agents.
        PoliceOrSecurity,
        /// Current or former intimate partner.
        IntimatePartner,
        /// Pimp, manager, owner of the venue.
        ThirdPartyOrPimp,
        /// Organised crime, gangs, traffickers.
        OrganizedCrime,
        /// Someone else (described in `aggressor_other`).
        Other,
        /// Unknown or prefers not to say.
        Unknown,
    }
);

mirror_enum!(
    /// What the person needs; also the kinds of help a focal point offers.
    Need = payload::Need {
        /// Legal advice, filing a complaint, accompaniment.
        LegalAdvice,
        /// Health care.
        HealthCare,
        /// STI/HIV testing and treatment, PEP, emergency contraception.
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
);

mirror_enum!(
    /// Her age band when it happened (GBVIMS: 0–11, 12–17, 18+).
    AgeBand = payload::AgeBand {
        /// 0 to 11 years old.
        Child,
        /// 12 to 17 years old.
        Adolescent,
        /// 18 or older.
        Adult,
    }
);

mirror_enum!(
    /// The kind of place: border area, city or town, countryside.
    PlaceSetting = payload::PlaceSetting {
        /// A border area or crossing.
        Border,
        /// A city or town.
        Urban,
        /// The countryside, a village, a river community.
        Rural,
    }
);

mirror_enum!(
    /// The GBVIMS core type of an incident, decided by the case worker.
    GbvType = amparo_protocol::statistics::GbvType {
        /// Rape.
        Rape,
        /// Sexual assault.
        SexualAssault,
        /// Physical assault.
        PhysicalAssault,
        /// Forced marriage.
        ForcedMarriage,
        /// Denial of resources, opportunities or services.
        DenialOfResources,
        /// Psychological or emotional abuse.
        PsychologicalAbuse,
    }
);

mirror_enum!(
    /// GBVIMS context of an incident (several may apply).
    GbvContext = amparo_protocol::statistics::GbvContext {
        /// Intimate partner violence.
        IntimatePartnerViolence,
        /// Child sexual abuse.
        ChildSexualAbuse,
        /// Possible sexual exploitation.
        SexualExploitation,
        /// Possible trafficking.
        Trafficking,
    }
);

mirror_enum!(
    /// Languages of the form, replies and directory.
    Language = payload::Language {
        /// Español.
        Es,
        /// Português.
        Pt,
        /// English.
        En,
    }
);

mirror_enum!(
    /// Kind of attached media.
    AttachmentKind = payload::AttachmentKind {
        /// A photo (its metadata is removed before it is stored).
        Photo,
        /// An audio recording.
        Audio,
        /// A video.
        Video,
        /// A document.
        Document,
    }
);

mirror_enum!(
    /// Where a case stands.
    CaseStatus = payload::CaseStatus {
        /// The focal point has the report.
        Received,
        /// Someone is working on it.
        InProgress,
        /// Passed to another focal point.
        Referred,
        /// Closed.
        Closed,
    }
);

/// How hard the PIN is to guess from a stolen copy of the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum KdfStrength {
    /// Argon2id, 46 MiB, 4 passes: for every real profile.
    Phone,
    /// Argon2id with 64 KiB and 1 pass: a 4-digit PIN falls in seconds.
    /// For automated tests only; never in an app build.
    DangerouslyFastForTests,
}

impl From<KdfStrength> for amparo_core::store::KdfParams {
    fn from(k: KdfStrength) -> Self {
        match k {
            KdfStrength::Phone => Self::PHONE,
            KdfStrength::DangerouslyFastForTests => Self::DANGEROUSLY_FAST_FOR_TESTS,
        }
    }
}

/// The keys an app ships with: the coordinator's directory-signing key and
/// the receipt keys of relays it trusts before any directory arrives (the
/// directory adds its own relays). Base64url, 43 characters each.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TrustedKeys {
    /// The coordinator's Ed25519 public key.
    pub coordinator_key: String,
    /// Relay receipt keys (Ed25519 public keys).
    #[uniffi(default)]
    pub relay_receipt_keys: Vec<String>,
}

/// When it happened. Any part may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct IncidentDate {
    /// Year (e.g. 2026).
    pub year: u16,
    /// Month 1–12.
    #[uniffi(default)]
    pub month: Option<u8>,
    /// Day 1–31 (needs a month).
    #[uniffi(default)]
    pub day: Option<u8>,
    /// She is not sure of the date.
    #[uniffi(default)]
    pub approximate: bool,
}

impl From<IncidentDate> for payload::IncidentDate {
    fn from(d: IncidentDate) -> Self {
        payload::IncidentDate {
            year: d.year,
            month: d.month,
            day: d.day,
            approximate: d.approximate,
        }
    }
}

impl From<payload::IncidentDate> for IncidentDate {
    fn from(d: payload::IncidentDate) -> Self {
        IncidentDate {
            year: d.year,
            month: d.month,
            day: d.day,
            approximate: d.approximate,
        }
    }
}

/// What the person fills in. Every field may be left out but the text.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DraftForm {
    /// Kinds of violence.
    #[uniffi(default)]
    pub violence: Vec<ViolenceKind>,
    /// Description when `violence` includes `Other`.
    #[uniffi(default)]
    pub violence_other: Option<String>,
    /// When it happened.
    #[uniffi(default)]
    pub incident_date: Option<IncidentDate>,
    /// Country, ISO 3166-1 alpha-2 (e.g. "PE").
    #[uniffi(default)]
    pub country: Option<String>,
    /// Region as the directory names it (e.g. "PE-UCA").
    #[uniffi(default)]
    pub region: Option<String>,
    /// Free description of the place, only if she wants to give one.
    #[uniffi(default)]
    pub place_detail: Option<String>,
    /// Who.
    #[uniffi(default)]
    pub aggressors: Vec<AggressorKind>,
    /// Description when `aggressors` includes `Other`.
    #[uniffi(default)]
    pub aggressor_other: Option<String>,
    /// What she needs.
    #[uniffi(default)]
    pub needs: Vec<Need>,
    /// Language for replies (Spanish if not chosen).
    #[uniffi(default)]
    pub language: Option<Language>,
    /// Her own words.
    #[uniffi(default)]
    pub text: String,
    /// The kind of place, if she says.
    #[uniffi(default)]
    pub place_setting: Option<PlaceSetting>,
    /// Her age band then, if she says.
    #[uniffi(default)]
    pub age_band: Option<AgeBand>,
    /// Whether she already told another organisation that helps survivors,
    /// if she says.
    #[uniffi(default)]
    pub reported_elsewhere: Option<bool>,
    /// Yes to being counted, anonymously, in the statistics organisations
    /// share. Ask with `statistics_consent_question`; not counted unless
    /// she says yes.
    #[uniffi(default)]
    pub statistics_consent: bool,
}

fn map<A: Clone + Into<B>, B>(v: &[A]) -> Vec<B> {
    v.iter().cloned().map(Into::into).collect()
}

impl From<DraftForm> for drafts::DraftForm {
    fn from(f: DraftForm) -> Self {
        drafts::DraftForm {
            violence: map(&f.violence),
            violence_other: f.violence_other,
            when: f.incident_date.map(Into::into),
            place: payload::Place {
                setting: f.place_setting.map(Into::into),
                country: f.country,
                region: f.region,
                detail: f.place_detail,
            },
            aggressors: map(&f.aggressors),
            aggressor_other: f.aggressor_other,
            needs: map(&f.needs),
            language: f.language.map(Into::into),
            text: f.text,
            statistics_consent: f.statistics_consent,
            age_band: f.age_band.map(Into::into),
            reported_elsewhere: f.reported_elsewhere,
        }
    }
}

impl From<drafts::DraftForm> for DraftForm {
    fn from(f: drafts::DraftForm) -> Self {
        DraftForm {
            violence: map(&f.violence),
            violence_other: f.violence_other,
            incident_date: f.when.map(Into::into),
            country: f.place.country,
            region: f.place.region,
            place_detail: f.place.detail,
            aggressors: map(&f.aggressors),
            aggressor_other: f.aggressor_other,
            needs: map(&f.needs),
            language: f.language.map(Into::into),
            text: f.text,
            place_setting: f.place.setting.map(Into::into),
            age_band: f.age_band.map(Into::into),
            reported_elsewhere: f.reported_elsewhere,
            statistics_consent: f.statistics_consent,
        }
    }
}

/// A draft as listed and read.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Draft {
    /// Its id.
    pub id: String,
    /// The form.
    pub form: DraftForm,
    /// Ids of its attachments, in the order added.
    pub attachments: Vec<String>,
}

impl From<drafts::Draft> for Draft {
    fn from(d: drafts::Draft) -> Self {
        Draft {
            id: b64::encode(&d.id),
            form: d.form.into(),
            attachments: d.attachments.iter().map(|a| b64::encode(a)).collect(),
        }
    }
}

/// An attachment of a draft, for a preview.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DraftAttachment {
    /// Its id.
    pub id: String,
    /// Kind of media.
    pub kind: AttachmentKind,
    /// MIME type.
    pub mime: String,
    /// The bytes as they will be sent (photo metadata already removed).
    pub data: Vec<u8>,
}

/// A text in each of the directory's languages.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LocalizedText {
    /// Español.
    pub es: String,
    /// Português.
    pub pt: String,
    /// English.
    pub en: String,
}

impl From<LocalizedText> for proto_dir::LocalizedText {
    fn from(t: LocalizedText) -> Self {
        proto_dir::LocalizedText {
            es: t.es,
            pt: t.pt,
            en: t.en,
        }
    }
}

impl From<proto_dir::LocalizedText> for LocalizedText {
    fn from(t: proto_dir::LocalizedText) -> Self {
        LocalizedText {
            es: t.es,
            pt: t.pt,
            en: t.en,
        }
    }
}

/// A focal point's public keys, as the directory lists them.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FocalKeys {
    /// X25519 key reports are sealed to.
    pub sealing_key: String,
    /// Ed25519 key that signs its mailbox requests.
    pub signing_key: String,
    /// The relay mailbox these keys own (derived, for display).
    pub mailbox: String,
}

impl From<RecipientPublic> for FocalKeys {
    fn from(k: RecipientPublic) -> Self {
        FocalKeys {
            sealing_key: b64::encode(&k.sealing_key),
            signing_key: b64::encode(&k.signing_key),
            mailbox: k.mailbox().to_string(),
        }
    }
}

impl TryFrom<FocalKeys> for RecipientPublic {
    type Error = AmparoError;
    fn try_from(k: FocalKeys) -> Result<Self, AmparoError> {
        Ok(RecipientPublic {
            sealing_key: key32(&k.sealing_key, "focal point sealing key")?,
            signing_key: key32(&k.signing_key, "focal point signing key")?,
        })
    }
}

/// A justice focal point in the signed directory.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FocalPoint {
    /// Stable id chosen by the coordinator (e.g. "pe-ucayali-defensoria").
    pub id: String,
    /// Name shown to survivors.
    pub name: LocalizedText,
    /// The organisation it belongs to.
    pub organization: String,
    /// Regions it serves (e.g. "PE-UCA").
    pub regions: Vec<String>,
    /// Kinds of help it gives.
    pub categories: Vec<Need>,
    /// Languages it answers in.
    pub languages: Vec<Language>,
    /// Its keys.
    pub keys: FocalKeys,
    /// Start of validity (seconds since the epoch).
    pub valid_from: u64,
    /// End of validity (seconds since the epoch).
    pub valid_until: u64,
    /// Body encodings its software opens ("deflate_d1": compressed reports,
    /// PROTOCOL.md §5.1). Pass it back unchanged when sending.
    pub reads: Vec<String>,
}

impl From<&proto_dir::FocalPoint> for FocalPoint {
    fn from(f: &proto_dir::FocalPoint) -> Self {
        FocalPoint {
            id: f.id.clone(),
            name: f.name.clone().into(),
            organization: f.organization.clone(),
            regions: f.regions.clone(),
            categories: map(&f.categories),
            languages: map(&f.languages),
            keys: f.keys.into(),
            valid_from: f.valid_from,
            valid_until: f.valid_until,
            reads: f.reads.clone(),
        }
    }
}

impl TryFrom<FocalPoint> for proto_dir::FocalPoint {
    type Error = AmparoError;
    fn try_from(f: FocalPoint) -> Result<Self, AmparoError> {
        Ok(proto_dir::FocalPoint {
            reads: f.reads,
            id: f.id,
            name: f.name.into(),
            organization: f.organization,
            regions: f.regions,
            categories: map(&f.categories),
            languages: map(&f.languages),
            keys: f.keys.try_into()?,
            valid_from: f.valid_from,
            valid_until: f.valid_until,
        })
    }
}

mirror_enum!(
    /// Kinds of service a route points to.
    ServiceKind = proto_dir::ServiceKind {
        /// General health care.
        HealthCare,
        /// STI/HIV, PEP, emergency contraception.
        StiHivPep,
        /// Legal aid.
        LegalAid,
        /// Shelter, safe house.
        Shelter,
        /// Mental health.
        MentalHealth,
        /// Help for migrants.
        MigrationSupport,
    }
);

/// Where to get a service in a region, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ServiceRoute {
    /// Stable id.
    pub id: String,
    /// Region served.
    pub region: String,
    /// Kind of service.
    pub service: ServiceKind,
    /// Name of the place or programme.
    pub name: LocalizedText,
    /// How to get there and what to expect.
    pub description: LocalizedText,
    /// Phone, address or opening hours, if public.
    #[uniffi(default)]
    pub contact: Option<String>,
}

impl From<&proto_dir::ServiceRoute> for ServiceRoute {
    fn from(r: &proto_dir::ServiceRoute) -> Self {
        ServiceRoute {
            id: r.id.clone(),
            region: r.region.clone(),
            service: r.service.into(),
            name: r.name.clone().into(),
            description: r.description.clone().into(),
            contact: r.contact.clone(),
        }
    }
}

impl From<ServiceRoute> for proto_dir::ServiceRoute {
    fn from(r: ServiceRoute) -> Self {
        proto_dir::ServiceRoute {
            id: r.id,
            region: r.region,
            service: r.service.into(),
            name: r.name.into(),
            description: r.description.into(),
            contact: r.contact,
        }
    }
}

/// A relay whose receipts count as delivered.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RelayEntry {
    /// A name for people.
    pub name: String,
    /// Base URL, if public.
    #[uniffi(default)]
    pub url: Option<String>,
    /// Its receipt-signing key (base64url).
    pub receipt_key: String,
}

impl TryFrom<RelayEntry> for proto_dir::RelayEntry {
    type Error = AmparoError;
    fn try_from(r: RelayEntry) -> Result<Self, AmparoError> {
        Ok(proto_dir::RelayEntry {
            name: r.name,
            url: r.url,
            receipt_key: key32(&r.receipt_key, "relay receipt key")?,
        })
    }
}

impl From<&proto_dir::RelayEntry> for RelayEntry {
    fn from(r: &proto_dir::RelayEntry) -> Self {
        RelayEntry {
            name: r.name.clone(),
            url: r.url.clone(),
            receipt_key: b64::encode(&r.receipt_key),
        }
    }
}

/// What the person is looking for; every field given must match.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct FocalPointQuery {
    /// Region code, e.g. "PE-UCA".
    #[uniffi(default)]
    pub region: Option<String>,
    /// A kind of help.
    #[uniffi(default)]
    pub need: Option<Need>,
    /// A language she speaks.
    #[uniffi(default)]
    pub language: Option<Language>,
}

impl From<FocalPointQuery> for core_dir::FocalPointQuery {
    fn from(q: FocalPointQuery) -> Self {
        core_dir::FocalPointQuery {
            region: q.region,
            need: q.need.map(Into::into),
            language: q.language.map(Into::into),
        }
    }
}

/// A report that was sent (or is waiting to go).
#[derive(Debug, Clone, uniffi::Record)]
pub struct SentReport {
    /// The report id.
    pub id: String,
    /// The focal point's directory id.
    pub focal_point: String,
    /// Hour it was sealed (hours since the epoch).
    pub created_hour: u32,
    /// Envelopes still waiting for a relay receipt.
    pub pending: u64,
    /// Envelopes the relay has signed for.
    pub delivered: u64,
    /// Envelopes a field relay took (its receipt is not one this phone
    /// trusts for delivery): still in the outbox, offered again at each
    /// sync until a trusted receipt arrives. Counted in `pending` too.
    pub handed_over: u64,
    /// The latest case status a focal point sent: the one it made last,
    /// whatever order the messages arrived in.
    pub status: Option<CaseStatus>,
    /// The directory id of the focal point that set that status, if it
    /// said (after a referral, the office the case went to). Show its name
    /// from the directory.
    pub status_from: Option<String>,
    /// Where the case went, if that latest status is `Referred`.
    pub referred_to: Option<String>,
    /// Messages not yet read.
    pub unread: u64,
    /// A check-in timer's alert, held by the relay and sent only if she
    /// stops checking in (`pending` until then): list it with her timers,
    /// not as a report waiting to go.
    pub alert: bool,
}

impl From<survivor::SentReport> for SentReport {
    fn from(r: survivor::SentReport) -> Self {
        SentReport {
            id: b64::encode(&r.id),
            focal_point: r.focal_point,
            created_hour: r.created_hour,
            pending: r.pending as u64,
            delivered: r.delivered as u64,
            handed_over: r.handed_over as u64,
            status: r.status.map(Into::into),
            status_from: r.status_from,
            referred_to: r.referred_to,
            unread: r.unread as u64,
            alert: r.alert,
        }
    }
}

/// A message from the focal point on a report's channel.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ReceivedMessage {
    /// Its id.
    pub id: String,
    /// The report it belongs to.
    pub report: String,
    /// Text of a reply, or the message of a status update.
    pub text: Option<String>,
    /// The new case status, for a status update.
    pub status: Option<CaseStatus>,
    /// The focal point it was referred to, with status `Referred`.
    pub referred_to: Option<String>,
    /// Hour the focal point wrote it.
    pub hour: u32,
    /// Whether she has read it.
    pub read: bool,
    /// Seconds since the epoch when the focal point wrote it, by its clock
    /// (absent from older focal points). `messages()` is already in the
    /// order they were made.
    pub written_at: Option<u64>,
    /// The directory id of the focal point that wrote it, if it said: after
    /// a referral, the office the case went to writes on the same channel.
    pub from: Option<String>,
}

impl From<survivor::ReceivedMessage> for ReceivedMessage {
    fn from(m: survivor::ReceivedMessage) -> Self {
        ReceivedMessage {
            id: b64::encode(&m.id),
            report: b64::encode(&m.report),
            text: m.text,
            status: m.status.map(Into::into),
            referred_to: m.referred_to,
            hour: m.hour,
            read: m.read,
            written_at: m.stamp.at,
            from: m.stamp.from,
        }
    }
}

/// Progress of a sync, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncProgress {
    /// `done` of `total` outbox envelopes are uploaded.
    Upload {
        /// Uploaded so far.
        done: u64,
        /// Waiting at the start.
        total: u64,
        /// Bytes uploaded so far.
        bytes: u64,
    },
    /// The relay is under pressure: the phone does admission work of
    /// `effort` for the next `envelopes` before sending them (seconds, on a
    /// thread of its own). Show "preparing to send"; the report is safe in
    /// the outbox meanwhile.
    Preparing {
        /// The effort being paid.
        effort: u32,
        /// Envelopes it is for.
        envelopes: u64,
    },
    /// `done` of `total` reply channels are checked.
    Replies {
        /// Checked so far.
        done: u64,
        /// To check.
        total: u64,
    },
    /// A focal point's mailbox: `done` envelopes fetched so far, of which
    /// `reports` new reports (already in the case list) and `unreadable`
    /// envelopes that could not be opened. Show "N reports, M unreadable".
    Mailbox {
        /// Fetched so far.
        done: u64,
        /// New reports filed so far.
        reports: u64,
        /// Envelopes that could not be opened so far.
        unreadable: u64,
    },
}

impl From<focal::FetchProgress> for SyncProgress {
    fn from(p: focal::FetchProgress) -> Self {
        SyncProgress::Mailbox {
            done: p.fetched as u64,
            reports: p.reports as u64,
            unreadable: p.unreadable as u64,
        }
    }
}

impl From<survivor::SyncProgress> for SyncProgress {
    fn from(p: survivor::SyncProgress) -> Self {
        match p {
            survivor::SyncProgress::Upload { done, total, bytes } => SyncProgress::Upload {
                done: done as u64,
                total: total as u64,
                bytes: bytes as u64,
            },
            survivor::SyncProgress::Preparing { effort, envelopes } => SyncProgress::Preparing {
                effort,
                envelopes: envelopes as u64,
            },
            survivor::SyncProgress::Replies { done, total } => SyncProgress::Replies {
                done: done as u64,
                total: total as u64,
            },
        }
    }
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct SyncSummary {
    /// Envelopes uploaded and signed for.
    pub delivered: u64,
    /// Envelopes the relay refused (kept aside, not resent).
    pub refused: u64,
    /// Envelopes the relay could not take now (full or busy): still in the
    /// outbox, safe on the phone, sent again at a later sync. Tell her so.
    pub postponed: u64,
    /// Envelopes a field relay took but whose delivery is not proven yet.
    pub handed_over: u64,
    /// New messages from focal points.
    pub new_messages: u64,
    /// Envelopes in her answer mailboxes that were not for her (junk someone
    /// pushed there, or about another report): deleted at the relay, nothing
    /// kept. Worth a quiet word if it is not zero.
    pub discarded: u64,
    /// Bytes spent reading answer mailboxes, within the budget given.
    pub reply_bytes: u64,
    /// The budget ran out before every answer mailbox was read: the next
    /// sync goes on (on Wi-Fi, an app may sync again with a larger budget).
    pub replies_left: bool,
    /// When the relay could not take something now (`postponed` > 0):
    /// seconds to wait before syncing again (schedule the next sync no
    /// sooner, e.g. with WorkManager's initial delay). Null otherwise.
    pub retry_after_secs: Option<u64>,
    /// Uploads admitted with an admission token because the relay was
    /// pressed (PROTOCOL.md §14.2).
    pub tokens_used: u64,
    /// Uploads for which the phone did the relay's admission work.
    pub admission_work: u64,
    /// The highest effort that work cost (a few seconds of a low-end phone
    /// at 64).
    pub max_effort: u32,
    /// Envelopes left in the outbox because the relay asked more work than
    /// a phone does: show "waiting for the relay" and sync again later.
    pub waiting_for_relay: u64,
    /// Check-in timers' alerts the relay took this sync.
    pub timers_held: u64,
    /// Check-ins and cancels sent.
    pub timer_check_ins_sent: u64,
    /// Alerts found released (her check-in came too late), or sent as
    /// reports because their hour came before the phone had signal.
    pub alerts_gone: u64,
    /// Timers' alerts the relay refused for good (the focal point left its
    /// directory): ask her to set the timer again for another focal point.
    pub timers_refused: u64,
}

impl From<survivor::SyncSummary> for SyncSummary {
    fn from(s: survivor::SyncSummary) -> Self {
        SyncSummary {
            delivered: s.delivered as u64,
            refused: s.refused as u64,
            postponed: s.postponed as u64,
            handed_over: s.handed_over as u64,
            new_messages: s.new_messages as u64,
            discarded: s.discarded as u64,
            reply_bytes: s.reply_bytes,
            replies_left: s.replies_left,
            retry_after_secs: s.retry_after_secs,
            tokens_used: s.paid.tokens_used as u64,
            admission_work: s.paid.worked as u64,
            max_effort: s.paid.max_effort,
            waiting_for_relay: s.paid.waiting as u64,
            timers_held: s.timers.held as u64,
            timer_check_ins_sent: s.timers.sent as u64,
            alerts_gone: (s.timers.released + s.timers.sent_directly) as u64,
            timers_refused: s.timers.refused as u64,
        }
    }
}

/// What one mailbox fetch filed.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct FetchSummary {
    /// New cases.
    pub new_cases: u64,
    /// Attachment pieces stored.
    pub chunks: u64,
    /// Follow-up messages from survivors, filed on their cases.
    pub messages: u64,
    /// Follow-ups kept until the report they belong to arrives (filed on
    /// the case then).
    pub waiting: u64,
    /// Copies of things already filed.
    pub duplicates: u64,
    /// Envelopes that could not be opened: counted, a few kept aside
    /// (`rejected_summary`).
    pub rejected: u64,
    /// The fetch stopped at its limit with more waiting: sync again.
    pub more: bool,
}

impl From<focal::FetchSummary> for FetchSummary {
    fn from(s: focal::FetchSummary) -> Self {
        FetchSummary {
            new_cases: s.new_cases as u64,
            chunks: s.chunks as u64,
            messages: s.messages as u64,
            waiting: s.waiting as u64,
            duplicates: s.duplicates as u64,
            rejected: s.rejected as u64,
            more: s.more,
        }
    }
}

/// What a focal point's sync did: what it sent and what it fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct FocalSyncSummary {
    /// Replies, status updates and referrals uploaded.
    pub sent: SyncSummary,
    /// What arrived.
    pub fetched: FetchSummary,
}

/// Filter for the focal point's case list; every field set must match.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct CaseFilter {
    /// Status.
    #[uniffi(default)]
    pub status: Option<CaseStatus>,
    /// A need the report names.
    #[uniffi(default)]
    pub need: Option<Need>,
    /// Region.
    #[uniffi(default)]
    pub region: Option<String>,
    /// Reported at or after this hour (hours since the epoch).
    #[uniffi(default)]
    pub since_hour: Option<u32>,
}

impl From<CaseFilter> for focal::CaseFilter {
    fn from(f: CaseFilter) -> Self {
        focal::CaseFilter {
            status: f.status.map(Into::into),
            need: f.need.map(Into::into),
            region: f.region,
            since_hour: f.since_hour,
        }
    }
}

/// A case as listed.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CaseSummary {
    /// The report id (also the case id).
    pub id: String,
    /// Where it stands.
    pub status: CaseStatus,
    /// Hour the report was written.
    pub reported_hour: u32,
    /// What the person needs.
    pub needs: Vec<Need>,
    /// Region, if given.
    pub region: Option<String>,
    /// The focal point that referred it here, if any.
    pub referred_by: Option<String>,
    /// The focal point this office referred it to, if its status is `Referred`.
    pub referred_to: Option<String>,
    /// Whether something arrived on it since the office last read it
    /// (`mark_case_read`).
    pub unread: bool,
    /// How many internal notes the office wrote on it.
    pub notes: u32,
    /// Where the office's own work on it stands (internal, never sent).
    pub stage: CaseStage,
    /// Whether the office starred it (internal).
    pub starred: bool,
    /// The GBVIMS type the office gave it (internal), if any.
    pub gbv_type: Option<GbvType>,
    /// The GBVIMS context flags the office recorded (internal).
    pub context: Vec<GbvContext>,
    /// She agreed to be counted, anonymously, in shared statistics.
    pub statistics_consent: bool,
    /// Set when the case is a check-in timer's alert: she stopped checking
    /// in. Urgent: show it first and say so.
    pub alert: Option<CaseAlert>,
}

/// A check-in timer's alert, as the office sees it (hours since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct CaseAlert {
    /// When she set the timer.
    pub set_hour: u32,
    /// When it was first due to go (check-ins may have moved it later).
    pub due_hour: u32,
    /// Hours each check-in bought.
    pub every_hours: u32,
    /// When this office received it: released in that hour or before.
    pub received_hour: Option<u32>,
}

/// Where a case stands in the office's own work (assessment, plan,
/// services, follow-up, closure): internal, never sent; the survivor sees
/// only the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CaseStage {
    /// Not yet looked at.
    New,
    /// Her situation, risks and needs are being assessed.
    Assessment,
    /// A case plan is agreed with her.
    CasePlan,
    /// Services are being provided or referred.
    Services,
    /// Her case is being followed up.
    FollowUp,
    /// The office's work on it is over.
    Closure,
}

impl From<focal::CaseStage> for CaseStage {
    fn from(s: focal::CaseStage) -> Self {
        match s {
            focal::CaseStage::New => CaseStage::New,
            focal::CaseStage::Assessment => CaseStage::Assessment,
            focal::CaseStage::CasePlan => CaseStage::CasePlan,
            focal::CaseStage::Services => CaseStage::Services,
            focal::CaseStage::FollowUp => CaseStage::FollowUp,
            focal::CaseStage::Closure => CaseStage::Closure,
        }
    }
}

impl From<CaseStage> for focal::CaseStage {
    fn from(s: CaseStage) -> Self {
        match s {
            CaseStage::New => focal::CaseStage::New,
            CaseStage::Assessment => focal::CaseStage::Assessment,
            CaseStage::CasePlan => focal::CaseStage::CasePlan,
            CaseStage::Services => focal::CaseStage::Services,
            CaseStage::FollowUp => focal::CaseStage::FollowUp,
            CaseStage::Closure => focal::CaseStage::Closure,
        }
    }
}

impl From<focal::CaseSummary> for CaseSummary {
    fn from(s: focal::CaseSummary) -> Self {
        CaseSummary {
            id: b64::encode(&s.id),
            status: s.status.into(),
            reported_hour: s.reported_hour,
            needs: map(&s.needs),
            region: s.region,
            referred_by: s.referred_by,
            referred_to: s.referred_to,
            unread: s.unread,
            notes: u32::try_from(s.notes).unwrap_or(u32::MAX),
            stage: s.stage.into(),
            starred: s.starred,
            gbv_type: s.gbv_type.map(Into::into),
            context: map(&s.context),
            statistics_consent: s.facts.consent,
            alert: s.alert.map(|a| CaseAlert {
                set_hour: a.set_hour,
                due_hour: a.due_hour,
                every_hours: a.every_hours,
                received_hour: a.received_hour,
            }),
        }
    }
}

/// An attachment of a case.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CaseAttachment {
    /// Kind of media.
    pub kind: AttachmentKind,
    /// MIME type.
    pub mime: String,
    /// Size in bytes, as the report declares it.
    pub size: u64,
    /// The bytes, once every piece has arrived and the hash matched.
    pub data: Option<Vec<u8>>,
}

/// A whole case: the report as she wrote it, its attachments and her
/// follow-up messages.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Case {
    /// Summary fields.
    pub summary: CaseSummary,
    /// The form she filled in.
    pub form: DraftForm,
    /// The language she wants replies in.
    pub language: Language,
    /// The referral note, if another focal point referred the case.
    pub referral_note: Option<String>,
    /// Attachments.
    pub attachments: Vec<CaseAttachment>,
    /// Follow-up messages from her, oldest first.
    pub messages: Vec<String>,
    /// Everything that happened on the case at this office, oldest first.
    pub history: Vec<CaseEvent>,
    /// The office's internal notes, oldest first (never sent).
    pub notes: Vec<CaseNote>,
}

/// An internal note on a case: for the office only, never sent.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CaseNote {
    /// Seconds since the Unix epoch when it was written.
    pub at: u64,
    /// The note.
    pub text: String,
}

/// Whether survivors can reach this focal point through the directory held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Listing {
    /// Listed with this profile's keys and valid now.
    Listed,
    /// No directory yet.
    NoDirectory,
    /// This profile's directory id is not set (`set_focal_point_id`).
    NoId,
    /// The directory has no focal point with this id.
    NotListed,
    /// The directory lists this id with other keys.
    OtherKeys,
    /// Listed, but not valid now.
    NotValidNow,
}

impl From<focal::Listing> for Listing {
    fn from(l: focal::Listing) -> Self {
        match l {
            focal::Listing::Listed => Listing::Listed,
            focal::Listing::NoDirectory => Listing::NoDirectory,
            focal::Listing::NoId => Listing::NoId,
            focal::Listing::NotListed => Listing::NotListed,
            focal::Listing::OtherKeys => Listing::OtherKeys,
            focal::Listing::NotValidNow => Listing::NotValidNow,
        }
    }
}

/// One thing that happened on a case at this focal point.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CaseEvent {
    /// Seconds since the epoch (for her messages, the start of the hour
    /// her phone sealed it in).
    pub at: u64,
    /// What happened.
    pub kind: CaseEventKind,
}

/// What happened, in a [`CaseEvent`].
#[derive(Debug, Clone, uniffi::Enum)]
pub enum CaseEventKind {
    /// A follow-up message from the survivor.
    FromSurvivor {
        /// Her text.
        text: String,
    },
    /// A reply this office sent her.
    Reply {
        /// The text.
        text: String,
    },
    /// A status this office set.
    Status {
        /// The new status.
        status: CaseStatus,
        /// The message sent with it.
        message: Option<String>,
    },
    /// This office referred the case.
    Referred {
        /// The directory id of the focal point it went to.
        to: String,
        /// The note for that office.
        note: String,
    },
}

impl From<focal::CaseEvent> for CaseEvent {
    fn from(e: focal::CaseEvent) -> Self {
        CaseEvent {
            at: e.at,
            kind: match e.kind {
                focal::CaseEventKind::FromSurvivor { text, .. } => {
                    CaseEventKind::FromSurvivor { text }
                }
                focal::CaseEventKind::Reply { text } => CaseEventKind::Reply { text },
                focal::CaseEventKind::Status { status, message } => CaseEventKind::Status {
                    status: status.into(),
                    message,
                },
                focal::CaseEventKind::Referred { to, note } => CaseEventKind::Referred { to, note },
            },
        }
    }
}

impl From<focal::Case> for Case {
    fn from(c: focal::Case) -> Self {
        let r = c.report;
        Case {
            summary: c.summary.into(),
            form: DraftForm {
                violence: map(&r.violence),
                violence_other: r.violence_other,
                incident_date: r.when.map(Into::into),
                country: r.place.country,
                region: r.place.region,
                place_detail: r.place.detail,
                aggressors: map(&r.aggressors),
                aggressor_other: r.aggressor_other,
                needs: map(&r.needs),
                language: Some(r.language.into()),
                text: r.text,
                place_setting: r.place.setting.map(Into::into),
                age_band: r.age_band.map(Into::into),
                reported_elsewhere: r.reported_elsewhere,
                statistics_consent: r.statistics_consent,
            },
            language: r.language.into(),
            referral_note: r.referral.map(|n| n.note),
            attachments: c
                .attachments
                .into_iter()
                .map(|(a, data)| CaseAttachment {
                    kind: a.kind.into(),
                    mime: a.mime,
                    size: a.size,
                    data,
                })
                .collect(),
            messages: c.messages,
            notes: c
                .notes
                .into_iter()
                .map(|n| CaseNote {
                    at: n.at,
                    text: n.text,
                })
                .collect(),
            history: c.history.into_iter().map(Into::into).collect(),
        }
    }
}

/// An envelope the focal point could not open, as kept (a small record;
/// its bytes only within the profile's limits).
#[derive(Debug, Clone, uniffi::Record)]
pub struct RejectedEnvelope {
    /// The envelope id.
    pub id: String,
    /// Why it could not be filed, as a sentence (English, from the core).
    pub reason: String,
    /// Why it could not be filed, for the app to word.
    pub code: RejectReason,
    /// Its size in bytes.
    pub size: u32,
    /// The hour it was fetched (hours since the epoch); 0 if unknown.
    pub hour: u32,
    /// Whether its bytes are kept.
    pub bytes_kept: bool,
}

impl From<focal::RejectedRecord> for RejectedEnvelope {
    fn from(r: focal::RejectedRecord) -> Self {
        RejectedEnvelope {
            id: r.id.to_string(),
            reason: r.detail,
            code: r.reason.into(),
            size: r.size,
            hour: r.hour,
            bytes_kept: r.bytes_kept,
        }
    }
}

/// Why an envelope could not be filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum RejectReason {
    /// It does not open with this focal point's keys (junk, or altered).
    DoesNotOpen,
    /// It opened, but what is inside is damaged.
    Malformed,
    /// A follow-up for a case this focal point does not hold, past what is
    /// kept waiting for reports.
    UnknownCase,
    /// A status update, which only survivors receive.
    NotForFocalPoint,
    /// Another reason.
    Other,
}

impl From<focal::RejectReason> for RejectReason {
    fn from(r: focal::RejectReason) -> Self {
        match r {
            focal::RejectReason::DoesNotOpen => RejectReason::DoesNotOpen,
            focal::RejectReason::Malformed => RejectReason::Malformed,
            focal::RejectReason::UnknownCase => RejectReason::UnknownCase,
            focal::RejectReason::NotForFocalPoint => RejectReason::NotForFocalPoint,
            focal::RejectReason::Other => RejectReason::Other,
        }
    }
}

/// How many envelopes could not be filed for one reason.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RejectReasonCount {
    /// The reason.
    pub reason: RejectReason,
    /// How many (exact).
    pub count: u64,
}

/// How much a focal point keeps of envelopes that do not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct RejectedLimits {
    /// Most records kept (past it, only counts); at most 100000.
    pub max_records: u32,
    /// Most bytes of those envelopes kept, in all; at most 1 GiB.
    pub max_bytes: u64,
}

impl From<focal::RejectedLimits> for RejectedLimits {
    fn from(l: focal::RejectedLimits) -> Self {
        RejectedLimits {
            max_records: l.max_records,
            max_bytes: l.max_bytes,
        }
    }
}

impl From<RejectedLimits> for focal::RejectedLimits {
    fn from(l: RejectedLimits) -> Self {
        focal::RejectedLimits {
            max_records: l.max_records,
            max_bytes: l.max_bytes,
        }
    }
}

/// What the profile holds of envelopes that could not be filed.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RejectedSummary {
    /// All of them since the last clear.
    pub total: u64,
    /// Counts by reason, largest first.
    pub by_reason: Vec<RejectReasonCount>,
    /// How many have a record kept.
    pub records: u64,
    /// Bytes of envelopes kept.
    pub bytes_kept: u64,
    /// First hour one arrived (hours since the epoch), if known.
    pub first_hour: Option<u32>,
    /// Last hour one arrived, if known.
    pub last_hour: Option<u32>,
    /// A few records of each reason.
    pub examples: Vec<RejectedEnvelope>,
    /// The limits in force.
    pub limits: RejectedLimits,
}

impl From<focal::RejectedSummary> for RejectedSummary {
    fn from(s: focal::RejectedSummary) -> Self {
        RejectedSummary {
            total: s.total,
            by_reason: s
                .by_reason
                .into_iter()
                .map(|(reason, count)| RejectReasonCount {
                    reason: reason.into(),
                    count,
                })
                .collect(),
            records: s.records,
            bytes_kept: s.bytes_kept,
            first_hour: s.first_hour,
            last_hour: s.last_hour,
            examples: s.examples.into_iter().map(Into::into).collect(),
            limits: s.limits.into(),
        }
    }
}

/// What a bundle import kept and what it could not read.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ImportReport {
    /// Envelopes taken on to carry.
    pub envelopes: u64,
    /// Envelopes already held (dropped).
    pub duplicates: u64,
    /// Receipts for this phone's own reports, verified.
    pub receipts_accepted: u64,
    /// Receipts for other phones' envelopes, or that did not verify.
    pub receipts_ignored: u64,
    /// The directory version accepted, if the bundle brought a newer one.
    pub directory: Option<u64>,
    /// Why reading stopped early, if the bundle was damaged.
    pub damaged: Option<String>,
    /// Fetch grants taken on (a facilitator's phone): with them it fetches
    /// the sealed answers to bring back.
    pub grants: u64,
    /// Answers to this phone's own reports that came back in the bundle,
    /// filed once each.
    pub messages: u64,
    /// Check-in timers' holds and check-ins taken on to send (a
    /// facilitator's phone; signed, she cannot read or change them).
    pub timer_items: u64,
}

impl From<bundles::ImportReport> for ImportReport {
    fn from(r: bundles::ImportReport) -> Self {
        ImportReport {
            envelopes: r.envelopes as u64,
            duplicates: r.duplicates as u64,
            receipts_accepted: r.receipts_accepted as u64,
            receipts_ignored: r.receipts_ignored as u64,
            directory: r.directory,
            damaged: r.damaged,
            grants: r.grants as u64,
            messages: r.messages as u64,
            timer_items: r.timer_items.items as u64,
        }
    }
}

/// What a facilitator is carrying (counts only).
#[derive(Debug, Clone, Copy, uniffi::Record)]
pub struct Carrying {
    /// Waiting to be uploaded.
    pub waiting: u64,
    /// Uploaded, with a receipt to bring back.
    pub delivered: u64,
    /// Sealed answers fetched for others, to bring back.
    pub replies: u64,
    /// Fetch grants held (one per report whose answers to fetch).
    pub grants: u64,
    /// Envelopes the relay refused for good (damaged): not sent again.
    pub refused: u64,
    /// Check-in timers' holds and check-ins to send.
    pub timer_items: u64,
}

impl From<bundles::Carrying> for Carrying {
    fn from(c: bundles::Carrying) -> Self {
        Carrying {
            waiting: c.waiting as u64,
            delivered: c.delivered as u64,
            replies: c.replies as u64,
            grants: c.grants as u64,
            refused: c.refused as u64,
            timer_items: c.timer_items as u64,
        }
    }
}

/// What uploading the carried envelopes did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct CarriedUpload {
    /// Signed for by the relay (a receipt to bring back).
    pub delivered: u64,
    /// The relay could not take them now (full or busy): still carried,
    /// sealed and safe, sent again at a later sync. Tell her so.
    pub postponed: u64,
    /// Refused for good (damaged): not sent again.
    pub refused: u64,
    /// When something was postponed: seconds to wait before syncing again.
    pub retry_after_secs: Option<u64>,
    /// Check-in timers' holds and check-ins sent for others.
    pub timer_items: u64,
}

impl From<bundles::CarriedUpload> for CarriedUpload {
    fn from(u: bundles::CarriedUpload) -> Self {
        CarriedUpload {
            delivered: u.delivered as u64,
            postponed: u.postponed as u64,
            refused: u.refused as u64,
            retry_after_secs: u.retry_after_secs,
            timer_items: u.timer_items as u64,
        }
    }
}

/// What fetching with the grants held did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct GrantedFetch {
    /// New sealed answers picked up to bring back.
    pub new: u64,
    /// Bytes spent, within the budget given.
    pub bytes: u64,
    /// The budget ran out first: the next fetch goes on where this stopped.
    pub left: bool,
    /// Answer mailboxes no longer fetched: as much was picked up from each
    /// as a facilitator carries for one person (1 MiB).
    pub full: u64,
}

impl From<bundles::GrantedFetch> for GrantedFetch {
    fn from(g: bundles::GrantedFetch) -> Self {
        GrantedFetch {
            new: g.new as u64,
            bytes: g.bytes,
            left: g.left,
            full: g.full as u64,
        }
    }
}

/// A 16-byte id from its base64url form.
pub(crate) fn id16(text: &str) -> Result<[u8; 16], AmparoError> {
    Ok(b64::decode_array::<16>(text.trim(), "id")?)
}

/// A 32-byte key from its base64url form.
pub(crate) fn key32(text: &str, what: &'static str) -> Result<[u8; 32], AmparoError> {
    Ok(b64::decode_array::<32>(text.trim(), what)?)
}
