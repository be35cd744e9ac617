//! Storage behind one trait, with an implementation per backend: SQLite
//! embedded (the default) and PostgreSQL (several stateless relays on one
//! database). The HTTP layer is generic over [`Store`] and never knows which
//! it has; `server/tests/store_conformance.rs` runs one suite on both.

use std::future::Future;

use crate::quota::{Full, Quota, Usage};

pub mod field_queue;
pub mod postgres;
pub mod sqlite;

pub use postgres::PgStore;
pub use sqlite::{OpenChecks, SqliteStore};

/// A storage failure. Its message is for operators' logs; it never holds
/// envelope bytes, and HTTP clients only ever see "storage unavailable".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed at start.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A value out of the range the schema stores.
    #[error("value out of range: {0}")]
    Range(&'static str),
    /// The store holds a newer directory than the caps offered were built
    /// from ([`crate::quota::DirectorySeen`]); nothing was written. The
    /// group committer learns it and tries again.
    #[error("the caps were built from an older directory than the one held")]
    StaleDirectory,
}

/// An envelope to store.
#[derive(Debug, Clone)]
pub struct NewEnvelope {
    /// Its id (SHA-256 prefix of the bytes).
    pub id: [u8; 16],
    /// Recipient mailbox.
    pub mailbox: [u8; 12],
    /// Arrival hour (hours since the epoch).
    pub arrival_hour: u32,
    /// The envelope.
    pub bytes: Vec<u8>,
}

/// What the store holds for one inserted envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The arrival hour on record (of the first copy).
    pub arrival_hour: u32,
    /// Whether this insert stored it (false for a copy already held).
    pub fresh: bool,
}

/// What became of one envelope offered under a [`Quota`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Stored now or held already: the relay signs a receipt for it.
    Stored(Stored),
    /// Not stored: over a cap. Nothing was written for it.
    Full(Full),
}

/// An envelope read from a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnvelope {
    /// Position in the mailbox; fetch with `after` = the last cursor seen.
    pub cursor: u64,
    /// The envelope.
    pub bytes: Vec<u8>,
}

/// Counts for /metrics (never per mailbox).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Envelopes waiting in mailboxes.
    pub envelopes: u64,
    /// Their total size.
    pub bytes: u64,
}

/// What a relay stores.
pub trait Store: Clone + Send + Sync + 'static {
    /// Stores envelopes in one transaction, idempotently: an id already
    /// present (even acknowledged) is not stored again. Returns, for each
    /// input in order, the arrival hour on record for its id — which the relay
    /// signs into the receipt, so a resent copy gets the same receipt — and
    /// whether this call stored it; or, for an envelope not held yet that
    /// would pass a cap of `quota`, [`Placed::Full`], and nothing is stored
    /// for it. New envelopes are admitted one after the other in the order
    /// they are inserted (by id), each against the usage left by the ones
    /// before, and the usage on record changes in the same transaction.
    /// Returns only after the transaction is durable. If the store holds a
    /// newer directory than `quota` was built from, nothing is written and
    /// the answer is [`StoreError::StaleDirectory`].
    fn insert_within(
        &self,
        batch: &[NewEnvelope],
        quota: &Quota,
    ) -> impl Future<Output = Result<Vec<Placed>, StoreError>> + Send;

    /// [`Store::insert_within`] without any cap.
    fn insert_envelopes(
        &self,
        batch: &[NewEnvelope],
    ) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send {
        async move {
            self.insert_within(batch, &Quota::unlimited())
                .await?
                .into_iter()
                .map(|p| match p {
                    Placed::Stored(s) => Ok(s),
                    Placed::Full(_) => Err(StoreError::Range("over a cap with no cap")),
                })
                .collect()
        }
    }

    /// Up to `limit` unacknowledged envelopes of `mailbox` with cursor > `after`, in cursor order.
    fn fetch(
        &self,
        mailbox: &[u8; 12],
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<StoredEnvelope>, StoreError>> + Send;

    /// Deletes the bodies of the given envelopes of `mailbox`; returns how
    /// many were deleted. Ids of other mailboxes are ignored.
    fn ack(
        &self,
        mailbox: &[u8; 12],
        ids: &[[u8; 16]],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes every envelope (and tombstone) that arrived before `before_hour`.
    fn expire(&self, before_hour: u32) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The current signed directory and its version.
    fn directory(&self) -> impl Future<Output = Result<Option<(u64, Vec<u8>)>, StoreError>> + Send;

    /// Stores a directory if its version is higher than the current one;
    /// returns whether it was stored. Atomic across relays.
    fn put_directory(
        &self,
        version: u64,
        bytes: &[u8],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records a request's replay id; returns false if it was already seen.
    fn remember_request(
        &self,
        replay_id: &[u8; 16],
        expires_hour: u32,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets replay ids that expired before `before_hour`.
    fn forget_requests(
        &self,
        before_hour: u32,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Counts for metrics: what waits in all mailboxes (kept as envelopes
    /// come and go, not counted per call).
    fn counts(&self) -> impl Future<Output = Result<StoreCounts, StoreError>> + Send;

    /// What waits in one mailbox, as the caps see it.
    fn mailbox_usage(
        &self,
        mailbox: &[u8; 12],
    ) -> impl Future<Output = Result<Usage, StoreError>> + Send;

    /// Bytes free inside the database's files, which new envelopes reuse
    /// before the files grow (counted as free disk by the watermark).
    fn reusable_bytes(&self) -> u64 {
        0
    }
}

pub(crate) fn to_i64(v: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Range(what))
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn hour_from_db(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}
