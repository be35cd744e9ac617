//! Storage limits over HTTP (issue 15.1): per-mailbox caps that know focal
//! points' mailboxes from the directory, the global cap, the disk
//! watermark, their counts in /metrics, and a field relay that keeps
//! forwarding past envelopes its upstream postponed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use amparo_protocol::b64;
use amparo_protocol::directory::{Directory, FocalPoint, LocalizedText};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::payload::{Language, Need};
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::wire::{EnvelopeResult, RejectCode};
use amparo_relay::config::Upstream;
use amparo_relay::field::Field;
use amparo_relay::quota::{MailboxCap, Quotas, StorageLimits};
use amparo_relay::shared::{Clock, Limits, system_clock};
use amparo_relay::store::{SqliteStore, Store};
use amparo_relay::{RelayOptions, serve};
use common::*;

fn keys() -> RecipientKeys {
    RecipientKeys::generate(&mut SystemEntropy::new()).unwrap()
}

fn directory_listing(focal: &RecipientKeys) -> Directory {
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

fn codes(results: &[EnvelopeResult]) -> Vec<Option<RejectCode>> {
    results
        .iter()
        .map(|r| match r {
            EnvelopeResult::Accepted(_) => None,
            EnvelopeResult::Rejected(c) => Some(*c),
        })
        .collect()
}

fn accepted(results: &[EnvelopeResult]) -> usize {
    codes(results).iter().filter(|c| c.is_none()).count()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn mailbox_caps_know_focal_points_from_the_directory() {
    for backend in backends() {
        let name = backend.name();
        let coordinator = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
        let key = b64::encode(coordinator.verifying_key().as_bytes());
        let relay = Relay::start(
            backend.database_url(),
            &[
                &format!("--coordinator-key={key}"),
                "--mailbox-max-envelopes",
                "4",
                "--reply-mailbox-max-envelopes",
                "2",
            ],
        );
        let c = client();
        let focal = keys();
        let reply = keys();

        // No directory yet: every mailbox gets the focal point's cap.
        let early = post_batch(&c, &relay, &[envelope_for(&reply, 10)]).await;
        assert_eq!(accepted(&early), 1, "{name}");
        let early = post_batch(
            &c,
            &relay,
            &[envelope_for(&reply, 10), envelope_for(&reply, 10)],
        )
        .await;
        assert_eq!(accepted(&early), 2, "{name}: 3 in a reply mailbox");

        let statistics = keys();
        let mut listing = directory_listing(&focal);
        listing.statistics = Some(statistics.public());
        let signed = listing.sign(1, &coordinator).unwrap();
        let r = c
            .put(relay.url("/v1/directory"))
            .body(signed.as_bytes().to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");

        // The coordinator's statistics mailbox has a focal point's cap, not
        // a reply mailbox's.
        let to_statistics: Vec<_> = (0..3).map(|_| envelope_for(&statistics, 10)).collect();
        let results = post_batch(&c, &relay, &to_statistics).await;
        assert_eq!(accepted(&results), 3, "{name}: {:?}", codes(&results));

        // The focal point's mailbox takes 4, the reply mailbox no more
        // (it already holds 3, over its cap of 2: nothing is dropped).
        let to_focal: Vec<_> = (0..5).map(|_| envelope_for(&focal, 10)).collect();
        let focal_results = post_batch(&c, &relay, &to_focal).await;
        assert_eq!(accepted(&focal_results), 4, "{name}");
        assert_eq!(
            codes(&focal_results)
                .iter()
                .filter(|c| **c == Some(RejectCode::MailboxFull))
                .count(),
            1
        );
        let results = post_batch(&c, &relay, &[envelope_for(&reply, 10)]).await;
        assert_eq!(codes(&results), vec![Some(RejectCode::MailboxFull)]);
        assert_eq!(fetch_all(&c, &relay, &reply).await.len(), 3, "{name}");
        let held = fetch_all(&c, &relay, &focal).await;
        assert_eq!(held.len(), 4, "{name}: the refused one is not stored");

        // A copy of a stored envelope gets its receipt although the mailbox
        // is full.
        let stored: Vec<_> = to_focal
            .iter()
            .zip(&focal_results)
            .filter(|(_, r)| matches!(r, EnvelopeResult::Accepted(_)))
            .map(|(e, _)| e.clone())
            .collect();
        let again = post_batch(&c, &relay, &stored).await;
        assert_eq!(accepted(&again), 4, "{name}: copies cost nothing");

        // After she acknowledges one, the refused one is accepted.
        let first = held[0].1.id().to_string();
        let (status, _) = ack(&c, &relay, &focal, &[first]).await;
        assert_eq!(status, 200);
        let again = post_batch(&c, &relay, &to_focal).await;
        assert_eq!(accepted(&again), 5, "{name}: {:?}", codes(&again));
        assert_eq!(fetch_all(&c, &relay, &focal).await.len(), 4);

        let m = metrics_text(&c, &relay).await;
        assert_eq!(
            metric(
                &m,
                "amparo_envelopes_rejected_total{reason=\"mailbox_full\"}"
            ),
            2,
            "{name}"
        );
        assert_eq!(metric(&m, "amparo_mailbox_limit_envelopes"), 4);
        assert_eq!(metric(&m, "amparo_reply_mailbox_limit_envelopes"), 2);
        assert_eq!(metric(&m, "amparo_envelopes_stored"), 10, "{name}");
    }
}

#[tokio::test]
async fn the_global_cap_refuses_with_relay_full() {
    for backend in backends() {
        let name = backend.name();
        // 65598 bytes: sixty 1086-byte envelopes.
        let relay = Relay::start(backend.database_url(), &["--max-stored-bytes", "65598"]);
        let c = client();
        let batch: Vec<_> = (0..61).map(|_| envelope_for(&keys(), 10)).collect();
        assert!(batch.iter().all(|e| e.as_bytes().len() == 1086));
        let results = post_batch(&c, &relay, &batch).await;
        assert_eq!(accepted(&results), 60, "{name}");
        assert_eq!(
            codes(&results)
                .iter()
                .filter(|c| **c == Some(RejectCode::RelayFull))
                .count(),
            1
        );
        let m = metrics_text(&c, &relay).await;
        assert_eq!(
            metric(&m, "amparo_envelopes_rejected_total{reason=\"relay_full\"}"),
            1
        );
        assert_eq!(metric(&m, "amparo_storage_limit_bytes"), 65598);
        assert_eq!(metric(&m, "amparo_envelope_bytes_stored"), 60 * 1086);
    }
}

#[tokio::test]
async fn settings_below_one_envelope_are_refused() {
    let out = std::process::Command::new(relay_binary())
        .args(["--reply-mailbox-max-bytes", "1000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reply_mailbox_max_bytes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = std::process::Command::new(relay_binary())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--mailbox-max-envelopes",
        "--mailbox-max-bytes",
        "--reply-mailbox-max-envelopes",
        "--reply-mailbox-max-bytes",
        "--max-stored-bytes",
        "--min-free-disk-bytes",
        "--field-cache-mailbox-bytes",
        "--field-cache-max-bytes",
    ] {
        assert!(help.contains(flag), "{flag} in --help");
    }
    let out = std::process::Command::new(relay_binary())
        .args([
            "--upstream",
            "http://127.0.0.1:9",
            "--upstream-key",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "--field-cache-max-bytes",
            "1000",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("field_cache_max_bytes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An in-process relay with these limits and disk probe.
fn in_process(
    store: SqliteStore,
    limits: StorageLimits,
    free: Option<Arc<AtomicU64>>,
    clock: Clock,
) -> (
    std::net::SocketAddr,
    SigningKey,
    actix_web::dev::ServerHandle,
) {
    let receipt_key = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
    let probe = free.map(|f| {
        Arc::new(move || Some(f.load(Ordering::SeqCst))) as amparo_relay::quota::DiskProbe
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = serve(
        store,
        SigningKey::from_seed(&receipt_key.dangerously_export_seed()).unwrap(),
        RelayOptions {
            limits: Limits {
                max_body_bytes: 8 << 20,
                max_batch: 256,
                max_page: 500,
            },
            coordinator_key: None,
            workers: Some(1),
            metrics: amparo_relay::metrics::MetricsAccess::Open,
            metrics_listener: None,
            quotas: Some(Arc::new(Quotas::new(limits, None, probe))),
            admission_max_effort: 0,
            tokens: Default::default(),
            timers: Default::default(),
        },
        clock,
        listener,
    )
    .unwrap();
    let handle = server.handle();
    tokio::spawn(server);
    (addr, receipt_key, handle)
}

async fn post_to(
    c: &reqwest::Client,
    addr: std::net::SocketAddr,
    envelopes: &[&amparo_protocol::envelope::Envelope],
) -> Vec<EnvelopeResult> {
    let body = amparo_protocol::wire::encode_batch(envelopes.iter().map(|e| e.as_bytes()));
    let r = c
        .post(format!("http://{addr}/v1/envelopes"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    amparo_protocol::wire::decode_results(&r.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn the_disk_watermark_refuses_new_envelopes_not_copies() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    const GIB: u64 = 1 << 30;
    let free = Arc::new(AtomicU64::new(10 * GIB));
    let limits = StorageLimits {
        min_free_disk_bytes: GIB,
        ..StorageLimits::default()
    };
    let (addr, _, handle) = in_process(store.clone(), limits, Some(free.clone()), system_clock());
    let c = client();
    let focal = keys();
    let first = envelope_for(&focal, 10);
    assert_eq!(accepted(&post_to(&c, addr, &[&first]).await), 1);
    // 1 GiB + 1000 bytes free: one 1086-byte envelope would pass the mark.
    free.store(GIB + 1000, Ordering::SeqCst);
    let second = envelope_for(&focal, 10);
    let results = post_to(&c, addr, &[&second, &first]).await;
    assert_eq!(
        codes(&results),
        vec![Some(RejectCode::RelayFull), None],
        "a new envelope is refused; a copy gets its receipt"
    );
    assert_eq!(store.counts().await.unwrap().envelopes, 1);
    let m = c
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&m, "amparo_disk_free_bytes"), GIB + 1000);
    assert_eq!(metric(&m, "amparo_disk_min_free_bytes"), GIB);
    assert_eq!(
        metric(&m, "amparo_envelopes_rejected_total{reason=\"relay_full\"}"),
        1
    );
    // Space comes back: accepted again.
    free.store(2 * GIB, Ordering::SeqCst);
    assert_eq!(accepted(&post_to(&c, addr, &[&second]).await), 1);
    handle.stop(false).await;
}

/// A field relay whose upstream holds one mailbox full keeps forwarding the
/// envelopes queued behind that mailbox's (it used to send the queue's head
/// again and again), and keeps the postponed ones queued.
#[tokio::test]
async fn forwarding_goes_past_envelopes_the_upstream_postponed() {
    let central_dir = tempfile::tempdir().unwrap();
    let central = SqliteStore::open_in(central_dir.path()).await.unwrap();
    let limits = StorageLimits {
        focal: MailboxCap {
            envelopes: 2,
            bytes: u64::MAX,
        },
        ..StorageLimits::default()
    };
    let (addr, central_key, handle) = in_process(central.clone(), limits, None, system_clock());

    let field_dir = tempfile::tempdir().unwrap();
    let field_store = SqliteStore::open_in(field_dir.path()).await.unwrap();
    let full = keys();
    let other = keys();
    // The queue: 70 envelopes for one mailbox, then one for another.
    let flood: Vec<_> = (0..70).map(|_| envelope_for(&full, 10)).collect();
    let queued: Vec<_> = flood
        .iter()
        .map(|e| amparo_relay::store::NewEnvelope {
            id: e.id().0,
            mailbox: e.mailbox().0,
            arrival_hour: 1,
            bytes: e.as_bytes().to_vec(),
        })
        .collect();
    field_store.insert_envelopes(&queued).await.unwrap();
    let last = envelope_for(&other, 10);
    field_store
        .insert_envelopes(&[amparo_relay::store::NewEnvelope {
            id: last.id().0,
            mailbox: last.mailbox().0,
            arrival_hour: 1,
            bytes: last.as_bytes().to_vec(),
        }])
        .await
        .unwrap();
    let field = Field::new(
        field_store.clone(),
        Upstream {
            url: format!("http://{addr}"),
            key: Some(central_key.verifying_key()),
            interval_secs: 10,
            cache: Default::default(),
        },
        None,
        system_clock(),
    )
    .unwrap();
    let done = field.forward_all().await.unwrap();
    assert_eq!(done.delivered, 3, "{done:?}");
    assert_eq!(done.refused, 0);
    assert!(done.postponed >= 1, "{done:?}");
    // /metrics counts what was forwarded and postponed, nothing per client.
    let metrics = amparo_relay::metrics::Metrics::default();
    metrics.attach_field(field.counts());
    let text = metrics.render(None, None);
    assert_eq!(metric(&text, "amparo_field_forwarded_total"), 3);
    assert_eq!(
        metric(&text, "amparo_field_postponed_total"),
        done.postponed as u64
    );
    assert_eq!(metric(&text, "amparo_field_refused_total"), 0);
    assert_eq!(
        central
            .fetch(&other.mailbox().0, 0, 10)
            .await
            .unwrap()
            .len(),
        1,
        "the envelope behind the full mailbox's went"
    );
    // The postponed ones stay queued (nothing dropped), and their bytes
    // still count against the field relay's own caps.
    assert_eq!(field_store.queued_count().await.unwrap(), 68);
    assert_eq!(field_store.counts().await.unwrap().envelopes, 68);
    // Once the focal point acknowledges upstream, the next round goes on.
    let page = central.fetch(&full.mailbox().0, 0, 10).await.unwrap();
    let ids: Vec<[u8; 16]> = page
        .iter()
        .map(|e| amparo_protocol::envelope::EnvelopeId::of(&e.bytes).0)
        .collect();
    assert_eq!(central.ack(&full.mailbox().0, &ids).await.unwrap(), 2);
    let done = field.forward_all().await.unwrap();
    assert_eq!(done.delivered, 2, "{done:?}");
    let text = metrics.render(None, None);
    assert_eq!(metric(&text, "amparo_field_forwarded_total"), 5);
    assert_eq!(field_store.queued_count().await.unwrap(), 66);
    handle.stop(false).await;
}

/// A field relay whose upstream is full as a whole (`relay_full`) ends its
/// round at the first batch the upstream refuses: the rest of the queue
/// waits here for the next round instead of crossing the link to be
/// refused too (it used to send the whole queue again every round).
#[tokio::test]
async fn a_full_upstream_ends_the_forwarding_round() {
    let central_dir = tempfile::tempdir().unwrap();
    let central = SqliteStore::open_in(central_dir.path()).await.unwrap();
    let size = envelope_for(&keys(), 10).as_bytes().len() as u64;
    // Room for three envelopes in all, and for three again once they are
    // acknowledged (their rows count at a fixed cost).
    let limits = StorageLimits {
        max_stored_bytes: 3 * size + 3 * amparo_relay::quota::ACKNOWLEDGED_ROW_BYTES,
        ..StorageLimits::default()
    };
    let (addr, central_key, handle) = in_process(central.clone(), limits, None, system_clock());

    let field_dir = tempfile::tempdir().unwrap();
    let field_store = SqliteStore::open_in(field_dir.path()).await.unwrap();
    // 200 envelopes, each for a mailbox of its own (no mailbox cap in play):
    // four forwarding batches.
    let queued: Vec<_> = (0..200)
        .map(|_| {
            let e = envelope_for(&keys(), 10);
            amparo_relay::store::NewEnvelope {
                id: e.id().0,
                mailbox: e.mailbox().0,
                arrival_hour: 1,
                bytes: e.as_bytes().to_vec(),
            }
        })
        .collect();
    field_store.insert_envelopes(&queued).await.unwrap();
    let field = Field::new(
        field_store.clone(),
        Upstream {
            url: format!("http://{addr}"),
            key: Some(central_key.verifying_key()),
            interval_secs: 10,
            cache: Default::default(),
        },
        None,
        system_clock(),
    )
    .unwrap();
    let done = field.forward_all().await.unwrap();
    assert_eq!(done.delivered, 3, "{done:?}");
    // Only the first batch (64) was sent: 3 taken, 61 refused as relay_full.
    assert_eq!(
        done.postponed, 61,
        "the round went on past relay_full: {done:?}"
    );
    assert_eq!(field_store.queued_count().await.unwrap(), 197);
    let m = client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&m, "amparo_envelopes_rejected_total{reason=\"relay_full\"}"),
        61,
        "the upstream saw one batch of the queue"
    );
    // Room again upstream: the next round goes on from the queue's head.
    for m in queued.iter().map(|q| q.mailbox) {
        let held = central.fetch(&m, 0, 10).await.unwrap();
        let ids: Vec<[u8; 16]> = held
            .iter()
            .map(|e| amparo_protocol::envelope::EnvelopeId::of(&e.bytes).0)
            .collect();
        central.ack(&m, &ids).await.unwrap();
    }
    let done = field.forward_all().await.unwrap();
    assert_eq!(done.delivered, 3, "{done:?}");
    assert_eq!(field_store.queued_count().await.unwrap(), 194);
    handle.stop(false).await;
}
