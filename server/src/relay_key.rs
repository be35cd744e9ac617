//! The relay's receipt-signing key: generated on first start, kept in the
//! data directory (readable by the relay's user only), and the same for every
//! relay process that shares the data (copy the file to each machine of a
//! PostgreSQL deployment so that all sign with the key the directory lists).
//!
//! The file is never rewritten: restarts and upgrades read it as it is. It
//! is 32 bytes (the Ed25519 seed), so backing it up is copying it; losing it
//! means a new key that no phone trusts until the coordinator lists it.
//! There is no rotation in the relay itself: an operator rotates by having
//! the coordinator list the new public key beside the old one, then
//! replacing the file (README, "Running a relay").

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::primitives::ed25519::{SEED_LEN, SigningKey};
use zeroize::Zeroizing;

/// File name of the key inside the data directory.
pub const FILE_NAME: &str = "receipt-key.ed25519";

/// Where the key lives.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Loads the key from `dir`, or `None` if there is no key file there yet.
/// Creates and changes nothing.
pub fn load(dir: &Path) -> io::Result<Option<SigningKey>> {
    let path = path_in(dir);
    match fs::read(&path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            let seed: [u8; SEED_LEN] = bytes.as_slice().try_into().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a 32-byte key file", path.display()),
                )
            })?;
            let seed = Zeroizing::new(seed);
            SigningKey::from_seed(&seed)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Loads the key, or creates it (and the directory, mode 0700) on first start.
pub fn load_or_create(dir: &Path) -> io::Result<SigningKey> {
    fs::create_dir_all(dir)?;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    let path = path_in(dir);
    match load(dir) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => {
            // Written whole under another name, then linked into place: a
            // crash leaves no half key file, and if another process (a
            // second relay, `amparo-relay key --create`) made one meanwhile,
            // its key wins and is the one returned.
            let key = SigningKey::generate(&mut SystemEntropy::new())
                .map_err(|e| io::Error::other(e.to_string()))?;
            let mut raw = [0u8; 8];
            amparo_protocol::Entropy::fill(&mut SystemEntropy::new(), &mut raw)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let tmp = dir.join(format!(
                ".{FILE_NAME}.{}.tmp",
                raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ));
            let written = (|| {
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)?;
                file.write_all(&*key.dangerously_export_seed())?;
                file.sync_all()?;
                fs::hard_link(&tmp, &path)
            })();
            let _ = fs::remove_file(&tmp);
            match written {
                Ok(()) => {
                    if let Ok(d) = fs::File::open(dir) {
                        let _ = d.sync_all();
                    }
                    Ok(key)
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    load(dir)?.ok_or_else(|| io::Error::other("the key file vanished"))
                }
                Err(e) => Err(io::Error::new(
                    e.kind(),
                    format!("cannot write {}: {e}", path.display()),
                )),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.verifying_key(), b.verifying_key());
        let mode = fs::metadata(path_in(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::write(path_in(dir.path()), b"short").unwrap();
        assert!(load_or_create(dir.path()).is_err());
        assert_eq!(
            fs::read(path_in(dir.path())).unwrap(),
            b"short",
            "a bad file is left as it is"
        );
    }

    #[test]
    fn load_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("data");
        assert!(load(&inner).unwrap().is_none());
        assert!(!inner.exists());
        let created = load_or_create(&inner).unwrap();
        assert_eq!(
            load(&inner).unwrap().map(|k| k.verifying_key()),
            Some(created.verifying_key())
        );
    }
}
