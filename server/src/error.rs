//! The one place where failures become HTTP responses: a status, a stable
//! machine-readable code and a sentence for people, as JSON
//! `{ "error": code, "message": sentence }`. Nothing in a body or a log line
//! quotes the request.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use amparo_protocol::ProtocolError;
use serde::Serialize;

use crate::store::StoreError;

/// An error answered to a client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (documented in PROTOCOL.md and the OpenAPI document).
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// A `WWW-Authenticate` challenge to send with a 401.
    pub challenge: Option<&'static str>,
    /// Seconds to send in `Retry-After` (with a 503).
    pub retry_after: Option<u64>,
    /// Close the connection after the answer (a body left unread).
    pub close: bool,
    /// The effort a refused upload must claim (`Amparo-Admission-Effort`).
    pub effort: Option<u32>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            challenge: None,
            retry_after: None,
            close: false,
            effort: None,
        }
    }

    /// 429 for an upload without the work the relay asks now
    /// (PROTOCOL.md §14): `effort` is what the request must claim.
    pub fn work_required(effort: u32, missing: bool) -> Self {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "work_required",
            if missing {
                "The relay is busy: this upload needs admission work. Fetch GET /v1/admission, solve it for these envelopes at the effort in Amparo-Admission-Effort and send again with Amparo-Admission."
            } else {
                "The admission work sent does not hold for these envelopes at the effort asked now (Amparo-Admission-Effort), or its challenge has expired. Solve again and send again."
            },
        );
        e.effort = Some(effort);
        e
    }

    /// 429 for an upload whose admission token does not admit it
    /// (PROTOCOL.md §14.2): `spent` if it was spent before, else it is no
    /// token of this relay's. The effort is what work would cost instead.
    pub fn token_refused(effort: u32, spent: bool) -> Self {
        let mut e = if spent {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "token_spent",
                "This admission token was already spent. Use another token, or do the admission work (Amparo-Admission-Effort).",
            )
        } else {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "bad_token",
                "This admission token is not one of this relay's current keys, or it does not verify. Use another token, or do the admission work (Amparo-Admission-Effort).",
            )
        };
        e.effort = Some(effort);
        e
    }

    /// The same error with `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The same error, closing the connection after the answer.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// The same error with a `WWW-Authenticate` challenge.
    pub fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// 400 for input that does not decode.
    pub fn bad_input(e: &ProtocolError) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            e.code(),
            format!("The request body is not valid: {e}."),
        )
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "The request body is larger than this relay accepts ({limit} bytes). Send fewer envelopes per request."
            ),
        )
        // The rest of the body is not read: close rather than drain it.
        .closing()
    }

    /// 503 for storage failures; the cause goes to the operator's log only.
    pub fn unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The relay cannot store or read data right now. Nothing was changed; try again later.",
        )
    }

    /// 502 when a field relay's upstream answered with something unreadable.
    pub fn upstream_unavailable() -> Self {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            "The central relay answered with something this field relay cannot read; try again later.",
        )
    }

    /// 404 for unknown routes.
    pub fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is nothing at this address.",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failure");
        ApiError::unavailable()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(c) = self.challenge {
            response.insert_header((actix_web::http::header::WWW_AUTHENTICATE, c));
        }
        if let Some(secs) = self.retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, secs));
        }
        if self.close {
            response.force_close();
        }
        if let Some(effort) = self.effort {
            response.insert_header((crate::admission::EFFORT_HEADER, effort.to_string()));
        }
        response.json(Body {
            error: self.code,
            message: &self.message,
        })
    }
}
