//! Admission work (PROTOCOL.md §14): the effort the relay asks from its
//! load, and the check of an upload's proof.
//!
//! The relay reads no address and keeps nothing per client, so what it
//! knows of a flood is what the flood does to it: how full its storage is,
//! how full each mailbox is, how fast envelopes pour into each mailbox, how
//! long the queue to its writer is. From those it asks an effort per
//! envelope — none while it is quiet (below half), rising geometrically to
//! `max_effort` as a mailbox, the relay or the queue fills — and an upload
//! must carry work worth the sum over its envelopes, each at the higher of
//! the relay's effort and its mailbox's.
//!
//! How fast a mailbox fills counts beside how full it is, because a focal
//! point who fetches all day keeps her mailbox nearly empty under a flood:
//! measured on fill alone, the relay asked nothing while 840 junk
//! envelopes a second (40 MB/s) went through to her (BENCHMARKS.md
//! "Admission under attack"). A mailbox's inflow is a sum of its arrivals
//! that decays with a ten-minute time constant; a quarter of its envelope
//! cap arriving within that time counts as full (2 500 for a focal point:
//! far above a region's honest reports, a facilitator's bundle included).
//! It falls slowly, so the effort stays up for minutes after a burst
//! instead of opening the door each time she drains the mailbox. Mailboxes
//! are remembered in a bounded map (their ids are the sender's choice) that
//! keeps the hottest.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use amparo_protocol::UnixTime;
use amparo_protocol::admission::{self, Challenge, Proof};
use amparo_protocol::envelope::EnvelopeId;
use amparo_protocol::primitives::ed25519::SigningKey;

use crate::quota::{MailboxCap, Usage};

/// The request header that carries a proof (base64url, PROTOCOL.md §14).
pub const PROOF_HEADER: &str = "amparo-admission";
/// The answer header that says the effort a refused request must claim.
pub const EFFORT_HEADER: &str = "amparo-admission-effort";
/// Default effort per envelope at full pressure: about 0.2 s of one core
/// here per envelope, 1–2 s on a low-end phone; a 2-core flooder gets about
/// 10 envelopes/s in (PROTOCOL.md §14).
pub const DEFAULT_MAX_EFFORT: u32 = 64;
/// Length of a seed's period. A proof made for the epoch before the current
/// one is still good, so a phone has 10 to 20 minutes.
pub const EPOCH_SECONDS: u64 = 600;
/// Fill (of a mailbox, the relay or the writer's queue) from which effort
/// is asked.
const START: f64 = 0.5;
/// Most mailboxes remembered as filling.
const HOT_MAILBOXES: usize = 4096;
/// Time constant of a mailbox's inflow.
const INFLOW_TIME: Duration = Duration::from_secs(600);
/// The part of a mailbox's envelope cap that, arriving within
/// [`INFLOW_TIME`], counts as a full mailbox.
const INFLOW_FULL: f64 = 0.25;
/// Inflow below which a mailbox that is not filling is forgotten: a
/// focal point's single envelope is 4e-4, so one is remembered for about
/// a quarter of an hour (low inflows must add up: an attacker may send one
/// envelope per request).
const INFLOW_FORGET: f64 = 1e-4;
/// Fill as a fraction of this.
const ONE: u32 = 1 << 16;

fn to_fixed(fill: f64) -> u32 {
    if fill.is_nan() || fill <= 0.0 {
        0
    } else if fill >= 1.0 {
        ONE
    } else {
        // In [0, 65536): the conversion cannot overflow.
        (fill * f64::from(ONE)) as u32
    }
}

fn to_fill(fixed: u32) -> f64 {
    f64::from(fixed) / f64::from(ONE)
}

/// How full `used` is against `cap`: the higher of envelopes and bytes.
pub fn fill(used: Usage, cap: MailboxCap) -> f64 {
    let part = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    part(used.envelopes, cap.envelopes).max(part(used.bytes, cap.bytes))
}

/// What the relay knows of its load, shared by the writer (which observes)
/// and the upload route (which asks).
#[derive(Debug, Default)]
pub struct Pressure {
    /// Whether anyone asks (admission is on): else group commits tell
    /// nothing, and pay nothing for it.
    on: AtomicBool,
    global: AtomicU32,
    hot: Mutex<HashMap<[u8; 12], Hot>>,
}

/// What the relay knows of one mailbox's load.
#[derive(Debug, Clone, Copy)]
struct Hot {
    /// How full it was left (waiting against its cap).
    fill: f64,
    /// Arrivals, as a share of a full mailbox's worth ([`INFLOW_FULL`]),
    /// decayed to `at`.
    inflow: f64,
    at: Instant,
}

impl Hot {
    fn inflow_at(&self, now: Instant) -> f64 {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.inflow * (-dt / INFLOW_TIME.as_secs_f64()).exp()
    }

    /// The load that sets its effort: the higher of fill and inflow.
    fn load_at(&self, now: Instant) -> f64 {
        self.fill.max(self.inflow_at(now))
    }

    fn worth_keeping(&self, now: Instant) -> bool {
        self.fill >= START || self.inflow_at(now) >= INFLOW_FORGET
    }
}

impl Pressure {
    /// Whether group commits should tell how full they left things.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }
    /// The relay's storage is `fill` full (of its global cap or its disk).
    pub fn observe_global(&self, fill: f64) {
        self.global.store(to_fixed(fill), Ordering::Relaxed);
    }

    /// `mailbox` is `fill` full of its cap.
    pub fn observe(&self, mailbox: &[u8; 12], fill: f64) {
        self.update(mailbox, Instant::now(), |h| h.fill = fill);
    }

    /// `envelopes` arrived in `mailbox`, whose cap is `cap_envelopes`.
    pub fn arrived(&self, mailbox: &[u8; 12], envelopes: u64, cap_envelopes: u64) {
        self.arrived_at(mailbox, envelopes, cap_envelopes, Instant::now());
    }

    fn arrived_at(&self, mailbox: &[u8; 12], envelopes: u64, cap: u64, now: Instant) {
        let full = (cap as f64 * INFLOW_FULL).max(1.0);
        self.update(mailbox, now, |h| {
            h.inflow = h.inflow_at(now) + envelopes as f64 / full;
            h.at = now;
        });
    }

    /// Changes what is known of `mailbox`, keeping it only while it is
    /// filling or filled lately, in a map that keeps the hottest.
    fn update(&self, mailbox: &[u8; 12], now: Instant, change: impl FnOnce(&mut Hot)) {
        let Ok(mut hot) = self.hot.lock() else {
            return;
        };
        let mut h = hot.get(mailbox).copied().unwrap_or(Hot {
            fill: 0.0,
            inflow: 0.0,
            at: now,
        });
        change(&mut h);
        if !h.worth_keeping(now) {
            hot.remove(mailbox);
            return;
        }
        if hot.len() >= HOT_MAILBOXES && !hot.contains_key(mailbox) {
            // Full: what has cooled goes, else the coolest if cooler.
            hot.retain(|_, o| o.worth_keeping(now));
            if hot.len() >= HOT_MAILBOXES {
                let coolest = hot
                    .iter()
                    .map(|(m, o)| (*m, o.load_at(now)))
                    .min_by(|a, b| a.1.total_cmp(&b.1));
                match coolest {
                    Some((m, load)) if load < h.load_at(now) => {
                        hot.remove(&m);
                    }
                    _ => return,
                }
            }
        }
        hot.insert(*mailbox, h);
    }

    /// Whether `mailbox` is remembered as filling (its fill is worth
    /// reading again after an acknowledgement).
    pub fn is_hot(&self, mailbox: &[u8; 12]) -> bool {
        self.hot
            .lock()
            .is_ok_and(|h| h.get(mailbox).is_some_and(|h| h.fill >= START))
    }

    fn global(&self) -> f64 {
        to_fill(self.global.load(Ordering::Relaxed))
    }

    fn mailbox(&self, mailbox: &[u8; 12]) -> f64 {
        self.mailbox_at(mailbox, Instant::now())
    }

    fn mailbox_at(&self, mailbox: &[u8; 12], now: Instant) -> f64 {
        self.hot
            .lock()
            .ok()
            .and_then(|h| h.get(mailbox).map(|h| h.load_at(now)))
            .unwrap_or(0.0)
    }
}

/// Why an upload's work was not enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No proof came with it.
    Missing,
    /// The proof is not one (bad encoding, wrong epoch, wrong envelopes,
    /// too little effort, no solution).
    Invalid,
}

/// The admission policy of one relay.
#[derive(Debug)]
pub struct Admission {
    max_effort: u32,
    key: std::sync::Arc<SigningKey>,
    pressure: std::sync::Arc<Pressure>,
    seeds: Mutex<Vec<(u32, [u8; 32])>>,
}

impl Admission {
    /// Asks at most `max_effort` per envelope (0: never asks), with
    /// challenges signed by the relay's receipt key.
    pub fn new(
        max_effort: u32,
        key: std::sync::Arc<SigningKey>,
        pressure: std::sync::Arc<Pressure>,
    ) -> Admission {
        pressure.on.store(max_effort > 0, Ordering::Relaxed);
        Admission {
            max_effort: max_effort.min(admission::MAX_EFFORT),
            key,
            pressure,
            seeds: Mutex::new(Vec::with_capacity(2)),
        }
    }

    /// Whether the relay ever asks for work (`max_effort` above 0).
    pub fn enabled(&self) -> bool {
        self.max_effort > 0
    }

    /// The load the policy reads.
    pub fn pressure(&self) -> &Pressure {
        &self.pressure
    }

    /// Effort per envelope at `fill`: none below half, then doubling in
    /// even steps to `max_effort` at full.
    pub fn effort_at(&self, fill: f64) -> u32 {
        if self.max_effort == 0 || fill.is_nan() || fill < START {
            return 0;
        }
        let t = ((fill - START) / (1.0 - START)).clamp(0.0, 1.0);
        let steps = f64::from(self.max_effort.max(1)).log2();
        // At most 20 doublings: the conversion cannot overflow.
        let doublings = (t * steps).ceil() as u32;
        1u32.checked_shl(doublings)
            .unwrap_or(u32::MAX)
            .min(self.max_effort)
    }

    /// The effort asked of every envelope now, whatever its mailbox: from
    /// the relay's storage and the writer's queue (`queue_fill`).
    pub fn relay_effort(&self, queue_fill: f64) -> u32 {
        self.effort_at(self.pressure.global().max(queue_fill))
    }

    /// The effort an upload of envelopes for `mailboxes` (one per envelope)
    /// must claim.
    pub fn required<'m>(
        &self,
        mailboxes: impl IntoIterator<Item = &'m [u8; 12]>,
        queue_fill: f64,
    ) -> u32 {
        if self.max_effort == 0 {
            return 0;
        }
        let relay = self.relay_effort(queue_fill);
        mailboxes.into_iter().fold(0u32, |sum, m| {
            let own = self.effort_at(self.pressure.mailbox(m));
            sum.saturating_add(relay.max(own))
        })
    }

    /// The epoch of `now`.
    pub fn epoch(now: UnixTime) -> u32 {
        u32::try_from(now.0 / EPOCH_SECONDS).unwrap_or(u32::MAX)
    }

    /// The challenge to serve now.
    pub fn challenge(&self, now: UnixTime, queue_fill: f64) -> Challenge {
        // Good until the end of the next epoch (the relay still takes it
        // then), less a minute for clocks and the trip.
        let left = EPOCH_SECONDS - now.0 % EPOCH_SECONDS;
        let good = (left + EPOCH_SECONDS).saturating_sub(60);
        Challenge::sign(
            &self.key,
            Self::epoch(now),
            self.relay_effort(queue_fill),
            u32::try_from(good).unwrap_or(u32::MAX),
        )
    }

    fn seed(&self, epoch: u32) -> [u8; 32] {
        let Ok(mut seeds) = self.seeds.lock() else {
            return admission::seed_for(&self.key, epoch);
        };
        if let Some((_, s)) = seeds.iter().find(|(e, _)| *e == epoch) {
            return *s;
        }
        let s = admission::seed_for(&self.key, epoch);
        // Two epochs are good at a time: the oldest held goes.
        if seeds.len() >= 2
            && let Some(oldest) = (0..seeds.len()).min_by_key(|i| seeds.get(*i).map(|x| x.0))
        {
            seeds.swap_remove(oldest);
        }
        seeds.push((epoch, s));
        s
    }

    /// Checks the proof in `header` (base64url of PROTOCOL.md §14's proof)
    /// for the envelopes `ids` against `required` effort at `now`. Cheap
    /// checks first: the epoch and the effort claimed before the Equi-X
    /// verification. The answer is the effort the proof holds for (at least
    /// `required`; 0 when nothing is asked), which orders the writer's queue.
    pub fn check(
        &self,
        header: Option<&[u8]>,
        ids: &[EnvelopeId],
        required: u32,
        now: UnixTime,
    ) -> Result<u32, Refusal> {
        if required == 0 {
            return Ok(0);
        }
        let header = header.ok_or(Refusal::Missing)?;
        let text = std::str::from_utf8(header).map_err(|_| Refusal::Invalid)?;
        let proof = Proof::from_header(text).map_err(|_| Refusal::Invalid)?;
        let epoch = Self::epoch(now);
        if proof.epoch != epoch && proof.epoch.checked_add(1) != Some(epoch) {
            return Err(Refusal::Invalid);
        }
        if proof.effort < required {
            return Err(Refusal::Invalid);
        }
        admission::verify(&proof, &self.seed(proof.epoch), ids, required)
            .map_err(|_| Refusal::Invalid)?;
        Ok(proof.effort)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amparo_protocol::entropy::DangerousSeededEntropy;
    use std::sync::Arc;

    fn policy(max: u32) -> Admission {
        policy_of(max, 3)
    }

    fn policy_of(max: u32, key: u8) -> Admission {
        Admission::new(
            max,
            Arc::new(SigningKey::from_seed(&[key; 32]).unwrap()),
            Arc::new(Pressure::default()),
        )
    }

    #[test]
    fn effort_is_none_below_half_and_doubles_to_the_maximum() {
        let a = policy(64);
        assert_eq!(a.effort_at(0.0), 0);
        assert_eq!(a.effort_at(0.49), 0);
        assert_eq!(a.effort_at(0.5), 1);
        let steps: Vec<u32> = [0.55, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0]
            .iter()
            .map(|f| a.effort_at(*f))
            .collect();
        assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{steps:?}");
        assert_eq!(a.effort_at(1.0), 64);
        assert_eq!(a.effort_at(5.0), 64);
        assert_eq!(policy(0).effort_at(1.0), 0, "off");
    }

    #[test]
    fn an_upload_pays_for_each_envelope_at_its_mailbox_or_the_relays_effort() {
        let a = policy(64);
        let (full, quiet) = ([1u8; 12], [2u8; 12]);
        assert_eq!(a.required([&full, &quiet], 0.0), 0, "quiet relay");
        a.pressure().observe(&full, 1.0);
        assert!(a.pressure().is_hot(&full));
        assert_eq!(a.required([&full, &full, &quiet], 0.0), 128);
        // The writer's queue filling raises every envelope's effort.
        assert_eq!(a.required([&quiet], 1.0), 64);
        a.pressure().observe_global(0.75);
        assert_eq!(a.required([&quiet], 0.0), a.effort_at(0.75));
        // Drained below half: forgotten.
        a.pressure().observe(&full, 0.2);
        assert!(!a.pressure().is_hot(&full));
        assert_eq!(a.required([&full], 0.0), a.effort_at(0.75));
    }

    #[test]
    fn a_mailbox_that_fills_fast_asks_work_though_it_is_drained_and_cools_slowly() {
        let a = policy(64);
        let p = a.pressure();
        let m = [5u8; 12];
        let t0 = Instant::now();
        // A focal point's mailbox (cap 10 000): 2 000 envelopes in a minute,
        // one at a time, each fetched at once (the fill stays 0).
        for i in 0..2000u64 {
            let at = t0 + Duration::from_millis(i * 30);
            p.arrived_at(&m, 1, 10_000, at);
            p.observe(&m, 0.0);
        }
        let end = t0 + Duration::from_secs(60);
        let load = p.mailbox_at(&m, end);
        assert!((0.7..0.8).contains(&load), "{load}");
        assert!(a.effort_at(load) >= 8, "{}", a.effort_at(load));
        // 2 500 in the time constant is a full mailbox's worth.
        p.arrived_at(&m, 1000, 10_000, end);
        assert_eq!(a.effort_at(p.mailbox_at(&m, end)), 64);
        // It falls slowly: still asked five minutes later, gone after half
        // an hour.
        let later = |s: u64| p.mailbox_at(&m, end + Duration::from_secs(s));
        assert!(a.effort_at(later(300)) >= 4, "{}", later(300));
        assert_eq!(a.effort_at(later(1800)), 0, "{}", later(1800));
        // A few honest reports ask nothing.
        let quiet = [6u8; 12];
        p.arrived_at(&quiet, 30, 10_000, end);
        assert_eq!(a.effort_at(p.mailbox_at(&quiet, end)), 0);
        // A reply mailbox (cap 64): a conversation's few messages ask
        // nothing, a flood of it does.
        let reply = [7u8; 12];
        p.arrived_at(&reply, 4, 64, end);
        assert_eq!(a.effort_at(p.mailbox_at(&reply, end)), 0);
        p.arrived_at(&reply, 16, 64, end);
        assert_eq!(a.effort_at(p.mailbox_at(&reply, end)), 64);
        // Inflow alone does not make it "hot" (that is about the fill that
        // an acknowledgement changes).
        assert!(!p.is_hot(&reply));
    }

    #[test]
    fn the_hot_map_is_bounded_and_keeps_the_fullest() {
        let p = Pressure::default();
        for i in 0..(HOT_MAILBOXES as u32 + 100) {
            let mut m = [0u8; 12];
            m[..4].copy_from_slice(&i.to_be_bytes());
            p.observe(&m, 0.6);
        }
        assert_eq!(p.hot.lock().unwrap().len(), HOT_MAILBOXES);
        p.observe(&[9; 12], 0.9);
        assert!(p.is_hot(&[9; 12]));
        assert_eq!(p.hot.lock().unwrap().len(), HOT_MAILBOXES);
    }

    #[test]
    fn a_proof_admits_its_envelopes_in_its_epoch_and_the_next_only() {
        let a = policy(64);
        let now = UnixTime(1_790_000_000);
        let c = a.challenge(now, 0.0);
        assert_eq!(c.effort, 0);
        assert!(c.good_for_seconds >= 540);
        let ids = [EnvelopeId([1; 16]), EnvelopeId([2; 16])];
        let mut e = DangerousSeededEntropy::new(b"server-admission");
        let proof = admission::solve(&c, &ids, 8, &mut e, &mut |_| true)
            .unwrap()
            .proof
            .unwrap();
        let header = proof.to_header();
        let h = Some(header.as_bytes());
        assert_eq!(a.check(None, &ids, 0, now), Ok(0), "nothing asked");
        assert_eq!(a.check(None, &ids, 8, now), Err(Refusal::Missing));
        assert_eq!(a.check(h, &ids, 8, now), Ok(8));
        assert_eq!(a.check(h, &ids, 4, now), Ok(8), "paid more than asked");
        assert_eq!(a.check(h, &ids, 9, now), Err(Refusal::Invalid));
        assert_eq!(
            a.check(h, &ids[..1], 8, now),
            Err(Refusal::Invalid),
            "other envelopes"
        );
        let next = UnixTime(now.0 + EPOCH_SECONDS);
        assert_eq!(a.check(h, &ids, 8, next), Ok(8), "the epoch after");
        let later = UnixTime(now.0 + 2 * EPOCH_SECONDS);
        assert_eq!(a.check(h, &ids, 8, later), Err(Refusal::Invalid));
        let before = UnixTime(now.0 - EPOCH_SECONDS);
        assert_eq!(a.check(h, &ids, 8, before), Err(Refusal::Invalid));
        assert_eq!(
            a.check(Some(b"not base64!"), &ids, 8, now),
            Err(Refusal::Invalid)
        );
        // Another relay's proof (another key, another seed).
        let b = policy_of(64, 4);
        assert_eq!(b.check(h, &ids, 8, now), Err(Refusal::Invalid));
    }
}
