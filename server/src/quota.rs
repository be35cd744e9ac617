//! Storage limits (PROTOCOL.md §12.2, §12.10): how much one mailbox and the
//! whole relay may hold, and how much free disk the relay leaves alone.
//! Every rule about them lives here; both stores and the field relay's
//! queue apply them through [`Ledger`], the same way.
//!
//! - **Per mailbox**, envelopes and bytes waiting. A focal point's mailbox
//!   (one listed in the signed directory the relay holds) gets the larger
//!   cap; any other mailbox is a survivor's reply mailbox, where a
//!   conversation is a few messages, and gets a much smaller one. With no
//!   directory (none uploaded yet, or no coordinator key to check it),
//!   every mailbox gets the focal-point cap: refusing real reports because
//!   the coordinator has not published yet would be worse, and the global
//!   cap still bounds the whole.
//! - **Global**, bytes waiting in all mailboxes (on PostgreSQL, across all
//!   the relays that share the database).
//! - **Disk**, on SQLite: a new envelope is refused while the filesystem
//!   holding the database would have less than `min_free_disk_bytes` free
//!   (free pages inside the database file count as free: they are reused).
//!
//! Over a cap an envelope is refused with a transient code (6
//! `mailbox_full`, 7 `relay_full`) before anything is stored; the sender
//! keeps it and sends it again later. A copy of an envelope already held is
//! answered with its receipt whatever the caps: it costs nothing. Nothing
//! that was given a receipt is ever dropped to make room.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use amparo_protocol::directory::SignedDirectory;
use amparo_protocol::primitives::ed25519::VerifyingKey;
use amparo_protocol::wire::RejectCode;

use crate::store::{Store, StoreError};

/// How much one mailbox may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxCap {
    /// Envelopes waiting.
    pub envelopes: u64,
    /// Bytes waiting.
    pub bytes: u64,
}

/// Default cap of a focal point's mailbox: 10 000 envelopes.
pub const DEFAULT_FOCAL_ENVELOPES: u64 = 10_000;
/// Default cap of a focal point's mailbox: 512 MiB.
pub const DEFAULT_FOCAL_BYTES: u64 = 512 * 1024 * 1024;
/// Default cap of a reply mailbox: 64 envelopes.
pub const DEFAULT_REPLY_ENVELOPES: u64 = 64;
/// Default cap of a reply mailbox: 1 MiB.
pub const DEFAULT_REPLY_BYTES: u64 = 1024 * 1024;
/// Default global cap: 8 GiB waiting in all mailboxes.
pub const DEFAULT_MAX_STORED_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// Default free disk left alone: 1 GiB.
pub const DEFAULT_MIN_FREE_DISK_BYTES: u64 = 1024 * 1024 * 1024;

/// The storage limits a relay was started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageLimits {
    /// A focal point's mailbox (listed in the directory).
    pub focal: MailboxCap,
    /// Any other mailbox (a survivor's reply mailbox).
    pub reply: MailboxCap,
    /// Bytes waiting in all mailboxes.
    pub max_stored_bytes: u64,
    /// Free bytes left on the database's filesystem (SQLite only).
    pub min_free_disk_bytes: u64,
}

impl Default for StorageLimits {
    fn default() -> Self {
        StorageLimits {
            focal: MailboxCap {
                envelopes: DEFAULT_FOCAL_ENVELOPES,
                bytes: DEFAULT_FOCAL_BYTES,
            },
            reply: MailboxCap {
                envelopes: DEFAULT_REPLY_ENVELOPES,
                bytes: DEFAULT_REPLY_BYTES,
            },
            max_stored_bytes: DEFAULT_MAX_STORED_BYTES,
            min_free_disk_bytes: DEFAULT_MIN_FREE_DISK_BYTES,
        }
    }
}

impl StorageLimits {
    /// No limit at all (tools and tests that store without a relay).
    pub const UNLIMITED: StorageLimits = StorageLimits {
        focal: MailboxCap {
            envelopes: u64::MAX,
            bytes: u64::MAX,
        },
        reply: MailboxCap {
            envelopes: u64::MAX,
            bytes: u64::MAX,
        },
        max_stored_bytes: u64::MAX,
        min_free_disk_bytes: 0,
    };
}

/// Default cap of a field relay's cache of one upstream mailbox: 8 MiB.
pub const DEFAULT_FIELD_CACHE_MAILBOX_BYTES: u64 = 8 * 1024 * 1024;
/// Default cap of a field relay's whole cache of upstream mailboxes: 256 MiB.
pub const DEFAULT_FIELD_CACHE_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// How much a field relay keeps of what it fetched from upstream mailboxes
/// for phones to pick up while the upstream is out of reach. These are
/// copies of what the upstream holds: past a cap the oldest are evicted,
/// never an envelope queued to go upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Bytes cached for one mailbox.
    pub mailbox_bytes: u64,
    /// Bytes cached for all mailboxes.
    pub max_bytes: u64,
    /// Free disk the cache leaves alone (the relay's `min_free_disk_bytes`):
    /// it does not grow while the disk is below it.
    pub min_free_disk_bytes: u64,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            mailbox_bytes: DEFAULT_FIELD_CACHE_MAILBOX_BYTES,
            max_bytes: DEFAULT_FIELD_CACHE_MAX_BYTES,
            min_free_disk_bytes: DEFAULT_MIN_FREE_DISK_BYTES,
        }
    }
}

/// Why an envelope was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Its mailbox is at its cap.
    Mailbox,
    /// The relay is at its global cap or its disk watermark.
    Relay,
}

impl Full {
    /// The reject code a sender gets (PROTOCOL.md §12.6).
    pub fn code(self) -> RejectCode {
        match self {
            Full::Mailbox => RejectCode::MailboxFull,
            Full::Relay => RejectCode::RelayFull,
        }
    }
}

/// What one group commit may store: the limits, which mailboxes are focal
/// points', and the room left on disk, as they are when it starts.
#[derive(Debug, Clone)]
pub struct Quota {
    /// The limits.
    pub limits: StorageLimits,
    /// Focal points' mailboxes, from the directory; `None` without one (then
    /// every mailbox gets the focal-point cap).
    pub focal_mailboxes: Option<Arc<HashSet<[u8; 12]>>>,
    /// Bytes that may still be written before the disk watermark, if known.
    pub disk_room: Option<u64>,
    /// The directory `focal_mailboxes` was learnt from. A store holding a
    /// newer one (put through another relay sharing a PostgreSQL database,
    /// or mirrored by a field relay) refuses the group with
    /// [`StoreError::StaleDirectory`] instead of applying old caps to it.
    pub directory: DirectorySeen,
    /// Where a group commit tells how full it left its mailboxes and the
    /// relay (for admission, PROTOCOL.md §14); `None`: nobody asks.
    pub pressure: Option<Arc<crate::admission::Pressure>>,
}

/// Which directory a [`Quota`]'s focal points' mailboxes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectorySeen {
    /// The caps do not follow a directory (no coordinator key to check
    /// one, or no caps at all).
    Ignored,
    /// The newest version looked at (learnt, or refused because it did not
    /// verify), or none yet.
    Version(Option<u64>),
}

impl DirectorySeen {
    /// Whether a store holding the directory of version `held` knows of a
    /// newer one than this.
    pub fn is_behind(self, held: Option<u64>) -> bool {
        match (self, held) {
            (DirectorySeen::Version(seen), Some(held)) => seen.is_none_or(|s| held > s),
            _ => false,
        }
    }
}

impl Quota {
    /// No limit.
    pub fn unlimited() -> Quota {
        Quota {
            limits: StorageLimits::UNLIMITED,
            focal_mailboxes: None,
            disk_room: None,
            directory: DirectorySeen::Ignored,
            pressure: None,
        }
    }

    /// The cap of `mailbox`.
    pub fn cap_for(&self, mailbox: &[u8; 12]) -> MailboxCap {
        match &self.focal_mailboxes {
            Some(focal) if !focal.contains(mailbox) => self.limits.reply,
            _ => self.limits.focal,
        }
    }
}

/// Usage of one mailbox, or of the whole relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Envelopes waiting.
    pub envelopes: u64,
    /// Bytes waiting.
    pub bytes: u64,
}

/// What one acknowledged envelope's remaining row (id and arrival hour, kept
/// for deduplication until its retention ends) counts against
/// `max_stored_bytes`. Such rows are small but anyone can make them
/// (upload to a mailbox of one's own and acknowledge), and they stay for
/// the whole retention: counted at a fixed cost each, they cannot grow the
/// database past the global cap (and, on PostgreSQL, which has no disk
/// watermark, past what the operator gave the relays). 128 bytes is more
/// than such a row takes with its index entries: about 80 on SQLite, about
/// 110 on PostgreSQL (tuple header, id, zeroed mailbox, hour, two indexes).
pub const ACKNOWLEDGED_ROW_BYTES: u64 = 128;

/// What the whole relay holds, as the global cap counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayUsage {
    /// Envelopes waiting, and their bytes.
    pub waiting: Usage,
    /// Rows of acknowledged (or forwarded) envelopes kept for
    /// deduplication, each counted as [`ACKNOWLEDGED_ROW_BYTES`].
    pub acknowledged: u64,
    /// Check-in timers on record (PROTOCOL.md §17), held or cancelled.
    pub timers: u64,
    /// Bytes of the alerts timers hold.
    pub held_bytes: u64,
}

impl RelayUsage {
    /// The bytes the global cap counts: what waits, the alerts held for
    /// check-in timers, and the acknowledged rows at their fixed cost.
    pub fn counted_bytes(&self) -> u64 {
        self.waiting
            .bytes
            .saturating_add(self.held_bytes)
            .saturating_add(self.acknowledged.saturating_mul(ACKNOWLEDGED_ROW_BYTES))
    }
}

/// Admits the new envelopes of one transaction one after the other against
/// the usage read at its start (under the store's write lock), so a group
/// of envelopes for one mailbox cannot pass a cap together.
///
/// The usage on record is borrowed (on SQLite it is the store's own book,
/// kept in memory); what the transaction adds is kept beside it.
#[derive(Debug)]
pub struct Ledger<'q, 'u> {
    quota: &'q Quota,
    global: Usage,
    on_record: &'u HashMap<[u8; 12], Usage>,
    written: u64,
    /// What this transaction adds, per mailbox.
    pub added: HashMap<[u8; 12], Usage>,
}

impl<'q, 'u> Ledger<'q, 'u> {
    /// A ledger starting from the usage on record: `global` for the relay,
    /// `on_record` per mailbox (a mailbox missing from it holds nothing).
    pub fn new(
        quota: &'q Quota,
        global: RelayUsage,
        on_record: &'u HashMap<[u8; 12], Usage>,
    ) -> Self {
        Ledger {
            quota,
            global: Usage {
                envelopes: global.waiting.envelopes,
                bytes: global.counted_bytes(),
            },
            on_record,
            written: 0,
            added: HashMap::new(),
        }
    }

    /// What `mailbox` holds with what this transaction added to it.
    fn used(&self, mailbox: &[u8; 12]) -> Usage {
        let base = self.on_record.get(mailbox).copied().unwrap_or_default();
        let added = self.added.get(mailbox).copied().unwrap_or_default();
        Usage {
            envelopes: base.envelopes.saturating_add(added.envelopes),
            bytes: base.bytes.saturating_add(added.bytes),
        }
    }

    /// Admits one envelope of `len` bytes for `mailbox`, or says which cap
    /// it would pass. An admitted envelope counts against the caps for the
    /// ones after it.
    pub fn admit(&mut self, mailbox: &[u8; 12], len: u64) -> Result<(), Full> {
        let cap = self.quota.cap_for(mailbox);
        let used = self.used(mailbox);
        if used.envelopes.saturating_add(1) > cap.envelopes
            || used.bytes.saturating_add(len) > cap.bytes
        {
            return Err(Full::Mailbox);
        }
        if self.global.bytes.saturating_add(len) > self.quota.limits.max_stored_bytes
            || self
                .quota
                .disk_room
                .is_some_and(|room| self.written.saturating_add(len) > room)
        {
            return Err(Full::Relay);
        }
        let add = |u: &mut Usage| {
            u.envelopes = u.envelopes.saturating_add(1);
            u.bytes = u.bytes.saturating_add(len);
        };
        add(self.added.entry(*mailbox).or_default());
        add(&mut self.global);
        self.written = self.written.saturating_add(len);
        Ok(())
    }

    /// Tells the quota's pressure, if any, what this transaction added to
    /// each mailbox and how full it leaves them and the relay, and that the
    /// mailboxes in `at_cap` refused an envelope (for admission, PROTOCOL.md
    /// §14).
    pub fn report(&self, at_cap: &[[u8; 12]]) {
        let Some(p) = self.quota.pressure.as_ref().filter(|p| p.is_on()) else {
            return;
        };
        let max = self.quota.limits.max_stored_bytes;
        p.observe_global(if max == 0 {
            1.0
        } else {
            self.global.bytes as f64 / max as f64
        });
        for (m, added) in &self.added {
            let cap = self.quota.cap_for(m);
            p.arrived(m, added.envelopes, cap.envelopes);
            p.observe(m, crate::admission::fill(self.used(m), cap));
        }
        for m in at_cap {
            p.observe(m, 1.0);
        }
    }

    /// Gives back what [`Ledger::admit`] counted for an envelope that was
    /// not stored after all (another relay stored it first).
    pub fn revert(&mut self, mailbox: &[u8; 12], len: u64) {
        let sub = |u: &mut Usage| {
            u.envelopes = u.envelopes.saturating_sub(1);
            u.bytes = u.bytes.saturating_sub(len);
        };
        if let Some(u) = self.added.get_mut(mailbox) {
            sub(u);
        }
        sub(&mut self.global);
        self.written = self.written.saturating_sub(len);
    }

    /// What this transaction adds in all, with the mailboxes it touches
    /// sorted (a fixed lock order across relays).
    pub fn totals(&self) -> (Usage, Vec<([u8; 12], Usage)>) {
        let mut rows: Vec<([u8; 12], Usage)> = self
            .added
            .iter()
            .filter(|(_, u)| u.envelopes > 0)
            .map(|(m, u)| (*m, *u))
            .collect();
        rows.sort_unstable_by_key(|(m, _)| *m);
        let total = rows.iter().fold(Usage::default(), |acc, (_, u)| Usage {
            envelopes: acc.envelopes + u.envelopes,
            bytes: acc.bytes + u.bytes,
        });
        (total, rows)
    }
}

/// Reads the free bytes of the filesystem that holds the database, or
/// `None` when it cannot tell (injectable for tests).
pub type DiskProbe = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// The free bytes, for an unprivileged process, of the filesystem that
/// holds `path` (`statvfs`).
pub fn statvfs_probe(path: PathBuf) -> DiskProbe {
    Arc::new(move || free_bytes(&path))
}

#[cfg(unix)]
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(unix))]
fn free_bytes(_path: &std::path::Path) -> Option<u64> {
    None
}

#[derive(Default)]
struct FocalSet {
    /// The newest directory version looked at, verified (then `mailboxes`
    /// come from it) or not.
    seen: Option<u64>,
    mailboxes: Option<Arc<HashSet<[u8; 12]>>>,
}

/// The limits of a running relay: the settings, the focal points' mailboxes
/// of the directory it holds, and its disk probe.
pub struct Quotas {
    limits: StorageLimits,
    coordinator: Option<VerifyingKey>,
    probe: Option<DiskProbe>,
    focal: RwLock<FocalSet>,
    /// Free disk at the last reading (for /metrics), `u64::MAX` if unknown.
    last_free: AtomicU64,
    /// How full the group commits left things (see [`Quota::pressure`]).
    pressure: Arc<crate::admission::Pressure>,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Quotas {
    /// Limits checked against directories signed by `coordinator`, and the
    /// disk read by `probe` (none: no disk watermark, as on PostgreSQL).
    pub fn new(
        limits: StorageLimits,
        coordinator: Option<VerifyingKey>,
        probe: Option<DiskProbe>,
    ) -> Quotas {
        Quotas {
            limits,
            coordinator,
            probe,
            focal: RwLock::new(FocalSet::default()),
            last_free: AtomicU64::new(u64::MAX),
            pressure: Arc::default(),
        }
    }

    /// The settings.
    pub fn limits(&self) -> StorageLimits {
        self.limits
    }

    /// Free disk at the last reading, if there is a probe and it answered.
    pub fn last_free_disk(&self) -> Option<u64> {
        match self.last_free.load(Ordering::Relaxed) {
            u64::MAX => None,
            v => Some(v),
        }
    }

    /// What the next group commit may store. `reusable` is the space free
    /// inside the database file (reused before the file grows).
    pub fn current(&self, reusable: u64) -> Quota {
        let disk_room = self.probe.as_ref().and_then(|p| p()).map(|free| {
            self.last_free.store(free, Ordering::Relaxed);
            free.saturating_add(reusable)
                .saturating_sub(self.limits.min_free_disk_bytes)
        });
        let (focal_mailboxes, seen) = match self.focal.read() {
            Ok(f) => (f.mailboxes.clone(), f.seen),
            Err(_) => (None, None),
        };
        Quota {
            limits: self.limits,
            focal_mailboxes,
            disk_room,
            directory: match self.coordinator {
                Some(_) => DirectorySeen::Version(seen),
                None => DirectorySeen::Ignored,
            },
            pressure: Some(self.pressure.clone()),
        }
    }

    /// The cap of `mailbox` under the directory known now.
    pub fn cap_for(&self, mailbox: &[u8; 12]) -> MailboxCap {
        match self.focal.read() {
            Ok(f) => match &f.mailboxes {
                Some(focal) if !focal.contains(mailbox) => self.limits.reply,
                _ => self.limits.focal,
            },
            Err(_) => self.limits.focal,
        }
    }

    /// Whether `mailbox` is a focal point's under the directory known now
    /// (every mailbox is, while the relay knows none).
    pub fn is_focal(&self, mailbox: &[u8; 12]) -> bool {
        match self.focal.read() {
            Ok(f) => f
                .mailboxes
                .as_ref()
                .is_none_or(|focal| focal.contains(mailbox)),
            Err(_) => true,
        }
    }

    /// How full the group commits left things, for admission.
    pub fn pressure(&self) -> Arc<crate::admission::Pressure> {
        self.pressure.clone()
    }

    /// Learns the focal points' mailboxes from the directory the relay holds
    /// (version and signed bytes), if it is newer than the one known and
    /// verifies against the coordinator key. Returns whether it changed.
    pub fn learn_directory(&self, version: u64, bytes: &[u8]) -> bool {
        if self
            .focal
            .read()
            .is_ok_and(|f| f.seen.is_some_and(|v| v >= version))
        {
            return false;
        }
        let Some(coordinator) = &self.coordinator else {
            return false;
        };
        let Ok(signed) = SignedDirectory::verify(bytes, coordinator) else {
            // Looked at: the caps keep the directory they had, and a store
            // holding this one does not send the group commit back for it.
            if let Ok(mut f) = self.focal.write() {
                f.seen = f.seen.max(Some(version));
            }
            tracing::warn!(
                version,
                "the directory held does not verify against the coordinator key; the mailbox caps keep the previous one"
            );
            return false;
        };
        // The coordinator's statistics mailbox gets a focal point's caps:
        // every office sends it a table a month, and it is read as seldom
        // as a focal point's.
        let set: HashSet<[u8; 12]> = signed
            .directory()
            .focal_points
            .iter()
            .map(|f| f.keys.mailbox().0)
            .chain(signed.directory().statistics.iter().map(|s| s.mailbox().0))
            .collect();
        match self.focal.write() {
            Ok(mut f) => {
                *f = FocalSet {
                    seen: f.seen.max(Some(signed.version())),
                    mailboxes: Some(Arc::new(set)),
                };
                true
            }
            Err(_) => false,
        }
    }
}

/// How often a relay reads the directory again (another relay sharing its
/// PostgreSQL database, or a field relay's mirroring, may have replaced it).
pub const DIRECTORY_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

impl Quotas {
    /// Learns the directory `store` holds, if newer. Returns whether the
    /// focal points' mailboxes changed.
    pub async fn refresh<S: Store>(&self, store: &S) -> Result<bool, StoreError> {
        Ok(match store.directory().await? {
            Some((version, bytes)) => self.learn_directory(version, &bytes),
            None => false,
        })
    }

    /// Reads the held directory now and every [`DIRECTORY_REFRESH`].
    pub fn spawn_refresh<S: Store>(self: Arc<Self>, store: S) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(DIRECTORY_REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.refresh(&store).await {
                    tracing::warn!(error = %e, "cannot read the directory for the mailbox caps; will retry");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(focal: Option<&[[u8; 12]]>) -> Quota {
        Quota {
            limits: StorageLimits {
                focal: MailboxCap {
                    envelopes: 3,
                    bytes: 1000,
                },
                reply: MailboxCap {
                    envelopes: 1,
                    bytes: 100,
                },
                max_stored_bytes: 1500,
                min_free_disk_bytes: 0,
            },
            focal_mailboxes: focal.map(|f| Arc::new(f.iter().copied().collect())),
            disk_room: None,
            directory: DirectorySeen::Ignored,
            pressure: None,
        }
    }

    #[test]
    fn envelopes_are_admitted_one_after_the_other() {
        let q = quota(Some(&[[1; 12]]));
        let none = HashMap::new();
        let mut l = Ledger::new(&q, RelayUsage::default(), &none);
        assert_eq!(l.admit(&[1; 12], 400), Ok(()));
        assert_eq!(l.admit(&[1; 12], 400), Ok(()));
        assert_eq!(l.admit(&[1; 12], 400), Err(Full::Mailbox), "bytes");
        assert_eq!(l.admit(&[1; 12], 100), Ok(()));
        assert_eq!(l.admit(&[1; 12], 1), Err(Full::Mailbox), "envelopes");
        // Not in the directory: a reply mailbox.
        assert_eq!(l.admit(&[2; 12], 100), Ok(()));
        assert_eq!(l.admit(&[2; 12], 1), Err(Full::Mailbox));
        assert_eq!(l.admit(&[3; 12], 101), Err(Full::Mailbox));
        assert_eq!(l.admit(&[3; 12], 100), Ok(()));
        let (total, rows) = l.totals();
        assert_eq!(
            total,
            Usage {
                envelopes: 5,
                bytes: 1100
            }
        );
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn the_global_cap_and_the_disk_refuse_as_relay_full() {
        let q = quota(None);
        let global = RelayUsage {
            waiting: Usage {
                envelopes: 9,
                bytes: 1400,
            },
            ..RelayUsage::default()
        };
        let none = HashMap::new();
        let mut l = Ledger::new(&q, global, &none);
        assert_eq!(l.admit(&[5; 12], 101), Err(Full::Relay));
        assert_eq!(l.admit(&[5; 12], 100), Ok(()), "no directory: focal cap");
        // Acknowledged rows count at their fixed cost.
        let global = RelayUsage {
            waiting: Usage {
                envelopes: 1,
                bytes: 1000,
            },
            acknowledged: 2,
            ..RelayUsage::default()
        };
        let mut l = Ledger::new(&q, global, &none);
        assert_eq!(
            l.admit(&[5; 12], 500 - 2 * ACKNOWLEDGED_ROW_BYTES + 1),
            Err(Full::Relay)
        );
        assert_eq!(l.admit(&[5; 12], 500 - 2 * ACKNOWLEDGED_ROW_BYTES), Ok(()));
        // So do the alerts check-in timers hold.
        let global = RelayUsage {
            held_bytes: 600,
            timers: 4,
            ..RelayUsage::default()
        };
        let mut l = Ledger::new(&q, global, &none);
        assert_eq!(l.admit(&[5; 12], 901), Err(Full::Relay));
        assert_eq!(l.admit(&[5; 12], 900), Ok(()));
        let mut q = quota(None);
        q.disk_room = Some(150);
        let none = HashMap::new();
        let mut l = Ledger::new(&q, RelayUsage::default(), &none);
        assert_eq!(l.admit(&[5; 12], 100), Ok(()));
        assert_eq!(l.admit(&[6; 12], 100), Err(Full::Relay));
        l.revert(&[5; 12], 100);
        assert_eq!(l.admit(&[6; 12], 100), Ok(()));
        assert_eq!(l.totals().1.len(), 1);
    }
}
