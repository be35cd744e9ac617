//! The seized phone, for apps: a device key the app implements with a key
//! the operating system will not export, the lock screen's status before
//! the PIN, wipe after N wrong PINs, and binding an existing profile.
//!
//! What the device key protects, and what it does not, is said in
//! amparo-core's `store::device` and `store::throttle` (and README, "Phone
//! apps"): a copy of the profile's files cannot be tested against any PIN
//! without the phone; someone holding the live phone can still try PINs
//! through the app, at the speed the attempt counter and wipe-after allow.

use std::path::Path;
use std::sync::{Arc, RwLock};

use amparo_core::CoreError;
use amparo_core::store;
use zeroize::Zeroizing;

use crate::{KdfStrength, Profile, Result, TrustedKeys, now};

/// A keyed function the phone computes with a key that never leaves its
/// secure hardware: given a 32-byte challenge, 32 bytes back. Implemented
/// by the app: HMAC-SHA256 under an Android Keystore (StrongBox) key, or an
/// HMAC keyed by an ECDH secret with a Secure Enclave key on iOS (README).
///
/// It must be deterministic (the same challenge always gives the same
/// answer on this phone) and different on every phone; a profile bound to
/// it is lost with the key (factory reset, key deleted, another phone).
/// Called once per unlock attempt, after Argon2id, on the thread that
/// unlocks: it may block (a biometric prompt is not expected: the PIN is
/// the user's proof).
#[uniffi::export(with_foreign)]
pub trait DeviceKey: Send + Sync {
    /// The answer to `challenge` (32 bytes): exactly 32 bytes. Throw
    /// `DeviceKeyError.Failed` when the key store is unavailable or the key
    /// is gone, with a sentence that names no secret.
    fn respond(&self, challenge: Vec<u8>) -> std::result::Result<Vec<u8>, DeviceKeyError>;
}

/// What the app's [`DeviceKey`] throws.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum DeviceKeyError {
    /// The key store failed or refused (locked, key deleted, hardware busy).
    #[error("{reason}")]
    Failed {
        /// Why, in a sentence that names no secret. (Not `message`: Kotlin
        /// exceptions have one already.)
        reason: String,
    },
}

/// The app's implementation threw something other than `DeviceKeyError`
/// (or broke the FFI contract): a failure of the key store like any other,
/// never a crash.
impl From<uniffi::UnexpectedUniFFICallbackError> for DeviceKeyError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        DeviceKeyError::Failed { reason: e.reason }
    }
}

/// The app's device key as the core asks it.
struct Foreign(Arc<dyn DeviceKey>);

impl store::DeviceKey for Foreign {
    fn respond(
        &self,
        challenge: &[u8; store::device::DEVICE_KEY_LEN],
    ) -> amparo_core::Result<Zeroizing<[u8; store::device::DEVICE_KEY_LEN]>> {
        let answer = Zeroizing::new(
            self.0
                .respond(challenge.to_vec())
                .map_err(|e| CoreError::DeviceKey(e.to_string()))?,
        );
        let mut out = Zeroizing::new([0u8; store::device::DEVICE_KEY_LEN]);
        if answer.len() != out.len() {
            return Err(CoreError::DeviceKey(format!(
                "the device key answered {} bytes; it must answer 32 (HMAC-SHA256)",
                answer.len()
            )));
        }
        out.copy_from_slice(&answer);
        Ok(out)
    }
}

fn core_device(device: Option<Arc<dyn DeviceKey>>) -> Option<Arc<dyn store::DeviceKey>> {
    device.map(|d| Arc::new(Foreign(d)) as Arc<dyn store::DeviceKey>)
}

/// What a lock screen may show before the PIN is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct UnlockStatus {
    /// Wrong PINs in a row since the last good one.
    pub failed_attempts: u32,
    /// Seconds before the next PIN is taken (0: now). An attempt before
    /// then is `TooManyAttempts` and tries nothing.
    pub wait_seconds: u64,
    /// The profile is destroyed at this many wrong PINs in a row (0: never).
    pub wipe_after: u32,
    /// The profile opens only with this phone's device key.
    pub device_bound: bool,
}

impl From<store::UnlockStatus> for UnlockStatus {
    fn from(s: store::UnlockStatus) -> Self {
        UnlockStatus {
            failed_attempts: s.failed_attempts,
            wait_seconds: s.wait_seconds,
            wipe_after: s.wipe_after,
            device_bound: s.device_bound,
        }
    }
}

/// The profile in `folder` before its PIN: wrong PINs in a row, the wait
/// before the next attempt (to show a countdown, and after
/// `TooManyAttempts`), the wipe-after setting, whether it needs the device
/// key. Tries no PIN and counts nothing. `NoProfile` if there is none.
#[uniffi::export]
pub fn unlock_status(folder: String) -> Result<UnlockStatus> {
    Ok(store::Profile::unlock_status(Path::new(&folder), now())?.into())
}

#[uniffi::export]
impl Profile {
    /// Creates a profile in `folder` protected by `pin` and, when `device`
    /// is given, bound to this phone's device key: it then opens only with
    /// the PIN *and* that key, so a copy of its files cannot be attacked
    /// off the phone. With `device` null it is `create`.
    #[uniffi::constructor]
    pub fn create_with_device(
        folder: String,
        pin: String,
        kdf: KdfStrength,
        trusted: TrustedKeys,
        device: Option<Arc<dyn DeviceKey>>,
    ) -> Result<Arc<Self>> {
        let trust = trusted.try_into()?;
        let (p, ()) = store::Profile::create_bound(
            Path::new(&folder),
            &pin,
            kdf.into(),
            core_device(device),
            |_| Ok(()),
        )?;
        Ok(Arc::new(Profile {
            inner: RwLock::new(Some(p)),
            trust,
        }))
    }

    /// Opens the profile in `folder` with `pin` and this phone's `device`
    /// key (needed for a bound profile, ignored otherwise). Errors:
    /// `WrongPin` (counted), `TooManyAttempts` (nothing tried: wait
    /// `unlock_status(folder).wait_seconds`), `DeviceKeyNeeded` (a bound
    /// profile opened without its key), `DeviceKey` (the key store failed;
    /// not counted). A profile copied to another phone answers `WrongPin`:
    /// its key gives other answers. The duress PIN opens the decoy without
    /// saying so.
    #[uniffi::constructor]
    pub fn open_with_device(
        folder: String,
        pin: String,
        trusted: TrustedKeys,
        device: Option<Arc<dyn DeviceKey>>,
    ) -> Result<Arc<Self>> {
        let trust = trusted.try_into()?;
        let mut unlock = store::Unlock::now();
        unlock.device = core_device(device);
        let p = store::Profile::open_with(Path::new(&folder), &pin, &unlock)?;
        Ok(Arc::new(Profile {
            inner: RwLock::new(Some(p)),
            trust,
        }))
    }

    /// Binds this profile to the phone's `device` key (re-wrapping its
    /// data key; nothing else changes). `pin` is this profile's PIN. If a
    /// duress PIN is set, give it as `duress_pin` to keep it working;
    /// without it the duress PIN stops working and the decoy is emptied
    /// (set one again after). Atomic: an interruption leaves the old
    /// binding or the new one, whole. Copies of the files taken before
    /// still open with the PIN alone.
    pub fn bind_device_key(
        &self,
        pin: String,
        device: Arc<dyn DeviceKey>,
        duress_pin: Option<String>,
    ) -> Result<()> {
        self.with(|p| {
            Ok(p.bind_device_key(&pin, core_device(Some(device)), duress_pin.as_deref())?)
        })
    }

    /// Unbinds the profile: the PIN alone opens it again (on any phone its
    /// files are copied to). The duress PIN as in `bind_device_key`.
    pub fn unbind_device_key(&self, pin: String, duress_pin: Option<String>) -> Result<()> {
        self.with(|p| Ok(p.bind_device_key(&pin, None, duress_pin.as_deref())?))
    }

    /// Whether the profile opens only with this phone's device key.
    pub fn device_bound(&self) -> Result<bool> {
        self.with(|p| Ok(p.binding()? == store::Binding::PinAndDevice))
    }

    /// Destroys the profile at the `n`-th wrong PIN in a row (0: never, the
    /// default). Readable before unlock by anyone holding the phone (as
    /// trying would tell them). Only wrong PINs typed into the app count: a
    /// copy of the files carries its own counter.
    pub fn set_wipe_after(&self, n: u32) -> Result<()> {
        self.with(|p| Ok(p.set_wipe_after(n)?))
    }

    /// The wipe-after setting (0: off).
    pub fn wipe_after(&self) -> Result<u32> {
        self.with(|p| Ok(p.wipe_after()?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::{AmparoError, Coordinator};
    use store::DeviceKey as _;

    struct Fixed(u8, usize);

    impl DeviceKey for Fixed {
        fn respond(&self, challenge: Vec<u8>) -> std::result::Result<Vec<u8>, DeviceKeyError> {
            if self.1 == 0 {
                return Err(DeviceKeyError::Failed {
                    reason: "the key store is locked".into(),
                });
            }
            Ok(challenge.iter().map(|b| b ^ self.0).take(self.1).collect())
        }
    }

    #[test]
    fn answers_of_the_wrong_length_or_failures_are_device_key_errors() {
        let good = Foreign(Arc::new(Fixed(1, 32)));
        assert_eq!(*good.respond(&[2; 32]).unwrap(), [3; 32]);
        for bad in [Fixed(1, 31), Fixed(1, 0)] {
            let e = Foreign(Arc::new(bad)).respond(&[2; 32]).unwrap_err();
            assert!(matches!(e, CoreError::DeviceKey(_)), "{e}");
            let e = AmparoError::from(e);
            assert!(matches!(&e, AmparoError::DeviceKey(_)), "{e}");
        }
        let e = Foreign(Arc::new(Fixed(1, 0)))
            .respond(&[2; 32])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the phone's key store failed: the key store is locked"
        );
    }

    #[test]
    fn a_bound_profile_opens_with_its_key_only_and_shows_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("p").to_string_lossy().into_owned();
        let trusted = TrustedKeys {
            coordinator_key: Coordinator::generate().unwrap().public_key(),
            relay_receipt_keys: vec![],
        };
        let mine: Arc<dyn DeviceKey> = Arc::new(Fixed(9, 32));
        let p = Profile::create_with_device(
            folder.clone(),
            "1234".into(),
            KdfStrength::DangerouslyFastForTests,
            trusted.clone(),
            Some(mine.clone()),
        )
        .unwrap();
        assert!(p.device_bound().unwrap());
        p.set_wipe_after(10).unwrap();
        assert_eq!(p.wipe_after().unwrap(), 10);
        p.lock().unwrap();
        let status = unlock_status(folder.clone()).unwrap();
        assert_eq!(
            status,
            UnlockStatus {
                failed_attempts: 0,
                wait_seconds: 0,
                wipe_after: 10,
                device_bound: true
            }
        );
        assert!(matches!(
            Profile::open(folder.clone(), "1234".into(), trusted.clone()),
            Err(AmparoError::DeviceKeyNeeded(_))
        ));
        let other: Arc<dyn DeviceKey> = Arc::new(Fixed(8, 32));
        assert!(matches!(
            Profile::open_with_device(folder.clone(), "1234".into(), trusted.clone(), Some(other)),
            Err(AmparoError::WrongPin(_))
        ));
        assert_eq!(unlock_status(folder.clone()).unwrap().failed_attempts, 1);
        let p =
            Profile::open_with_device(folder.clone(), "1234".into(), trusted.clone(), Some(mine))
                .unwrap();
        assert_eq!(unlock_status(folder.clone()).unwrap().failed_attempts, 0);
        p.unbind_device_key("1234".into(), None).unwrap();
        assert!(!p.device_bound().unwrap());
        p.lock().unwrap();
        Profile::open(folder, "1234".into(), trusted).unwrap();
    }

    #[test]
    fn too_many_attempts_says_the_wait() {
        let e = AmparoError::from(CoreError::TooManyAttempts { wait_seconds: 60 });
        assert!(
            matches!(&e, AmparoError::TooManyAttempts(m) if m.contains("60 s")),
            "{e}"
        );
    }
}
