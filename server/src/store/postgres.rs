//! PostgreSQL, for when one machine is outgrown: several relay processes share
//! one database and keep no state of their own that others need. Every write
//! is one statement or one transaction whose conflicts the database resolves
//! (`ON CONFLICT`), so two relays accepting the same envelope at once store it
//! once and sign the same receipt.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};

use super::{
    NewEnvelope, Store, StoreCounts, StoreError, Stored, StoredEnvelope, hour_from_db, to_i64,
    to_u64,
};

/// Advisory lock key serialising envelope inserts ("AMPARO01" in ASCII).
const INSERT_LOCK: i64 = 0x414d_5041_524f_3031;

/// Hours are `int4` columns.
fn hour(h: u32) -> Result<i32, StoreError> {
    i32::try_from(h).map_err(|_| StoreError::Range("hour"))
}

/// The PostgreSQL store.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` and runs the migrations (sqlx takes an advisory lock,
    /// so relays starting together migrate once).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }
}

impl Store for PgStore {
    async fn insert_envelopes(&self, batch: &[NewEnvelope]) -> Result<Vec<Stored>, StoreError> {
        // Sorted by id: a fixed lock order, so concurrent relays inserting
        // overlapping batches cannot deadlock; and cursors say nothing about
        // which envelopes came in one request.
        let mut order: Vec<&NewEnvelope> = batch.iter().collect();
        order.sort_by_key(|e| e.id);
        order.dedup_by_key(|e| e.id);
        let ids: Vec<Vec<u8>> = order.iter().map(|e| e.id.to_vec()).collect();
        let mailboxes: Vec<Vec<u8>> = order.iter().map(|e| e.mailbox.to_vec()).collect();
        let hours: Vec<i32> = order
            .iter()
            .map(|e| hour(e.arrival_hour))
            .collect::<Result<_, _>>()?;
        let bodies: Vec<Vec<u8>> = order.iter().map(|e| e.bytes.clone()).collect();
        let mut tx = self.pool.begin().await?;
        // One inserting transaction at a time across all relays: cursors
        // (BIGSERIAL) are taken at insert but become visible at commit, so
        // without this a reader could see cursor 120 before 110 commits and
        // page past 110. Group commit keeps the cost to one lock per batch.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(INSERT_LOCK)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO envelopes (id, mailbox, arrival_hour, body)
             SELECT * FROM UNNEST($1::bytea[], $2::bytea[], $3::int4[], $4::bytea[])
             ON CONFLICT (id) DO NOTHING
             RETURNING id",
        )
        .bind(&ids)
        .bind(&mailboxes)
        .bind(&hours)
        .bind(&bodies)
        .fetch_all(&mut *tx)
        .await?;
        let mut fresh = std::collections::HashSet::with_capacity(inserted.len());
        for r in inserted {
            let id: Vec<u8> = r.try_get(0)?;
            fresh.insert(id);
        }
        let rows = sqlx::query("SELECT id, arrival_hour FROM envelopes WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut on_record = std::collections::HashMap::with_capacity(rows.len());
        for r in rows {
            let id: Vec<u8> = r.try_get(0)?;
            let hour: i32 = r.try_get(1)?;
            on_record.insert(id, hour_from_db(i64::from(hour)));
        }
        batch
            .iter()
            .map(|e| {
                let arrival_hour = on_record
                    .get(&e.id[..])
                    .copied()
                    .ok_or(StoreError::Range("envelope vanished during insert"))?;
                // Only the first copy of an id in this batch counts as stored.
                Ok(Stored {
                    arrival_hour,
                    fresh: fresh.remove(&e.id[..]),
                })
            })
            .collect()
    }

    async fn fetch(
        &self,
        mailbox: &[u8; 12],
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, body FROM envelopes WHERE mailbox = $1 AND seq > $2 AND body IS NOT NULL ORDER BY seq LIMIT $3",
        )
        .bind(&mailbox[..])
        .bind(to_i64(after, "cursor")?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StoredEnvelope {
                    cursor: to_u64(r.try_get(0)?),
                    bytes: r.try_get(1)?,
                })
            })
            .collect()
    }

    async fn ack(&self, mailbox: &[u8; 12], ids: &[[u8; 16]]) -> Result<u64, StoreError> {
        let ids: Vec<Vec<u8>> = ids.iter().map(|i| i.to_vec()).collect();
        Ok(
            sqlx::query("UPDATE envelopes SET body = NULL, mailbox = decode('000000000000000000000000', 'hex') WHERE id = ANY($1) AND mailbox = $2 AND body IS NOT NULL")
                .bind(&ids)
                .bind(&mailbox[..])
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn expire(&self, before_hour: u32) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM envelopes WHERE arrival_hour < $1")
            .bind(hour(before_hour)?)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn directory(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT version, body FROM directory WHERE singleton = 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((to_u64(r.try_get(0)?), r.try_get(1)?)))
            .transpose()
    }

    async fn put_directory(&self, version: u64, bytes: &[u8]) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO directory (singleton, version, body) VALUES (1, $1, $2)
             ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version, body = EXCLUDED.body
             WHERE EXCLUDED.version > directory.version",
        )
        .bind(to_i64(version, "directory version")?)
        .bind(bytes)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn remember_request(
        &self,
        replay_id: &[u8; 16],
        expires_hour: u32,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO seen_requests (replay_id, expires_hour) VALUES ($1, $2) ON CONFLICT (replay_id) DO NOTHING",
        )
        .bind(&replay_id[..])
        .bind(hour(expires_hour)?)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn forget_requests(&self, before_hour: u32) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM seen_requests WHERE expires_hour < $1")
                .bind(hour(before_hour)?)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        let r = sqlx::query(
            "SELECT count(*)::int8, coalesce(sum(length(body)), 0)::int8 FROM envelopes WHERE body IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(StoreCounts {
            envelopes: to_u64(r.try_get(0)?),
            bytes: to_u64(r.try_get(1)?),
        })
    }
}
