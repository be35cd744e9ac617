//! Messages on a report's reply channel: replies (either way) and case-status
//! updates from the focal point.

use serde::{Deserialize, Serialize};

use super::report::{Language, MAX_TEXT_CHARS};
use super::{Payload, check_text};
use crate::b64;
use crate::{ProtocolError, Result};

/// A message on a report's channel. From a focal point it is sealed to the
/// report's reply keys; from the survivor it is sealed to the focal point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Payload version (1).
    pub v: u8,
    /// The message id of the report this belongs to.
    #[serde(with = "b64::array")]
    pub report_id: [u8; 16],
    /// The message.
    pub text: String,
    /// Language of the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
}

impl Payload for Reply {
    const WHAT: &'static str = "reply";

    fn version(&self) -> u8 {
        self.v
    }

    fn validate(&self) -> Result<()> {
        check_text(&self.text, MAX_TEXT_CHARS, "reply text")
    }
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// The focal point has the report.
    Received,
    /// Someone is working on it.
    InProgress,
    /// Passed to another focal point.
    Referred,
    /// Closed.
    Closed,
}

/// A case-status update from the focal point to the survivor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// Payload version (1).
    pub v: u8,
    /// The message id of the report.
    #[serde(with = "b64::array")]
    pub report_id: [u8; 16],
    /// The new status.
    pub status: CaseStatus,
    /// An optional message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// With `referred`: the directory id of the new focal point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referred_to: Option<String>,
}

impl Payload for StatusUpdate {
    const WHAT: &'static str = "status update";

    fn version(&self) -> u8 {
        self.v
    }

    fn validate(&self) -> Result<()> {
        if let Some(m) = &self.message {
            check_text(m, MAX_TEXT_CHARS, "status message")?;
        }
        match (&self.status, &self.referred_to) {
            (CaseStatus::Referred, Some(to)) => check_text(to, 64, "focal point id"),
            (CaseStatus::Referred, None) => {
                Err(ProtocolError::Invalid("referral without a focal point"))
            }
            (_, Some(_)) => Err(ProtocolError::Invalid(
                "referred_to without status referred",
            )),
            (_, None) => Ok(()),
        }
    }
}
