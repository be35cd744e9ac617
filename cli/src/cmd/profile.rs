//! `amparo profile`: create, show, configure, change the PIN, set a duress
//! PIN, wipe.

use amparo_core::coordinator::focal_point_source;
use amparo_core::settings::{Role, Settings};
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::b64;
use amparo_protocol::payload::Language;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{parse_enum, wire_name};
use crate::ctx::{CliResult, Ctx, fail, parse_key};

/// Settings that `create` and `set` share.
#[derive(Args, Default)]
pub struct SettingArgs {
    /// The relay's address, e.g. https://relay.example.org
    /// / La dirección del relay. / O endereço do relay.
    #[arg(long)]
    relay: Option<String>,
    /// The coordinator's public key (base64url): directories must be signed
    /// with it. / La clave pública de la coordinación. / A chave pública da coordenação.
    #[arg(long)]
    coordinator_key: Option<String>,
    /// A relay receipt key to trust besides those in the directory (repeat
    /// for several).
    #[arg(long = "relay-key")]
    relay_keys: Vec<String>,
    /// A SOCKS5 or HTTP proxy, e.g. socks5h://127.0.0.1:9050 for Tor.
    #[arg(long)]
    proxy: Option<String>,
    /// A focal point's id in the directory.
    #[arg(long)]
    focal_point_id: Option<String>,
}

impl SettingArgs {
    fn apply(&self, s: &mut Settings) -> CliResult {
        if let Some(r) = &self.relay {
            s.relay_url = Some(r.trim_end_matches('/').to_string());
        }
        if let Some(k) = &self.coordinator_key {
            s.coordinator_key = Some(parse_key(k)?);
        }
        for k in &self.relay_keys {
            let k = parse_key(k)?;
            if !s.relay_keys.contains(&k) {
                s.relay_keys.push(k);
            }
        }
        if let Some(p) = &self.proxy {
            s.proxy = (!p.is_empty()).then(|| p.clone());
        }
        if let Some(id) = &self.focal_point_id {
            s.focal_point_id = Some(id.clone());
        }
        Ok(())
    }
}

/// `amparo profile …`
#[derive(Subcommand)]
pub enum ProfileCmd {
    /// Create a profile (asks for a new PIN twice, or reads AMPARO_PIN).
    /// / Crear un perfil. / Criar um perfil.
    Create {
        /// What it is for: survivor, facilitator, focal-point, coordinator.
        #[arg(long, value_parser = parse_enum::<Role>, default_value = "survivor")]
        role: Role,
        #[command(flatten)]
        settings: SettingArgs,
        /// Key stretching for tests only: makes the PIN easy to guess.
        #[arg(long, hide = true)]
        dangerously_fast_kdf: bool,
    },
    /// Show the profile's settings and what it holds (counts only).
    /// / Ver el perfil. / Ver o perfil.
    Show,
    /// Change settings: relay, coordinator key, trusted relay keys, proxy.
    /// / Cambiar la configuración. / Mudar a configuração.
    Set {
        #[command(flatten)]
        settings: SettingArgs,
        /// Language of messages for this profile: es, pt, en.
        #[arg(long = "language", value_parser = parse_enum::<Language>)]
        language: Option<Language>,
    },
    /// Change the PIN (the new one from a prompt or AMPARO_NEW_PIN).
    /// / Cambiar el PIN. / Mudar o PIN.
    ChangePin,
    /// Set a duress PIN: it opens an empty profile that looks real (from a
    /// prompt or AMPARO_DURESS_PIN). / PIN de emergencia: abre un perfil vacío.
    /// / PIN de emergência: abre um perfil vazio.
    Duress {
        /// Using the duress PIN also destroys the real profile.
        /// / Usarlo borra además el perfil real. / Usá-lo apaga também o perfil real.
        #[arg(long)]
        wipe_real: bool,
        /// Remove the duress PIN instead.
        #[arg(long, conflicts_with = "wipe_real")]
        clear: bool,
    },
    /// Destroy the profile and everything in it, for good.
    /// / Borrar el perfil para siempre. / Apagar o perfil para sempre.
    Wipe {
        /// Confirm. / Confirmar.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs a `profile` command.
pub fn run(ctx: &Ctx, cmd: ProfileCmd) -> CliResult {
    match cmd {
        ProfileCmd::Create {
            role,
            settings,
            dangerously_fast_kdf,
        } => create(ctx, role, &settings, dangerously_fast_kdf),
        ProfileCmd::Show => show(ctx),
        ProfileCmd::Set { settings, language } => {
            let p = ctx.open()?;
            let mut s = p.settings()?;
            settings.apply(&mut s)?;
            if language.is_some() {
                s.language = language;
            }
            p.save_settings(&s)?;
            ctx.emit(
                ctx.tr(
                    "Configuración guardada.",
                    "Configuração salva.",
                    "Settings saved.",
                ),
                json!({ "saved": true }),
            );
            Ok(())
        }
        ProfileCmd::ChangePin => {
            let p = ctx.open()?;
            let new = ctx.new_pin(
                "AMPARO_NEW_PIN",
                &ctx.tr("PIN nuevo", "PIN novo", "New PIN"),
            )?;
            p.change_pin(&new)?;
            ctx.emit(
                ctx.tr("PIN cambiado.", "PIN alterado.", "PIN changed."),
                json!({ "changed": true }),
            );
            Ok(())
        }
        ProfileCmd::Duress { wipe_real, clear } => {
            let p = ctx.open()?;
            if clear {
                p.clear_duress_pin()?;
                ctx.emit(
                    ctx.tr(
                        "PIN de emergencia quitado.",
                        "PIN de emergência removido.",
                        "Duress PIN removed.",
                    ),
                    json!({ "duress": false }),
                );
                return Ok(());
            }
            let pin = ctx.new_pin(
                "AMPARO_DURESS_PIN",
                &ctx.tr("PIN de emergencia", "PIN de emergência", "Duress PIN"),
            )?;
            p.set_duress_pin(&pin, wipe_real)?;
            ctx.emit(
                if wipe_real {
                    ctx.tr(
                        "PIN de emergencia guardado: abre un perfil vacío y borra este.",
                        "PIN de emergência salvo: abre um perfil vazio e apaga este.",
                        "Duress PIN set: it opens an empty profile and destroys this one.",
                    )
                } else {
                    ctx.tr(
                        "PIN de emergencia guardado: abre un perfil vacío.",
                        "PIN de emergência salvo: abre um perfil vazio.",
                        "Duress PIN set: it opens an empty profile.",
                    )
                },
                json!({ "duress": true, "wipe_real": wipe_real }),
            );
            Ok(())
        }
        ProfileCmd::Wipe { yes } => {
            if !yes {
                return fail(ctx.tr(
                    "Esto borra el perfil para siempre. Repita con --yes.",
                    "Isto apaga o perfil para sempre. Repita com --yes.",
                    "This destroys the profile for good. Repeat with --yes.",
                ));
            }
            ctx.open()?.wipe()?;
            ctx.emit(
                ctx.tr("Perfil borrado.", "Perfil apagado.", "Profile destroyed."),
                json!({ "wiped": true }),
            );
            Ok(())
        }
    }
}

fn create(ctx: &Ctx, role: Role, args: &SettingArgs, fast: bool) -> CliResult {
    let params = if fast {
        KdfParams::DANGEROUSLY_FAST_FOR_TESTS
    } else {
        KdfParams::PHONE
    };
    let p = ctx.create(params)?;
    let mut s = Settings {
        role: Some(role),
        language: Some(ctx.lang),
        ..Settings::default()
    };
    args.apply(&mut s)?;
    p.save_settings(&s)?;
    let mut out = json!({ "created": ctx.profile.display().to_string(), "role": wire_name(&role) });
    let mut human = ctx.tr(
        &format!("Perfil creado en {}.", ctx.profile.display()),
        &format!("Perfil criado em {}.", ctx.profile.display()),
        &format!("Profile created in {}.", ctx.profile.display()),
    );
    match role {
        Role::FocalPoint => {
            let public = p.create_focal_identity()?;
            let id = s.focal_point_id.as_deref().unwrap_or("CHOOSE-AN-ID");
            human.push_str(&ctx.tr(
                "\nEnvíe estas líneas a la coordinación para el directorio:\n",
                "\nEnvie estas linhas à coordenação para o diretório:\n",
                "\nSend these lines to the coordinator for the directory:\n",
            ));
            human.push_str(&focal_point_source(id, &public));
            out["sealing_key"] = json!(b64::encode(&public.sealing_key));
            out["signing_key"] = json!(b64::encode(&public.signing_key));
            out["mailbox"] = json!(public.mailbox().to_string());
        }
        Role::Coordinator => {
            let public = p.create_coordinator_key()?;
            // A coordinator checks the directories it signs against its own key.
            if s.coordinator_key.is_none() {
                s.coordinator_key = Some(*public.as_bytes());
                p.save_settings(&s)?;
            }
            let key = b64::encode(public.as_bytes());
            human.push_str(&ctx.tr(
                &format!(
                    "\nClave pública de la coordinación (fíjela en teléfonos y relays):\n{key}"
                ),
                &format!("\nChave pública da coordenação (fixe-a nos telefones e relays):\n{key}"),
                &format!("\nCoordinator public key (pin it in phones and relays):\n{key}"),
            ));
            out["coordinator_key"] = json!(key);
        }
        Role::Survivor | Role::Facilitator => {}
    }
    ctx.emit(human, out);
    Ok(())
}

/// Opens the profile and shows its settings and counts.
fn show(ctx: &Ctx) -> CliResult {
    let p = ctx.open()?;
    let s = p.settings()?;
    let counts = counts(&p)?;
    let role = s.role.map(|r| wire_name(&r)).unwrap_or_default();
    let coordinator = s.coordinator_key.map(|k| b64::encode(&k));
    let relay_keys: Vec<String> = s.relay_keys.iter().map(|k| b64::encode(k)).collect();
    let json = json!({
        "role": role,
        "relay": s.relay_url,
        "proxy": s.proxy,
        "coordinator_key": coordinator,
        "relay_keys": relay_keys,
        "focal_point_id": s.focal_point_id,
        "directory_version": p.directory_version()?,
        "counts": counts,
    });
    let mut human = String::new();
    human.push_str(&format!("{}: {role}\n", ctx.tr("Papel", "Papel", "Role")));
    human.push_str(&format!(
        "Relay: {}\n",
        s.relay_url.as_deref().unwrap_or("-")
    ));
    human.push_str(&format!(
        "{}: {}\n",
        ctx.tr(
            "Clave de la coordinación",
            "Chave da coordenação",
            "Coordinator key"
        ),
        coordinator.as_deref().unwrap_or("-")
    ));
    if let Some(id) = &s.focal_point_id {
        human.push_str(&format!(
            "{}: {id}\n",
            ctx.tr("Punto focal", "Ponto focal", "Focal point")
        ));
    }
    human.push_str(&format!(
        "{}: {}\n",
        ctx.tr(
            "Directorio, versión",
            "Diretório, versão",
            "Directory version"
        ),
        p.directory_version()?
            .map_or("-".to_string(), |v| v.to_string())
    ));
    for (name, n) in counts.as_object().into_iter().flatten() {
        human.push_str(&format!("{name}: {n}\n"));
    }
    ctx.emit(human.trim_end(), json);
    Ok(())
}

fn counts(p: &Profile) -> CliResult<serde_json::Value> {
    let carrying = p.carrying()?;
    Ok(json!({
        "drafts": p.drafts()?.len(),
        "reports": p.sent_reports()?.len(),
        "outbox": p.outbox_len()?,
        "messages": p.messages()?.len(),
        "cases": p.cases(&Default::default())?.len(),
        "carrying_waiting": carrying.waiting,
        "carrying_delivered": carrying.delivered,
    }))
}
