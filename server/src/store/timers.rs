//! What both backends share about check-in timers (PROTOCOL.md §17): the
//! alert to hold, the caps on holding, and what a hold or a check-in did.
//!
//! A timer row is (timer id, release hour, last sequence number, the focal
//! point's mailbox, the sealed alert): nothing that names a sender, and no
//! time but the hour it is released. A cancelled timer keeps its row,
//! without mailbox and alert, until its release hour passes, so a copy of
//! its hold sent again cannot bring the alert back.

use amparo_protocol::ProtocolError;
use amparo_protocol::timer::{self, CheckIn, Outcome, TimerState};

use crate::quota::{Quota, RelayUsage};

/// Default most timers on record at once (held and cancelled), on
/// PostgreSQL of all relays sharing the database.
pub const DEFAULT_MAX_TIMERS: u64 = 100_000;
/// Default most alerts held for one focal point's mailbox at once.
pub const DEFAULT_MAILBOX_MAX_HELD: u64 = 2_000;
/// Most alerts one release pass moves in one transaction (the pass goes on
/// with the next batch until none is due).
pub const RELEASE_BATCH: u32 = 64;

/// Caps on timers, beside the storage caps (alerts held count towards the
/// global cap, `max_stored_bytes`, as bytes waiting in mailboxes do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerLimits {
    /// Timers on record (held, and cancelled ones until their hour).
    pub max_timers: u64,
    /// Alerts held for one focal point's mailbox.
    pub mailbox_max_held: u64,
}

impl Default for TimerLimits {
    fn default() -> Self {
        TimerLimits {
            max_timers: DEFAULT_MAX_TIMERS,
            mailbox_max_held: DEFAULT_MAILBOX_MAX_HELD,
        }
    }
}

impl TimerLimits {
    /// No limit (tests that hold without a relay).
    pub const UNLIMITED: TimerLimits = TimerLimits {
        max_timers: u64::MAX,
        mailbox_max_held: u64::MAX,
    };
}

/// An alert to hold, its hold already verified (signature, release hour).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHold {
    /// The timer's id.
    pub timer: [u8; 12],
    /// When it is released (hours since the epoch).
    pub release_hour: u32,
    /// The focal point's mailbox the alert is sealed to.
    pub mailbox: [u8; 12],
    /// The sealed alert (an envelope).
    pub envelope: Vec<u8>,
}

impl NewHold {
    /// What a hold that was just stored answers: its hour, no check-in yet.
    pub(crate) fn stored(&self) -> HoldPlaced {
        HoldPlaced::Held {
            state: TimerState {
                release_hour: self.release_hour,
                seq: 0,
            },
            fresh: true,
        }
    }
}

/// Why an alert was not held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldFull {
    /// The relay is at its global cap or its disk watermark.
    Relay,
    /// The focal point's mailbox holds as many alerts as it may.
    Mailbox,
    /// The relay has as many timers on record as it may.
    Timers,
}

/// What became of a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldPlaced {
    /// Held now (`fresh`), or this same alert was held already: the timer's
    /// state on record (a check-in may have moved it since).
    Held {
        /// Release hour and last sequence number.
        state: TimerState,
        /// Whether this call stored it.
        fresh: bool,
    },
    /// The timer is on record with another alert, or was cancelled: a
    /// timer is held once.
    Taken,
    /// Over a cap: nothing was written.
    Full(HeldFull),
}

/// What a check-in did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedIn {
    /// Taken: the timer's new state.
    Held(TimerState),
    /// Taken: the alert is deleted.
    Cancelled,
    /// No alert is held for this timer (never held, released, or
    /// cancelled).
    Unknown,
    /// Refused, nothing changed: why.
    Refused(ProtocolError),
}

/// A timer row as a check-in or a hold reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimerRow {
    pub state: TimerState,
    /// The alert held; `None` once cancelled.
    pub envelope: Option<Vec<u8>>,
}

/// Decides a hold against the row on record for its timer, the relay's
/// usage and the alerts held for its mailbox: `Ok(None)` means insert it.
pub(crate) fn place_hold(
    hold: &NewHold,
    row: Option<&TimerRow>,
    usage: &RelayUsage,
    held_in_mailbox: u64,
    quota: &Quota,
    limits: &TimerLimits,
) -> Option<HoldPlaced> {
    if let Some(row) = row {
        return Some(match &row.envelope {
            Some(held) if *held == hold.envelope => HoldPlaced::Held {
                state: row.state,
                fresh: false,
            },
            _ => HoldPlaced::Taken,
        });
    }
    let len = hold.envelope.len() as u64;
    if usage.timers.saturating_add(1) > limits.max_timers {
        return Some(HoldPlaced::Full(HeldFull::Timers));
    }
    if held_in_mailbox.saturating_add(1) > limits.mailbox_max_held {
        return Some(HoldPlaced::Full(HeldFull::Mailbox));
    }
    if usage.counted_bytes().saturating_add(len) > quota.limits.max_stored_bytes
        || quota.disk_room.is_some_and(|room| len > room)
    {
        return Some(HoldPlaced::Full(HeldFull::Relay));
    }
    None
}

/// Decides a check-in against the row on record for its timer at
/// `now_hour`. A timer whose hour has come is released, whether or not
/// the release pass has moved it yet: a check-in cannot take it back.
pub(crate) fn decide_check_in(
    row: Option<&TimerRow>,
    check_in: &CheckIn,
    now_hour: u32,
) -> CheckedIn {
    let Some(row) = row.filter(|r| r.envelope.is_some()) else {
        return CheckedIn::Unknown;
    };
    if row.state.release_hour <= now_hour {
        return CheckedIn::Refused(ProtocolError::Invalid(
            "this timer's hour has come: its alert is released",
        ));
    }
    match timer::apply(row.state, check_in, now_hour) {
        Ok(Outcome::Hold(state)) => CheckedIn::Held(state),
        Ok(Outcome::Cancel) => CheckedIn::Cancelled,
        Err(e) => CheckedIn::Refused(e),
    }
}
