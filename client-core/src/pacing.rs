//! How much one upload request carries.
//!
//! Everything in a request that a cut link interrupts is sent again (the
//! relay answers only once the whole body arrived). A fixed batch of 64
//! envelopes of 4 KiB takes 33 s to send at 64 kbit/s, so on a link that drops
//! more often than that a sync would never finish. Batches are therefore
//! sized by the link's measured speed to about [`TARGET`] of sending each:
//! the first is small, and each request's rate sizes the next. On a fast link
//! they grow at once to the relay's limits; on 2G a cut costs at most that
//! much sending, and the extra requests cost one round trip each.

use std::time::Duration;

/// How long one request should take to send.
pub(crate) const TARGET: Duration = Duration::from_secs(15);
/// Most envelopes in one request.
pub(crate) const MAX_ENVELOPES: usize = 64;
/// Bytes of the first request, before anything is known of the link: about
/// 8 s at 64 kbit/s.
const FIRST_BYTES: usize = 64 * 1024;
/// Smallest batch in bytes (a request always carries at least one envelope).
const MIN_BYTES: usize = 16 * 1024;
/// Largest batch in bytes (the relay's default body limit is larger).
const MAX_BYTES: usize = 4 * 1024 * 1024;

/// Sizes upload requests by the link's measured speed.
#[derive(Debug, Clone)]
pub(crate) struct UploadPacer {
    budget: usize,
}

impl UploadPacer {
    pub(crate) fn new() -> Self {
        UploadPacer {
            budget: FIRST_BYTES,
        }
    }

    /// Whether a batch of `count` envelopes and `bytes` should be sent now.
    pub(crate) fn full(&self, count: usize, bytes: usize) -> bool {
        count >= MAX_ENVELOPES || bytes >= self.budget
    }

    /// Learns from a request that carried `bytes` and was answered after
    /// `elapsed` (which includes a round trip: the estimate errs low).
    /// Sends one batch of `bytes` through `relay`, telling `progress` when
    /// admission work starts ("preparing to send"), and learns the link's
    /// speed from it only if it was only sending: seconds of work are not
    /// the link's.
    pub(crate) async fn send(
        &mut self,
        relay: &crate::relay::RelayClient,
        envs: &[amparo_protocol::envelope::Envelope],
        bytes: usize,
        progress: &mut dyn FnMut(crate::survivor::SyncProgress),
    ) -> crate::Result<Vec<amparo_protocol::wire::EnvelopeResult>> {
        let sent_at = std::time::Instant::now();
        let mut worked = false;
        let results = relay
            .upload_with(envs, |effort| {
                worked = true;
                progress(crate::survivor::SyncProgress::Preparing {
                    effort,
                    envelopes: envs.len(),
                })
            })
            .await?;
        if !worked {
            self.observe(bytes, sent_at.elapsed());
        }
        Ok(results)
    }

    pub(crate) fn observe(&mut self, bytes: usize, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(0.001);
        let rate = bytes as f64 / secs;
        let next = rate * TARGET.as_secs_f64();
        self.budget = if next.is_finite() {
            (next as usize).clamp(MIN_BYTES, MAX_BYTES)
        } else {
            MAX_BYTES
        };
    }

    #[cfg(test)]
    fn budget(&self) -> usize {
        self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_follow_the_link() {
        let mut p = UploadPacer::new();
        assert!(!p.full(1, 4158));
        assert!(p.full(16, 16 * 4158));
        assert!(p.full(MAX_ENVELOPES, 100));
        // 64 kbit/s: 64 KiB took 8.8 s with its answer -> about 15 s of sending.
        p.observe(64 * 1024, Duration::from_millis(8800));
        assert!((100_000..120_000).contains(&p.budget()), "{}", p.budget());
        // A fast link: the relay's limit.
        p.observe(64 * 1024, Duration::from_millis(5));
        assert_eq!(p.budget(), MAX_BYTES);
        // A very slow one: never below one small batch.
        p.observe(4158, Duration::from_secs(60));
        assert_eq!(p.budget(), MIN_BYTES);
        p.observe(0, Duration::ZERO);
        assert_eq!(p.budget(), MIN_BYTES);
    }
}
