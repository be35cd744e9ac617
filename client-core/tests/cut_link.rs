//! A sync cut in the middle — of the upload, or of the relay's answer after
//! it stored everything — loses nothing and, once resumed, delivers each
//! envelope to the focal point exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use amparo_core::drafts::DraftForm;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::retry::{Backoff, with_backoff};
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::payload::AttachmentKind;
use amparo_tests::{Cut, CutProxy, Relay, focal_point_entry, now};

#[tokio::test(flavor = "multi_thread")]
async fn cut_upload_and_cut_answer_then_resume() {
    let relay = Relay::start(None, &[]);
    let proxy = CutProxy::start(relay.addr);
    let client = RelayClient::new(&RelayConfig::new(proxy.url())).unwrap();
    let direct = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    let keys = [relay.receipt_key];
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::create(dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let fp = focal_point_entry("fp", focal.public());

    // Two reports with audio: 2 × (6 chunks + report) = 14 envelopes, ~800 KB.
    for i in 0..2u32 {
        let d = profile
            .create_draft(&DraftForm {
                text: format!("informe {i}"),
                ..DraftForm::default()
            })
            .unwrap();
        let audio: Vec<u8> = (0..350_000u32)
            .map(|j| (j.wrapping_mul(31).wrapping_add(i)) as u8)
            .collect();
        profile
            .add_attachment(&d, AttachmentKind::Audio, "audio/ogg", &audio)
            .unwrap();
        profile.send_draft(&d, &fp, false, now()).unwrap();
    }
    assert_eq!(profile.outbox_len().unwrap(), 14);

    // 1. The link dies halfway through the upload: an error, nothing lost.
    //    Requests are sized by the link's speed, the first one small, so
    //    what went before the cut has its receipts already.
    proxy.cut_next(Cut {
        upload_after: Some(400_000),
        download_after: None,
    });
    assert!(
        profile
            .sync(&client, &keys, now, &mut |_| {})
            .await
            .is_err()
    );
    let left = profile.outbox_len().unwrap();
    assert!((1..14).contains(&left), "{left} of 14 still queued");
    let receipted: usize = profile
        .sent_reports()
        .unwrap()
        .iter()
        .map(|r| r.delivered)
        .sum();
    assert_eq!(
        receipted + left,
        14,
        "nothing left the outbox without a receipt"
    );

    // 2. The upload arrives whole, but the answer is cut: the relay stored
    //    everything, the phone does not know it yet.
    proxy.cut_next(Cut {
        upload_after: None,
        download_after: Some(200),
    });
    assert!(
        profile
            .sync(&client, &keys, now, &mut |_| {})
            .await
            .is_err()
    );
    assert_eq!(profile.outbox_len().unwrap(), left);

    // 3. Resumed: every envelope gets its receipt (the relay answers copies
    //    it holds with the same receipt) and the outbox empties.
    let s = profile
        .sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(s.delivered, left);
    assert_eq!(profile.outbox_len().unwrap(), 0);
    assert!(
        profile
            .sent_reports()
            .unwrap()
            .iter()
            .all(|r| r.delivered == 7 && r.pending == 0)
    );

    // 4. One more report, and a link that drops twice in a row: the sync
    //    with backoff rides through it.
    let d = profile
        .create_draft(&DraftForm {
            text: "otro".into(),
            ..DraftForm::default()
        })
        .unwrap();
    profile.send_draft(&d, &fp, false, now()).unwrap();
    for _ in 0..2 {
        proxy.cut_next(Cut {
            upload_after: Some(300),
            download_after: None,
        });
    }
    let policy = Backoff {
        attempts: 4,
        base: std::time::Duration::from_millis(20),
        max: std::time::Duration::from_millis(200),
    };
    // A fresh client, so no pooled connection slips past the cuts; the
    // outcome, not the last attempt's count, is what matters.
    let fresh = RelayClient::new(&RelayConfig::new(proxy.url())).unwrap();
    with_backoff(policy, || async {
        profile.sync(&fresh, &keys, now, &mut |_| {}).await
    })
    .await
    .unwrap();
    assert_eq!(profile.outbox_len().unwrap(), 0);

    // The focal point sees each envelope once.
    let page = direct
        .fetch(&focal, 0, 100, now(), &mut SystemEntropy::new())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 15);
    let ids: HashSet<_> = page.items.iter().map(|(_, e)| e.id()).collect();
    assert_eq!(ids.len(), 15);
}
