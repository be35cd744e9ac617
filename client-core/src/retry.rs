//! Trying again on a bad link: exponential backoff with full jitter, for
//! failures that a later attempt can fix (no signal, a timeout, a relay that
//! is briefly unavailable). A refusal for bad input is never retried.

use std::future::Future;
use std::time::Duration;

use amparo_protocol::Entropy;
use amparo_protocol::entropy::SystemEntropy;

use crate::{CoreError, Result};

/// How to retry.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// The first wait's upper bound.
    pub base: Duration,
    /// No wait is longer than this.
    pub max: Duration,
}

impl Default for Backoff {
    /// Five attempts, waits up to 2, 4, 8, 16 s: about half a minute in all,
    /// so a phone on a flickering 2G link keeps trying while the person waits.
    fn default() -> Self {
        Backoff {
            attempts: 5,
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        }
    }
}

/// Whether a later attempt could succeed.
pub fn is_transient(e: &CoreError) -> bool {
    match e {
        CoreError::Network(_) => true,
        CoreError::Relay { status, .. } => *status >= 500 || *status == 429,
        _ => false,
    }
}

/// Runs `op` until it succeeds, fails for good, or the attempts run out.
/// Each wait is uniformly random in `[0, min(max, base * 2^n)]` ("full
/// jitter"), so phones that lost signal together do not return together.
pub async fn with_backoff<T, F, Fut>(policy: Backoff, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut entropy = SystemEntropy::new();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < policy.attempts.max(1) && is_transient(&e) => {
                let cap = policy
                    .base
                    .saturating_mul(1u32 << (attempt - 1).min(16))
                    .min(policy.max);
                let mut r = [0u8; 4];
                entropy.fill(&mut r)?;
                let fraction = f64::from(u32::from_be_bytes(r)) / f64::from(u32::MAX);
                tokio::time::sleep(cap.mul_f64(fraction)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_only() {
        let calls = Cell::new(0);
        let policy = Backoff {
            attempts: 4,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let v = with_backoff(policy, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(CoreError::Network("no signal".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(v, 3);
        calls.set(0);
        let e = with_backoff(policy, || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(CoreError::WrongPin) }
        })
        .await;
        assert!(matches!(e, Err(CoreError::WrongPin)));
        assert_eq!(calls.get(), 1, "a permanent failure is not retried");
        calls.set(0);
        let e = with_backoff(policy, || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(CoreError::Network("x".into())) }
        })
        .await;
        assert!(e.is_err());
        assert_eq!(calls.get(), 4);
    }
}
