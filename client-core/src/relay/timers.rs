//! The relay's check-in timer routes (PROTOCOL.md §12.16–12.17), as the
//! phone uses them: a hold pays admission as an upload does; a check-in is
//! sent as it is.

use amparo_protocol::envelope::Envelope;
use serde::Deserialize;

use super::{Admitted, Carrying, MAX_JSON_ANSWER, RelayClient, network, read_capped};
use crate::{CoreError, Result};

/// What the relay answered a hold or a check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerAnswer {
    /// Held, or the check-in taken: the timer's state on record.
    Held {
        /// When the alert is released (hours since the epoch).
        release_hour: u32,
        /// The last check-in's sequence number.
        seq: u64,
    },
    /// The cancel was taken: the alert is deleted.
    Cancelled,
    /// Not now: the relay is full or asks more work than a phone does.
    /// Keep it and send it again at a later sync.
    Later,
    /// The relay holds no alert for this timer (404): it was released (her
    /// check-in came too late) or cancelled.
    Gone,
    /// Refused for good, with the relay's code: a stale or replayed
    /// check-in, a timer taken, a bad release hour.
    Refused(String),
}

#[derive(Deserialize)]
struct State {
    release_hour: Option<u32>,
    seq: u64,
    cancelled: bool,
}

#[derive(Deserialize)]
struct Error {
    error: String,
}

impl RelayClient {
    /// Sends a check-in timer's hold (its encoded bytes) of `alert`, paying
    /// admission when the relay asks.
    pub async fn hold(&self, hold: &[u8], alert: &Envelope) -> Result<TimerAnswer> {
        match self.admitted(Carrying::Hold(hold, alert), |_| {}).await? {
            Admitted::Answer(r) => timer_answer(r).await,
            Admitted::NotPaid { .. } => Ok(TimerAnswer::Later),
        }
    }

    /// Sends a check-in or a cancel (110 bytes).
    pub async fn check_in(&self, check_in: &[u8]) -> Result<TimerAnswer> {
        let r = self
            .http
            .post(self.url("/v1/timers/check-in"))
            .header("Content-Type", "application/octet-stream")
            .body(check_in.to_vec())
            .send()
            .await
            .map_err(network)?;
        timer_answer(r).await
    }
}

async fn timer_answer(r: reqwest::Response) -> Result<TimerAnswer> {
    let status = r.status().as_u16();
    let body = read_capped(r, MAX_JSON_ANSWER, "timer answer").await?;
    let answer = || -> Result<TimerAnswer> {
        let s: State = serde_json::from_slice(&body)
            .map_err(|_| CoreError::Invalid("the relay's answer about a timer"))?;
        Ok(match (s.cancelled, s.release_hour) {
            (true, _) => TimerAnswer::Cancelled,
            (false, Some(release_hour)) => TimerAnswer::Held {
                release_hour,
                seq: s.seq,
            },
            (false, None) => return Err(CoreError::Invalid("the relay's answer about a timer")),
        })
    };
    let code = || {
        serde_json::from_slice::<Error>(&body)
            .map(|e| e.error)
            .unwrap_or_default()
    };
    match status {
        200 => answer(),
        404 if code() == "no_timer" => Ok(TimerAnswer::Gone),
        400 | 409 => Ok(TimerAnswer::Refused(code())),
        // Full, busy; or a relay that holds no timers (a field relay, an
        // older relay): kept for a sync with one that does.
        404 | 429 | 503 | 507 => Ok(TimerAnswer::Later),
        _ => Err(CoreError::Relay {
            status,
            code: code(),
            message: String::new(),
        }),
    }
}
