//! The encrypted local store: one profile is one directory holding one
//! SQLite database (rusqlite, bundled SQLite).
//!
//! Opening takes a PIN. Argon2id turns PIN and salt into a key-encryption
//! key, which unwraps the profile's random 32-byte data key; every item is
//! sealed with ChaCha20-Poly1305 under the data key, with a fresh random
//! nonce and the item's kind and id as associated data (so items cannot be
//! swapped). The database file, its WAL and its journal hold only opaque
//! ids, small states and ciphertext. A wrong PIN fails to unwrap the data key
//! and is reported as such, without touching the store.
//!
//! With a device key (`device`), the wrapping key also needs one answer from
//! a key the phone never exports, so a copy of the files cannot be tried
//! against PINs off the phone; wrong PINs on the phone are counted, wait
//! longer and longer, and may destroy the profile (`throttle`).
//!
//! Wipe destroys the wrapped key first (crypto-shredding: without it no
//! ciphertext can ever be opened, even from a copy of the files or from
//! flash pages the OS did not overwrite), then deletes the files.

#[cfg(test)]
mod binding_tests;
pub mod cells;
pub mod device;
pub mod kdf;
pub mod schema;
pub mod throttle;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::primitives::aead;
use amparo_protocol::{Entropy, UnixTime};
use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

pub use device::{DeviceKey, SoftwareDeviceKey};
pub use kdf::{Binding, KdfParams};
pub use throttle::UnlockStatus;

use cells::{Cache, Cells, atomic};
use kdf::Stretched;
use throttle::Attempts;

use crate::{CoreError, Result};

/// File name of the profile database inside its directory.
pub const DB_FILE: &str = "profile.sqlite";
const KEY_AAD: &[u8] = b"amparo-profile-key-v1";
const ITEM_AAD: &[u8] = b"amparo-item-v1";

/// What an item holds. The number is sealed in each cell's head
/// (`cells`), never plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ItemKind {
    /// A report being written.
    Draft = 1,
    /// An attachment of a draft.
    Attachment = 2,
    /// A sent report: its reply keys, receipts and status.
    Report = 3,
    /// A sealed envelope waiting for its receipt (the outbox).
    Outgoing = 4,
    /// A reply or status update received.
    Message = 5,
    /// This profile's own recipient keys (a focal point's key set).
    Identity = 6,
    /// A case: a report received by a focal point.
    Case = 7,
    /// A piece of an attachment received by a focal point.
    Chunk = 8,
    /// An envelope a focal point could not open, kept aside with the reason.
    Rejected = 9,
    /// The signed directory held.
    Directory = 10,
    /// An envelope a facilitator carries for someone else.
    Carried = 11,
    /// The profile's settings: relay, pinned keys, role, language.
    Settings = 12,
    /// A fetch grant a facilitator holds for someone's reply mailbox.
    Grant = 13,
    /// The duress decoy's data key, held by the real profile only, so the
    /// real profile can keep the decoy's settings and directory current
    /// (the decoy holds nothing of the real profile).
    DecoyKey = 14,
    /// Admission tokens held, and a facilitator's key and voucher for
    /// asking them (PROTOCOL.md §14.2).
    Tokens = 15,
    /// Statistics: a focal point's record of a month it published, a
    /// coordinator's month table received from a focal point.
    Statistics = 16,
    /// A check-in timer: its key, times and the alert's hold (`timers`).
    Timer = 17,
}

/// Free bytes in the database file past which [`Profile::reclaim_space`]
/// rewrites it (lower in unit tests, which cannot afford to fill 8 MiB).
#[cfg(not(test))]
const RECLAIM_OVER: i64 = 8 << 20;
#[cfg(test)]
const RECLAIM_OVER: i64 = 1 << 20;

/// An open profile.
pub struct Profile {
    conn: Mutex<Connection>,
    data_key: Zeroizing<[u8; 32]>,
    /// Which key slot opened it (0 or 1). Slot 0 holds the real profile
    /// unless a decoy took the file over (see [`Profile::is_decoy`]).
    slot: u8,
    /// The flags of that slot as it was opened (`FLAG_*`).
    flags: u8,
    dir: PathBuf,
    entropy: Mutex<SystemEntropy>,
    /// The phone's device key, if the profile is bound to one.
    device: Mutex<Option<Arc<dyn DeviceKey>>>,
    /// Which cells are this profile's free ones (a hint, see `cells`).
    cells: Mutex<Cache>,
}

/// What opening a profile needs besides the PIN: the phone's device key (for
/// a profile bound to one; ignored otherwise) and the time now (for the
/// waits after wrong PINs; tests set it).
#[derive(Clone)]
pub struct Unlock {
    /// The phone's device key.
    pub device: Option<Arc<dyn DeviceKey>>,
    /// The time now.
    pub now: UnixTime,
}

impl std::fmt::Debug for Unlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unlock")
            .field("device", &self.device.is_some())
            .field("now", &self.now)
            .finish()
    }
}

impl Unlock {
    /// No device key, the system clock.
    pub fn now() -> Unlock {
        Unlock {
            device: None,
            now: system_now(),
        }
    }

    /// With the phone's device key.
    pub fn with_device(mut self, device: Arc<dyn DeviceKey>) -> Unlock {
        self.device = Some(device);
        self
    }

    /// At time `now` instead of the system clock.
    pub fn at(mut self, now: UnixTime) -> Unlock {
        self.now = now;
        self
    }
}

/// Seconds since the epoch on the system clock.
pub fn system_now() -> UnixTime {
    UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// The writes of [`Profile::bind_device_key`], in order, all in one
/// transaction: an observer (tests) is told after each.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebindStep {
    /// The binding's marker is written.
    Binding,
    /// The real profile's slot is wrapped anew.
    RealSlot,
    /// The duress slot is wrapped anew (or made noise).
    OtherSlot,
    /// The decoy's items are deleted (when its PIN was not given).
    OtherItems,
    /// The transaction is committed.
    Committed,
}

/// Length of a key slot: nonce, data key and flags, tag.
const SLOT_LEN: usize = aead::NONCE_LEN + 33 + aead::TAG_LEN;
/// Slot flag: opening this slot destroys the other one (duress wipe).
const FLAG_WIPE_OTHER: u8 = 1;
/// Slot flag: this slot is a duress PIN's. Slots written before the flag
/// existed say it by their place: slot 1 (see [`Profile::is_decoy`]).
const FLAG_DURESS: u8 = 2;
const SLOT_NAMES: [&str; 2] = ["slot0", "slot1"];

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile").finish_non_exhaustive()
    }
}

fn connect(dir: &Path) -> Result<Connection> {
    let mut conn = Connection::open(dir.join(DB_FILE))?;
    // Deleted pages are zeroed, temporary tables stay in memory, and the WAL
    // is fsynced at each commit.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    schema::migrate(&mut conn)?;
    Ok(conn)
}

fn meta(conn: &Connection, name: &str) -> Result<Vec<u8>> {
    meta_opt(conn, name)?.ok_or(CoreError::Corrupt("profile key slot"))
}

fn meta_opt(conn: &Connection, name: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?)
}

/// What unlocking reads before the PIN: Argon2id's parameters, the salt
/// and the binding.
fn key_setup(conn: &Connection) -> Result<(KdfParams, [u8; 16], Binding)> {
    let params = KdfParams::decode(&meta(conn, "kdf")?)?;
    let salt: [u8; 16] = meta(conn, "salt")?
        .try_into()
        .map_err(|_| CoreError::Corrupt("profile key slot"))?;
    let binding = Binding::decode(meta_opt(conn, "binding")?.as_deref())?;
    Ok((params, salt, binding))
}

fn attempts(conn: &Connection) -> Result<Attempts> {
    meta_opt(conn, "attempts")?.map_or(Ok(Attempts::default()), |b| Attempts::decode(&b))
}

fn wipe_after(conn: &Connection) -> Result<u32> {
    throttle::decode_wipe_after(meta_opt(conn, "wipe_after")?.as_deref())
}

fn random<const N: usize>(e: &mut dyn Entropy) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    e.fill(&mut out)?;
    Ok(out)
}

/// Seals `value` under `key`: `nonce (12) || ciphertext || tag (16)`.
fn seal(key: &[u8; 32], aad: &[&[u8]], value: &[u8], e: &mut dyn Entropy) -> Result<Vec<u8>> {
    let nonce: [u8; aead::NONCE_LEN] = random(e)?;
    let mut out = nonce.to_vec();
    out.extend(aead::seal(key, &nonce, &aad.concat(), value)?);
    Ok(out)
}

fn open(key: &[u8; 32], aad: &[&[u8]], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let (nonce, ct) = sealed
        .split_at_checked(aead::NONCE_LEN)
        .ok_or(CoreError::Corrupt("sealed value"))?;
    let nonce: [u8; aead::NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| CoreError::Corrupt("sealed value"))?;
    Ok(Zeroizing::new(aead::open(key, &nonce, &aad.concat(), ct)?))
}

impl Profile {
    /// Whether a profile exists in `dir`.
    pub fn exists(dir: &Path) -> bool {
        dir.join(DB_FILE).exists()
    }

    /// Creates a profile in `dir` protected by `pin`. Atomic: a failure
    /// leaves no profile (see [`Profile::create_with`]).
    pub fn create(dir: &Path, pin: &str, params: KdfParams) -> Result<Profile> {
        Self::create_with(dir, pin, params, |_| Ok(())).map(|(p, ())| p)
    }

    /// Creates a profile in `dir` protected by `pin` and lets `init` fill it
    /// (settings, keys) before it exists for anyone: the profile is built in
    /// a hidden folder inside `dir` and its database moved into place, in one
    /// rename, only when `init` succeeded. On any failure nothing is left:
    /// not the database, not the hidden folder, not `dir` if this call made
    /// it — so the corrected command finds no half-made profile in its way.
    pub fn create_with<T>(
        dir: &Path,
        pin: &str,
        params: KdfParams,
        init: impl FnOnce(&Profile) -> Result<T>,
    ) -> Result<(Profile, T)> {
        Self::create_bound(dir, pin, params, None, init)
    }

    /// As [`Profile::create_with`], bound to the phone's `device` key when
    /// one is given: it then opens only with the PIN *and* that key.
    pub fn create_bound<T>(
        dir: &Path,
        pin: &str,
        params: KdfParams,
        device: Option<Arc<dyn DeviceKey>>,
        init: impl FnOnce(&Profile) -> Result<T>,
    ) -> Result<(Profile, T)> {
        if Self::exists(dir) {
            return Err(CoreError::ProfileExists);
        }
        if pin.is_empty() {
            return Err(CoreError::Invalid("the PIN cannot be empty"));
        }
        let made = make_dirs(dir)?;
        let mut entropy = SystemEntropy::new();
        let tag: [u8; 8] = match random(&mut entropy) {
            Ok(t) => t,
            Err(e) => {
                remove_made(&made);
                return Err(e);
            }
        };
        let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let staging = dir.join(format!(".creating-{tag}"));
        let built = std::fs::create_dir(&staging)
            .map_err(|e| CoreError::Io(e.kind().to_string()))
            .and_then(|()| {
                let profile = Self::build(&staging, pin, params, device, entropy)?;
                let out = init(&profile)?;
                profile.move_into(dir).map(|p| (p, out))
            });
        if built.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
            remove_made(&made);
        }
        built
    }

    /// A new profile's database in `dir` (which exists and is empty).
    fn build(
        dir: &Path,
        pin: &str,
        params: KdfParams,
        device: Option<Arc<dyn DeviceKey>>,
        mut entropy: SystemEntropy,
    ) -> Result<Profile> {
        let data_key = Zeroizing::new(random::<32>(&mut entropy)?);
        let salt: [u8; 16] = random(&mut entropy)?;
        let binding = if device.is_some() {
            Binding::PinAndDevice
        } else {
            Binding::Pin
        };
        let conn = connect(dir)?;
        set_meta(&conn, "kdf", &params.encode())?;
        set_meta(&conn, "salt", &salt)?;
        set_meta(&conn, "binding", &binding.encode())?;
        // Both slots always exist; an unused slot is noise of the same length,
        // so the file does not tell whether a duress PIN is set.
        let noise: [u8; SLOT_LEN] = random(&mut entropy)?;
        set_meta(&conn, SLOT_NAMES[1], &noise)?;
        let kek =
            Stretched::new(pin, &salt, params)?.wrapping_key(&salt, binding, device.as_deref())?;
        write_slot(&conn, 0, &kek, &data_key, 0, &mut entropy)?;
        let profile = Profile {
            conn: Mutex::new(conn),
            data_key,
            slot: 0,
            flags: 0,
            dir: dir.to_owned(),
            entropy: Mutex::new(entropy),
            device: Mutex::new(device),
            cells: Mutex::new(Cache::default()),
        };
        profile.with_cells(|c| atomic(c.conn, || c.ensure_table()))?;
        Ok(profile)
    }

    /// Closes the database built in a staging folder, moves it into `dir`
    /// (the database file last, in one rename: a profile exists from that
    /// moment, whole) and opens it there with the key already unwrapped.
    fn move_into(self, dir: &Path) -> Result<Profile> {
        let Profile {
            conn,
            data_key,
            slot,
            flags,
            dir: staging,
            entropy,
            device,
            cells,
        } = self;
        let conn = conn
            .into_inner()
            .map_err(|_| CoreError::Corrupt("profile lock"))?;
        // Closing the last connection checkpoints the WAL into the file.
        conn.close().map_err(|(_, e)| CoreError::from(e))?;
        let io = |e: std::io::Error| CoreError::Io(e.kind().to_string());
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&staging)
            .map_err(io)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(io)?;
        // The database file goes last.
        names.sort_by_key(|n| n == DB_FILE);
        for name in names {
            std::fs::rename(staging.join(&name), dir.join(&name)).map_err(io)?;
        }
        std::fs::remove_dir(&staging).map_err(io)?;
        Ok(Profile {
            conn: Mutex::new(connect(dir)?),
            data_key,
            slot,
            flags,
            dir: dir.to_owned(),
            entropy,
            device,
            cells,
        })
    }

    /// Opens the profile in `dir` with `pin`, on the system clock, without a
    /// device key (see [`Profile::open_with`]).
    pub fn open(dir: &Path, pin: &str) -> Result<Profile> {
        Self::open_with(dir, pin, &Unlock::now())
    }

    /// Opens the profile in `dir` with `pin`. The duress PIN, if one is set,
    /// opens the decoy instead (and, if so configured, destroys the real
    /// profile first); any other PIN is [`CoreError::WrongPin`].
    ///
    /// Every PIN costs the same: one Argon2id run and, for a bound profile,
    /// one question to the device, whichever slot it opens or none. Wrong
    /// PINs are counted before Argon2id runs; past the free ones the next
    /// attempt waits ([`CoreError::TooManyAttempts`], nothing tried), and
    /// with a wipe-after setting the N-th wrong PIN in a row destroys the
    /// profile (see [`throttle`]). A bound profile opened without its device
    /// key is [`CoreError::DeviceKeyNeeded`] and counts no attempt; a device
    /// that fails ([`CoreError::DeviceKey`]) does not either.
    pub fn open_with(dir: &Path, pin: &str, unlock: &Unlock) -> Result<Profile> {
        if !Self::exists(dir) {
            return Err(CoreError::NoProfile);
        }
        let conn = connect(dir)?;
        let (params, salt, binding) = key_setup(&conn)?;
        let device = match binding {
            Binding::Pin => None,
            Binding::PinAndDevice => Some(unlock.device.clone().ok_or(CoreError::DeviceKeyNeeded)?),
        };
        let wipe_after = wipe_after(&conn)?;
        let mut before = attempts(&conn)?;
        if wipe_after > 0 && before.failed >= wipe_after {
            // The last allowed attempt was cut short before its result.
            destroy(conn, dir, &mut SystemEntropy::new())?;
            return Err(CoreError::WrongPin);
        }
        if let Some(rebased) = before.rebased(unlock.now) {
            set_meta(&conn, "attempts", &rebased.encode())?;
            before = rebased;
        }
        let wait_seconds = before.wait(unlock.now);
        if wait_seconds > 0 {
            return Err(CoreError::TooManyAttempts { wait_seconds });
        }
        let counted = Attempts {
            failed: before.failed.saturating_add(1),
            last: unlock.now.0,
        };
        // On disk (synchronous=FULL) before the PIN is checked.
        set_meta(&conn, "attempts", &counted.encode())?;
        // One derivation whichever slot the PIN belongs to: the time to open
        // does not say which PIN was typed.
        let kek = match Stretched::new(pin, &salt, params)
            .and_then(|s| s.wrapping_key(&salt, binding, device.as_deref()))
        {
            Ok(kek) => kek,
            Err(e) => {
                // The PIN was not checked: the attempt does not count.
                set_meta(&conn, "attempts", &before.encode())?;
                return Err(e);
            }
        };
        for slot in [0u8, 1] {
            let Some((data_key, flags)) = read_slot(&conn, slot, &kek)? else {
                continue;
            };
            set_meta(&conn, "attempts", &Attempts::default().encode())?;
            let profile = Profile {
                conn: Mutex::new(conn),
                data_key,
                slot,
                flags,
                dir: dir.to_owned(),
                entropy: Mutex::new(SystemEntropy::new()),
                device: Mutex::new(device),
                cells: Mutex::new(Cache::default()),
            };
            profile.settle()?;
            return Ok(profile);
        }
        if wipe_after > 0 && counted.failed >= wipe_after {
            destroy(conn, dir, &mut SystemEntropy::new())?;
        }
        Err(CoreError::WrongPin)
    }

    /// What a lock screen may show before the PIN is typed: wrong PINs in a
    /// row, the wait before the next attempt at `now`, the wipe-after
    /// setting and whether the device key is needed. Tries no PIN.
    pub fn unlock_status(dir: &Path, now: UnixTime) -> Result<UnlockStatus> {
        if !Self::exists(dir) {
            return Err(CoreError::NoProfile);
        }
        let conn = connect(dir)?;
        let (_, _, binding) = key_setup(&conn)?;
        let a = attempts(&conn)?;
        Ok(UnlockStatus {
            failed_attempts: a.failed,
            wait_seconds: a.wait(now),
            wipe_after: wipe_after(&conn)?,
            device_bound: binding == Binding::PinAndDevice,
        })
    }

    /// Destroys the profile at the `n`-th wrong PIN in a row (0: never, the
    /// default). A setting of the file, readable before unlock: anyone
    /// holding the phone can learn it (as they would by trying).
    pub fn set_wipe_after(&self, n: u32) -> Result<()> {
        set_meta(
            &*self.conn()?,
            "wipe_after",
            &throttle::encode_wipe_after(n),
        )
    }

    /// The wipe-after setting (0: off).
    pub fn wipe_after(&self) -> Result<u32> {
        wipe_after(&*self.conn()?)
    }

    /// How the key slots are wrapped: with the PIN alone, or with the PIN
    /// and the phone's device key.
    pub fn binding(&self) -> Result<Binding> {
        Ok(key_setup(&*self.conn()?)?.2)
    }

    fn device(&self) -> Result<Option<Arc<dyn DeviceKey>>> {
        Ok(self
            .device
            .lock()
            .map_err(|_| CoreError::Corrupt("profile lock"))?
            .clone())
    }

    fn kek_for(&self, pin: &str) -> Result<Zeroizing<[u8; 32]>> {
        let (params, salt, binding) = key_setup(&*self.conn()?)?;
        let device = self.device()?;
        Stretched::new(pin, &salt, params)?.wrapping_key(&salt, binding, device.as_deref())
    }

    /// Binds the profile to the phone's `device` key (or, with `None`,
    /// unbinds it: the PIN alone opens it again), re-wrapping the data key;
    /// nothing sealed under it changes. `pin` is this profile's PIN. The
    /// duress PIN, if one is set, must be given to keep working: its slot is
    /// re-wrapped too; without it the duress slot becomes noise and the
    /// decoy's items are deleted (set a duress PIN again afterwards). From
    /// inside a decoy, without the other PIN, the decoy takes the file
    /// over as [`Profile::set_duress_pin`] says.
    ///
    /// Atomic: every write is in one SQLite transaction, after every
    /// derivation and every question to the device, so a failure or a
    /// killed process at any point leaves the profile opening with the old
    /// binding, whole, or with the new one, whole.
    ///
    /// A copy of the files taken before this call still opens with the PIN
    /// alone (binding protects copies made after it).
    pub fn bind_device_key(
        &self,
        pin: &str,
        device: Option<Arc<dyn DeviceKey>>,
        duress_pin: Option<&str>,
    ) -> Result<()> {
        self.bind_device_key_observed(pin, device, duress_pin, &mut |_| Ok(()))
    }

    /// [`Profile::bind_device_key`], telling `after` of each write (tests
    /// fail or kill the operation there).
    #[doc(hidden)]
    pub fn bind_device_key_observed(
        &self,
        pin: &str,
        device: Option<Arc<dyn DeviceKey>>,
        duress_pin: Option<&str>,
        after: &mut dyn FnMut(RebindStep) -> Result<()>,
    ) -> Result<()> {
        // From inside a decoy it works as in any profile: without the other
        // PIN (which a decoy's user does not give), the profile the decoy
        // hides is destroyed and the decoy takes the file over (see
        // `set_duress_pin`).
        let take_over = self.is_decoy()?;
        let (own, other_slot) = (self.slot, 1 - self.slot);
        let (params, salt, old) = key_setup(&*self.conn()?)?;
        let old_device = self.device()?;
        let new = if device.is_some() {
            Binding::PinAndDevice
        } else {
            Binding::Pin
        };
        // Every derivation and every question to the device first.
        type Keks = (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>);
        let rewrap = |pin: &str| -> Result<Keks> {
            let s = Stretched::new(pin, &salt, params)?;
            Ok((
                s.wrapping_key(&salt, old, old_device.as_deref())?,
                s.wrapping_key(&salt, new, device.as_deref())?,
            ))
        };
        let (old_kek, new_kek) = rewrap(pin)?;
        let other = match duress_pin {
            None => None,
            Some(duress) => Some(rewrap(duress)?),
        };
        let conn = self.conn()?;
        let own_flags = match read_slot(&conn, own, &old_kek)? {
            Some((key, flags)) if amparo_protocol::primitives::ct_eq(&*key, &*self.data_key) => {
                flags
            }
            _ => return Err(CoreError::WrongPin),
        };
        let other = match other {
            None => None,
            Some((old_d, new_d)) => {
                let (key, flags) = read_slot(&conn, other_slot, &old_d)?
                    .ok_or(CoreError::Invalid("that is not the duress PIN"))?;
                Some((key, flags, new_d))
            }
        };
        // A decoy that takes the file over is no duress PIN's any more.
        let own_flags = if take_over && other.is_none() {
            0
        } else {
            own_flags
        };
        let mut e = self.entropy()?;
        let noise: [u8; SLOT_LEN] = random(&mut *e)?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let written = (|| -> Result<()> {
            set_meta(&conn, "binding", &new.encode())?;
            after(RebindStep::Binding)?;
            write_slot(&conn, own, &new_kek, &self.data_key, own_flags, &mut *e)?;
            after(RebindStep::RealSlot)?;
            match &other {
                Some((key, flags, kek)) => {
                    write_slot(&conn, other_slot, kek, key, *flags, &mut *e)?
                }
                None => set_meta(&conn, SLOT_NAMES[usize::from(other_slot)], &noise)?,
            }
            after(RebindStep::OtherSlot)?;
            if other.is_none() {
                let decoy_id = self.fixed_id(b"decoy-key");
                let mut cache = self
                    .cells
                    .lock()
                    .map_err(|_| CoreError::Corrupt("profile lock"))?;
                let mut c = Cells {
                    conn: &conn,
                    key: &self.data_key,
                    e: &mut *e,
                    cache: &mut cache,
                };
                // The decoy's cells, or (taking over) every cell this key
                // does not open, become this profile's free cells.
                let decoy = decoy_key_in(&mut c, &decoy_id)?;
                c.overwrite_others(decoy.as_deref(), true)?;
                c.delete(ItemKind::DecoyKey as u8, &decoy_id)?;
                delete_foreign_legacy(&conn, &self.data_key)?;
                conn.execute("DELETE FROM items WHERE id = ?1", [&decoy_id[..]])?;
                after(RebindStep::OtherItems)?;
            }
            Ok(())
        })();
        if let Err(err) = written {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(err);
        }
        conn.execute_batch("COMMIT")?;
        *self
            .device
            .lock()
            .map_err(|_| CoreError::Corrupt("profile lock"))? = device;
        after(RebindStep::Committed)?;
        if other.is_none() {
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        }
        Ok(())
    }

    /// Replaces the PIN of the profile as opened (the data key stays; only
    /// its wrapping changes).
    pub fn change_pin(&self, new_pin: &str) -> Result<()> {
        if new_pin.is_empty() {
            return Err(CoreError::Invalid("the PIN cannot be empty"));
        }
        let kek = self.kek_for(new_pin)?;
        let conn = self.conn()?;
        if read_slot(&conn, 1 - self.slot, &kek)?.is_some() {
            return Err(CoreError::Invalid(
                "the new PIN must differ from the other PIN",
            ));
        }
        let mut e = self.entropy()?;
        write_slot(&conn, self.slot, &kek, &self.data_key, self.flags, &mut *e)
    }

    /// Sets a duress PIN: typed under pressure, it opens an empty decoy
    /// profile that works like a real one. With `wipe_real`, it also destroys
    /// the real profile the first time it is used. Setting it again replaces
    /// the decoy.
    ///
    /// Set from inside a decoy (someone made her do it), it works as in any
    /// profile, and to do so the decoy takes the file over: the real
    /// profile it hides is destroyed, as the duress PIN with wipe would, and
    /// the decoy becomes the profile with a decoy of its own. A file has
    /// room for two profiles only, and a decoy that refused would say what
    /// it is.
    pub fn set_duress_pin(&self, duress_pin: &str, wipe_real: bool) -> Result<()> {
        if duress_pin.is_empty() {
            return Err(CoreError::Invalid("the PIN cannot be empty"));
        }
        let kek = self.kek_for(duress_pin)?;
        let conn = self.conn()?;
        if read_slot(&conn, self.slot, &kek)?.is_some() {
            return Err(CoreError::Invalid(
                "the duress PIN must differ from the PIN",
            ));
        }
        drop(conn);
        let take_over = self.is_decoy()?;
        let other = 1 - self.slot;
        let decoy_id = self.fixed_id(b"decoy-key");
        // The slot, the real profile's copy of the decoy's key and the
        // decoy's share of free cells land together, or none does. An
        // earlier decoy's cells become the real profile's free cells.
        self.with_cells(|c| {
            let decoy_key = Zeroizing::new(random::<32>(&mut *c.e)?);
            atomic(c.conn, || {
                if take_over {
                    // Every cell this decoy does not open (the real
                    // profile's) becomes its own free cell.
                    c.overwrite_others(None, true)?;
                    delete_foreign_legacy(c.conn, c.key)?;
                } else if let Some(old) = decoy_key_in(c, &decoy_id)? {
                    c.overwrite_others(Some(&old), true)?;
                }
                let wipe = if wipe_real { FLAG_WIPE_OTHER } else { 0 };
                write_slot(
                    c.conn,
                    other,
                    &kek,
                    &decoy_key,
                    FLAG_DURESS | wipe,
                    &mut *c.e,
                )?;
                c.put(ItemKind::DecoyKey as u8, &decoy_id, 0, &*decoy_key)?;
                c.give_free(&decoy_key, cells::DECOY_SHARE)
            })
        })?;
        if take_over {
            // As after every destruction: nothing of the old cells waits
            // in the WAL.
            self.conn()?
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        }
        Ok(())
    }

    /// Whether this is a duress PIN's decoy hiding another profile: a
    /// profile that keeps a decoy's key is not; a slot marked as a duress
    /// PIN's is; an older slot without the mark is one if it is slot 1.
    /// A decoy that took the file over keeps a decoy's key, so it is the
    /// profile from then on.
    pub fn is_decoy(&self) -> Result<bool> {
        let decoy_id = self.fixed_id(b"decoy-key");
        if self.with_cells(|c| decoy_key_in(c, &decoy_id))?.is_some() {
            return Ok(false);
        }
        Ok(self.flags & FLAG_DURESS != 0 || self.slot == 1)
    }

    /// The duress decoy, opened from the real profile with the decoy's key
    /// the real profile keeps (on a connection of its own), so the real
    /// profile can write the decoy's settings and directory. `None` when
    /// no duress PIN is set, or when this is the decoy. Do not call it
    /// inside a transaction of `self`: the two connections share one file.
    pub fn open_decoy(&self) -> Result<Option<Profile>> {
        if self.is_decoy()? {
            return Ok(None);
        }
        let id = self.fixed_id(b"decoy-key");
        let Some((_, key)) = self.get_item(ItemKind::DecoyKey, &id)? else {
            return Ok(None);
        };
        let data_key: [u8; 32] = key
            .as_slice()
            .try_into()
            .map_err(|_| CoreError::Corrupt("decoy key"))?;
        let data_key = Zeroizing::new(data_key);
        // A decoy key whose slot has since become noise (cleared, or made
        // before this copy was kept) is no decoy.
        let conn = connect(&self.dir)?;
        Ok(Some(Profile {
            conn: Mutex::new(conn),
            data_key,
            slot: 1 - self.slot,
            flags: FLAG_DURESS,
            dir: self.dir.clone(),
            entropy: Mutex::new(SystemEntropy::new()),
            device: Mutex::new(self.device()?),
            cells: Mutex::new(Cache::default()),
        }))
    }

    /// Removes the duress PIN (its slot becomes noise again) and the decoy's items.
    ///
    /// From inside a decoy it does what it does in a profile without a
    /// duress PIN, as far as anyone using it can tell: nothing.
    pub fn clear_duress_pin(&self) -> Result<()> {
        if self.is_decoy()? {
            return Ok(());
        }
        self.destroy_other_slot()
    }

    /// Overwrites the other slot with noise and the other profile's cells
    /// as ordinary writes do (see `cells`): the real profile makes the
    /// decoy's cells its own free cells; the decoy makes every cell it does
    /// not own fresh noise. One transaction, then the WAL is emptied as
    /// after every unlock, so the files look as after any open.
    fn destroy_other_slot(&self) -> Result<()> {
        let other_slot = SLOT_NAMES[usize::from(1 - self.slot)];
        let decoy_id = self.fixed_id(b"decoy-key");
        let real = !self.is_decoy()?;
        self.with_cells(|c| {
            let noise: [u8; SLOT_LEN] = random(&mut *c.e)?;
            atomic(c.conn, || {
                set_meta(c.conn, other_slot, &noise)?;
                if real {
                    let decoy = decoy_key_in(c, &decoy_id)?;
                    c.overwrite_others(decoy.as_deref(), true)?;
                    c.delete(ItemKind::DecoyKey as u8, &decoy_id)?;
                } else {
                    c.overwrite_others(None, false)?;
                }
                delete_foreign_legacy(c.conn, c.key)?;
                c.conn
                    .execute("DELETE FROM items WHERE id = ?1", [&decoy_id[..]])?;
                Ok(())
            })
        })?;
        self.conn()?
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
    }

    /// What every unlock does once the PIN opened a slot: the cells exist
    /// (a profile from before them gets them now), items in the old layout
    /// that this key (and, from the real profile, the decoy's key it
    /// keeps) opens become cells, the other side is destroyed if this PIN
    /// says so, and the WAL is emptied — so every PIN, whatever it did,
    /// leaves the same files of the same sizes.
    fn settle(&self) -> Result<()> {
        let decoy_id = self.fixed_id(b"decoy-key");
        self.with_cells(|c| {
            atomic(c.conn, || {
                c.ensure_table()?;
                convert_legacy(c)?;
                if let Some(decoy) = decoy_key_in(c, &decoy_id)? {
                    let mut cache = Cache::default();
                    let mut d = Cells {
                        conn: c.conn,
                        key: &decoy,
                        e: &mut *c.e,
                        cache: &mut cache,
                    };
                    convert_legacy(&mut d)?;
                }
                Ok(())
            })
        })?;
        // A decoy that took the file over keeps the flag of the PIN it
        // was; the profile it would destroy is its own decoy now.
        if self.flags & FLAG_WIPE_OTHER != 0 && self.is_decoy()? {
            self.destroy_other_slot()?;
        }
        self.conn()?
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
    }

    /// Runs `f` on this profile's cells (its connection, key, entropy and
    /// cell hint locked, in that order).
    fn with_cells<T>(&self, f: impl FnOnce(&mut Cells<'_>) -> Result<T>) -> Result<T> {
        let conn = self.conn()?;
        let mut e = self.entropy()?;
        let mut cache = self
            .cells
            .lock()
            .map_err(|_| CoreError::Corrupt("profile lock"))?;
        f(&mut Cells {
            conn: &conn,
            key: &self.data_key,
            e: &mut *e,
            cache: &mut cache,
        })
    }

    /// Destroys the profile: overwrites and deletes the wrapped key, then
    /// deletes the database files and the directory if it is left empty.
    pub fn wipe(self) -> Result<()> {
        let Profile {
            conn, dir, entropy, ..
        } = self;
        let conn = conn
            .into_inner()
            .map_err(|_| CoreError::Corrupt("profile lock"))?;
        let mut entropy = entropy
            .into_inner()
            .map_err(|_| CoreError::Corrupt("profile lock"))?;
        destroy(conn, &dir, &mut entropy)
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| CoreError::Corrupt("profile lock"))
    }

    fn entropy(&self) -> Result<MutexGuard<'_, SystemEntropy>> {
        self.entropy
            .lock()
            .map_err(|_| CoreError::Corrupt("profile lock"))
    }

    /// Stores (or replaces) an item, sealed, in as many cells as it needs
    /// (see `cells`), all of them or none.
    pub(crate) fn put_item(
        &self,
        kind: ItemKind,
        id: &[u8; 16],
        state: u8,
        value: &[u8],
    ) -> Result<()> {
        self.with_cells(|c| {
            atomic(c.conn, || {
                c.put(kind as u8, id, state, value)?;
                // A row of the old layout under this id is replaced.
                c.conn
                    .prepare_cached("DELETE FROM items WHERE id = ?1")?
                    .execute([&id[..]])?;
                Ok(())
            })
        })
    }

    /// Reads and opens an item.
    pub(crate) fn get_item(
        &self,
        kind: ItemKind,
        id: &[u8; 16],
    ) -> Result<Option<(u8, Zeroizing<Vec<u8>>)>> {
        self.with_cells(|c| {
            if let Some(found) = c.get(kind as u8, id)? {
                return Ok(Some(found));
            }
            // A row of the old layout not converted yet (see `convert_legacy`).
            let row: Option<(u8, Vec<u8>)> = c
                .conn
                .prepare_cached("SELECT state, sealed FROM items WHERE id = ?1 AND kind = ?2")?
                .query_row(params![&id[..], kind as u8], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            row.map(|(state, sealed)| {
                Ok((state, open(c.key, &[ITEM_AAD, &[kind as u8], id], &sealed)?))
            })
            .transpose()
        })
    }

    /// Lists the ids of items of `kind`, optionally in one state, in the
    /// order they were first stored. Opens every cell's head (small, in a
    /// table of their own) and no body.
    pub(crate) fn item_ids(&self, kind: ItemKind, state: Option<u8>) -> Result<Vec<[u8; 16]>> {
        self.with_cells(|c| {
            let mut out = c.list(kind as u8, state)?;
            let legacy = legacy_ids(c.conn, c.key, kind, state)?;
            for id in legacy {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            Ok(out)
        })
    }

    /// Deletes an item (its cells become noise, written in place); returns
    /// whether it existed.
    pub(crate) fn delete_item(&self, kind: ItemKind, id: &[u8; 16]) -> Result<bool> {
        self.with_cells(|c| {
            atomic(c.conn, || {
                let in_cells = c.delete(kind as u8, id)?;
                let in_legacy = c
                    .conn
                    .prepare_cached("DELETE FROM items WHERE id = ?1 AND kind = ?2")?
                    .execute(params![&id[..], kind as u8])?
                    == 1;
                Ok(in_cells || in_legacy)
            })
        })
    }

    /// Gives the space of deleted items back to the file system when much of
    /// the file is free: more than [`RECLAIM_OVER`] bytes, and more than the
    /// items still there. `VACUUM` rewrites the file from the live items (sealed as they
    /// are), building its copy in a temporary file rather than in memory.
    pub(crate) fn reclaim_space(&self) -> Result<()> {
        // Cells first: a table grown far past what this profile uses goes
        // back to a smaller size of its growth sequence (see `cells`).
        self.with_cells(|c| c.shrink())?;
        let conn = self.conn()?;
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        if free.saturating_mul(page_size) > RECLAIM_OVER && free * 2 > pages {
            conn.pragma_update(None, "temp_store", "FILE")?;
            let done = conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);");
            conn.pragma_update(None, "temp_store", "MEMORY")?;
            done?;
        }
        Ok(())
    }

    /// Runs `f` in one transaction: everything it stores lands together (one
    /// fsync), or nothing does.
    pub(crate) fn in_transaction<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.conn()?.execute_batch("BEGIN IMMEDIATE")?;
        match f() {
            Ok(v) => {
                self.conn()?.execute_batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn()?.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// The id of a one-of-a-kind item (own keys, the directory), keyed by
    /// the profile's data key so that the real profile and the duress decoy,
    /// which share the file, never write over each other's.
    pub(crate) fn fixed_id(&self, name: &[u8]) -> [u8; 16] {
        amparo_protocol::primitives::sha256_prefix(&[
            b"amparo-fixed-item-v1",
            &*self.data_key,
            name,
        ])
    }

    /// A fresh random id.
    pub(crate) fn new_id(&self) -> Result<[u8; 16]> {
        let mut e = self.entropy()?;
        random(&mut *e)
    }
}

/// Destroys the profile whose database `conn` is: overwrites the key slots
/// with noise and deletes every row (crypto-shredding first), then deletes
/// the database files and `dir` if it is left empty.
fn destroy(conn: Connection, dir: &Path, e: &mut dyn Entropy) -> Result<()> {
    for name in SLOT_NAMES {
        let noise: [u8; SLOT_LEN] = random(e)?;
        set_meta(&conn, name, &noise)?;
    }
    conn.execute("DELETE FROM meta", [])?;
    conn.execute("DELETE FROM items", [])?;
    conn.execute("DELETE FROM heads", [])?;
    conn.execute("DELETE FROM bodies", [])?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")?;
    drop(conn);
    for name in [
        DB_FILE.to_string(),
        format!("{DB_FILE}-wal"),
        format!("{DB_FILE}-shm"),
        format!("{DB_FILE}-journal"),
    ] {
        match std::fs::remove_file(dir.join(&name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CoreError::Io(e.kind().to_string())),
        }
    }
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

/// Deletes every row of the old layout `data_key` cannot open (the other
/// profile's, which it cannot convert).
fn delete_foreign_legacy(conn: &Connection, data_key: &[u8; 32]) -> Result<()> {
    for rowid in legacy_rowids(conn)? {
        if let Some((id, kind, _, sealed)) = legacy_row(conn, rowid)?
            && open(data_key, &[ITEM_AAD, &[kind], &id], &sealed).is_err()
        {
            conn.execute("DELETE FROM items WHERE rowid = ?1", [rowid])?;
        }
    }
    Ok(())
}

/// The rowids of the old layout's rows, in order (rowids first, then each
/// row: a profile of 10,000 reports is never held in memory at once).
fn legacy_rowids(conn: &Connection) -> Result<Vec<i64>> {
    Ok(conn
        .prepare_cached("SELECT rowid FROM items ORDER BY rowid")?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<Vec<i64>, _>>()?)
}

/// One row of the old layout: id, kind, state, sealed value.
type LegacyRow = ([u8; 16], u8, u8, Vec<u8>);

fn legacy_row(conn: &Connection, rowid: i64) -> Result<Option<LegacyRow>> {
    let row: Option<(Vec<u8>, u8, u8, Vec<u8>)> = conn
        .prepare_cached("SELECT id, kind, state, sealed FROM items WHERE rowid = ?1")?
        .query_row([rowid], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    row.map(|(id, kind, state, sealed)| {
        let id: [u8; 16] = id.try_into().map_err(|_| CoreError::Corrupt("item id"))?;
        Ok((id, kind, state, sealed))
    })
    .transpose()
}

/// Ids of the old layout's rows of `kind` (in `state`) that `key` opens.
fn legacy_ids(
    conn: &Connection,
    key: &[u8; 32],
    kind: ItemKind,
    state: Option<u8>,
) -> Result<Vec<[u8; 16]>> {
    let rowids = conn
        .prepare_cached(
            "SELECT rowid FROM items WHERE kind = ?1 AND (?2 IS NULL OR state = ?2) ORDER BY rowid",
        )?
        .query_map(params![kind as u8, state], |r| r.get::<_, i64>(0))?
        .collect::<std::result::Result<Vec<i64>, _>>()?;
    let mut out = Vec::new();
    for rowid in rowids {
        if let Some((id, kind, _, sealed)) = legacy_row(conn, rowid)?
            && open(key, &[ITEM_AAD, &[kind], &id], &sealed).is_ok()
        {
            out.push(id);
        }
    }
    Ok(out)
}

/// Moves the rows of the old layout (schema version 2 and before) that
/// `c`'s key opens into cells, in the order they were stored, and removes
/// them; rows of another key stay until that key unlocks. The caller holds
/// a transaction: a profile is converted whole or not at all.
///
/// The emptied table itself stays, in every profile alike: dropping it
/// where it emptied would tell a converted profile from a fresh one, and a
/// decoy's rows may wait there until its PIN is typed.
fn convert_legacy(c: &mut Cells<'_>) -> Result<()> {
    let any: bool = c
        .conn
        .query_row("SELECT EXISTS (SELECT 1 FROM items)", [], |r| r.get(0))?;
    if !any {
        return Ok(());
    }
    for rowid in legacy_rowids(c.conn)? {
        let Some((id, kind, state, sealed)) = legacy_row(c.conn, rowid)? else {
            continue;
        };
        let Ok(value) = open(c.key, &[ITEM_AAD, &[kind], &id], &sealed) else {
            continue;
        };
        c.put(kind, &id, state, &value)?;
        c.conn
            .execute("DELETE FROM items WHERE rowid = ?1", [rowid])?;
    }
    Ok(())
}

/// The duress decoy's data key the real profile keeps, if any.
fn decoy_key_in(c: &mut Cells<'_>, decoy_id: &[u8; 16]) -> Result<Option<Zeroizing<[u8; 32]>>> {
    let Some((_, key)) = c.get(ItemKind::DecoyKey as u8, decoy_id)? else {
        return Ok(None);
    };
    let key: [u8; 32] = key
        .as_slice()
        .try_into()
        .map_err(|_| CoreError::Corrupt("decoy key"))?;
    Ok(Some(Zeroizing::new(key)))
}

/// Creates `dir` and any missing parents; returns those it made, deepest
/// first, so a failed creation can remove exactly them.
fn make_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_owned());
        at = d.parent();
    }
    std::fs::create_dir_all(dir).map_err(|e| CoreError::Io(e.kind().to_string()))?;
    Ok(missing)
}

/// Removes folders [`make_dirs`] made (only if empty: never anything else).
fn remove_made(made: &[PathBuf]) {
    for d in made {
        let _ = std::fs::remove_dir(d);
    }
}

fn set_meta(conn: &Connection, name: &str, value: &[u8]) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![name, value],
    )?;
    Ok(())
}

/// Wraps `data_key` and `flags` under `kek` into slot `slot`.
fn write_slot(
    conn: &Connection,
    slot: u8,
    kek: &[u8; 32],
    data_key: &[u8; 32],
    flags: u8,
    e: &mut dyn Entropy,
) -> Result<()> {
    let mut plain = Zeroizing::new([0u8; 33]);
    plain[..32].copy_from_slice(data_key);
    plain[32] = flags;
    let wrapped = seal(kek, &[KEY_AAD, &[slot]], &*plain, e)?;
    set_meta(conn, SLOT_NAMES[usize::from(slot)], &wrapped)
}

/// The data key and flags in slot `slot`, if `kek` opens it.
fn read_slot(
    conn: &Connection,
    slot: u8,
    kek: &[u8; 32],
) -> Result<Option<(Zeroizing<[u8; 32]>, u8)>> {
    let wrapped = meta(conn, SLOT_NAMES[usize::from(slot)])?;
    match open(kek, &[KEY_AAD, &[slot]], &wrapped) {
        Ok(plain) if plain.len() == 33 => {
            let mut key = Zeroizing::new([0u8; 32]);
            key.copy_from_slice(&plain[..32]);
            Ok(Some((key, plain[32])))
        }
        Ok(_) => Err(CoreError::Corrupt("profile key slot")),
        Err(CoreError::Protocol(amparo_protocol::ProtocolError::OpenFailed)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams::DANGEROUSLY_FAST_FOR_TESTS;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_real_profile_writes_into_its_decoy_and_the_decoy_sees_nothing_of_it() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("p");
        let real = Profile::create(&dir, "2468", FAST).unwrap();
        assert!(real.open_decoy().unwrap().is_none(), "no duress PIN yet");
        real.set_duress_pin("1111", false).unwrap();
        let decoy = real.open_decoy().unwrap().unwrap();
        decoy
            .put_item(ItemKind::Settings, &decoy.fixed_id(b"s"), 0, b"mirrored")
            .unwrap();
        assert!(decoy.open_decoy().unwrap().is_none());
        drop((decoy, real));
        let opened = Profile::open(&dir, "1111").unwrap();
        assert_eq!(opened.slot, 1);
        let id = opened.fixed_id(b"s");
        assert_eq!(
            &*opened.get_item(ItemKind::Settings, &id).unwrap().unwrap().1,
            b"mirrored"
        );
        assert!(
            opened
                .item_ids(ItemKind::DecoyKey, None)
                .unwrap()
                .is_empty()
        );
        drop(opened);
        // Clearing the duress PIN forgets the decoy's key with its items.
        let real = Profile::open(&dir, "2468").unwrap();
        assert_eq!(real.item_ids(ItemKind::DecoyKey, None).unwrap().len(), 1);
        real.clear_duress_pin().unwrap();
        assert!(real.open_decoy().unwrap().is_none());
        assert!(real.item_ids(ItemKind::DecoyKey, None).unwrap().is_empty());
        assert!(matches!(
            Profile::open(&dir, "1111"),
            Err(CoreError::WrongPin)
        ));
    }

    #[test]
    fn a_failed_creation_leaves_nothing_and_a_good_one_is_whole() {
        let root = tempfile::tempdir().unwrap();
        // A folder this call makes (with a parent it makes too) is removed.
        let p = root.path().join("new").join("profile");
        let failed = Profile::create_with(&p, "2468", FAST, |profile| {
            profile.put_item(ItemKind::Settings, &[1; 16], 0, b"half made")?;
            Err::<(), _>(CoreError::Invalid("refused by init"))
        });
        assert!(matches!(failed, Err(CoreError::Invalid("refused by init"))));
        assert!(!Profile::exists(&p));
        assert!(
            entries(root.path()).is_empty(),
            "{:?}",
            entries(root.path())
        );
        // A folder that was there stays, empty.
        let there = root.path().join("there");
        std::fs::create_dir(&there).unwrap();
        std::fs::write(there.join("notes.txt"), b"hers").unwrap();
        assert!(
            Profile::create_with(&there, "", FAST, |_| Ok(())).is_err(),
            "an empty PIN"
        );
        assert!(
            Profile::create_with(&there, "2468", FAST, |_| Err::<(), _>(CoreError::NotFound))
                .is_err()
        );
        assert_eq!(entries(&there), vec!["notes.txt"]);
        // The corrected call then works, and what init stored is there.
        let (profile, out) = Profile::create_with(&there, "2468", FAST, |profile| {
            profile.put_item(ItemKind::Settings, &[1; 16], 0, b"whole")?;
            Ok(7)
        })
        .unwrap();
        assert_eq!(out, 7);
        profile
            .put_item(ItemKind::Draft, &[2; 16], 0, b"after")
            .unwrap();
        drop(profile);
        assert!(entries(&there).iter().all(|n| !n.starts_with(".creating")));
        assert!(entries(&there).contains(&DB_FILE.to_string()));
        let profile = Profile::open(&there, "2468").unwrap();
        assert_eq!(
            &**profile
                .get_item(ItemKind::Settings, &[1; 16])
                .unwrap()
                .unwrap()
                .1,
            b"whole"
        );
        assert_eq!(
            &**profile
                .get_item(ItemKind::Draft, &[2; 16])
                .unwrap()
                .unwrap()
                .1,
            b"after"
        );
        drop(profile);
        assert!(matches!(
            Profile::create_with(&there, "2468", FAST, |_| Ok(())),
            Err(CoreError::ProfileExists)
        ));
    }

    #[test]
    fn create_open_wrong_pin_change_pin() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        let profile = Profile::create(&p, "2468", FAST).unwrap();
        profile
            .put_item(ItemKind::Draft, &[1; 16], 0, b"secret words")
            .unwrap();
        drop(profile);
        assert!(matches!(
            Profile::create(&p, "1111", FAST),
            Err(CoreError::ProfileExists)
        ));
        assert!(matches!(
            Profile::open(&p, "1357"),
            Err(CoreError::WrongPin)
        ));
        let profile = Profile::open(&p, "2468").unwrap();
        assert_eq!(
            &**profile
                .get_item(ItemKind::Draft, &[1; 16])
                .unwrap()
                .unwrap()
                .1,
            b"secret words"
        );
        profile.change_pin("9999").unwrap();
        drop(profile);
        assert!(matches!(
            Profile::open(&p, "2468"),
            Err(CoreError::WrongPin)
        ));
        let profile = Profile::open(&p, "9999").unwrap();
        assert_eq!(
            profile.item_ids(ItemKind::Draft, None).unwrap(),
            vec![[1; 16]]
        );
        assert!(matches!(
            Profile::open(&dir.path().join("none"), "1"),
            Err(CoreError::NoProfile)
        ));
    }

    #[test]
    fn duress_pin_opens_a_separate_decoy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        let real = Profile::create(&p, "2468", FAST).unwrap();
        // Without a duress PIN the second slot is noise of the same length.
        let lens: Vec<usize> = SLOT_NAMES
            .iter()
            .map(|n| meta(&real.conn().unwrap(), n).unwrap().len())
            .collect();
        assert_eq!(lens, vec![SLOT_LEN, SLOT_LEN]);
        assert!(
            real.set_duress_pin("2468", false).is_err(),
            "must differ from the PIN"
        );
        real.put_item(ItemKind::Draft, &[1; 16], 0, b"real")
            .unwrap();
        real.set_duress_pin("1111", false).unwrap();
        drop(real);

        let decoy = Profile::open(&p, "1111").unwrap();
        assert!(
            decoy.item_ids(ItemKind::Draft, None).unwrap().is_empty(),
            "the decoy looks empty"
        );
        decoy
            .put_item(ItemKind::Draft, &[2; 16], 0, b"decoy")
            .unwrap();
        assert_ne!(
            decoy.fixed_id(b"x"),
            Profile::open(&p, "2468").unwrap().fixed_id(b"x")
        );
        // From inside, the decoy looks like a profile without a duress PIN.
        assert!(decoy.is_decoy().unwrap());
        assert!(decoy.open_decoy().unwrap().is_none());
        decoy.clear_duress_pin().unwrap();
        drop(decoy);

        let real = Profile::open(&p, "2468").unwrap();
        assert!(!real.is_decoy().unwrap());
        assert_eq!(real.item_ids(ItemKind::Draft, None).unwrap(), vec![[1; 16]]);
        drop(real);
        assert_eq!(
            Profile::open(&p, "1111")
                .unwrap()
                .item_ids(ItemKind::Draft, None)
                .unwrap(),
            vec![[2; 16]]
        );
        assert!(matches!(
            Profile::open(&p, "0000"),
            Err(CoreError::WrongPin)
        ));
    }

    #[test]
    fn a_decoy_made_to_set_a_duress_pin_takes_the_file_over() {
        for wipe in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("profile");
            let real = Profile::create(&p, "2468", FAST).unwrap();
            real.put_item(ItemKind::Draft, &[1; 16], 0, b"real")
                .unwrap();
            real.set_duress_pin("1111", wipe).unwrap();
            drop(real);
            let decoy = Profile::open(&p, "1111").unwrap();
            decoy
                .put_item(ItemKind::Draft, &[2; 16], 0, b"decoy")
                .unwrap();
            // Works as in any profile, in either slot ...
            decoy.set_duress_pin("3333", false).unwrap();
            assert!(!decoy.is_decoy().unwrap());
            let inner = decoy.open_decoy().unwrap().expect("a decoy of its own");
            assert!(inner.is_decoy().unwrap());
            drop(inner);
            drop(decoy);
            // ... at the cost of the profile it hid.
            assert!(matches!(
                Profile::open(&p, "2468"),
                Err(CoreError::WrongPin)
            ));
            for _ in 0..2 {
                // Its old wipe flag no longer fires: what it would destroy
                // is its own decoy now.
                let taken = Profile::open(&p, "1111").unwrap();
                assert!(!taken.is_decoy().unwrap());
                assert_eq!(
                    taken.item_ids(ItemKind::Draft, None).unwrap(),
                    vec![[2; 16]]
                );
                drop(taken);
                let inner = Profile::open(&p, "3333").unwrap();
                assert!(inner.is_decoy().unwrap());
                assert!(inner.item_ids(ItemKind::Draft, None).unwrap().is_empty());
                drop(inner);
            }
            // And the new decoy, made to set one, takes it over in turn.
            let inner = Profile::open(&p, "3333").unwrap();
            inner.set_duress_pin("5555", false).unwrap();
            drop(inner);
            assert!(matches!(
                Profile::open(&p, "1111"),
                Err(CoreError::WrongPin)
            ));
            assert!(Profile::open(&p, "5555").unwrap().is_decoy().unwrap());
        }
    }

    #[test]
    fn duress_pin_can_destroy_the_real_profile() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        let real = Profile::create(&p, "2468", FAST).unwrap();
        real.put_item(ItemKind::Draft, &[1; 16], 0, b"Canary-duress-real-report")
            .unwrap();
        real.set_duress_pin("1111", true).unwrap();
        let real_key = real.data_key.clone();
        drop(real);
        let decoy = Profile::open(&p, "1111").unwrap();
        assert!(decoy.item_ids(ItemKind::Draft, None).unwrap().is_empty());
        decoy
            .put_item(ItemKind::Draft, &[2; 16], 0, b"decoy")
            .unwrap();
        drop(decoy);
        // The real PIN no longer opens anything, and the real items are gone.
        assert!(matches!(
            Profile::open(&p, "2468"),
            Err(CoreError::WrongPin)
        ));
        let decoy = Profile::open(&p, "1111").unwrap();
        assert_eq!(
            decoy.item_ids(ItemKind::Draft, None).unwrap(),
            vec![[2; 16]]
        );
        // The real item's cell is noise now: no key opens it (its id and
        // its position are kept; nothing was deleted).
        let real_cell = cells::cell_id(&real_key, &[1; 16], 0);
        let (id, head): (Vec<u8>, Vec<u8>) = decoy
            .conn()
            .unwrap()
            .query_row(
                "SELECT id, head FROM heads WHERE id = ?1",
                [&real_cell[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(cells::open_head(&real_key, &id, &head).unwrap(), None);
        assert_eq!(cells::open_head(&decoy.data_key, &id, &head).unwrap(), None);
    }

    #[test]
    fn items_cannot_be_swapped_between_ids() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::create(dir.path(), "1", FAST).unwrap();
        profile
            .put_item(ItemKind::Draft, &[1; 16], 0, b"one")
            .unwrap();
        profile
            .put_item(ItemKind::Draft, &[2; 16], 0, b"two")
            .unwrap();
        // Copy item 1's sealed body over item 2's: opening item 2 now fails
        // (a typed error); then its head too: item 2 is no longer found
        // (a head opens only under its own cell id). Item 1 still opens.
        let one = cells::cell_id(&profile.data_key, &[1; 16], 0);
        let two = cells::cell_id(&profile.data_key, &[2; 16], 0);
        let copy_head = || {
            profile
                .conn()
                .unwrap()
                .execute(
                    "UPDATE heads SET head = (SELECT head FROM heads WHERE id = ?1) WHERE id = ?2",
                    params![&one[..], &two[..]],
                )
                .unwrap();
        };
        {
            let conn = profile.conn().unwrap();
            conn.execute(
                "UPDATE bodies SET body = (SELECT body FROM bodies WHERE n = (SELECT n FROM heads WHERE id = ?1))
                 WHERE n = (SELECT n FROM heads WHERE id = ?2)",
                params![&one[..], &two[..]],
            )
            .unwrap();
        }
        assert!(matches!(
            profile.get_item(ItemKind::Draft, &[2; 16]),
            Err(CoreError::Corrupt(_))
        ));
        copy_head();
        assert!(matches!(
            profile.get_item(ItemKind::Draft, &[2; 16]),
            Ok(None)
        ));
        assert_eq!(
            &*profile
                .get_item(ItemKind::Draft, &[1; 16])
                .unwrap()
                .unwrap()
                .1,
            b"one"
        );
    }

    /// A profile in the layout of schema version 2 (plaintext kind and
    /// state per row), written with raw SQL as that version did: the real
    /// profile's items, and the decoy's — with or without the decoy's key
    /// kept by the real profile.
    fn old_layout_profile(dir: &Path, keep_decoy_key: bool) -> ([u8; 32], [u8; 32]) {
        std::fs::create_dir_all(dir).unwrap();
        let conn = Connection::open(dir.join(DB_FILE)).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        for (i, step) in schema::STEPS.iter().take(2).enumerate() {
            conn.execute_batch(step).unwrap();
            conn.pragma_update(None, "user_version", i as u32 + 1)
                .unwrap();
        }
        let mut e = SystemEntropy::new();
        let (real, decoy) = ([0x11u8; 32], [0x22u8; 32]);
        let salt = [7u8; 16];
        set_meta(&conn, "kdf", &FAST.encode()).unwrap();
        set_meta(&conn, "salt", &salt).unwrap();
        for (slot, pin, key) in [(0u8, "2468", &real), (1, "1111", &decoy)] {
            let kek = kdf::derive(pin, &salt, FAST).unwrap();
            write_slot(&conn, slot, &kek, key, 0, &mut e).unwrap();
        }
        let put = |key: &[u8; 32], kind: ItemKind, id: &[u8; 16], state: u8, value: &[u8]| {
            let sealed = seal(
                key,
                &[ITEM_AAD, &[kind as u8], id],
                value,
                &mut SystemEntropy::new(),
            )
            .unwrap();
            conn.execute(
                "INSERT INTO items (id, kind, state, sealed) VALUES (?1, ?2, ?3, ?4)",
                params![&id[..], kind as u8, state, sealed],
            )
            .unwrap();
        };
        put(&real, ItemKind::Draft, &[1; 16], 0, b"old real draft");
        let big: Vec<u8> = (0..cells::CAPACITY * 2 + 10)
            .map(|i| (i % 251) as u8)
            .collect();
        put(&real, ItemKind::Outgoing, &[2; 16], 2, &big);
        put(&real, ItemKind::Draft, &[4; 16], 0, b"second real draft");
        if keep_decoy_key {
            let id = amparo_protocol::primitives::sha256_prefix(&[
                b"amparo-fixed-item-v1",
                &real,
                b"decoy-key",
            ]);
            put(&real, ItemKind::DecoyKey, &id, 0, &decoy);
        }
        put(&decoy, ItemKind::Draft, &[3; 16], 0, b"old decoy draft");
        (real, decoy)
    }

    fn legacy_rows(p: &Profile) -> i64 {
        p.conn()
            .unwrap()
            .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_profile_in_the_old_layout_is_converted_at_unlock() {
        let root = tempfile::tempdir().unwrap();
        for keep in [true, false] {
            let dir = root.path().join(format!("old-{keep}"));
            old_layout_profile(&dir, keep);
            let real = Profile::open(&dir, "2468").unwrap();
            let version: u32 = real
                .conn()
                .unwrap()
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(version, schema::CURRENT);
            // In the order they were stored, with their states.
            assert_eq!(
                real.item_ids(ItemKind::Draft, None).unwrap(),
                vec![[1; 16], [4; 16]]
            );
            assert_eq!(
                real.item_ids(ItemKind::Outgoing, Some(2)).unwrap(),
                vec![[2; 16]]
            );
            let (state, big) = real
                .get_item(ItemKind::Outgoing, &[2; 16])
                .unwrap()
                .unwrap();
            assert_eq!(state, 2);
            assert_eq!(big.len(), cells::CAPACITY * 2 + 10);
            assert!(big.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
            // The decoy's row is converted too when the real profile holds
            // its key; otherwise it waits for the duress PIN.
            assert_eq!(legacy_rows(&real), if keep { 0 } else { 1 });
            drop(real);
            let decoy = Profile::open(&dir, "1111").unwrap();
            assert_eq!(legacy_rows(&decoy), 0);
            assert_eq!(
                &*decoy
                    .get_item(ItemKind::Draft, &[3; 16])
                    .unwrap()
                    .unwrap()
                    .1,
                b"old decoy draft"
            );
            assert_eq!(
                decoy.item_ids(ItemKind::Draft, None).unwrap(),
                vec![[3; 16]]
            );
            // Every row of the cells has one length; nothing else holds items.
            let lens: Vec<(i64, i64)> = decoy
                .conn()
                .unwrap()
                .prepare("SELECT DISTINCT length(id), length(head) FROM heads")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            assert_eq!(lens, vec![(16, cells::HEAD_LEN as i64)]);
            drop(decoy);
            // Converted once: opening again finds the same.
            let real = Profile::open(&dir, "2468").unwrap();
            assert_eq!(
                &*real.get_item(ItemKind::Draft, &[1; 16]).unwrap().unwrap().1,
                b"old real draft"
            );
            assert_eq!(real.item_ids(ItemKind::Draft, None).unwrap().len(), 2);
        }
    }

    #[test]
    fn a_delete_overwrites_in_place_and_the_table_grows_in_steps() {
        let root = tempfile::tempdir().unwrap();
        let p = Profile::create(&root.path().join("p"), "1", FAST).unwrap();
        let cells = || cells::count(&p.conn().unwrap()).unwrap();
        assert_eq!(cells(), cells::MIN_CELLS);
        for i in 0..=cells::MIN_CELLS as u8 {
            p.put_item(ItemKind::Draft, &[i; 16], 0, b"x").unwrap();
        }
        assert_eq!(cells(), cells::next_size(cells::MIN_CELLS));
        let size = || {
            std::fs::metadata(root.path().join("p").join(DB_FILE))
                .unwrap()
                .len()
        };
        p.conn()
            .unwrap()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let before = (cells(), size());
        for i in 0..10u8 {
            assert!(p.delete_item(ItemKind::Draft, &[i; 16]).unwrap());
        }
        p.conn()
            .unwrap()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        assert_eq!((cells(), size()), before, "deletes remove nothing");
        // Their cells are reused before the table grows again.
        for i in 0..10u8 {
            p.put_item(ItemKind::Report, &[i; 16], 0, b"y").unwrap();
        }
        assert_eq!(cells(), before.0);
    }

    #[test]
    fn wipe_removes_everything() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        let profile = Profile::create(&p, "1", FAST).unwrap();
        profile
            .put_item(ItemKind::Draft, &[1; 16], 0, b"x")
            .unwrap();
        profile.wipe().unwrap();
        assert!(!Profile::exists(&p));
        assert!(!p.exists());
        assert!(matches!(Profile::open(&p, "1"), Err(CoreError::NoProfile)));
    }
}
