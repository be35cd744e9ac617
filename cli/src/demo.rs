//! `amparo demo`: the whole story on one machine, every step checked.
//!
//! It starts a relay on loopback with a temporary SQLite database (or uses
//! the one given), makes a coordinator, two focal points and a signed
//! directory, and plays the story the project exists for: a survivor in
//! Pucallpa writes a report offline with a photo; with no signal, she hands
//! it to a peer facilitator as a sealed bundle; the facilitator reaches
//! signal and delivers it; the focal point the directory suggests for her
//! region fetches and opens it, answers and marks it "in progress"; the
//! facilitator brings back the relay's receipts; the survivor reads the
//! answer at her next sync. Every profile is a real encrypted profile in a
//! temporary folder, and every claim printed is checked; the command exits
//! with failure at the first one that does not hold.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use amparo_core::coordinator::directory_from_toml;
use amparo_core::directory::{FocalPointQuery, suggest};
use amparo_core::drafts::DraftForm;
use amparo_core::focal::CaseFilter;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::settings::{Role, Settings};
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::b64;
use amparo_protocol::i18n::Label;
use amparo_protocol::payload::{
    AggressorKind, AttachmentKind, CaseStatus, IncidentDate, Language, Need, Place, ViolenceKind,
};
use amparo_protocol::primitives::ed25519::VerifyingKey;

use crate::ctx::{CliError, CliResult, Ctx, fail, now};

/// Arguments of `amparo demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Use this relay instead of starting one (it must be reachable; its
    /// receipt key is then required).
    #[arg(long, env = "AMPARO_RELAY")]
    relay: Option<String>,
    /// The relay's receipt key (base64url, printed by amparo-relay when it
    /// starts). Every receipt is verified against it.
    #[arg(long, env = "AMPARO_RELAY_KEY")]
    relay_key: Option<String>,
    /// A SOCKS5 or HTTP proxy, e.g. socks5h://127.0.0.1:9050 for Tor.
    #[arg(long, env = "AMPARO_PROXY")]
    proxy: Option<String>,
    /// The amparo-relay program to start (default: next to this one, else
    /// on the PATH).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// Keep the temporary folder (profiles, bundles, relay data) to look at.
    #[arg(long)]
    keep: Option<PathBuf>,
}

/// A relay this demo started; stopped when dropped.
struct OwnRelay {
    child: Child,
    url: String,
    key: VerifyingKey,
}

impl Drop for OwnRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn relay_program(given: Option<PathBuf>) -> PathBuf {
    if let Some(p) = given {
        return p;
    }
    let name = format!("amparo-relay{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(&name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Starts `amparo-relay` on a free loopback port with its data in `dir`,
/// trusting `coordinator` for directories, and reads where it listens and
/// its receipt key from its first log line.
fn start_relay(program: &Path, dir: &Path, coordinator: &VerifyingKey) -> CliResult<OwnRelay> {
    let mut child = Command::new(program)
        .arg("--listen=127.0.0.1:0")
        .arg(format!("--data-dir={}", dir.display()))
        .arg(format!("--coordinator-key={}", b64::encode(coordinator.as_bytes())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            CliError::Message(format!(
                "cannot start {} ({e}); build it with `cargo build -p amparo-relay` or pass --relay",
                program.display()
            ))
        })?;
    let Some(stderr) = child.stderr.take() else {
        let _ = child.kill();
        return fail("the relay's log cannot be read");
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = tx.send(line);
            }
        }
    });
    let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        return fail("the relay did not start within 30 s");
    };
    let field = |after: &str, until: char| {
        line.split_once(after)
            .map(|(_, rest)| rest.split(until).next().unwrap_or("").trim().to_string())
    };
    let (Some(url), Some(key)) = (field("listening on ", ','), field("receipt key ", ' ')) else {
        let _ = child.kill();
        return fail(format!("unexpected relay log line: {line}"));
    };
    let key = VerifyingKey(b64::decode_array(&key, "relay key")?);
    Ok(OwnRelay { child, url, key })
}

/// A small JPEG as a phone camera writes it: with an EXIF block naming
/// where it was taken and the phone's serial, and ~100 KB of image data.
fn photo() -> Vec<u8> {
    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(
            &u16::try_from(payload.len() + 2)
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        s.extend_from_slice(payload);
        s
    }
    let mut jpeg = vec![0xFF, 0xD8];
    jpeg.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
    jpeg.extend(segment(
        0xE1,
        b"Exif\0\0GPS -8.3791,-74.5539 Pucallpa; phone serial R58M123ABC",
    ));
    jpeg.extend(segment(0xDB, &[0u8; 65]));
    jpeg.extend(segment(0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]));
    jpeg.extend(segment(0xDA, &[1, 1, 0, 0, 63, 0]));
    jpeg.extend((0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 & 0x7F));
    jpeg.extend_from_slice(&[0xFF, 0xD9]);
    jpeg
}

fn check(ok: bool, what: &str) -> CliResult {
    if ok {
        Ok(())
    } else {
        fail(format!("demo check failed: {what}"))
    }
}

fn profile(root: &Path, name: &str, settings: Settings) -> CliResult<Profile> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| CliError::Message(e.to_string()))?;
    // A real profile with the phone's key stretching (about 0.2 s each).
    let p = Profile::create(&dir, &format!("{name}-pin-2468"), KdfParams::PHONE)?;
    p.save_settings(&settings)?;
    Ok(p)
}

const SOURCE: &str = r#"
[[focal_point]]
id = "pe-ucayali-defensoria"
name = { es = "Defensoría del Pueblo – Ucayali", pt = "Defensoria do Povo – Ucayali", en = "Ombudsman's Office – Ucayali" }
organization = "Defensoría del Pueblo"
regions = ["PE-UCA"]
categories = ["legal_advice", "protection_shelter"]
languages = ["es"]
sealing_key = "A_SEAL"
signing_key = "A_SIGN"
valid_from = "2026-01-01"
valid_until = "2036-01-01"

[[focal_point]]
id = "br-roraima-casa-mulher"
name = { es = "Casa de la Mujer – Boa Vista", pt = "Casa da Mulher Brasileira – Boa Vista", en = "Women's House – Boa Vista" }
organization = "Casa da Mulher Brasileira"
regions = ["BR-RR"]
categories = ["legal_advice", "health_care", "migration_status"]
languages = ["pt", "es"]
sealing_key = "B_SEAL"
signing_key = "B_SIGN"
valid_from = "2026-01-01"
valid_until = "2036-01-01"

[[service_route]]
id = "pucallpa-pep"
region = "PE-UCA"
service = "sti_hiv_pep"
name = { es = "Hospital Regional de Pucallpa", pt = "Hospital Regional de Pucallpa", en = "Pucallpa Regional Hospital" }
description = { es = "PEP en emergencias, 24 horas, sin denuncia previa.", pt = "PEP na emergência, 24 horas, sem denúncia prévia.", en = "PEP at the emergency room, 24 hours, no police report needed." }

[[relay]]
name = "demo"
url = "RELAY_URL"
receipt_key = "RELAY_KEY"
"#;

/// Runs the demo.
pub async fn run(ctx: &Ctx, args: DemoArgs) -> CliResult {
    let temp = tempfile::tempdir().map_err(|e| CliError::Message(e.to_string()))?;
    let root = args
        .keep
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&root).map_err(|e| CliError::Message(e.to_string()))?;
    let l = ctx.lang;
    let say = |es: &str, pt: &str, en: &str| {
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), "{}", ctx.tr(es, pt, en));
    };

    // The coordinator first: the relay it starts must know its key.
    let coordinator = profile(
        &root,
        "coordinator",
        Settings {
            role: Some(Role::Coordinator),
            ..Settings::default()
        },
    )?;
    let coordinator_key = coordinator.create_coordinator_key()?;

    let own;
    let (relay_url, relay_key) = match (&args.relay, &args.relay_key) {
        (Some(url), Some(key)) => (url.clone(), VerifyingKey(crate::ctx::parse_key(key)?)),
        (Some(_), None) => return fail("--relay needs --relay-key, to check the relay's receipts"),
        (None, _) => {
            own = start_relay(
                &relay_program(args.relay_bin.clone()),
                &root.join("relay"),
                &coordinator_key,
            )?;
            (own.url.clone(), own.key)
        }
    };
    let mut config = RelayConfig::new(&relay_url);
    config.proxy = args.proxy.clone();
    let relay = RelayClient::new(&config)?;
    say(
        &format!(
            "0. Relay en {relay_url} (clave de recibos {}).",
            b64::encode(relay_key.as_bytes())
        ),
        &format!(
            "0. Relay em {relay_url} (chave de recibos {}).",
            b64::encode(relay_key.as_bytes())
        ),
        &format!(
            "0. Relay at {relay_url} (receipt key {}).",
            b64::encode(relay_key.as_bytes())
        ),
    );

    // 1. Two focal points, a directory, signed and published.
    let settings = |role| Settings {
        role: Some(role),
        relay_url: Some(relay_url.clone()),
        proxy: args.proxy.clone(),
        coordinator_key: Some(*coordinator_key.as_bytes()),
        ..Settings::default()
    };
    let ucayali = profile(
        &root,
        "focal-ucayali",
        Settings {
            focal_point_id: Some("pe-ucayali-defensoria".into()),
            ..settings(Role::FocalPoint)
        },
    )?;
    let roraima = profile(
        &root,
        "focal-roraima",
        Settings {
            focal_point_id: Some("br-roraima-casa-mulher".into()),
            ..settings(Role::FocalPoint)
        },
    )?;
    let a = ucayali.create_focal_identity()?;
    let b = roraima.create_focal_identity()?;
    let source = SOURCE
        .replace("A_SEAL", &b64::encode(&a.sealing_key))
        .replace("A_SIGN", &b64::encode(&a.signing_key))
        .replace("B_SEAL", &b64::encode(&b.sealing_key))
        .replace("B_SIGN", &b64::encode(&b.signing_key))
        .replace("RELAY_URL", &relay_url)
        .replace("RELAY_KEY", &b64::encode(relay_key.as_bytes()));
    let signed = coordinator.sign_directory(&directory_from_toml(&source)?, now())?;
    let published = match relay.publish_directory(signed.as_bytes()).await {
        Ok(()) => true,
        Err(amparo_core::CoreError::Relay { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    say(
        &format!(
            "1. Coordinación: directorio v{} firmado con dos puntos focales (Ucayali, Roraima){}.",
            signed.version(),
            if published {
                " y publicado en el relay"
            } else {
                "; este relay no conoce a esta coordinación, así que el directorio viaja en los paquetes"
            }
        ),
        &format!(
            "1. Coordenação: diretório v{} assinado com dois pontos focais (Ucayali, Roraima){}.",
            signed.version(),
            if published {
                " e publicado no relay"
            } else {
                "; este relay não conhece esta coordenação, então o diretório viaja nos pacotes"
            }
        ),
        &format!(
            "1. Coordinator: directory v{} signed with two focal points (Ucayali, Roraima){}.",
            signed.version(),
            if published {
                " and published to the relay"
            } else {
                "; this relay does not know this coordinator, so the directory travels in bundles"
            }
        ),
    );

    // 2. The survivor, offline in Pucallpa.
    let survivor = profile(&root, "survivor", settings(Role::Survivor))?;
    survivor.import_directory(signed.as_bytes(), &coordinator_key, None)?;
    let directory = survivor
        .directory(&coordinator_key)?
        .ok_or_else(|| CliError::Message("no directory".into()))?;
    let focal = suggest(
        &directory,
        &FocalPointQuery {
            region: Some("PE-UCA".into()),
            need: Some(Need::LegalAdvice),
            language: Some(Language::Es),
        },
        now(),
    )
    .ok_or_else(|| CliError::Message("no focal point suggested".into()))?
    .clone();
    check(
        focal.id == "pe-ucayali-defensoria",
        "the directory suggests the focal point for her region",
    )?;
    let text =
        "Dos agentes me pidieron dinero para no llevarme detenida. Tengo una foto de la patrulla.";
    let draft = survivor.create_draft(&DraftForm {
        violence: vec![ViolenceKind::Extortion, ViolenceKind::Threats],
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
        needs: vec![Need::LegalAdvice, Need::ProtectionShelter],
        language: Some(Language::Es),
        text: text.into(),
        ..DraftForm::default()
    })?;
    let raw_photo = photo();
    survivor.add_attachment(&draft, AttachmentKind::Photo, "image/jpeg", &raw_photo)?;
    let report_id = survivor.send_draft(&draft, &focal, false, now())?;
    let outbox = survivor.outbox_len()?;
    check(
        survivor.drafts()?.is_empty(),
        "the draft's plaintext is gone once sealed",
    )?;
    say(
        &format!(
            "2. Sobreviviente en Pucallpa, sin señal: escribe una denuncia con una foto ({} KB; se le quitan el GPS y el número del teléfono) y la sella para «{}», que el directorio sugiere para su región: {outbox} sobres en la bandeja de salida.",
            raw_photo.len() / 1000,
            focal.name.get(l)
        ),
        &format!(
            "2. Sobrevivente em Pucallpa, sem sinal: escreve uma denúncia com uma foto ({} KB; o GPS e o número do telefone são removidos) e a lacra para «{}», sugerido pelo diretório para a sua região: {outbox} envelopes na caixa de saída.",
            raw_photo.len() / 1000,
            focal.name.get(l)
        ),
        &format!(
            "2. Survivor in Pucallpa, no signal: writes a report with a photo ({} KB; its GPS position and phone serial are removed) and seals it to \"{}\", which the directory suggests for her region: {outbox} envelopes in the outbox.",
            raw_photo.len() / 1000,
            focal.name.get(l)
        ),
    );

    // 3. Hand-over to the facilitator, as a file.
    let bundle_path = root.join("survivor-outbox.amparo");
    let bundle = survivor.export_outbox_bundle_with_grants(now())?;
    std::fs::write(&bundle_path, &bundle).map_err(|e| CliError::Message(e.to_string()))?;
    let facilitator = profile(&root, "facilitator", settings(Role::Facilitator))?;
    let imported = facilitator.import_bundle(&bundle, &coordinator_key, &[])?;
    check(
        imported.envelopes == outbox && imported.damaged.is_none(),
        "the facilitator takes every envelope",
    )?;
    check(
        facilitator.cases(&CaseFilter::default())?.is_empty() && facilitator.messages()?.is_empty(),
        "the facilitator cannot open what she carries",
    )?;
    let leaked = String::from_utf8_lossy(&bundle).contains("agentes");
    check(!leaked, "the bundle holds no readable text")?;
    say(
        &format!(
            "3. Le pasa el paquete ({} bytes) a una facilitadora, que lleva {} sobres sellados: ve cuántos, no qué dicen ni de quién son.",
            bundle.len(),
            imported.envelopes
        ),
        &format!(
            "3. Passa o pacote ({} bytes) a uma facilitadora, que leva {} envelopes lacrados: vê quantos, não o que dizem nem de quem são.",
            bundle.len(),
            imported.envelopes
        ),
        &format!(
            "3. She hands the bundle ({} bytes) to a facilitator, who now carries {} sealed envelopes: she sees how many, not what they say or whose they are.",
            bundle.len(),
            imported.envelopes
        ),
    );

    // 4. The facilitator reaches signal.
    let delivered = facilitator.upload_carried(&relay, &[relay_key]).await?;
    check(
        delivered == outbox,
        "the relay signs a receipt for each envelope",
    )?;
    say(
        &format!(
            "4. La facilitadora llega a una zona con señal y los entrega: {delivered} recibos firmados por el relay, verificados."
        ),
        &format!(
            "4. A facilitadora chega a uma zona com sinal e os entrega: {delivered} recibos assinados pelo relay, verificados."
        ),
        &format!(
            "4. The facilitator reaches signal and delivers them: {delivered} receipts signed by the relay, verified."
        ),
    );

    // 5. The focal point fetches, opens, answers.
    let (_, fetched) = ucayali
        .focal_sync(&relay, &[relay_key], now, &mut |_| {})
        .await?;
    let cases = ucayali.cases(&CaseFilter::default())?;
    let case = ucayali.case(&report_id)?;
    let clean_photo = amparo_core::metadata::strip(&raw_photo)?;
    let photo_ok =
        matches!(case.attachments.first(), Some((_, Some(bytes))) if *bytes == clean_photo);
    check(
        fetched.new_cases == 1 && cases.len() == 1 && case.report.text == text,
        "the focal point opens the report as written",
    )?;
    check(
        photo_ok,
        "the photo arrives whole, SHA-256 checked, without its metadata",
    )?;
    check(
        !String::from_utf8_lossy(&clean_photo).contains("-8.3791"),
        "the photo's GPS position is gone",
    )?;
    check(
        roraima
            .focal_sync(&relay, &[relay_key], now, &mut |_| {})
            .await?
            .1
            .new_cases
            == 0,
        "the other focal point receives nothing",
    )?;
    say(
        &format!(
            "5. Defensoría de Ucayali: recibe y abre la denuncia — {}; {}; «{}» — y la foto completa (SHA-256 verificado, sin GPS).",
            case.report
                .violence
                .iter()
                .map(|v| v.label(l))
                .collect::<Vec<_>>()
                .join(", "),
            case.report
                .aggressors
                .iter()
                .map(|a| a.label(l))
                .collect::<Vec<_>>()
                .join(", "),
            case.report.text
        ),
        &format!(
            "5. Defensoria de Ucayali: recebe e abre a denúncia — {}; {}; «{}» — e a foto completa (SHA-256 verificado, sem GPS).",
            case.report
                .violence
                .iter()
                .map(|v| v.label(l))
                .collect::<Vec<_>>()
                .join(", "),
            case.report
                .aggressors
                .iter()
                .map(|a| a.label(l))
                .collect::<Vec<_>>()
                .join(", "),
            case.report.text
        ),
        &format!(
            "5. Ucayali Ombudsman's Office: fetches and opens the report — {}; {}; \"{}\" — and the whole photo (SHA-256 checked, no GPS).",
            case.report
                .violence
                .iter()
                .map(|v| v.label(l))
                .collect::<Vec<_>>()
                .join(", "),
            case.report
                .aggressors
                .iter()
                .map(|a| a.label(l))
                .collect::<Vec<_>>()
                .join(", "),
            case.report.text
        ),
    );
    let answer = "Recibimos su denuncia. Una defensora le escribirá por este canal; no tiene que ir a la comisaría.";
    ucayali.reply_to_case(&report_id, answer, now())?;
    ucayali.set_case_status(&report_id, CaseStatus::InProgress, None, now())?;
    let (sent, _) = ucayali
        .focal_sync(&relay, &[relay_key], now, &mut |_| {})
        .await?;
    check(
        sent.delivered == 2,
        "the answer and the status update reach the relay",
    )?;
    say(
        "6. Responde y marca el caso «en curso»; ambos van sellados al buzón de respuesta de la denuncia, que solo el teléfono de ella puede leer.",
        "6. Responde e marca o caso «em andamento»; ambos vão lacrados à caixa de resposta da denúncia, que só o telefone dela pode ler.",
        "6. It answers and marks the case \"in progress\"; both go sealed to the report's reply mailbox, which only her phone can read.",
    );

    // 7. The facilitator passes by signal again: she picks up the sealed
    // answer with the leave the survivor gave her, and brings it back with
    // the receipts. The survivor reads it without ever having had signal.
    let picked = facilitator.upload_carried(&relay, &[relay_key]).await?;
    let replies = facilitator.fetch_granted_replies(&relay, now).await?;
    check(
        picked == 0 && replies == 2,
        "the facilitator picks up the two sealed answers",
    )?;
    let back = facilitator.export_return_bundle()?;
    check(
        !String::from_utf8_lossy(&back).contains("defensora"),
        "the answers travel sealed",
    )?;
    let returned = survivor.import_bundle(&back, &coordinator_key, &[])?;
    let delivered_all = survivor
        .sent_reports()?
        .iter()
        .all(|r| r.pending == 0 && r.delivered == outbox);
    check(
        returned.receipts_accepted == outbox && delivered_all,
        "the receipts come back and her report shows delivered",
    )?;
    let messages = survivor.messages()?;
    let reply = messages
        .iter()
        .find_map(|m| m.text.clone().filter(|_| m.status.is_none()));
    let status = messages.iter().find_map(|m| m.status);
    check(
        returned.messages == 2
            && reply.as_deref() == Some(answer)
            && status == Some(CaseStatus::InProgress),
        "she reads the answer and the case status from the bundle",
    )?;
    say(
        &format!(
            "7. La facilitadora vuelve con {} recibos y las 2 respuestas selladas que recogió con el permiso de ella (no puede leerlas). El teléfono verifica los recibos con la clave del relay del directorio, marca la denuncia «entregada», y ella lee, todavía sin señal:\n   Respuesta: {answer}\n   Estado del caso: {}",
            returned.receipts_accepted,
            CaseStatus::InProgress.label(Language::Es)
        ),
        &format!(
            "7. A facilitadora volta com {} recibos e as 2 respostas lacradas que recolheu com a permissão dela (não pode lê-las). O telefone verifica os recibos com a chave do relay do diretório, marca a denúncia «entregue», e ela lê, ainda sem sinal:\n   Resposta: {answer}\n   Estado do caso: {}",
            returned.receipts_accepted,
            CaseStatus::InProgress.label(Language::Pt)
        ),
        &format!(
            "7. The facilitator comes back with {} receipts and the 2 sealed answers she picked up with the survivor's leave (she cannot read them). The phone checks the receipts against the relay key in the directory, marks the report \"delivered\", and she reads, still without signal:\n   Reply: {answer}\n   Case status: {}",
            returned.receipts_accepted,
            CaseStatus::InProgress.label(Language::En)
        ),
    );
    // 8. Later, with signal, her sync clears the answers from the relay;
    // nothing is shown twice.
    let summary = survivor
        .sync_all(&relay, &coordinator_key, &[], now, &mut |_| {})
        .await?;
    check(
        summary.new_messages == 0 && survivor.messages()?.len() == 2,
        "a later sync files nothing twice",
    )?;
    check(
        facilitator.fetch_granted_replies(&relay, now).await? == 0,
        "once she has them, the relay holds no more answers for her",
    )?;
    say(
        "8. Más tarde, con señal, su teléfono sincroniza: el relay borra las respuestas ya leídas; nada aparece dos veces.",
        "8. Mais tarde, com sinal, o telefone dela sincroniza: o relay apaga as respostas já lidas; nada aparece duas vezes.",
        "8. Later, with signal, her phone syncs: the relay deletes the answers she has; nothing shows twice.",
    );

    let sizes: Vec<usize> = amparo_protocol::bundle::decode_prefix(&bundle)
        .0
        .iter()
        .filter_map(|i| match i {
            amparo_protocol::bundle::BundleItem::Envelope(e) => Some(e.as_bytes().len()),
            _ => None,
        })
        .collect();
    say(
        &format!(
            "El relay vio: sobres de tamaños fijos ({sizes:?} bytes), identificadores de buzón opacos y la hora de llegada.\nNo vio: quién escribió ni desde dónde, el texto, la foto, qué sobres forman una denuncia, ni que una facilitadora los llevó y trajo las respuestas."
        ),
        &format!(
            "O relay viu: envelopes de tamanhos fixos ({sizes:?} bytes), identificadores de caixa opacos e a hora de chegada.\nNão viu: quem escreveu nem de onde, o texto, a foto, quais envelopes formam uma denúncia, nem que uma facilitadora os levou e trouxe as respostas."
        ),
        &format!(
            "The relay saw: envelopes of fixed sizes ({sizes:?} bytes), opaque mailbox ids and the hour they arrived.\nIt did not see: who wrote it or from where, the text, the photo, which envelopes make up one report, or that a facilitator carried them and brought the answers back."
        ),
    );
    say(
        "Todo verificado.",
        "Tudo verificado.",
        "Every step verified.",
    );
    Ok(())
}
