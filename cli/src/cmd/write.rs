//! `amparo report write`: a survivor's report, from flags or from questions.
//!
//! What can fail is checked before anything is asked or stored: the profile
//! opens, it holds a directory, a focal point serves the region, the date
//! reads, the files to attach exist. Questions that get an answer they
//! cannot use ask again, with the list to choose from. If sealing still
//! fails at the end, what she typed is kept as an encrypted draft and she is
//! told how to send it later (`--draft`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use amparo_core::directory::{
    FocalPointQuery, RegionChoice, RegionMatch, find_region, served_regions, suggest,
};
use amparo_core::drafts::{DateError, DraftForm, parse_incident_date};
use amparo_core::store::Profile;
use amparo_protocol::directory::{Directory, FocalPoint};
use amparo_protocol::i18n::Label;
use amparo_protocol::i18n::{reported_elsewhere_question, statistics_consent_question};
use amparo_protocol::payload::report::MAX_ATTACHMENT_BYTES;
use amparo_protocol::payload::{
    AgeBand, AggressorKind, AttachmentKind, IncidentDate, Language, Need, Place, PlaceSetting,
    ViolenceKind,
};
use clap::Args;
use serde_json::json;

use super::parse_enum;
use crate::ctx::{CliError, CliResult, Ctx, fail, hex, now, pick_id};
use crate::lang::{count, io_reason, language_name};

/// Reads yes or no in any of the three languages.
fn parse_yes_no(text: &str) -> Result<bool, String> {
    match text.trim().to_lowercase().as_str() {
        "si" | "sí" | "sim" | "yes" | "y" | "s" => Ok(true),
        "no" | "não" | "nao" | "n" => Ok(false),
        _ => Err(format!("{text}: sí/no · sim/não · yes/no")),
    }
}

/// How many times a question is asked again before giving up.
const TRIES: usize = 5;

/// The report form as flags.
#[derive(Args)]
pub struct WriteArgs {
    /// What happened, in your words. / Qué pasó, con sus palabras. / O que aconteceu.
    #[arg(long, allow_hyphen_values = true)]
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
    /// Region: its code or name, in any case (PE-UCA, pe-uca, Ucayali).
    /// / Región: código o nombre. / Região: código ou nome.
    #[arg(long)]
    region: Option<String>,
    /// The place in a few words (optional). / El lugar. / O lugar.
    #[arg(long)]
    place: Option<String>,
    /// The kind of place: border, urban, rural. / Zona de frontera, ciudad
    /// o campo. / Fronteira, cidade ou campo.
    #[arg(long, value_parser = super::stats::parse_setting)]
    setting: Option<PlaceSetting>,
    /// Your age then: age-0-11, age-12-17, age-18-plus (optional).
    /// / Su edad entonces. / Sua idade então.
    #[arg(long = "age", value_parser = parse_enum::<AgeBand>)]
    age_band: Option<AgeBand>,
    /// Yes: count this case, without your name or words, in the figures
    /// organisations share. Not counted unless you say so.
    /// / Sí: contar este caso, sin su nombre ni sus palabras, en las cifras.
    /// / Sim: contar este caso, sem seu nome nem suas palavras, nos números.
    #[arg(long)]
    count_me: bool,
    /// You already told another organisation that helps survivors: yes or no.
    /// / Ya lo contó a otra organización: sí o no. / Já contou a outra organização.
    #[arg(long, value_parser = parse_yes_no)]
    reported_elsewhere: Option<bool>,
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
    /// Send a report kept as a draft (its id, or its first digits; alone,
    /// the only draft or the list of drafts). / Enviar un borrador guardado.
    /// / Enviar um rascunho guardado.
    #[arg(
        long,
        num_args = 0..=1,
        default_missing_value = "",
        conflicts_with_all = ["interactive", "text"]
    )]
    draft: Option<String>,
}

/// Runs `report write`.
pub fn run(ctx: &Ctx, args: WriteArgs) -> CliResult {
    if let Some(draft) = &args.draft {
        return send_kept_draft(ctx, draft, &args);
    }
    if args.interactive {
        return interview(ctx, args);
    }
    if args.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
        return fail(ctx.tr(
            "Falta el relato. Para escribir una denuncia respondiendo preguntas, use `amparo report write --interactive`; o dé lo que pasó con --text \"…\" (y --region, --need, --violence…; vea `amparo report write --help`).",
            "Falta o relato. Para escrever uma denúncia respondendo perguntas, use `amparo report write --interactive`; ou dê o que aconteceu com --text \"…\" (e --region, --need, --violence…; veja `amparo report write --help`).",
            "What happened is missing. To write a report by answering questions, use `amparo report write --interactive`; or give what happened with --text \"…\" (and --region, --need, --violence…; see `amparo report write --help`).",
        ));
    }
    // Everything that can be checked without the PIN, first.
    let when = args
        .when
        .as_deref()
        .map(|w| parse_when(ctx, w, args.approximate))
        .transpose()?;
    for path in &args.attach {
        check_attachment(ctx, path)?;
    }
    country(ctx, args.country.as_deref(), None)?;
    let p = ctx.open()?;
    let dir = directory(ctx, &p)?;
    let region = region_for(ctx, &dir, args.region.as_deref(), args.to.is_some())?;
    // The command line still holds what she typed: a failed write leaves
    // the profile as it was.
    write_and_seal(
        ctx,
        &p,
        &dir,
        &args,
        Answers {
            when,
            region,
            attach: &args.attach,
        },
        IfSealingFails::Forget,
    )
}

/// What the report is written from besides the command line's flags: what
/// was parsed from them or asked.
struct Answers<'a> {
    when: Option<IncidentDate>,
    region: Option<String>,
    attach: &'a [PathBuf],
}

/// What becomes of the draft when sealing fails.
#[derive(Clone, Copy)]
enum IfSealingFails {
    /// Deleted: the command line still holds what she typed.
    Forget,
    /// Kept, encrypted, to send later (she typed it in answer to the
    /// questions); the error says so.
    Keep,
}

/// Chooses the focal point, builds the report from `args` and `answers`,
/// stores it as a draft and seals it with its attachments: the end of
/// `report write`, with flags or with the questions.
fn write_and_seal(
    ctx: &Ctx,
    p: &Profile,
    dir: &Directory,
    args: &WriteArgs,
    answers: Answers<'_>,
    if_fails: IfSealingFails,
) -> CliResult {
    let Answers {
        when,
        region,
        attach,
    } = answers;
    let focal = focal_point(ctx, dir, args.to.as_deref(), region.clone(), args)?;
    let form = DraftForm {
        violence: args.violence.clone(),
        violence_other: None,
        when,
        place: Place {
            setting: args.setting,
            country: country(ctx, args.country.as_deref(), region.as_deref())?,
            region,
            detail: args.place.clone(),
        },
        aggressors: args.aggressors.clone(),
        aggressor_other: None,
        needs: args.needs.clone(),
        language: args.reply_language.or(Some(ctx.lang)),
        text: args.text.clone().unwrap_or_default(),
        statistics_consent: args.count_me,
        age_band: args.age_band,
        reported_elsewhere: args.reported_elsewhere,
    };
    let draft = p.create_draft(&form)?;
    match seal(p, &draft, attach, &focal, args.keep_copy) {
        Ok(id) => sealed(ctx, p, &id, &focal),
        Err(e) => match if_fails {
            IfSealingFails::Forget => {
                let _ = p.delete_draft(&draft);
                Err(e)
            }
            IfSealingFails::Keep => Err(kept(ctx, p, &draft, &e)),
        },
    }
}

/// The country: as given (any case), else the one the region code names
/// (`PE-UCA` → `PE`).
fn country(ctx: &Ctx, given: Option<&str>, region: Option<&str>) -> CliResult<Option<String>> {
    if let Some(c) = given {
        let c = c.trim().to_ascii_uppercase();
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return fail(ctx.tr(
                &format!("--country: «{c}» no es un código de país: use dos letras, por ejemplo PE, BR, CO."),
                &format!("--country: «{c}» não é um código de país: use duas letras, por exemplo PE, BR, CO."),
                &format!("--country: {c:?} is not a country code: use two letters, for example PE, BR, CO."),
            ));
        }
        return Ok(Some(c));
    }
    Ok(region
        .and_then(|r| r.split_once('-'))
        .map(|(c, _)| c.to_ascii_uppercase())
        .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())))
}

/// Attaches the files and seals the draft for `focal` (the draft is gone
/// once it is sealed).
fn seal(
    p: &Profile,
    draft: &[u8; 16],
    attach: &[PathBuf],
    focal: &FocalPoint,
    keep_copy: bool,
) -> CliResult<[u8; 16]> {
    for path in attach {
        let (kind, mime) = attachment_kind(path);
        p.add_attachment_file(draft, kind, mime, path)
            .map_err(|e| CliError::Message(format!("{}: {}", path.display(), core_reason(e))))?;
    }
    Ok(p.send_draft(draft, focal, keep_copy, now())?)
}

fn core_reason(e: amparo_core::CoreError) -> String {
    CliError::Core(e).sentence(crate::lang::early())
}

/// Tells what was sealed: for whom, in how many envelopes, and how it goes.
fn sealed(ctx: &Ctx, p: &Profile, id: &[u8; 16], focal: &FocalPoint) -> CliResult {
    let envelopes = p
        .sent_reports()?
        .iter()
        .find(|r| r.id == *id)
        .map_or(0, |r| r.delivered + r.pending);
    let outbox = p.outbox_len()?;
    let name = focal.name.get(ctx.lang);
    let lang = ctx.lang;
    let pieces = count(
        lang,
        envelopes,
        ("sobre", "sobres"),
        ("envelope", "envelopes"),
        ("envelope", "envelopes"),
    );
    let waiting = count(
        lang,
        outbox,
        ("sobre", "sobres"),
        ("envelope", "envelopes"),
        ("envelope", "envelopes"),
    );
    let extra = envelopes.saturating_sub(1);
    let why = if extra > 0 {
        ctx.tr(
            &format!(" (1 con la denuncia y {extra} con los adjuntos, en partes de igual tamaño)"),
            &format!(" (1 com a denúncia e {extra} com os anexos, em partes de igual tamanho)"),
            &format!(
                " (1 with the report and {extra} with the attachments, in pieces of equal size)"
            ),
        )
    } else {
        String::new()
    };
    ctx.emit(
        ctx.tr(
            &format!("Denuncia {} sellada para {name}, en {pieces}{why}; entregados: 0 de {envelopes}. Se envía al sincronizar (`amparo report sync`) o con una facilitadora (`amparo report bundle`). En la bandeja de salida, en total: {waiting}.", hex(id)),
            &format!("Denúncia {} lacrada para {name}, em {pieces}{why}; entregues: 0 de {envelopes}. Vai ao sincronizar (`amparo report sync`) ou com uma facilitadora (`amparo report bundle`). Na caixa de saída, no total: {waiting}.", hex(id)),
            &format!("Report {} sealed for {name}, in {pieces}{why}; delivered: 0 of {envelopes}. It goes at the next sync (`amparo report sync`) or with a facilitator (`amparo report bundle`). In the outbox, in all: {waiting}.", hex(id)),
        ),
        json!({ "report": hex(id), "focal_point": focal.id, "envelopes": envelopes, "outbox": outbox }),
    );
    Ok(())
}

/// The directory the profile holds, or what to do to get one.
pub(crate) fn directory(ctx: &Ctx, p: &Profile) -> CliResult<Directory> {
    let coordinator = p.settings()?.coordinator().map_err(|_| {
        CliError::Message(ctx.tr(
            "Este perfil no tiene la clave de la coordinación, así que no puede confiar en ningún directorio: póngala con `amparo profile set --coordinator-key CLAVE`.",
            "Este perfil não tem a chave da coordenação, então não pode confiar em nenhum diretório: defina-a com `amparo profile set --coordinator-key CHAVE`.",
            "This profile has no coordinator key, so it can trust no directory: set it with `amparo profile set --coordinator-key KEY`.",
        ))
    })?;
    p.directory(&coordinator)?.ok_or_else(|| {
        CliError::Message(ctx.tr(
            "Este perfil aún no tiene el directorio de puntos focales, así que no sabe a quién enviar. Tráigalo con señal (`amparo directory refresh` o `amparo report sync`) o de un paquete de una facilitadora (`amparo report import ARCHIVO`). No se guardó nada.",
            "Este perfil ainda não tem o diretório de pontos focais, então não sabe para quem enviar. Traga-o com sinal (`amparo directory refresh` ou `amparo report sync`) ou de um pacote de uma facilitadora (`amparo report import ARQUIVO`). Nada foi guardado.",
            "This profile has no directory of focal points yet, so it does not know where to send. Get it with signal (`amparo directory refresh` or `amparo report sync`) or from a facilitator's bundle (`amparo report import FILE`). Nothing was stored.",
        ))
    })
}

/// The regions served, as a list for people: `Ucayali (PE-UCA)`.
fn region_list(regions: &[RegionChoice]) -> String {
    regions
        .iter()
        .map(region_label)
        .collect::<Vec<_>>()
        .join(", ")
}

fn region_label(r: &RegionChoice) -> String {
    match r.name {
        Some(n) => format!("{n} ({})", r.code),
        None => r.code.clone(),
    }
}

/// The code of the served region `typed` means, or a sentence saying why
/// none, with the regions there are.
fn region_code(ctx: &Ctx, dir: &Directory, typed: &str) -> CliResult<String> {
    let served = region_list(&served_regions(dir, now()));
    match find_region(dir, typed, now()) {
        RegionMatch::Served(code) => Ok(code),
        RegionMatch::Several(list) => fail(ctx.tr(
            &format!("«{typed}» puede ser varias regiones: {}. Escriba el código.", region_list(&list)),
            &format!("«{typed}» pode ser várias regiões: {}. Escreva o código.", region_list(&list)),
            &format!("{typed:?} may be several regions: {}. Give the code.", region_list(&list)),
        )),
        RegionMatch::NotServed(r) => fail(ctx.tr(
            &format!("Ningún punto focal del directorio atiende {} ahora. Regiones atendidas: {served}. También puede elegir un punto focal con --to.", region_label(&r)),
            &format!("Nenhum ponto focal do diretório atende {} agora. Regiões atendidas: {served}. Também pode escolher um ponto focal com --to.", region_label(&r)),
            &format!("No focal point in the directory serves {} now. Regions served: {served}. You can also pick a focal point with --to.", region_label(&r)),
        )),
        RegionMatch::Unknown => fail(ctx.tr(
            &format!("No se conoce la región «{typed}». Regiones atendidas (nombre o código, en mayúsculas o minúsculas): {served}."),
            &format!("Região desconhecida: «{typed}». Regiões atendidas (nome ou código, em maiúsculas ou minúsculas): {served}."),
            &format!("Unknown region {typed:?}. Regions served (name or code, any case): {served}."),
        )),
    }
}

/// The region given with `--region`, as the directory spells it. With
/// `--to` she chose the focal point herself, so a region nobody serves is
/// still hers to report (kept as typed when nothing matches it).
fn region_for(
    ctx: &Ctx,
    dir: &Directory,
    typed: Option<&str>,
    chosen_focal_point: bool,
) -> CliResult<Option<String>> {
    let Some(typed) = typed else {
        return Ok(None);
    };
    if !chosen_focal_point {
        return region_code(ctx, dir, typed).map(Some);
    }
    Ok(Some(match find_region(dir, typed, now()) {
        RegionMatch::Served(code) => code,
        RegionMatch::NotServed(r) => r.code,
        RegionMatch::Several(_) | RegionMatch::Unknown => typed.trim().to_string(),
    }))
}

/// The focal point: the one named with `--to`, else the best for the
/// region, need and language.
fn focal_point(
    ctx: &Ctx,
    dir: &Directory,
    to: Option<&str>,
    region: Option<String>,
    args: &WriteArgs,
) -> CliResult<FocalPoint> {
    if let Some(id) = to {
        return dir
            .focal_point(id.trim())
            .filter(|f| f.is_valid_at(now()))
            .cloned()
            .ok_or_else(|| {
                let ids = dir
                    .focal_points
                    .iter()
                    .filter(|f| f.is_valid_at(now()))
                    .map(|f| f.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                CliError::Message(ctx.tr(
                    &format!("No hay un punto focal vigente con el id {id}. Los vigentes: {ids}."),
                    &format!("Não há um ponto focal vigente com o id {id}. Os vigentes: {ids}."),
                    &format!("No focal point valid now has the id {id}. Those valid now: {ids}."),
                ))
            });
    }
    let query = FocalPointQuery {
        region,
        need: args.needs.first().copied(),
        language: args.reply_language,
    };
    suggest(dir, &query, now()).cloned().ok_or_else(|| {
        CliError::Message(ctx.tr(
            &format!("Ningún punto focal vigente del directorio atiende esa región. Regiones atendidas: {}. También puede elegir uno con --to.", region_list(&served_regions(dir, now()))),
            &format!("Nenhum ponto focal vigente do diretório atende essa região. Regiões atendidas: {}. Também pode escolher um com --to.", region_list(&served_regions(dir, now()))),
            &format!("No focal point valid now serves that region. Regions served: {}. You can also pick one with --to.", region_list(&served_regions(dir, now()))),
        ))
    })
}

pub(crate) fn attachment_kind(path: &Path) -> (AttachmentKind, &'static str) {
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

/// A file to attach exists, is a file, can be read and is not too large;
/// a photo is not so damaged that its metadata cannot be removed.
fn check_attachment(ctx: &Ctx, path: &Path) -> CliResult {
    let refused = |why: String| {
        CliError::Message(ctx.tr(
            &format!("No se puede adjuntar {}: {why}.", path.display()),
            &format!("Não é possível anexar {}: {why}.", path.display()),
            &format!("Cannot attach {}: {why}.", path.display()),
        ))
    };
    let meta = std::fs::metadata(path).map_err(|e| refused(io_reason(ctx.lang, &e)))?;
    if meta.is_dir() {
        return Err(refused(ctx.tr(
            "es una carpeta, no un archivo",
            "é uma pasta, não um arquivo",
            "it is a folder, not a file",
        )));
    }
    if meta.len() > MAX_ATTACHMENT_BYTES {
        let mib = MAX_ATTACHMENT_BYTES / (1024 * 1024);
        return Err(refused(ctx.tr(
            &format!("pesa más de {mib} MiB"),
            &format!("pesa mais de {mib} MiB"),
            &format!("it is larger than {mib} MiB"),
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| refused(io_reason(ctx.lang, &e)))?;
    amparo_core::metadata::strip(&bytes).map_err(|e| refused(core_reason(e)))?;
    Ok(())
}

fn parse_when(ctx: &Ctx, text: &str, approximate: bool) -> CliResult<IncidentDate> {
    parse_incident_date(text, approximate).map_err(|e| {
        let (es, pt, en) = match e {
            DateError::Format => ("no se entiende", "não se entende", "it cannot be read"),
            DateError::Year => ("el año no es válido", "o ano não é válido", "the year is not valid"),
            DateError::Month => (
                "el mes debe ir de 01 a 12",
                "o mês deve ir de 01 a 12",
                "the month must be 01 to 12",
            ),
            DateError::Day => (
                "ese mes no tiene ese día",
                "esse mês não tem esse dia",
                "that month has no such day",
            ),
        };
        CliError::Message(ctx.tr(
            &format!("Fecha «{text}»: {es}. Escríbala AAAA, AAAA-MM o AAAA-MM-DD, por ejemplo 2026-11-03 (con --approximate si no está segura)."),
            &format!("Data «{text}»: {pt}. Escreva AAAA, AAAA-MM ou AAAA-MM-DD, por exemplo 2026-11-03 (com --approximate se não tiver certeza)."),
            &format!("Date {text:?}: {en}. Write it YYYY, YYYY-MM or YYYY-MM-DD, for example 2026-11-03 (with --approximate if unsure)."),
        ))
    })
}

/// Reads one line from the person; the end of input is an error (nothing
/// more will come), not an empty answer asked again forever.
fn ask(ctx: &Ctx, question: &str) -> CliResult<String> {
    eprint!("{question} ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Message(e.to_string()))?;
    if read == 0 {
        return fail(ctx.tr(
            "Las preguntas se interrumpieron (no llegó más texto). No se guardó nada.",
            "As perguntas foram interrompidas (não chegou mais texto). Nada foi guardado.",
            "The questions were interrupted (no more input came). Nothing was stored.",
        ));
    }
    Ok(line.trim().to_string())
}

/// Asks until `read` accepts the answer (it says why when it does not).
fn ask_until<T>(
    ctx: &Ctx,
    question: &str,
    mut read: impl FnMut(&str) -> Result<T, String>,
) -> CliResult<T> {
    let mut last = String::new();
    for _ in 0..TRIES {
        match read(&ask(ctx, question)?) {
            Ok(v) => return Ok(v),
            Err(why) => {
                eprintln!("  {why}");
                last = why;
            }
        }
    }
    Err(CliError::Message(last))
}

/// The numbers in an answer (`1 3`, `1,3`), each in `1..=len`.
fn numbers(ctx: &Ctx, answer: &str, len: usize) -> Result<Vec<usize>, String> {
    let mut chosen = Vec::new();
    for word in answer.split(|c: char| c == ',' || c.is_whitespace()) {
        if word.is_empty() {
            continue;
        }
        match word.parse::<usize>().ok().filter(|n| (1..=len).contains(n)) {
            Some(n) => chosen.push(n - 1),
            None => {
                return Err(ctx.tr(
                    &format!("«{word}» no está en la lista: escriba números del 1 al {len}."),
                    &format!("«{word}» não está na lista: escreva números de 1 a {len}."),
                    &format!("{word:?} is not in the list: give numbers from 1 to {len}."),
                ));
            }
        }
    }
    Ok(chosen)
}

/// A numbered menu; the answer is a list of numbers (`1 3`, `1,3`), or empty.
fn menu<T: Label + Copy>(ctx: &Ctx, question: &str, items: &[T]) -> CliResult<Vec<T>> {
    eprintln!("{question}");
    for (i, item) in items.iter().enumerate() {
        eprintln!("  {}. {}", i + 1, item.label(ctx.lang));
    }
    let prompt = ctx.tr(
        "Números (ej. 1 3), o vacío:",
        "Números (ex. 1 3), ou vazio:",
        "Numbers (e.g. 1 3), or empty:",
    );
    ask_until(ctx, &prompt, |answer| {
        Ok(numbers(ctx, answer, items.len())?
            .into_iter()
            .filter_map(|i| items.get(i).copied())
            .collect())
    })
}

/// The region, from a numbered list of those served; a number, a code or a
/// name in any case; empty to not say.
fn ask_region(ctx: &Ctx, dir: &Directory) -> CliResult<Option<String>> {
    let served = served_regions(dir, now());
    eprintln!(
        "{}",
        ctx.tr(
            "¿En qué región pasó? Regiones con un punto focal:",
            "Em que região aconteceu? Regiões com um ponto focal:",
            "In which region did it happen? Regions with a focal point:",
        )
    );
    for (i, r) in served.iter().enumerate() {
        eprintln!("  {}. {}", i + 1, region_label(r));
    }
    let prompt = ctx.tr(
        "Número, nombre o código (o vacío para no decirlo):",
        "Número, nome ou código (ou vazio para não dizer):",
        "Number, name or code (or empty not to say):",
    );
    ask_until(ctx, &prompt, |answer| {
        if answer.is_empty() {
            return Ok(None);
        }
        if let Ok(n) = answer.parse::<usize>() {
            return n
                .checked_sub(1)
                .and_then(|i| served.get(i))
                .map(|r| Some(r.code.clone()))
                .ok_or_else(|| {
                    ctx.tr(
                        &format!("{n} no está en la lista."),
                        &format!("{n} não está na lista."),
                        &format!("{n} is not in the list."),
                    )
                });
        }
        region_code(ctx, dir, answer)
            .map(Some)
            .map_err(|e| e.sentence(ctx.lang))
    })
}

/// The reply language; empty keeps the session's.
fn ask_language(ctx: &Ctx) -> CliResult<Language> {
    eprintln!(
        "{}",
        ctx.tr(
            "¿En qué idioma quiere las respuestas?",
            "Em que idioma quer as respostas?",
            "In which language do you want the answers?",
        )
    );
    for (i, l) in Language::ALL.iter().enumerate() {
        // Each named in itself, so she finds her own.
        eprintln!("  {}. {}", i + 1, l.label(ctx.lang));
    }
    let prompt = ctx.tr(
        &format!("Número (vacío: {}):", language_name(ctx.lang, ctx.lang)),
        &format!("Número (vazio: {}):", language_name(ctx.lang, ctx.lang)),
        &format!("Number (empty: {}):", language_name(ctx.lang, ctx.lang)),
    );
    ask_until(ctx, &prompt, |answer| {
        if answer.is_empty() {
            return Ok(ctx.lang);
        }
        match numbers(ctx, answer, Language::ALL.len())?.as_slice() {
            [one] => Ok(Language::ALL[*one]),
            _ => Err(ctx.tr("Elija uno.", "Escolha um.", "Choose one.")),
        }
    })
}

/// Files to attach, one path a line, until an empty line; each checked as
/// it is given.
fn ask_attachments(ctx: &Ctx, mut files: Vec<PathBuf>) -> CliResult<Vec<PathBuf>> {
    eprintln!(
        "{}",
        ctx.tr(
            "¿Quiere adjuntar fotos, audios o documentos? Escriba la ruta de cada archivo, uno por línea; una línea vacía para terminar. De las fotos se borran la ubicación y los datos de la cámara.",
            "Quer anexar fotos, áudios ou documentos? Escreva o caminho de cada arquivo, um por linha; uma linha vazia para terminar. Das fotos apagam-se a localização e os dados da câmera.",
            "Do you want to attach photos, audio or documents? Give the path of each file, one a line; an empty line to finish. Location and camera data are removed from photos.",
        )
    );
    let prompt = ctx.tr("Archivo:", "Arquivo:", "File:");
    loop {
        let next = ask_until(ctx, &prompt, |answer| {
            if answer.is_empty() {
                return Ok(None);
            }
            let path = PathBuf::from(answer);
            check_attachment(ctx, &path)
                .map(|()| Some(path))
                .map_err(|e| e.sentence(ctx.lang))
        })?;
        match next {
            Some(path) => files.push(path),
            None => return Ok(files),
        }
    }
}

/// The questions, one by one, then the report sealed — or kept as a draft.
fn interview(ctx: &Ctx, mut args: WriteArgs) -> CliResult {
    if !std::io::stdin().is_terminal() && std::env::var_os("AMPARO_INTERACTIVE_STDIN").is_none() {
        return fail(ctx.tr(
            "Las preguntas necesitan una terminal. En un script, dé la denuncia con --text y las demás opciones.",
            "As perguntas precisam de um terminal. Em um script, dê a denúncia com --text e as demais opções.",
            "The questions need a terminal. In a script, give the report with --text and the other options.",
        ));
    }
    // What would make the end fail is checked before she types anything.
    let when = args
        .when
        .as_deref()
        .map(|w| parse_when(ctx, w, args.approximate))
        .transpose()?;
    for path in &args.attach {
        check_attachment(ctx, path)?;
    }
    country(ctx, args.country.as_deref(), None)?;
    let p = ctx.open()?;
    let dir = directory(ctx, &p)?;
    if served_regions(&dir, now()).is_empty() {
        return fail(ctx.tr(
            "El directorio no tiene ningún punto focal vigente: no hay a quién enviar. Actualícelo (`amparo directory refresh`) y vuelva a intentarlo.",
            "O diretório não tem nenhum ponto focal vigente: não há para quem enviar. Atualize-o (`amparo directory refresh`) e tente de novo.",
            "The directory has no focal point valid now: there is nobody to send to. Refresh it (`amparo directory refresh`) and try again.",
        ));
    }
    let mut region = region_for(ctx, &dir, args.region.as_deref(), args.to.is_some())?;
    if let Some(to) = args.to.as_deref() {
        focal_point(ctx, &dir, Some(to), None, &args)?;
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
            &ViolenceKind::ALL,
        )?;
    }
    if args.aggressors.is_empty() {
        args.aggressors = menu(
            ctx,
            &ctx.tr("¿Quién lo hizo?", "Quem fez?", "Who did it?"),
            &AggressorKind::ALL,
        )?;
    }
    if args.needs.is_empty() {
        args.needs = menu(
            ctx,
            &ctx.tr("¿Qué necesita?", "Do que precisa?", "What do you need?"),
            &Need::ALL,
        )?;
    }
    if region.is_none() && args.region.is_none() {
        region = ask_region(ctx, &dir)?;
    }
    if args.setting.is_none() {
        args.setting = menu(
            ctx,
            &ctx.tr(
                "¿Qué tipo de lugar? (uno, o vacío)",
                "Que tipo de lugar? (um, ou vazio)",
                "What kind of place? (one, or empty)",
            ),
            &PlaceSetting::ALL,
        )?
        .first()
        .copied();
    }
    if args.age_band.is_none() {
        args.age_band = menu(
            ctx,
            &ctx.tr(
                "¿Qué edad tenía entonces? (una, o vacío)",
                "Que idade tinha então? (uma, ou vazio)",
                "How old were you then? (one, or empty)",
            ),
            &AgeBand::ALL,
        )?
        .first()
        .copied();
    }
    let when = match when {
        Some(w) => Some(w),
        None => ask_until(
            ctx,
            &ctx.tr(
                "¿Cuándo? (AAAA-MM-DD, AAAA-MM o AAAA; o vacío):",
                "Quando? (AAAA-MM-DD, AAAA-MM ou AAAA; ou vazio):",
                "When? (YYYY-MM-DD, YYYY-MM or YYYY; or empty):",
            ),
            |answer| {
                if answer.is_empty() {
                    return Ok(None);
                }
                parse_when(ctx, answer, args.approximate)
                    .map(Some)
                    .map_err(|e| e.sentence(ctx.lang))
            },
        )?,
    };
    if args.reply_language.is_none() {
        args.reply_language = Some(ask_language(ctx)?);
    }
    if args.reported_elsewhere.is_none() {
        args.reported_elsewhere = ask_until(
            ctx,
            &format!(
                "{} {}",
                reported_elsewhere_question(ctx.lang),
                ctx.tr(
                    "(sí / no / vacío)",
                    "(sim / não / vazio)",
                    "(yes / no / empty)"
                )
            ),
            |answer| {
                if answer.is_empty() {
                    return Ok(None);
                }
                parse_yes_no(answer).map(Some)
            },
        )?;
    }
    if !args.count_me {
        args.count_me = ask_until(
            ctx,
            &format!(
                "{} {}",
                statistics_consent_question(ctx.lang),
                ctx.tr("(sí / no)", "(sim / não)", "(yes / no)")
            ),
            |answer| {
                if answer.is_empty() {
                    return Ok(false);
                }
                parse_yes_no(answer)
            },
        )?;
    }
    let attach = ask_attachments(ctx, std::mem::take(&mut args.attach))?;
    if args.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
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
    write_and_seal(
        ctx,
        &p,
        &dir,
        &args,
        Answers {
            when,
            region,
            attach: &attach,
        },
        IfSealingFails::Keep,
    )
}

/// Sealing failed: what she typed stays as an encrypted draft; the error
/// says so and how to send it later.
fn kept(ctx: &Ctx, p: &Profile, draft: &[u8; 16], e: &CliError) -> CliError {
    let why = e.sentence(ctx.lang);
    let attached = p.draft(draft).map_or(0, |d| d.attachments.len());
    let short = &hex(draft)[..8];
    CliError::Message(ctx.tr(
        &format!("La denuncia NO se selló: {why}\nNo se perdió lo que escribió: quedó guardado, cifrado, como borrador {short} (con {attached} adjuntos). Cuando lo haya resuelto, envíelo con `amparo report write --draft {short}` (puede añadir --attach ARCHIVO)."),
        &format!("A denúncia NÃO foi lacrada: {why}\nO que você escreveu não se perdeu: ficou guardado, criptografado, como rascunho {short} (com {attached} anexos). Quando tiver resolvido, envie-o com `amparo report write --draft {short}` (pode acrescentar --attach ARQUIVO)."),
        &format!("The report was NOT sealed: {why}\nNothing you typed was lost: it is kept, encrypted, as draft {short} (with {attached} attachments). Once that is sorted out, send it with `amparo report write --draft {short}` (you can add --attach FILE)."),
    ))
}

/// `report write --draft [ID]`: seals a draft kept earlier, with any
/// `--attach` files added and `--to` if given.
fn send_kept_draft(ctx: &Ctx, prefix: &str, args: &WriteArgs) -> CliResult {
    for path in &args.attach {
        check_attachment(ctx, path)?;
    }
    let p = ctx.open()?;
    let drafts = p.drafts()?;
    let ids: Vec<[u8; 16]> = drafts.iter().map(|d| d.id).collect();
    let id = match (prefix.trim(), ids.as_slice()) {
        (_, []) => {
            return fail(ctx.tr(
                "No hay borradores guardados.",
                "Não há rascunhos guardados.",
                "There are no drafts kept.",
            ));
        }
        ("", [one]) => *one,
        ("", _) => {
            let list = drafts
                .iter()
                .map(|d| {
                    let start: String = d.form.text.chars().take(40).collect();
                    format!("  {}  {start}…", &hex(&d.id)[..8])
                })
                .collect::<Vec<_>>()
                .join("\n");
            return fail(ctx.tr(
                &format!("Hay varios borradores; diga cuál con --draft ID:\n{list}"),
                &format!("Há vários rascunhos; diga qual com --draft ID:\n{list}"),
                &format!("There are several drafts; say which with --draft ID:\n{list}"),
            ));
        }
        (prefix, _) => pick_id(ctx, prefix, &ids)?,
    };
    let draft = p.draft(&id)?;
    let dir = directory(ctx, &p)?;
    let focal = focal_point(
        ctx,
        &dir,
        args.to.as_deref(),
        draft.form.place.region.clone(),
        &WriteArgs {
            needs: draft.form.needs.clone(),
            reply_language: draft.form.language,
            ..args.clone_flags()
        },
    )?;
    // Files added now stay with the draft if sealing fails again.
    match seal(&p, &id, &args.attach, &focal, args.keep_copy) {
        Ok(sealed_id) => sealed(ctx, &p, &sealed_id, &focal),
        Err(e) => Err(kept(ctx, &p, &id, &e)),
    }
}

impl WriteArgs {
    /// The flags without the form (for choosing a focal point for a draft).
    fn clone_flags(&self) -> WriteArgs {
        WriteArgs {
            text: None,
            violence: vec![],
            aggressors: vec![],
            needs: vec![],
            country: None,
            region: None,
            place: None,
            setting: None,
            age_band: None,
            count_me: false,
            reported_elsewhere: None,
            when: None,
            approximate: false,
            reply_language: None,
            attach: vec![],
            to: self.to.clone(),
            keep_copy: self.keep_copy,
            interactive: false,
            draft: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            lang: Language::En,
            json: false,
            profile: PathBuf::new(),
            device_key: None,
        }
    }

    #[test]
    fn dates_parse_at_each_precision_and_errors_say_the_format() {
        let d = parse_when(&ctx(), "2026-11", true).unwrap();
        assert_eq!(
            (d.year, d.month, d.day, d.approximate),
            (2026, Some(11), None, true)
        );
        let e = parse_when(&ctx(), "2026-13-45", false)
            .unwrap_err()
            .sentence(Language::En);
        assert!(
            e.contains("month must be 01 to 12") && e.contains("YYYY-MM-DD"),
            "{e}"
        );
        let es = parse_when(
            &Ctx {
                lang: Language::Es,
                ..ctx()
            },
            "ayer",
            false,
        )
        .unwrap_err()
        .sentence(Language::Es);
        assert!(es.contains("AAAA-MM-DD"), "{es}");
    }

    #[test]
    fn attachment_kinds_follow_the_extension() {
        assert_eq!(attachment_kind(Path::new("a.JPG")).0, AttachmentKind::Photo);
        assert_eq!(attachment_kind(Path::new("a.ogg")).1, "audio/ogg");
        assert_eq!(attachment_kind(Path::new("a")).0, AttachmentKind::Document);
    }

    #[test]
    fn a_file_to_attach_is_checked_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nofoto.jpg");
        let e = check_attachment(&ctx(), &missing)
            .unwrap_err()
            .sentence(Language::En);
        assert!(
            e.contains("nofoto.jpg") && e.contains("does not exist"),
            "{e}"
        );
        let e = check_attachment(&ctx(), dir.path())
            .unwrap_err()
            .sentence(Language::En);
        assert!(e.contains("folder"), "{e}");
        let broken = dir.path().join("rota.jpg");
        std::fs::write(&broken, [0xFF, 0xD8, 0x00]).unwrap();
        assert!(
            check_attachment(&ctx(), &broken).is_err(),
            "a damaged photo"
        );
        let fine = dir.path().join("nota.txt");
        std::fs::write(&fine, b"hola").unwrap();
        assert!(check_attachment(&ctx(), &fine).is_ok());
    }

    #[test]
    fn menu_answers_are_numbers_in_the_list() {
        assert_eq!(numbers(&ctx(), "1 3,2", 3), Ok(vec![0, 2, 1]));
        assert_eq!(numbers(&ctx(), "", 3), Ok(vec![]));
        assert!(numbers(&ctx(), "4", 3).unwrap_err().contains("1 to 3"));
        assert!(numbers(&ctx(), "0", 3).is_err());
        assert!(numbers(&ctx(), "uno", 3).is_err());
    }
}
