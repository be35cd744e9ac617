//! What every command shares: the profile directory, the language, `--json`,
//! reading PINs without echo, the relay client from the profile's settings,
//! and errors turned into one sentence.

use std::fmt::Display;
use std::io::IsTerminal;
use std::path::PathBuf;

use amparo_core::CoreError;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::settings::Settings;
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::payload::Language;
use amparo_protocol::primitives::ed25519::VerifyingKey;
use amparo_protocol::{ProtocolError, UnixTime};

use crate::lang::tr;

/// An error at the edge: a sentence for the person at the keyboard.
#[derive(Debug)]
pub enum CliError {
    /// From the core.
    Core(CoreError),
    /// From the command line itself (a bad argument, a file).
    Message(String),
}

impl From<CoreError> for CliError {
    fn from(e: CoreError) -> Self {
        CliError::Core(e)
    }
}

impl From<ProtocolError> for CliError {
    fn from(e: ProtocolError) -> Self {
        CliError::Core(CoreError::Protocol(e))
    }
}

impl CliError {
    /// The sentence to print, in `lang` where it is one people meet often.
    pub fn sentence(&self, lang: Language) -> String {
        match self {
            CliError::Message(m) => m.clone(),
            CliError::Core(CoreError::WrongPin) => tr(
                lang,
                "El PIN no es correcto.",
                "O PIN não está correto.",
                "The PIN is not correct.",
            ),
            CliError::Core(CoreError::NoProfile) => tr(
                lang,
                "No hay un perfil aquí. Créelo con `amparo profile create`.",
                "Não há um perfil aqui. Crie-o com `amparo profile create`.",
                "There is no profile here. Create one with `amparo profile create`.",
            ),
            CliError::Core(CoreError::ProfileExists) => tr(
                lang,
                "Ya existe un perfil aquí.",
                "Já existe um perfil aqui.",
                "A profile already exists here.",
            ),
            CliError::Core(CoreError::Network(detail)) => format!(
                "{} ({detail})",
                tr(
                    lang,
                    "No se pudo llegar al relay; lo guardado sigue a salvo en el teléfono y se enviará en la próxima sincronización",
                    "Não foi possível alcançar o relay; o que está guardado continua a salvo e será enviado na próxima sincronização",
                    "The relay could not be reached; everything stays safe here and goes at the next sync",
                )
            ),
            CliError::Core(e) => e.to_string(),
        }
    }
}

/// Result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;

/// Shorthand for a [`CliError::Message`].
pub fn fail<T>(message: impl Into<String>) -> CliResult<T> {
    Err(CliError::Message(message.into()))
}

/// The options every command has.
pub struct Ctx {
    /// Language of messages.
    pub lang: Language,
    /// Print JSON for scripts instead of sentences.
    pub json: bool,
    /// The profile directory.
    pub profile: PathBuf,
}

/// Seconds since the epoch now.
pub fn now() -> UnixTime {
    UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

impl Ctx {
    /// Three wordings of a message, in this session's language.
    pub fn tr(&self, es: &str, pt: &str, en: &str) -> String {
        tr(self.lang, es, pt, en)
    }

    /// Prints the result: the sentence for people, or the JSON for scripts.
    pub fn emit(&self, human: impl Display, json: serde_json::Value) {
        use std::io::Write as _;
        // A closed pipe (`amparo … | head`) is not an error worth a panic.
        let mut out = std::io::stdout().lock();
        let _ = if self.json {
            writeln!(out, "{json}")
        } else {
            writeln!(out, "{human}")
        };
    }

    /// Progress for people (stderr); silent with `--json`.
    pub fn note(&self, line: impl Display) {
        if !self.json {
            eprintln!("{line}");
        }
    }

    /// A secret from `var`, else a prompt without echo on the terminal.
    /// Never from a flag: flags land in shell history and process lists.
    fn secret(&self, var: &str, prompt: &str) -> CliResult<String> {
        if let Ok(v) = std::env::var(var) {
            return Ok(v);
        }
        if !std::io::stdin().is_terminal() && std::fs::metadata("/dev/tty").is_err() {
            return fail(self.tr(
                &format!("Sin terminal para pedir el PIN: use la variable {var}."),
                &format!("Sem terminal para pedir o PIN: use a variável {var}."),
                &format!("No terminal to ask for the PIN: set {var}."),
            ));
        }
        rpassword::prompt_password(prompt).map_err(|e| CliError::Message(e.to_string()))
    }

    /// The PIN that opens the profile (`AMPARO_PIN` or a prompt).
    pub fn pin(&self) -> CliResult<String> {
        self.secret("AMPARO_PIN", &self.tr("PIN: ", "PIN: ", "PIN: "))
    }

    /// A new PIN, asked twice when prompted (`var` for scripts).
    pub fn new_pin(&self, var: &str, what: &str) -> CliResult<String> {
        if let Ok(v) = std::env::var(var) {
            return Ok(v);
        }
        let first = self.secret(var, &format!("{what}: "))?;
        let again = self.secret(
            var,
            &self.tr(
                &format!("{what} (otra vez): "),
                &format!("{what} (de novo): "),
                &format!("{what} (again): "),
            ),
        )?;
        if first != again {
            return fail(self.tr(
                "Los dos PIN no coinciden.",
                "Os dois PIN não coincidem.",
                "The two PINs do not match.",
            ));
        }
        Ok(first)
    }

    /// Opens the profile.
    pub fn open(&self) -> CliResult<Profile> {
        if !Profile::exists(&self.profile) {
            return Err(CoreError::NoProfile.into());
        }
        let pin = self.pin()?;
        Ok(Profile::open(&self.profile, &pin)?)
    }

    /// Creates the profile.
    pub fn create(&self, params: KdfParams) -> CliResult<Profile> {
        if Profile::exists(&self.profile) {
            return Err(CoreError::ProfileExists.into());
        }
        let pin = self.new_pin("AMPARO_PIN", &self.tr("PIN nuevo", "PIN novo", "New PIN"))?;
        if pin.chars().count() < 4 {
            return fail(self.tr(
                "El PIN debe tener al menos 4 caracteres.",
                "O PIN deve ter pelo menos 4 caracteres.",
                "The PIN must have at least 4 characters.",
            ));
        }
        std::fs::create_dir_all(&self.profile)
            .map_err(|e| CliError::Message(format!("{}: {e}", self.profile.display())))?;
        Ok(Profile::create(&self.profile, &pin, params)?)
    }
}

/// The relay client for a profile's settings.
pub fn relay_client(settings: &Settings) -> CliResult<RelayClient> {
    let mut config = RelayConfig::new(settings.relay()?);
    config.proxy = settings.proxy.clone();
    Ok(RelayClient::new(&config)?)
}

/// Relay keys whose receipts count as delivered: the profile's own list and
/// the relays of the directory it holds (verified against the pinned key).
pub fn trusted_relay_keys(p: &Profile, settings: &Settings) -> CliResult<Vec<VerifyingKey>> {
    let mut keys = settings.extra_relay_keys();
    if let Ok(coordinator) = settings.coordinator()
        && let Some(d) = p.directory(&coordinator)?
    {
        keys.extend(d.relays.iter().map(|r| VerifyingKey(r.receipt_key)));
    }
    Ok(keys)
}

/// An id for people: 32 hex digits.
pub fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The one id among `known` that starts with `prefix` (at least 4 hex
/// digits), so people can type the start of an id.
pub fn pick_id(ctx: &Ctx, prefix: &str, known: &[[u8; 16]]) -> CliResult<[u8; 16]> {
    let prefix = prefix.trim().to_ascii_lowercase();
    if prefix.len() < 4 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return fail(ctx.tr(
            "Escriba al menos 4 cifras hexadecimales del identificador.",
            "Escreva pelo menos 4 dígitos hexadecimais do identificador.",
            "Give at least 4 hex digits of the id.",
        ));
    }
    let matches: Vec<&[u8; 16]> = known
        .iter()
        .filter(|id| hex(id).starts_with(&prefix))
        .collect();
    match matches.as_slice() {
        [one] => Ok(**one),
        [] => fail(ctx.tr(
            &format!("Ningún identificador empieza por {prefix}."),
            &format!("Nenhum identificador começa com {prefix}."),
            &format!("No id starts with {prefix}."),
        )),
        _ => fail(ctx.tr(
            &format!("Varios identificadores empiezan por {prefix}; escriba más cifras."),
            &format!("Vários identificadores começam com {prefix}; escreva mais dígitos."),
            &format!("Several ids start with {prefix}; give more digits."),
        )),
    }
}

/// Reads a file, with its name in the error.
pub fn read_file(path: &std::path::Path) -> CliResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| CliError::Message(format!("{}: {e}", path.display())))
}

/// Writes a file, with its name in the error.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> CliResult<()> {
    std::fs::write(path, bytes).map_err(|e| CliError::Message(format!("{}: {e}", path.display())))
}

/// A base64url key from the command line.
pub fn parse_key(text: &str) -> CliResult<[u8; 32]> {
    Ok(amparo_protocol::b64::decode_array(text.trim(), "key")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_picked_by_unique_prefix() {
        let ctx = Ctx {
            lang: Language::En,
            json: false,
            profile: PathBuf::new(),
        };
        let a = [0xab; 16];
        let b = [0xac; 16];
        let known = [a, b];
        assert_eq!(pick_id(&ctx, "ABAB", &known).unwrap(), a);
        assert!(pick_id(&ctx, "ab", &known).is_err(), "too short");
        assert!(pick_id(&ctx, "zzzz", &known).is_err(), "not hex");
        assert!(pick_id(&ctx, "adad", &known).is_err(), "no match");
        let c = [0xab; 16];
        let mut d = c;
        d[15] = 0;
        assert!(pick_id(&ctx, "abab", &[c, d]).is_err(), "ambiguous");
        assert_eq!(hex(&a).len(), 32);
    }
}
