//! Admission tokens (issue 17, part 2), over a real relay process with
//! admission on and a small mailbox cap, on SQLite and PostgreSQL: a focal
//! point of the directory is issued tokens, and vouches for a facilitator
//! who is issued some within a daily limit; strangers, bad vouchers and
//! requests over the limit are refused. The facilitator hands tokens to a
//! survivor as text; when the relay is pressed her phone spends one instead
//! of the work, and her report is delivered. A token spends once; a forged
//! one, or another relay's, is refused; nothing is stored for a refused
//! upload. The relay's records cannot join an issuance to a redemption:
//! nothing that crossed the wire at issuance is in the token, and the
//! database and the log hold neither the tokens nor the blinded requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::drafts::DraftForm;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::b64;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::Envelope;
use amparo_protocol::keys::{KeyId, RecipientKeys, RecipientPublic};
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::request::RequestProof;
use amparo_protocol::token::{self, Token, TokenKey};
use amparo_protocol::voucher::Voucher;
use amparo_protocol::wire;
use amparo_tests::crash::{http_exchange, post_batch};
use amparo_tests::{Relay, backends, directory_with, focal_point_entry, now};

const CAP: usize = 16;

fn junk(to: &RecipientPublic, n: usize) -> Vec<Envelope> {
    amparo_tests::sealed_junk(to, n)
}

/// Posts `envelopes` with `authorization` (if any): status and error code.
fn post(relay: &Relay, envelopes: &[Envelope], authorization: Option<String>) -> (u16, String) {
    let body = wire::encode_batch(envelopes.iter().map(|e| e.as_bytes()));
    let headers: Vec<(&str, String)> = authorization
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let (status, _, body) =
        http_exchange(relay.addr, "POST", "/v1/envelopes", &headers, &body).unwrap();
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

/// The relay's current token key, read as anyone reads it.
fn token_key(relay: &Relay) -> TokenKey {
    let (status, _, body) = http_exchange(
        relay.addr,
        "GET",
        "/.well-known/private-token-issuer-directory",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let spki = b64::decode_vec(
        v["token-keys"][0]["token-key"].as_str().unwrap(),
        512,
        "key",
    )
    .unwrap();
    TokenKey::from_spki(&spki).unwrap()
}

/// Issues `n` tokens by hand, signed by `key` (with `voucher`): the status,
/// the error code, the bytes that crossed the wire, and the tokens.
fn issue(
    relay: &Relay,
    key: &SigningKey,
    voucher: Option<&Voucher>,
    n: usize,
) -> (u16, String, Vec<u8>, Vec<Token>) {
    let mut e = SystemEntropy::new();
    let tk = token_key(relay);
    let relay_id = KeyId::for_key(&relay.receipt_key);
    let (requests, pending): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| token::begin(&tk, &relay_id, &mut e).unwrap())
        .unzip();
    let body = token::encode_requests(&requests);
    let proof = RequestProof::sign(key, "POST", "/v1/tokens", &body, now(), &mut e).unwrap();
    let mut headers = vec![("Amparo-Signature", proof.to_header())];
    if let Some(v) = voucher {
        headers.push(("Amparo-Voucher", v.to_header()));
    }
    let (status, _, answer) =
        http_exchange(relay.addr, "POST", "/v1/tokens", &headers, &body).unwrap();
    let code = serde_json::from_slice::<serde_json::Value>(&answer)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut wire = body.clone();
    wire.extend_from_slice(&answer);
    let tokens = if status == 200 {
        pending
            .iter()
            .zip(answer.chunks_exact(token::RESPONSE_LEN))
            .map(|(p, sig)| token::finish(p, sig).unwrap())
            .collect()
    } else {
        Vec::new()
    };
    (status, code, wire, tokens)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn trusted_people_hand_out_tokens_that_admit_once_and_cannot_be_joined_to_their_issuance() {
    for backend in backends() {
        let name = backend.name();
        let coordinator = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
        let args = relay_args(&coordinator);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut relay = Relay::start(backend.database_url(), &args);
        let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let fast = KdfParams::DANGEROUSLY_FAST_FOR_TESTS;
        let focal = Profile::create(&dir.path().join("focal"), "1111", fast).unwrap();
        let office = focal.create_focal_identity().unwrap();
        let fp = focal_point_entry("pe-uca-defensoria", office);
        // A second office whose keys the test holds, to ask by hand.
        let other = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
        let office_key = SigningKey::from_seed(&other.signing().dangerously_export_seed()).unwrap();
        let directory = directory_with(
            vec![fp.clone(), focal_point_entry("pe-uca-ong", other.public())],
            &relay.receipt_key,
        );
        client
            .publish_directory(directory.sign(1, &coordinator).unwrap().as_bytes())
            .await
            .unwrap();
        let keys = [relay.receipt_key];

        // A focal point of the directory is issued tokens.
        assert_eq!(
            focal
                .request_tokens(&client, &keys, 5, now())
                .await
                .unwrap(),
            5,
            "{name}"
        );
        assert_eq!(focal.tokens().unwrap().len(), 5);

        // A facilitator: nothing without a voucher; with one, within the
        // daily limit (4 here) and no more.
        let facilitator = Profile::create(&dir.path().join("carry"), "2222", fast).unwrap();
        assert!(
            facilitator
                .request_tokens(&client, &keys, 1, now())
                .await
                .is_err()
        );
        let carry_key = facilitator.carry_public_key().unwrap();
        let voucher = focal.vouch(&carry_key, 30, now()).unwrap();
        facilitator
            .set_voucher(&voucher.to_header(), now())
            .unwrap();
        assert_eq!(
            facilitator
                .request_tokens(&client, &keys, 3, now())
                .await
                .unwrap(),
            3,
            "{name}"
        );
        let over = facilitator
            .request_tokens(&client, &keys, 2, now())
            .await
            .unwrap_err()
            .to_string();
        assert!(over.contains("issuance_limit"), "{name}: {over}");

        // Strangers are refused: an unknown key, a voucher from someone who
        // is not a focal point, another key's voucher.
        let stranger = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
        let (status, code, _, _) = issue(&relay, &stranger, None, 1);
        assert_eq!((status, code.as_str()), (403, "not_an_issuer"), "{name}");
        let self_made = Voucher::sign(
            &stranger.verifying_key(),
            now(),
            amparo_protocol::UnixTime(now().0 + 86_400),
            &stranger,
        )
        .unwrap();
        let (status, code, _, _) = issue(&relay, &stranger, Some(&self_made), 1);
        assert_eq!((status, code.as_str()), (403, "bad_voucher"), "{name}");
        let (status, code, _, _) = issue(&relay, &stranger, Some(&voucher), 1);
        assert_eq!((status, code.as_str()), (403, "bad_voucher"), "{name}");

        // Half the mailbox's cap: from here uploads to it must pay.
        let (status, _) = post_batch(relay.addr, &junk(&office, CAP / 2)).unwrap();
        assert_eq!(status, 200, "{name}");
        assert_eq!(post(&relay, &junk(&office, 1), None).0, 429, "{name}");

        // The facilitator hands two tokens to a survivor, as text. Her
        // report goes in with one of them, with no work.
        let survivor = Profile::create(&dir.path().join("survivor"), "5678", fast).unwrap();
        let text = facilitator.export_tokens(2).unwrap().unwrap();
        assert_eq!(survivor.import_tokens(&text).unwrap(), 2);
        let d = survivor
            .create_draft(&DraftForm {
                text: "Me quitaron los documentos en el control.".into(),
                ..DraftForm::default()
            })
            .unwrap();
        survivor.send_draft(&d, &fp, false, now()).unwrap();
        let report_envelopes = survivor.outbox_len().unwrap();
        let s = survivor
            .sync(&client, &keys, now, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(
            (s.delivered, s.postponed),
            (report_envelopes, 0),
            "{name}: {s:?}"
        );
        assert_eq!((s.paid.tokens_used, s.paid.worked), (1, 0), "{name}: {s:?}");
        assert_eq!(survivor.tokens().unwrap().len(), 1);

        // By hand, as the focal point's phone would: an issuance, then its
        // token redeemed, then again.
        let (status, _, issuance_wire, tokens) = issue(&relay, &office_key, None, 2);
        assert_eq!(status, 200, "{name}");
        let token = tokens[0].clone();
        let before = stored(&relay);
        let one = junk(&office, 1);
        assert_eq!(post(&relay, &one, Some(token.to_header())).0, 200, "{name}");
        let two = junk(&office, 1);
        let (status, code) = post(&relay, &two, Some(token.to_header()));
        assert_eq!((status, code.as_str()), (429, "token_spent"), "{name}");
        let mut forged = tokens[1].clone();
        forged.authenticator[100] ^= 1;
        let (status, code) = post(&relay, &two, Some(forged.to_header()));
        assert_eq!((status, code.as_str()), (429, "bad_token"), "{name}");
        let mut elsewhere = tokens[1].clone();
        elsewhere.challenge_digest = token::challenge_digest(&KeyId([9; 8]));
        let (status, code) = post(&relay, &two, Some(elsewhere.to_header()));
        assert_eq!((status, code.as_str()), (429, "bad_token"), "{name}");
        let (status, code) = post(&relay, &two, Some("PrivateToken token=\"x\"".into()));
        assert_eq!((status, code.as_str()), (429, "bad_token"), "{name}");
        assert_eq!(
            stored(&relay),
            before + 1,
            "{name}: refused uploads stored nothing"
        );

        // Unlinkable: nothing of the issuance exchange is in the token.
        let redeemed = token.encode();
        for window in issuance_wire.chunks(16) {
            assert!(
                !contains(&redeemed, window),
                "{name}: issuance bytes in the token"
            );
        }
        // And the relay keeps neither the token nor the blinded exchange.
        let logs = relay.logs.lock().unwrap().clone();
        assert!(!logs.contains(&b64::encode(&redeemed)), "{name}: log");
        if backend.database_url().is_none() {
            for entry in std::fs::read_dir(relay.data_dir.path()).unwrap() {
                let path = entry.unwrap().path();
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                for needle in [
                    &token.nonce[..],
                    &token.authenticator[..32],
                    &issuance_wire[3..35],
                    &issuance_wire[issuance_wire.len() - 32..],
                    office_key.verifying_key().as_bytes().as_slice(),
                    carry_key.as_bytes().as_slice(),
                ] {
                    assert!(
                        !contains(&bytes, needle),
                        "{name}: {} holds what could join issuance and redemption",
                        path.display()
                    );
                }
            }
        }

        // The relay restarts and has forgotten its pressure: quiet. Her
        // phone remembers it was asked and sends her next report with a
        // token ahead (no body sent twice on 2G); the relay does not need
        // it, does not spend it, says so, and she keeps it.
        let data_dir = std::mem::replace(&mut relay.data_dir, tempfile::tempdir().unwrap());
        relay.kill();
        let args = relay_args(&coordinator);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let relay = Relay::start_in(data_dir, backend.database_url(), &args);
        assert_eq!(relay.receipt_key, keys[0], "{name}: the same relay");
        let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
        let d = survivor
            .create_draft(&DraftForm {
                text: "Volvieron a buscarme.".into(),
                ..DraftForm::default()
            })
            .unwrap();
        survivor.send_draft(&d, &fp, false, now()).unwrap();
        let s = survivor
            .sync(&client, &keys, now, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(s.postponed, 0, "{name}: {s:?}");
        assert_eq!((s.paid.tokens_used, s.paid.worked), (0, 0), "{name}: {s:?}");
        assert_eq!(survivor.tokens().unwrap().len(), 1, "{name}: kept");
    }
}

fn relay_args(coordinator: &SigningKey) -> Vec<String> {
    vec![
        format!(
            "--coordinator-key={}",
            b64::encode(coordinator.verifying_key().as_bytes())
        ),
        "--mailbox-max-envelopes".into(),
        CAP.to_string(),
        "--admission-max-effort".into(),
        "4096".into(),
        "--tokens-per-day-facilitator".into(),
        "4".into(),
        "--public-metrics".into(),
    ]
}

/// Envelopes the relay holds (its metrics).
fn stored(relay: &Relay) -> usize {
    let (_, _, body) = http_exchange(relay.addr, "GET", "/metrics", &[], b"").unwrap();
    String::from_utf8(body)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("amparo_envelopes_stored "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
