//! Shamir secret sharing over the scalar field of Curve25519.
//!
//! An office splits each month's two secrets among the other offices so
//! that the coordinator can rebuild one of them — never both — from any
//! `threshold` holders when the office cannot take part itself. The field
//! arithmetic is `curve25519-dalek`'s (constant time, audited); what is
//! here is the polynomial: random coefficients, evaluation at the holders'
//! indices 1…n, and Lagrange interpolation at zero.

use curve25519_dalek::scalar::Scalar;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::entropy::Entropy;
use crate::{ProtocolError, Result};

/// Most holders one secret is split among (an index is 1…this).
pub const MAX_HOLDERS: u16 = 255;

/// A secret: the canonical encoding of a non-zero scalar (what is shared),
/// from which keys are derived.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret([u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A fresh secret: 64 random bytes reduced modulo the group order
    /// (bias below 2^-128).
    pub fn generate(entropy: &mut dyn Entropy) -> Result<Secret> {
        let mut wide = [0u8; 64];
        entropy.fill(&mut wide)?;
        let s = Scalar::from_bytes_mod_order_wide(&wide);
        wide.zeroize();
        Ok(Secret(s.to_bytes()))
    }

    /// A secret from its encoding: refused unless canonical.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Secret> {
        let s: Option<Scalar> = Scalar::from_canonical_bytes(*bytes).into();
        s.map(|s| Secret(s.to_bytes()))
            .ok_or(ProtocolError::Invalid("aggregation secret"))
    }

    /// Its 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn scalar(&self) -> Scalar {
        Scalar::from_bytes_mod_order(self.0)
    }
}

/// One holder's share: the polynomial's value at the holder's index.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Share {
    /// The holder's index, 1…n (never 0: that is the secret).
    pub x: u16,
    /// The value, a canonical scalar.
    pub y: [u8; 32],
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Share(x = {}, ..)", self.x)
    }
}

/// Splits `secret` into `holders` shares (indices 1…holders) of which any
/// `threshold` rebuild it and fewer say nothing about it.
pub fn split(
    secret: &Secret,
    threshold: u16,
    holders: u16,
    entropy: &mut dyn Entropy,
) -> Result<Vec<Share>> {
    if threshold == 0 || threshold > holders || holders > MAX_HOLDERS {
        return Err(ProtocolError::Invalid("secret sharing threshold"));
    }
    let mut coefficients = vec![secret.scalar()];
    for _ in 1..threshold {
        coefficients.push(Secret::generate(entropy)?.scalar());
    }
    let shares = (1..=holders)
        .map(|x| {
            let at = Scalar::from(u64::from(x));
            // Horner's rule, highest coefficient first.
            let y = coefficients
                .iter()
                .rev()
                .fold(Scalar::ZERO, |acc, c| acc * at + c);
            Share { x, y: y.to_bytes() }
        })
        .collect();
    coefficients.zeroize();
    Ok(shares)
}

/// Rebuilds the secret from shares at distinct non-zero indices (as many
/// as the threshold; with fewer the result is a wrong secret, which the
/// caller detects by the commitment it holds).
pub fn combine(shares: &[Share]) -> Result<Secret> {
    if shares.is_empty() || shares.len() > usize::from(MAX_HOLDERS) {
        return Err(ProtocolError::Invalid("secret shares"));
    }
    let mut xs = Vec::with_capacity(shares.len());
    let mut ys = Vec::with_capacity(shares.len());
    for s in shares {
        if s.x == 0 || xs.contains(&Scalar::from(u64::from(s.x))) {
            return Err(ProtocolError::Invalid("secret share index"));
        }
        let y: Option<Scalar> = Scalar::from_canonical_bytes(s.y).into();
        ys.push(y.ok_or(ProtocolError::Invalid("secret share"))?);
        xs.push(Scalar::from(u64::from(s.x)));
    }
    let mut secret = Scalar::ZERO;
    for (j, (xj, yj)) in xs.iter().zip(&ys).enumerate() {
        let mut num = Scalar::ONE;
        let mut den = Scalar::ONE;
        for (m, xm) in xs.iter().enumerate() {
            if m != j {
                num *= xm;
                den *= xm - xj;
            }
        }
        // Distinct indices below the group order: `den` is never zero.
        secret += yj * num * den.invert();
    }
    ys.zeroize();
    Ok(Secret(secret.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DangerousSeededEntropy;
    use proptest::prelude::*;

    #[test]
    fn any_threshold_of_the_shares_rebuild_the_secret_and_fewer_do_not() {
        let mut e = DangerousSeededEntropy::new(b"shamir");
        let secret = Secret::generate(&mut e).unwrap();
        let shares = split(&secret, 3, 5, &mut e).unwrap();
        assert_eq!(shares.len(), 5);
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let got = combine(&[shares[a].clone(), shares[b].clone(), shares[c].clone()]);
                    assert_eq!(got.unwrap(), secret);
                }
                let two = combine(&[shares[a].clone(), shares[b].clone()]).unwrap();
                assert_ne!(two, secret, "two of a threshold of three");
            }
        }
        let all = combine(&shares).unwrap();
        assert_eq!(all, secret, "more than the threshold also works");
    }

    #[test]
    fn bad_parameters_and_shares_are_refused() {
        let mut e = DangerousSeededEntropy::new(b"shamir-bad");
        let secret = Secret::generate(&mut e).unwrap();
        assert!(split(&secret, 0, 3, &mut e).is_err());
        assert!(split(&secret, 4, 3, &mut e).is_err());
        assert!(split(&secret, 2, 256, &mut e).is_err());
        let shares = split(&secret, 2, 3, &mut e).unwrap();
        assert!(combine(&[]).is_err());
        assert!(combine(&[shares[0].clone(), shares[0].clone()]).is_err());
        let zero = Share { x: 0, y: [0; 32] };
        assert!(combine(&[zero, shares[1].clone()]).is_err());
        let wild = Share {
            x: 1,
            y: [0xff; 32],
        };
        assert!(combine(&[wild, shares[1].clone()]).is_err());
        assert!(Secret::from_bytes(&[0xff; 32]).is_err());
    }

    proptest! {
        #[test]
        fn a_random_threshold_subset_rebuilds(seed in any::<u64>(), n in 2u16..12, pick in any::<u64>()) {
            let mut e = DangerousSeededEntropy::new(&seed.to_le_bytes());
            let t = n / 2 + 1;
            let secret = Secret::generate(&mut e).unwrap();
            let shares = split(&secret, t, n, &mut e).unwrap();
            // A pseudo-random subset of size t.
            let mut idx: Vec<usize> = (0..usize::from(n)).collect();
            let mut p = pick;
            for i in (1..idx.len()).rev() {
                let j = (p % (i as u64 + 1)) as usize;
                idx.swap(i, j);
                p = p.rotate_left(7) ^ 0x9e37_79b9;
            }
            let subset: Vec<Share> = idx[..usize::from(t)].iter().map(|i| shares[*i].clone()).collect();
            prop_assert_eq!(combine(&subset).unwrap(), secret);
        }
    }
}
