//! The statistics sum (PROTOCOL.md §16): offices send masked months, the
//! coordinator learns only their sum.
//!
//! An office: [`Profile::prepare_aggregation`] makes a year of month keys,
//! splits their secrets among the other offices of the directory and
//! queues the shares and the signed public keys; rounds and unmask
//! requests arrive in its mailbox ([`Profile::file_aggregation`]);
//! [`Profile::answer_aggregation`] sends the masked month of a round
//! and, when asked, the shares it holds — each only once, by the rules
//! that keep the coordinator from unmasking one office.
//!
//! The coordinator: keys, masked vectors and shares arrive in its
//! statistics mailbox ([`Profile::fetch_statistics`] files them);
//! [`Profile::open_round`] and [`Profile::close_round`] queue the round
//! and the unmask request; when enough shares are in, the sum is unmasked,
//! checked, put through disclosure control, and only that table is kept:
//! the masked vectors and the shares are deleted.

use std::collections::{BTreeMap, HashSet};

use amparo_protocol::UnixTime;
use amparo_protocol::aggregation::shamir::{self, Secret, Share};
use amparo_protocol::aggregation::{
    self as agg, COORDINATOR, Keys, Layout, MAX_COHORT, MIN_SURVIVORS, Masked, Member, Message,
    MonthKey, MonthShares, Rebuilt, Reveal, Revealed, Round, SETTINGS, Shares, SignedMessage,
    Unmask,
};
use amparo_protocol::directory::Directory;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientPublic;
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::primitives::ed25519::{SigningKey, VerifyingKey};
use amparo_protocol::primitives::x25519;
use amparo_protocol::statistics::{Dimension, GbvContext, Month, MonthTable, RowKey};
use serde::{Deserialize, Serialize};

use super::{MonthStats, StatsRow};
use crate::store::{ItemKind, Profile, system_now};
use crate::survivor::{decode, encode};
use crate::{CoreError, Result};

/// Item states (kind [`ItemKind::Statistics`]) of the sum's records.
const OWN_MONTH: u8 = 3;
const HELD_SHARE: u8 = 4;
const OFFICE_ROUND: u8 = 5;
const COORD_KEY: u8 = 6;
const COORD_ROUND: u8 = 7;
const MASKED: u8 = 8;
const REVEAL: u8 = 9;
const SUM: u8 = 10;
const OPTED_IN: u8 = 11;
const EARLY_UNMASK: u8 = 12;
const KEYED_THROUGH: u8 = 13;

/// Most subsets of shares tried to rebuild one secret when some holder
/// revealed a wrong share.
const REBUILD_TRIES: usize = 4096;

/// Steps `pick` (sorted indices below `n`) to the next combination in
/// lexicographic order; false after the last.
fn next_combination(pick: &mut [usize], n: usize) -> bool {
    let k = pick.len();
    let mut i = k;
    while i > 0 {
        i -= 1;
        let room = n - (k - i);
        if pick.get(i).is_some_and(|v| *v < room) {
            let start = pick.get(i).map_or(0, |v| v + 1);
            for (j, slot) in pick.iter_mut().enumerate().skip(i) {
                *slot = start + (j - i);
            }
            return true;
        }
    }
    false
}

/// How many months ahead an office makes keys for.
pub const KEY_MONTHS: u32 = 12;
/// Months before the current one that messages may still be about.
const MONTHS_BACK: u32 = 13;
/// The id a summed table names as its office.
pub const SUM_FROM: &str = "all-offices";

/// An office's secrets for one of its months.
#[derive(Serialize, Deserialize)]
struct OwnMonth {
    month: Month,
    mask_secret: [u8; 32],
    self_secret: [u8; 32],
    key: MonthKey,
}

/// A share this office holds of another office's month.
#[derive(Serialize, Deserialize)]
struct HeldShare {
    office: String,
    share: MonthShares,
}

/// A round as an office sees it.
#[derive(Serialize, Deserialize)]
struct OfficeRound {
    round: Round,
    unmask: Option<Unmask>,
    /// It sent its masked month.
    submitted: bool,
    /// The survivors it revealed shares for (once only).
    revealed_for: Option<Vec<String>>,
    /// Why it would not send its month, if it would not.
    refused: Option<String>,
    /// Why it would not reveal the shares it holds (a round or an unmask
    /// request it does not trust), if it would not. An office that cannot
    /// send (no keys, published alone) still reveals as a holder.
    #[serde(default)]
    reveal_refused: Option<String>,
}

/// An office's key for a month, as the coordinator holds it.
#[derive(Serialize, Deserialize)]
struct CoordKey {
    office: String,
    holders: Vec<String>,
    key: MonthKey,
}

/// A round as the coordinator keeps it.
#[derive(Serialize, Deserialize)]
struct CoordRound {
    round: Round,
    /// Everyone the round and the unmask request go to: the cohort and the
    /// holders of its members' shares.
    recipients: Vec<String>,
    unmask: Option<Unmask>,
    finished: bool,
    /// Why the sum could not be made (the round is over without one).
    #[serde(default)]
    failed: Option<String>,
    /// How many holders had answered when the round ended.
    #[serde(default)]
    answered: usize,
}

/// A month's sum, after disclosure control: all the coordinator keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummedMonth {
    /// The offices whose months are in it.
    pub offices: Vec<String>,
    /// The table, as [`MonthStats::shareable`] makes it.
    pub table: MonthTable,
}

/// What [`Profile::answer_aggregation`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregationAnswers {
    /// Months whose masked counts were queued.
    pub masked: Vec<Month>,
    /// Months whose shares were queued.
    pub revealed: Vec<Month>,
    /// Months this office would not take part in, and why.
    pub refused: Vec<(Month, String)>,
}

/// Where a round stands, as an office sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeRoundStatus {
    /// The month.
    pub month: Month,
    /// The offices the coordinator put in the round (check that they are
    /// the offices you know: the coordinator writes the directory).
    pub cohort: Vec<String>,
    /// This office sent its masked month.
    pub sent: bool,
    /// The survivors this office revealed shares for.
    pub revealed_for: Option<Vec<String>>,
    /// Why this office would not take part.
    pub refused: Option<String>,
}

/// Where a coordinator's round stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundStatus {
    /// The month.
    pub month: Month,
    /// The cohort.
    pub cohort: Vec<String>,
    /// Offices whose masked months are in.
    pub sent: Vec<String>,
    /// The survivors, once the unmask request is out.
    pub survivors: Option<Vec<String>>,
    /// Holders who answered (kept when the round ends).
    pub answered: usize,
    /// The sum is done.
    pub finished: bool,
    /// Why the sum could not be made.
    pub failed: Option<String>,
}

/// The first region of `layout` served, per `directory`, by from 1 to
/// [`MIN_SURVIVORS`]` − 1` of `offices`: its row of the sum would be (nearly)
/// one office's counts, which the sum exists to hide.
pub fn singled_out<'a>(
    layout: &'a Layout,
    directory: &Directory,
    offices: &[String],
) -> Option<&'a str> {
    layout
        .regions
        .iter()
        .find(|region| {
            let serving = directory
                .focal_points
                .iter()
                .filter(|f| offices.contains(&f.id) && f.regions.contains(region))
                .count();
            (1..MIN_SURVIVORS).contains(&serving)
        })
        .map(String::as_str)
}

/// The month's counts laid out as `layout` says.
pub fn counts_vector(stats: &MonthStats, layout: &Layout) -> Result<Vec<u32>> {
    let mut v = vec![0u32; layout.len()];
    let count = |x: u64| u32::try_from(x).map_err(|_| CoreError::Invalid("count too large"));
    for row in &stats.rows {
        let start = layout.row_start(row.key.region.as_deref(), row.key.setting);
        let mut at = start;
        v[at] = v[at].wrapping_add(count(row.total)?);
        at += 1;
        for (d, cells) in Dimension::ALL.iter().zip(&row.cells) {
            for c in 0..d.columns().len() {
                v[at + c] = v[at + c].wrapping_add(count(cells.get(c).copied().unwrap_or(0))?);
            }
            at += d.columns().len();
        }
    }
    let ctx = layout.context_start();
    for (i, flag) in GbvContext::ALL.iter().enumerate() {
        v[ctx + i] = count(stats.context.get(flag).copied().unwrap_or(0))?;
    }
    Ok(v)
}

/// The month's counts from a summed vector, refused unless every row's
/// columns add up to its total in every dimension and no count is absurd
/// (a wrong vector or a wrong share gives noise, which does not).
pub fn stats_from_vector(v: &[u32], layout: &Layout, month: Month) -> Result<MonthStats> {
    let bad = CoreError::Invalid(
        "the statistics sum does not add up: an office sent a wrong vector or a wrong share",
    );
    if v.len() != layout.len() {
        return Err(bad);
    }
    let max = amparo_protocol::statistics::MAX_COUNT;
    let mut rows = Vec::new();
    let width = agg::row_width();
    let mut start = 0;
    for region in layout.row_keys() {
        for setting in SETTINGS {
            let block = &v[start..start + width];
            start += width;
            let total = u64::from(block[0]);
            if total > max {
                return Err(bad);
            }
            let mut cells = Vec::new();
            let mut at = 1;
            for d in Dimension::ALL {
                let n = d.columns().len();
                let col: Vec<u64> = block[at..at + n].iter().map(|x| u64::from(*x)).collect();
                if col.iter().sum::<u64>() != total {
                    return Err(bad);
                }
                cells.push(col);
                at += n;
            }
            if total > 0 {
                rows.push(StatsRow {
                    key: RowKey {
                        region: region.map(str::to_string),
                        setting,
                    },
                    total,
                    cells,
                });
            }
        }
    }
    let counted: u64 = rows.iter().map(|r| r.total).sum();
    let mut context = BTreeMap::new();
    for (i, flag) in GbvContext::ALL.iter().enumerate() {
        let n = u64::from(v[layout.context_start() + i]);
        if n > counted {
            return Err(bad);
        }
        if n > 0 {
            context.insert(*flag, n);
        }
    }
    Ok(MonthStats {
        month,
        cases: counted,
        counted,
        excluded: BTreeMap::new(),
        rows,
        context,
    })
}

impl Profile {
    fn agg_id(&self, name: String) -> [u8; 16] {
        self.fixed_id(format!("aggregation-{name}").as_bytes())
    }

    fn get_record<T: for<'de> Deserialize<'de>>(&self, id: &[u8; 16]) -> Result<Option<T>> {
        self.get_item(ItemKind::Statistics, id)?
            .map(|(_, b)| decode::<T>(&b, "statistics sum record"))
            .transpose()
    }

    fn records<T: for<'de> Deserialize<'de>>(&self, state: u8) -> Result<Vec<([u8; 16], T)>> {
        let mut out = Vec::new();
        for id in self.item_ids(ItemKind::Statistics, Some(state))? {
            if let Some(r) = self.get_record(&id)? {
                out.push((id, r));
            }
        }
        Ok(out)
    }

    fn network(&self) -> Result<(VerifyingKey, Directory)> {
        let coordinator = match self.coordinator_public() {
            Ok(k) => k,
            Err(_) => self.settings()?.coordinator()?,
        };
        let directory = self
            .directory(&coordinator)?
            .ok_or(CoreError::Invalid("this profile holds no directory yet"))?;
        Ok((coordinator, directory))
    }

    fn seal_signed(
        &self,
        to: &RecipientPublic,
        message: &Message,
        key: &SigningKey,
        now: UnixTime,
        queue_as: &[u8; 16],
    ) -> Result<()> {
        let body = SignedMessage::sign(message, key)?.to_json()?;
        let mut e = SystemEntropy::new();
        let header = InnerHeader::new(&mut e, now)?;
        let env = Envelope::seal(to, Purpose::Aggregation, &header, &body, &mut e)?;
        self.enqueue(queue_as, &env)
    }

    fn my_office_id(&self) -> Result<String> {
        self.settings()?.focal_point_id.ok_or(CoreError::Invalid(
            "set this focal point's directory id first",
        ))
    }

    /// Makes keys for the [`KEY_MONTHS`] months from the one before this
    /// one that have none, splits their secrets among the other offices of the
    /// directory (any more than half of them rebuild one secret), and
    /// queues each holder's shares (sealed to that office) and the signed
    /// public keys (sealed to the coordinator). Returns how many months
    /// were keyed (0: all already were).
    pub fn prepare_aggregation(&self, now: UnixTime) -> Result<usize> {
        let me = self.my_office_id()?;
        let (_, directory) = self.network()?;
        let to = directory.statistics.ok_or(CoreError::Invalid(
            "the directory names no statistics key: this network gathers no statistics",
        ))?;
        let keys = self.focal_keys_for_statistics()?;
        let current = Month::of_unix(now.0).index();
        let opted = self.agg_id("opted-in".into());
        if self.get_item(ItemKind::Statistics, &opted)?.is_none() {
            self.put_item(ItemKind::Statistics, &opted, OPTED_IN, b"1")?;
        }
        // From the month before this one (an office that takes part after
        // a month ended can still be in that month's round), and never a
        // month keyed before: holders and the coordinator keep the first
        // keys of a month, so a second set could never be unmasked.
        let first = current.saturating_sub(1);
        let through = self.keyed_through()?;
        let months: Vec<Month> = (first..first + KEY_MONTHS)
            .filter(|i| through.is_none_or(|t| *i > t))
            .map(Month::from_index)
            .collect();
        if months.is_empty() {
            return Ok(0);
        }
        let mut holders: Vec<(String, RecipientPublic)> = directory
            .focal_points
            .iter()
            .filter(|f| f.id != me && f.is_valid_at(now))
            .map(|f| (f.id.clone(), f.keys))
            .collect();
        holders.sort_by(|a, b| a.0.cmp(&b.0));
        if holders.len() + 1 < MIN_SURVIVORS || holders.len() >= MAX_COHORT {
            return Err(CoreError::Invalid(
                "the statistics sum needs 3 to 64 offices in the directory",
            ));
        }
        let ids: Vec<String> = holders.iter().map(|h| h.0.clone()).collect();
        let n = u16::try_from(ids.len()).map_err(|_| CoreError::Invalid("too many offices"))?;
        let t = agg::threshold_for(ids.len());
        let mut e = SystemEntropy::new();
        let mut per_holder: Vec<Vec<MonthShares>> = vec![Vec::new(); ids.len()];
        let mut announced = Vec::new();
        let mut own = Vec::new();
        for m in &months {
            let (a, b, key) = agg::month_key(&me, *m, &ids, keys.signing(), &mut e)?;
            let a_shares = shamir::split(&a, t, n, &mut e)?;
            let b_shares = shamir::split(&b, t, n, &mut e)?;
            for (i, (sa, sb)) in a_shares.iter().zip(&b_shares).enumerate() {
                per_holder[i].push(MonthShares {
                    month: *m,
                    x: sa.x,
                    mask: sa.y,
                    own: sb.y,
                });
            }
            announced.push(key.clone());
            own.push(OwnMonth {
                month: *m,
                mask_secret: *a.as_bytes(),
                self_secret: *b.as_bytes(),
                key,
            });
        }
        let queue_as = self.agg_id("outgoing".into());
        self.in_transaction(|| {
            for ((id, public), months) in holders.iter().zip(per_holder) {
                let message = Message::Shares(Shares {
                    office: me.clone(),
                    holder: id.clone(),
                    months,
                });
                self.seal_signed(public, &message, keys.signing(), now, &queue_as)?;
            }
            let message = Message::Keys(Keys {
                office: me.clone(),
                holders: ids.clone(),
                months: announced,
            });
            self.seal_signed(&to, &message, keys.signing(), now, &queue_as)?;
            for o in &own {
                let id = self.agg_id(format!("own-{}", o.month));
                self.put_item(ItemKind::Statistics, &id, OWN_MONTH, &encode(o)?)?;
            }
            if let Some(last) = months.last() {
                self.put_item(
                    ItemKind::Statistics,
                    &self.agg_id("keyed-through".into()),
                    KEYED_THROUGH,
                    &last.index().to_be_bytes(),
                )?;
            }
            Ok(())
        })?;
        Ok(months.len())
    }

    /// Files a statistics-sum message that reached this office's mailbox
    /// (inside the fetch's transaction): shares from another office of the
    /// directory, a round or an unmask request signed by the coordinator.
    /// The first of each is kept; returns false for what this office does
    /// not accept (unsigned, not for it, out of the months kept).
    pub(crate) fn file_aggregation(&self, signed: &SignedMessage) -> Result<bool> {
        let Ok((coordinator, directory)) = self.network() else {
            return Ok(false);
        };
        let Ok(me) = self.my_office_id() else {
            return Ok(false);
        };
        let key = if signed.from == COORDINATOR {
            coordinator
        } else {
            match directory.focal_point(&signed.from) {
                Some(f) => f.keys.verifying_key(),
                None => return Ok(false),
            }
        };
        let Ok(message) = signed.verify(&key) else {
            return Ok(false);
        };
        let current = Month::of_unix(system_now().0).index();
        let in_window = |m: Month| {
            let i = m.index();
            i + MONTHS_BACK >= current && i <= current + KEY_MONTHS
        };
        match message {
            Message::Shares(s) if s.holder == me => {
                for m in s.months.iter().filter(|m| in_window(m.month)) {
                    let id = self.agg_id(format!("held-{}-{}", s.office, m.month));
                    if self.get_item(ItemKind::Statistics, &id)?.is_none() {
                        let held = HeldShare {
                            office: s.office.clone(),
                            share: m.clone(),
                        };
                        self.put_item(ItemKind::Statistics, &id, HELD_SHARE, &encode(&held)?)?;
                    }
                }
                Ok(true)
            }
            Message::Round(round) if in_window(round.month) => {
                let id = self.agg_id(format!("round-{}", round.month));
                if self.get_item(ItemKind::Statistics, &id)?.is_none() {
                    // An unmask request that came first (one fetch brings
                    // both, in any order) joins its round.
                    let early = self.agg_id(format!("unmask-{}", round.month));
                    let unmask: Option<Unmask> = self.get_record(&early)?;
                    self.delete_item(ItemKind::Statistics, &early)?;
                    let r = OfficeRound {
                        round,
                        unmask,
                        submitted: false,
                        revealed_for: None,
                        refused: None,
                        reveal_refused: None,
                    };
                    self.put_item(ItemKind::Statistics, &id, OFFICE_ROUND, &encode(&r)?)?;
                }
                Ok(true)
            }
            Message::Unmask(u) if in_window(u.month) => {
                let id = self.agg_id(format!("round-{}", u.month));
                let Some(mut r) = self.get_record::<OfficeRound>(&id)? else {
                    // Before its round: kept (the first) until the round
                    // comes.
                    let early = self.agg_id(format!("unmask-{}", u.month));
                    if self.get_item(ItemKind::Statistics, &early)?.is_none() {
                        self.put_item(ItemKind::Statistics, &early, EARLY_UNMASK, &encode(&u)?)?;
                    }
                    return Ok(true);
                };
                if r.unmask.is_none() {
                    r.unmask = Some(u);
                    self.put_item(ItemKind::Statistics, &id, OFFICE_ROUND, &encode(&r)?)?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Answers what the coordinator asked: the masked month of each round
    /// this office is in (once the month is over; once only), and the
    /// shares it holds for each unmask request (once, for one list of
    /// survivors only). Refuses — and says why — a round whose keys do not
    /// carry their offices' signatures, one for a month it published on
    /// its own, and an unmask request that leaves it out after it sent or
    /// puts it in when it did not. Queues the answers; a sync sends them.
    pub fn answer_aggregation(&self, now: UnixTime) -> Result<AggregationAnswers> {
        let me = self.my_office_id()?;
        let (_, directory) = self.network()?;
        let to = directory.statistics.ok_or(CoreError::Invalid(
            "the directory names no statistics key: this network gathers no statistics",
        ))?;
        let keys = self.focal_keys_for_statistics()?;
        let queue_as = self.agg_id("outgoing".into());
        let mut out = AggregationAnswers::default();
        for (id, mut r) in self.records::<OfficeRound>(OFFICE_ROUND)? {
            let month = r.round.month;
            // `sending`: what is refused is this office's month; otherwise
            // the round itself (nothing is sent or revealed for it).
            let mut refuse = |r: &mut OfficeRound, why: &str, sending: bool| -> Result<()> {
                r.refused = Some(why.to_string());
                if !sending {
                    r.reveal_refused = Some(why.to_string());
                }
                out.refused.push((month, why.to_string()));
                self.put_item(ItemKind::Statistics, &id, OFFICE_ROUND, &encode(&*r)?)
            };
            let cohort = r.round.ids();
            // The unmask request first: an office that has not sent when it
            // comes is left out, and never sends after.
            if let Some(u) = r.unmask.clone() {
                if r.revealed_for.is_some() || r.reveal_refused.is_some() {
                    continue;
                }
                if u.cohort != agg::digest(&cohort)
                    || u.survivors.iter().any(|s| !cohort.contains(s))
                {
                    refuse(
                        &mut r,
                        "the unmask request is not for this round's cohort",
                        false,
                    )?;
                    continue;
                }
                if singled_out(&r.round.layout, &directory, &u.survivors).is_some() {
                    refuse(
                        &mut r,
                        "with these offices, a region of the sum would be one office's",
                        false,
                    )?;
                    continue;
                }
                let listed = u.survivors.contains(&me);
                if r.submitted && !listed {
                    refuse(
                        &mut r,
                        "the coordinator left out this office after it sent its month",
                        false,
                    )?;
                    continue;
                }
                if !r.submitted && listed {
                    refuse(
                        &mut r,
                        "the coordinator lists this office, which sent nothing",
                        false,
                    )?;
                    continue;
                }
                let mut own = Vec::new();
                let mut mask = Vec::new();
                for office in cohort.iter().filter(|o| **o != me) {
                    let held: Option<HeldShare> =
                        self.get_record(&self.agg_id(format!("held-{office}-{month}")))?;
                    let Some(h) = held else { continue };
                    let (list, y) = if u.survivors.contains(office) {
                        (&mut own, h.share.own)
                    } else {
                        (&mut mask, h.share.mask)
                    };
                    list.push(Revealed {
                        office: office.clone(),
                        x: h.share.x,
                        y,
                    });
                }
                let message = Message::Reveal(Reveal {
                    office: me.clone(),
                    month,
                    survivors: agg::digest(&u.survivors),
                    own,
                    mask,
                });
                self.in_transaction(|| {
                    self.seal_signed(&to, &message, keys.signing(), now, &queue_as)?;
                    r.revealed_for = Some(u.survivors.clone());
                    self.put_item(ItemKind::Statistics, &id, OFFICE_ROUND, &encode(&r)?)?;
                    // What it held is no longer needed.
                    for office in &cohort {
                        self.delete_item(
                            ItemKind::Statistics,
                            &self.agg_id(format!("held-{office}-{month}")),
                        )?;
                    }
                    Ok(())
                })?;
                out.revealed.push(month);
                continue;
            }
            if r.refused.is_some() || r.submitted || r.round.member(&me).is_none() {
                continue;
            }
            if now.0 < month.next().start_unix() {
                continue;
            }
            if self
                .get_item(ItemKind::Statistics, &self.published_id(month))?
                .is_some()
            {
                refuse(&mut r, "this month was published on its own", true)?;
                continue;
            }
            let own_id = self.agg_id(format!("own-{month}"));
            let Some(own) = self.get_record::<OwnMonth>(&own_id)? else {
                refuse(&mut r, "this office holds no keys for the month", true)?;
                continue;
            };
            let mut others = Vec::new();
            let mut forged = false;
            for m in &r.round.cohort {
                let signed_by_office = directory
                    .focal_point(&m.office)
                    .is_some_and(|f| m.key.verify(&m.office, &f.keys.verifying_key()).is_ok());
                if !signed_by_office || (m.office == me && m.key != own.key) {
                    forged = true;
                }
                others.push((m.office.clone(), x25519::PublicKey(m.key.mask_key)));
            }
            if forged {
                refuse(&mut r, "a key in the round is not its office's", false)?;
                continue;
            }
            if singled_out(&r.round.layout, &directory, &cohort).is_some() {
                refuse(
                    &mut r,
                    "the round names a region fewer than 3 of its offices serve",
                    false,
                )?;
                continue;
            }
            let counts = counts_vector(&self.month_stats(month)?, &r.round.layout)?;
            let vector = agg::mask(
                &counts,
                month,
                &me,
                &Secret::from_bytes(&own.self_secret)?,
                &Secret::from_bytes(&own.mask_secret)?,
                &others,
            )?;
            let message = Message::Masked(Masked {
                office: me.clone(),
                month,
                cohort: agg::digest(&cohort),
                vector,
            });
            self.in_transaction(|| {
                self.seal_signed(&to, &message, keys.signing(), now, &queue_as)?;
                r.submitted = true;
                self.put_item(ItemKind::Statistics, &id, OFFICE_ROUND, &encode(&r)?)?;
                // Sent once: the secrets go (a seized machine cannot help
                // unmask what it sent).
                self.delete_item(ItemKind::Statistics, &own_id)?;
                Ok(())
            })?;
            out.masked.push(month);
        }
        Ok(out)
    }

    /// The last month this office ever made keys for (as a month index).
    fn keyed_through(&self) -> Result<Option<u32>> {
        Ok(self
            .get_item(ItemKind::Statistics, &self.agg_id("keyed-through".into()))?
            .and_then(|(_, b)| <[u8; 4]>::try_from(b.as_slice()).ok())
            .map(u32::from_be_bytes))
    }

    /// Stops taking part in the statistics sum: the keys of months not yet
    /// sent are deleted (in those months' rounds this office counts as one
    /// that did not send, and nothing of its own is revealed but a mask
    /// secret that masks nothing), and syncs no longer make keys or send
    /// months. It still reveals the shares it holds for other offices.
    /// Taking part again later keys only months never keyed before.
    /// Returns how many months' keys were deleted.
    pub fn leave_statistics_sum(&self) -> Result<usize> {
        self.in_transaction(|| {
            self.delete_item(ItemKind::Statistics, &self.agg_id("opted-in".into()))?;
            let own = self.item_ids(ItemKind::Statistics, Some(OWN_MONTH))?;
            for id in &own {
                self.delete_item(ItemKind::Statistics, id)?;
            }
            Ok(own.len())
        })
    }

    /// Whether this office chose to take part in the statistics sum (it
    /// made keys once): its syncs then keep a year of keys ahead and answer
    /// what the coordinator asks.
    pub fn takes_part_in_statistics_sum(&self) -> Result<bool> {
        Ok(self
            .get_item(ItemKind::Statistics, &self.agg_id("opted-in".into()))?
            .is_some())
    }

    /// What a sync does for the sum, once the mailbox is fetched: for an
    /// office that takes part, keys for a month that has come into the
    /// year ahead; for it and for any office holding others' shares, the
    /// answers to what came (an office that does not take part only
    /// reveals). Returns whether anything was queued. Nothing is done, and no error given, where the sum
    /// cannot run now (no statistics key, fewer than 3 offices): the sync
    /// itself must not fail for it.
    pub(crate) fn statistics_sum_on_sync(&self, now: UnixTime) -> Result<bool> {
        let taking_part = self.takes_part_in_statistics_sum()?;
        // Every office holds shares of the offices that take part (they
        // chose it as a holder): it reveals them when asked, taking part
        // or not, or their rounds could never be summed.
        let holding = !self
            .item_ids(ItemKind::Statistics, Some(HELD_SHARE))?
            .is_empty();
        if !taking_part && !holding {
            return Ok(false);
        }
        let keyed = if taking_part {
            match self.prepare_aggregation(now) {
                Ok(n) => n,
                Err(CoreError::Invalid(_)) => return Ok(false),
                Err(e) => return Err(e),
            }
        } else {
            0
        };
        match self.answer_aggregation(now) {
            Ok(a) => Ok(keyed > 0 || !a.masked.is_empty() || !a.revealed.is_empty()),
            Err(CoreError::Invalid(_)) => Ok(keyed > 0),
            Err(e) => Err(e),
        }
    }

    /// The rounds this office has been asked to take part in, by month.
    pub fn aggregation_rounds(&self) -> Result<Vec<OfficeRoundStatus>> {
        let mut out: Vec<OfficeRoundStatus> = self
            .records::<OfficeRound>(OFFICE_ROUND)?
            .into_iter()
            .map(|(_, r)| OfficeRoundStatus {
                month: r.round.month,
                cohort: r.round.ids(),
                sent: r.submitted,
                revealed_for: r.revealed_for,
                refused: r.refused,
            })
            .collect();
        out.sort_by_key(|r| r.month);
        Ok(out)
    }

    /// Sends what the coordinator queued (rounds, unmask requests) to the
    /// relay, trusting receipts from the relays its directory lists.
    pub async fn send_coordinator_outbox(
        &self,
        relay: &crate::relay::RelayClient,
    ) -> Result<crate::survivor::SyncSummary> {
        let (_, directory) = self.network()?;
        let mut keys = self.settings()?.extra_relay_keys();
        keys.extend(directory.relays.iter().map(|r| VerifyingKey(r.receipt_key)));
        self.sync(relay, &keys, system_now, &mut |_| {}).await
    }

    /// Whether this office takes part in the sum of `month`: it made keys
    /// for it, or sent it. It then does not publish the month on its own
    /// (the coordinator would see its table, which the sum exists to
    /// avoid, and the month would count twice).
    pub fn in_statistics_sum(&self, month: Month) -> Result<bool> {
        if self
            .get_item(ItemKind::Statistics, &self.agg_id(format!("own-{month}")))?
            .is_some()
        {
            return Ok(true);
        }
        Ok(self
            .get_record::<OfficeRound>(&self.agg_id(format!("round-{month}")))?
            .is_some_and(|r| r.submitted))
    }

    // ----- The coordinator -----

    /// Files one statistics-sum message that reached the coordinator's
    /// statistics mailbox, already verified as signed by `message`'s
    /// office. Returns whether it was kept.
    pub(crate) fn file_aggregation_at_coordinator(
        &self,
        message: Message,
        now: UnixTime,
    ) -> Result<bool> {
        let current = Month::of_unix(now.0).index();
        match message {
            Message::Keys(k) => {
                let mut kept = false;
                for key in k.months {
                    let i = key.month.index();
                    if i + MONTHS_BACK < current || i > current + KEY_MONTHS {
                        continue;
                    }
                    let id = self.agg_id(format!("key-{}-{}", k.office, key.month));
                    if self.get_item(ItemKind::Statistics, &id)?.is_none() {
                        let rec = CoordKey {
                            office: k.office.clone(),
                            holders: k.holders.clone(),
                            key,
                        };
                        self.put_item(ItemKind::Statistics, &id, COORD_KEY, &encode(&rec)?)?;
                        kept = true;
                    }
                }
                Ok(kept)
            }
            Message::Masked(m) => {
                let Some(r) = self.coord_round(m.month)? else {
                    return Ok(false);
                };
                if r.unmask.is_some()
                    || r.round.member(&m.office).is_none()
                    || m.cohort != agg::digest(&r.round.ids())
                    || m.vector.len() != r.round.layout.len()
                {
                    return Ok(false);
                }
                let id = self.agg_id(format!("masked-{}-{}", m.month, m.office));
                if self.get_item(ItemKind::Statistics, &id)?.is_some() {
                    return Ok(false);
                }
                self.put_item(ItemKind::Statistics, &id, MASKED, &encode(&m)?)?;
                Ok(true)
            }
            Message::Reveal(rv) => {
                let Some(r) = self.coord_round(rv.month)? else {
                    return Ok(false);
                };
                let Some(u) = &r.unmask else {
                    return Ok(false);
                };
                if r.finished
                    || rv.survivors != agg::digest(&u.survivors)
                    || !r.recipients.contains(&rv.office)
                {
                    return Ok(false);
                }
                let id = self.agg_id(format!("reveal-{}-{}", rv.month, rv.office));
                if self.get_item(ItemKind::Statistics, &id)?.is_some() {
                    return Ok(false);
                }
                self.put_item(ItemKind::Statistics, &id, REVEAL, &encode(&rv)?)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn coord_round(&self, month: Month) -> Result<Option<CoordRound>> {
        self.get_record(&self.agg_id(format!("cround-{month}")))
    }

    fn coordinator_queue(&self) -> [u8; 16] {
        self.agg_id("coordinator-outgoing".into())
    }

    /// Opens the round of `month` (over, at most 120 months old, not opened
    /// before): the cohort is every office of the directory whose signed
    /// key for the month this coordinator holds (3 to 64), the layout the
    /// directory's regions. Queues the round, signed, to the cohort and to
    /// every holder of its members' shares.
    pub fn open_round(&self, month: Month, now: UnixTime) -> Result<Round> {
        if now.0 < month.next().start_unix() {
            return Err(CoreError::Invalid("a month's round opens once it is over"));
        }
        if self.coord_round(month)?.is_some() {
            return Err(CoreError::Invalid("this month's round is already open"));
        }
        let signing = self.coordinator_signing_key()?;
        let (_, directory) = self.network()?;
        let mut cohort = Vec::new();
        let mut recipients: HashSet<String> = HashSet::new();
        for (_, k) in self.records::<CoordKey>(COORD_KEY)? {
            if k.key.month != month {
                continue;
            }
            let Some(f) = directory.focal_point(&k.office) else {
                continue;
            };
            if k.key.verify(&k.office, &f.keys.verifying_key()).is_err() {
                continue;
            }
            recipients.insert(k.office.clone());
            recipients.extend(k.holders.iter().cloned());
            cohort.push(Member {
                office: k.office,
                key: k.key,
            });
        }
        cohort.sort_by(|a, b| a.office.cmp(&b.office));
        if cohort.len() < MIN_SURVIVORS {
            return Err(CoreError::Invalid(
                "fewer than 3 offices have sent keys for this month",
            ));
        }
        cohort.truncate(MAX_COHORT);
        // Only regions that at least 3 offices of the cohort serve get a
        // row: a region one office serves would be that office's row.
        let ids: Vec<String> = cohort.iter().map(|m| m.office.clone()).collect();
        let mut regions: Vec<String> = directory
            .focal_points
            .iter()
            .filter(|f| ids.contains(&f.id))
            .flat_map(|f| f.regions.iter().cloned())
            .collect();
        regions.sort();
        regions.dedup();
        let all = Layout { regions };
        let mut regions: Vec<String> = Vec::new();
        for region in &all.regions {
            let one = Layout {
                regions: vec![region.clone()],
            };
            if singled_out(&one, &directory, &ids).is_none() {
                regions.push(region.clone());
            }
        }
        regions.truncate(agg::MAX_LAYOUT_REGIONS);
        let round = Round {
            month,
            layout: Layout { regions },
            cohort,
        };
        let mut recipients: Vec<String> = recipients
            .into_iter()
            .filter(|r| directory.focal_point(r).is_some())
            .collect();
        recipients.sort();
        let message = Message::Round(round.clone());
        let queue = self.coordinator_queue();
        self.in_transaction(|| {
            for r in &recipients {
                if let Some(f) = directory.focal_point(r) {
                    self.seal_signed(&f.keys, &message, &signing, now, &queue)?;
                }
            }
            let rec = CoordRound {
                round: round.clone(),
                recipients: recipients.clone(),
                unmask: None,
                finished: false,
                failed: None,
                answered: 0,
            };
            self.put_item(
                ItemKind::Statistics,
                &self.agg_id(format!("cround-{month}")),
                COORD_ROUND,
                &encode(&rec)?,
            )
        })?;
        Ok(round)
    }

    /// Closes the round of `month`: the survivors are the offices whose
    /// masked months are in (at least 3); queues the signed unmask request
    /// to everyone the round went to. Later masked months are not taken.
    pub fn close_round(&self, month: Month, now: UnixTime) -> Result<Vec<String>> {
        let mut r = self
            .coord_round(month)?
            .ok_or(CoreError::Invalid("this month has no round open"))?;
        if r.unmask.is_some() {
            return Err(CoreError::Invalid("this month's round is already closed"));
        }
        let survivors = self.sent(month)?;
        if survivors.len() < MIN_SURVIVORS {
            return Err(CoreError::Invalid(
                "fewer than 3 offices have sent their month: wait for more",
            ));
        }
        let signing = self.coordinator_signing_key()?;
        let (_, directory) = self.network()?;
        if singled_out(&r.round.layout, &directory, &survivors).is_some() {
            return Err(CoreError::Invalid(
                "with the offices that have sent, a region would be fewer than 3 offices': wait for more",
            ));
        }
        let u = Unmask {
            month,
            cohort: agg::digest(&r.round.ids()),
            survivors: survivors.clone(),
        };
        let message = Message::Unmask(u.clone());
        let queue = self.coordinator_queue();
        self.in_transaction(|| {
            for to in &r.recipients {
                if let Some(f) = directory.focal_point(to) {
                    self.seal_signed(&f.keys, &message, &signing, now, &queue)?;
                }
            }
            r.unmask = Some(u);
            self.put_item(
                ItemKind::Statistics,
                &self.agg_id(format!("cround-{month}")),
                COORD_ROUND,
                &encode(&r)?,
            )
        })?;
        Ok(survivors)
    }

    fn sent(&self, month: Month) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .records::<Masked>(MASKED)?
            .into_iter()
            .filter(|(_, m)| m.month == month)
            .map(|(_, m)| m.office)
            .collect();
        out.sort();
        Ok(out)
    }

    /// Where each round stands, by month.
    pub fn rounds(&self) -> Result<Vec<RoundStatus>> {
        let mut out = Vec::new();
        let reveals = self.records::<Reveal>(REVEAL)?;
        for (_, r) in self.records::<CoordRound>(COORD_ROUND)? {
            let month = r.round.month;
            // Once closed, who sent is the survivor list (the masked months
            // themselves go when the round ends).
            let sent = match &r.unmask {
                Some(u) => u.survivors.clone(),
                None => self.sent(month)?,
            };
            let held = reveals.iter().filter(|(_, v)| v.month == month).count();
            out.push(RoundStatus {
                month,
                cohort: r.round.ids(),
                sent,
                survivors: r.unmask.as_ref().map(|u| u.survivors.clone()),
                answered: held.max(r.answered),
                finished: r.finished,
                failed: r.failed.clone(),
            });
        }
        out.sort_by_key(|s| s.month);
        Ok(out)
    }

    /// Rebuilds one secret from the revealed shares of `office`, checking
    /// each share's index against the office's holders; `None` until
    /// enough are in.
    fn rebuild(key: &CoordKey, reveals: &[&Reveal], own: bool) -> Result<Option<Secret>> {
        let mut shares: Vec<Share> = Vec::new();
        for rv in reveals {
            let Some(x) = key.holders.iter().position(|h| *h == rv.office) else {
                continue;
            };
            let list = if own { &rv.own } else { &rv.mask };
            for s in list.iter().filter(|s| s.office == key.office) {
                if usize::from(s.x) == x + 1 && !shares.iter().any(|o| o.x == s.x) {
                    shares.push(s.share());
                }
            }
        }
        let t = usize::from(key.key.threshold);
        if t == 0 || shares.len() < t {
            return Ok(None);
        }
        let right = |secret: &Secret| -> Result<bool> {
            Ok(if own {
                agg::commitment(secret) == key.key.commitment
            } else {
                agg::mask_key(secret)?.public_key().as_bytes() == &key.key.mask_key
            })
        };
        // A holder may reveal a wrong share: try subsets of `t` until one
        // rebuilds the secret the office committed to, within a bound.
        let mut pick: Vec<usize> = (0..t).collect();
        for _ in 0..REBUILD_TRIES {
            let subset: Vec<Share> = pick
                .iter()
                .filter_map(|i| shares.get(*i).cloned())
                .collect();
            let secret = shamir::combine(&subset)?;
            if right(&secret)? {
                return Ok(Some(secret));
            }
            if !next_combination(&mut pick, shares.len()) {
                break;
            }
        }
        if shares.len() < key.holders.len() {
            // More holders may still answer.
            return Ok(None);
        }
        Err(CoreError::Invalid(
            "a revealed share does not rebuild its office's secret",
        ))
    }

    /// Finishes every closed round whose shares are all in: the sum is
    /// unmasked, checked and put through disclosure control; the table is
    /// kept and the masked months and the shares are deleted. A round whose
    /// shares or vectors are wrong (noise, a share that rebuilds nothing
    /// the office committed to) ends without a sum, says why, and its
    /// masked months and shares are deleted too: it never stops the fetch.
    /// Returns the months summed.
    pub fn finish_rounds(&self) -> Result<Vec<Month>> {
        let mut done = Vec::new();
        let threshold = self.statistics_threshold()?;
        for (round_id, mut r) in self.records::<CoordRound>(COORD_ROUND)? {
            let Some(u) = r.unmask.clone() else { continue };
            if r.finished || r.failed.is_some() {
                continue;
            }
            let month = r.round.month;
            // What this round holds, read once: summed from, then deleted.
            let reveals: Vec<([u8; 16], Reveal)> = self
                .records::<Reveal>(REVEAL)?
                .into_iter()
                .filter(|(_, v)| v.month == month)
                .collect();
            let masked: Vec<([u8; 16], Masked)> = self
                .records::<Masked>(MASKED)?
                .into_iter()
                .filter(|(_, m)| m.month == month)
                .collect();
            let outcome = match self.sum_round(&r.round, &u, &reveals, &masked, threshold) {
                Ok(None) => continue,
                Ok(Some(summed)) => Ok(summed),
                Err(e @ (CoreError::Invalid(_) | CoreError::Protocol(_))) => Err(e.to_string()),
                Err(e) => return Err(e),
            };
            r.answered = reveals.len();
            self.in_transaction(|| {
                match &outcome {
                    Ok(summed) => {
                        self.put_item(
                            ItemKind::Statistics,
                            &self.agg_id(format!("sum-{month}")),
                            SUM,
                            &encode(summed)?,
                        )?;
                        r.finished = true;
                    }
                    Err(why) => r.failed = Some(why.clone()),
                }
                let held = masked.iter().map(|(id, _)| id);
                for id in held.chain(reveals.iter().map(|(id, _)| id)) {
                    self.delete_item(ItemKind::Statistics, id)?;
                }
                self.put_item(ItemKind::Statistics, &round_id, COORD_ROUND, &encode(&r)?)
            })?;
            if outcome.is_ok() {
                done.push(month);
            }
        }
        Ok(done)
    }

    /// The sum of a closed round, if every secret it needs can be rebuilt
    /// yet (`None`: wait for more shares).
    fn sum_round(
        &self,
        round: &Round,
        u: &Unmask,
        reveals: &[([u8; 16], Reveal)],
        masked: &[([u8; 16], Masked)],
        threshold: u32,
    ) -> Result<Option<SummedMonth>> {
        let month = round.month;
        let reveals: Vec<&Reveal> = reveals.iter().map(|(_, v)| v).collect();
        let mut key_records = Vec::new();
        for m in &round.cohort {
            let rec: Option<CoordKey> =
                self.get_record(&self.agg_id(format!("key-{}-{}", m.office, month)))?;
            let Some(rec) = rec else {
                return Err(CoreError::Invalid(
                    "the keys of an office in the round are no longer held",
                ));
            };
            key_records.push(rec);
        }
        let mut rebuilt = Rebuilt {
            survivors: Vec::new(),
            dropped: Vec::new(),
        };
        for rec in &key_records {
            let own = u.survivors.contains(&rec.office);
            let Some(secret) = Self::rebuild(rec, &reveals, own)? else {
                return Ok(None);
            };
            if own {
                rebuilt.survivors.push((
                    rec.office.as_str(),
                    x25519::PublicKey(rec.key.mask_key),
                    secret,
                ));
            } else {
                rebuilt.dropped.push((rec.office.as_str(), secret));
            }
        }
        let masked: Vec<&Masked> = masked
            .iter()
            .map(|(_, m)| m)
            .filter(|m| u.survivors.contains(&m.office))
            .collect();
        if masked.len() != u.survivors.len() {
            return Err(CoreError::Invalid(
                "a masked month of the round is no longer held",
            ));
        }
        let mut sum = vec![0u32; round.layout.len()];
        for m in &masked {
            for (s, v) in sum.iter_mut().zip(&m.vector) {
                *s = s.wrapping_add(*v);
            }
        }
        let plain = agg::unmask(&sum, month, &rebuilt)?;
        let stats = stats_from_vector(&plain, &round.layout, month)?;
        let regions: HashSet<String> = round.layout.regions.iter().cloned().collect();
        let table = stats.shareable(SUM_FROM, threshold, &regions)?;
        Ok(Some(SummedMonth {
            offices: u.survivors.clone(),
            table,
        }))
    }

    /// The masked months this coordinator holds for `month`, by office:
    /// what it stores between a round's close and its sum (each alone is
    /// noise; they are deleted once the sum is made).
    pub fn masked_vectors(&self, month: Month) -> Result<Vec<(String, Vec<u32>)>> {
        let mut out: Vec<(String, Vec<u32>)> = self
            .records::<Masked>(MASKED)?
            .into_iter()
            .filter(|(_, m)| m.month == month)
            .map(|(_, m)| (m.office, m.vector))
            .collect();
        out.sort();
        Ok(out)
    }

    /// The layout of `month`'s round, if this coordinator opened one.
    pub fn round_layout(&self, month: Month) -> Result<Option<Layout>> {
        Ok(self.coord_round(month)?.map(|r| r.round.layout))
    }

    /// Every month summed, oldest first.
    pub fn summed_months(&self) -> Result<Vec<SummedMonth>> {
        let mut out: Vec<SummedMonth> = self
            .records::<SummedMonth>(SUM)?
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        out.sort_by_key(|s| s.table.month);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Role, Settings};
    use crate::store::KdfParams;
    use crate::survivor::{QUEUED, StoredOutgoing};
    use amparo_protocol::directory::{FocalPoint, LocalizedText};
    use amparo_protocol::keys::RecipientKeys;
    use amparo_protocol::payload::{Language, Need};

    /// A coordinator, four offices that know each other, and the post
    /// between them done by hand: each queued envelope goes to the office
    /// whose mailbox it names, or to the coordinator's statistics mailbox.
    struct Network {
        _dir: tempfile::TempDir,
        coordinator: Profile,
        offices: Vec<(String, Profile, RecipientPublic)>,
        statistics: RecipientKeys,
    }

    impl Network {
        fn new() -> Network {
            Network::with(&["of-a", "of-b", "of-c", "of-d"])
        }

        fn with(ids: &[&str]) -> Network {
            let dir = tempfile::tempdir().unwrap();
            let fast = KdfParams::DANGEROUSLY_FAST_FOR_TESTS;
            let coordinator = Profile::create(&dir.path().join("c"), "1234", fast).unwrap();
            let key = coordinator.create_coordinator_key().unwrap();
            let t = |s: &str| LocalizedText {
                es: s.into(),
                pt: s.into(),
                en: s.into(),
            };
            let mut offices = Vec::new();
            let mut entries = Vec::new();
            for id in ids.iter().copied() {
                let p = Profile::create(&dir.path().join(id), "1234", fast).unwrap();
                let public = p.create_focal_identity().unwrap();
                p.save_settings(&Settings {
                    role: Some(Role::FocalPoint),
                    coordinator_key: Some(*key.as_bytes()),
                    focal_point_id: Some(id.into()),
                    ..Settings::default()
                })
                .unwrap();
                entries.push(FocalPoint {
                    reads: Vec::new(),
                    id: id.into(),
                    name: t(id),
                    organization: String::new(),
                    regions: if id == "of-a" {
                        vec!["PE-CUS".into(), "PE-LIM".into()]
                    } else {
                        vec!["PE-LIM".into()]
                    },
                    categories: vec![Need::LegalAdvice],
                    languages: vec![Language::Es],
                    keys: public,
                    valid_from: 0,
                    valid_until: u64::MAX / 2,
                });
                offices.push((id.to_string(), p, public));
            }
            let directory = Directory {
                focal_points: entries,
                service_routes: vec![],
                relays: vec![],
                statistics: None,
            };
            let signed = coordinator
                .sign_directory(&directory, system_now())
                .unwrap();
            for (_, p, _) in &offices {
                p.import_directory(signed.as_bytes(), &key, None).unwrap();
            }
            // The coordinator keeps what it signs.
            let statistics = coordinator.coordinator_statistics_keys().unwrap();
            Network {
                _dir: dir,
                coordinator,
                offices,
                statistics,
            }
        }

        /// The offices `ids` (every office if empty) key a year from last
        /// month, and the post goes: last month, the hour its round can
        /// open, and how many months each office keyed.
        fn keyed(&self, ids: &[&str]) -> (Month, UnixTime, Vec<usize>) {
            let month = last_month();
            let before = UnixTime(month.start_unix() + 3600);
            let after = UnixTime(month.next().start_unix() + 3600);
            let counts = self
                .offices
                .iter()
                .filter(|(id, _, _)| ids.is_empty() || ids.contains(&id.as_str()))
                .map(|(_, p, _)| p.prepare_aggregation(before).unwrap())
                .collect();
            self.post();
            (month, after, counts)
        }

        fn drain(p: &Profile) -> Vec<Envelope> {
            let mut out = Vec::new();
            for id in p.item_ids(ItemKind::Outgoing, Some(QUEUED)).unwrap() {
                let (_, b) = p.get_item(ItemKind::Outgoing, &id).unwrap().unwrap();
                let o: StoredOutgoing = decode(&b, "outbox").unwrap();
                out.push(Envelope::from_bytes(o.bytes).unwrap());
                p.delete_item(ItemKind::Outgoing, &id).unwrap();
            }
            out
        }

        /// Delivers everything queued; returns what reached the
        /// coordinator, opened.
        fn post(&self) -> Vec<Message> {
            self.post_altering(&|_| None)
        }

        /// [`Network::post`], with `alter` given each message on its way
        /// to the coordinator: what it returns goes instead, signed again
        /// by its office (an office that lies).
        fn post_altering(&self, alter: &dyn Fn(&Message) -> Option<Message>) -> Vec<Message> {
            let mut all = Self::drain(&self.coordinator);
            for (_, p, _) in &self.offices {
                all.extend(Self::drain(p));
            }
            let mut to_coordinator = Vec::new();
            for env in all {
                if env.mailbox() == self.statistics.mailbox() {
                    let o = env.open(&self.statistics, &Purpose::ALL).unwrap();
                    let s = SignedMessage::from_json(&o.body).unwrap();
                    let from = self
                        .offices
                        .iter()
                        .find(|(id, _, _)| *id == s.from)
                        .unwrap();
                    let message = s.verify(&from.2.verifying_key()).unwrap();
                    let env = match alter(&message) {
                        None => env,
                        Some(lie) => {
                            let keys = from.1.focal_keys_for_statistics().unwrap();
                            let body = SignedMessage::sign(&lie, keys.signing())
                                .unwrap()
                                .to_json()
                                .unwrap();
                            let mut e = SystemEntropy::new();
                            let header = InnerHeader::new(&mut e, system_now()).unwrap();
                            let to = self.statistics.public();
                            Envelope::seal(&to, Purpose::Aggregation, &header, &body, &mut e)
                                .unwrap()
                        }
                    };
                    to_coordinator.push(message);
                    self.coordinator
                        .file_statistics(&[env], system_now())
                        .unwrap();
                } else {
                    let (_, p, _) = self
                        .offices
                        .iter()
                        .find(|(_, _, k)| k.mailbox() == env.mailbox())
                        .unwrap();
                    let got = p.file_envelopes(&[env]).unwrap();
                    assert_eq!(got.rejected, 0);
                }
            }
            to_coordinator
        }
    }

    fn last_month() -> Month {
        Month::of_unix(system_now().0).previous()
    }

    fn office<'a>(n: &'a Network, id: &str) -> &'a Profile {
        &n.offices.iter().find(|o| o.0 == id).unwrap().1
    }

    #[test]
    fn an_office_never_reveals_both_secrets_of_another_whatever_the_coordinator_says() {
        let n = Network::new();
        let (month, after, keyed) = n.keyed(&[]);
        assert!(keyed.iter().all(|k| *k == 12));
        let round = n.coordinator.open_round(month, after).unwrap();
        assert_eq!(round.cohort.len(), 4);
        n.post();
        for id in ["of-a", "of-b", "of-c"] {
            let got = office(&n, id).answer_aggregation(after).unwrap();
            assert_eq!(got.masked, vec![month]);
        }
        assert_eq!(n.post().len(), 3);

        // The coordinator lies: of-c sent but is left out, of-d did not
        // send but is listed. Signed and sent by hand, as a coordinator
        // that does not run this code would.
        let ids = round.ids();
        let lie = Message::Unmask(Unmask {
            month,
            cohort: agg::digest(&ids),
            survivors: vec!["of-a".into(), "of-b".into(), "of-d".into()],
        });
        let signing = n.coordinator.coordinator_signing_key().unwrap();
        for (_, p, public) in &n.offices {
            n.coordinator
                .seal_signed(public, &lie, &signing, after, &[0; 16])
                .unwrap();
            let _ = p;
        }
        n.post();
        let c = office(&n, "of-c").answer_aggregation(after).unwrap();
        assert!(c.revealed.is_empty());
        assert!(c.refused[0].1.contains("left out"), "{c:?}");
        let d = office(&n, "of-d").answer_aggregation(after).unwrap();
        assert!(d.revealed.is_empty());
        assert!(d.refused[0].1.contains("sent nothing"), "{d:?}");
        // of-a and of-b cannot tell: they reveal, by the list.
        for id in ["of-a", "of-b"] {
            assert_eq!(
                office(&n, id).answer_aggregation(after).unwrap().revealed,
                vec![month]
            );
        }
        let first = n.post();
        assert_eq!(first.len(), 2);

        // Then the honest list: nobody answers a second list.
        let honest = Message::Unmask(Unmask {
            month,
            cohort: agg::digest(&ids),
            survivors: vec!["of-a".into(), "of-b".into(), "of-c".into()],
        });
        for (_, _, public) in &n.offices {
            n.coordinator
                .seal_signed(public, &honest, &signing, after, &[0; 16])
                .unwrap();
        }
        n.post();
        for (id, p, _) in &n.offices {
            let got = p.answer_aggregation(after).unwrap();
            assert!(got.revealed.is_empty() && got.masked.is_empty(), "{id}");
        }
        assert!(n.post().is_empty());

        // Across everything revealed, no office's two secrets: of-c's mask
        // secret is out (it was listed as gone), its self secret is not.
        let mut own: HashSet<String> = HashSet::new();
        let mut mask: HashSet<String> = HashSet::new();
        for m in first {
            let Message::Reveal(r) = m else {
                panic!("not a reveal")
            };
            own.extend(r.own.into_iter().map(|s| s.office.clone()));
            mask.extend(r.mask.into_iter().map(|s| s.office.clone()));
        }
        assert!(own.is_disjoint(&mask), "own {own:?} mask {mask:?}");
        assert!(mask.contains("of-c") && !own.contains("of-c"));
        // of-d never sends after being listed wrongly.
        let d = office(&n, "of-d").answer_aggregation(after).unwrap();
        assert!(d.masked.is_empty());
        // And an office in the sum does not publish the month alone.
        let err = office(&n, "of-d").publish_month(month, after).unwrap_err();
        assert!(err.to_string().contains("statistics sum"), "{err}");
    }

    /// Keys, a round of last month, and every office's masked month in.
    fn all_sent(n: &Network, alter: &dyn Fn(&Message) -> Option<Message>) -> (Month, UnixTime) {
        let (month, after, _) = n.keyed(&[]);
        n.coordinator.open_round(month, after).unwrap();
        n.post();
        for (_, p, _) in &n.offices {
            assert_eq!(p.answer_aggregation(after).unwrap().masked, vec![month]);
        }
        n.post_altering(alter);
        (month, after)
    }

    #[test]
    fn a_wrong_share_is_passed_over_and_noise_ends_the_round_without_a_sum() {
        // of-a reveals one wrong share of of-b's self secret: of-b's other
        // holders give the two that rebuild it.
        let n = Network::new();
        let (month, after) = all_sent(&n, &|_| None);
        assert_eq!(n.coordinator.close_round(month, after).unwrap().len(), 4);
        n.post();
        for (_, p, _) in &n.offices {
            assert_eq!(p.answer_aggregation(after).unwrap().revealed, vec![month]);
        }
        n.post_altering(&|m| match m {
            Message::Reveal(r) if r.office == "of-a" => {
                let mut r = r.clone();
                for s in r.own.iter_mut().filter(|s| s.office == "of-b") {
                    s.y = [1; 32];
                }
                Some(Message::Reveal(r))
            }
            _ => None,
        });
        assert_eq!(n.coordinator.finish_rounds().unwrap(), vec![month]);
        let sums = n.coordinator.summed_months().unwrap();
        assert_eq!(sums.len(), 1);
        assert_eq!(sums[0].table.total, Some(0), "no cases: a sum of zeros");

        // of-c sends noise as its month: the sum does not add up; the round
        // ends without one, says why, keeps nothing, and the fetch goes on.
        let n = Network::new();
        let (month, after) = all_sent(&n, &|m| match m {
            Message::Masked(v) if v.office == "of-c" => {
                let mut v = v.clone();
                v.vector[0] = v.vector[0].wrapping_add(12_345_678);
                Some(Message::Masked(v))
            }
            _ => None,
        });
        n.coordinator.close_round(month, after).unwrap();
        n.post();
        for (_, p, _) in &n.offices {
            p.answer_aggregation(after).unwrap();
        }
        n.post();
        assert!(n.coordinator.finish_rounds().unwrap().is_empty());
        let status = n.coordinator.rounds().unwrap();
        assert!(!status[0].finished);
        let why = status[0].failed.clone().unwrap();
        assert!(why.contains("does not add up"), "{why}");
        assert!(n.coordinator.summed_months().unwrap().is_empty());
        assert!(n.coordinator.masked_vectors(month).unwrap().is_empty());
    }

    #[test]
    fn no_region_of_the_sum_is_one_offices() {
        let n = Network::new();
        let (month, after, _) = n.keyed(&[]);
        // The honest round names PE-LIM (four offices), not PE-CUS (of-a).
        let honest = n.coordinator.open_round(month, after).unwrap();
        assert_eq!(honest.layout.regions, vec!["PE-LIM".to_string()]);
        Network::drain(&n.coordinator);
        // A round that names PE-CUS is refused by every office.
        let lie = Message::Round(Round {
            layout: Layout {
                regions: vec!["PE-CUS".into(), "PE-LIM".into()],
            },
            ..honest
        });
        let signing = n.coordinator.coordinator_signing_key().unwrap();
        for (_, _, public) in &n.offices {
            n.coordinator
                .seal_signed(public, &lie, &signing, after, &[0; 16])
                .unwrap();
        }
        n.post();
        for (id, p, _) in &n.offices {
            let got = p.answer_aggregation(after).unwrap();
            assert!(got.masked.is_empty(), "{id}");
            assert!(got.refused[0].1.contains("fewer than 3"), "{id}: {got:?}");
        }
        assert!(n.post().is_empty(), "nothing sent");
    }

    #[test]
    fn offices_that_do_not_take_part_still_reveal_what_they_hold() {
        // Five offices, three take part: each of the three has four holders
        // and needs three of them, so one of the two others must reveal.
        let n = Network::with(&["of-a", "of-b", "of-c", "of-d", "of-e"]);
        let (month, after, _) = n.keyed(&["of-a", "of-b", "of-c"]);
        n.coordinator.open_round(month, after).unwrap();
        n.post();
        let sync_all = || {
            for (_, p, _) in &n.offices {
                p.statistics_sum_on_sync(after).unwrap();
            }
            n.post()
        };
        sync_all();
        assert_eq!(n.coordinator.close_round(month, after).unwrap().len(), 3);
        n.post();
        // (The three also key the month that entered their year.)
        let reveals = sync_all()
            .into_iter()
            .filter(|m| matches!(m, Message::Reveal(_)))
            .count();
        assert_eq!(reveals, 5, "the two that do not take part reveal too");
        assert!(!office(&n, "of-d").takes_part_in_statistics_sum().unwrap());
        assert_eq!(n.coordinator.finish_rounds().unwrap(), vec![month]);
        // They never sent anything of their own: no keys, no masked month.
        for id in ["of-d", "of-e"] {
            let r = office(&n, id).aggregation_rounds().unwrap();
            assert!(!r[0].sent && r[0].revealed_for.is_some(), "{id}");
        }
    }

    #[test]
    fn an_office_that_leaves_sends_nothing_and_rejoins_only_for_new_months() {
        let n = Network::new();
        let (month, after, keyed) = n.keyed(&[]);
        assert!(keyed.iter().all(|k| *k == 12));
        n.coordinator.open_round(month, after).unwrap();
        n.post();
        let d = office(&n, "of-d");
        assert_eq!(d.leave_statistics_sum().unwrap(), 12);
        assert!(!d.takes_part_in_statistics_sum().unwrap());
        let got = d.answer_aggregation(after).unwrap();
        assert!(got.masked.is_empty());
        assert!(got.refused[0].1.contains("no keys"), "{got:?}");
        // The others send; d is a holder that did not send, and reveals.
        for id in ["of-a", "of-b", "of-c"] {
            assert_eq!(
                office(&n, id).answer_aggregation(after).unwrap().masked,
                vec![month]
            );
        }
        n.post();
        n.coordinator.close_round(month, after).unwrap();
        n.post();
        assert_eq!(d.answer_aggregation(after).unwrap().revealed, vec![month]);
        for id in ["of-a", "of-b", "of-c"] {
            office(&n, id).answer_aggregation(after).unwrap();
        }
        n.post();
        assert_eq!(n.coordinator.finish_rounds().unwrap(), vec![month]);
        // Back in a month later: only the month past those keyed before.
        assert_eq!(d.prepare_aggregation(after).unwrap(), 1);
        assert!(d.takes_part_in_statistics_sum().unwrap());
    }

    #[test]
    fn rebuilding_tries_other_holders_when_the_first_share_is_wrong() {
        let mut e = SystemEntropy::new();
        let keys = RecipientKeys::generate(&mut e).unwrap();
        let holders: Vec<String> = ["h1", "h2", "h3", "h4", "h5"].map(String::from).to_vec();
        let month = last_month();
        let (_, b, key) = agg::month_key("of", month, &holders, keys.signing(), &mut e).unwrap();
        let shares = shamir::split(&b, key.threshold, 5, &mut e).unwrap();
        let rec = CoordKey {
            office: "of".into(),
            holders: holders.clone(),
            key,
        };
        let reveal = |i: usize, y: [u8; 32]| Reveal {
            office: holders[i].clone(),
            month,
            survivors: [0; 32],
            own: vec![Revealed {
                office: "of".into(),
                x: u16::try_from(i + 1).unwrap(),
                y,
            }],
            mask: vec![],
        };
        // The first two are wrong; three good ones rebuild (threshold 3).
        let mut all = vec![reveal(0, [1; 32]), reveal(1, [2; 32])];
        let two: Vec<&Reveal> = all.iter().collect();
        assert!(Profile::rebuild(&rec, &two, true).unwrap().is_none());
        all.extend((2..5).map(|i| reveal(i, shares[i].y)));
        let five: Vec<&Reveal> = all.iter().collect();
        let got = Profile::rebuild(&rec, &five, true).unwrap().unwrap();
        assert_eq!(got, b);
        // A share at another holder's index is not taken.
        let mut misplaced = reveal(2, shares[3].y);
        misplaced.own[0].x = 4;
        assert!(
            Profile::rebuild(&rec, &[&misplaced], true)
                .unwrap()
                .is_none()
        );
        // All five answered and no three agree: the round cannot be summed.
        let bad: Vec<Reveal> = (0..5)
            .map(|i| reveal(i, [u8::try_from(i + 1).unwrap(); 32]))
            .collect();
        let bad: Vec<&Reveal> = bad.iter().collect();
        assert!(Profile::rebuild(&rec, &bad, true).is_err());
    }

    #[test]
    fn a_month_vector_goes_out_and_back_and_noise_is_refused() {
        let layout = Layout {
            regions: vec!["PE-LIM".into()],
        };
        let mut row = StatsRow {
            key: RowKey {
                region: Some("PE-LIM".into()),
                setting: Some(amparo_protocol::payload::PlaceSetting::Urban),
            },
            total: 2,
            cells: Dimension::ALL
                .iter()
                .map(|d| vec![0; d.columns().len()])
                .collect(),
        };
        for cells in &mut row.cells {
            cells[0] = 2;
        }
        let stats = MonthStats {
            month: last_month(),
            cases: 2,
            counted: 2,
            excluded: BTreeMap::new(),
            rows: vec![row],
            context: BTreeMap::from([(GbvContext::Trafficking, 1)]),
        };
        let v = counts_vector(&stats, &layout).unwrap();
        assert_eq!(v.len(), layout.len());
        let back = stats_from_vector(&v, &layout, stats.month).unwrap();
        assert_eq!(back, stats);
        let mut noise = v.clone();
        noise[30] = 0x8000_0000;
        assert!(stats_from_vector(&noise, &layout, stats.month).is_err());
        let mut wrong = v;
        wrong[1] = 1; // a row whose types do not add up to its total
        assert!(stats_from_vector(&wrong, &layout, stats.month).is_err());
    }
}
