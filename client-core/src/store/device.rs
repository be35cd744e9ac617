//! A secret that stays on one phone, mixed into the PIN's key derivation so
//! that a copied profile cannot be attacked off the phone.
//!
//! A phone app implements [`DeviceKey`] with a key the operating system will
//! not export: an HMAC-SHA256 key in the Android Keystore (in StrongBox where
//! the phone has it), or a Secure Enclave key on iOS. Opening a bound profile
//! runs Argon2id on the PIN as before, then asks the device once, with a
//! challenge computed from the salt *and* the Argon2id output, and wraps the
//! data key under HKDF of both (see `kdf::wrapping_key`).
//!
//! What it protects: a copy of the profile's files (a forensic image of the
//! phone's storage, a backup, a file taken by malware or by the relay's
//! operator's friends) cannot be tested against any PIN without the phone,
//! because every guess needs one answer from a key that never leaves it.
//! Because the challenge depends on the PIN, an answer obtained once is
//! worth nothing for another guess: the phone must be asked for each one.
//!
//! What it does not protect: someone holding the live phone can run the app
//! (or code with the app's identity, on a rooted phone) and ask the device
//! for each guess; then only the hardware's speed, the attempt counter and
//! the wipe-after-N setting (`store::throttle`) stand in the way. Something
//! that can read the challenges the app sends (a compromised operating
//! system) can test PINs against a challenge offline at Argon2id's cost, as
//! it could against a profile without a device key. And a profile bound to a
//! phone's key is lost with the phone (or a factory reset, or the key's
//! deletion): there is no copy of that key anywhere.

use std::io::Write as _;
use std::path::Path;

use amparo_protocol::Entropy;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::primitives::hkdf;
use zeroize::Zeroizing;

use crate::{CoreError, Result};

/// Bytes in a challenge and in an answer.
pub const DEVICE_KEY_LEN: usize = 32;

/// A keyed function the phone computes with a key it never exports: given
/// 32 bytes, 32 bytes (HMAC-SHA256 under a Keystore or Secure Enclave key).
/// It must be deterministic (the same challenge always gives the same
/// answer on this phone) and must differ between phones. Called once per
/// unlock attempt, after Argon2id, from the thread that unlocks.
pub trait DeviceKey: Send + Sync {
    /// The answer to `challenge`. A failure (key store unavailable, key
    /// deleted) is [`CoreError::DeviceKey`] with a sentence that names no
    /// secret.
    fn respond(&self, challenge: &[u8; DEVICE_KEY_LEN]) -> Result<Zeroizing<[u8; DEVICE_KEY_LEN]>>;
}

/// A device key held in memory or in a file: for tests and for the command
/// line, which has no key store. It gives a desktop copy the same binding as
/// a phone only if the key file is kept apart from the profile (another
/// disk, a USB key) — a key file copied together with the profile protects
/// nothing.
pub struct SoftwareDeviceKey {
    key: Zeroizing<[u8; DEVICE_KEY_LEN]>,
}

impl std::fmt::Debug for SoftwareDeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareDeviceKey").finish_non_exhaustive()
    }
}

impl SoftwareDeviceKey {
    /// A fresh random key.
    pub fn generate() -> Result<SoftwareDeviceKey> {
        let mut key = Zeroizing::new([0u8; DEVICE_KEY_LEN]);
        SystemEntropy::new().fill(&mut *key)?;
        Ok(SoftwareDeviceKey { key })
    }

    /// The key in `bytes`.
    pub fn from_bytes(bytes: [u8; DEVICE_KEY_LEN]) -> SoftwareDeviceKey {
        SoftwareDeviceKey {
            key: Zeroizing::new(bytes),
        }
    }

    /// The key stored in `path` (exactly 32 bytes).
    pub fn load(path: &Path) -> Result<SoftwareDeviceKey> {
        let bytes = Zeroizing::new(
            std::fs::read(path).map_err(|e| CoreError::DeviceKey(e.kind().to_string()))?,
        );
        let key: [u8; DEVICE_KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CoreError::DeviceKey("the key file is not 32 bytes".into()))?;
        Ok(SoftwareDeviceKey::from_bytes(key))
    }

    /// The key stored in `path`, or a new one written there (readable by its
    /// owner only, written whole or not at all) if there is no file.
    pub fn load_or_create(path: &Path) -> Result<SoftwareDeviceKey> {
        if path.exists() {
            return Self::load(path);
        }
        let made = Self::generate()?;
        let io = |e: std::io::Error| CoreError::DeviceKey(e.kind().to_string());
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .ok_or(CoreError::Invalid("the device key file needs a file name"))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(".tmp");
        let tmp = parent.join(tmp_name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&tmp).and_then(|mut f| {
            f.write_all(&*made.key)?;
            f.sync_all()
        });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        // A hard link fails if another process made the file meanwhile:
        // then its key is the one to use.
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(made),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(io(e)),
        }
    }
}

impl DeviceKey for SoftwareDeviceKey {
    fn respond(&self, challenge: &[u8; DEVICE_KEY_LEN]) -> Result<Zeroizing<[u8; DEVICE_KEY_LEN]>> {
        // HKDF-Extract is HMAC-SHA256 keyed by its salt.
        Ok(hkdf::extract(&*self.key, &[challenge]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_key_is_an_hmac_kept_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let a = SoftwareDeviceKey::load_or_create(&path).unwrap();
        let again = SoftwareDeviceKey::load_or_create(&path).unwrap();
        let other = SoftwareDeviceKey::generate().unwrap();
        let c = [7u8; 32];
        assert_eq!(*a.respond(&c).unwrap(), *again.respond(&c).unwrap());
        assert_ne!(*a.respond(&c).unwrap(), *other.respond(&c).unwrap());
        assert_ne!(*a.respond(&c).unwrap(), *a.respond(&[8u8; 32]).unwrap());
        // It is HMAC-SHA256 of the challenge under the key in the file.
        let raw: [u8; 32] = std::fs::read(&path).unwrap().try_into().unwrap();
        let k = hmac_by_definition(&raw, &c);
        assert_eq!(*a.respond(&c).unwrap(), k);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            SoftwareDeviceKey::load(&path),
            Err(CoreError::DeviceKey(_))
        ));
        assert!(matches!(
            SoftwareDeviceKey::load(&dir.path().join("none")),
            Err(CoreError::DeviceKey(_))
        ));
    }

    fn hmac_by_definition(key: &[u8], msg: &[u8]) -> [u8; 32] {
        // HMAC-SHA256 from its definition over SHA-256, independent of hkdf.
        let mut k = [0u8; 64];
        k[..key.len()].copy_from_slice(key);
        let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        let inner = amparo_protocol::primitives::sha256(&[&ipad, msg]);
        amparo_protocol::primitives::sha256(&[&opad, &inner])
    }
}
