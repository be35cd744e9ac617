//! PostgreSQL, for when one machine is outgrown: several relay processes share
//! one database and keep no state of their own that others need. Every write
//! is one statement or one transaction whose conflicts the database resolves
//! (`ON CONFLICT`), so two relays accepting the same envelope at once store it
//! once and sign the same receipt.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool, Row};

use super::{
    Admission, BoundedPage, NewEnvelope, PageRoom, Placed, Store, StoreCounts, StoreError,
    StoredEnvelope, hour_from_db, to_i64, to_u64,
};
use crate::quota::{Quota, RelayUsage, Usage};

mod timers;

/// Advisory lock key serialising envelope inserts ("AMPARO01" in ASCII).
const INSERT_LOCK: i64 = 0x414d_5041_524f_3031;

/// Hours are `int4` columns.
fn hour(h: u32) -> Result<i32, StoreError> {
    i32::try_from(h).map_err(|_| StoreError::Range("hour"))
}

/// Key epochs and days are `int4` columns too.
fn int4(v: u32, what: &'static str) -> Result<i32, StoreError> {
    i32::try_from(v).map_err(|_| StoreError::Range(what))
}

fn usage_row(r: &sqlx::postgres::PgRow, from: usize) -> Result<Usage, StoreError> {
    Ok(Usage {
        envelopes: to_u64(r.try_get(from)?),
        bytes: to_u64(r.try_get(from + 1)?),
    })
}

async fn relay_usage(conn: &mut PgConnection) -> Result<RelayUsage, StoreError> {
    let sql = "SELECT envelopes, bytes, acknowledged, timers, held_bytes FROM relay_usage WHERE singleton = 1";
    match sqlx::query(sql).fetch_optional(&mut *conn).await? {
        Some(r) => Ok(RelayUsage {
            waiting: usage_row(&r, 0)?,
            acknowledged: to_u64(r.try_get(2)?),
            timers: to_u64(r.try_get(3)?),
            held_bytes: to_u64(r.try_get(4)?),
        }),
        None => Ok(RelayUsage::default()),
    }
}

/// Takes `released` (per mailbox: envelopes and bytes that no longer
/// wait, in the rows `r(mailbox, n, b)`) off the usage on record, forgets
/// mailboxes where nothing waits any more, and adds `ack_delta(d)` to the
/// relay's acknowledged rows (negative when expiry deleted them): the tail
/// of one statement, after a `WITH` that defines `r` and `ack_delta`.
/// Every usage writer has locked the relay's usage row first, so nothing
/// else changes these rows meanwhile, and the mailbox rows deleted and
/// those updated are told apart by the same condition.
const RELEASE_TAIL: &str = "
     gone AS (
       DELETE FROM mailbox_usage u USING r
       WHERE u.mailbox = r.mailbox AND u.envelopes <= r.n
     ),
     kept AS (
       UPDATE mailbox_usage u
       SET envelopes = u.envelopes - r.n, bytes = greatest(u.bytes - r.b, 0)
       FROM r WHERE u.mailbox = r.mailbox AND u.envelopes > r.n
     )
     UPDATE relay_usage SET
       envelopes = greatest(envelopes - (SELECT coalesce(sum(n), 0) FROM r), 0),
       bytes = greatest(bytes - (SELECT coalesce(sum(b), 0) FROM r), 0),
       acknowledged = greatest(acknowledged + (SELECT d FROM ack_delta), 0)
     WHERE singleton = 1";

/// Takes `released` off the usage on record and counts `acknowledged` new
/// acknowledged rows, in one statement whatever the number of mailboxes
/// (the relay's usage row is locked by the caller, and every relay's
/// uploads wait on it).
async fn release_usage(
    conn: &mut PgConnection,
    released: HashMap<[u8; 12], Usage>,
    acknowledged: u64,
) -> Result<(), StoreError> {
    let rows: Vec<([u8; 12], Usage)> = released
        .into_iter()
        .filter(|(_, u)| u.envelopes > 0)
        .collect();
    if rows.is_empty() && acknowledged == 0 {
        return Ok(());
    }
    let mut mailboxes = Vec::with_capacity(rows.len());
    let mut counts = Vec::with_capacity(rows.len());
    let mut sizes = Vec::with_capacity(rows.len());
    for (m, u) in &rows {
        mailboxes.push(m.to_vec());
        counts.push(to_i64(u.envelopes, "usage")?);
        sizes.push(to_i64(u.bytes, "usage")?);
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH r AS (
           SELECT * FROM UNNEST($1::bytea[], $2::int8[], $3::int8[]) AS r(mailbox, n, b)
         ),
         ack_delta AS (SELECT $4::int8 AS d),{RELEASE_TAIL}"
    )))
    .bind(&mailboxes)
    .bind(&counts)
    .bind(&sizes)
    .bind(to_i64(acknowledged, "usage")?)
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
    ids: &[[u8; 16]],
) -> Result<HashMap<[u8; 16], u32>, StoreError> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let ids: Vec<&[u8]> = ids.iter().map(|i| &i[..]).collect();
    for r in sqlx::query("SELECT id, arrival_hour FROM envelopes WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
    {
        let id: Vec<u8> = r.try_get(0)?;
        let hour: i32 = r.try_get(1)?;
        if let Ok(id) = <[u8; 16]>::try_from(id) {
            out.insert(id, hour_from_db(i64::from(hour)));
        }
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
        let mut global = RelayUsage::default();
        let mut directory = None;
        for r in sqlx::query(
            "SELECT 0, mailbox, envelopes, bytes, 0::int8, 0::int8 FROM mailbox_usage WHERE mailbox = ANY($1)
             UNION ALL SELECT 1, NULL, envelopes, bytes, acknowledged, held_bytes FROM relay_usage WHERE singleton = 1
             UNION ALL SELECT 2, NULL, version, 0, 0, 0 FROM directory WHERE singleton = 1",
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
                1 => {
                    global = RelayUsage {
                        waiting: usage_row(&r, 2)?,
                        acknowledged: to_u64(r.try_get(4)?),
                        held_bytes: to_u64(r.try_get(5)?),
                        // Only holds count timers against their cap.
                        timers: 0,
                    }
                }
                _ => directory = Some(to_u64(r.try_get(2)?)),
            }
        }
        if quota.directory.is_behind(directory) {
            return Err(StoreError::StaleDirectory);
        }
        let admission = match Admission::whole(quota, global, &usage, &order) {
            Some(whole) => whole,
            None => {
                let ids: Vec<[u8; 16]> = order.iter().map(|e| e.id).collect();
                let held = held_hours(&mut tx, &ids).await?;
                Admission::near_cap(quota, global, &usage, &order, held)
            }
        };
        let admitted = &admission.admitted;
        let mut fresh = HashSet::with_capacity(admitted.len());
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
                if let Ok(id) = <[u8; 16]>::try_from(id) {
                    fresh.insert(id);
                }
            }
        }
        // Admitted but not inserted: held already (another relay may have
        // stored it since the group was read). Their hours on record.
        let late = held_hours(&mut tx, &admission.late(&fresh)).await?;
        tx.commit().await?;
        admission.placed(batch, fresh, late)
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

    async fn fetch_within(
        &self,
        mailbox: &[u8; 12],
        after: u64,
        room: PageRoom,
    ) -> Result<BoundedPage, StoreError> {
        let after = to_i64(after, "cursor")?;
        // The sizes first (the length of a stored value is read without
        // fetching it), then the bodies that go in the page.
        let sizes: Vec<(i64, i32)> = sqlx::query_as(
            "SELECT seq, length(body) FROM envelopes WHERE mailbox = $1 AND seq > $2 AND body IS NOT NULL ORDER BY seq LIMIT $3",
        )
        .bind(&mailbox[..])
        .bind(after)
        .bind(room.probe())
        .fetch_all(&self.pool)
        .await?;
        let lens: Vec<u64> = sizes
            .iter()
            .map(|(_, len)| to_u64(i64::from(*len)))
            .collect();
        let (take, end) = room.take(&lens);
        let Some(&(last, _)) = sizes[..take].last() else {
            return Ok(BoundedPage {
                envelopes: Vec::new(),
                end,
            });
        };
        let rows = sqlx::query(
            "SELECT seq, body FROM envelopes WHERE mailbox = $1 AND seq > $2 AND seq <= $3 AND body IS NOT NULL ORDER BY seq",
        )
        .bind(&mailbox[..])
        .bind(after)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        let envelopes = rows
            .into_iter()
            .map(|r| {
                Ok(StoredEnvelope {
                    cursor: to_u64(r.try_get(0)?),
                    bytes: r.try_get(1)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(BoundedPage { envelopes, end })
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
        // Each envelope acknowledged stays as an acknowledged row.
        release_usage(
            &mut tx,
            HashMap::from([(
                *mailbox,
                Usage {
                    envelopes: n,
                    bytes,
                },
            )]),
            n,
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn expire(&self, before_hour: u32) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_usage(&mut tx).await?;
        // One statement: the rows, and the usage they held, summed in the
        // database (expiring a million rows sends none of them here).
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "WITH expired AS (
               DELETE FROM envelopes WHERE arrival_hour < $1
               RETURNING mailbox, length(body)::int8 AS len
             ),
             r AS (
               SELECT mailbox, count(*) AS n, sum(len)::int8 AS b FROM expired
               WHERE len IS NOT NULL GROUP BY mailbox
             ),
             ack_delta AS (
               SELECT -count(*) AS d FROM expired WHERE len IS NULL
             ),{RELEASE_TAIL}
             RETURNING (SELECT count(*) FROM expired)"
        )))
        .bind(hour(before_hour)?)
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or(0);
        tx.commit().await?;
        Ok(to_u64(n))
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

    async fn token_key(&self, epoch: u32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT sealed FROM token_keys WHERE epoch = $1")
                .bind(int4(epoch, "key epoch")?)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn put_token_key(&self, epoch: u32, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        // Two statements, not one: an insert that conflicts with a key
        // another relay committed after this statement began does nothing,
        // and a read in the same statement (same snapshot) would not see
        // that key. The insert waits for a concurrent one to commit or
        // roll back, so once it returns a key is on record, and the read
        // after it (a new snapshot) finds it.
        sqlx::query(
            "INSERT INTO token_keys (epoch, sealed) VALUES ($1, $2) ON CONFLICT (epoch) DO NOTHING",
        )
        .bind(int4(epoch, "key epoch")?)
        .bind(sealed)
        .execute(&self.pool)
        .await?;
        self.token_key(epoch)
            .await?
            .ok_or(StoreError::Range("token key vanished after its insert"))
    }

    async fn spend_token(&self, nullifier: &[u8; 16], key_epoch: u32) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO spent_tokens (nullifier, key_epoch) VALUES ($1, $2) ON CONFLICT (nullifier) DO NOTHING",
        )
        .bind(&nullifier[..])
        .bind(int4(key_epoch, "key epoch")?)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn unspend_token(&self, nullifier: &[u8; 16]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM spent_tokens WHERE nullifier = $1")
            .bind(&nullifier[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn forget_spent_tokens(&self, before_epoch: u32) -> Result<u64, StoreError> {
        // Compared as int8: a bound past the int4 range forgets every row.
        Ok(
            sqlx::query("DELETE FROM spent_tokens WHERE key_epoch < $1::int8")
                .bind(i64::from(before_epoch))
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn count_issuance(
        &self,
        issuer: &[u8; 16],
        day: u32,
        n: u32,
        limit: u32,
    ) -> Result<bool, StoreError> {
        // More than the limit on its own: refused before any row is made.
        if n > limit {
            return Ok(false);
        }
        // One statement, atomic across relays: a concurrent insert of the
        // same (issuer, day) waits for this one, then adds to what it
        // committed, and the condition is checked against that count.
        let done = sqlx::query(
            "INSERT INTO token_issuance (issuer, day, count) VALUES ($1, $2, $3)
             ON CONFLICT (issuer, day) DO UPDATE SET count = token_issuance.count + EXCLUDED.count
             WHERE token_issuance.count + EXCLUDED.count <= $4",
        )
        .bind(&issuer[..])
        .bind(int4(day, "day")?)
        .bind(i64::from(n))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn forget_issuance(&self, before_day: u32) -> Result<u64, StoreError> {
        // Compared as int8: a bound past the int4 range forgets every row.
        Ok(
            sqlx::query("DELETE FROM token_issuance WHERE day < $1::int8")
                .bind(i64::from(before_day))
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn hold(
        &self,
        hold: &super::timers::NewHold,
        quota: &Quota,
        limits: &super::timers::TimerLimits,
    ) -> Result<super::timers::HoldPlaced, StoreError> {
        self.hold_timer(hold, quota, limits).await
    }

    async fn check_in(
        &self,
        check_in: &amparo_protocol::timer::CheckIn,
        now_hour: u32,
    ) -> Result<super::timers::CheckedIn, StoreError> {
        self.check_in_timer(check_in, now_hour).await
    }

    async fn release_due(&self, now_hour: u32, limit: u32) -> Result<u64, StoreError> {
        self.release_due_timers(now_hour, limit).await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let u = relay_usage(&mut conn).await?;
        Ok(StoreCounts {
            envelopes: u.waiting.envelopes,
            bytes: u.waiting.bytes,
            acknowledged: u.acknowledged,
            timers: u.timers,
            held_bytes: u.held_bytes,
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
