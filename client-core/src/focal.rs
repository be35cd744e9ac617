//! The focal point's side: its key set, fetching its mailbox into locally
//! encrypted cases (acknowledging only what is stored), replying, setting a
//! case's status, and referring a case to another focal point.

use std::collections::VecDeque;
use std::sync::Arc;

use amparo_protocol::UnixTime;
use amparo_protocol::directory::FocalPoint;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, EnvelopeId, Purpose};
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::{
    AgeBand, AggressorKind, AttachmentRef, CaseStatus, Language, Need, Payload, PlaceSetting,
    Referral, Reply, Report, Stamp, StatusUpdate, ViolenceKind,
};
use amparo_protocol::primitives::ed25519::VerifyingKey;
use amparo_protocol::primitives::sha256_prefix;
use amparo_protocol::statistics::{GbvContext, GbvType};
use amparo_protocol::time::days_from_civil;
use serde::{Deserialize, Serialize};

use crate::inbox::{Incoming, Reassembly, open_accepting};
use crate::relay::{Page, RelayClient};
use crate::store::{ItemKind, Profile};
use crate::survivor::{SyncProgress, SyncSummary, decode, encode};
use crate::{CoreError, Result};

/// What a profile that holds no focal point keys says (not a focal
/// point's, or its duress decoy).
const NO_FOCAL_KEYS: &str = "this profile has no focal point keys";

mod index;
mod orphans;
mod rejected;

pub use index::{CaseIndex, CasePage, CaseQuery, CaseSort};

use orphans::{Kept, WaitingKeeper};
pub use orphans::{
    MAX_WAITING, MAX_WAITING_BYTES, MAX_WAITING_BYTES_PER_REPORT, MAX_WAITING_PER_REPORT,
    WAITING_OVERHEAD, WaitingSummary,
};
use rejected::Keeper;
pub use rejected::{RejectReason, RejectedLimits, RejectedRecord, RejectedSummary};

/// A case as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseSummary {
    /// The report id.
    pub id: [u8; 16],
    /// Where it stands.
    pub status: CaseStatus,
    /// Hour the report was written (from its sealed header).
    pub reported_hour: u32,
    /// What the person needs.
    pub needs: Vec<Need>,
    /// Region, if given.
    pub region: Option<String>,
    /// Whether it came as a referral from another focal point.
    pub referred_by: Option<String>,
    /// Where this focal point referred it, if it did (the latest referral).
    pub referred_to: Option<String>,
    /// Kinds of violence the report names.
    pub violence: Vec<ViolenceKind>,
    /// Kinds of aggressor the report names.
    pub aggressors: Vec<AggressorKind>,
    /// The language she asked to be answered in.
    pub language: Language,
    /// How many attachments the report references.
    pub attachments: usize,
    /// Whether something arrived on the case (the report, or a follow-up)
    /// since the focal point last read it ([`Profile::mark_case_read`]).
    pub unread: bool,
    /// Seconds since the epoch of the latest thing on the case (the hour
    /// the report was written when nothing else happened).
    pub last_activity: u64,
    /// How many internal notes the office wrote on it.
    pub notes: usize,
    /// Where the office's own work on it stands (internal).
    pub stage: CaseStage,
    /// Whether the office starred it (to find it again; internal).
    pub starred: bool,
    /// The GBVIMS core type the office gave it, if it did.
    pub gbv_type: Option<GbvType>,
    /// The context the office recorded (GBVIMS flags).
    pub context: Vec<GbvContext>,
    /// What the report says for statistics (consent, age band, place,
    /// whether she reported elsewhere, when it happened).
    pub facts: StatFacts,
    /// Set when the report is a check-in timer's alert (PROTOCOL.md §17):
    /// she stopped checking in. Urgent: listed first.
    pub alert: Option<AlertSummary>,
}

/// A check-in timer's alert, as the office sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertSummary {
    /// The hour she set the timer.
    pub set_hour: u32,
    /// The hour it was first due to go (her first check-in time plus the
    /// grace); check-ins may have moved it later.
    pub due_hour: u32,
    /// Hours each check-in bought.
    pub every_hours: u32,
    /// The hour this office received it: the relay released it in that
    /// hour or before (it keeps no finer time, and says nothing of it).
    pub received_hour: Option<u32>,
}

/// What a report says that statistics need: only she can say these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatFacts {
    /// She agreed to be counted, anonymously, in shared statistics.
    pub consent: bool,
    /// Her age band, if she said.
    pub age_band: Option<AgeBand>,
    /// Whether she also reported to another organisation, if she said.
    pub reported_elsewhere: Option<bool>,
    /// The kind of place, if she said.
    pub setting: Option<PlaceSetting>,
    /// The day it happened (days since the epoch), when the report gives a
    /// full date.
    pub incident_day: Option<u64>,
}

/// A whole case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Summary fields.
    pub summary: CaseSummary,
    /// The report.
    pub report: Report,
    /// Each attachment with its bytes, if every piece has arrived and the hash matched.
    pub attachments: Vec<(AttachmentRef, Option<Vec<u8>>)>,
    /// Follow-up messages from the survivor, oldest first.
    pub messages: Vec<String>,
    /// Everything that happened on the case here, oldest first: her
    /// follow-ups, this office's replies, status changes and referrals.
    pub history: Vec<CaseEvent>,
    /// The office's internal notes, oldest first: never sent to anyone.
    pub notes: Vec<CaseNote>,
    /// The office's stage changes, oldest first (internal).
    pub stages: Vec<StageChange>,
}

/// Where a case stands in the office's own work, as case management for
/// gender-based violence orders it (Primero's workflow: a new case is
/// assessed, planned with her, served, then closed). Internal to the
/// office: never sent; the survivor sees only the [`CaseStatus`] the
/// office sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStage {
    /// Not yet looked at.
    #[default]
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

impl CaseStage {
    /// Every stage, in workflow order.
    pub const ALL: [CaseStage; 6] = [
        CaseStage::New,
        CaseStage::Assessment,
        CaseStage::CasePlan,
        CaseStage::Services,
        CaseStage::FollowUp,
        CaseStage::Closure,
    ];

    /// The stage's name in `lang`.
    pub fn label(self, lang: Language) -> &'static str {
        let [es, pt, en] = match self {
            CaseStage::New => ["Nuevo", "Novo", "New"],
            CaseStage::Assessment => ["Evaluación", "Avaliação", "Assessment"],
            CaseStage::CasePlan => ["Plan del caso", "Plano do caso", "Case plan"],
            CaseStage::Services => ["Servicios", "Serviços", "Services"],
            CaseStage::FollowUp => ["Seguimiento", "Acompanhamento", "Follow-up"],
            CaseStage::Closure => ["Cierre", "Encerramento", "Closure"],
        };
        match lang {
            Language::Es => es,
            Language::Pt => pt,
            Language::En => en,
        }
    }
}

/// A change of a case's [`CaseStage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageChange {
    /// Seconds since the Unix epoch when it was set.
    pub at: u64,
    /// The new stage.
    pub stage: CaseStage,
}

/// An internal note a focal point writes on a case: for the office only,
/// never sealed to the survivor nor carried by a referral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseNote {
    /// Seconds since the Unix epoch when it was written.
    pub at: u64,
    /// The note.
    pub text: String,
}

/// Longest internal note, in characters (as long as a report's text).
pub const MAX_NOTE_CHARS: usize = 12_000;
/// Most internal notes one case holds: a case record is read whole each
/// time it is opened, so it cannot grow without end.
pub const MAX_NOTES_PER_CASE: usize = 500;

/// One thing that happened on a case at this focal point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseEvent {
    /// Seconds since the Unix epoch: when this office did it, or, for the
    /// survivor's messages, the start of the hour her phone sealed it in
    /// (all it says of her time).
    pub at: u64,
    /// What happened.
    pub kind: CaseEventKind,
}

/// What happened, in a [`CaseEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CaseEventKind {
    /// A follow-up message from the survivor.
    FromSurvivor {
        /// Her text.
        text: String,
        /// Her phone's counter for the message, if it sent one.
        #[serde(default)]
        seq: Option<u32>,
    },
    /// A reply this office sent her.
    Reply {
        /// The text.
        text: String,
    },
    /// A status this office set (and told her).
    Status {
        /// The new status.
        status: CaseStatus,
        /// The message sent with it.
        #[serde(default)]
        message: Option<String>,
    },
    /// This office referred the case.
    Referred {
        /// The directory id of the focal point it went to.
        to: String,
        /// The note sent with it (for the next office, not the survivor).
        note: String,
    },
}

/// Filter for [`Profile::cases`]; every field set must match.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Status.
    pub status: Option<CaseStatus>,
    /// A need the report names.
    pub need: Option<Need>,
    /// Region.
    pub region: Option<String>,
    /// Reported at or after this hour.
    pub since_hour: Option<u32>,
}

/// What one mailbox fetch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchSummary {
    /// New cases filed.
    pub new_cases: usize,
    /// Attachment pieces stored.
    pub chunks: usize,
    /// Follow-up messages filed on their cases (with those that were
    /// waiting for a report that arrived now).
    pub messages: usize,
    /// Her follow-ups kept until the report they belong to arrives (it
    /// has not yet): filed then, onto the case
    /// ([`Profile::waiting_follow_ups`]).
    pub waiting: usize,
    /// Copies of things already filed.
    pub duplicates: usize,
    /// Envelopes that could not be opened: counted, and kept aside within
    /// the profile's limits ([`RejectedLimits`]).
    pub rejected: usize,
    /// Whether the fetch stopped at its limit ([`FETCH_MAX`]) with more
    /// waiting at the relay: sync again.
    pub more: bool,
}

/// How far a mailbox fetch has got, reported after each page is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchProgress {
    /// Envelopes fetched and stored so far.
    pub fetched: usize,
    /// New reports among them: already filed, listed in the cases.
    pub reports: usize,
    /// Envelopes among them that could not be opened.
    pub unreadable: usize,
}

/// Whether survivors can reach this focal point: the directory held must
/// list it, under its id, with its keys, valid now. A focal point that is
/// not listed fetches an empty mailbox forever and nobody tells it why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Listed with these keys and valid now.
    Listed,
    /// This profile holds no directory yet.
    NoDirectory,
    /// This profile's directory id is not set.
    NoId,
    /// The directory has no focal point with this id.
    NotListed,
    /// The directory lists this id with other keys: reports go to a key
    /// this profile does not hold.
    OtherKeys,
    /// Listed, but not valid at this time (not yet, or no longer).
    NotValidNow,
}

#[derive(Serialize, Deserialize)]
struct StoredCase {
    report: Report,
    status: CaseStatus,
    reported_hour: u32,
    /// Her follow-ups as stored before `history` existed; moved into it
    /// when the case is read ([`StoredCase::upgrade`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    messages: Vec<String>,
    seen: Vec<[u8; 16]>,
    #[serde(default)]
    history: Vec<CaseEvent>,
    /// Messages this office has sent her on the case: the `seq` of the
    /// next one.
    #[serde(default)]
    sent: u32,
    /// The office's internal notes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    notes: Vec<CaseNote>,
    /// Something arrived since the office last read the case.
    #[serde(default)]
    unread: bool,
    /// The office's stage changes (the last is where it stands).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    stages: Vec<StageChange>,
    /// The office starred it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    starred: bool,
    /// The GBVIMS core type the office gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gbv_type: Option<GbvType>,
    /// The GBVIMS context flags the office recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    context: Vec<GbvContext>,
    /// The hour this office filed the report (read by the alerts of
    /// check-in timers, whose release it bounds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    received_hour: Option<u32>,
}

impl StoredCase {
    fn upgrade(mut self) -> Self {
        if !self.messages.is_empty() {
            let at = u64::from(self.reported_hour) * 3600;
            let old = self.messages.drain(..).map(|text| CaseEvent {
                at,
                kind: CaseEventKind::FromSurvivor { text, seq: None },
            });
            self.history = old.chain(self.history.drain(..)).collect();
        }
        self
    }

    /// Files one of her follow-ups. They arrive in any order (a page is
    /// sorted by random envelope ids); among her messages at the end of the
    /// history, it goes after those she wrote before it (by hour, then her
    /// counter).
    fn file_from_survivor(&mut self, text: String, hour: u32, seq: Option<u32>) {
        let at = u64::from(hour) * 3600;
        let key = (at, seq.unwrap_or(0));
        let later = |e: &CaseEvent| match &e.kind {
            CaseEventKind::FromSurvivor { seq, .. } => (e.at, seq.unwrap_or(0)) > key,
            _ => false,
        };
        let tail = self.history.iter().rev().take_while(|e| later(e)).count();
        let pos = self.history.len() - tail;
        self.history.insert(
            pos,
            CaseEvent {
                at,
                kind: CaseEventKind::FromSurvivor { text, seq },
            },
        );
    }

    fn referred_to(&self) -> Option<String> {
        self.history.iter().rev().find_map(|e| match &e.kind {
            CaseEventKind::Referred { to, .. } => Some(to.clone()),
            _ => None,
        })
    }

    fn summary(&self, id: [u8; 16]) -> CaseSummary {
        CaseSummary {
            id,
            status: self.status,
            reported_hour: self.reported_hour,
            needs: self.report.needs.clone(),
            region: self.report.place.region.clone(),
            referred_by: self
                .report
                .referral
                .as_ref()
                .map(|r| r.from_focal_point.clone()),
            referred_to: (self.status == CaseStatus::Referred)
                .then(|| self.referred_to())
                .flatten(),
            violence: self.report.violence.clone(),
            aggressors: self.report.aggressors.clone(),
            language: self.report.language,
            attachments: self.report.attachments.len(),
            unread: self.unread,
            last_activity: self
                .history
                .iter()
                .map(|e| e.at)
                .chain(self.notes.iter().map(|n| n.at))
                .chain(self.stages.iter().map(|c| c.at))
                .chain([u64::from(self.reported_hour) * 3600])
                .max()
                .unwrap_or_default(),
            notes: self.notes.len(),
            stage: self.stages.last().map_or(CaseStage::New, |c| c.stage),
            starred: self.starred,
            gbv_type: self.gbv_type,
            context: self.context.clone(),
            facts: StatFacts {
                consent: self.report.statistics_consent,
                age_band: self.report.age_band,
                reported_elsewhere: self.report.reported_elsewhere,
                setting: self.report.place.setting,
                incident_day: self.report.when.and_then(|w| match (w.month, w.day) {
                    (Some(m), Some(d)) => Some(days_from_civil(i64::from(w.year), m, d)),
                    _ => None,
                }),
            },
            alert: self.report.alert.map(|a| AlertSummary {
                set_hour: a.set_hour,
                due_hour: a.due_hour,
                every_hours: a.every_hours,
                received_hour: self.received_hour,
            }),
        }
    }
}

fn status_code(s: CaseStatus) -> u8 {
    match s {
        CaseStatus::Received => 0,
        CaseStatus::InProgress => 1,
        CaseStatus::Referred => 2,
        CaseStatus::Closed => 3,
    }
}

fn chunk_item_id(attachment: &[u8; 16], index: u32) -> [u8; 16] {
    sha256_prefix(&[b"amparo-chunk-item", attachment, &index.to_be_bytes()])
}

/// Most envelopes one [`Profile::fetch_mailbox`] goes through before it
/// returns with [`FetchSummary::more`] set: a mailbox that a flood refills as
/// fast as it is emptied would otherwise keep one sync going for ever. At
/// the rates measured here, a few seconds; five times a relay's default cap
/// on one mailbox.
pub const FETCH_MAX: usize = 50_000;
/// Envelopes asked for in the first page of a fetch, before their size is
/// known.
const PAGE_FIRST: u32 = 100;
/// Most envelopes asked for in one page (a relay answers at most its own
/// limit, 500 by default).
pub const PAGE_MAX: u32 = 500;
/// About how many bytes a page may hold: pages of large envelopes are asked
/// for with fewer of them, so memory stays bounded whatever the mailbox
/// holds.
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Acknowledgements sent and not yet answered, at most: the next page does
/// not wait for them.
const ACKS_IN_FLIGHT: usize = 4;
/// Fewest envelopes a worker thread is given to open (below this, threads
/// cost more than they save).
const OPEN_MIN_PER_THREAD: usize = 16;

/// How many envelopes to ask for after a page of `items`: as many as keep
/// a page of envelopes of their average size within [`PAGE_BYTES`].
fn page_limit(items: &[(u64, Envelope)]) -> u32 {
    let bytes: usize = items.iter().map(|(_, e)| e.as_bytes().len()).sum();
    let average = bytes.checked_div(items.len()).unwrap_or(1).max(1);
    u32::try_from(PAGE_BYTES / average)
        .unwrap_or(PAGE_MAX)
        .clamp(16, PAGE_MAX)
}

/// What opening one envelope gave.
type Opening = Result<(InnerHeader, Incoming)>;

/// What one filing run keeps besides cases: rejected envelopes, and her
/// follow-ups waiting for their reports.
struct Keepers {
    rejected: Keeper,
    waiting: WaitingKeeper,
}

/// Opens an envelope as a focal point: only the purposes senders seal to a
/// focal point are tried (a status update, which only survivors receive,
/// does not open here).
fn open_for_focal_point(envelope: &Envelope, keys: &RecipientKeys) -> Opening {
    open_accepting(envelope, keys, &Purpose::FOR_FOCAL_POINT)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How many threads to open `n` envelopes on, and how many each opens.
fn split(n: usize) -> (usize, usize) {
    let threads = cores().min(n.div_ceil(OPEN_MIN_PER_THREAD)).max(1);
    (threads, n.div_ceil(threads).max(1))
}

/// Opens `envelopes` in order on every core, for a caller that may block
/// (one X25519 each: what a flood costs a focal point). A thread that
/// stopped fails the whole call: nothing of the page is filed.
fn open_in_scope(keys: &RecipientKeys, envelopes: &[Envelope]) -> Result<Vec<Opening>> {
    let (threads, per) = split(envelopes.len());
    if threads == 1 {
        return Ok(envelopes
            .iter()
            .map(|e| open_for_focal_point(e, keys))
            .collect());
    }
    std::thread::scope(|s| {
        let parts: Vec<_> = envelopes
            .chunks(per)
            .map(|part| {
                let open = move || -> Vec<Opening> {
                    part.iter().map(|e| open_for_focal_point(e, keys)).collect()
                };
                match std::thread::Builder::new().spawn_scoped(s, open) {
                    Ok(handle) => Err(handle),
                    // No thread to be had: open this part here.
                    Err(_) => Ok(open()),
                }
            })
            .collect();
        let mut out = Vec::with_capacity(envelopes.len());
        for p in parts {
            match p {
                Ok(done) => out.extend(done),
                Err(handle) => out.extend(handle.join().map_err(|_| thread_stopped())?),
            }
        }
        Ok(out)
    })
}

fn thread_stopped() -> CoreError {
    CoreError::Io("a thread opening envelopes stopped".into())
}

/// Opens `envelopes` in order on every core without blocking the async
/// runtime, which meanwhile fetches the next page and sends the last
/// acknowledgement.
async fn open_on_all_cores(
    keys: &Arc<RecipientKeys>,
    envelopes: &Arc<Vec<Envelope>>,
) -> Result<Vec<Opening>> {
    let n = envelopes.len();
    let (threads, per) = split(n);
    let mut parts = Vec::with_capacity(threads);
    for start in (0..n).step_by(per) {
        let range = start..(start + per).min(n);
        let (tx, rx) = tokio::sync::oneshot::channel::<Vec<Opening>>();
        let (k, all) = (Arc::clone(keys), Arc::clone(envelopes));
        let open = move || -> Vec<Opening> {
            all.get(range)
                .unwrap_or_default()
                .iter()
                .map(|e| open_for_focal_point(e, &k))
                .collect()
        };
        let part = open.clone();
        match std::thread::Builder::new()
            .name("amparo-open".into())
            .spawn(move || {
                let _ = tx.send(part());
            }) {
            Ok(_) => parts.push(Err(rx)),
            Err(_) => parts.push(Ok(open())),
        }
    }
    let mut out = Vec::with_capacity(n);
    for p in parts {
        match p {
            Ok(done) => out.extend(done),
            Err(rx) => out.extend(rx.await.map_err(|_| thread_stopped())?),
        }
    }
    Ok(out)
}

/// Sends the acknowledgement of `ids` (if any) without waiting for its
/// answer, after waiting for the oldest if [`ACKS_IN_FLIGHT`] are unanswered.
async fn acknowledge(
    relay: &RelayClient,
    keys: &RecipientKeys,
    ids: Vec<EnvelopeId>,
    now: &impl Fn() -> UnixTime,
    entropy: &mut SystemEntropy,
    acks: &mut VecDeque<Spawned<Result<u64>>>,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    if acks.len() >= ACKS_IN_FLIGHT
        && let Some(oldest) = acks.pop_front()
    {
        oldest.join().await?;
    }
    acks.push_back(Spawned::new(relay.ack_request(
        keys,
        &ids,
        now(),
        entropy,
    )?));
    Ok(())
}

/// A request running as a task of its own (so it goes on while the caller
/// opens and stores a page); aborted if dropped before it is joined.
struct Spawned<T>(Option<tokio::task::JoinHandle<T>>);

impl<T: Send + 'static> Spawned<T> {
    fn new(f: impl Future<Output = T> + Send + 'static) -> Self {
        Spawned(Some(tokio::spawn(f)))
    }
}

impl<T> Spawned<Result<T>> {
    async fn join(mut self) -> Result<T> {
        match self.0.take() {
            Some(handle) => handle
                .await
                .map_err(|_| CoreError::Network("a request to the relay stopped".into()))?,
            None => Err(CoreError::Network("a request to the relay stopped".into())),
        }
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}

impl Profile {
    /// Makes this profile a focal point's: generates its key set and returns
    /// the public part for the coordinator's directory.
    pub fn create_focal_identity(&self) -> Result<RecipientPublic> {
        if self
            .get_item(ItemKind::Identity, &self.fixed_id(b"identity"))?
            .is_some()
        {
            return Err(CoreError::Invalid(
                "this profile already has focal point keys",
            ));
        }
        let keys = RecipientKeys::generate(&mut SystemEntropy::new())?;
        self.put_item(
            ItemKind::Identity,
            &self.fixed_id(b"identity"),
            0,
            &keys.dangerously_export()[..],
        )?;
        Ok(keys.public())
    }

    fn focal_keys(&self) -> Result<RecipientKeys> {
        self.focal_keys_if_any()?
            .ok_or(CoreError::Invalid(NO_FOCAL_KEYS))
    }

    /// This focal point's keys, or `None` if the profile is not one.
    pub(crate) fn focal_keys_if_any(&self) -> Result<Option<RecipientKeys>> {
        self.get_item(ItemKind::Identity, &self.fixed_id(b"identity"))?
            .map(|(_, bytes)| Ok(RecipientKeys::from_secret_bytes(&bytes)?))
            .transpose()
    }

    /// The public part of this focal point's keys.
    pub fn focal_public(&self) -> Result<RecipientPublic> {
        Ok(self.focal_keys()?.public())
    }

    /// Sets this focal point's directory id: its replies and status updates
    /// say which office wrote them, and [`Profile::focal_listing`] looks it
    /// up.
    pub fn set_focal_point_id(&self, id: &str) -> Result<()> {
        if amparo_protocol::directory::check_id(id).is_err() {
            return Err(CoreError::Invalid(
                "a focal point id is 1 to 64 of a-z, 0-9, - and _",
            ));
        }
        let mut settings = self.settings()?;
        settings.focal_point_id = Some(id.to_string());
        self.save_settings(&settings)
    }

    /// Whether the directory held (verified against `coordinator`) lists
    /// this focal point so that reports can reach it at `now`.
    pub fn focal_listing(&self, coordinator: &VerifyingKey, now: UnixTime) -> Result<Listing> {
        let Some(directory) = self.directory(coordinator)? else {
            return Ok(Listing::NoDirectory);
        };
        let Some(id) = self.settings()?.focal_point_id else {
            return Ok(Listing::NoId);
        };
        let Some(entry) = directory.focal_point(&id) else {
            return Ok(Listing::NotListed);
        };
        Ok(if entry.keys != self.focal_public()? {
            Listing::OtherKeys
        } else if !entry.is_valid_at(now) {
            Listing::NotValidNow
        } else {
            Listing::Listed
        })
    }

    /// Fetches the whole mailbox: files each case, piece and message once,
    /// keeps within limits what cannot be opened, and acknowledges each page
    /// only after it is stored.
    ///
    /// Built to outrun a flood: the next page is fetched while this one is
    /// opened and stored, envelopes are opened on every core, each page is
    /// stored in one transaction (so a report is listed as soon as its page
    /// is stored, however much junk follows), and acknowledgements go
    /// without waiting (at most four unanswered). Memory holds
    /// about two pages: the one being filed and the one arriving, each of at
    /// most [`PAGE_MAX`] envelopes or about [`PAGE_BYTES`].
    pub async fn fetch_mailbox(
        &self,
        relay: &RelayClient,
        now: impl Fn() -> UnixTime,
        progress: &mut dyn FnMut(FetchProgress),
    ) -> Result<FetchSummary> {
        self.fetch_mailbox_at_most(relay, now, FETCH_MAX, progress)
            .await
    }

    /// [`Profile::fetch_mailbox`], asking for no more pages once `max`
    /// envelopes are fetched (the page under way is finished); says
    /// [`FetchSummary::more`] if the relay had more.
    pub async fn fetch_mailbox_at_most(
        &self,
        relay: &RelayClient,
        now: impl Fn() -> UnixTime,
        max: usize,
        progress: &mut dyn FnMut(FetchProgress),
    ) -> Result<FetchSummary> {
        // A focal point's duress decoy has no keys: the real profile keeps
        // them (a decoy holding them could read, or acknowledge away, the
        // office's reports). It fetches nothing and shows what a quiet desk
        // shows, no error. What it cannot hide: it sends no fetch requests,
        // and it has no public key to show.
        let keys = match self.focal_keys() {
            Ok(keys) => Arc::new(keys),
            Err(CoreError::Invalid(NO_FOCAL_KEYS)) if self.is_decoy()? => {
                return Ok(FetchSummary::default());
            }
            Err(e) => return Err(e),
        };
        self.prepare_rejected()?;
        let mut entropy = SystemEntropy::new();
        let mut summary = FetchSummary::default();
        let mut fetched = 0;
        let mut next = Some(Spawned::new(relay.fetch_request(
            &keys,
            0,
            PAGE_FIRST,
            now(),
            &mut entropy,
        )?));
        let mut acks: VecDeque<Spawned<Result<u64>>> = VecDeque::new();
        // Ids of the page stored last, acknowledged once the next page is
        // asked for: the relay checks a signed fetch against replays with a
        // write, which would otherwise wait behind the acknowledgement's.
        let mut stored: Vec<EnvelopeId> = Vec::new();
        while let Some(page) = next.take() {
            let Page { items, more } = match page.join().await {
                Ok(page) => page,
                Err(e) => {
                    // What is stored is still acknowledged if the relay can
                    // be reached (else it comes again: cases and records are
                    // known again, junk past the records is counted again).
                    let ids = std::mem::take(&mut stored);
                    if acknowledge(relay, &keys, ids, &now, &mut entropy, &mut acks)
                        .await
                        .is_ok()
                    {
                        for a in acks {
                            let _ = a.join().await;
                        }
                    }
                    return Err(e);
                }
            };
            let limit = page_limit(&items);
            let room = fetched + items.len() < max;
            summary.more = more && !room;
            if let (true, true, Some((cursor, _))) = (more, room, items.last()) {
                next = Some(Spawned::new(relay.fetch_request(
                    &keys,
                    *cursor,
                    limit,
                    now(),
                    &mut entropy,
                )?));
            }
            let ids = std::mem::take(&mut stored);
            acknowledge(relay, &keys, ids, &now, &mut entropy, &mut acks).await?;
            let envelopes: Arc<Vec<Envelope>> =
                Arc::new(items.into_iter().map(|(_, e)| e).collect());
            let opened = open_on_all_cores(&keys, &envelopes).await?;
            // The page is stored in one transaction before it is acknowledged.
            self.file_page(&envelopes, opened, now().hours(), &mut summary)?;
            fetched += envelopes.len();
            progress(FetchProgress {
                fetched,
                reports: summary.new_cases,
                unreadable: summary.rejected,
            });
            stored = envelopes.iter().map(Envelope::id).collect();
        }
        acknowledge(relay, &keys, stored, &now, &mut entropy, &mut acks).await?;
        for a in acks {
            a.join().await?;
        }
        Ok(summary)
    }

    /// Files envelopes that reached this focal point by any route (the relay,
    /// a facilitator's bundle, a file), in one transaction, opening them on
    /// every core.
    pub fn file_envelopes(&self, envelopes: &[Envelope]) -> Result<FetchSummary> {
        let keys = self.focal_keys()?;
        self.prepare_rejected()?;
        let mut summary = FetchSummary::default();
        let hour = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| UnixTime(d.as_secs()).hours());
        let opened = open_in_scope(&keys, envelopes)?;
        self.file_page(envelopes, opened, hour, &mut summary)?;
        Ok(summary)
    }

    /// Stores what was opened of `envelopes` (in the same order), in one
    /// transaction: reports and attachment pieces first, then her
    /// follow-ups, so a follow-up sent in the same page as its report (a
    /// page is in random envelope-id order) finds its case.
    fn file_page(
        &self,
        envelopes: &[Envelope],
        opened: Vec<Opening>,
        hour: u32,
        summary: &mut FetchSummary,
    ) -> Result<()> {
        self.in_transaction(|| {
            let mut keepers = Keepers {
                rejected: self.rejected_keeper(hour)?,
                waiting: self.waiting_keeper()?,
            };
            let mut follow_ups = Vec::new();
            for (env, o) in envelopes.iter().zip(opened) {
                if matches!(o, Ok((_, Incoming::Reply(_)))) {
                    follow_ups.push((env, o));
                } else {
                    self.file_envelope(&mut keepers, env, o, summary)?;
                }
            }
            for (env, o) in follow_ups {
                self.file_envelope(&mut keepers, env, o, summary)?;
            }
            self.finish_keeper(&mut keepers.rejected)?;
            self.finish_waiting(&mut keepers.waiting)
        })
    }

    fn file_envelope(
        &self,
        keepers: &mut Keepers,
        env: &Envelope,
        opened: Opening,
        summary: &mut FetchSummary,
    ) -> Result<()> {
        let keeper = &mut keepers.rejected;
        let (header, message) = match opened {
            Ok(v) => v,
            Err(e) => {
                // Tampered, mis-addressed, malformed or junk: counted and
                // kept within limits, never fatal to the fetch.
                let reason = RejectReason::of_open_error(&e);
                return self.keep_rejected(keeper, env, reason, &e.to_string(), summary);
            }
        };
        match message {
            Incoming::Report { message_id, report } => {
                if self.get_item(ItemKind::Case, &message_id)?.is_some() {
                    summary.duplicates += 1;
                } else {
                    let status = CaseStatus::Received;
                    // A referred case goes on numbering the messages on her
                    // channel after the referring office's.
                    let sent = report.referral.as_ref().and_then(|r| r.seq).unwrap_or(0);
                    let mut case = StoredCase {
                        gbv_type: None,
                        context: Vec::new(),
                        report: *report,
                        status,
                        reported_hour: header.created_hour,
                        messages: vec![],
                        seen: vec![],
                        history: vec![],
                        sent,
                        notes: vec![],
                        unread: true,
                        stages: vec![],
                        starred: false,
                        received_hour: Some(crate::store::system_now().hours()),
                    };
                    // Her follow-ups that came before it, filed with it (in
                    // this transaction), in the order she wrote them.
                    for w in self.take_waiting(&mut keepers.waiting, &message_id)? {
                        if !case.seen.contains(&w.message_id) {
                            case.file_from_survivor(w.text, w.hour, w.seq);
                            case.seen.push(w.message_id);
                            summary.messages += 1;
                        }
                    }
                    self.put_item(
                        ItemKind::Case,
                        &message_id,
                        status_code(status),
                        &encode(&case)?,
                    )?;
                    summary.new_cases += 1;
                }
            }
            Incoming::Chunk {
                attachment_id,
                index,
                data,
                ..
            } => {
                let id = chunk_item_id(&attachment_id, index);
                if self.get_item(ItemKind::Chunk, &id)?.is_some() {
                    summary.duplicates += 1;
                } else {
                    self.put_item(ItemKind::Chunk, &id, 0, &data)?;
                    summary.chunks += 1;
                }
            }
            Incoming::Reply(reply) => {
                let Some((state, bytes)) = self.get_item(ItemKind::Case, &reply.report_id)? else {
                    // Her report has not arrived yet: kept until it does,
                    // within bounds (forged ones past them are rejected).
                    return match self.keep_waiting(
                        &mut keepers.waiting,
                        header.message_id,
                        header.created_hour,
                        reply,
                    )? {
                        Kept::Waiting => {
                            summary.waiting += 1;
                            Ok(())
                        }
                        Kept::Duplicate => {
                            summary.duplicates += 1;
                            Ok(())
                        }
                        Kept::Full => self.keep_rejected(
                            keeper,
                            env,
                            RejectReason::UnknownCase,
                            "a follow-up for a case this focal point does not hold, \
                             past what is kept waiting for reports",
                            summary,
                        ),
                    };
                };
                let mut case = decode::<StoredCase>(&bytes, "case")?.upgrade();
                if case.seen.contains(&header.message_id) {
                    summary.duplicates += 1;
                } else {
                    case.file_from_survivor(reply.text, header.created_hour, reply.stamp.seq);
                    case.seen.push(header.message_id);
                    case.unread = true;
                    self.put_item(ItemKind::Case, &reply.report_id, state, &encode(&case)?)?;
                    summary.messages += 1;
                }
            }
            Incoming::Status(_) => self.keep_rejected(
                keeper,
                env,
                RejectReason::NotForFocalPoint,
                "a status update sent to a focal point",
                summary,
            )?,
            Incoming::Statistics(_) => self.keep_rejected(
                keeper,
                env,
                RejectReason::NotForFocalPoint,
                "statistics sent to a focal point",
                summary,
            )?,
            Incoming::Aggregation(signed) => {
                if !self.file_aggregation(&signed)? {
                    self.keep_rejected(
                        keeper,
                        env,
                        RejectReason::NotForFocalPoint,
                        "a statistics-sum message this office does not accept",
                        summary,
                    )?;
                }
            }
            Incoming::Cover => {}
        }
        Ok(())
    }

    fn stored_case(&self, id: &[u8; 16]) -> Result<StoredCase> {
        let (_, bytes) = self
            .get_item(ItemKind::Case, id)?
            .ok_or(CoreError::NotFound)?;
        Ok(decode::<StoredCase>(&bytes, "case")?.upgrade())
    }

    /// Cases matching `filter`, oldest first.
    pub fn cases(&self, filter: &CaseFilter) -> Result<Vec<CaseSummary>> {
        let state = filter.status.map(status_code);
        let mut out = Vec::new();
        for id in self.item_ids(ItemKind::Case, state)? {
            let c = self.stored_case(&id)?;
            let summary = c.summary(id);
            let keep = filter.need.is_none_or(|n| summary.needs.contains(&n))
                && filter
                    .region
                    .as_ref()
                    .is_none_or(|r| summary.region.as_ref() == Some(r))
                && filter.since_hour.is_none_or(|h| summary.reported_hour >= h);
            if keep {
                out.push(summary);
            }
        }
        // Alerts of check-in timers first: she stopped checking in.
        out.sort_by_key(|c| c.alert.is_none());
        Ok(out)
    }

    /// One case with its attachments put back together.
    pub fn case(&self, id: &[u8; 16]) -> Result<Case> {
        let c = self.stored_case(id)?;
        let mut attachments = Vec::new();
        for a in &c.report.attachments {
            let mut r = Reassembly::default();
            for index in 0..a.chunks {
                if let Some((_, data)) =
                    self.get_item(ItemKind::Chunk, &chunk_item_id(&a.id, index))?
                {
                    r.add(index, data);
                }
            }
            attachments.push((a.clone(), r.finish(a).ok().map(|d| d.to_vec())));
        }
        let messages = c
            .history
            .iter()
            .filter_map(|e| match &e.kind {
                CaseEventKind::FromSurvivor { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect();
        Ok(Case {
            summary: c.summary(*id),
            report: c.report,
            attachments,
            messages,
            history: c.history,
            notes: c.notes,
            stages: c.stages,
        })
    }

    /// Stars or unstars `case` (the office's own mark, to find it again;
    /// never sent).
    pub fn set_case_starred(&self, case: &[u8; 16], starred: bool) -> Result<()> {
        let (state, bytes) = self
            .get_item(ItemKind::Case, case)?
            .ok_or(CoreError::NotFound)?;
        let mut c = decode::<StoredCase>(&bytes, "case")?.upgrade();
        if c.starred != starred {
            c.starred = starred;
            self.put_item(ItemKind::Case, case, state, &encode(&c)?)?;
        }
        Ok(())
    }

    /// Classifies `case` as case workers do for statistics (GBVIMS): its
    /// core type (`None` clears it) and its context flags. Internal: never
    /// sent to her; counted only in statistics she consented to.
    pub fn classify_case(
        &self,
        case: &[u8; 16],
        gbv_type: Option<GbvType>,
        context: &[GbvContext],
    ) -> Result<()> {
        let (state, bytes) = self
            .get_item(ItemKind::Case, case)?
            .ok_or(CoreError::NotFound)?;
        let mut c = decode::<StoredCase>(&bytes, "case")?.upgrade();
        let mut flags: Vec<GbvContext> = context.to_vec();
        flags.sort();
        flags.dedup();
        if c.gbv_type != gbv_type || c.context != flags {
            c.gbv_type = gbv_type;
            c.context = flags;
            self.put_item(ItemKind::Case, case, state, &encode(&c)?)?;
        }
        Ok(())
    }

    /// Marks `case` read: nothing new on it until the next follow-up.
    pub fn mark_case_read(&self, case: &[u8; 16]) -> Result<()> {
        let (state, bytes) = self
            .get_item(ItemKind::Case, case)?
            .ok_or(CoreError::NotFound)?;
        let mut c = decode::<StoredCase>(&bytes, "case")?.upgrade();
        if c.unread {
            c.unread = false;
            self.put_item(ItemKind::Case, case, state, &encode(&c)?)?;
        }
        Ok(())
    }

    /// Sets where the office's own work on `case` stands: kept with its
    /// time, never sent (the survivor sees the status only). At most
    /// [`MAX_NOTES_PER_CASE`] changes are kept.
    pub fn set_case_stage(&self, case: &[u8; 16], stage: CaseStage, now: UnixTime) -> Result<()> {
        let (state, bytes) = self
            .get_item(ItemKind::Case, case)?
            .ok_or(CoreError::NotFound)?;
        let mut c = decode::<StoredCase>(&bytes, "case")?.upgrade();
        if c.stages.last().map_or(CaseStage::New, |x| x.stage) == stage {
            return Ok(());
        }
        if c.stages.len() >= MAX_NOTES_PER_CASE {
            c.stages.remove(0);
        }
        c.stages.push(StageChange { at: now.0, stage });
        self.put_item(ItemKind::Case, case, state, &encode(&c)?)
    }

    /// Adds an internal note to `case`: kept here, sealed like every item,
    /// never sent (not to the survivor, not with a referral). At most
    /// [`MAX_NOTES_PER_CASE`] notes of at most [`MAX_NOTE_CHARS`] each;
    /// an empty note is refused.
    pub fn add_case_note(&self, case: &[u8; 16], text: &str, now: UnixTime) -> Result<()> {
        let text = text.trim();
        if text.is_empty() {
            return Err(CoreError::Invalid("an internal note needs some text"));
        }
        if text.chars().count() > MAX_NOTE_CHARS {
            return Err(CoreError::Invalid(
                "an internal note is at most 12 000 characters",
            ));
        }
        let (state, bytes) = self
            .get_item(ItemKind::Case, case)?
            .ok_or(CoreError::NotFound)?;
        let mut c = decode::<StoredCase>(&bytes, "case")?.upgrade();
        if c.notes.len() >= MAX_NOTES_PER_CASE {
            return Err(CoreError::Invalid(
                "this case holds as many internal notes as it can (500)",
            ));
        }
        c.notes.push(CaseNote {
            at: now.0,
            text: text.to_string(),
        });
        self.put_item(ItemKind::Case, case, state, &encode(&c)?)
    }

    /// The stamp of the next message this office sends on `c`: its time,
    /// its counter, its directory id. Counts the message in `c`.
    fn next_stamp(&self, c: &mut StoredCase, now: UnixTime) -> Result<Stamp> {
        c.sent = c.sent.saturating_add(1);
        Ok(Stamp {
            at: Some(now.0),
            seq: Some(c.sent),
            from: self.settings()?.focal_point_id,
        })
    }

    /// Seals `body` to the survivor of `case`, queues it, and stores the
    /// case as `c` now is (its counter, its history), in one transaction.
    fn send_to_survivor(
        &self,
        case: &[u8; 16],
        c: &StoredCase,
        purpose: Purpose,
        body: &[u8],
        now: UnixTime,
    ) -> Result<()> {
        let mut e = SystemEntropy::new();
        let header = InnerHeader::new(&mut e, now)?;
        // Her phone said in the report whether it opens compressed bodies.
        let compression = crate::compose::compression_for(&c.report.reads);
        let env = Envelope::seal_with(
            &c.report.reply_to,
            purpose,
            &header,
            body,
            compression,
            &mut e,
        )?;
        self.enqueue(case, &env)?;
        self.put_item(ItemKind::Case, case, status_code(c.status), &encode(c)?)
    }

    /// Queues a reply to the survivor of `case` (sent at the next sync).
    pub fn reply_to_case(&self, case: &[u8; 16], text: &str, now: UnixTime) -> Result<()> {
        let mut c = self.stored_case(case)?;
        let reply = Reply {
            v: 1,
            report_id: *case,
            text: text.into(),
            language: Some(c.report.language),
            stamp: self.next_stamp(&mut c, now)?,
        };
        let body = reply.to_json()?;
        c.history.push(CaseEvent {
            at: now.0,
            kind: CaseEventKind::Reply { text: text.into() },
        });
        self.in_transaction(|| self.send_to_survivor(case, &c, Purpose::Reply, &body, now))
    }

    /// Sets the case's status and tells the survivor.
    pub fn set_case_status(
        &self,
        case: &[u8; 16],
        status: CaseStatus,
        message: Option<&str>,
        now: UnixTime,
    ) -> Result<()> {
        if status == CaseStatus::Referred {
            return Err(CoreError::Invalid("use refer_case to refer a case"));
        }
        let mut c = self.stored_case(case)?;
        let update = StatusUpdate {
            v: 1,
            report_id: *case,
            status,
            message: message.map(str::to_string),
            referred_to: None,
            stamp: self.next_stamp(&mut c, now)?,
        };
        let body = update.to_json()?;
        c.status = status;
        c.history.push(CaseEvent {
            at: now.0,
            kind: CaseEventKind::Status {
                status,
                message: message.map(str::to_string),
            },
        });
        self.in_transaction(|| self.send_to_survivor(case, &c, Purpose::Status, &body, now))
    }

    /// Refers `case` to another focal point: re-seals the report (with its
    /// attachments and a note) to that focal point's key, and tells the
    /// survivor "referred" on the reply channel. `from` is this focal
    /// point's directory id. A focal point cannot refer a case to itself
    /// (by its id or by its keys).
    pub fn refer_case(
        &self,
        case: &[u8; 16],
        from: &str,
        to: &FocalPoint,
        note: &str,
        now: UnixTime,
    ) -> Result<()> {
        let own_id = self.settings()?.focal_point_id;
        if to.id == from
            || own_id.as_deref() == Some(to.id.as_str())
            || to.keys == self.focal_public()?
        {
            return Err(CoreError::Invalid(
                "a case cannot be referred to the focal point that holds it",
            ));
        }
        let full = self.case(case)?;
        let mut c = self.stored_case(case)?;
        let mut stamp = self.next_stamp(&mut c, now)?;
        stamp.from = Some(from.to_string());
        let mut report = full.report.clone();
        report.referral = Some(Referral {
            from_focal_point: from.into(),
            note: note.into(),
            seq: stamp.seq,
        });
        // The survivor's reply keys stay the same: the new focal point answers
        // on the channel she already reads. Each attachment is re-sent under a
        // fresh id, so nothing links the two focal points' envelopes.
        let mut e = SystemEntropy::new();
        let mut envelopes = Vec::new();
        for (reference, (_, data)) in report.attachments.iter_mut().zip(&full.attachments) {
            let data = data.as_ref().ok_or(CoreError::Invalid(
                "an attachment of this case is incomplete",
            ))?;
            let mut id = [0u8; 16];
            amparo_protocol::Entropy::fill(&mut e, &mut id)?;
            reference.id = id;
            for piece in amparo_protocol::payload::chunk::split_attachment(id, data)? {
                let h = InnerHeader::new(&mut e, now)?;
                envelopes.push(Envelope::seal(
                    &to.keys,
                    Purpose::Chunk,
                    &h,
                    &piece,
                    &mut e,
                )?);
            }
        }
        let h = InnerHeader {
            message_id: *case,
            ..InnerHeader::new(&mut e, now)?
        };
        envelopes.push(Envelope::seal_with(
            &to.keys,
            Purpose::Report,
            &h,
            &report.to_json()?,
            crate::compose::compression_for(&to.reads),
            &mut e,
        )?);
        // The note is for the next focal point; the survivor is told only
        // where her case went.
        let update = StatusUpdate {
            v: 1,
            report_id: *case,
            status: CaseStatus::Referred,
            message: None,
            referred_to: Some(to.id.clone()),
            stamp,
        };
        let body = update.to_json()?;
        c.status = CaseStatus::Referred;
        c.history.push(CaseEvent {
            at: now.0,
            kind: CaseEventKind::Referred {
                to: to.id.clone(),
                note: note.into(),
            },
        });
        self.in_transaction(|| {
            for env in &envelopes {
                self.enqueue(case, env)?;
            }
            self.send_to_survivor(case, &c, Purpose::Status, &body, now)
        })
    }

    /// Uploads what the focal point queued (replies, status updates,
    /// referrals) and fetches its mailbox.
    pub async fn focal_sync(
        &self,
        relay: &RelayClient,
        relay_keys: &[VerifyingKey],
        now: impl Fn() -> UnixTime,
        progress: &mut dyn FnMut(SyncProgress),
    ) -> Result<(SyncSummary, FetchSummary)> {
        self.focal_sync_with_progress(relay, relay_keys, now, progress, &mut |_| {})
            .await
    }

    /// [`Profile::focal_sync`], also reporting how far the mailbox fetch
    /// has got: envelopes stored, new reports, unreadable envelopes (for a
    /// progress display on long fetches).
    pub async fn focal_sync_with_progress(
        &self,
        relay: &RelayClient,
        relay_keys: &[VerifyingKey],
        now: impl Fn() -> UnixTime,
        upload: &mut dyn FnMut(SyncProgress),
        fetch: &mut dyn FnMut(FetchProgress),
    ) -> Result<(SyncSummary, FetchSummary)> {
        let mut sent = SyncSummary::default();
        self.upload_outbox(relay, relay_keys, upload, &mut sent)
            .await?;
        let fetched = self.fetch_mailbox(relay, &now, fetch).await?;
        // An office in the statistics sum answers what the fetch brought
        // (PROTOCOL.md §16), and what that queued goes now.
        if self.statistics_sum_on_sync(now())? {
            self.upload_outbox(relay, relay_keys, upload, &mut sent)
                .await?;
        }
        Ok((sent, fetched))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::tests::blank_report;

    fn case() -> StoredCase {
        StoredCase {
            gbv_type: None,
            context: Vec::new(),
            report: blank_report(),
            status: CaseStatus::Received,
            reported_hour: 10,
            messages: vec![],
            seen: vec![],
            history: vec![],
            sent: 0,
            notes: vec![],
            unread: false,
            stages: vec![],
            starred: false,
            received_hour: None,
        }
    }

    fn texts(c: &StoredCase) -> Vec<String> {
        c.history
            .iter()
            .map(|e| match &e.kind {
                CaseEventKind::FromSurvivor { text, .. } | CaseEventKind::Reply { text } => {
                    text.clone()
                }
                CaseEventKind::Status { status, .. } => format!("{status:?}"),
                CaseEventKind::Referred { to, .. } => format!("-> {to}"),
            })
            .collect()
    }

    #[test]
    fn her_follow_ups_are_filed_in_the_order_she_wrote_them() {
        let mut c = case();
        c.history.push(CaseEvent {
            at: 36_000,
            kind: CaseEventKind::Reply { text: "r".into() },
        });
        // Her third, first and second messages arrive in that order.
        c.file_from_survivor("3".into(), 11, Some(3));
        c.file_from_survivor("1".into(), 11, Some(1));
        c.file_from_survivor("2".into(), 11, Some(2));
        // One from an older phone with no counter, in an earlier hour.
        c.file_from_survivor("0".into(), 10, None);
        assert_eq!(texts(&c), ["r", "0", "1", "2", "3"]);
        // What the office did stays where it happened: a message she wrote
        // after it is not moved before it.
        c.history.push(CaseEvent {
            at: 50_000,
            kind: CaseEventKind::Status {
                status: CaseStatus::Closed,
                message: None,
            },
        });
        c.file_from_survivor("4".into(), 11, Some(4));
        assert_eq!(texts(&c), ["r", "0", "1", "2", "3", "Closed", "4"]);
    }

    #[test]
    fn a_focal_point_learns_whether_survivors_can_reach_it() {
        use amparo_protocol::directory::{Directory, LocalizedText};
        use amparo_protocol::entropy::DangerousSeededEntropy;
        use amparo_protocol::primitives::ed25519::SigningKey;

        let mut e = DangerousSeededEntropy::new(b"listing");
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::create(
            dir.path(),
            "1234",
            crate::store::KdfParams::DANGEROUSLY_FAST_FOR_TESTS,
        )
        .unwrap();
        let keys = p.create_focal_identity().unwrap();
        let coordinator = SigningKey::from_seed(&[3; 32]).unwrap();
        let vk = coordinator.verifying_key();
        let entry = |id: &str, keys: RecipientPublic| FocalPoint {
            reads: Vec::new(),
            id: id.into(),
            name: LocalizedText {
                es: id.into(),
                pt: id.into(),
                en: id.into(),
            },
            organization: "o".into(),
            regions: vec!["PE-UCA".into()],
            categories: vec![Need::LegalAdvice],
            languages: vec![amparo_protocol::payload::Language::Es],
            keys,
            valid_from: 100,
            valid_until: 1000,
        };
        let other = RecipientKeys::generate(&mut e).unwrap().public();
        let publish = |version: u64, focal_points: Vec<FocalPoint>| {
            let d = Directory {
                statistics: None,
                focal_points,
                service_routes: vec![],
                relays: vec![],
            };
            let signed = d.sign(version, &coordinator).unwrap();
            p.import_directory(signed.as_bytes(), &vk, None).unwrap();
        };
        let at = UnixTime(500);
        assert_eq!(p.focal_listing(&vk, at).unwrap(), Listing::NoDirectory);
        publish(1, vec![entry("pe-b", other)]);
        assert_eq!(p.focal_listing(&vk, at).unwrap(), Listing::NoId);
        assert!(p.set_focal_point_id("").is_err());
        assert!(p.set_focal_point_id(&"x".repeat(65)).is_err());
        p.set_focal_point_id("pe-a").unwrap();
        assert_eq!(p.focal_listing(&vk, at).unwrap(), Listing::NotListed);
        publish(2, vec![entry("pe-a", other)]);
        assert_eq!(p.focal_listing(&vk, at).unwrap(), Listing::OtherKeys);
        publish(3, vec![entry("pe-a", keys)]);
        assert_eq!(p.focal_listing(&vk, at).unwrap(), Listing::Listed);
        assert_eq!(
            p.focal_listing(&vk, UnixTime(5000)).unwrap(),
            Listing::NotValidNow
        );
    }

    #[test]
    fn cases_stored_before_the_history_keep_her_messages() {
        let mut c = case();
        c.messages = vec!["a".into(), "b".into()];
        let json = encode(&c).unwrap();
        let back = decode::<StoredCase>(&json, "case").unwrap().upgrade();
        assert!(back.messages.is_empty());
        assert_eq!(texts(&back), ["a", "b"]);
        // And the upgraded case no longer writes the old field.
        let again = String::from_utf8(encode(&back).unwrap().to_vec()).unwrap();
        assert!(!again.contains("\"messages\""), "{again}");
    }
}
