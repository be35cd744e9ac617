//! `amparo focal`: what a focal point does — fetch and open its mailbox,
//! list and read cases, answer, set status, refer, and export a case for a
//! legal file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use amparo_core::coordinator::{focal_point_source, format_date};
use amparo_core::focal::{Case, CaseEventKind, CaseFilter, FetchProgress, Listing, RejectReason};
use amparo_core::store::Profile;
use amparo_protocol::b64;
use amparo_protocol::directory::Directory;
use amparo_protocol::i18n::Label;
use amparo_protocol::payload::{CaseStatus, Need};
use amparo_protocol::statistics::{GbvContext, GbvType, Month};
use clap::Subcommand;
use serde_json::json;

use super::{labels, parse_enum, wire_name};
use crate::ctx::{CliError, CliResult, Ctx, fail, hex, now, pick_id, relay_client, write_file};
use crate::lang::count;
use crate::present::{progress_bar, show_progress};

/// `amparo focal …`
#[derive(Subcommand)]
pub enum FocalCmd {
    /// Print this focal point's public keys as lines for the coordinator's
    /// directory file.
    Public,
    /// Vouch for a facilitator you know in person (her `amparo carry key`):
    /// with the voucher she can ask the relay for admission tokens.
    Vouch {
        /// Her key.
        #[arg(allow_hyphen_values = true)]
        key: String,
        /// Days the voucher lasts (1 to 92).
        #[arg(long, default_value_t = 30)]
        days: u64,
    },
    /// Admission tokens: ask the relay for some (--ask N), or hand some on
    /// as a text (--give N); each lets one report through when the relay
    /// is pressed, with no work on the survivor's phone.
    Tokens {
        /// How many to ask the relay for.
        #[arg(long, value_name = "N", conflicts_with = "give")]
        ask: Option<usize>,
        /// How many to hand on, as a text.
        #[arg(long, value_name = "N")]
        give: Option<usize>,
    },
    /// Send queued answers, then fetch, open and file the mailbox.
    Sync,
    /// List cases, optionally filtered.
    Cases {
        /// received, in-progress, referred, closed.
        #[arg(long, value_parser = parse_enum::<CaseStatus>)]
        status: Option<CaseStatus>,
        /// A kind of help the report asks for (e.g. legal-advice).
        #[arg(long, value_parser = parse_enum::<Need>)]
        need: Option<Need>,
        /// Region code (e.g. PE-UCA).
        #[arg(long)]
        region: Option<String>,
    },
    /// Show a case; save its attachments to a folder, or the whole case as an
    /// HTML page for a legal file.
    Show {
        /// The case id (its first digits are enough).
        case: String,
        /// Folder to save the attachments in.
        #[arg(long)]
        attachments: Option<PathBuf>,
        /// Write the case as a self-contained HTML page (print it to PDF from
        /// a browser).
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Answer the survivor (sealed to her reply channel; sent at the next sync).
    Reply {
        /// The case id.
        case: String,
        /// The answer.
        #[arg(allow_hyphen_values = true)]
        text: String,
    },
    /// Set a case's status and tell the survivor.
    Status {
        /// The case id.
        case: String,
        /// received, in-progress, closed (use `refer` to refer).
        #[arg(value_parser = parse_enum::<CaseStatus>)]
        status: CaseStatus,
        /// A message to the survivor with the update.
        #[arg(long, allow_hyphen_values = true)]
        message: Option<String>,
    },
    /// Refer a case to another focal point of the directory: the report and
    /// its attachments are sealed again to that focal point's key.
    Refer {
        /// The case id.
        case: String,
        /// The other focal point's directory id.
        to: String,
        /// A note for the other focal point (the survivor does not see it).
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        note: String,
    },
    /// Classify a case for statistics as GBVIMS does: its core type and
    /// its context (internal: never sent; counted only if she agreed).
    Classify {
        /// The case id.
        case: String,
        /// rape, sexual-assault, physical-assault, forced-marriage,
        /// denial-of-resources, psychological-abuse.
        #[arg(long = "type", value_parser = super::stats::parse_gbv, conflicts_with = "clear")]
        gbv_type: Option<GbvType>,
        /// Context flags, comma-separated: intimate-partner-violence,
        /// child-sexual-abuse, sexual-exploitation, trafficking.
        #[arg(long, value_delimiter = ',', value_parser = super::stats::parse_context)]
        context: Vec<GbvContext>,
        /// Remove the type (the case is then not counted).
        #[arg(long)]
        clear: bool,
    },
    /// This office's own statistics, month by month (everything counted,
    /// nothing suppressed: for the office's eyes).
    Stats {
        /// One month (YYYY-MM); otherwise every month with cases.
        #[arg(long, value_parser = super::stats::parse_month)]
        month: Option<Month>,
        /// As CSV (month, region, setting, dimension, column, count).
        #[arg(long)]
        csv: bool,
        /// Show the table as it would be shared with the coordinator
        /// (after suppression), without sending it.
        #[arg(long, requires = "month")]
        shared: bool,
    },
    /// Publish a month's statistics to the coordinator: small counts
    /// suppressed, signed, sealed to the coordinator's key; sent at the
    /// next sync. Once per month, after it is over.
    PublishStats {
        /// The month (YYYY-MM).
        #[arg(value_parser = super::stats::parse_month)]
        month: Month,
    },
    /// Take part in the statistics sum, where the coordinator sees only
    /// the total over offices: make this office's keys for the coming
    /// year (once), send its masked month to each round it is in, and the
    /// shares it holds when a round closes. Shows each round's offices:
    /// check they are the ones you know. Queued; sent at the next sync.
    Aggregate {
        /// Stop taking part: the keys of months not yet sent are deleted
        /// (this office still reveals the shares it holds for others).
        #[arg(long)]
        leave: bool,
    },
    /// Envelopes that could not be opened (junk, tampered, or not for this
    /// focal point): how many for each reason, with a few examples. Only a
    /// small record of each is kept, and their bytes up to a limit; past
    /// it, only counts.
    Rejected {
        /// Forget them all: records, kept bytes and counts.
        #[arg(long)]
        clear: bool,
        /// Examples shown for each reason.
        #[arg(long, default_value_t = 3)]
        examples: usize,
        /// From now on keep records of at most this many (default 1000;
        /// past it only counts).
        #[arg(long, value_name = "N")]
        keep_records: Option<u32>,
        /// From now on keep at most this many MiB of their bytes (default 8).
        #[arg(long, value_name = "MIB")]
        keep_mib: Option<u64>,
    },
}

/// Runs a `focal` command.
pub async fn run(ctx: &Ctx, cmd: FocalCmd) -> CliResult {
    let p = ctx.open()?;
    match cmd {
        FocalCmd::Public => {
            let public = p.focal_public()?;
            let id = p
                .settings()?
                .focal_point_id
                .unwrap_or_else(|| "CHOOSE-AN-ID".into());
            ctx.emit(
                focal_point_source(&id, &public).trim_end(),
                json!({
                    "id": id,
                    "sealing_key": b64::encode(&public.sealing_key),
                    "signing_key": b64::encode(&public.signing_key),
                    "mailbox": public.mailbox().to_string(),
                }),
            );
            Ok(())
        }
        FocalCmd::Sync => sync(ctx, &p).await,
        FocalCmd::Vouch { key, days } => super::tokens::vouch(ctx, &p, &key, days),
        FocalCmd::Tokens { ask, give } => super::tokens::tokens(ctx, &p, ask, give).await,
        FocalCmd::Cases {
            status,
            need,
            region,
        } => {
            let filter = CaseFilter {
                status,
                need,
                region,
                since_hour: None,
            };
            let cases = p.cases(&filter)?;
            let dir = held_directory(&p);
            let mut human = Vec::new();
            for c in &cases {
                let mut line = format!(
                    "{}  {:<12}  {}  {}  {}",
                    hex(&c.id),
                    c.status.label(ctx.lang),
                    hour(c.reported_hour),
                    c.region.as_deref().unwrap_or("-"),
                    labels(&c.needs, ctx.lang),
                );
                if let Some(from) = &c.referred_by {
                    let _ = write!(
                        line,
                        "  ({} {})",
                        ctx.tr("derivado por", "encaminhado por", "referred by"),
                        office(ctx, dir.as_ref(), from)
                    );
                }
                if let Some(to) = &c.referred_to {
                    let _ = write!(line, "  → {}", office(ctx, dir.as_ref(), to));
                }
                if let Some(a) = &c.alert {
                    line = format!("{}  {line}", alert_label(ctx, a));
                }
                human.push(line);
            }
            if cases.is_empty() {
                human.push(ctx.tr("No hay casos.", "Não há casos.", "No cases."));
            }
            let rows: Vec<_> = cases
                .iter()
                .map(|c| {
                    json!({
                        "id": hex(&c.id),
                        "status": wire_name(&c.status),
                        "reported_hour": c.reported_hour,
                        "region": c.region,
                        "needs": c.needs.iter().map(wire_name).collect::<Vec<_>>(),
                        "referred_by": c.referred_by,
                        "referred_to": c.referred_to,
                        "alert": c.alert.map(|a| json!({
                            "set_hour": a.set_hour,
                            "due_hour": a.due_hour,
                            "every_hours": a.every_hours,
                            "received_hour": a.received_hour,
                        })),
                    })
                })
                .collect();
            ctx.emit(human.join("\n"), json!({ "cases": rows }));
            Ok(())
        }
        FocalCmd::Show {
            case,
            attachments,
            html,
        } => {
            let id = case_id(ctx, &p, &case)?;
            let c = p.case(&id)?;
            let saved = match &attachments {
                Some(dir) => save_attachments(&c, dir)?,
                None => Vec::new(),
            };
            let dir = held_directory(&p);
            if let Some(file) = &html {
                let own = p.settings()?.focal_point_id;
                let page = case_html(ctx, &c, dir.as_ref(), own.as_deref(), now());
                write_file(file, page.as_bytes())?;
            }
            ctx.emit(
                case_text(ctx, &c, &saved, dir.as_ref()),
                case_json(&c, &saved),
            );
            Ok(())
        }
        FocalCmd::Reply { case, text } => {
            let id = case_id(ctx, &p, &case)?;
            p.reply_to_case(&id, &text, now())?;
            ctx.emit(
                ctx.tr(
                    "Respuesta sellada al canal de la persona; sale en la próxima sincronización.",
                    "Resposta lacrada ao canal da pessoa; sai na próxima sincronização.",
                    "Answer sealed to the person's reply channel; it goes at the next sync.",
                ),
                json!({ "queued": true, "case": hex(&id) }),
            );
            Ok(())
        }
        FocalCmd::Status {
            case,
            status,
            message,
        } => {
            let id = case_id(ctx, &p, &case)?;
            p.set_case_status(&id, status, message.as_deref(), now())?;
            ctx.emit(
                format!(
                    "{}: {}",
                    ctx.tr("Estado del caso", "Estado do caso", "Case status"),
                    status.label(ctx.lang)
                ),
                json!({ "case": hex(&id), "status": wire_name(&status) }),
            );
            Ok(())
        }
        FocalCmd::Refer { case, to, note } => {
            let id = case_id(ctx, &p, &case)?;
            let settings = p.settings()?;
            let Some(from) = settings.focal_point_id.clone() else {
                return fail(ctx.tr(
                    "Falta el id de este punto focal: `amparo profile set --focal-point-id ID`.",
                    "Falta o id deste ponto focal: `amparo profile set --focal-point-id ID`.",
                    "This focal point's id is not set: `amparo profile set --focal-point-id ID`.",
                ));
            };
            let directory = p.directory(&settings.coordinator()?)?.ok_or_else(|| {
                CliError::Message(ctx.tr(
                    "No hay directorio: `amparo directory refresh`.",
                    "Não há diretório: `amparo directory refresh`.",
                    "No directory: `amparo directory refresh`.",
                ))
            })?;
            if to == from {
                return fail(ctx.tr(
                    &format!("{to} es este mismo punto focal: derive el caso a otra oficina del directorio (`amparo directory show`)."),
                    &format!("{to} é este mesmo ponto focal: encaminhe o caso a outro escritório do diretório (`amparo directory show`)."),
                    &format!("{to} is this focal point itself: refer the case to another office of the directory (`amparo directory show`)."),
                ));
            }
            let Some(target) = directory.focal_point(&to).filter(|f| f.is_valid_at(now())) else {
                return fail(ctx.tr(
                    &format!("El directorio no tiene un punto focal vigente {to}."),
                    &format!("O diretório não tem um ponto focal vigente {to}."),
                    &format!("The directory has no valid focal point {to}."),
                ));
            };
            p.refer_case(&id, &from, target, &note, now())?;
            let name = office(ctx, Some(&directory), &to);
            ctx.emit(
                ctx.tr(
                    &format!("Caso derivado a {name}; sale en la próxima sincronización."),
                    &format!("Caso encaminhado a {name}; sai na próxima sincronização."),
                    &format!("Case referred to {name}; it goes at the next sync."),
                ),
                json!({ "case": hex(&id), "referred_to": to }),
            );
            Ok(())
        }
        FocalCmd::Rejected {
            clear,
            examples,
            keep_records,
            keep_mib,
        } => rejected(ctx, &p, clear, examples, keep_records, keep_mib),
        FocalCmd::Classify {
            case,
            gbv_type,
            context,
            clear,
        } => {
            let id = case_id(ctx, &p, &case)?;
            let gbv_type = match (gbv_type, clear) {
                (_, true) => None,
                (Some(t), false) => Some(t),
                (None, false) => p.case(&id)?.summary.gbv_type,
            };
            super::stats::classify(ctx, &p, id, gbv_type, &context)
        }
        FocalCmd::Stats { month, csv, shared } => match (shared, month) {
            (true, Some(m)) => {
                let table = p.shareable_month(m)?;
                ctx.emit(
                    serde_json::to_string_pretty(&table).unwrap_or_default(),
                    json!({ "table": table }),
                );
                Ok(())
            }
            _ => super::stats::focal_stats(ctx, &p, month, csv),
        },
        FocalCmd::PublishStats { month } => super::stats::publish(ctx, &p, month),
        FocalCmd::Aggregate { leave } => super::stats::aggregate(ctx, &p, leave),
    }
}

/// `focal rejected`: sets the limits if asked, clears if asked, then
/// summarises what is held.
fn rejected(
    ctx: &Ctx,
    p: &Profile,
    clear: bool,
    examples: usize,
    keep_records: Option<u32>,
    keep_mib: Option<u64>,
) -> CliResult {
    if keep_records.is_some() || keep_mib.is_some() {
        let mut limits = p.rejected_limits()?;
        if let Some(n) = keep_records {
            limits.max_records = n;
        }
        if let Some(mib) = keep_mib {
            limits.max_bytes = mib.saturating_mul(1024 * 1024);
        }
        p.set_rejected_limits(limits)?;
    }
    let cleared = if clear {
        Some(p.clear_rejected()?)
    } else {
        None
    };
    let s = p.rejected_summary(examples)?;
    let l = ctx.lang;
    let mut human = Vec::new();
    if let Some(n) = cleared {
        human.push(ctx.tr(
            &format!("Borrados: {}.", unreadable(l, n)),
            &format!("Apagados: {}.", unreadable(l, n)),
            &format!("Cleared: {}.", unreadable(l, n)),
        ));
    }
    if s.total == 0 {
        if cleared.is_none() {
            human.push(ctx.tr(
                "Ningún sobre ilegible.",
                "Nenhum envelope ilegível.",
                "No unreadable envelopes.",
            ));
        }
    } else {
        let total = unreadable(l, s.total);
        let span = match (s.first_hour, s.last_hour) {
            (Some(a), Some(b)) => format!(" ({} – {})", hour(a), hour(b)),
            _ => String::new(),
        };
        human.push(format!("{total}{span}:"));
        for (reason, n) in &s.by_reason {
            human.push(format!("  {n:>9}  {}", reason_text(ctx, *reason)));
            for r in s.examples.iter().filter(|r| r.reason == *reason) {
                let when = if r.hour == 0 {
                    String::new()
                } else {
                    format!("  {}", hour(r.hour))
                };
                let kept = if r.bytes_kept {
                    ctx.tr("  (guardado)", "  (guardado)", "  (kept)")
                } else {
                    String::new()
                };
                human.push(format!(
                    "             {}  {} bytes{when}{kept}",
                    r.id, r.size
                ));
            }
        }
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
        let (records, bytes) = (s.records, mib(s.bytes_kept));
        let (max_records, max_bytes) = (s.limits.max_records, mib(s.limits.max_bytes));
        human.push(ctx.tr(
            &format!(
                "Guardados: {records} registros y {bytes} de sobres (límites: {max_records} registros, {max_bytes}); pasados los límites solo se cuentan."
            ),
            &format!(
                "Guardados: {records} registros e {bytes} de envelopes (limites: {max_records} registros, {max_bytes}); passados os limites só se contam."
            ),
            &format!(
                "Kept: {records} records and {bytes} of envelopes (limits: {max_records} records, {max_bytes}); past the limits they are only counted."
            ),
        ));
        human.push(ctx.tr(
            "Para borrarlos: amparo focal rejected --clear",
            "Para apagá-los: amparo focal rejected --clear",
            "To clear them: amparo focal rejected --clear",
        ));
    }
    let by_reason: serde_json::Map<String, serde_json::Value> = s
        .by_reason
        .iter()
        .map(|(r, n)| (r.code().to_string(), json!(n)))
        .collect();
    let rows: Vec<_> = s
        .examples
        .iter()
        .map(|r| {
            json!({
                "envelope": r.id.to_string(),
                "code": r.reason.code(),
                "reason": r.detail,
                "size": r.size,
                "hour": (r.hour != 0).then_some(r.hour),
                "bytes_kept": r.bytes_kept,
            })
        })
        .collect();
    ctx.emit(
        human.join("\n"),
        json!({
            "cleared": cleared,
            "total": s.total,
            "by_reason": by_reason,
            "records": s.records,
            "bytes_kept": s.bytes_kept,
            "first_hour": s.first_hour,
            "last_hour": s.last_hour,
            "limits": { "max_records": s.limits.max_records, "max_bytes": s.limits.max_bytes },
            "rejected": rows,
        }),
    );
    Ok(())
}

/// "N unreadable envelopes", in the session's language.
fn unreadable(l: amparo_protocol::payload::Language, n: u64) -> String {
    count(
        l,
        usize::try_from(n).unwrap_or(usize::MAX),
        ("sobre ilegible", "sobres ilegibles"),
        ("envelope ilegível", "envelopes ilegíveis"),
        ("unreadable envelope", "unreadable envelopes"),
    )
}

/// Why an envelope could not be filed, for people.
fn reason_text(ctx: &Ctx, r: RejectReason) -> String {
    match r {
        RejectReason::DoesNotOpen => ctx.tr(
            "no se abren con las claves de este punto focal (sellados a otra clave, o alterados): basura o ataque",
            "não abrem com as chaves deste ponto focal (lacrados para outra chave, ou alterados): lixo ou ataque",
            "do not open with this focal point's keys (sealed to another key, or altered): junk or an attack",
        ),
        RejectReason::Malformed => ctx.tr(
            "se abren, pero su contenido está dañado",
            "abrem, mas seu conteúdo está danificado",
            "open, but what is inside is damaged",
        ),
        RejectReason::UnknownCase => ctx.tr(
            "mensajes de seguimiento de un caso que este punto focal no tiene",
            "mensagens de acompanhamento de um caso que este ponto focal não tem",
            "follow-ups for a case this focal point does not hold",
        ),
        RejectReason::NotForFocalPoint => ctx.tr(
            "actualizaciones de estado, que solo reciben las personas que denuncian",
            "atualizações de estado, que só as pessoas que denunciam recebem",
            "status updates, which only the people reporting receive",
        ),
        RejectReason::Other => ctx.tr("otros motivos", "outros motivos", "other reasons"),
    }
}

fn case_id(ctx: &Ctx, p: &Profile, text: &str) -> CliResult<[u8; 16]> {
    let ids: Vec<[u8; 16]> = p
        .cases(&CaseFilter::default())?
        .iter()
        .map(|c| c.id)
        .collect();
    pick_id(ctx, text, &ids)
}

/// An hour stamp (hours since the epoch) as a UTC date and hour.
/// A check-in timer's alert, as a case line starts: urgent, when set, due
/// and received.
fn alert_label(ctx: &Ctx, a: &amparo_core::focal::AlertSummary) -> String {
    let received = a.received_hour.map(hour).unwrap_or_else(|| "-".into());
    ctx.tr(
        &format!(
            "¡ALERTA! (temporizador puesto {}, debía salir {}, recibida {}: dejó de hacer check-in)",
            hour(a.set_hour),
            hour(a.due_hour),
            received
        ),
        &format!(
            "ALERTA! (temporizador ativado {}, devia sair {}, recebido {}: parou de fazer check-in)",
            hour(a.set_hour),
            hour(a.due_hour),
            received
        ),
        &format!(
            "ALERT! (timer set {}, due {}, received {}: she stopped checking in)",
            hour(a.set_hour),
            hour(a.due_hour),
            received
        ),
    )
}

pub(crate) fn hour(h: u32) -> String {
    format!(
        "{} {:02}h",
        amparo_core::coordinator::format_date(u64::from(h) * 3600),
        h % 24
    )
}

/// A time (seconds since the epoch) as a UTC date, hour and minute.
pub(crate) fn minute(secs: u64) -> String {
    format!(
        "{} {:02}:{:02} UTC",
        format_date(secs),
        secs / 3600 % 24,
        secs / 60 % 60
    )
}

/// The directory this profile holds, verified; none if it has none (or no
/// pinned coordinator): names then fall back to ids.
pub(crate) fn held_directory(p: &Profile) -> Option<Directory> {
    let coordinator = p.settings().ok()?.coordinator().ok()?;
    p.directory(&coordinator).ok().flatten()
}

/// An office as people know it: its name in the directory, with its id;
/// the bare id if the directory does not list it.
pub(crate) fn office(ctx: &Ctx, directory: Option<&Directory>, id: &str) -> String {
    match directory.and_then(|d| d.focal_point(id)) {
        Some(f) => format!("{} ({id})", f.name.get(ctx.lang)),
        None => id.to_string(),
    }
}

/// A warning when the directory does not let survivors reach this focal
/// point: its mailbox then stays empty, and nothing else would say why.
fn listing_warning(ctx: &Ctx, listing: Listing, id: Option<&str>) -> Option<String> {
    let id = id.unwrap_or("-");
    Some(match listing {
        Listing::Listed => return None,
        Listing::NoDirectory => ctx.tr(
            "Aviso: este perfil aún no tiene el directorio; no puede comprobar si las personas pueden enviarle denuncias.",
            "Aviso: este perfil ainda não tem o diretório; não é possível verificar se as pessoas podem lhe enviar denúncias.",
            "Warning: this profile has no directory yet; it cannot check that people can send reports to it.",
        ),
        Listing::NoId => ctx.tr(
            "Aviso: falta el id de este punto focal (`amparo profile set --focal-point-id ID`); sin él no se puede comprobar el directorio.",
            "Aviso: falta o id deste ponto focal (`amparo profile set --focal-point-id ID`); sem ele não é possível verificar o diretório.",
            "Warning: this focal point's id is not set (`amparo profile set --focal-point-id ID`); the directory cannot be checked without it.",
        ),
        Listing::NotListed => ctx.tr(
            &format!("Aviso: el directorio no incluye a {id}: nadie puede enviarle denuncias. Pida a la coordinación que lo agregue (`amparo focal public` da las líneas)."),
            &format!("Aviso: o diretório não inclui {id}: ninguém pode lhe enviar denúncias. Peça à coordenação que o inclua (`amparo focal public` dá as linhas)."),
            &format!("Warning: the directory does not list {id}: nobody can send it reports. Ask the coordinator to add it (`amparo focal public` prints the lines)."),
        ),
        Listing::OtherKeys => ctx.tr(
            &format!("Aviso: el directorio lista {id} con otras claves: las denuncias se sellan a claves que este perfil no tiene. Envíe a la coordinación las de `amparo focal public`."),
            &format!("Aviso: o diretório lista {id} com outras chaves: as denúncias são lacradas para chaves que este perfil não tem. Envie à coordenação as de `amparo focal public`."),
            &format!("Warning: the directory lists {id} with other keys: reports are sealed to keys this profile does not hold. Send the coordinator those of `amparo focal public`."),
        ),
        Listing::NotValidNow => ctx.tr(
            &format!("Aviso: la entrada de {id} en el directorio no está vigente hoy: los teléfonos no la ofrecen. Pida a la coordinación que renueve sus fechas."),
            &format!("Aviso: a entrada de {id} no diretório não está vigente hoje: os telefones não a oferecem. Peça à coordenação que renove as datas."),
            &format!("Warning: {id}'s entry in the directory is not valid today: phones do not offer it. Ask the coordinator to renew its dates."),
        ),
    })
}

async fn sync(ctx: &Ctx, p: &Profile) -> CliResult {
    let settings = p.settings()?;
    let relay = relay_client(&settings)?;
    if let Ok(coordinator) = settings.coordinator() {
        p.refresh_directory(&relay, &coordinator).await?;
    }
    let keys = p.trusted_relay_keys()?;
    let bar = progress_bar(ctx);
    let spinner = (!ctx.json).then(indicatif::ProgressBar::new_spinner);
    let (sent, fetched) = p
        .focal_sync_with_progress(
            &relay,
            &keys,
            now,
            &mut |s| show_progress(ctx, &bar, s),
            &mut |f| {
                if let Some(s) = &spinner {
                    s.set_message(fetch_progress(ctx, f));
                    s.tick();
                }
            },
        )
        .await?;
    for b in [bar, spinner].into_iter().flatten() {
        b.finish_and_clear();
    }
    let listing = match settings.coordinator() {
        Ok(coordinator) => p.focal_listing(&coordinator, now())?,
        Err(_) => Listing::NoDirectory,
    };
    let warning = listing_warning(ctx, listing, settings.focal_point_id.as_deref());
    if let Some(w) = &warning {
        ctx.note(w);
    }
    if fetched.more {
        ctx.note(ctx.tr(
            "Quedan más sobres en el buzón (¿una avalancha de basura?): vuelva a sincronizar.",
            "Restam mais envelopes na caixa (uma avalanche de lixo?): sincronize de novo.",
            "More envelopes are waiting in the mailbox (a flood of junk?): sync again.",
        ));
    }
    if sent.postponed > 0 {
        let minutes = sent.retry_after_secs.map_or(15, |s| s.div_ceil(60));
        ctx.note(ctx.tr(
            &format!("El relay no pudo tomar {} sobres ahora (lleno u ocupado; el buzón de la persona puede estar lleno): siguen aquí y salen en una próxima sincronización, dentro de unos {minutes} minutos.", sent.postponed),
            &format!("O relay não pôde receber {} envelopes agora (cheio ou ocupado; a caixa da pessoa pode estar cheia): continuam aqui e saem numa próxima sincronização, em cerca de {minutes} minutos.", sent.postponed),
            &format!("The relay could not take {} envelopes now (full or busy; the person's mailbox may be full): they stay here and go at a later sync, in about {minutes} minutes.", sent.postponed),
        ));
    }
    if fetched.waiting > 0 {
        ctx.note(ctx.tr(
            &format!("{} mensajes de seguimiento esperan su denuncia, que aún no llegó: se archivan en el caso cuando llegue.", fetched.waiting),
            &format!("{} mensagens de acompanhamento aguardam sua denúncia, que ainda não chegou: são arquivadas no caso quando ela chegar.", fetched.waiting),
            &format!("{} follow-up messages wait for their report, which has not arrived yet: they are filed on the case when it does.", fetched.waiting),
        ));
    }
    // Where to look when junk arrived (only counts and a few examples are
    // kept of it).
    let see_rejected = if fetched.rejected > 0 {
        " (amparo focal rejected)"
    } else {
        ""
    };
    ctx.emit(
        ctx.tr(
            &format!(
                "Enviados: {}. Casos nuevos: {}. Mensajes: {}. Piezas de adjuntos: {}. Repetidos: {}. Ilegibles: {}{}.",
                sent.delivered, fetched.new_cases, fetched.messages, fetched.chunks, fetched.duplicates, fetched.rejected, see_rejected
            ),
            &format!(
                "Enviados: {}. Casos novos: {}. Mensagens: {}. Partes de anexos: {}. Repetidos: {}. Ilegíveis: {}{}.",
                sent.delivered, fetched.new_cases, fetched.messages, fetched.chunks, fetched.duplicates, fetched.rejected, see_rejected
            ),
            &format!(
                "Sent: {}. New cases: {}. Messages: {}. Attachment pieces: {}. Repeats: {}. Unreadable: {}{}.",
                sent.delivered, fetched.new_cases, fetched.messages, fetched.chunks, fetched.duplicates, fetched.rejected, see_rejected
            ),
        ),
        json!({
            "sent": sent.delivered,
            "refused": sent.refused,
            "new_cases": fetched.new_cases,
            "messages": fetched.messages,
            "chunks": fetched.chunks,
            "duplicates": fetched.duplicates,
            "rejected": fetched.rejected,
            "waiting": fetched.waiting,
            "postponed": sent.postponed,
            "retry_after_secs": sent.retry_after_secs,
            "more": fetched.more,
            "listed": listing == Listing::Listed,
            "warning": warning,
        }),
    );
    Ok(())
}

/// "N reports, M unreadable (K envelopes fetched)": the reports are filed
/// and listed already while the fetch goes on through the rest.
fn fetch_progress(ctx: &Ctx, f: FetchProgress) -> String {
    let l = ctx.lang;
    let reports = count(
        l,
        f.reports,
        ("denuncia", "denuncias"),
        ("denúncia", "denúncias"),
        ("report", "reports"),
    );
    let bad = unreadable(l, f.unreadable as u64);
    let fetched = count(
        l,
        f.fetched,
        ("sobre recibido", "sobres recibidos"),
        ("envelope recebido", "envelopes recebidos"),
        ("envelope fetched", "envelopes fetched"),
    );
    format!("{reports}, {bad} ({fetched})")
}

/// A file name for an attachment: its index and the type's usual extension
/// (never a name from the report, which could point outside the folder).
fn attachment_name(index: usize, mime: &str) -> String {
    let ext = match mime {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "audio/mpeg" => "mp3",
        "audio/ogg" => "ogg",
        "audio/mp4" => "m4a",
        "audio/wav" => "wav",
        "video/mp4" => "mp4",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        _ => "bin",
    };
    format!("attachment-{}.{ext}", index + 1)
}

fn save_attachments(c: &Case, dir: &Path) -> CliResult<Vec<Option<String>>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Message(format!("{}: {e}", dir.display())))?;
    let mut saved = Vec::new();
    for (i, (reference, data)) in c.attachments.iter().enumerate() {
        match data {
            Some(bytes) => {
                let path = dir.join(attachment_name(i, &reference.mime));
                write_file(&path, bytes)?;
                saved.push(Some(path.display().to_string()));
            }
            None => saved.push(None),
        }
    }
    Ok(saved)
}

fn case_text(ctx: &Ctx, c: &Case, saved: &[Option<String>], dir: Option<&Directory>) -> String {
    let r = &c.report;
    let l = ctx.lang;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}",
        ctx.tr("Caso", "Caso", "Case"),
        hex(&c.summary.id)
    );
    let _ = writeln!(
        out,
        "{}: {}",
        ctx.tr("Estado", "Estado", "Status"),
        c.summary.status.label(l)
    );
    if let Some(to) = &c.summary.referred_to {
        let _ = writeln!(
            out,
            "{}: {}",
            ctx.tr("Derivado a", "Encaminhado a", "Referred to"),
            office(ctx, dir, to)
        );
    }
    let _ = writeln!(
        out,
        "{}: {}",
        ctx.tr("Recibido", "Recebido", "Reported"),
        hour(c.summary.reported_hour)
    );
    let _ = writeln!(
        out,
        "{}: {}",
        ctx.tr("Qué pasó", "O que aconteceu", "What happened"),
        labels(&r.violence, l)
    );
    if let Some(o) = &r.violence_other {
        let _ = writeln!(out, "  {o}");
    }
    if let Some(w) = &r.when {
        let date = match (w.month, w.day) {
            (Some(m), Some(d)) => format!("{}-{m:02}-{d:02}", w.year),
            (Some(m), None) => format!("{}-{m:02}", w.year),
            _ => w.year.to_string(),
        };
        let approx = if w.approximate {
            ctx.tr(" (aprox.)", " (aprox.)", " (approx.)")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{}: {date}{approx}",
            ctx.tr("Cuándo", "Quando", "When")
        );
    }
    let place: Vec<&str> = [&r.place.country, &r.place.region, &r.place.detail]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if !place.is_empty() || r.place.setting.is_some() {
        let mut place = place.join(", ");
        if let Some(s) = r.place.setting {
            if !place.is_empty() {
                place.push_str(" · ");
            }
            place.push_str(s.label(l));
        }
        let _ = writeln!(out, "{}: {place}", ctx.tr("Dónde", "Onde", "Where"));
    }
    if let Some(a) = r.age_band {
        let _ = writeln!(out, "{}: {}", ctx.tr("Edad", "Idade", "Age"), a.label(l));
    }
    let _ = writeln!(
        out,
        "{}: {}",
        ctx.tr("Estadísticas", "Estatísticas", "Statistics"),
        match (r.statistics_consent, r.reported_elsewhere) {
            (false, _) => ctx.tr(
                "no aceptó ser contada",
                "não aceitou ser contada",
                "did not agree to be counted",
            ),
            (true, Some(true)) => ctx.tr(
                "aceptó, pero lo reportó también en otra organización (no se cuenta aquí)",
                "aceitou, mas relatou também em outra organização (não se conta aqui)",
                "agreed, but also reported it to another organisation (not counted here)",
            ),
            (true, _) => ctx.tr(
                "aceptó ser contada, sin nombre",
                "aceitou ser contada, sem nome",
                "agreed to be counted, anonymously",
            ),
        }
    );
    let _ = writeln!(
        out,
        "{}: {}",
        ctx.tr(
            "Clasificación (GBVIMS)",
            "Classificação (GBVIMS)",
            "Classification (GBVIMS)"
        ),
        match c.summary.gbv_type {
            Some(t) => {
                let flags: Vec<&str> = c.summary.context.iter().map(|f| f.label(l)).collect();
                if flags.is_empty() {
                    t.label(l).to_string()
                } else {
                    format!("{} ({})", t.label(l), flags.join(", "))
                }
            }
            None => ctx.tr(
                "sin clasificar (`amparo focal classify`)",
                "sem classificação (`amparo focal classify`)",
                "not classified (`amparo focal classify`)",
            ),
        }
    );
    let _ = writeln!(
        out,
        "{}: {}",
        ctx.tr("Quién", "Quem", "Who"),
        labels(&r.aggressors, l)
    );
    let _ = writeln!(
        out,
        "{}: {}",
        ctx.tr("Necesita", "Precisa", "Needs"),
        labels(&r.needs, l)
    );
    let _ = writeln!(
        out,
        "{}: {}",
        ctx.tr(
            "Idioma de respuesta",
            "Idioma de resposta",
            "Reply language"
        ),
        crate::lang::language_name(l, r.language)
    );
    if let Some(referral) = &r.referral {
        let _ = writeln!(
            out,
            "{}: {} — {}",
            ctx.tr("Derivado por", "Encaminhado por", "Referred by"),
            office(ctx, dir, &referral.from_focal_point),
            referral.note
        );
    }
    let _ = writeln!(out, "\n{}\n", r.text);
    for (i, (reference, data)) in c.attachments.iter().enumerate() {
        let state = match (data, saved.get(i).cloned().flatten()) {
            (Some(_), Some(path)) => path,
            (Some(_), None) => ctx.tr("completo", "completo", "complete"),
            (None, _) => ctx.tr(
                "incompleto: faltan piezas",
                "incompleto: faltam partes",
                "incomplete: pieces missing",
            ),
        };
        let _ = writeln!(
            out,
            "{} {}: {} ({}, {} bytes, SHA-256 {}) — {state}",
            ctx.tr("Adjunto", "Anexo", "Attachment"),
            i + 1,
            reference.kind.label(l),
            reference.mime,
            reference.size,
            hex_all(&reference.sha256)
        );
    }
    if !c.history.is_empty() {
        let _ = writeln!(out, "\n{}:", ctx.tr("Historial", "Histórico", "History"));
    }
    for e in &c.history {
        let line = match &e.kind {
            CaseEventKind::FromSurvivor { text, .. } => format!(
                "{}  {}: {text}",
                hour(u32::try_from(e.at / 3600).unwrap_or(u32::MAX)),
                ctx.tr(
                    "Mensaje de la persona",
                    "Mensagem da pessoa",
                    "Message from the person"
                )
            ),
            CaseEventKind::Reply { text } => format!(
                "{}  {}: {text}",
                minute(e.at),
                ctx.tr("Respuesta enviada", "Resposta enviada", "Reply sent")
            ),
            CaseEventKind::Status { status, message } => format!(
                "{}  {}: {}{}",
                minute(e.at),
                ctx.tr("Estado", "Estado", "Status"),
                status.label(l),
                message
                    .as_ref()
                    .map(|m| format!(" — {m}"))
                    .unwrap_or_default()
            ),
            CaseEventKind::Referred { to, note } => format!(
                "{}  {}: {}{}",
                minute(e.at),
                ctx.tr("Derivado a", "Encaminhado a", "Referred to"),
                office(ctx, dir, to),
                if note.is_empty() {
                    String::new()
                } else {
                    format!(" — {note}")
                }
            ),
        };
        let _ = writeln!(out, "  {line}");
    }
    out.trim_end().to_string()
}

/// Every byte of a hash in hex (case ids are shown by their first bytes;
/// a legal file needs the whole hash).
fn hex_all(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn case_json(c: &Case, saved: &[Option<String>]) -> serde_json::Value {
    json!({
        "id": hex(&c.summary.id),
        "status": wire_name(&c.summary.status),
        "reported_hour": c.summary.reported_hour,
        "report": serde_json::to_value(&c.report).unwrap_or_default(),
        "referred_by": c.summary.referred_by,
        "referred_to": c.summary.referred_to,
        "gbv_type": c.summary.gbv_type.map(GbvType::key),
        "context": c.summary.context.iter().map(|f| f.key()).collect::<Vec<_>>(),
        "attachments": c.attachments.iter().enumerate().map(|(i, (r, data))| json!({
            "kind": wire_name(&r.kind),
            "mime": r.mime,
            "size": r.size,
            "sha256": hex_all(&r.sha256),
            "complete": data.is_some(),
            "saved_to": saved.get(i).cloned().flatten(),
        })).collect::<Vec<_>>(),
        "messages": c.messages,
        "history": c.history.iter().map(|e| {
            let mut v = serde_json::to_value(&e.kind).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("at".into(), json!(e.at));
            }
            v
        }).collect::<Vec<_>>(),
    })
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The case as one HTML page for a legal file: which office exported it and
/// when, every field and the case's history escaped, each attachment's
/// SHA-256, photos embedded so the page stands alone, no scripts, no
/// outside resources.
fn case_html(
    ctx: &Ctx,
    c: &Case,
    dir: Option<&Directory>,
    own_id: Option<&str>,
    exported: amparo_protocol::UnixTime,
) -> String {
    let title = format!(
        "{} {}{}",
        ctx.tr("Caso", "Caso", "Case"),
        hex(&c.summary.id),
        own_id
            .map(|id| format!(" — {}", office(ctx, dir, id)))
            .unwrap_or_default()
    );
    let mut body = String::new();
    let _ = writeln!(body, "<h1>{}</h1>", escape(&title));
    if let Some(id) = own_id {
        let _ = writeln!(
            body,
            "<p>{}: {}</p>",
            escape(&ctx.tr("Oficina", "Escritório", "Office")),
            escape(&office(ctx, dir, id))
        );
    }
    let _ = writeln!(
        body,
        "<p>{}: {}</p>",
        escape(&ctx.tr(
            "Exportado con Amparo",
            "Exportado com Amparo",
            "Exported with Amparo"
        )),
        escape(&minute(exported.0))
    );
    for line in case_text(ctx, c, &[], dir).lines() {
        let _ = writeln!(body, "<p>{}</p>", escape(line));
    }
    for (reference, data) in &c.attachments {
        if let (Some(bytes), true) = (data, reference.mime.starts_with("image/")) {
            let _ = writeln!(
                body,
                "<p><img alt=\"\" style=\"max-width:100%\" src=\"data:{};base64,{}\"></p>",
                escape(&reference.mime),
                std_b64(bytes)
            );
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\
         <title>{}</title></head>\n<body style=\"font-family:sans-serif;max-width:50em;margin:2em auto\">\n{body}</body></html>\n",
        wire_name(&ctx.lang),
        escape(&title)
    )
}

/// Standard base64 (with padding), as `data:` URLs want.
fn std_b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<script>a&b</script>\"'"),
            "&lt;script&gt;a&amp;b&lt;/script&gt;&quot;&#39;"
        );
    }

    #[test]
    fn standard_base64_matches_rfc4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(std_b64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn attachment_names_never_come_from_the_report() {
        assert_eq!(attachment_name(0, "image/jpeg"), "attachment-1.jpg");
        assert_eq!(attachment_name(2, "../../etc/passwd"), "attachment-3.bin");
    }
}
