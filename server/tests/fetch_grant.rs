//! Fetch grants at the relay (`Amparo-Grant`): read-only, for one mailbox,
//! until they expire; never a way to acknowledge, and every bad grant is a
//! clear 4xx with nothing changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amparo_protocol::UnixTime;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::grant::{self, FetchGrant};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::wire;
use common::*;

async fn get_with(
    c: &reqwest::Client,
    relay: &Relay,
    mailbox: &str,
    grant: &str,
) -> (u16, serde_json::Value, Vec<u8>) {
    let r = c
        .get(relay.url(&format!(
            "/v1/mailboxes/{mailbox}/envelopes?after=0&limit=50"
        )))
        .header(grant::HEADER, grant)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap().to_vec();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json, bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_reads_one_mailbox_until_it_expires_and_cannot_acknowledge() {
    let relay = Relay::start(None, &[]);
    let c = client();
    let mut e = SystemEntropy::new();
    let owner = RecipientKeys::generate(&mut e).unwrap();
    let other = RecipientKeys::generate(&mut e).unwrap();
    post_batch(
        &c,
        &relay,
        &[envelope_for(&owner, 200), envelope_for(&owner, 300)],
    )
    .await;
    post_batch(&c, &relay, &[envelope_for(&other, 200)]).await;

    let week = FetchGrant::sign(owner.signing(), UnixTime(now().0 + 7 * 86_400));
    let mailbox = owner.mailbox().to_string();
    let (status, _, body) = get_with(&c, &relay, &mailbox, &week.to_header()).await;
    assert_eq!(status, 200);
    assert_eq!(wire::decode_page(&body).unwrap().len(), 2);
    // Used again: a grant is meant for more than one fetch.
    assert_eq!(
        get_with(&c, &relay, &mailbox, &week.to_header()).await.0,
        200
    );

    // Not for another mailbox.
    let (status, json, _) =
        get_with(&c, &relay, &other.mailbox().to_string(), &week.to_header()).await;
    assert_eq!((status, json["error"].as_str()), (403, Some("wrong_key")));
    // Not once expired, nor when it claims more than 14 days.
    let old = FetchGrant::sign(owner.signing(), UnixTime(now().0 - 1));
    let (status, json, _) = get_with(&c, &relay, &mailbox, &old.to_header()).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("stale_request"))
    );
    let long = FetchGrant::sign(owner.signing(), UnixTime(now().0 + 30 * 86_400));
    assert_eq!(
        get_with(&c, &relay, &mailbox, &long.to_header()).await.0,
        401
    );
    // Not tampered, not garbage.
    let mut bytes = *week.as_bytes();
    bytes[60] ^= 1;
    let tampered = amparo_protocol::b64::encode(&bytes);
    let (status, json, _) = get_with(&c, &relay, &mailbox, &tampered).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("bad_signature"))
    );
    let (status, json, _) = get_with(&c, &relay, &mailbox, "not-a-grant").await;
    assert_eq!(status, 400, "{json}");
    assert!(json["message"].is_string());

    // It cannot acknowledge: acks need the owner's fresh signature.
    let r = c
        .post(relay.url(&format!("/v1/mailboxes/{mailbox}/ack")))
        .header(grant::HEADER, week.to_header())
        .header("Content-Type", "application/json")
        .body(r#"{"ids":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (_, still) = fetch(&c, &relay, &owner, 0, 50).await;
    assert_eq!(still.len(), 2, "nothing was deleted");
}
