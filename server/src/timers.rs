//! Check-in timers over HTTP (PROTOCOL.md §12.16–12.17, §17): holding a
//! sealed alert until its release hour, taking check-ins and cancels, and
//! the background pass that releases alerts whose hour has come into their
//! focal points' mailboxes.
//!
//! A hold pays admission as an upload to its focal point's mailbox does,
//! and its alert counts towards the global cap; the timers on record and
//! the alerts held per focal point have caps of their own
//! ([`TimerLimits`]). Check-ins are 110 bytes signed by the timer key: one
//! that would be refused (no such timer, replayed, stale) is decided on a
//! read and never takes the write lock.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use amparo_protocol::timer::{self, CheckIn, Hold, TimerId, TimerState};
use amparo_protocol::{ProtocolError, envelope};
use serde::Serialize;

use crate::error::ApiError;
use crate::http::{AppState, Paid, pay_admission};
use crate::shared::{Clock, read_body};
use crate::store::Store;
use crate::store::timers::{CheckedIn, HeldFull, HoldPlaced, NewHold, RELEASE_BATCH};

pub use crate::store::timers::TimerLimits;

/// Where holds are sent.
pub const HOLD_PATH: &str = "/v1/timers";
/// Where check-ins and cancels are sent.
pub const CHECK_IN_PATH: &str = "/v1/timers/check-in";
/// How often the release pass runs: an alert goes out within this of the
/// start of its release hour.
pub const RELEASE_PERIOD: Duration = Duration::from_secs(60);

/// A timer's state, as the relay answers a hold or a check-in.
#[derive(Serialize)]
struct TimerAnswer {
    /// The timer id (base64url).
    timer: String,
    /// When the alert is released (hours since the epoch); absent once
    /// cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    release_hour: Option<u32>,
    /// The last check-in's sequence number (0 before any).
    seq: u64,
    /// Whether the alert was deleted by a cancel.
    cancelled: bool,
}

impl TimerAnswer {
    fn held(timer: TimerId, state: TimerState) -> Self {
        TimerAnswer {
            timer: timer.to_string(),
            release_hour: Some(state.release_hour),
            seq: state.seq,
            cancelled: false,
        }
    }
}

fn full(f: HeldFull) -> ApiError {
    match f {
        HeldFull::Relay => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "relay_full",
            "The relay is full: it cannot hold this alert now. Keep it on the phone and try again later, or set the timer on another relay.",
        ),
        HeldFull::Mailbox => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "timers_full",
            "This focal point has as many alerts held as this relay keeps for one. Try again later, or choose another focal point.",
        ),
        HeldFull::Timers => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "timers_full",
            "This relay has as many timers as it keeps. Try again later, or set the timer on another relay.",
        ),
    }
    .retry_after(3600)
}

/// A field relay holds no timers: what it stores goes upstream as it can,
/// and an alert must not wait on a box in the field (it can be taken, or
/// lose its link, at the hour it should go). Phones keep the hold or the
/// check-in and send it to the central relay at their next sync there.
fn not_on_a_field_relay(req: &HttpRequest) -> Result<(), ApiError> {
    if req.app_data::<web::Data<crate::field::Field>>().is_some() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_here",
            "This is a field relay: check-in timers are held by the central relay only. Keep the timer on the phone and send it at the next sync with the central relay.",
        ));
    }
    Ok(())
}

/// `POST /v1/timers`: holds a sealed alert until its release hour.
pub(crate) async fn post_hold<S: Store>(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState<S>>,
) -> Result<HttpResponse, ApiError> {
    not_on_a_field_relay(&req)?;
    let body = read_body(&req, payload, timer::HOLD_HEADER_LEN + envelope::MAX_LEN).await?;
    let hold = Hold::decode(&body).map_err(|e| ApiError::bad_input(&e))?;
    let now = (state.clock)();
    hold.check_release(now.hours()).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_release_hour",
            format!(
                "{e}: a release hour must be after the relay's current hour and at most {} hours after it.",
                timer::MAX_AHEAD_HOURS
            ),
        )
    })?;
    let mailbox = hold.envelope.mailbox().0;
    if !state.quotas.is_focal(&mailbox) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_a_focal_point",
            "An alert is held only for a focal point listed in this relay's directory: seal it to one of them.",
        ));
    }
    let id = hold.envelope.id();
    let Paid { spent_token, .. } =
        pay_admission(&req, &state, [&mailbox].into_iter(), &[id], now).await?;
    let timer = hold.timer();
    let new = NewHold {
        timer: timer.0,
        release_hour: hold.release_hour,
        mailbox,
        envelope: hold.envelope.into_bytes(),
    };
    let quota = state.quotas.current(state.store.reusable_bytes());
    let placed = state.store.hold(&new, &quota, &state.timer_limits).await;
    // A token that held nothing new is given back to its holder.
    if let Some(nullifier) = spent_token
        && !matches!(placed, Ok(HoldPlaced::Held { fresh: true, .. }))
    {
        state.store.unspend_token(&nullifier).await?;
    }
    match placed? {
        HoldPlaced::Held { state: held, fresh } => {
            if fresh {
                state.metrics.timer_held();
            }
            Ok(HttpResponse::Ok().json(TimerAnswer::held(timer, held)))
        }
        HoldPlaced::Taken => Err(ApiError::new(
            StatusCode::CONFLICT,
            "timer_taken",
            "This timer already holds another alert, or was cancelled: a timer holds one alert, once. Make a new timer key for a new alert.",
        )),
        HoldPlaced::Full(f) => Err(full(f)),
    }
}

/// `POST /v1/timers/check-in`: a check-in or a cancel.
pub(crate) async fn post_check_in<S: Store>(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState<S>>,
) -> Result<HttpResponse, ApiError> {
    not_on_a_field_relay(&req)?;
    let body = read_body(&req, payload, timer::CHECK_IN_LEN).await?;
    let check_in = CheckIn::decode(&body).map_err(|e| ApiError::bad_input(&e))?;
    if i64::try_from(check_in.seq).is_err() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_sequence_number",
            "Check-in sequence numbers above 9223372036854775807 cannot be stored.",
        ));
    }
    let timer = check_in.timer();
    let now = (state.clock)();
    match state.store.check_in(&check_in, now.hours()).await? {
        CheckedIn::Held(held) => {
            state.metrics.timer_checked_in();
            Ok(HttpResponse::Ok().json(TimerAnswer::held(timer, held)))
        }
        CheckedIn::Cancelled => {
            state.metrics.timer_checked_in();
            Ok(HttpResponse::Ok().json(TimerAnswer {
                timer: timer.to_string(),
                release_hour: None,
                seq: check_in.seq,
                cancelled: true,
            }))
        }
        CheckedIn::Unknown => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_timer",
            "This relay holds no alert for this timer: it was released, cancelled, or never held here.",
        )),
        CheckedIn::Refused(e) => Err(refused(&e)),
    }
}

fn refused(e: &ProtocolError) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "check_in_refused",
        format!("{e}. Nothing changed."),
    )
}

/// One release pass: every alert due at `now` goes into its mailbox, a
/// batch per transaction. Returns how many.
pub async fn release_pass<S: Store>(
    store: &S,
    now_hour: u32,
) -> Result<u64, crate::store::StoreError> {
    let mut released = 0;
    loop {
        let n = store.release_due(now_hour, RELEASE_BATCH).await?;
        released += n;
        if n < u64::from(RELEASE_BATCH) {
            return Ok(released);
        }
    }
}

/// Runs [`release_pass`] at start and every [`RELEASE_PERIOD`].
pub fn spawn_release<S: Store>(
    store: S,
    clock: Clock,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RELEASE_PERIOD);
        loop {
            tick.tick().await;
            match release_pass(&store, clock().hours()).await {
                Ok(0) => {}
                Ok(released) => {
                    metrics.timers_released(released);
                    tracing::info!(released, "released the alerts of check-in timers");
                }
                Err(e) => tracing::warn!(error = %e, "releasing alerts failed; will retry"),
            }
        }
    });
}
