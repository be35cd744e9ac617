//! Check-in timers over HTTP (PROTOCOL.md §12.16–12.17, §17) against a
//! real relay process: what is refused and how, admission for holds, the
//! caps, and the release when hours pass (a relay restarted with its clock
//! ahead: `--test-clock-skew-hours`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amparo_protocol::admission::{self, Challenge};
use amparo_protocol::b64;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::timer::{CheckIn, Hold, MAX_AHEAD_HOURS, new_timer_key};
use common::*;

fn keys() -> RecipientKeys {
    RecipientKeys::generate(&mut SystemEntropy::new()).unwrap()
}

fn timer_key() -> SigningKey {
    new_timer_key(&mut SystemEntropy::new()).unwrap()
}

async fn post(
    c: &reqwest::Client,
    relay: &Relay,
    path: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> (u16, serde_json::Value) {
    let mut r = c.post(relay.url(path)).body(body);
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

async fn hold(c: &reqwest::Client, relay: &Relay, h: &Hold) -> (u16, serde_json::Value) {
    post(c, relay, "/v1/timers", h.encode(), &[]).await
}

async fn check_in(c: &reqwest::Client, relay: &Relay, ci: &CheckIn) -> (u16, serde_json::Value) {
    post(c, relay, "/v1/timers/check-in", ci.encode().to_vec(), &[]).await
}

fn restart(relay: &mut Relay, db: Option<String>, skew: i64, extra: &[&str]) -> Relay {
    relay.kill();
    let dir = std::mem::replace(&mut relay.data_dir, tempfile::tempdir().unwrap());
    let skew = format!("--test-clock-skew-hours={skew}");
    let mut args = vec![skew.as_str()];
    args.extend_from_slice(extra);
    Relay::start_in(dir, db, &args)
}

#[tokio::test]
async fn holds_check_ins_and_release_over_http() {
    for backend in backends() {
        let name = backend.name();
        let db = backend.database_url();
        let coordinator = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
        let coordinator_arg = format!(
            "--coordinator-key={}",
            b64::encode(coordinator.verifying_key().as_bytes())
        );
        let extra = [coordinator_arg.as_str(), "--mailbox-max-held=3"];
        let mut relay = Relay::start(db.clone(), &extra);
        let c = client();
        let focal = keys();
        let directory = directory_with(
            vec![focal_point_entry("fp", focal.public())],
            &relay.receipt_key,
        )
        .sign(1, &coordinator)
        .unwrap();
        let r = c
            .put(relay.url("/v1/directory"))
            .body(directory.as_bytes().to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        let h = now().hours();

        // Held; the same hold again answers the same; refusals.
        let t1 = timer_key();
        let h1 = Hold::sign(&t1, h + 2, envelope_for(&focal, 30));
        let (status, body) = hold(&c, &relay, &h1).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["release_hour"], h + 2);
        assert_eq!(body["seq"], 0);
        assert_eq!(body["timer"], h1.timer().to_string());
        assert_eq!(hold(&c, &relay, &h1).await.0, 200, "{name}: idempotent");
        let again = Hold::sign(&t1, h + 2, envelope_for(&focal, 31));
        let (status, body) = hold(&c, &relay, &again).await;
        assert_eq!((status, body["error"].as_str()), (409, Some("timer_taken")));
        let mut forged = h1.encode();
        forged[40] ^= 1;
        let (status, body) = post(&c, &relay, "/v1/timers", forged, &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad_signature"))
        );
        for bad in [h, h + MAX_AHEAD_HOURS + 1] {
            let late = Hold::sign(&timer_key(), bad, envelope_for(&focal, 10));
            let (status, body) = hold(&c, &relay, &late).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("bad_release_hour")),
                "{name}: {bad}"
            );
        }
        let stranger = Hold::sign(&timer_key(), h + 2, envelope_for(&keys(), 10));
        let (status, body) = hold(&c, &relay, &stranger).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("not_a_focal_point")),
            "{name}: an alert is for a focal point"
        );

        // Check-ins: taken, then replayed, earlier, forged, unknown.
        let (status, body) = check_in(&c, &relay, &CheckIn::postpone(&t1, 1, h + 3)).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["release_hour"], h + 3);
        for ci in [
            CheckIn::postpone(&t1, 1, h + 4),
            CheckIn::postpone(&t1, 2, h + 2),
        ] {
            let (status, body) = check_in(&c, &relay, &ci).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (409, Some("check_in_refused")),
                "{name}"
            );
        }
        let mut forged = CheckIn::postpone(&t1, 5, h + 9).encode();
        forged[45] ^= 1;
        let (status, _) = post(&c, &relay, "/v1/timers/check-in", forged.to_vec(), &[]).await;
        assert_eq!(status, 400, "{name}: a forged check-in");
        let (status, body) = check_in(&c, &relay, &CheckIn::postpone(&timer_key(), 1, h + 3)).await;
        assert_eq!((status, body["error"].as_str()), (404, Some("no_timer")));

        // A cancelled alert does not come back.
        let t2 = timer_key();
        let h2 = Hold::sign(&t2, h + 2, envelope_for(&focal, 40));
        assert_eq!(hold(&c, &relay, &h2).await.0, 200);
        let (status, body) = check_in(&c, &relay, &CheckIn::cancel(&t2, 1)).await;
        assert_eq!((status, body["cancelled"].as_bool()), (200, Some(true)));
        assert_eq!(hold(&c, &relay, &h2).await.0, 409, "{name}");

        // The focal point's cap on alerts held: 3.
        let t3 = timer_key();
        let h3 = Hold::sign(&t3, h + 2, envelope_for(&focal, 50));
        assert_eq!(hold(&c, &relay, &h3).await.0, 200);
        let t4 = timer_key();
        let h4 = Hold::sign(&t4, h + 2, envelope_for(&focal, 60));
        assert_eq!(hold(&c, &relay, &h4).await.0, 200);
        let (status, body) = hold(
            &c,
            &relay,
            &Hold::sign(&timer_key(), h + 2, envelope_for(&focal, 70)),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (507, Some("timers_full")),
            "{name}"
        );

        // Nothing in the mailbox before the hour.
        assert!(fetch_all(&c, &relay, &focal).await.is_empty(), "{name}");

        // Two hours on: h1 (moved to h + 3) stays, h3 and h4 go; a check-in
        // for them is too late.
        let mut relay2 = restart(&mut relay, db.clone(), 2, &extra);
        // Refused while the release pass runs, unknown once it has.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (status, body) = check_in(&c, &relay2, &CheckIn::postpone(&t3, 1, h + 9)).await;
            if status == 404 {
                break;
            }
            assert_eq!(
                (status, body["error"].as_str()),
                (409, Some("check_in_refused")),
                "{name}: too late"
            );
            assert!(std::time::Instant::now() < deadline, "{name}: not released");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let (status, _) = check_in(&c, &relay2, &CheckIn::postpone(&t4, 1, h + 9)).await;
        assert_eq!(status, 404, "{name}: released in the same pass");
        // Back to the system's hour to read the mailbox (signed requests
        // carry the time).
        let relay3 = restart(&mut relay2, db.clone(), 0, &extra);
        let got: Vec<_> = fetch_all(&c, &relay3, &focal)
            .await
            .into_iter()
            .map(|(_, e)| e.id())
            .collect();
        let mut want = vec![h3.envelope.id(), h4.envelope.id()];
        want.sort_by_key(|i| i.0);
        let mut got_sorted = got.clone();
        got_sorted.sort_by_key(|i| i.0);
        assert_eq!(got_sorted, want, "{name}: released at their hour, once");
        // The moved one is still held, and can still be checked in.
        let (status, _) = check_in(&c, &relay3, &CheckIn::postpone(&t1, 2, h + 5)).await;
        assert_eq!(status, 200, "{name}");
    }
}

#[tokio::test]
async fn a_hold_pays_admission_like_an_upload() {
    let relay = Relay::start(
        None,
        &["--admission-max-effort=16", "--mailbox-max-envelopes=8"],
    );
    let c = client();
    let focal = keys();
    // Press the focal point's mailbox past half full.
    let five: Vec<_> = (0..5).map(|i| envelope_for(&focal, 100 + i)).collect();
    post_batch(&c, &relay, &five).await;
    let h = now().hours();
    let held = Hold::sign(&timer_key(), h + 2, envelope_for(&focal, 10));
    let r = c
        .post(relay.url("/v1/timers"))
        .body(held.encode())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "work asked of a hold");
    let effort: u32 = r.headers()["Amparo-Admission-Effort"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let challenge = c
        .get(relay.url("/v1/admission"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let challenge = Challenge::decode(&challenge).unwrap();
    let proof = admission::solve(
        &challenge,
        &[held.envelope.id()],
        effort,
        &mut SystemEntropy::new(),
        &mut |_| true,
    )
    .unwrap()
    .proof
    .unwrap();
    let (status, body) = post(
        &c,
        &relay,
        "/v1/timers",
        held.encode(),
        &[("Amparo-Admission", proof.to_header())],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
