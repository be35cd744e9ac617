//! The whole story over a real relay process: a survivor seals a report; part
//! of it travels directly and all of it travels again in a facilitator's
//! bundle (the copies collapse into one); the focal point fetches, opens,
//! answers; the survivor reads the answer. Run on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::compose::{Attachment, seal_report};
use amparo_core::inbox::{Incoming, Reassembly, open};
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_protocol::ProtocolError;
use amparo_protocol::bundle::{self, BundleEncoder, BundleItem};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::*;
use amparo_protocol::wire::EnvelopeResult;
use amparo_tests::{Relay, backends, now};

fn report() -> Report {
    Report {
        reads: Vec::new(),
        statistics_consent: false,
        age_band: None,
        reported_elsewhere: None,
        v: 1,
        violence: vec![ViolenceKind::Sexual],
        violence_other: None,
        when: None,
        place: Place {
            setting: None,
            country: Some("BR".into()),
            region: Some("BR-AM".into()),
            detail: None,
        },
        aggressors: vec![AggressorKind::Client],
        aggressor_other: None,
        needs: vec![Need::StiHivPep, Need::LegalAdvice],
        language: Language::Pt,
        text: "Um cliente tirou a camisinha à força. Preciso de PEP.".into(),
        attachments: vec![],
        reply_to: RecipientKeys::generate(&mut SystemEntropy::new())
            .unwrap()
            .public(),
        referral: None,
        alert: None,
    }
}

#[tokio::test]
async fn report_travels_directly_and_by_facilitator_and_is_answered() {
    for backend in backends() {
        let relay = Relay::start(backend.database_url(), &[]);
        let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
        let mut e = SystemEntropy::new();
        let focal = RecipientKeys::generate(&mut e).unwrap();

        // The survivor seals a report with an audio note.
        let audio: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
        let sealed = seal_report(
            &focal.public(),
            report(),
            &[Attachment {
                kind: AttachmentKind::Audio,
                mime: "audio/ogg".into(),
                data: audio.clone(),
            }],
            amparo_protocol::envelope::Compression::IfSmaller,
            &mut e,
            now(),
        )
        .unwrap();
        assert_eq!(sealed.envelopes.len(), 4);

        // One envelope goes out directly before the signal drops...
        let direct = client.upload(&sealed.envelopes[..1]).await.unwrap();
        // ...and the phone also hands its whole outbox to a facilitator as a bundle.
        let mut enc = BundleEncoder::new();
        for env in &sealed.envelopes {
            enc.envelope(env).unwrap();
        }
        let bundle_bytes = enc.finish();

        // The facilitator's phone decodes the bundle; it cannot read what it carries.
        let items = bundle::decode_all(&bundle_bytes).unwrap();
        let carried: Vec<Envelope> = items
            .into_iter()
            .map(|i| match i {
                BundleItem::Envelope(env) => env,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        let facilitator = RecipientKeys::generate(&mut e).unwrap();
        for env in &carried {
            assert_eq!(
                env.open(&facilitator, &Purpose::ALL).unwrap_err(),
                ProtocolError::Misaddressed
            );
        }
        let via_facilitator = client.upload(&carried).await.unwrap();
        // The copy sent directly and the carried copy have one receipt.
        assert_eq!(via_facilitator[0], direct[0], "{}", backend.name());
        for r in &via_facilitator {
            let EnvelopeResult::Accepted(receipt) = r else {
                panic!("{r:?}")
            };
            receipt.verify(&relay.receipt_key).unwrap();
        }

        // The focal point gets each envelope once.
        let page = client.fetch(&focal, 0, 100, now(), &mut e).await.unwrap();
        assert_eq!(page.items.len(), 4, "{}", backend.name());
        let mut got_report = None;
        let mut pieces = Reassembly::default();
        for (_, env) in &page.items {
            match open(env, &focal).unwrap() {
                Incoming::Report { message_id, report } => got_report = Some((message_id, report)),
                Incoming::Chunk { index, data, .. } => pieces.add(index, data),
                other => panic!("{other:?}"),
            }
        }
        let (report_id, got) = got_report.unwrap();
        assert_eq!(report_id, sealed.report_id);
        assert_eq!(
            got.text,
            "Um cliente tirou a camisinha à força. Preciso de PEP."
        );
        assert_eq!(&*pieces.finish(&got.attachments[0]).unwrap(), &audio);
        let ids: Vec<_> = page.items.iter().map(|(_, env)| env.id()).collect();
        assert_eq!(client.ack(&focal, &ids, now(), &mut e).await.unwrap(), 4);

        // It answers on the reply channel.
        let reply = Reply {
            v: 1,
            report_id,
            text: "Procure o posto de saúde hoje; a PEP funciona até 72 horas.".into(),
            language: Some(Language::Pt),
            stamp: Default::default(),
        };
        let h = InnerHeader::new(&mut e, now()).unwrap();
        let env = Envelope::seal(
            &got.reply_to,
            Purpose::Reply,
            &h,
            &reply.to_json().unwrap(),
            &mut e,
        )
        .unwrap();
        client.upload(&[env]).await.unwrap();

        // Only the survivor's per-report keys can fetch and open it.
        let err = client
            .fetch(&focal, 0, 10, now(), &mut e)
            .await
            .unwrap()
            .items;
        assert!(err.is_empty(), "the focal point's mailbox is empty now");
        let back = client
            .fetch(&sealed.reply_keys, 0, 10, now(), &mut e)
            .await
            .unwrap();
        assert_eq!(back.items.len(), 1);
        match open(&back.items[0].1, &sealed.reply_keys).unwrap() {
            Incoming::Reply(r) => assert_eq!(r, reply),
            other => panic!("{other:?}"),
        }
    }
}
