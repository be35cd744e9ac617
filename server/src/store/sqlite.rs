//! SQLite, embedded: the relay's default. WAL mode with `synchronous=FULL`,
//! so a committed envelope survives a crash and a power cut; the group
//! committer keeps that from costing one fsync per envelope.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::watch;

use super::{
    NewEnvelope, Store, StoreCounts, StoreError, Stored, StoredEnvelope, hour_from_db, to_i64,
    to_u64,
};

/// Rows per INSERT statement: 4 parameters each, well under the 32 766
/// parameters the bundled SQLite allows. A group commit of up to this many
/// envelopes is a single statement.
const ROWS_PER_STATEMENT: usize = 1024;
/// Inserts of up to this many rows keep their prepared statement.
const PREPARED_UP_TO: usize = 64;
/// How often the background checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL pages (4 KiB each) past which the writer checkpoints by itself: a
/// backstop in case the background checkpointer falls behind, far above
/// what it lets accumulate between two of its passes.
const WRITER_CHECKPOINT_PAGES: &str = "16384";

/// Rows of `(cursor, body)` as a mailbox page.
pub(super) fn page_rows(
    rows: Vec<sqlx::sqlite::SqliteRow>,
) -> Result<Vec<StoredEnvelope>, StoreError> {
    rows.into_iter()
        .map(|r| {
            Ok(StoredEnvelope {
                cursor: to_u64(r.try_get(0)?),
                bytes: r.try_get(1)?,
            })
        })
        .collect()
}

/// The SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    /// One connection of its own for the group committer's inserts. SQLite
    /// has one writer at a time anyway; a connection that always writes
    /// keeps its page cache (a connection that sees another one's commit
    /// drops its whole cache and reads the pages again), and the committer
    /// never waits for the pool's health check.
    writer: SqlitePool,
    /// Stops the background checkpointer when the last clone is dropped.
    _checkpointer: Arc<watch::Sender<()>>,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`
    /// (`sqlite://path` or `sqlite::memory:`).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(options.pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES))
            .await?;
        let (stop, stopped) = watch::channel(());
        tokio::spawn(checkpointer(pool.clone(), stopped));
        Ok(SqliteStore {
            pool,
            writer,
            _checkpointer: Arc::new(stop),
        })
    }

    /// Opens `relay.sqlite` inside `dir`.
    pub async fn open_in(dir: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new().filename(dir.join("relay.sqlite"));
        let url = options.get_filename().to_string_lossy().into_owned();
        Self::open(&format!("sqlite://{url}")).await
    }
}

/// Copies committed WAL pages into the database file from a pool
/// connection, beside the writer.
///
/// Left to SQLite, the commit that takes the WAL past its threshold (1000
/// pages) runs the checkpoint itself: it copies the pages and fsyncs the
/// database file while every request in that group commit waits. A PASSIVE
/// checkpoint from another connection never blocks the writer (WAL mode lets
/// them run side by side), so group commits only pay for their own fsync.
/// Durability does not depend on it: a commit is durable once the WAL is
/// synced, and a checkpoint killed halfway is redone from the WAL at the
/// next open.
async fn checkpointer(pool: SqlitePool, mut stopped: watch::Receiver<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Said once when checkpoints start failing and once when they work
    // again, not ten times a second (a full disk would flood the log).
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // Every store handle is gone: let the pool close.
            _ = stopped.changed() => return,
        }
        if pool.is_closed() {
            return;
        }
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "WAL checkpoints are failing; the writer's own checkpoint stays as a backstop");
            }
            Ok(_) if failing => {
                failing = false;
                tracing::info!("WAL checkpoints work again");
            }
            _ => {}
        }
    }
}

/// Inserts `rows` (sorted, distinct ids), adding the ids it stored to `fresh`.
async fn insert_rows(
    conn: &mut SqliteConnection,
    rows: &[&NewEnvelope],
    fresh: &mut HashSet<[u8; 16]>,
) -> Result<(), StoreError> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT OR IGNORE INTO envelopes (id, mailbox, arrival_hour, body) ",
    );
    q.push_values(rows, |mut b, e| {
        b.push_bind(&e.id[..])
            .push_bind(&e.mailbox[..])
            .push_bind(i64::from(e.arrival_hour))
            .push_bind(&e.bytes[..]);
    });
    q.push(" RETURNING id");
    // Small groups come in every size up to a few dozen: keep those
    // statements prepared; large ones are rare enough to prepare each time.
    let persistent = rows.len() <= PREPARED_UP_TO;
    for row in q
        .build()
        .persistent(persistent)
        .fetch_all(&mut *conn)
        .await?
    {
        let id: &[u8] = row.try_get(0)?;
        if let Ok(id) = <[u8; 16]>::try_from(id) {
            fresh.insert(id);
        }
    }
    Ok(())
}

impl Store for SqliteStore {
    async fn insert_envelopes(&self, batch: &[NewEnvelope]) -> Result<Vec<Stored>, StoreError> {
        // Insert in id order: neighbouring cursors then say nothing about
        // which envelopes came in the same request. Multi-row statements keep
        // a group commit to one statement (a few for very large groups);
        // RETURNING names the rows this call stored (OR IGNORE skips ids
        // already held).
        let mut order: Vec<&NewEnvelope> = batch.iter().collect();
        order.sort_by_key(|e| e.id);
        order.dedup_by_key(|e| e.id);
        let mut conn = self.writer.acquire().await?;
        let mut fresh = HashSet::with_capacity(order.len());
        if order.len() <= ROWS_PER_STATEMENT {
            // One statement in autocommit mode is its own transaction:
            // SQLite commits it (and, with synchronous=FULL, syncs the WAL)
            // before the statement reports done, so this returns only once
            // the rows are durable — in one round trip to the connection's
            // thread instead of three (BEGIN, INSERT, COMMIT).
            insert_rows(&mut conn, &order, &mut fresh).await?;
        } else {
            let mut tx = conn.begin().await?;
            for rows in order.chunks(ROWS_PER_STATEMENT) {
                insert_rows(&mut tx, rows, &mut fresh).await?;
            }
            tx.commit().await?;
        }
        // Copies of envelopes already held get the arrival hour on record.
        let held: Vec<&[u8; 16]> = order
            .iter()
            .map(|e| &e.id)
            .filter(|id| !fresh.contains(*id))
            .collect();
        let mut on_record = HashMap::with_capacity(held.len());
        for ids in held.chunks(ROWS_PER_STATEMENT) {
            let mut q =
                QueryBuilder::<Sqlite>::new("SELECT id, arrival_hour FROM envelopes WHERE id IN (");
            let mut list = q.separated(", ");
            for id in ids {
                list.push_bind(&id[..]);
            }
            q.push(")");
            for row in q.build().fetch_all(&mut *conn).await? {
                let id: Vec<u8> = row.try_get(0)?;
                on_record.insert(id, hour_from_db(row.try_get(1)?));
            }
        }
        let mut out = Vec::with_capacity(batch.len());
        for e in batch {
            // Only the first copy of an id in this batch counts as stored;
            // later copies in the same batch share its arrival hour.
            if fresh.remove(&e.id) {
                on_record.insert(e.id.to_vec(), e.arrival_hour);
                out.push(Stored {
                    arrival_hour: e.arrival_hour,
                    fresh: true,
                });
                continue;
            }
            let arrival_hour = on_record
                .get(&e.id[..])
                .copied()
                .ok_or(StoreError::Range("envelope vanished during insert"))?;
            out.push(Stored {
                arrival_hour,
                fresh: false,
            });
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
            "SELECT seq, body FROM envelopes WHERE mailbox = ? AND seq > ? AND body IS NOT NULL ORDER BY seq LIMIT ?",
        )
        .bind(&mailbox[..])
        .bind(to_i64(after, "cursor")?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        page_rows(rows)
    }

    async fn ack(&self, mailbox: &[u8; 12], ids: &[[u8; 16]]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for id in ids {
            n += sqlx::query("UPDATE envelopes SET body = NULL, mailbox = zeroblob(12) WHERE id = ? AND mailbox = ? AND body IS NOT NULL")
                .bind(&id[..])
                .bind(&mailbox[..])
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn expire(&self, before_hour: u32) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM envelopes WHERE arrival_hour < ?")
            .bind(i64::from(before_hour))
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
            "INSERT INTO directory (singleton, version, body) VALUES (1, ?, ?)
             ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, body = excluded.body
             WHERE excluded.version > directory.version",
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
            "INSERT OR IGNORE INTO seen_requests (replay_id, expires_hour) VALUES (?, ?)",
        )
        .bind(&replay_id[..])
        .bind(i64::from(expires_hour))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn forget_requests(&self, before_hour: u32) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM seen_requests WHERE expires_hour < ?")
                .bind(i64::from(before_hour))
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        let r = sqlx::query(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM envelopes WHERE body IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(StoreCounts {
            envelopes: to_u64(r.try_get(0)?),
            bytes: to_u64(r.try_get(1)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(n: u32) -> NewEnvelope {
        let mut bytes = vec![0u8; 2048];
        bytes[..4].copy_from_slice(&n.to_be_bytes());
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&n.to_be_bytes());
        NewEnvelope {
            id,
            mailbox: [7; 12],
            arrival_hour: 500_000,
            bytes,
        }
    }

    /// Polls `done` for up to ten seconds.
    async fn eventually(mut done: impl FnMut() -> bool) -> bool {
        for _ in 0..100 {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        done()
    }

    #[tokio::test]
    async fn commits_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).await.unwrap();
        let threshold: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(threshold.to_string(), WRITER_CHECKPOINT_PAGES);
        // About 1 500 pages of WAL: past SQLite's default threshold, far
        // below the writer's own.
        for chunk in 0..30u32 {
            let batch: Vec<NewEnvelope> = (chunk * 100..chunk * 100 + 100).map(envelope).collect();
            store.insert_envelopes(&batch).await.unwrap();
        }
        let file = dir.path().join("relay.sqlite");
        let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(
            eventually(|| size() > 3000 * 2048).await,
            "the database file holds {} bytes: the WAL was not checkpointed",
            size()
        );
    }

    #[tokio::test]
    async fn the_checkpointer_lets_the_database_close_with_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).await.unwrap();
        store.insert_envelopes(&[envelope(1)]).await.unwrap();
        let wal = dir.path().join("relay.sqlite-wal");
        assert!(wal.exists());
        drop(store);
        // The last connection to close removes the WAL; a checkpointer that
        // kept a pool handle would keep it open for ever.
        assert!(
            eventually(|| !wal.exists()).await,
            "the WAL is still open after the store was dropped"
        );
    }
}
