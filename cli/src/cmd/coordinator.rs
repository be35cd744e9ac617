//! `amparo coordinator`: the coordinator's public key, signing the
//! directory from its TOML source, and publishing it to a relay.

use std::path::PathBuf;

use amparo_core::coordinator::directory_from_toml;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_protocol::b64;
use clap::Subcommand;
use serde_json::json;

use amparo_core::CoreError;

use crate::ctx::{CliError, CliResult, Ctx, now, read_file, relay_client, write_file};
use crate::lang::count;

/// An example directory source, to start from.
pub const TEMPLATE: &str = include_str!("../../examples/directory.toml");

/// `amparo coordinator …`
#[derive(Subcommand)]
pub enum CoordinatorCmd {
    /// Print the coordinator's public key (to pin in phones and relays).
    Public,
    /// Print an example directory source file to start from.
    Template,
    /// Build the directory from a TOML file, check it as a phone would, and
    /// sign it with the next version.
    Sign {
        /// The TOML source (see `amparo coordinator template`).
        source: PathBuf,
        /// Where to write the signed directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// The regional picture from the statistics the focal points published:
    /// by region, kind of place and month, with trends. No figure says
    /// which office it came from.
    Stats {
        /// First fetch what arrived at the coordinator's statistics mailbox.
        #[arg(long)]
        fetch: bool,
        /// As CSV for the sector's reports.
        #[arg(long)]
        csv: bool,
        /// Also write an HTML page with charts.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// The statistics sum of a month: open its round (the offices whose
    /// keys are in), close it (the offices that sent), or see where each
    /// stands. Sends what it queues to the relay; the sum is made by
    /// `coordinator stats --fetch` once the shares are in.
    Round {
        #[command(subcommand)]
        step: RoundStep,
    },
    /// Publish a signed directory to a relay (the relay checks the
    /// signature against its configured coordinator key).
    Publish {
        /// The signed directory file.
        file: PathBuf,
        /// The relay (otherwise the profile's).
        #[arg(long)]
        relay: Option<String>,
    },
}

/// `amparo coordinator round …`
#[derive(Subcommand)]
pub enum RoundStep {
    /// Open the round of a month that is over.
    Open {
        /// The month (YYYY-MM).
        #[arg(value_parser = super::stats::parse_month)]
        month: amparo_protocol::statistics::Month,
    },
    /// Close the round: the offices that sent are summed, the others'
    /// masks are removed with the shares the offices reveal.
    Close {
        /// The month (YYYY-MM).
        #[arg(value_parser = super::stats::parse_month)]
        month: amparo_protocol::statistics::Month,
    },
    /// Where each round stands.
    Status,
}

/// Runs a `coordinator` command.
pub async fn run(ctx: &Ctx, cmd: CoordinatorCmd) -> CliResult {
    match cmd {
        CoordinatorCmd::Template => {
            print!("{TEMPLATE}");
            Ok(())
        }
        CoordinatorCmd::Public => {
            let p = ctx.open()?;
            let key = b64::encode(p.coordinator_public()?.as_bytes());
            ctx.emit(&key, json!({ "coordinator_key": key }));
            Ok(())
        }
        CoordinatorCmd::Sign { source, out } => {
            let p = ctx.open()?;
            let text = String::from_utf8(read_file(&source)?)
                .map_err(|_| CliError::Message(format!("{}: not UTF-8 text", source.display())))?;
            let directory = directory_from_toml(&text)?;
            let signed = p.sign_directory(&directory, now())?;
            write_file(&out, signed.as_bytes())?;
            let l = ctx.lang;
            let fps = count(
                l,
                directory.focal_points.len(),
                ("punto focal", "puntos focales"),
                ("ponto focal", "pontos focais"),
                ("focal point", "focal points"),
            );
            let routes = count(
                l,
                directory.service_routes.len(),
                ("ruta de atención", "rutas de atención"),
                ("rota de atendimento", "rotas de atendimento"),
                ("service route", "service routes"),
            );
            let relays = count(
                l,
                directory.relays.len(),
                ("relay", "relays"),
                ("relay", "relays"),
                ("relay", "relays"),
            );
            let (version, out_name) = (signed.version(), out.display());
            ctx.emit(
                ctx.tr(
                    &format!("Directorio versión {version} firmado en {out_name}: {fps}, {routes}, {relays}."),
                    &format!("Diretório versão {version} assinado em {out_name}: {fps}, {routes}, {relays}."),
                    &format!("Directory version {version} signed into {out_name}: {fps}, {routes}, {relays}."),
                ),
                json!({ "version": signed.version(), "file": out.display().to_string(), "bytes": signed.as_bytes().len() }),
            );
            Ok(())
        }
        CoordinatorCmd::Stats { fetch, csv, html } => {
            let p = ctx.open()?;
            super::stats::coordinator_stats(ctx, &p, fetch, csv, html.as_deref()).await
        }
        CoordinatorCmd::Round { step } => {
            let p = ctx.open()?;
            super::stats::round(ctx, &p, step).await
        }
        CoordinatorCmd::Publish { file, relay } => {
            let bytes = read_file(&file)?;
            let client = match relay {
                Some(url) => RelayClient::new(&RelayConfig::new(url))?,
                None => relay_client(&ctx.open()?.settings()?)?,
            };
            // Publishing is not queued: if the relay cannot be reached, it
            // did not happen, and the sentence says so.
            client.publish_directory(&bytes).await.map_err(|e| match e {
                CoreError::Network(detail) => CliError::Message(ctx.tr(
                    &format!("El directorio NO se publicó: no se pudo llegar al relay ({detail}). Publicar no queda en cola: vuelva a ejecutar esta orden cuando el relay esté accesible."),
                    &format!("O diretório NÃO foi publicado: não foi possível alcançar o relay ({detail}). Publicar não fica na fila: execute este comando de novo quando o relay estiver acessível."),
                    &format!("The directory was NOT published: the relay could not be reached ({detail}). Publishing is not queued: run this command again when the relay can be reached."),
                )),
                e => e.into(),
            })?;
            ctx.emit(
                ctx.tr(
                    "Directorio publicado en el relay.",
                    "Diretório publicado no relay.",
                    "Directory published to the relay.",
                ),
                json!({ "published": true }),
            );
            Ok(())
        }
    }
}
