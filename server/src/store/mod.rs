//! Storage behind one trait, with an implementation per backend: SQLite
//! embedded (the default) and PostgreSQL (several stateless relays on one
//! database). The HTTP layer is generic over [`Store`] and never knows which
//! it has; `server/tests/store_conformance.rs` runs one suite on both.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use crate::quota::{Full, Ledger, Quota, RelayUsage, Usage};

pub mod field_queue;
pub mod postgres;
pub mod sqlite;
pub mod timers;

pub use postgres::PgStore;
pub use sqlite::{OpenChecks, SqliteStore};

/// A storage failure. Its message is for operators' logs; it never holds
/// envelope bytes, and HTTP clients only ever see "storage unavailable".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed at start.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A value out of the range the schema stores.
    #[error("value out of range: {0}")]
    Range(&'static str),
    /// The store holds a newer directory than the caps offered were built
    /// from ([`crate::quota::DirectorySeen`]); nothing was written. The
    /// group committer learns it and tries again.
    #[error("the caps were built from an older directory than the one held")]
    StaleDirectory,
}

/// An envelope to store.
#[derive(Debug, Clone)]
pub struct NewEnvelope {
    /// Its id (SHA-256 prefix of the bytes).
    pub id: [u8; 16],
    /// Recipient mailbox.
    pub mailbox: [u8; 12],
    /// Arrival hour (hours since the epoch).
    pub arrival_hour: u32,
    /// The envelope.
    pub bytes: Vec<u8>,
}

/// What the store holds for one inserted envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The arrival hour on record (of the first copy).
    pub arrival_hour: u32,
    /// Whether this insert stored it (false for a copy already held).
    pub fresh: bool,
}

/// What became of one envelope offered under a [`Quota`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Stored now or held already: the relay signs a receipt for it.
    Stored(Stored),
    /// Not stored: over a cap. Nothing was written for it.
    Full(Full),
}

/// An envelope read from a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnvelope {
    /// Position in the mailbox; fetch with `after` = the last cursor seen.
    pub cursor: u64,
    /// The envelope.
    pub bytes: Vec<u8>,
}

/// How a page read within a byte room ([`Store::fetch_within`]) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageEnd {
    /// Every envelope waiting after the cursor is in the page, or the page
    /// holds `limit` and nothing waits after it.
    Whole,
    /// The page holds `limit` envelopes and more wait after them.
    More,
    /// The page stopped before `limit` at the first envelope that would
    /// take it past its room; it and the ones after wait.
    Cut,
}

/// A page of a mailbox read no further than its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundedPage {
    /// The envelopes, in cursor order.
    pub envelopes: Vec<StoredEnvelope>,
    /// Why it ended.
    pub end: PageEnd,
}

/// What a page read within a byte room may hold: at most `limit`
/// envelopes, each costing `item_head` bytes (its cursor and length in
/// the answer) plus its own size, in all at most `room` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRoom {
    /// Most envelopes.
    pub limit: u32,
    /// Most bytes, envelopes and their heads.
    pub room: usize,
    /// Bytes each envelope costs beside its own.
    pub item_head: usize,
}

impl PageRoom {
    /// Given the sizes of the envelopes after the cursor, in cursor order
    /// (at most `limit` + 1 of them: the one past the page only says more
    /// wait), how many go in the page and how it ends. Bodies are read
    /// for those only.
    pub(crate) fn take(&self, sizes: &[u64]) -> (usize, PageEnd) {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let mut left = self.room;
        for (i, len) in sizes.iter().enumerate() {
            if i == limit {
                return (i, PageEnd::More);
            }
            let cost = usize::try_from(*len)
                .unwrap_or(usize::MAX)
                .saturating_add(self.item_head);
            if cost > left {
                return (i, PageEnd::Cut);
            }
            left -= cost;
        }
        (sizes.len().min(limit), PageEnd::Whole)
    }

    /// How many sizes to read: one past the page.
    pub(crate) fn probe(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

/// Counts for /metrics (never per mailbox).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Envelopes waiting in mailboxes.
    pub envelopes: u64,
    /// Their total size.
    pub bytes: u64,
    /// Rows of acknowledged (or forwarded) envelopes kept for
    /// deduplication until their retention ends.
    pub acknowledged: u64,
    /// Check-in timers on record (held, or cancelled until their hour).
    pub timers: u64,
    /// Bytes of the alerts they hold.
    pub held_bytes: u64,
}

/// What a relay stores.
pub trait Store: Clone + Send + Sync + 'static {
    /// Stores envelopes in one transaction, idempotently: an id already
    /// present (even acknowledged) is not stored again. Returns, for each
    /// input in order, the arrival hour on record for its id — which the relay
    /// signs into the receipt, so a resent copy gets the same receipt — and
    /// whether this call stored it; or, for an envelope not held yet that
    /// would pass a cap of `quota`, [`Placed::Full`], and nothing is stored
    /// for it. New envelopes are admitted one after the other in the order
    /// they are inserted (by id), each against the usage left by the ones
    /// before, and the usage on record changes in the same transaction.
    /// Returns only after the transaction is durable. If the store holds a
    /// newer directory than `quota` was built from, nothing is written and
    /// the answer is [`StoreError::StaleDirectory`].
    fn insert_within(
        &self,
        batch: &[NewEnvelope],
        quota: &Quota,
    ) -> impl Future<Output = Result<Vec<Placed>, StoreError>> + Send;

    /// [`Store::insert_within`] without any cap.
    fn insert_envelopes(
        &self,
        batch: &[NewEnvelope],
    ) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send {
        async move {
            self.insert_within(batch, &Quota::unlimited())
                .await?
                .into_iter()
                .map(|p| match p {
                    Placed::Stored(s) => Ok(s),
                    Placed::Full(_) => Err(StoreError::Range("over a cap with no cap")),
                })
                .collect()
        }
    }

    /// Up to `limit` unacknowledged envelopes of `mailbox` with cursor > `after`, in cursor order.
    fn fetch(
        &self,
        mailbox: &[u8; 12],
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<StoredEnvelope>, StoreError>> + Send;

    /// Up to `room.limit` unacknowledged envelopes of `mailbox` with a
    /// cursor above `after`, in cursor order, no more than fit in `room.room` bytes:
    /// the sizes are read first and only the bodies that go in the page
    /// after them, so a page's memory follows its room, not its limit.
    fn fetch_within(
        &self,
        mailbox: &[u8; 12],
        after: u64,
        room: PageRoom,
    ) -> impl Future<Output = Result<BoundedPage, StoreError>> + Send;

    /// Deletes the bodies of the given envelopes of `mailbox`; returns how
    /// many were deleted. Ids of other mailboxes are ignored.
    fn ack(
        &self,
        mailbox: &[u8; 12],
        ids: &[[u8; 16]],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes every envelope (and tombstone) that arrived before `before_hour`.
    fn expire(&self, before_hour: u32) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The current signed directory and its version.
    fn directory(&self) -> impl Future<Output = Result<Option<(u64, Vec<u8>)>, StoreError>> + Send;

    /// Stores a directory if its version is higher than the current one;
    /// returns whether it was stored. Atomic across relays.
    fn put_directory(
        &self,
        version: u64,
        bytes: &[u8],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records a request's replay id; returns false if it was already seen.
    fn remember_request(
        &self,
        replay_id: &[u8; 16],
        expires_hour: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets replay ids that expired before `before_hour`.
    fn forget_requests(
        &self,
        before_hour: u32,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The sealed Privacy Pass issuer key stored for key epoch `epoch`, if
    /// any. Relays sharing a database read it from here instead of making
    /// their own, so a token issued by one is accepted by all of them.
    fn token_key(
        &self,
        epoch: u32,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Stores `sealed` as the issuer key of `epoch` unless one is stored for
    /// it already, and returns the one on record: another relay's, if two
    /// made a key for the same epoch at once. Every relay on one database
    /// must end up with the same key, so the caller uses what this returns,
    /// never what it offered.
    fn put_token_key(
        &self,
        epoch: u32,
        sealed: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// Records a token (by its nullifier, issued under `key_epoch`) as
    /// spent; returns true if it was not spent before, false if it was. A
    /// token pays for one upload only, even when two relays on one database
    /// are shown it at the same moment: exactly one of them gets true.
    fn spend_token(
        &self,
        nullifier: &[u8; 16],
        key_epoch: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets that a token was spent: an upload it paid for stored nothing,
    /// and the sender must not lose the token for it.
    fn unspend_token(
        &self,
        nullifier: &[u8; 16],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets spent tokens issued under key epochs before `before_epoch`,
    /// which can no longer be presented (their key is retired), so the list
    /// stays as short as the epochs still accepted; returns how many.
    fn forget_spent_tokens(
        &self,
        before_epoch: u32,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Counts `n` more tokens issued by `issuer` (an opaque keyed hash, not
    /// a key) on `day`, if the day's total stays within `limit`; returns
    /// whether it did. If it would pass the limit nothing changes (the count
    /// stays as it was) and the answer is false. Atomic across relays on one
    /// database, so together they never issue more than `limit` a day.
    fn count_issuance(
        &self,
        issuer: &[u8; 16],
        day: u32,
        n: u32,
        limit: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets the issuance counts of days before `before_day`, which no
    /// limit checks any more; returns how many rows.
    fn forget_issuance(
        &self,
        before_day: u32,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Counts for metrics: what waits in all mailboxes (kept as envelopes
    /// come and go, not counted per call).
    fn counts(&self) -> impl Future<Output = Result<StoreCounts, StoreError>> + Send;

    /// What waits in one mailbox, as the caps see it.
    fn mailbox_usage(
        &self,
        mailbox: &[u8; 12],
    ) -> impl Future<Output = Result<Usage, StoreError>> + Send;

    /// Bytes free inside the database's files, which new envelopes reuse
    /// before the files grow (counted as free disk by the watermark).
    fn reusable_bytes(&self) -> u64 {
        0
    }

    /// Holds a check-in timer's alert until its release hour (PROTOCOL.md
    /// §17), idempotently: the same alert sent again for a timer on record
    /// gets the timer's state; another alert, or any for a cancelled
    /// timer, gets [`timers::HoldPlaced::Taken`]. Over a cap (the timers
    /// on record, the alerts held for its mailbox, or the global cap and
    /// disk watermark of `quota`, which count alerts held as bytes waiting)
    /// nothing is written. Durable when it returns.
    fn hold(
        &self,
        hold: &timers::NewHold,
        quota: &Quota,
        limits: &timers::TimerLimits,
    ) -> impl Future<Output = Result<timers::HoldPlaced, StoreError>> + Send;

    /// Applies a check-in (signature verified) to the timer it names at
    /// `now_hour`, in one transaction: refused (nothing changed) if
    /// [`amparo_protocol::timer::apply`] refuses it or the timer's hour
    /// has come; a cancel deletes the alert. Atomic across relays on one
    /// database, and against the release pass: a timer is either postponed
    /// or released, never both.
    fn check_in(
        &self,
        check_in: &amparo_protocol::timer::CheckIn,
        now_hour: u32,
    ) -> impl Future<Output = Result<timers::CheckedIn, StoreError>> + Send;

    /// Moves up to `limit` alerts whose release hour is `now_hour` or
    /// earlier into their focal points' mailboxes (arrival hour
    /// `now_hour`), deleting their timers in the same transaction, so each
    /// is released exactly once whatever crashes and however many relays
    /// share the database; and forgets cancelled timers whose hour has
    /// passed. Returns how many alerts it released (call again while it
    /// returns `limit`).
    fn release_due(
        &self,
        now_hour: u32,
        limit: u32,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

pub(crate) fn to_i64(v: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Range(what))
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn hour_from_db(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// The admission step of a group commit, the same on every backend: which
/// new envelopes a transaction inserts, which it refuses as over a cap, and
/// the arrival hours on record of copies already held.
#[derive(Debug)]
pub(crate) struct Admission<'e> {
    /// Envelopes to insert (in the group's order).
    pub admitted: Vec<&'e NewEnvelope>,
    /// Arrival hours on record of envelopes held already.
    pub on_record: HashMap<[u8; 16], u32>,
    /// Envelopes over a cap: nothing of them is written.
    pub full: HashMap<[u8; 16], Full>,
}

impl<'e> Admission<'e> {
    /// The whole group `order` (sorted by id, distinct), if it cannot
    /// reach a cap even if none of it is held yet: then it is inserted as
    /// it is, and which envelopes were held already is learnt from what
    /// the insert stored. Counting a held copy as new can only refuse
    /// more, never admit more, so a group admitted whole this way is
    /// admitted exactly. `None`: near a cap, see [`Admission::near_cap`].
    pub fn whole(
        quota: &Quota,
        global: RelayUsage,
        usage: &HashMap<[u8; 12], Usage>,
        order: &[&'e NewEnvelope],
    ) -> Option<Self> {
        let mut ledger = Ledger::new(quota, global, usage);
        let whole = order
            .iter()
            .all(|e| ledger.admit(&e.mailbox, e.bytes.len() as u64).is_ok());
        if whole {
            ledger.report(&[]);
        }
        whole.then(|| Admission {
            admitted: order.to_vec(),
            on_record: HashMap::new(),
            full: HashMap::new(),
        })
    }

    /// Near a cap: copies of envelopes already held (`held`, their hours
    /// on record) get their receipts whatever the caps (they cost
    /// nothing), and the new ones are admitted one after the other, each
    /// against the usage left by those before it.
    pub fn near_cap(
        quota: &Quota,
        global: RelayUsage,
        usage: &HashMap<[u8; 12], Usage>,
        order: &[&'e NewEnvelope],
        held: HashMap<[u8; 16], u32>,
    ) -> Self {
        let mut ledger = Ledger::new(quota, global, usage);
        let mut admitted = Vec::with_capacity(order.len());
        let mut full = HashMap::new();
        let mut at_cap = Vec::new();
        for e in order.iter().filter(|e| !held.contains_key(&e.id)) {
            match ledger.admit(&e.mailbox, e.bytes.len() as u64) {
                Ok(()) => admitted.push(*e),
                Err(f) => {
                    if f == Full::Mailbox {
                        at_cap.push(e.mailbox);
                    }
                    full.insert(e.id, f);
                }
            }
        }
        ledger.report(&at_cap);
        Admission {
            admitted,
            on_record: held,
            full,
        }
    }

    /// Admitted envelopes the insert did not store (`fresh` holds those it
    /// did): held already, by an earlier commit or, on PostgreSQL, another
    /// relay since the group's usage was read. Their hours are read next.
    pub fn late(&self, fresh: &HashSet<[u8; 16]>) -> Vec<[u8; 16]> {
        self.admitted
            .iter()
            .map(|e| e.id)
            .filter(|id| !fresh.contains(id))
            .collect()
    }

    /// What became of each envelope of `batch`, in its order, once the
    /// insert stored `fresh` and the hours of the late ones (`late`) are
    /// known. Only the first copy of an id in the batch counts as stored;
    /// later copies share its arrival hour.
    pub fn placed(
        mut self,
        batch: &[NewEnvelope],
        mut fresh: HashSet<[u8; 16]>,
        late: HashMap<[u8; 16], u32>,
    ) -> Result<Vec<Placed>, StoreError> {
        self.on_record.extend(late);
        let mut out = Vec::with_capacity(batch.len());
        for e in batch {
            if let Some(f) = self.full.get(&e.id) {
                out.push(Placed::Full(*f));
                continue;
            }
            if fresh.remove(&e.id) {
                self.on_record.insert(e.id, e.arrival_hour);
                out.push(Placed::Stored(Stored {
                    arrival_hour: e.arrival_hour,
                    fresh: true,
                }));
                continue;
            }
            let arrival_hour = self
                .on_record
                .get(&e.id)
                .copied()
                .ok_or(StoreError::Range("envelope vanished during insert"))?;
            out.push(Placed::Stored(Stored {
                arrival_hour,
                fresh: false,
            }));
        }
        Ok(out)
    }
}
