//! `amparo report`: what a survivor does — write a report (from flags or
//! questions), send it to a focal point, sync, read the answers, answer
//! back, and hand the outbox to a facilitator as a bundle.

use std::path::{Path, PathBuf};

use amparo_protocol::i18n::Label;
use clap::Subcommand;
use serde_json::json;

use super::focal::{held_directory, office};
use super::wire_name;
use super::write::WriteArgs;
use crate::ctx::{CliResult, Ctx, hex, now, pick_id, relay_client, write_file};
use crate::lang::count;
use crate::present::{progress_bar, show_progress};
use amparo_core::survivor::{DEFAULT_REPLY_BUDGET, ReadBudget};

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
    Sync {
        /// Most data to spend fetching answers, in KiB (default 1280: fine
        /// on paid mobile data; give more on Wi-Fi). What does not fit comes
        /// at the next sync. / Máximo de datos para traer respuestas, en KiB
        /// (1280 por defecto; más con wifi). / Máximo de dados para buscar
        /// respostas, em KiB (1280 por padrão; mais com wi-fi).
        #[arg(long, value_name = "KiB")]
        budget: Option<u64>,
    },
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
        #[arg(allow_hyphen_values = true)]
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
    /// Take in admission tokens someone handed you (or, without a text,
    /// say how many you hold). / Recibir fichas de admisión. / Receber fichas de admissão.
    Tokens {
        /// The text of tokens. / El texto de las fichas. / O texto das fichas.
        #[arg(allow_hyphen_values = true)]
        text: Option<String>,
    },
}

/// Runs a `report` command.
pub async fn run(ctx: &Ctx, cmd: ReportCmd) -> CliResult {
    match cmd {
        ReportCmd::Write(args) => super::write::run(ctx, *args),
        ReportCmd::List => list(ctx),
        ReportCmd::Sync { budget } => sync(ctx, budget).await,
        ReportCmd::Replies { unread } => replies(ctx, unread),
        ReportCmd::Answer { report, text } => {
            let p = ctx.open()?;
            let ids: Vec<[u8; 16]> = p.sent_reports()?.iter().map(|r| r.id).collect();
            let id = pick_id(ctx, &report, &ids)?;
            // After a referral her message goes to the office holding the case.
            let dir = held_directory(&p);
            let to = p.reply_on_report_via(&id, &text, dir.as_ref(), now())?;
            let name = office(ctx, dir.as_ref(), &to);
            ctx.emit(
                ctx.tr(
                    &format!("Mensaje sellado para {name}; sale en la próxima sincronización."),
                    &format!("Mensagem lacrada para {name}; sai na próxima sincronização."),
                    &format!("Message sealed for {name}; it goes at the next sync."),
                ),
                json!({ "queued": true, "report": hex(&id), "to": to }),
            );
            Ok(())
        }
        ReportCmd::Bundle { file } => bundle(ctx, &file),
        ReportCmd::Import { file } => import(ctx, &file),
        ReportCmd::Tokens { text } => {
            let p = ctx.open()?;
            match text {
                Some(t) => super::tokens::take_in(ctx, &p, &t),
                None => super::tokens::tokens(ctx, &p, None, None).await,
            }
        }
    }
}

fn list(ctx: &Ctx) -> CliResult {
    let p = ctx.open()?;
    let reports = p.sent_reports()?;
    let dir = held_directory(&p);
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
        // The status made last, with the office that made it when it is not
        // the one she wrote to (a referral moves her case).
        let mut status = r
            .status
            .map(|s| s.label(ctx.lang).to_string())
            .unwrap_or_else(|| "-".into());
        if let Some(to) = &r.referred_to {
            status.push_str(&format!(" → {}", office(ctx, dir.as_ref(), to)));
        } else if let Some(from) = r.status_from.as_ref().filter(|f| **f != r.focal_point) {
            status.push_str(&format!(" ({})", office(ctx, dir.as_ref(), from)));
        }
        // Worded as `report write` words it: "delivered: 0 of 2".
        let (done, all) = (r.delivered, r.delivered + r.pending);
        let count = ctx.tr(
            &format!("entregados: {done} de {all} sobres"),
            &format!("entregues: {done} de {all} envelopes"),
            &format!("delivered: {done} of {all} envelopes"),
        );
        human.push(format!(
            "{}  {}  {state} ({count})  {}: {status}  {}: {}",
            hex(&r.id),
            office(ctx, dir.as_ref(), &r.focal_point),
            ctx.tr("caso", "caso", "case"),
            ctx.tr("sin leer", "não lidas", "unread"),
            r.unread
        ));
        rows.push(json!({
            "id": hex(&r.id),
            "focal_point": r.focal_point,
            "status_from": r.status_from,
            "referred_to": r.referred_to,
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

async fn sync(ctx: &Ctx, budget_kib: Option<u64>) -> CliResult {
    let budget =
        ReadBudget::new(budget_kib.map_or(DEFAULT_REPLY_BUDGET, |k| k.saturating_mul(1024)));
    let p = ctx.open()?;
    let settings = p.settings()?;
    let relay = relay_client(&settings)?;
    let coordinator = settings.coordinator()?;
    // A timer's alert waits at the relay, not here: not counted.
    let waiting_before: Vec<[u8; 16]> = p
        .sent_reports()?
        .iter()
        .filter(|r| r.pending > 0 && !r.alert)
        .map(|r| r.id)
        .collect();
    let bar = progress_bar(ctx);
    let summary = p
        .sync_all_within(
            &relay,
            &coordinator,
            &settings.extra_relay_keys(),
            now,
            budget,
            &mut |s| show_progress(ctx, &bar, s),
        )
        .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    // The relay signs for envelopes; she thinks in reports (a report with a
    // photo is several envelopes): say both.
    let now_delivered = p
        .sent_reports()?
        .iter()
        .filter(|r| r.pending == 0 && waiting_before.contains(&r.id))
        .count();
    let still = p
        .sent_reports()?
        .iter()
        .filter(|r| r.pending > 0 && !r.alert)
        .count();
    let l = ctx.lang;
    let reports = |n| {
        count(
            l,
            n,
            ("denuncia", "denuncias"),
            ("denúncia", "denúncias"),
            ("report", "reports"),
        )
    };
    let envelopes = |n| {
        count(
            l,
            n,
            ("sobre", "sobres"),
            ("envelope", "envelopes"),
            ("envelope", "envelopes"),
        )
    };
    let (delivered, still, sent) = (
        reports(now_delivered),
        reports(still),
        envelopes(summary.delivered),
    );
    let (handed, refused, new) = (summary.handed_over, summary.refused, summary.new_messages);
    ctx.emit(
        ctx.tr(
            &format!("Entregadas ahora: {delivered} ({sent} con recibo del relay). Aún esperando: {still}. Sobres en manos de un relay local: {handed}. Rechazados por el relay: {refused}. Mensajes nuevos: {new}."),
            &format!("Entregues agora: {delivered} ({sent} com recibo do relay). Ainda aguardando: {still}. Envelopes com um relay local: {handed}. Recusados pelo relay: {refused}. Mensagens novas: {new}."),
            &format!("Delivered now: {delivered} ({sent} signed for by the relay). Still waiting: {still}. Envelopes handed over to a local relay: {handed}. Refused by the relay: {refused}. New messages: {new}."),
        ),
        json!({
            "delivered": summary.delivered,
            "reports_delivered": now_delivered,
            "handed_over": summary.handed_over,
            "refused": summary.refused,
            "postponed": summary.postponed,
            "retry_after_secs": summary.retry_after_secs,
            "new_messages": summary.new_messages,
            "discarded": summary.discarded,
            "reply_bytes": summary.reply_bytes,
            "reply_budget": budget.limit(),
            "replies_left": summary.replies_left,
            "admission": super::tokens::paid_json(&summary.paid),
            "timers": {
                "held": summary.timers.held,
                "sent": summary.timers.sent,
                "released": summary.timers.released,
                "sent_directly": summary.timers.sent_directly,
                "refused": summary.timers.refused,
            },
        }),
    );
    super::tokens::paid_note(ctx, &summary.paid);
    let t = summary.timers;
    if t.held + t.sent > 0 {
        let (held, sent) = (t.held, t.sent);
        ctx.note(ctx.tr(
            &format!("Temporizadores: {held} alerta(s) ya en el relay; {sent} check-in(s) o cancelación(es) enviados."),
            &format!("Temporizadores: {held} alerta(s) já no relay; {sent} check-in(s) ou cancelamento(s) enviados."),
            &format!("Timers: {held} alert(s) now held by the relay; {sent} check-in(s) or cancel(s) sent."),
        ));
    }
    if t.refused > 0 {
        ctx.note(ctx.tr(
            "El relay no acepta la alerta de un temporizador (el punto focal ya no está en su directorio): póngalo de nuevo para otro punto focal.",
            "O relay não aceita o alerta de um temporizador (o ponto focal não está mais no diretório): ative-o de novo para outro ponto focal.",
            "The relay does not take a timer's alert (the focal point is no longer in its directory): set it again for another focal point.",
        ));
    }
    if t.released + t.sent_directly > 0 {
        ctx.note(ctx.tr(
            "Una alerta de temporizador salió hacia el punto focal: no hubo check-in a tiempo.",
            "Um alerta de temporizador saiu para o ponto focal: não houve check-in a tempo.",
            "A timer's alert went to the focal point: there was no check-in in time.",
        ));
    }
    if summary.postponed > 0 {
        let minutes = summary.retry_after_secs.map_or(0, |s| s.div_ceil(60));
        ctx.note(ctx.tr(
            &format!("El relay está lleno o saturado: lo que no aceptó sigue seguro en este teléfono y saldrá en una próxima sincronización (inténtelo de nuevo en unos {minutes} minutos)."),
            &format!("O relay está cheio ou sobrecarregado: o que ele não aceitou continua seguro neste telefone e sairá numa próxima sincronização (tente de novo em uns {minutes} minutos)."),
            &format!("The relay is full or busy: what it did not take is safe on this phone and will go at a later sync (try again in about {minutes} minutes)."),
        ));
    }
    if summary.replies_left {
        let kib = budget.limit() / 1024;
        ctx.note(ctx.tr(
            &format!("Se usó el límite de datos para respuestas de esta sincronización ({kib} KiB): el resto llegará en la próxima. Con wifi puede traer más con --budget."),
            &format!("Foi usado o limite de dados para respostas desta sincronização ({kib} KiB): o resto chegará na próxima. Com wi-fi pode buscar mais com --budget."),
            &format!("This sync used its data limit for answers ({kib} KiB): the rest comes at the next sync. On Wi-Fi you can fetch more with --budget."),
        ));
    }
    match summary.discarded {
        0 => {}
        1 => ctx.note(ctx.tr(
            "Un sobre en sus buzones de respuesta no era para usted (alguien pudo enviarlo para gastar sus datos): se borró sin guardar nada.",
            "Um envelope nas suas caixas de resposta não era para você (alguém pode tê-lo enviado para gastar seus dados): foi apagado sem guardar nada.",
            "One envelope in your answer mailboxes was not for you (someone may have sent it to use up your data): deleted, nothing kept.",
        )),
        n => ctx.note(ctx.tr(
            &format!("{n} sobres en sus buzones de respuesta no eran para usted (alguien pudo enviarlos para gastar sus datos): se borraron sin guardar nada."),
            &format!("{n} envelopes nas suas caixas de resposta não eram para você (alguém pode tê-los enviado para gastar seus dados): foram apagados sem guardar nada."),
            &format!("{n} envelopes in your answer mailboxes were not for you (someone may have sent them to use up your data): deleted, nothing kept."),
        )),
    }
    Ok(())
}

/// `report bundle`: the outbox, with leave to fetch the answers, in a file
/// a facilitator can carry (and cannot read).
fn bundle(ctx: &Ctx, file: &Path) -> CliResult {
    let p = ctx.open()?;
    let bytes = p.export_outbox_bundle_with_grants(now())?;
    let sent = p.sent_reports()?;
    let waiting = sent.iter().filter(|r| r.pending > 0).count();
    let envelopes = p.outbox_len()?;
    write_file(file, &bytes)?;
    let l = ctx.lang;
    let reports = count(
        l,
        waiting,
        ("denuncia por entregar", "denuncias por entregar"),
        ("denúncia por entregar", "denúncias por entregar"),
        ("report waiting", "reports waiting"),
    );
    let sealed = count(
        l,
        envelopes,
        ("sobre sellado", "sobres sellados"),
        ("envelope lacrado", "envelopes lacrados"),
        ("sealed envelope", "sealed envelopes"),
    );
    let answers = count(
        l,
        sent.len(),
        ("denuncia", "denuncias"),
        ("denúncia", "denúncias"),
        ("report", "reports"),
    );
    let (name, size) = (file.display(), bytes.len());
    ctx.emit(
        ctx.tr(
            &format!("En {name} ({size} bytes): {reports} ({sealed}) y el permiso para traerle las respuestas de {answers} (7 días). Quien lo lleve no puede leer nada."),
            &format!("Em {name} ({size} bytes): {reports} ({sealed}) e a permissão para lhe trazer as respostas de {answers} (7 dias). Quem levar não pode ler nada."),
            &format!("In {name} ({size} bytes): {reports} ({sealed}) and leave to bring back the answers to {answers} (7 days). Whoever carries it can read none of it."),
        ),
        json!({ "envelopes": envelopes, "reports": waiting, "grants": sent.len(), "bytes": size, "file": name.to_string() }),
    );
    Ok(())
}

fn replies(ctx: &Ctx, unread_only: bool) -> CliResult {
    let p = ctx.open()?;
    let dir = held_directory(&p);
    // Messages that do not say which office wrote them came from the one she
    // wrote to.
    let written_to: std::collections::HashMap<[u8; 16], String> = p
        .sent_reports()?
        .into_iter()
        .map(|r| (r.id, r.focal_point))
        .collect();
    let mut human = Vec::new();
    let mut rows = Vec::new();
    // Already in the order the focal points made them.
    for m in p.messages()? {
        if unread_only && m.read {
            continue;
        }
        let from = m.stamp.from.as_ref().or_else(|| written_to.get(&m.report));
        let mut line = format!("[{}] ", &hex(&m.report)[..8]);
        if let Some(from) = from {
            line.push_str(&format!("{} — ", office(ctx, dir.as_ref(), from)));
        }
        if let Some(s) = m.status {
            line.push_str(&format!(
                "{}: {}",
                ctx.tr("Estado del caso", "Estado do caso", "Case status"),
                s.label(ctx.lang)
            ));
            if let Some(to) = &m.referred_to {
                line.push_str(&format!(" → {}", office(ctx, dir.as_ref(), to)));
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
            "from": from,
            "hour": m.hour,
            "written_at": m.stamp.at,
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
    let whole = crate::present::import_file(
        ctx,
        &p,
        file,
        &coordinator,
        &settings.extra_relay_keys(),
        crate::present::Importer::Survivor,
    )?;
    if !whole {
        return Err(crate::present::damaged_files(ctx, &[file]));
    }
    Ok(())
}
