//! Writes the seed corpus of every fuzz target into `corpus/<target>/`, from
//! real values made with amparo-protocol's own API and a seeded (reproducible)
//! entropy stream: running it again writes the same bytes.
//!
//! ```text
//! cd protocol/fuzz && cargo run --release --example make_corpus
//! ```
//!
//! Fixed keys, shared with the fuzz targets:
//! * the coordinator that signs directories: Ed25519 seed `[7; 32]`;
//! * the recipient that `envelope_open` opens with:
//!   `RecipientKeys::from_secret_bytes(&[5; 64])`;
//! * the relay that signs receipts: Ed25519 seed `[9; 32]`.
//!
//! The bundle target reads one control byte before the bundle, so its seed
//! files are `control byte || bundle`.

use std::path::{Path, PathBuf};

use amparo_protocol::bundle::BundleEncoder;
use amparo_protocol::directory::{
    Directory, FocalPoint, LocalizedText, RelayEntry, ServiceKind, ServiceRoute,
};
use amparo_protocol::entropy::{DangerousSeededEntropy, Entropy};
use amparo_protocol::compression;
use amparo_protocol::envelope::{Compression, Envelope, Purpose};
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::padding::{self, FLAG_COVER, InnerHeader};
use amparo_protocol::payload::chunk::{CHUNK_DATA_MAX, chunk_count};
use amparo_protocol::payload::{
    AggressorKind, AttachmentKind, AttachmentRef, CaseStatus, IncidentDate, Language, Need,
    Payload, Place, Referral, Reply, Report, Stamp, StatusUpdate, ViolenceKind, split_attachment,
};
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::receipt::Receipt;
use amparo_protocol::{Result, UnixTime};

const NOW: UnixTime = UnixTime(1_790_000_000);

struct Corpus {
    root: PathBuf,
    written: usize,
}

impl Corpus {
    fn write(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write corpus file");
        println!("{:>6} bytes  {}", bytes.len(), path.display());
        self.written += 1;
    }
}

fn random<const N: usize>(e: &mut DangerousSeededEntropy) -> [u8; N] {
    let mut out = [0u8; N];
    e.fill(&mut out).expect("seeded entropy");
    out
}

fn attachment(
    e: &mut DangerousSeededEntropy,
    kind: AttachmentKind,
    mime: &str,
    size: u64,
) -> AttachmentRef {
    AttachmentRef {
        id: random(e),
        kind,
        mime: mime.into(),
        size,
        sha256: random(e),
        chunks: u32::try_from(chunk_count(size)).expect("small attachment"),
    }
}

/// Three reports shaped like real ones: Spanish with a photo, Portuguese
/// with audio and a referral (long enough for the 4 KiB class), and a short
/// English one with a leap-day date.
fn reports(
    e: &mut DangerousSeededEntropy,
    reply_to: RecipientPublic,
) -> Vec<(&'static str, Report)> {
    let es = Report {
        reads: vec![compression::READS_DEFLATE_D1.into()],
        statistics_consent: false,
        age_band: None,
        reported_elsewhere: None,
        alert: None,
        v: 1,
        violence: vec![
            ViolenceKind::Physical,
            ViolenceKind::Threats,
            ViolenceKind::Extortion,
        ],
        violence_other: None,
        when: Some(IncidentDate {
            year: 2026,
            month: Some(3),
            day: Some(14),
            approximate: false,
        }),
        place: Place {
            setting: None,
            country: Some("PE".into()),
            region: Some("PE-UCA".into()),
            detail: Some("cerca del mercado, de noche".into()),
        },
        aggressors: vec![AggressorKind::PoliceOrSecurity],
        aggressor_other: None,
        needs: vec![
            Need::LegalAdvice,
            Need::StiHivPep,
            Need::PsychologicalSupport,
        ],
        language: Language::Es,
        text: "Dos agentes me pararon en la calle, me quitaron el dinero y el \
               documento y me amenazaron con llevarme detenida si no les pagaba \
               cada semana. Uno me golpeó. Tengo una foto del moretón."
            .into(),
        attachments: vec![attachment(e, AttachmentKind::Photo, "image/jpeg", 183_204)],
        reply_to,
        referral: None,
    };
    let pt_text = "Um cliente me forçou a fazer sexo sem preservativo e depois \
                   ficou me seguindo por vários dias. Fui ao posto de saúde mas \
                   não quiseram me atender quando disse o meu trabalho. Preciso \
                   de PEP e de ajuda com os meus documentos, porque tenho medo \
                   de ir à polícia sem eles. "
        .repeat(5);
    let pt = Report {
        reads: vec![compression::READS_DEFLATE_D1.into()],
        statistics_consent: false,
        age_band: None,
        reported_elsewhere: None,
        alert: None,
        v: 1,
        violence: vec![
            ViolenceKind::Sexual,
            ViolenceKind::Harassment,
            ViolenceKind::Discrimination,
            ViolenceKind::Other,
        ],
        violence_other: Some("recusa de atendimento no posto de saúde".into()),
        when: Some(IncidentDate {
            year: 2026,
            month: Some(1),
            day: None,
            approximate: true,
        }),
        place: Place {
            setting: None,
            country: Some("BR".into()),
            region: Some("BR-AC".into()),
            detail: None,
        },
        aggressors: vec![AggressorKind::Client, AggressorKind::Other],
        aggressor_other: Some("funcionária do posto de saúde".into()),
        needs: vec![
            Need::HealthCare,
            Need::StiHivPep,
            Need::ProtectionShelter,
            Need::MigrationStatus,
        ],
        language: Language::Pt,
        text: pt_text,
        attachments: vec![
            attachment(e, AttachmentKind::Audio, "audio/ogg", 912_345),
            attachment(e, AttachmentKind::Document, "application/pdf", 0),
        ],
        reply_to,
        referral: Some(Referral {
            seq: Some(3),
            from_focal_point: "pe-ucayali-defensoria".into(),
            note: "Caso derivado: la persona está en Río Branco; necesita PEP urgente.".into(),
        }),
    };
    let en = Report {
        reads: vec![compression::READS_DEFLATE_D1.into()],
        statistics_consent: false,
        age_band: None,
        reported_elsewhere: None,
        alert: None,
        v: 1,
        violence: vec![ViolenceKind::Trafficking, ViolenceKind::Robbery],
        violence_other: None,
        when: Some(IncidentDate {
            year: 2024,
            month: Some(2),
            day: Some(29),
            approximate: false,
        }),
        place: Place::default(),
        aggressors: vec![
            AggressorKind::ThirdPartyOrPimp,
            AggressorKind::OrganizedCrime,
        ],
        aggressor_other: None,
        needs: vec![Need::Children, Need::Other],
        language: Language::En,
        text: "The owner keeps my passport and says I owe him for the trip. \
               \"Pay or your kids pay\" \u{2014} that's what he wrote."
            .into(),
        attachments: vec![],
        reply_to,
        referral: None,
    };
    vec![
        ("report-es.json", es),
        ("report-pt.json", pt),
        ("report-en.json", en),
    ]
}

fn directory(
    e: &mut DangerousSeededEntropy,
    fixed: &RecipientKeys,
    relay: &SigningKey,
) -> Result<Directory> {
    let other = RecipientKeys::generate(e)?;
    let text = |es: &str, pt: &str, en: &str| LocalizedText {
        es: es.into(),
        pt: pt.into(),
        en: en.into(),
    };
    Ok(Directory {
        statistics: None,
        focal_points: vec![
            FocalPoint {
                id: "pe-ucayali-defensoria".into(),
                name: text(
                    "Defensoría del Pueblo, Ucayali",
                    "Defensoria do Povo, Ucayali",
                    "Ombudsman's Office, Ucayali",
                ),
                organization: "Defensoría del Pueblo".into(),
                regions: vec!["PE-UCA".into(), "PE-LOR".into()],
                categories: vec![Need::LegalAdvice, Need::ProtectionShelter],
                languages: vec![Language::Es],
                keys: fixed.public(),
                valid_from: 1_767_225_600,
                valid_until: 1_830_297_600,
                reads: vec!["deflate_d1".into()],
            },
            FocalPoint {
                id: "br-acre-casa_abrigo".into(),
                name: text(
                    "Casa Abrigo, Acre",
                    "Casa Abrigo, Acre",
                    "Casa Abrigo shelter, Acre",
                ),
                organization: "Rede de Apoio".into(),
                regions: vec!["BR-AC".into()],
                categories: vec![Need::HealthCare, Need::StiHivPep, Need::MigrationStatus],
                languages: vec![Language::Pt, Language::Es],
                keys: other.public(),
                valid_from: 0,
                valid_until: 4_000_000_000,
                reads: Vec::new(),
            },
        ],
        service_routes: vec![ServiceRoute {
            id: "pe-uca-pep-1".into(),
            region: "PE-UCA".into(),
            service: ServiceKind::StiHivPep,
            name: text(
                "Hospital Amazónico, consultorio PROCETSS",
                "Hospital Amazônico, consultório PROCETSS",
                "Amazon Hospital, PROCETSS clinic",
            ),
            description: text(
                "PEP gratuita dentro de las 72 horas. Pregunta por el consultorio 12.",
                "PEP gratuita em até 72 horas. Pergunte pelo consultório 12.",
                "Free PEP within 72 hours. Ask for room 12.",
            ),
            contact: Some("Lun–Sáb 8:00–18:00".into()),
        }],
        relays: vec![RelayEntry {
            name: "relay principal".into(),
            url: Some("https://relay.example.invalid".into()),
            receipt_key: relay.verifying_key().0,
        }],
    })
}

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut c = Corpus { root, written: 0 };
    let mut e = DangerousSeededEntropy::new(b"fuzz corpus");

    let fixed = RecipientKeys::from_secret_bytes(&[5u8; 64])?;
    let other = RecipientKeys::generate(&mut e)?;
    let reply_keys = RecipientKeys::generate(&mut e)?;
    let coordinator = SigningKey::from_seed(&[7u8; 32])?;
    let relay = SigningKey::from_seed(&[9u8; 32])?;

    // --- payloads ---------------------------------------------------------
    let reports = reports(&mut e, reply_keys.public());
    let mut report_json = Vec::new();
    for (name, r) in &reports {
        let json = r.to_json()?;
        c.write("payload", name, &json);
        report_json.push(json);
    }
    let report_id: [u8; 16] = random(&mut e);
    let replies = [
        Reply {
            v: 1,
            report_id,
            text: "Hola, somos la Defensoría. Recibimos tu reporte. ¿Puedes venir el \
                   martes? Si no, te llamamos al número que prefieras."
                .into(),
            language: Some(Language::Es),
            stamp: Stamp {
                at: Some(1_790_000_000),
                seq: Some(1),
                from: Some("pe-ucayali-defensoria".into()),
            },
        },
        Reply {
            v: 1,
            report_id,
            text: "Sí, el martes puedo.".into(),
            language: None,
            stamp: Stamp {
                seq: Some(1),
                ..Stamp::default()
            },
        },
    ];
    let reply_json: Vec<Vec<u8>> = replies
        .iter()
        .map(Payload::to_json)
        .collect::<Result<_>>()?;
    c.write("payload", "reply-fp.json", &reply_json[0]);
    c.write("payload", "reply-survivor.json", &reply_json[1]);
    let statuses = [
        StatusUpdate {
            v: 1,
            report_id,
            status: CaseStatus::InProgress,
            message: Some("Una abogada revisa tu caso.".into()),
            referred_to: None,
            stamp: Stamp {
                at: Some(1_790_000_060),
                seq: Some(2),
                from: Some("pe-ucayali-defensoria".into()),
            },
        },
        StatusUpdate {
            v: 1,
            report_id,
            status: CaseStatus::Referred,
            message: None,
            referred_to: Some("br-acre-casa_abrigo".into()),
            stamp: Stamp::default(),
        },
    ];
    let status_json: Vec<Vec<u8>> = statuses
        .iter()
        .map(Payload::to_json)
        .collect::<Result<_>>()?;
    c.write("payload", "status-in-progress.json", &status_json[0]);
    c.write("payload", "status-referred.json", &status_json[1]);
    // Chunk bodies: a one-chunk photo and the short tail of a two-chunk audio.
    let photo: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
    let photo_chunks = split_attachment(random(&mut e), &photo)?;
    c.write("payload", "chunk-single.bin", &photo_chunks[0]);
    let audio: Vec<u8> = (0..CHUNK_DATA_MAX as u32 + 500)
        .map(|i| (i % 253) as u8)
        .collect();
    let audio_chunks = split_attachment(random(&mut e), &audio)?;
    c.write("payload", "chunk-tail.bin", &audio_chunks[1]);

    // --- padding ----------------------------------------------------------
    let header = InnerHeader::new(&mut e, NOW)?;
    let cover = InnerHeader {
        flags: FLAG_COVER,
        ..InnerHeader::new(&mut e, NOW)?
    };
    c.write(
        "padding",
        "report-1k.bin",
        &padding::pad(&header, &report_json[0])?,
    );
    c.write(
        "padding",
        "report-4k.bin",
        &padding::pad(&header, &report_json[1])?,
    );
    c.write(
        "padding",
        "reply-16k.bin",
        &padding::pad_to(&header, &reply_json[0], 16 * 1024)?,
    );
    c.write("padding", "cover-1k.bin", &padding::pad(&cover, b"")?);
    c.write(
        "padding",
        "chunk-64k.bin",
        &padding::pad(&header, &audio_chunks[0])?,
    );

    // --- envelopes --------------------------------------------------------
    // (name, purpose, inner header, body); sealed once to another recipient
    // for `envelope` and once to the fixed keys for `envelope_open`.
    let bodies: Vec<(&str, Purpose, InnerHeader, &[u8])> = vec![
        ("report-1k.bin", Purpose::Report, header, &report_json[0]),
        ("report-4k.bin", Purpose::Report, header, &report_json[1]),
        ("chunk-1k.bin", Purpose::Chunk, header, &photo_chunks[0]),
        ("chunk-64k.bin", Purpose::Chunk, header, &audio_chunks[0]),
        ("reply-1k.bin", Purpose::Reply, header, &reply_json[0]),
        ("status-1k.bin", Purpose::Status, header, &status_json[1]),
        ("cover-1k.bin", Purpose::Report, cover, b""),
    ];
    let mut sealed_other = Vec::new();
    for (name, purpose, h, body) in &bodies {
        let env = Envelope::seal(&other.public(), *purpose, h, body, &mut e)?;
        c.write("envelope", name, env.as_bytes());
        sealed_other.push(env);
        let env = Envelope::seal(&fixed.public(), *purpose, h, body, &mut e)?;
        assert_eq!(env.open(&fixed, &Purpose::ALL)?.purpose, *purpose);
        c.write("envelope_open", name, env.as_bytes());
    }
    // Compressed bodies (PROTOCOL.md §5.1), for `envelope_open`, and the
    // compressed forms alone for `decompress`.
    for (name, purpose, body) in [
        ("report-4k-compressed.bin", Purpose::Report, &report_json[1][..]),
        ("reply-compressed.bin", Purpose::Reply, &reply_json[0][..]),
    ] {
        let env = Envelope::seal_with(
            &fixed.public(),
            purpose,
            &header,
            body,
            Compression::IfSmaller,
            &mut e,
        )?;
        assert!(env.open(&fixed, &Purpose::ALL)?.header.is_compressed());
        c.write("envelope_open", name, env.as_bytes());
    }
    for (i, body) in report_json.iter().chain(reply_json.iter()).enumerate() {
        c.write(
            "decompress",
            &format!("body-{i}.bin"),
            &compression::compress(body)?,
        );
    }

    // --- directory --------------------------------------------------------
    let dir = directory(&mut e, &fixed, &relay)?;
    let signed = dir.sign(3, &coordinator)?;
    c.write("directory", "signed-v3.bin", signed.as_bytes());
    let small = Directory {
        statistics: None,
        focal_points: dir.focal_points[..1].to_vec(),
        service_routes: vec![],
        relays: vec![],
    };
    let signed_small = small.sign(1, &coordinator)?;
    c.write("directory", "signed-v1-small.bin", signed_small.as_bytes());
    // The same document signed by a key the target does not trust.
    let mallory = SigningKey::generate(&mut e)?;
    c.write(
        "directory",
        "signed-by-other.bin",
        dir.sign(4, &mallory)?.as_bytes(),
    );
    // JSON bodies, for the unsigned path.
    c.write(
        "directory",
        "body.json",
        &serde_json::to_vec(&dir).expect("json"),
    );
    c.write(
        "directory",
        "body-pretty.json",
        &serde_json::to_vec_pretty(&small).expect("json"),
    );

    // --- receipts ---------------------------------------------------------
    let receipts: Vec<Receipt> = sealed_other
        .iter()
        .take(3)
        .map(|env| Receipt::sign(env.id(), NOW, &relay))
        .collect();
    for (i, r) in receipts.iter().enumerate() {
        c.write("receipt", &format!("receipt-{i}.bin"), &r.encode());
    }
    let r_other = Receipt::sign(sealed_other[4].id(), UnixTime(NOW.0 + 86_400), &mallory);
    c.write("receipt", "receipt-other-relay.bin", &r_other.encode());

    // --- admission challenges and proofs (selector byte || value) ---------
    for (i, effort) in [0u32, 1, 16, amparo_protocol::admission::MAX_EFFORT]
        .into_iter()
        .enumerate()
    {
        let mut v = vec![0u8];
        v.extend_from_slice(
            &amparo_protocol::admission::Challenge::sign(&relay, 7, effort, 600).encode(),
        );
        c.write("admission", &format!("challenge-{i}.bin"), &v);
    }
    let challenge = amparo_protocol::admission::Challenge::sign(&relay, 7, 2, 600);
    let ids = [sealed_other[0].id(), sealed_other[1].id()];
    let mut own = DangerousSeededEntropy::new(b"fuzz corpus admission");
    let solved = amparo_protocol::admission::solve(&challenge, &ids, 4, &mut own, &mut |_| true)?;
    if let Some(p) = solved.proof {
        let mut v = vec![1u8];
        v.extend_from_slice(&p.encode());
        c.write("admission", "proof-0.bin", &v);
    }

    // --- admission tokens, requests, vouchers, keys (selector || value) ----
    {
        use amparo_protocol::token::{self, IssuerKey};
        let mut e = DangerousSeededEntropy::new(b"fuzz corpus token");
        let issuer = IssuerKey::generate(&mut e)?;
        let relay_id = amparo_protocol::keys::KeyId([1; 8]);
        let (request, pending) = token::begin(issuer.public(), &relay_id, &mut e)?;
        let t = token::finish(&pending, &issuer.sign(&request, &mut e)?)?;
        c.write("token", "token.bin", &[&[0u8][..], &t.encode()].concat());
        c.write(
            "token",
            "requests.bin",
            &[
                &[1u8][..],
                &token::encode_requests(&[request.clone(), request]),
            ]
            .concat(),
        );
        let v = amparo_protocol::voucher::Voucher::sign(
            &relay.verifying_key(),
            amparo_protocol::UnixTime(1_000),
            amparo_protocol::UnixTime(1_000 + 86_400),
            &relay,
        )?;
        c.write("token", "voucher.bin", &[&[2u8][..], &v.encode()].concat());
        c.write(
            "token",
            "header.bin",
            &[&[3u8][..], t.to_header().as_bytes()].concat(),
        );
        c.write(
            "token",
            "key.bin",
            &[&[4u8][..], issuer.public().spki()].concat(),
        );
    }

    // --- bundles (control byte || bundle) ---------------------------------
    let with_control = |control: u8, bundle: Vec<u8>| {
        let mut v = vec![control];
        v.extend_from_slice(&bundle);
        v
    };
    // Envelopes (report, chunk, reply, status, cover), receipts and the
    // small signed directory, as a facilitator would carry them.
    let mut enc = BundleEncoder::new();
    for i in [0usize, 2, 4, 5, 6] {
        enc.envelope(&sealed_other[i])?;
    }
    for r in &receipts {
        enc.receipt(r)?;
    }
    enc.directory(signed_small.as_bytes())?;
    let mixed = enc.finish();
    c.write(
        "bundle",
        "mixed-whole.bin",
        &with_control(0x00, mixed.clone()),
    );
    c.write(
        "bundle",
        "mixed-pieces.bin",
        &with_control(0x4d, mixed.clone()),
    );
    // Cut short (a transfer that stopped): decodes a prefix then fails.
    c.write(
        "bundle",
        "mixed-cut.bin",
        &with_control(0x06, mixed[..mixed.len() / 2].to_vec()),
    );
    // The way back: the full directory and receipts only, in 1-byte pieces.
    let mut enc = BundleEncoder::new();
    enc.directory(signed.as_bytes())?;
    for r in receipts.iter().chain([&r_other]) {
        enc.receipt(r)?;
    }
    c.write(
        "bundle",
        "directory-receipts.bin",
        &with_control(0x01, enc.finish()),
    );
    // One 4 KiB envelope, and an empty bundle.
    let mut enc = BundleEncoder::new();
    enc.envelope(&sealed_other[1])?;
    c.write(
        "bundle",
        "one-envelope.bin",
        &with_control(0x05, enc.finish()),
    );
    c.write(
        "bundle",
        "empty.bin",
        &with_control(0x03, BundleEncoder::new().finish()),
    );

    // --- HTTP bodies (selector byte || body): 0 batch, 1 results, 2 page ---
    use amparo_protocol::wire::{self, EnvelopeResult, RejectCode};
    let with_selector = |selector: u8, body: Vec<u8>| {
        let mut v = vec![selector];
        v.extend_from_slice(&body);
        v
    };
    let batch = wire::encode_batch(sealed_other.iter().take(3).map(|e| e.as_bytes()));
    c.write("wire", "batch-3.bin", &with_selector(0, batch.clone()));
    c.write("wire", "batch-empty.bin", &with_selector(0, Vec::new()));
    c.write(
        "wire",
        "batch-cut.bin",
        &with_selector(0, batch[..batch.len() / 2].to_vec()),
    );
    let results = [
        EnvelopeResult::Accepted(receipts[0]),
        EnvelopeResult::Rejected(RejectCode::BadSizeClass),
        EnvelopeResult::Accepted(receipts[1]),
    ];
    c.write(
        "wire",
        "results.bin",
        &with_selector(1, wire::encode_results(&results)),
    );
    let page = wire::encode_page(
        sealed_other
            .iter()
            .take(2)
            .enumerate()
            .map(|(i, e)| (i as u64 * 7 + 1, e.as_bytes())),
    );
    c.write("wire", "page-2.bin", &with_selector(2, page));

    // --- signed-request headers (u16 header length || header || target || 0 || body) ---
    use amparo_protocol::request::RequestProof;
    let request_seed = |method: &str, target: &str, body: &[u8], e: &mut DangerousSeededEntropy| {
        let proof = RequestProof::sign(fixed.signing(), method, target, body, NOW, e)?;
        let header = proof.to_header();
        let mut v = u16::try_from(header.len())
            .expect("short header")
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(target.as_bytes());
        v.push(0);
        v.extend_from_slice(body);
        Ok::<_, amparo_protocol::ProtocolError>(v)
    };
    let fetch_target = format!(
        "/v1/mailboxes/{}/envelopes?after=0&limit=100",
        fixed.mailbox()
    );
    c.write(
        "request",
        "fetch.bin",
        &request_seed("GET", &fetch_target, b"", &mut e)?,
    );
    let ack_target = format!("/v1/mailboxes/{}/ack", fixed.mailbox());
    let ack_body = format!("{{\"ids\":[\"{}\"]}}", sealed_other[0].id());
    c.write(
        "request",
        "ack.bin",
        &request_seed("POST", &ack_target, ack_body.as_bytes(), &mut e)?,
    );

    // --- many-mailbox bodies (selector || body): 0 fetch, 1 ack, 2 answer ---
    use amparo_protocol::grant::FetchGrant;
    use amparo_protocol::mailboxes::{self, FetchAuth, FetchResult};
    let grant = FetchGrant::sign(other.signing(), UnixTime(NOW.0 + 3600));
    let expired = FetchGrant::sign(reply_keys.signing(), UnixTime(NOW.0 - 60));
    let fetch = mailboxes::sign_fetch(
        &[
            (FetchAuth::Key(fixed.signing()), 0),
            (FetchAuth::Grant(&grant), 7),
            (FetchAuth::Grant(&expired), 0),
        ],
        100,
        NOW,
        &mut e,
    )?;
    c.write(
        "mailboxes",
        "fetch-key-grants.bin",
        &with_selector(0, fetch.clone()),
    );
    let fetch_one = mailboxes::sign_fetch(&[(FetchAuth::Key(fixed.signing()), 3)], 1, NOW, &mut e)?;
    c.write("mailboxes", "fetch-one.bin", &with_selector(0, fetch_one));
    // Op 3, an answer of at most what a phone names (its own entropy, so
    // the seeds after it keep their bytes).
    let mut within_e = DangerousSeededEntropy::new(b"fuzz corpus: fetch within");
    let within = mailboxes::sign_fetch_within(
        &[
            (FetchAuth::Key(fixed.signing()), 0),
            (FetchAuth::Grant(&grant), 7),
        ],
        9,
        1_230_754,
        NOW,
        &mut within_e,
    )?;
    c.write("mailboxes", "fetch-within.bin", &with_selector(0, within));
    let ack = mailboxes::sign_ack(
        &[
            (
                fixed.signing(),
                vec![sealed_other[0].id(), sealed_other[1].id()],
            ),
            (other.signing(), vec![sealed_other[2].id()]),
        ],
        NOW,
        &mut e,
    )?;
    c.write("mailboxes", "ack-two.bin", &with_selector(1, ack.clone()));
    let answer = mailboxes::encode_fetch_answer([
        FetchResult::Page {
            items: vec![(1u64, sealed_other[0].as_bytes().to_vec())],
            more: false,
        },
        FetchResult::Page {
            items: vec![],
            more: true,
        },
        FetchResult::Refused,
    ]);
    c.write(
        "mailboxes",
        "answer-3.bin",
        &with_selector(2, answer.clone()),
    );

    // The seeds must reach past every check of their decoders.
    use amparo_protocol::bundle;
    use amparo_protocol::directory::SignedDirectory;
    for json in &report_json {
        Report::from_json(json)?;
    }
    for json in &reply_json {
        Reply::from_json(json)?;
    }
    for json in &status_json {
        StatusUpdate::from_json(json)?;
    }
    let vk = coordinator.verifying_key();
    assert_eq!(
        SignedDirectory::verify(signed.as_bytes(), &vk)?.directory(),
        &dir
    );
    assert_eq!(
        SignedDirectory::verify(signed_small.as_bytes(), &vk)?.directory(),
        &small
    );
    assert_eq!(bundle::decode_all(&mixed)?.len(), 9);
    for r in &receipts {
        r.verify(&relay.verifying_key())?;
    }

    assert_eq!(wire::decode_batch(&batch, 256)?.len(), 3);
    assert_eq!(mailboxes::verify_fetch(&fetch, NOW)?.entries.len(), 3);
    assert_eq!(mailboxes::verify_ack(&ack, NOW)?.entries.len(), 2);
    assert_eq!(mailboxes::decode_fetch_answer(&answer, 3)?.len(), 3);
    assert_eq!(
        wire::decode_results(&wire::encode_results(&results))?,
        results
    );

    println!("{} files written", c.written);
    Ok(())
}
