//! Check-in timers on SQLite (PROTOCOL.md §17): every write through the
//! one writer connection, in a `BEGIN IMMEDIATE` transaction, under the
//! book's lock (a write that changes what the global cap counts leaves the
//! book to be read again from the tables).

use amparo_protocol::envelope::EnvelopeId;
use amparo_protocol::timer::{CheckIn, TimerId, TimerState};
use sqlx::{Row, SqliteConnection};

use super::{SqliteStore, read_relay_usage};
use crate::quota::Quota;
use crate::store::timers::{
    CheckedIn, HoldPlaced, NewHold, TimerLimits, TimerRow, decide_check_in, place_hold,
};
use crate::store::{StoreError, hour_from_db, to_i64, to_u64};

/// The row on record for `timer`, if any.
async fn read_row(
    conn: &mut SqliteConnection,
    timer: &[u8; 12],
) -> Result<Option<TimerRow>, StoreError> {
    let row = sqlx::query("SELECT release_hour, seq, envelope FROM timers WHERE timer = ?")
        .bind(&timer[..])
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| {
        Ok(TimerRow {
            state: TimerState {
                release_hour: hour_from_db(r.try_get(0)?),
                seq: to_u64(r.try_get(1)?),
            },
            envelope: r.try_get(2)?,
        })
    })
    .transpose()
}

impl SqliteStore {
    pub(in crate::store) async fn hold_timer(
        &self,
        hold: &NewHold,
        quota: &Quota,
        limits: &TimerLimits,
    ) -> Result<HoldPlaced, StoreError> {
        let mut book = self.book.lock().await;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = read_row(&mut tx, &hold.timer).await?;
        let usage = read_relay_usage(&mut tx).await?;
        let in_mailbox: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM timers WHERE mailbox = ? AND envelope IS NOT NULL",
        )
        .bind(&hold.mailbox[..])
        .fetch_one(&mut *tx)
        .await?;
        if let Some(placed) = place_hold(
            hold,
            row.as_ref(),
            &usage,
            to_u64(in_mailbox),
            quota,
            limits,
        ) {
            return Ok(placed);
        }
        // From here the usage on record changes: the book is read again.
        book.loaded = false;
        sqlx::query(
            "INSERT INTO timers (timer, release_hour, seq, mailbox, envelope) VALUES (?, ?, 0, ?, ?)",
        )
        .bind(&hold.timer[..])
        .bind(i64::from(hold.release_hour))
        .bind(&hold.mailbox[..])
        .bind(&hold.envelope[..])
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE relay_usage SET timers = timers + 1, held_bytes = held_bytes + ? WHERE singleton = 1",
        )
        .bind(to_i64(hold.envelope.len() as u64, "alert size")?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(hold.stored())
    }

    pub(in crate::store) async fn check_in_timer(
        &self,
        check_in: &CheckIn,
        now_hour: u32,
    ) -> Result<CheckedIn, StoreError> {
        let timer = TimerId::for_key(&check_in.key).0;
        // Decided first on a read: one that would be refused (no such
        // timer, replayed, stale) never takes the write lock, so a flood of
        // them cannot hold up the writer.
        {
            let mut conn = self.pool.acquire().await?;
            let seen = read_row(&mut conn, &timer).await?;
            match decide_check_in(seen.as_ref(), check_in, now_hour) {
                d @ (CheckedIn::Unknown | CheckedIn::Refused(_)) => return Ok(d),
                CheckedIn::Held(_) | CheckedIn::Cancelled => {}
            }
        }
        let mut book = self.book.lock().await;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = read_row(&mut tx, &timer).await?;
        let decided = decide_check_in(row.as_ref(), check_in, now_hour);
        match &decided {
            CheckedIn::Held(state) => {
                sqlx::query("UPDATE timers SET release_hour = ?, seq = ? WHERE timer = ?")
                    .bind(i64::from(state.release_hour))
                    .bind(to_i64(state.seq, "check-in sequence number")?)
                    .bind(&timer[..])
                    .execute(&mut *tx)
                    .await?;
            }
            CheckedIn::Cancelled => {
                let len = row
                    .as_ref()
                    .and_then(|r| r.envelope.as_ref())
                    .map_or(0, Vec::len);
                book.loaded = false;
                // The row stays, without its alert, until its hour: a copy
                // of the hold sent again finds the timer taken.
                sqlx::query(
                    "UPDATE timers SET seq = ?, mailbox = NULL, envelope = NULL WHERE timer = ?",
                )
                .bind(to_i64(check_in.seq, "check-in sequence number")?)
                .bind(&timer[..])
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE relay_usage SET held_bytes = max(held_bytes - ?, 0) WHERE singleton = 1",
                )
                .bind(to_i64(len as u64, "alert size")?)
                .execute(&mut *tx)
                .await?;
            }
            CheckedIn::Unknown | CheckedIn::Refused(_) => return Ok(decided),
        }
        tx.commit().await?;
        Ok(decided)
    }

    pub(in crate::store) async fn release_due_timers(
        &self,
        now_hour: u32,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // Most passes find nothing due: they take no write lock.
        let any: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM timers WHERE release_hour <= ?)")
                .bind(i64::from(now_hour))
                .fetch_one(&self.pool)
                .await?;
        if !any {
            return Ok(0);
        }
        let mut book = self.book.lock().await;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let due = sqlx::query(
            "SELECT timer, mailbox, envelope FROM timers
             WHERE release_hour <= ? AND envelope IS NOT NULL
             ORDER BY release_hour, timer LIMIT ?",
        )
        .bind(i64::from(now_hour))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let forgotten =
            sqlx::query("DELETE FROM timers WHERE release_hour <= ? AND envelope IS NULL")
                .bind(i64::from(now_hour))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if due.is_empty() && forgotten == 0 {
            return Ok(0);
        }
        book.loaded = false;
        let mut bytes = 0u64;
        for r in &due {
            let timer: Vec<u8> = r.try_get(0)?;
            let mailbox: Vec<u8> = r.try_get(1)?;
            let envelope: Vec<u8> = r.try_get(2)?;
            bytes = bytes.saturating_add(envelope.len() as u64);
            // An envelope with this id held already (sent directly too)
            // is not stored twice; the timer goes either way.
            sqlx::query(
                "INSERT OR IGNORE INTO envelopes (id, mailbox, arrival_hour, body) VALUES (?, ?, ?, ?)",
            )
            .bind(&EnvelopeId::of(&envelope).0[..])
            .bind(&mailbox[..])
            .bind(i64::from(now_hour))
            .bind(&envelope[..])
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM timers WHERE timer = ?")
                .bind(&timer[..])
                .execute(&mut *tx)
                .await?;
        }
        let released = due.len() as u64;
        sqlx::query(
            "UPDATE relay_usage SET timers = max(timers - ?, 0), held_bytes = max(held_bytes - ?, 0)
             WHERE singleton = 1",
        )
        .bind(to_i64(released.saturating_add(forgotten), "timers")?)
        .bind(to_i64(bytes, "alert size")?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(released)
    }
}
