//! Where randomness comes from.
//!
//! The protocol crate never reaches for a global random number generator: the
//! caller passes an [`Entropy`]. On phones and the relay that is the operating
//! system's generator (amparo-core and amparo-relay wrap `ring::rand::SystemRandom`);
//! in tests and in the worked examples of PROTOCOL.md it is a seeded stream, so
//! every byte is reproducible.

use crate::ProtocolError;

/// A source of cryptographically secure random bytes.
pub trait Entropy {
    /// Fills `dest` entirely with random bytes, or fails.
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), ProtocolError>;
}

/// Fills and returns an array of random bytes.
pub(crate) fn random<const N: usize>(entropy: &mut dyn Entropy) -> Result<[u8; N], ProtocolError> {
    let mut out = [0u8; N];
    entropy.fill(&mut out)?;
    Ok(out)
}

/// The operating system's generator, through `ring`.
///
/// This is the entropy every real deployment uses. It is here (and not only in
/// the I/O crates) so that every crate shares one audited implementation;
/// reading the OS generator is the one system call the pure crate allows itself,
/// and only when the caller chooses this type.
#[derive(Debug)]
pub struct SystemEntropy(ring::rand::SystemRandom);

impl SystemEntropy {
    /// A handle on the operating system's generator.
    pub fn new() -> Self {
        SystemEntropy(ring::rand::SystemRandom::new())
    }
}

impl Default for SystemEntropy {
    fn default() -> Self {
        Self::new()
    }
}

impl Entropy for SystemEntropy {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), ProtocolError> {
        ring::rand::SecureRandom::fill(&self.0, dest).map_err(|_| ProtocolError::Entropy)
    }
}

/// A deterministic byte stream (SHA-256 in counter mode over a seed).
///
/// **Only for tests and reproducible examples**: anyone who knows the seed
/// knows every key it produced. The name says so on purpose.
#[derive(Debug, Clone)]
pub struct DangerousSeededEntropy {
    seed: [u8; 32],
    counter: u64,
}

impl DangerousSeededEntropy {
    /// A stream determined entirely by `label`.
    pub fn new(label: &[u8]) -> Self {
        let seed = ring::digest::digest(&ring::digest::SHA256, label);
        let mut s = [0u8; 32];
        s.copy_from_slice(seed.as_ref());
        DangerousSeededEntropy {
            seed: s,
            counter: 0,
        }
    }
}

impl Entropy for DangerousSeededEntropy {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), ProtocolError> {
        for chunk in dest.chunks_mut(32) {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(&self.seed);
            ctx.update(&self.counter.to_be_bytes());
            self.counter = self.counter.checked_add(1).ok_or(ProtocolError::Entropy)?;
            let block = ctx.finish();
            let n = chunk.len();
            chunk.copy_from_slice(block.as_ref().get(..n).ok_or(ProtocolError::Entropy)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_entropy_is_reproducible_and_label_dependent() {
        let mut a = DangerousSeededEntropy::new(b"x");
        let mut b = DangerousSeededEntropy::new(b"x");
        let mut c = DangerousSeededEntropy::new(b"y");
        let (mut x, mut y, mut z) = ([0u8; 70], [0u8; 70], [0u8; 70]);
        a.fill(&mut x).unwrap();
        b.fill(&mut y).unwrap();
        c.fill(&mut z).unwrap();
        assert_eq!(x, y);
        assert_ne!(x, z);
        // Consecutive draws differ.
        let mut w = [0u8; 70];
        a.fill(&mut w).unwrap();
        assert_ne!(x, w);
    }

    #[test]
    fn system_entropy_fills() {
        let mut e = SystemEntropy::new();
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        e.fill(&mut a).unwrap();
        e.fill(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
