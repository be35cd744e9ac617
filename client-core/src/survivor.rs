//! The survivor's side: send a draft to a focal point, keep the sealed
//! envelopes in the outbox until the relay's signed receipt is held, and read
//! the replies and case status that come back on each report's reply channel.

use amparo_protocol::Entropy;
use amparo_protocol::UnixTime;
use amparo_protocol::directory::FocalPoint;
use amparo_protocol::envelope::{Compression, Envelope, EnvelopeId};
use amparo_protocol::keys::{MailboxId, RecipientKeys, RecipientPublic};
use amparo_protocol::mailboxes::FetchAuth;
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::{CaseStatus, Stamp};
use amparo_protocol::primitives::ed25519::VerifyingKey;
use amparo_protocol::receipt::Receipt;
use amparo_protocol::wire::{EnvelopeResult, RejectCode};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::compose::seal_report;
use crate::inbox::{Incoming, open_with_header};
use crate::pacing::UploadPacer;
use crate::relay::RelayClient;
use crate::store::{ItemKind, Profile};
pub use crate::sweep::{DEFAULT_REPLY_BUDGET, MIN_BUDGET, ReadBudget};
use crate::{CoreError, Result};

/// Outbox states.
pub(crate) const QUEUED: u8 = 0;
const REFUSED: u8 = 1;
/// A relay signed for it with a key this profile does not trust for
/// delivery — a field relay on the local Wi-Fi. The envelope stays here
/// until a trusted (upstream) receipt arrives; it is offered again at each
/// sync, which costs nothing at a relay that already holds it.
pub(crate) const HANDED_OVER: u8 = 2;

/// A report that was sent (or is waiting to go).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentReport {
    /// The report id.
    pub id: [u8; 16],
    /// The focal point's directory id.
    pub focal_point: String,
    /// Hour it was sealed.
    pub created_hour: u32,
    /// Envelopes still waiting for a receipt.
    pub pending: usize,
    /// Envelopes the relay has signed for.
    pub delivered: usize,
    /// Envelopes a field relay took, not yet signed for by a trusted relay
    /// (counted in `pending` too).
    pub handed_over: usize,
    /// The latest case status a focal point sent, if any: the one it made
    /// last, whatever order the envelopes arrived in.
    pub status: Option<CaseStatus>,
    /// The directory id of the focal point that made that status, when it
    /// said (after a referral, the office the case went to).
    pub status_from: Option<String>,
    /// Where the case went, if that latest status is a referral.
    pub referred_to: Option<String>,
    /// Replies not yet read.
    pub unread: usize,
    /// A check-in timer's alert (`crate::timers`): held by the relay, and
    /// sent only if she stops checking in; `pending` until then.
    pub alert: bool,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct StoredReport {
    focal_point: String,
    /// The focal point's keys, for follow-up messages on the same case.
    focal_keys: RecipientPublic,
    created_hour: u32,
    reply_keys: Vec<u8>,
    envelopes: Vec<[u8; 16]>,
    receipts: Vec<Vec<u8>>,
    status: Option<CaseStatus>,
    /// The status message that set `status` (its id), so that a status
    /// made earlier but filed later does not overwrite it.
    #[serde(default)]
    status_message: Option<[u8; 16]>,
    /// Messages already filed (inner message ids), to file each once.
    seen: Vec<[u8; 16]>,
    /// The form as sent, if she chose to keep a copy for her own records.
    copy: Option<crate::drafts::DraftForm>,
    /// How many follow-up messages she has sent on this report (the `seq`
    /// of the next one), so the focal point reads them in order.
    #[serde(default)]
    sent_messages: u32,
    /// A check-in timer's alert, not an ordinary report.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    alert: bool,
}

impl StoredReport {
    /// The record of a check-in timer's alert (`crate::timers`): one
    /// envelope, held by the relay rather than queued here; its reply keys
    /// open what the focal point answers once it is released.
    pub(crate) fn for_alert(
        focal_point: &FocalPoint,
        created_hour: u32,
        reply_keys: Vec<u8>,
        envelope: [u8; 16],
    ) -> Self {
        StoredReport {
            focal_point: focal_point.id.clone(),
            focal_keys: focal_point.keys,
            created_hour,
            reply_keys,
            envelopes: vec![envelope],
            receipts: vec![],
            status: None,
            status_message: None,
            seen: vec![],
            copy: None,
            sent_messages: 0,
            alert: true,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) struct StoredOutgoing {
    pub(crate) report: [u8; 16],
    pub(crate) bytes: Vec<u8>,
}

/// A message from the focal point on a report's channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedMessage {
    /// Its id (the inner message id).
    pub id: [u8; 16],
    /// The report it belongs to.
    pub report: [u8; 16],
    /// Text of a reply, or the message of a status update.
    pub text: Option<String>,
    /// The new case status, for a status update.
    pub status: Option<CaseStatus>,
    /// The focal point it was referred to, with status `referred`.
    pub referred_to: Option<String>,
    /// Hour the focal point wrote it.
    pub hour: u32,
    /// Whether the person has read it.
    pub read: bool,
    /// When, in what order and by which office it was written (empty for
    /// messages from focal points that predate it).
    #[serde(default)]
    pub stamp: Stamp,
}

impl ReceivedMessage {
    /// The key messages are shown in: when the focal point made it, then
    /// its counter, then (for messages that do not say) the hour.
    pub fn order_key(&self) -> (u64, u32) {
        self.stamp.order_key(self.hour)
    }
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncSummary {
    /// Envelopes uploaded and signed for.
    pub delivered: usize,
    /// Envelopes the relay refused (kept aside, not resent).
    pub refused: usize,
    /// Envelopes the relay could not take now (its storage or the
    /// recipient's mailbox is full, or it is busy): still in the outbox,
    /// safe on this phone, sent again at a later sync.
    pub postponed: usize,
    /// Envelopes a field relay took on its way upstream ("handed over", not
    /// yet delivered).
    pub handed_over: usize,
    /// New messages from focal points.
    pub new_messages: usize,
    /// Envelopes in her reply mailboxes that were not for her: they did not
    /// open with the report's keys, or opened but were about another report
    /// (junk someone pushed there). Deleted at the relay, nothing kept here.
    pub discarded: usize,
    /// Bytes this sync spent reading reply mailboxes (requests and answers,
    /// with an allowance for HTTP headers), within the budget it was given.
    pub reply_bytes: u64,
    /// The budget ran out before every reply mailbox was read to the end:
    /// the next sync goes on where this one stopped (what was read is
    /// deleted at the relay).
    pub replies_left: bool,
    /// When the relay could not take something now (`postponed` > 0): how
    /// many seconds to wait before syncing again — longer when the relay is
    /// full than when one mailbox is, with jitter so that phones do not come
    /// back together. Nothing is lost by syncing earlier; it only costs data.
    pub retry_after_secs: Option<u64>,
    /// What paying the relay's admission cost (PROTOCOL.md §14): tokens
    /// spent, work done, envelopes waiting because it asked too much.
    pub paid: crate::tokens::Paid,
    /// What check-in timers sent and learnt (PROTOCOL.md §17).
    pub timers: crate::timers::TimersSynced,
}

/// What the relay's transient refusals (PROTOCOL.md §12.6, codes 5, 6 and 7)
/// during one upload say about the rest of it. A refused envelope stays in
/// the outbox; so that a full relay does not cost her the data of sending
/// everything else only to have it refused too, nothing more is sent this
/// sync after `unavailable` or `relay_full`, and nothing more for a mailbox
/// after its `mailbox_full`. Nothing is retried within the sync.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    /// The relay takes nothing now.
    stopped: bool,
    /// Mailboxes the relay said are full.
    full: std::collections::HashSet<MailboxId>,
    /// The longest wait a refusal asked for, in seconds.
    wait: Option<u64>,
}

impl Refusals {
    /// The shortest wait after a transient refusal with `code`, in seconds:
    /// a busy relay may take it in minutes; a full mailbox once its owner has
    /// fetched (focal points sync several times a day); a full relay once
    /// its operator or its retention has made room.
    pub(crate) fn base_wait(code: RejectCode) -> u64 {
        match code {
            RejectCode::MailboxFull => 15 * 60,
            RejectCode::RelayFull => 60 * 60,
            _ => 2 * 60,
        }
    }

    /// Records a transient refusal of an envelope for `mailbox`.
    pub(crate) fn note(&mut self, code: RejectCode, mailbox: MailboxId) {
        if code == RejectCode::MailboxFull {
            self.full.insert(mailbox);
        } else {
            self.stopped = true;
        }
        let base = Self::base_wait(code);
        self.wait = Some(self.wait.map_or(base, |w| w.max(base)));
    }

    /// Whether an envelope for `mailbox` waits for a later sync unsent.
    pub(crate) fn holds(&self, mailbox: &MailboxId) -> bool {
        self.stopped || self.full.contains(mailbox)
    }

    /// Seconds to wait before trying again, if anything was refused: the
    /// longest base wait plus up to half of it at random.
    pub(crate) fn retry_after_secs(&self) -> Option<u64> {
        let base = self.wait?;
        let mut r = [0u8; 8];
        let jitter = amparo_protocol::entropy::SystemEntropy::new()
            .fill(&mut r)
            .map_or(0, |()| u64::from_be_bytes(r) % (base / 2 + 1));
        Some(base + jitter)
    }
}

/// An upload in progress: the batch being filled and what the relay said.
struct Upload {
    batch: Vec<(Envelope, [u8; 16])>,
    batch_bytes: usize,
    bytes_done: usize,
    pacer: UploadPacer,
    refusals: Refusals,
}

impl Upload {
    fn new() -> Self {
        Upload {
            batch: Vec::new(),
            batch_bytes: 0,
            bytes_done: 0,
            pacer: UploadPacer::new(),
            refusals: Refusals::default(),
        }
    }
}

/// What filing one envelope from a reply mailbox did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filing {
    /// A new message, stored.
    New,
    /// A message filed before (a copy by another route).
    Seen,
    /// Not a message about this report: nothing stored.
    NotForIt,
}

/// What reading the reply mailboxes did.
#[derive(Debug, Default)]
struct RepliesRead {
    new: usize,
    discarded: usize,
    complete: bool,
    bytes: u64,
}

/// Progress of a sync, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncProgress {
    /// `done` of `total` outbox envelopes are uploaded.
    Upload {
        /// Uploaded so far.
        done: usize,
        /// Waiting at the start.
        total: usize,
        /// Bytes of envelopes uploaded so far.
        bytes: usize,
    },
    /// The relay is pressed: the phone does admission work of `effort` for
    /// the next `envelopes` before sending them (seconds of battery, never
    /// her attention). Show "preparing to send".
    Preparing {
        /// The effort being paid.
        effort: u32,
        /// Envelopes it is for.
        envelopes: usize,
    },
    /// `done` of `total` reply mailboxes are checked.
    Replies {
        /// Checked so far.
        done: usize,
        /// To check.
        total: usize,
    },
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Zeroizing<Vec<u8>>> {
    serde_json::to_vec(v)
        .map(Zeroizing::new)
        .map_err(|_| CoreError::Invalid("cannot encode a record"))
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &'static str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|_| CoreError::Corrupt(what))
}

impl Profile {
    /// Seals a draft to `focal_point`, puts its envelopes in the outbox and
    /// deletes the draft. With `keep_copy`, the form is kept, encrypted, with
    /// the sent report for her own records ([`Profile::sent_copy`]).
    /// Returns the report id.
    pub fn send_draft(
        &self,
        draft: &[u8; 16],
        focal_point: &FocalPoint,
        keep_copy: bool,
        now: UnixTime,
    ) -> Result<[u8; 16]> {
        let d = self.draft(draft)?;
        let attachments = self.draft_attachments(draft)?;
        let mut entropy = amparo_protocol::entropy::SystemEntropy::new();
        let sealed = seal_report(
            &focal_point.keys,
            d.form.to_report(focal_point.keys),
            &attachments,
            crate::compose::compression_for(&focal_point.reads),
            &mut entropy,
            now,
        )?;
        let mut envelope_ids = Vec::with_capacity(sealed.envelopes.len());
        for env in &sealed.envelopes {
            self.enqueue(&sealed.report_id, env)?;
            envelope_ids.push(env.id().0);
        }
        self.put_item(
            ItemKind::Report,
            &sealed.report_id,
            0,
            &encode(&StoredReport {
                focal_point: focal_point.id.clone(),
                focal_keys: focal_point.keys,
                created_hour: now.hours(),
                reply_keys: sealed.reply_keys.dangerously_export().to_vec(),
                envelopes: envelope_ids,
                receipts: vec![],
                status: None,
                status_message: None,
                seen: vec![],
                copy: keep_copy.then(|| d.form.clone()),
                sent_messages: 0,
                alert: false,
            })?,
        )?;
        self.delete_draft(draft)?;
        Ok(sealed.report_id)
    }

    /// Records `form` as a report sent to `focal_point` at `sent_at` and
    /// delivered, without sending anything: the duress decoy's "old report
    /// about something minor" (`crate::decoy`). It is sealed as a real one
    /// is (so it has genuine envelope ids and reply keys, and its reply
    /// mailbox is swept at each sync like any report's), nothing is queued,
    /// and each envelope gets a receipt naming `relay_key_id` (the relay the
    /// profile trusts) but signed by a throwaway key: no relay ever saw it,
    /// so no relay signature can exist. The form is kept as her copy.
    pub(crate) fn record_delivered_report(
        &self,
        form: &crate::drafts::DraftForm,
        focal_point: &FocalPoint,
        sent_at: UnixTime,
        relay_key_id: Option<amparo_protocol::keys::KeyId>,
    ) -> Result<[u8; 16]> {
        let mut entropy = amparo_protocol::entropy::SystemEntropy::new();
        let sealed = seal_report(
            &focal_point.keys,
            form.to_report(focal_point.keys),
            &[],
            crate::compose::compression_for(&focal_point.reads),
            &mut entropy,
            sent_at,
        )?;
        let throwaway = amparo_protocol::primitives::ed25519::SigningKey::generate(&mut entropy)?;
        let mut envelopes = Vec::with_capacity(sealed.envelopes.len());
        let mut receipts = Vec::with_capacity(sealed.envelopes.len());
        for env in &sealed.envelopes {
            let mut receipt = Receipt::sign(env.id(), sent_at, &throwaway);
            if let Some(id) = relay_key_id {
                receipt.relay_key_id = id;
            }
            envelopes.push(env.id().0);
            receipts.push(receipt.encode().to_vec());
        }
        self.put_item(
            ItemKind::Report,
            &sealed.report_id,
            0,
            &encode(&StoredReport {
                focal_point: focal_point.id.clone(),
                focal_keys: focal_point.keys,
                created_hour: sent_at.hours(),
                reply_keys: sealed.reply_keys.dangerously_export().to_vec(),
                envelopes,
                receipts,
                status: None,
                status_message: None,
                seen: vec![],
                copy: Some(form.clone()),
                sent_messages: 0,
                alert: false,
            })?,
        )?;
        Ok(sealed.report_id)
    }

    /// Each sent report's reply keys, for opening what arrives for it by
    /// any route.
    pub(crate) fn reply_channels(&self) -> Result<Vec<([u8; 16], RecipientKeys)>> {
        self.item_ids(ItemKind::Report, None)?
            .into_iter()
            .map(|id| {
                let r = self.stored_report(&id)?;
                Ok((id, RecipientKeys::from_secret_bytes(&r.reply_keys)?))
            })
            .collect()
    }

    fn stored_report(&self, id: &[u8; 16]) -> Result<StoredReport> {
        let (_, bytes) = self
            .get_item(ItemKind::Report, id)?
            .ok_or(CoreError::NotFound)?;
        decode(&bytes, "report record")
    }

    /// Every sent report, oldest first.
    pub fn sent_reports(&self) -> Result<Vec<SentReport>> {
        let messages = self.messages()?;
        let by_id: std::collections::HashMap<[u8; 16], &ReceivedMessage> =
            messages.iter().map(|m| (m.id, m)).collect();
        let handed: std::collections::HashSet<[u8; 16]> = self
            .item_ids(ItemKind::Outgoing, Some(HANDED_OVER))?
            .into_iter()
            .collect();
        self.item_ids(ItemKind::Report, None)?
            .into_iter()
            .map(|id| {
                let r = self.stored_report(&id)?;
                let latest = r.status_message.and_then(|m| by_id.get(&m));
                Ok(SentReport {
                    id,
                    focal_point: r.focal_point,
                    created_hour: r.created_hour,
                    pending: r.envelopes.len().saturating_sub(r.receipts.len()),
                    delivered: r.receipts.len(),
                    handed_over: r.envelopes.iter().filter(|e| handed.contains(*e)).count(),
                    status: r.status,
                    status_from: latest.and_then(|m| m.stamp.from.clone()),
                    referred_to: latest
                        .filter(|m| m.status == Some(CaseStatus::Referred))
                        .and_then(|m| m.referred_to.clone()),
                    unread: messages
                        .iter()
                        .filter(|m| m.report == id && !m.read)
                        .count(),
                    alert: r.alert,
                })
            })
            .collect()
    }

    /// The copy of a sent report's form, if she chose to keep one.
    pub fn sent_copy(&self, report: &[u8; 16]) -> Result<Option<crate::drafts::DraftForm>> {
        Ok(self.stored_report(report)?.copy)
    }

    /// Envelopes waiting in the outbox.
    pub fn outbox_len(&self) -> Result<usize> {
        // Handed over to a field relay is still in the outbox: not delivered.
        Ok(self.item_ids(ItemKind::Outgoing, Some(QUEUED))?.len()
            + self.item_ids(ItemKind::Outgoing, Some(HANDED_OVER))?.len())
    }

    /// Queues a follow-up message from the survivor to the focal point of
    /// `report` (sent at the next sync). It travels like the report: sealed
    /// to the focal point, nothing linking it to her but the report id inside.
    pub fn reply_on_report(&self, report: &[u8; 16], text: &str, now: UnixTime) -> Result<()> {
        self.reply_on_report_via(report, text, None, now)
            .map(|_| ())
    }

    /// The focal point a follow-up on `report` goes to: the office her case
    /// was last referred to, if `directory` lists it and it is valid now
    /// (her message then reaches whoever holds the case), else the one she
    /// wrote to. Returns its directory id and keys.
    pub fn current_office(
        &self,
        report: &[u8; 16],
        directory: Option<&amparo_protocol::directory::Directory>,
        now: UnixTime,
    ) -> Result<(String, RecipientPublic)> {
        let r = self.stored_report(report)?;
        let referred = match r.status_message {
            Some(id) => self
                .get_item(ItemKind::Message, &id)?
                .map(|(_, bytes)| decode::<ReceivedMessage>(&bytes, "message"))
                .transpose()?
                .filter(|m| m.status == Some(CaseStatus::Referred))
                .and_then(|m| m.referred_to),
            None => None,
        };
        let holder = referred.and_then(|id| {
            directory?
                .focal_point(&id)
                .filter(|f| f.is_valid_at(now))
                .map(|f| (f.id.clone(), f.keys))
        });
        Ok(holder.unwrap_or((r.focal_point, r.focal_keys)))
    }

    /// [`Profile::reply_on_report`], sealed to the office that holds the
    /// case now ([`Profile::current_office`] with `directory`); returns that
    /// office's directory id.
    pub fn reply_on_report_via(
        &self,
        report: &[u8; 16],
        text: &str,
        directory: Option<&amparo_protocol::directory::Directory>,
        now: UnixTime,
    ) -> Result<String> {
        let (office, keys) = self.current_office(report, directory, now)?;
        // Compressed only if the directory says the office reads it: without
        // a directory, as it always was.
        let compression = directory
            .and_then(|d| d.focal_point(&office))
            // The entry must be the keys sealed to (an office that re-keyed
            // may leave an older install on the keys she has).
            .filter(|f| f.keys == keys)
            .map_or(Compression::Off, |f| {
                crate::compose::compression_for(&f.reads)
            });
        let mut r = self.stored_report(report)?;
        // Her messages carry only a counter: the hour in the sealed header
        // is all a focal point needs to know of when she wrote.
        r.sent_messages = r.sent_messages.saturating_add(1);
        let reply = amparo_protocol::payload::Reply {
            v: amparo_protocol::payload::PAYLOAD_VERSION,
            report_id: *report,
            text: text.into(),
            language: None,
            stamp: Stamp {
                seq: Some(r.sent_messages),
                ..Stamp::default()
            },
        };
        let mut e = amparo_protocol::entropy::SystemEntropy::new();
        let header = InnerHeader::new(&mut e, now)?;
        let env = Envelope::seal_with(
            &keys,
            amparo_protocol::envelope::Purpose::Reply,
            &header,
            &amparo_protocol::payload::Payload::to_json(&reply)?,
            compression,
            &mut e,
        )?;
        self.in_transaction(|| {
            self.enqueue(report, &env)?;
            self.put_item(ItemKind::Report, report, 0, &encode(&r)?)
        })?;
        Ok(office)
    }

    /// Messages from focal points, in the order they were made (the focal
    /// point's time and counter), not the order they arrived in.
    pub fn messages(&self) -> Result<Vec<ReceivedMessage>> {
        let mut messages = self
            .item_ids(ItemKind::Message, None)?
            .iter()
            .map(|id| {
                let (_, bytes) = self
                    .get_item(ItemKind::Message, id)?
                    .ok_or(CoreError::Corrupt("message"))?;
                decode(&bytes, "message")
            })
            .collect::<Result<Vec<ReceivedMessage>>>()?;
        // Stable: messages that say nothing of their time keep the order
        // they were filed in within their hour.
        messages.sort_by_key(ReceivedMessage::order_key);
        Ok(messages)
    }

    /// Marks a message read.
    pub fn mark_read(&self, id: &[u8; 16]) -> Result<()> {
        let (state, bytes) = self
            .get_item(ItemKind::Message, id)?
            .ok_or(CoreError::NotFound)?;
        let mut m: ReceivedMessage = decode(&bytes, "message")?;
        m.read = true;
        self.put_item(ItemKind::Message, id, state, &encode(&m)?)
    }

    /// Uploads the outbox and checks every report's reply mailbox, reading
    /// at most [`DEFAULT_REPLY_BUDGET`] bytes of replies
    /// ([`Profile::sync_within`]).
    ///
    /// An envelope leaves the outbox only when the relay's receipt for it
    /// verifies against one of `relay_keys`; a cut connection leaves it queued
    /// for the next sync, and a resend is harmless (the relay answers a copy it
    /// holds with the same receipt). Replies are acknowledged at the relay
    /// only after they are stored here.
    pub async fn sync(
        &self,
        relay: &RelayClient,
        relay_keys: &[VerifyingKey],
        now: impl Fn() -> UnixTime,
        progress: &mut dyn FnMut(SyncProgress),
    ) -> Result<SyncSummary> {
        self.sync_within(relay, relay_keys, now, ReadBudget::default(), progress)
            .await
    }

    /// [`Profile::sync`], reading reply mailboxes within `budget`: the app
    /// gives less on a metered link (the core cannot know the link). When
    /// it runs out, [`SyncSummary::replies_left`] says so and the next sync
    /// goes on. What does not open with her keys is deleted at the relay and
    /// not kept.
    pub async fn sync_within(
        &self,
        relay: &RelayClient,
        relay_keys: &[VerifyingKey],
        now: impl Fn() -> UnixTime,
        budget: ReadBudget,
        progress: &mut dyn FnMut(SyncProgress),
    ) -> Result<SyncSummary> {
        if relay_keys.is_empty() {
            return Err(CoreError::Invalid("no relay key to check receipts against"));
        }
        let mut summary = SyncSummary::default();
        let admission = self.admission_for(relay_keys)?;
        let paying = relay.paying_with(admission.clone());
        // Timers first: an alert whose hour came before its hold could be
        // sent is queued as a report, and goes with the outbox below.
        let timers = self.sync_timers(&paying, now()).await;
        let uploaded = self
            .upload_outbox(&paying, relay_keys, progress, &mut summary)
            .await;

        summary.paid = self.settle_admission(&admission)?;
        uploaded?;
        // 2. Replies: every report's reply mailbox, many per request.
        let read = self.fetch_replies(relay, &now, budget, progress).await?;
        summary.new_messages += read.new;
        summary.discarded += read.discarded;
        summary.reply_bytes = read.bytes;
        summary.replies_left = !read.complete;
        // A timer that could not be sent (no signal mid-sync, a relay
        // without timers) says so after the rest is done.
        summary.timers = timers?;
        Ok(summary)
    }

    /// [`Profile::sync_all`] (the directory first, then the sync with the
    /// relays it lists), reading reply mailboxes within `budget`.
    pub async fn sync_all_within(
        &self,
        relay: &RelayClient,
        coordinator: &VerifyingKey,
        extra_relay_keys: &[VerifyingKey],
        now: impl Fn() -> UnixTime,
        budget: ReadBudget,
        progress: &mut dyn FnMut(SyncProgress),
    ) -> Result<SyncSummary> {
        self.refresh_directory(relay, coordinator).await?;
        let mut keys = extra_relay_keys.to_vec();
        if let Some(d) = self.directory(coordinator)? {
            keys.extend(d.relays.iter().map(|r| VerifyingKey(r.receipt_key)));
        }
        self.sync_within(relay, &keys, now, budget, progress).await
    }

    /// Uploads every queued envelope, in batches bounded by count and bytes;
    /// an envelope leaves the outbox only with a verified receipt. After a
    /// transient refusal it stops sending what would be refused too
    /// ([`Refusals`]) and sets [`SyncSummary::retry_after_secs`].
    pub(crate) async fn upload_outbox(
        &self,
        relay: &RelayClient,
        relay_keys: &[VerifyingKey],
        progress: &mut dyn FnMut(SyncProgress),
        summary: &mut SyncSummary,
    ) -> Result<()> {
        // Envelopes a field relay took: ask it for the upstream's receipts
        // first, so what it already forwarded is not sent again.
        let handed = self.item_ids(ItemKind::Outgoing, Some(HANDED_OVER))?;
        for ids in handed.chunks(500) {
            let wanted: Vec<EnvelopeId> = ids.iter().copied().map(EnvelopeId).collect();
            for receipt in relay.upstream_receipts(&wanted).await? {
                let id = receipt.envelope_id.0;
                let Some((_, b)) = self.get_item(ItemKind::Outgoing, &id)? else {
                    continue;
                };
                let out: StoredOutgoing = decode(&b, "outbox")?;
                let env = Envelope::from_bytes(out.bytes)?;
                if self
                    .file_receipt(&env, &out.report, &receipt, relay_keys)
                    .is_ok()
                {
                    summary.delivered += 1;
                }
            }
        }
        let mut queued = self.item_ids(ItemKind::Outgoing, Some(QUEUED))?;
        queued.extend(self.item_ids(ItemKind::Outgoing, Some(HANDED_OVER))?);
        let total = queued.len();
        progress(SyncProgress::Upload {
            done: 0,
            total,
            bytes: 0,
        });
        let mut up = Upload::new();
        for (i, id) in queued.iter().enumerate() {
            let (_, bytes) = self
                .get_item(ItemKind::Outgoing, id)?
                .ok_or(CoreError::Corrupt("outbox"))?;
            let out: StoredOutgoing = decode(&bytes, "outbox")?;
            let env = Envelope::from_bytes(out.bytes)?;
            if up.refusals.holds(&env.mailbox()) {
                // Stays queued, unsent: the relay said it would refuse it.
                summary.postponed += 1;
            } else {
                up.batch_bytes += env.as_bytes().len();
                up.batch.push((env, out.report));
            }
            let last = i + 1 == queued.len();
            if !up.batch.is_empty() && (last || up.pacer.full(up.batch.len(), up.batch_bytes)) {
                self.upload_batch(relay, relay_keys, &mut up, summary, progress)
                    .await?;
            }
            if last || up.batch.is_empty() {
                progress(SyncProgress::Upload {
                    done: i + 1,
                    total,
                    bytes: up.bytes_done,
                });
            }
        }
        summary.retry_after_secs = up.refusals.retry_after_secs();
        Ok(())
    }

    /// Sends `up.batch` and files each answer.
    async fn upload_batch(
        &self,
        relay: &RelayClient,
        relay_keys: &[VerifyingKey],
        up: &mut Upload,
        summary: &mut SyncSummary,
        progress: &mut dyn FnMut(SyncProgress),
    ) -> Result<()> {
        let envs: Vec<Envelope> = up.batch.iter().map(|(e, _)| e.clone()).collect();
        let results = up
            .pacer
            .send(relay, &envs, up.batch_bytes, progress)
            .await?;
        let refusals = &mut up.refusals;
        // One transaction per answer: a receipt is filed on its report and
        // its envelope leaves the outbox together (and the answer costs one
        // fsync, not two per envelope).
        self.in_transaction(|| {
            for ((env, report), result) in up.batch.drain(..).zip(results) {
                match result {
                    EnvelopeResult::Accepted(receipt)
                        if relay_keys.iter().any(|k| receipt.verify(k).is_ok()) =>
                    {
                        self.file_receipt(&env, &report, &receipt, relay_keys)?;
                        summary.delivered += 1;
                    }
                    EnvelopeResult::Accepted(receipt) if receipt.envelope_id == env.id() => {
                        // Signed by a relay we do not trust for delivery (a
                        // field relay): handed over, still ours.
                        let (_, b) = self
                            .get_item(ItemKind::Outgoing, &env.id().0)?
                            .ok_or(CoreError::Corrupt("outbox"))?;
                        self.put_item(ItemKind::Outgoing, &env.id().0, HANDED_OVER, &b)?;
                        summary.handed_over += 1;
                    }
                    EnvelopeResult::Accepted(_) => {
                        return Err(CoreError::Invalid(
                            "the relay sent a receipt for another envelope",
                        ));
                    }
                    EnvelopeResult::Rejected(code) if code.is_transient() => {
                        // The relay is full or busy: it stays in the outbox,
                        // as it was, for a later sync.
                        refusals.note(code, env.mailbox());
                        summary.postponed += 1;
                    }
                    EnvelopeResult::Rejected(_) => {
                        let (_, b) = self
                            .get_item(ItemKind::Outgoing, &env.id().0)?
                            .ok_or(CoreError::Corrupt("outbox"))?;
                        self.put_item(ItemKind::Outgoing, &env.id().0, REFUSED, &b)?;
                        summary.refused += 1;
                    }
                }
            }
            Ok(())
        })?;
        up.bytes_done += up.batch_bytes;
        up.batch_bytes = 0;
        Ok(())
    }

    /// Puts a sealed envelope in the outbox, on behalf of `report` (a sent
    /// report's id, or a case's).
    pub(crate) fn enqueue(&self, report: &[u8; 16], env: &Envelope) -> Result<()> {
        self.put_item(
            ItemKind::Outgoing,
            &env.id().0,
            QUEUED,
            &encode(&StoredOutgoing {
                report: *report,
                bytes: env.as_bytes().to_vec(),
            })?,
        )
    }

    pub(crate) fn file_receipt(
        &self,
        env: &Envelope,
        report: &[u8; 16],
        receipt: &Receipt,
        relay_keys: &[VerifyingKey],
    ) -> Result<()> {
        if receipt.envelope_id != env.id() {
            return Err(CoreError::Invalid(
                "the relay sent a receipt for another envelope",
            ));
        }
        if !relay_keys.iter().any(|k| receipt.verify(k).is_ok()) {
            return Err(CoreError::Protocol(
                amparo_protocol::ProtocolError::BadSignature("receipt"),
            ));
        }
        // A survivor's report keeps its receipts (proof of delivery); a
        // focal point's replies need none once they are out.
        if self.get_item(ItemKind::Report, report)?.is_some() {
            let mut r = self.stored_report(report)?;
            let encoded = receipt.encode().to_vec();
            if !r.receipts.contains(&encoded) {
                r.receipts.push(encoded);
            }
            self.put_item(ItemKind::Report, report, 0, &encode(&r)?)?;
        }
        self.delete_item(ItemKind::Outgoing, &env.id().0)?;
        Ok(())
    }

    /// Reads every report's reply mailbox with multi-mailbox requests,
    /// within `budget`, files what opens, and acknowledges every envelope it
    /// read, so the relay deletes it: what was filed, and what was not for
    /// her (a damaged or foreign envelope, or junk someone pushed to the
    /// mailbox), which is dropped without keeping anything of it. So a
    /// flooded mailbox empties as she reads it, and her replies behind the
    /// junk come at this sync or a later one, each within its budget.
    async fn fetch_replies(
        &self,
        relay: &RelayClient,
        now: &dyn Fn() -> UnixTime,
        mut budget: ReadBudget,
        progress: &mut dyn FnMut(SyncProgress),
    ) -> Result<RepliesRead> {
        let channels = self.reply_channels()?;
        let auths: Vec<FetchAuth<'_>> = channels
            .iter()
            .map(|(_, keys)| FetchAuth::Key(keys.signing()))
            .collect();
        let mut entropy = amparo_protocol::entropy::SystemEntropy::new();
        let mut read = RepliesRead::default();
        let mut file = |i: usize, items: &[(u64, Envelope)]| -> Result<Vec<EnvelopeId>> {
            let Some((report_id, keys)) = channels.get(i) else {
                return Ok(Vec::new());
            };
            let mut filed = Vec::with_capacity(items.len());
            // One transaction per page: a page of replies costs one fsync.
            self.in_transaction(|| {
                for (_, env) in items {
                    let filing = match open_with_header(env, keys) {
                        Ok((header, message)) => self.file_opened(report_id, &header, message)?,
                        Err(_) => Filing::NotForIt,
                    };
                    match filing {
                        Filing::New => read.new += 1,
                        Filing::Seen => {}
                        Filing::NotForIt => read.discarded += 1,
                    }
                    filed.push(env.id());
                }
                Ok(())
            })?;
            Ok(filed)
        };
        let mut cursors = vec![0u64; auths.len()];
        let drained = crate::sweep::drain(
            relay,
            &auths,
            &mut cursors,
            &mut budget,
            now,
            &mut entropy,
            &mut file,
            &mut |done, total| progress(SyncProgress::Replies { done, total }),
        )
        .await;
        read.bytes = budget.spent();
        read.complete = drained?;
        Ok(read)
    }

    /// Stores one opened message; returns whether it was new.
    pub(crate) fn file_message(
        &self,
        report_id: &[u8; 16],
        header: &InnerHeader,
        message: Incoming,
    ) -> Result<bool> {
        Ok(self.file_opened(report_id, header, message)? == Filing::New)
    }

    /// Stores one opened message if it is a reply or status update about
    /// `report_id` and was not filed before. Anything else stores nothing.
    fn file_opened(
        &self,
        report_id: &[u8; 16],
        header: &InnerHeader,
        message: Incoming,
    ) -> Result<Filing> {
        let (hour, message_id) = (header.created_hour, header.message_id);
        let mut r = self.stored_report(report_id)?;
        if r.seen.contains(&message_id) {
            return Ok(Filing::Seen);
        }
        let m = match message {
            Incoming::Reply(reply) if reply.report_id == *report_id => ReceivedMessage {
                id: message_id,
                report: *report_id,
                text: Some(reply.text),
                status: None,
                referred_to: None,
                hour,
                read: false,
                stamp: reply.stamp,
            },
            Incoming::Status(s) if s.report_id == *report_id => {
                let m = ReceivedMessage {
                    id: message_id,
                    report: *report_id,
                    text: s.message,
                    status: Some(s.status),
                    referred_to: s.referred_to,
                    hour,
                    read: false,
                    stamp: s.stamp,
                };
                // The case stands where the status made last puts it, not
                // the one filed last: a page or a bundle comes in any order.
                let current = match r.status_message {
                    Some(id) => self
                        .get_item(ItemKind::Message, &id)?
                        .map(|(_, bytes)| decode::<ReceivedMessage>(&bytes, "message"))
                        .transpose()?,
                    None => None,
                };
                if current.is_none_or(|c| m.order_key() >= c.order_key()) {
                    r.status = Some(s.status);
                    r.status_message = Some(message_id);
                }
                m
            }
            _ => return Ok(Filing::NotForIt),
        };
        self.put_item(ItemKind::Message, &message_id, 0, &encode(&m)?)?;
        r.seen.push(message_id);
        self.put_item(ItemKind::Report, report_id, 0, &encode(&r)?)?;
        Ok(Filing::New)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drafts::DraftForm;
    use crate::store::KdfParams;
    use amparo_protocol::directory::LocalizedText;
    use amparo_protocol::entropy::DangerousSeededEntropy;
    use amparo_protocol::payload::{Language, Need, Reply, StatusUpdate};

    const HOUR: u32 = 497_000;

    fn focal_point(id: &str, keys: RecipientPublic) -> FocalPoint {
        let t = |s: &str| LocalizedText {
            es: s.into(),
            pt: s.into(),
            en: s.into(),
        };
        FocalPoint {
            reads: Vec::new(),
            id: id.into(),
            name: t(id),
            organization: "Org".into(),
            regions: vec!["PE-UCA".into()],
            categories: vec![Need::LegalAdvice],
            languages: vec![Language::Es],
            keys,
            valid_from: 0,
            valid_until: u64::MAX / 2,
        }
    }

    fn stamp(second: u64, seq: u32, from: &str) -> Stamp {
        Stamp {
            at: Some(u64::from(HOUR) * 3600 + second),
            seq: Some(seq),
            from: Some(from.into()),
        }
    }

    fn status(report_id: [u8; 16], s: CaseStatus, to: Option<&str>, stamp: Stamp) -> Incoming {
        Incoming::Status(StatusUpdate {
            v: 1,
            report_id,
            status: s,
            message: None,
            referred_to: to.map(str::to_string),
            stamp,
        })
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for at in 0..=p.len() {
                let mut q = p.clone();
                q.insert(at, n - 1);
                out.push(q);
            }
        }
        out
    }

    /// The bug a newcomer found: "in progress" then "referred" within one
    /// hour, filed in the other order, showed "in progress". Every order of
    /// filing must give the same status and the same list.
    #[test]
    fn the_status_made_last_wins_whatever_order_it_is_filed_in() {
        let mut e = DangerousSeededEntropy::new(b"status-order");
        let fp = focal_point("pe-a", RecipientKeys::generate(&mut e).unwrap().public());
        for order in permutations(5) {
            let dir = tempfile::tempdir().unwrap();
            let p =
                Profile::create(dir.path(), "1234", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
            let draft = p
                .create_draft(&DraftForm {
                    needs: vec![Need::LegalAdvice],
                    language: Some(Language::Es),
                    text: "texto".into(),
                    ..DraftForm::default()
                })
                .unwrap();
            let id = p
                .send_draft(&draft, &fp, false, UnixTime::from_hours(HOUR))
                .unwrap();
            let message = |i: usize| match i {
                // An older focal point's reply, with no stamp: sorts at the
                // start of its hour.
                0 => Incoming::Reply(Reply {
                    v: 1,
                    report_id: id,
                    text: "recibido".into(),
                    language: None,
                    stamp: Stamp::default(),
                }),
                1 => status(id, CaseStatus::InProgress, None, stamp(10, 1, "pe-a")),
                // Same second, next in A's counter.
                2 => status(id, CaseStatus::Referred, Some("br-b"), stamp(10, 2, "pe-a")),
                3 => Incoming::Reply(Reply {
                    v: 1,
                    report_id: id,
                    text: "somos la casa".into(),
                    language: None,
                    stamp: stamp(30, 1, "br-b"),
                }),
                _ => status(id, CaseStatus::InProgress, None, stamp(40, 2, "br-b")),
            };
            let headers: Vec<InnerHeader> = (0..5)
                .map(|_| InnerHeader::new(&mut e, UnixTime::from_hours(HOUR)).unwrap())
                .collect();
            // File them in this order, then each again (a copy via another route).
            for &i in order.iter().chain(order.iter()) {
                p.file_message(&id, &headers[i], message(i)).unwrap();
            }
            let listed: Vec<(Option<CaseStatus>, Option<String>)> = p
                .messages()
                .unwrap()
                .into_iter()
                .map(|m| (m.status, m.stamp.from))
                .collect();
            assert_eq!(
                listed,
                vec![
                    (None, None),
                    (Some(CaseStatus::InProgress), Some("pe-a".into())),
                    (Some(CaseStatus::Referred), Some("pe-a".into())),
                    (None, Some("br-b".into())),
                    (Some(CaseStatus::InProgress), Some("br-b".into())),
                ],
                "filed in order {order:?}"
            );
            let report = &p.sent_reports().unwrap()[0];
            assert_eq!(report.status, Some(CaseStatus::InProgress), "{order:?}");
            assert_eq!(report.status_from.as_deref(), Some("br-b"));
            assert_eq!(report.referred_to, None);
        }
    }

    #[test]
    fn refusals_hold_what_would_be_refused_too_and_say_when_to_come_back() {
        let (a, b) = (MailboxId([1; 12]), MailboxId([2; 12]));
        let mut r = Refusals::default();
        assert!(!r.holds(&a) && r.retry_after_secs().is_none());
        // A full mailbox holds only itself.
        r.note(RejectCode::MailboxFull, a);
        assert!(r.holds(&a) && !r.holds(&b));
        for _ in 0..50 {
            let wait = r.retry_after_secs().unwrap();
            assert!((15 * 60..=15 * 60 + 7 * 60 + 30).contains(&wait), "{wait}");
        }
        // A busy relay holds everything; the longest wait wins.
        r.note(RejectCode::Unavailable, b);
        assert!(r.holds(&b) && r.holds(&MailboxId([3; 12])));
        assert!(r.retry_after_secs().unwrap() >= 15 * 60);
        r.note(RejectCode::RelayFull, b);
        let wait = r.retry_after_secs().unwrap();
        assert!((3600..=5400).contains(&wait), "{wait}");
    }

    #[test]
    fn after_a_referral_the_report_says_where_the_case_went() {
        let mut e = DangerousSeededEntropy::new(b"referred");
        let fp = focal_point("pe-a", RecipientKeys::generate(&mut e).unwrap().public());
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::create(dir.path(), "1234", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let draft = p
            .create_draft(&DraftForm {
                text: "texto".into(),
                ..DraftForm::default()
            })
            .unwrap();
        let id = p
            .send_draft(&draft, &fp, false, UnixTime::from_hours(HOUR))
            .unwrap();
        let h = |e: &mut DangerousSeededEntropy| {
            InnerHeader::new(e, UnixTime::from_hours(HOUR)).unwrap()
        };
        let referred = status(id, CaseStatus::Referred, Some("br-b"), stamp(20, 2, "pe-a"));
        let earlier = status(id, CaseStatus::InProgress, None, stamp(10, 1, "pe-a"));
        assert!(p.file_message(&id, &h(&mut e), referred).unwrap());
        assert!(p.file_message(&id, &h(&mut e), earlier).unwrap());
        let report = &p.sent_reports().unwrap()[0];
        assert_eq!(report.status, Some(CaseStatus::Referred));
        assert_eq!(report.referred_to.as_deref(), Some("br-b"));
        assert_eq!(report.status_from.as_deref(), Some("pe-a"));
    }
}
