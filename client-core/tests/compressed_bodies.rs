//! Compressed bodies (PROTOCOL.md §5.1) between real profiles and a real
//! relay: a phone compresses only for an office whose directory entry says
//! it reads `deflate_d1`, an office compresses its replies only to a phone
//! whose report said so, a referral to an office that does not read it goes
//! plain, and everything compressed opens to the same words. The size class
//! of each queued envelope shows which way it went: a ~1,900-character
//! text pads to the 4096 class plain and to the 1024 class compressed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::drafts::DraftForm;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::settings::Settings;
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::bundle::{BundleItem, decode_all};
use amparo_protocol::compression::READS_DEFLATE_D1;
use amparo_protocol::directory::{Directory, FocalPoint};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::*;
use amparo_tests::{Relay, now};

const SMALL: usize = 1024 + 62;
const MIDDLE: usize = 1536 + 62;
const PLAIN: usize = 4096 + 62;

/// ~2,400 characters of prose that compresses as reports do (the bench's
/// Spanish test text): too much for the 1 KiB class even compressed.
fn prose() -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../protocol/benches/texts/es_long_extra.txt"
    ))
    .unwrap();
    text.chars().take(2400).collect()
}

/// The test helpers' focal point entry, listing `deflate_d1` or nothing.
fn entry(id: &str, keys: RecipientPublic, reads: bool) -> FocalPoint {
    let mut fp = amparo_tests::focal_point_entry(id, keys);
    if !reads {
        fp.reads.clear();
    }
    fp
}

fn profile(dir: &tempfile::TempDir, name: &str) -> Profile {
    Profile::create(
        &dir.path().join(name),
        "5555",
        KdfParams::DANGEROUSLY_FAST_FOR_TESTS,
    )
    .unwrap()
}

/// ~1,900 characters of varied Spanish (written for the test).
fn long_text(seed: usize) -> String {
    let sentences = [
        "El sábado en la noche llegaron dos policías a la avenida donde trabajo.",
        "Me pidieron los documentos y como no tengo papeles me amenazaron con Migraciones.",
        "Uno de ellos me quitó la plata y el celular y me dijo que volvería cada semana.",
        "No fui a la comisaría porque tengo miedo de que me detengan o me deporten.",
        "Mi compañera de cuarto vio todo y puede contar lo que pasó si hace falta.",
        "Necesito un abogado que me explique qué puedo hacer sin poner en riesgo a mis hijos.",
        "También necesito una prueba de VIH porque un cliente no quiso usar condón.",
        "Por favor escríbanme por aquí, no me llamen, el teléfono lo comparto.",
    ];
    let mut t = format!("Caso {seed}. ");
    let mut i = seed;
    while t.chars().count() < 1900 {
        t.push_str(sentences[i % sentences.len()]);
        t.push(' ');
        i = i * 5 + 3;
    }
    t.chars().take(1900).collect()
}

/// The sizes of the envelopes queued in `p`'s outbox.
fn outbox_sizes(p: &Profile) -> Vec<usize> {
    decode_all(&p.export_outbox_bundle().unwrap())
        .unwrap()
        .into_iter()
        .filter_map(|item| match item {
            BundleItem::Envelope(e) => Some(e.as_bytes().len()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn compressed_only_for_who_reads_it() {
    let relay = Relay::start(None, &[]);
    let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    let keys = [relay.receipt_key];
    let dir = tempfile::tempdir().unwrap();
    let a = profile(&dir, "reads");
    let b = profile(&dir, "older");
    let survivor = profile(&dir, "survivor");
    let fp_a = entry("pe-uca-reads", a.create_focal_identity().unwrap(), true);
    let fp_b = entry("pe-uca-older", b.create_focal_identity().unwrap(), false);
    for (p, fp) in [(&a, &fp_a), (&b, &fp_b)] {
        p.save_settings(&Settings {
            focal_point_id: Some(fp.id.clone()),
            ..Settings::default()
        })
        .unwrap();
    }
    let directory = Directory {
        focal_points: vec![fp_a.clone(), fp_b.clone()],
        service_routes: vec![],
        relays: vec![],
        statistics: None,
    };

    // The same long report to each office: compressed only to A.
    let form = |seed| DraftForm {
        violence: vec![ViolenceKind::Extortion, ViolenceKind::Threats],
        needs: vec![Need::LegalAdvice],
        language: Some(Language::Es),
        text: long_text(seed),
        ..DraftForm::default()
    };
    let d = survivor.create_draft(&form(1)).unwrap();
    let to_a = survivor.send_draft(&d, &fp_a, false, now()).unwrap();
    assert_eq!(outbox_sizes(&survivor), [SMALL]);
    let d = survivor.create_draft(&form(2)).unwrap();
    let to_b = survivor.send_draft(&d, &fp_b, false, now()).unwrap();
    assert_eq!(outbox_sizes(&survivor), [SMALL, PLAIN]);
    // A longer one, in the class only compressed bodies use.
    let d = survivor
        .create_draft(&DraftForm {
            text: prose(),
            ..form(9)
        })
        .unwrap();
    let longer = survivor.send_draft(&d, &fp_a, false, now()).unwrap();
    assert_eq!(outbox_sizes(&survivor), [SMALL, PLAIN, MIDDLE]);
    survivor
        .sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();

    // A report from a phone that predates compression (no `reads`), sealed
    // plain to A as such a phone would.
    let mut e = SystemEntropy::new();
    let old_phone = RecipientKeys::generate(&mut e).unwrap();
    let old_report = Report {
        reads: Vec::new(),
        text: long_text(3),
        reply_to: old_phone.public(),
        ..form(3).to_report(old_phone.public())
    };
    let h = InnerHeader::new(&mut e, now()).unwrap();
    let old_env = Envelope::seal(
        &fp_a.keys,
        Purpose::Report,
        &h,
        &old_report.to_json().unwrap(),
        &mut e,
    )
    .unwrap();
    assert_eq!(old_env.as_bytes().len(), PLAIN);
    client.upload(&[old_env]).await.unwrap();

    // Both offices file their cases whole.
    let (_, got_a) = a
        .focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    let (_, got_b) = b
        .focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((got_a.new_cases, got_a.rejected), (3, 0), "{got_a:?}");
    assert_eq!(a.case(&longer).unwrap().report.text, prose());
    assert_eq!((got_b.new_cases, got_b.rejected), (1, 0), "{got_b:?}");
    assert_eq!(a.case(&to_a).unwrap().report.text, long_text(1));
    assert_eq!(b.case(&to_b).unwrap().report.text, long_text(2));
    assert_eq!(
        a.case(&to_a).unwrap().report.reads,
        vec![READS_DEFLATE_D1.to_string()]
    );

    // A answers both at length: compressed to her phone, plain to the old one.
    let answer = long_text(4);
    a.reply_to_case(&to_a, &answer, now()).unwrap();
    assert_eq!(outbox_sizes(&a), [SMALL]);
    a.reply_to_case(&h.message_id, &answer, now()).unwrap();
    a.set_case_status(&to_a, CaseStatus::InProgress, Some(&answer), now())
        .unwrap();
    assert_eq!(outbox_sizes(&a), [SMALL, PLAIN, SMALL]);
    a.focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    let s = survivor
        .sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(s.new_messages, 2);
    let messages = survivor.messages().unwrap();
    assert!(messages.iter().any(|m| m.text.as_deref() == Some(&answer)));
    assert_eq!(
        survivor.sent_reports().unwrap()[0].status,
        Some(CaseStatus::InProgress)
    );

    // Her follow-ups: compressed to A (the directory says it reads it), plain
    // to B, and plain when no directory is at hand.
    let follow = long_text(5);
    survivor
        .reply_on_report_via(&to_a, &follow, Some(&directory), now())
        .unwrap();
    survivor
        .reply_on_report_via(&to_b, &follow, Some(&directory), now())
        .unwrap();
    survivor
        .reply_on_report_via(&to_a, &follow, None, now())
        .unwrap();
    assert_eq!(outbox_sizes(&survivor), [SMALL, PLAIN, PLAIN]);
    survivor
        .sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    let (_, f) = a
        .focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((f.messages, f.rejected), (2, 0));
    assert_eq!(
        a.case(&to_a).unwrap().messages,
        vec![follow.clone(), follow]
    );

    // A refers her case to B, which does not read compressed bodies: the
    // report goes plain, and B files it whole.
    a.refer_case(&to_a, &fp_a.id, &fp_b, "Necesita acompañamiento.", now())
        .unwrap();
    let sizes = outbox_sizes(&a);
    assert!(sizes.contains(&PLAIN), "{sizes:?}");
    a.focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    let (_, referred) = b
        .focal_sync(&client, &keys, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((referred.new_cases, referred.rejected), (1, 0));
    let case = b.case(&to_a).unwrap();
    assert_eq!(case.report.text, long_text(1));
    assert!(case.report.referral.is_some());
}
