//! What a focal point's desk works from: the case index (filters, search
//! without regard to case or accents, sorting, paging), the unread marker
//! and the office's internal notes (kept, bounded, never sent).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::compose::seal_report;
use amparo_core::drafts::DraftForm;
use amparo_core::focal::{CaseQuery, CaseSort, CaseStage, MAX_NOTE_CHARS};
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::UnixTime;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientPublic;
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::*;

const T0: u64 = 1_790_000_000;

fn form(text: &str, region: &str, violence: ViolenceKind, need: Need) -> DraftForm {
    DraftForm {
        text: text.into(),
        violence: vec![violence],
        aggressors: vec![AggressorKind::PoliceOrSecurity],
        needs: vec![need],
        place: Place {
            setting: None,
            country: Some("PE".into()),
            region: Some(region.into()),
            detail: None,
        },
        language: Some(Language::Es),
        ..DraftForm::default()
    }
}

fn file(focal: &Profile, keys: &RecipientPublic, f: &DraftForm, hour: u64) -> [u8; 16] {
    let sealed = seal_report(
        keys,
        f.to_report(*keys),
        &[],
        amparo_protocol::envelope::Compression::IfSmaller,
        &mut SystemEntropy::new(),
        UnixTime(T0 + hour * 3600),
    )
    .unwrap();
    assert_eq!(
        focal.file_envelopes(&sealed.envelopes).unwrap().new_cases,
        1
    );
    sealed.report_id
}

#[test]
fn the_desk_finds_sorts_pages_and_marks_cases() {
    let dir = tempfile::tempdir().unwrap();
    let focal = Profile::create(dir.path(), "5555", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let keys = focal.create_focal_identity().unwrap();
    let a = file(
        &focal,
        &keys,
        &form(
            "Me detuvo la policía y sufrí una violación",
            "PE-LIM",
            ViolenceKind::Sexual,
            Need::LegalAdvice,
        ),
        0,
    );
    let b = file(
        &focal,
        &keys,
        &form(
            "Un cliente me robó el dinero",
            "PE-PIU",
            ViolenceKind::Robbery,
            Need::HealthCare,
        ),
        2,
    );
    let c = file(
        &focal,
        &keys,
        &form(
            "Amenazas del proxeneta",
            "pe-lim",
            ViolenceKind::Threats,
            Need::ProtectionShelter,
        ),
        1,
    );

    let index = focal.case_index().unwrap();
    let all = index.query(&CaseQuery::default());
    assert_eq!((all.total, all.matching, all.unread), (3, 3, 3));
    let ids: Vec<_> = all.cases.iter().map(|s| s.id).collect();
    assert_eq!(ids, [a, c, b], "oldest report first");
    let newest = index.query(&CaseQuery {
        descending: true,
        ..CaseQuery::default()
    });
    assert_eq!(newest.cases[0].id, b);

    // Search ignores case and accents, and every word must match.
    let found = |text: &str| -> Vec<[u8; 16]> {
        index
            .query(&CaseQuery {
                text: Some(text.into()),
                ..CaseQuery::default()
            })
            .cases
            .iter()
            .map(|s| s.id)
            .collect()
    };
    assert_eq!(found("VIOLACION"), [a]);
    assert_eq!(found("policia violación"), [a]);
    assert_eq!(found("policia dinero"), Vec::<[u8; 16]>::new());
    // Words match inside words too ("amena" finds "Amenazas").
    assert_eq!(found("amena"), [c]);
    assert_eq!(found("me"), [a, c, b]);
    // The region is compared without regard to case; filters add up.
    let lim = index.query(&CaseQuery {
        region: Some("PE-LIM".into()),
        ..CaseQuery::default()
    });
    assert_eq!(lim.matching, 2);
    let lim_threats = index.query(&CaseQuery {
        region: Some("PE-LIM".into()),
        violence: Some(ViolenceKind::Threats),
        ..CaseQuery::default()
    });
    assert_eq!(
        lim_threats.cases.iter().map(|s| s.id).collect::<Vec<_>>(),
        [c]
    );
    let health = index.query(&CaseQuery {
        need: Some(Need::HealthCare),
        ..CaseQuery::default()
    });
    assert_eq!(health.cases[0].id, b);
    // A date range: written from hour 1, before hour 2.
    let hour = |h: u64| u32::try_from((T0 + h * 3600) / 3600).unwrap();
    let range = index.query(&CaseQuery {
        since_hour: Some(hour(1)),
        until_hour: Some(hour(2)),
        ..CaseQuery::default()
    });
    assert_eq!(range.cases.iter().map(|s| s.id).collect::<Vec<_>>(), [c]);
    // Paging.
    let page = index.query(&CaseQuery {
        offset: 1,
        limit: 1,
        ..CaseQuery::default()
    });
    assert_eq!(
        (page.matching, page.cases.len(), page.cases[0].id),
        (3, 1, c)
    );

    // Reading a case clears its marker; notes are kept, searchable, bounded.
    focal.mark_case_read(&a).unwrap();
    focal
        .add_case_note(
            &a,
            "  Llamar a la abogada el lunes  ",
            UnixTime(T0 + 9 * 3600),
        )
        .unwrap();
    assert!(focal.add_case_note(&a, "   ", UnixTime(T0)).is_err());
    let long = "x".repeat(MAX_NOTE_CHARS + 1);
    assert!(focal.add_case_note(&a, &long, UnixTime(T0)).is_err());
    let case = focal.case(&a).unwrap();
    assert_eq!(case.notes.len(), 1);
    assert_eq!(case.notes[0].text, "Llamar a la abogada el lunes");
    assert!(!case.summary.unread);
    assert_eq!(case.summary.last_activity, T0 + 9 * 3600);
    let mut index = index;
    index.refresh(&focal, &a).unwrap();
    assert_eq!(index.query(&CaseQuery::default()).unread, 2);
    let unread = index.query(&CaseQuery {
        unread_only: true,
        ..CaseQuery::default()
    });
    assert!(unread.cases.iter().all(|s| s.id != a));
    assert_eq!(
        index
            .query(&CaseQuery {
                text: Some("abogada".into()),
                ..CaseQuery::default()
            })
            .cases[0]
            .id,
        a
    );
    let by_activity = index.query(&CaseQuery {
        sort: CaseSort::Activity,
        descending: true,
        ..CaseQuery::default()
    });
    assert_eq!(
        by_activity.cases[0].id, a,
        "the note is the latest activity"
    );

    // The office's stage: kept with its time, filtered on, never sent.
    focal
        .set_case_stage(&b, CaseStage::Assessment, UnixTime(T0 + 12 * 3600))
        .unwrap();
    focal
        .set_case_stage(&b, CaseStage::CasePlan, UnixTime(T0 + 13 * 3600))
        .unwrap();
    index.refresh(&focal, &b).unwrap();
    let planned = index.query(&CaseQuery {
        stage: Some(CaseStage::CasePlan),
        ..CaseQuery::default()
    });
    assert_eq!(planned.cases.iter().map(|s| s.id).collect::<Vec<_>>(), [b]);
    assert_eq!(
        index
            .query(&CaseQuery {
                stage: Some(CaseStage::New),
                ..CaseQuery::default()
            })
            .matching,
        2
    );
    let stages: Vec<_> = focal
        .case(&b)
        .unwrap()
        .stages
        .iter()
        .map(|c| c.stage)
        .collect();
    assert_eq!(stages, [CaseStage::Assessment, CaseStage::CasePlan]);
    // A star, to find a case again.
    focal.set_case_starred(&c, true).unwrap();
    index.refresh(&focal, &c).unwrap();
    let starred = index.query(&CaseQuery {
        starred_only: true,
        ..CaseQuery::default()
    });
    assert_eq!(starred.cases.iter().map(|s| s.id).collect::<Vec<_>>(), [c]);
    focal.set_case_starred(&c, false).unwrap();
    assert!(!focal.case(&c).unwrap().summary.starred);
    // A note is never sent, nor a stage or a star: nothing is queued for her.
    assert_eq!(focal.outbox_len().unwrap(), 0);
    // A reply is.
    focal
        .reply_to_case(&a, "Le llamamos", UnixTime(T0 + 10 * 3600))
        .unwrap();
    assert_eq!(focal.outbox_len().unwrap(), 1);
    // Her follow-up marks the case unread again.
    let mut e = SystemEntropy::new();
    let follow_up = Reply {
        v: 1,
        report_id: a,
        text: "Gracias".into(),
        language: Some(Language::Es),
        stamp: Stamp::default(),
    };
    let header = InnerHeader::new(&mut e, UnixTime(T0 + 11 * 3600)).unwrap();
    let env = Envelope::seal(
        &keys,
        Purpose::Reply,
        &header,
        &follow_up.to_json().unwrap(),
        &mut e,
    )
    .unwrap();
    assert_eq!(focal.file_envelopes(&[env]).unwrap().messages, 1);
    assert!(focal.case(&a).unwrap().summary.unread);
}
