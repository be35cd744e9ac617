//! Her follow-ups that reach a focal point in the same fetch as the report
//! they belong to, over a real relay: written offline and sent in the same
//! sync as the report, and written to the office a case was referred to
//! before that office fetched the re-sealed report. None is lost; each is
//! filed on the case in the order she wrote it.
//!
//! Where a follow-up lands relative to its report here is up to the relay
//! (its group insert orders by envelope id): without the fix this failed
//! in about one run in three. `focal::orphans`' unit tests fix the order
//! both ways, and across pages, deterministically.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::drafts::DraftForm;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::settings::Settings;
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::directory::{Directory, FocalPoint, LocalizedText};
use amparo_protocol::keys::RecipientPublic;
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
        categories: vec![Need::LegalAdvice],
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
async fn follow_ups_sent_with_or_before_the_report_are_filed_on_the_case() {
    let relay = Relay::start(None, &[]);
    let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    let keys = [relay.receipt_key];
    let dir = tempfile::tempdir().unwrap();
    let a = profile(&dir, "focal-a");
    let b = profile(&dir, "focal-b");
    let survivor = profile(&dir, "survivor");
    let fp_a = entry("pe-piu-a", a.create_focal_identity().unwrap());
    let fp_b = entry("pe-piu-b", b.create_focal_identity().unwrap());
    for (p, fp) in [(&a, &fp_a), (&b, &fp_b)] {
        p.save_settings(&Settings {
            focal_point_id: Some(fp.id.clone()),
            ..Settings::default()
        })
        .unwrap();
    }

    // Offline, she writes her report and five follow-ups; one sync sends
    // them all.
    let draft = survivor
        .create_draft(&DraftForm {
            needs: vec![Need::LegalAdvice],
            language: Some(Language::Es),
            text: "Me amenaza.".into(),
            ..DraftForm::default()
        })
        .unwrap();
    let report_id = survivor.send_draft(&draft, &fp_a, false, now()).unwrap();
    let hers: Vec<String> = (1..=5).map(|i| format!("mensaje {i}")).collect();
    for text in &hers {
        survivor.reply_on_report(&report_id, text, now()).unwrap();
    }
    survivor
        .sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();

    let (_, fetched) = a
        .focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (
            fetched.new_cases,
            fetched.messages,
            fetched.waiting,
            fetched.rejected
        ),
        (1, 5, 0, 0),
        "{fetched:?}"
    );
    assert_eq!(a.case(&report_id).unwrap().messages, hers);
    assert_eq!(a.rejected_summary(0).unwrap().total, 0);

    // A refers the case to B. She learns it and writes to B, before B has
    // fetched the report A re-sealed to it: both come in B's next fetch.
    a.refer_case(&report_id, &fp_a.id, &fp_b, "para su seguimiento", now())
        .unwrap();
    a.focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    survivor
        .sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    let directory = Directory {
        statistics: None,
        focal_points: vec![fp_a.clone(), fp_b.clone()],
        service_routes: vec![],
        relays: vec![],
    };
    let to = survivor
        .reply_on_report_via(&report_id, "¿Me llaman ustedes?", Some(&directory), now())
        .unwrap();
    assert_eq!(to, fp_b.id);
    survivor
        .sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    let (_, at_b) = b
        .focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        (at_b.new_cases, at_b.messages, at_b.rejected),
        (1, 1, 0),
        "{at_b:?}"
    );
    let case = b.case(&report_id).unwrap();
    assert_eq!(case.messages, vec!["¿Me llaman ustedes?".to_string()]);
    assert_eq!(case.summary.referred_by.as_deref(), Some("pe-piu-a"));
    assert_eq!(b.waiting_follow_ups().unwrap().follow_ups, 0);
}
