//! Check-in timers on PostgreSQL (PROTOCOL.md §17). Every timer write locks
//! the relay's usage row first, as every usage writer does (see
//! `BEGIN_INSERT`): holds, check-ins and release passes of all relays on
//! the database then take their turns, so a check-in and a release never
//! both win, and two relays never release one alert twice.

use amparo_protocol::envelope::EnvelopeId;
use amparo_protocol::timer::{CheckIn, TimerId, TimerState};
use sqlx::{PgConnection, Row};

use super::{BEGIN_INSERT, PgStore, hour, lock_usage, relay_usage};
use crate::quota::Quota;
use crate::store::timers::{
    CheckedIn, HoldPlaced, NewHold, TimerLimits, TimerRow, decide_check_in, place_hold,
};
use crate::store::{StoreError, hour_from_db, to_i64, to_u64};

/// The row on record for `timer`; with `lock`, locked for this
/// transaction.
async fn read_row(
    conn: &mut PgConnection,
    timer: &[u8; 12],
    lock: bool,
) -> Result<Option<TimerRow>, StoreError> {
    let sql = if lock {
        "SELECT release_hour, seq, envelope FROM timers WHERE timer = $1 FOR UPDATE"
    } else {
        "SELECT release_hour, seq, envelope FROM timers WHERE timer = $1"
    };
    let row = sqlx::query(sql)
        .bind(&timer[..])
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| {
        let h: i32 = r.try_get(0)?;
        Ok(TimerRow {
            state: TimerState {
                release_hour: hour_from_db(i64::from(h)),
                seq: to_u64(r.try_get(1)?),
            },
            envelope: r.try_get(2)?,
        })
    })
    .transpose()
}

impl PgStore {
    pub(in crate::store) async fn hold_timer(
        &self,
        hold: &NewHold,
        quota: &Quota,
        limits: &TimerLimits,
    ) -> Result<HoldPlaced, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_usage(&mut tx).await?;
        let usage = relay_usage(&mut tx).await?;
        let row = read_row(&mut tx, &hold.timer, true).await?;
        let in_mailbox: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM timers WHERE mailbox = $1 AND envelope IS NOT NULL",
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
        sqlx::query(
            "WITH ins AS (
               INSERT INTO timers (timer, release_hour, seq, mailbox, envelope)
               VALUES ($1, $2, 0, $3, $4)
             )
             UPDATE relay_usage SET timers = timers + 1, held_bytes = held_bytes + $5
             WHERE singleton = 1",
        )
        .bind(&hold.timer[..])
        .bind(hour(hold.release_hour)?)
        .bind(&hold.mailbox[..])
        .bind(&hold.envelope[..])
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
        // Decided first on a read without locks: one that would be refused
        // (no such timer, replayed, stale) never queues on the usage row
        // every upload takes.
        {
            let mut conn = self.pool.acquire().await?;
            let seen = read_row(&mut conn, &timer, false).await?;
            match decide_check_in(seen.as_ref(), check_in, now_hour) {
                d @ (CheckedIn::Unknown | CheckedIn::Refused(_)) => return Ok(d),
                CheckedIn::Held(_) | CheckedIn::Cancelled => {}
            }
        }
        let mut tx = self.pool.begin().await?;
        lock_usage(&mut tx).await?;
        let row = read_row(&mut tx, &timer, true).await?;
        let decided = decide_check_in(row.as_ref(), check_in, now_hour);
        match &decided {
            CheckedIn::Held(state) => {
                sqlx::query("UPDATE timers SET release_hour = $1, seq = $2 WHERE timer = $3")
                    .bind(hour(state.release_hour)?)
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
                sqlx::query(
                    "WITH gone AS (
                       UPDATE timers SET seq = $1, mailbox = NULL, envelope = NULL WHERE timer = $2
                     )
                     UPDATE relay_usage SET held_bytes = greatest(held_bytes - $3, 0)
                     WHERE singleton = 1",
                )
                .bind(to_i64(check_in.seq, "check-in sequence number")?)
                .bind(&timer[..])
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
        let now = hour(now_hour)?;
        // Most passes find nothing due: they queue on no lock.
        let any: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM timers WHERE release_hour <= $1)")
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
        if !any {
            return Ok(0);
        }
        // Inserting into mailboxes: the insert lock too (see BEGIN_INSERT).
        let mut tx = self.pool.begin_with(BEGIN_INSERT).await?;
        let due = sqlx::query(
            "DELETE FROM timers WHERE timer IN (
               SELECT timer FROM timers WHERE release_hour <= $1 AND envelope IS NOT NULL
               ORDER BY release_hour, timer LIMIT $2
             )
             RETURNING mailbox, envelope",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let forgotten =
            sqlx::query("DELETE FROM timers WHERE release_hour <= $1 AND envelope IS NULL")
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if due.is_empty() && forgotten == 0 {
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(due.len());
        let mut boxes = Vec::with_capacity(due.len());
        let mut bodies: Vec<Vec<u8>> = Vec::with_capacity(due.len());
        for r in &due {
            let mailbox: Vec<u8> = r.try_get(0)?;
            let envelope: Vec<u8> = r.try_get(1)?;
            ids.push(EnvelopeId::of(&envelope).0.to_vec());
            boxes.push(mailbox);
            bodies.push(envelope);
        }
        let held: i64 = bodies.iter().map(|b| b.len() as i64).sum();
        let hours = vec![now; due.len()];
        // The alerts into their mailboxes and the usage, as an upload's
        // group commit writes them; one held already (sent directly too)
        // is not stored twice.
        sqlx::query(
            "WITH ins AS (
               INSERT INTO envelopes (id, mailbox, arrival_hour, body)
               SELECT * FROM UNNEST($1::bytea[], $2::bytea[], $3::int4[], $4::bytea[])
               ON CONFLICT (id) DO NOTHING
               RETURNING mailbox, length(body)::int8 AS len
             ), per AS (
               SELECT mailbox, count(*) AS n, sum(len)::int8 AS b FROM ins GROUP BY mailbox
             ), mailboxes AS (
               INSERT INTO mailbox_usage (mailbox, envelopes, bytes)
               SELECT mailbox, n, b FROM per ORDER BY mailbox
               ON CONFLICT (mailbox) DO UPDATE SET
                 envelopes = mailbox_usage.envelopes + EXCLUDED.envelopes,
                 bytes = mailbox_usage.bytes + EXCLUDED.bytes
             )
             UPDATE relay_usage SET
               envelopes = envelopes + (SELECT count(*) FROM ins),
               bytes = bytes + (SELECT coalesce(sum(len), 0) FROM ins),
               timers = greatest(timers - $5, 0),
               held_bytes = greatest(held_bytes - $6, 0)
             WHERE singleton = 1",
        )
        .bind(&ids)
        .bind(&boxes)
        .bind(&hours)
        .bind(&bodies)
        .bind(to_i64(
            (due.len() as u64).saturating_add(forgotten),
            "timers",
        )?)
        .bind(held)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(due.len() as u64)
    }
}
