//! Keeps PROTOCOL.md true.
//!
//! Every block between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`
//! in PROTOCOL.md is produced here from fixed seeds. The test fails if the
//! document and the code disagree. After an intended change to the format,
//! regenerate with:
//!
//! ```sh
//! AMPARO_BLESS=1 cargo test -p amparo-protocol --test protocol_doc
//! ```
//!
//! Besides producing the bytes with the crate, each example is checked
//! against the formula PROTOCOL.md gives for it, computed here independently
//! (signed messages, digests, replay ids, offsets), so an example cannot be
//! right by the code's standard and wrong by the document's.
//!
//! The other tests keep the prose honest where it states rules the code
//! enforces: §11's list of context strings against every context string in
//! the crate's source, and §8's limits of the Directory JSON.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use amparo_protocol::bundle::{self, BundleEncoder};
use amparo_protocol::directory::{
    Directory, FocalPoint, LocalizedText, RelayEntry, ServiceKind, ServiceRoute, SignedDirectory,
};
use amparo_protocol::entropy::DangerousSeededEntropy;
use amparo_protocol::envelope::{self, Envelope, Purpose};
use amparo_protocol::grant::{self, FetchGrant};
use amparo_protocol::keys::{KeyId, RecipientKeys};
use amparo_protocol::mailboxes::{self, FetchAuth, FetchResult};
use amparo_protocol::padding::{self, InnerHeader};
use amparo_protocol::payload::*;
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::primitives::{sha256, sha256_prefix};
use amparo_protocol::receipt::Receipt;
use amparo_protocol::request::RequestProof;
use amparo_protocol::wire::RejectCode;
use amparo_protocol::{ProtocolError, UnixTime, b64, hpke};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex, 32 bytes per line.
fn hex_block(bytes: &[u8]) -> String {
    bytes.chunks(32).map(hex).collect::<Vec<_>>().join("\n")
}

fn text_block(body: String) -> String {
    format!("```text\n{body}\n```")
}

fn json_block(json: &[u8]) -> String {
    format!("```json\n{}\n```", std::str::from_utf8(json).unwrap())
}

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../PROTOCOL.md")
}

fn read_doc() -> String {
    std::fs::read_to_string(doc_path()).expect("PROTOCOL.md at the repository root")
}

/// The example time: 2026-09-21T14:13:20Z.
const NOW: UnixTime = UnixTime(1_790_000_000);

/// Seals `body` as `purpose` and checks that `keys` open it back to the same
/// purpose, header and body.
fn seal_checked(
    keys: &RecipientKeys,
    purpose: Purpose,
    inner: &InnerHeader,
    body: &[u8],
    e: &mut DangerousSeededEntropy,
) -> Envelope {
    let env = Envelope::seal(&keys.public(), purpose, inner, body, e).unwrap();
    let opened = env.open(keys, &Purpose::ALL).unwrap();
    assert_eq!(opened.purpose, purpose);
    assert_eq!(&opened.header, inner);
    assert_eq!(&**opened.body, body);
    // Only the purpose it was sealed for opens it.
    let others: Vec<Purpose> = Purpose::ALL.into_iter().filter(|p| *p != purpose).collect();
    assert_eq!(
        env.open(keys, &others).unwrap_err(),
        ProtocolError::OpenFailed
    );
    env
}

/// How the envelope of `purpose` looks: its HPKE info, id and bytes.
fn envelope_text(env: &Envelope, purpose: Purpose, padded_class: usize) -> String {
    let b = env.as_bytes();
    let header: [u8; envelope::HEADER_LEN] = b[..envelope::HEADER_LEN].try_into().unwrap();
    // info = "amparo-envelope" || 0x01 || purpose || header (§4).
    let mut info = b"amparo-envelope".to_vec();
    info.extend_from_slice(&[1, purpose as u8]);
    info.extend_from_slice(&header);
    assert_eq!(envelope::info(purpose, &header).as_slice(), info.as_slice());
    // envelope_id = SHA-256(envelope)[0..16] (§4).
    assert_eq!(env.id().0, sha256_prefix::<16>(&[b]));
    format!(
        "info         {}\n\
         length {} = 14 (header) + 32 (enc) + {padded_class} (padded plaintext) + 16 (tag)\n\
         envelope id  {} ({})\n\n{}",
        hex(&info),
        b.len(),
        hex(&env.id().0),
        env.id(),
        hex_block(b)
    )
}

fn examples() -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let now = NOW;
    let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md example");

    // Keys.
    let focal = RecipientKeys::generate(&mut e).unwrap();
    let reply = RecipientKeys::generate(&mut e).unwrap();
    let secret = focal.dangerously_export();
    let reply_secret = reply.dangerously_export();
    out.insert(
        "keys",
        text_block(format!(
            "focal point X25519 secret   {}\n\
             focal point X25519 public   {}\n\
             focal point Ed25519 seed    {}\n\
             focal point Ed25519 public  {}\n\
             focal point mailbox id      {} ({})\n\
             \n\
             reply X25519 secret         {}\n\
             reply X25519 public         {}\n\
             reply Ed25519 seed          {}\n\
             reply Ed25519 public        {}\n\
             reply mailbox id            {} ({})",
            hex(&secret[..32]),
            hex(&focal.public().sealing_key),
            hex(&secret[32..]),
            hex(&focal.public().signing_key),
            hex(&focal.mailbox().0),
            focal.mailbox(),
            hex(&reply_secret[..32]),
            hex(&reply.public().sealing_key),
            hex(&reply_secret[32..]),
            hex(&reply.public().signing_key),
            hex(&reply.mailbox().0),
            reply.mailbox(),
        )),
    );
    // mailbox_id = SHA-256("amparo-mailbox-v1" || Ed25519 public)[0..12] (§2).
    for k in [&focal, &reply] {
        assert_eq!(
            k.mailbox().0,
            sha256_prefix::<12>(&[b"amparo-mailbox-v1", &k.public().signing_key])
        );
    }

    // The report.
    let report = Report {
        reads: Vec::new(),
        statistics_consent: false,
        age_band: None,
        reported_elsewhere: None,
        alert: None,
        v: 1,
        violence: vec![ViolenceKind::Sexual, ViolenceKind::Extortion],
        violence_other: None,
        when: Some(IncidentDate {
            year: 2026,
            month: Some(9),
            day: None,
            approximate: true,
        }),
        place: Place {
            setting: None,
            country: Some("PE".into()),
            region: Some("PE-UCA".into()),
            detail: None,
        },
        aggressors: vec![AggressorKind::PoliceOrSecurity],
        aggressor_other: None,
        needs: vec![Need::LegalAdvice, Need::StiHivPep],
        language: Language::Es,
        text: "Me pidieron dinero para no detenerme.".into(),
        attachments: vec![],
        reply_to: reply.public(),
        referral: None,
    };
    let json = report.to_json().unwrap();
    out.insert("report-json", json_block(&json));

    // Inner header and padding.
    let inner = InnerHeader::new(&mut e, now).unwrap();
    let padded = padding::pad(&inner, &json).unwrap();
    let body_end = padding::INNER_HEADER_LEN + json.len();
    out.insert(
        "padded",
        text_block(format!(
            "inner header (26 bytes)  {}\n\
             body ({} bytes) follows, then {} zero bytes up to the {}-byte class",
            hex(&padded[..padding::INNER_HEADER_LEN]),
            json.len(),
            padded.len() - body_end,
            padded.len()
        )),
    );

    // The envelope.
    let env = Envelope::seal(&focal.public(), Purpose::Report, &inner, &json, &mut e).unwrap();
    let b = env.as_bytes();
    let header: [u8; envelope::HEADER_LEN] = b[..envelope::HEADER_LEN].try_into().unwrap();
    out.insert(
        "info",
        text_block(format!(
            "header (14 bytes)  {}\n\
             info for a report  {}",
            hex(&header),
            hex(&envelope::info(Purpose::Report, &header))
        )),
    );
    out.insert(
        "envelope",
        text_block(format!(
            "length {} = 14 (header) + 32 (enc) + 1024 (padded plaintext) + 16 (tag)\n\
             envelope id  {} ({})\n\n{}",
            b.len(),
            hex(&env.id().0),
            env.id(),
            hex_block(b)
        )),
    );
    // The example must open, and the enc must be what HPKE derives.
    let opened = env.open(&focal, &Purpose::FOR_FOCAL_POINT).unwrap();
    assert_eq!(&**opened.body, &json[..]);
    let _ = hpke::decap(b[14..46].try_into().unwrap(), focal.sealing()).unwrap();

    // A reply to the report: the office's first message on the channel.
    let office = "pe-uca-defensoria";
    let stamp = |at: u64, seq: u32| Stamp {
        at: Some(at),
        seq: Some(seq),
        from: Some(office.into()),
    };
    let reply_body = Reply {
        v: 1,
        report_id: inner.message_id,
        text: "Recibimos su reporte. Podemos acompañarla mañana.".into(),
        language: Some(Language::Es),
        stamp: stamp(now.0, 1),
    }
    .to_json()
    .unwrap();
    out.insert("reply-json", json_block(&reply_body));

    // A receipt.
    let relay = SigningKey::generate(&mut e).unwrap();
    let receipt = Receipt::sign(env.id(), now, &relay);
    let relay_key_id = KeyId::for_key(&relay.verifying_key());
    assert_eq!(
        relay_key_id.0,
        sha256_prefix::<8>(&[b"amparo-key-id-v1", relay.verifying_key().as_bytes()])
    );
    out.insert(
        "receipt",
        text_block(format!(
            "relay Ed25519 public  {} ({})\nrelay key id          {} ({})\nreceipt ({} bytes)\n{}",
            hex(relay.verifying_key().as_bytes()),
            b64::encode(relay.verifying_key().as_bytes()),
            hex(&relay_key_id.0),
            relay_key_id,
            amparo_protocol::receipt::LEN,
            hex_block(&receipt.encode())
        )),
    );
    let encoded = receipt.encode();
    relay
        .verifying_key()
        .verify(&[b"amparo-receipt-v1", &encoded[..29]], &encoded[29..], "r")
        .unwrap();

    // A directory.
    let coordinator = SigningKey::generate(&mut e).unwrap();
    let text = |es: &str, pt: &str, en: &str| LocalizedText {
        es: es.into(),
        pt: pt.into(),
        en: en.into(),
    };
    let dir = Directory {
        statistics: None,
        focal_points: vec![FocalPoint {
            reads: Vec::new(),
            id: "pe-uca-defensoria".into(),
            name: text(
                "Defensoría, Ucayali",
                "Defensoria, Ucayali",
                "Ombudsman, Ucayali",
            ),
            organization: "Defensoría del Pueblo".into(),
            regions: vec!["PE-UCA".into()],
            categories: vec![Need::LegalAdvice],
            languages: vec![Language::Es],
            keys: focal.public(),
            valid_from: 1_780_000_000,
            valid_until: 1_820_000_000,
        }],
        service_routes: vec![ServiceRoute {
            id: "pe-uca-pep".into(),
            region: "PE-UCA".into(),
            service: ServiceKind::StiHivPep,
            name: text("Centro de salud", "Posto de saúde", "Health centre"),
            description: text(
                "Pida PEP en triaje.",
                "Peça PEP na triagem.",
                "Ask for PEP at triage.",
            ),
            contact: None,
        }],
        relays: vec![RelayEntry {
            name: "central".into(),
            url: Some("https://relay.example.org".into()),
            receipt_key: relay.verifying_key().0,
        }],
    };
    let signed = dir.sign(3, &coordinator).unwrap();
    SignedDirectory::verify(signed.as_bytes(), &coordinator.verifying_key()).unwrap();
    let coordinator_key_id = KeyId::for_key(&coordinator.verifying_key());
    let sb = signed.as_bytes();
    let body_len = u32::from_be_bytes(sb[21..25].try_into().unwrap()) as usize;
    assert_eq!(&sb[..4], b"AMPD");
    assert_eq!(sb[4], 1);
    assert_eq!(&sb[5..13], &3u64.to_be_bytes());
    assert_eq!(&sb[13..21], &coordinator_key_id.0);
    assert_eq!(sb.len(), 25 + body_len + 64);
    coordinator
        .verifying_key()
        .verify(
            &[b"amparo-directory-v1", &sb[..25 + body_len]],
            &sb[25 + body_len..],
            "d",
        )
        .unwrap();
    out.insert("directory-json", json_block(&sb[25..25 + body_len]));
    out.insert(
        "directory",
        text_block(format!(
            "coordinator Ed25519 public  {} ({})\n\
             coordinator key id          {} ({})\n\
             signed directory, version 3 ({} bytes: 25 header + {} JSON + 64 signature)\n{}",
            hex(coordinator.verifying_key().as_bytes()),
            b64::encode(coordinator.verifying_key().as_bytes()),
            hex(&coordinator_key_id.0),
            coordinator_key_id,
            sb.len(),
            body_len,
            hex_block(sb)
        )),
    );

    // A bundle carrying the receipt back.
    let mut enc = BundleEncoder::new();
    enc.receipt(&receipt).unwrap();
    let bundle_bytes = enc.finish();
    assert_eq!(bundle::decode_all(&bundle_bytes).unwrap().len(), 1);
    // Recompute every check and the digest from §10's formulas.
    let frame_end = 5 + 5 + receipt_len() + 8;
    let frame = &bundle_bytes[5..frame_end];
    assert_eq!(
        &frame[5 + receipt_len()..],
        &sha256_prefix::<8>(&[b"amparo-bundle-frame", &frame[..5 + receipt_len()]])
    );
    let end = &bundle_bytes[frame_end..];
    let mut end_payload = 1u32.to_be_bytes().to_vec();
    end_payload.extend_from_slice(&sha256(&[&bundle_bytes[..frame_end]]));
    let mut end_frame = vec![0u8, 0, 0, 0, 36];
    end_frame.extend_from_slice(&end_payload);
    let end_check = sha256_prefix::<8>(&[b"amparo-bundle-frame", &end_frame]);
    end_frame.extend_from_slice(&end_check);
    assert_eq!(end, end_frame.as_slice());
    out.insert(
        "bundle",
        text_block(format!(
            "bundle with one receipt ({} bytes)\n{}\n\n\
             header       {}\n\
             frame        kind {} length {} payload (the receipt) check {}\n\
             end frame    kind {} length {} count {} digest {}\n             \
             check {}",
            bundle_bytes.len(),
            hex_block(&bundle_bytes),
            hex(&bundle_bytes[..5]),
            hex(&frame[..1]),
            hex(&frame[1..5]),
            hex(&frame[5 + receipt_len()..]),
            hex(&end[..1]),
            hex(&end[1..5]),
            hex(&end[5..9]),
            hex(&end[9..41]),
            hex(&end[41..]),
        )),
    );

    // Reject codes of §12.6, in the order the relay checks.
    out.insert("reject-codes", text_block(reject_code_table()));

    // A signed mailbox request (§12.7): the focal point reads its mailbox.
    let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md signed request");
    out.insert("request", text_block(signed_requests(&focal, &mut e)));

    // A fetch grant (§7.1) for the report's reply mailbox, valid 7 days.
    let not_after = UnixTime(now.0 + 7 * 24 * 3600);
    let grant = FetchGrant::sign(reply.signing(), not_after);
    let g = grant.as_bytes();
    assert_eq!(&g[..4], b"AMPG");
    assert_eq!(g[4], 1);
    assert_eq!(&g[5..17], &reply.mailbox().0);
    assert_eq!(&g[17..49], &reply.public().signing_key);
    assert_eq!(&g[49..57], &not_after.0.to_be_bytes());
    reply
        .signing()
        .verifying_key()
        .verify(&[b"amparo-fetch-grant-v1", &g[..57]], &g[57..], "g")
        .unwrap();
    grant.allows(&reply.mailbox(), now).unwrap();
    assert_eq!(FetchGrant::from_header(&grant.to_header()).unwrap(), grant);
    out.insert(
        "grant",
        text_block(format!(
            "not_after  {} (the example time + 7 days)\n\
             grant ({} bytes)\n{}\n\n\
             Amparo-Grant: {}",
            not_after.0,
            grant::LEN,
            hex_block(g),
            grant.to_header()
        )),
    );

    // A status update, sealed to the report's reply mailbox (§6.3).
    let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md status update");
    let status_json = StatusUpdate {
        v: 1,
        report_id: inner.message_id,
        status: CaseStatus::InProgress,
        message: Some("Una abogada la llamará esta semana.".into()),
        referred_to: None,
        stamp: stamp(now.0 + 42, 2),
    }
    .to_json()
    .unwrap();
    // Later the office refers the case: the survivor is told where it went,
    // and the report re-sealed to the other office carries the referral.
    let referred = StatusUpdate {
        v: 1,
        report_id: inner.message_id,
        status: CaseStatus::Referred,
        message: None,
        referred_to: Some("pe-lim-fiscalia".into()),
        stamp: stamp(now.0 + 3600, 3),
    };
    let referred_json = referred.to_json().unwrap();
    let mut to_itself = referred.clone();
    to_itself.referred_to = Some(office.into());
    assert_eq!(
        to_itself.to_json().unwrap_err(),
        ProtocolError::Invalid("a focal point cannot refer a case to itself")
    );
    let referral = serde_json::to_string(&Referral {
        from_focal_point: office.into(),
        note: "Caso de extorsión policial: competencia de la fiscalía.".into(),
        seq: Some(3),
    })
    .unwrap();
    // Messages sort by (at, seq): the order they were written in.
    let keys: Vec<_> = [&reply_body, &status_json, &referred_json]
        .iter()
        .map(|j| {
            let v: serde_json::Value = serde_json::from_slice(j).unwrap();
            (v["at"].as_u64().unwrap(), v["seq"].as_u64().unwrap())
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    out.insert(
        "status-json",
        format!(
            "```json\n{}\n{}\n```\n\nand in the report re-sealed to `pe-lim-fiscalia`:\n\n```json\n\"referral\":{referral}\n```",
            std::str::from_utf8(&status_json).unwrap(),
            std::str::from_utf8(&referred_json).unwrap(),
        ),
    );
    let status_inner = InnerHeader::new(&mut e, now).unwrap();
    let status_env = seal_checked(&reply, Purpose::Status, &status_inner, &status_json, &mut e);
    out.insert(
        "status-envelope",
        text_block(format!(
            "inner header (26 bytes)  {}\n{}",
            hex(&padding::pad(&status_inner, &status_json).unwrap()[..26]),
            envelope_text(&status_env, Purpose::Status, 1024)
        )),
    );

    // Many mailboxes in one request (§12.14, §12.15).
    let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md many mailboxes");
    let other = RecipientKeys::generate(&mut e).unwrap();
    out.insert(
        "mailboxes",
        text_block(many_mailboxes(&reply, &other, &status_env, &mut e)),
    );
    let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md many mailboxes within a size");
    out.insert(
        "mailboxes-within",
        text_block(fetch_within(&reply, &other, &status_env, &mut e)),
    );

    // An attachment and its chunk (§6.4).
    let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md chunk");
    out.insert("chunk", text_block(chunk_example(&focal, &mut e)));

    // Admission work (§14).
    let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md admission");
    out.insert("admission", text_block(admission_example(now, &mut e)));

    // A month's statistics (§15).
    let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md statistics");
    out.insert("statistics", text_block(statistics_example(&focal, &mut e)));

    // The statistics sum (§16).
    let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md aggregation");
    out.insert("aggregation", text_block(aggregation_example(&mut e)));

    // A check-in timer (§17).
    let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md timer");
    out.insert("timer", text_block(timer_example(&focal, &mut e)));

    // A compressed report (§5.1).
    let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md compressed");
    out.insert(
        "compressed",
        text_block(compressed_example(&focal, &reply, &mut e)),
    );
    out
}

/// A report of ~1,000 characters sealed compressed to the focal point of
/// §13: the JSON, the compressed body, the header with flag bit 1, and the
/// class it lands in, checked against §5 and §5.1.
fn compressed_example(
    focal: &RecipientKeys,
    reply: &RecipientKeys,
    e: &mut DangerousSeededEntropy,
) -> String {
    use amparo_protocol::compression::{self, CODEC_DEFLATE_D1, DICTIONARY_V1, READS_DEFLATE_D1};
    use amparo_protocol::envelope::Compression;
    let text = "El viernes en la noche estaba en la avenida con otras chicas cuando llegaron dos \
                policías en una camioneta. Nos pidieron los documentos y como yo no tengo papeles \
                me dijeron que me iban a llevar a Migraciones. Me quitaron la plata de toda la \
                noche y el celular. Uno de ellos me dijo que si no le pagaba cada semana iba a \
                volver y me iba a deportar. No fui a la comisaría porque tengo miedo de que me \
                detengan. Una compañera me dijo que ustedes ayudan sin pedir papeles. Necesito \
                un abogado y saber si me pueden deportar. También necesito una prueba de VIH \
                porque un cliente no quiso usar condón la semana pasada. Por favor escríbanme, \
                no me llamen, el celular lo comparto con mi compañera de cuarto.";
    let report = Report {
        reads: vec![READS_DEFLATE_D1.into()],
        statistics_consent: false,
        age_band: None,
        reported_elsewhere: None,
        alert: None,
        v: 1,
        violence: vec![ViolenceKind::Extortion, ViolenceKind::Threats],
        violence_other: None,
        when: None,
        place: Place {
            setting: Some(PlaceSetting::Urban),
            country: Some("PE".into()),
            region: Some("PE-UCA".into()),
            detail: None,
        },
        aggressors: vec![AggressorKind::PoliceOrSecurity],
        aggressor_other: None,
        needs: vec![Need::LegalAdvice, Need::StiHivPep, Need::MigrationStatus],
        language: Language::Es,
        text: text.into(),
        attachments: vec![],
        reply_to: reply.public(),
        referral: None,
    };
    let json = report.to_json().unwrap();
    let plain_class = padding::class_for(json.len()).unwrap();
    let body = compression::compress(&json).unwrap();
    // §5.1: codec byte, then a stream that decodes, with D1, to the JSON.
    assert_eq!(body[0], CODEC_DEFLATE_D1);
    assert_eq!(&compression::decompress(&body).unwrap()[..], &json[..]);
    assert_eq!(DICTIONARY_V1.len(), 5442);
    let inner = InnerHeader::new(e, NOW).unwrap();
    let env = Envelope::seal_with(
        &focal.public(),
        Purpose::Report,
        &inner,
        &json,
        Compression::IfSmaller,
        e,
    )
    .unwrap();
    // §5: the padding rule applies to the compressed body (with the 1536 class).
    let class = padding::class_for_compressed(body.len()).unwrap();
    assert_eq!(env.size_class(), class);
    assert!(class < plain_class);
    let flagged = InnerHeader {
        flags: padding::FLAG_COMPRESSED,
        ..inner
    };
    let padded = padding::pad(&flagged, &body).unwrap();
    let opened = env.open(focal, &[Purpose::Report]).unwrap();
    assert!(opened.header.is_compressed());
    assert_eq!(&opened.body[..], &json[..]);
    assert_eq!(Report::from_json(&opened.body).unwrap(), report);
    format!(
        "report JSON ({} bytes; sealed plain it pads to the {plain_class} class, an envelope of {} bytes)\n\
         {}\n\n\
         compressed body ({} bytes): codec 01, then the raw DEFLATE stream made with D1\n{}\n\n\
         inner header (26 bytes)  {}  (flags 02: compressed)\n\
         body ({} bytes) follows, then {} zero bytes up to the {class}-byte class\n\
         envelope of {} bytes; opened and decompressed, it gives back the JSON above",
        json.len(),
        plain_class + envelope::OVERHEAD,
        String::from_utf8(json.clone()).unwrap(),
        body.len(),
        hex_block(&body),
        hex(&padded[..padding::INNER_HEADER_LEN]),
        body.len(),
        class - padding::INNER_HEADER_LEN - body.len(),
        env.as_bytes().len(),
    )
}

/// A hold of an alert for the focal point of §13, a check-in and a cancel,
/// every signature checked against the document's formulas.
fn timer_example(focal: &RecipientKeys, e: &mut DangerousSeededEntropy) -> String {
    use amparo_protocol::timer::{self, CheckIn, Hold, TimerId, TimerState};
    let key = timer::new_timer_key(e).unwrap();
    let public = key.verifying_key();
    let id = TimerId::for_key(&public);
    assert_eq!(
        id.0,
        sha256_prefix::<12>(&[b"amparo-timer-v1", public.as_bytes()])
    );
    // Released six hours after the relay's current hour.
    let now_hour = NOW.hours();
    let release = now_hour + 6;
    let inner = InnerHeader::new(e, NOW).unwrap();
    let alert = br#"{"text":"Voy a encontrarme con un cliente en el hotel Sol, hab. 12."}"#;
    let env = seal_checked(focal, Purpose::Report, &inner, alert, e);
    let hold = Hold::sign(&key, release, env.clone());
    let bytes = hold.encode();
    let mut signed = b"amparo-hold-v1".to_vec();
    signed.extend_from_slice(public.as_bytes());
    signed.extend_from_slice(&release.to_be_bytes());
    signed.extend_from_slice(&sha256(&[env.as_bytes()]));
    public.verify(&[&signed], &bytes[37..101], "hold").unwrap();
    assert_eq!(Hold::decode(&bytes).unwrap(), hold);
    hold.check_release(now_hour).unwrap();
    let check_in = CheckIn::postpone(&key, 1, release + 3);
    let c = check_in.encode();
    public
        .verify(&[b"amparo-check-in-v1", &c[..46]], &c[46..], "check-in")
        .unwrap();
    let state = TimerState {
        release_hour: release,
        seq: 0,
    };
    let moved = timer::apply(state, &check_in, now_hour + 1).unwrap();
    let cancel = CheckIn::cancel(&key, 2).encode();
    format!(
        "timer Ed25519 public  {}\n\
         timer id              {} ({})\n\
         relay's current hour  {now_hour}; release hour {release}\n\
         hold ({} bytes: 101 + the envelope's {}), first 101 bytes\n{}\n\
         check-in to hour {} (seq 1), 110 bytes\n{}\n\
         the relay then holds {:?}\n\
         cancel (seq 2), 110 bytes\n{}",
        hex(public.as_bytes()),
        hex(&id.0),
        id,
        bytes.len(),
        env.as_bytes().len(),
        hex_block(&bytes[..101]),
        release + 3,
        hex_block(&c),
        moved,
        hex_block(&cancel),
    )
}

/// Three offices sum October (§16): keys, shares, masked months and the
/// unmasked sum, the first values recomputed from the document's formulas.
fn aggregation_example(e: &mut DangerousSeededEntropy) -> String {
    use amparo_protocol::aggregation::shamir::{self, Share};
    use amparo_protocol::aggregation::*;
    use amparo_protocol::primitives::{hkdf, x25519};
    use amparo_protocol::statistics::Month;
    let month = Month::parse("2026-10").unwrap();
    let ids = ["br-roraima", "pe-lima", "pe-tumbes"];
    let layout = Layout {
        regions: vec!["PE-LIM".into()],
    };
    let mut offices = Vec::new();
    for id in ids {
        let keys = RecipientKeys::generate(e).unwrap();
        let holders: Vec<String> = ids
            .iter()
            .filter(|h| **h != id)
            .map(|h| h.to_string())
            .collect();
        let (a, b, key) = month_key(id, month, &holders, keys.signing(), e).unwrap();
        key.verify(id, &keys.signing().verifying_key()).unwrap();
        let t = threshold_for(holders.len());
        let sa = shamir::split(&a, t, 2, e).unwrap();
        let sb = shamir::split(&b, t, 2, e).unwrap();
        offices.push((id, keys, holders, a, b, key, sa, sb));
    }
    // Counts: Lima 2 rapes in the city by clients, adults, delay unknown;
    // Tumbes and Roraima 1 each in other places, not said where.
    let mut counts = vec![vec![0u32; layout.len()]; 3];
    let put = |v: &mut Vec<u32>, region: Option<&str>, setting, n: u32| {
        let at = layout.row_start(region, setting);
        // total, rape (1), client (7), age_18_plus (1+6+8+3), unknown delay (last).
        for off in [0, 1, 7, 17, 24] {
            v[at + off] += n;
        }
    };
    put(&mut counts[1], Some("PE-LIM"), Some(PlaceSetting::Urban), 2);
    put(&mut counts[2], None, None, 1);
    put(&mut counts[0], None, None, 1);
    let cohort: Vec<(String, x25519::PublicKey)> = offices
        .iter()
        .map(|o| (o.0.to_string(), x25519::PublicKey(o.5.mask_key)))
        .collect();
    let masked: Vec<Vec<u32>> = offices
        .iter()
        .zip(&counts)
        .map(|(o, x)| mask(x, month, o.0, &o.4, &o.3, &cohort).unwrap())
        .collect();
    // Recomputed: Expand(seed, label, month)[0] and the pair seed.
    let expand0 = |seed: &[u8], label: &[u8]| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, seed);
        let tag = ring::hmac::sign(&key, &[label, b"2026-10", &0u32.to_be_bytes()].concat());
        u32::from_le_bytes(tag.as_ref()[..4].try_into().unwrap())
    };
    let mask_secret = |a: &shamir::Secret| {
        let prk = hkdf::extract(b"", &[a.as_bytes()]);
        let k = hkdf::expand_array::<32>(&prk[..], &[b"amparo-aggregation-mask-key"]).unwrap();
        x25519::SecretKey::from_bytes(&k)
    };
    let pair = |i: usize, j: usize| {
        let mine = mask_secret(&offices[i].3);
        let dh = mine
            .diffie_hellman(&x25519::PublicKey(offices[j].5.mask_key))
            .unwrap();
        let prk = hkdf::extract(b"amparo-aggregation-pair", &[&dh[..]]);
        let (lo, hi) = if ids[i] < ids[j] {
            (ids[i], ids[j])
        } else {
            (ids[j], ids[i])
        };
        hkdf::expand_array::<32>(
            &prk[..],
            &[b"2026-10", b"\0", lo.as_bytes(), b"\0", hi.as_bytes()],
        )
        .unwrap()
    };
    for (i, o) in offices.iter().enumerate() {
        assert_eq!(
            mask_secret(&o.3).public_key().as_bytes(),
            &o.5.mask_key,
            "the mask key"
        );
        assert_eq!(
            commitment(&o.4),
            sha256(&[b"amparo-aggregation-commit-v1", o.4.as_bytes()])
        );
        let mut want = counts[i][0].wrapping_add(expand0(o.4.as_bytes(), b"self"));
        for j in 0..3 {
            if j != i {
                let m = expand0(&pair(i, j)[..], b"pair");
                want = if ids[i] < ids[j] {
                    want.wrapping_add(m)
                } else {
                    want.wrapping_sub(m)
                };
            }
        }
        assert_eq!(masked[i][0], want, "{}'s first masked value", ids[i]);
    }
    let mut sum = vec![0u32; layout.len()];
    for y in &masked {
        for (s, v) in sum.iter_mut().zip(y) {
            *s = s.wrapping_add(*v);
        }
    }
    // Every office sent: each holder reveals self-secret shares; any two
    // (the threshold of two holders) rebuild.
    let rebuilt = Rebuilt {
        survivors: offices
            .iter()
            .map(|o| {
                let shares: Vec<Share> = o.7.to_vec();
                let b = shamir::combine(&shares).unwrap();
                assert_eq!(commitment(&b), o.5.commitment);
                (o.0, x25519::PublicKey(o.5.mask_key), b)
            })
            .collect(),
        dropped: vec![],
    };
    let plain = unmask(&sum, month, &rebuilt).unwrap();
    let expected: Vec<u32> = (0..layout.len())
        .map(|k| counts.iter().map(|c| c[k]).sum())
        .collect();
    assert_eq!(plain, expected);
    let lima = &offices[1];
    let keys_message = Message::Keys(Keys {
        office: lima.0.into(),
        holders: lima.2.clone(),
        months: vec![lima.5.clone()],
    });
    let keys_body = SignedMessage::sign(&keys_message, lima.1.signing())
        .unwrap()
        .to_json()
        .unwrap();
    let shares_message = Message::Shares(Shares {
        office: lima.0.into(),
        holder: lima.2[0].clone(),
        months: vec![MonthShares {
            month,
            x: lima.6[0].x,
            mask: lima.6[0].y,
            own: lima.7[0].y,
        }],
    });
    let shares_json = serde_json::to_string(&shares_message).unwrap();
    let masked_message = Message::Masked(Masked {
        office: lima.0.into(),
        month,
        cohort: digest(&ids.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        vector: masked[1].clone(),
    });
    let masked_body = SignedMessage::sign(&masked_message, lima.1.signing())
        .unwrap()
        .to_json()
        .unwrap();
    assert_eq!(
        SignedMessage::from_json(&masked_body)
            .unwrap()
            .verify(&lima.1.signing().verifying_key())
            .unwrap(),
        masked_message
    );
    let first = |v: &[u32]| {
        v[..6]
            .iter()
            .map(|x| format!("{x:>10}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let lima_row = layout.row_start(Some("PE-LIM"), Some(PlaceSetting::Urban));
    let mut lines = vec![format!(
        "layout {{\"regions\":[\"PE-LIM\"]}}: vector of {} u32s; PE-LIM urban row at {lima_row}",
        layout.len()
    )];
    for (i, o) in offices.iter().enumerate() {
        lines.push(format!(
            "{:<10} mask_key {}  commitment {}",
            o.0,
            hex(&o.5.mask_key),
            hex(&o.5.commitment)
        ));
        lines.push(format!(
            "           counts[{lima_row}..+6] {}\n           masked[{lima_row}..+6] {}",
            first(&counts[i][lima_row..]),
            first(&masked[i][lima_row..])
        ));
    }
    lines.push(format!(
        "sum of masked[{lima_row}..+6]   {}",
        first(&sum[lima_row..])
    ));
    lines.push(format!(
        "unmasked sum[{lima_row}..+6]    {}",
        first(&plain[lima_row..])
    ));
    lines.push(format!(
        "pe-lima's keys message, signed ({} bytes)\n{}",
        keys_body.len(),
        std::str::from_utf8(&keys_body).unwrap()
    ));
    lines.push(format!(
        "pe-lima's shares for {}\n{}",
        lima.2[0], shares_json
    ));
    lines.push(format!(
        "pe-lima's masked month, signed ({} bytes)\n{}",
        masked_body.len(),
        std::str::from_utf8(&masked_body).unwrap()
    ));
    lines.join("\n")
}

/// A focal point's month table, signed and sealed to the coordinator's
/// statistics key (§15); the signature is checked against the formula.
fn statistics_example(focal: &RecipientKeys, e: &mut DangerousSeededEntropy) -> String {
    use amparo_protocol::statistics::{
        Breakdown, Dimension, Month, MonthTable, RowKey, SignedMonthTable,
    };
    let coordinator = RecipientKeys::generate(e).unwrap();
    let some = |v: &[u64]| v.iter().map(|x| Some(*x)).collect::<Vec<_>>();
    // Lima, urban: 14 incidents; "other places": 6. By age band, Lima's
    // 2 adolescents and the other places' 1 are suppressed, and so are
    // the cells and totals that would give them away.
    let table = MonthTable {
        v: 1,
        from: "pe-lima-defensoria".into(),
        month: Month::parse("2026-10").unwrap(),
        threshold: 5,
        rows: vec![
            RowKey::default(),
            RowKey {
                region: Some("PE-LIM".into()),
                setting: Some(PlaceSetting::Urban),
            },
        ],
        row_totals: vec![6, 14],
        total: Some(20),
        breakdowns: vec![
            Breakdown {
                by: Dimension::GbvType,
                cells: some(&[0, 0, 6, 0, 0, 0, 6, 0, 8, 0, 0, 0]),
                column_totals: some(&[6, 0, 14, 0, 0, 0]),
            },
            Breakdown {
                by: Dimension::AgeBand,
                cells: vec![Some(0), None, None, Some(0), Some(0), None, None, Some(0)],
                column_totals: vec![Some(0), None, None, Some(0)],
            },
        ],
    };
    table.validate().unwrap();
    let table_json = serde_json::to_vec(&table).unwrap();
    let signing = focal.signing();
    let signed = SignedMonthTable::sign(&table, signing).unwrap();
    let body = signed.to_json().unwrap();
    // The document's formula: Ed25519 over the context and the table JSON.
    let wire: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let signature = b64::decode_array::<64>(wire["signature"].as_str().unwrap(), "sig").unwrap();
    let mut message = b"amparo-statistics-v1".to_vec();
    message.extend_from_slice(&table_json);
    signing
        .verifying_key()
        .verify(&[&message], &signature, "example")
        .unwrap();
    assert_eq!(
        b64::decode_vec(wire["table"].as_str().unwrap(), 1 << 20, "t").unwrap(),
        table_json
    );
    let back = SignedMonthTable::from_json(&body)
        .unwrap()
        .verify(&signing.verifying_key())
        .unwrap();
    assert_eq!(back, table);
    let inner = InnerHeader::new(e, NOW).unwrap();
    let env = seal_checked(&coordinator, Purpose::Statistics, &inner, &body, e);
    format!(
        "coordinator statistics X25519 public  {}\n\
         coordinator statistics Ed25519 public {}\n\
         coordinator statistics mailbox id     {}\n\
         month table JSON ({} bytes)\n{}\n\
         envelope body: signed table JSON ({} bytes)\n{}\n\
         inner header (26 bytes)  {}\n{}",
        hex(coordinator.public().sealing_key.as_slice()),
        hex(coordinator.public().signing_key.as_slice()),
        coordinator.mailbox(),
        table_json.len(),
        std::str::from_utf8(&table_json).unwrap(),
        body.len(),
        std::str::from_utf8(&body).unwrap(),
        hex(&padding::pad(&inner, &body).unwrap()[..26]),
        envelope_text(&env, Purpose::Statistics, 1024),
    )
}

/// A relay's challenge and a proof for two envelopes (§14), each value
/// recomputed from the document's formulas.
fn admission_example(now: UnixTime, e: &mut DangerousSeededEntropy) -> String {
    use amparo_protocol::admission::{self, Challenge};
    use amparo_protocol::envelope::EnvelopeId;
    let relay = SigningKey::generate(e).unwrap();
    let epoch = u32::try_from(now.0 / 600).unwrap();
    let challenge = Challenge::sign(&relay, epoch, 4, 540);
    let encoded = challenge.encode();
    // The seed: SHA-256 of the context and the key's signature of it and
    // the epoch.
    let signed = relay.sign(&[b"amparo-admission-seed-v1", &epoch.to_be_bytes()]);
    assert_eq!(
        challenge.seed,
        sha256(&[b"amparo-admission-seed-v1", &signed])
    );
    relay
        .verifying_key()
        .verify(
            &[b"amparo-admission-v1", &encoded[..53]],
            &encoded[53..],
            "c",
        )
        .unwrap();
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    amparo_protocol::Entropy::fill(e, &mut a).unwrap();
    amparo_protocol::Entropy::fill(e, &mut b).unwrap();
    let ids = [EnvelopeId(a), EnvelopeId(b)];
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let digest = sha256(&[b"amparo-admission-ids", &lo, &hi]);
    assert_eq!(digest, admission::ids_digest(&ids));
    let effort = challenge.effort_for(ids.len());
    let proof = admission::solve(&challenge, &ids, effort, e, &mut |_| true)
        .unwrap()
        .proof
        .unwrap();
    admission::verify(&proof, &challenge.seed, &ids, effort).unwrap();
    let mut puzzle = b"amparo-admission-v1".to_vec();
    puzzle.extend_from_slice(&challenge.seed);
    puzzle.extend_from_slice(&digest);
    puzzle.extend_from_slice(&proof.nonce);
    puzzle.extend_from_slice(&effort.to_be_bytes());
    let h = sha256(&[&puzzle, &proof.solution]);
    let r = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    assert!(u64::from(r) * u64::from(effort) <= u64::from(u32::MAX));
    let p = proof.encode();
    format!(
        "relay Ed25519 public  {}\nepoch {epoch} (the example time / 600), effort 4 per envelope, good for 540 s\n\
         seed  {}\nchallenge ({} bytes)\n{}\n\n\
         envelope ids  {}\n              {}\nids digest    {}\n\
         effort claimed {effort} (2 envelopes × 4)\n\
         puzzle string ({} bytes)\n{}\n\
         solution  {}\nr = {r:#010x}; r × {effort} = {} ≤ 4294967295\n\
         proof ({} bytes)\n{}\nAmparo-Admission: {}",
        hex(relay.verifying_key().as_bytes()),
        hex(&challenge.seed),
        encoded.len(),
        hex_block(&encoded),
        hex(&a),
        hex(&b),
        hex(&digest),
        puzzle.len(),
        hex_block(&puzzle),
        hex(&proof.solution),
        u64::from(r) * u64::from(effort),
        p.len(),
        hex_block(&p),
        b64::encode(&p),
    )
}

fn receipt_len() -> usize {
    amparo_protocol::receipt::LEN
}

/// What the relay answers for frames of a batch, in the order it checks.
fn reject_code_table() -> String {
    let valid = {
        let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md reject codes");
        let k = RecipientKeys::generate(&mut e).unwrap();
        let h = InnerHeader::new(&mut e, NOW).unwrap();
        Envelope::seal(&k.public(), Purpose::Report, &h, b"x", &mut e)
            .unwrap()
            .into_bytes()
    };
    let with = |len: usize, version: u8, suite: u8| {
        let mut v = valid.clone();
        v.resize(len, 0);
        if let Some(b) = v.get_mut(0) {
            *b = version;
        }
        if let Some(b) = v.get_mut(1) {
            *b = suite;
        }
        v
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("0 bytes", vec![]),
        ("1 byte, version 02", with(1, 2, 0)),
        ("1 byte, version 01", with(1, 1, 0)),
        ("2 bytes, version 02, suite 07", with(2, 2, 7)),
        ("2 bytes, version 01, suite 07", with(2, 1, 7)),
        ("2 bytes, version 01, suite 01", with(2, 1, 1)),
        ("45 bytes, version 02, suite 01", with(45, 2, 1)),
        ("45 bytes, version 01, suite 07", with(45, 1, 7)),
        ("45 bytes, version 01, suite 01", with(45, 1, 1)),
        ("46 bytes, version 01, suite 01", with(46, 1, 1)),
        ("1085 bytes, version 01, suite 01", with(1085, 1, 1)),
        ("1086 bytes, version 02, suite 07", with(1086, 2, 7)),
        ("1086 bytes, version 01, suite 07", with(1086, 1, 7)),
        ("1086 bytes, version 01, suite 01", with(1086, 1, 1)),
        ("1087 bytes, version 01, suite 01", with(1087, 1, 1)),
        ("1598 bytes, version 01, suite 01", with(1598, 1, 1)),
        ("4158 bytes, version 01, suite 01", with(4158, 1, 1)),
        ("65598 bytes, version 01, suite 01", with(65598, 1, 1)),
    ];
    let mut lines = vec![format!("{:<36}{}", "frame", "answer")];
    for (what, bytes) in cases {
        let answer = match Envelope::decode(&bytes) {
            Ok(_) => "accepted: 0x01 || receipt".to_string(),
            Err(err) => {
                let code = RejectCode::for_error(&err);
                format!("0x00 || {:02x} ({})", code as u8, code.name())
            }
        };
        lines.push(format!("{what:<36}{answer}"));
    }
    lines.join("\n")
}

/// A signed GET of a page and a signed acknowledgement (§12.7, §12.9).
fn signed_requests(focal: &RecipientKeys, e: &mut DangerousSeededEntropy) -> String {
    let key = focal.signing();
    let mailbox = focal.mailbox();
    let target = format!("/v1/mailboxes/{mailbox}/envelopes?after=0&limit=100");
    let get = RequestProof::sign(key, "GET", &target, b"", NOW, e).unwrap();
    get.verify(&mailbox, "GET", &target, b"", NOW).unwrap();
    // The signed message, exactly as §12.7 writes it.
    let message = |method: &str, target: &str, proof: &RequestProof, body: &[u8]| {
        let mut m = b"amparo-request-v1\0".to_vec();
        m.extend_from_slice(method.as_bytes());
        m.push(0);
        m.extend_from_slice(target.as_bytes());
        m.push(0);
        m.extend_from_slice(&proof.timestamp.to_be_bytes());
        m.extend_from_slice(&proof.nonce);
        m.extend_from_slice(&sha256(&[body]));
        m
    };
    let get_message = message("GET", &target, &get, b"");
    key.verifying_key()
        .verify(&[&get_message], &get.signature, "request")
        .unwrap();
    let header = get.to_header();
    let raw = b64::decode_array::<120>(&header, "header").unwrap();
    assert_eq!(&raw[..32], key.verifying_key().as_bytes());
    assert_eq!(&raw[32..40], &NOW.0.to_be_bytes());
    assert_eq!(&raw[40..56], &get.nonce);
    assert_eq!(&raw[56..], &get.signature);
    assert_eq!(header.len(), 160);
    // replay id = SHA-256("amparo-request-replay-v1" || key || nonce)[0..16].
    let replay = sha256_prefix::<16>(&[
        b"amparo-request-replay-v1",
        key.verifying_key().as_bytes(),
        &get.nonce,
    ]);
    assert_eq!(get.replay_id(), replay);

    let ack_target = format!("/v1/mailboxes/{mailbox}/ack");
    let ack_body = br#"{"ids":["BMfEQV2eHSN3jmyLmmgyDA"]}"#;
    let ack = RequestProof::sign(key, "POST", &ack_target, ack_body, NOW, e).unwrap();
    ack.verify(&mailbox, "POST", &ack_target, ack_body, NOW)
        .unwrap();
    key.verifying_key()
        .verify(
            &[&message("POST", &ack_target, &ack, ack_body)],
            &ack.signature,
            "request",
        )
        .unwrap();
    format!(
        "GET {target}\n\
         timestamp  {} ({})\n\
         nonce      {}\n\
         signed message ({} bytes)\n{}\n\
         signature  {}\n\
         replay id  {}\n\n\
         Amparo-Signature: {header}\n\n\
         POST {ack_target}\n\
         body       {}\n\
         SHA-256    {}\n\
         nonce      {}\n\n\
         Amparo-Signature: {}",
        NOW.0,
        hex(&NOW.0.to_be_bytes()),
        hex(&get.nonce),
        get_message.len(),
        hex_block(&get_message),
        hex(&get.signature),
        hex(&replay),
        std::str::from_utf8(ack_body).unwrap(),
        hex(&sha256(&[ack_body])),
        hex(&ack.nonce),
        ack.to_header()
    )
}

/// A many-mailbox fetch, its answer, and a many-mailbox acknowledgement.
fn many_mailboxes(
    reply: &RecipientKeys,
    other: &RecipientKeys,
    waiting: &Envelope,
    e: &mut DangerousSeededEntropy,
) -> String {
    // The survivor's phone reads the reply mailbox with its key; with a
    // grant, another person's reply mailbox (as a facilitator would).
    let other_grant = FetchGrant::sign(other.signing(), UnixTime(NOW.0 + 7 * 24 * 3600));
    let fetch = mailboxes::sign_fetch(
        &[
            (FetchAuth::Key(reply.signing()), 0),
            (FetchAuth::Grant(&other_grant), 41),
        ],
        100,
        NOW,
        e,
    )
    .unwrap();
    let checked = mailboxes::verify_fetch(&fetch, NOW).unwrap();
    assert_eq!(checked.entries.len(), 2);
    assert!(checked.entries.iter().all(|x| x.allowed));
    // Layout and signature as §12.14 writes them.
    let signed_len = fetch.len() - 64;
    assert_eq!(signed_len, 26 + 2 + 2 + (1 + 32 + 8) + (1 + 121 + 8));
    assert_eq!(&fetch[..2], &[1, 1]);
    assert_eq!(&fetch[2..10], &NOW.0.to_be_bytes());
    assert_eq!(&fetch[26..30], &[0, 100, 0, 2]);
    let digest = sha256(&[&fetch[..signed_len]]);
    reply
        .signing()
        .verifying_key()
        .verify(
            &[b"amparo-mailboxes-v1", &[0], &digest],
            &fetch[signed_len..],
            "fetch",
        )
        .unwrap();
    let replay = sha256_prefix::<16>(&[b"amparo-mailboxes-replay-v1", &digest]);
    assert_eq!(checked.replay_id, replay);

    // The answer: the reply mailbox holds the status update at cursor 7,
    // the granted one nothing.
    let answer = mailboxes::encode_fetch_answer([
        FetchResult::Page {
            items: vec![(7u64, waiting.as_bytes())],
            more: false,
        },
        FetchResult::Page {
            items: vec![],
            more: false,
        },
    ]);
    let decoded = mailboxes::decode_fetch_answer(&answer, 2).unwrap();
    assert_eq!(
        decoded[0],
        FetchResult::Page {
            items: vec![(7, waiting.clone())],
            more: false
        }
    );
    let env_len = waiting.as_bytes().len();
    let head = 2 + 1 + 1 + 2 + 8 + 4;
    assert_eq!(&answer[head..head + env_len], waiting.as_bytes());
    let refused = mailboxes::encode_fetch_answer([
        FetchResult::<Vec<u8>>::Page {
            items: vec![],
            more: true,
        },
        FetchResult::Refused,
    ]);

    // Acknowledging the status update.
    let ack = mailboxes::sign_ack(&[(reply.signing(), vec![waiting.id()])], NOW, e).unwrap();
    let checked_ack = mailboxes::verify_ack(&ack, NOW).unwrap();
    assert_eq!(checked_ack.entries[0].ids, vec![waiting.id()]);
    let ack_signed = ack.len() - 64;
    assert_eq!(ack_signed, 26 + 2 + 32 + 2 + 16);
    let ack_digest = sha256(&[&ack[..ack_signed]]);
    reply
        .signing()
        .verifying_key()
        .verify(
            &[b"amparo-mailboxes-v1", &[0], &ack_digest],
            &ack[ack_signed..],
            "ack",
        )
        .unwrap();
    assert_eq!(
        checked_ack.replay_id,
        sha256_prefix::<16>(&[b"amparo-mailboxes-replay-v1", &ack_digest])
    );

    format!(
        "other reply mailbox         {} ({}), read with a grant, after cursor 41\n\n\
         fetch request ({} bytes)\n{}\n\
         digest      {}\n\
         replay id   {}\n\n\
         answer ({} bytes): the reply mailbox holds the status update above at cursor 7\n\
         {} || the {env_len} bytes of the envelope || {}\n\n\
         answer had the first page been cut short and the grant expired\n{}\n\n\
         acknowledgement of the status update ({} bytes)\n{}",
        hex(&other.mailbox().0),
        other.mailbox(),
        fetch.len(),
        hex_block(&fetch),
        hex(&digest),
        hex(&replay),
        answer.len(),
        hex(&answer[..head]),
        hex(&answer[head + env_len..]),
        hex(&refused),
        ack.len(),
        hex_block(&ack),
    )
}

/// A many-mailbox fetch that names the most bytes of its answer (op 3),
/// and an answer cut at that size by §12.14's rule.
fn fetch_within(
    reply: &RecipientKeys,
    other: &RecipientKeys,
    waiting: &Envelope,
    e: &mut DangerousSeededEntropy,
) -> String {
    let other_grant = FetchGrant::sign(other.signing(), UnixTime(NOW.0 + 7 * 24 * 3600));
    // The least a request of two entries may name: their framing and one
    // envelope of the largest size.
    let max_bytes: u32 = 2 + 4 * 2 + 12 + 65_598;
    assert_eq!(max_bytes as usize, mailboxes::min_answer_len(2));
    let entries = [
        (FetchAuth::Key(reply.signing()), 0),
        (FetchAuth::Grant(&other_grant), 41),
    ];
    let fetch = mailboxes::sign_fetch_within(&entries, 9, max_bytes, NOW, e).unwrap();
    // One byte less is refused, by the signer and by the relay.
    assert!(mailboxes::sign_fetch_within(&entries, 9, max_bytes - 1, NOW, e).is_err());
    let checked = mailboxes::verify_fetch(&fetch, NOW).unwrap();
    assert_eq!(checked.max_bytes, Some(max_bytes));
    assert_eq!((checked.limit, checked.entries.len()), (9, 2));
    // Layout and signature as §12.14 writes them: op 3, the size after the
    // nonce, then as op 1.
    let signed_len = fetch.len() - 64;
    assert_eq!(signed_len, 26 + 4 + 2 + 2 + (1 + 32 + 8) + (1 + 121 + 8));
    assert_eq!(&fetch[..2], &[1, 3]);
    assert_eq!(&fetch[2..10], &NOW.0.to_be_bytes());
    assert_eq!(&fetch[26..30], &max_bytes.to_be_bytes());
    assert_eq!(&fetch[30..34], &[0, 9, 0, 2]);
    let digest = sha256(&[&fetch[..signed_len]]);
    reply
        .signing()
        .verifying_key()
        .verify(
            &[b"amparo-mailboxes-v1", &[0], &digest],
            &fetch[signed_len..],
            "fetch",
        )
        .unwrap();
    let replay = sha256_prefix::<16>(&[b"amparo-mailboxes-replay-v1", &digest]);
    assert_eq!(checked.replay_id, replay);
    // The same request as op 1 (the size taken out) does not verify: the
    // size cannot be stripped on the way.
    let mut stripped = fetch.clone();
    stripped[1] = 1;
    stripped.drain(26..30);
    assert!(mailboxes::verify_fetch(&stripped, NOW).is_err());

    // The reply mailbox holds the status update at cursor 7 and an
    // envelope of the largest size at cursor 8. By §12.14's rule: the
    // framing of both entries (2 + 4 + 4) and the status update fit, the
    // second envelope would not, so the answer stops there and both pages
    // say "more" (the granted mailbox was not reached).
    let env_len = waiting.as_bytes().len();
    let framing = 2 + 4 * 2;
    let with_first = framing + 12 + env_len;
    let with_second = with_first + 12 + 65_598;
    assert!(with_first <= max_bytes as usize && with_second > max_bytes as usize);
    let answer = mailboxes::encode_fetch_answer([
        FetchResult::Page {
            items: vec![(7u64, waiting.as_bytes())],
            more: true,
        },
        FetchResult::Page {
            items: vec![],
            more: true,
        },
    ]);
    assert_eq!(answer.len(), with_first);
    let decoded = mailboxes::decode_fetch_answer(&answer, 2).unwrap();
    assert_eq!(
        decoded[0],
        FetchResult::Page {
            items: vec![(7, waiting.clone())],
            more: true
        }
    );
    let head = 2 + 1 + 1 + 2 + 8 + 4;
    assert_eq!(&answer[head..head + env_len], waiting.as_bytes());

    format!(
        "fetch request naming its answer's size ({} bytes): max_bytes {max_bytes} ({}), limit 9\n{}\n\
         digest      {}\n\
         replay id   {}\n\n\
         answer ({} bytes) had the reply mailbox held the status update at cursor 7 and an\n\
         envelope of 65598 bytes at cursor 8: {framing} + (12 + {env_len}) = {with_first} fit, \
         {with_first} + (12 + 65598) = {with_second} would not\n\
         {} || the {env_len} bytes of the envelope || {}",
        fetch.len(),
        hex(&max_bytes.to_be_bytes()),
        hex_block(&fetch),
        hex(&digest),
        hex(&replay),
        answer.len(),
        hex(&answer[..head]),
        hex(&answer[head + env_len..]),
    )
}

/// An attachment, its reference in the report and its one chunk envelope.
fn chunk_example(focal: &RecipientKeys, e: &mut DangerousSeededEntropy) -> String {
    let data = b"%PDF-1.4\n% a medical certificate (a stand-in)\n";
    let mut id = [0u8; 16];
    amparo_protocol::Entropy::fill(e, &mut id).unwrap();
    let pieces = split_attachment(id, data).unwrap();
    assert_eq!(pieces.len(), 1);
    let attachment = AttachmentRef {
        id,
        kind: AttachmentKind::Document,
        mime: "application/pdf".into(),
        size: data.len() as u64,
        sha256: sha256(&[data]),
        chunks: 1,
    };
    let reference = serde_json::to_string(&attachment).unwrap();
    let body = &pieces[0];
    assert_eq!(&body[..16], &id);
    assert_eq!(&body[16..24], &[0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(&body[24..], data);
    let inner = InnerHeader::new(e, NOW).unwrap();
    let env = seal_checked(focal, Purpose::Chunk, &inner, body, e);

    // How a larger file is cut: every piece but the last fills 65486 bytes.
    let sizes = |size: usize| {
        let pieces = split_attachment([0; 16], &vec![0xA5; size]).unwrap();
        let data: Vec<String> = pieces.iter().map(|p| (p.len() - 24).to_string()).collect();
        let envelopes: Vec<String> = pieces
            .iter()
            .map(|p| (padding::class_for(p.len()).unwrap() + envelope::OVERHEAD).to_string())
            .collect();
        format!(
            "{size} bytes: {} chunk(s) of {} data bytes; envelopes of {} bytes",
            pieces.len(),
            data.join(", "),
            envelopes.join(", ")
        )
    };
    format!(
        "attachment ({} bytes)  {:?}\n\
         AttachmentRef in the report's \"attachments\"\n{}\n\
         chunk body ({} bytes)\n{}\n\
         inner header (26 bytes)  {}\n{}\n\n\
         {}\n{}\n{}",
        data.len(),
        std::str::from_utf8(data).unwrap(),
        reference,
        body.len(),
        hex_block(body),
        hex(&padding::pad(&inner, body).unwrap()[..26]),
        envelope_text(&env, Purpose::Chunk, 1024),
        sizes(0),
        sizes(65_487),
        sizes(150_000),
    )
}

#[test]
fn protocol_md_examples_match_the_code() {
    let path = doc_path();
    let doc = read_doc();
    let bless = std::env::var_os("AMPARO_BLESS").is_some();
    let mut updated = doc.clone();
    let mut stale = Vec::new();
    let examples = examples();
    for (name, body) in &examples {
        let open = format!("<!-- generated:{name} -->\n");
        let close = format!("<!-- /generated:{name} -->");
        let body = format!("{body}\n");
        let start = updated
            .find(&open)
            .unwrap_or_else(|| panic!("PROTOCOL.md has no block {open:?}"))
            + open.len();
        let end = start
            + updated[start..]
                .find(&close)
                .unwrap_or_else(|| panic!("PROTOCOL.md block {name} is not closed"));
        if updated[start..end] != body {
            stale.push(name);
            updated.replace_range(start..end, &body);
        }
    }
    // Every generated block in the document is one this test writes.
    for (i, _) in doc.match_indices("<!-- generated:") {
        let rest = &doc[i + "<!-- generated:".len()..];
        let name = &rest[..rest.find(" -->").unwrap()];
        assert!(
            examples.contains_key(name),
            "PROTOCOL.md has a block {name:?} that no test generates"
        );
    }
    if bless && updated != doc {
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        stale.is_empty(),
        "PROTOCOL.md examples differ from the code: {stale:?}. If the format change is intended, run \
         AMPARO_BLESS=1 cargo test -p amparo-protocol --test protocol_doc"
    );
}

/// The text of the section whose heading starts with `heading`, up to the
/// next heading of the same level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("PROTOCOL.md has no heading {heading:?}"));
    let rest = &doc[start + heading.len()..];
    let level = heading.len() - heading.trim_start_matches('#').len();
    let end = (1..=level)
        .filter_map(|l| rest.find(&format!("\n{} ", "#".repeat(l))))
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Every `b"amparo-…"` byte string in the crate's non-test source: the
/// context strings of signatures, hashes and HPKE info.
fn context_strings_in_source() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut found = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (i, _) in code.match_indices("b\"amparo-") {
            let literal = &code[i + 2..];
            let end = literal.find('"').unwrap();
            found.insert(literal[..end].to_string());
        }
    }
    found
}

#[test]
fn section_11_lists_every_context_string() {
    let doc = read_doc();
    let listed: BTreeSet<String> = section(&doc, "## 11.")
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| l[..l.find('`').unwrap()].to_string())
        .collect();
    let in_source = context_strings_in_source();
    assert!(
        in_source.len() >= 11,
        "the source scan found too few context strings: {in_source:?}"
    );
    let missing: Vec<_> = in_source.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "context strings in protocol/src but not in PROTOCOL.md §11: {missing:?}"
    );
    let stale: Vec<_> = listed.difference(&in_source).collect();
    assert!(
        stale.is_empty(),
        "PROTOCOL.md §11 lists context strings that protocol/src does not use: {stale:?}"
    );
    // Wherever a formula of the document starts with a quoted string
    // (`"amparo-…" || …`), §11 lists it.
    let mut in_formulas = 0;
    for (i, _) in doc.match_indices("\"amparo-") {
        let rest = &doc[i + 1..];
        let end = rest.find('"').unwrap();
        let quoted = &rest[..end];
        let after = &rest[end + 1..];
        if after.starts_with(" ||") || after.starts_with(" \\|\\|") {
            in_formulas += 1;
            assert!(
                listed.contains(quoted),
                "a formula of PROTOCOL.md uses {quoted:?}, which §11 does not list"
            );
        }
    }
    assert!(in_formulas >= 11, "only {in_formulas} formulas found");
}

/// §8's table of Directory JSON limits, checked at each boundary.
#[test]
fn section_8_directory_limits_hold() {
    let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md directory limits");
    let fp = RecipientKeys::generate(&mut e).unwrap();
    let text = |s: &str| LocalizedText {
        es: s.into(),
        pt: s.into(),
        en: s.into(),
    };
    let focal = FocalPoint {
        reads: Vec::new(),
        id: "a".into(),
        name: text("n"),
        organization: String::new(),
        regions: vec![],
        categories: vec![],
        languages: vec![Language::Es],
        keys: fp.public(),
        valid_from: 0,
        valid_until: 1,
    };
    let route = ServiceRoute {
        id: "r".into(),
        region: String::new(),
        service: ServiceKind::Shelter,
        name: text("n"),
        description: text("d"),
        contact: None,
    };
    let relay = RelayEntry {
        name: String::new(),
        url: None,
        receipt_key: [0; 32],
    };
    let base = Directory {
        statistics: None,
        focal_points: vec![focal.clone()],
        service_routes: vec![route.clone()],
        relays: vec![relay.clone()],
    };
    base.validate().unwrap();
    let code = |f: &dyn Fn(&mut Directory)| {
        let mut d = base.clone();
        f(&mut d);
        d.validate().err().map(|e| e.code())
    };
    let ok = None;
    let too_large = Some("too_large");
    let invalid = Some("invalid_field");
    // Counted in characters (Unicode scalar values), not bytes.
    fn chars(n: usize) -> String {
        "ñ".repeat(n)
    }
    type Change = Box<dyn Fn(&mut Directory)>;
    let cases: Vec<(&str, Change, Option<&str>)> = vec![
        (
            "id of 64",
            Box::new(|d| d.focal_points[0].id = "a".repeat(64)),
            ok,
        ),
        (
            "id of 65",
            Box::new(|d| d.focal_points[0].id = "a".repeat(65)),
            invalid,
        ),
        (
            "empty id",
            Box::new(|d| d.focal_points[0].id.clear()),
            invalid,
        ),
        (
            "id with a capital",
            Box::new(|d| d.focal_points[0].id = "A".into()),
            invalid,
        ),
        (
            "id with a dot",
            Box::new(|d| d.focal_points[0].id = "a.b".into()),
            invalid,
        ),
        (
            "id a-z0-9-_",
            Box::new(|d| d.focal_points[0].id = "pe-uca_2".into()),
            ok,
        ),
        (
            "route id of 65",
            Box::new(|d| d.service_routes[0].id = "a".repeat(65)),
            invalid,
        ),
        (
            "route id = focal id",
            Box::new(|d| d.service_routes[0].id = "a".into()),
            ok,
        ),
        (
            "name of 120",
            Box::new(|d| d.focal_points[0].name.pt = chars(120)),
            ok,
        ),
        (
            "name of 121",
            Box::new(|d| d.focal_points[0].name.pt = chars(121)),
            too_large,
        ),
        (
            "blank name",
            Box::new(|d| d.focal_points[0].name.en = " \t".into()),
            invalid,
        ),
        (
            "organization of 200",
            Box::new(|d| d.focal_points[0].organization = chars(200)),
            ok,
        ),
        (
            "organization of 201",
            Box::new(|d| d.focal_points[0].organization = chars(201)),
            too_large,
        ),
        (
            "64 regions",
            Box::new(|d| d.focal_points[0].regions = vec!["x".into(); 64]),
            ok,
        ),
        (
            "65 regions",
            Box::new(|d| d.focal_points[0].regions = vec!["x".into(); 65]),
            too_large,
        ),
        (
            "region of 65",
            Box::new(|d| d.focal_points[0].regions = vec![chars(65)]),
            too_large,
        ),
        (
            "16 categories",
            Box::new(|d| d.focal_points[0].categories = vec![Need::Other; 16]),
            ok,
        ),
        (
            "17 categories",
            Box::new(|d| d.focal_points[0].categories = vec![Need::Other; 17]),
            too_large,
        ),
        (
            "8 languages",
            Box::new(|d| d.focal_points[0].languages = vec![Language::Es; 8]),
            ok,
        ),
        (
            "9 languages",
            Box::new(|d| d.focal_points[0].languages = vec![Language::Es; 9]),
            too_large,
        ),
        (
            "no language",
            Box::new(|d| d.focal_points[0].languages.clear()),
            invalid,
        ),
        (
            "valid_until = valid_from",
            Box::new(|d| d.focal_points[0].valid_until = 0),
            invalid,
        ),
        (
            "same id twice",
            Box::new(|d| d.focal_points.push(d.focal_points[0].clone())),
            invalid,
        ),
        (
            "same keys twice",
            Box::new(|d| {
                let mut f = d.focal_points[0].clone();
                f.id = "b".into();
                d.focal_points.push(f);
            }),
            invalid,
        ),
        (
            "same signing key, other sealing key",
            Box::new(|d| {
                let mut f = d.focal_points[0].clone();
                f.id = "b".into();
                f.keys.sealing_key = [9; 32];
                d.focal_points.push(f);
            }),
            invalid,
        ),
        (
            "same sealing key, other signing key",
            Box::new(|d| {
                let mut f = d.focal_points[0].clone();
                f.id = "b".into();
                f.keys.signing_key = [9; 32];
                d.focal_points.push(f);
            }),
            ok,
        ),
        (
            "same route id twice",
            Box::new(|d| d.service_routes.push(d.service_routes[0].clone())),
            invalid,
        ),
        (
            "route region of 65",
            Box::new(|d| d.service_routes[0].region = chars(65)),
            too_large,
        ),
        (
            "route name of 121",
            Box::new(|d| d.service_routes[0].name.es = chars(121)),
            too_large,
        ),
        (
            "description of 2000",
            Box::new(|d| d.service_routes[0].description.es = chars(2000)),
            ok,
        ),
        (
            "description of 2001",
            Box::new(|d| d.service_routes[0].description.es = chars(2001)),
            too_large,
        ),
        (
            "contact of 300",
            Box::new(|d| d.service_routes[0].contact = Some(chars(300))),
            ok,
        ),
        (
            "contact of 301",
            Box::new(|d| d.service_routes[0].contact = Some(chars(301))),
            too_large,
        ),
        (
            "relay name of 120",
            Box::new(|d| d.relays[0].name = chars(120)),
            ok,
        ),
        (
            "relay name of 121",
            Box::new(|d| d.relays[0].name = chars(121)),
            too_large,
        ),
        (
            "64 relays",
            Box::new(|d| d.relays = vec![d.relays[0].clone(); 64]),
            ok,
        ),
        (
            "65 relays",
            Box::new(|d| d.relays = vec![d.relays[0].clone(); 65]),
            too_large,
        ),
        (
            "any url",
            Box::new(|d| d.relays[0].url = Some("not a url".into())),
            ok,
        ),
        ("no focal points", Box::new(|d| d.focal_points.clear()), ok),
        (
            "10001 routes",
            Box::new(|d| {
                d.service_routes = (0..10_001)
                    .map(|i| ServiceRoute {
                        id: format!("r{i}"),
                        ..d.service_routes[0].clone()
                    })
                    .collect()
            }),
            too_large,
        ),
    ];
    for (what, change, want) in cases {
        assert_eq!(code(&*change), want, "{what}");
    }
    // The JSON field names, required and optional ones.
    let minimal = br#"{"focal_points":[]}"#;
    let parsed: Directory = serde_json::from_slice(minimal).unwrap();
    assert!(parsed.service_routes.is_empty() && parsed.relays.is_empty());
    let json = serde_json::to_value(&base).unwrap();
    let keys = |v: &serde_json::Value| -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    };
    let set =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|s| s.to_string()).collect() };
    assert_eq!(
        keys(&json),
        set(&["focal_points", "service_routes", "relays"])
    );
    assert_eq!(
        keys(&json["focal_points"][0]),
        set(&[
            "id",
            "name",
            "organization",
            "regions",
            "categories",
            "languages",
            "keys",
            "valid_from",
            "valid_until"
        ])
    );
    assert_eq!(
        keys(&json["service_routes"][0]),
        set(&["id", "region", "service", "name", "description"]),
        "contact is left out when absent"
    );
    assert_eq!(
        keys(&json["relays"][0]),
        set(&["name", "receipt_key"]),
        "url is left out when absent"
    );
    assert_eq!(
        keys(&json["focal_points"][0]["name"]),
        set(&["es", "pt", "en"])
    );
    assert_eq!(
        keys(&json["focal_points"][0]["keys"]),
        set(&["sealing_key", "signing_key"])
    );
    // Unknown fields are ignored; a missing required one is bad_json.
    let mut extra = json.clone();
    extra["focal_points"][0]["phone"] = "123".into();
    extra["note"] = "x".into();
    let back: Directory = serde_json::from_value(extra).unwrap();
    assert_eq!(back, base);
    let mut missing = json.clone();
    missing["focal_points"][0]
        .as_object_mut()
        .unwrap()
        .remove("organization");
    assert!(serde_json::from_value::<Directory>(missing).is_err());
}

/// §12.6: the frames of a batch, and when the batch as a whole fails.
#[test]
fn section_12_6_batch_framing() {
    use amparo_protocol::wire::{decode_batch, encode_batch};
    let env = vec![1u8; 1086];
    // More than max_batch frames: refused at the first frame past the
    // limit, before its length is read (the relay answers 413
    // batch_too_large).
    let body = encode_batch([env.as_slice(), env.as_slice()]);
    let mut cut = body.clone();
    cut.truncate(4 + 1086 + 2);
    for b in [&body, &cut] {
        assert!(matches!(
            decode_batch(b, 1),
            Err(ProtocolError::TooLarge {
                what: "batch (envelopes)",
                ..
            })
        ));
    }
    // A length above 65598 before the limit is reached: too_large.
    let mut big = 65_599u32.to_be_bytes().to_vec();
    big.extend_from_slice(&[0; 8]);
    let e = decode_batch(&big, 1).unwrap_err();
    assert_eq!(e.code(), "too_large");
    assert!(!matches!(
        e,
        ProtocolError::TooLarge {
            what: "batch (envelopes)",
            ..
        }
    ));
    // A length of exactly 65598 that the body does not hold: truncated.
    let mut short = 65_598u32.to_be_bytes().to_vec();
    short.extend_from_slice(&[0; 8]);
    assert_eq!(decode_batch(&short, 1).unwrap_err().code(), "truncated");
    // A body that ends inside a length field: truncated.
    assert_eq!(decode_batch(&[0, 0, 4], 1).unwrap_err().code(), "truncated");
    // Frames of any length up to 65598 pass the batch framing; each is then
    // judged on its own (reject codes).
    let odd = encode_batch([&[][..], &[9u8; 3][..]]);
    assert_eq!(decode_batch(&odd, 2).unwrap().len(), 2);
}

/// Every error code the relay's source answers with (a string literal right
/// after a `StatusCode::…,` in `server/src`), and the protocol errors its
/// handlers pass through (`ApiError::bad_input`, the signature checks).
fn relay_error_codes() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/src"),
        &mut files,
    );
    let mut found = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (i, _) in code.match_indices("StatusCode::") {
            let rest = &code[i..];
            let Some(comma) = rest.find(',') else {
                continue;
            };
            let after = rest[comma + 1..].trim_start();
            if let Some(literal) = after.strip_prefix('"') {
                let end = literal.find('"').unwrap();
                found.insert(literal[..end].to_string());
            }
        }
    }
    assert!(
        found.len() >= 15,
        "the scan of server/src found too few error codes: {found:?}"
    );
    // What the relay answers with ProtocolError::code(): framing and JSON
    // errors of the bodies it decodes, and the signature checks.
    for e in [
        ProtocolError::Truncated { needed: 1 },
        ProtocolError::TrailingBytes(1),
        ProtocolError::BadMagic("x"),
        ProtocolError::UnsupportedVersion {
            what: "x",
            version: 2,
        },
        ProtocolError::TooLarge {
            what: "x",
            len: 2,
            max: 1,
        },
        ProtocolError::Invalid("x"),
        ProtocolError::UnknownSigner("x"),
        ProtocolError::BadSignature("x"),
        ProtocolError::StaleRequest,
    ] {
        found.insert(e.code().to_string());
    }
    found.insert(
        ProtocolError::Json {
            what: "x",
            category: "syntax",
            line: 1,
            column: 1,
        }
        .code()
        .to_string(),
    );
    found
}

#[test]
fn section_12_3_lists_every_error_code() {
    let doc = read_doc();
    let table = section(&doc, "### 12.3 Errors");
    let listed: BTreeSet<String> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| l[..l.find('`').unwrap()].to_string())
        .collect();
    let answered = relay_error_codes();
    let missing: Vec<_> = answered.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "error codes the relay answers but PROTOCOL.md §12.3 does not list: {missing:?}"
    );
    let stale: Vec<_> = listed.difference(&answered).collect();
    assert!(
        stale.is_empty(),
        "PROTOCOL.md §12.3 lists error codes the relay never answers: {stale:?}"
    );
}
