//! A survivor's profile against a real relay process: send a draft with an
//! attachment, sync (receipts verified, outbox emptied), a focal point
//! answers, the next sync files the answer and the case status once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::drafts::DraftForm;
use amparo_core::inbox::{Incoming, open};
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store::{KdfParams, Profile};
use amparo_core::survivor::SyncProgress;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::*;
use amparo_protocol::primitives::ed25519::VerifyingKey;
use amparo_tests::{Relay, focal_point_entry, now};

#[tokio::test]
async fn send_sync_and_read_the_answer() {
    let relay = Relay::start(None, &[]);
    let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let profile =
        Profile::create(dir.path(), "4821", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let fp = focal_point_entry("pe-uca-defensoria", focal.public());

    let draft = profile
        .create_draft(&DraftForm {
            violence: vec![ViolenceKind::ArbitraryDetention],
            aggressors: vec![AggressorKind::PoliceOrSecurity],
            needs: vec![Need::LegalAdvice],
            language: Some(Language::Es),
            text: "Me detuvieron sin motivo en la plaza.".into(),
            ..DraftForm::default()
        })
        .unwrap();
    let document: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    profile
        .add_attachment(
            &draft,
            AttachmentKind::Document,
            "application/pdf",
            &document,
        )
        .unwrap();
    let report_id = profile.send_draft(&draft, &fp, false, now()).unwrap();
    assert!(
        profile.drafts().unwrap().is_empty(),
        "the draft's plaintext is gone once sealed"
    );
    assert_eq!(profile.outbox_len().unwrap(), 5, "4 chunks and the report");

    // A relay whose receipts this profile cannot verify (a field relay, or
    // one that lies) only takes it "handed over": everything stays queued.
    let wrong = VerifyingKey([3; 32]);
    let summary = profile
        .sync(&client, &[wrong], now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((summary.delivered, summary.handed_over), (0, 5));
    assert_eq!(profile.outbox_len().unwrap(), 5);
    let sent = profile.sent_reports().unwrap();
    assert_eq!((sent[0].handed_over, sent[0].delivered), (5, 0));

    // With the relay's key: delivered, and the outbox is empty.
    let mut seen = Vec::new();
    let summary = profile
        .sync(&client, &[relay.receipt_key], now, &mut |p| seen.push(p))
        .await
        .unwrap();
    assert_eq!(summary.delivered, 5);
    assert_eq!(profile.outbox_len().unwrap(), 0);
    assert!(
        seen.contains(&SyncProgress::Upload {
            done: 5,
            total: 5,
            bytes: 3 * 65598 + 4158 + 1086 // 3 full chunks, the last in the 4 KiB class, the report
        }),
        "{seen:?}"
    );
    let sent = profile.sent_reports().unwrap();
    assert_eq!(
        (sent[0].id, sent[0].delivered, sent[0].pending),
        (report_id, 5, 0)
    );

    // The focal point reads it and answers.
    let mut e = SystemEntropy::new();
    let page = client.fetch(&focal, 0, 100, now(), &mut e).await.unwrap();
    assert_eq!(page.items.len(), 5);
    let report = page
        .items
        .iter()
        .find_map(|(_, env)| match open(env, &focal).unwrap() {
            Incoming::Report { report, message_id } => Some((message_id, report)),
            _ => None,
        })
        .unwrap();
    assert_eq!(report.0, report_id);
    let reply = Reply {
        v: 1,
        report_id,
        text: "La acompañaremos a la fiscalía.".into(),
        language: Some(Language::Es),
        stamp: Default::default(),
    };
    let status = StatusUpdate {
        v: 1,
        report_id,
        status: CaseStatus::InProgress,
        message: None,
        referred_to: None,
        stamp: Default::default(),
    };
    let mut answers = Vec::new();
    for (purpose, body) in [
        (Purpose::Reply, reply.to_json().unwrap()),
        (Purpose::Status, status.to_json().unwrap()),
    ] {
        let h = InnerHeader::new(&mut e, now()).unwrap();
        answers.push(Envelope::seal(&report.1.reply_to, purpose, &h, &body, &mut e).unwrap());
    }
    client.upload(&answers).await.unwrap();

    let summary = profile
        .sync(&client, &[relay.receipt_key], now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(summary.new_messages, 2);
    let messages = profile.messages().unwrap();
    assert_eq!(messages.len(), 2);
    assert!(
        messages
            .iter()
            .any(|m| m.text.as_deref() == Some("La acompañaremos a la fiscalía."))
    );
    let sent = profile.sent_reports().unwrap();
    assert_eq!(
        (sent[0].status, sent[0].unread),
        (Some(CaseStatus::InProgress), 2)
    );
    profile.mark_read(&messages[0].id).unwrap();
    assert_eq!(profile.sent_reports().unwrap()[0].unread, 1);

    // The answers were acknowledged: a later copy (say, carried by a
    // facilitator) is not delivered again, and nothing is filed twice.
    client.upload(&answers).await.unwrap();
    let summary = profile
        .sync(&client, &[relay.receipt_key], now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(summary.new_messages, 0);
    assert_eq!(profile.messages().unwrap().len(), 2);
}

/// `sync_all` takes the directory from the relay (verified against the pinned
/// coordinator key) and trusts receipts from the relays it lists.
#[tokio::test]
async fn sync_all_uses_the_signed_directory() {
    use amparo_protocol::b64;
    use amparo_protocol::directory::{Directory, RelayEntry};
    use amparo_protocol::primitives::ed25519::SigningKey;

    let coordinator = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
    let relay = Relay::start(
        None,
        &[&format!(
            "--coordinator-key={}",
            b64::encode(coordinator.verifying_key().as_bytes())
        )],
    );
    let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let directory = Directory {
        statistics: None,
        focal_points: vec![focal_point_entry("pe-uca-defensoria", focal.public())],
        service_routes: vec![],
        relays: vec![RelayEntry {
            name: "main".into(),
            url: None,
            receipt_key: *relay.receipt_key.as_bytes(),
        }],
    };
    client
        .publish_directory(directory.sign(1, &coordinator).unwrap().as_bytes())
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::create(dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let pinned = coordinator.verifying_key();
    // First sync: the directory arrives.
    profile
        .sync_all(&client, &pinned, &[], now, &mut |_| {})
        .await
        .unwrap();
    let held = profile.directory(&pinned).unwrap().unwrap();
    let query = amparo_core::directory::FocalPointQuery {
        region: Some("PE-UCA".into()),
        need: Some(Need::LegalAdvice),
        language: Some(Language::Es),
    };
    let chosen = amparo_core::directory::suggest(&held, &query, now())
        .unwrap()
        .clone();
    let draft = profile
        .create_draft(&DraftForm {
            text: "Necesito asesoría.".into(),
            ..DraftForm::default()
        })
        .unwrap();
    profile.send_draft(&draft, &chosen, false, now()).unwrap();
    // Second sync: receipts verify against the relay key from the directory.
    let s = profile
        .sync_all(&client, &pinned, &[], now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(s.delivered, 1);
    assert_eq!(profile.outbox_len().unwrap(), 0);
    // A forged directory at the relay cannot replace it: the relay refuses it,
    // and the profile would refuse it too.
    let mallory = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
    let forged = directory.sign(7, &mallory).unwrap();
    assert!(
        profile
            .import_directory(forged.as_bytes(), &pinned, None)
            .is_err()
    );
    assert_eq!(profile.directory(&pinned).unwrap().unwrap(), held);
}
