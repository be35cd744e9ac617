//! From a PIN to a key: Argon2id, with parameters stored beside the salt so
//! a profile opens on any device even if the defaults change.

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::{CoreError, Result};

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// For a low- to mid-range Android phone: 46 MiB, 4 passes, 1 lane
    /// (OWASP's memory setting, with passes added to keep the memory × passes
    /// cost of a guess within 4 % of 64 MiB × 3). About 0.15 s on a desktop
    /// core and under a second on such a phone. The process stays under
    /// 64 MiB while unlocking (about 51 MiB measured, BENCHMARKS.md), which
    /// matters on 1–2 GB phones where the system kills what grows; every
    /// guess of a short PIN still costs 46 MiB on a GPU. Profiles keep the
    /// parameters they were made with, so earlier ones still open.
    pub const PHONE: KdfParams = KdfParams {
        memory_kib: 46 * 1024,
        iterations: 4,
        parallelism: 1,
    };

    /// Deliberately weak, for tests only.
    pub const DANGEROUSLY_FAST_FOR_TESTS: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    /// The 12-byte stored form.
    pub(crate) fn encode(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&self.memory_kib.to_be_bytes());
        out[4..8].copy_from_slice(&self.iterations.to_be_bytes());
        out[8..].copy_from_slice(&self.parallelism.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<KdfParams> {
        let field = |i: usize| -> Result<u32> {
            let b = bytes
                .get(i..i + 4)
                .ok_or(CoreError::Corrupt("key derivation parameters"))?;
            let mut a = [0u8; 4];
            a.copy_from_slice(b);
            Ok(u32::from_be_bytes(a))
        };
        if bytes.len() != 12 {
            return Err(CoreError::Corrupt("key derivation parameters"));
        }
        Ok(KdfParams {
            memory_kib: field(0)?,
            iterations: field(4)?,
            parallelism: field(8)?,
        })
    }
}

/// Derives the 32-byte key-encryption key from `pin` and `salt`.
pub fn derive(pin: &str, salt: &[u8; 16], params: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let p = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(|_| CoreError::Corrupt("key derivation parameters"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(pin.as_bytes(), salt, &mut *out)
        .map_err(|_| CoreError::Corrupt("key derivation parameters"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_and_pin_matters() {
        let p = KdfParams::DANGEROUSLY_FAST_FOR_TESTS;
        assert_eq!(KdfParams::decode(&p.encode()).unwrap(), p);
        assert!(KdfParams::decode(&[0; 11]).is_err());
        let a = derive("1234", &[1; 16], p).unwrap();
        let b = derive("1235", &[1; 16], p).unwrap();
        let c = derive("1234", &[2; 16], p).unwrap();
        assert_ne!(*a, *b);
        assert_ne!(*a, *c);
        assert_eq!(*a, *derive("1234", &[1; 16], p).unwrap());
    }
}
