//! PostgreSQL, for when one machine is outgrown: several relay processes share
//! one database and keep no state of their own that others need. Every write
//! is one statement or one transaction whose conflicts the database resolves
//! (`ON CONFLICT`), so two relays accepting the same envelope at once store it
//! once and sign the same receipt.

use std::time::Duration;

use std::collections::HashMap;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool, Row};

use super::{
    NewEnvelope, Placed, Store, StoreCounts, StoreError, Stored, StoredEnvelope, hour_from_db,
    to_i64, to_u64,
};
use crate::quota::{Full, Ledger, Quota, Usage};

/// Advisory lock key serialising envelope inserts ("AMPARO01" in ASCII).
const INSERT_LOCK: i64 = 0x414d_5041_524f_3031;

/// Hours are `int4` columns.
fn hour(h: u32) -> Result<i32, StoreError> {
    i32::try_from(h).map_err(|_| StoreError::Range("hour"))
}

fn usage_row(r: &sqlx::postgres::PgRow, from: usize) -> Result<Usage, StoreError> {
    Ok(Usage {
        envelopes: to_u64(r.try_get(from)?),
        bytes: to_u64(r.try_get(from + 1)?),
    })
}

async fn relay_usage(conn: &mut PgConnection) -> Result<Usage, StoreError> {
    let sql = "SELECT envelopes, bytes FROM relay_usage WHERE singleton = 1";
    match sqlx::query(sql).fetch_optional(&mut *conn).await? {
        Some(r) => usage_row(&r, 0),
        None => Ok(Usage::default()),
    }
}

/// Takes `released` off the usage on record (mailboxes in sorted order,
/// then the relay's row: the order inserts lock them in too), forgetting
/// mailboxes where nothing waits any more.
async fn release_usage(
    conn: &mut PgConnection,
    released: HashMap<[u8; 12], Usage>,
) -> Result<(), StoreError> {
    let mut rows: Vec<([u8; 12], Usage)> = released
        .into_iter()
        .filter(|(_, u)| u.envelopes > 0)
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    rows.sort_unstable_by_key(|(m, _)| *m);
    let mut total = Usage::default();
    let mut mailboxes = Vec::with_capacity(rows.len());
    let mut counts = Vec::with_capacity(rows.len());
    let mut sizes = Vec::with_capacity(rows.len());
    for (m, u) in &rows {
        total.envelopes += u.envelopes;
        total.bytes += u.bytes;
        mailboxes.push(m.to_vec());
        counts.push(to_i64(u.envelopes, "usage")?);
        sizes.push(to_i64(u.bytes, "usage")?);
    }
    // Row by row in mailbox order (a fixed lock order across relays).
    for ((m, n), b) in mailboxes.iter().zip(&counts).zip(&sizes) {
        sqlx::query(
            "UPDATE mailbox_usage SET envelopes = greatest(envelopes - $1, 0), bytes = greatest(bytes - $2, 0) WHERE mailbox = $3",
        )
        .bind(n)
        .bind(b)
        .bind(m)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DELETE FROM mailbox_usage WHERE mailbox = ANY($1) AND envelopes <= 0")
        .bind(&mailboxes)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE relay_usage SET envelopes = greatest(envelopes - $1, 0), bytes = greatest(bytes - $2, 0) WHERE singleton = 1",
    )
    .bind(to_i64(total.envelopes, "usage")?)
    .bind(to_i64(total.bytes, "usage")?)
    .execute(&mut *conn)
    .await?;
    Ok(())
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

/// Opens an inserting transaction in one round trip: the insert lock, then
/// the relay's usage row. Every transaction that changes usage (inserts
/// here; acknowledgements and expiry in [`lock_usage`]) locks that row
/// first, so they queue on it instead of deadlocking over mailbox rows, and
/// the usage an insert reads after it cannot change until it commits.
///
/// The insert lock, one inserting transaction at a time across all relays:
/// cursors (BIGSERIAL) are taken at insert but become visible at commit, so
/// without it a reader could see cursor 120 before 110 commits and page
/// past 110. Group commit keeps the cost to one lock per batch.
const BEGIN_INSERT: &str = "BEGIN; SELECT pg_advisory_xact_lock(4705505427156054065); \
     SELECT 1 FROM relay_usage WHERE singleton = 1 FOR UPDATE";

// BEGIN_INSERT spells INSERT_LOCK out (a simple query takes no parameters).
const _: () = assert!(INSERT_LOCK == 4_705_505_427_156_054_065);

/// Locks the relay's usage row first in a transaction that will release
/// usage (see [`BEGIN_INSERT`]).
async fn lock_usage(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM relay_usage WHERE singleton = 1 FOR UPDATE")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The arrival hours on record of those of `ids` the relays hold.
async fn held_hours(
    conn: &mut PgConnection,
    ids: &[Vec<u8>],
) -> Result<HashMap<Vec<u8>, u32>, StoreError> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for r in sqlx::query("SELECT id, arrival_hour FROM envelopes WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?
    {
        let id: Vec<u8> = r.try_get(0)?;
        let hour: i32 = r.try_get(1)?;
        out.insert(id, hour_from_db(i64::from(hour)));
    }
    Ok(out)
}

impl Store for PgStore {
    async fn insert_within(
        &self,
        batch: &[NewEnvelope],
        quota: &Quota,
    ) -> Result<Vec<Placed>, StoreError> {
        // Sorted by id: a fixed lock order, so concurrent relays inserting
        // overlapping batches cannot deadlock; and cursors say nothing about
        // which envelopes came in one request.
        let mut order: Vec<&NewEnvelope> = batch.iter().collect();
        order.sort_by_key(|e| e.id);
        order.dedup_by_key(|e| e.id);
        let mut mailboxes: Vec<Vec<u8>> = order.iter().map(|e| e.mailbox.to_vec()).collect();
        mailboxes.sort_unstable();
        mailboxes.dedup();
        let mut tx = self.pool.begin_with(BEGIN_INSERT).await?;
        // One statement reads what the caps need: the relay's usage, the
        // group's mailboxes' and the directory's version. Under the locks
        // taken at BEGIN only this transaction can raise them, and
        // acknowledgements or expiry cannot lower them before it commits.
        let mut usage = HashMap::with_capacity(mailboxes.len());
        let mut global = Usage::default();
        let mut directory = None;
        for r in sqlx::query(
            "SELECT 0, mailbox, envelopes, bytes FROM mailbox_usage WHERE mailbox = ANY($1)
             UNION ALL SELECT 1, NULL, envelopes, bytes FROM relay_usage WHERE singleton = 1
             UNION ALL SELECT 2, NULL, version, 0 FROM directory WHERE singleton = 1",
        )
        .bind(&mailboxes)
        .fetch_all(&mut *tx)
        .await?
        {
            let kind: i32 = r.try_get(0)?;
            match kind {
                0 => {
                    let m: Vec<u8> = r.try_get(1)?;
                    if let Ok(m) = <[u8; 12]>::try_from(m) {
                        usage.insert(m, usage_row(&r, 2)?);
                    }
                }
                1 => global = usage_row(&r, 2)?,
                _ => directory = Some(to_u64(r.try_get(2)?)),
            }
        }
        if quota.directory.is_behind(directory) {
            return Err(StoreError::StaleDirectory);
        }
        // A group that cannot reach a cap even if none of it is held yet is
        // inserted as it is; otherwise copies of envelopes already held are
        // found first (their receipts whatever the caps) and the new ones
        // admitted one after the other. Counting a held copy as new can
        // only refuse more, never admit more.
        let fits_whole = {
            let mut ledger = Ledger::new(quota, global, &usage);
            order
                .iter()
                .all(|e| ledger.admit(&e.mailbox, e.bytes.len() as u64).is_ok())
        };
        let mut on_record: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut full: HashMap<[u8; 16], Full> = HashMap::new();
        let admitted: Vec<&NewEnvelope> = if fits_whole {
            order
        } else {
            let ids: Vec<Vec<u8>> = order.iter().map(|e| e.id.to_vec()).collect();
            on_record = held_hours(&mut tx, &ids).await?;
            let mut ledger = Ledger::new(quota, global, &usage);
            let mut admitted = Vec::with_capacity(order.len());
            for e in order
                .into_iter()
                .filter(|e| !on_record.contains_key(&e.id[..]))
            {
                match ledger.admit(&e.mailbox, e.bytes.len() as u64) {
                    Ok(()) => admitted.push(e),
                    Err(f) => {
                        full.insert(e.id, f);
                    }
                }
            }
            admitted
        };
        let mut fresh = std::collections::HashSet::with_capacity(admitted.len());
        if !admitted.is_empty() {
            let ids: Vec<Vec<u8>> = admitted.iter().map(|e| e.id.to_vec()).collect();
            let boxes: Vec<Vec<u8>> = admitted.iter().map(|e| e.mailbox.to_vec()).collect();
            let hours: Vec<i32> = admitted
                .iter()
                .map(|e| hour(e.arrival_hour))
                .collect::<Result<_, _>>()?;
            let bodies: Vec<&[u8]> = admitted.iter().map(|e| e.bytes.as_slice()).collect();
            // The rows and, from what was really inserted, the usage: one
            // statement. Mailbox rows are written in mailbox order, after
            // the relay's row locked at BEGIN.
            for r in sqlx::query(
                "WITH ins AS (
                   INSERT INTO envelopes (id, mailbox, arrival_hour, body)
                   SELECT * FROM UNNEST($1::bytea[], $2::bytea[], $3::int4[], $4::bytea[])
                   ON CONFLICT (id) DO NOTHING
                   RETURNING id, mailbox, length(body)::int8 AS len
                 ), per AS (
                   SELECT mailbox, count(*) AS n, sum(len)::int8 AS b FROM ins GROUP BY mailbox
                 ), mailboxes AS (
                   INSERT INTO mailbox_usage (mailbox, envelopes, bytes)
                   SELECT mailbox, n, b FROM per ORDER BY mailbox
                   ON CONFLICT (mailbox) DO UPDATE SET
                     envelopes = mailbox_usage.envelopes + EXCLUDED.envelopes,
                     bytes = mailbox_usage.bytes + EXCLUDED.bytes
                 ), relay AS (
                   UPDATE relay_usage SET
                     envelopes = envelopes + (SELECT count(*) FROM ins),
                     bytes = bytes + (SELECT coalesce(sum(len), 0) FROM ins)
                   WHERE singleton = 1
                 )
                 SELECT id FROM ins",
            )
            .bind(&ids)
            .bind(&boxes)
            .bind(&hours)
            .bind(&bodies)
            .fetch_all(&mut *tx)
            .await?
            {
                let id: Vec<u8> = r.try_get(0)?;
                fresh.insert(id);
            }
        }
        // Admitted but not inserted: held already (another relay may have
        // stored it since the group was read). Their hours on record.
        let late: Vec<Vec<u8>> = admitted
            .iter()
            .map(|e| e.id.to_vec())
            .filter(|id| !fresh.contains(id))
            .collect();
        on_record.extend(held_hours(&mut tx, &late).await?);
        tx.commit().await?;
        let mut out = Vec::with_capacity(batch.len());
        for e in batch {
            if let Some(f) = full.get(&e.id) {
                out.push(Placed::Full(*f));
                continue;
            }
            // Only the first copy of an id in this batch counts as stored.
            if fresh.remove(&e.id[..]) {
                on_record.insert(e.id.to_vec(), e.arrival_hour);
                out.push(Placed::Stored(Stored {
                    arrival_hour: e.arrival_hour,
                    fresh: true,
                }));
                continue;
            }
            let arrival_hour = on_record
                .get(&e.id[..])
                .copied()
                .ok_or(StoreError::Range("envelope vanished during insert"))?;
            out.push(Placed::Stored(Stored {
                arrival_hour,
                fresh: false,
            }));
        }
        Ok(out)
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
        let mut tx = self.pool.begin().await?;
        lock_usage(&mut tx).await?;
        // The old sizes, read under the rows' locks: two relays
        // acknowledging the same envelope give its bytes back once.
        let sizes: Vec<Option<i32>> = sqlx::query_scalar(
            "WITH old AS (
               SELECT id, length(body) AS len FROM envelopes
               WHERE id = ANY($1) AND mailbox = $2 AND body IS NOT NULL
               ORDER BY id FOR UPDATE
             )
             UPDATE envelopes SET body = NULL, mailbox = decode('000000000000000000000000', 'hex')
             FROM old WHERE envelopes.id = old.id AND envelopes.body IS NOT NULL
             RETURNING old.len",
        )
        .bind(&ids)
        .bind(&mailbox[..])
        .fetch_all(&mut *tx)
        .await?;
        let n = sizes.len() as u64;
        let bytes = sizes
            .iter()
            .map(|l| to_u64(i64::from(l.unwrap_or(0))))
            .sum();
        release_usage(
            &mut tx,
            HashMap::from([(
                *mailbox,
                Usage {
                    envelopes: n,
                    bytes,
                },
            )]),
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn expire(&self, before_hour: u32) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_usage(&mut tx).await?;
        let rows = sqlx::query(
            "DELETE FROM envelopes WHERE arrival_hour < $1 RETURNING mailbox, length(body)",
        )
        .bind(hour(before_hour)?)
        .fetch_all(&mut *tx)
        .await?;
        let n = rows.len() as u64;
        let mut released: HashMap<[u8; 12], Usage> = HashMap::new();
        for r in rows {
            let len: Option<i32> = r.try_get(1)?;
            let m: Vec<u8> = r.try_get(0)?;
            if let (Some(len), Ok(m)) = (len, <[u8; 12]>::try_from(m)) {
                let u = released.entry(m).or_default();
                u.envelopes += 1;
                u.bytes += to_u64(i64::from(len));
            }
        }
        release_usage(&mut tx, released).await?;
        tx.commit().await?;
        Ok(n)
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
        let mut conn = self.pool.acquire().await?;
        let u = relay_usage(&mut conn).await?;
        Ok(StoreCounts {
            envelopes: u.envelopes,
            bytes: u.bytes,
        })
    }

    async fn mailbox_usage(&self, mailbox: &[u8; 12]) -> Result<Usage, StoreError> {
        match sqlx::query("SELECT envelopes, bytes FROM mailbox_usage WHERE mailbox = $1")
            .bind(&mailbox[..])
            .fetch_optional(&self.pool)
            .await?
        {
            Some(r) => usage_row(&r, 0),
            None => Ok(Usage::default()),
        }
    }
}
