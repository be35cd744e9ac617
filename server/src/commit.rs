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

use std::sync::Arc;

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

struct Job {
    batch: Vec<NewEnvelope>,
    reply: oneshot::Sender<Result<Vec<Placed>, CommitFailed>>,
}

/// The writer could not make the batch durable; nothing was acknowledged.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("storage is unavailable")]
pub struct CommitFailed;

/// Handle on the writer task.
#[derive(Clone)]
pub struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the writer on the current tokio runtime, storing within
    /// `quotas`.
    pub fn start<S: Store>(store: S, quotas: Arc<Quotas>) -> Committer {
        let (jobs, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(writer(store, quotas, rx));
        Committer { jobs }
    }

    /// How full the queue to the writer is (0 empty, 1 full): a flood's
    /// pressure on the relay, read by admission (PROTOCOL.md §14).
    pub fn queue_fill(&self) -> f64 {
        let max = self.jobs.max_capacity().max(1);
        let free = self.jobs.capacity().min(max);
        (max - free) as f64 / max as f64
    }

    /// Stores `batch` durably within the caps; returns what became of each
    /// envelope, in order.
    pub async fn insert(&self, batch: Vec<NewEnvelope>) -> Result<Vec<Placed>, CommitFailed> {
        self.submit(batch).await?.durable().await
    }

    /// Hands `batch` to the writer and returns at once: the caller may work
    /// while the transaction commits, then waits with [`Pending::durable`].
    pub async fn submit(&self, batch: Vec<NewEnvelope>) -> Result<Pending, CommitFailed> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { batch, reply })
            .await
            .map_err(|_| CommitFailed)?;
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

async fn writer<S: Store>(store: S, quotas: Arc<Quotas>, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut rows = first.batch.len();
        let mut jobs = vec![first];
        while rows < MAX_ROWS_PER_COMMIT {
            match rx.try_recv() {
                Ok(job) => {
                    rows += job.batch.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
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
