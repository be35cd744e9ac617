//! `amparo profile`: create, show, configure, change the PIN, set a duress
//! PIN, bind to a device key, wipe after N wrong PINs, wipe.

use amparo_core::coordinator::focal_point_source;
use amparo_core::settings::{Role, Settings};
use amparo_core::store::{Binding, KdfParams, Profile};
use amparo_protocol::b64;
use amparo_protocol::payload::Language;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{parse_enum, wire_name};
use crate::ctx::{CliError, CliResult, Ctx, fail, key_from};
use crate::lang::{count, language_name};
use amparo_core::relay::{RelayClient, RelayConfig};

/// Settings that `create` and `set` share.
#[derive(Args, Default)]
pub struct SettingArgs {
    /// The relay's address, e.g. https://relay.example.org
    /// / La dirección del relay. / O endereço do relay.
    #[arg(long)]
    relay: Option<String>,
    /// The coordinator's public key (base64url): directories must be signed
    /// with it. / La clave pública de la coordinación. / A chave pública da coordenação.
    #[arg(long, allow_hyphen_values = true)]
    coordinator_key: Option<String>,
    /// A relay receipt key to trust besides those in the directory (repeat
    /// for several).
    #[arg(long = "relay-key", allow_hyphen_values = true)]
    relay_keys: Vec<String>,
    /// A SOCKS5 or HTTP proxy, e.g. socks5h://127.0.0.1:9050 for Tor.
    #[arg(long)]
    proxy: Option<String>,
    /// A focal point's id in the directory.
    #[arg(long)]
    focal_point_id: Option<String>,
}

impl SettingArgs {
    /// Checks every value and puts it into `s`; on the first bad one,
    /// returns a sentence naming the flag and leaves `s` unusable (callers
    /// apply to a copy, before anything is stored).
    fn apply(&self, ctx: &Ctx, s: &mut Settings) -> CliResult {
        if let Some(r) = &self.relay {
            let url = r.trim().trim_end_matches('/');
            check_url(ctx, "--relay", url, &["http", "https"])?;
            s.relay_url = Some(url.to_string());
        }
        if let Some(k) = &self.coordinator_key {
            s.coordinator_key = Some(key_from(ctx.lang, "--coordinator-key", k)?);
        }
        for k in &self.relay_keys {
            let k = key_from(ctx.lang, "--relay-key", k)?;
            if !s.relay_keys.contains(&k) {
                s.relay_keys.push(k);
            }
        }
        if let Some(p) = &self.proxy {
            let p = p.trim();
            if !p.is_empty() {
                check_url(ctx, "--proxy", p, &["socks5", "socks5h", "http", "https"])?;
            }
            s.proxy = (!p.is_empty()).then(|| p.to_string());
        }
        if let Some(id) = &self.focal_point_id {
            check_focal_id(ctx, id)?;
            s.focal_point_id = Some(id.clone());
        }
        // The relay client is what will use them: it must accept them too.
        if let Some(url) = &s.relay_url {
            let mut config = RelayConfig::new(url.clone());
            config.proxy = s.proxy.clone();
            RelayClient::new(&config).map_err(|e| {
                CliError::Message(ctx.tr(
                    &format!("--proxy: no se puede usar ({e})."),
                    &format!("--proxy: não pode ser usado ({e})."),
                    &format!("--proxy: it cannot be used ({e})."),
                ))
            })?;
        }
        Ok(())
    }
}

/// A relay or proxy address as people type it: `scheme://host[:port][/path]`.
/// The refusal names the flag and shows a good example.
fn check_url(ctx: &Ctx, flag: &str, text: &str, schemes: &[&str]) -> CliResult {
    if url_problem(text, schemes).is_none() {
        return Ok(());
    }
    let example = if flag == "--proxy" {
        "socks5h://127.0.0.1:9050"
    } else {
        "https://relay.example.org"
    };
    let schemes = schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(", ");
    fail(ctx.tr(
        &format!("{flag}: «{text}» no es una dirección válida. Debe empezar por uno de {schemes} y seguir con el nombre o la IP del servidor, por ejemplo {example}."),
        &format!("{flag}: «{text}» não é um endereço válido. Deve começar com um de {schemes} e seguir com o nome ou o IP do servidor, por exemplo {example}."),
        &format!("{flag}: {text:?} is not a valid address. It must start with one of {schemes}, then the server's name or IP, for example {example}."),
    ))
}

/// Why `text` is not `scheme://host[:port][/path]` with one of `schemes`.
fn url_problem(text: &str, schemes: &[&str]) -> Option<&'static str> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Some("scheme");
    };
    if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Some("scheme");
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("space");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        if inside.is_empty()
            || !inside
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Some("host");
        }
        (inside, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        || authority.starts_with('[');
    if !host_ok {
        return Some("host");
    }
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(n) if n > 0)
    {
        return Some("port");
    }
    None
}

/// A focal point's id as the directory accepts it.
fn check_focal_id(ctx: &Ctx, id: &str) -> CliResult {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        return Ok(());
    }
    fail(ctx.tr(
        &format!("--focal-point-id: «{id}» no sirve como id del directorio: use hasta 64 letras minúsculas, cifras, - y _, por ejemplo pe-ucayali-defensoria."),
        &format!("--focal-point-id: «{id}» não serve como id do diretório: use até 64 letras minúsculas, dígitos, - e _, por exemplo br-roraima-casa."),
        &format!("--focal-point-id: {id:?} cannot be a directory id: use up to 64 lowercase letters, digits, - and _, for example pe-ucayali-defensoria."),
    ))
}

/// `amparo profile …`
#[derive(Subcommand)]
pub enum ProfileCmd {
    /// Create a profile (asks for a new PIN twice, or reads AMPARO_PIN).
    /// Choose 8 digits or more: a copy of the files can be tried offline
    /// (4 digits fall in minutes; README "PIN length"), unless the profile
    /// is bound to a device key kept apart (--device-key FILE).
    /// / Crear un perfil; PIN de 8 cifras o más. / Criar um perfil; PIN de 8 dígitos ou mais.
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
    /// Bind the profile to the device key file given with --device-key
    /// (`on`), or unbind it (`off`): asks the PIN and, if one is set, the
    /// duress PIN (AMPARO_PIN, AMPARO_DURESS_PIN). Bound, a copy of the
    /// profile's files does not open without that file.
    /// / Vincular el perfil a la clave de dispositivo (--device-key) o desvincularlo.
    /// / Vincular o perfil à chave de dispositivo (--device-key) ou desvinculá-lo.
    DeviceKey {
        /// on: bind; off: unbind.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Destroy the profile at the N-th wrong PIN in a row (0: never).
    /// / Borrar el perfil al N-ésimo PIN equivocado seguido (0: nunca).
    /// / Apagar o perfil no N-ésimo PIN errado seguido (0: nunca).
    WipeAfter {
        /// Wrong PINs in a row that destroy the profile; 0 turns it off.
        n: u32,
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
            // Checked before the PIN is asked, and applied to a copy: a bad
            // value changes nothing.
            settings.apply(ctx, &mut Settings::default())?;
            let p = ctx.open()?;
            let mut s = p.settings()?;
            settings.apply(ctx, &mut s)?;
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
        ProfileCmd::DeviceKey { state } => device_key(ctx, state == "on"),
        ProfileCmd::WipeAfter { n } => {
            let p = ctx.open()?;
            p.set_wipe_after(n)?;
            ctx.emit(
                if n == 0 {
                    ctx.tr(
                        "Borrado por PIN equivocados: desactivado.",
                        "Apagamento por PIN errados: desativado.",
                        "Wipe after wrong PINs: off.",
                    )
                } else {
                    ctx.tr(
                        &format!("El perfil se destruirá tras {n} PIN equivocados seguidos. Quien tenga este equipo puede saberlo (también probando). Una copia de los archivos lleva su propio contador: contra eso protege la clave de dispositivo."),
                        &format!("O perfil será destruído após {n} PIN errados seguidos. Quem tiver este aparelho pode sabê-lo (também tentando). Uma cópia dos arquivos leva o próprio contador: contra isso protege a chave de dispositivo."),
                        &format!("The profile will be destroyed after {n} wrong PINs in a row. Whoever holds this device can learn so (by trying, too). A copy of the files carries its own counter: the device key is what protects against that."),
                    )
                },
                json!({ "wipe_after": n }),
            );
            Ok(())
        }
        ProfileCmd::ChangePin => {
            let p = ctx.open()?;
            if std::env::var_os("AMPARO_NEW_PIN").is_none() {
                ctx.note(crate::ctx::pin_advice(ctx.lang));
            }
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
            p.set_duress_pin_with_decoy(&pin, wipe_real)?;
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

/// `profile device-key on|off`: re-wraps the profile's key with or without
/// the device key file (atomic in the core: an interruption leaves the old
/// binding or the new one, whole). The duress PIN, when one is set, is
/// asked so that it keeps working.
fn device_key(ctx: &Ctx, on: bool) -> CliResult {
    let Some(path) = ctx.device_key.clone() else {
        return fail(ctx.tr(
            "Indique el archivo de la clave de dispositivo con --device-key ARCHIVO (o AMPARO_DEVICE_KEY): para vincular, se crea si no existe; para desvincular, es el archivo con que se vinculó.",
            "Indique o arquivo da chave de dispositivo com --device-key ARQUIVO (ou AMPARO_DEVICE_KEY): para vincular, é criado se não existir; para desvincular, é o arquivo com que foi vinculado.",
            "Give the device key file with --device-key FILE (or AMPARO_DEVICE_KEY): to bind, it is made if missing; to unbind, it is the file the profile was bound with.",
        ));
    };
    // For `on` the key is made (if missing) before anything else; for `off`
    // it must be the one the profile opens with.
    let device = ctx.device(on)?;
    let (p, pin) = ctx.open_keeping_pin()?;
    let duress = match p.open_decoy()? {
        Some(decoy) => {
            drop(decoy);
            Some(ctx.duress_pin()?)
        }
        None => None,
    };
    p.bind_device_key(&pin, if on { device } else { None }, duress.as_deref())?;
    let shown = path.display();
    ctx.emit(
        if on {
            ctx.tr(
                &format!("Perfil vinculado a la clave de dispositivo {shown}: desde ahora solo se abre con el PIN y ese archivo. Guárdelo aparte del perfil (otro disco, una memoria USB): si se pierde, el perfil no se abre más; si se copia junto con el perfil, no protege nada."),
                &format!("Perfil vinculado à chave de dispositivo {shown}: a partir de agora só abre com o PIN e esse arquivo. Guarde-o longe do perfil (outro disco, um pendrive): se ele se perder, o perfil não abre mais; se for copiado junto com o perfil, não protege nada."),
                &format!("Profile bound to the device key {shown}: from now on it opens only with the PIN and that file. Keep it apart from the profile (another disk, a USB stick): if it is lost, the profile no longer opens; copied together with the profile, it protects nothing."),
            )
        } else {
            ctx.tr(
                "Perfil desvinculado: el PIN solo vuelve a abrirlo, también en una copia de sus archivos.",
                "Perfil desvinculado: só o PIN volta a abri-lo, também numa cópia dos seus arquivos.",
                "Profile unbound: the PIN alone opens it again, a copy of its files too.",
            )
        },
        json!({ "device_bound": on, "device_key": shown.to_string(), "duress_kept": duress.is_some() }),
    );
    Ok(())
}

/// The public keys a new profile made, to print.
enum Made {
    Nothing,
    FocalPoint(amparo_protocol::keys::RecipientPublic),
    Coordinator(amparo_protocol::primitives::ed25519::VerifyingKey),
}

fn create(ctx: &Ctx, role: Role, args: &SettingArgs, fast: bool) -> CliResult {
    let params = if fast {
        KdfParams::DANGEROUSLY_FAST_FOR_TESTS
    } else {
        KdfParams::PHONE
    };
    // Every value is checked before anything is asked or made.
    let mut s = Settings {
        role: Some(role),
        language: Some(ctx.lang),
        ..Settings::default()
    };
    args.apply(ctx, &mut s)?;
    let (_, made) = ctx.create(params, |p| {
        p.save_settings(&s)?;
        match role {
            Role::FocalPoint => Ok(Made::FocalPoint(p.create_focal_identity()?)),
            Role::Coordinator => {
                let public = p.create_coordinator_key()?;
                // A coordinator checks the directories it signs against its own key.
                if s.coordinator_key.is_none() {
                    let mut own = s.clone();
                    own.coordinator_key = Some(*public.as_bytes());
                    p.save_settings(&own)?;
                }
                Ok(Made::Coordinator(public))
            }
            Role::Survivor | Role::Facilitator => Ok(Made::Nothing),
        }
    })?;
    let mut out = json!({
        "created": ctx.profile.display().to_string(),
        "role": wire_name(&role),
        "device_bound": ctx.device_key.is_some(),
    });
    let mut human = ctx.tr(
        &format!("Perfil creado en {}.", ctx.profile.display()),
        &format!("Perfil criado em {}.", ctx.profile.display()),
        &format!("Profile created in {}.", ctx.profile.display()),
    );
    if let Some(path) = &ctx.device_key {
        let shown = path.display();
        human.push_str(&ctx.tr(
            &format!("\nSolo se abre con el PIN y la clave de dispositivo {shown}: guárdela aparte del perfil; si se pierde, el perfil no se abre más."),
            &format!("\nSó abre com o PIN e a chave de dispositivo {shown}: guarde-a longe do perfil; se ela se perder, o perfil não abre mais."),
            &format!("\nIt opens only with the PIN and the device key {shown}: keep it apart from the profile; if it is lost, the profile no longer opens."),
        ));
    }
    match made {
        Made::FocalPoint(public) => {
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
        Made::Coordinator(public) => {
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
        Made::Nothing => {}
    }
    ctx.emit(human, out);
    Ok(())
}

/// Opens the profile and shows its settings and counts.
fn show(ctx: &Ctx) -> CliResult {
    let p = ctx.open()?;
    let s = p.settings()?;
    let counts = counts(&p)?;
    let device_bound = p.binding()? == Binding::PinAndDevice;
    let wipe_after = p.wipe_after()?;
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
        "device_bound": device_bound,
        "wipe_after": wipe_after,
    });
    let mut human = String::new();
    let mut line = |label: String, value: String| human.push_str(&format!("{label}: {value}\n"));
    line(
        ctx.tr("Papel", "Papel", "Role"),
        s.role.map_or("-".to_string(), |r| role_label(ctx, r)),
    );
    line(
        ctx.tr("Idioma", "Idioma", "Language"),
        s.language
            .map_or("-".to_string(), |l| language_name(ctx.lang, l).to_string()),
    );
    line(
        "Relay".into(),
        s.relay_url.clone().unwrap_or_else(|| "-".into()),
    );
    if let Some(proxy) = &s.proxy {
        line("Proxy".into(), proxy.clone());
    }
    line(
        ctx.tr(
            "Clave de la coordinación",
            "Chave da coordenação",
            "Coordinator key",
        ),
        coordinator.clone().unwrap_or_else(|| "-".into()),
    );
    if !relay_keys.is_empty() {
        line(
            ctx.tr(
                "Otras claves de relay de confianza",
                "Outras chaves de relay confiáveis",
                "Other trusted relay keys",
            ),
            relay_keys.join(", "),
        );
    }
    if let Some(id) = &s.focal_point_id {
        line(
            ctx.tr("Punto focal", "Ponto focal", "Focal point"),
            id.clone(),
        );
    }
    line(
        ctx.tr("Directorio", "Diretório", "Directory"),
        p.directory_version()?.map_or(
            ctx.tr("ninguno todavía", "nenhum ainda", "none yet"),
            |v| {
                ctx.tr(
                    &format!("versión {v}"),
                    &format!("versão {v}"),
                    &format!("version {v}"),
                )
            },
        ),
    );
    line(
        ctx.tr("Clave de dispositivo", "Chave de dispositivo", "Device key"),
        if device_bound {
            ctx.tr(
                "sí: se abre solo con el PIN y su archivo",
                "sim: abre só com o PIN e o seu arquivo",
                "yes: it opens only with the PIN and its file",
            )
        } else {
            ctx.tr("no", "não", "no")
        },
    );
    line(
        ctx.tr(
            "Se borra tras PIN equivocados seguidos",
            "Apaga-se após PIN errados seguidos",
            "Destroyed after wrong PINs in a row",
        ),
        if wipe_after == 0 {
            ctx.tr("nunca", "nunca", "never")
        } else {
            wipe_after.to_string()
        },
    );
    let n = |key: &str| counts[key].as_u64().unwrap_or(0) as usize;
    let lang = ctx.lang;
    let held = [
        count(
            lang,
            n("drafts"),
            ("borrador", "borradores"),
            ("rascunho", "rascunhos"),
            ("draft", "drafts"),
        ),
        count(
            lang,
            n("reports"),
            ("denuncia enviada", "denuncias enviadas"),
            ("denúncia enviada", "denúncias enviadas"),
            ("report sent", "reports sent"),
        ),
        count(
            lang,
            n("outbox"),
            ("sobre por enviar", "sobres por enviar"),
            ("envelope por enviar", "envelopes por enviar"),
            (
                "envelope waiting to be sent",
                "envelopes waiting to be sent",
            ),
        ),
        count(
            lang,
            n("messages"),
            ("mensaje recibido", "mensajes recibidos"),
            ("mensagem recebida", "mensagens recebidas"),
            ("message received", "messages received"),
        ),
        count(
            lang,
            n("cases"),
            ("caso", "casos"),
            ("caso", "casos"),
            ("case", "cases"),
        ),
    ];
    line(ctx.tr("Tiene", "Tem", "Holds"), held.join(", "));
    line(
        ctx.tr(
            "Lleva para otras personas",
            "Leva para outras pessoas",
            "Carrying for others",
        ),
        [
            count(
                lang,
                n("carrying_waiting"),
                ("sobre por entregar", "sobres por entregar"),
                ("envelope por entregar", "envelopes por entregar"),
                ("envelope to deliver", "envelopes to deliver"),
            ),
            count(
                lang,
                n("carrying_delivered"),
                (
                    "entregado con recibo para devolver",
                    "entregados con recibo para devolver",
                ),
                (
                    "entregue com recibo para devolver",
                    "entregues com recibo para devolver",
                ),
                (
                    "delivered with a receipt to hand back",
                    "delivered with a receipt to hand back",
                ),
            ),
        ]
        .join(", "),
    );
    ctx.emit(human.trim_end(), json);
    Ok(())
}

/// A role in words.
fn role_label(ctx: &Ctx, role: Role) -> String {
    match role {
        Role::Survivor => ctx.tr(
            "denunciante (escribe denuncias y lee las respuestas)",
            "denunciante (escreve denúncias e lê as respostas)",
            "survivor (writes reports and reads the answers)",
        ),
        Role::Facilitator => ctx.tr(
            "facilitadora (lleva denuncias selladas de otras personas)",
            "facilitadora (leva denúncias lacradas de outras pessoas)",
            "facilitator (carries other people's sealed reports)",
        ),
        Role::FocalPoint => ctx.tr(
            "punto focal (recibe denuncias y atiende casos)",
            "ponto focal (recebe denúncias e atende casos)",
            "focal point (receives reports and handles cases)",
        ),
        Role::Coordinator => ctx.tr(
            "coordinación (firma el directorio)",
            "coordenação (assina o diretório)",
            "coordinator (signs the directory)",
        ),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_as_people_type_them() {
        let web = ["http", "https"];
        for good in [
            "https://relay.example.org",
            "http://127.0.0.1:8470",
            "https://relay.example.org/amparo",
            "http://[::1]:8470",
            "http://abcdefghijklmnop.onion",
        ] {
            assert_eq!(url_problem(good, &web), None, "{good}");
        }
        for bad in [
            "not a url",
            "relay.example.org",
            "ftp://relay.example.org",
            "https://",
            "https://relay example.org",
            "http://127.0.0.1:0",
            "http://127.0.0.1:99999",
            "http://relay..org",
            "http://[zz]:1",
        ] {
            assert!(url_problem(bad, &web).is_some(), "{bad}");
        }
        assert_eq!(
            url_problem("socks5h://127.0.0.1:9050", &["socks5", "socks5h"]),
            None
        );
    }
}
