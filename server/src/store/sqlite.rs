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
    Admission, BoundedPage, NewEnvelope, PageRoom, Placed, Store, StoreCounts, StoreError,
    StoredEnvelope, hour_from_db, to_i64, to_u64,
};
use crate::quota::{Quota, RelayUsage, Usage};

mod timers;

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
    /// The one connection every write goes through: the group committer's
    /// inserts, acknowledgements, expiry, the directory, replay records,
    /// admission tokens (keys, spent tokens, issuance counts), the field
    /// relay's queue and the vacuum. SQLite has one writer at a
    /// time anyway, and its busy handler is no queue: a second connection
    /// waiting for the write lock sleeps and retries, and loses to the
    /// committer, which takes the lock again the moment it lets go. Under a
    /// flood, a focal point's acknowledgements and signed-request records
    /// starved that way (2–3 syncs in 45 s). Through this pool (one
    /// connection, handed out first come, first served) an acknowledgement
    /// waits for at most the group commit in progress. A connection that
    /// always writes also keeps its page cache (one that sees another's
    /// commit drops its whole cache), and never waits for a health check.
    pub(super) writer: SqlitePool,
    /// Bytes of free pages inside the database file (read by the
    /// background task), which inserts reuse before the file grows.
    free_bytes: Arc<AtomicU64>,
    /// Where the database file is (`None` in memory).
    path: Option<std::path::PathBuf>,
    /// The usage the caps are checked against, in memory (see [`Book`]).
    pub(super) book: Arc<tokio::sync::Mutex<Book>>,
    /// Stops the background checkpointer when the last clone is dropped.
    _checkpointer: Arc<watch::Sender<()>>,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`
    /// (`sqlite://path` or `sqlite::memory:`), reading free disk where the
    /// file is and leaving the default minimum free
    /// ([`crate::quota::DEFAULT_MIN_FREE_DISK_BYTES`]) when it converts an
    /// older database (see [`SqliteStore::open_with`]).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &OpenChecks::default()).await
    }

    /// [`SqliteStore::open`] with the checks made before the one-time
    /// conversion of a database created by an older relay: it is rewritten
    /// (`VACUUM`) only when the disk has room for a copy of it and still
    /// `min_free_disk_bytes` after; otherwise it stays as it is (one
    /// warning), and the next start tries again.
    pub async fn open_with(url: &str, checks: &OpenChecks) -> Result<Self, StoreError> {
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
        let disk = match (&checks.disk, &path) {
            (Some(probe), _) => Some(probe.clone()),
            (None, Some(file)) => Some(crate::quota::statvfs_probe(database_dir(file))),
            (None, None) => None,
        };
        enable_incremental_vacuum(&pool, disk.as_ref(), checks.min_free_disk_bytes).await?;
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
        tokio::spawn(vacuumer(writer.clone(), free_bytes.clone(), stopped));
        Ok(SqliteStore {
            pool,
            writer,
            free_bytes,
            path,
            book: Arc::new(tokio::sync::Mutex::new(Book::default())),
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
        give_back(&self.writer, &self.free_bytes, max_pages).await
    }

    /// Opens `relay.sqlite` inside `dir`.
    pub async fn open_in(dir: &Path) -> Result<Self, StoreError> {
        Self::open_in_with(dir, &OpenChecks::default()).await
    }

    /// Opens `relay.sqlite` inside `dir` with `checks`.
    pub async fn open_in_with(dir: &Path, checks: &OpenChecks) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new().filename(dir.join("relay.sqlite"));
        let url = options.get_filename().to_string_lossy().into_owned();
        Self::open_with(&format!("sqlite://{url}"), checks).await
    }
}

/// What [`SqliteStore::open_with`] checks before rewriting an older
/// database at start.
#[derive(Clone)]
pub struct OpenChecks {
    /// Reads the free disk where the database is; `None`: `statvfs` on the
    /// database file's directory.
    pub disk: Option<crate::quota::DiskProbe>,
    /// Free disk the rewrite must leave (the relay's `min_free_disk_bytes`).
    pub min_free_disk_bytes: u64,
}

impl Default for OpenChecks {
    fn default() -> Self {
        OpenChecks {
            disk: None,
            min_free_disk_bytes: crate::quota::DEFAULT_MIN_FREE_DISK_BYTES,
        }
    }
}

impl std::fmt::Debug for OpenChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenChecks")
            .field("min_free_disk_bytes", &self.min_free_disk_bytes)
            .finish_non_exhaustive()
    }
}

/// The directory that holds the database file `file` (`.` for a bare name).
pub fn database_dir(file: &Path) -> std::path::PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
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
            // Every store handle is gone: close the pool. Closed here, not
            // only dropped: a dropped pool's connections close when its
            // background tasks let go of it, and one that lingers keeps
            // the WAL open (seen as a flaky test, about one run in eight).
            _ = stopped.changed() => {
                pool.close().await;
                return;
            }
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
/// `VACUUM`: it rewrites the file once (it needs about as much free disk as
/// the file takes, and holds the database for as long as it runs: seconds
/// per GiB). Done once, at start, before the relay serves anything; on a
/// new, empty database it costs nothing. On a disk too full for the copy
/// (free space, as `disk` reads it, below the file's size plus `min_free`)
/// the conversion is left for a later start: the relay works without it,
/// only its file does not shrink after acknowledgements.
async fn enable_incremental_vacuum(
    pool: &SqlitePool,
    disk: Option<&crate::quota::DiskProbe>,
    min_free: u64,
) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
        .fetch_one(&mut *conn)
        .await?;
    if mode == 2 {
        return Ok(());
    }
    sqlx::query("PRAGMA auto_vacuum = INCREMENTAL")
        .execute(&mut *conn)
        .await?;
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut *conn)
        .await?;
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master")
        .fetch_one(&mut *conn)
        .await?;
    if tables == 0 {
        // A new database: rewriting its page or two costs nothing.
        sqlx::query("VACUUM").execute(&mut *conn).await?;
        return Ok(());
    }
    let page: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut *conn)
        .await?;
    let size = to_u64(pages.saturating_mul(page));
    let free = disk.and_then(|probe| probe());
    if let Some(free) = free.filter(|free| *free < size.saturating_add(min_free)) {
        tracing::warn!(
            database_bytes = size,
            free_disk_bytes = free,
            min_free_disk_bytes = min_free,
            "not turning on incremental vacuum now: the disk has no room for the one-time rewrite (VACUUM) of the database; it stays as it is and the next start tries again"
        );
        return Ok(());
    }
    tracing::info!(
        "turning on incremental vacuum: rewriting the database once (VACUUM); this may take a while"
    );
    sqlx::query("VACUUM").execute(&mut *conn).await?;
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
            // Every store handle is gone: close the writer (see
            // `checkpointer`).
            _ = stopped.changed() => {
                pool.close().await;
                return;
            }
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

/// Most mailboxes whose usage the book keeps in memory. Past it the book
/// forgets all but the group at hand and reads the others again when they
/// come back: mailbox ids are the sender's choice, so a flood to random
/// mailboxes must not grow the relay's memory with them.
const BOOK_MAILBOXES: usize = 65_536;

/// What waits in the relay and in its mailboxes, kept in memory as the usage
/// tables say (the tables are kept by triggers, in the statements that add
/// and remove bodies: migration 0004).
///
/// SQLite has one writer, and every write that changes usage (group commit,
/// acknowledgement, expiry, forwarding) holds the book's lock from before
/// its transaction until the book matches what it committed. So whenever
/// the lock is free the book equals the tables (or says it does not:
/// `loaded` false), and the group committer checks the caps without
/// reading them. The lock is always taken before SQLite's write lock,
/// never while holding it.
///
/// A write marks the book unloaded before it starts ([`Book::begin_write`])
/// and [`Book::settle`] marks it loaded again once it has taken what the
/// write committed: a write whose future is dropped halfway (an
/// acknowledgement whose client went away after `COMMIT`) leaves the book
/// unloaded, read again from the tables at its next use, rather than
/// counting what is no longer there.
#[derive(Debug, Default)]
pub(super) struct Book {
    /// Whether `global` matches the tables; false at start, during a write
    /// and after one failed or was dropped (its outcome unknown): read
    /// again before use.
    loaded: bool,
    global: Usage,
    /// Acknowledged rows kept for deduplication (counted against the
    /// global cap at a fixed cost each).
    acknowledged: u64,
    /// Check-in timers on record and the bytes of the alerts they hold
    /// (counted against the global cap). Every timer write leaves the book
    /// unloaded, so these are read again after it.
    timers: u64,
    held_bytes: u64,
    /// The version of the directory the database holds (the group commit
    /// checks the caps were built from it).
    directory: Option<u64>,
    /// Usage of mailboxes read from the tables or written since (a mailbox
    /// known to hold nothing is kept as zero); others are read when needed.
    mailboxes: HashMap<[u8; 12], Usage>,
}

impl Book {
    /// Reads the relay's usage again if it may be stale.
    async fn ensure_loaded(&mut self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        if !self.loaded {
            let relay = read_relay_usage(conn).await?;
            self.global = relay.waiting;
            self.acknowledged = relay.acknowledged;
            self.timers = relay.timers;
            self.held_bytes = relay.held_bytes;
            let version: Option<i64> =
                sqlx::query_scalar("SELECT version FROM directory WHERE singleton = 1")
                    .fetch_optional(&mut *conn)
                    .await?;
            self.directory = version.map(to_u64);
            self.mailboxes.clear();
            self.loaded = true;
        }
        Ok(())
    }

    /// Makes sure the book knows `group` (sorted, distinct mailboxes),
    /// reading the ones it does not know in one statement.
    async fn learn(
        &mut self,
        conn: &mut SqliteConnection,
        group: &[[u8; 12]],
    ) -> Result<(), StoreError> {
        self.ensure_loaded(conn).await?;
        let unknown: Vec<&[u8; 12]> = group
            .iter()
            .filter(|m| !self.mailboxes.contains_key(*m))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        if self.mailboxes.len() + unknown.len() > BOOK_MAILBOXES {
            self.mailboxes.retain(|m, _| group.binary_search(m).is_ok());
        }
        for m in &unknown {
            self.mailboxes.insert(**m, Usage::default());
        }
        for row in sqlx::query(
            "SELECT mailbox, envelopes, bytes FROM mailbox_usage
             WHERE mailbox IN (SELECT unhex(value) FROM json_each(?))",
        )
        .bind(hex_list(unknown.iter().map(|m| &m[..])))
        .fetch_all(&mut *conn)
        .await?
        {
            let m: Vec<u8> = row.try_get(0)?;
            if let Ok(m) = <[u8; 12]>::try_from(m) {
                self.mailboxes.insert(
                    m,
                    Usage {
                        envelopes: to_u64(row.try_get(1)?),
                        bytes: to_u64(row.try_get(2)?),
                    },
                );
            }
        }
        Ok(())
    }

    /// Counts an envelope of `len` bytes stored for `mailbox`.
    fn add(&mut self, mailbox: &[u8; 12], len: u64) {
        let add = |u: &mut Usage| {
            u.envelopes = u.envelopes.saturating_add(1);
            u.bytes = u.bytes.saturating_add(len);
        };
        add(&mut self.global);
        if let Some(u) = self.mailboxes.get_mut(mailbox) {
            add(u);
        }
    }

    /// The relay's usage, as the global cap counts it.
    fn relay(&self) -> RelayUsage {
        RelayUsage {
            waiting: self.global,
            acknowledged: self.acknowledged,
            timers: self.timers,
            held_bytes: self.held_bytes,
        }
    }

    /// Takes what a committed acknowledgement or forward released off the
    /// book; each envelope released stays as an acknowledged row.
    fn release(&mut self, released: &HashMap<[u8; 12], Usage>) {
        for (m, r) in released {
            self.acknowledged = self.acknowledged.saturating_add(r.envelopes);
            let sub = |u: &mut Usage| {
                u.envelopes = u.envelopes.saturating_sub(r.envelopes);
                u.bytes = u.bytes.saturating_sub(r.bytes);
            };
            sub(&mut self.global);
            if let Some(u) = self.mailboxes.get_mut(m) {
                sub(u);
            }
        }
    }

    /// Marks the book unloaded before a write under its lock; returns
    /// whether it was loaded, for [`Book::settle`].
    pub(super) fn begin_write(&mut self) -> bool {
        std::mem::replace(&mut self.loaded, false)
    }

    /// Settles a write made under the book's lock, begun with
    /// [`Book::begin_write`] (which returned `was_loaded`): on success the
    /// book takes off what it released and is as loaded as before; on
    /// failure it stays unloaded and is read again from the tables before
    /// its next use (the write may or may not have committed).
    pub(super) fn settle<T>(
        &mut self,
        done: Result<(T, HashMap<[u8; 12], Usage>), StoreError>,
        was_loaded: bool,
    ) -> Result<T, StoreError> {
        let (value, released) = done?;
        self.release(&released);
        self.loaded = was_loaded;
        Ok(value)
    }
}

/// The usage of the whole relay on record.
pub(super) async fn read_relay_usage(
    conn: &mut SqliteConnection,
) -> Result<RelayUsage, StoreError> {
    let row = sqlx::query(
        "SELECT envelopes, bytes, acknowledged, timers, held_bytes FROM relay_usage WHERE singleton = 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => RelayUsage {
            waiting: Usage {
                envelopes: to_u64(r.try_get(0)?),
                bytes: to_u64(r.try_get(1)?),
            },
            acknowledged: to_u64(r.try_get(2)?),
            timers: to_u64(r.try_get(3)?),
            held_bytes: to_u64(r.try_get(4)?),
        },
        None => RelayUsage::default(),
    })
}

/// `items` as a JSON array of lowercase hex strings (a list bound as one
/// parameter, so the statement's text is the same whatever its length and
/// stays prepared).
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

/// The arrival hours on record of those of `ids` the relay holds
/// (acknowledged or not).
async fn held_hours(
    conn: &mut SqliteConnection,
    ids: &[[u8; 16]],
) -> Result<HashMap<[u8; 16], u32>, StoreError> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for row in sqlx::query(
        "SELECT id, arrival_hour FROM envelopes WHERE id IN (SELECT unhex(value) FROM json_each(?))",
    )
    .bind(hex_list(ids.iter().map(|i| &i[..])))
    .fetch_all(&mut *conn)
    .await?
    {
        let id: Vec<u8> = row.try_get(0)?;
        if let Ok(id) = <[u8; 16]>::try_from(id) {
            out.insert(id, hour_from_db(row.try_get(1)?));
        }
    }
    Ok(out)
}

/// Deletes the bodies of the envelopes `ids` (of `mailbox` only, if given)
/// that still have one and zeroes their mailbox, in the caller's
/// transaction (the usage tables follow by trigger). Returns how many, and
/// what they held per mailbox, for the [`Book`] once committed.
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
) -> Result<(u64, HashMap<[u8; 12], Usage>), StoreError> {
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
    Ok((cleared, released))
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

impl SqliteStore {
    /// What the group commit reads before it writes, under the book's lock
    /// (see [`Book`]): the usage of the group's mailboxes, whether the caps
    /// follow the directory held, and which envelopes it admits.
    async fn admit_group<'e>(
        &self,
        conn: &mut SqliteConnection,
        book: &mut Book,
        order: &[&'e NewEnvelope],
        quota: &Quota,
    ) -> Result<Admission<'e>, StoreError> {
        let mut mailboxes: Vec<[u8; 12]> = order.iter().map(|e| e.mailbox).collect();
        mailboxes.sort_unstable();
        mailboxes.dedup();
        book.learn(conn, &mailboxes).await?;
        if quota.directory.is_behind(book.directory) {
            return Err(StoreError::StaleDirectory);
        }
        Ok(
            match Admission::whole(quota, book.relay(), &book.mailboxes, order) {
                Some(whole) => whole,
                None => {
                    let ids: Vec<[u8; 16]> = order.iter().map(|e| e.id).collect();
                    let held = held_hours(conn, &ids).await?;
                    Admission::near_cap(quota, book.relay(), &book.mailboxes, order, held)
                }
            },
        )
    }

    /// The group commit's write: inserts what was admitted, counts what it
    /// stored in the book, and reads the hours on record of the admitted
    /// envelopes it did not store (held already).
    async fn write_group(
        conn: &mut SqliteConnection,
        book: &mut Book,
        admission: &Admission<'_>,
    ) -> Result<(HashSet<[u8; 16]>, HashMap<[u8; 16], u32>), StoreError> {
        let admitted = &admission.admitted;
        let mut fresh = HashSet::with_capacity(admitted.len());
        if admitted.len() <= ROWS_PER_STATEMENT {
            // One statement in autocommit mode is its own transaction:
            // SQLite commits it (and, with synchronous=FULL, syncs the WAL)
            // before the statement reports done, so this returns only once
            // the rows — and the usage its triggers wrote — are durable, in
            // one round trip to the connection's thread.
            if !admitted.is_empty() {
                insert_rows(conn, admitted, &mut fresh).await?;
            }
        } else {
            let mut tx = conn.begin().await?;
            for rows in admitted.chunks(ROWS_PER_STATEMENT) {
                insert_rows(&mut tx, rows, &mut fresh).await?;
            }
            tx.commit().await?;
        }
        for e in admitted {
            if fresh.contains(&e.id) {
                book.add(&e.mailbox, e.bytes.len() as u64);
            }
        }
        let late = held_hours(conn, &admission.late(&fresh)).await?;
        Ok((fresh, late))
    }

    /// Deletes the bodies of `ids` (of `mailbox` only, if given) in one
    /// transaction, under the book's lock; returns how many.
    pub(super) async fn clear_booked(
        &self,
        ids: &[[u8; 16]],
        mailbox: Option<&[u8; 12]>,
    ) -> Result<u64, StoreError> {
        let mut book = self.book.lock().await;
        let was_loaded = book.begin_write();
        let done = async {
            let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
            let cleared = clear_bodies(&mut tx, ids, mailbox).await?;
            tx.commit().await?;
            Ok(cleared)
        }
        .await;
        book.settle(done, was_loaded)
    }
}

impl SqliteStore {
    /// A page of `mailbox` in `table` (the envelopes, or a field relay's
    /// cache of upstream ones) within `room`: the sizes first (SQLite reads
    /// a blob's length without its overflow pages), then the bodies that
    /// go in the page.
    pub(super) async fn page_within(
        &self,
        table: &'static str,
        waiting: &'static str,
        mailbox: &[u8; 12],
        after: u64,
        room: PageRoom,
    ) -> Result<BoundedPage, StoreError> {
        let after = to_i64(after, "cursor")?;
        let sizes: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT seq, length(body) FROM {table} WHERE mailbox = ? AND seq > ? {waiting} ORDER BY seq LIMIT ?"
        )))
        .bind(&mailbox[..])
        .bind(after)
        .bind(room.probe())
        .fetch_all(&self.pool)
        .await?;
        let lens: Vec<u64> = sizes.iter().map(|(_, len)| to_u64(*len)).collect();
        let (take, end) = room.take(&lens);
        let Some(&(last, _)) = sizes[..take].last() else {
            return Ok(BoundedPage {
                envelopes: Vec::new(),
                end,
            });
        };
        // Envelopes acknowledged meanwhile are gone; none can come in
        // between (cursors only grow).
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT seq, body FROM {table} WHERE mailbox = ? AND seq > ? AND seq <= ? {waiting} ORDER BY seq"
        )))
        .bind(&mailbox[..])
        .bind(after)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        Ok(BoundedPage {
            envelopes: page_rows(rows)?,
            end,
        })
    }
}

impl Store for SqliteStore {
    async fn insert_within(
        &self,
        batch: &[NewEnvelope],
        quota: &Quota,
    ) -> Result<Vec<Placed>, StoreError> {
        // Insert in id order: neighbouring cursors then say nothing about
        // which envelopes came in the same request. Multi-row statements keep
        // a group commit to one statement (a few for very large groups).
        let mut order: Vec<&NewEnvelope> = batch.iter().collect();
        order.sort_by_key(|e| e.id);
        order.dedup_by_key(|e| e.id);
        let mut book = self.book.lock().await;
        let mut conn = self.writer.acquire().await?;
        let admission = match self.admit_group(&mut conn, &mut book, &order, quota).await {
            Ok(a) => a,
            // Nothing was written: the book is right.
            Err(StoreError::StaleDirectory) => return Err(StoreError::StaleDirectory),
            Err(e) => {
                book.loaded = false;
                return Err(e);
            }
        };
        let was_loaded = book.begin_write();
        let done = Self::write_group(&mut conn, &mut book, &admission).await;
        let (fresh, late) = book.settle(done.map(|d| (d, HashMap::new())), was_loaded)?;
        drop(book);
        admission.placed(batch, fresh, late)
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

    async fn fetch_within(
        &self,
        mailbox: &[u8; 12],
        after: u64,
        room: PageRoom,
    ) -> Result<BoundedPage, StoreError> {
        self.page_within("envelopes", "AND body IS NOT NULL", mailbox, after, room)
            .await
    }

    async fn ack(&self, mailbox: &[u8; 12], ids: &[[u8; 16]]) -> Result<u64, StoreError> {
        self.clear_booked(ids, Some(mailbox)).await
    }

    async fn expire(&self, before_hour: u32) -> Result<u64, StoreError> {
        let mut book = self.book.lock().await;
        // Expiry is rare and may touch any mailbox: the book is read again
        // from the tables (which the triggers kept) when next needed.
        book.begin_write();
        Ok(sqlx::query("DELETE FROM envelopes WHERE arrival_hour < ?")
            .bind(i64::from(before_hour))
            .execute(&self.writer)
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
        // Under the book's lock, so a group commit sees the new version
        // from the first one after it (see `Book::directory`).
        let mut book = self.book.lock().await;
        let was_loaded = book.begin_write();
        let done = sqlx::query(
            "INSERT INTO directory (singleton, version, body) VALUES (1, ?, ?)
             ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, body = excluded.body
             WHERE excluded.version > directory.version",
        )
        .bind(to_i64(version, "directory version")?)
        .bind(bytes)
        .execute(&self.writer)
        .await;
        let stored = book.settle(
            done.map(|d| (d.rows_affected() == 1, HashMap::new()))
                .map_err(StoreError::from),
            was_loaded,
        )?;
        if stored {
            book.directory = book.directory.max(Some(version));
        }
        Ok(stored)
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
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn forget_requests(&self, before_hour: u32) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM seen_requests WHERE expires_hour < ?")
                .bind(i64::from(before_hour))
                .execute(&self.writer)
                .await?
                .rows_affected(),
        )
    }

    async fn token_key(&self, epoch: u32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT sealed FROM token_keys WHERE epoch = ?")
                .bind(i64::from(epoch))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn put_token_key(&self, epoch: u32, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        // The insert through the writer (see `writer`); it is committed
        // when it returns, so the read after it sees the key on record.
        sqlx::query("INSERT OR IGNORE INTO token_keys (epoch, sealed) VALUES (?, ?)")
            .bind(i64::from(epoch))
            .bind(sealed)
            .execute(&self.writer)
            .await?;
        self.token_key(epoch)
            .await?
            .ok_or(StoreError::Range("token key vanished after its insert"))
    }

    async fn spend_token(&self, nullifier: &[u8; 16], key_epoch: u32) -> Result<bool, StoreError> {
        let done =
            sqlx::query("INSERT OR IGNORE INTO spent_tokens (nullifier, key_epoch) VALUES (?, ?)")
                .bind(&nullifier[..])
                .bind(i64::from(key_epoch))
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn unspend_token(&self, nullifier: &[u8; 16]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM spent_tokens WHERE nullifier = ?")
            .bind(&nullifier[..])
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn forget_spent_tokens(&self, before_epoch: u32) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM spent_tokens WHERE key_epoch < ?")
            .bind(i64::from(before_epoch))
            .execute(&self.writer)
            .await?
            .rows_affected())
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
        // One statement: a first count is inserted, a later one added only
        // while the total stays within the limit (else no row changes).
        let done = sqlx::query(
            "INSERT INTO token_issuance (issuer, day, count) VALUES (?, ?, ?)
             ON CONFLICT (issuer, day) DO UPDATE SET count = token_issuance.count + excluded.count
             WHERE token_issuance.count + excluded.count <= ?",
        )
        .bind(&issuer[..])
        .bind(i64::from(day))
        .bind(i64::from(n))
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn forget_issuance(&self, before_day: u32) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM token_issuance WHERE day < ?")
            .bind(i64::from(before_day))
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let u = read_relay_usage(&mut conn).await?;
        Ok(StoreCounts {
            envelopes: u.waiting.envelopes,
            bytes: u.waiting.bytes,
            acknowledged: u.acknowledged,
            timers: u.timers,
            held_bytes: u.held_bytes,
        })
    }

    async fn mailbox_usage(&self, mailbox: &[u8; 12]) -> Result<Usage, StoreError> {
        let row = sqlx::query("SELECT envelopes, bytes FROM mailbox_usage WHERE mailbox = ?")
            .bind(&mailbox[..])
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Usage {
                envelopes: to_u64(r.try_get(0)?),
                bytes: to_u64(r.try_get(1)?),
            },
            None => Usage::default(),
        })
    }

    fn reusable_bytes(&self) -> u64 {
        self.free_bytes.load(Ordering::Relaxed)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::Full;

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
            directory: crate::quota::DirectorySeen::Ignored,
            pressure: None,
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

        let store = SqliteStore::open_in_with(dir.path(), &disk_reading(1 << 40))
            .await
            .unwrap();
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

    fn disk_reading(free: u64) -> OpenChecks {
        OpenChecks {
            disk: Some(Arc::new(move || Some(free))),
            min_free_disk_bytes: 1 << 20,
        }
    }

    /// On a disk without room for a copy of the database and the minimum
    /// free after it, the one-time conversion to incremental vacuum waits
    /// for a later start: the relay opens and serves what it holds.
    #[tokio::test]
    async fn the_conversion_waits_for_a_disk_with_room_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).await.unwrap();
        store
            .insert_envelopes(&(1..=200).map(envelope).collect::<Vec<_>>())
            .await
            .unwrap();
        let path = store.path().unwrap().to_path_buf();
        drop(store);
        let url = format!("sqlite://{}", path.display());
        let mut raw = SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA auto_vacuum = NONE")
            .execute(&mut raw)
            .await
            .unwrap();
        sqlx::query("VACUUM").execute(&mut raw).await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut raw)
            .await
            .unwrap();
        raw.close().await.unwrap();
        let size = pages as u64 * 4096;
        let mode = |store: SqliteStore| async move {
            let m: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            m
        };
        // One byte short of the file's size and the minimum free.
        let short = disk_reading(size + (1 << 20) - 1);
        let store = SqliteStore::open_in_with(dir.path(), &short).await.unwrap();
        assert_eq!(mode(store.clone()).await, 0, "not converted");
        assert_eq!(store.fetch(&[7; 12], 0, 500).await.unwrap().len(), 200);
        store.insert_envelopes(&[envelope(201)]).await.unwrap();
        drop(store);
        // The next start with room converts it.
        let store = SqliteStore::open_in_with(dir.path(), &disk_reading(size + (2 << 20)))
            .await
            .unwrap();
        assert_eq!(mode(store.clone()).await, 2, "converted");
        assert_eq!(store.fetch(&[7; 12], 0, 500).await.unwrap().len(), 201);
    }

    /// The book (in memory) and the usage tables (kept by triggers) both
    /// equal what the mailboxes hold.
    async fn book_matches(store: &SqliteStore, mailboxes: &[[u8; 12]]) {
        let mut actual: HashMap<[u8; 12], Usage> = HashMap::new();
        for row in sqlx::query(
            "SELECT mailbox, count(*), sum(length(body)) FROM envelopes WHERE body IS NOT NULL GROUP BY mailbox",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap()
        {
            let m: Vec<u8> = row.get(0);
            let n: i64 = row.get(1);
            let b: i64 = row.get(2);
            actual.insert(
                m.try_into().unwrap(),
                Usage {
                    envelopes: n as u64,
                    bytes: b as u64,
                },
            );
        }
        let total = actual.values().fold(Usage::default(), |a, u| Usage {
            envelopes: a.envelopes + u.envelopes,
            bytes: a.bytes + u.bytes,
        });
        let acknowledged: i64 =
            sqlx::query_scalar("SELECT count(*) FROM envelopes WHERE body IS NULL")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        let book = store.book.lock().await;
        assert_eq!(store.counts().await.unwrap().envelopes, total.envelopes);
        assert_eq!(store.counts().await.unwrap().bytes, total.bytes);
        assert_eq!(
            store.counts().await.unwrap().acknowledged,
            acknowledged as u64
        );
        if book.loaded {
            assert_eq!(book.global, total, "the book's relay usage");
            assert_eq!(book.acknowledged, acknowledged as u64, "acknowledged rows");
        }
        for m in mailboxes {
            let want = actual.get(m).copied().unwrap_or_default();
            assert_eq!(store.mailbox_usage(m).await.unwrap(), want, "table");
            if let Some(u) = book.mailboxes.get(m).filter(|_| book.loaded) {
                assert_eq!(*u, want, "the book's usage of {m:?}");
            }
        }
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM mailbox_usage")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(
            rows as usize,
            actual.len(),
            "no row kept for empty mailboxes"
        );
    }

    fn in_box(n: u32, mailbox: u8, len: usize) -> NewEnvelope {
        let mut e = envelope(n);
        e.mailbox = [mailbox; 12];
        e.bytes.truncate(len);
        e
    }

    /// The caps are checked against the book, which follows every write
    /// that changes usage: a group commit (held copies in it count for
    /// nothing), an acknowledgement, a forward, a drop, expiry, and a
    /// reopened store reads it from the tables.
    #[tokio::test]
    async fn the_book_follows_every_write_and_the_caps_hold() {
        use crate::quota::{MailboxCap, StorageLimits};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).await.unwrap();
        let quota = Quota {
            limits: StorageLimits {
                focal: MailboxCap {
                    envelopes: 4,
                    bytes: 1000,
                },
                ..StorageLimits::UNLIMITED
            },
            focal_mailboxes: None,
            disk_room: None,
            directory: crate::quota::DirectorySeen::Ignored,
            pressure: None,
        };
        let boxes = [[1; 12], [2; 12], [3; 12]];
        let fresh = |placed: &[Placed]| {
            placed
                .iter()
                .filter(|p| matches!(p, Placed::Stored(s) if s.fresh))
                .count()
        };
        // Two for mailbox 1 in one statement (the trigger's upsert counts
        // both under INSERT OR IGNORE), one for mailbox 2.
        let first = vec![in_box(1, 1, 100), in_box(2, 1, 100), in_box(3, 2, 50)];
        assert_eq!(
            fresh(&store.insert_within(&first, &quota).await.unwrap()),
            3
        );
        book_matches(&store, &boxes).await;
        // A held copy beside new ones: only the new ones count.
        let second = vec![in_box(2, 1, 100), in_box(4, 1, 100), in_box(5, 1, 100)];
        let placed = store.insert_within(&second, &quota).await.unwrap();
        assert_eq!(fresh(&placed), 2);
        book_matches(&store, &boxes).await;
        // Full at 4: a new one is refused, a copy still gets its receipt.
        let third = vec![in_box(6, 1, 10), in_box(1, 1, 100)];
        let placed = store.insert_within(&third, &quota).await.unwrap();
        let refused = placed
            .iter()
            .position(|p| *p == Placed::Full(Full::Mailbox))
            .expect("one refused");
        assert_eq!(third[refused].id, in_box(6, 1, 10).id);
        assert_eq!(fresh(&placed), 0);
        // An acknowledgement makes room at once.
        assert_eq!(store.ack(&[1; 12], &[in_box(1, 1, 0).id]).await.unwrap(), 1);
        book_matches(&store, &boxes).await;
        let placed = store.insert_within(&third[..1], &quota).await.unwrap();
        assert_eq!(fresh(&placed), 1, "accepted after the ack");
        book_matches(&store, &boxes).await;
        // Forwarded (field relay) and dropped envelopes give room back too.
        store
            .record_upstream(&[(in_box(2, 1, 0).id, vec![1; 93])], 500_000)
            .await
            .unwrap();
        store.drop_queued(&[in_box(4, 1, 0).id]).await.unwrap();
        book_matches(&store, &boxes).await;
        let two_more = vec![in_box(7, 1, 10), in_box(8, 1, 10), in_box(9, 1, 10)];
        let placed = store.insert_within(&two_more, &quota).await.unwrap();
        assert_eq!(fresh(&placed), 2, "{placed:?}");
        book_matches(&store, &boxes).await;
        // A reopened store reads the tables: still exactly at the cap.
        drop(store);
        let store = SqliteStore::open_in(dir.path()).await.unwrap();
        let placed = store.insert_within(&two_more, &quota).await.unwrap();
        assert!(placed[2] == Placed::Full(Full::Mailbox), "{placed:?}");
        book_matches(&store, &boxes).await;
        // Expiry empties everything; the book is read again.
        store.expire(500_001).await.unwrap();
        book_matches(&store, &boxes).await;
        let placed = store.insert_within(&two_more, &quota).await.unwrap();
        assert_eq!(
            fresh(&placed),
            3,
            "expired ids are gone, copies are new again"
        );
        let placed = store
            .insert_within(&[in_box(20, 3, 10)], &quota)
            .await
            .unwrap();
        assert_eq!(fresh(&placed), 1);
        book_matches(&store, &boxes).await;
    }

    /// Past its size the book forgets mailboxes and reads them again: a
    /// flood to random mailboxes does not grow the relay's memory, and a
    /// forgotten mailbox's cap still holds.
    #[tokio::test]
    async fn the_book_stays_bounded_and_forgets_safely() {
        use crate::quota::{MailboxCap, StorageLimits};
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let quota = Quota {
            limits: StorageLimits {
                focal: MailboxCap {
                    envelopes: 2,
                    bytes: u64::MAX,
                },
                ..StorageLimits::UNLIMITED
            },
            focal_mailboxes: None,
            disk_room: None,
            directory: crate::quota::DirectorySeen::Ignored,
            pressure: None,
        };
        let full_box = vec![in_box(1, 0xee, 10), in_box(2, 0xee, 10)];
        store.insert_within(&full_box, &quota).await.unwrap();
        let mut n = 10u32;
        for _ in 0..(BOOK_MAILBOXES / 2048 + 2) {
            let batch: Vec<NewEnvelope> = (0..2048)
                .map(|_| {
                    n += 1;
                    let mut e = in_box(n, 0, 10);
                    e.mailbox[..4].copy_from_slice(&n.to_be_bytes());
                    e
                })
                .collect();
            store.insert_within(&batch, &quota).await.unwrap();
            assert!(store.book.lock().await.mailboxes.len() <= BOOK_MAILBOXES);
        }
        assert!(!store.book.lock().await.mailboxes.contains_key(&[0xee; 12]));
        let placed = store
            .insert_within(&[in_box(3, 0xee, 10)], &quota)
            .await
            .unwrap();
        assert_eq!(placed, vec![Placed::Full(Full::Mailbox)]);
        book_matches(&store, &[[0xee; 12]]).await;
    }

    /// An acknowledgement whose future is dropped after its `COMMIT` (its
    /// client went away) leaves the book unloaded, not counting what the
    /// commit released: the next group commit reads the tables and is
    /// admitted as they say.
    #[tokio::test]
    async fn a_write_dropped_after_its_commit_leaves_the_book_right() {
        use crate::quota::{MailboxCap, StorageLimits};
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let quota = Quota {
            limits: StorageLimits {
                focal: MailboxCap {
                    envelopes: 2,
                    bytes: u64::MAX,
                },
                ..StorageLimits::UNLIMITED
            },
            focal_mailboxes: None,
            disk_room: None,
            directory: crate::quota::DirectorySeen::Ignored,
            pressure: None,
        };
        let mut dropped_after_commit = 0;
        for round in 0..20u32 {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open_in(dir.path()).await.unwrap();
            let full = vec![in_box(1, 1, 10), in_box(2, 1, 10)];
            store.insert_within(&full, &quota).await.unwrap();
            assert!(store.book.lock().await.loaded);
            let url = format!("sqlite://{}", store.path().unwrap().display());
            let mut watch = SqliteConnection::connect(&url).await.unwrap();
            let ids = [full[0].id];
            let mut ack = Box::pin(store.ack(&[1; 12], &ids));
            let mut cx = Context::from_waker(Waker::noop());
            // Polled step by step, and dropped once its commit is visible
            // to another connection (before the ack sees it done).
            let mut committed = false;
            for _ in 0..2000 {
                let gone: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM envelopes WHERE body IS NULL")
                        .fetch_one(&mut watch)
                        .await
                        .unwrap();
                if gone == 1 {
                    committed = true;
                    break;
                }
                if let Poll::Ready(r) = ack.as_mut().poll(&mut cx) {
                    r.unwrap();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            drop(ack);
            watch.close().await.unwrap();
            if !committed {
                continue;
            }
            dropped_after_commit += 1;
            book_matches(&store, &[[1; 12]]).await;
            let placed = store
                .insert_within(&[in_box(3 + round, 1, 10)], &quota)
                .await
                .unwrap();
            assert!(
                matches!(placed[0], Placed::Stored(s) if s.fresh),
                "the acknowledgement made room: {placed:?}"
            );
            book_matches(&store, &[[1; 12]]).await;
            if dropped_after_commit >= 3 {
                break;
            }
        }
        assert!(dropped_after_commit > 0, "never dropped after the commit");
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
