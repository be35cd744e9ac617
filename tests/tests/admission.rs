//! Admission work (issue 17, first part), over a real relay process with
//! admission on (`--admission-max-effort 16`) and a small mailbox cap, on
//! SQLite and PostgreSQL: a quiet relay serves a signed challenge asking
//! nothing; once a mailbox is half full, an upload to it without work is
//! refused (429 `work_required`, the effort in `Amparo-Admission-Effort`)
//! and stores nothing; made-up proofs and proofs for other envelopes are
//! refused too; a phone (amparo-core) pays the work by itself and its report
//! is delivered; the mailbox holds exactly what was admitted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::drafts::DraftForm;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::admission::{self, Challenge, Proof};
use amparo_protocol::b64;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::Envelope;
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::wire::{self, EnvelopeResult};
use amparo_tests::crash::{fetch_all, http_exchange, post_batch};
use amparo_tests::{Relay, backends, focal_point_entry, now};

const CAP: usize = 16;

fn junk(to: &RecipientPublic, n: usize) -> Vec<Envelope> {
    amparo_tests::sealed_junk(to, n)
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Posts `envelopes` with `proof` (if any); the status, the effort asked
/// and the body.
fn post(
    relay: &Relay,
    envelopes: &[Envelope],
    proof: Option<&Proof>,
) -> (u16, Option<u32>, Vec<u8>) {
    let body = wire::encode_batch(envelopes.iter().map(|e| e.as_bytes()));
    let headers: Vec<(&str, String)> = proof
        .map(|p| vec![("Amparo-Admission", b64::encode(&p.encode()))])
        .unwrap_or_default();
    let (status, head, body) =
        http_exchange(relay.addr, "POST", "/v1/envelopes", &headers, &body).unwrap();
    let effort = header(&head, "amparo-admission-effort").and_then(|v| v.parse().ok());
    (status, effort, body)
}

/// Work for one envelope on `c` at `effort`.
fn work(c: &Challenge, envelope: &Envelope, effort: u32) -> Proof {
    admission::solve(
        c,
        &[envelope.id()],
        effort,
        &mut SystemEntropy::new(),
        &mut |_| true,
    )
    .unwrap()
    .proof
    .unwrap()
}

fn challenge(relay: &Relay) -> (Challenge, String) {
    let (status, head, body) = http_exchange(relay.addr, "GET", "/v1/admission", &[], b"").unwrap();
    assert_eq!(status, 200);
    let c = Challenge::decode(&body).unwrap();
    c.verify(&relay.receipt_key).unwrap();
    (c, header(&head, "etag").unwrap().to_string())
}

#[tokio::test]
async fn a_pressed_mailbox_asks_work_that_a_phone_pays_and_a_bare_flood_does_not() {
    for backend in backends() {
        let name = backend.name();
        let relay = Relay::start(
            backend.database_url(),
            &[
                "--mailbox-max-envelopes",
                &CAP.to_string(),
                "--admission-max-effort",
                "16",
            ],
        );
        let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let fast = KdfParams::DANGEROUSLY_FAST_FOR_TESTS;
        let office = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
        let focal_keys = office.public();

        // Quiet: the challenge asks nothing, and is 304-able on 2G.
        let (quiet, tag) = challenge(&relay);
        assert_eq!(quiet.effort, 0, "{name}");
        assert!(quiet.good_for_seconds >= 540);
        let (status, _, body) = http_exchange(
            relay.addr,
            "GET",
            "/v1/admission",
            &[("If-None-Match", tag.clone())],
            b"",
        )
        .unwrap();
        assert_eq!((status, body.len()), (304, 0), "{name}");

        // Half the mailbox's cap, without any work.
        let (status, _) = post_batch(relay.addr, &junk(&focal_keys, CAP / 2)).unwrap();
        assert_eq!(status, 200, "{name}");

        // From here an upload to it must pay: without work, or with made-up
        // work, nothing is stored.
        let one = junk(&focal_keys, 1);
        let (status, effort, body) = post(&relay, &one, None);
        // Half full asks the least; but eight arriving at once into a
        // mailbox of 16 is a flood's inflow (a quarter of the cap within
        // ten minutes counts as full), which asks the most.
        assert_eq!((status, effort), (429, Some(16)), "{name}");
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["error"], "work_required", "{name}");
        let made_up = Proof {
            epoch: quiet.epoch,
            nonce: [1; 16],
            effort: 1 << 20,
            solution: [2; 16],
        };
        assert_eq!(post(&relay, &one, Some(&made_up)).0, 429, "{name}");

        // A phone pays by itself: four more go in (the client solves).
        let paid = client.upload(&junk(&focal_keys, 4)).await.unwrap();
        assert!(
            paid.iter()
                .all(|r| matches!(r, EnvelopeResult::Accepted(_))),
            "{name}: {paid:?}"
        );

        // 12 of 16. Work made for some envelopes admits those and no
        // others.
        let (c, _) = challenge(&relay);
        let (status, asked, _) = post(&relay, &one, None);
        assert_eq!(status, 429);
        let asked = asked.unwrap();
        assert_eq!(asked, 16, "{name}: effort at 3/4 full");
        assert_eq!(c.effort, 0, "{name}: the relay itself is not pressed");
        let mine = junk(&focal_keys, 1);
        let proof = work(&c, &mine[0], asked);
        assert_eq!(
            post(&relay, &one, Some(&proof)).0,
            429,
            "{name}: other envelopes"
        );
        let (status, _, _) = post(&relay, &mine, Some(&proof));
        assert_eq!(status, 200, "{name}");
        // An old epoch's work is refused.
        let old = Challenge::sign(
            &amparo_protocol::primitives::ed25519::SigningKey::from_seed(&[5; 32]).unwrap(),
            c.epoch.saturating_sub(2),
            1,
            600,
        );
        let stale = work(&old, &one[0], asked);
        assert_eq!(post(&relay, &one, Some(&stale)).0, 429, "{name}: old epoch");

        // Her report goes through, the work done by the phone.
        let survivor = Profile::create(&dir.path().join("survivor"), "5678", fast).unwrap();
        let fp = focal_point_entry("pe-uca-defensoria", focal_keys);
        let d = survivor
            .create_draft(&DraftForm {
                text: "Me quitaron los documentos en el control.".into(),
                ..DraftForm::default()
            })
            .unwrap();
        survivor.send_draft(&d, &fp, false, now()).unwrap();
        let report_envelopes = survivor.outbox_len().unwrap();
        let s = survivor
            .sync(&client, &[relay.receipt_key], now, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(
            (s.delivered, s.postponed),
            (report_envelopes, 0),
            "{name}: {s:?}"
        );
        assert_eq!(survivor.outbox_len().unwrap(), 0);

        // Exactly what was admitted waits: half the cap, four, one, hers.
        let held = fetch_all(relay.addr, &office);
        assert_eq!(held.len(), CAP / 2 + 4 + 1 + report_envelopes, "{name}");

        // The work is kept nowhere: not in the log, not in the database.
        let raw = proof.encode();
        let text = b64::encode(&raw);
        assert!(!relay.logs.lock().unwrap().contains(&text), "{name}: log");
        if backend.database_url().is_none() {
            let _ = fetch_all(relay.addr, &office);
            for entry in std::fs::read_dir(relay.data_dir.path()).unwrap() {
                let path = entry.unwrap().path();
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                for needle in [&raw[..], text.as_bytes()] {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle),
                        "{name}: {} holds the proof",
                        path.display()
                    );
                }
            }
        }
    }
}

/// The `n` in `amparo_requests_rejected_total{code="work_required"} n`.
fn work_refusals(relay: &Relay) -> u64 {
    let (_, _, body) = http_exchange(relay.addr, "GET", "/metrics", &[], b"").unwrap();
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix("amparo_requests_rejected_total{code=\"work_required\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// On 2G a body sent only to be refused is sent twice: once a relay has
/// asked a phone for work, its next uploads (in that sync, and in the
/// syncs of the next hour: the profile remembers) pay ahead and are
/// never refused for want of work.
#[tokio::test]
async fn once_asked_a_phone_pays_ahead_and_sends_each_body_once() {
    let relay = Relay::start(
        None,
        &[
            "--mailbox-max-envelopes",
            &CAP.to_string(),
            "--admission-max-effort",
            "8",
        ],
    );
    let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let office = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let fp = focal_point_entry("pe-uca-defensoria", office.public());
    let (status, _) = post_batch(relay.addr, &junk(&office.public(), CAP / 2)).unwrap();
    assert_eq!(status, 200);

    let path = dir.path().join("survivor");
    let survivor = Profile::create(&path, "5678", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let report = |text: &str, p: &Profile| {
        let d = p
            .create_draft(&DraftForm {
                text: text.into(),
                ..DraftForm::default()
            })
            .unwrap();
        p.send_draft(&d, &fp, false, now()).unwrap();
    };
    report("Me siguieron hasta la pensión.", &survivor);
    report("Otra vez en la esquina de la plaza.", &survivor);
    assert_eq!(work_refusals(&relay), 0);
    let s = survivor
        .sync(&client, &[relay.receipt_key], now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((s.postponed, s.paid.waiting), (0, 0), "{s:?}");
    assert!(s.paid.worked >= 1, "{s:?}");
    let mut delivered = s.delivered;
    // Asked once, for the first upload only.
    assert_eq!(work_refusals(&relay), 1);

    // The next sync, with the profile closed and opened again: paid ahead,
    // not refused.
    drop(survivor);
    let survivor = Profile::open(&path, "5678").unwrap();
    report("Hoy me amenazó por teléfono.", &survivor);
    let s = survivor
        .sync(&client, &[relay.receipt_key], now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (s.delivered >= 1, s.paid.worked >= 1),
        (true, true),
        "{s:?}"
    );
    delivered += s.delivered;
    assert_eq!(work_refusals(&relay), 1, "paid ahead: no refusal");
    assert_eq!(survivor.outbox_len().unwrap(), 0);
    assert_eq!(fetch_all(relay.addr, &office).len(), CAP / 2 + delivered);
}
