//! A full mailbox loses nothing (issue 15.1), over a real relay process
//! with small caps and real phone profiles (amparo-core), on SQLite and
//! PostgreSQL: junk fills the focal point's mailbox; the survivor's report
//! is refused with `mailbox_full` and stays in her outbox (postponed); the
//! focal point syncs, acknowledging the junk; her next sync delivers the
//! report, and the focal point files it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::drafts::DraftForm;
use amparo_core::focal::CaseFilter;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::wire::{EnvelopeResult, RejectCode};
use amparo_tests::{Relay, backends, focal_point_entry, now};

const CAP: usize = 5;

fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_report_refused_by_a_full_mailbox_is_delivered_after_the_focal_point_syncs() {
    for backend in backends() {
        let name = backend.name();
        let relay = Relay::start(
            backend.database_url(),
            &["--mailbox-max-envelopes", &CAP.to_string()],
        );
        let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
        let relay_keys = [relay.receipt_key];
        let dir = tempfile::tempdir().unwrap();
        let fast = KdfParams::DANGEROUSLY_FAST_FOR_TESTS;
        let focal = Profile::create(&dir.path().join("focal"), "1234", fast).unwrap();
        let focal_keys = focal.create_focal_identity().unwrap();
        let fp = focal_point_entry("pe-uca-defensoria", focal_keys);
        let survivor = Profile::create(&dir.path().join("survivor"), "5678", fast).unwrap();

        // Someone who found the relay's address fills her mailbox with junk.
        let mut e = SystemEntropy::new();
        let junk: Vec<Envelope> = (0..CAP + 3)
            .map(|i| {
                let h = InnerHeader::new(&mut e, now()).unwrap();
                Envelope::seal(
                    &focal_keys,
                    Purpose::Report,
                    &h,
                    format!("junk {i}").as_bytes(),
                    &mut e,
                )
                .unwrap()
            })
            .collect();
        let results = client.upload(&junk).await.unwrap();
        let full = results
            .iter()
            .filter(|r| matches!(r, EnvelopeResult::Rejected(RejectCode::MailboxFull)))
            .count();
        assert_eq!(full, 3, "{name}: the cap holds against the flood");

        // Her report is refused for now and stays on her phone.
        let d = survivor
            .create_draft(&DraftForm {
                text: "Me golpearon en el control de la frontera.".into(),
                ..DraftForm::default()
            })
            .unwrap();
        survivor.send_draft(&d, &fp, false, now()).unwrap();
        let queued = survivor.outbox_len().unwrap();
        assert!(queued > 0);
        let first = survivor
            .sync(&client, &relay_keys, now, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(first.delivered, 0, "{name}: {first:?}");
        assert_eq!(first.refused, 0, "{name}: nothing set aside for good");
        assert!(first.postponed > 0, "{name}: {first:?}");
        assert_eq!(
            survivor.outbox_len().unwrap(),
            queued,
            "{name}: still in the outbox"
        );

        // The focal point syncs: the junk is acknowledged and its space
        // given back.
        let (_, fetched) = focal
            .focal_sync(&client, &relay_keys, now, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(fetched.new_cases, 0, "{name}");
        assert_eq!(fetched.rejected, CAP, "{name}: {fetched:?}");

        // Her next sync delivers it; the focal point files it.
        let second = survivor
            .sync(&client, &relay_keys, now, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(second.postponed, 0, "{name}: {second:?}");
        assert_eq!(second.delivered, queued, "{name}: {second:?}");
        assert_eq!(survivor.outbox_len().unwrap(), 0);
        let (_, fetched) = focal
            .focal_sync(&client, &relay_keys, now, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(fetched.new_cases, 1, "{name}: {fetched:?}");
        let cases = focal.cases(&CaseFilter::default()).unwrap();
        assert_eq!(cases.len(), 1, "{name}");

        let metrics = reqwest_metrics(&relay).await;
        assert!(
            counter(
                &metrics,
                "amparo_envelopes_rejected_total{reason=\"mailbox_full\"}"
            ) >= 3 + queued as u64,
            "{name}:\n{metrics}"
        );
        assert_eq!(counter(&metrics, "amparo_envelopes_stored"), 0, "{name}");
    }
}

async fn reqwest_metrics(relay: &Relay) -> String {
    let (status, body) =
        amparo_tests::crash::http_request(relay.addr, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}
