//! Group commit: concurrent uploads share one transaction.
//!
//! Every envelope is acknowledged only after the transaction holding it is
//! durable, which on SQLite with `synchronous=FULL` means an fsync. One
//! writer task takes whatever requests are waiting, stores all their
//! envelopes in a single transaction, and answers each request — so a burst
//! of phones syncing at once costs one fsync, not one each.
//!
//! The storage caps ([`crate::quota`]) are checked here, in that same
//! transaction, one envelope after the other in the order the group is
//! inserted: each against the usage left by those before it, so envelopes
//! arriving together cannot pass a cap together, and an envelope over a cap
//! is refused before anything of it is written.
//!
//! When more waits than one transaction takes, the writer serves the
//! requests that paid most first (PROTOCOL.md §14.1, as Tor's onion services
//! order their queue by effort): a token counts as the most, work by the
//! effort per envelope it claimed, nothing as nothing; equal ones in the
//! order they came. A flood that pays little then waits behind phones that
//! paid more, and reaches the caps after them.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::quota::Quotas;
use crate::store::{NewEnvelope, Placed, Store, StoreError};

/// Times a group is offered again after the store said the directory
/// changed under it (each time a newer directory was put meanwhile).
const DIRECTORY_RETRIES: usize = 4;

/// Stores one group within the caps as they are now: the disk, and the
/// directory the store holds. Should the store hold a newer directory than
/// the caps know (put through another relay on the same PostgreSQL
/// database, or mirrored by a field relay), the caps learn it first, so a
/// directory applies from the first group commit after it was stored.
async fn insert_current<S: Store>(
    store: &S,
    quotas: &Quotas,
    all: &[NewEnvelope],
) -> Result<Vec<Placed>, StoreError> {
    let mut tries = 0;
    loop {
        let quota = quotas.current(store.reusable_bytes());
        match store.insert_within(all, &quota).await {
            Err(StoreError::StaleDirectory) if tries < DIRECTORY_RETRIES => {
                tries += 1;
                quotas.refresh(store).await?;
            }
            done => return done,
        }
    }
}

/// Most envelopes one transaction takes.
const MAX_ROWS_PER_COMMIT: usize = 2048;
/// Requests that may wait for the writer before new ones are told to retry.
const QUEUE_DEPTH: usize = 1024;

/// What a request paid for admission, as the writer orders its queue.
pub type Priority = u32;
/// The priority of a request admitted by a token.
pub const TOKEN_PRIORITY: Priority = Priority::MAX;

struct Job {
    batch: Vec<NewEnvelope>,
    priority: Priority,
    reply: oneshot::Sender<Result<Vec<Placed>, CommitFailed>>,
}

/// A job waiting in the writer's heap: highest priority first, then first
/// come.
struct Queued {
    job: Job,
    seq: u64,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.job
            .priority
            .cmp(&other.job.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// The writer could not make the batch durable; nothing was acknowledged.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("storage is unavailable")]
pub struct CommitFailed;

/// Handle on the writer task.
#[derive(Clone)]
pub struct Committer {
    jobs: mpsc::Sender<Job>,
    /// Requests handed over and not yet taken into a transaction (in the
    /// channel or the writer's heap).
    waiting: Arc<AtomicUsize>,
}

impl Committer {
    /// Starts the writer on the current tokio runtime, storing within
    /// `quotas`.
    pub fn start<S: Store>(store: S, quotas: Arc<Quotas>) -> Committer {
        let (jobs, rx) = mpsc::channel(QUEUE_DEPTH);
        let waiting = Arc::new(AtomicUsize::new(0));
        tokio::spawn(writer(store, quotas, rx, waiting.clone()));
        Committer { jobs, waiting }
    }

    /// How full the queue to the writer is (0 empty, 1 full): a flood's
    /// pressure on the relay, read by admission (PROTOCOL.md §14).
    pub fn queue_fill(&self) -> f64 {
        let max = self.jobs.max_capacity().max(1);
        (self.waiting.load(Ordering::Relaxed).min(max)) as f64 / max as f64
    }

    /// Stores `batch` durably within the caps; returns what became of each
    /// envelope, in order.
    pub async fn insert(&self, batch: Vec<NewEnvelope>) -> Result<Vec<Placed>, CommitFailed> {
        self.submit(batch, 0).await?.durable().await
    }

    /// Hands `batch` to the writer and returns at once: the caller may work
    /// while the transaction commits, then waits with [`Pending::durable`].
    /// When more waits than one transaction takes, higher `priority` goes
    /// first.
    pub async fn submit(
        &self,
        batch: Vec<NewEnvelope>,
        priority: Priority,
    ) -> Result<Pending, CommitFailed> {
        let (reply, answer) = oneshot::channel();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if self
            .jobs
            .send(Job {
                batch,
                priority,
                reply,
            })
            .await
            .is_err()
        {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(CommitFailed);
        }
        Ok(Pending { answer })
    }
}

/// A batch handed to the writer, not known to be durable yet.
pub struct Pending {
    answer: oneshot::Receiver<Result<Vec<Placed>, CommitFailed>>,
}

impl Pending {
    /// Waits until the batch is durable; returns what became of each
    /// envelope, in order.
    pub async fn durable(self) -> Result<Vec<Placed>, CommitFailed> {
        self.answer.await.map_err(|_| CommitFailed)?
    }
}

async fn writer<S: Store>(
    store: S,
    quotas: Arc<Quotas>,
    mut rx: mpsc::Receiver<Job>,
    waiting: Arc<AtomicUsize>,
) {
    // Jobs taken off the channel, not yet in a transaction. Bounded: it takes
    // no more than QUEUE_DEPTH, so the channel fills behind it and senders
    // wait (and admission sees the queue full).
    let mut heap: BinaryHeap<Queued> = BinaryHeap::new();
    let mut seq: u64 = 0;
    loop {
        if heap.is_empty() {
            match rx.recv().await {
                Some(job) => {
                    heap.push(Queued { job, seq });
                    seq += 1;
                }
                None => return,
            }
        }
        while heap.len() < QUEUE_DEPTH {
            match rx.try_recv() {
                Ok(job) => {
                    heap.push(Queued { job, seq });
                    seq += 1;
                }
                Err(_) => break,
            }
        }
        // The group: the highest first, up to a transaction's rows (one job
        // at least, whatever its size).
        let mut rows = 0;
        let mut jobs = Vec::new();
        while let Some(top) = heap.peek() {
            if !jobs.is_empty() && rows + top.job.batch.len() > MAX_ROWS_PER_COMMIT {
                break;
            }
            let Some(q) = heap.pop() else { break };
            rows += q.job.batch.len();
            jobs.push(q.job);
        }
        waiting.fetch_sub(jobs.len(), Ordering::Relaxed);
        let mut all = Vec::with_capacity(rows);
        let mut sizes = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            sizes.push(job.batch.len());
            all.extend(job.batch);
            replies.push(job.reply);
        }
        match insert_current(&store, &quotas, &all).await {
            Ok(hours) => {
                let mut hours = hours.into_iter();
                for (reply, n) in replies.into_iter().zip(sizes) {
                    let _ = reply.send(Ok(hours.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, requests = replies.len(), "group commit failed; nothing acknowledged");
                for reply in replies {
                    let _ = reply.send(Err(CommitFailed));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(priority: Priority) -> Job {
        let (reply, _) = oneshot::channel();
        Job {
            batch: Vec::new(),
            priority,
            reply,
        }
    }

    #[test]
    fn the_heap_serves_the_highest_payment_first_then_first_come() {
        let mut heap = BinaryHeap::new();
        for (seq, p) in [0, 64, 0, TOKEN_PRIORITY, 64, 1].into_iter().enumerate() {
            heap.push(Queued {
                job: job(p),
                seq: seq as u64,
            });
        }
        let order: Vec<(Priority, u64)> =
            std::iter::from_fn(|| heap.pop().map(|q| (q.job.priority, q.seq))).collect();
        assert_eq!(
            order,
            vec![
                (TOKEN_PRIORITY, 3),
                (64, 1),
                (64, 4),
                (1, 5),
                (0, 0),
                (0, 2)
            ]
        );
    }
}
