//! A survivor and two focal points, each with its own encrypted profile,
//! against a real relay: the case is filed, answered, its status updated, a
//! tampered envelope is kept aside, and the case is referred to a second
//! focal point that answers on the same channel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::drafts::DraftForm;
use amparo_core::focal::{CaseEventKind, CaseFilter};
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::settings::Settings;
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::directory::{FocalPoint, LocalizedText};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::*;
use amparo_tests::{Relay, now};

fn entry(id: &str, keys: RecipientPublic) -> FocalPoint {
    let t = |s: &str| LocalizedText {
        es: s.into(),
        pt: s.into(),
        en: s.into(),
    };
    FocalPoint {
        reads: Vec::new(),
        id: id.into(),
        name: t(id),
        organization: "Org".into(),
        regions: vec!["PE-PIU".into()],
        categories: vec![Need::LegalAdvice, Need::ProtectionShelter],
        languages: vec![Language::Es],
        keys,
        valid_from: 0,
        valid_until: u64::MAX / 2,
    }
}

fn profile(dir: &tempfile::TempDir, name: &str) -> Profile {
    Profile::create(
        &dir.path().join(name),
        "5555",
        KdfParams::DANGEROUSLY_FAST_FOR_TESTS,
    )
    .unwrap()
}

#[tokio::test]
async fn case_is_filed_answered_and_referred() {
    let relay = Relay::start(None, &[]);
    let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    let keys = [relay.receipt_key];
    let dir = tempfile::tempdir().unwrap();
    let a = profile(&dir, "focal-a");
    let b = profile(&dir, "focal-b");
    let survivor = profile(&dir, "survivor");
    let fp_a = entry("pe-piu-defensoria", a.create_focal_identity().unwrap());
    let fp_b = entry("pe-piu-casa-refugio", b.create_focal_identity().unwrap());
    assert!(
        a.create_focal_identity().is_err(),
        "one key set per focal point profile"
    );
    for (p, fp) in [(&a, &fp_a), (&b, &fp_b)] {
        p.save_settings(&Settings {
            focal_point_id: Some(fp.id.clone()),
            ..Settings::default()
        })
        .unwrap();
    }

    // The survivor sends a report with a document.
    let draft = survivor
        .create_draft(&DraftForm {
            violence: vec![ViolenceKind::Physical],
            aggressors: vec![AggressorKind::IntimatePartner],
            needs: vec![Need::ProtectionShelter],
            place: Place {
                setting: None,
                country: Some("PE".into()),
                region: Some("PE-PIU".into()),
                detail: None,
            },
            language: Some(Language::Es),
            text: "Mi expareja me sigue y me amenaza.".into(),
            ..DraftForm::default()
        })
        .unwrap();
    let document: Vec<u8> = (0..70_000u32).map(|i| (i % 239) as u8).collect();
    survivor
        .add_attachment(
            &draft,
            AttachmentKind::Document,
            "application/pdf",
            &document,
        )
        .unwrap();
    let report_id = survivor.send_draft(&draft, &fp_a, false, now()).unwrap();
    survivor
        .sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();

    // Someone drops a forged envelope in A's mailbox: addressed to A, sealed to another key.
    let mut e = SystemEntropy::new();
    let other = RecipientKeys::generate(&mut e).unwrap();
    let forged_to = RecipientPublic {
        sealing_key: other.public().sealing_key,
        signing_key: fp_a.keys.signing_key,
    };
    let h = InnerHeader::new(&mut e, now()).unwrap();
    let forged = Envelope::seal(&forged_to, Purpose::Report, &h, b"{}", &mut e).unwrap();
    client.upload(&[forged]).await.unwrap();

    // A fetches: one case, two pieces, one envelope kept aside; the fetch goes on.
    let (_, fetched) = a
        .focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (fetched.new_cases, fetched.chunks, fetched.rejected),
        (1, 2, 1),
        "{fetched:?}"
    );
    assert_eq!(a.rejected().unwrap().len(), 1);
    let listed = a
        .cases(&CaseFilter {
            need: Some(Need::ProtectionShelter),
            region: Some("PE-PIU".into()),
            ..CaseFilter::default()
        })
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, report_id);
    assert!(
        a.cases(&CaseFilter {
            need: Some(Need::Children),
            ..CaseFilter::default()
        })
        .unwrap()
        .is_empty()
    );
    let case = a.case(&report_id).unwrap();
    assert_eq!(case.report.text, "Mi expareja me sigue y me amenaza.");
    assert_eq!(case.attachments[0].1.as_deref(), Some(&document[..]));
    // Nothing is left at the relay for A, and a second fetch files nothing twice.
    let (_, again) = a
        .focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(again, Default::default());

    // A answers and sets the case in progress.
    a.reply_to_case(&report_id, "Podemos ofrecerle un lugar seguro.", now())
        .unwrap();
    a.set_case_status(&report_id, CaseStatus::InProgress, None, now())
        .unwrap();
    a.focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    let s = survivor
        .sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(s.new_messages, 2);
    assert_eq!(
        survivor.sent_reports().unwrap()[0].status,
        Some(CaseStatus::InProgress)
    );

    // She answers back on the same channel; A files it on the case.
    survivor
        .reply_on_report(&report_id, "Gracias, puedo ir el martes.", now())
        .unwrap();
    survivor
        .sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    let (_, follow) = a
        .focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(follow.messages, 1);
    assert_eq!(
        a.case(&report_id).unwrap().messages,
        vec!["Gracias, puedo ir el martes.".to_string()]
    );

    // A cannot refer the case to itself, by its id or under another name
    // with its own keys; nothing is queued or changed when it tries.
    let outbox = a.outbox_len().unwrap();
    let itself = entry("pe-piu-defensoria-2", fp_a.keys);
    for to in [&fp_a, &itself] {
        assert!(a.refer_case(&report_id, &fp_a.id, to, "x", now()).is_err());
    }
    assert_eq!(a.outbox_len().unwrap(), outbox);
    assert_eq!(
        a.case(&report_id).unwrap().summary.status,
        CaseStatus::InProgress
    );

    // A refers the case to B (a shelter), with a note for B.
    a.refer_case(
        &report_id,
        &fp_a.id,
        &fp_b,
        "Necesita refugio esta semana.",
        now(),
    )
    .unwrap();
    a.focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        a.cases(&CaseFilter {
            status: Some(CaseStatus::Referred),
            ..CaseFilter::default()
        })
        .unwrap()
        .len(),
        1
    );
    // A's own record of the case: her message, its reply, its statuses
    // and where it sent the case, in the order they happened.
    let history: Vec<_> = a
        .case(&report_id)
        .unwrap()
        .history
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        history,
        vec![
            CaseEventKind::Reply {
                text: "Podemos ofrecerle un lugar seguro.".into()
            },
            CaseEventKind::Status {
                status: CaseStatus::InProgress,
                message: None
            },
            CaseEventKind::FromSurvivor {
                text: "Gracias, puedo ir el martes.".into(),
                seq: Some(1)
            },
            CaseEventKind::Referred {
                to: "pe-piu-casa-refugio".into(),
                note: "Necesita refugio esta semana.".into()
            },
        ]
    );
    assert_eq!(
        a.case(&report_id).unwrap().summary.referred_to.as_deref(),
        Some("pe-piu-casa-refugio")
    );
    let (_, at_b) = b
        .focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((at_b.new_cases, at_b.chunks), (1, 2));
    let case_b = b.case(&report_id).unwrap();
    assert_eq!(
        case_b.summary.referred_by.as_deref(),
        Some("pe-piu-defensoria")
    );
    assert_eq!(
        case_b.report.referral.as_ref().unwrap().note,
        "Necesita refugio esta semana."
    );
    assert_eq!(case_b.attachments[0].1.as_deref(), Some(&document[..]));

    // The survivor learns where her case went, and B answers on the same channel.
    survivor
        .sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    let messages = survivor.messages().unwrap();
    let referral = messages
        .iter()
        .find(|m| m.status == Some(CaseStatus::Referred))
        .unwrap();
    assert_eq!(referral.referred_to.as_deref(), Some("pe-piu-casa-refugio"));
    assert!(
        referral.text.is_none(),
        "the note for the next focal point is not shown to her"
    );
    b.reply_to_case(
        &report_id,
        "Soy de la casa refugio; la llamamos hoy.",
        now(),
    )
    .unwrap();
    b.focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    survivor
        .sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    // She sees every message in the order it was made, each with the office
    // that wrote it, and her case where it is now.
    let seen: Vec<(Option<CaseStatus>, Option<String>, Option<String>)> = survivor
        .messages()
        .unwrap()
        .into_iter()
        .map(|m| (m.status, m.text, m.stamp.from))
        .collect();
    let a_id = Some("pe-piu-defensoria".to_string());
    let b_id = Some("pe-piu-casa-refugio".to_string());
    assert_eq!(
        seen,
        vec![
            (
                None,
                Some("Podemos ofrecerle un lugar seguro.".into()),
                a_id.clone()
            ),
            (Some(CaseStatus::InProgress), None, a_id.clone()),
            (Some(CaseStatus::Referred), None, a_id.clone()),
            (
                None,
                Some("Soy de la casa refugio; la llamamos hoy.".into()),
                b_id
            ),
        ]
    );
    let sent = &survivor.sent_reports().unwrap()[0];
    assert_eq!(sent.status, Some(CaseStatus::Referred));
    assert_eq!(sent.referred_to.as_deref(), Some("pe-piu-casa-refugio"));
    assert_eq!(sent.status_from, a_id);

    // What she writes now goes to the office that holds her case, when her
    // directory lists it; without a directory, to the one she wrote to.
    let directory = amparo_protocol::directory::Directory {
        statistics: None,
        focal_points: vec![fp_a.clone(), fp_b.clone()],
        service_routes: vec![],
        relays: vec![],
    };
    let to = survivor
        .reply_on_report_via(&report_id, "¿A qué hora voy?", Some(&directory), now())
        .unwrap();
    assert_eq!(to, "pe-piu-casa-refugio");
    survivor
        .sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    let (_, at_b) = b
        .focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    let (_, at_a) = a
        .focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((at_b.messages, at_a.messages), (1, 0));
    assert_eq!(
        b.case(&report_id).unwrap().messages,
        vec!["¿A qué hora voy?".to_string()]
    );
    let (office, _) = survivor.current_office(&report_id, None, now()).unwrap();
    assert_eq!(office, "pe-piu-defensoria");
}
