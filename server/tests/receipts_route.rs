//! `POST /v1/receipts` on a central relay (none to hand down) and its bad
//! input, and the field-relay settings a relay refuses to start with.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn receipts_route_refuses_bad_bodies_and_a_central_relay_has_none() {
    let relay = Relay::start(None, &[]);
    let c = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        c.post(relay.url("/v1/receipts"))
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
    };
    let ok = post(vec![7; 32]).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.bytes().await.unwrap().is_empty());
    let empty = post(Vec::new()).await.unwrap();
    assert_eq!(empty.status(), 200);

    let bad = post(vec![7; 17]).await.unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "bad_ids");
    assert!(body["message"].as_str().unwrap().contains("16 bytes"));

    let big = post(vec![7; 16 * 1001]).await.unwrap();
    assert_eq!(big.status(), 413);
    let body: serde_json::Value = big.json().await.unwrap();
    assert_eq!(body["error"], "body_too_large");
}

#[test]
fn field_relay_settings_are_checked_at_start() {
    for (args, says) in [
        (
            vec!["--upstream", "http://127.0.0.1:9"],
            "needs upstream_key or coordinator_key",
        ),
        (
            vec!["--upstream", "ftp://x", "--upstream-key=AAAA"],
            "http:// or https://",
        ),
        (
            vec!["--upstream", "http://127.0.0.1:9", "--upstream-key=short"],
            "upstream_key must be 32 bytes",
        ),
    ] {
        let out = std::process::Command::new(relay_binary())
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .env_remove("AMPARO_UPSTREAM")
            .env_remove("AMPARO_UPSTREAM_KEY")
            .env_remove("AMPARO_COORDINATOR_KEY")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
