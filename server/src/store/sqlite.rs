//! SQLite, embedded: the relay's default. WAL mode with `synchronous=FULL`,
//! so a committed envelope survives a crash and a power cut; the group
//! committer keeps that from costing one fsync per envelope.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::watch;

use super::{
    NewEnvelope, Placed, Store, StoreCounts, StoreError, Stored, StoredEnvelope, hour_from_db,
    to_i64, to_u64,
};
use crate::quota::{Full, Ledger, Quota, Usage};

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
/// How often the background task gives free pages back to the filesystem.
const VACUUM_EVERY: Duration = Duration::from_secs(1);
/// Free pages kept inside the database file for the next inserts to reuse
/// (4 MiB of 4 KiB pages); only those beyond are given back.
const KEEP_FREE_PAGES: i64 = 1024;
/// Most pages given back per pass (16 MiB), so one pass holds the write
/// lock only briefly.
const VACUUM_PAGES_PER_PASS: i64 = 4096;

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
    /// Bytes of free pages inside the database file (read by the
    /// background task), which inserts reuse before the file grows.
    free_bytes: Arc<AtomicU64>,
    /// Where the database file is (`None` in memory).
    path: Option<std::path::PathBuf>,
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
        let path = Some(options.get_filename().to_path_buf())
            .filter(|p| !p.as_os_str().is_empty() && p.as_os_str() != ":memory:");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await?;
        // Pages freed by acknowledgements and expiry are reused by the next
        // inserts; those beyond a small reserve are given back to the
        // filesystem in the background (`incremental_vacuum`). Set before
        // the migrations create the tables of a new database.
        enable_incremental_vacuum(&pool).await?;
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
        let free_bytes = Arc::new(AtomicU64::new(0));
        tokio::spawn(checkpointer(pool.clone(), stopped.clone()));
        tokio::spawn(vacuumer(pool.clone(), free_bytes.clone(), stopped));
        Ok(SqliteStore {
            pool,
            writer,
            free_bytes,
            path,
            _checkpointer: Arc::new(stop),
        })
    }

    /// The database file, unless the database is in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// One pass of the background task: gives free pages beyond the reserve
    /// back to the filesystem (at most `max_pages`), and notes how many free
    /// pages are left. Returns the pages given back.
    pub async fn give_back_space(&self, max_pages: i64) -> Result<i64, StoreError> {
        give_back(&self.pool, &self.free_bytes, max_pages).await
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

/// Turns on `auto_vacuum = INCREMENTAL`. Relays whose database was created
/// before have `auto_vacuum = NONE`, which SQLite changes only with a
/// `VACUUM`: it rewrites the file once (it needs as much free disk as the
/// file takes, and holds the database for as long as it runs: seconds per
/// GiB). Done once, at start, before the relay serves anything; on a new,
/// empty database it costs nothing.
async fn enable_incremental_vacuum(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
        .fetch_one(&mut *conn)
        .await?;
    if mode != 2 {
        tracing::info!(
            "turning on incremental vacuum: rewriting the database once (VACUUM); this may take a while"
        );
        sqlx::query("PRAGMA auto_vacuum = INCREMENTAL")
            .execute(&mut *conn)
            .await?;
        sqlx::query("VACUUM").execute(&mut *conn).await?;
    }
    Ok(())
}

async fn give_back(
    pool: &SqlitePool,
    free_bytes: &AtomicU64,
    max_pages: i64,
) -> Result<i64, StoreError> {
    let mut conn = pool.acquire().await?;
    let page: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut *conn)
        .await?;
    let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
        .fetch_one(&mut *conn)
        .await?;
    let give = free.saturating_sub(KEEP_FREE_PAGES).min(max_pages);
    if give > 0 {
        // Each pass is its own short write transaction; it waits for the
        // group committer like any other writer (busy timeout).
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA incremental_vacuum({give})"
        )))
        .execute(&mut *conn)
        .await?;
    }
    let left = free.saturating_sub(give.max(0));
    free_bytes.store(to_u64(left.saturating_mul(page)), Ordering::Relaxed);
    Ok(give.max(0))
}

/// Gives free pages back to the filesystem in the background, a bounded
/// number per pass, keeping a small reserve for the next inserts. Under a
/// steady flood at the caps, inserts reuse the pages acknowledgements free
/// and the file stops growing; after it, the file shrinks back.
async fn vacuumer(pool: SqlitePool, free_bytes: Arc<AtomicU64>, mut stopped: watch::Receiver<()>) {
    let mut tick = tokio::time::interval(VACUUM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        if pool.is_closed() {
            return;
        }
        match give_back(&pool, &free_bytes, VACUUM_PAGES_PER_PASS).await {
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "giving free space back to the filesystem fails; will retry");
            }
            Ok(_) if failing => {
                failing = false;
                tracing::info!("free space is given back again");
            }
            _ => {}
        }
    }
}

/// The usage on record of `mailboxes` (sorted, distinct).
async fn read_usage(
    conn: &mut SqliteConnection,
    mailboxes: &[[u8; 12]],
) -> Result<HashMap<[u8; 12], Usage>, StoreError> {
    let mut out = HashMap::with_capacity(mailboxes.len());
    for chunk in mailboxes.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT mailbox, envelopes, bytes FROM mailbox_usage WHERE mailbox IN (",
        );
        let mut list = q.separated(", ");
        for m in chunk {
            list.push_bind(&m[..]);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *conn).await? {
            let m: Vec<u8> = row.try_get(0)?;
            if let Ok(m) = <[u8; 12]>::try_from(m) {
                out.insert(
                    m,
                    Usage {
                        envelopes: to_u64(row.try_get(1)?),
                        bytes: to_u64(row.try_get(2)?),
                    },
                );
            }
        }
    }
    Ok(out)
}

/// The usage of the whole relay on record.
async fn read_relay_usage(conn: &mut SqliteConnection) -> Result<Usage, StoreError> {
    let row = sqlx::query("SELECT envelopes, bytes FROM relay_usage WHERE singleton = 1")
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => Usage {
            envelopes: to_u64(r.try_get(0)?),
            bytes: to_u64(r.try_get(1)?),
        },
        None => Usage::default(),
    })
}

/// `items` as a JSON array of lowercase hex strings (a list bound as one
/// parameter).
fn hex_list<'a>(items: impl Iterator<Item = &'a [u8]>) -> String {
    use std::fmt::Write;
    let mut out = String::from("[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for b in item {
            let _ = write!(out, "{b:02x}");
        }
        out.push('"');
    }
    out.push(']');
    out
}

/// Adds `rows` (per mailbox) and `total` to the usage on record.
async fn add_usage(
    conn: &mut SqliteConnection,
    total: Usage,
    rows: &[([u8; 12], Usage)],
) -> Result<(), StoreError> {
    if total.envelopes == 0 {
        return Ok(());
    }
    use std::fmt::Write;
    let mut list = String::from("[");
    for (i, (m, u)) in rows.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str("[\"");
        for b in m {
            let _ = write!(list, "{b:02x}");
        }
        let _ = write!(list, "\",{},{}]", u.envelopes, u.bytes);
    }
    list.push(']');
    sqlx::query(
        "INSERT INTO mailbox_usage (mailbox, envelopes, bytes)
         SELECT unhex(value ->> 0), value ->> 1, value ->> 2 FROM json_each(?) WHERE true
         ON CONFLICT (mailbox) DO UPDATE SET envelopes = envelopes + excluded.envelopes, bytes = bytes + excluded.bytes",
    )
    .bind(list)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO relay_usage (singleton, envelopes, bytes) VALUES (1, ?, ?)
         ON CONFLICT (singleton) DO UPDATE SET envelopes = envelopes + excluded.envelopes, bytes = bytes + excluded.bytes",
    )
    .bind(to_i64(total.envelopes, "usage")?)
    .bind(to_i64(total.bytes, "usage")?)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes `released` (per mailbox) off the usage on record, forgetting
/// mailboxes where nothing waits any more.
pub(super) async fn release_usage(
    conn: &mut SqliteConnection,
    released: HashMap<[u8; 12], Usage>,
) -> Result<(), StoreError> {
    let mut rows: Vec<([u8; 12], Usage)> = released.into_iter().collect();
    rows.sort_unstable_by_key(|(m, _)| *m);
    let mut total = Usage::default();
    for (m, u) in rows {
        if u.envelopes == 0 {
            continue;
        }
        total.envelopes += u.envelopes;
        total.bytes += u.bytes;
        sqlx::query(
            "UPDATE mailbox_usage SET envelopes = max(envelopes - ?, 0), bytes = max(bytes - ?, 0) WHERE mailbox = ?",
        )
        .bind(to_i64(u.envelopes, "usage")?)
        .bind(to_i64(u.bytes, "usage")?)
        .bind(&m[..])
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM mailbox_usage WHERE mailbox = ? AND envelopes <= 0")
            .bind(&m[..])
            .execute(&mut *conn)
            .await?;
    }
    if total.envelopes > 0 {
        sqlx::query(
            "UPDATE relay_usage SET envelopes = max(envelopes - ?, 0), bytes = max(bytes - ?, 0) WHERE singleton = 1",
        )
        .bind(to_i64(total.envelopes, "usage")?)
        .bind(to_i64(total.bytes, "usage")?)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Deletes the bodies of the envelopes `ids` (of `mailbox` only, if given)
/// that still have one, zeroes their mailbox, and gives their bytes back to
/// the usage on record, in the caller's transaction. Returns how many.
///
/// The row is deleted and written again, small, at the same cursor, rather
/// than updated in place: SQLite rebalances a table's pages after a delete
/// but not after an update that shrinks a row, so updated rows would keep
/// a page of their own per few envelopes (each acknowledged 1 KiB envelope
/// kept about 1.3 KiB of file until its retention ended).
pub(super) async fn clear_bodies(
    conn: &mut SqliteConnection,
    ids: &[[u8; 16]],
    mailbox: Option<&[u8; 12]>,
) -> Result<u64, StoreError> {
    let mut released: HashMap<[u8; 12], Usage> = HashMap::new();
    let mut cleared = 0;
    for chunk in ids.chunks(ROWS_PER_STATEMENT / 4) {
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM envelopes WHERE body IS NOT NULL");
        if let Some(m) = mailbox {
            q.push(" AND mailbox = ").push_bind(&m[..]);
        }
        q.push(" AND id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(&id[..]);
        }
        q.push(") RETURNING seq, id, mailbox, arrival_hour, length(body)");
        let rows = q.build().fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            continue;
        }
        let mut kept: Vec<(i64, Vec<u8>, i64)> = Vec::with_capacity(rows.len());
        for row in rows {
            let m: Vec<u8> = row.try_get(2)?;
            let len: i64 = row.try_get(4)?;
            if let Ok(m) = <[u8; 12]>::try_from(m) {
                let u = released.entry(m).or_default();
                u.envelopes += 1;
                u.bytes += to_u64(len);
            }
            kept.push((row.try_get(0)?, row.try_get(1)?, row.try_get(3)?));
        }
        kept.sort_unstable_by_key(|(seq, _, _)| *seq);
        cleared += kept.len() as u64;
        let mut q =
            QueryBuilder::<Sqlite>::new("INSERT INTO envelopes (seq, id, mailbox, arrival_hour) ");
        q.push_values(&kept, |mut b, (seq, id, hour)| {
            b.push_bind(*seq)
                .push_bind(&id[..])
                .push("zeroblob(12)")
                .push_bind(*hour);
        });
        q.build().execute(&mut *conn).await?;
    }
    release_usage(conn, released).await?;
    Ok(cleared)
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
    async fn insert_within(
        &self,
        batch: &[NewEnvelope],
        quota: &Quota,
    ) -> Result<Vec<Placed>, StoreError> {
        // Insert in id order: neighbouring cursors then say nothing about
        // which envelopes came in the same request. Multi-row statements keep
        // a group commit to a few statements.
        let mut order: Vec<&NewEnvelope> = batch.iter().collect();
        order.sort_by_key(|e| e.id);
        order.dedup_by_key(|e| e.id);
        let mut conn = self.writer.acquire().await?;
        // IMMEDIATE: the write lock from the first read, so the usage read
        // here is still the usage when this transaction commits.
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        // Copies of envelopes already held get the arrival hour on record,
        // whatever the caps: they cost nothing.
        // One statement reads what the caps need: which ids are held, the
        // usage of the group's mailboxes (held or not: a few rows more
        // costs less than a round trip more) and of the relay.
        let mut mailboxes: Vec<[u8; 12]> = order.iter().map(|e| e.mailbox).collect();
        mailboxes.sort_unstable();
        mailboxes.dedup();
        // The lists travel as one JSON array each, so the statement's text
        // is the same for every group and stays prepared.
        let mut on_record: HashMap<[u8; 16], u32> = HashMap::new();
        let mut usage: HashMap<[u8; 12], Usage> = HashMap::new();
        let mut global = Usage::default();
        let rows = sqlx::query(
            "SELECT 2, x'', envelopes, bytes FROM relay_usage WHERE singleton = 1
             UNION ALL SELECT 0, id, arrival_hour, 0 FROM envelopes
               WHERE id IN (SELECT unhex(value) FROM json_each(?1))
             UNION ALL SELECT 1, mailbox, envelopes, bytes FROM mailbox_usage
               WHERE mailbox IN (SELECT unhex(value) FROM json_each(?2))",
        )
        .bind(hex_list(order.iter().map(|e| &e.id[..])))
        .bind(hex_list(mailboxes.iter().map(|m| &m[..])))
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let kind: i64 = row.try_get(0)?;
            let key: Vec<u8> = row.try_get(1)?;
            let a: i64 = row.try_get(2)?;
            let b: i64 = row.try_get(3)?;
            match kind {
                0 => {
                    if let Ok(id) = <[u8; 16]>::try_from(key) {
                        on_record.insert(id, hour_from_db(a));
                    }
                }
                1 => {
                    if let Ok(m) = <[u8; 12]>::try_from(key) {
                        usage.insert(
                            m,
                            Usage {
                                envelopes: to_u64(a),
                                bytes: to_u64(b),
                            },
                        );
                    }
                }
                _ => {
                    global = Usage {
                        envelopes: to_u64(a),
                        bytes: to_u64(b),
                    }
                }
            }
        }
        let new: Vec<&NewEnvelope> = order
            .into_iter()
            .filter(|e| !on_record.contains_key(&e.id))
            .collect();
        let mut ledger = Ledger::new(quota, global, usage);
        let mut full: HashMap<[u8; 16], Full> = HashMap::new();
        let mut admitted = Vec::with_capacity(new.len());
        for e in new {
            match ledger.admit(&e.mailbox, e.bytes.len() as u64) {
                Ok(()) => admitted.push(e),
                Err(f) => {
                    full.insert(e.id, f);
                }
            }
        }
        let mut fresh = HashSet::with_capacity(admitted.len());
        for rows in admitted.chunks(ROWS_PER_STATEMENT) {
            insert_rows(&mut tx, rows, &mut fresh).await?;
        }
        // Under the write lock nothing else inserts; should a row be there
        // after all, it is not counted, and its hour is read below.
        let mut late = Vec::new();
        for e in &admitted {
            if !fresh.contains(&e.id) {
                ledger.revert(&e.mailbox, e.bytes.len() as u64);
                late.push(e.id);
            }
        }
        for id in late {
            let hour: i64 = sqlx::query_scalar("SELECT arrival_hour FROM envelopes WHERE id = ?")
                .bind(&id[..])
                .fetch_one(&mut *tx)
                .await?;
            on_record.insert(id, hour_from_db(hour));
        }
        let (total, rows) = ledger.totals();
        add_usage(&mut tx, total, &rows).await?;
        // With synchronous=FULL the commit syncs the WAL: durable once it
        // returns.
        tx.commit().await?;
        let mut out = Vec::with_capacity(batch.len());
        for e in batch {
            if let Some(f) = full.get(&e.id) {
                out.push(Placed::Full(*f));
                continue;
            }
            // Only the first copy of an id in this batch counts as stored;
            // later copies in the same batch share its arrival hour.
            if fresh.remove(&e.id) {
                on_record.insert(e.id, e.arrival_hour);
                out.push(Placed::Stored(Stored {
                    arrival_hour: e.arrival_hour,
                    fresh: true,
                }));
                continue;
            }
            let arrival_hour = on_record
                .get(&e.id)
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let n = clear_bodies(&mut tx, ids, Some(mailbox)).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn expire(&self, before_hour: u32) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut released: HashMap<[u8; 12], Usage> = HashMap::new();
        for row in sqlx::query(
            "SELECT mailbox, count(*), sum(length(body)) FROM envelopes
             WHERE arrival_hour < ? AND body IS NOT NULL GROUP BY mailbox",
        )
        .bind(i64::from(before_hour))
        .fetch_all(&mut *tx)
        .await?
        {
            let m: Vec<u8> = row.try_get(0)?;
            if let Ok(m) = <[u8; 12]>::try_from(m) {
                released.insert(
                    m,
                    Usage {
                        envelopes: to_u64(row.try_get(1)?),
                        bytes: to_u64(row.try_get(2)?),
                    },
                );
            }
        }
        let n = sqlx::query("DELETE FROM envelopes WHERE arrival_hour < ?")
            .bind(i64::from(before_hour))
            .execute(&mut *tx)
            .await?
            .rows_affected();
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
        let mut conn = self.pool.acquire().await?;
        let u = read_relay_usage(&mut conn).await?;
        Ok(StoreCounts {
            envelopes: u.envelopes,
            bytes: u.bytes,
        })
    }

    async fn mailbox_usage(&self, mailbox: &[u8; 12]) -> Result<Usage, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(read_usage(&mut conn, &[*mailbox])
            .await?
            .remove(mailbox)
            .unwrap_or_default())
    }

    fn reusable_bytes(&self) -> u64 {
        self.free_bytes.load(Ordering::Relaxed)
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

    fn file_size(store: &SqliteStore) -> u64 {
        store
            .path()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Copies the WAL into the database file and empties it, so the file's
    /// size is the database's.
    async fn checkpoint(store: &SqliteStore) {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&store.pool)
            .await
            .unwrap();
    }

    /// Under a steady flood at the cap, the file stops growing: what an
    /// acknowledgement frees is reused by the next envelopes. After it,
    /// the free pages go back to the filesystem.
    #[tokio::test]
    async fn the_database_file_stays_within_a_bound_at_the_cap() {
        use crate::quota::{MailboxCap, Quota, StorageLimits};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).await.unwrap();
        const SIZE: usize = 4158;
        const CAP: u64 = 1000;
        let quota = Quota {
            limits: StorageLimits {
                focal: MailboxCap {
                    envelopes: CAP,
                    bytes: u64::MAX,
                },
                ..StorageLimits::UNLIMITED
            },
            focal_mailboxes: None,
            disk_room: None,
        };
        let cap_bytes = CAP * SIZE as u64;
        let mut n = 0u32;
        let mut sizes = Vec::new();
        for _round in 0..5 {
            // The flood: twice the cap, in batches as uploads come.
            let mut stored = Vec::new();
            for _ in 0..(2 * CAP / 250) {
                let batch: Vec<NewEnvelope> = (0..250)
                    .map(|_| {
                        n += 1;
                        let mut e = envelope(n);
                        e.bytes = vec![(n % 251) as u8; SIZE];
                        e.bytes[..4].copy_from_slice(&n.to_be_bytes());
                        e
                    })
                    .collect();
                let placed = store.insert_within(&batch, &quota).await.unwrap();
                for (e, p) in batch.iter().zip(placed) {
                    if matches!(p, Placed::Stored(s) if s.fresh) {
                        stored.push(e.id);
                    }
                }
            }
            assert_eq!(stored.len() as u64, CAP, "the cap holds");
            checkpoint(&store).await;
            sizes.push(file_size(&store));
            // The focal point fetches and acknowledges everything.
            for ids in stored.chunks(1000) {
                store.ack(&[7; 12], ids).await.unwrap();
            }
        }
        // Full file: the envelopes at the cap, their indexes, and the
        // acknowledged rows (id and hour) kept for deduplication.
        let bound = cap_bytes + cap_bytes / 4 + (1 << 20);
        assert!(
            sizes.iter().all(|&s| s <= bound),
            "the file grew past {bound} bytes: {sizes:?}"
        );
        let growth = sizes[4].saturating_sub(sizes[1]);
        assert!(
            growth < cap_bytes / 10,
            "the file keeps growing under the flood: {sizes:?}"
        );
        // After the flood, free pages beyond the reserve go back.
        while store.give_back_space(VACUUM_PAGES_PER_PASS).await.unwrap() > 0 {}
        checkpoint(&store).await;
        let after = file_size(&store);
        assert!(
            after < (KEEP_FREE_PAGES as u64) * 4096 + cap_bytes / 4,
            "{after} bytes after giving space back (was {sizes:?})"
        );
        assert!(store.reusable_bytes() <= KEEP_FREE_PAGES as u64 * 4096);
    }

    /// A database created before incremental vacuum (auto_vacuum NONE) is
    /// converted once at start, and keeps its data.
    #[tokio::test]
    async fn an_existing_database_is_converted_to_incremental_vacuum() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).await.unwrap();
        store
            .insert_envelopes(&(1..=50).map(envelope).collect::<Vec<_>>())
            .await
            .unwrap();
        let path = store.path().unwrap().to_path_buf();
        drop(store);
        // As an older relay left it.
        let url = format!("sqlite://{}", path.display());
        let mut raw = SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA auto_vacuum = NONE")
            .execute(&mut raw)
            .await
            .unwrap();
        sqlx::query("VACUUM").execute(&mut raw).await.unwrap();
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(&mut raw)
            .await
            .unwrap();
        assert_eq!(mode, 0);
        raw.close().await.unwrap();

        let store = SqliteStore::open_in(dir.path()).await.unwrap();
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, 2, "incremental");
        assert_eq!(store.fetch(&[7; 12], 0, 100).await.unwrap().len(), 50);
        assert_eq!(store.counts().await.unwrap().envelopes, 50);
        // Acknowledged pages now go back to the filesystem.
        let ids: Vec<[u8; 16]> = (1..=50).map(|n| envelope(n).id).collect();
        store.ack(&[7; 12], &ids).await.unwrap();
        checkpoint(&store).await;
        let before = file_size(&store);
        let freed: i64 = sqlx::query_scalar("PRAGMA freelist_count")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert!(freed > 0);
        sqlx::query("PRAGMA incremental_vacuum")
            .execute(&store.pool)
            .await
            .unwrap();
        checkpoint(&store).await;
        assert!(file_size(&store) < before, "the file shrinks");
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
