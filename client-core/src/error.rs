//! The core's error type. Messages are sentences a person can read; none
//! contains report content or key material.

use amparo_protocol::ProtocolError;

/// Everything that can go wrong in the client core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// Bad or damaged input, or a cryptographic failure, from the protocol layer.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The relay could not be reached (no signal, proxy down, timeout).
    #[error("the relay could not be reached: {0}")]
    Network(String),
    /// The relay refused a request.
    #[error("the relay refused the request ({status} {code}): {message}")]
    Relay {
        /// HTTP status.
        status: u16,
        /// The relay's machine-readable code.
        code: String,
        /// The relay's sentence.
        message: String,
    },
    /// The PIN does not open this profile.
    #[error("the PIN is not correct")]
    WrongPin,
    /// There is no profile where one was expected.
    #[error("there is no profile here")]
    NoProfile,
    /// Too many wrong PINs in a row: the next attempt is refused until the
    /// wait is over (see `store::throttle`). Nothing was tried.
    #[error("too many wrong PINs: try again in {wait_seconds} s")]
    TooManyAttempts {
        /// Seconds until the next attempt is taken.
        wait_seconds: u64,
    },
    /// The profile is bound to its phone's device key and none was given.
    #[error("this profile opens only with its phone's device key")]
    DeviceKeyNeeded,
    /// The phone's key store (the device key) failed or refused.
    #[error("the phone's key store failed: {0}")]
    DeviceKey(String),
    /// A profile already exists where a new one was to be made.
    #[error("a profile already exists here")]
    ProfileExists,
    /// The local database failed.
    #[error("the local database failed: {0}")]
    Database(String),
    /// A file operation failed.
    #[error("a file could not be read or written: {0}")]
    Io(String),
    /// Stored data is damaged or was altered.
    #[error("stored data is damaged: {0}")]
    Corrupt(&'static str),
    /// Something asked of the core is not valid.
    #[error("{0}")]
    Invalid(&'static str),
    /// A coordinator's directory file has a mistake.
    #[error("{0}")]
    Source(String),
    /// Nothing with this id.
    #[error("not found")]
    NotFound,
    /// An attachment's chunks do not reassemble into what the report declared.
    #[error("an attachment is incomplete or damaged: {0}")]
    Attachment(&'static str),
    /// Statistics could not be made safe to share (the table's shape was
    /// refused by disclosure control).
    #[error("statistics could not be prepared: {0}")]
    Statistics(String),
}

impl From<rusqlite::Error> for CoreError {
    fn from(e: rusqlite::Error) -> Self {
        // rusqlite's messages name SQL and constraint failures, never values.
        CoreError::Database(e.to_string())
    }
}
