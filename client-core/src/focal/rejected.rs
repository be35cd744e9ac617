//! What a focal point keeps of envelopes that do not open.
//!
//! Anyone who knows a focal point's mailbox id can fill it with well-formed
//! envelopes that do not open. Keeping each whole, forever, let thirty
//! seconds of junk grow a profile past 2 GB. So each one that cannot be
//! filed costs at most a small record (envelope id, reason, size, hour), and
//! its bytes are kept only while the bytes kept stay within a budget; past a
//! number of records, only the count by reason grows, in one item (the
//! tally). Both limits are the profile's to set ([`RejectedLimits`]); the
//! defaults keep a profile within about 9 MiB of junk whatever arrives.
//!
//! Items: each record is an [`ItemKind::Rejected`] item in state 0 whose id
//! is the envelope id; the tally is the one in state 1. (States 2 and 3 of
//! that kind are her follow-ups waiting for their reports, a store of its
//! own: [`super::orphans`].) A record is sealed
//! bytes like every item: a tag byte, the reason, the hour, the size, a
//! short detail sentence and then, if kept, the envelope's own bytes (raw,
//! not JSON). Profiles made before kept JSON (`{"reason", "envelope"}` with
//! the bytes as numbers); those are read as they are and brought into this
//! form, within the limits, the first time the tally is needed.

use std::collections::BTreeMap;

use amparo_protocol::ProtocolError;
use amparo_protocol::envelope::{Envelope, EnvelopeId};
use serde::{Deserialize, Serialize};

use super::FetchSummary;
use crate::store::{ItemKind, Profile};
use crate::survivor::{decode, encode};
use crate::{CoreError, Result};

/// Why an envelope could not be filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// It does not open with this focal point's keys: sealed to another key
    /// or for another purpose, or altered on the way. A flood of junk is
    /// this.
    DoesNotOpen,
    /// It opened, but what is inside is not a message this focal point can
    /// read (damaged or of an unknown shape).
    Malformed,
    /// A follow-up for a case this focal point does not hold, that could
    /// not be kept waiting for its report (past the bounds of
    /// [`super::orphans`]).
    UnknownCase,
    /// A kind of message only survivors receive (a status update). A focal
    /// point no longer tries to open those (they count as
    /// [`RejectReason::DoesNotOpen`]); profiles from before may hold some.
    NotForFocalPoint,
    /// None of the above (kept from an older profile).
    Other,
}

impl RejectReason {
    /// Every reason, in the order summaries list them.
    pub const ALL: [RejectReason; 5] = [
        RejectReason::DoesNotOpen,
        RejectReason::Malformed,
        RejectReason::UnknownCase,
        RejectReason::NotForFocalPoint,
        RejectReason::Other,
    ];

    /// A stable code for JSON and the phone bindings.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::DoesNotOpen => "does_not_open",
            RejectReason::Malformed => "malformed",
            RejectReason::UnknownCase => "unknown_case",
            RejectReason::NotForFocalPoint => "not_for_focal_point",
            RejectReason::Other => "other",
        }
    }

    fn from_code(code: &str) -> RejectReason {
        Self::ALL
            .into_iter()
            .find(|r| r.code() == code)
            .unwrap_or(RejectReason::Other)
    }

    fn byte(self) -> u8 {
        match self {
            RejectReason::DoesNotOpen => 1,
            RejectReason::Malformed => 2,
            RejectReason::UnknownCase => 3,
            RejectReason::NotForFocalPoint => 4,
            RejectReason::Other => 0,
        }
    }

    fn from_byte(b: u8) -> RejectReason {
        Self::ALL
            .into_iter()
            .find(|r| r.byte() == b)
            .unwrap_or(RejectReason::Other)
    }

    /// The reason for an error from opening an envelope.
    pub(crate) fn of_open_error(e: &CoreError) -> RejectReason {
        match e {
            CoreError::Protocol(
                ProtocolError::OpenFailed
                | ProtocolError::Misaddressed
                | ProtocolError::WeakPublicKey
                | ProtocolError::UnsupportedSuite(_)
                | ProtocolError::UnsupportedVersion { .. },
            ) => RejectReason::DoesNotOpen,
            _ => RejectReason::Malformed,
        }
    }

    /// The reason for a sentence an older profile stored.
    fn of_old_text(text: &str) -> RejectReason {
        let open_failed = ProtocolError::OpenFailed.to_string();
        let misaddressed = ProtocolError::Misaddressed.to_string();
        if text == open_failed || text == misaddressed {
            RejectReason::DoesNotOpen
        } else if text.starts_with("a follow-up for a case") {
            RejectReason::UnknownCase
        } else if text.starts_with("a status update sent to a focal point") {
            RejectReason::NotForFocalPoint
        } else if text.contains("payload") || text.contains("invalid") || text.contains("padding") {
            RejectReason::Malformed
        } else {
            RejectReason::Other
        }
    }
}

/// How much a focal point keeps of envelopes that do not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedLimits {
    /// Most records (envelope id, reason, size, hour) kept; past this only
    /// the counts by reason grow.
    pub max_records: u32,
    /// Most bytes of rejected envelopes kept with their records, in all.
    pub max_bytes: u64,
}

impl RejectedLimits {
    /// 1,000 records and 8 MiB of envelopes: enough to look into what
    /// arrived, small on a phone whatever a flood sends.
    pub const DEFAULT: RejectedLimits = RejectedLimits {
        max_records: 1_000,
        max_bytes: 8 * 1024 * 1024,
    };
    /// The largest number of records a profile may be set to keep.
    pub const MAX_RECORDS: u32 = 100_000;
    /// The largest byte budget a profile may be set to keep (1 GiB).
    pub const MAX_BYTES: u64 = 1 << 30;
}

impl Default for RejectedLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One envelope that could not be filed, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRecord {
    /// The envelope id.
    pub id: EnvelopeId,
    /// Why it was not filed.
    pub reason: RejectReason,
    /// The error's sentence (never content of the envelope).
    pub detail: String,
    /// The envelope's size in bytes.
    pub size: u32,
    /// The hour it was fetched (hours since the epoch); 0 if unknown (kept
    /// by an older version).
    pub hour: u32,
    /// Whether its bytes are kept ([`Profile::rejected_envelope`]).
    pub bytes_kept: bool,
}

/// What the profile holds of envelopes that could not be filed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RejectedSummary {
    /// Every envelope that could not be filed since the last clear.
    pub total: u64,
    /// Counts by reason, largest first: every envelope filed, records kept
    /// or not (an envelope fetched again because its acknowledgement never
    /// reached the relay counts again once records are full).
    pub by_reason: Vec<(RejectReason, u64)>,
    /// How many have a record kept.
    pub records: u64,
    /// Bytes of envelopes kept with their records.
    pub bytes_kept: u64,
    /// First and last hour one arrived (hours since the epoch), if known.
    pub first_hour: Option<u32>,
    /// See `first_hour`.
    pub last_hour: Option<u32>,
    /// A few records of each reason, oldest first.
    pub examples: Vec<RejectedRecord>,
    /// The limits in force.
    pub limits: RejectedLimits,
}

/// The old form, kept by versions before the limits.
#[derive(Deserialize)]
struct StoredRejected {
    reason: String,
    envelope: Vec<u8>,
}

/// First byte of a record in the current form (the old JSON starts `{`).
const RECORD_TAG: u8 = 0xA2;
/// Longest detail sentence kept.
const MAX_DETAIL: usize = 200;
/// Fixed part of a record: tag, reason, hour, size, detail length.
const RECORD_HEAD: usize = 1 + 1 + 4 + 4 + 2;
/// Items handled per transaction when migrating or clearing.
const BATCH: usize = 1_000;

/// Counts of everything rejected since the last clear: one item.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Tally {
    /// Count by reason code.
    #[serde(default)]
    counts: BTreeMap<String, u64>,
    /// Records kept.
    #[serde(default)]
    records: u64,
    /// Envelope bytes kept with them.
    #[serde(default)]
    bytes: u64,
    #[serde(default)]
    first_hour: Option<u32>,
    #[serde(default)]
    last_hour: Option<u32>,
    /// Whether items of the old form have all been brought into this one.
    #[serde(default)]
    migrated: bool,
}

impl Tally {
    fn count(&mut self, reason: RejectReason, hour: u32) {
        *self.counts.entry(reason.code().to_string()).or_insert(0) += 1;
        if hour != 0 {
            self.first_hour = Some(self.first_hour.map_or(hour, |h| h.min(hour)));
            self.last_hour = Some(self.last_hour.map_or(hour, |h| h.max(hour)));
        }
    }

    fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// What one filing run (a page, a bundle) needs to keep rejected envelopes
/// within the limits: the tally, read once and written once per
/// transaction.
pub(crate) struct Keeper {
    tally: Tally,
    limits: RejectedLimits,
    hour: u32,
    dirty: bool,
}

fn encode_record(
    reason: RejectReason,
    detail: &str,
    size: u32,
    hour: u32,
    envelope: Option<&[u8]>,
) -> Vec<u8> {
    let mut cut = detail.len().min(MAX_DETAIL);
    while !detail.is_char_boundary(cut) {
        cut -= 1;
    }
    let detail = detail.get(..cut).unwrap_or("");
    let mut out = Vec::with_capacity(RECORD_HEAD + detail.len() + envelope.map_or(0, <[u8]>::len));
    out.push(RECORD_TAG);
    out.push(reason.byte());
    out.extend_from_slice(&hour.to_be_bytes());
    out.extend_from_slice(&size.to_be_bytes());
    // At most MAX_DETAIL (200) bytes: fits in two bytes.
    out.extend_from_slice(&(detail.len() as u16).to_be_bytes());
    out.extend_from_slice(detail.as_bytes());
    if let Some(bytes) = envelope {
        out.extend_from_slice(bytes);
    }
    out
}

/// A record and its kept bytes (empty if none), from either form.
fn decode_record(id: [u8; 16], value: &[u8]) -> Result<(RejectedRecord, &[u8])> {
    let corrupt = || CoreError::Corrupt("rejected envelope record");
    match value.first() {
        Some(&RECORD_TAG) => {
            let head = value.get(..RECORD_HEAD).ok_or_else(corrupt)?;
            let u32_at = |i: usize| -> Result<u32> {
                let b: [u8; 4] = head
                    .get(i..i + 4)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(corrupt)?;
                Ok(u32::from_be_bytes(b))
            };
            let reason = RejectReason::from_byte(*head.get(1).ok_or_else(corrupt)?);
            let hour = u32_at(2)?;
            let size = u32_at(6)?;
            let len_bytes: [u8; 2] = head
                .get(10..12)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(corrupt)?;
            let detail_end = RECORD_HEAD + usize::from(u16::from_be_bytes(len_bytes));
            let detail = value.get(RECORD_HEAD..detail_end).ok_or_else(corrupt)?;
            let detail = std::str::from_utf8(detail).map_err(|_| corrupt())?;
            let bytes = value.get(detail_end..).ok_or_else(corrupt)?;
            Ok((
                RejectedRecord {
                    id: EnvelopeId(id),
                    reason,
                    detail: detail.to_string(),
                    size,
                    hour,
                    bytes_kept: !bytes.is_empty(),
                },
                bytes,
            ))
        }
        Some(b'{') => {
            // The old form: read as it is (it is brought into the new one
            // when the tally is first needed).
            let old: StoredRejected = decode(value, "rejected")?;
            Ok((
                RejectedRecord {
                    id: EnvelopeId(id),
                    reason: RejectReason::of_old_text(&old.reason),
                    detail: old.reason,
                    size: u32::try_from(old.envelope.len()).unwrap_or(u32::MAX),
                    hour: 0,
                    bytes_kept: !old.envelope.is_empty(),
                },
                &[],
            ))
        }
        _ => Err(corrupt()),
    }
}

impl Profile {
    fn tally_id(&self) -> [u8; 16] {
        self.fixed_id(b"rejected-tally")
    }

    fn limits_id(&self) -> [u8; 16] {
        self.fixed_id(b"rejected-limits")
    }

    fn load_tally(&self) -> Result<Option<Tally>> {
        self.get_item(ItemKind::Rejected, &self.tally_id())?
            .map(|(_, bytes)| decode(&bytes, "rejected tally"))
            .transpose()
    }

    fn save_tally(&self, tally: &Tally) -> Result<()> {
        self.put_item(ItemKind::Rejected, &self.tally_id(), 1, &encode(tally)?)
    }

    /// How much this profile keeps of envelopes that do not open.
    pub fn rejected_limits(&self) -> Result<RejectedLimits> {
        match self.get_item(ItemKind::Settings, &self.limits_id())? {
            Some((_, bytes)) => decode(&bytes, "rejected limits"),
            None => Ok(RejectedLimits::DEFAULT),
        }
    }

    /// Sets how much this profile keeps of envelopes that do not open (at
    /// most [`RejectedLimits::MAX_RECORDS`] records and
    /// [`RejectedLimits::MAX_BYTES`]). What is kept already stays; the new
    /// limits apply to what arrives next.
    pub fn set_rejected_limits(&self, limits: RejectedLimits) -> Result<()> {
        if limits.max_records > RejectedLimits::MAX_RECORDS {
            return Err(CoreError::Invalid(
                "at most 100000 records of unreadable envelopes can be kept",
            ));
        }
        if limits.max_bytes > RejectedLimits::MAX_BYTES {
            return Err(CoreError::Invalid(
                "at most 1 GiB of unreadable envelopes can be kept",
            ));
        }
        self.put_item(ItemKind::Settings, &self.limits_id(), 0, &encode(&limits)?)
    }

    /// The tally, bringing items of the old form into the new one (within
    /// the limits; past them only counted) the first time: in transactions
    /// of [`BATCH`] items, each saving the tally with what it converted, so
    /// an interrupted run goes on where it stopped.
    fn current_tally(&self) -> Result<Tally> {
        let mut tally = match self.load_tally()? {
            Some(t) if t.migrated => return Ok(t),
            Some(t) => t,
            None => Tally::default(),
        };
        let limits = self.rejected_limits()?;
        let ids = self.item_ids(ItemKind::Rejected, Some(0))?;
        let mut deleted = false;
        for batch in ids.chunks(BATCH) {
            self.in_transaction(|| {
                for id in batch {
                    let Some((_, value)) = self.get_item(ItemKind::Rejected, id)? else {
                        continue;
                    };
                    if value.first() != Some(&b'{') {
                        continue;
                    }
                    let old: StoredRejected = decode(&value, "rejected")?;
                    let reason = RejectReason::of_old_text(&old.reason);
                    tally.count(reason, 0);
                    if tally.records < u64::from(limits.max_records) {
                        let size = u32::try_from(old.envelope.len()).unwrap_or(u32::MAX);
                        let keep = tally.bytes + u64::from(size) <= limits.max_bytes;
                        let bytes = keep.then_some(&old.envelope[..]);
                        self.put_item(
                            ItemKind::Rejected,
                            id,
                            0,
                            &encode_record(reason, &old.reason, size, 0, bytes),
                        )?;
                        tally.records += 1;
                        if keep {
                            tally.bytes += u64::from(size);
                        }
                    } else {
                        self.delete_item(ItemKind::Rejected, id)?;
                        deleted = true;
                    }
                }
                self.save_tally(&tally)
            })?;
        }
        tally.migrated = true;
        self.save_tally(&tally)?;
        if deleted {
            self.reclaim_space()?;
        }
        Ok(tally)
    }

    /// Brings items of the old form into the new one if that is not done
    /// yet: call before filing, outside any transaction (it runs its own).
    pub(crate) fn prepare_rejected(&self) -> Result<()> {
        self.current_tally().map(|_| ())
    }

    /// Starts keeping rejected envelopes for a filing run at `hour` (inside
    /// the run's transaction; [`Profile::prepare_rejected`] ran before).
    pub(crate) fn rejected_keeper(&self, hour: u32) -> Result<Keeper> {
        Ok(Keeper {
            tally: self.load_tally()?.unwrap_or_default(),
            limits: self.rejected_limits()?,
            hour,
            dirty: false,
        })
    }

    /// Keeps what the limits allow of an envelope that could not be filed,
    /// and counts it.
    pub(crate) fn keep_rejected(
        &self,
        keeper: &mut Keeper,
        env: &Envelope,
        reason: RejectReason,
        detail: &str,
        summary: &mut FetchSummary,
    ) -> Result<()> {
        let id = env.id();
        let size = u32::try_from(env.as_bytes().len()).unwrap_or(u32::MAX);
        if keeper.tally.records < u64::from(keeper.limits.max_records) {
            // While records are kept, a copy of one already kept (fetched
            // again, or carried too) is known as such.
            if self.get_item(ItemKind::Rejected, &id.0)?.is_some() {
                summary.duplicates += 1;
                return Ok(());
            }
            let keep = keeper.tally.bytes + u64::from(size) <= keeper.limits.max_bytes;
            self.put_item(
                ItemKind::Rejected,
                &id.0,
                0,
                &encode_record(
                    reason,
                    detail,
                    size,
                    keeper.hour,
                    keep.then_some(env.as_bytes()),
                ),
            )?;
            keeper.tally.records += 1;
            if keep {
                keeper.tally.bytes += u64::from(size);
            }
        }
        keeper.tally.count(reason, keeper.hour);
        keeper.dirty = true;
        summary.rejected += 1;
        Ok(())
    }

    /// Writes the tally if this run changed it (inside the run's
    /// transaction).
    pub(crate) fn finish_keeper(&self, keeper: &mut Keeper) -> Result<()> {
        if keeper.dirty {
            self.save_tally(&keeper.tally)?;
            keeper.dirty = false;
        }
        Ok(())
    }

    /// Every record kept of envelopes that could not be filed, oldest
    /// first (at most [`RejectedLimits::max_records`] of them, plus any an
    /// older version kept that were not yet brought into the new form).
    pub fn rejected(&self) -> Result<Vec<RejectedRecord>> {
        self.item_ids(ItemKind::Rejected, Some(0))?
            .into_iter()
            .filter_map(|id| match self.get_item(ItemKind::Rejected, &id) {
                Ok(Some((_, value))) => Some(decode_record(id, &value).map(|(r, _)| r)),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            })
            .collect()
    }

    /// The bytes kept of a rejected envelope, if they were kept.
    pub fn rejected_envelope(&self, id: &EnvelopeId) -> Result<Option<Vec<u8>>> {
        let Some((_, value)) = self.get_item(ItemKind::Rejected, &id.0)? else {
            return Ok(None);
        };
        if value.first() == Some(&b'{') {
            let old: StoredRejected = decode(&value, "rejected")?;
            return Ok(Some(old.envelope));
        }
        let (_, bytes) = decode_record(id.0, &value)?;
        Ok((!bytes.is_empty()).then(|| bytes.to_vec()))
    }

    /// What is held of envelopes that could not be filed: exact counts by
    /// reason, what is kept, and up to `examples` records of each reason.
    pub fn rejected_summary(&self, examples: usize) -> Result<RejectedSummary> {
        let tally = self.current_tally()?;
        let mut by_reason: Vec<(RejectReason, u64)> =
            RejectReason::ALL.into_iter().map(|r| (r, 0)).collect();
        for (code, n) in &tally.counts {
            let reason = RejectReason::from_code(code);
            if let Some(slot) = by_reason.iter_mut().find(|(r, _)| *r == reason) {
                slot.1 += n;
            }
        }
        by_reason.retain(|(_, n)| *n > 0);
        by_reason.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut shown: BTreeMap<RejectReason, usize> = BTreeMap::new();
        let mut out = Vec::new();
        if examples > 0 {
            for record in self.rejected()? {
                let n = shown.entry(record.reason).or_insert(0);
                if *n < examples {
                    *n += 1;
                    out.push(record);
                }
            }
        }
        Ok(RejectedSummary {
            total: tally.total(),
            by_reason,
            records: tally.records,
            bytes_kept: tally.bytes,
            first_hour: tally.first_hour,
            last_hour: tally.last_hour,
            examples: out,
            limits: self.rejected_limits()?,
        })
    }

    /// Forgets every envelope that could not be filed: records, kept bytes
    /// and counts (the limits stay). Returns how many were counted. Space
    /// the profile no longer needs is given back to the phone.
    pub fn clear_rejected(&self) -> Result<u64> {
        // Records (state 0) and the tally (state 1); her follow-ups waiting
        // for their reports ([`super::orphans`]) are not rejected and stay.
        let mut ids = self.item_ids(ItemKind::Rejected, Some(0))?;
        ids.extend(self.item_ids(ItemKind::Rejected, Some(1))?);
        let before = match self.load_tally()? {
            Some(t) if t.migrated => t.total(),
            // Items of the old form are not counted in the tally yet: each is
            // one envelope (no need to read the JSON of a buried profile).
            t => {
                let mut old = 0;
                for id in &ids {
                    if let Some((0, value)) = self.get_item(ItemKind::Rejected, id)?
                        && value.first() == Some(&b'{')
                    {
                        old += 1;
                    }
                }
                t.map_or(0, |t| t.total()) + old
            }
        };
        for batch in ids.chunks(BATCH) {
            self.in_transaction(|| {
                for id in batch {
                    self.delete_item(ItemKind::Rejected, id)?;
                }
                Ok(())
            })?;
        }
        self.save_tally(&Tally {
            migrated: true,
            ..Tally::default()
        })?;
        self.reclaim_space()?;
        Ok(before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amparo_protocol::UnixTime;
    use amparo_protocol::entropy::DangerousSeededEntropy;
    use amparo_protocol::envelope::{CIPHERTEXT_OFFSET, Purpose};
    use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
    use amparo_protocol::padding::InnerHeader;
    use amparo_protocol::payload::{CaseStatus, Payload, Reply, StatusUpdate};

    use crate::store::KdfParams;

    fn focal_profile() -> (tempfile::TempDir, Profile, RecipientPublic) {
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::create(dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let public = p.create_focal_identity().unwrap();
        (dir, p, public)
    }

    /// `n` distinct envelopes for `to`'s mailbox sealed to another key.
    fn junk(to: &RecipientPublic, n: usize, e: &mut DangerousSeededEntropy) -> Vec<Envelope> {
        let other = RecipientKeys::generate(e).unwrap();
        let forged = RecipientPublic {
            sealing_key: other.public().sealing_key,
            signing_key: to.signing_key,
        };
        let h = InnerHeader::new(e, UnixTime(3600 * 500_000)).unwrap();
        let template = Envelope::seal(&forged, Purpose::Report, &h, b"{}", e)
            .unwrap()
            .into_bytes();
        (0..n as u64)
            .map(|i| {
                let mut b = template.clone();
                b[CIPHERTEXT_OFFSET..CIPHERTEXT_OFFSET + 8].copy_from_slice(&i.to_be_bytes());
                Envelope::from_bytes(b).unwrap()
            })
            .collect()
    }

    fn sealed(to: &RecipientPublic, purpose: Purpose, body: &[u8]) -> Envelope {
        let mut e = DangerousSeededEntropy::new(body);
        let h = InnerHeader::new(&mut e, UnixTime(3600 * 500_000)).unwrap();
        Envelope::seal(to, purpose, &h, body, &mut e).unwrap()
    }

    fn count_of(s: &RejectedSummary, r: RejectReason) -> u64 {
        s.by_reason
            .iter()
            .find(|(x, _)| *x == r)
            .map_or(0, |(_, n)| *n)
    }

    #[test]
    fn records_and_bytes_stay_within_limits_and_counts_are_exact() {
        let (_dir, p, public) = focal_profile();
        let mut e = DangerousSeededEntropy::new(b"limits");
        let flood = junk(&public, 60, &mut e);
        let size = flood[0].as_bytes().len() as u64;
        p.set_rejected_limits(RejectedLimits {
            max_records: 10,
            max_bytes: 3 * size + size / 2,
        })
        .unwrap();
        // Other reasons: a report whose content does not parse, and a status
        // update (which a focal point does not even try to open). Her
        // follow-up on a case not held waits for its report instead: not
        // rejected, not counted here.
        let follow_up = Reply {
            v: 1,
            report_id: [9; 16],
            text: "hola".into(),
            language: None,
            stamp: Default::default(),
        };
        let status = StatusUpdate {
            v: 1,
            report_id: [9; 16],
            status: CaseStatus::Closed,
            message: None,
            referred_to: None,
            stamp: Default::default(),
        };
        let others = [
            sealed(&public, Purpose::Reply, &follow_up.to_json().unwrap()),
            sealed(&public, Purpose::Status, &status.to_json().unwrap()),
            sealed(&public, Purpose::Report, b"not json"),
        ];
        // In pages, as a fetch files them: the limits hold across pages.
        let mut rejected = 0;
        for page in flood[..25].chunks(7) {
            rejected += p.file_envelopes(page).unwrap().rejected;
        }
        rejected += p.file_envelopes(&others).unwrap().rejected;
        rejected += p.file_envelopes(&flood[25..]).unwrap().rejected;
        assert_eq!(rejected, 62);
        assert_eq!(p.waiting_follow_ups().unwrap().follow_ups, 1);

        let s = p.rejected_summary(2).unwrap();
        assert_eq!(s.total, 62);
        assert_eq!(count_of(&s, RejectReason::DoesNotOpen), 61);
        assert_eq!(count_of(&s, RejectReason::UnknownCase), 0);
        assert_eq!(count_of(&s, RejectReason::Malformed), 1);
        assert_eq!(s.by_reason.len(), 2);
        assert_eq!(s.by_reason[0], (RejectReason::DoesNotOpen, 61));
        assert_eq!(s.records, 10);
        assert_eq!(s.bytes_kept, 3 * size);
        assert_eq!(s.first_hour, s.last_hour);
        assert!(s.first_hour.is_some());
        // Two examples of each reason that has a record: the first ten
        // records were 10 junk envelopes.
        assert_eq!(s.examples.len(), 2);
        let records = p.rejected().unwrap();
        assert_eq!(records.len(), 10);
        assert_eq!(records.iter().filter(|r| r.bytes_kept).count(), 3);
        assert!(records.iter().all(|r| r.size as u64 == size && r.hour > 0));
        assert_eq!(
            p.rejected_envelope(&records[0].id).unwrap().as_deref(),
            Some(flood[0].as_bytes())
        );
        assert_eq!(p.rejected_envelope(&records[9].id).unwrap(), None);
        // What is kept on disk: ten records and the tally, whatever came.
        let records = p.item_ids(ItemKind::Rejected, Some(0)).unwrap().len();
        let tally = p.item_ids(ItemKind::Rejected, Some(1)).unwrap().len();
        assert_eq!((records, tally), (10, 1));
    }

    #[test]
    fn a_copy_of_a_kept_envelope_is_a_duplicate() {
        let (_dir, p, public) = focal_profile();
        let mut e = DangerousSeededEntropy::new(b"copies");
        let flood = junk(&public, 3, &mut e);
        assert_eq!(p.file_envelopes(&flood).unwrap().rejected, 3);
        let again = p.file_envelopes(&flood).unwrap();
        assert_eq!((again.rejected, again.duplicates), (0, 3));
        assert_eq!(p.rejected_summary(0).unwrap().total, 3);
    }

    #[test]
    fn clear_forgets_records_bytes_and_counts_but_not_the_limits() {
        let (_dir, p, public) = focal_profile();
        let mut e = DangerousSeededEntropy::new(b"clear");
        let limits = RejectedLimits {
            max_records: 5,
            max_bytes: 1 << 20,
        };
        p.set_rejected_limits(limits).unwrap();
        p.file_envelopes(&junk(&public, 12, &mut e)).unwrap();
        assert_eq!(p.clear_rejected().unwrap(), 12);
        let s = p.rejected_summary(3).unwrap();
        assert_eq!((s.total, s.records, s.bytes_kept), (0, 0, 0));
        assert!(s.by_reason.is_empty() && s.examples.is_empty());
        assert!(p.rejected().unwrap().is_empty());
        assert_eq!(p.rejected_limits().unwrap(), limits);
        // Counting starts again, with room for records again.
        p.file_envelopes(&junk(&public, 7, &mut e)).unwrap();
        let s = p.rejected_summary(0).unwrap();
        assert_eq!((s.total, s.records), (7, 5));
        assert_eq!(p.clear_rejected().unwrap(), 7);
        assert_eq!(p.clear_rejected().unwrap(), 0);
    }

    #[test]
    fn limits_out_of_range_are_refused() {
        let (_dir, p, _) = focal_profile();
        assert_eq!(p.rejected_limits().unwrap(), RejectedLimits::DEFAULT);
        for bad in [
            RejectedLimits {
                max_records: RejectedLimits::MAX_RECORDS + 1,
                max_bytes: 0,
            },
            RejectedLimits {
                max_records: 0,
                max_bytes: RejectedLimits::MAX_BYTES + 1,
            },
        ] {
            assert!(p.set_rejected_limits(bad).is_err());
        }
        // Zero and zero: only counts.
        let only_counts = RejectedLimits {
            max_records: 0,
            max_bytes: 0,
        };
        p.set_rejected_limits(only_counts).unwrap();
        let public = p.focal_public().unwrap();
        let mut e = DangerousSeededEntropy::new(b"zero");
        p.file_envelopes(&junk(&public, 4, &mut e)).unwrap();
        let s = p.rejected_summary(3).unwrap();
        assert_eq!((s.total, s.records, s.bytes_kept), (4, 0, 0));
        assert!(p.rejected().unwrap().is_empty());
    }

    /// Stores `envelopes` as versions before the limits did: JSON with the
    /// bytes as an array of numbers, one item per envelope, no tally; the
    /// last one as a status update, the others as junk.
    fn write_old(p: &Profile, envelopes: &[Envelope]) {
        let open_failed = ProtocolError::OpenFailed.to_string();
        for (i, env) in envelopes.iter().enumerate() {
            let reason = if i + 1 == envelopes.len() {
                "a status update sent to a focal point"
            } else {
                open_failed.as_str()
            };
            let json = serde_json::to_vec(&serde_json::json!({
                "reason": reason,
                "envelope": env.as_bytes(),
            }))
            .unwrap();
            p.put_item(ItemKind::Rejected, &env.id().0, 0, &json)
                .unwrap();
        }
    }

    #[test]
    fn a_fetch_right_after_the_upgrade_counts_the_old_items_too() {
        let (_dir, p, public) = focal_profile();
        let mut e = DangerousSeededEntropy::new(b"old first");
        write_old(&p, &junk(&public, 15, &mut e));
        p.set_rejected_limits(RejectedLimits {
            max_records: 10,
            max_bytes: 1 << 20,
        })
        .unwrap();
        // Filing runs in a transaction: the old items are brought in first.
        assert_eq!(
            p.file_envelopes(&junk(&public, 2, &mut e))
                .unwrap()
                .rejected,
            2
        );
        let s = p.rejected_summary(0).unwrap();
        assert_eq!(s.total, 17);
        assert_eq!(count_of(&s, RejectReason::DoesNotOpen), 16);
        assert_eq!(count_of(&s, RejectReason::NotForFocalPoint), 1);
        assert_eq!(s.records, 10);
        assert_eq!(p.rejected().unwrap().len(), 10);
    }

    #[test]
    fn items_kept_by_older_versions_still_read_and_are_brought_within_limits() {
        let (_dir, p, public) = focal_profile();
        let mut e = DangerousSeededEntropy::new(b"old");
        let old = junk(&public, 15, &mut e);
        let open_failed = ProtocolError::OpenFailed.to_string();
        write_old(&p, &old);
        let size = old[0].as_bytes().len() as u64;
        p.set_rejected_limits(RejectedLimits {
            max_records: 10,
            max_bytes: 4 * size,
        })
        .unwrap();
        // Read as they are.
        let listed = p.rejected().unwrap();
        assert_eq!(listed.len(), 15);
        assert_eq!(listed[0].reason, RejectReason::DoesNotOpen);
        assert_eq!(listed[0].detail, open_failed);
        assert_eq!(listed[14].reason, RejectReason::NotForFocalPoint);
        assert_eq!(
            p.rejected_envelope(&old[3].id()).unwrap().as_deref(),
            Some(old[3].as_bytes())
        );
        // The first summary brings them into the new form within the limits:
        // every one counted, ten records kept, four with their bytes.
        let s = p.rejected_summary(1).unwrap();
        assert_eq!(s.total, 15);
        assert_eq!(count_of(&s, RejectReason::DoesNotOpen), 14);
        assert_eq!(count_of(&s, RejectReason::NotForFocalPoint), 1);
        assert_eq!((s.records, s.bytes_kept), (10, 4 * size));
        let listed = p.rejected().unwrap();
        assert_eq!(listed.len(), 10);
        assert_eq!(listed.iter().filter(|r| r.bytes_kept).count(), 4);
        assert_eq!(
            p.rejected_envelope(&old[3].id()).unwrap().as_deref(),
            Some(old[3].as_bytes())
        );
        assert_eq!(p.rejected_envelope(&old[12].id()).unwrap(), None);
        // New arrivals add to the counts; records are full.
        p.file_envelopes(&junk(&public, 2, &mut e)).unwrap();
        let s = p.rejected_summary(0).unwrap();
        assert_eq!((s.total, s.records), (17, 10));
    }

    #[test]
    fn clearing_a_profile_buried_before_the_limits_gives_the_space_back() {
        let (dir, p, public) = focal_profile();
        let mut e = DangerousSeededEntropy::new(b"buried");
        // About 2.5 MiB of old items (each 1 KiB envelope took ~3.7 KiB;
        // unit tests reclaim space past 1 MiB free, phones past 8 MiB).
        let old = junk(&public, 700, &mut e);
        p.in_transaction(|| {
            for env in &old {
                let numbers: Vec<String> = env.as_bytes().iter().map(u8::to_string).collect();
                let json = format!("{{\"reason\":\"x\",\"envelope\":[{}]}}", numbers.join(","));
                p.put_item(ItemKind::Rejected, &env.id().0, 0, json.as_bytes())?;
            }
            Ok(())
        })
        .unwrap();
        let db = dir.path().join(crate::store::DB_FILE);
        let size = || std::fs::metadata(&db).map_or(0, |m| m.len());
        drop(p);
        assert!(size() > 2 << 20, "{}", size());
        let p = Profile::open(dir.path(), "1").unwrap();
        assert_eq!(p.clear_rejected().unwrap(), 700);
        drop(p);
        assert!(size() < 256 << 10, "{}", size());
        let p = Profile::open(dir.path(), "1").unwrap();
        assert!(p.focal_public().is_ok());
        assert_eq!(p.rejected_summary(1).unwrap(), RejectedSummary::default());
    }

    #[test]
    fn records_round_trip_and_damage_is_an_error() {
        let long = "é".repeat(300);
        for (detail, bytes) in [
            ("the envelope cannot be opened", Some(&[1u8, 2, 3][..])),
            (long.as_str(), None),
            ("", Some(&[][..])),
        ] {
            let v = encode_record(RejectReason::Malformed, detail, 1086, 491_000, bytes);
            let (r, kept) = decode_record([7; 16], &v).unwrap();
            assert_eq!(r.reason, RejectReason::Malformed);
            assert_eq!((r.size, r.hour), (1086, 491_000));
            assert!(r.detail.len() <= MAX_DETAIL && detail.starts_with(&r.detail));
            assert_eq!(kept, bytes.unwrap_or(&[]));
            assert_eq!(r.bytes_kept, !kept.is_empty());
            // Every cut of a record is refused or read, never a panic.
            for cut in 0..v.len() {
                let _ = decode_record([7; 16], &v[..cut]);
            }
        }
        assert!(decode_record([7; 16], &[]).is_err());
        assert!(decode_record([7; 16], &[RECORD_TAG, 1, 0]).is_err());
        assert!(decode_record([7; 16], b"xyz").is_err());
    }

    #[test]
    fn reasons_have_stable_codes_and_bytes() {
        for r in RejectReason::ALL {
            assert_eq!(RejectReason::from_code(r.code()), r);
            assert_eq!(RejectReason::from_byte(r.byte()), r);
        }
        assert_eq!(RejectReason::from_code("new"), RejectReason::Other);
        assert_eq!(
            RejectReason::of_old_text(&ProtocolError::OpenFailed.to_string()),
            RejectReason::DoesNotOpen
        );
        assert_eq!(
            RejectReason::of_old_text("a follow-up for a case this focal point does not hold"),
            RejectReason::UnknownCase
        );
    }
}
