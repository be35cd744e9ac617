//! When the relay cannot take an envelope now (PROTOCOL.md §12.6, codes 5, 6
//! and 7), the survivor's phone and the facilitator keep it, send nothing
//! more that would be refused too in the same sync, say when to try again,
//! and deliver it at a later sync. Against a small stand-in relay that
//! answers uploads as each test says (the real relay's caps are tested in
//! the relay's own tests and in `tests/tests/flooded_reply_mailbox.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use amparo_core::drafts::DraftForm;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::Envelope;
use amparo_protocol::keys::{MailboxId, RecipientKeys};
use amparo_protocol::mailboxes::{FetchResult, encode_fetch_answer};
use amparo_protocol::payload::AttachmentKind;
use amparo_protocol::primitives::ed25519::{SigningKey, VerifyingKey};
use amparo_protocol::receipt::Receipt;
use amparo_protocol::wire::{self, EnvelopeResult, RejectCode};
use amparo_tests::{focal_point_entry, now};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

type Policy = dyn Fn(&Envelope) -> Option<RejectCode> + Send + Sync;

/// What the stand-in relay saw.
#[derive(Default)]
struct Seen {
    upload_requests: usize,
    /// Every envelope uploaded, by mailbox.
    uploaded: Vec<MailboxId>,
}

/// A relay that signs for an envelope unless `policy` gives a reject code,
/// answers every mailbox fetch with empty pages, and counts uploads.
struct StandIn {
    url: String,
    key: VerifyingKey,
    policy: Arc<Mutex<Box<Policy>>>,
    seen: Arc<Mutex<Seen>>,
}

impl StandIn {
    async fn start() -> StandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let signer = Arc::new(SigningKey::generate(&mut SystemEntropy::new()).unwrap());
        let key = signer.verifying_key();
        let policy: Arc<Mutex<Box<Policy>>> = Arc::new(Mutex::new(Box::new(|_| None)));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (p, s) = (policy.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let (p, s, signer) = (p.clone(), s.clone(), signer.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, &p, &s, &signer).await;
                });
            }
        });
        StandIn {
            url,
            key,
            policy,
            seen,
        }
    }

    fn client(&self) -> RelayClient {
        RelayClient::new(&RelayConfig::new(self.url.clone())).unwrap()
    }

    fn answer(&self, policy: impl Fn(&Envelope) -> Option<RejectCode> + Send + Sync + 'static) {
        *self.policy.lock().unwrap() = Box::new(policy);
    }

    fn seen(&self) -> (usize, Vec<MailboxId>) {
        let s = self.seen.lock().unwrap();
        (s.upload_requests, s.uploaded.clone())
    }
}

/// One keep-alive HTTP/1.1 connection: requests in, answers out.
async fn serve(
    conn: tokio::net::TcpStream,
    policy: &Mutex<Box<Policy>>,
    seen: &Mutex<Seen>,
    key: &SigningKey,
) -> std::io::Result<()> {
    let mut conn = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut len = 0;
        loop {
            let mut h = String::new();
            conn.read_line(&mut h).await?;
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; len];
        conn.read_exact(&mut body).await?;
        let (status, answer) = match path.as_str() {
            "/v1/envelopes" => {
                let mut results = Vec::new();
                let mut s = seen.lock().unwrap();
                s.upload_requests += 1;
                for bytes in wire::decode_batch(&body, 256).unwrap() {
                    let env = Envelope::decode(bytes).unwrap();
                    s.uploaded.push(env.mailbox());
                    results.push(match (policy.lock().unwrap())(&env) {
                        Some(code) => EnvelopeResult::Rejected(code),
                        None => EnvelopeResult::Accepted(Receipt::sign(env.id(), now(), key)),
                    });
                }
                ("200 OK", wire::encode_results(&results))
            }
            "/v1/mailboxes/fetch" => {
                // Either operation (0x03 names its answer's size after the
                // nonce): the count follows the limit.
                let at = if body[1] == 3 { 32 } else { 28 };
                let count = u16::from_be_bytes([body[at], body[at + 1]]);
                let empty = (0..count).map(|_| FetchResult::<Vec<u8>>::Page {
                    items: vec![],
                    more: false,
                });
                ("200 OK", encode_fetch_answer(empty))
            }
            "/v1/receipts" => ("200 OK", Vec::new()),
            _ => ("404 Not Found", b"{\"error\":\"not_found\"}".to_vec()),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\n\r\n",
            answer.len()
        );
        let conn = conn.get_mut();
        conn.write_all(head.as_bytes()).await?;
        conn.write_all(&answer).await?;
    }
}

/// A survivor with one report and a 300 KB attachment (six envelopes, five
/// of them 64 KiB chunks) for the focal point `to`.
fn survivor_with_report(dir: &std::path::Path, to: &RecipientKeys, name: &str) -> Profile {
    let p = Profile::create(dir, "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let fp = focal_point_entry(name, to.public());
    let d = p
        .create_draft(&DraftForm {
            text: "me quitaron los documentos".into(),
            ..DraftForm::default()
        })
        .unwrap();
    p.add_attachment(
        &d,
        AttachmentKind::Document,
        "application/pdf",
        &[7u8; 300_000],
    )
    .unwrap();
    p.send_draft(&d, &fp, false, now()).unwrap();
    p
}

#[tokio::test]
async fn a_full_relay_stops_the_upload_keeps_everything_and_says_when_to_come_back() {
    let relay = StandIn::start().await;
    let keys = [relay.key];
    let dir = tempfile::tempdir().unwrap();
    let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let p = survivor_with_report(dir.path(), &focal, "pe-a");
    let waiting = p.outbox_len().unwrap();
    assert_eq!(waiting, 6);

    relay.answer(|_| Some(RejectCode::RelayFull));
    let s = p
        .sync(&relay.client(), &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (s.delivered, s.postponed, s.refused),
        (0, waiting, 0),
        "{s:?}"
    );
    assert_eq!(
        p.outbox_len().unwrap(),
        waiting,
        "nothing leaves the outbox"
    );
    // One request: once the relay said it is full, nothing more was sent
    // (the first batch holds one or two envelopes).
    let (requests, uploaded) = relay.seen();
    assert_eq!(requests, 1);
    assert!(uploaded.len() <= 2, "{} envelopes sent", uploaded.len());
    // Come back in an hour or so, with jitter.
    let wait = s.retry_after_secs.unwrap();
    assert!((3600..=5400).contains(&wait), "{wait}");

    // Later the relay has room: everything goes, nothing is said of waiting.
    relay.answer(|_| None);
    let s = p
        .sync(&relay.client(), &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (s.delivered, s.postponed, s.retry_after_secs),
        (waiting, 0, None)
    );
    assert_eq!(p.outbox_len().unwrap(), 0);
}

#[tokio::test]
async fn a_full_mailbox_holds_only_what_goes_there() {
    let relay = StandIn::start().await;
    let keys = [relay.key];
    let dir = tempfile::tempdir().unwrap();
    let full = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let other = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let p = survivor_with_report(dir.path(), &full, "pe-a");
    let fp = focal_point_entry("pe-b", other.public());
    let d = p.create_draft(&DraftForm::default()).unwrap();
    p.send_draft(&d, &fp, false, now()).unwrap();
    assert_eq!(p.outbox_len().unwrap(), 7);

    let full_mailbox = full.mailbox();
    relay.answer(move |e| (e.mailbox() == full_mailbox).then_some(RejectCode::MailboxFull));
    let s = p
        .sync(&relay.client(), &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((s.delivered, s.postponed), (1, 6), "{s:?}");
    let (_, uploaded) = relay.seen();
    let to_full = uploaded.iter().filter(|m| **m == full_mailbox).count();
    assert!(
        to_full <= 2,
        "{to_full} envelopes sent to a mailbox said to be full"
    );
    let wait = s.retry_after_secs.unwrap();
    assert!((900..=1350).contains(&wait), "{wait}");
    assert_eq!(p.outbox_len().unwrap(), 6);
}

#[tokio::test]
async fn a_facilitator_keeps_what_the_relay_cannot_take_now() {
    let relay = StandIn::start().await;
    let keys = [relay.key];
    let dir = tempfile::tempdir().unwrap();
    let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let survivor = survivor_with_report(&dir.path().join("s"), &focal, "pe-a");
    let carrier = Profile::create(
        &dir.path().join("f"),
        "2",
        KdfParams::DANGEROUSLY_FAST_FOR_TESTS,
    )
    .unwrap();
    let coordinator = SigningKey::generate(&mut SystemEntropy::new())
        .unwrap()
        .verifying_key();
    let bundle = survivor.export_outbox_bundle().unwrap();
    assert_eq!(
        carrier
            .import_bundle(&bundle, &coordinator, &[])
            .unwrap()
            .envelopes,
        6
    );

    relay.answer(|_| Some(RejectCode::RelayFull));
    let up = carrier
        .upload_carried_with_progress(&relay.client(), &keys, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (up.delivered, up.postponed, up.refused),
        (0, 6, 0),
        "{up:?}"
    );
    assert!((3600..=5400).contains(&up.retry_after_secs.unwrap()));
    assert_eq!(carrier.carrying().unwrap().waiting, 6, "all still carried");
    let (requests, uploaded) = relay.seen();
    assert_eq!(requests, 1);
    assert!(uploaded.len() <= 2);

    // The relay has room again, but finds one envelope malformed (say it
    // was damaged on the way): the rest are delivered, that one is set aside
    // and never sent again.
    let seen_first = Arc::new(Mutex::new(None::<[u8; 16]>));
    let first = seen_first.clone();
    relay.answer(move |e| {
        let mut f = first.lock().unwrap();
        match *f {
            None => {
                *f = Some(e.id().0);
                Some(RejectCode::BadSizeClass)
            }
            Some(id) if id == e.id().0 => Some(RejectCode::BadSizeClass),
            Some(_) => None,
        }
    });
    let up = carrier
        .upload_carried_with_progress(&relay.client(), &keys, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (up.delivered, up.postponed, up.refused),
        (5, 0, 1),
        "{up:?}"
    );
    assert_eq!(up.retry_after_secs, None);
    let c = carrier.carrying().unwrap();
    assert_eq!((c.waiting, c.delivered, c.refused), (0, 5, 1));
    // Nothing is waiting: a third sync sends nothing at all.
    let (before, _) = relay.seen();
    let up = carrier
        .upload_carried_with_progress(&relay.client(), &keys, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(up, Default::default());
    assert_eq!(relay.seen().0, before);
}
