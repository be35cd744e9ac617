//! What the HTTP layer ([`crate::http`]) and the field relay
//! ([`crate::field`]) both use: the clock, request limits, reading a
//! request body within its limit, and the byte budget of a many-mailbox
//! answer. Dependencies run one way: `http` → `field` → `shared`, and
//! `http` → `shared`; nothing here knows either of them. Each limit lives
//! here, in one place.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use amparo_protocol::UnixTime;
use amparo_protocol::mailboxes::{self, FetchResult};

use crate::error::ApiError;
use crate::store::StoredEnvelope;
pub use crate::uploads::Body;
use crate::uploads::{UploadLimits, Uploads};

/// Reads the time (injectable for tests).
pub type Clock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        UnixTime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    })
}

/// The system clock moved `hours` ahead: only for tests of what happens
/// when hours pass (the crash test of check-in timers restarts a relay an
/// hour later without waiting an hour).
pub fn skewed_clock(hours: i64) -> Clock {
    let system = system_clock();
    Arc::new(move || {
        let secs = hours.saturating_mul(3600);
        UnixTime(system().0.saturating_add_signed(secs))
    })
}

/// Limits applied to requests.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Most envelopes per upload.
    pub max_batch: usize,
    /// Most envelopes per mailbox page.
    pub max_page: u32,
}

/// Largest acknowledgement body (JSON list of ids).
pub const MAX_ACK_BODY: usize = 64 * 1024;
/// Most ids in one acknowledgement.
pub const MAX_ACK_IDS: usize = 1000;
/// Default page size.
pub const DEFAULT_PAGE: u32 = 100;
/// Most ids in one `POST /v1/receipts`.
pub const MAX_RECEIPT_IDS: usize = 1000;
/// The bytes a many-mailbox answer to `fetch` has for its envelopes (each
/// with its cursor and length): what the request allows the whole answer
/// (the size it named, or 4 MiB; PROTOCOL.md §12.14), less the framing of
/// every entry, which goes whatever happens.
pub fn answer_room(fetch: &mailboxes::VerifiedFetch) -> usize {
    fetch
        .answer_budget()
        .saturating_sub(mailboxes::answer_framing(fetch.entries.len()))
}

/// Reads a body up to `limit` bytes: refuses at once when Content-Length says
/// it is larger, and stops reading as soon as it grows past the limit. The
/// read goes through the relay's [`Uploads`] gate (time, count and memory
/// limits; see [`crate::uploads`]), or one with the default limits when the
/// app has none.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Body, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    match req.app_data::<web::Data<Uploads>>() {
        Some(gate) => gate.read(&mut payload, limit, declared).await,
        None => {
            Uploads::new(UploadLimits::default())
                .read(&mut payload, limit, declared)
                .await
        }
    }
}

/// How many envelopes to read for a many-mailbox page of `limit`: one
/// more, to know whether more wait ([`within_budget`]).
pub fn page_probe(limit: u32) -> u32 {
    limit.saturating_add(1)
}

/// One mailbox's result in a many-mailbox answer, within `room`: the bytes
/// left for envelopes, each with its cursor and length (start from
/// [`answer_room`]; shared by the relay and a field relay answering from its
/// cache). `page` is read with one envelope past `limit` ([`page_probe`]):
/// that one is not sent, it only tells that more wait, so a mailbox whose
/// page holds all it has does not say "more" and cost its phone another
/// request. The answer stops at the first envelope that would go over, and
/// that page and every one after it say "more" (the rest wait for the next
/// request); with no room left, an empty page with "more" set. A request
/// leaves room for at least one envelope of the largest size
/// ([`mailboxes::min_answer_len`]), so the first envelope waiting always
/// goes and every answer makes progress.
pub fn within_budget(
    page: Vec<StoredEnvelope>,
    limit: u32,
    room: &mut usize,
) -> FetchResult<Vec<u8>> {
    if *room == 0 {
        return FetchResult::Page {
            items: Vec::new(),
            more: true,
        };
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut more = page.len() > limit;
    let mut items = Vec::with_capacity(page.len().min(limit));
    for e in page.into_iter().take(limit) {
        let cost = mailboxes::ITEM_HEAD.saturating_add(e.bytes.len());
        if cost > *room {
            *room = 0;
            more = true;
            break;
        }
        *room -= cost;
        items.push((e.cursor, e.bytes));
    }
    FetchResult::Page { items, more }
}
