//! The mailbox caps follow the directory the database holds, wherever it
//! was put: two relays on one PostgreSQL database, a directory uploaded
//! through one, and the other applies the reply-mailbox cap from its next
//! group commit on (not after its 30 s refresh); and a field relay whose
//! store received a directory by mirroring, not through its own PUT route.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use amparo_protocol::b64;
use amparo_protocol::directory::{Directory, FocalPoint, LocalizedText};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::payload::{Language, Need};
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::wire::{EnvelopeResult, RejectCode};
use amparo_relay::commit::Committer;
use amparo_relay::quota::{MailboxCap, Quotas, StorageLimits};
use amparo_relay::store::{NewEnvelope, Placed, SqliteStore, Store};
use common::*;

fn keys() -> RecipientKeys {
    RecipientKeys::generate(&mut SystemEntropy::new()).unwrap()
}

fn listing(focal: &RecipientKeys) -> Directory {
    let t = |s: &str| LocalizedText {
        es: s.into(),
        pt: s.into(),
        en: s.into(),
    };
    Directory {
        statistics: None,
        focal_points: vec![FocalPoint {
            reads: Vec::new(),
            id: "fp".into(),
            name: t("Defensoría"),
            organization: "Org".into(),
            regions: vec!["PE-LIM".into()],
            categories: vec![Need::LegalAdvice],
            languages: vec![Language::Es],
            keys: focal.public(),
            valid_from: 0,
            valid_until: u64::MAX / 2,
        }],
        service_routes: vec![],
        relays: vec![],
    }
}

fn accepted(results: &[EnvelopeResult]) -> usize {
    results
        .iter()
        .filter(|r| matches!(r, EnvelopeResult::Accepted(_)))
        .count()
}

fn full(results: &[EnvelopeResult]) -> usize {
    results
        .iter()
        .filter(|r| matches!(r, EnvelopeResult::Rejected(RejectCode::MailboxFull)))
        .count()
}

/// Issue seen: a relay that never had a directory put through it, on a
/// database holding one, took 45 junk envelopes into a reply mailbox (the
/// focal cap, as with no directory). Both relays here start before the
/// directory exists, so neither read it at start.
#[tokio::test]
async fn a_directory_put_through_one_relay_caps_reply_mailboxes_on_the_other_at_once() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let db = TestDb::create(&admin);
    let coordinator = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
    let key = format!(
        "--coordinator-key={}",
        b64::encode(coordinator.verifying_key().as_bytes())
    );
    let args = [key.as_str(), "--reply-mailbox-max-envelopes", "3"];
    let a = Relay::start(Some(db.url.clone()), &args);
    let b = Relay::start(Some(db.url.clone()), &args);
    let c = client();
    let focal = keys();
    let reply = keys();

    // No directory anywhere yet: the focal cap for every mailbox, on both.
    let early: Vec<_> = (0..5).map(|_| envelope_for(&reply, 10)).collect();
    assert_eq!(accepted(&post_batch(&c, &b, &early).await), 5);

    let signed = listing(&focal).sign(1, &coordinator).unwrap();
    let r = c
        .put(a.url("/v1/directory"))
        .body(signed.as_bytes().to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // At once on the other relay: the reply mailbox (5 held, over its cap
    // of 3; nothing is dropped) takes none of 45 more, in one request or
    // one by one.
    let junk: Vec<_> = (0..45).map(|_| envelope_for(&reply, 10)).collect();
    let results = post_batch(&c, &b, &junk[..40]).await;
    assert_eq!((accepted(&results), full(&results)), (0, 40));
    for e in &junk[40..] {
        let results = post_batch(&c, &b, std::slice::from_ref(e)).await;
        assert_eq!(full(&results), 1);
    }
    assert_eq!(fetch_all(&c, &b, &reply).await.len(), 5);
    // The focal point's mailbox keeps the focal cap there.
    let reports: Vec<_> = (0..10).map(|_| envelope_for(&focal, 10)).collect();
    assert_eq!(accepted(&post_batch(&c, &b, &reports).await), 10);

    // A relay started after the directory was put reads it before it
    // serves: its first upload is capped too.
    let late = Relay::start(Some(db.url.clone()), &args);
    let other = keys();
    let burst: Vec<_> = (0..5).map(|_| envelope_for(&other, 10)).collect();
    let results = post_batch(&c, &late, &burst).await;
    assert_eq!((accepted(&results), full(&results)), (3, 2));
    assert!(
        !b.logs().contains("ERROR"),
        "the other relay logged an error:\n{}",
        b.logs()
    );
}

fn new_envelope(n: u8, mailbox: [u8; 12]) -> NewEnvelope {
    NewEnvelope {
        id: [n; 16],
        mailbox,
        arrival_hour: 500_000,
        bytes: vec![n; 100],
    }
}

/// A field relay stores the directory it mirrors from upstream straight
/// into its database: its caps apply it from the next group commit, as
/// they do one put through its own route.
#[tokio::test]
async fn a_directory_stored_without_the_put_route_applies_from_the_next_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    let coordinator = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
    let limits = StorageLimits {
        reply: MailboxCap {
            envelopes: 2,
            bytes: u64::MAX,
        },
        ..StorageLimits::default()
    };
    let quotas = Arc::new(Quotas::new(limits, Some(coordinator.verifying_key()), None));
    let committer = Committer::start(store.clone(), quotas.clone());
    let focal = keys();
    let reply = [9; 12];
    let stored = |placed: &[Placed]| {
        placed
            .iter()
            .filter(|p| matches!(p, Placed::Stored(s) if s.fresh))
            .count()
    };
    let before: Vec<_> = (1..=3).map(|n| new_envelope(n, reply)).collect();
    assert_eq!(stored(&committer.insert(before).await.unwrap()), 3);

    // As `Field::mirror_directory` does: the store, not the PUT route.
    let signed = listing(&focal).sign(7, &coordinator).unwrap();
    assert!(store.put_directory(7, signed.as_bytes()).await.unwrap());
    let after: Vec<_> = (4..=6).map(|n| new_envelope(n, reply)).collect();
    let placed = committer.insert(after).await.unwrap();
    assert_eq!(stored(&placed), 0, "{placed:?}");
    let to_focal: Vec<_> = (7..=9)
        .map(|n| new_envelope(n, focal.mailbox().0))
        .collect();
    assert_eq!(stored(&committer.insert(to_focal).await.unwrap()), 3);

    // A directory that does not verify (another coordinator) is looked at
    // once and changes nothing: uploads go on under the caps they had.
    let stranger = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
    let forged = Directory {
        focal_points: vec![],
        ..listing(&focal)
    }
    .sign(8, &stranger)
    .unwrap();
    assert!(store.put_directory(8, forged.as_bytes()).await.unwrap());
    let more: Vec<_> = (10..=11)
        .map(|n| new_envelope(n, focal.mailbox().0))
        .collect();
    assert_eq!(stored(&committer.insert(more).await.unwrap()), 2);
    let placed = committer
        .insert(vec![new_envelope(12, reply)])
        .await
        .unwrap();
    assert_eq!(stored(&placed), 0);
}
