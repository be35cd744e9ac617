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
}

impl From<CoreError> for AmparoError {
    fn from(e: CoreError) -> Self {
        let message = e.to_string();
        match e {
            CoreError::WrongPin => AmparoError::WrongPin(message),
            CoreError::NoProfile => AmparoError::NoProfile(message),
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

impl From<ProtocolError> for AmparoError {
    fn from(e: ProtocolError) -> Self {
        AmparoError::Invalid(e.to_string())
    }
}
