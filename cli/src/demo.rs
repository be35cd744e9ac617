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
//!
//! With `--json` it prints one JSON object per line instead of sentences:
//! one per step, with the checks that step verified (stable ids), its
//! figures and its sentence; a step whose check fails is printed with
//! `"verified": false` and the failed check's id, followed by the usual
//! `{"error": ...}` line; the last line of a run that verified everything is
//! `{"verified": true, ...}`.

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
    #[arg(long, env = "AMPARO_RELAY_KEY", allow_hyphen_values = true)]
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
fn start_relay(
    ctx: &Ctx,
    program: &Path,
    dir: &Path,
    coordinator: &VerifyingKey,
) -> CliResult<OwnRelay> {
    let mut child = Command::new(program)
        .arg("--listen=127.0.0.1:0")
        .arg(format!("--data-dir={}", dir.display()))
        .arg(format!("--coordinator-key={}", b64::encode(coordinator.as_bytes())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            let program = program.display();
            CliError::Message(ctx.tr(
                &format!("no se pudo iniciar {program} ({e}); compílelo con `cargo build -p amparo-relay`, indique dónde está con --relay-bin, o use un relay en marcha con --relay y --relay-key"),
                &format!("não foi possível iniciar {program} ({e}); compile-o com `cargo build -p amparo-relay`, indique onde está com --relay-bin, ou use um relay em funcionamento com --relay e --relay-key"),
                &format!("cannot start {program} ({e}); build it with `cargo build -p amparo-relay`, say where it is with --relay-bin, or use a running relay with --relay and --relay-key"),
            ))
        })?;
    let Some(stderr) = child.stderr.take() else {
        let _ = child.kill();
        return fail(ctx.tr(
            "no se puede leer el registro del relay",
            "não é possível ler o registro do relay",
            "the relay's log cannot be read",
        ));
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
        return fail(ctx.tr(
            "el relay no arrancó (en 30 s, o se detuvo): pruebe `amparo-relay --listen 127.0.0.1:0` para ver por qué",
            "o relay não iniciou (em 30 s, ou parou): tente `amparo-relay --listen 127.0.0.1:0` para ver por quê",
            "the relay did not start (within 30 s, or it stopped): try `amparo-relay --listen 127.0.0.1:0` to see why",
        ));
    };
    let field = |after: &str, until: char| {
        line.split_once(after)
            .map(|(_, rest)| rest.split(until).next().unwrap_or("").trim().to_string())
    };
    let (Some(url), Some(key)) = (field("listening on ", ','), field("receipt key ", ' ')) else {
        let _ = child.kill();
        return fail(ctx.tr(
            &format!("línea de registro del relay inesperada: {line}"),
            &format!("linha de registro do relay inesperada: {line}"),
            &format!("unexpected relay log line: {line}"),
        ));
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

/// The story's steps as they are printed: sentences for people, or with
/// `--json` one object per step with the checks it verified.
struct Story<'a> {
    ctx: &'a Ctx,
    step: u32,
    name: &'static str,
    checks: Vec<&'static str>,
}

impl<'a> Story<'a> {
    fn new(ctx: &'a Ctx) -> Self {
        Story {
            ctx,
            step: 0,
            name: "relay",
            checks: Vec::new(),
        }
    }

    /// A new step: its number and stable name.
    fn begin(&mut self, step: u32, name: &'static str) {
        self.step = step;
        self.name = name;
        self.checks.clear();
    }

    /// Checks one claim of the step (`id` for scripts, the sentence in
    /// three languages for people); the demo stops at the first that fails.
    fn check(&mut self, ok: bool, id: &'static str, es: &str, pt: &str, en: &str) -> CliResult {
        if ok {
            self.passed(id);
            Ok(())
        } else {
            Err(self.failed(id, es, pt, en))
        }
    }

    /// A claim that holds.
    fn passed(&mut self, id: &'static str) {
        self.checks.push(id);
    }

    /// The error for a claim that does not hold; with `--json`, the step is
    /// printed first with `"verified": false` and the claim's id.
    fn failed(&mut self, id: &'static str, es: &str, pt: &str, en: &str) -> CliError {
        let what = self.ctx.tr(es, pt, en);
        let sentence = self.ctx.tr(
            &format!(
                "la demo falló en el paso {}: no se cumple que {what}",
                self.step
            ),
            &format!(
                "a demo falhou no passo {}: não se verifica que {what}",
                self.step
            ),
            &format!("demo check failed at step {}: {what}", self.step),
        );
        if self.ctx.json {
            self.line(&serde_json::json!({
                "step": self.step,
                "name": self.name,
                "verified": false,
                "failed_check": id,
                "checks": self.checks,
                "text": sentence,
            }));
        }
        CliError::Message(sentence)
    }

    /// Prints the step: its sentence, or its JSON with `figures` (an object).
    fn done(&mut self, figures: serde_json::Value, es: &str, pt: &str, en: &str) {
        let text = self.ctx.tr(es, pt, en);
        if !self.ctx.json {
            self.ctx.emit(text, serde_json::Value::Null);
            return;
        }
        let mut record = serde_json::json!({
            "step": self.step,
            "name": self.name,
            "verified": true,
            "checks": self.checks,
        });
        if let (Some(all), serde_json::Value::Object(more)) = (record.as_object_mut(), figures) {
            all.extend(more);
            all.insert("text".into(), text.into());
        }
        self.line(&record);
        self.checks.clear();
    }

    fn line(&self, record: &serde_json::Value) {
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), "{record}");
    }
}

/// "1 sobre", "3 sobres".
fn n(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
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
reads = ["deflate_d1"]

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
reads = ["deflate_d1"]

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
    let mut story = Story::new(ctx);

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
        (Some(_), None) => {
            return fail(ctx.tr(
                "--relay necesita --relay-key, para verificar los recibos del relay (`amparo-relay key` la imprime)",
                "--relay precisa de --relay-key, para verificar os recibos do relay (`amparo-relay key` a imprime)",
                "--relay needs --relay-key, to check the relay's receipts (`amparo-relay key` prints it)",
            ));
        }
        (None, _) => {
            own = start_relay(
                ctx,
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
    let relay_key_text = b64::encode(relay_key.as_bytes());
    story.begin(0, "relay");
    story.done(
        serde_json::json!({
            "relay_url": relay_url,
            "receipt_key": relay_key_text,
            "started_here": args.relay.is_none(),
        }),
        &format!("0. Relay en {relay_url} (clave de recibos {relay_key_text})."),
        &format!("0. Relay em {relay_url} (chave de recibos {relay_key_text})."),
        &format!("0. Relay at {relay_url} (receipt key {relay_key_text})."),
    );

    // 1. Two focal points, a directory, signed and published.
    story.begin(1, "directory");
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
        .replace("RELAY_KEY", &relay_key_text);
    let signed = coordinator.sign_directory(&directory_from_toml(&source)?, now())?;
    story.check(
        amparo_protocol::directory::SignedDirectory::verify(signed.as_bytes(), &coordinator_key)
            .is_ok(),
        "directory_signature_verifies",
        "el directorio firmado se verifica con la clave de la coordinación",
        "o diretório assinado se verifica com a chave da coordenação",
        "the signed directory verifies against the coordinator's key",
    )?;
    let published = match relay.publish_directory(signed.as_bytes()).await {
        Ok(()) => true,
        Err(amparo_core::CoreError::Relay { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    story.done(
        serde_json::json!({
            "directory_version": signed.version(),
            "focal_points": ["pe-ucayali-defensoria", "br-roraima-casa-mulher"],
            "published": published,
        }),
        &format!(
            "1. Coordinación: directorio v{} firmado con dos puntos focales (Ucayali, Roraima){}.",
            signed.version(),
            if published {
                " y publicado en el relay"
            } else {
                "; este relay no conoce a esta coordinación (no se inició con su --coordinator-key), así que el directorio viaja en los paquetes"
            }
        ),
        &format!(
            "1. Coordenação: diretório v{} assinado com dois pontos focais (Ucayali, Roraima){}.",
            signed.version(),
            if published {
                " e publicado no relay"
            } else {
                "; este relay não conhece esta coordenação (não foi iniciado com a sua --coordinator-key), então o diretório viaja nos pacotes"
            }
        ),
        &format!(
            "1. Coordinator: directory v{} signed with two focal points (Ucayali, Roraima){}.",
            signed.version(),
            if published {
                " and published to the relay"
            } else {
                "; this relay does not know this coordinator (it was not started with its --coordinator-key), so the directory travels in bundles"
            }
        ),
    );

    // 2. The survivor, offline in Pucallpa.
    story.begin(2, "report_sealed");
    let survivor = profile(&root, "survivor", settings(Role::Survivor))?;
    survivor.import_directory(signed.as_bytes(), &coordinator_key, None)?;
    let Some(directory) = survivor.directory(&coordinator_key)? else {
        return Err(story.failed(
            "directory_imported",
            "ella tiene el directorio firmado",
            "ela tem o diretório assinado",
            "she holds the signed directory",
        ));
    };
    story.passed("directory_imported");
    let suggested = suggest(
        &directory,
        &FocalPointQuery {
            region: Some("PE-UCA".into()),
            need: Some(Need::LegalAdvice),
            language: Some(Language::Es),
        },
        now(),
    );
    let (es, pt, en) = (
        "el directorio sugiere el punto focal de su región",
        "o diretório sugere o ponto focal da região dela",
        "the directory suggests the focal point for her region",
    );
    let Some(focal) = suggested
        .filter(|f| f.id == "pe-ucayali-defensoria")
        .cloned()
    else {
        return Err(story.failed("focal_point_suggested", es, pt, en));
    };
    story.passed("focal_point_suggested");
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
            setting: None,
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
    story.check(
        survivor.drafts()?.is_empty(),
        "draft_plaintext_gone",
        "el borrador en claro desaparece al sellarlo",
        "o rascunho em claro desaparece ao lacrá-lo",
        "the draft's plaintext is gone once sealed",
    )?;
    story.done(
        serde_json::json!({
            "focal_point": focal.id,
            "photo_bytes": raw_photo.len(),
            "outbox_envelopes": outbox,
        }),
        &format!(
            "2. Sobreviviente en Pucallpa, sin señal: escribe una denuncia con una foto ({} KB; se le quitan el GPS y el número del teléfono) y la sella para «{}», que el directorio sugiere para su región: {} en la bandeja de salida.",
            raw_photo.len() / 1000,
            focal.name.get(l),
            n(outbox, "sobre", "sobres")
        ),
        &format!(
            "2. Sobrevivente em Pucallpa, sem sinal: escreve uma denúncia com uma foto ({} KB; o GPS e o número do telefone são removidos) e a lacra para «{}», sugerido pelo diretório para a sua região: {} na caixa de saída.",
            raw_photo.len() / 1000,
            focal.name.get(l),
            n(outbox, "envelope", "envelopes")
        ),
        &format!(
            "2. Survivor in Pucallpa, no signal: writes a report with a photo ({} KB; its GPS position and phone serial are removed) and seals it to \"{}\", which the directory suggests for her region: {} in the outbox.",
            raw_photo.len() / 1000,
            focal.name.get(l),
            n(outbox, "envelope", "envelopes")
        ),
    );

    // 3. Hand-over to the facilitator, as a file.
    story.begin(3, "handed_to_facilitator");
    let bundle_path = root.join("survivor-outbox.amparo");
    let bundle = survivor.export_outbox_bundle_with_grants(now())?;
    std::fs::write(&bundle_path, &bundle).map_err(|e| CliError::Message(e.to_string()))?;
    let facilitator = profile(&root, "facilitator", settings(Role::Facilitator))?;
    let imported = facilitator.import_bundle(&bundle, &coordinator_key, &[])?;
    story.check(
        imported.envelopes == outbox && imported.damaged.is_none(),
        "facilitator_takes_every_envelope",
        "la facilitadora recibe todos los sobres",
        "a facilitadora recebe todos os envelopes",
        "the facilitator takes every envelope",
    )?;
    story.check(
        facilitator.cases(&CaseFilter::default())?.is_empty() && facilitator.messages()?.is_empty(),
        "facilitator_cannot_read",
        "la facilitadora no puede abrir lo que lleva",
        "a facilitadora não pode abrir o que leva",
        "the facilitator cannot open what she carries",
    )?;
    let leaked = String::from_utf8_lossy(&bundle).contains("agentes");
    story.check(
        !leaked,
        "bundle_unreadable",
        "el paquete no contiene texto legible",
        "o pacote não contém texto legível",
        "the bundle holds no readable text",
    )?;
    story.done(
        serde_json::json!({
            "bundle_bytes": bundle.len(),
            "carried_envelopes": imported.envelopes,
        }),
        &format!(
            "3. Le pasa el paquete ({} bytes) a una facilitadora, que lleva {}: ve cuántos, no qué dicen ni de quién son.",
            bundle.len(),
            n(imported.envelopes, "sobre sellado", "sobres sellados")
        ),
        &format!(
            "3. Passa o pacote ({} bytes) a uma facilitadora, que leva {}: vê quantos, não o que dizem nem de quem são.",
            bundle.len(),
            n(imported.envelopes, "envelope lacrado", "envelopes lacrados")
        ),
        &format!(
            "3. She hands the bundle ({} bytes) to a facilitator, who now carries {}: she sees how many, not what they say or whose they are.",
            bundle.len(),
            n(imported.envelopes, "sealed envelope", "sealed envelopes")
        ),
    );

    // 4. The facilitator reaches signal.
    story.begin(4, "delivered_by_facilitator");
    let delivered = facilitator.upload_carried(&relay, &[relay_key]).await?;
    story.check(
        delivered == outbox,
        "receipt_per_envelope",
        "el relay firma un recibo por cada sobre",
        "o relay assina um recibo para cada envelope",
        "the relay signs a receipt for each envelope",
    )?;
    story.done(
        serde_json::json!({ "receipts": delivered }),
        &format!(
            "4. La facilitadora llega a una zona con señal y los entrega: {} por el relay, {}.",
            n(delivered, "recibo firmado", "recibos firmados"),
            if delivered == 1 {
                "verificado"
            } else {
                "verificados"
            }
        ),
        &format!(
            "4. A facilitadora chega a uma zona com sinal e os entrega: {} pelo relay, {}.",
            n(delivered, "recibo assinado", "recibos assinados"),
            if delivered == 1 {
                "verificado"
            } else {
                "verificados"
            }
        ),
        &format!(
            "4. The facilitator reaches signal and delivers them: {} by the relay, verified.",
            n(delivered, "receipt signed", "receipts signed")
        ),
    );

    // 5. The focal point fetches, opens, answers.
    story.begin(5, "focal_point_opens");
    let (_, fetched) = ucayali
        .focal_sync(&relay, &[relay_key], now, &mut |_| {})
        .await?;
    let cases = ucayali.cases(&CaseFilter::default())?;
    let case = ucayali.case(&report_id)?;
    let clean_photo = amparo_core::metadata::strip(&raw_photo)?;
    let photo_ok =
        matches!(case.attachments.first(), Some((_, Some(bytes))) if *bytes == clean_photo);
    story.check(
        fetched.new_cases == 1 && cases.len() == 1 && case.report.text == text,
        "report_opened_as_written",
        "el punto focal abre la denuncia tal como fue escrita",
        "o ponto focal abre a denúncia como foi escrita",
        "the focal point opens the report as written",
    )?;
    story.check(
        photo_ok,
        "photo_whole_without_metadata",
        "la foto llega completa, con SHA-256 verificado y sin sus metadatos",
        "a foto chega completa, com SHA-256 verificado e sem os metadados",
        "the photo arrives whole, SHA-256 checked, without its metadata",
    )?;
    story.check(
        !String::from_utf8_lossy(&clean_photo).contains("-8.3791"),
        "photo_gps_gone",
        "la posición GPS de la foto ya no está",
        "a posição GPS da foto foi removida",
        "the photo's GPS position is gone",
    )?;
    let other = roraima
        .focal_sync(&relay, &[relay_key], now, &mut |_| {})
        .await?
        .1
        .new_cases;
    story.check(
        other == 0,
        "other_focal_point_gets_nothing",
        "el otro punto focal no recibe nada",
        "o outro ponto focal não recebe nada",
        "the other focal point receives nothing",
    )?;
    let labels = |lang| {
        (
            case.report
                .violence
                .iter()
                .map(|v| v.label(lang))
                .collect::<Vec<_>>()
                .join(", "),
            case.report
                .aggressors
                .iter()
                .map(|a| a.label(lang))
                .collect::<Vec<_>>()
                .join(", "),
        )
    };
    let (violence, aggressors) = labels(l);
    story.done(
        serde_json::json!({
            "new_cases": fetched.new_cases,
            "attachments": case.attachments.len(),
        }),
        &format!(
            "5. Defensoría de Ucayali: recibe y abre la denuncia — {violence}; {aggressors}; «{}» — y la foto completa (SHA-256 verificado, sin GPS).",
            case.report.text
        ),
        &format!(
            "5. Defensoria de Ucayali: recebe e abre a denúncia — {violence}; {aggressors}; «{}» — e a foto completa (SHA-256 verificado, sem GPS).",
            case.report.text
        ),
        &format!(
            "5. Ucayali Ombudsman's Office: fetches and opens the report — {violence}; {aggressors}; \"{}\" — and the whole photo (SHA-256 checked, no GPS).",
            case.report.text
        ),
    );
    story.begin(6, "focal_point_answers");
    let answer = "Recibimos su denuncia. Una defensora le escribirá por este canal; no tiene que ir a la comisaría.";
    ucayali.reply_to_case(&report_id, answer, now())?;
    ucayali.set_case_status(&report_id, CaseStatus::InProgress, None, now())?;
    let (sent, _) = ucayali
        .focal_sync(&relay, &[relay_key], now, &mut |_| {})
        .await?;
    story.check(
        sent.delivered == 2,
        "answer_and_status_reach_relay",
        "la respuesta y el cambio de estado llegan al relay",
        "a resposta e a mudança de estado chegam ao relay",
        "the answer and the status update reach the relay",
    )?;
    story.done(
        serde_json::json!({ "sent": sent.delivered, "status": "in_progress" }),
        "6. Responde y marca el caso «en curso»; ambos van sellados al buzón de respuesta de la denuncia, que solo el teléfono de ella puede leer.",
        "6. Responde e marca o caso «em andamento»; ambos vão lacrados à caixa de resposta da denúncia, que só o telefone dela pode ler.",
        "6. It answers and marks the case \"in progress\"; both go sealed to the report's reply mailbox, which only her phone can read.",
    );

    // 7. The facilitator passes by signal again: she picks up the sealed
    // answer with the leave the survivor gave her, and brings it back with
    // the receipts. The survivor reads it without ever having had signal.
    story.begin(7, "answers_carried_back");
    let picked = facilitator.upload_carried(&relay, &[relay_key]).await?;
    let replies = facilitator.fetch_granted_replies(&relay, now).await?;
    story.check(
        picked == 0 && replies == 2,
        "facilitator_picks_up_answers",
        "la facilitadora recoge las dos respuestas selladas",
        "a facilitadora recolhe as duas respostas lacradas",
        "the facilitator picks up the two sealed answers",
    )?;
    // The focal point vouches for her (in person, never in the directory)
    // and she asks the relay for admission tokens, which go back in the
    // bundle: under a flood her phone spends one instead of doing work. A
    // relay that does not hold this demo's directory issues none.
    const TOKENS: usize = 3;
    let voucher = ucayali.vouch(&facilitator.carry_public_key()?, 30, now())?;
    facilitator.set_voucher(&voucher.to_header(), now())?;
    let issued = if published {
        facilitator
            .request_tokens(&relay, &[relay_key], TOKENS, now())
            .await?
    } else {
        0
    };
    let back = facilitator.export_return_bundle_with_tokens(TOKENS)?;
    story.check(
        !String::from_utf8_lossy(&back).contains("defensora"),
        "answers_travel_sealed",
        "las respuestas viajan selladas",
        "as respostas viajam lacradas",
        "the answers travel sealed",
    )?;
    let returned = survivor.import_bundle(&back, &coordinator_key, &[])?;
    let delivered_all = survivor
        .sent_reports()?
        .iter()
        .all(|r| r.pending == 0 && r.delivered == outbox);
    story.check(
        returned.receipts_accepted == outbox && delivered_all,
        "report_delivered",
        "los recibos vuelven y su denuncia figura como entregada",
        "os recibos voltam e a denúncia dela aparece como entregue",
        "the receipts come back and her report shows delivered",
    )?;
    let messages = survivor.messages()?;
    let reply = messages
        .iter()
        .find_map(|m| m.text.clone().filter(|_| m.status.is_none()));
    let status = messages.iter().find_map(|m| m.status);
    story.check(
        returned.messages == 2
            && reply.as_deref() == Some(answer)
            && status == Some(CaseStatus::InProgress),
        "answer_and_status_read",
        "ella lee la respuesta y el estado del caso desde el paquete",
        "ela lê a resposta e o estado do caso a partir do pacote",
        "she reads the answer and the case status from the bundle",
    )?;
    if published {
        story.check(
            issued == TOKENS && returned.tokens == TOKENS && survivor.tokens()?.len() == TOKENS,
            "tokens_handed_on",
            "la facilitadora, avalada por la defensoría, le deja fichas de admisión",
            "a facilitadora, avalizada pela defensoria, deixa-lhe fichas de admissão",
            "the facilitator, vouched for by the focal point, leaves her admission tokens",
        )?;
    }
    let tokens = survivor.tokens()?.len();
    let receipts_back = returned.receipts_accepted;
    story.done(
        serde_json::json!({
            "receipts_back": receipts_back,
            "answers_back": returned.messages,
            "reply": answer,
            "case_status": "in_progress",
            "tokens": tokens,
        }),
        &format!(
            "7. La facilitadora vuelve con {} y las 2 respuestas selladas que recogió con el permiso de ella (no puede leerlas), y le deja {} (si un atacante satura el relay, su teléfono gasta una en lugar de hacer trabajo). El teléfono verifica los recibos con la clave del relay del directorio, marca la denuncia «entregada», y ella lee, todavía sin señal:\n   Respuesta: {answer}\n   Estado del caso: {}",
            n(receipts_back, "recibo", "recibos"),
            n(tokens, "ficha de admisión", "fichas de admisión"),
            CaseStatus::InProgress.label(Language::Es)
        ),
        &format!(
            "7. A facilitadora volta com {} e as 2 respostas lacradas que recolheu com a permissão dela (não pode lê-las), e deixa-lhe {} (se um atacante sobrecarregar o relay, o telefone dela gasta uma em vez de fazer trabalho). O telefone verifica os recibos com a chave do relay do diretório, marca a denúncia «entregue», e ela lê, ainda sem sinal:\n   Resposta: {answer}\n   Estado do caso: {}",
            n(receipts_back, "recibo", "recibos"),
            n(tokens, "ficha de admissão", "fichas de admissão"),
            CaseStatus::InProgress.label(Language::Pt)
        ),
        &format!(
            "7. The facilitator comes back with {} and the 2 sealed answers she picked up with the survivor's leave (she cannot read them), and leaves her {} (if an attacker floods the relay, her phone spends one instead of doing work). The phone checks the receipts against the relay key in the directory, marks the report \"delivered\", and she reads, still without signal:\n   Reply: {answer}\n   Case status: {}",
            n(receipts_back, "receipt", "receipts"),
            n(tokens, "admission token", "admission tokens"),
            CaseStatus::InProgress.label(Language::En)
        ),
    );
    // 8. Later, with signal, her sync clears the answers from the relay;
    // nothing is shown twice.
    story.begin(8, "later_sync");
    let summary = survivor
        .sync_all(&relay, &coordinator_key, &[], now, &mut |_| {})
        .await?;
    story.check(
        summary.new_messages == 0 && survivor.messages()?.len() == 2,
        "nothing_filed_twice",
        "una sincronización posterior no guarda nada dos veces",
        "uma sincronização posterior não guarda nada duas vezes",
        "a later sync files nothing twice",
    )?;
    story.check(
        facilitator.fetch_granted_replies(&relay, now).await? == 0,
        "relay_holds_no_more_answers",
        "una vez que las tiene, el relay ya no guarda respuestas para ella",
        "depois que ela as tem, o relay não guarda mais respostas para ela",
        "once she has them, the relay holds no more answers for her",
    )?;
    story.done(
        serde_json::json!({ "new_messages": summary.new_messages }),
        "8. Más tarde, con señal, su teléfono sincroniza: el relay borra las respuestas ya leídas; nada aparece dos veces.",
        "8. Mais tarde, com sinal, o telefone dela sincroniza: o relay apaga as respostas já lidas; nada aparece duas vezes.",
        "8. Later, with signal, her phone syncs: the relay deletes the answers she has; nothing shows twice.",
    );

    story.begin(9, "what_the_relay_saw");
    let sizes: Vec<usize> = amparo_protocol::bundle::decode_prefix(&bundle)
        .0
        .iter()
        .filter_map(|i| match i {
            amparo_protocol::bundle::BundleItem::Envelope(e) => Some(e.as_bytes().len()),
            _ => None,
        })
        .collect();
    story.done(
        serde_json::json!({
            "relay_saw": ["envelope_sizes", "mailbox_ids", "arrival_hour"],
            "envelope_sizes": sizes,
        }),
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
    let done = ctx.tr(
        "Todo verificado.",
        "Tudo verificado.",
        "Every step verified.",
    );
    ctx.emit(
        &done,
        serde_json::json!({ "verified": true, "steps": 10, "text": done }),
    );
    Ok(())
}
