//! A check-in timer's hold and check-ins carried by a facilitator
//! (PROTOCOL.md §17.7): in the survivor's outbox bundle, kept by the
//! facilitator's phone, sent at its sync. Each is signed by the timer key,
//! so the facilitator can neither forge one nor change it; she learns a
//! timer id and an hour, never the alert (sealed) or whose it is.

use amparo_protocol::bundle::BundleEncoder;
use amparo_protocol::primitives::sha256_prefix;
use amparo_protocol::timer::{CheckIn, Hold, TimerId};

use super::{ACTIVE, CANCELLING};
use crate::Result;
use crate::relay::{RelayClient, TimerAnswer};
use crate::store::{ItemKind, Profile};

/// The state, under [`ItemKind::Carried`], of a carried hold or check-in
/// (the envelope states are 0 to 3).
const CARRIED_TIMER: u8 = 4;
/// Most holds and check-ins one facilitator carries at once: past it, an
/// import drops the rest (each survivor's phone still holds hers).
pub const MAX_CARRIED_TIMER_ITEMS: usize = 512;

const HOLD: u8 = 0x06;
const CHECK_IN: u8 = 0x07;

/// One carried item per timer and kind: a later check-in replaces an
/// earlier one for the same timer.
fn item_id(kind: u8, timer: &TimerId) -> [u8; 16] {
    sha256_prefix(&[b"amparo-carried-timer", &[kind], &timer.0])
}

/// What importing and sending carried timer items did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CarriedTimers {
    /// Holds and check-ins taken on (import) or sent (sync).
    pub items: usize,
    /// Dropped at import: the carrying bound was reached.
    pub dropped: usize,
}

impl Profile {
    /// Adds her timers' unsent holds and check-ins to an outbox bundle.
    pub(crate) fn bundle_timers(&self, enc: &mut BundleEncoder) -> Result<()> {
        for id in self.item_ids(ItemKind::Timer, None)? {
            let (state, t) = self.stored_timer(&id)?;
            // The decoy has no timer key: what it would send is a duress
            // check-in, which it sends itself.
            if t.key.is_none() || (state != ACTIVE && state != CANCELLING) {
                continue;
            }
            if let Some(h) = &t.hold {
                enc.hold(&Hold::decode(h)?)?;
            }
            if let Some(c) = &t.pending {
                enc.check_in(&CheckIn::decode(c)?)?;
            }
        }
        Ok(())
    }

    /// Takes on a carried hold (inside the import's transaction).
    pub(crate) fn carry_hold(&self, hold: &Hold, report: &mut CarriedTimers) -> Result<()> {
        self.carry(
            item_id(HOLD, &hold.timer()),
            HOLD,
            &hold.encode(),
            None,
            report,
        )
    }

    /// Takes on a carried check-in, unless one with a higher sequence
    /// number for the same timer is carried already.
    pub(crate) fn carry_check_in(&self, c: &CheckIn, report: &mut CarriedTimers) -> Result<()> {
        self.carry(
            item_id(CHECK_IN, &c.timer()),
            CHECK_IN,
            &c.encode(),
            Some(c.seq),
            report,
        )
    }

    fn carry(
        &self,
        id: [u8; 16],
        kind: u8,
        bytes: &[u8],
        seq: Option<u64>,
        report: &mut CarriedTimers,
    ) -> Result<()> {
        let held = self.get_item(ItemKind::Carried, &id)?;
        if let (Some((_, old)), Some(seq)) = (&held, seq)
            && let Some(old) = old.get(1..).and_then(|b| CheckIn::decode(b).ok())
            && old.seq >= seq
        {
            return Ok(());
        }
        if held.is_none()
            && self.item_ids(ItemKind::Carried, Some(CARRIED_TIMER))?.len()
                >= MAX_CARRIED_TIMER_ITEMS
        {
            report.dropped += 1;
            return Ok(());
        }
        let mut value = vec![kind];
        value.extend_from_slice(bytes);
        self.put_item(ItemKind::Carried, &id, CARRIED_TIMER, &value)?;
        report.items += 1;
        Ok(())
    }

    /// Sends the carried holds and check-ins; each leaves this phone once
    /// the relay answered it (taken, or refused for good), and stays for a
    /// later sync when the relay cannot take it now.
    pub(crate) async fn send_carried_timers(&self, relay: &RelayClient) -> Result<usize> {
        let mut sent = 0;
        for id in self.item_ids(ItemKind::Carried, Some(CARRIED_TIMER))? {
            let Some((_, value)) = self.get_item(ItemKind::Carried, &id)? else {
                continue;
            };
            let answer = match (value.first(), value.get(1..)) {
                (Some(&HOLD), Some(bytes)) => match Hold::decode(bytes) {
                    Ok(h) => Some(relay.hold(bytes, &h.envelope).await?),
                    Err(_) => None,
                },
                (Some(&CHECK_IN), Some(bytes)) => Some(relay.check_in(bytes).await?),
                _ => None,
            };
            if answer == Some(TimerAnswer::Later) {
                continue;
            }
            self.delete_item(ItemKind::Carried, &id)?;
            sent += usize::from(answer.is_some());
        }
        Ok(sent)
    }

    /// Holds and check-ins this phone carries for others.
    pub(crate) fn carried_timer_items(&self) -> Result<usize> {
        Ok(self.item_ids(ItemKind::Carried, Some(CARRIED_TIMER))?.len())
    }
}
