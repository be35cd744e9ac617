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

use amparo_protocol::bundle::{self, BundleEncoder, BundleItem};
use amparo_protocol::envelope::Envelope;
use amparo_protocol::primitives::ed25519::VerifyingKey;
use amparo_protocol::receipt::Receipt;
use amparo_protocol::wire::EnvelopeResult;
use serde::{Deserialize, Serialize};

use crate::relay::RelayClient;
use crate::store::{ItemKind, Profile};
use crate::survivor::{QUEUED, StoredOutgoing, SyncProgress, decode, encode};
use crate::{CoreError, Result};

/// Carried-envelope states.
const WAITING: u8 = 0;
const DELIVERED: u8 = 1;

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
}

/// What the facilitator is carrying (counts and states only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carrying {
    /// Waiting to be uploaded.
    pub waiting: usize,
    /// Uploaded, with a receipt to bring back.
    pub delivered: usize,
}

impl Profile {
    /// The outbox as a bundle, with the directory held (if any) so the
    /// facilitator can pass it on.
    pub fn export_outbox_bundle(&self) -> Result<Vec<u8>> {
        let mut enc = BundleEncoder::new();
        for id in self.item_ids(ItemKind::Outgoing, Some(QUEUED))? {
            let (_, bytes) = self
                .get_item(ItemKind::Outgoing, &id)?
                .ok_or(CoreError::Corrupt("outbox"))?;
            let out: StoredOutgoing = decode(&bytes, "outbox")?;
            enc.envelope(&Envelope::from_bytes(out.bytes)?)?;
        }
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
        let mut trusted = relay_keys.to_vec();
        if let Some(dir) = self.directory(coordinator)? {
            trusted.extend(dir.relays.iter().map(|r| VerifyingKey(r.receipt_key)));
        }
        self.in_transaction(|| {
            for item in items {
                match item {
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
                        if let Ok(v) = self.import_directory(&d, coordinator, None) {
                            report.directory = Some(v);
                            if let Some(dir) = self.directory(coordinator)? {
                                trusted
                                    .extend(dir.relays.iter().map(|r| VerifyingKey(r.receipt_key)));
                            }
                        }
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
            Ok(())
        })?;
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
        })
    }

    /// Uploads every carried envelope still waiting; keeps each relay receipt
    /// (verified) to carry back. Returns how many were delivered.
    pub async fn upload_carried(
        &self,
        relay: &RelayClient,
        relay_keys: &[VerifyingKey],
    ) -> Result<usize> {
        self.upload_carried_with_progress(relay, relay_keys, &mut |_| {})
            .await
    }

    /// [`Profile::upload_carried`], reporting progress after each request
    /// (as [`SyncProgress::Upload`]).
    pub async fn upload_carried_with_progress(
        &self,
        relay: &RelayClient,
        relay_keys: &[VerifyingKey],
        progress: &mut dyn FnMut(SyncProgress),
    ) -> Result<usize> {
        let waiting = self.item_ids(ItemKind::Carried, Some(WAITING))?;
        let total = waiting.len();
        let (mut done, mut bytes) = (0, 0);
        let mut delivered = 0;
        for ids in waiting.chunks(64) {
            let mut envs = Vec::with_capacity(ids.len());
            for id in ids {
                let (_, b) = self
                    .get_item(ItemKind::Carried, id)?
                    .ok_or(CoreError::Corrupt("carried"))?;
                let c: Carried = decode(&b, "carried")?;
                envs.push(Envelope::from_bytes(c.envelope)?);
            }
            let results = relay.upload(&envs).await?;
            done += envs.len();
            bytes += envs.iter().map(|e| e.as_bytes().len()).sum::<usize>();
            progress(SyncProgress::Upload { done, total, bytes });
            for (env, result) in envs.into_iter().zip(results) {
                let EnvelopeResult::Accepted(receipt) = result else {
                    continue;
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
                delivered += 1;
            }
        }
        Ok(delivered)
    }

    /// The bundle a facilitator hands back: every receipt it holds and the
    /// latest directory. Any phone may import it: a receipt only means
    /// something to the phone whose envelope it names.
    pub fn export_return_bundle(&self) -> Result<Vec<u8>> {
        let mut enc = BundleEncoder::new();
        if let Some(d) = self.directory_bytes()? {
            enc.directory(&d)?;
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
