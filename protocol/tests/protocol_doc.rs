//! Keeps the worked examples in PROTOCOL.md true.
//!
//! Every block between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`
//! in PROTOCOL.md is produced here from fixed seeds. The test fails if the
//! document and the code disagree. After an intended change to the format,
//! regenerate with:
//!
//! ```sh
//! AMPARO_BLESS=1 cargo test -p amparo-protocol --test protocol_doc
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use amparo_protocol::UnixTime;
use amparo_protocol::bundle::{self, BundleEncoder};
use amparo_protocol::directory::{
    Directory, FocalPoint, LocalizedText, ServiceKind, ServiceRoute, SignedDirectory,
};
use amparo_protocol::entropy::DangerousSeededEntropy;
use amparo_protocol::envelope::{self, Envelope, Purpose};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::{self, InnerHeader};
use amparo_protocol::payload::*;
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::receipt::Receipt;
use amparo_protocol::{b64, hpke};

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

fn examples() -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let now = UnixTime(1_790_000_000); // 2026-09-21T14:13:20Z
    let mut e = DangerousSeededEntropy::new(b"PROTOCOL.md example");

    // Keys.
    let focal = RecipientKeys::generate(&mut e).unwrap();
    let reply = RecipientKeys::generate(&mut e).unwrap();
    let secret = focal.dangerously_export();
    out.insert(
        "keys",
        text_block(format!(
            "focal point X25519 secret   {}\n\
             focal point X25519 public   {}\n\
             focal point Ed25519 seed    {}\n\
             focal point Ed25519 public  {}\n\
             focal point mailbox id      {} ({})\n\
             reply mailbox id            {} ({})",
            hex(&secret[..32]),
            hex(&focal.public().sealing_key),
            hex(&secret[32..]),
            hex(&focal.public().signing_key),
            hex(&focal.mailbox().0),
            focal.mailbox(),
            hex(&reply.mailbox().0),
            reply.mailbox(),
        )),
    );

    // The report.
    let report = Report {
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
    out.insert(
        "report-json",
        format!("```json\n{}\n```", String::from_utf8(json.clone()).unwrap()),
    );

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

    // A reply to the report.
    let reply_body = Reply {
        v: 1,
        report_id: inner.message_id,
        text: "Recibimos su reporte. Podemos acompañarla mañana.".into(),
        language: Some(Language::Es),
    }
    .to_json()
    .unwrap();
    out.insert(
        "reply-json",
        format!("```json\n{}\n```", String::from_utf8(reply_body).unwrap()),
    );

    // A receipt.
    let relay = SigningKey::generate(&mut e).unwrap();
    let receipt = Receipt::sign(env.id(), now, &relay);
    out.insert(
        "receipt",
        text_block(format!(
            "relay Ed25519 public  {}\nrelay key id          {}\nreceipt ({} bytes)\n{}",
            hex(relay.verifying_key().as_bytes()),
            hex(&receipt.relay_key_id.0),
            amparo_protocol::receipt::LEN,
            hex_block(&receipt.encode())
        )),
    );

    // A directory.
    let coordinator = SigningKey::generate(&mut e).unwrap();
    let text = |es: &str, pt: &str, en: &str| LocalizedText {
        es: es.into(),
        pt: pt.into(),
        en: en.into(),
    };
    let dir = Directory {
        focal_points: vec![FocalPoint {
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
        relays: vec![],
    };
    let signed = dir.sign(3, &coordinator).unwrap();
    SignedDirectory::verify(signed.as_bytes(), &coordinator.verifying_key()).unwrap();
    out.insert(
        "directory",
        text_block(format!(
            "coordinator Ed25519 public  {}\ncoordinator key id          {}\nsigned directory, version 3 ({} bytes)\n{}",
            hex(coordinator.verifying_key().as_bytes()),
            b64::encode(&amparo_protocol::keys::KeyId::for_key(&coordinator.verifying_key()).0),
            signed.as_bytes().len(),
            hex_block(signed.as_bytes())
        )),
    );

    // A bundle carrying the receipt back.
    let mut enc = BundleEncoder::new();
    enc.receipt(&receipt).unwrap();
    let bundle_bytes = enc.finish();
    assert_eq!(bundle::decode_all(&bundle_bytes).unwrap().len(), 1);
    out.insert(
        "bundle",
        text_block(format!(
            "bundle with one receipt ({} bytes)\n{}",
            bundle_bytes.len(),
            hex_block(&bundle_bytes)
        )),
    );
    out
}

#[test]
fn protocol_md_examples_match_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../PROTOCOL.md");
    let doc = std::fs::read_to_string(&path).expect("PROTOCOL.md at the repository root");
    let bless = std::env::var_os("AMPARO_BLESS").is_some();
    let mut updated = doc.clone();
    let mut stale = Vec::new();
    for (name, body) in examples() {
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
