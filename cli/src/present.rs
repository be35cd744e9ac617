//! What several commands show the same way: sync progress bars and what
//! an import did. Commands import from here, never from each other.

use std::path::Path;

use amparo_core::bundles::ImportReport;
use amparo_core::store::Profile;
use amparo_core::survivor::SyncProgress;
use amparo_protocol::bundle;
use amparo_protocol::primitives::ed25519::VerifyingKey;
use serde_json::json;

use crate::ctx::{CliError, CliResult, Ctx, fail, read_file};
use crate::lang::count;

/// Progress of a sync on stderr (indicatif), for people.
pub fn progress_bar(ctx: &Ctx) -> Option<indicatif::ProgressBar> {
    if ctx.json {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

/// Shows a [`SyncProgress`] on the bar.
pub fn show_progress(ctx: &Ctx, bar: &Option<indicatif::ProgressBar>, p: SyncProgress) {
    let Some(bar) = bar else { return };
    let (done, total, msg) = match p {
        SyncProgress::Upload { done, total, .. } => {
            (done, total, ctx.tr("Enviando", "Enviando", "Uploading"))
        }
        SyncProgress::Replies { done, total } => {
            (done, total, ctx.tr("Respuestas", "Respostas", "Replies"))
        }
        SyncProgress::Preparing { .. } => {
            // The relay is pressed: the work takes seconds; the bar stays
            // where it is and says why.
            bar.set_message(ctx.tr(
                "Preparando el envío (el relay está saturado)",
                "Preparando o envio (o relay está sobrecarregado)",
                "Preparing to send (the relay is busy)",
            ));
            return;
        }
    };
    bar.set_message(msg);
    bar.set_length(total as u64);
    bar.set_position(done as u64);
}

/// Who is importing: it decides what an ignored receipt means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importer {
    /// A survivor taking in what a facilitator brought back.
    Survivor,
    /// A facilitator taking in bundles to carry.
    Facilitator,
}

/// Reads and imports a bundle file, the same way for `report import` and
/// `carry import`: a file in which nothing at all can be read is an error
/// naming it, and nothing is stored; a file damaged part-way keeps what came
/// before the damage, says so, and returns `Ok(false)` so the command ends
/// with an error after the summary. `Ok(true)`: the whole file was read.
pub fn import_file(
    ctx: &Ctx,
    p: &Profile,
    file: &Path,
    coordinator: &VerifyingKey,
    relay_keys: &[VerifyingKey],
    who: Importer,
) -> CliResult<bool> {
    let bytes = read_file(file)?;
    let (items, error) = bundle::decode_prefix(&bytes);
    if let (true, Some(why)) = (items.is_empty(), error) {
        return fail(ctx.tr(
            &format!("{}: no se pudo leer nada de este archivo como paquete de Amparo ({why}). No se importó nada. ¿Es el archivo correcto? Si lo es, pida otra copia a quien se lo dio.", file.display()),
            &format!("{}: não foi possível ler nada deste arquivo como pacote do Amparo ({why}). Nada foi importado. É o arquivo certo? Se for, peça outra cópia a quem o deu.", file.display()),
            &format!("{}: nothing in this file could be read as an Amparo bundle ({why}). Nothing was imported. Is it the right file? If it is, ask whoever gave it to you for another copy.", file.display()),
        ));
    }
    let report = p.import_bundle(&bytes, coordinator, relay_keys)?;
    print_import(ctx, file, &report, who);
    Ok(report.damaged.is_none())
}

/// The error that ends an import in which some files were damaged part-way
/// (their summaries, already printed, say what was kept).
pub fn damaged_files(ctx: &Ctx, files: &[&Path]) -> CliError {
    let names = files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    CliError::AfterResult(ctx.tr(
        &format!("Dañado: {names}. Se guardó solo lo anterior al daño. Pida otra copia; importarla de nuevo es seguro (nada se guarda dos veces)."),
        &format!("Danificado: {names}. Guardou-se só o anterior ao dano. Peça outra cópia; importá-la de novo é seguro (nada é guardado duas vezes)."),
        &format!("Damaged: {names}. Only what came before the damage was kept. Ask for another copy; importing it again is safe (nothing is kept twice)."),
    ))
}

/// Prints what an import did, saying why receipts were ignored and exactly
/// what was kept when the bundle was damaged.
pub fn print_import(ctx: &Ctx, file: &Path, r: &ImportReport, who: Importer) {
    let l = ctx.lang;
    let mut parts: Vec<String> = Vec::new();
    if r.envelopes > 0 || r.duplicates > 0 || who == Importer::Facilitator {
        let taken = count(
            l,
            r.envelopes,
            ("sobre sellado", "sobres sellados"),
            ("envelope lacrado", "envelopes lacrados"),
            ("sealed envelope", "sealed envelopes"),
        );
        parts.push(ctx.tr(
            &format!(
                "Para llevar: {taken} nuevos (repetidos, ya guardados: {}).",
                r.duplicates
            ),
            &format!(
                "Para levar: {taken} novos (repetidos, já guardados: {}).",
                r.duplicates
            ),
            &format!(
                "To carry: {taken} new (repeats, already held: {}).",
                r.duplicates
            ),
        ));
    }
    if r.receipts_accepted > 0 {
        parts.push(ctx.tr(
            &format!(
                "Recibos del relay aceptados: {} (esos sobres cuentan como entregados).",
                r.receipts_accepted
            ),
            &format!(
                "Recibos do relay aceitos: {} (esses envelopes contam como entregues).",
                r.receipts_accepted
            ),
            &format!(
                "Relay receipts accepted: {} (those envelopes count as delivered).",
                r.receipts_accepted
            ),
        ));
    }
    if r.tokens > 0 {
        let n = r.tokens;
        parts.push(ctx.tr(
            &format!("Fichas de admisión recibidas: {n} (se usan solo si el relay está saturado)."),
            &format!(
                "Fichas de admissão recebidas: {n} (usadas só se o relay estiver sobrecarregado)."
            ),
            &format!("Admission tokens taken in: {n} (spent only when the relay is pressed)."),
        ));
    }
    if r.timer_items.items > 0 {
        let n = r.timer_items.items;
        parts.push(ctx.tr(
            &format!("Avisos de temporizador para enviar: {n} (check-ins firmados; no puede leerlos ni cambiarlos)."),
            &format!("Avisos de temporizador para enviar: {n} (check-ins assinados; você não pode lê-los nem alterá-los)."),
            &format!("Timer notices to send: {n} (signed check-ins; you cannot read or change them)."),
        ));
    }
    if r.timer_items.dropped > 0 {
        let n = r.timer_items.dropped;
        parts.push(ctx.tr(
            &format!("Avisos de temporizador no tomados: {n} (ya lleva el máximo; cada teléfono guarda los suyos)."),
            &format!("Avisos de temporizador não aceitos: {n} (já leva o máximo; cada telefone guarda os seus)."),
            &format!("Timer notices not taken: {n} (you carry the most already; each phone keeps its own)."),
        ));
    }
    if r.receipts_ignored > 0 {
        let n = r.receipts_ignored;
        parts.push(match who {
            Importer::Facilitator => ctx.tr(
                &format!("Recibos ignorados: {n}: un recibo solo sirve en el teléfono que escribió la denuncia, y este perfil no escribió esas. Este paquete de vuelta es para las personas que le dieron sus denuncias: entrégueselo a ellas."),
                &format!("Recibos ignorados: {n}: um recibo só serve no telefone que escreveu a denúncia, e este perfil não escreveu essas. Este pacote de volta é para as pessoas que lhe deram suas denúncias: entregue-o a elas."),
                &format!("Receipts ignored: {n}: a receipt only counts on the phone that wrote the report, and this profile did not write those. This return bundle is for the people who gave you their reports: hand it to them."),
            ),
            Importer::Survivor => ctx.tr(
                &format!("Recibos ignorados: {n}: son de denuncias de otras personas (un paquete de vuelta trae los de todas; aquí solo cuentan los suyos), o no los firmó un relay en el que este perfil confía."),
                &format!("Recibos ignorados: {n}: são de denúncias de outras pessoas (um pacote de volta traz os de todas; aqui só contam os seus), ou não foram assinados por um relay em que este perfil confia."),
                &format!("Receipts ignored: {n}: they are for other people's reports (a return bundle brings everyone's; only yours count here), or no relay this profile trusts signed them."),
            ),
        });
    }
    if r.grants > 0 {
        parts.push(ctx.tr(
            &format!("Permisos para traer respuestas: {}.", r.grants),
            &format!("Permissões para trazer respostas: {}.", r.grants),
            &format!("Leave to fetch answers: {}.", r.grants),
        ));
    }
    if r.messages > 0 {
        parts.push(ctx.tr(
            &format!(
                "Respuestas nuevas para usted: {} (véalas con `amparo report replies`).",
                r.messages
            ),
            &format!(
                "Respostas novas para você: {} (veja com `amparo report replies`).",
                r.messages
            ),
            &format!(
                "New answers for you: {} (read them with `amparo report replies`).",
                r.messages
            ),
        ));
    }
    if let Some(v) = r.directory {
        parts.push(ctx.tr(
            &format!("Directorio actualizado (versión {v})."),
            &format!("Diretório atualizado (versão {v})."),
            &format!("Directory updated (version {v})."),
        ));
    }
    if parts.is_empty() {
        parts.push(ctx.tr(
            "No traía nada nuevo para este perfil.",
            "Não trazia nada novo para este perfil.",
            "It held nothing new for this profile.",
        ));
    }
    if let Some(why) = &r.damaged {
        parts.push(ctx.tr(
            &format!("\nEl paquete está dañado ({why}): se guardó solo lo anterior al daño, contado arriba; nada de lo posterior."),
            &format!("\nO pacote está danificado ({why}): guardou-se só o anterior ao dano, contado acima; nada do posterior."),
            &format!("\nThe bundle is damaged ({why}): only what came before the damage was kept, counted above; nothing after it."),
        ));
    }
    ctx.emit(
        format!("{}: {}", file.display(), parts.join(" ")),
        json!({
            "file": file.display().to_string(),
            "envelopes": r.envelopes,
            "duplicates": r.duplicates,
            "receipts_accepted": r.receipts_accepted,
            "receipts_ignored": r.receipts_ignored,
            "directory": r.directory,
            "damaged": r.damaged,
            "grants": r.grants,
            "messages": r.messages,
            "tokens": r.tokens,
            "timer_items": r.timer_items.items,
            "timer_items_dropped": r.timer_items.dropped,
        }),
    );
}
