//! What every command shares: the profile directory, the language, `--json`,
//! reading PINs without echo, the relay client from the profile's settings,
//! and errors turned into one sentence.

use std::fmt::Display;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use amparo_core::CoreError;
use amparo_core::relay::RelayClient;
use amparo_core::settings::Settings;
use amparo_core::store::{DeviceKey, KdfParams, Profile, SoftwareDeviceKey, Unlock, UnlockStatus};
use amparo_protocol::payload::Language;
use amparo_protocol::{ProtocolError, UnixTime};

use crate::lang::tr;

/// An error at the edge: a sentence for the person at the keyboard.
#[derive(Debug)]
pub enum CliError {
    /// From the core.
    Core(CoreError),
    /// From the command line itself (a bad argument, a file).
    Message(String),
    /// A failure told after the result was printed (a bundle kept only in
    /// part): the sentence goes to stderr even with `--json`, whose stdout
    /// already holds the result.
    AfterResult(String),
    /// A wrong PIN, with what the profile's attempt counter says after it
    /// (read with [`Profile::unlock_status`]), so she knows how many she
    /// has typed, how long the next one waits and whether the profile is
    /// about to be (or was) destroyed.
    WrongPin(WrongPin),
}

/// What follows a wrong PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrongPin {
    /// The attempt was counted; the profile's counter now.
    Counted(UnlockStatus),
    /// It was the last attempt wipe-after allowed: the profile is gone.
    Wiped,
    /// The counter could not be read (the sentence says only "wrong PIN").
    Unknown,
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
            CliError::Message(m) | CliError::AfterResult(m) => m.clone(),
            CliError::Core(CoreError::WrongPin) => wrong_pin(lang, WrongPin::Unknown),
            CliError::WrongPin(w) => wrong_pin(lang, *w),
            CliError::Core(CoreError::TooManyAttempts { wait_seconds }) => {
                too_many_attempts(lang, *wait_seconds)
            }
            CliError::Core(CoreError::DeviceKeyNeeded) => tr(
                lang,
                "Este perfil solo se abre con su clave de dispositivo: indique el archivo con --device-key ARCHIVO (o AMPARO_DEVICE_KEY). No se contó ningún intento.",
                "Este perfil só abre com a sua chave de dispositivo: indique o arquivo com --device-key ARQUIVO (ou AMPARO_DEVICE_KEY). Nenhuma tentativa foi contada.",
                "This profile opens only with its device key: give its file with --device-key FILE (or AMPARO_DEVICE_KEY). No attempt was counted.",
            ),
            CliError::Core(CoreError::DeviceKey(detail)) => tr(
                lang,
                &format!(
                    "No se pudo usar la clave de dispositivo ({detail}). No se contó ningún intento."
                ),
                &format!(
                    "Não foi possível usar a chave de dispositivo ({detail}). Nenhuma tentativa foi contada."
                ),
                &format!("The device key could not be used ({detail}). No attempt was counted."),
            ),
            CliError::Core(CoreError::NoProfile) => tr(
                lang,
                "No hay un perfil aquí. Créelo con `amparo profile create`.",
                "Não há um perfil aqui. Crie-o com `amparo profile create`.",
                "There is no profile here. Create one with `amparo profile create`.",
            ),
            CliError::Core(CoreError::ProfileExists) => tr(
                lang,
                "Ya existe un perfil aquí. Use otra carpeta con --profile, o bórrelo antes con `amparo profile wipe --yes`.",
                "Já existe um perfil aqui. Use outra pasta com --profile, ou apague-o antes com `amparo profile wipe --yes`.",
                "A profile already exists here. Use another folder with --profile, or destroy it first with `amparo profile wipe --yes`.",
            ),
            CliError::Core(CoreError::Network(detail)) => tr(
                lang,
                &format!(
                    "No se pudo llegar al relay ({detail}). No se perdió nada: lo que espera envío sigue en este equipo para el próximo intento. Revise la conexión, la dirección del relay (`amparo profile show`) o el proxy."
                ),
                &format!(
                    "Não foi possível alcançar o relay ({detail}). Nada se perdeu: o que aguarda envio continua neste aparelho para a próxima tentativa. Verifique a conexão, o endereço do relay (`amparo profile show`) ou o proxy."
                ),
                &format!(
                    "The relay could not be reached ({detail}). Nothing was lost: what waits to be sent stays on this device for the next try. Check the connection, the relay address (`amparo profile show`) or the proxy."
                ),
            ),
            CliError::Core(CoreError::Relay { code, message, .. }) => relay_refusal(lang, code)
                .unwrap_or_else(|| {
                    tr(
                        lang,
                        &format!("El relay rechazó la solicitud ({code}): {message}"),
                        &format!("O relay recusou o pedido ({code}): {message}"),
                        &format!("The relay refused the request ({code}): {message}"),
                    )
                }),
            CliError::Core(e) => e.to_string(),
        }
    }
}

/// A wait in words: "45 segundos", "3 minutes", "2 horas" (rounded up).
pub fn wait_words(lang: Language, seconds: u64) -> String {
    let (n, unit) = match seconds {
        0..=89 => (seconds, 0),
        90..=5399 => (seconds.div_ceil(60), 1),
        _ => (seconds.div_ceil(3600), 2),
    };
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    match unit {
        0 => crate::lang::count(
            lang,
            n,
            ("segundo", "segundos"),
            ("segundo", "segundos"),
            ("second", "seconds"),
        ),
        1 => crate::lang::count(
            lang,
            n,
            ("minuto", "minutos"),
            ("minuto", "minutos"),
            ("minute", "minutes"),
        ),
        _ => crate::lang::count(
            lang,
            n,
            ("hora", "horas"),
            ("hora", "horas"),
            ("hour", "hours"),
        ),
    }
}

/// The sentence for a wrong PIN: how many in a row, the wait before the
/// next, how many are left before wipe-after destroys the profile, and,
/// for a profile bound to a device key, that the key file may be the wrong
/// one (a wrong key and a wrong PIN look alike, by design).
pub fn wrong_pin(lang: Language, w: WrongPin) -> String {
    let mut out = tr(
        lang,
        "El PIN no es correcto.",
        "O PIN não está correto.",
        "The PIN is not correct.",
    );
    let s = match w {
        WrongPin::Unknown => return out,
        WrongPin::Wiped => {
            out.push(' ');
            out.push_str(&tr(
                lang,
                "Era el último intento permitido: el perfil fue destruido, como estaba configurado.",
                "Era a última tentativa permitida: o perfil foi destruído, como estava configurado.",
                "That was the last attempt allowed: the profile was destroyed, as it was set to be.",
            ));
            return out;
        }
        WrongPin::Counted(s) => s,
    };
    let n = usize::try_from(s.failed_attempts).unwrap_or(usize::MAX);
    out.push(' ');
    out.push_str(&crate::lang::count(
        lang,
        n,
        ("PIN equivocado seguido", "PIN equivocados seguidos"),
        ("PIN errado seguido", "PIN errados seguidos"),
        ("wrong PIN in a row", "wrong PINs in a row"),
    ));
    out.push('.');
    out.push(' ');
    out.push_str(&if s.wait_seconds == 0 {
        tr(
            lang,
            "Puede intentar de nuevo ahora.",
            "Pode tentar de novo agora.",
            "You can try again now.",
        )
    } else {
        let wait = wait_words(lang, s.wait_seconds);
        tr(
            lang,
            &format!("El próximo intento se acepta dentro de {wait}."),
            &format!("A próxima tentativa é aceita daqui a {wait}."),
            &format!("The next attempt is taken in {wait}."),
        )
    });
    if s.wipe_after > 0 {
        let left = s.wipe_after.saturating_sub(s.failed_attempts);
        out.push(' ');
        out.push_str(&tr(
            lang,
            &format!("Quedan {left} antes de que el perfil se destruya."),
            &format!("Restam {left} antes que o perfil seja destruído."),
            &format!("{left} left before the profile is destroyed."),
        ));
    }
    if s.device_bound {
        out.push(' ');
        out.push_str(&tr(
            lang,
            "Este perfil también necesita su clave de dispositivo: si el PIN es el correcto, el archivo de --device-key no es el de este perfil.",
            "Este perfil também precisa da sua chave de dispositivo: se o PIN for o correto, o arquivo de --device-key não é o deste perfil.",
            "This profile also needs its device key: if the PIN is right, the --device-key file is not this profile's.",
        ));
    }
    out
}

/// The sentence for an attempt refused because of earlier wrong PINs.
pub fn too_many_attempts(lang: Language, wait_seconds: u64) -> String {
    let wait = wait_words(lang, wait_seconds);
    tr(
        lang,
        &format!(
            "Demasiados PIN equivocados seguidos: espere {wait} antes de intentar de nuevo. Este intento no se probó ni se contó."
        ),
        &format!(
            "PIN errados demais seguidos: espere {wait} antes de tentar de novo. Esta tentativa não foi testada nem contada."
        ),
        &format!(
            "Too many wrong PINs in a row: wait {wait} before trying again. This attempt was neither tried nor counted."
        ),
    )
}

/// The relay's refusals a person can act on, in the session's language
/// (the relay itself answers in English).
fn relay_refusal(lang: Language, code: &str) -> Option<String> {
    Some(match code {
        "no_coordinator_key" => tr(
            lang,
            "El relay no acepta directorios porque se inició sin la clave de la coordinación: quien lo opera debe reiniciarlo con `--coordinator-key CLAVE` (o AMPARO_COORDINATOR_KEY). No se publicó nada.",
            "O relay não aceita diretórios porque foi iniciado sem a chave da coordenação: quem o opera deve reiniciá-lo com `--coordinator-key CHAVE` (ou AMPARO_COORDINATOR_KEY). Nada foi publicado.",
            "The relay takes no directories because it was started without the coordinator's key: its operator must restart it with `--coordinator-key KEY` (or AMPARO_COORDINATOR_KEY). Nothing was published.",
        ),
        "unknown_signer" => tr(
            lang,
            "El relay no reconoce la firma de este directorio: se inició con la clave de otra coordinación. Compare `amparo coordinator public` con la clave del relay. No se publicó nada.",
            "O relay não reconhece a assinatura deste diretório: foi iniciado com a chave de outra coordenação. Compare `amparo coordinator public` com a chave do relay. Nada foi publicado.",
            "The relay does not recognise this directory's signature: it was started with another coordinator's key. Compare `amparo coordinator public` with the relay's key. Nothing was published.",
        ),
        "busy" | "unavailable" | "body_timeout" => tr(
            lang,
            "El relay está ocupado o la conexión es demasiado lenta ahora. No se perdió nada: lo que espera envío sigue en este equipo. Intente de nuevo en unos minutos.",
            "O relay está ocupado ou a conexão está lenta demais agora. Nada se perdeu: o que aguarda envio continua neste aparelho. Tente de novo em alguns minutos.",
            "The relay is busy or the connection is too slow right now. Nothing was lost: what waits to be sent stays on this device. Try again in a few minutes.",
        ),
        "stale_directory" => tr(
            lang,
            "El relay ya tiene un directorio de esta versión o más nuevo: firme de nuevo la fuente (`amparo coordinator sign`), que le da una versión mayor, y publíquelo. No se publicó nada.",
            "O relay já tem um diretório desta versão ou mais novo: assine de novo a fonte (`amparo coordinator sign`), que lhe dá uma versão maior, e publique-o. Nada foi publicado.",
            "The relay already holds a directory of this version or newer: sign the source again (`amparo coordinator sign`), which gives it a higher version, and publish that. Nothing was published.",
        ),
        _ => return None,
    })
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
    /// The software device key's file (`--device-key`, `AMPARO_DEVICE_KEY`):
    /// a profile bound to it opens only with it.
    pub device_key: Option<PathBuf>,
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
        let no_terminal = |detail: Option<String>| {
            let detail = detail.map(|d| format!(" ({d})")).unwrap_or_default();
            CliError::Message(self.tr(
                &format!("No hay una terminal donde pedir el PIN{detail}. Ejecute amparo en una terminal, o (en un script) ponga el PIN en la variable de entorno {var}."),
                &format!("Não há um terminal onde pedir o PIN{detail}. Execute o amparo em um terminal, ou (em um script) ponha o PIN na variável de ambiente {var}."),
                &format!("There is no terminal to ask for the PIN{detail}. Run amparo in a terminal, or (in a script) put the PIN in the environment variable {var}."),
            ))
        };
        if !has_terminal() {
            return Err(no_terminal(None));
        }
        rpassword::prompt_password(prompt).map_err(|e| no_terminal(Some(e.to_string())))
    }

    /// The duress PIN of this profile, to keep it working through a change
    /// of the device key (`AMPARO_DURESS_PIN` or a prompt).
    pub fn duress_pin(&self) -> CliResult<String> {
        self.secret(
            "AMPARO_DURESS_PIN",
            &self.tr(
                "PIN de emergencia de este perfil: ",
                "PIN de emergência deste perfil: ",
                "This profile's duress PIN: ",
            ),
        )
    }

    /// The device key in `--device-key`, if one was given; made (random,
    /// readable by its owner only) if `create` and the file is missing.
    pub fn device(&self, create: bool) -> CliResult<Option<Arc<dyn DeviceKey>>> {
        let Some(path) = &self.device_key else {
            return Ok(None);
        };
        if !create && !path.exists() {
            return fail(self.tr(
                &format!("--device-key: {} no existe. Es el archivo con el que se vinculó el perfil; sin él, un perfil vinculado no se abre.", path.display()),
                &format!("--device-key: {} não existe. É o arquivo com que o perfil foi vinculado; sem ele, um perfil vinculado não abre.", path.display()),
                &format!("--device-key: {} does not exist. It is the file the profile was bound with; without it a bound profile does not open.", path.display()),
            ));
        }
        let key = if create {
            SoftwareDeviceKey::load_or_create(path)
        } else {
            SoftwareDeviceKey::load(path)
        }
        .map_err(|e| {
            CliError::Message(format!(
                "--device-key {}: {}",
                path.display(),
                CliError::Core(e).sentence(self.lang)
            ))
        })?;
        Ok(Some(Arc::new(key)))
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

    /// Opens the profile (with the device key, if one was given).
    pub fn open(&self) -> CliResult<Profile> {
        self.open_keeping_pin().map(|(p, _)| p)
    }

    /// Opens the profile and returns the PIN it was opened with (to
    /// re-wrap its key, `profile device-key`). A wrong PIN is told with the
    /// attempt counter's state after it.
    pub fn open_keeping_pin(&self) -> CliResult<(Profile, String)> {
        if !Profile::exists(&self.profile) {
            return Err(CoreError::NoProfile.into());
        }
        let mut unlock = Unlock::now();
        unlock.device = self.device(false)?;
        // Said before the PIN is typed, as a phone's lock screen would.
        if let Ok(status) = Profile::unlock_status(&self.profile, unlock.now) {
            if status.wait_seconds > 0 {
                return Err(CoreError::TooManyAttempts {
                    wait_seconds: status.wait_seconds,
                }
                .into());
            }
            if status.device_bound && unlock.device.is_none() {
                return Err(CoreError::DeviceKeyNeeded.into());
            }
        }
        let pin = self.pin()?;
        match Profile::open_with(&self.profile, &pin, &unlock) {
            Ok(p) => Ok((p, pin)),
            Err(CoreError::WrongPin) => {
                Err(CliError::WrongPin(if !Profile::exists(&self.profile) {
                    WrongPin::Wiped
                } else {
                    Profile::unlock_status(&self.profile, now())
                        .map_or(WrongPin::Unknown, WrongPin::Counted)
                }))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the profile and lets `init` fill it (settings, keys): atomic,
    /// so a failure anywhere leaves no profile behind (see
    /// [`Profile::create_with`]).
    pub fn create<T>(
        &self,
        params: KdfParams,
        init: impl FnOnce(&Profile) -> amparo_core::Result<T>,
    ) -> CliResult<(Profile, T)> {
        if Profile::exists(&self.profile) {
            return Err(CoreError::ProfileExists.into());
        }
        // Made before the PIN is asked: a bad key file costs no typing.
        let device = self.device(true)?;
        if std::env::var_os("AMPARO_PIN").is_none() {
            self.note(pin_advice(self.lang));
        }
        let pin = self.new_pin("AMPARO_PIN", &self.tr("PIN nuevo", "PIN novo", "New PIN"))?;
        if pin.chars().count() < 4 {
            return fail(self.tr(
                "El PIN debe tener al menos 4 caracteres.",
                "O PIN deve ter pelo menos 4 caracteres.",
                "The PIN must have at least 4 characters.",
            ));
        }
        Profile::create_bound(&self.profile, &pin, params, device, init).map_err(|e| match e {
            CoreError::Io(detail) => {
                CliError::Message(format!("{}: {detail}", self.profile.display()))
            }
            e => e.into(),
        })
    }
}

/// What a PIN's length buys, said where she chooses one (before the prompt
/// of `profile create` and `profile change-pin`). Figures: BENCHMARKS.md,
/// "The seized phone: unlock cost" (one guess of Argon2id with the phone's
/// parameters on one core of the test machine).
pub fn pin_advice(lang: Language) -> String {
    tr(
        lang,
        "Elija un PIN de 8 cifras o más. Quien copie los archivos de este perfil puede probar PIN en sus propias computadoras, sin esperas: con un núcleo, todos los PIN de 4 cifras en unos 25 minutos, los de 6 en unos 2 días, los de 8 en unos 6 meses (y menos con muchas máquinas). Con una clave de dispositivo (--device-key ARCHIVO, guardada aparte del perfil) la copia no sirve sin esa clave; aquí, cada PIN equivocado espera más que el anterior.",
        "Escolha um PIN de 8 dígitos ou mais. Quem copiar os arquivos deste perfil pode testar PIN nos próprios computadores, sem esperas: com um núcleo, todos os PIN de 4 dígitos em uns 25 minutos, os de 6 em uns 2 dias, os de 8 em uns 6 meses (e menos com muitas máquinas). Com uma chave de dispositivo (--device-key ARQUIVO, guardada longe do perfil) a cópia não serve sem essa chave; aqui, cada PIN errado espera mais que o anterior.",
        "Choose a PIN of 8 digits or more. Whoever copies this profile's files can try PINs on their own computers, with no waits: on one core, every 4-digit PIN in about 25 minutes, every 6-digit one in about 2 days, every 8-digit one in about 6 months (less with many machines). With a device key (--device-key FILE, kept apart from the profile) the copy is useless without that key; here, each wrong PIN waits longer than the one before.",
    )
}

/// Whether a prompt can reach a person: the controlling terminal opens
/// (rpassword reads from it), or, where there is no such device, stdin is
/// one. Without a controlling terminal `/dev/tty` exists but does not open.
fn has_terminal() -> bool {
    if cfg!(unix) {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_ok()
    } else {
        std::io::stdin().is_terminal()
    }
}

/// The relay client for a profile's settings.
pub fn relay_client(settings: &Settings) -> CliResult<RelayClient> {
    Ok(settings.relay_client()?)
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

/// Reads a file, with its name and what went wrong in the error.
pub fn read_file(path: &std::path::Path) -> CliResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| file_error(path, &e))
}

/// Writes a file, with its name and what went wrong in the error.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> CliResult<()> {
    std::fs::write(path, bytes).map_err(|e| file_error(path, &e))
}

/// `file: what went wrong`, in the session's language.
pub fn file_error(path: &std::path::Path, e: &std::io::Error) -> CliError {
    CliError::Message(format!(
        "{}: {}",
        path.display(),
        crate::lang::io_reason(crate::lang::early(), e)
    ))
}

/// A base64url key from the command line.
pub fn parse_key(text: &str) -> CliResult<[u8; 32]> {
    key_from(crate::lang::early(), "--key", text)
}

/// A base64url key given with `flag`: a refusal names the flag and says
/// what a key looks like and where it comes from.
pub fn key_from(lang: Language, flag: &str, text: &str) -> CliResult<[u8; 32]> {
    amparo_protocol::b64::decode_array(text.trim(), "key").map_err(|_| {
        let shown: String = text.chars().take(60).collect();
        CliError::Message(tr(
            lang,
            &format!("{flag}: «{shown}» no es una clave. Una clave tiene 43 caracteres base64url (letras, cifras, - y _), tal como la imprime quien la tiene: `amparo coordinator public` para la coordinación, `amparo-relay key` en la máquina del relay, o el directorio, para un relay."),
            &format!("{flag}: «{shown}» não é uma chave. Uma chave tem 43 caracteres base64url (letras, dígitos, - e _), como a imprime quem a tem: `amparo coordinator public` para a coordenação, `amparo-relay key` na máquina do relay, ou o diretório, para um relay."),
            &format!("{flag}: {shown:?} is not a key. A key is 43 base64url characters (letters, digits, - and _), as its holder prints it: `amparo coordinator public` for the coordinator, `amparo-relay key` on the relay's machine, or the directory, for a relay."),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_refusals_people_can_act_on_are_said_in_their_language() {
        let refusal = |code: &str| {
            CliError::Core(CoreError::Relay {
                status: 503,
                code: code.into(),
                message: "The relay is busy.".into(),
            })
        };
        assert!(
            refusal("busy")
                .sentence(Language::Es)
                .contains("No se perdió nada")
        );
        assert!(
            refusal("busy")
                .sentence(Language::Pt)
                .contains("Nada se perdeu")
        );
        assert!(
            refusal("no_coordinator_key")
                .sentence(Language::En)
                .contains("--coordinator-key KEY")
        );
        // Others keep the relay's code and sentence, framed in her language.
        let other = refusal("something_new").sentence(Language::Es);
        assert!(other.starts_with("El relay rechazó") && other.contains("something_new"));
    }

    #[test]
    fn wrong_pins_are_told_with_the_count_the_wait_and_what_is_left() {
        let status = UnlockStatus {
            failed_attempts: 6,
            wait_seconds: 60,
            wipe_after: 10,
            device_bound: true,
        };
        let told = |lang| CliError::WrongPin(WrongPin::Counted(status)).sentence(lang);
        assert_eq!(
            told(Language::En),
            "The PIN is not correct. 6 wrong PINs in a row. The next attempt is taken in 60 seconds. \
             4 left before the profile is destroyed. This profile also needs its device key: if the \
             PIN is right, the --device-key file is not this profile's."
        );
        assert_eq!(
            told(Language::Es),
            "El PIN no es correcto. 6 PIN equivocados seguidos. El próximo intento se acepta dentro \
             de 60 segundos. Quedan 4 antes de que el perfil se destruya. Este perfil también necesita \
             su clave de dispositivo: si el PIN es el correcto, el archivo de --device-key no es el de \
             este perfil."
        );
        assert_eq!(
            told(Language::Pt),
            "O PIN não está correto. 6 PIN errados seguidos. A próxima tentativa é aceita daqui a 60 \
             segundos. Restam 4 antes que o perfil seja destruído. Este perfil também precisa da sua \
             chave de dispositivo: se o PIN for o correto, o arquivo de --device-key não é o deste \
             perfil."
        );
        let first = UnlockStatus {
            failed_attempts: 1,
            wait_seconds: 0,
            wipe_after: 0,
            device_bound: false,
        };
        assert_eq!(
            wrong_pin(Language::Es, WrongPin::Counted(first)),
            "El PIN no es correcto. 1 PIN equivocado seguido. Puede intentar de nuevo ahora."
        );
        assert!(wrong_pin(Language::Pt, WrongPin::Wiped).contains("o perfil foi destruído"));
        assert_eq!(
            CliError::Core(CoreError::WrongPin).sentence(Language::En),
            "The PIN is not correct."
        );
        // Waits in words, rounded up, in each language.
        let waits = |lang| {
            CliError::Core(CoreError::TooManyAttempts {
                wait_seconds: 7_200,
            })
            .sentence(lang)
        };
        assert!(waits(Language::En).starts_with("Too many wrong PINs in a row: wait 2 hours"));
        assert!(waits(Language::Es).contains("espere 2 horas"));
        assert!(waits(Language::Pt).contains("espere 2 horas"));
        assert_eq!(wait_words(Language::En, 1), "1 second");
        assert_eq!(wait_words(Language::Es, 120), "2 minutos");
        assert_eq!(wait_words(Language::Pt, 121), "3 minutos");
        assert_eq!(wait_words(Language::En, 86_400), "24 hours");
        for lang in [Language::Es, Language::Pt, Language::En] {
            let needed = CliError::Core(CoreError::DeviceKeyNeeded).sentence(lang);
            assert!(needed.contains("--device-key") && needed.contains("AMPARO_DEVICE_KEY"));
            let advice = pin_advice(lang);
            assert!(
                advice.contains('8') && advice.contains("--device-key"),
                "{advice}"
            );
        }
    }

    #[test]
    fn ids_are_picked_by_unique_prefix() {
        let ctx = Ctx {
            lang: Language::En,
            json: false,
            profile: PathBuf::new(),
            device_key: None,
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
