//! A survivor with no signal hands her sealed report to a peer facilitator as
//! a bundle; the facilitator, who cannot read it, delivers it when she reaches
//! a connection and carries back the relay's receipts and the directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::drafts::DraftForm;
use amparo_core::inbox::{Incoming, open};
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::b64;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::payload::AttachmentKind;
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_tests::{Relay, directory_with, focal_point_entry, now};

const CANARY: &str = "CanaryCarried-Rt93-no-lo-puede-leer";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn bundle_out_receipts_back() {
    let coordinator = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
    let pinned = coordinator.verifying_key();
    let relay = Relay::start(
        None,
        &[&format!(
            "--coordinator-key={}",
            b64::encode(pinned.as_bytes())
        )],
    );
    let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let fp = focal_point_entry("pe-uca-defensoria", focal.public());
    let directory = directory_with(vec![fp.clone()], &relay.receipt_key);
    client
        .publish_directory(directory.sign(1, &coordinator).unwrap().as_bytes())
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let fast = KdfParams::DANGEROUSLY_FAST_FOR_TESTS;
    let survivor = Profile::create(&dir.path().join("survivor"), "1111", fast).unwrap();
    let facilitator_dir = dir.path().join("facilitator");
    let facilitator = Profile::create(&facilitator_dir, "2222", fast).unwrap();

    // Offline: write and seal a report with a photo.
    let draft = survivor
        .create_draft(&DraftForm {
            text: CANARY.into(),
            ..DraftForm::default()
        })
        .unwrap();
    survivor
        .add_attachment(
            &draft,
            AttachmentKind::Audio,
            "audio/ogg",
            &vec![5u8; 90_000],
        )
        .unwrap();
    let report_id = survivor.send_draft(&draft, &fp, false, now()).unwrap();
    assert_eq!(survivor.outbox_len().unwrap(), 3);
    let out = survivor.export_outbox_bundle().unwrap();

    // The facilitator takes it (twice: a repeated transfer changes nothing).
    let first = facilitator.import_bundle(&out, &pinned, &[]).unwrap();
    assert_eq!((first.envelopes, first.damaged.as_deref()), (3, None));
    let again = facilitator.import_bundle(&out, &pinned, &[]).unwrap();
    assert_eq!((again.envelopes, again.duplicates), (0, 3));
    assert_eq!(facilitator.carrying().unwrap().waiting, 3);
    // A damaged transfer keeps what came before the damage, and says so.
    let cut = facilitator
        .import_bundle(&out[..out.len() / 2], &pinned, &[])
        .unwrap();
    assert!(cut.damaged.is_some());
    assert_eq!(cut.envelopes, 0, "all it held were duplicates");

    // At the community centre she has signal: directory, then upload.
    facilitator
        .refresh_directory(&client, &pinned)
        .await
        .unwrap();
    let delivered = facilitator
        .upload_carried(&client, &[relay.receipt_key])
        .await
        .unwrap();
    assert_eq!(delivered, 3);
    assert_eq!(facilitator.carrying().unwrap().delivered, 3);

    // The focal point receives and reads it.
    let page = client
        .fetch(&focal, 0, 100, now(), &mut SystemEntropy::new())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.items.iter().any(|(_, e)| matches!(
        open(e, &focal).unwrap(),
        Incoming::Report { ref report, .. } if report.text == CANARY
    )));

    // Back in town: receipts and the directory flow back to the survivor.
    let back = facilitator.export_return_bundle().unwrap();
    let imported = survivor.import_bundle(&back, &pinned, &[]).unwrap();
    assert_eq!(imported.receipts_accepted, 3, "{imported:?}");
    assert_eq!(imported.directory, Some(1));
    assert_eq!(survivor.outbox_len().unwrap(), 0);
    let sent = survivor.sent_reports().unwrap();
    assert_eq!(
        (sent[0].id, sent[0].delivered, sent[0].pending),
        (report_id, 3, 0)
    );

    // A receipt from a key nobody trusts is ignored: a forged return bundle
    // cannot mark reports delivered.
    let mallory = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
    let other = Profile::create(&dir.path().join("other"), "3333", fast).unwrap();
    let d = other.create_draft(&DraftForm::default()).unwrap();
    other.send_draft(&d, &fp, false, now()).unwrap();
    let mine = amparo_protocol::bundle::decode_all(&other.export_outbox_bundle().unwrap()).unwrap();
    let amparo_protocol::bundle::BundleItem::Envelope(env) = &mine[0] else {
        panic!()
    };
    let mut forged = amparo_protocol::bundle::BundleEncoder::new();
    forged
        .receipt(&amparo_protocol::receipt::Receipt::sign(
            env.id(),
            now(),
            &mallory,
        ))
        .unwrap();
    let r = other
        .import_bundle(&forged.finish(), &pinned, &[relay.receipt_key])
        .unwrap();
    assert_eq!((r.receipts_accepted, r.receipts_ignored), (0, 1));
    assert_eq!(other.outbox_len().unwrap(), 1);

    // The facilitator's store never held the report in the clear.
    drop(facilitator);
    for entry in std::fs::read_dir(&facilitator_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!contains(&bytes, CANARY.as_bytes()));
    }
}
