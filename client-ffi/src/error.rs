//! The one error that crosses the FFI: a flat enum whose variant says what
//! kind of failure it is (so an app can react: ask for the PIN again, show
//! "no signal", …) and whose message is the core's sentence, safe to show or
//! log (it never quotes report content or keys).
//!
//! Kotlin sees `AmparoException.WrongPin` etc. with `.message`; Swift and
//! Python see `AmparoError.WrongPin` etc. with the message as the error text.

use amparo_core::CoreError;
use amparo_protocol::ProtocolError;

/// What went wrong, with a sentence a person can read.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum AmparoError {
    /// The PIN does not open this profile.
    #[error("{0}")]
    WrongPin(String),
    /// There is no profile in the given folder.
    #[error("{0}")]
    NoProfile(String),
    /// A profile already exists in the given folder.
    #[error("{0}")]
    ProfileExists(String),
    /// The profile was wiped (or closed): open it again.
    #[error("{0}")]
    ProfileClosed(String),
    /// The relay could not be reached (no signal, proxy down, timeout): try later.
    #[error("{0}")]
    Network(String),
    /// The relay answered with a refusal.
    #[error("{0}")]
    Relay(String),
    /// Something given to the call is not valid (a form over the limits, a
    /// malformed id or key, a bundle or directory that does not verify).
    #[error("{0}")]
    Invalid(String),
    /// Nothing with this id.
    #[error("{0}")]
    NotFound(String),
    /// Stored data is damaged, or an attachment did not reassemble.
    #[error("{0}")]
    Damaged(String),
    /// The phone's storage failed (disk full, permissions).
    #[error("{0}")]
    Storage(String),
    /// The binding itself failed (e.g. no thread could be started).
    #[error("{0}")]
    Internal(String),
    /// Too many wrong PINs in a row: this attempt was refused without
    /// trying the PIN. The message says the seconds to wait; the number
    /// itself is `unlock_status(folder).wait_seconds` (a flat error carries
    /// only its sentence across the FFI, so the count lives there, where the
    /// lock screen reads it before every attempt anyway).
    #[error("{0}")]
    TooManyAttempts(String),
    /// The profile is bound to its phone's device key and none was given.
    #[error("{0}")]
    DeviceKeyNeeded(String),
    /// The phone's key store (the app's `DeviceKey`) failed or refused; the
    /// attempt was not counted.
    #[error("{0}")]
    DeviceKey(String),
}

impl From<CoreError> for AmparoError {
    fn from(e: CoreError) -> Self {
        let message = e.to_string();
        match e {
            CoreError::WrongPin => AmparoError::WrongPin(message),
            CoreError::NoProfile => AmparoError::NoProfile(message),
            CoreError::TooManyAttempts { wait_seconds } => AmparoError::TooManyAttempts(format!(
                "too many wrong PINs in a row: the next PIN is taken in {wait_seconds} s ({})",
                wait_in_words(wait_seconds)
            )),
            CoreError::DeviceKeyNeeded => AmparoError::DeviceKeyNeeded(message),
            CoreError::DeviceKey(_) => AmparoError::DeviceKey(message),
            CoreError::ProfileExists => AmparoError::ProfileExists(message),
            CoreError::Network(_) => AmparoError::Network(message),
            CoreError::Relay { .. } => AmparoError::Relay(message),
            CoreError::Invalid(_) | CoreError::Protocol(_) => AmparoError::Invalid(message),
            CoreError::NotFound => AmparoError::NotFound(message),
            CoreError::Corrupt(_) | CoreError::Attachment(_) => AmparoError::Damaged(message),
            CoreError::Database(_) | CoreError::Io(_) => AmparoError::Storage(message),
            _ => AmparoError::Internal(message),
        }
    }
}

/// `seconds` as a person reads a wait: "45 seconds", "8 minutes", "3 hours".
fn wait_in_words(seconds: u64) -> String {
    match seconds {
        0..=89 => format!("{seconds} seconds"),
        90..=5399 => format!("{} minutes", seconds.div_ceil(60)),
        _ => format!("{} hours", seconds.div_ceil(3600)),
    }
}

impl From<ProtocolError> for AmparoError {
    fn from(e: ProtocolError) -> Self {
        AmparoError::Invalid(e.to_string())
    }
}
