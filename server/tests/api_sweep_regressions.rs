//! Regressions found by the API bad-input sweep (`.ci/schemathesis.sh`):
//! each input here once got an answer the OpenAPI document does not allow.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::request;
use common::*;

/// `after` above the largest signed 64-bit integer reached the database and
/// came back as 503 `unavailable` (schemathesis, coverage phase). It is not a
/// cursor: 400 `bad_query`, before the signature is looked at. The largest
/// cursor itself is fine and gives an empty page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_beyond_i64_is_a_bad_query_not_a_storage_failure() {
    for backend in backends() {
        let relay = Relay::start(backend.database_url(), &[]);
        let c = client();
        let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
        post_batch(&c, &relay, &[envelope_for(&focal, 10)]).await;

        for after in [1u64 << 63, u64::MAX] {
            let target = format!(
                "/v1/mailboxes/{}/envelopes?after={after}&limit=10",
                focal.mailbox()
            );
            let proof = sign(&focal, "GET", &target, b"", now());
            let r = c
                .get(relay.url(&target))
                .header(request::HEADER, proof.to_header())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{}: after={after}", backend.name());
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "bad_query", "{}", backend.name());
        }

        let (status, page) = fetch(&c, &relay, &focal, i64::MAX as u64, 10).await;
        assert_eq!((status, page.len()), (200, 0), "{}", backend.name());
        let (status, page) = fetch(&c, &relay, &focal, 0, 10).await;
        assert_eq!((status, page.len()), (200, 1), "{}", backend.name());
    }
}

/// A directory correctly signed by the coordinator but with a version above
/// the largest signed 64-bit integer reached the database and came back as
/// 503 `unavailable` (found with the sweep's signed directories). It is 400
/// `version_out_of_range` now, and the directory held is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_version_beyond_i64_is_refused_not_a_storage_failure() {
    use amparo_protocol::b64;
    use amparo_protocol::directory::Directory;
    use amparo_protocol::primitives::ed25519::SigningKey;
    for backend in backends() {
        let coordinator = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
        let key = b64::encode(coordinator.verifying_key().as_bytes());
        let relay = Relay::start(
            backend.database_url(),
            &[&format!("--coordinator-key={key}")],
        );
        let c = client();
        let empty = Directory {
            statistics: None,
            focal_points: Vec::new(),
            service_routes: Vec::new(),
            relays: Vec::new(),
        };
        let put = |version: u64| {
            let body = empty
                .sign(version, &coordinator)
                .unwrap()
                .as_bytes()
                .to_vec();
            c.put(relay.url("/v1/directory")).body(body).send()
        };
        assert_eq!(put(5).await.unwrap().status(), 200, "{}", backend.name());
        for version in [1u64 << 63, u64::MAX] {
            let r = put(version).await.unwrap();
            assert_eq!(r.status(), 400, "{}: version {version}", backend.name());
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "version_out_of_range", "{}", backend.name());
        }
        let r = c.get(relay.url("/v1/directory")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["etag"], "\"v5\"", "{}", backend.name());
        assert_eq!(
            put(i64::MAX as u64).await.unwrap().status(),
            200,
            "{}",
            backend.name()
        );
    }
}
