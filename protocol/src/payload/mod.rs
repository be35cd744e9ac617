//! What travels inside the seal: the report a survivor writes, the replies and
//! status updates that come back, and the chunks of attachments.
//!
//! Reports, replies and status updates are JSON (serde_json), so that a focal
//! point's tool in any language can read them; padding hides their length.
//! Every JSON payload carries `"v": 1` and is checked by `validate` after
//! parsing, so a structurally valid but absurd payload (a 60 000-item list, an
//! impossible date) is refused with a typed error. Unknown fields are ignored,
//! so that newer senders remain readable.

pub mod chunk;
pub mod reply;
pub mod report;

pub use chunk::{ChunkBody, split_attachment};
pub use reply::{CaseStatus, Reply, Stamp, StatusUpdate};
pub use report::{
    AgeBand, AggressorKind, AttachmentKind, AttachmentRef, IncidentDate, Language, Need, Place,
    PlaceSetting, Referral, Report, TimerAlert, ViolenceKind,
};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::padding::MAX_BODY;
use crate::{ProtocolError, Result};

/// Current version of the JSON payloads.
pub const PAYLOAD_VERSION: u8 = 1;

/// A JSON payload that can check its own limits.
pub trait Payload: Serialize + DeserializeOwned {
    /// Name used in errors.
    const WHAT: &'static str;

    /// Checks limits and value ranges beyond what the types enforce.
    fn validate(&self) -> Result<()>;

    /// The payload's version field.
    fn version(&self) -> u8;

    /// Validates, then encodes as compact JSON. Fails if the encoding would
    /// not fit one envelope (text full of characters that JSON escapes can
    /// pass the character limits and still be too long).
    fn to_json(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let json = serde_json::to_vec(self).map_err(|e| ProtocolError::json(Self::WHAT, &e))?;
        if json.len() > MAX_BODY {
            return Err(ProtocolError::TooLarge {
                what: Self::WHAT,
                len: json.len(),
                max: MAX_BODY,
            });
        }
        Ok(json)
    }

    /// Parses and validates JSON.
    fn from_json(bytes: &[u8]) -> Result<Self> {
        let value: Self =
            serde_json::from_slice(bytes).map_err(|e| ProtocolError::json(Self::WHAT, &e))?;
        if value.version() != PAYLOAD_VERSION {
            return Err(ProtocolError::UnsupportedVersion {
                what: Self::WHAT,
                version: u64::from(value.version()),
            });
        }
        value.validate()?;
        Ok(value)
    }
}

/// Checks an optional or required text field against a character limit.
pub(crate) fn check_text(text: &str, max_chars: usize, what: &'static str) -> Result<()> {
    let len = text.chars().count();
    if len > max_chars {
        return Err(ProtocolError::TooLarge {
            what,
            len,
            max: max_chars,
        });
    }
    Ok(())
}

/// Checks a list length.
pub(crate) fn check_len<T>(items: &[T], max: usize, what: &'static str) -> Result<()> {
    if items.len() > max {
        return Err(ProtocolError::TooLarge {
            what,
            len: items.len(),
            max,
        });
    }
    Ok(())
}
