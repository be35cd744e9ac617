//! `amparo carry`: what a facilitator does — take in people's sealed
//! bundles, deliver them at the next sync, and bring back receipts and the
//! latest directory. She sees counts, never contents.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use crate::ctx::{CliResult, Ctx, now, read_file, relay_client, trusted_relay_keys, write_file};
use crate::present::{print_import, progress_bar, show_progress};

/// `amparo carry …`
#[derive(Subcommand)]
pub enum CarryCmd {
    /// Take in bundles from people (files); each envelope is kept once.
    /// / Recibir paquetes de otras personas. / Receber pacotes de outras pessoas.
    Import {
        /// Bundle files. / Archivos. / Arquivos.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// How many envelopes you carry and how many are delivered (you cannot
    /// see what they say). / Cuántos sobres lleva (no puede ver su contenido).
    /// / Quantos envelopes você leva (não pode ver o conteúdo).
    Status,
    /// Deliver what you carry to the relay and get the latest directory.
    /// / Entregar al relay lo que lleva. / Entregar ao relay o que você leva.
    Sync,
    /// Write the bundle to hand back: receipts and the latest directory.
    /// / El paquete de vuelta: recibos y directorio. / O pacote de volta: recibos e diretório.
    Export {
        /// The file to write.
        file: PathBuf,
    },
}

/// Runs a `carry` command.
pub async fn run(ctx: &Ctx, cmd: CarryCmd) -> CliResult {
    let p = ctx.open()?;
    match cmd {
        CarryCmd::Import { files } => {
            let coordinator = p.settings()?.coordinator()?;
            let mut damaged = false;
            for file in files {
                let report = p.import_bundle(&read_file(&file)?, &coordinator, &[])?;
                ctx.note(format!("{}:", file.display()));
                damaged |= report.damaged.is_some();
                print_import(ctx, &report);
            }
            if damaged {
                return crate::ctx::fail(ctx.tr(
                    "Al menos un paquete estaba dañado.",
                    "Pelo menos um pacote estava danificado.",
                    "At least one bundle was damaged.",
                ));
            }
            Ok(())
        }
        CarryCmd::Status => {
            let c = p.carrying()?;
            ctx.emit(
                ctx.tr(
                    &format!("Esperando entrega: {}. Entregados (con recibo para devolver): {}. Respuestas selladas para devolver: {} (de {} buzones).", c.waiting, c.delivered, c.replies, c.grants),
                    &format!("Aguardando entrega: {}. Entregues (com recibo para devolver): {}. Respostas lacradas para devolver: {} (de {} caixas).", c.waiting, c.delivered, c.replies, c.grants),
                    &format!("Waiting to be delivered: {}. Delivered (receipt to hand back): {}. Sealed answers to hand back: {} (from {} mailboxes).", c.waiting, c.delivered, c.replies, c.grants),
                ),
                json!({ "waiting": c.waiting, "delivered": c.delivered, "replies": c.replies, "grants": c.grants }),
            );
            Ok(())
        }
        CarryCmd::Sync => {
            let settings = p.settings()?;
            let relay = relay_client(&settings)?;
            let coordinator = settings.coordinator()?;
            let directory = p.refresh_directory(&relay, &coordinator).await?;
            let keys = trusted_relay_keys(&p, &settings)?;
            let bar = progress_bar(ctx);
            let delivered = p
                .upload_carried_with_progress(&relay, &keys, &mut |s| show_progress(ctx, &bar, s))
                .await?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            // Sealed answers for the people who gave her leave to fetch them.
            let replies = p.fetch_granted_replies(&relay, now).await?;
            let c = p.carrying()?;
            ctx.emit(
                ctx.tr(
                    &format!("Entregados ahora: {delivered}. Aún esperando: {}. Respuestas selladas recogidas: {replies}.", c.waiting),
                    &format!("Entregues agora: {delivered}. Ainda aguardando: {}. Respostas lacradas recolhidas: {replies}.", c.waiting),
                    &format!("Delivered now: {delivered}. Still waiting: {}. Sealed answers picked up: {replies}.", c.waiting),
                ),
                json!({ "delivered": delivered, "waiting": c.waiting, "replies": replies, "directory": directory }),
            );
            Ok(())
        }
        CarryCmd::Export { file } => {
            let bytes = p.export_return_bundle()?;
            write_file(&file, &bytes)?;
            let c = p.carrying()?;
            ctx.emit(
                ctx.tr(
                    &format!("Paquete de vuelta en {}: {} recibos, {} respuestas selladas y el directorio.", file.display(), c.delivered, c.replies),
                    &format!("Pacote de volta em {}: {} recibos, {} respostas lacradas e o diretório.", file.display(), c.delivered, c.replies),
                    &format!("Return bundle in {}: {} receipts, {} sealed answers and the directory.", file.display(), c.delivered, c.replies),
                ),
                json!({ "file": file.display().to_string(), "receipts": c.delivered, "replies": c.replies, "bytes": bytes.len() }),
            );
            Ok(())
        }
    }
}
