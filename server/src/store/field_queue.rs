//! What a field relay keeps beyond a relay's mailboxes (SQLite only): which
//! envelopes still wait to go upstream, the upstream's receipts to hand
//! down, and a cache of sealed envelopes fetched from upstream mailboxes.
//!
//! The queue needs no table of its own: on a field relay every stored
//! envelope with a body is on its way upstream, and recording the upstream's
//! receipt deletes the body in the same transaction — so a crash at any
//! point either leaves the envelope queued (sent again; the upstream answers
//! a copy with the same receipt) or forwarded, never lost or doubled.

use sqlx::Row;

use super::sqlite::{SqliteStore, clear_bodies};
use super::{BoundedPage, PageRoom, StoreError, StoredEnvelope, to_i64, to_u64};

/// What a field relay's cache of upstream mailboxes may hold now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheCaps {
    /// Bytes of one mailbox.
    pub mailbox_bytes: u64,
    /// Bytes of all mailboxes.
    pub total_bytes: u64,
    /// Bytes the disk has left above its minimum free, if known: the cache
    /// grows by no more in one write.
    pub disk_room: Option<u64>,
}

impl CacheCaps {
    /// No cap (tests and tools).
    pub const UNLIMITED: CacheCaps = CacheCaps {
        mailbox_bytes: u64::MAX / 2,
        total_bytes: u64::MAX / 2,
        disk_room: None,
    };
}

async fn cache_bytes(conn: &mut sqlx::SqliteConnection) -> Result<u64, StoreError> {
    let n: Option<i64> =
        sqlx::query_scalar("SELECT bytes FROM field_cache_usage WHERE singleton = 1")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(n.map(to_u64).unwrap_or(0))
}

/// An envelope waiting to go upstream.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Its place in the queue (forward again from after it).
    pub seq: u64,
    /// Its id.
    pub id: [u8; 16],
    /// Its mailbox.
    pub mailbox: [u8; 12],
    /// The envelope.
    pub bytes: Vec<u8>,
}

impl SqliteStore {
    /// Up to `limit` queued envelopes after queue position `after`, oldest
    /// first, stopping before `max_bytes` (always at least one). Envelopes
    /// of the mailboxes in `skip` (ones the upstream said are full this
    /// round) are passed over, so they do not hold up the rest.
    pub async fn queued_for_upstream(
        &self,
        after: u64,
        limit: u32,
        max_bytes: usize,
        skip: &std::collections::HashSet<[u8; 12]>,
    ) -> Result<Vec<Queued>, StoreError> {
        let mut out: Vec<Queued> = Vec::new();
        let mut bytes = 0;
        let mut after = to_i64(after, "queue position")?;
        // Reads in pages, so a long run of skipped envelopes is passed over
        // without loading it all.
        loop {
            let rows = sqlx::query(
                "SELECT seq, id, mailbox, body FROM envelopes WHERE body IS NOT NULL AND seq > ? ORDER BY seq LIMIT ?",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            let page_len = rows.len();
            for r in rows {
                let seq: i64 = r.try_get(0)?;
                after = seq;
                let mailbox: Vec<u8> = r.try_get(2)?;
                let mailbox: [u8; 12] = mailbox
                    .try_into()
                    .map_err(|_| StoreError::Range("mailbox id"))?;
                if skip.contains(&mailbox) {
                    continue;
                }
                let id: Vec<u8> = r.try_get(1)?;
                let body: Vec<u8> = r.try_get(3)?;
                if !out.is_empty() && bytes + body.len() > max_bytes {
                    return Ok(out);
                }
                bytes += body.len();
                out.push(Queued {
                    seq: to_u64(seq),
                    id: id
                        .try_into()
                        .map_err(|_| StoreError::Range("envelope id"))?,
                    mailbox,
                    bytes: body,
                });
                if out.len() >= limit as usize {
                    return Ok(out);
                }
            }
            if page_len < limit as usize {
                return Ok(out);
            }
        }
    }

    /// How many envelopes wait to go upstream.
    pub async fn queued_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM envelopes WHERE body IS NOT NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(to_u64(n))
    }

    /// Records the upstream's receipts and, in the same transaction, deletes
    /// the forwarded bodies (keeping id and hour, as an acknowledgement does,
    /// so a copy arriving later is neither stored nor forwarded again) and
    /// gives their bytes back to the queue's caps.
    pub async fn record_upstream(
        &self,
        receipts: &[([u8; 16], Vec<u8>)],
        hour: u32,
    ) -> Result<(), StoreError> {
        if receipts.is_empty() {
            return Ok(());
        }
        // The book's lock first, then the database's (see `Book`).
        let mut book = self.book.lock().await;
        let was_loaded = book.begin_write();
        let done = async {
            let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
            for (id, receipt) in receipts {
                sqlx::query(
                    "INSERT OR IGNORE INTO upstream_receipts (id, receipt, arrival_hour) VALUES (?, ?, ?)",
                )
                .bind(&id[..])
                .bind(receipt)
                .bind(i64::from(hour))
                .execute(&mut *tx)
                .await?;
            }
            let ids: Vec<[u8; 16]> = receipts.iter().map(|(id, _)| *id).collect();
            let cleared = clear_bodies(&mut tx, &ids, None).await?;
            tx.commit().await?;
            Ok(cleared)
        }
        .await;
        book.settle(done, was_loaded).map(|_| ())
    }

    /// Drops envelopes the upstream refused outright: their bodies are
    /// deleted, no receipt is kept (the phone still holds its copy).
    pub async fn drop_queued(&self, ids: &[[u8; 16]]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.clear_booked(ids, None).await.map(|_| ())
    }

    /// The upstream receipts held for `ids` (those known), as encoded.
    pub async fn upstream_receipts(&self, ids: &[[u8; 16]]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(r) = sqlx::query("SELECT receipt FROM upstream_receipts WHERE id = ?")
                .bind(&id[..])
                .fetch_optional(&self.pool)
                .await?
            {
                out.push(r.try_get(0)?);
            }
        }
        Ok(out)
    }

    /// Keeps envelopes fetched from an upstream mailbox for later pickup,
    /// within `caps`.
    pub async fn cache_mailbox(
        &self,
        mailbox: &[u8; 12],
        items: &[([u8; 16], Vec<u8>)],
        hour: u32,
        caps: CacheCaps,
    ) -> Result<(), StoreError> {
        let rows: Vec<([u8; 12], [u8; 16], &[u8])> = items
            .iter()
            .map(|(id, body)| (*mailbox, *id, body.as_slice()))
            .collect();
        self.cache_envelopes(rows, hour, caps).await
    }

    /// Keeps envelopes of several mailboxes (one many-mailbox answer) for
    /// later pickup, in one transaction and in envelope-id order (a hash),
    /// so the cache's sequence numbers do not record which mailboxes were
    /// fetched together, nor in what order.
    ///
    /// The cache stays within `caps`: past a mailbox's cap its oldest
    /// cached envelopes are evicted, and past the total (or the room the
    /// disk has left) the oldest of all. They are copies of what the
    /// upstream holds; the queue to go upstream is never touched.
    pub async fn cache_envelopes(
        &self,
        mut rows: Vec<([u8; 12], [u8; 16], &[u8])>,
        hour: u32,
        caps: CacheCaps,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        rows.sort_unstable_by_key(|(_, id, _)| *id);
        let mut mailboxes: Vec<[u8; 12]> = rows.iter().map(|(m, _, _)| *m).collect();
        mailboxes.sort_unstable();
        mailboxes.dedup();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let before = cache_bytes(&mut tx).await?;
        for (mailbox, id, body) in rows {
            sqlx::query(
                "INSERT OR IGNORE INTO mailbox_cache (id, mailbox, arrival_hour, body) VALUES (?, ?, ?, ?)",
            )
            .bind(&id[..])
            .bind(&mailbox[..])
            .bind(i64::from(hour))
            .bind(body)
            .execute(&mut *tx)
            .await?;
        }
        for mailbox in &mailboxes {
            // The newest envelopes of the mailbox that fit in its cap stay.
            sqlx::query(
                "DELETE FROM mailbox_cache WHERE seq IN (
                   SELECT seq FROM (
                     SELECT seq, sum(length(body)) OVER (ORDER BY seq DESC) AS kept
                     FROM mailbox_cache WHERE mailbox = ?
                   ) WHERE kept > ?
                 )",
            )
            .bind(&mailbox[..])
            .bind(to_i64(caps.mailbox_bytes, "cache cap")?)
            .execute(&mut *tx)
            .await?;
        }
        // The whole cache grows by no more than the disk has room for.
        let total = caps.disk_room.map_or(caps.total_bytes, |room| {
            caps.total_bytes.min(before.saturating_add(room))
        });
        if cache_bytes(&mut tx).await? > total {
            sqlx::query(
                "DELETE FROM mailbox_cache WHERE seq IN (
                   SELECT seq FROM (
                     SELECT seq, sum(length(body)) OVER (ORDER BY seq DESC) AS kept
                     FROM mailbox_cache
                   ) WHERE kept > ?
                 )",
            )
            .bind(to_i64(total, "cache cap")?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Bytes the cache of upstream mailboxes holds.
    pub async fn cached_bytes(&self) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        cache_bytes(&mut conn).await
    }

    /// A page of the cached envelopes of `mailbox`.
    pub async fn cached_mailbox(
        &self,
        mailbox: &[u8; 12],
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, body FROM mailbox_cache WHERE mailbox = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(&mailbox[..])
        .bind(to_i64(after, "cursor")?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        super::sqlite::page_rows(rows)
    }

    /// A page of the cached envelopes of `mailbox` within `room` (sizes
    /// first, then only the bodies that go in it).
    pub async fn cached_mailbox_within(
        &self,
        mailbox: &[u8; 12],
        after: u64,
        room: PageRoom,
    ) -> Result<BoundedPage, StoreError> {
        self.page_within("mailbox_cache", "", mailbox, after, room)
            .await
    }

    /// Drops acknowledged envelopes from the cache; returns how many.
    pub async fn uncache_mailbox(
        &self,
        mailbox: &[u8; 12],
        ids: &[[u8; 16]],
    ) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await?;
        let mut n = 0;
        for id in ids {
            n += sqlx::query("DELETE FROM mailbox_cache WHERE id = ? AND mailbox = ?")
                .bind(&id[..])
                .bind(&mailbox[..])
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Deletes receipts and cached envelopes older than `before_hour`.
    pub async fn expire_field(&self, before_hour: u32) -> Result<u64, StoreError> {
        let mut n = 0;
        for sql in [
            "DELETE FROM upstream_receipts WHERE arrival_hour < ?",
            "DELETE FROM mailbox_cache WHERE arrival_hour < ?",
        ] {
            n += sqlx::query(sql)
                .bind(i64::from(before_hour))
                .execute(&self.writer)
                .await?
                .rows_affected();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewEnvelope, Store};

    fn env(n: u8) -> NewEnvelope {
        NewEnvelope {
            id: [n; 16],
            mailbox: [1; 12],
            arrival_hour: 500_000,
            bytes: vec![n; 100],
        }
    }

    #[tokio::test]
    async fn forwarded_envelopes_leave_the_queue_once() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        store
            .insert_envelopes(&[env(1), env(2), env(3)])
            .await
            .unwrap();
        let none = std::collections::HashSet::new();
        let q = store.queued_for_upstream(0, 10, 250, &none).await.unwrap();
        assert_eq!(q.len(), 2, "bounded by bytes");
        assert_eq!(store.queued_count().await.unwrap(), 3);
        store
            .record_upstream(&[([1; 16], vec![9; 93]), ([2; 16], vec![8; 93])], 500_001)
            .await
            .unwrap();
        let q = store
            .queued_for_upstream(0, 10, 1 << 20, &none)
            .await
            .unwrap();
        assert_eq!(q.iter().map(|e| e.id).collect::<Vec<_>>(), vec![[3; 16]]);
        // A copy arriving again is not queued again.
        let again = store.insert_envelopes(&[env(1)]).await.unwrap();
        assert!(!again[0].fresh);
        assert_eq!(store.queued_count().await.unwrap(), 1);
        let r = store
            .upstream_receipts(&[[2; 16], [3; 16], [1; 16]])
            .await
            .unwrap();
        assert_eq!(r, vec![vec![8; 93], vec![9; 93]]);
        assert_eq!(store.expire_field(500_002).await.unwrap(), 2);
    }

    /// The cache of upstream mailboxes stays within its caps and the room
    /// the disk has: the oldest copies are evicted, the newest kept, and
    /// envelopes queued to go upstream are never touched.
    #[tokio::test]
    async fn the_cache_stays_within_its_caps() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        store
            .insert_envelopes(&[env(1), env(2), env(3)])
            .await
            .unwrap();
        let caps = CacheCaps {
            mailbox_bytes: 5_000,
            total_bytes: 12_000,
            disk_room: None,
        };
        let item = |m: u8, n: u8| ([m; 12], [n; 16], vec![n; 1000]);
        // One mailbox, 20 envelopes of 1000 bytes, in four fetches: 5 kept.
        for round in 0..4u8 {
            let items: Vec<_> = (0..5).map(|i| item(1, 10 + round * 5 + i)).collect();
            let rows = items
                .iter()
                .map(|(m, id, b)| (*m, *id, b.as_slice()))
                .collect();
            store.cache_envelopes(rows, 7, caps).await.unwrap();
        }
        assert_eq!(store.cached_bytes().await.unwrap(), 5_000);
        let page = store.cached_mailbox(&[1; 12], 0, 100).await.unwrap();
        assert_eq!(
            page.iter().map(|e| e.bytes[0]).collect::<Vec<_>>(),
            (25..30).collect::<Vec<u8>>(),
            "the newest stay"
        );
        // Three mailboxes: the total cap of 12 000 holds.
        for m in 2..4u8 {
            let items: Vec<_> = (0..5).map(|i| item(m, 40 + m * 10 + i)).collect();
            let rows = items
                .iter()
                .map(|(m, id, b)| (*m, *id, b.as_slice()))
                .collect();
            store.cache_envelopes(rows, 7, caps).await.unwrap();
        }
        assert_eq!(store.cached_bytes().await.unwrap(), 12_000);
        // A disk with no room left: the cache does not grow.
        let full_disk = CacheCaps {
            disk_room: Some(0),
            ..caps
        };
        let items = [item(9, 200), item(9, 201)];
        let rows = items
            .iter()
            .map(|(m, id, b)| (*m, *id, b.as_slice()))
            .collect();
        store.cache_envelopes(rows, 7, full_disk).await.unwrap();
        assert_eq!(store.cached_bytes().await.unwrap(), 12_000);
        assert_eq!(
            store.cached_mailbox(&[9; 12], 0, 10).await.unwrap().len(),
            2
        );
        // The queue is untouched.
        assert_eq!(store.queued_count().await.unwrap(), 3);
        let none = std::collections::HashSet::new();
        assert_eq!(
            store
                .queued_for_upstream(0, 10, 1 << 20, &none)
                .await
                .unwrap()
                .len(),
            3
        );
        // The count follows pickups and expiry.
        store.uncache_mailbox(&[9; 12], &[[200; 16]]).await.unwrap();
        assert_eq!(store.cached_bytes().await.unwrap(), 11_000);
        store.expire_field(8).await.unwrap();
        assert_eq!(store.cached_bytes().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn the_cache_serves_and_forgets() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let mb = [4; 12];
        store
            .cache_mailbox(
                &mb,
                &[([1; 16], vec![1; 10]), ([2; 16], vec![2; 10])],
                7,
                CacheCaps::UNLIMITED,
            )
            .await
            .unwrap();
        store
            .cache_mailbox(&mb, &[([1; 16], vec![1; 10])], 7, CacheCaps::UNLIMITED)
            .await
            .unwrap();
        let page = store.cached_mailbox(&mb, 0, 10).await.unwrap();
        assert_eq!(page.len(), 2, "each envelope once");
        assert!(
            store
                .cached_mailbox(&[5; 12], 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.uncache_mailbox(&[5; 12], &[[1; 16]]).await.unwrap(),
            0
        );
        assert_eq!(store.uncache_mailbox(&mb, &[[1; 16]]).await.unwrap(), 1);
        assert_eq!(store.cached_mailbox(&mb, 0, 10).await.unwrap().len(), 1);
    }
}
