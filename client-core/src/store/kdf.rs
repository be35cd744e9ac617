//! From a PIN to a key: Argon2id, with parameters stored beside the salt so
//! a profile opens on any device even if the defaults change.

use amparo_protocol::primitives::{hkdf, sha256};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use super::device::DeviceKey;
use crate::{CoreError, Result};

/// How a profile's key slots are wrapped, stored beside the salt (`binding`
/// in the `meta` table; a profile made before bindings existed has none and
/// is [`Binding::Pin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The wrapping key is Argon2id of the PIN.
    Pin,
    /// The wrapping key also needs the phone's [`DeviceKey`].
    PinAndDevice,
}

impl Binding {
    pub(crate) fn encode(self) -> [u8; 1] {
        match self {
            Binding::Pin => [0],
            Binding::PinAndDevice => [1],
        }
    }

    pub(crate) fn decode(bytes: Option<&[u8]>) -> Result<Binding> {
        match bytes {
            None | Some([0]) => Ok(Binding::Pin),
            Some([1]) => Ok(Binding::PinAndDevice),
            Some(_) => Err(CoreError::Corrupt("profile key binding")),
        }
    }
}

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

#[cfg(test)]
thread_local! {
    /// Argon2id runs on this thread (tests check that every PIN costs one).
    pub(crate) static RUNS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Derives the 32-byte key-encryption key from `pin` and `salt`.
pub fn derive(pin: &str, salt: &[u8; 16], params: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    #[cfg(test)]
    RUNS.with(|r| r.set(r.get() + 1));
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

/// Argon2id of the PIN: what one guess costs without the device.
pub(crate) struct Stretched(Zeroizing<[u8; 32]>);

impl Stretched {
    /// Stretches `pin` (the one Argon2id run of an unlock attempt).
    pub(crate) fn new(pin: &str, salt: &[u8; 16], params: KdfParams) -> Result<Stretched> {
        derive(pin, salt, params).map(Stretched)
    }

    /// The key that wraps the key slots under `binding`.
    ///
    /// - [`Binding::Pin`]: the Argon2id output itself (as profiles have
    ///   always been made, so earlier ones open unchanged).
    /// - [`Binding::PinAndDevice`]: the device is asked once, with
    ///   `c = SHA-256("amparo-device-challenge-v1" || salt || a)` where `a` is
    ///   the Argon2id output, and the key is
    ///   `HKDF-SHA256(salt, a || device(c), "amparo-profile-kek-v2-device")`.
    ///   The challenge depends on the PIN, so each guess needs its own
    ///   answer from the phone; the salt keeps answers of one profile from
    ///   serving another; HKDF over both halves means neither alone is
    ///   enough (a copied file gives `a` only by guessing, and the device's
    ///   answer only by asking the phone).
    pub(crate) fn wrapping_key(
        &self,
        salt: &[u8; 16],
        binding: Binding,
        device: Option<&dyn DeviceKey>,
    ) -> Result<Zeroizing<[u8; 32]>> {
        match binding {
            Binding::Pin => Ok(self.0.clone()),
            Binding::PinAndDevice => {
                let device = device.ok_or(CoreError::DeviceKeyNeeded)?;
                let challenge = sha256(&[b"amparo-device-challenge-v1", salt, &*self.0]);
                let answer = device.respond(&challenge)?;
                let prk = hkdf::extract(salt, &[&*self.0, &*answer]);
                Ok(hkdf::expand_array(
                    &*prk,
                    &[b"amparo-profile-kek-v2-device"],
                )?)
            }
        }
    }
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
