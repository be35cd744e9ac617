//! `amparo carry`: what a facilitator does — take in people's sealed
//! bundles, deliver them at the next sync, and bring back receipts and the
//! latest directory. She sees counts, never contents.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use crate::ctx::{CliError, CliResult, Ctx, now, relay_client, write_file};
use crate::lang::count;
use crate::present::{Importer, damaged_files, import_file, progress_bar, show_progress};
use amparo_core::survivor::{DEFAULT_REPLY_BUDGET, ReadBudget};

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
    Sync {
        /// Most data to spend picking up sealed answers, in KiB (default
        /// 1280; give more on Wi-Fi). What does not fit comes at the next
        /// sync. / Máximo de datos para recoger respuestas, en KiB (1280 por
        /// defecto). / Máximo de dados para recolher respostas, em KiB (1280
        /// por padrão).
        #[arg(long, value_name = "KiB")]
        budget: Option<u64>,
    },
    /// Write the bundle to hand back: receipts and the latest directory.
    /// / El paquete de vuelta: recibos y directorio. / O pacote de volta: recibos e diretório.
    Export {
        /// The file to write.
        file: PathBuf,
        /// Admission tokens to hand on in it (they leave your phone; give
        /// each person a bundle of her own). / Fichas de admisión a incluir.
        /// / Fichas de admissão a incluir.
        #[arg(long, value_name = "N", default_value_t = 0)]
        tokens: usize,
    },
    /// This phone's key, to show a focal point who vouches for you.
    /// / La clave de este teléfono, para un aval. / A chave deste telefone, para um aval.
    Key,
    /// Keep the voucher a focal point gave you. / Guardar el aval de un
    /// punto focal. / Guardar o aval de um ponto focal.
    Voucher {
        /// The voucher text. / El texto del aval. / O texto do aval.
        #[arg(allow_hyphen_values = true)]
        voucher: String,
    },
    /// Admission tokens: ask the relay for some (--ask N), or hand some on
    /// (--give N); each lets one report through when the relay is pressed.
    /// / Fichas de admisión: pedir (--ask N) o entregar (--give N).
    /// / Fichas de admissão: pedir (--ask N) ou entregar (--give N).
    Tokens {
        /// How many to ask the relay for. / Cuántas pedir. / Quantas pedir.
        #[arg(long, value_name = "N", conflicts_with = "give")]
        ask: Option<usize>,
        /// How many to hand on, as a text. / Cuántas entregar. / Quantas entregar.
        #[arg(long, value_name = "N")]
        give: Option<usize>,
    },
}

/// Runs a `carry` command.
pub async fn run(ctx: &Ctx, cmd: CarryCmd) -> CliResult {
    let p = ctx.open()?;
    match cmd {
        CarryCmd::Import { files } => {
            let coordinator = p.settings()?.coordinator()?;
            // Every file is tried; the command fails at the end if any was
            // unreadable or damaged, naming them.
            let mut damaged = Vec::new();
            let mut unreadable = Vec::new();
            for file in &files {
                match import_file(ctx, &p, file, &coordinator, &[], Importer::Facilitator) {
                    Ok(true) => {}
                    Ok(false) => damaged.push(file.as_path()),
                    Err(e) if files.len() == 1 => return Err(e),
                    Err(e) => {
                        eprintln!("amparo: {}", e.sentence(ctx.lang));
                        unreadable.push(file.as_path());
                    }
                }
            }
            if !unreadable.is_empty() {
                let names = unreadable
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(CliError::AfterResult(ctx.tr(
                    &format!("No se importó nada de: {names} (vea arriba por qué)."),
                    &format!("Nada foi importado de: {names} (veja acima por quê)."),
                    &format!("Nothing was imported from: {names} (see above why)."),
                )));
            }
            if !damaged.is_empty() {
                return Err(damaged_files(ctx, &damaged));
            }
            Ok(())
        }
        CarryCmd::Status => {
            let c = p.carrying()?;
            ctx.emit(
                ctx.tr(
                    &format!("Sobres sellados esperando entrega: {}. Entregados (con recibo para devolver): {}. Respuestas selladas para devolver: {} (de {} buzones). Usted no puede ver qué dicen ni de quién son.", c.waiting, c.delivered, c.replies, c.grants),
                    &format!("Envelopes lacrados aguardando entrega: {}. Entregues (com recibo para devolver): {}. Respostas lacradas para devolver: {} (de {} caixas). Você não pode ver o que dizem nem de quem são.", c.waiting, c.delivered, c.replies, c.grants),
                    &format!("Sealed envelopes waiting to be delivered: {}. Delivered (receipt to hand back): {}. Sealed answers to hand back: {} (from {} mailboxes). You cannot see what they say or whose they are.", c.waiting, c.delivered, c.replies, c.grants),
                ),
                json!({ "waiting": c.waiting, "delivered": c.delivered, "replies": c.replies, "grants": c.grants, "timer_items": c.timer_items }),
            );
            if c.timer_items > 0 {
                ctx.note(ctx.tr(
                    &format!("También lleva {} aviso(s) de temporizador (check-ins firmados): salen en la próxima sincronización; no puede leerlos ni cambiarlos.", c.timer_items),
                    &format!("Também leva {} aviso(s) de temporizador (check-ins assinados): saem na próxima sincronização; você não pode lê-los nem alterá-los.", c.timer_items),
                    &format!("You also carry {} timer notice(s) (signed check-ins): they go at the next sync; you cannot read or change them.", c.timer_items),
                ));
            }
            Ok(())
        }
        CarryCmd::Sync { budget } => {
            let budget =
                ReadBudget::new(budget.map_or(DEFAULT_REPLY_BUDGET, |k| k.saturating_mul(1024)));
            let settings = p.settings()?;
            let relay = relay_client(&settings)?;
            let coordinator = settings.coordinator()?;
            let directory = p.refresh_directory(&relay, &coordinator).await?;
            let keys = p.trusted_relay_keys()?;
            let bar = progress_bar(ctx);
            let up = p
                .upload_carried_with_progress(&relay, &keys, &mut |s| show_progress(ctx, &bar, s))
                .await?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            // Sealed answers for the people who gave her leave to fetch them.
            let fetched = p.fetch_granted_replies_within(&relay, now, budget).await?;
            let c = p.carrying()?;
            let (delivered, replies) = (up.delivered, fetched.new);
            ctx.emit(
                ctx.tr(
                    &format!("Sobres entregados ahora: {delivered}. Aún esperando: {}. Respuestas selladas recogidas: {replies}.", c.waiting),
                    &format!("Envelopes entregues agora: {delivered}. Ainda aguardando: {}. Respostas lacradas recolhidas: {replies}.", c.waiting),
                    &format!("Envelopes delivered now: {delivered}. Still waiting: {}. Sealed answers picked up: {replies}.", c.waiting),
                ),
                json!({
                    "delivered": delivered,
                    "waiting": c.waiting,
                    "postponed": up.postponed,
                    "refused": up.refused,
                    "retry_after_secs": up.retry_after_secs,
                    "replies": replies,
                    "reply_bytes": fetched.bytes,
                    "reply_budget": budget.limit(),
                    "replies_left": fetched.left,
                    "full_mailboxes": fetched.full,
                    "directory": directory,
                    "admission": super::tokens::paid_json(&up.paid),
                    "timer_items": up.timer_items,
                }),
            );
            super::tokens::paid_note(ctx, &up.paid);
            if up.postponed > 0 {
                let minutes = up.retry_after_secs.map_or(0, |s| s.div_ceil(60));
                let n = up.postponed;
                ctx.note(ctx.tr(
                    &format!("El relay está lleno o saturado y no tomó {}: siguen seguros con usted, sellados, y saldrán en una próxima sincronización (inténtelo de nuevo en unos {minutes} minutos).", count(ctx.lang, n, ("sobre", "sobres"), ("", ""), ("", ""))),
                    &format!("O relay está cheio ou sobrecarregado e não aceitou {}: continuam seguros com você, lacrados, e sairão numa próxima sincronização (tente de novo em uns {minutes} minutos).", count(ctx.lang, n, ("", ""), ("envelope", "envelopes"), ("", ""))),
                    &format!("The relay is full or busy and did not take {}: they stay safe with you, sealed, and will go at a later sync (try again in about {minutes} minutes).", count(ctx.lang, n, ("", ""), ("", ""), ("envelope", "envelopes"))),
                ));
            }
            if up.refused > 0 {
                let n = up.refused;
                ctx.note(ctx.tr(
                    &format!("El relay rechazó {} por estar dañados: no se enviarán otra vez. La persona que se los dio aún tiene su copia.", count(ctx.lang, n, ("sobre", "sobres"), ("", ""), ("", ""))),
                    &format!("O relay recusou {} por estarem danificados: não serão enviados de novo. A pessoa que os entregou ainda tem sua cópia.", count(ctx.lang, n, ("", ""), ("envelope", "envelopes"), ("", ""))),
                    &format!("The relay refused {} as damaged: they will not be sent again. The person who gave them to you still has her copy.", count(ctx.lang, n, ("", ""), ("", ""), ("envelope", "envelopes"))),
                ));
            }
            if fetched.left {
                let kib = budget.limit() / 1024;
                ctx.note(ctx.tr(
                    &format!("Se usó el límite de datos para recoger respuestas ({kib} KiB): el resto se recogerá en la próxima sincronización. Con wifi puede traer más con --budget."),
                    &format!("Foi usado o limite de dados para recolher respostas ({kib} KiB): o resto será recolhido na próxima sincronização. Com wi-fi pode buscar mais com --budget."),
                    &format!("This sync used its data limit for picking up answers ({kib} KiB): the rest is picked up at the next sync. On Wi-Fi you can fetch more with --budget."),
                ));
            }
            if fetched.full > 0 {
                let n = fetched.full;
                ctx.note(ctx.tr(
                    &format!("{}: ya lleva todo lo que se recoge por persona; ella recibirá el resto cuando sincronice su propio teléfono.", count(ctx.lang, n, ("buzón de respuestas lleno", "buzones de respuestas llenos"), ("", ""), ("", ""))),
                    &format!("{}: você já leva tudo o que se recolhe por pessoa; ela receberá o resto quando sincronizar o próprio telefone.", count(ctx.lang, n, ("", ""), ("caixa de respostas cheia", "caixas de respostas cheias"), ("", ""))),
                    &format!("{}: you already carry all that is picked up per person; she gets the rest when she syncs her own phone.", count(ctx.lang, n, ("", ""), ("", ""), ("full answer mailbox", "full answer mailboxes"))),
                ));
            }
            Ok(())
        }
        CarryCmd::Key => super::tokens::carry_key(ctx, &p),
        CarryCmd::Voucher { voucher } => super::tokens::keep_voucher(ctx, &p, &voucher),
        CarryCmd::Tokens { ask, give } => super::tokens::tokens(ctx, &p, ask, give).await,
        CarryCmd::Export { file, tokens } => {
            let bytes = p.export_return_bundle_with_tokens(tokens)?;
            write_file(&file, &bytes)?;
            let c = p.carrying()?;
            ctx.emit(
                ctx.tr(
                    &format!("Paquete de vuelta en {}: {}, {} y el directorio. Entréguelo a las personas que le dieron sus denuncias: cada teléfono toma solo lo suyo.", file.display(), count(ctx.lang, c.delivered, ("recibo", "recibos"), ("", ""), ("", "")), count(ctx.lang, c.replies, ("respuesta sellada", "respuestas selladas"), ("", ""), ("", ""))),
                    &format!("Pacote de volta em {}: {}, {} e o diretório. Entregue-o às pessoas que lhe deram suas denúncias: cada telefone pega só o seu.", file.display(), count(ctx.lang, c.delivered, ("", ""), ("recibo", "recibos"), ("", "")), count(ctx.lang, c.replies, ("", ""), ("resposta lacrada", "respostas lacradas"), ("", ""))),
                    &format!("Return bundle in {}: {}, {} and the directory. Hand it to the people who gave you their reports: each phone takes only its own.", file.display(), count(ctx.lang, c.delivered, ("", ""), ("", ""), ("receipt", "receipts")), count(ctx.lang, c.replies, ("", ""), ("", ""), ("sealed answer", "sealed answers"))),
                ),
                json!({ "file": file.display().to_string(), "receipts": c.delivered, "replies": c.replies, "bytes": bytes.len(), "tokens_left": p.tokens()?.len() }),
            );
            Ok(())
        }
    }
}
