//! What several commands show the same way: sync progress bars and what
//! an import did. Commands import from here, never from each other.

use amparo_core::bundles::ImportReport;
use amparo_core::survivor::SyncProgress;
use serde_json::json;

use crate::ctx::Ctx;

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
    };
    bar.set_message(msg);
    bar.set_length(total as u64);
    bar.set_position(done as u64);
}

/// Prints what an import did, saying exactly what was kept when a bundle
/// was damaged.
pub fn print_import(ctx: &Ctx, r: &ImportReport) {
    let mut human = ctx.tr(
        &format!(
            "Sobres recibidos: {}. Repetidos: {}. Recibos aceptados: {}, ignorados: {}.",
            r.envelopes, r.duplicates, r.receipts_accepted, r.receipts_ignored
        ),
        &format!(
            "Envelopes recebidos: {}. Repetidos: {}. Recibos aceitos: {}, ignorados: {}.",
            r.envelopes, r.duplicates, r.receipts_accepted, r.receipts_ignored
        ),
        &format!(
            "Envelopes taken: {}. Repeats: {}. Receipts accepted: {}, ignored: {}.",
            r.envelopes, r.duplicates, r.receipts_accepted, r.receipts_ignored
        ),
    );
    if r.grants > 0 {
        human.push_str(&ctx.tr(
            &format!(" Permisos para traer respuestas: {}.", r.grants),
            &format!(" Permissões para trazer respostas: {}.", r.grants),
            &format!(" Leave to fetch answers: {}.", r.grants),
        ));
    }
    if r.messages > 0 {
        human.push_str(&ctx.tr(
            &format!(
                " Respuestas nuevas para usted: {} (véalas con `amparo report replies`).",
                r.messages
            ),
            &format!(
                " Respostas novas para você: {} (veja com `amparo report replies`).",
                r.messages
            ),
            &format!(
                " New answers for you: {} (read them with `amparo report replies`).",
                r.messages
            ),
        ));
    }
    if let Some(v) = r.directory {
        human.push_str(&ctx.tr(
            &format!(" Directorio actualizado (versión {v})."),
            &format!(" Diretório atualizado (versão {v})."),
            &format!(" Directory updated (version {v})."),
        ));
    }
    if let Some(why) = &r.damaged {
        human.push_str(&ctx.tr(
            &format!("\nEl paquete está dañado ({why}): se guardó solo lo anterior al daño, contado arriba; nada de lo posterior."),
            &format!("\nO pacote está danificado ({why}): guardou-se só o anterior ao dano, contado acima; nada do posterior."),
            &format!("\nThe bundle is damaged ({why}): only what came before the damage was kept, counted above; nothing after it."),
        ));
    }
    ctx.emit(
        human,
        json!({
            "envelopes": r.envelopes,
            "duplicates": r.duplicates,
            "receipts_accepted": r.receipts_accepted,
            "receipts_ignored": r.receipts_ignored,
            "directory": r.directory,
            "damaged": r.damaged,
            "grants": r.grants,
            "messages": r.messages,
        }),
    );
}
