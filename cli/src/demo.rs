//! `amparo demo`: the shortest path to see a report travel end to end.
//!
//! Plays both ends against a real relay: a focal point makes its keys; a
//! survivor writes a report in Spanish with a photo, seals it to the focal
//! point and uploads it in one request; the focal point fetches its mailbox
//! with a signed request, opens the report, puts the photo back together,
//! acknowledges, and answers on the report's reply channel; the survivor
//! fetches her reply mailbox and reads the answer.

use amparo_core::compose::{Attachment, seal_report};
use amparo_core::inbox::{Incoming, Reassembly, open};
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::{CoreError, Result};
use amparo_protocol::b64;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::i18n::Label;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::{
    AggressorKind, AttachmentKind, CaseStatus, IncidentDate, Language, Need, Payload, Place, Reply,
    Report, StatusUpdate, ViolenceKind,
};
use amparo_protocol::primitives::ed25519::VerifyingKey;
use amparo_protocol::wire::EnvelopeResult;
use amparo_protocol::{ProtocolError, UnixTime};

/// Arguments of `amparo demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// The relay to use.
    #[arg(long, env = "AMPARO_RELAY", default_value = "http://127.0.0.1:8470")]
    relay: String,
    /// The relay's receipt key (base64url, printed by amparo-relay when it
    /// starts); when given, every receipt is verified against it.
    #[arg(long, env = "AMPARO_RELAY_KEY")]
    relay_key: Option<String>,
    /// A SOCKS5 or HTTP proxy, e.g. socks5h://127.0.0.1:9050 for Tor.
    #[arg(long, env = "AMPARO_PROXY")]
    proxy: Option<String>,
}

fn now() -> UnixTime {
    UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// A small stand-in for a photo (metadata already stripped).
fn photo() -> Vec<u8> {
    (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

async fn fetch_everything(
    client: &RelayClient,
    keys: &RecipientKeys,
    e: &mut SystemEntropy,
) -> Result<Vec<Envelope>> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = client.fetch(keys, after, 100, now(), e).await?;
        if let Some((cursor, _)) = page.items.last() {
            after = *cursor;
        }
        let more = page.more;
        all.extend(page.items.into_iter().map(|(_, env)| env));
        if !more {
            return Ok(all);
        }
    }
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> Result<()> {
    let mut e = SystemEntropy::new();
    let mut config = RelayConfig::new(&args.relay);
    config.proxy = args.proxy.clone();
    let client = RelayClient::new(&config)?;
    let relay_key = args
        .relay_key
        .as_deref()
        .map(|k| b64::decode_array::<32>(k.trim(), "relay key").map(VerifyingKey))
        .transpose()?;

    println!("Amparo demo against {}", args.relay);
    let focal = RecipientKeys::generate(&mut e)?;
    println!(
        "1. Focal point: made its keys; its mailbox is {}",
        focal.mailbox()
    );

    let report = Report {
        v: 1,
        violence: vec![ViolenceKind::Extortion, ViolenceKind::Threats],
        violence_other: None,
        when: Some(IncidentDate {
            year: 2026,
            month: Some(11),
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
        needs: vec![Need::LegalAdvice, Need::ProtectionShelter],
        language: Language::Es,
        text: "Dos agentes me pidieron dinero para no llevarme detenida. Tengo una foto de la patrulla.".into(),
        attachments: vec![],
        reply_to: focal.public(), // replaced by the per-report reply keys
        referral: None,
    };
    let photo = photo();
    let sealed = seal_report(
        &focal.public(),
        report,
        &[Attachment {
            kind: AttachmentKind::Photo,
            mime: "image/jpeg".into(),
            data: photo.clone(),
        }],
        &mut e,
        now(),
    )?;
    let sizes: Vec<String> = sealed
        .envelopes
        .iter()
        .map(|env| env.as_bytes().len().to_string())
        .collect();
    println!(
        "2. Survivor: wrote a report with a {} KB photo and sealed it to the focal point: {} envelopes of {} bytes",
        photo.len() / 1000,
        sealed.envelopes.len(),
        sizes.join(", ")
    );

    let results = client.upload(&sealed.envelopes).await?;
    for (env, r) in sealed.envelopes.iter().zip(&results) {
        match r {
            EnvelopeResult::Accepted(receipt) => {
                if receipt.envelope_id != env.id() {
                    return Err(ProtocolError::Invalid("receipt for another envelope").into());
                }
                if let Some(k) = &relay_key {
                    receipt.verify(k)?;
                }
            }
            EnvelopeResult::Rejected(code) => {
                return Err(CoreError::Relay {
                    status: 200,
                    code: code.name().into(),
                    message: "the relay refused an envelope".into(),
                });
            }
        }
    }
    println!(
        "3. Uploaded in one request; {} signed receipts{}",
        results.len(),
        if relay_key.is_some() {
            ", all verified"
        } else {
            " (pass --relay-key to verify them)"
        }
    );

    let arrived = fetch_everything(&client, &focal, &mut e).await?;
    let mut report = None;
    let mut pieces = Reassembly::default();
    for env in &arrived {
        match open(env, &focal)? {
            Incoming::Report {
                message_id,
                report: r,
            } => report = Some((message_id, r)),
            Incoming::Chunk { index, data, .. } => pieces.add(index, data),
            other => println!("   (ignored {other:?})"),
        }
    }
    let Some((report_id, report)) = report else {
        return Err(ProtocolError::Invalid("no report arrived").into());
    };
    let kinds: Vec<&str> = report
        .violence
        .iter()
        .map(|k| k.label(Language::Es))
        .collect();
    println!(
        "4. Focal point: fetched {} envelopes and opened the report:",
        arrived.len()
    );
    println!("   Qué pasó: {}", kinds.join("; "));
    println!(
        "   Quién: {}",
        report
            .aggressors
            .iter()
            .map(|a| a.label(Language::Es))
            .collect::<Vec<_>>()
            .join("; ")
    );
    println!("   Relato: {}", report.text);
    if let Some(reference) = report.attachments.first() {
        let whole = pieces.finish(reference)?;
        println!(
            "   Foto: {} bytes in {} chunks, SHA-256 checked",
            whole.len(),
            reference.chunks
        );
    }
    let ids: Vec<_> = arrived.iter().map(|env| env.id()).collect();
    let deleted = client.ack(&focal, &ids, now(), &mut e).await?;
    println!("   Acknowledged {deleted}; the relay deleted them.");

    let answer = Reply {
        v: 1,
        report_id,
        text: "Recibimos su reporte. Una defensora la llamará por este canal; no tiene que ir a la comisaría.".into(),
        language: Some(Language::Es),
    };
    let status = StatusUpdate {
        v: 1,
        report_id,
        status: CaseStatus::InProgress,
        message: None,
        referred_to: None,
    };
    let mut replies = Vec::new();
    for (purpose, body) in [
        (Purpose::Reply, answer.to_json()?),
        (Purpose::Status, status.to_json()?),
    ] {
        let header = InnerHeader::new(&mut e, now())?;
        replies.push(Envelope::seal(
            &report.reply_to,
            purpose,
            &header,
            &body,
            &mut e,
        )?);
    }
    client.upload(&replies).await?;
    println!(
        "5. Focal point: answered and set the case in progress, sealed to the report's reply mailbox {}",
        report.reply_to.mailbox()
    );

    let back = fetch_everything(&client, &sealed.reply_keys, &mut e).await?;
    println!(
        "6. Survivor: fetched her reply mailbox ({} envelopes):",
        back.len()
    );
    for env in &back {
        match open(env, &sealed.reply_keys)? {
            Incoming::Reply(r) => println!("   Respuesta: {}", r.text),
            Incoming::Status(s) => println!("   Estado del caso: {}", s.status.label(Language::Es)),
            other => println!("   (ignored {other:?})"),
        }
    }
    let ids: Vec<_> = back.iter().map(|env| env.id()).collect();
    client.ack(&sealed.reply_keys, &ids, now(), &mut e).await?;
    println!("Done: the relay saw only two mailbox ids, sizes and the hour; nothing else.");
    Ok(())
}
