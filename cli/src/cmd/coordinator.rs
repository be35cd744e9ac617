//! `amparo coordinator`: the coordinator's public key, signing the
//! directory from its TOML source, and publishing it to a relay.

use std::path::PathBuf;

use amparo_core::coordinator::directory_from_toml;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_protocol::b64;
use clap::Subcommand;
use serde_json::json;

use crate::ctx::{CliError, CliResult, Ctx, now, read_file, relay_client, write_file};

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
            ctx.emit(
                ctx.tr(
                    &format!(
                        "Directorio versión {} firmado en {}: {} puntos focales, {} rutas, {} relays.",
                        signed.version(), out.display(), directory.focal_points.len(), directory.service_routes.len(), directory.relays.len()
                    ),
                    &format!(
                        "Diretório versão {} assinado em {}: {} pontos focais, {} rotas, {} relays.",
                        signed.version(), out.display(), directory.focal_points.len(), directory.service_routes.len(), directory.relays.len()
                    ),
                    &format!(
                        "Directory version {} signed into {}: {} focal points, {} routes, {} relays.",
                        signed.version(), out.display(), directory.focal_points.len(), directory.service_routes.len(), directory.relays.len()
                    ),
                ),
                json!({ "version": signed.version(), "file": out.display().to_string(), "bytes": signed.as_bytes().len() }),
            );
            Ok(())
        }
        CoordinatorCmd::Publish { file, relay } => {
            let bytes = read_file(&file)?;
            let client = match relay {
                Some(url) => RelayClient::new(&RelayConfig::new(url))?,
                None => relay_client(&ctx.open()?.settings()?)?,
            };
            client.publish_directory(&bytes).await?;
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
