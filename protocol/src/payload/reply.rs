//! Messages on a report's reply channel: replies (either way) and case-status
//! updates from the focal point.

use serde::{Deserialize, Serialize};

use super::report::{Language, MAX_TEXT_CHARS};
use super::{Payload, check_text};
use crate::b64;
use crate::{ProtocolError, Result};

/// Longest focal-point directory id, in characters (as in the directory).
pub const MAX_FOCAL_ID_CHARS: usize = 64;

/// Where a message stands among the others on its report's channel: when and
/// in what order its writer made it, and which office wrote it.
///
/// Envelopes reach the reader in any order (a page of a mailbox is sorted by
/// random envelope ids, a facilitator's bundle by whatever she picked up
/// first), and the sealed header only says the hour. Without this a survivor
/// whose case went "in progress" and then "referred" within one hour could
/// be shown either. All three fields are optional so that messages from
/// older senders still open; such messages sort by their header's hour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Seconds since the Unix epoch when the writer made it, by the writer's
    /// clock. Focal points set it; a survivor's phone leaves it out (the hour
    /// in the sealed header is all a focal point needs to know of her).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    /// The writer's counter for this report, one more for each message it
    /// sends on the channel: orders two messages made in the same second,
    /// or on a clock that went back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u32>,
    /// The directory id of the focal point that wrote it (after a referral,
    /// the office the case went to answers on the same channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl Stamp {
    fn validate(&self) -> Result<()> {
        if let Some(from) = &self.from {
            check_focal_id(from)?;
        }
        Ok(())
    }

    /// The key messages sort by: the writer's time (else the start of the
    /// header's hour), then its counter. `hour` is the sealed header's.
    pub fn order_key(&self, hour: u32) -> (u64, u32) {
        (
            self.at.unwrap_or(u64::from(hour) * 3600),
            self.seq.unwrap_or(0),
        )
    }
}

fn check_focal_id(id: &str) -> Result<()> {
    crate::directory::check_id(id)
}

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
    /// When, in what order and by whom it was written.
    #[serde(flatten)]
    pub stamp: Stamp,
}

impl Payload for Reply {
    const WHAT: &'static str = "reply";

    fn version(&self) -> u8 {
        self.v
    }

    fn validate(&self) -> Result<()> {
        check_text(&self.text, MAX_TEXT_CHARS, "reply text")?;
        self.stamp.validate()
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
    /// When, in what order and by whom it was made.
    #[serde(flatten)]
    pub stamp: Stamp,
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
        self.stamp.validate()?;
        match (&self.status, &self.referred_to) {
            (CaseStatus::Referred, Some(to)) if self.stamp.from.as_ref() == Some(to) => Err(
                ProtocolError::Invalid("a focal point cannot refer a case to itself"),
            ),
            (CaseStatus::Referred, Some(to)) => check_focal_id(to),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: CaseStatus, referred_to: Option<&str>, stamp: Stamp) -> StatusUpdate {
        StatusUpdate {
            v: 1,
            report_id: [7; 16],
            status,
            message: None,
            referred_to: referred_to.map(str::to_string),
            stamp,
        }
    }

    #[test]
    fn messages_without_a_stamp_still_open_and_sort_by_their_hour() {
        let old = br#"{"v":1,"report_id":"BwcHBwcHBwcHBwcHBwcHBw","status":"in_progress"}"#;
        let update = StatusUpdate::from_json(old).unwrap();
        assert_eq!(update.stamp, Stamp::default());
        assert_eq!(update.stamp.order_key(10), (36_000, 0));
        let old = br#"{"v":1,"report_id":"BwcHBwcHBwcHBwcHBwcHBw","text":"hola"}"#;
        assert_eq!(Reply::from_json(old).unwrap().stamp, Stamp::default());
    }

    #[test]
    fn the_stamp_travels_flat_beside_the_other_fields() {
        let stamp = Stamp {
            at: Some(1_790_000_123),
            seq: Some(4),
            from: Some("pe-ucayali-defensoria".into()),
        };
        let update = status(CaseStatus::Closed, None, stamp.clone());
        let json = update.to_json().unwrap();
        let text = std::str::from_utf8(&json).unwrap();
        assert!(text.contains(r#""at":1790000123"#), "{text}");
        assert!(text.contains(r#""seq":4"#), "{text}");
        assert!(text.contains(r#""from":"pe-ucayali-defensoria""#), "{text}");
        assert_eq!(StatusUpdate::from_json(&json).unwrap(), update);
        // The writer's time orders, then its counter; the hour is only a fallback.
        assert_eq!(stamp.order_key(1), (1_790_000_123, 4));
    }

    #[test]
    fn a_focal_point_cannot_refer_to_itself_or_name_itself_absurdly() {
        let me = Stamp {
            from: Some("pe-a".into()),
            ..Stamp::default()
        };
        assert!(
            status(CaseStatus::Referred, Some("pe-a"), me.clone())
                .validate()
                .is_err()
        );
        assert!(
            status(CaseStatus::Referred, Some("br-b"), me)
                .validate()
                .is_ok()
        );
        let long = Stamp {
            from: Some("x".repeat(MAX_FOCAL_ID_CHARS + 1)),
            ..Stamp::default()
        };
        assert!(status(CaseStatus::Closed, None, long).validate().is_err());
        for bad in ["", "PE-A", "pe a", "pé"] {
            let stamp = Stamp {
                from: Some(bad.into()),
                ..Stamp::default()
            };
            assert!(
                status(CaseStatus::Closed, None, stamp).validate().is_err(),
                "{bad:?}"
            );
        }
    }
}
