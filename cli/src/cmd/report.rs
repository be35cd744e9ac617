//! `amparo report`: what a survivor does — write a report (from flags or
//! questions), send it to a focal point, sync, read the answers, answer
//! back, and hand the outbox to a facilitator as a bundle.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use amparo_core::directory::{FocalPointQuery, suggest};
use amparo_core::drafts::DraftForm;
use amparo_core::store::Profile;
use amparo_protocol::directory::{Directory, FocalPoint};
use amparo_protocol::i18n::Label;
use amparo_protocol::payload::{
    AggressorKind, AttachmentKind, IncidentDate, Language, Need, Place, ViolenceKind,
};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{parse_enum, wire_name};
// focal.rs still imports the progress helpers from here.
use crate::ctx::{
    CliError, CliResult, Ctx, fail, hex, now, pick_id, read_file, relay_client, write_file,
};
pub use crate::present::{progress_bar, show_progress};

const VIOLENCE: [ViolenceKind; 11] = [
    ViolenceKind::Physical,
    ViolenceKind::Sexual,
    ViolenceKind::Psychological,
    ViolenceKind::Threats,
    ViolenceKind::Harassment,
    ViolenceKind::Extortion,
    ViolenceKind::Robbery,
    ViolenceKind::ArbitraryDetention,
    ViolenceKind::Discrimination,
    ViolenceKind::Trafficking,
    ViolenceKind::Other,
];
const AGGRESSORS: [AggressorKind; 7] = [
    AggressorKind::Client,
    AggressorKind::PoliceOrSecurity,
    AggressorKind::IntimatePartner,
    AggressorKind::ThirdPartyOrPimp,
    AggressorKind::OrganizedCrime,
    AggressorKind::Other,
    AggressorKind::Unknown,
];
const NEEDS: [Need; 8] = [
    Need::LegalAdvice,
    Need::HealthCare,
    Need::StiHivPep,
    Need::PsychologicalSupport,
    Need::ProtectionShelter,
    Need::Children,
    Need::MigrationStatus,
    Need::Other,
];

/// The report form as flags.
#[derive(Args)]
pub struct WriteArgs {
    /// What happened, in your words. / Qué pasó, con sus palabras. / O que aconteceu.
    #[arg(long)]
    text: Option<String>,
    /// Kind of violence (repeat): physical, sexual, psychological, threats,
    /// harassment, extortion, robbery, arbitrary-detention, discrimination,
    /// trafficking, other.
    #[arg(long = "violence", value_parser = parse_enum::<ViolenceKind>)]
    violence: Vec<ViolenceKind>,
    /// Who did it (repeat): client, police-or-security, intimate-partner,
    /// third-party-or-pimp, organized-crime, other, unknown.
    #[arg(long = "aggressor", value_parser = parse_enum::<AggressorKind>)]
    aggressors: Vec<AggressorKind>,
    /// What you need (repeat): legal-advice, health-care, sti-hiv-pep,
    /// psychological-support, protection-shelter, children, migration-status, other.
    #[arg(long = "need", value_parser = parse_enum::<Need>)]
    needs: Vec<Need>,
    /// Country code, e.g. PE. / Código de país. / Código do país.
    #[arg(long)]
    country: Option<String>,
    /// Region code, e.g. PE-UCA. / Código de región. / Código da região.
    #[arg(long)]
    region: Option<String>,
    /// The place in a few words (optional). / El lugar. / O lugar.
    #[arg(long)]
    place: Option<String>,
    /// When: YYYY, YYYY-MM or YYYY-MM-DD. / Cuándo. / Quando.
    #[arg(long)]
    when: Option<String>,
    /// The date is approximate. / La fecha es aproximada. / A data é aproximada.
    #[arg(long)]
    approximate: bool,
    /// Language for the answers: es, pt, en.
    #[arg(long = "reply-language", value_parser = parse_enum::<Language>)]
    reply_language: Option<Language>,
    /// A photo, audio, video or document to attach (repeat). Photo metadata
    /// (GPS, camera) is removed. / Se borran los datos de ubicación de las fotos.
    /// / Os dados de localização das fotos são apagados.
    #[arg(long = "attach")]
    attach: Vec<PathBuf>,
    /// The focal point's id; without it the best match for your region and
    /// needs is chosen. / Sin esto se elige el más adecuado. / Sem isto, escolhe-se o mais adequado.
    #[arg(long)]
    to: Option<String>,
    /// Keep an encrypted copy of the report on this device.
    /// / Guardar una copia cifrada. / Guardar uma cópia criptografada.
    #[arg(long)]
    keep_copy: bool,
    /// Ask the questions one by one. / Preguntar una por una. / Perguntar uma a uma.
    #[arg(long, short)]
    interactive: bool,
}

/// `amparo report …`
#[derive(Subcommand)]
pub enum ReportCmd {
    /// Write a report and put it in the outbox, sealed (no signal needed).
    /// / Escribir una denuncia y dejarla sellada para enviar (sin señal).
    /// / Escrever uma denúncia e deixá-la lacrada para enviar (sem sinal).
    Write(Box<WriteArgs>),
    /// Your reports and where each stands. / Sus denuncias y su estado.
    /// / Suas denúncias e o estado de cada uma.
    List,
    /// Send what is waiting and fetch answers. / Enviar y recibir respuestas.
    /// / Enviar e receber respostas.
    Sync,
    /// Read the answers from focal points. / Leer las respuestas. / Ler as respostas.
    Replies {
        /// Show only unread ones. / Solo las no leídas. / Só as não lidas.
        #[arg(long)]
        unread: bool,
    },
    /// Write back to the focal point on one of your reports.
    /// / Responder al punto focal. / Responder ao ponto focal.
    Answer {
        /// The report id (its first digits are enough).
        report: String,
        /// The message. / El mensaje. / A mensagem.
        text: String,
    },
    /// Save what is waiting to be sent as a bundle a facilitator can carry
    /// (she cannot read it). / Guardar lo pendiente para que una facilitadora
    /// lo lleve (no puede leerlo). / Salvar o pendente para uma facilitadora levar.
    Bundle {
        /// The file to write. / El archivo. / O arquivo.
        file: PathBuf,
    },
    /// Take in a bundle a facilitator brought back (receipts, directory).
    /// / Recibir lo que trajo la facilitadora. / Receber o que a facilitadora trouxe.
    Import {
        /// The bundle file.
        file: PathBuf,
    },
}

/// Runs a `report` command.
pub async fn run(ctx: &Ctx, cmd: ReportCmd) -> CliResult {
    match cmd {
        ReportCmd::Write(args) => write(ctx, *args),
        ReportCmd::List => list(ctx),
        ReportCmd::Sync => sync(ctx).await,
        ReportCmd::Replies { unread } => replies(ctx, unread),
        ReportCmd::Answer { report, text } => {
            let p = ctx.open()?;
            let ids: Vec<[u8; 16]> = p.sent_reports()?.iter().map(|r| r.id).collect();
            let id = pick_id(ctx, &report, &ids)?;
            p.reply_on_report(&id, &text, now())?;
            ctx.emit(
                ctx.tr(
                    "Mensaje sellado; sale en la próxima sincronización.",
                    "Mensagem lacrada; sai na próxima sincronização.",
                    "Message sealed; it goes at the next sync.",
                ),
                json!({ "queued": true, "report": hex(&id) }),
            );
            Ok(())
        }
        ReportCmd::Bundle { file } => {
            let p = ctx.open()?;
            let bytes = p.export_outbox_bundle_with_grants(now())?;
            let waiting = p.outbox_len()?;
            write_file(&file, &bytes)?;
            ctx.emit(
                ctx.tr(
                    &format!("{waiting} sobres sellados en {} ({} bytes), y el permiso para que le traigan las respuestas (7 días). Quien lo lleve no puede leer nada.", file.display(), bytes.len()),
                    &format!("{waiting} envelopes lacrados em {} ({} bytes), e a permissão para lhe trazerem as respostas (7 dias). Quem levar não pode ler nada.", file.display(), bytes.len()),
                    &format!("{waiting} sealed envelopes in {} ({} bytes), and leave to bring back the answers (7 days). Whoever carries it can read none of it.", file.display(), bytes.len()),
                ),
                json!({ "envelopes": waiting, "bytes": bytes.len(), "file": file.display().to_string() }),
            );
            Ok(())
        }
        ReportCmd::Import { file } => import(ctx, &file),
    }
}

fn directory(ctx: &Ctx, p: &Profile) -> CliResult<Directory> {
    let coordinator = p.settings()?.coordinator()?;
    p.directory(&coordinator)?.ok_or_else(|| {
        CliError::Message(ctx.tr(
            "Este perfil aún no tiene el directorio: sincronice o importe un paquete.",
            "Este perfil ainda não tem o diretório: sincronize ou importe um pacote.",
            "This profile has no directory yet: sync, or import a bundle.",
        ))
    })
}

fn attachment_kind(path: &Path) -> (AttachmentKind, &'static str) {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => (AttachmentKind::Photo, "image/jpeg"),
        "png" => (AttachmentKind::Photo, "image/png"),
        "webp" => (AttachmentKind::Photo, "image/webp"),
        "mp3" => (AttachmentKind::Audio, "audio/mpeg"),
        "ogg" | "opus" => (AttachmentKind::Audio, "audio/ogg"),
        "m4a" => (AttachmentKind::Audio, "audio/mp4"),
        "wav" => (AttachmentKind::Audio, "audio/wav"),
        "mp4" => (AttachmentKind::Video, "video/mp4"),
        "pdf" => (AttachmentKind::Document, "application/pdf"),
        "txt" => (AttachmentKind::Document, "text/plain"),
        _ => (AttachmentKind::Document, "application/octet-stream"),
    }
}

fn parse_when(ctx: &Ctx, text: &str, approximate: bool) -> CliResult<IncidentDate> {
    let mut parts = text.trim().split('-');
    let bad = || {
        CliError::Message(ctx.tr(
            "Fecha: use AAAA, AAAA-MM o AAAA-MM-DD.",
            "Data: use AAAA, AAAA-MM ou AAAA-MM-DD.",
            "Date: use YYYY, YYYY-MM or YYYY-MM-DD.",
        ))
    };
    let year = parts.next().and_then(|y| y.parse().ok()).ok_or_else(bad)?;
    let month = parts
        .next()
        .map(|m| m.parse().map_err(|_| bad()))
        .transpose()?;
    let day = parts
        .next()
        .map(|d| d.parse().map_err(|_| bad()))
        .transpose()?;
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(IncidentDate {
        year,
        month,
        day,
        approximate,
    })
}

/// Reads one line from the person (interactive mode).
fn ask(question: &str) -> CliResult<String> {
    eprint!("{question} ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Message(e.to_string()))?;
    Ok(line.trim().to_string())
}

/// A numbered menu; the answer is a list of numbers (`1 3`, `1,3`).
fn menu<T: Label + Copy>(ctx: &Ctx, question: &str, items: &[T]) -> CliResult<Vec<T>> {
    eprintln!("{question}");
    for (i, item) in items.iter().enumerate() {
        eprintln!("  {}. {}", i + 1, item.label(ctx.lang));
    }
    let answer = ask(&ctx.tr(
        "Números (ej. 1 3), o vacío:",
        "Números (ex. 1 3), ou vazio:",
        "Numbers (e.g. 1 3), or empty:",
    ))?;
    let mut chosen = Vec::new();
    for word in answer.split(|c: char| c == ',' || c.is_whitespace()) {
        if word.is_empty() {
            continue;
        }
        match word
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| items.get(i))
        {
            Some(item) => chosen.push(*item),
            None => {
                return fail(ctx.tr(
                    &format!("{word}: no está en la lista."),
                    &format!("{word}: não está na lista."),
                    &format!("{word}: not in the list."),
                ));
            }
        }
    }
    Ok(chosen)
}

fn interview(ctx: &Ctx, args: &mut WriteArgs) -> CliResult {
    if !std::io::stdin().is_terminal() && std::env::var_os("AMPARO_INTERACTIVE_STDIN").is_none() {
        return fail(ctx.tr(
            "Las preguntas necesitan una terminal.",
            "As perguntas precisam de um terminal.",
            "The questions need a terminal.",
        ));
    }
    eprintln!(
        "{}",
        ctx.tr(
            "Nada sale de este equipo hasta que usted sincronice. Puede dejar en blanco lo que no quiera decir.",
            "Nada sai deste aparelho até você sincronizar. Pode deixar em branco o que não quiser dizer.",
            "Nothing leaves this device until you sync. Leave blank what you do not want to say.",
        )
    );
    if args.violence.is_empty() {
        args.violence = menu(
            ctx,
            &ctx.tr("¿Qué pasó?", "O que aconteceu?", "What happened?"),
            &VIOLENCE,
        )?;
    }
    if args.aggressors.is_empty() {
        args.aggressors = menu(
            ctx,
            &ctx.tr("¿Quién lo hizo?", "Quem fez?", "Who did it?"),
            &AGGRESSORS,
        )?;
    }
    if args.needs.is_empty() {
        args.needs = menu(
            ctx,
            &ctx.tr("¿Qué necesita?", "Do que precisa?", "What do you need?"),
            &NEEDS,
        )?;
    }
    if args.region.is_none() {
        let r = ask(&ctx.tr(
            "Región (código, ej. PE-UCA):",
            "Região (código, ex. BR-RR):",
            "Region (code, e.g. PE-UCA):",
        ))?;
        args.region = (!r.is_empty()).then_some(r);
    }
    if args.when.is_none() {
        let w = ask(&ctx.tr(
            "¿Cuándo? (AAAA-MM-DD, o vacío):",
            "Quando? (AAAA-MM-DD, ou vazio):",
            "When? (YYYY-MM-DD, or empty):",
        ))?;
        args.when = (!w.is_empty()).then_some(w);
    }
    if args.text.is_none() {
        eprintln!(
            "{}",
            ctx.tr(
                "Cuente lo que pasó. Termine con una línea vacía:",
                "Conte o que aconteceu. Termine com uma linha vazia:",
                "Tell what happened. End with an empty line:",
            )
        );
        let mut text = String::new();
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| CliError::Message(e.to_string()))?;
            if line.trim().is_empty() {
                break;
            }
            text.push_str(&line);
            text.push('\n');
        }
        args.text = Some(text.trim_end().to_string());
    }
    Ok(())
}

fn write(ctx: &Ctx, mut args: WriteArgs) -> CliResult {
    if args.interactive {
        interview(ctx, &mut args)?;
    }
    let Some(text) = args.text.clone().filter(|t| !t.trim().is_empty()) else {
        return fail(ctx.tr(
            "Falta el relato: use --text o --interactive.",
            "Falta o relato: use --text ou --interactive.",
            "The account is missing: use --text or --interactive.",
        ));
    };
    let p = ctx.open()?;
    let dir = directory(ctx, &p)?;
    let query = FocalPointQuery {
        region: args.region.clone(),
        need: args.needs.first().copied(),
        language: args.reply_language,
    };
    let focal: FocalPoint = match &args.to {
        Some(id) => dir
            .focal_point(id)
            .filter(|f| f.is_valid_at(now()))
            .cloned()
            .ok_or_else(|| {
                CliError::Message(ctx.tr(
                    &format!("No hay un punto focal vigente con el id {id}."),
                    &format!("Não há um ponto focal vigente com o id {id}."),
                    &format!("No valid focal point has the id {id}."),
                ))
            })?,
        None => suggest(&dir, &query, now()).cloned().ok_or_else(|| {
            CliError::Message(ctx.tr(
                "Ningún punto focal del directorio atiende esa región; elija uno con --to.",
                "Nenhum ponto focal do diretório atende essa região; escolha um com --to.",
                "No focal point in the directory serves that region; pick one with --to.",
            ))
        })?,
    };
    let form = DraftForm {
        violence: args.violence.clone(),
        violence_other: None,
        when: args
            .when
            .as_deref()
            .map(|w| parse_when(ctx, w, args.approximate))
            .transpose()?,
        place: Place {
            country: args.country.clone(),
            region: args.region.clone(),
            detail: args.place.clone(),
        },
        aggressors: args.aggressors.clone(),
        aggressor_other: None,
        needs: args.needs.clone(),
        language: args.reply_language.or(Some(ctx.lang)),
        text,
    };
    let draft = p.create_draft(&form)?;
    // If anything fails from here, the draft stays (sealed) for another try.
    for path in &args.attach {
        let (kind, mime) = attachment_kind(path);
        p.add_attachment_file(&draft, kind, mime, path)?;
    }
    let id = p.send_draft(&draft, &focal, args.keep_copy, now())?;
    let outbox = p.outbox_len()?;
    let name = focal.name.get(ctx.lang);
    ctx.emit(
        ctx.tr(
            &format!("Denuncia {} sellada para {name}. Espera en la bandeja de salida ({outbox} sobres): se envía al sincronizar o con una facilitadora.", hex(&id)),
            &format!("Denúncia {} lacrada para {name}. Espera na caixa de saída ({outbox} envelopes): vai ao sincronizar ou com uma facilitadora.", hex(&id)),
            &format!("Report {} sealed to {name}. It waits in the outbox ({outbox} envelopes): it goes at the next sync or with a facilitator.", hex(&id)),
        ),
        json!({ "report": hex(&id), "focal_point": focal.id, "outbox": outbox }),
    );
    Ok(())
}

fn list(ctx: &Ctx) -> CliResult {
    let p = ctx.open()?;
    let reports = p.sent_reports()?;
    let drafts = p.drafts()?.len();
    let mut human = Vec::new();
    let mut rows = Vec::new();
    for r in &reports {
        let (state, state_name) = if r.pending == 0 {
            (ctx.tr("entregada", "entregue", "delivered"), "delivered")
        } else if r.handed_over > 0 {
            (
                ctx.tr(
                    "en manos del relay local, aún no entregada",
                    "com o relay local, ainda não entregue",
                    "handed over to a local relay, not yet delivered",
                ),
                "handed_over",
            )
        } else {
            (
                ctx.tr("esperando envío", "aguardando envio", "waiting to be sent"),
                "waiting",
            )
        };
        let status = r
            .status
            .map(|s| s.label(ctx.lang).to_string())
            .unwrap_or_else(|| "-".into());
        human.push(format!(
            "{}  {}  {state} ({}/{})  {}: {status}  {}: {}",
            hex(&r.id),
            r.focal_point,
            r.delivered,
            r.delivered + r.pending,
            ctx.tr("caso", "caso", "case"),
            ctx.tr("sin leer", "não lidas", "unread"),
            r.unread
        ));
        rows.push(json!({
            "id": hex(&r.id),
            "focal_point": r.focal_point,
            "delivered": r.delivered,
            "pending": r.pending,
            "state": state_name,
            "handed_over": r.handed_over,
            "status": r.status.map(|s| wire_name(&s)),
            "unread": r.unread,
        }));
    }
    if reports.is_empty() {
        human.push(ctx.tr(
            "No hay denuncias enviadas.",
            "Não há denúncias enviadas.",
            "No reports sent.",
        ));
    }
    if drafts > 0 {
        human.push(ctx.tr(
            &format!("{drafts} borradores."),
            &format!("{drafts} rascunhos."),
            &format!("{drafts} drafts."),
        ));
    }
    ctx.emit(
        human.join("\n"),
        json!({ "reports": rows, "drafts": drafts }),
    );
    Ok(())
}

async fn sync(ctx: &Ctx) -> CliResult {
    let p = ctx.open()?;
    let settings = p.settings()?;
    let relay = relay_client(&settings)?;
    let coordinator = settings.coordinator()?;
    let bar = progress_bar(ctx);
    let summary = p
        .sync_all(
            &relay,
            &coordinator,
            &settings.extra_relay_keys(),
            now,
            &mut |s| show_progress(ctx, &bar, s),
        )
        .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    ctx.emit(
        ctx.tr(
            &format!("Entregados: {}. En manos del relay local: {}. Rechazados: {}. Mensajes nuevos: {}.", summary.delivered, summary.handed_over, summary.refused, summary.new_messages),
            &format!("Entregues: {}. Com o relay local: {}. Recusados: {}. Mensagens novas: {}.", summary.delivered, summary.handed_over, summary.refused, summary.new_messages),
            &format!("Delivered: {}. Handed over to a local relay: {}. Refused: {}. New messages: {}.", summary.delivered, summary.handed_over, summary.refused, summary.new_messages),
        ),
        json!({ "delivered": summary.delivered, "handed_over": summary.handed_over, "refused": summary.refused, "new_messages": summary.new_messages }),
    );
    Ok(())
}

fn replies(ctx: &Ctx, unread_only: bool) -> CliResult {
    let p = ctx.open()?;
    let mut human = Vec::new();
    let mut rows = Vec::new();
    for m in p.messages()? {
        if unread_only && m.read {
            continue;
        }
        let mut line = format!("[{}] ", &hex(&m.report)[..8]);
        if let Some(s) = m.status {
            line.push_str(&format!(
                "{}: {}",
                ctx.tr("Estado del caso", "Estado do caso", "Case status"),
                s.label(ctx.lang)
            ));
            if let Some(to) = &m.referred_to {
                line.push_str(&format!(" → {to}"));
            }
            if let Some(t) = &m.text {
                line.push_str(&format!(" — {t}"));
            }
        } else if let Some(t) = &m.text {
            line.push_str(&format!(
                "{}: {t}",
                ctx.tr("Respuesta", "Resposta", "Reply")
            ));
        }
        human.push(line);
        rows.push(json!({
            "id": hex(&m.id),
            "report": hex(&m.report),
            "text": m.text,
            "status": m.status.map(|s| wire_name(&s)),
            "referred_to": m.referred_to,
            "read": m.read,
        }));
        p.mark_read(&m.id)?;
    }
    if human.is_empty() {
        human.push(ctx.tr("No hay mensajes.", "Não há mensagens.", "No messages."));
    }
    ctx.emit(human.join("\n"), json!({ "messages": rows }));
    Ok(())
}

fn import(ctx: &Ctx, file: &Path) -> CliResult {
    let p = ctx.open()?;
    let settings = p.settings()?;
    let coordinator = settings.coordinator()?;
    // The core trusts the relays of the directory held, and of a newer one
    // arriving in the bundle (it comes before the receipts).
    let report = p.import_bundle(
        &read_file(file)?,
        &coordinator,
        &settings.extra_relay_keys(),
    )?;
    crate::present::print_import(ctx, &report);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            lang: Language::En,
            json: false,
            profile: PathBuf::new(),
        }
    }

    #[test]
    fn dates_parse_at_each_precision() {
        let d = parse_when(&ctx(), "2026-11", true).unwrap();
        assert_eq!(
            (d.year, d.month, d.day, d.approximate),
            (2026, Some(11), None, true)
        );
        assert_eq!(parse_when(&ctx(), "2026", false).unwrap().month, None);
        assert_eq!(
            parse_when(&ctx(), "2026-11-03", false).unwrap().day,
            Some(3)
        );
        assert!(parse_when(&ctx(), "ayer", false).is_err());
        assert!(parse_when(&ctx(), "2026-11-03-1", false).is_err());
    }

    #[test]
    fn attachment_kinds_follow_the_extension() {
        assert_eq!(attachment_kind(Path::new("a.JPG")).0, AttachmentKind::Photo);
        assert_eq!(attachment_kind(Path::new("a.ogg")).1, "audio/ogg");
        assert_eq!(attachment_kind(Path::new("a")).0, AttachmentKind::Document);
    }
}
