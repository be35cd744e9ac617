//! Check-in timers on the phone (PROTOCOL.md §17): she prepares an alert
//! for a focal point ("if you do not hear from me by tonight, open my
//! case"), and the relay holds it and releases it if she stops checking in
//! — even when her phone is taken, broken or flat.
//!
//! - **Setting** a timer seals a draft (where she is going, who she is
//!   meeting, a photo of a plate) as one envelope to the focal point, with
//!   [`TimerAlert`] inside, and signs a hold with a fresh timer key. The
//!   hold goes at the next sync ([`Profile::sync_timers`], part of every
//!   survivor sync), paying admission as an upload does.
//! - **Checking in** is one action: the next check-in is due
//!   `every_hours` from now, and the relay releases the alert at the first
//!   whole hour after that plus the grace period. Reminders are the app's
//!   job; [`Profile::next_check_in_due`] says when.
//! - **The duress PIN**: the decoy the duress PIN opens shows her timers,
//!   and checking in there looks the same, but sends a check-in signed in
//!   advance by the real profile that keeps the release hour where it is:
//!   the alert still goes. The decoy holds no timer key, so nobody who
//!   opens it can postpone or cancel an alert (a cancel there sends the
//!   same look-alike check-in).
//! - **Cancelling** when she is safe deletes the alert at the relay.
//!
//! Sequence numbers: the real profile's check-ins use multiples of
//! [`STEP`]; the duress check-ins it signs for the decoy take the numbers
//! between the last real one and the next, so a real check-in after a
//! duress one is always taken, and a duress one after a real one is stale.
//!
//! The timer key and everything about the timer live in the profile's
//! sealed cells; the relay learns only the timer id, the release hour and
//! the sealed alert.

use amparo_protocol::UnixTime;
use amparo_protocol::directory::FocalPoint;
use amparo_protocol::envelope::Envelope;
use amparo_protocol::payload::TimerAlert;
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::timer::{self, CheckIn, Hold, MAX_AHEAD_HOURS};
use serde::{Deserialize, Serialize};

mod carry;
pub use carry::{CarriedTimers, MAX_CARRIED_TIMER_ITEMS};

use crate::compose::seal_report;
use crate::relay::{RelayClient, TimerAnswer};
use crate::store::{ItemKind, Profile};
use crate::survivor::{StoredReport, decode, encode};
use crate::{CoreError, Result};

/// Real check-ins' sequence numbers are multiples of this; the duress
/// check-ins the decoy holds take the ones between.
pub const STEP: u64 = 16;
/// Longest grace period after a missed check-in: three days.
pub const MAX_GRACE_HOURS: u32 = 72;

/// Item states of a timer.
const ACTIVE: u8 = 0;
/// A cancel is waiting to be sent.
const CANCELLING: u8 = 1;
/// The relay released the alert (or holds it no more).
const RELEASED: u8 = 2;

/// Where a timer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimerPhase {
    /// Running: she checks in before `next_due`, or the alert goes.
    Active,
    /// Cancelled on the phone; the cancel goes at the next sync.
    Cancelling,
    /// The alert went to the focal point: she did not check in in time, or
    /// the relay holds it no more.
    Released,
}

/// A timer, as the app shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerStatus {
    /// Its id on this phone.
    pub id: [u8; 16],
    /// The focal point the alert is for (directory id).
    pub focal_point: String,
    /// The hour she set it.
    pub set_hour: u32,
    /// Hours each check-in buys.
    pub every_hours: u32,
    /// Hours of grace after a missed check-in.
    pub grace_hours: u32,
    /// When she is next due to check in.
    pub next_due: UnixTime,
    /// The hour the relay releases the alert if she has not checked in.
    pub release_hour: u32,
    /// Whether the relay holds the alert (false until the hold is sent).
    pub held: bool,
    /// A check-in or cancel is waiting for the next sync (no signal).
    pub waiting_to_send: bool,
    /// Where it is.
    pub phase: TimerPhase,
}

/// What a sync did to timers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimersSynced {
    /// Holds the relay took.
    pub held: usize,
    /// Check-ins and cancels the relay took (or refused for good).
    pub sent: usize,
    /// Alerts the phone found released.
    pub released: usize,
    /// Alerts whose hour came before their hold could be sent: queued as
    /// ordinary reports, so the focal point gets them anyway.
    pub sent_directly: usize,
    /// Holds the relay refused for good (its directory no longer lists the
    /// focal point, or the timer is taken): kept and offered again at each
    /// sync; tell her to set the timer again, for another focal point.
    pub refused: usize,
}

#[derive(Serialize, Deserialize)]
struct StoredTimer {
    /// The timer key's seed; `None` in the decoy, which holds only
    /// `duress` check-ins.
    key: Option<Vec<u8>>,
    focal_point: String,
    /// The alert's report record (for the focal point's replies).
    report: Option<[u8; 16]>,
    set_hour: u32,
    every_hours: u32,
    grace_hours: u32,
    /// When she is next due (unix seconds; on the phone only).
    due: u64,
    release_hour: u32,
    /// The last real check-in's sequence number.
    seq: u64,
    /// The hold, until the relay has it.
    hold: Option<Vec<u8>>,
    /// The check-in or cancel waiting to be sent (a later one replaces it).
    pending: Option<Vec<u8>>,
    /// Decoy only: check-ins signed by the real profile that keep the
    /// release hour, sent one per check-in there.
    #[serde(default)]
    duress: Vec<Vec<u8>>,
}

/// The first whole hour at or after `secs`.
fn hour_at_or_after(secs: u64) -> u32 {
    u32::try_from(secs.div_ceil(3600)).unwrap_or(u32::MAX)
}

impl StoredTimer {
    fn signing_key(&self) -> Result<Option<SigningKey>> {
        self.key
            .as_ref()
            .map(|seed| {
                let seed: [u8; 32] = seed
                    .as_slice()
                    .try_into()
                    .map_err(|_| CoreError::Corrupt("timer key"))?;
                Ok(SigningKey::from_seed(&seed)?)
            })
            .transpose()
    }

    /// Due `every_hours` after `now`; released at the first whole hour
    /// after that plus the grace, never earlier than what is held.
    fn postpone_from(&mut self, now: UnixTime) {
        self.due = now.0.saturating_add(u64::from(self.every_hours) * 3600);
        let release = hour_at_or_after(self.due.saturating_add(u64::from(self.grace_hours) * 3600));
        self.release_hour = self.release_hour.max(release);
    }

    fn status(&self, id: [u8; 16], state: u8) -> TimerStatus {
        TimerStatus {
            id,
            focal_point: self.focal_point.clone(),
            set_hour: self.set_hour,
            every_hours: self.every_hours,
            grace_hours: self.grace_hours,
            next_due: UnixTime(self.due),
            release_hour: self.release_hour,
            held: self.hold.is_none(),
            waiting_to_send: self.pending.is_some() || self.hold.is_some(),
            phase: match state {
                CANCELLING => TimerPhase::Cancelling,
                RELEASED => TimerPhase::Released,
                _ => TimerPhase::Active,
            },
        }
    }
}

impl Profile {
    /// Sets a check-in timer: seals `draft` (it must fit one envelope: text
    /// and at most a small photo) as an alert to `focal_point`, due
    /// `every_hours` from `now` and released `grace_hours` after that if
    /// she has not checked in. The hold goes at the next sync; the draft is
    /// deleted. Returns the timer's id.
    pub fn set_timer(
        &self,
        draft: &[u8; 16],
        focal_point: &FocalPoint,
        every_hours: u32,
        grace_hours: u32,
        now: UnixTime,
    ) -> Result<[u8; 16]> {
        if every_hours == 0
            || grace_hours > MAX_GRACE_HOURS
            || every_hours.saturating_add(grace_hours) >= MAX_AHEAD_HOURS
        {
            return Err(CoreError::Invalid(
                "a check-in is due 1 hour to 28 days ahead, with at most 3 days of grace",
            ));
        }
        let d = self.draft(draft)?;
        let attachments = self.draft_attachments(draft)?;
        let mut entropy = amparo_protocol::entropy::SystemEntropy::new();
        let key = timer::new_timer_key(&mut entropy)?;
        let mut t = StoredTimer {
            key: Some(key.dangerously_export_seed().to_vec()),
            focal_point: focal_point.id.clone(),
            report: None,
            set_hour: now.hours(),
            every_hours,
            grace_hours,
            due: 0,
            release_hour: 0,
            seq: 0,
            hold: None,
            pending: None,
            duress: Vec::new(),
        };
        t.postpone_from(now);
        let mut report = d.form.to_report(focal_point.keys);
        report.alert = Some(TimerAlert {
            set_hour: t.set_hour,
            due_hour: t.release_hour,
            every_hours,
        });
        let sealed = seal_report(
            &focal_point.keys,
            report,
            &attachments,
            crate::compose::compression_for(&focal_point.reads),
            &mut entropy,
            now,
        )?;
        let [envelope] = <[Envelope; 1]>::try_from(sealed.envelopes).map_err(|_| {
            CoreError::Invalid(
                "an alert must fit in one envelope: shorten the text or use a smaller photo",
            )
        })?;
        t.hold = Some(Hold::sign(&key, t.release_hour, envelope.clone()).encode());
        t.report = Some(sealed.report_id);
        let id = self.new_id()?;
        self.in_transaction(|| {
            self.put_item(
                ItemKind::Report,
                &sealed.report_id,
                0,
                &encode(&StoredReport::for_alert(
                    focal_point,
                    now.hours(),
                    sealed.reply_keys.dangerously_export().to_vec(),
                    envelope.id().0,
                ))?,
            )?;
            self.put_item(ItemKind::Timer, &id, ACTIVE, &encode(&t)?)?;
            self.delete_draft(draft)
        })?;
        self.mirror_timer(&id, &t, ACTIVE)?;
        Ok(id)
    }

    fn stored_timer(&self, id: &[u8; 16]) -> Result<(u8, StoredTimer)> {
        let (state, bytes) = self
            .get_item(ItemKind::Timer, id)?
            .ok_or(CoreError::NotFound)?;
        Ok((state, decode(&bytes, "timer")?))
    }

    /// Every timer, soonest due first.
    pub fn timers(&self) -> Result<Vec<TimerStatus>> {
        let mut out = Vec::new();
        for id in self.item_ids(ItemKind::Timer, None)? {
            let (state, t) = self.stored_timer(&id)?;
            out.push(t.status(id, state));
        }
        out.sort_by_key(|t| (t.phase != TimerPhase::Active, t.next_due.0));
        Ok(out)
    }

    /// When the next check-in of a running timer is due, for the app's
    /// reminder; `None` without one.
    pub fn next_check_in_due(&self) -> Result<Option<UnixTime>> {
        Ok(self
            .timers()?
            .into_iter()
            .filter(|t| t.phase == TimerPhase::Active)
            .map(|t| t.next_due)
            .min())
    }

    /// Checks in: the next check-in is due `every_hours` from `now`. Sent
    /// at the next sync (or carried). Opened with the duress PIN (the
    /// decoy) it looks the same but does not postpone the alert.
    pub fn check_in(&self, id: &[u8; 16], now: UnixTime) -> Result<TimerStatus> {
        let (state, mut t) = self.stored_timer(id)?;
        if state != ACTIVE {
            return Err(CoreError::Invalid("this timer is no longer running"));
        }
        match t.signing_key()? {
            Some(key) => {
                t.postpone_from(now);
                match t.hold.as_ref() {
                    // Not held yet: the hold itself goes with the new hour.
                    Some(hold) => {
                        let envelope = Hold::decode(hold)?.envelope;
                        t.hold = Some(Hold::sign(&key, t.release_hour, envelope).encode());
                    }
                    None => {
                        t.seq = t.seq.saturating_add(STEP);
                        t.pending = Some(
                            CheckIn::postpone(&key, t.seq, t.release_hour)
                                .encode()
                                .to_vec(),
                        );
                    }
                }
                self.put_item(ItemKind::Timer, id, ACTIVE, &encode(&t)?)?;
                self.mirror_timer(id, &t, ACTIVE)?;
            }
            None => {
                // The decoy: shown as postponed, sent as the duress check-in.
                t.due = now.0.saturating_add(u64::from(t.every_hours) * 3600);
                if !t.duress.is_empty() {
                    t.pending = Some(t.duress.remove(0));
                }
                self.put_item(ItemKind::Timer, id, ACTIVE, &encode(&t)?)?;
            }
        }
        Ok(t.status(*id, ACTIVE))
    }

    /// Cancels a timer when she is safe: the alert is deleted at the relay
    /// at the next sync. In the decoy it only looks cancelled. A timer whose
    /// alert went is forgotten here (the alert's report stays, for the
    /// focal point's answers).
    pub fn cancel_timer(&self, id: &[u8; 16]) -> Result<()> {
        let (state, mut t) = self.stored_timer(id)?;
        if state == RELEASED {
            return self.forget_timer(id, &t, false);
        }
        if state != ACTIVE {
            return Err(CoreError::Invalid("this timer is no longer running"));
        }
        match t.signing_key()? {
            Some(_) if t.hold.is_some() => {
                // Never sent: nothing at the relay to cancel.
                self.forget_timer(id, &t, true)?;
            }
            Some(key) => {
                t.seq = t.seq.saturating_add(STEP);
                t.pending = Some(CheckIn::cancel(&key, t.seq).encode().to_vec());
                self.put_item(ItemKind::Timer, id, CANCELLING, &encode(&t)?)?;
                self.mirror_timer(id, &t, CANCELLING)?;
            }
            None => {
                if !t.duress.is_empty() {
                    t.pending = Some(t.duress.remove(0));
                }
                self.put_item(ItemKind::Timer, id, CANCELLING, &encode(&t)?)?;
            }
        }
        Ok(())
    }

    /// Deletes a timer (and, when its alert never went, the alert's report
    /// record), here and in the decoy.
    fn forget_timer(&self, id: &[u8; 16], t: &StoredTimer, alert_too: bool) -> Result<()> {
        self.in_transaction(|| {
            if alert_too && let Some(r) = &t.report {
                self.delete_item(ItemKind::Report, r)?;
            }
            self.delete_item(ItemKind::Timer, id)?;
            Ok(())
        })?;
        if let Some(decoy) = self.open_decoy()? {
            decoy.delete_item(ItemKind::Timer, &decoy.fixed_id(id))?;
        }
        Ok(())
    }

    /// Writes the decoy's twin of a timer: what it shows, and the duress
    /// check-ins for the numbers between this check-in and the next, each
    /// keeping the release hour. Nothing when there is no decoy (or this
    /// is it).
    fn mirror_timer(&self, id: &[u8; 16], t: &StoredTimer, state: u8) -> Result<()> {
        let Some(key) = t.signing_key()? else {
            return Ok(());
        };
        let Some(decoy) = self.open_decoy()? else {
            return Ok(());
        };
        let twin = StoredTimer {
            key: None,
            focal_point: t.focal_point.clone(),
            report: None,
            set_hour: t.set_hour,
            every_hours: t.every_hours,
            grace_hours: t.grace_hours,
            due: t.due,
            release_hour: t.release_hour,
            seq: 0,
            hold: None,
            pending: None,
            duress: (1..STEP)
                .map(|k| {
                    CheckIn::postpone(&key, t.seq + k, t.release_hour)
                        .encode()
                        .to_vec()
                })
                .collect(),
        };
        decoy.put_item(ItemKind::Timer, &decoy.fixed_id(id), state, &encode(&twin)?)
    }

    /// Gives the decoy the twin of every running timer it lacks, and
    /// forgets twins whose timer is gone (a duress PIN set after the
    /// timer, a crash between two writes). Twins it has are left as they
    /// are: a duress check-in there moved what it shows.
    pub(crate) fn mirror_timers_into(&self, decoy: &Profile) -> Result<()> {
        let mut twins = Vec::new();
        for id in self.item_ids(ItemKind::Timer, None)? {
            let twin = decoy.fixed_id(&id);
            twins.push(twin);
            if decoy.get_item(ItemKind::Timer, &twin)?.is_none() {
                let (state, t) = self.stored_timer(&id)?;
                if state != RELEASED {
                    self.mirror_timer(&id, &t, state)?;
                }
            }
        }
        for id in decoy.item_ids(ItemKind::Timer, None)? {
            // A timer she set from inside the decoy has a key: its own.
            if !twins.contains(&id) && decoy.stored_timer(&id)?.1.key.is_none() {
                decoy.delete_item(ItemKind::Timer, &id)?;
            }
        }
        Ok(())
    }

    /// Sends what timers have waiting: holds (paying admission when the
    /// relay asks), then check-ins and cancels. An alert whose hour came
    /// before its hold could be sent goes as an ordinary report (she did
    /// not check in in time). Part of every survivor sync.
    pub async fn sync_timers(&self, relay: &RelayClient, now: UnixTime) -> Result<TimersSynced> {
        let mut done = TimersSynced::default();
        for id in self.item_ids(ItemKind::Timer, None)? {
            let (state, mut t) = self.stored_timer(&id)?;
            if let Some(hold) = t.hold.clone() {
                let decoded = Hold::decode(&hold)?;
                let mut due = decoded.release_hour <= now.hours();
                if !due {
                    match relay.hold(&hold, &decoded.envelope).await? {
                        TimerAnswer::Held { release_hour, seq } => {
                            t.hold = None;
                            done.held += 1;
                            // Held already, from an earlier hold a
                            // facilitator carried: her check-ins since moved
                            // only her copy. Tell the relay now, numbered
                            // past its last.
                            if release_hour < t.release_hour
                                && let Some(key) = t.signing_key()?
                            {
                                t.seq = seq.max(t.seq).div_ceil(STEP).saturating_add(1) * STEP;
                                t.pending = Some(
                                    CheckIn::postpone(&key, t.seq, t.release_hour)
                                        .encode()
                                        .to_vec(),
                                );
                                self.mirror_timer(&id, &t, state)?;
                            }
                            self.put_item(ItemKind::Timer, &id, state, &encode(&t)?)?;
                        }
                        TimerAnswer::Later => continue,
                        // The release is within the hour by the phone's
                        // clock and the relay's hour has passed it (its clock
                        // runs a little ahead): she did not check in in time,
                        // as far as the relay can tell. (Further off, the
                        // clocks disagree by hours: refused, kept.)
                        TimerAnswer::Refused(code)
                            if code == "bad_release_hour"
                                && decoded.release_hour <= now.hours().saturating_add(1) =>
                        {
                            due = true
                        }
                        TimerAnswer::Cancelled | TimerAnswer::Gone | TimerAnswer::Refused(_) => {
                            done.refused += 1;
                            continue;
                        }
                    }
                }
                if due {
                    if let Some(report) = t.report {
                        self.enqueue(&report, &decoded.envelope)?;
                    }
                    t.hold = None;
                    self.put_item(ItemKind::Timer, &id, RELEASED, &encode(&t)?)?;
                    done.sent_directly += 1;
                    continue;
                }
            }
            let Some(pending) = t.pending.clone() else {
                continue;
            };
            let answer = relay.check_in(&pending).await?;
            if answer == TimerAnswer::Later {
                continue;
            }
            t.pending = None;
            done.sent += 1;
            if t.key.is_none() {
                // The decoy shows what it showed, whatever the answer (a
                // duress check-in is refused once a real one overtook it).
                self.put_item(ItemKind::Timer, &id, state, &encode(&t)?)?;
                continue;
            }
            match answer {
                TimerAnswer::Cancelled => self.forget_timer(&id, &t, true)?,
                // Cancelled after the alert went, or twice: no alert
                // waits; her alert's report stays in case it went.
                TimerAnswer::Gone if state == CANCELLING => self.forget_timer(&id, &t, false)?,
                TimerAnswer::Gone => {
                    done.released += 1;
                    self.put_item(ItemKind::Timer, &id, RELEASED, &encode(&t)?)?;
                }
                _ => self.put_item(ItemKind::Timer, &id, state, &encode(&t)?)?,
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drafts::DraftForm;
    use crate::store::KdfParams;
    use amparo_protocol::directory::LocalizedText;
    use amparo_protocol::entropy::SystemEntropy;
    use amparo_protocol::keys::RecipientKeys;
    use amparo_protocol::payload::{AttachmentKind, Language, Need};

    const T0: UnixTime = UnixTime(1_790_000_000);

    fn focal_point() -> FocalPoint {
        FocalPoint {
            reads: Vec::new(),
            id: "pe-lima".into(),
            name: LocalizedText {
                es: "Lima".into(),
                pt: "Lima".into(),
                en: "Lima".into(),
            },
            organization: "o".into(),
            regions: vec!["PE-LIM".into()],
            categories: vec![Need::LegalAdvice],
            languages: vec![Language::Es],
            keys: RecipientKeys::generate(&mut SystemEntropy::new())
                .unwrap()
                .public(),
            valid_from: 0,
            valid_until: u64::MAX / 2,
        }
    }

    fn profile(dir: &std::path::Path) -> Profile {
        Profile::create(
            &dir.join("p"),
            "2468",
            KdfParams::DANGEROUSLY_FAST_FOR_TESTS,
        )
        .unwrap()
    }

    fn draft(p: &Profile) -> [u8; 16] {
        p.create_draft(&DraftForm {
            text: "Voy con un cliente al hotel.".into(),
            ..DraftForm::default()
        })
        .unwrap()
    }

    fn stored(p: &Profile, id: &[u8; 16]) -> StoredTimer {
        p.stored_timer(id).unwrap().1
    }

    #[test]
    fn a_bad_timer_or_an_alert_too_large_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = profile(dir.path());
        let fp = focal_point();
        let d = draft(&p);
        for (every, grace) in [(0, 0), (1, MAX_GRACE_HOURS + 1), (MAX_AHEAD_HOURS, 0)] {
            assert!(p.set_timer(&d, &fp, every, grace, T0).is_err());
        }
        // A photo too large for one envelope.
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        p.add_attachment(&d, AttachmentKind::Photo, "image/jpeg", &big)
            .unwrap();
        let e = p.set_timer(&d, &fp, 2, 1, T0).unwrap_err();
        assert!(e.to_string().contains("one envelope"), "{e}");
        assert!(p.timers().unwrap().is_empty());
        assert_eq!(p.drafts().unwrap().len(), 1, "the draft is kept");
        assert!(p.sent_reports().unwrap().is_empty());
    }

    #[test]
    fn release_is_the_hour_after_due_and_grace_and_never_comes_earlier() {
        let dir = tempfile::tempdir().unwrap();
        let p = profile(dir.path());
        let id = p.set_timer(&draft(&p), &focal_point(), 3, 2, T0).unwrap();
        let t = &p.timers().unwrap()[0];
        assert_eq!(t.next_due, UnixTime(T0.0 + 3 * 3600));
        assert_eq!(t.release_hour, (T0.0 + 5 * 3600).div_ceil(3600) as u32);
        let hold = Hold::decode(stored(&p, &id).hold.as_ref().unwrap()).unwrap();
        assert_eq!(hold.release_hour, t.release_hour);
        let before = t.release_hour;
        // Not held yet: a check-in signs the hold again with the new hour.
        let later = p.check_in(&id, UnixTime(T0.0 + 7200)).unwrap();
        assert_eq!(later.release_hour, before + 2);
        let s = stored(&p, &id);
        assert!(s.pending.is_none());
        assert_eq!(
            Hold::decode(s.hold.as_ref().unwrap()).unwrap().release_hour,
            before + 2
        );
        // Checking in earlier than the last time never brings it earlier.
        let early = p.check_in(&id, T0).unwrap();
        assert_eq!(early.release_hour, before + 2);
        assert_eq!(early.next_due, UnixTime(T0.0 + 3 * 3600));
    }

    #[test]
    fn the_decoy_holds_no_timer_key_and_its_check_ins_keep_the_hour() {
        let dir = tempfile::tempdir().unwrap();
        let p = profile(dir.path());
        p.set_duress_pin_with_decoy("0000", false).unwrap();
        let id = p.set_timer(&draft(&p), &focal_point(), 2, 0, T0).unwrap();
        // Held: check-ins are sent as such.
        let mut t = stored(&p, &id);
        t.hold = None;
        p.put_item(ItemKind::Timer, &id, ACTIVE, &encode(&t).unwrap())
            .unwrap();
        let real = p.check_in(&id, UnixTime(T0.0 + 3600)).unwrap();
        let real_seq = stored(&p, &id).seq;
        assert_eq!(real_seq, STEP);
        let decoy = p.open_decoy().unwrap().unwrap();
        let twin_id = decoy.fixed_id(&id);
        let twin = stored(&decoy, &twin_id);
        assert!(twin.key.is_none() && twin.hold.is_none() && twin.report.is_none());
        assert_eq!(twin.duress.len() as u64, STEP - 1);
        for (k, bytes) in twin.duress.iter().enumerate() {
            let c = CheckIn::decode(bytes).unwrap();
            assert_eq!(
                c.timer(),
                CheckIn::decode(stored(&p, &id).pending.as_ref().unwrap())
                    .unwrap()
                    .timer()
            );
            assert_eq!(c.release_hour, real.release_hour, "keeps the hour");
            assert_eq!(c.seq, real_seq + 1 + k as u64, "between this and the next");
        }
        // In the decoy, a check-in looks like one and sends a duress one.
        let shown = decoy.check_in(&twin_id, UnixTime(T0.0 + 7200)).unwrap();
        assert_eq!(shown.next_due, UnixTime(T0.0 + 4 * 3600));
        let sent = CheckIn::decode(stored(&decoy, &twin_id).pending.as_ref().unwrap()).unwrap();
        assert_eq!(sent.release_hour, real.release_hour);
        // A cancel there is the next duress check-in, not a cancel.
        decoy.cancel_timer(&twin_id).unwrap();
        let sent = CheckIn::decode(stored(&decoy, &twin_id).pending.as_ref().unwrap()).unwrap();
        assert_eq!(sent.action, timer::Action::CheckIn);
        assert_eq!(sent.release_hour, real.release_hour);
        // The next real check-in overtakes every duress one.
        p.check_in(&id, UnixTime(T0.0 + 3 * 3600)).unwrap();
        assert_eq!(stored(&p, &id).seq, 2 * STEP);
        // Cancelled and forgotten in the real profile: gone from the decoy.
        let mut t = stored(&p, &id);
        t.pending = None;
        p.put_item(ItemKind::Timer, &id, ACTIVE, &encode(&t).unwrap())
            .unwrap();
        p.forget_timer(&id, &t, true).unwrap();
        assert!(decoy.timers().unwrap().is_empty());
        assert!(
            p.sent_reports().unwrap().is_empty(),
            "the alert's record too"
        );
    }

    #[test]
    fn a_cancel_before_the_hold_went_forgets_it_here() {
        let dir = tempfile::tempdir().unwrap();
        let p = profile(dir.path());
        let id = p.set_timer(&draft(&p), &focal_point(), 2, 0, T0).unwrap();
        assert_eq!(p.sent_reports().unwrap().len(), 1, "the alert's record");
        p.cancel_timer(&id).unwrap();
        assert!(p.timers().unwrap().is_empty());
        assert!(p.sent_reports().unwrap().is_empty());
        assert!(p.next_check_in_due().unwrap().is_none());
        assert!(p.check_in(&id, T0).is_err());
    }
}
