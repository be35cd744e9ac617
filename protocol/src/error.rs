//! The one error type of the protocol crate.
//!
//! Messages never contain payload content, key material or anything a person
//! wrote: they name what was wrong with the *shape* of the input only, so they
//! can be logged and shown without leaking a report.

/// Everything that can go wrong while encoding, decoding, sealing or opening.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The input ended before a complete value was read.
    #[error("input is truncated: {needed} more bytes were expected")]
    Truncated {
        /// How many more bytes the decoder needed at the point it stopped.
        needed: usize,
    },
    /// A complete value was read but bytes remained after it.
    #[error("input has {0} unexpected bytes after its end")]
    TrailingBytes(usize),
    /// A magic number or format tag did not match.
    #[error("input is not a {0}")]
    BadMagic(&'static str),
    /// A version this implementation does not speak.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// Which structure carried the version.
        what: &'static str,
        /// The version found.
        version: u64,
    },
    /// A cipher suite this implementation does not speak.
    #[error("unsupported cipher suite {0:#04x}")]
    UnsupportedSuite(u8),
    /// A sealed envelope whose length is not one of the padded size classes.
    #[error("envelope length {0} does not match any padded size class")]
    BadSizeClass(usize),
    /// The plaintext padding is malformed (wrong length field, non-zero pad).
    #[error("padding is malformed")]
    BadPadding,
    /// A value is larger than the protocol allows.
    #[error("{what} is too large: {len} bytes, at most {max} allowed")]
    TooLarge {
        /// Which value.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// AEAD authentication failed: wrong key, wrong purpose, or altered bytes.
    #[error(
        "the envelope cannot be opened: it was sealed to another key or for another purpose, or it was altered"
    )]
    OpenFailed,
    /// The envelope header names another mailbox than the one opening it.
    #[error("the envelope is addressed to another mailbox")]
    Misaddressed,
    /// The Diffie-Hellman output was all zeros (a low-order public key).
    #[error("the public key is of low order (all-zero shared secret)")]
    WeakPublicKey,
    /// Bytes that are not a valid key.
    #[error("invalid {0} key")]
    InvalidKey(&'static str),
    /// A signature did not verify against the expected key.
    #[error("the {0} signature does not verify")]
    BadSignature(&'static str),
    /// A signed object was made by a key other than the expected one.
    #[error("the {0} was signed by an unexpected key")]
    UnknownSigner(&'static str),
    /// A signed request whose timestamp is too far from the verifier's clock.
    #[error("the request is too old or too far in the future; check the device's clock")]
    StaleRequest,
    /// A directory that is not newer than the one already held.
    #[error("directory version {offered} is not newer than the current version {current}")]
    StaleDirectory {
        /// Version offered.
        offered: u64,
        /// Version already held.
        current: u64,
    },
    /// A checksum did not match the bytes it covers.
    #[error("{0} checksum does not match: the data is damaged")]
    BadChecksum(&'static str),
    /// JSON that does not parse as the expected payload. Only the category and
    /// position are kept: serde's own messages may quote the input.
    #[error(
        "the {what} payload is not valid JSON of the expected shape ({category} error at line {line}, column {column})"
    )]
    Json {
        /// Which payload.
        what: &'static str,
        /// serde_json's error category (syntax, data, eof, io).
        category: &'static str,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// A field holds a value outside its allowed set or range.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// The random number source failed.
    #[error("the random number source failed")]
    Entropy,
    /// A sequence counter would overflow (an HPKE context used too often).
    #[error("message limit reached for this key")]
    MessageLimit,
}

impl ProtocolError {
    /// Maps a serde_json error without keeping its message (which may quote
    /// the input).
    pub(crate) fn json(what: &'static str, e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let category = match e.classify() {
            Category::Io => "io",
            Category::Syntax => "syntax",
            Category::Data => "data",
            Category::Eof => "eof",
        };
        ProtocolError::Json {
            what,
            category,
            line: e.line(),
            column: e.column(),
        }
    }

    /// A short stable machine-readable code, for HTTP bodies and FFI.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::Truncated { .. } => "truncated",
            ProtocolError::TrailingBytes(_) => "trailing_bytes",
            ProtocolError::BadMagic(_) => "bad_magic",
            ProtocolError::UnsupportedVersion { .. } => "unsupported_version",
            ProtocolError::UnsupportedSuite(_) => "unsupported_suite",
            ProtocolError::BadSizeClass(_) => "bad_size_class",
            ProtocolError::BadPadding => "bad_padding",
            ProtocolError::TooLarge { .. } => "too_large",
            ProtocolError::OpenFailed => "open_failed",
            ProtocolError::Misaddressed => "misaddressed",
            ProtocolError::WeakPublicKey => "weak_public_key",
            ProtocolError::InvalidKey(_) => "invalid_key",
            ProtocolError::BadSignature(_) => "bad_signature",
            ProtocolError::UnknownSigner(_) => "unknown_signer",
            ProtocolError::StaleRequest => "stale_request",
            ProtocolError::StaleDirectory { .. } => "stale_directory",
            ProtocolError::BadChecksum(_) => "bad_checksum",
            ProtocolError::Json { .. } => "bad_json",
            ProtocolError::Invalid(_) => "invalid_field",
            ProtocolError::Entropy => "entropy",
            ProtocolError::MessageLimit => "message_limit",
        }
    }
}
