//! The focal point's side: its key set, fetching its mailbox into locally
//! encrypted cases (acknowledging only what is stored), replying, setting a
//! case's status, and referring a case to another focal point.

use amparo_protocol::UnixTime;
use amparo_protocol::directory::FocalPoint;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, EnvelopeId, Purpose};
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::{
    AttachmentRef, CaseStatus, Need, Payload, Referral, Reply, Report, StatusUpdate,
};
use amparo_protocol::primitives::ed25519::VerifyingKey;
use amparo_protocol::primitives::sha256_prefix;
use serde::{Deserialize, Serialize};

use crate::inbox::{Incoming, Reassembly, open_with_header};
use crate::relay::RelayClient;
use crate::store::{ItemKind, Profile};
use crate::survivor::{SyncProgress, SyncSummary, decode, encode};
use crate::{CoreError, Result};

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
    /// Follow-up messages filed.
    pub messages: usize,
    /// Copies of things already filed.
    pub duplicates: usize,
    /// Envelopes that could not be opened, kept aside.
    pub rejected: usize,
}

#[derive(Serialize, Deserialize)]
struct StoredCase {
    report: Report,
    status: CaseStatus,
    reported_hour: u32,
    messages: Vec<String>,
    seen: Vec<[u8; 16]>,
}

impl StoredCase {
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
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredRejected {
    reason: String,
    envelope: Vec<u8>,
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
        let (_, bytes) = self
            .get_item(ItemKind::Identity, &self.fixed_id(b"identity"))?
            .ok_or(CoreError::Invalid("this profile has no focal point keys"))?;
        Ok(RecipientKeys::from_secret_bytes(&bytes)?)
    }

    /// The public part of this focal point's keys.
    pub fn focal_public(&self) -> Result<RecipientPublic> {
        Ok(self.focal_keys()?.public())
    }

    /// Fetches the whole mailbox: files each case, piece and message once,
    /// keeps aside what cannot be opened, and acknowledges each page only
    /// after it is stored.
    pub async fn fetch_mailbox(
        &self,
        relay: &RelayClient,
        now: impl Fn() -> UnixTime,
        progress: &mut dyn FnMut(usize),
    ) -> Result<FetchSummary> {
        let keys = self.focal_keys()?;
        let mut entropy = SystemEntropy::new();
        let mut summary = FetchSummary::default();
        let mut after = 0;
        let mut fetched = 0;
        loop {
            let page = relay.fetch(&keys, after, 100, now(), &mut entropy).await?;
            if let Some((cursor, _)) = page.items.last() {
                after = *cursor;
            }
            let envelopes: Vec<Envelope> = page.items.into_iter().map(|(_, e)| e).collect();
            // The page is stored in one transaction before it is acknowledged.
            self.file_with(&keys, &envelopes, &mut summary)?;
            let filed: Vec<EnvelopeId> = envelopes.iter().map(Envelope::id).collect();
            fetched += filed.len();
            progress(fetched);
            if !filed.is_empty() {
                relay.ack(&keys, &filed, now(), &mut entropy).await?;
            }
            if !page.more || envelopes.is_empty() {
                return Ok(summary);
            }
        }
    }

    /// Files envelopes that reached this focal point by any route (the relay,
    /// a facilitator's bundle, a file), in one transaction.
    pub fn file_envelopes(&self, envelopes: &[Envelope]) -> Result<FetchSummary> {
        let keys = self.focal_keys()?;
        let mut summary = FetchSummary::default();
        self.file_with(&keys, envelopes, &mut summary)?;
        Ok(summary)
    }

    fn file_with(
        &self,
        keys: &RecipientKeys,
        envelopes: &[Envelope],
        summary: &mut FetchSummary,
    ) -> Result<()> {
        self.in_transaction(|| {
            for env in envelopes {
                self.file_envelope(keys, env, summary)?;
            }
            Ok(())
        })
    }

    fn file_envelope(
        &self,
        keys: &RecipientKeys,
        env: &Envelope,
        summary: &mut FetchSummary,
    ) -> Result<()> {
        let (header, message) = match open_with_header(env, keys) {
            Ok(v) => v,
            Err(e) => {
                // Tampered, mis-addressed or malformed: kept aside with the
                // reason, never fatal to the fetch.
                return self.reject(env, &e.to_string(), summary);
            }
        };
        match message {
            Incoming::Report { message_id, report } => {
                if self.get_item(ItemKind::Case, &message_id)?.is_some() {
                    summary.duplicates += 1;
                } else {
                    let status = CaseStatus::Received;
                    self.put_item(
                        ItemKind::Case,
                        &message_id,
                        status_code(status),
                        &encode(&StoredCase {
                            report: *report,
                            status,
                            reported_hour: header.created_hour,
                            messages: vec![],
                            seen: vec![],
                        })?,
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
                    self.reject(
                        env,
                        "a follow-up for a case this focal point does not hold",
                        summary,
                    )?;
                    return Ok(());
                };
                let mut case: StoredCase = decode(&bytes, "case")?;
                if case.seen.contains(&header.message_id) {
                    summary.duplicates += 1;
                } else {
                    case.messages.push(reply.text);
                    case.seen.push(header.message_id);
                    self.put_item(ItemKind::Case, &reply.report_id, state, &encode(&case)?)?;
                    summary.messages += 1;
                }
            }
            Incoming::Status(_) => {
                self.reject(env, "a status update sent to a focal point", summary)?
            }
            Incoming::Cover => {}
        }
        Ok(())
    }

    fn reject(&self, env: &Envelope, reason: &str, summary: &mut FetchSummary) -> Result<()> {
        self.put_item(
            ItemKind::Rejected,
            &env.id().0,
            0,
            &encode(&StoredRejected {
                reason: reason.into(),
                envelope: env.as_bytes().to_vec(),
            })?,
        )?;
        summary.rejected += 1;
        Ok(())
    }

    /// Envelopes kept aside, with the reason each could not be filed.
    pub fn rejected(&self) -> Result<Vec<(EnvelopeId, String)>> {
        self.item_ids(ItemKind::Rejected, None)?
            .into_iter()
            .map(|id| {
                let (_, bytes) = self
                    .get_item(ItemKind::Rejected, &id)?
                    .ok_or(CoreError::Corrupt("rejected"))?;
                let r: StoredRejected = decode(&bytes, "rejected")?;
                Ok((EnvelopeId(id), r.reason))
            })
            .collect()
    }

    fn stored_case(&self, id: &[u8; 16]) -> Result<StoredCase> {
        let (_, bytes) = self
            .get_item(ItemKind::Case, id)?
            .ok_or(CoreError::NotFound)?;
        decode(&bytes, "case")
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
        Ok(Case {
            summary: c.summary(*id),
            report: c.report,
            attachments,
            messages: c.messages,
        })
    }

    fn seal_to_survivor(
        &self,
        case: &[u8; 16],
        purpose: Purpose,
        body: &[u8],
        now: UnixTime,
    ) -> Result<()> {
        let c = self.stored_case(case)?;
        let mut e = SystemEntropy::new();
        let header = InnerHeader::new(&mut e, now)?;
        let env = Envelope::seal(&c.report.reply_to, purpose, &header, body, &mut e)?;
        self.enqueue(case, &env)
    }

    /// Queues a reply to the survivor of `case` (sent at the next sync).
    pub fn reply_to_case(&self, case: &[u8; 16], text: &str, now: UnixTime) -> Result<()> {
        let c = self.stored_case(case)?;
        let reply = Reply {
            v: 1,
            report_id: *case,
            text: text.into(),
            language: Some(c.report.language),
        };
        self.seal_to_survivor(case, Purpose::Reply, &reply.to_json()?, now)
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
        self.update_status(case, status, message, None, now)
    }

    fn update_status(
        &self,
        case: &[u8; 16],
        status: CaseStatus,
        message: Option<&str>,
        referred_to: Option<String>,
        now: UnixTime,
    ) -> Result<()> {
        let update = StatusUpdate {
            v: 1,
            report_id: *case,
            status,
            message: message.map(str::to_string),
            referred_to,
        };
        self.seal_to_survivor(case, Purpose::Status, &update.to_json()?, now)?;
        let mut c = self.stored_case(case)?;
        c.status = status;
        self.put_item(ItemKind::Case, case, status_code(status), &encode(&c)?)
    }

    /// Refers `case` to another focal point: re-seals the report (with its
    /// attachments and a note) to that focal point's key, and tells the
    /// survivor "referred" on the reply channel. `from` is this focal
    /// point's directory id.
    pub fn refer_case(
        &self,
        case: &[u8; 16],
        from: &str,
        to: &FocalPoint,
        note: &str,
        now: UnixTime,
    ) -> Result<()> {
        let full = self.case(case)?;
        let mut report = full.report.clone();
        report.referral = Some(Referral {
            from_focal_point: from.into(),
            note: note.into(),
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
        envelopes.push(Envelope::seal(
            &to.keys,
            Purpose::Report,
            &h,
            &report.to_json()?,
            &mut e,
        )?);
        for env in &envelopes {
            self.enqueue(case, env)?;
        }
        // The note is for the next focal point; the survivor is told only
        // where her case went.
        self.update_status(case, CaseStatus::Referred, None, Some(to.id.clone()), now)
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

    /// [`Profile::focal_sync`], also reporting how many envelopes the
    /// mailbox fetch has filed so far (for a progress bar on long fetches).
    pub async fn focal_sync_with_progress(
        &self,
        relay: &RelayClient,
        relay_keys: &[VerifyingKey],
        now: impl Fn() -> UnixTime,
        upload: &mut dyn FnMut(SyncProgress),
        fetch: &mut dyn FnMut(usize),
    ) -> Result<(SyncSummary, FetchSummary)> {
        let mut sent = SyncSummary::default();
        self.upload_outbox(relay, relay_keys, upload, &mut sent)
            .await?;
        let fetched = self.fetch_mailbox(relay, now, fetch).await?;
        Ok((sent, fetched))
    }
}
