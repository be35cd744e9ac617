//! Property tests: every payload type round-trips through its encoding, and
//! decoders given arbitrary or damaged input return errors, never panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_protocol::UnixTime;
use amparo_protocol::directory::{
    Directory, FocalPoint, LocalizedText, ServiceKind, ServiceRoute, SignedDirectory,
};
use amparo_protocol::entropy::DangerousSeededEntropy;
use amparo_protocol::envelope::{Envelope, EnvelopeId, Purpose};
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::*;
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::receipt::Receipt;
use amparo_protocol::{ProtocolError, bundle};
use proptest::prelude::*;

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max).prop_map(|c| c.into_iter().collect())
}

fn violence() -> impl Strategy<Value = ViolenceKind> {
    prop_oneof![
        Just(ViolenceKind::Physical),
        Just(ViolenceKind::Sexual),
        Just(ViolenceKind::Psychological),
        Just(ViolenceKind::Threats),
        Just(ViolenceKind::Harassment),
        Just(ViolenceKind::Extortion),
        Just(ViolenceKind::Robbery),
        Just(ViolenceKind::ArbitraryDetention),
        Just(ViolenceKind::Discrimination),
        Just(ViolenceKind::Trafficking),
        Just(ViolenceKind::Other),
    ]
}

fn aggressor() -> impl Strategy<Value = AggressorKind> {
    prop_oneof![
        Just(AggressorKind::Client),
        Just(AggressorKind::PoliceOrSecurity),
        Just(AggressorKind::IntimatePartner),
        Just(AggressorKind::ThirdPartyOrPimp),
        Just(AggressorKind::OrganizedCrime),
        Just(AggressorKind::Other),
        Just(AggressorKind::Unknown),
    ]
}

fn need() -> impl Strategy<Value = Need> {
    prop_oneof![
        Just(Need::LegalAdvice),
        Just(Need::HealthCare),
        Just(Need::StiHivPep),
        Just(Need::PsychologicalSupport),
        Just(Need::ProtectionShelter),
        Just(Need::Children),
        Just(Need::MigrationStatus),
        Just(Need::Other),
    ]
}

fn language() -> impl Strategy<Value = Language> {
    prop_oneof![Just(Language::Es), Just(Language::Pt), Just(Language::En)]
}

fn date() -> impl Strategy<Value = IncidentDate> {
    (
        1990u16..2100,
        proptest::option::of(1u8..=12),
        any::<bool>(),
        1u8..=28,
    )
        .prop_map(|(year, month, approximate, d)| IncidentDate {
            year,
            month,
            day: month.map(|_| d),
            approximate,
        })
}

fn recipient() -> impl Strategy<Value = RecipientPublic> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(sealing_key, signing_key)| RecipientPublic {
        sealing_key,
        signing_key,
    })
}

fn attachment() -> impl Strategy<Value = AttachmentRef> {
    (
        any::<[u8; 16]>(),
        prop_oneof![
            Just(AttachmentKind::Photo),
            Just(AttachmentKind::Audio),
            Just(AttachmentKind::Video),
            Just(AttachmentKind::Document)
        ],
        0u64..10_000_000,
        any::<[u8; 32]>(),
    )
        .prop_map(|(id, kind, size, sha256)| AttachmentRef {
            id,
            kind,
            mime: "image/jpeg".into(),
            size,
            sha256,
            chunks: chunk::chunk_count(size) as u32,
        })
}

prop_compose! {
    fn report()(violence in proptest::collection::vec(violence(), 0..5),
                violence_other in proptest::option::of(text(50)),
                when in proptest::option::of(date()),
                region in proptest::option::of("[A-Z]{2}-[A-Z]{3}"),
                detail in proptest::option::of(text(80)),
                aggressors in proptest::collection::vec(aggressor(), 0..4),
                needs in proptest::collection::vec(need(), 0..6),
                language in language(),
                text in text(400),
                attachments in proptest::collection::vec(attachment(), 0..3),
                reply_to in recipient(),
                referral in proptest::option::of(("[a-z0-9_-]{1,64}", text(100), proptest::option::of(any::<u32>()))))
                -> Report {
        Report {
            reads: Vec::new(),
            // The statistics fields follow the free text's length, so that
            // the round trip sees each of their values.
            statistics_consent: text.len() % 2 == 0,
            age_band: [None, Some(AgeBand::Child), Some(AgeBand::Adolescent), Some(AgeBand::Adult)][text.len() % 4],
            reported_elsewhere: [None, Some(true), Some(false)][text.len() % 3],
            alert: None,
            v: 1,
            violence,
            violence_other,
            when,
            place: Place { country: Some("PE".into()), region, detail, setting: [None, Some(PlaceSetting::Border), Some(PlaceSetting::Urban), Some(PlaceSetting::Rural)][text.len() % 4] },
            aggressors,
            aggressor_other: None,
            needs,
            language,
            text,
            attachments,
            reply_to,
            referral: referral.map(|(from_focal_point, note, seq)| Referral { from_focal_point, note, seq }),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn report_round_trips(r in report()) {
        let json = r.to_json().unwrap();
        prop_assert_eq!(Report::from_json(&json).unwrap(), r);
    }

    #[test]
    fn reply_and_status_round_trip(id in any::<[u8; 16]>(), t in text(300), l in proptest::option::of(language()),
                                   s in 0usize..4, msg in proptest::option::of(text(100)),
                                   at in proptest::option::of(any::<u64>()), seq in proptest::option::of(any::<u32>()),
                                   from in proptest::option::of("[a-z][a-z0-9_-]{0,63}")) {
        let stamp = Stamp { at, seq, from };
        let reply = Reply { v: 1, report_id: id, text: t, language: l, stamp: stamp.clone() };
        prop_assert_eq!(Reply::from_json(&reply.to_json().unwrap()).unwrap(), reply);
        let status = [CaseStatus::Received, CaseStatus::InProgress, CaseStatus::Referred, CaseStatus::Closed][s];
        let update = StatusUpdate {
            v: 1,
            report_id: id,
            status,
            message: msg,
            referred_to: (status == CaseStatus::Referred).then(|| "pe-lima-ong".to_string()),
            stamp: Stamp { from: stamp.from.filter(|f| f != "pe-lima-ong"), ..stamp },
        };
        prop_assert_eq!(StatusUpdate::from_json(&update.to_json().unwrap()).unwrap(), update);
    }

    #[test]
    fn receipt_round_trips(id in any::<[u8; 16]>(), t in any::<u32>(), seed in any::<[u8; 32]>()) {
        let key = SigningKey::from_seed(&seed).unwrap();
        let r = Receipt::sign(EnvelopeId(id), UnixTime(u64::from(t) * 60), &key);
        let back = Receipt::decode(&r.encode()).unwrap();
        prop_assert_eq!(back, r);
        back.verify(&key.verifying_key()).unwrap();
    }

    #[test]
    fn json_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Report::from_json(&bytes);
        let _ = Reply::from_json(&bytes);
        let _ = StatusUpdate::from_json(&bytes);
        let _ = ChunkBody::decode(&bytes);
    }

    #[test]
    fn directory_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let key = SigningKey::from_seed(&[7; 32]).unwrap();
        let _ = SignedDirectory::verify(&bytes, &key.verifying_key());
    }
}

fn localized(s: &str) -> LocalizedText {
    LocalizedText {
        es: format!("{s} (es)"),
        pt: format!("{s} (pt)"),
        en: format!("{s} (en)"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn directory_round_trips(n in 1usize..6, version in 1u64..u64::MAX, langs in proptest::collection::vec(language(), 1..3)) {
        let mut e = DangerousSeededEntropy::new(b"directory proptest");
        let coordinator = SigningKey::generate(&mut e).unwrap();
        let focal_points = (0..n).map(|i| FocalPoint {
            reads: Vec::new(),
            id: format!("fp-{i}"),
            name: localized("Focal point"),
            organization: "Org".into(),
            regions: vec!["PE-LIM".into()],
            categories: vec![Need::LegalAdvice],
            languages: langs.clone(),
            keys: RecipientKeys::generate(&mut e).unwrap().public(),
            valid_from: 0,
            valid_until: 1 << 40,
        }).collect();
        let d = Directory {
            statistics: None,
            focal_points,
            service_routes: vec![ServiceRoute {
                id: "route-1".into(),
                region: "PE-LIM".into(),
                service: ServiceKind::StiHivPep,
                name: localized("Clinic"),
                description: localized("Ask for PEP at the front desk"),
                contact: None,
            }],
            relays: vec![],
        };
        let signed = d.sign(version, &coordinator).unwrap();
        let back = SignedDirectory::verify(signed.as_bytes(), &coordinator.verifying_key()).unwrap();
        prop_assert_eq!(back.directory(), &d);
        prop_assert_eq!(back.version(), version);
    }

    #[test]
    fn bundles_round_trip(n in 0usize..5, sizes in proptest::collection::vec(0usize..3000, 5)) {
        let mut e = DangerousSeededEntropy::new(b"bundle proptest");
        let k = RecipientKeys::generate(&mut e).unwrap();
        let mut enc = bundle::BundleEncoder::new();
        let mut want = Vec::new();
        for size in sizes.iter().take(n) {
            let h = InnerHeader::new(&mut e, UnixTime(0)).unwrap();
            let env = Envelope::seal(&k.public(), Purpose::Report, &h, &vec![1u8; *size], &mut e).unwrap();
            enc.envelope(&env).unwrap();
            want.push(bundle::BundleItem::Envelope(env));
        }
        let bytes = enc.finish();
        prop_assert_eq!(bundle::decode_all(&bytes).unwrap(), want);
    }
}

#[test]
fn json_errors_do_not_quote_the_input() {
    let secret = "mi nombre es Canary-7731 y vivo en la calle tal";
    let bad = format!("{{\"v\":1,\"language\":\"{secret}\"}}");
    let err = Report::from_json(bad.as_bytes()).unwrap_err();
    let shown = err.to_string();
    assert!(!shown.contains("Canary-7731"), "{shown}");
    assert!(matches!(err, ProtocolError::Json { .. }));
}

#[test]
fn payload_limits_are_enforced() {
    let mut e = DangerousSeededEntropy::new(b"limits");
    let reply_to = RecipientKeys::generate(&mut e).unwrap().public();
    let base = Report {
        reads: Vec::new(),
        statistics_consent: false,
        age_band: None,
        reported_elsewhere: None,
        alert: None,
        v: 1,
        violence: vec![ViolenceKind::Sexual],
        violence_other: None,
        when: None,
        place: Place::default(),
        aggressors: vec![AggressorKind::PoliceOrSecurity],
        aggressor_other: None,
        needs: vec![Need::StiHivPep],
        language: Language::Es,
        text: "x".into(),
        attachments: vec![],
        reply_to,
        referral: None,
    };
    base.validate().unwrap();
    let too_long = Report {
        text: "á".repeat(report::MAX_TEXT_CHARS + 1),
        ..base.clone()
    };
    assert!(matches!(
        too_long.to_json(),
        Err(ProtocolError::TooLarge { .. })
    ));
    let bad_date = Report {
        when: Some(IncidentDate {
            year: 2026,
            month: Some(2),
            day: Some(30),
            approximate: false,
        }),
        ..base.clone()
    };
    assert_eq!(
        bad_date.validate(),
        Err(ProtocolError::Invalid("incident day"))
    );
    let mut v2 = serde_json::to_value(&base).unwrap();
    v2["v"] = 2.into();
    assert!(matches!(
        Report::from_json(v2.to_string().as_bytes()),
        Err(ProtocolError::UnsupportedVersion { .. })
    ));
    // The longest text still fits one envelope, whatever its characters.
    let longest = Report {
        text: "\u{1F600}".repeat(report::MAX_TEXT_CHARS),
        ..base.clone()
    };
    let json = longest.to_json().unwrap();
    assert!(
        json.len() <= amparo_protocol::padding::MAX_BODY,
        "{}",
        json.len()
    );
    let worst = Report {
        text: "\u{1}".repeat(report::MAX_TEXT_CHARS),
        ..base
    };
    // Characters that JSON escapes can pass the character limit and still not
    // fit: the encoder refuses rather than produce an unsealable body.
    assert!(matches!(
        worst.to_json(),
        Err(ProtocolError::TooLarge { what: "report", .. })
    ));
}
