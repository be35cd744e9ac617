//! One conformance suite for every storage backend: the same assertions run
//! on SQLite and on PostgreSQL, so the HTTP layer can rely on the trait alone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amparo_relay::store::{NewEnvelope, PgStore, SqliteStore, Store, StoreCounts};

fn env(id: u8, mailbox: u8, hour: u32, len: usize) -> NewEnvelope {
    NewEnvelope {
        id: [id; 16],
        mailbox: [mailbox; 12],
        arrival_hour: hour,
        bytes: vec![id; len],
    }
}

async fn conformance<S: Store>(store: S, name: &str) {
    // Insert: fresh, then idempotent with the first arrival hour on record.
    let first = store
        .insert_envelopes(&[env(1, 1, 100, 10), env(2, 1, 100, 20), env(3, 2, 100, 30)])
        .await
        .unwrap();
    assert!(
        first.iter().all(|s| s.fresh && s.arrival_hour == 100),
        "{name}"
    );
    let again = store
        .insert_envelopes(&[env(2, 1, 105, 20), env(4, 1, 105, 40), env(4, 1, 105, 40)])
        .await
        .unwrap();
    assert_eq!(
        again[0].arrival_hour, 100,
        "{name}: resend keeps the first arrival hour"
    );
    assert!(!again[0].fresh);
    assert!(again[1].fresh && again[1].arrival_hour == 105);
    assert!(
        !again[2].fresh,
        "{name}: a second copy in one batch is not fresh"
    );
    assert_eq!(
        store.counts().await.unwrap(),
        StoreCounts {
            envelopes: 4,
            bytes: 100
        },
        "{name}"
    );

    // Fetch: only the mailbox's envelopes, in cursor order, paged.
    let page = store.fetch(&[1; 12], 0, 10).await.unwrap();
    assert_eq!(page.len(), 3, "{name}");
    assert!(page.windows(2).all(|w| w[0].cursor < w[1].cursor));
    let mut bodies: Vec<u8> = page.iter().map(|e| e.bytes[0]).collect();
    bodies.sort();
    assert_eq!(bodies, vec![1, 2, 4]);
    let first_two = store.fetch(&[1; 12], 0, 2).await.unwrap();
    let rest = store
        .fetch(&[1; 12], first_two[1].cursor, 10)
        .await
        .unwrap();
    assert_eq!(first_two.len() + rest.len(), 3);
    assert!(store.fetch(&[9; 12], 0, 10).await.unwrap().is_empty());

    // Ack: only the mailbox's own ids; acknowledged bodies disappear; a
    // re-insert of an acknowledged id stays acknowledged.
    assert_eq!(
        store.ack(&[2; 12], &[[1; 16]]).await.unwrap(),
        0,
        "{name}: ack of another mailbox's id"
    );
    assert_eq!(
        store
            .ack(&[1; 12], &[[1; 16], [2; 16], [7; 16]])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.ack(&[1; 12], &[[1; 16]]).await.unwrap(),
        0,
        "{name}: ack twice"
    );
    let page = store.fetch(&[1; 12], 0, 10).await.unwrap();
    assert_eq!(page.len(), 1);
    let late = store.insert_envelopes(&[env(1, 1, 110, 10)]).await.unwrap();
    assert_eq!((late[0].arrival_hour, late[0].fresh), (100, false));
    assert_eq!(
        store.fetch(&[1; 12], 0, 10).await.unwrap().len(),
        1,
        "{name}: no redelivery"
    );

    // Expire: by arrival hour, tombstones included.
    assert_eq!(store.expire(101).await.unwrap(), 3, "{name}");
    assert_eq!(store.fetch(&[2; 12], 0, 10).await.unwrap().len(), 0);
    assert_eq!(store.fetch(&[1; 12], 0, 10).await.unwrap().len(), 1);
    let after_expiry = store.insert_envelopes(&[env(1, 1, 120, 10)]).await.unwrap();
    assert!(
        after_expiry[0].fresh,
        "{name}: after retention an id is new again"
    );

    // Directory: only higher versions replace.
    assert_eq!(store.directory().await.unwrap(), None);
    assert!(store.put_directory(5, b"five").await.unwrap());
    assert!(!store.put_directory(5, b"other five").await.unwrap());
    assert!(!store.put_directory(4, b"four").await.unwrap());
    assert_eq!(
        store.directory().await.unwrap(),
        Some((5, b"five".to_vec())),
        "{name}"
    );
    assert!(store.put_directory(6, b"six").await.unwrap());
    assert_eq!(store.directory().await.unwrap(), Some((6, b"six".to_vec())));
    assert!(
        store
            .put_directory(i64::MAX as u64 + 1, b"x")
            .await
            .is_err(),
        "{name}: out of range"
    );

    // Replay ids: seen once.
    assert!(store.remember_request(&[1; 16], 200).await.unwrap());
    assert!(
        !store.remember_request(&[1; 16], 200).await.unwrap(),
        "{name}"
    );
    assert!(store.remember_request(&[2; 16], 300).await.unwrap());
    assert_eq!(store.forget_requests(250).await.unwrap(), 1);
    assert!(
        store.remember_request(&[1; 16], 400).await.unwrap(),
        "{name}: forgotten after expiry"
    );

    // Concurrent inserts of overlapping batches store each id once.
    let mut tasks = Vec::new();
    for t in 0..8u8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let batch: Vec<_> = (0..40u8)
                .map(|i| env(100 + ((i + t * 5) % 60), 3, 130, 8))
                .collect();
            s.insert_envelopes(&batch).await.unwrap()
        }));
    }
    let mut fresh = 0;
    for t in tasks {
        fresh += t.await.unwrap().iter().filter(|s| s.fresh).count();
    }
    let stored = store.fetch(&[3; 12], 0, 500).await.unwrap();
    assert_eq!(
        stored.len(),
        fresh,
        "{name}: every stored envelope was fresh exactly once"
    );
    let mut ids: Vec<u8> = stored.iter().map(|e| e.bytes[0]).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), stored.len(), "{name}: no duplicates");
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    conformance(store, "sqlite").await;
    // Reopening migrates nothing twice and keeps the data.
    let again = SqliteStore::open_in(dir.path()).await.unwrap();
    assert!(again.directory().await.unwrap().is_some());
}

#[tokio::test]
async fn postgres_store_conforms() {
    let Some(admin) = common::postgres_admin_url() else {
        return;
    };
    let db = common::TestDb::create(&admin);
    let store = PgStore::open(&db.url).await.unwrap();
    conformance(store, "postgres").await;
    let again = PgStore::open(&db.url).await.unwrap();
    assert!(again.directory().await.unwrap().is_some());
}
