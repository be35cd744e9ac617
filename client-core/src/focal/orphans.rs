//! Her follow-ups that arrive before the report they belong to.
//!
//! A follow-up (a [`Reply`] she seals to the focal point) can reach it
//! before her report does, in normal use: she writes a report and a
//! follow-up offline and both go in one sync (the relay orders a mailbox by
//! random envelope ids, so the follow-up may come first in a page, or the
//! report in a later page), or, after a referral, she writes to the new
//! office before the referring office's re-sealed report has arrived there.
//! Such a follow-up opens, and is acknowledged once stored, so the relay
//! deletes it and her phone forgets it: it must be kept until its report
//! arrives, and then filed onto the case, in the same transaction as the
//! report, in her order.
//!
//! Anyone can seal a well-formed follow-up to a focal point's public key
//! for a report id that does not exist, so what is kept is bounded: at most
//! [`MAX_WAITING`] follow-ups and [`MAX_WAITING_BYTES`] in all, and at most
//! [`MAX_WAITING_PER_REPORT`] follow-ups and
//! [`MAX_WAITING_BYTES_PER_REPORT`] for one report id. Past any of these
//! bounds a follow-up is not kept: it falls back to the rejected envelopes
//! ([`super::RejectReason::UnknownCase`], within their own limits, and
//! past those only counted), so a flood of forged follow-ups can make an
//! honest one that arrives during it be lost; the bounds are set well above
//! what one survivor writes before her report is in. This store is not part
//! of the rejected envelopes' budget, and clearing those leaves it alone.
//!
//! Items (sealed like every item): the follow-ups waiting for one report id
//! are one [`ItemKind::Rejected`] item in state [`GROUP_STATE`], whose id
//! is derived from the report id with the profile's key (never the report
//! id itself, which is the case's item id); the counts in all are the one
//! item in state [`TALLY_STATE`].

use amparo_protocol::payload::Reply;
use serde::{Deserialize, Serialize};

use crate::store::{ItemKind, Profile};
use crate::survivor::{decode, encode};
use crate::{CoreError, Result};

/// Most follow-ups kept waiting for their reports, in all.
pub const MAX_WAITING: u64 = 1_000;
/// Most bytes of follow-ups kept waiting for their reports, in all (their
/// text and a fixed [`WAITING_OVERHEAD`] each).
pub const MAX_WAITING_BYTES: u64 = 4 * 1024 * 1024;
/// Most follow-ups kept waiting for one report.
pub const MAX_WAITING_PER_REPORT: usize = 64;
/// Most bytes of follow-ups kept waiting for one report (more than five of
/// the longest a follow-up may be).
pub const MAX_WAITING_BYTES_PER_REPORT: u64 = 256 * 1024;
/// Bytes counted for one follow-up besides its text: its ids, hour and
/// counter as kept.
pub const WAITING_OVERHEAD: u64 = 96;

/// State of the items that hold the follow-ups waiting for one report (the
/// rejected envelopes' records are state 0, their tally state 1).
pub(crate) const GROUP_STATE: u8 = 2;
/// State of the item that counts them all.
pub(crate) const TALLY_STATE: u8 = 3;

/// What a focal point holds of follow-ups waiting for their reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitingSummary {
    /// Follow-ups waiting.
    pub follow_ups: u64,
    /// Report ids they are waiting for.
    pub reports: u64,
    /// Bytes they count for against [`MAX_WAITING_BYTES`].
    pub bytes: u64,
}

/// One follow-up as kept while it waits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Waiting {
    /// The message id from its sealed header (to know a copy).
    pub message_id: [u8; 16],
    /// The hour her phone sealed it in.
    pub hour: u32,
    /// Her phone's counter for it, if it sent one.
    #[serde(default)]
    pub seq: Option<u32>,
    /// Her text.
    pub text: String,
}

impl Waiting {
    fn cost(&self) -> u64 {
        u64::try_from(self.text.len())
            .unwrap_or(u64::MAX)
            .saturating_add(WAITING_OVERHEAD)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Tally {
    #[serde(default)]
    follow_ups: u64,
    #[serde(default)]
    bytes: u64,
    #[serde(default)]
    reports: u64,
}

/// The counts for one filing run (a page, a bundle): read once and written
/// once per transaction.
pub(crate) struct WaitingKeeper {
    tally: Tally,
    dirty: bool,
}

/// What became of a follow-up offered to [`Profile::keep_waiting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// Kept until its report arrives.
    Waiting,
    /// A copy of one already waiting.
    Duplicate,
    /// Past the bounds: not kept.
    Full,
}

impl Profile {
    fn waiting_tally_id(&self) -> [u8; 16] {
        self.fixed_id(b"waiting-follow-ups-tally")
    }

    fn waiting_group_id(&self, report_id: &[u8; 16]) -> [u8; 16] {
        self.fixed_id(&[&b"waiting-follow-ups:"[..], report_id].concat())
    }

    fn load_waiting_tally(&self) -> Result<Tally> {
        Ok(
            match self.get_item(ItemKind::Rejected, &self.waiting_tally_id())? {
                Some((_, bytes)) => decode(&bytes, "waiting follow-ups tally")?,
                None => Tally::default(),
            },
        )
    }

    fn load_group(&self, id: &[u8; 16]) -> Result<Option<Vec<Waiting>>> {
        match self.get_item(ItemKind::Rejected, id)? {
            Some((GROUP_STATE, bytes)) => Ok(Some(decode(&bytes, "waiting follow-ups")?)),
            Some(_) => Err(CoreError::Corrupt("waiting follow-ups")),
            None => Ok(None),
        }
    }

    /// Starts keeping follow-ups for a filing run (inside its transaction).
    pub(crate) fn waiting_keeper(&self) -> Result<WaitingKeeper> {
        Ok(WaitingKeeper {
            tally: self.load_waiting_tally()?,
            dirty: false,
        })
    }

    /// Writes the counts if this run changed them (inside the run's
    /// transaction).
    pub(crate) fn finish_waiting(&self, keeper: &mut WaitingKeeper) -> Result<()> {
        if keeper.dirty {
            self.put_item(
                ItemKind::Rejected,
                &self.waiting_tally_id(),
                TALLY_STATE,
                &encode(&keeper.tally)?,
            )?;
            keeper.dirty = false;
        }
        Ok(())
    }

    /// Keeps `reply` (sealed at `hour` with message id `message_id`) until
    /// the report it belongs to arrives, within the bounds (see the
    /// module's documentation). The caller holds no case for it.
    pub(crate) fn keep_waiting(
        &self,
        keeper: &mut WaitingKeeper,
        message_id: [u8; 16],
        hour: u32,
        reply: Reply,
    ) -> Result<Kept> {
        let id = self.waiting_group_id(&reply.report_id);
        let group = self.load_group(&id)?;
        if group
            .as_ref()
            .is_some_and(|g| g.iter().any(|w| w.message_id == message_id))
        {
            return Ok(Kept::Duplicate);
        }
        let follow_up = Waiting {
            message_id,
            hour,
            seq: reply.stamp.seq,
            text: reply.text,
        };
        let cost = follow_up.cost();
        let t = &keeper.tally;
        let in_group = group.as_ref().map_or(0, Vec::len);
        let group_bytes: u64 = group.iter().flatten().map(Waiting::cost).sum();
        if t.follow_ups >= MAX_WAITING
            || t.bytes.saturating_add(cost) > MAX_WAITING_BYTES
            || in_group >= MAX_WAITING_PER_REPORT
            || group_bytes.saturating_add(cost) > MAX_WAITING_BYTES_PER_REPORT
        {
            return Ok(Kept::Full);
        }
        let new_group = group.is_none();
        let mut group = group.unwrap_or_default();
        group.push(follow_up);
        self.put_item(ItemKind::Rejected, &id, GROUP_STATE, &encode(&group)?)?;
        let t = &mut keeper.tally;
        t.follow_ups += 1;
        t.bytes = t.bytes.saturating_add(cost);
        if new_group {
            t.reports += 1;
        }
        keeper.dirty = true;
        Ok(Kept::Waiting)
    }

    /// Takes the follow-ups waiting for `report_id` out of the store (inside
    /// the transaction that files the report).
    pub(crate) fn take_waiting(
        &self,
        keeper: &mut WaitingKeeper,
        report_id: &[u8; 16],
    ) -> Result<Vec<Waiting>> {
        let id = self.waiting_group_id(report_id);
        let Some(group) = self.load_group(&id)? else {
            return Ok(Vec::new());
        };
        self.delete_item(ItemKind::Rejected, &id)?;
        let t = &mut keeper.tally;
        t.follow_ups = t.follow_ups.saturating_sub(to_u64(group.len()));
        t.bytes = t
            .bytes
            .saturating_sub(group.iter().map(Waiting::cost).sum::<u64>());
        t.reports = t.reports.saturating_sub(1);
        keeper.dirty = true;
        Ok(group)
    }

    /// How many of her follow-ups this focal point holds waiting for the
    /// report they belong to.
    pub fn waiting_follow_ups(&self) -> Result<WaitingSummary> {
        let t = self.load_waiting_tally()?;
        Ok(WaitingSummary {
            follow_ups: t.follow_ups,
            reports: t.reports,
            bytes: t.bytes,
        })
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amparo_protocol::UnixTime;
    use amparo_protocol::entropy::DangerousSeededEntropy;
    use amparo_protocol::envelope::{Envelope, Purpose};
    use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
    use amparo_protocol::padding::InnerHeader;
    use amparo_protocol::payload::{Payload, Stamp};

    use crate::compose::tests::blank_report;
    use crate::focal::{FetchSummary, RejectReason};
    use crate::store::KdfParams;

    const HOUR: u32 = 500_000;

    struct Office {
        dir: tempfile::TempDir,
        p: Profile,
        public: RecipientPublic,
        e: DangerousSeededEntropy,
    }

    fn office(seed: &[u8]) -> Office {
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::create(dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let public = p.create_focal_identity().unwrap();
        Office {
            dir,
            p,
            public,
            e: DangerousSeededEntropy::new(seed),
        }
    }

    impl Office {
        /// Her report `id`, sealed to this office.
        fn report(&mut self, id: [u8; 16]) -> Envelope {
            let mut report = blank_report();
            report.reply_to = RecipientKeys::generate(&mut self.e).unwrap().public();
            let h = InnerHeader {
                message_id: id,
                ..InnerHeader::new(&mut self.e, UnixTime(3600 * u64::from(HOUR))).unwrap()
            };
            let body = report.to_json().unwrap();
            Envelope::seal(&self.public, Purpose::Report, &h, &body, &mut self.e).unwrap()
        }

        /// Her follow-up number `seq` on report `id`, sealed in `hour`.
        fn follow_up(&mut self, id: [u8; 16], text: &str, hour: u32, seq: u32) -> Envelope {
            let reply = Reply {
                v: 1,
                report_id: id,
                text: text.into(),
                language: None,
                stamp: Stamp {
                    seq: Some(seq),
                    ..Stamp::default()
                },
            };
            let h = InnerHeader::new(&mut self.e, UnixTime(3600 * u64::from(hour))).unwrap();
            let body = reply.to_json().unwrap();
            Envelope::seal(&self.public, Purpose::Reply, &h, &body, &mut self.e).unwrap()
        }

        fn file(&self, page: &[&Envelope]) -> FetchSummary {
            let page: Vec<Envelope> = page.iter().map(|e| (*e).clone()).collect();
            self.p.file_envelopes(&page).unwrap()
        }

        fn messages(&self, id: &[u8; 16]) -> Vec<String> {
            self.p.case(id).unwrap().messages
        }

        fn unknown_case(&self) -> u64 {
            let s = self.p.rejected_summary(0).unwrap();
            s.by_reason
                .iter()
                .find(|(r, _)| *r == RejectReason::UnknownCase)
                .map_or(0, |(_, n)| *n)
        }
    }

    #[test]
    fn a_follow_up_in_the_same_page_as_its_report_is_filed_in_either_order() {
        for follow_up_first in [true, false] {
            let mut o = office(b"same page");
            let id = [7; 16];
            let report = o.report(id);
            let one = o.follow_up(id, "uno", HOUR, 1);
            let two = o.follow_up(id, "dos", HOUR, 2);
            let page = if follow_up_first {
                vec![&two, &one, &report]
            } else {
                vec![&report, &two, &one]
            };
            let s = o.file(&page);
            assert_eq!(
                (s.new_cases, s.messages, s.waiting, s.rejected),
                (1, 2, 0, 0),
                "{s:?}"
            );
            assert_eq!(o.messages(&id), ["uno", "dos"]);
            assert_eq!(o.p.waiting_follow_ups().unwrap(), WaitingSummary::default());
            assert_eq!(o.p.rejected_summary(0).unwrap().total, 0);
        }
    }

    #[test]
    fn a_follow_up_a_page_before_its_report_waits_for_it_and_is_filed_with_it() {
        let mut o = office(b"pages");
        let id = [8; 16];
        let report = o.report(id);
        let one = o.follow_up(id, "uno", HOUR, 1);
        let two = o.follow_up(id, "dos", HOUR, 2);
        let three = o.follow_up(id, "tres", HOUR + 1, 3);
        // Her second and first follow-ups come a page before the report.
        let s = o.file(&[&two, &one]);
        assert_eq!((s.messages, s.waiting, s.rejected), (0, 2, 0), "{s:?}");
        assert!(o.p.case(&id).is_err());
        let w = o.p.waiting_follow_ups().unwrap();
        assert_eq!((w.follow_ups, w.reports), (2, 1));
        assert_eq!(w.bytes, 3 + 3 + 2 * WAITING_OVERHEAD);
        // Kept sealed, like every item: her words are not on disk in clear.
        let canary = o.follow_up(id, "CANARY-WAITING", HOUR + 1, 9);
        assert_eq!(o.file(&[&canary]).waiting, 1);
        for file in [
            crate::store::DB_FILE.to_string(),
            format!("{}-wal", crate::store::DB_FILE),
        ] {
            let bytes = std::fs::read(o.dir.path().join(file)).unwrap_or_default();
            assert!(!bytes.windows(14).any(|w| w == b"CANARY-WAITING"));
        }
        // A copy (its acknowledgement was lost) is known as such; clearing
        // the rejected envelopes leaves them waiting.
        let s = o.file(&[&one]);
        assert_eq!((s.duplicates, s.waiting), (1, 0));
        o.p.clear_rejected().unwrap();
        assert_eq!(o.p.waiting_follow_ups().unwrap().follow_ups, 3);
        // The report comes, and with it the third (a page of its own order).
        let s = o.file(&[&three, &report]);
        assert_eq!(
            (s.new_cases, s.messages, s.waiting, s.rejected),
            (1, 4, 0, 0),
            "{s:?}"
        );
        assert_eq!(o.messages(&id), ["uno", "dos", "tres", "CANARY-WAITING"]);
        assert_eq!(o.p.waiting_follow_ups().unwrap(), WaitingSummary::default());
        // Copies after that are duplicates on the case.
        let s = o.file(&[&one, &two]);
        assert_eq!((s.duplicates, s.messages), (2, 0));
        assert_eq!(o.messages(&id).len(), 4);
        assert_eq!(o.p.rejected_summary(0).unwrap().total, 0);
    }

    #[test]
    fn forged_follow_ups_are_bounded_for_one_report() {
        let mut o = office(b"one report");
        let id = [9; 16];
        let forged: Vec<Envelope> = (0..MAX_WAITING_PER_REPORT as u32 + 1)
            .map(|i| o.follow_up(id, "x", HOUR, i))
            .collect();
        let s = o.p.file_envelopes(&forged).unwrap();
        assert_eq!((s.waiting, s.rejected), (MAX_WAITING_PER_REPORT, 1));
        assert_eq!(o.unknown_case(), 1);
        // Bytes for one report: long follow-ups (24,000 bytes of text).
        let long = "é".repeat(12_000);
        let fit = MAX_WAITING_BYTES_PER_REPORT / (24_000 + WAITING_OVERHEAD);
        let other = [10; 16];
        let forged: Vec<Envelope> = (0..fit as u32 + 1)
            .map(|i| o.follow_up(other, &long, HOUR, i))
            .collect();
        let s = o.p.file_envelopes(&forged).unwrap();
        assert_eq!((s.waiting as u64, s.rejected), (fit, 1));
        let w = o.p.waiting_follow_ups().unwrap();
        assert_eq!(w.reports, 2);
        assert_eq!(w.follow_ups, MAX_WAITING_PER_REPORT as u64 + fit);
    }

    #[test]
    fn forged_follow_ups_are_bounded_in_count_and_bytes_and_her_own_still_file() {
        // Bytes: long follow-ups (36,000 bytes of text), each for its own
        // report id.
        let mut o = office(b"bytes");
        let long = "€".repeat(12_000);
        let fit = MAX_WAITING_BYTES / (36_000 + WAITING_OVERHEAD);
        let forged: Vec<Envelope> = (0..fit + 1)
            .map(|i| {
                let mut id = [0; 16];
                id[..8].copy_from_slice(&i.to_be_bytes());
                o.follow_up(id, &long, HOUR, 1)
            })
            .collect();
        let s = o.p.file_envelopes(&forged).unwrap();
        assert_eq!((s.waiting as u64, s.rejected), (fit, 1));
        assert!(o.p.waiting_follow_ups().unwrap().bytes <= MAX_WAITING_BYTES);

        // Count: a thousand short ones, in pages.
        let mut o = office(b"count");
        let forged: Vec<Envelope> = (0..MAX_WAITING + 3)
            .map(|i| {
                let mut id = [1; 16];
                id[..8].copy_from_slice(&i.to_be_bytes());
                o.follow_up(id, "x", HOUR, 1)
            })
            .collect();
        let (mut waiting, mut rejected) = (0, 0);
        for page in forged.chunks(300) {
            let s = o.p.file_envelopes(page).unwrap();
            waiting += s.waiting;
            rejected += s.rejected;
        }
        assert_eq!((waiting as u64, rejected), (MAX_WAITING, 3));
        let w = o.p.waiting_follow_ups().unwrap();
        assert_eq!((w.follow_ups, w.reports), (MAX_WAITING, MAX_WAITING));
        assert_eq!(o.unknown_case(), 3);

        // With the store full, her report and follow-up in one page are
        // still filed, whichever comes first: reports are filed first.
        let id = [42; 16];
        let report = o.report(id);
        let hers = o.follow_up(id, "sigo aquí", HOUR, 1);
        let s = o.file(&[&hers, &report]);
        assert_eq!((s.new_cases, s.messages, s.rejected), (1, 1, 0), "{s:?}");
        assert_eq!(o.messages(&id), ["sigo aquí"]);
        // But one that comes a page before its report now is not kept (as
        // the module says): counted with the rejected envelopes.
        let late = [43; 16];
        let before = o.follow_up(late, "hola", HOUR, 1);
        let s = o.file(&[&before]);
        assert_eq!((s.waiting, s.rejected), (0, 1));
        // A report that was waited for frees its room.
        let mut first = [1; 16];
        first[..8].copy_from_slice(&0u64.to_be_bytes());
        let report = o.report(first);
        let s = o.file(&[&report]);
        assert_eq!((s.new_cases, s.messages), (1, 1));
        assert_eq!(
            o.p.waiting_follow_ups().unwrap().follow_ups,
            MAX_WAITING - 1
        );
    }
}
