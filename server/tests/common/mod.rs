//! Helpers for the relay's integration tests: the process harness from
//! `amparo-tests`, and a small client that seals, uploads, fetches and
//! acknowledges like a phone would.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use amparo_protocol::UnixTime;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::request::{self, RequestProof};
use amparo_protocol::wire::{self, EnvelopeResult};
pub use amparo_tests::*;

/// The relay's /metrics text.
pub async fn metrics_text(c: &reqwest::Client, relay: &Relay) -> String {
    c.get(relay.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Signs a mailbox request as its owner would.
pub fn sign(
    keys: &RecipientKeys,
    method: &str,
    target: &str,
    body: &[u8],
    at: UnixTime,
) -> RequestProof {
    RequestProof::sign(
        keys.signing(),
        method,
        target,
        body,
        at,
        &mut SystemEntropy::new(),
    )
    .unwrap()
}

pub fn now() -> UnixTime {
    UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

/// Seals a small body of `size` bytes to `to`.
pub fn envelope_for(to: &RecipientKeys, size: usize) -> Envelope {
    let mut e = SystemEntropy::new();
    let h = InnerHeader::new(&mut e, now()).unwrap();
    let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    Envelope::seal(&to.public(), Purpose::Report, &h, &body, &mut e).unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub async fn post_batch(
    c: &reqwest::Client,
    relay: &Relay,
    envelopes: &[Envelope],
) -> Vec<EnvelopeResult> {
    let body = wire::encode_batch(envelopes.iter().map(|e| e.as_bytes()));
    let r = c
        .post(relay.url("/v1/envelopes"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "upload failed: {}",
        r.text().await.unwrap()
    );
    wire::decode_results(&r.bytes().await.unwrap()).unwrap()
}

/// Signed GET of a mailbox page; returns the status and the page.
pub async fn fetch(
    c: &reqwest::Client,
    relay: &Relay,
    keys: &RecipientKeys,
    after: u64,
    limit: u32,
) -> (u16, Vec<(u64, Envelope)>) {
    let target = format!(
        "/v1/mailboxes/{}/envelopes?after={after}&limit={limit}",
        keys.mailbox()
    );
    let proof = sign(keys, "GET", &target, b"", now());
    let r = c
        .get(relay.url(&target))
        .header(request::HEADER, proof.to_header())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    if status == 200 {
        (status, wire::decode_page(&bytes).unwrap())
    } else {
        (status, Vec::new())
    }
}

/// Fetches every page of a mailbox.
pub async fn fetch_all(
    c: &reqwest::Client,
    relay: &Relay,
    keys: &RecipientKeys,
) -> Vec<(u64, Envelope)> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = fetch(c, relay, keys, after, 500).await;
        assert_eq!(status, 200);
        if page.is_empty() {
            return all;
        }
        after = page.last().unwrap().0;
        all.extend(page);
    }
}

/// Signed acknowledgement; returns the status and the JSON answer.
pub async fn ack(
    c: &reqwest::Client,
    relay: &Relay,
    keys: &RecipientKeys,
    ids: &[String],
) -> (u16, serde_json::Value) {
    let target = format!("/v1/mailboxes/{}/ack", keys.mailbox());
    let body = serde_json::to_vec(&serde_json::json!({ "ids": ids })).unwrap();
    let proof = sign(keys, "POST", &target, &body, now());
    let r = c
        .post(relay.url(&target))
        .header(request::HEADER, proof.to_header())
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}
