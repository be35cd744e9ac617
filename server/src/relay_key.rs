//! The relay's receipt-signing key: generated on first start, kept in the
//! data directory (readable by the relay's user only), and the same for every
//! relay process that shares the data (copy the file to each machine of a
//! PostgreSQL deployment so that all sign with the key the directory lists).

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

/// Loads the key, or creates it (and the directory, mode 0700) on first start.
pub fn load_or_create(dir: &Path) -> io::Result<SigningKey> {
    fs::create_dir_all(dir)?;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
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
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = SigningKey::generate(&mut SystemEntropy::new())
                .map_err(|e| io::Error::other(e.to_string()))?;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            file.write_all(&*key.dangerously_export_seed())?;
            file.sync_all()?;
            Ok(key)
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
    }
}
