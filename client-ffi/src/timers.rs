//! Check-in timers for apps (PROTOCOL.md §17): she sets an alert for a
//! focal point that the relay releases if she stops checking in. Reminders
//! are the app's: schedule one for `next_check_in_due`.
//!
//! What the app must say, in her language, when she sets one: the alert
//! goes even if her phone is taken, once a sync has sent it; and if she is
//! made to open the app with her duress PIN, checking in there looks the
//! same but does not postpone the alert (nor does cancelling there cancel
//! it).

use amparo_core::timers;
use amparo_protocol::b64;

use crate::{Profile, Result, id16, now};

/// Where a timer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TimerPhase {
    /// Running: she checks in before `next_due`, or the alert goes.
    Active,
    /// Cancelled; the cancel goes at the next sync.
    Cancelling,
    /// The alert went to the focal point.
    Released,
}

/// A check-in timer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TimerStatus {
    /// Its id.
    pub id: String,
    /// The focal point the alert is for (directory id: show its name).
    pub focal_point: String,
    /// The hour she set it (hours since the epoch).
    pub set_hour: u32,
    /// Hours each check-in buys.
    pub every_hours: u32,
    /// Hours of grace after a missed check-in.
    pub grace_hours: u32,
    /// When the next check-in is due (seconds since the epoch): remind her
    /// before.
    pub next_due: u64,
    /// The hour the relay releases the alert if she has not checked in.
    pub release_hour: u32,
    /// Whether the relay holds the alert yet (false until a sync sends it:
    /// until then it cannot go without the phone).
    pub held: bool,
    /// A check-in or cancel waits for the next sync (no signal yet).
    pub waiting_to_send: bool,
    /// Where it is.
    pub phase: TimerPhase,
}

impl From<timers::TimerStatus> for TimerStatus {
    fn from(t: timers::TimerStatus) -> Self {
        TimerStatus {
            id: b64::encode(&t.id),
            focal_point: t.focal_point,
            set_hour: t.set_hour,
            every_hours: t.every_hours,
            grace_hours: t.grace_hours,
            next_due: t.next_due.0,
            release_hour: t.release_hour,
            held: t.held,
            waiting_to_send: t.waiting_to_send,
            phase: match t.phase {
                timers::TimerPhase::Active => TimerPhase::Active,
                timers::TimerPhase::Cancelling => TimerPhase::Cancelling,
                timers::TimerPhase::Released => TimerPhase::Released,
            },
        }
    }
}

#[uniffi::export]
impl Profile {
    /// Sets a check-in timer: the draft (where she is going, who she is
    /// meeting, at most a small photo: it must fit one envelope) becomes an
    /// alert for `focal_point_id`, due in `every_hours` and released
    /// `grace_hours` after a missed check-in. The draft is deleted; the
    /// alert goes to the relay at the next sync. Returns the timer's id.
    pub fn set_timer(
        &self,
        draft_id: String,
        focal_point_id: String,
        every_hours: u32,
        grace_hours: u32,
    ) -> Result<String> {
        let id = id16(&draft_id)?;
        self.with(|p| {
            let fp = self.focal_point(p, &focal_point_id)?;
            Ok(b64::encode(&p.set_timer(
                &id,
                &fp,
                every_hours,
                grace_hours,
                now(),
            )?))
        })
    }

    /// Every timer, running ones first, soonest due first.
    pub fn timers(&self) -> Result<Vec<TimerStatus>> {
        self.with(|p| Ok(p.timers()?.into_iter().map(Into::into).collect()))
    }

    /// When the next check-in is due (seconds since the epoch), for the
    /// app's reminder; null without a running timer.
    pub fn next_check_in_due(&self) -> Result<Option<u64>> {
        self.with(|p| Ok(p.next_check_in_due()?.map(|t| t.0)))
    }

    /// Checks in: the next check-in is due `every_hours` from now. Sent at
    /// the next sync. In the profile the duress PIN opens, it looks the
    /// same and does not postpone the alert.
    pub fn check_in(&self, timer_id: String) -> Result<TimerStatus> {
        let id = id16(&timer_id)?;
        self.with(|p| Ok(p.check_in(&id, now())?.into()))
    }

    /// Cancels a timer when she is safe: the alert is deleted at the relay
    /// at the next sync. In the profile the duress PIN opens, it only looks
    /// cancelled.
    pub fn cancel_timer(&self, timer_id: String) -> Result<()> {
        let id = id16(&timer_id)?;
        self.with(|p| Ok(p.cancel_timer(&id)?))
    }
}
