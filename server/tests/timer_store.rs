//! Check-in timers in storage (PROTOCOL.md §17), one suite on SQLite and on
//! PostgreSQL with the hour given, not read from a clock: held, moved by a
//! check-in, refused with nothing changed, cancelled, released exactly once
//! at its hour and never before, within its caps; and on PostgreSQL two
//! relays releasing and checking in at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use amparo_protocol::envelope::EnvelopeId;
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::timer::{CheckIn, TimerId, TimerState};
use amparo_relay::quota::{DirectorySeen, MailboxCap, Quota, StorageLimits};
use amparo_relay::store::timers::{CheckedIn, HeldFull, HoldPlaced, NewHold, TimerLimits};
use amparo_relay::store::{PgStore, SqliteStore, Store};

const NOW: u32 = 500_000;

fn key(n: u8) -> SigningKey {
    SigningKey::from_seed(&[n; 32]).unwrap()
}

fn hold(n: u8, release_hour: u32, mailbox: u8, len: usize) -> NewHold {
    NewHold {
        timer: TimerId::for_key(&key(n).verifying_key()).0,
        release_hour,
        mailbox: [mailbox; 12],
        envelope: vec![n; len],
    }
}

fn quota(max_stored_bytes: u64) -> Quota {
    Quota {
        limits: StorageLimits {
            focal: MailboxCap {
                envelopes: 1_000,
                bytes: 1_000_000,
            },
            reply: MailboxCap {
                envelopes: 1_000,
                bytes: 1_000_000,
            },
            max_stored_bytes,
            min_free_disk_bytes: 0,
        },
        focal_mailboxes: None,
        disk_room: None,
        directory: DirectorySeen::Ignored,
        pressure: None,
    }
}

fn held(p: HoldPlaced) -> (TimerState, bool) {
    match p {
        HoldPlaced::Held { state, fresh } => (state, fresh),
        other => panic!("not held: {other:?}"),
    }
}

async fn mailbox_ids<S: Store>(store: &S, mailbox: u8) -> Vec<[u8; 16]> {
    store
        .fetch(&[mailbox; 12], 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| EnvelopeId::of(&e.bytes).0)
        .collect()
}

async fn lifecycle<S: Store>(store: S, name: &str) {
    let q = quota(1_000_000);
    let limits = TimerLimits::default();
    // Held, then the same hold again: the state on record, not stored twice.
    let h = hold(1, NOW + 3, 7, 100);
    let (state, fresh) = held(store.hold(&h, &q, &limits).await.unwrap());
    assert!(fresh, "{name}");
    assert_eq!(
        state,
        TimerState {
            release_hour: NOW + 3,
            seq: 0
        }
    );
    let (_, fresh) = held(store.hold(&h, &q, &limits).await.unwrap());
    assert!(!fresh, "{name}: a copy of the hold is not stored again");
    // Another alert for the same timer: taken.
    let mut other = h.clone();
    other.envelope = vec![9; 100];
    assert_eq!(
        store.hold(&other, &q, &limits).await.unwrap(),
        HoldPlaced::Taken,
        "{name}"
    );
    let c = store.counts().await.unwrap();
    assert_eq!((c.timers, c.held_bytes), (1, 100), "{name}");
    assert_eq!(c.envelopes, 0, "{name}: an alert held waits in no mailbox");

    // A check-in moves it two hours later.
    let moved = store
        .check_in(&CheckIn::postpone(&key(1), 1, NOW + 5), NOW)
        .await
        .unwrap();
    assert_eq!(
        moved,
        CheckedIn::Held(TimerState {
            release_hour: NOW + 5,
            seq: 1
        }),
        "{name}"
    );
    // Refused, nothing changed: replayed, stale, earlier, too far ahead,
    // not after the current hour.
    for (ci, why) in [
        (CheckIn::postpone(&key(1), 1, NOW + 6), "replayed"),
        (CheckIn::postpone(&key(1), 0, NOW + 6), "stale"),
        (CheckIn::postpone(&key(1), 2, NOW + 4), "earlier"),
        (
            CheckIn::postpone(
                &key(1),
                2,
                NOW + 1 + amparo_protocol::timer::MAX_AHEAD_HOURS,
            ),
            "too far",
        ),
        (CheckIn::cancel(&key(1), 1), "a replayed cancel"),
    ] {
        assert!(
            matches!(
                store.check_in(&ci, NOW).await.unwrap(),
                CheckedIn::Refused(_)
            ),
            "{name}: {why}"
        );
    }
    // A check-in signed by another key names another timer.
    assert_eq!(
        store
            .check_in(&CheckIn::postpone(&key(2), 5, NOW + 9), NOW)
            .await
            .unwrap(),
        CheckedIn::Unknown,
        "{name}"
    );
    // The duress check-in: the same hour, taken, postpones nothing.
    assert_eq!(
        store
            .check_in(&CheckIn::postpone(&key(1), 2, NOW + 5), NOW)
            .await
            .unwrap(),
        CheckedIn::Held(TimerState {
            release_hour: NOW + 5,
            seq: 2
        }),
        "{name}"
    );

    // Not released before its hour, whatever the passes.
    for hour in [NOW, NOW + 3, NOW + 4] {
        assert_eq!(store.release_due(hour, 64).await.unwrap(), 0, "{name}");
    }
    assert!(
        mailbox_ids(&store, 7).await.is_empty(),
        "{name}: none early"
    );
    // Its hour has come: a check-in can no longer take it back.
    assert!(
        matches!(
            store
                .check_in(&CheckIn::postpone(&key(1), 3, NOW + 8), NOW + 5)
                .await
                .unwrap(),
            CheckedIn::Refused(_)
        ),
        "{name}: too late"
    );
    assert_eq!(store.release_due(NOW + 5, 64).await.unwrap(), 1, "{name}");
    assert_eq!(
        mailbox_ids(&store, 7).await,
        vec![EnvelopeId::of(&h.envelope).0],
        "{name}: released into its mailbox"
    );
    assert_eq!(
        store.release_due(NOW + 6, 64).await.unwrap(),
        0,
        "{name}: once"
    );
    let c = store.counts().await.unwrap();
    assert_eq!((c.timers, c.held_bytes), (0, 0), "{name}");
    assert_eq!((c.envelopes, c.bytes), (1, 100), "{name}");
    assert_eq!(store.mailbox_usage(&[7; 12]).await.unwrap().envelopes, 1);
    // Released: check-ins find nothing; its hold names a past hour (the
    // HTTP layer refuses it) and, given to the store, is a new timer.
    assert_eq!(
        store
            .check_in(&CheckIn::postpone(&key(1), 9, NOW + 9), NOW + 6)
            .await
            .unwrap(),
        CheckedIn::Unknown,
        "{name}"
    );

    // Cancelled: the alert is gone; the timer is remembered until its hour
    // so the hold sent again is refused; then forgotten.
    let h3 = hold(3, NOW + 10, 7, 50);
    held(store.hold(&h3, &q, &limits).await.unwrap());
    assert_eq!(
        store
            .check_in(&CheckIn::cancel(&key(3), 1), NOW)
            .await
            .unwrap(),
        CheckedIn::Cancelled,
        "{name}"
    );
    assert_eq!(
        store.hold(&h3, &q, &limits).await.unwrap(),
        HoldPlaced::Taken,
        "{name}: a cancelled alert does not come back"
    );
    assert_eq!(
        store
            .check_in(&CheckIn::postpone(&key(3), 2, NOW + 11), NOW)
            .await
            .unwrap(),
        CheckedIn::Unknown,
        "{name}"
    );
    let c = store.counts().await.unwrap();
    assert_eq!((c.timers, c.held_bytes), (1, 0), "{name}");
    assert_eq!(store.release_due(NOW + 10, 64).await.unwrap(), 0, "{name}");
    assert_eq!(
        mailbox_ids(&store, 7).await.len(),
        1,
        "{name}: not released"
    );
    let c = store.counts().await.unwrap();
    assert_eq!(c.timers, 0, "{name}: forgotten at its hour");
}

async fn caps<S: Store>(store: S, name: &str) {
    let q = quota(1_000_000);
    let two = TimerLimits {
        max_timers: 2,
        mailbox_max_held: 1,
    };
    held(
        store
            .hold(&hold(1, NOW + 1, 1, 10), &q, &two)
            .await
            .unwrap(),
    );
    assert_eq!(
        store
            .hold(&hold(2, NOW + 1, 1, 10), &q, &two)
            .await
            .unwrap(),
        HoldPlaced::Full(HeldFull::Mailbox),
        "{name}"
    );
    held(
        store
            .hold(&hold(3, NOW + 1, 2, 10), &q, &two)
            .await
            .unwrap(),
    );
    assert_eq!(
        store
            .hold(&hold(4, NOW + 1, 3, 10), &q, &two)
            .await
            .unwrap(),
        HoldPlaced::Full(HeldFull::Timers),
        "{name}"
    );
    // Alerts held count towards the global cap, and a cap refuses an
    // upload over it.
    let small = quota(30);
    let wide = TimerLimits::default();
    assert_eq!(
        store
            .hold(&hold(5, NOW + 1, 4, 11), &small, &wide)
            .await
            .unwrap(),
        HoldPlaced::Full(HeldFull::Relay),
        "{name}"
    );
    held(
        store
            .hold(&hold(5, NOW + 1, 4, 10), &small, &wide)
            .await
            .unwrap(),
    );
    let placed = store
        .insert_within(
            &[amparo_relay::store::NewEnvelope {
                id: [0xee; 16],
                mailbox: [4; 12],
                arrival_hour: NOW,
                bytes: vec![1; 1],
            }],
            &small,
        )
        .await
        .unwrap();
    assert!(
        matches!(placed[0], amparo_relay::store::Placed::Full(_)),
        "{name}: {placed:?}"
    );
    let c = store.counts().await.unwrap();
    assert_eq!((c.timers, c.held_bytes), (3, 30), "{name}");
    // Nothing refused was written.
    assert_eq!(store.release_due(NOW + 1, 64).await.unwrap(), 3, "{name}");
    let c = store.counts().await.unwrap();
    assert_eq!((c.timers, c.held_bytes, c.envelopes), (0, 0, 3), "{name}");
}

/// Many alerts due, released by passes on `stores` (handles on one
/// database: on PostgreSQL, separate relays) at once, while check-ins race
/// them: every alert released exactly once, the ones moved never.
async fn concurrently<S: Store>(stores: &[S], name: &str) {
    let q = quota(100_000_000);
    let limits = TimerLimits::default();
    let n = 150u8;
    for i in 0..n {
        held(
            stores[0]
                .hold(&hold(i, NOW + 1, 8, 200), &q, &limits)
                .await
                .unwrap(),
        );
    }
    // Every tenth is moved before its hour by a check-in racing the passes.
    let moved: HashSet<u8> = (0..n).filter(|i| i % 10 == 0).collect();
    let mut tasks = Vec::new();
    for (k, s) in stores.iter().cycle().take(6).enumerate() {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut released = 0;
            loop {
                let r = s.release_due(NOW + 1, 8 + k as u32).await.unwrap();
                released += r;
                if r == 0 {
                    return released;
                }
            }
        }));
    }
    let mut checks = Vec::new();
    for i in moved.iter().copied() {
        let s = stores[usize::from(i) % stores.len()].clone();
        checks.push(tokio::spawn(async move {
            s.check_in(&CheckIn::postpone(&key(i), 1, NOW + 3), NOW)
                .await
                .unwrap()
        }));
    }
    let mut released = 0;
    for t in tasks {
        released += t.await.unwrap();
    }
    let mut kept = HashSet::new();
    for (t, i) in checks.into_iter().zip(moved.iter().copied()) {
        match t.await.unwrap() {
            CheckedIn::Held(_) => {
                kept.insert(i);
            }
            // The pass got there first: released, not moved.
            CheckedIn::Unknown => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    let ids = mailbox_ids(&stores[0], 8).await;
    let distinct: HashSet<[u8; 16]> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "{name}: each once");
    assert_eq!(
        released as usize,
        ids.len(),
        "{name}: passes counted what they moved"
    );
    assert_eq!(ids.len(), usize::from(n) - kept.len(), "{name}");
    for i in &kept {
        let id = EnvelopeId::of(&[*i; 200]).0;
        assert!(
            !distinct.contains(&id),
            "{name}: {i} was moved, not released"
        );
    }
    // The moved ones go at their new hour, once.
    let mut later = 0;
    for s in stores {
        later += s.release_due(NOW + 3, 64).await.unwrap();
    }
    assert_eq!(later as usize, kept.len(), "{name}");
    assert_eq!(
        mailbox_ids(&stores[0], 8).await.len(),
        usize::from(n),
        "{name}"
    );
}

#[tokio::test]
async fn sqlite_timers() {
    let dir = tempfile::tempdir().unwrap();
    lifecycle(SqliteStore::open_in(dir.path()).await.unwrap(), "sqlite").await;
    let dir = tempfile::tempdir().unwrap();
    caps(SqliteStore::open_in(dir.path()).await.unwrap(), "sqlite").await;
}

#[tokio::test]
async fn postgres_timers() {
    let Some(admin) = common::postgres_admin_url() else {
        return;
    };
    let db = common::TestDb::create(&admin);
    lifecycle(PgStore::open(&db.url).await.unwrap(), "postgres").await;
    let db = common::TestDb::create(&admin);
    caps(PgStore::open(&db.url).await.unwrap(), "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_timers_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    concurrently(&[store], "sqlite").await;
}

/// Two relays on one PostgreSQL database (two stores, two pools).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_relays_release_once() {
    let Some(admin) = common::postgres_admin_url() else {
        return;
    };
    let db = common::TestDb::create(&admin);
    let a = PgStore::open(&db.url).await.unwrap();
    let b = PgStore::open(&db.url).await.unwrap();
    concurrently(&[a, b], "postgres").await;
}
