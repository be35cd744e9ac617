//! `amparo directory`: see what a signed directory holds and whether it
//! verifies, refresh it from the relay, import it from a file, and find a
//! focal point.

use std::fmt::Write as _;
use std::path::PathBuf;

use amparo_core::coordinator::{format_date, format_until_date};
use amparo_core::directory::{FocalPointQuery, choose, suggest};
use amparo_protocol::b64;
use amparo_protocol::directory::{Directory, SignedDirectory};
use amparo_protocol::payload::{Language, Need};
use amparo_protocol::primitives::ed25519::VerifyingKey;
use clap::Subcommand;
use serde_json::json;

use super::{labels, parse_enum, wire_name};
use crate::ctx::{CliError, CliResult, Ctx, key_from, now, read_file, relay_client};
use crate::lang::language_names;
use amparo_core::directory::{RegionMatch, find_region};
use amparo_core::store::Profile;

/// `amparo directory …`
#[derive(Subcommand)]
pub enum DirectoryCmd {
    /// Show a directory and whether its signature verifies: a file, or the
    /// one the profile holds. / Ver el directorio. / Ver o diretório.
    Show {
        /// A signed directory file (otherwise the profile's).
        #[arg(long)]
        file: Option<PathBuf>,
        /// The coordinator key to check it against (otherwise the profile's).
        #[arg(long, allow_hyphen_values = true)]
        coordinator_key: Option<String>,
    },
    /// Get a newer directory from the relay (a few bytes when unchanged).
    /// / Actualizar el directorio. / Atualizar o diretório.
    Refresh,
    /// Take a signed directory from a file (it must verify and be newer).
    Import {
        /// The signed directory file.
        file: PathBuf,
    },
    /// Find focal points by region, kind of help and language.
    /// / Buscar puntos focales. / Buscar pontos focais.
    Find {
        /// Region: its code or name, in any case (PE-UCA, pe-uca, Ucayali).
        #[arg(long)]
        region: Option<String>,
        /// A kind of help, e.g. legal-advice.
        #[arg(long, value_parser = parse_enum::<Need>)]
        need: Option<Need>,
        /// A language: es, pt, en.
        #[arg(long = "language", value_parser = parse_enum::<Language>)]
        language: Option<Language>,
    },
}

/// Runs a `directory` command.
pub async fn run(ctx: &Ctx, cmd: DirectoryCmd) -> CliResult {
    match cmd {
        DirectoryCmd::Show {
            file,
            coordinator_key,
        } => {
            // A file checked against a given key needs no profile (and no PIN).
            let (bytes, key) = match (file, coordinator_key) {
                (Some(f), Some(k)) => (
                    read_file(&f)?,
                    VerifyingKey(key_from(ctx.lang, "--coordinator-key", &k)?),
                ),
                (Some(f), None) if !Profile::exists(&ctx.profile) => {
                    return crate::ctx::fail(ctx.tr(
                        &format!("Para comprobar {} hace falta la clave de la coordinación: pásela con --coordinator-key CLAVE, o use un perfil que la tenga fijada con --profile CARPETA (no hay ningún perfil en {}).", f.display(), ctx.profile.display()),
                        &format!("Para verificar {} é preciso a chave da coordenação: passe-a com --coordinator-key CHAVE, ou use um perfil que a tenha fixada com --profile PASTA (não há nenhum perfil em {}).", f.display(), ctx.profile.display()),
                        &format!("To check {} the coordinator's key is needed: pass it with --coordinator-key KEY, or use a profile that pins it with --profile DIR (there is no profile in {}).", f.display(), ctx.profile.display()),
                    ));
                }
                (file, key) => {
                    let p = ctx.open()?;
                    let key = match key {
                        Some(k) => VerifyingKey(key_from(ctx.lang, "--coordinator-key", &k)?),
                        None => p.settings()?.coordinator()?,
                    };
                    let bytes = match file {
                        Some(f) => read_file(&f)?,
                        None => p.directory_bytes()?.ok_or_else(|| {
                            CliError::Message(ctx.tr(
                                "Este perfil aún no tiene directorio: tráigalo con `amparo directory refresh` o de un paquete.",
                                "Este perfil ainda não tem diretório: traga-o com `amparo directory refresh` ou de um pacote.",
                                "This profile holds no directory yet: get it with `amparo directory refresh` or from a bundle.",
                            ))
                        })?,
                    };
                    (bytes, key)
                }
            };
            match SignedDirectory::verify(&bytes, &key) {
                Ok(signed) => {
                    show(ctx, signed.version(), signed.directory(), &key);
                    Ok(())
                }
                Err(e) => Err(CliError::Message(ctx.tr(
                    &format!("El directorio NO es válido: {e}. No lo use."),
                    &format!("O diretório NÃO é válido: {e}. Não o use."),
                    &format!("The directory does NOT verify: {e}. Do not use it."),
                ))),
            }
        }
        DirectoryCmd::Refresh => {
            let p = ctx.open()?;
            let settings = p.settings()?;
            let version = p
                .refresh_directory(&relay_client(&settings)?, &settings.coordinator()?)
                .await?;
            ctx.emit(
                ctx.tr(
                    &format!(
                        "Directorio, versión {}.",
                        version.map_or("-".into(), |v| v.to_string())
                    ),
                    &format!(
                        "Diretório, versão {}.",
                        version.map_or("-".into(), |v| v.to_string())
                    ),
                    &format!(
                        "Directory version {}.",
                        version.map_or("-".into(), |v| v.to_string())
                    ),
                ),
                json!({ "version": version }),
            );
            Ok(())
        }
        DirectoryCmd::Import { file } => {
            let p = ctx.open()?;
            let version =
                p.import_directory(&read_file(&file)?, &p.settings()?.coordinator()?, None)?;
            ctx.emit(
                ctx.tr(
                    &format!("Directorio aceptado, versión {version}."),
                    &format!("Diretório aceito, versão {version}."),
                    &format!("Directory accepted, version {version}."),
                ),
                json!({ "version": version }),
            );
            Ok(())
        }
        DirectoryCmd::Find {
            region,
            need,
            language,
        } => {
            let p = ctx.open()?;
            let coordinator = p.settings()?.coordinator()?;
            let Some(directory) = p.directory(&coordinator)? else {
                return crate::ctx::fail(ctx.tr(
                    "Este perfil no tiene directorio.",
                    "Este perfil não tem diretório.",
                    "This profile holds no directory.",
                ));
            };
            // A region by code or name, in any case, as `report write` takes it.
            let region = match region {
                None => None,
                Some(typed) => match find_region(&directory, &typed, now()) {
                    RegionMatch::Served(code) => Some(code),
                    RegionMatch::NotServed(r) => Some(r.code),
                    RegionMatch::Several(_) | RegionMatch::Unknown => Some(typed),
                },
            };
            let query = FocalPointQuery {
                region,
                need,
                language,
            };
            let found = choose(&directory, &query, now());
            let best = suggest(&directory, &query, now());
            let mut human = Vec::new();
            for f in &found {
                human.push(format!(
                    "{}  {}  ({})",
                    f.id,
                    f.name.get(ctx.lang),
                    f.regions.join(", ")
                ));
            }
            if found.is_empty() {
                human.push(ctx.tr(
                    "Ninguno cumple todo lo pedido.",
                    "Nenhum atende a tudo o que foi pedido.",
                    "None matches everything asked.",
                ));
            }
            if let Some(b) = best {
                human.push(ctx.tr(
                    &format!("Sugerido: {} ({})", b.name.get(ctx.lang), b.id),
                    &format!("Sugerido: {} ({})", b.name.get(ctx.lang), b.id),
                    &format!("Suggested: {} ({})", b.name.get(ctx.lang), b.id),
                ));
            }
            ctx.emit(
                human.join("\n"),
                json!({
                    "matches": found.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
                    "suggested": best.map(|b| b.id.clone()),
                }),
            );
            Ok(())
        }
    }
}

fn show(ctx: &Ctx, version: u64, d: &Directory, key: &VerifyingKey) {
    let l = ctx.lang;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        ctx.tr(
            &format!(
                "Directorio versión {version}: firma VÁLIDA de la coordinación {}.",
                b64::encode(key.as_bytes())
            ),
            &format!(
                "Diretório versão {version}: assinatura VÁLIDA da coordenação {}.",
                b64::encode(key.as_bytes())
            ),
            &format!(
                "Directory version {version}: signature VERIFIES against coordinator {}.",
                b64::encode(key.as_bytes())
            ),
        )
    );
    let _ = writeln!(
        out,
        "\n{}:",
        ctx.tr("Puntos focales", "Pontos focais", "Focal points")
    );
    for f in &d.focal_points {
        let valid = if f.is_valid_at(now()) {
            ctx.tr("vigente", "vigente", "valid now")
        } else {
            ctx.tr("NO vigente", "NÃO vigente", "NOT valid now")
        };
        let _ = writeln!(out, "- {} — {} ({})", f.id, f.name.get(l), f.organization);
        let _ = writeln!(
            out,
            "  {}: {}",
            ctx.tr("Regiones", "Regiões", "Regions"),
            f.regions.join(", ")
        );
        let _ = writeln!(
            out,
            "  {}: {}",
            ctx.tr("Atiende", "Atende", "Helps with"),
            labels(&f.categories, l)
        );
        let _ = writeln!(
            out,
            "  {}: {}",
            ctx.tr("Idiomas", "Idiomas", "Languages"),
            language_names(l, &f.languages)
        );
        let _ = writeln!(
            out,
            "  {}: {} → {} ({valid})",
            ctx.tr("Vigencia", "Vigência", "Valid"),
            format_date(f.valid_from),
            format_until_date(f.valid_until)
        );
    }
    if !d.service_routes.is_empty() {
        let _ = writeln!(
            out,
            "\n{}:",
            ctx.tr(
                "Rutas de atención",
                "Rotas de atendimento",
                "Service routes"
            )
        );
        for r in &d.service_routes {
            let _ = writeln!(
                out,
                "- [{}] {} ({})",
                r.region,
                r.name.get(l),
                wire_name(&r.service)
            );
            let _ = writeln!(out, "  {}", r.description.get(l));
            if let Some(c) = &r.contact {
                let _ = writeln!(out, "  {c}");
            }
        }
    }
    if !d.relays.is_empty() {
        let _ = writeln!(out, "\nRelays:");
        for r in &d.relays {
            let _ = writeln!(
                out,
                "- {} {} ({})",
                r.name,
                r.url.as_deref().unwrap_or(""),
                b64::encode(&r.receipt_key)
            );
        }
    }
    let json = json!({
        "version": version,
        "verified": true,
        "coordinator_key": b64::encode(key.as_bytes()),
        "focal_points": d.focal_points.iter().map(|f| json!({
            "id": f.id,
            "name": f.name.get(l),
            "organization": f.organization,
            "regions": f.regions,
            "categories": f.categories.iter().map(wire_name).collect::<Vec<_>>(),
            "languages": f.languages.iter().map(wire_name).collect::<Vec<_>>(),
            "valid_from": format_date(f.valid_from),
            "valid_until": format_until_date(f.valid_until),
            "valid_now": f.is_valid_at(now()),
        })).collect::<Vec<_>>(),
        "service_routes": d.service_routes.iter().map(|r| json!({
            "id": r.id, "region": r.region, "service": wire_name(&r.service), "name": r.name.get(l),
        })).collect::<Vec<_>>(),
        "relays": d.relays.iter().map(|r| json!({
            "name": r.name, "url": r.url, "receipt_key": b64::encode(&r.receipt_key),
        })).collect::<Vec<_>>(),
    });
    ctx.emit(out.trim_end(), json);
}
