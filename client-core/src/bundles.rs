//! Carrying sealed reports through places without signal.
//!
//! A survivor's phone exports its outbox as a bundle (bytes any transport can
//! move: Bluetooth, Wi-Fi Direct, an SD card, QR codes). A facilitator's
//! profile imports bundles from many people, keeps each envelope once (by its
//! id), cannot open any of them, and uploads them at its next sync. It then
//! carries back the relay's receipts and the latest signed directory; the
//! survivor's profile accepts a receipt only if it verifies against a relay
//! key it trusts, and marks the report delivered.
//!
//! The facilitator's store holds envelopes and receipts only: nothing says
//! who handed over which envelope, or when (beyond the envelopes' own bytes,
//! which are sealed).

use amparo_protocol::UnixTime;
use amparo_protocol::bundle::{self, BundleEncoder, BundleItem};
use amparo_protocol::envelope::{Envelope, EnvelopeId};
use amparo_protocol::grant::FetchGrant;
use amparo_protocol::mailboxes::FetchAuth;
use amparo_protocol::primitives::ed25519::VerifyingKey;
use amparo_protocol::receipt::Receipt;
use amparo_protocol::wire::EnvelopeResult;
use serde::{Deserialize, Serialize};

use crate::inbox::open_with_header;
use crate::pacing::UploadPacer;
use crate::relay::RelayClient;
use crate::store::{ItemKind, Profile};
use crate::survivor::{
    HANDED_OVER, QUEUED, ReadBudget, Refusals, StoredOutgoing, SyncProgress, decode, encode,
};
use crate::{CoreError, Result};

/// Carried-envelope states.
const WAITING: u8 = 0;
const DELIVERED: u8 = 1;
/// A sealed reply fetched with someone's grant, to hand back to her.
const FOR_PICKUP: u8 = 2;
/// Refused by the relay for good (not a well-formed envelope): not sent
/// again. The person's own phone still holds its copy.
const REFUSED: u8 = 3;

/// Most bytes of sealed answers a facilitator picks up with one grant over
/// its life (1 MiB: a conversation is a few messages of 1 to 16 KiB). She
/// cannot tell answers from junk someone pushed to that mailbox, so past it
/// she stops fetching it: the person reads the rest herself when she has
/// signal. This bounds what a flooded mailbox costs the facilitator's data,
/// her profile and the bundle she hands back.
pub const MAX_PICKUP_PER_GRANT: u64 = 1024 * 1024;

/// How long a survivor's fetch grant in an outbox bundle lasts: long enough
/// for a facilitator's round through towns without signal.
pub const GRANT_VALIDITY_SECS: u64 = 7 * 24 * 3600;

#[derive(Serialize, Deserialize)]
struct Carried {
    envelope: Vec<u8>,
    receipt: Option<Vec<u8>>,
}

/// What an import kept and what it could not read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Envelopes taken on to carry.
    pub envelopes: usize,
    /// Envelopes already held (dropped).
    pub duplicates: usize,
    /// Receipts that matched this profile's outbox and verified.
    pub receipts_accepted: usize,
    /// Receipts for envelopes this profile does not have, or that did not verify.
    pub receipts_ignored: usize,
    /// The directory version accepted, if the bundle brought a newer one.
    pub directory: Option<u64>,
    /// Why decoding stopped early, if the bundle was damaged: everything
    /// before the damage was kept; nothing after it was read.
    pub damaged: Option<String>,
    /// Fetch grants taken on (a facilitator fetches those replies).
    pub grants: usize,
    /// Replies and status updates for this profile's own reports, filed.
    pub messages: usize,
    /// Admission tokens handed on in the bundle and kept (new ones, up to
    /// the purse's bound).
    pub tokens: usize,
    /// Check-in timers' holds and check-ins taken on to send (PROTOCOL.md
    /// §17.7), and those dropped at the carrying bound.
    pub timer_items: crate::timers::CarriedTimers,
}

/// What the facilitator is carrying (counts and states only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carrying {
    /// Waiting to be uploaded.
    pub waiting: usize,
    /// Uploaded, with a receipt to bring back.
    pub delivered: usize,
    /// Sealed replies fetched for people, to hand back.
    pub replies: usize,
    /// Reply mailboxes she may fetch (unexpired grants).
    pub grants: usize,
    /// Envelopes the relay refused for good (malformed): not sent again.
    pub refused: usize,
    /// Check-in timers' holds and check-ins to send.
    pub timer_items: usize,
}

/// What uploading the carried envelopes did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarriedUpload {
    /// Envelopes the relay signed for (a receipt to hand back).
    pub delivered: usize,
    /// Envelopes the relay could not take now (it or the recipient's
    /// mailbox is full, or it is busy): still carried, safe, sent again at a
    /// later sync.
    pub postponed: usize,
    /// Envelopes the relay refused for good (not well-formed): not sent
    /// again.
    pub refused: usize,
    /// When something was postponed: seconds to wait before the next sync
    /// (as [`crate::survivor::SyncSummary::retry_after_secs`]).
    pub retry_after_secs: Option<u64>,
    /// What paying the relay's admission cost: the facilitator's own
    /// tokens spent, work done (PROTOCOL.md §14).
    pub paid: crate::tokens::Paid,
    /// Check-in timers' holds and check-ins sent for others.
    pub timer_items: usize,
}

/// What fetching with the grants held did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantedFetch {
    /// New sealed answers picked up to hand back.
    pub new: usize,
    /// Bytes spent, within the budget given.
    pub bytes: u64,
    /// The budget ran out before every mailbox was read to the end: the next
    /// sync goes on from where this one stopped.
    pub left: bool,
    /// Mailboxes no longer fetched because [`MAX_PICKUP_PER_GRANT`] was
    /// picked up from them.
    pub full: usize,
}

/// A grant as the facilitator keeps it: with where her fetches of its
/// mailbox got to (she cannot acknowledge, so the relay keeps what she read)
/// and how many bytes she picked up with it.
struct HeldGrant {
    grant: FetchGrant,
    cursor: u64,
    picked: u64,
}

impl HeldGrant {
    fn decode(bytes: &[u8]) -> Result<HeldGrant> {
        let (grant, rest) = bytes
            .split_at_checked(amparo_protocol::grant::LEN)
            .ok_or(CoreError::Corrupt("grant"))?;
        let (cursor, picked) = match rest.len() {
            // Held before cursors were kept.
            0 => (0, 0),
            16 => {
                let (c, p) = rest.split_at(8);
                let n = |b: &[u8]| b.try_into().map(u64::from_be_bytes);
                (
                    n(c).map_err(|_| CoreError::Corrupt("grant"))?,
                    n(p).map_err(|_| CoreError::Corrupt("grant"))?,
                )
            }
            _ => return Err(CoreError::Corrupt("grant")),
        };
        Ok(HeldGrant {
            grant: FetchGrant::decode(grant)?,
            cursor,
            picked,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = self.grant.as_bytes().to_vec();
        out.extend_from_slice(&self.cursor.to_be_bytes());
        out.extend_from_slice(&self.picked.to_be_bytes());
        out
    }
}

/// The item id of the grant held for a mailbox (one per mailbox).
fn grant_item(g: &FetchGrant) -> [u8; 16] {
    amparo_protocol::primitives::sha256_prefix(&[b"amparo-grant-item", &g.mailbox().0])
}

impl Profile {
    /// The outbox as a bundle (envelopes only; the facilitator gets the
    /// directory from the relay and hands it on in return bundles).
    pub fn export_outbox_bundle(&self) -> Result<Vec<u8>> {
        self.outbox_bundle(None)
    }

    /// The outbox as a bundle, with a fetch grant for each report's reply
    /// mailbox valid [`GRANT_VALIDITY_SECS`] from `now`, so the facilitator
    /// can bring back sealed replies (she cannot open them).
    pub fn export_outbox_bundle_with_grants(&self, now: UnixTime) -> Result<Vec<u8>> {
        self.outbox_bundle(Some(UnixTime(now.0.saturating_add(GRANT_VALIDITY_SECS))))
    }

    fn outbox_bundle(&self, grants_until: Option<UnixTime>) -> Result<Vec<u8>> {
        let mut enc = BundleEncoder::new();
        if let Some(until) = grants_until {
            for (_, keys) in self.reply_channels()? {
                enc.grant(&FetchGrant::sign(keys.signing(), until))?;
            }
        }
        let mut ids = self.item_ids(ItemKind::Outgoing, Some(QUEUED))?;
        ids.extend(self.item_ids(ItemKind::Outgoing, Some(HANDED_OVER))?);
        for id in ids {
            let (_, bytes) = self
                .get_item(ItemKind::Outgoing, &id)?
                .ok_or(CoreError::Corrupt("outbox"))?;
            let out: StoredOutgoing = decode(&bytes, "outbox")?;
            enc.envelope(&Envelope::from_bytes(out.bytes)?)?;
        }
        // Her timers' hold and check-ins, for a facilitator to send where
        // she has no signal (signed: the facilitator cannot change them).
        self.bundle_timers(&mut enc)?;
        Ok(enc.finish())
    }

    /// Imports a bundle: carries its envelopes (each once), files receipts
    /// for this profile's own outbox, and takes a newer directory. A damaged
    /// bundle keeps what came before the damage and says so.
    pub fn import_bundle(
        &self,
        bytes: &[u8],
        coordinator: &VerifyingKey,
        relay_keys: &[VerifyingKey],
    ) -> Result<ImportReport> {
        let (items, error) = bundle::decode_prefix(bytes);
        let mut report = ImportReport {
            damaged: error.map(|e| e.to_string()),
            ..ImportReport::default()
        };
        // Receipts count when signed by a relay given here or listed in the
        // directory held (or one newer that arrives in this bundle).
        let channels = self.reply_channels()?;
        let mut trusted = relay_keys.to_vec();
        if let Some(dir) = self.directory(coordinator)? {
            trusted.extend(dir.relays.iter().map(|r| VerifyingKey(r.receipt_key)));
        }
        let mut tokens = Vec::new();
        self.in_transaction(|| {
            for item in items {
                match item {
                    BundleItem::Envelope(env)
                        if channels.iter().any(|(_, k)| k.mailbox() == env.mailbox()) =>
                    {
                        // A reply to one of her reports, fetched for her by a
                        // facilitator: opened and filed once (she acknowledges
                        // it at the relay at her next sync).
                        for (report_id, keys) in &channels {
                            if keys.mailbox() == env.mailbox()
                                && let Ok((header, message)) = open_with_header(&env, keys)
                            {
                                report.messages +=
                                    usize::from(self.file_message(report_id, &header, message)?);
                            }
                        }
                    }
                    BundleItem::Envelope(env) => {
                        let id = env.id().0;
                        // Our own envelopes coming back, or one already carried.
                        if self.get_item(ItemKind::Outgoing, &id)?.is_some()
                            || self.get_item(ItemKind::Carried, &id)?.is_some()
                        {
                            report.duplicates += 1;
                            continue;
                        }
                        self.put_item(
                            ItemKind::Carried,
                            &id,
                            WAITING,
                            &encode(&Carried {
                                envelope: env.into_bytes(),
                                receipt: None,
                            })?,
                        )?;
                        report.envelopes += 1;
                    }
                    BundleItem::Directory(d) => {
                        // Kept without the decoy's copy: that is written
                        // from the decoy's own connection, which would wait
                        // on this transaction; it follows the commit.
                        if let Ok(v) = self.keep_directory(&d, coordinator, None) {
                            report.directory = Some(v);
                            if let Some(dir) = self.directory(coordinator)? {
                                trusted
                                    .extend(dir.relays.iter().map(|r| VerifyingKey(r.receipt_key)));
                            }
                        }
                    }
                    BundleItem::Grant(g) => {
                        let id = grant_item(&g);
                        let held = self
                            .get_item(ItemKind::Grant, &id)?
                            .and_then(|(_, b)| HeldGrant::decode(&b).ok());
                        // A newer grant for the same mailbox goes on from
                        // where the one held got to.
                        let (cursor, picked) =
                            held.as_ref().map_or((0, 0), |h| (h.cursor, h.picked));
                        if held.is_none_or(|h| h.grant.not_after().0 < g.not_after().0) {
                            let keep = HeldGrant {
                                grant: g,
                                cursor,
                                picked,
                            };
                            self.put_item(ItemKind::Grant, &id, 0, &keep.encode())?;
                        }
                        report.grants += 1;
                    }
                    BundleItem::Token(t) => tokens.push(t),
                    BundleItem::Hold(h) => self.carry_hold(&h, &mut report.timer_items)?,
                    BundleItem::CheckIn(c) => {
                        self.carry_check_in(&c, &mut report.timer_items)?;
                    }
                    BundleItem::Receipt(r) => {
                        if self.accept_receipt(&r, &trusted)? {
                            report.receipts_accepted += 1;
                        } else {
                            report.receipts_ignored += 1;
                        }
                    }
                }
            }
            report.tokens = self.add_tokens(&tokens)?;
            Ok(())
        })?;
        if report.directory.is_some() {
            crate::decoy::after_directory_kept(self)?;
        }
        Ok(report)
    }

    /// Files a receipt carried back for one of this profile's envelopes.
    fn accept_receipt(&self, receipt: &Receipt, relay_keys: &[VerifyingKey]) -> Result<bool> {
        let id = receipt.envelope_id.0;
        let Some((_, bytes)) = self.get_item(ItemKind::Outgoing, &id)? else {
            return Ok(false);
        };
        let out: StoredOutgoing = decode(&bytes, "outbox")?;
        let env = Envelope::from_bytes(out.bytes)?;
        match self.file_receipt(&env, &out.report, receipt, relay_keys) {
            Ok(()) => Ok(true),
            Err(CoreError::Protocol(_)) | Err(CoreError::Invalid(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Counts of what this profile is carrying.
    pub fn carrying(&self) -> Result<Carrying> {
        Ok(Carrying {
            waiting: self.item_ids(ItemKind::Carried, Some(WAITING))?.len(),
            delivered: self.item_ids(ItemKind::Carried, Some(DELIVERED))?.len(),
            replies: self.item_ids(ItemKind::Carried, Some(FOR_PICKUP))?.len(),
            grants: self.item_ids(ItemKind::Grant, None)?.len(),
            refused: self.item_ids(ItemKind::Carried, Some(REFUSED))?.len(),
            timer_items: self.carried_timer_items()?,
        })
    }

    /// Fetches, with the grants people gave, the sealed replies waiting in
    /// their reply mailboxes, to hand back in the return bundle, within the
    /// default budget ([`Profile::fetch_granted_replies_within`]). Returns
    /// how many new replies were fetched.
    pub async fn fetch_granted_replies(
        &self,
        relay: &RelayClient,
        now: impl Fn() -> UnixTime,
    ) -> Result<usize> {
        Ok(self
            .fetch_granted_replies_within(relay, now, ReadBudget::default())
            .await?
            .new)
    }

    /// Fetches with the grants held, spending at most `budget`. Each grant
    /// keeps its cursor, so a later sync goes on where this one stopped
    /// (a grant cannot acknowledge: the relay keeps what she read until the
    /// person acknowledges it herself). A grant stops being fetched once
    /// [`MAX_PICKUP_PER_GRANT`] bytes came from it; expired grants are
    /// dropped.
    pub async fn fetch_granted_replies_within(
        &self,
        relay: &RelayClient,
        now: impl Fn() -> UnixTime,
        mut budget: ReadBudget,
    ) -> Result<GrantedFetch> {
        let started = now();
        let mut held = Vec::new();
        let mut fetched = GrantedFetch::default();
        for id in self.item_ids(ItemKind::Grant, None)? {
            let Some((_, bytes)) = self.get_item(ItemKind::Grant, &id)? else {
                continue;
            };
            match HeldGrant::decode(&bytes) {
                Ok(h) if h.grant.not_after().0 >= started.0 => {
                    if h.picked >= MAX_PICKUP_PER_GRANT {
                        fetched.full += 1;
                    } else {
                        held.push((id, h));
                    }
                }
                _ => {
                    self.delete_item(ItemKind::Grant, &id)?;
                }
            }
        }
        let auths: Vec<FetchAuth<'_>> = held
            .iter()
            .map(|(_, h)| FetchAuth::Grant(&h.grant))
            .collect();
        let mut cursors: Vec<u64> = held.iter().map(|(_, h)| h.cursor).collect();
        let mut picked = vec![0u64; held.len()];
        let mut entropy = amparo_protocol::entropy::SystemEntropy::new();
        let mut new = 0;
        // Read only: a grant cannot acknowledge; the survivor does that
        // herself when she has signal.
        let mut file = |i: usize, items: &[(u64, Envelope)]| -> Result<Vec<EnvelopeId>> {
            // Counted only once the page is stored: a page that fails is
            // read again (the sweep keeps the grant's cursor before it).
            let (stored, bytes) = self.in_transaction(|| {
                let (mut stored, mut bytes) = (0, 0u64);
                for (_, env) in items {
                    let eid = env.id().0;
                    if self.get_item(ItemKind::Carried, &eid)?.is_none() {
                        self.put_item(
                            ItemKind::Carried,
                            &eid,
                            FOR_PICKUP,
                            &encode(&Carried {
                                envelope: env.as_bytes().to_vec(),
                                receipt: None,
                            })?,
                        )?;
                        stored += 1;
                    }
                    bytes = bytes.saturating_add(env.as_bytes().len() as u64);
                }
                Ok((stored, bytes))
            })?;
            new += stored;
            if let Some(p) = picked.get_mut(i) {
                *p = p.saturating_add(bytes);
            }
            Ok(Vec::new())
        };
        let drained = crate::sweep::drain(
            relay,
            &auths,
            &mut cursors,
            &mut budget,
            &now,
            &mut entropy,
            &mut file,
            &mut |_, _| {},
        )
        .await;
        // Where each grant got to, kept even if the sweep was cut or a page
        // failed to file: a cursor moves only past pages stored, so what was
        // filed is held, and fetching it again would only cost data.
        self.in_transaction(|| {
            for (((id, h), cursor), more) in held.iter().zip(&cursors).zip(&picked) {
                if *cursor != h.cursor || *more > 0 {
                    let keep = HeldGrant {
                        grant: h.grant.clone(),
                        cursor: *cursor,
                        picked: h.picked.saturating_add(*more),
                    };
                    self.put_item(ItemKind::Grant, id, 0, &keep.encode())?;
                }
            }
            Ok(())
        })?;
        fetched.new = new;
        fetched.bytes = budget.spent();
        fetched.left = !drained?;
        Ok(fetched)
    }

    /// Uploads every carried envelope still waiting; keeps each relay receipt
    /// (verified) to carry back. Returns how many were delivered.
    pub async fn upload_carried(
        &self,
        relay: &RelayClient,
        relay_keys: &[VerifyingKey],
    ) -> Result<usize> {
        Ok(self
            .upload_carried_with_progress(relay, relay_keys, &mut |_| {})
            .await?
            .delivered)
    }

    /// Uploads every carried envelope still waiting, reporting progress after
    /// each request (as [`SyncProgress::Upload`]). An envelope the relay
    /// cannot take now stays carried for a later sync, and after such a
    /// refusal nothing is sent that would be refused too ([`Refusals`]); one
    /// refused for good is set aside and not sent again.
    pub async fn upload_carried_with_progress(
        &self,
        relay: &RelayClient,
        relay_keys: &[VerifyingKey],
        progress: &mut dyn FnMut(SyncProgress),
    ) -> Result<CarriedUpload> {
        let admission = self.admission_for(relay_keys)?;
        let paying = relay.paying_with(admission.clone());
        let done = self
            .upload_carried_paying(&paying, relay_keys, progress)
            .await;
        // Then the timers' holds and check-ins she carries.
        let timers = match &done {
            Ok(_) => self.send_carried_timers(&paying).await,
            Err(_) => Ok(0),
        };
        let paid = self.settle_admission(&admission)?;
        let mut summary = done?;
        summary.timer_items = timers?;
        summary.paid = paid;
        Ok(summary)
    }

    async fn upload_carried_paying(
        &self,
        relay: &RelayClient,
        relay_keys: &[VerifyingKey],
        progress: &mut dyn FnMut(SyncProgress),
    ) -> Result<CarriedUpload> {
        let waiting = self.item_ids(ItemKind::Carried, Some(WAITING))?;
        let total = waiting.len();
        let (mut done, mut bytes) = (0, 0);
        let mut summary = CarriedUpload::default();
        let mut refusals = Refusals::default();
        let mut pacer = UploadPacer::new();
        let mut rest = waiting.as_slice();
        while !rest.is_empty() {
            let mut envs = Vec::new();
            let mut batch_bytes = 0;
            while let Some((id, tail)) = rest.split_first() {
                if !envs.is_empty() && pacer.full(envs.len(), batch_bytes) {
                    break;
                }
                rest = tail;
                let (_, b) = self
                    .get_item(ItemKind::Carried, id)?
                    .ok_or(CoreError::Corrupt("carried"))?;
                let c: Carried = decode(&b, "carried")?;
                let env = Envelope::from_bytes(c.envelope)?;
                if refusals.holds(&env.mailbox()) {
                    // The relay said it would refuse it: it waits, unsent.
                    summary.postponed += 1;
                    done += 1;
                    continue;
                }
                batch_bytes += env.as_bytes().len();
                envs.push(env);
            }
            if envs.is_empty() {
                progress(SyncProgress::Upload { done, total, bytes });
                continue;
            }
            let results = pacer.send(relay, &envs, batch_bytes, progress).await?;
            done += envs.len();
            bytes += batch_bytes;
            progress(SyncProgress::Upload { done, total, bytes });
            self.in_transaction(|| {
                for (env, result) in envs.into_iter().zip(results) {
                    let receipt = match result {
                        EnvelopeResult::Accepted(receipt) => receipt,
                        EnvelopeResult::Rejected(code) if code.is_transient() => {
                            // Full or busy: it stays carried, as it was.
                            refusals.note(code, env.mailbox());
                            summary.postponed += 1;
                            continue;
                        }
                        EnvelopeResult::Rejected(_) => {
                            self.put_item(
                                ItemKind::Carried,
                                &env.id().0,
                                REFUSED,
                                &encode(&Carried {
                                    envelope: env.into_bytes(),
                                    receipt: None,
                                })?,
                            )?;
                            summary.refused += 1;
                            continue;
                        }
                    };
                    if receipt.envelope_id != env.id()
                        || !relay_keys.iter().any(|k| receipt.verify(k).is_ok())
                    {
                        // A relay that lies keeps the envelope here, to try again.
                        continue;
                    }
                    self.put_item(
                        ItemKind::Carried,
                        &env.id().0,
                        DELIVERED,
                        &encode(&Carried {
                            envelope: env.into_bytes(),
                            receipt: Some(receipt.encode().to_vec()),
                        })?,
                    )?;
                    summary.delivered += 1;
                }
                Ok(())
            })?;
        }
        summary.retry_after_secs = refusals.retry_after_secs();
        Ok(summary)
    }

    /// The bundle a facilitator hands back: every receipt it holds and the
    /// latest directory. Any phone may import it: a receipt only means
    /// something to the phone whose envelope it names.
    pub fn export_return_bundle(&self) -> Result<Vec<u8>> {
        self.export_return_bundle_with_tokens(0)
    }

    /// [`Profile::export_return_bundle`], handing on up to `tokens` of this
    /// profile's admission tokens in it (they leave this profile: a token
    /// spends once, so give each person a bundle of her own).
    pub fn export_return_bundle_with_tokens(&self, tokens: usize) -> Result<Vec<u8>> {
        let mut enc = BundleEncoder::new();
        let handed = self.take_tokens(tokens)?;
        for t in &handed {
            enc.token(t)?;
        }
        if let Some(d) = self.directory_bytes()? {
            enc.directory(&d)?;
        }
        for id in self.item_ids(ItemKind::Carried, Some(FOR_PICKUP))? {
            let (_, b) = self
                .get_item(ItemKind::Carried, &id)?
                .ok_or(CoreError::Corrupt("carried"))?;
            let c: Carried = decode(&b, "carried")?;
            enc.envelope(&Envelope::from_bytes(c.envelope)?)?;
        }
        for id in self.item_ids(ItemKind::Carried, Some(DELIVERED))? {
            let (_, b) = self
                .get_item(ItemKind::Carried, &id)?
                .ok_or(CoreError::Corrupt("carried"))?;
            let c: Carried = decode(&b, "carried")?;
            if let Some(r) = c.receipt {
                enc.receipt(&Receipt::decode(&r)?)?;
            }
        }
        Ok(enc.finish())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use amparo_protocol::entropy::DangerousSeededEntropy;
    use amparo_protocol::keys::RecipientKeys;

    use super::*;
    use crate::relay::RelayConfig;
    use crate::store::KdfParams;
    use crate::sweep::tests::{fake, junk};

    #[tokio::test]
    async fn a_grant_skips_no_page_when_filing_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::create(dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let mut e = DangerousSeededEntropy::new(b"grant");
        let hers = RecipientKeys::generate(&mut e).unwrap();
        let grant = FetchGrant::sign(hers.signing(), UnixTime(fake::NOW.0 + 3600));
        let id = grant_item(&grant);
        let held = HeldGrant {
            grant,
            cursor: 0,
            picked: 0,
        };
        p.put_item(ItemKind::Grant, &id, 0, &held.encode()).unwrap();
        let envelopes: Vec<Envelope> = (0..2).map(|i| junk(hers.mailbox(), i, 1086)).collect();
        let mut state = fake::State {
            knows_within: true,
            ..Default::default()
        };
        state.mailboxes.insert(
            hers.mailbox(),
            (1..).zip(envelopes.iter().cloned()).collect(),
        );
        let url = fake::start(Arc::new(Mutex::new(state))).await;
        let relay = RelayClient::new(&RelayConfig::new(url)).unwrap();
        let held = || {
            let (_, bytes) = p.get_item(ItemKind::Grant, &id).unwrap().unwrap();
            let h = HeldGrant::decode(&bytes).unwrap();
            (h.cursor, h.picked)
        };

        // Filing the page fails at its second envelope: under its id the
        // profile holds a carried item it cannot open (damaged on disk).
        let db = rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        let second = envelopes[1].id().0.to_vec();
        db.execute(
            "INSERT INTO items (id, kind, state, sealed) VALUES (?1, ?2, 0, ?3)",
            rusqlite::params![second, ItemKind::Carried as u8, vec![0u8; 48]],
        )
        .unwrap();
        let failed = p
            .fetch_granted_replies_within(&relay, || fake::NOW, ReadBudget::default())
            .await;
        assert!(failed.is_err());
        assert_eq!(
            held(),
            (0, 0),
            "cursor or bytes picked moved for a page not stored"
        );
        // Nothing of the page is held (the damaged item does not open).
        assert!(p.item_ids(ItemKind::Carried, None).unwrap().is_empty());

        // Once filing works, the next fetch picks the page up.
        db.execute("DELETE FROM items WHERE id = ?1", [second])
            .unwrap();
        let fetched = p
            .fetch_granted_replies_within(&relay, || fake::NOW, ReadBudget::default())
            .await
            .unwrap();
        assert_eq!(fetched.new, 2);
        assert_eq!(held(), (2, 2 * 1086));
    }
}
