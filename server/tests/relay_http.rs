//! The relay over real HTTP, as a real process, on SQLite and on PostgreSQL:
//! round trip to a mailbox, idempotent resend, acknowledgement, directory
//! versioning, signature and replay rejection, and bad input at every route.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::Purpose;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::request;
use amparo_protocol::wire::{self, EnvelopeResult, RejectCode};
use amparo_protocol::{UnixTime, b64};
use common::*;

fn keys() -> RecipientKeys {
    RecipientKeys::generate(&mut SystemEntropy::new()).unwrap()
}

#[tokio::test]
async fn round_trip_resend_and_ack() {
    for backend in backends() {
        let relay = Relay::start(backend.database_url(), &[]);
        let c = client();
        let focal = keys();
        let envs: Vec<_> = (0..5)
            .map(|i| envelope_for(&focal, 100 + i * 1000))
            .collect();
        let results = post_batch(&c, &relay, &envs).await;
        assert_eq!(results.len(), 5, "{}", backend.name());
        let mut receipts = Vec::new();
        for (env, r) in envs.iter().zip(&results) {
            let EnvelopeResult::Accepted(receipt) = r else {
                panic!("{}: rejected {r:?}", backend.name())
            };
            assert_eq!(receipt.envelope_id, env.id());
            receipt.verify(&relay.receipt_key).unwrap();
            assert_eq!(receipt.day, now().days());
            receipts.push(*receipt);
        }

        // A resend (or a facilitator's copy) gets the same receipts and stores nothing new.
        let again = post_batch(&c, &relay, &envs[1..3]).await;
        assert_eq!(again, results[1..3].to_vec(), "{}", backend.name());

        // The focal point fetches each envelope once, and can open it.
        let got = fetch_all(&c, &relay, &focal).await;
        assert_eq!(got.len(), 5, "{}", backend.name());
        let mut ids: Vec<_> = got.iter().map(|(_, e)| e.id()).collect();
        ids.sort();
        let mut want: Vec<_> = envs.iter().map(|e| e.id()).collect();
        want.sort();
        assert_eq!(ids, want);
        for (_, e) in &got {
            e.open(&focal, &Purpose::FOR_FOCAL_POINT).unwrap();
        }
        // Paging with a cursor.
        let (_, first) = fetch(&c, &relay, &focal, 0, 2).await;
        assert_eq!(first.len(), 2);
        let (_, rest) = fetch(&c, &relay, &focal, first[1].0, 10).await;
        assert_eq!(rest.len(), 3);

        // Another mailbox sees nothing of it.
        let other = keys();
        assert!(fetch_all(&c, &relay, &other).await.is_empty());
        // Acknowledging from another mailbox deletes nothing.
        let all_ids: Vec<String> = envs.iter().map(|e| e.id().to_string()).collect();
        let (status, answer) = ack(&c, &relay, &other, &all_ids).await;
        assert_eq!((status, answer["acknowledged"].as_u64()), (200, Some(0)));

        // Acknowledge three; two remain.
        let (status, answer) = ack(&c, &relay, &focal, &all_ids[..3]).await;
        assert_eq!(
            (status, answer["acknowledged"].as_u64()),
            (200, Some(3)),
            "{}",
            backend.name()
        );
        assert_eq!(fetch_all(&c, &relay, &focal).await.len(), 2);
        // A late copy of an acknowledged envelope gets its receipt again but
        // is not delivered twice.
        let late = post_batch(&c, &relay, &envs[..1]).await;
        assert_eq!(late[0], results[0]);
        assert_eq!(
            fetch_all(&c, &relay, &focal).await.len(),
            2,
            "{}",
            backend.name()
        );
        let (_, answer) = ack(&c, &relay, &focal, &all_ids).await;
        assert_eq!(answer["acknowledged"].as_u64(), Some(2));
        assert!(fetch_all(&c, &relay, &focal).await.is_empty());

        // Metrics count without naming anyone.
        let m = metrics_text(&c, &relay).await;
        assert!(
            m.contains("amparo_envelopes_accepted_total 5"),
            "{}: {m}",
            backend.name()
        );
        assert!(
            m.contains("amparo_envelopes_duplicate_total 3"),
            "{}: {m}",
            backend.name()
        );
        assert!(!m.contains(&focal.mailbox().to_string()));
    }
}

#[tokio::test]
async fn per_envelope_errors_do_not_block_the_rest() {
    let relay = Relay::start(None, &[]);
    let c = client();
    let focal = keys();
    let good = envelope_for(&focal, 10);
    let mut short = good.as_bytes().to_vec();
    short.pop();
    let mut version = good.as_bytes().to_vec();
    version[0] = 9;
    let mut suite = good.as_bytes().to_vec();
    suite[1] = 9;
    let body = wire::encode_batch([
        short.as_slice(),
        good.as_bytes(),
        version.as_slice(),
        suite.as_slice(),
        &[1u8][..],
    ]);
    let r = c
        .post(relay.url("/v1/envelopes"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let results = wire::decode_results(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(
        results[0],
        EnvelopeResult::Rejected(RejectCode::BadSizeClass)
    );
    assert!(matches!(results[1], EnvelopeResult::Accepted(_)));
    assert_eq!(
        results[2],
        EnvelopeResult::Rejected(RejectCode::UnsupportedVersion)
    );
    assert_eq!(
        results[3],
        EnvelopeResult::Rejected(RejectCode::UnsupportedSuite)
    );
    assert_eq!(results[4], EnvelopeResult::Rejected(RejectCode::Malformed));
    assert_eq!(fetch_all(&c, &relay, &focal).await.len(), 1);
}

async fn json_error(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.expect("error bodies are JSON");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    (status, v["error"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn bad_batches_change_nothing() {
    for backend in backends() {
        let relay = Relay::start(
            backend.database_url(),
            &["--max-batch", "3", "--max-body-bytes", "200000"],
        );
        let c = client();
        let focal = keys();
        let env = envelope_for(&focal, 10);
        // Truncated framing: the whole request is refused, nothing stored.
        let mut body = wire::encode_batch([env.as_bytes()]);
        body.truncate(body.len() - 1);
        let r = c
            .post(relay.url("/v1/envelopes"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(r).await, (400, "truncated".into()));
        // Too many envelopes.
        let four = wire::encode_batch([env.as_bytes(); 4]);
        let r = c
            .post(relay.url("/v1/envelopes"))
            .body(four)
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(r).await, (413, "batch_too_large".into()));
        // Too large: refused from the Content-Length alone.
        let big = vec![0u8; 300_000];
        let r = c
            .post(relay.url("/v1/envelopes"))
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(r).await, (413, "body_too_large".into()));
        assert!(
            fetch_all(&c, &relay, &focal).await.is_empty(),
            "{}",
            backend.name()
        );
        let m = metrics_text(&c, &relay).await;
        assert!(m.contains("amparo_envelopes_stored 0"), "{m}");
    }
}

#[tokio::test]
async fn oversize_streamed_body_is_cut_off() {
    // No Content-Length (chunked): the relay stops reading past the limit.
    let relay = Relay::start(None, &["--max-body-bytes", "100000"]);
    let c = client();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..50).map(|_| Ok(vec![0u8; 10_000])).collect();
    let stream = futures_util::stream::iter(chunks);
    let r = c
        .post(relay.url("/v1/envelopes"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(json_error(r).await, (413, "body_too_large".into()));
}

#[tokio::test]
async fn mailbox_requests_must_be_signed_fresh_and_unique() {
    for backend in backends() {
        let relay = Relay::start(backend.database_url(), &[]);
        let c = client();
        let focal = keys();
        post_batch(&c, &relay, &[envelope_for(&focal, 10)]).await;
        let target = format!(
            "/v1/mailboxes/{}/envelopes?after=0&limit=10",
            focal.mailbox()
        );

        // No signature.
        let r = c.get(relay.url(&target)).send().await.unwrap();
        assert_eq!(json_error(r).await, (401, "missing_signature".into()));

        // Signed by a key that does not own the mailbox.
        let mallory = keys();
        let p = sign(&mallory, "GET", &target, b"", now());
        let r = c
            .get(relay.url(&target))
            .header(request::HEADER, p.to_header())
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(r).await, (403, "wrong_key".into()));

        // Signed for another path (limit changed after signing).
        let p = sign(&focal, "GET", &target, b"", now());
        let r = c
            .get(relay.url(&target.replace("limit=10", "limit=11")))
            .header(request::HEADER, p.to_header())
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(r).await, (401, "bad_signature".into()));

        // Stale.
        let old = UnixTime(now().0 - 3600);
        let p = sign(&focal, "GET", &target, b"", old);
        let r = c
            .get(relay.url(&target))
            .header(request::HEADER, p.to_header())
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(r).await, (401, "stale_request".into()));

        // Garbage header.
        let r = c
            .get(relay.url(&target))
            .header(request::HEADER, "xyz")
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(r).await.0, 400);

        // A good request works once; the same bytes again are a replay.
        let p = sign(&focal, "GET", &target, b"", now());
        let r = c
            .get(relay.url(&target))
            .header(request::HEADER, p.to_header())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = c
            .get(relay.url(&target))
            .header(request::HEADER, p.to_header())
            .send()
            .await
            .unwrap();
        assert_eq!(
            json_error(r).await,
            (401, "replayed_request".into()),
            "{}",
            backend.name()
        );

        // An ack whose body was changed after signing is refused and deletes nothing.
        let ack_target = format!("/v1/mailboxes/{}/ack", focal.mailbox());
        let signed_body = br#"{"ids":[]}"#;
        let p = sign(&focal, "POST", &ack_target, signed_body, now());
        let all = fetch_all(&c, &relay, &focal).await;
        let evil =
            serde_json::to_vec(&serde_json::json!({"ids": [all[0].1.id().to_string()]})).unwrap();
        let r = c
            .post(relay.url(&ack_target))
            .header(request::HEADER, p.to_header())
            .body(evil)
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(r).await, (401, "bad_signature".into()));
        assert_eq!(fetch_all(&c, &relay, &focal).await.len(), 1);

        // Bad mailbox id and bad query.
        let r = c
            .get(relay.url("/v1/mailboxes/short/envelopes"))
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(r).await, (400, "bad_mailbox".into()));
        let q = format!("/v1/mailboxes/{}/envelopes?after=-1", focal.mailbox());
        let r = c.get(relay.url(&q)).send().await.unwrap();
        assert_eq!(json_error(r).await, (400, "bad_query".into()));
    }
}

#[tokio::test]
async fn directory_versions_and_etag() {
    use amparo_protocol::directory::{Directory, FocalPoint, LocalizedText};
    use amparo_protocol::payload::{Language, Need};
    for backend in backends() {
        let coordinator = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
        let key = b64::encode(coordinator.verifying_key().as_bytes());
        // `=` form: a base64url key may start with '-'.
        let relay = Relay::start(
            backend.database_url(),
            &[&format!("--coordinator-key={key}")],
        );
        let c = client();
        let r = c.get(relay.url("/v1/directory")).send().await.unwrap();
        assert_eq!(json_error(r).await, (404, "no_directory".into()));

        let t = |s: &str| LocalizedText {
            es: s.into(),
            pt: s.into(),
            en: s.into(),
        };
        let dir = Directory {
            statistics: None,
            focal_points: vec![FocalPoint {
                reads: Vec::new(),
                id: "fp".into(),
                name: t("Defensoría"),
                organization: "Org".into(),
                regions: vec!["PE-LIM".into()],
                categories: vec![Need::LegalAdvice],
                languages: vec![Language::Es],
                keys: keys().public(),
                valid_from: 0,
                valid_until: u64::MAX / 2,
            }],
            service_routes: vec![],
            relays: vec![],
        };
        let v2 = dir.sign(2, &coordinator).unwrap();
        let r = c
            .put(relay.url("/v1/directory"))
            .body(v2.as_bytes().to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", backend.name());

        let r = c.get(relay.url("/v1/directory")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(etag, "\"v2\"");
        assert_eq!(r.bytes().await.unwrap().as_ref(), v2.as_bytes());
        let r = c
            .get(relay.url("/v1/directory"))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304);
        assert!(r.bytes().await.unwrap().is_empty());

        // Same or lower version: refused, the newer one stays.
        for v in [1, 2] {
            let old = dir.sign(v, &coordinator).unwrap();
            let r = c
                .put(relay.url("/v1/directory"))
                .body(old.as_bytes().to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(json_error(r).await, (409, "stale_directory".into()));
        }
        // Signed by someone else, even with a higher version: refused.
        let mallory = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
        let forged = dir.sign(99, &mallory).unwrap();
        let r = c
            .put(relay.url("/v1/directory"))
            .body(forged.as_bytes().to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(r).await.0, 403);
        // Damaged.
        let mut bad = dir.sign(5, &coordinator).unwrap().as_bytes().to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let r = c
            .put(relay.url("/v1/directory"))
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(json_error(r).await.0, 403);
        let r = c.get(relay.url("/v1/directory")).send().await.unwrap();
        assert_eq!(r.headers()["etag"], "\"v2\"");
        // A higher version replaces it.
        let v3 = dir.sign(3, &coordinator).unwrap();
        let r = c
            .put(relay.url("/v1/directory"))
            .body(v3.as_bytes().to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = c
            .get(relay.url("/v1/directory"))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn directory_upload_needs_a_coordinator_key() {
    let relay = Relay::start(None, &[]);
    let r = client()
        .put(relay.url("/v1/directory"))
        .body(vec![1, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "no_coordinator_key");
    // The sentence says how to fix it, not only what is wrong.
    let message = body["message"].as_str().unwrap();
    for how in [
        "--coordinator-key",
        "AMPARO_COORDINATOR_KEY",
        "coordinator_key",
    ] {
        assert!(message.contains(how), "{message}");
    }
}

/// Truncated, oversized and random bodies at every route: never a 5xx, always
/// a JSON error (or a normal answer), and nothing stored.
#[tokio::test]
async fn garbage_at_every_route() {
    let relay = Relay::start(
        None,
        &[&format!("--coordinator-key={}", b64::encode(&[7u8; 32]))],
    );
    let c = client();
    let focal = keys();
    let mb = focal.mailbox().to_string();
    let routes: Vec<(reqwest::Method, String)> = vec![
        (reqwest::Method::GET, "/healthz".into()),
        (reqwest::Method::GET, "/metrics".into()),
        (reqwest::Method::GET, "/v1/openapi.json".into()),
        (reqwest::Method::GET, "/v1/directory".into()),
        (reqwest::Method::PUT, "/v1/directory".into()),
        (reqwest::Method::POST, "/v1/envelopes".into()),
        (
            reqwest::Method::GET,
            format!("/v1/mailboxes/{mb}/envelopes"),
        ),
        (reqwest::Method::POST, format!("/v1/mailboxes/{mb}/ack")),
        (reqwest::Method::DELETE, "/v1/envelopes".into()),
        (reqwest::Method::GET, "/v1/mailboxes/%00/envelopes".into()),
    ];
    let mut e = SystemEntropy::new();
    let valid = envelope_for(&focal, 10);
    let mut bodies: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 3],
        wire::encode_batch([valid.as_bytes()])[..50].to_vec(),
        b"{\"ids\": [\"AAAA\"]}".to_vec(),
        b"{\"ids\": 5}".to_vec(),
        b"AMPD\x01".to_vec(),
        vec![0u8; 70_000],
    ];
    for len in [1usize, 17, 200, 5000] {
        let mut b = vec![0u8; len];
        amparo_protocol::Entropy::fill(&mut e, &mut b).unwrap();
        bodies.push(b);
    }
    for (method, path) in &routes {
        for body in &bodies {
            let r = c
                .request(method.clone(), relay.url(path))
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            assert!(status < 500, "{method} {path} gave {status}");
            if status >= 400 {
                let v: serde_json::Value = r
                    .json()
                    .await
                    .unwrap_or_else(|_| panic!("{method} {path}: non-JSON error"));
                assert!(v["error"].is_string() && v["message"].is_string());
            }
        }
    }
    assert!(fetch_all(&c, &relay, &focal).await.is_empty());
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let relay = Relay::start(None, &[]);
    let r = client()
        .get(relay.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value = r.json().await.unwrap();
    for path in [
        "/healthz",
        "/metrics",
        "/v1/openapi.json",
        "/v1/directory",
        "/v1/envelopes",
        "/v1/mailboxes/{mailbox}/envelopes",
        "/v1/mailboxes/{mailbox}/ack",
        "/v1/mailboxes/fetch",
        "/v1/mailboxes/ack",
        "/v1/receipts",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "OpenAPI document lacks {path}"
        );
    }
}

#[test]
fn bad_settings_exit_with_a_sentence() {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_amparo-relay"));
    let out = cmd
        .args(["--coordinator-key", "not-a-key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("coordinator_key must be"), "{err}");
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_amparo-relay"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for setting in [
        "AMPARO_LISTEN",
        "AMPARO_DATA_DIR",
        "DATABASE_URL",
        "AMPARO_RETENTION_DAYS",
        "AMPARO_MAX_BODY_BYTES",
        "AMPARO_MAX_BATCH",
        "AMPARO_COORDINATOR_KEY",
        "AMPARO_CONFIG",
        "AMPARO_METRICS_LISTEN",
        "AMPARO_METRICS_TOKEN",
        "AMPARO_PUBLIC_METRICS",
    ] {
        assert!(help.contains(setting), "--help does not document {setting}");
    }
}

#[tokio::test]
async fn every_refusal_is_counted_by_code() {
    let relay = Relay::start(None, &[]);
    let c = client();
    let _ = c.get(relay.url("/nowhere")).send().await.unwrap();
    let _ = c.get(relay.url("/v1/directory")).send().await.unwrap();
    let _ = c
        .post(relay.url("/v1/envelopes"))
        .body(vec![0u8, 0])
        .send()
        .await
        .unwrap();
    let m = metrics_text(&c, &relay).await;
    for line in [
        "amparo_requests_rejected_total{code=\"not_found\"} 1",
        "amparo_requests_rejected_total{code=\"no_directory\"} 1",
        "amparo_requests_rejected_total{code=\"truncated\"} 1",
    ] {
        assert!(m.contains(line), "missing {line}:\n{m}");
    }
}
