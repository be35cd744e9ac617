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
        // A full page that holds all its mailbox has does not say "more"
        // (the relay looks one envelope past it).
        assert!(matches!(&results[2], FetchResult::Page { more: false, .. }));
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

/// Envelope bytes of the 16 KiB class, with the cursor and length an answer
/// gives each.
const ITEM_16K: usize = mailboxes::ITEM_HEAD + 16_446;

fn more_of(r: &FetchResult<Envelope>) -> bool {
    matches!(r, FetchResult::Page { more: true, .. })
}

fn last_cursor(r: &FetchResult<Envelope>) -> u64 {
    match r {
        FetchResult::Page { items, .. } => items.last().map_or(0, |(c, _)| *c),
        FetchResult::Refused => panic!("refused"),
    }
}

/// Three mailboxes holding 2, 2 and 1 envelopes of 16 KiB.
async fn three_mailboxes(c: &reqwest::Client, relay: &Relay) -> Vec<RecipientKeys> {
    let mut e = SystemEntropy::new();
    let owners: Vec<RecipientKeys> = (0..3)
        .map(|_| RecipientKeys::generate(&mut e).unwrap())
        .collect();
    let mut sent = Vec::new();
    for (k, n) in owners.iter().zip([2, 2, 1]) {
        for _ in 0..n {
            let env = envelope_for(k, 10_000);
            assert_eq!(env.as_bytes().len() + mailboxes::ITEM_HEAD, ITEM_16K);
            sent.push(env);
        }
    }
    post_batch(c, relay, &sent).await;
    owners
}

/// Fetches the three mailboxes from `after` with an answer of at most
/// `max_bytes` (op 3), checking the answer is within it.
async fn fetch_within(
    c: &reqwest::Client,
    relay: &Relay,
    owners: &[RecipientKeys],
    after: [u64; 3],
    max_bytes: usize,
) -> Vec<FetchResult<Envelope>> {
    let entries: Vec<_> = owners
        .iter()
        .zip(after)
        .map(|(k, a)| (FetchAuth::Key(k.signing()), a))
        .collect();
    let body = mailboxes::sign_fetch_within(
        &entries,
        10,
        u32::try_from(max_bytes).unwrap(),
        now(),
        &mut SystemEntropy::new(),
    )
    .unwrap();
    let (status, answer) = post(c, relay, mailboxes::FETCH_PATH, body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert!(answer.len() <= max_bytes, "{} > {max_bytes}", answer.len());
    pages(&answer, 3)
}

fn counts(results: &[FetchResult<Envelope>]) -> Vec<(usize, bool)> {
    results.iter().map(|r| (ids(r).len(), more_of(r))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_stops_at_the_bytes_its_request_names_on_both_backends() {
    for backend in backends() {
        let name = backend.name();
        let relay = Relay::start(backend.database_url(), &[]);
        let c = client();
        let owners = three_mailboxes(&c, &relay).await;
        let framing = mailboxes::answer_framing(3);

        // Exactly the five envelopes and the framing: all of them.
        let all = fetch_within(&c, &relay, &owners, [0; 3], framing + 5 * ITEM_16K).await;
        assert_eq!(
            counts(&all),
            vec![(2, false), (2, false), (1, false)],
            "{name}"
        );
        // One byte less: the last envelope would go over, so it waits, and
        // its page says "more".
        let four = fetch_within(&c, &relay, &owners, [0; 3], framing + 5 * ITEM_16K - 1).await;
        assert_eq!(
            counts(&four),
            vec![(2, false), (2, false), (0, true)],
            "{name}"
        );
        // The least a request may name (one envelope of the largest size):
        // three of these. The answer stops in the second mailbox, and every
        // page after the cut says "more", even one the relay did not read.
        let least = mailboxes::min_answer_len(3);
        assert_eq!(least / ITEM_16K, 3);
        let cut = fetch_within(&c, &relay, &owners, [0; 3], least).await;
        assert_eq!(
            counts(&cut),
            vec![(2, false), (1, true), (0, true)],
            "{name}"
        );
        // The next request goes on from the cursors it got and reads the
        // rest: nothing twice, nothing skipped.
        let rest = fetch_within(
            &c,
            &relay,
            &owners,
            [last_cursor(&cut[0]), last_cursor(&cut[1]), 0],
            least,
        )
        .await;
        assert_eq!(
            counts(&rest),
            vec![(0, false), (1, false), (1, false)],
            "{name}"
        );
        let mut got: Vec<EnvelopeId> = cut.iter().chain(&rest).flat_map(ids).collect();
        got.sort_unstable_by_key(|i| i.0);
        let mut expected: Vec<EnvelopeId> = all.iter().flat_map(ids).collect();
        expected.sort_unstable_by_key(|i| i.0);
        assert_eq!(got, expected, "{name}");

        // A size out of bounds is refused (and signed all the same): the
        // request is checked before anything is read or remembered.
        let mut e = SystemEntropy::new();
        let entries: Vec<_> = owners
            .iter()
            .map(|k| (FetchAuth::Key(k.signing()), 0))
            .collect();
        for bad in [least - 1, mailboxes::ANSWER_BUDGET + 1] {
            assert!(mailboxes::sign_fetch_within(&entries, 10, bad as u32, now(), &mut e).is_err());
        }
        // A request of op 1 (no size) answers them all within 4 MiB.
        let old = mailboxes::sign_fetch(&entries, 10, now(), &mut e).unwrap();
        let (status, answer) = post(&c, &relay, mailboxes::FETCH_PATH, old).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(answer.len(), framing + 5 * ITEM_16K, "{name}");
        assert_eq!(
            counts(&pages(&answer, 3)),
            vec![(2, false), (2, false), (1, false)]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_size_out_of_bounds_is_refused_and_changes_nothing() {
    let relay = Relay::start(None, &[]);
    let c = client();
    let owners = three_mailboxes(&c, &relay).await;
    let mut e = SystemEntropy::new();
    // Built by hand: the library refuses to sign it.
    let least = u32::try_from(mailboxes::min_answer_len(1)).unwrap();
    let good = mailboxes::sign_fetch_within(
        &[(FetchAuth::Key(owners[0].signing()), 0)],
        10,
        least,
        now(),
        &mut e,
    )
    .unwrap();
    for bad in [
        0u32,
        least - 1,
        mailboxes::ANSWER_BUDGET as u32 + 1,
        u32::MAX,
    ] {
        let mut t = good.clone();
        t[26..30].copy_from_slice(&bad.to_be_bytes());
        let (status, body) = post(&c, &relay, mailboxes::FETCH_PATH, t).await;
        // The signature covers the size, but the size is checked first.
        assert_eq!((status, error_code(&body).as_str()), (400, "invalid_field"));
    }
    // The good request was not spent by those, and reads within its size.
    let (status, answer) = post(&c, &relay, mailboxes::FETCH_PATH, good).await;
    assert_eq!(status, 200);
    assert!(answer.len() <= least as usize);
    assert_eq!(ids(&pages(&answer, 1)[0]).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_field_relay_keeps_to_the_size_online_and_from_its_cache() {
    for backend in backends() {
        let name = backend.name();
        let central = Relay::start(backend.database_url(), &[]);
        let upstream_key = format!(
            "--upstream-key={}",
            amparo_protocol::b64::encode(central.receipt_key.as_bytes())
        );
        let field = Relay::start(
            None,
            &[
                "--upstream",
                &central.url(""),
                &upstream_key,
                "--forward-interval",
                "1",
            ],
        );
        let c = client();
        let owners = three_mailboxes(&c, &central).await;
        let framing = mailboxes::answer_framing(3);
        // Online: the request goes upstream as it came; the centre keeps to
        // the size, and the field relay caches what it passed on.
        let online = fetch_within(&c, &field, &owners, [0; 3], framing + 4 * ITEM_16K).await;
        assert_eq!(
            counts(&online),
            vec![(2, false), (2, false), (0, true)],
            "{name}"
        );
        let all = fetch_within(&c, &field, &owners, [0; 3], framing + 5 * ITEM_16K).await;
        assert_eq!(counts(&all), vec![(2, false), (2, false), (1, false)]);

        // Offline: from the cache, within the size all the same.
        drop(central);
        let least = mailboxes::min_answer_len(3);
        let cut = fetch_within(&c, &field, &owners, [0; 3], least).await;
        assert_eq!(
            counts(&cut),
            vec![(2, false), (1, true), (0, true)],
            "{name}"
        );
        let offline = fetch_within(&c, &field, &owners, [0; 3], framing + 5 * ITEM_16K).await;
        assert_eq!(
            counts(&offline),
            vec![(2, false), (2, false), (1, false)],
            "{name}"
        );
        let four = fetch_within(&c, &field, &owners, [0; 3], framing + 5 * ITEM_16K - 1).await;
        assert_eq!(
            counts(&four),
            vec![(2, false), (2, false), (0, true)],
            "{name}"
        );
    }
}
