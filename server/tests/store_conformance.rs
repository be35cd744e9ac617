//! One conformance suite for every storage backend: the same assertions run
//! on SQLite and on PostgreSQL, so the HTTP layer can rely on the trait alone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use amparo_relay::quota::{
    ACKNOWLEDGED_ROW_BYTES, DirectorySeen, Full, MailboxCap, Quota, StorageLimits, Usage,
};
use amparo_relay::store::{
    NewEnvelope, PageEnd, PageRoom, PgStore, Placed, SqliteStore, Store, StoreCounts,
};

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
            bytes: 100,
            acknowledged: 0,
            ..StoreCounts::default()
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
    assert_eq!(
        store.counts().await.unwrap(),
        StoreCounts {
            envelopes: 2,
            bytes: 70,
            acknowledged: 2,
            ..StoreCounts::default()
        },
        "{name}: the acknowledged rows are counted"
    );
    let late = store.insert_envelopes(&[env(1, 1, 110, 10)]).await.unwrap();
    assert_eq!((late[0].arrival_hour, late[0].fresh), (100, false));
    assert_eq!(
        store.fetch(&[1; 12], 0, 10).await.unwrap().len(),
        1,
        "{name}: no redelivery"
    );

    // Expire: by arrival hour, tombstones included.
    assert_eq!(store.expire(101).await.unwrap(), 3, "{name}");
    assert_eq!(
        store.counts().await.unwrap(),
        StoreCounts {
            envelopes: 1,
            bytes: 40,
            acknowledged: 0,
            ..StoreCounts::default()
        },
        "{name}: expired rows, acknowledged or not, count no more"
    );
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

/// Focal mailboxes hold 3 envelopes or 100 bytes, reply mailboxes 1 or 50;
/// mailbox 1 is the only focal point's.
fn small_caps() -> Quota {
    Quota {
        limits: StorageLimits {
            focal: MailboxCap {
                envelopes: 3,
                bytes: 100,
            },
            reply: MailboxCap {
                envelopes: 1,
                bytes: 50,
            },
            max_stored_bytes: 1_000,
            min_free_disk_bytes: 0,
        },
        focal_mailboxes: Some(Arc::new(HashSet::from([[1; 12]]))),
        disk_room: None,
        directory: DirectorySeen::Ignored,
        pressure: None,
    }
}

fn stored(p: &Placed) -> bool {
    matches!(p, Placed::Stored(s) if s.fresh)
}

/// Usage on record equals what the mailboxes hold, envelope by envelope.
async fn usage_matches<S: Store>(store: &S, mailboxes: &[u8], name: &str) {
    let mut total = Usage::default();
    for &m in mailboxes {
        let page = store.fetch(&[m; 12], 0, 500).await.unwrap();
        let held = Usage {
            envelopes: page.len() as u64,
            bytes: page.iter().map(|e| e.bytes.len() as u64).sum(),
        };
        assert_eq!(
            store.mailbox_usage(&[m; 12]).await.unwrap(),
            held,
            "{name}: usage of mailbox {m}"
        );
        total.envelopes += held.envelopes;
        total.bytes += held.bytes;
    }
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.envelopes, counts.bytes),
        (total.envelopes, total.bytes),
        "{name}: usage of the relay"
    );
}

async fn caps<S: Store>(store: S, name: &str) {
    let q = small_caps();
    // Envelopes are admitted one after the other: of five for a focal
    // point's mailbox, three fit (the envelope cap), and nothing of the
    // others is stored.
    let batch: Vec<_> = (1..=5).map(|i| env(i, 1, 100, 20)).collect();
    let placed = store.insert_within(&batch, &q).await.unwrap();
    assert_eq!(placed.iter().filter(|p| stored(p)).count(), 3, "{name}");
    let refused: Vec<usize> = (0..5)
        .filter(|&i| placed[i] == Placed::Full(Full::Mailbox))
        .collect();
    assert_eq!(refused.len(), 2, "{name}: {placed:?}");
    assert_eq!(store.fetch(&[1; 12], 0, 10).await.unwrap().len(), 3);
    usage_matches(&store, &[1], name).await;

    // A copy of an envelope held costs nothing: its receipt, full or not.
    let held = (1..=5u8)
        .find(|&i| stored(&placed[usize::from(i) - 1]))
        .unwrap();
    let again = store
        .insert_within(&[env(held, 1, 101, 20)], &q)
        .await
        .unwrap();
    assert!(
        matches!(again[0], Placed::Stored(s) if !s.fresh && s.arrival_hour == 100),
        "{name}: {again:?}"
    );
    // Bytes: 60 held, 50 more would pass 100.
    let q4 = Quota {
        limits: StorageLimits {
            focal: MailboxCap {
                envelopes: 10,
                bytes: 100,
            },
            ..q.limits
        },
        ..q.clone()
    };
    let big = store
        .insert_within(&[env(30, 1, 100, 50)], &q4)
        .await
        .unwrap();
    assert_eq!(big, vec![Placed::Full(Full::Mailbox)], "{name}: bytes");
    let fits = store
        .insert_within(&[env(31, 1, 100, 40)], &q4)
        .await
        .unwrap();
    assert!(stored(&fits[0]), "{name}");
    store.ack(&[1; 12], &[[31; 16]]).await.unwrap();

    // After the owner acknowledges, a refused envelope is accepted.
    let first_refused = batch[refused[0]].clone();
    assert_eq!(store.ack(&[1; 12], &[[held; 16]]).await.unwrap(), 1);
    usage_matches(&store, &[1], name).await;
    let later = store
        .insert_within(std::slice::from_ref(&first_refused), &q)
        .await
        .unwrap();
    assert!(stored(&later[0]), "{name}: accepted after the ack");

    // A mailbox not in the directory is a reply mailbox: a smaller cap,
    // also within one batch.
    let reply: Vec<_> = (40..43).map(|i| env(i, 2, 100, 10)).collect();
    let placed = store.insert_within(&reply, &q).await.unwrap();
    assert_eq!(placed.iter().filter(|p| stored(p)).count(), 1, "{name}");
    assert_eq!(
        placed
            .iter()
            .filter(|p| **p == Placed::Full(Full::Mailbox))
            .count(),
        2
    );
    // With no directory, every mailbox gets the focal point's cap.
    let no_dir = Quota {
        focal_mailboxes: None,
        ..q.clone()
    };
    let placed = store
        .insert_within(&[env(50, 3, 100, 10), env(51, 3, 100, 10)], &no_dir)
        .await
        .unwrap();
    assert!(placed.iter().all(stored), "{name}: {placed:?}");
    usage_matches(&store, &[1, 2, 3], name).await;

    // The global cap: 110 bytes wait, and two acknowledged rows count at
    // their fixed cost; a cap 15 bytes above takes 10 more, not 20.
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.acknowledged, 2, "{name}");
    let held_bytes = counts.bytes + counts.acknowledged * ACKNOWLEDGED_ROW_BYTES;
    let global = Quota {
        limits: StorageLimits {
            max_stored_bytes: held_bytes + 15,
            ..q.limits
        },
        focal_mailboxes: None,
        ..q.clone()
    };
    let placed = store
        .insert_within(&[env(60, 4, 100, 10), env(61, 5, 100, 10)], &global)
        .await
        .unwrap();
    assert_eq!(
        placed.iter().filter(|p| stored(p)).count(),
        1,
        "{name}: {placed:?}"
    );
    assert!(placed.contains(&Placed::Full(Full::Relay)));
    // The disk: 5 bytes of room take no 10-byte envelope; a copy still
    // gets its receipt.
    let disk = Quota {
        disk_room: Some(5),
        focal_mailboxes: None,
        ..q.clone()
    };
    let placed = store
        .insert_within(&[env(70, 6, 100, 10), env(50, 3, 100, 10)], &disk)
        .await
        .unwrap();
    assert_eq!(placed[0], Placed::Full(Full::Relay), "{name}");
    assert!(matches!(placed[1], Placed::Stored(s) if !s.fresh));
    assert!(store.fetch(&[6; 12], 0, 10).await.unwrap().is_empty());
    usage_matches(&store, &[1, 2, 3, 4, 5, 6], name).await;

    // Expiry gives the space back, and forgets the mailboxes.
    store.expire(101).await.unwrap();
    usage_matches(&store, &[1, 2, 3, 4, 5, 6], name).await;
    assert_eq!(store.counts().await.unwrap(), StoreCounts::default());
    let placed = store.insert_within(&reply, &q).await.unwrap();
    assert_eq!(placed.iter().filter(|p| stored(p)).count(), 1, "{name}");

    // Concurrent uploads for one mailbox never pass its cap together.
    let tight = Quota {
        limits: StorageLimits {
            focal: MailboxCap {
                envelopes: 25,
                bytes: 1_000_000,
            },
            max_stored_bytes: u64::MAX,
            ..q.limits
        },
        focal_mailboxes: None,
        ..q.clone()
    };
    let mut tasks = Vec::new();
    for t in 0..8u8 {
        let s = store.clone();
        let q = tight.clone();
        tasks.push(tokio::spawn(async move {
            let batch: Vec<_> = (0..10u8)
                .map(|i| env(100 + t * 10 + i, 9, 200, 8))
                .collect();
            s.insert_within(&batch, &q).await.unwrap()
        }));
    }
    let mut fresh = 0;
    for t in tasks {
        fresh += t.await.unwrap().iter().filter(|p| stored(p)).count();
    }
    assert_eq!(fresh, 25, "{name}");
    assert_eq!(store.fetch(&[9; 12], 0, 500).await.unwrap().len(), 25);
    usage_matches(&store, &[2, 9], name).await;
}

/// Acknowledged rows count against the global cap at a fixed cost each:
/// uploading to mailboxes of one's own and acknowledging, over and over,
/// ends in relay_full instead of rows piling up until retention ends; and
/// expiry (here of some rows of several mailboxes, waiting and
/// acknowledged) gives exactly their cost back.
async fn acknowledged_rows<S: Store>(store: S, name: &str) {
    let q = Quota {
        limits: StorageLimits {
            max_stored_bytes: 10 * ACKNOWLEDGED_ROW_BYTES + 50,
            ..StorageLimits::UNLIMITED
        },
        focal_mailboxes: None,
        disk_room: None,
        directory: DirectorySeen::Ignored,
        pressure: None,
    };
    let mut taken = 0;
    for i in 0..20u8 {
        let e = env(150 + i, 20 + i % 5, 100 + u32::from(i % 2), 10);
        match store
            .insert_within(std::slice::from_ref(&e), &q)
            .await
            .unwrap()[0]
        {
            Placed::Stored(s) if s.fresh => {
                assert_eq!(store.ack(&e.mailbox, &[e.id]).await.unwrap(), 1);
                taken += 1;
            }
            Placed::Full(Full::Relay) => break,
            other => panic!("{name}: {other:?}"),
        }
    }
    // Before the 12th, 11 rows count 1408 bytes: 10 more pass 1330.
    assert_eq!(taken, 11, "{name}");
    assert_eq!(store.counts().await.unwrap().acknowledged, 11, "{name}");
    // Waiting envelopes beside them (stored with no cap), in the same
    // mailboxes, at both hours.
    let waiting: Vec<_> = (0..4u8)
        .map(|i| env(200 + i, 20 + i % 3, 100 + u32::from(i / 2), 1))
        .collect();
    let stored_all = store.insert_envelopes(&waiting).await.unwrap();
    assert!(stored_all.iter().all(|s| s.fresh), "{name}");
    // Expiry of the hour-100 rows: six acknowledged, two waiting.
    assert_eq!(store.expire(101).await.unwrap(), 8, "{name}");
    assert_eq!(
        store.counts().await.unwrap(),
        StoreCounts {
            envelopes: 2,
            bytes: 2,
            acknowledged: 5,
            ..StoreCounts::default()
        },
        "{name}"
    );
    usage_matches(&store, &[20, 21, 22, 23, 24], name).await;
    let e = env(180, 20, 102, 10);
    let placed = store.insert_within(&[e], &q).await.unwrap();
    assert!(stored(&placed[0]), "{name}: room again after expiry");
}

/// A page read within a byte room holds what fits, says why it ended,
/// and reads no body past it.
async fn pages_within<S: Store>(store: S, name: &str) {
    let batch: Vec<_> = (1..=5u8).map(|i| env(i, 30, 100, 100)).collect();
    store.insert_envelopes(&batch).await.unwrap();
    let room = |limit: u32, room: usize| PageRoom {
        limit,
        room,
        item_head: 12,
    };
    let page = store
        .fetch_within(&[30; 12], 0, room(10, 250))
        .await
        .unwrap();
    assert_eq!(
        (page.envelopes.len(), page.end),
        (2, PageEnd::Cut),
        "{name}: two of 112 bytes fit in 250"
    );
    let all = store.fetch(&[30; 12], 0, 10).await.unwrap();
    assert_eq!(page.envelopes, all[..2].to_vec(), "{name}");
    let page = store
        .fetch_within(&[30; 12], 0, room(2, 1 << 20))
        .await
        .unwrap();
    assert_eq!(
        (page.envelopes.len(), page.end),
        (2, PageEnd::More),
        "{name}"
    );
    let page = store
        .fetch_within(&[30; 12], 0, room(5, 560))
        .await
        .unwrap();
    assert_eq!(
        (page.envelopes.len(), page.end),
        (5, PageEnd::Whole),
        "{name}"
    );
    let page = store
        .fetch_within(&[30; 12], 0, room(5, 559))
        .await
        .unwrap();
    assert_eq!(
        (page.envelopes.len(), page.end),
        (4, PageEnd::Cut),
        "{name}"
    );
    let page = store.fetch_within(&[30; 12], 0, room(5, 0)).await.unwrap();
    assert_eq!(
        (page.envelopes.len(), page.end),
        (0, PageEnd::Cut),
        "{name}"
    );
    // From a cursor, past an acknowledged one.
    store.ack(&[30; 12], &[[2; 16]]).await.unwrap();
    let page = store
        .fetch_within(&[30; 12], all[0].cursor, room(2, 1 << 20))
        .await
        .unwrap();
    assert_eq!(
        page.envelopes
            .iter()
            .map(|e| e.bytes[0])
            .collect::<Vec<_>>(),
        vec![3, 4],
        "{name}"
    );
    assert_eq!(page.end, PageEnd::More);
    let page = store
        .fetch_within(&[30; 12], all[3].cursor, room(2, 1 << 20))
        .await
        .unwrap();
    assert_eq!(
        (page.envelopes.len(), page.end),
        (1, PageEnd::Whole),
        "{name}"
    );
}

/// Privacy Pass admission: the issuer key of an epoch is the first one
/// stored, a token is spent once (and can be given back), issuance counts
/// stay within the day's limit, and old rows are forgotten by epoch and day.
async fn tokens<S: Store>(store: S, name: &str) {
    // Keys: the first of two different keys for one epoch stays, and both
    // callers get it.
    assert_eq!(store.token_key(7).await.unwrap(), None, "{name}");
    let first = store.put_token_key(7, b"first key").await.unwrap();
    let second = store.put_token_key(7, b"second key").await.unwrap();
    assert_eq!(first, b"first key".to_vec(), "{name}");
    assert_eq!(second, b"first key".to_vec(), "{name}: the key on record");
    assert_eq!(
        store.token_key(7).await.unwrap(),
        Some(b"first key".to_vec()),
        "{name}"
    );
    assert_eq!(store.token_key(8).await.unwrap(), None, "{name}");
    let other = store.put_token_key(8, b"eighth").await.unwrap();
    assert_eq!(other, b"eighth".to_vec(), "{name}: epochs apart");
    assert_eq!(
        store.token_key(7).await.unwrap(),
        Some(b"first key".to_vec()),
        "{name}"
    );

    // Spent tokens: once only; given back, spendable again.
    assert!(store.spend_token(&[1; 16], 7).await.unwrap(), "{name}");
    assert!(
        !store.spend_token(&[1; 16], 7).await.unwrap(),
        "{name}: spent twice"
    );
    assert!(
        !store.spend_token(&[1; 16], 8).await.unwrap(),
        "{name}: spent twice, under another epoch"
    );
    assert!(store.spend_token(&[2; 16], 7).await.unwrap(), "{name}");
    store.unspend_token(&[1; 16]).await.unwrap();
    assert!(
        store.spend_token(&[1; 16], 7).await.unwrap(),
        "{name}: spendable again once given back"
    );
    assert!(!store.spend_token(&[1; 16], 7).await.unwrap(), "{name}");
    // Giving back a token never spent changes nothing.
    store.unspend_token(&[9; 16]).await.unwrap();
    assert!(!store.spend_token(&[2; 16], 7).await.unwrap(), "{name}");

    // Forgetting spent tokens: older epochs only.
    assert!(store.spend_token(&[3; 16], 8).await.unwrap());
    assert!(store.spend_token(&[4; 16], 9).await.unwrap());
    assert_eq!(store.forget_spent_tokens(7).await.unwrap(), 0, "{name}");
    assert_eq!(store.forget_spent_tokens(9).await.unwrap(), 3, "{name}");
    assert!(
        store.spend_token(&[1; 16], 7).await.unwrap(),
        "{name}: forgotten"
    );
    assert!(
        !store.spend_token(&[4; 16], 9).await.unwrap(),
        "{name}: a newer epoch is kept"
    );
    assert_eq!(
        store.forget_spent_tokens(u32::MAX).await.unwrap(),
        2,
        "{name}: every epoch below the largest bound"
    );

    // Issuance: up to the limit in pieces; a refusal changes nothing.
    let (a, b) = ([0xa; 16], [0xb; 16]);
    assert!(
        store.count_issuance(&a, 100, 4, 10).await.unwrap(),
        "{name}"
    );
    assert!(
        store.count_issuance(&a, 100, 6, 10).await.unwrap(),
        "{name}"
    );
    assert!(
        !store.count_issuance(&a, 100, 1, 10).await.unwrap(),
        "{name}: past the limit"
    );
    assert!(
        store.count_issuance(&a, 100, 0, 10).await.unwrap(),
        "{name}: nothing more fits exactly"
    );
    assert!(
        store.count_issuance(&a, 100, 2, 12).await.unwrap(),
        "{name}: the refusal added nothing (10 + 2 within 12)"
    );
    assert!(
        !store.count_issuance(&a, 100, 1, 12).await.unwrap(),
        "{name}"
    );
    // Another issuer, another day: counted apart.
    assert!(
        store.count_issuance(&b, 100, 10, 10).await.unwrap(),
        "{name}: another issuer"
    );
    assert!(
        store.count_issuance(&a, 101, 10, 10).await.unwrap(),
        "{name}: another day"
    );
    assert!(
        !store.count_issuance(&b, 100, 1, 10).await.unwrap(),
        "{name}"
    );
    // More than the limit on its own, on a first count: refused, and no
    // row is made (the whole limit is left).
    assert!(
        !store.count_issuance(&b, 102, 11, 10).await.unwrap(),
        "{name}: n over the limit"
    );
    assert!(
        store.count_issuance(&b, 102, 10, 10).await.unwrap(),
        "{name}: the refused first count made no row"
    );
    // The largest counts sum without overflow.
    assert!(
        store
            .count_issuance(&b, 103, u32::MAX, u32::MAX)
            .await
            .unwrap(),
        "{name}"
    );
    assert!(
        !store
            .count_issuance(&b, 103, u32::MAX, u32::MAX)
            .await
            .unwrap(),
        "{name}"
    );

    // Forgetting issuance: older days only.
    assert_eq!(store.forget_issuance(100).await.unwrap(), 0, "{name}");
    assert_eq!(store.forget_issuance(101).await.unwrap(), 2, "{name}");
    assert!(
        store.count_issuance(&a, 100, 10, 10).await.unwrap(),
        "{name}: a forgotten day counts from zero"
    );
    assert!(
        !store.count_issuance(&a, 101, 1, 10).await.unwrap(),
        "{name}: a later day is kept"
    );
    assert_eq!(
        store.forget_issuance(u32::MAX).await.unwrap(),
        4,
        "{name}: every day below the largest bound"
    );
}

/// Many relays (or one relay's many requests) at once: one token is spent
/// once, a day's issuance never passes its limit, and every caller of
/// `put_token_key` for one epoch gets the same key. `stores` are handles on
/// one database (on PostgreSQL, each its own pool: separate relays).
async fn tokens_concurrently<S: Store>(stores: &[S], name: &str) {
    let spends: Vec<_> = (0..20usize)
        .map(|i| {
            let s = stores[i % stores.len()].clone();
            tokio::spawn(async move { s.spend_token(&[0x5e; 16], 3).await.unwrap() })
        })
        .collect();
    let mut first = 0;
    for t in spends {
        first += usize::from(t.await.unwrap());
    }
    assert_eq!(first, 1, "{name}: one token, spent once");

    let counts: Vec<_> = (0..20usize)
        .map(|i| {
            let s = stores[i % stores.len()].clone();
            tokio::spawn(async move {
                s.count_issuance(&[0x15; 16], 500, 1 + (i % 2) as u32, 15)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut issued = 0;
    for (i, t) in counts.into_iter().enumerate() {
        if t.await.unwrap() {
            issued += 1 + (i % 2) as u32;
        }
    }
    // Ten ones and ten twos offered against 15: at least 14 issued (a
    // two is only refused at 14), never more than 15.
    assert!((14..=15).contains(&issued), "{name}: {issued} issued");
    let left = 15 - issued;
    let s = &stores[0];
    assert!(
        s.count_issuance(&[0x15; 16], 500, left, 15).await.unwrap(),
        "{name}: what the count holds is what was granted"
    );
    assert!(!s.count_issuance(&[0x15; 16], 500, 1, 15).await.unwrap());

    let keys: Vec<_> = (0..20usize)
        .map(|i| {
            let s = stores[i % stores.len()].clone();
            tokio::spawn(async move { s.put_token_key(40, &[i as u8; 32]).await.unwrap() })
        })
        .collect();
    let mut seen = HashSet::new();
    for t in keys {
        seen.insert(t.await.unwrap());
    }
    assert_eq!(seen.len(), 1, "{name}: one key for the epoch");
    assert_eq!(
        stores[0].token_key(40).await.unwrap().as_ref(),
        seen.iter().next(),
        "{name}"
    );
}

#[tokio::test]
async fn sqlite_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    tokens(store, "sqlite").await;
}

#[tokio::test]
async fn postgres_tokens() {
    let Some(admin) = common::postgres_admin_url() else {
        return;
    };
    let db = common::TestDb::create(&admin);
    let store = PgStore::open(&db.url).await.unwrap();
    tokens(store, "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_tokens_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    tokens_concurrently(&[store], "sqlite").await;
}

/// Two relays on one PostgreSQL database (two stores, two pools).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_relays_share_tokens() {
    let Some(admin) = common::postgres_admin_url() else {
        return;
    };
    let db = common::TestDb::create(&admin);
    let a = PgStore::open(&db.url).await.unwrap();
    let b = PgStore::open(&db.url).await.unwrap();
    tokens_concurrently(&[a, b], "postgres").await;
}

#[tokio::test]
async fn sqlite_pages_within() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    pages_within(store, "sqlite").await;
}

#[tokio::test]
async fn postgres_pages_within() {
    let Some(admin) = common::postgres_admin_url() else {
        return;
    };
    let db = common::TestDb::create(&admin);
    let store = PgStore::open(&db.url).await.unwrap();
    pages_within(store, "postgres").await;
}

#[tokio::test]
async fn sqlite_acknowledged_rows_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    acknowledged_rows(store, "sqlite").await;
}

#[tokio::test]
async fn postgres_acknowledged_rows_count() {
    let Some(admin) = common::postgres_admin_url() else {
        return;
    };
    let db = common::TestDb::create(&admin);
    let store = PgStore::open(&db.url).await.unwrap();
    acknowledged_rows(store, "postgres").await;
}

#[tokio::test]
async fn sqlite_store_caps() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    caps(store, "sqlite").await;
}

#[tokio::test]
async fn postgres_store_caps() {
    let Some(admin) = common::postgres_admin_url() else {
        return;
    };
    let db = common::TestDb::create(&admin);
    let store = PgStore::open(&db.url).await.unwrap();
    caps(store, "postgres").await;
}

/// Two relays on one PostgreSQL database (two stores, two pools) uploading
/// at once to one mailbox: together they store exactly its cap.
#[tokio::test]
async fn postgres_two_relays_share_one_cap() {
    let Some(admin) = common::postgres_admin_url() else {
        return;
    };
    let db = common::TestDb::create(&admin);
    let a = PgStore::open(&db.url).await.unwrap();
    let b = PgStore::open(&db.url).await.unwrap();
    let q = Quota {
        limits: StorageLimits {
            focal: MailboxCap {
                envelopes: 1_000,
                bytes: 40 * 100,
            },
            max_stored_bytes: u64::MAX,
            ..small_caps().limits
        },
        focal_mailboxes: None,
        disk_room: None,
        directory: DirectorySeen::Ignored,
        pressure: None,
    };
    let mut tasks = Vec::new();
    for t in 0..16u16 {
        let s = if t % 2 == 0 { a.clone() } else { b.clone() };
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let batch: Vec<_> = (0..10u16)
                .map(|i| {
                    let n = t * 10 + i;
                    let mut e = env(0, 7, 300, 100);
                    e.id = [0; 16];
                    e.id[..2].copy_from_slice(&n.to_be_bytes());
                    e
                })
                .collect();
            s.insert_within(&batch, &q).await.unwrap()
        }));
    }
    let mut fresh = 0;
    let mut full = 0;
    for t in tasks {
        for p in t.await.unwrap() {
            match p {
                Placed::Stored(s) if s.fresh => fresh += 1,
                Placed::Full(Full::Mailbox) => full += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!((fresh, full), (40, 120));
    assert_eq!(a.fetch(&[7; 12], 0, 500).await.unwrap().len(), 40);
    assert_eq!(
        b.mailbox_usage(&[7; 12]).await.unwrap(),
        Usage {
            envelopes: 40,
            bytes: 4000
        }
    );
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
