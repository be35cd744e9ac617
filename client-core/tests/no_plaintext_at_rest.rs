//! Nothing a person writes reaches the phone's storage in the clear: reports
//! with distinctive canary strings are written, the profile is closed, and
//! every byte of every file in the profile directory (database, WAL,
//! journal) is searched.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::drafts::DraftForm;
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::payload::{AttachmentKind, Language, Need, Place, ViolenceKind};

const CANARIES: [&str; 6] = [
    "CanaryText-Xq81-ayuda",
    "CanaryPlace-Zr44-calle",
    "CanaryEdited-Wv12",
    "CanaryDocument-Kp07",
    "CanaryOther-Lm55",
    "CanaryAlert-Tq90-placa",
];
const PIN: &str = "739146";
/// An internal note a focal point writes on a case.
const NOTE_CANARY: &str = "CanaryNote-Hb63-oficina";

fn all_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn canaries_never_reach_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile");
    {
        let p = Profile::create(&path, PIN, KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let form = DraftForm {
            violence: vec![ViolenceKind::Sexual, ViolenceKind::Other],
            violence_other: Some(CANARIES[4].into()),
            place: Place {
                setting: None,
                country: Some("PE".into()),
                region: Some("PE-UCA".into()),
                detail: Some(CANARIES[1].into()),
            },
            needs: vec![Need::StiHivPep],
            language: Some(Language::Es),
            text: format!("{} me amenazó", CANARIES[0]),
            ..DraftForm::default()
        };
        let id = p.create_draft(&form).unwrap();
        let mut edited = form.clone();
        edited.text = CANARIES[2].into();
        p.update_draft(&id, &edited).unwrap();
        let doc = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(doc.path(), format!("denuncia {}", CANARIES[3])).unwrap();
        p.add_attachment_file(&id, AttachmentKind::Document, "text/plain", doc.path())
            .unwrap();
        // A second draft, deleted: its ciphertext must not leave plaintext behind either.
        let gone = p.create_draft(&form).unwrap();
        p.delete_draft(&gone).unwrap();
        // A check-in timer's alert (PROTOCOL.md §17): sealed, like its key.
        let alert = p
            .create_draft(&DraftForm {
                text: format!("Voy con él; {}", CANARIES[5]),
                ..DraftForm::default()
            })
            .unwrap();
        let office = amparo_protocol::keys::RecipientKeys::generate(
            &mut amparo_protocol::entropy::SystemEntropy::new(),
        )
        .unwrap();
        let fp = amparo_protocol::directory::FocalPoint {
            reads: Vec::new(),
            id: "pe-ucayali".into(),
            name: amparo_protocol::directory::LocalizedText {
                es: "Oficina".into(),
                pt: "Oficina".into(),
                en: "Office".into(),
            },
            organization: "Org".into(),
            regions: vec!["PE-UCA".into()],
            categories: vec![Need::LegalAdvice],
            languages: vec![Language::Es],
            keys: office.public(),
            valid_from: 0,
            valid_until: u64::MAX / 2,
        };
        let timer = p
            .set_timer(&alert, &fp, 3, 1, amparo_protocol::UnixTime(1_790_000_000))
            .unwrap();
        p.check_in(&timer, amparo_protocol::UnixTime(1_790_003_600))
            .unwrap();
        // Reading back works while open.
        assert_eq!(p.draft(&id).unwrap().form.text, CANARIES[2]);
    }
    let files = all_bytes(&path);
    assert!(!files.is_empty());
    let mut checked = 0;
    for (name, bytes) in &files {
        for canary in CANARIES.iter().chain([&PIN]) {
            assert!(
                !contains(bytes, canary.as_bytes()),
                "{canary} found in {name}"
            );
            // Also as UTF-16, in case anything ever stores wide strings.
            let wide: Vec<u8> = canary
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes())
                .collect();
            assert!(!contains(bytes, &wide), "{canary} (UTF-16) found in {name}");
            checked += 1;
        }
    }
    assert!(checked >= 6);
    // A sent report (outbox and report record) and the focal point's case
    // made from it are searched too.
    let survivor_dir = dir.path().join("sent");
    let focal_dir = dir.path().join("focal");
    {
        let survivor =
            Profile::create(&survivor_dir, PIN, KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let focal =
            Profile::create(&focal_dir, PIN, KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let keys = focal.create_focal_identity().unwrap();
        let t = |s: &str| amparo_protocol::directory::LocalizedText {
            es: s.into(),
            pt: s.into(),
            en: s.into(),
        };
        let fp = amparo_protocol::directory::FocalPoint {
            reads: Vec::new(),
            id: "fp".into(),
            name: t("fp"),
            organization: "o".into(),
            regions: vec![],
            categories: vec![],
            languages: vec![Language::Es],
            keys,
            valid_from: 0,
            valid_until: u64::MAX / 2,
        };
        let form = DraftForm {
            text: CANARIES[0].into(),
            place: Place {
                detail: Some(CANARIES[1].into()),
                ..Place::default()
            },
            ..DraftForm::default()
        };
        let id = survivor.create_draft(&form).unwrap();
        survivor
            .add_attachment(
                &id,
                AttachmentKind::Document,
                "text/plain",
                CANARIES[3].as_bytes(),
            )
            .unwrap();
        let report = survivor
            .send_draft(&id, &fp, false, amparo_protocol::UnixTime(1_790_000_000))
            .unwrap();
        survivor
            .reply_on_report(
                &report,
                CANARIES[2],
                amparo_protocol::UnixTime(1_790_000_000),
            )
            .unwrap();
        // The focal point files the same report (sealed here, as it would arrive).
        let sealed = amparo_core::compose::seal_report(
            &fp.keys,
            form.to_report(fp.keys),
            &[],
            amparo_protocol::envelope::Compression::IfSmaller,
            &mut amparo_protocol::entropy::SystemEntropy::new(),
            amparo_protocol::UnixTime(1_790_000_000),
        )
        .unwrap();
        assert_eq!(
            focal.file_envelopes(&sealed.envelopes).unwrap().new_cases,
            1
        );
        focal
            .reply_to_case(
                &sealed.report_id,
                CANARIES[4],
                amparo_protocol::UnixTime(1_790_000_000),
            )
            .unwrap();
        // The office's internal notes are sealed like the rest.
        focal
            .add_case_note(
                &sealed.report_id,
                NOTE_CANARY,
                amparo_protocol::UnixTime(1_790_000_000),
            )
            .unwrap();
        assert_eq!(
            focal.case(&sealed.report_id).unwrap().report.text,
            CANARIES[0]
        );
    }
    for d in [&survivor_dir, &focal_dir] {
        for (name, bytes) in all_bytes(d) {
            for canary in CANARIES.iter().chain([&PIN, &NOTE_CANARY]) {
                assert!(
                    !contains(&bytes, canary.as_bytes()),
                    "{canary} found in {name}"
                );
            }
        }
    }

    // And the data is still there for the right PIN.
    let p = Profile::open(&path, PIN).unwrap();
    assert_eq!(p.drafts().unwrap()[0].form.text, CANARIES[2]);
}
