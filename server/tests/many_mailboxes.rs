//! `POST /v1/mailboxes/fetch` and `POST /v1/mailboxes/ack`: many mailboxes
//! in one request, on SQLite and PostgreSQL. Each entry is read only with its
//! own key's signature or a live grant; a replayed, stale, tampered or
//! oversized request is a 4xx that changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amparo_protocol::UnixTime;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, EnvelopeId};
use amparo_protocol::grant::FetchGrant;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::mailboxes::{self, FetchAuth, FetchResult};
use common::*;

async fn post(c: &reqwest::Client, relay: &Relay, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let r = c
        .post(relay.url(path))
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

fn error_code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert!(v["message"].is_string(), "{v}");
    v["error"].as_str().unwrap().to_owned()
}

fn pages(body: &[u8], n: usize) -> Vec<FetchResult<Envelope>> {
    mailboxes::decode_fetch_answer(body, n).unwrap()
}

fn ids(r: &FetchResult<Envelope>) -> Vec<EnvelopeId> {
    match r {
        FetchResult::Page { items, .. } => items.iter().map(|(_, e)| e.id()).collect(),
        FetchResult::Refused => panic!("refused"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn many_mailboxes_in_one_request_on_both_backends() {
    for backend in backends() {
        let relay = Relay::start(backend.database_url(), &[]);
        let c = client();
        let mut e = SystemEntropy::new();
        let owners: Vec<RecipientKeys> = (0..5)
            .map(|_| RecipientKeys::generate(&mut e).unwrap())
            .collect();
        // Mailbox i holds i envelopes, and mailbox 4 holds 3 as well.
        let mut sent = Vec::new();
        for (i, k) in owners.iter().enumerate() {
            for _ in 0..i.min(3) {
                sent.push(envelope_for(k, 300));
            }
        }
        post_batch(&c, &relay, &sent).await;

        // Owners 0..3 by key, owner 3 by a live grant, owner 4 by an expired one.
        let live = FetchGrant::sign(owners[3].signing(), UnixTime(now().0 + 3600));
        let expired = FetchGrant::sign(owners[4].signing(), UnixTime(now().0 - 10));
        let entries = [
            (FetchAuth::Key(owners[0].signing()), 0),
            (FetchAuth::Key(owners[1].signing()), 0),
            (FetchAuth::Key(owners[2].signing()), 0),
            (FetchAuth::Grant(&live), 0),
            (FetchAuth::Grant(&expired), 0),
        ];
        let body = mailboxes::sign_fetch(&entries, 2, now(), &mut e).unwrap();
        let (status, answer) = post(&c, &relay, mailboxes::FETCH_PATH, body.clone()).await;
        assert_eq!(status, 200, "{}", backend.name());
        let results = pages(&answer, 5);
        assert_eq!(ids(&results[0]).len(), 0);
        assert_eq!(ids(&results[1]).len(), 1);
        assert!(matches!(&results[1], FetchResult::Page { more: false, .. }));
        assert_eq!(ids(&results[2]).len(), 2);
        // Limit 2: mailbox 3's third envelope waits for the next request.
        assert_eq!(ids(&results[3]).len(), 2);
        assert!(matches!(&results[3], FetchResult::Page { more: true, .. }));
        assert_eq!(results[4], FetchResult::Refused);
        // Each page holds only its own mailbox's envelopes.
        for (r, k) in results.iter().zip(&owners).take(4) {
            if let FetchResult::Page { items, .. } = r {
                assert!(items.iter().all(|(_, env)| env.mailbox() == k.mailbox()));
            }
        }

        // The same request again is a replay.
        let (status, again) = post(&c, &relay, mailboxes::FETCH_PATH, body).await;
        assert_eq!(
            (status, error_code(&again).as_str()),
            (401, "replayed_request")
        );

        // Acknowledge mailboxes 1 and 2 in one request.
        let mut to_ack = vec![
            (owners[1].signing(), ids(&results[1])),
            (owners[2].signing(), ids(&results[2])),
        ];
        let ack = mailboxes::sign_ack(&to_ack, now(), &mut e).unwrap();
        let (status, answer) = post(&c, &relay, mailboxes::ACK_PATH, ack.clone()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(v["acknowledged"], 3);
        let (status, again) = post(&c, &relay, mailboxes::ACK_PATH, ack).await;
        assert_eq!(
            (status, error_code(&again).as_str()),
            (401, "replayed_request")
        );
        // An id of another mailbox is ignored: each key deletes only its own.
        to_ack = vec![(owners[1].signing(), ids(&results[3]))];
        let ack = mailboxes::sign_ack(&to_ack, now(), &mut e).unwrap();
        let (_, answer) = post(&c, &relay, mailboxes::ACK_PATH, ack).await;
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(v["acknowledged"], 0);

        assert_eq!(fetch_all(&c, &relay, &owners[1]).await.len(), 0);
        assert_eq!(fetch_all(&c, &relay, &owners[2]).await.len(), 0);
        assert_eq!(fetch_all(&c, &relay, &owners[3]).await.len(), 3);
        assert_eq!(fetch_all(&c, &relay, &owners[4]).await.len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_many_mailbox_requests_change_nothing() {
    let relay = Relay::start(None, &[]);
    let c = client();
    let mut e = SystemEntropy::new();
    let a = RecipientKeys::generate(&mut e).unwrap();
    let b = RecipientKeys::generate(&mut e).unwrap();
    post_batch(&c, &relay, &[envelope_for(&a, 300), envelope_for(&b, 300)]).await;
    let held: Vec<EnvelopeId> = fetch_all(&c, &relay, &a)
        .await
        .iter()
        .map(|(_, env)| env.id())
        .collect();

    let good = mailboxes::sign_ack(&[(a.signing(), held.clone())], now(), &mut e).unwrap();
    // Tampered anywhere: refused.
    for at in [1usize, 10, 30, good.len() - 70, good.len() - 1] {
        let mut t = good.clone();
        t[at] ^= 0x04;
        let (status, body) = post(&c, &relay, mailboxes::ACK_PATH, t).await;
        assert!((400..500).contains(&status), "byte {at}: {status}");
        error_code(&body);
    }
    // Stale.
    let stale = mailboxes::sign_ack(
        &[(a.signing(), held.clone())],
        UnixTime(now().0 - 3600),
        &mut e,
    )
    .unwrap();
    let (status, body) = post(&c, &relay, mailboxes::ACK_PATH, stale).await;
    assert_eq!((status, error_code(&body).as_str()), (401, "stale_request"));
    // A fetch body sent to the ack route and the other way round.
    let fetch =
        mailboxes::sign_fetch(&[(FetchAuth::Key(a.signing()), 0)], 10, now(), &mut e).unwrap();
    assert_eq!(post(&c, &relay, mailboxes::ACK_PATH, fetch).await.0, 400);
    assert_eq!(
        post(&c, &relay, mailboxes::FETCH_PATH, good.clone())
            .await
            .0,
        400
    );
    // Truncated, empty, random, oversized.
    for body in [
        good[..good.len() / 2].to_vec(),
        Vec::new(),
        vec![0x5a; 333],
        vec![1; mailboxes::MAX_BODY + 1],
    ] {
        let len = body.len();
        let (status, answer) = post(&c, &relay, mailboxes::FETCH_PATH, body).await;
        assert!((400..500).contains(&status), "{len} bytes: {status}");
        error_code(&answer);
    }
    // The same mailbox twice.
    let twice = mailboxes::sign_fetch(
        &[
            (FetchAuth::Key(a.signing()), 0),
            (FetchAuth::Key(a.signing()), 0),
        ],
        10,
        now(),
        &mut e,
    )
    .unwrap();
    assert_eq!(post(&c, &relay, mailboxes::FETCH_PATH, twice).await.0, 400);

    // Nothing was deleted, and the good request still works once.
    assert_eq!(fetch_all(&c, &relay, &a).await.len(), 1);
    assert_eq!(fetch_all(&c, &relay, &b).await.len(), 1);
    let (status, _) = post(&c, &relay, mailboxes::ACK_PATH, good).await;
    assert_eq!(status, 200);
    assert_eq!(fetch_all(&c, &relay, &a).await.len(), 0);
    assert_eq!(fetch_all(&c, &relay, &b).await.len(), 1);
}
