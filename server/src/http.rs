//! The HTTP API (actix-web). Every route is documented in PROTOCOL.md §12 and
//! in the OpenAPI document served at `/v1/openapi.json`.
//!
//! There is no access-log middleware: actix-web's `Logger` records the peer
//! address and User-Agent, which the relay must never know. Handlers read no
//! connection information and no headers but the ones named here.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use amparo_protocol::envelope::{Envelope, EnvelopeId};
use amparo_protocol::grant::{self, FetchGrant};
use amparo_protocol::keys::MailboxId;
use amparo_protocol::mailboxes::{self, FetchResult};
use amparo_protocol::primitives::ed25519::{SigningKey, VerifyingKey};
use amparo_protocol::receipt::Receipt;
use amparo_protocol::request::{self, RequestProof};
use amparo_protocol::wire::{self, EnvelopeResult, RejectCode};
use amparo_protocol::{ProtocolError, UnixTime, b64, directory};
use serde::{Deserialize, Serialize};

use crate::commit::Committer;
use crate::error::ApiError;
use crate::metrics::{Metrics, MetricsGate};
use crate::quota::Quotas;
use crate::store::{NewEnvelope, Placed, Store};

pub use crate::shared::{Clock, Limits, system_clock};
use crate::shared::{DEFAULT_PAGE, MAX_ACK_BODY, MAX_ACK_IDS, answer_room, read_body};

/// What every handler shares.
pub struct AppState<S: Store> {
    /// Storage.
    pub store: S,
    /// The group committer in front of the store.
    pub committer: Committer,
    /// What uploads pay when the relay is pressed (PROTOCOL.md §14).
    pub admission: Arc<crate::admission::Admission>,
    /// Admission tokens: issuing and spending (PROTOCOL.md §14.2).
    pub tokens: Arc<crate::tokens::Tokens>,
    /// Storage limits.
    pub quotas: Arc<Quotas>,
    /// Caps on check-in timers (PROTOCOL.md §17).
    pub timer_limits: crate::timers::TimerLimits,
    /// Receipt-signing key.
    pub receipt_key: Arc<SigningKey>,
    /// Coordinator key for directory uploads.
    pub coordinator_key: Option<VerifyingKey>,
    /// Limits.
    pub limits: Limits,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Where and to whom `/metrics` is served.
    pub metrics_gate: MetricsGate,
    /// Time.
    pub clock: Clock,
}

/// Registers every route of the API.
pub fn configure<S: Store>(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route(crate::metrics::PATH, web::get().to(metrics::<S>))
        .route("/v1/openapi.json", web::get().to(openapi))
        .route("/v1/directory", web::get().to(get_directory::<S>))
        .route("/v1/directory", web::put().to(put_directory::<S>))
        .route("/v1/envelopes", web::post().to(post_envelopes::<S>))
        .route("/v1/admission", web::get().to(get_admission::<S>))
        .route(
            crate::timers::HOLD_PATH,
            web::post().to(crate::timers::post_hold::<S>),
        )
        .route(
            crate::timers::CHECK_IN_PATH,
            web::post().to(crate::timers::post_check_in::<S>),
        )
        .route(
            TOKEN_DIRECTORY_PATH,
            web::get().to(get_token_directory::<S>),
        )
        .route(TOKENS_PATH, web::post().to(issue_tokens::<S>))
        .route(mailboxes::FETCH_PATH, web::post().to(fetch_many::<S>))
        .route(mailboxes::ACK_PATH, web::post().to(ack_many::<S>))
        .route(
            "/v1/mailboxes/{mailbox}/envelopes",
            web::get().to(fetch_mailbox::<S>),
        )
        .route(
            "/v1/mailboxes/{mailbox}/ack",
            web::post().to(ack_mailbox::<S>),
        )
        .route("/v1/receipts", web::post().to(crate::field::receipts))
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn metrics<S: Store>(
    req: HttpRequest,
    state: web::Data<AppState<S>>,
) -> Result<HttpResponse, ApiError> {
    state.metrics_gate.admit(
        req.app_config().local_addr(),
        req.headers().get(header::AUTHORIZATION),
    )?;
    let counts = state.store.counts().await.ok();
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(counts, Some(&state.quotas))))
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::OPENAPI_JSON)
}

fn etag(version: u64) -> String {
    format!("\"v{version}\"")
}

async fn get_directory<S: Store>(
    req: HttpRequest,
    state: web::Data<AppState<S>>,
) -> Result<HttpResponse, ApiError> {
    let Some((version, bytes)) = state.store.directory().await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_directory",
            "This relay has no directory yet.",
        ));
    };
    let tag = etag(version);
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            // Weak comparison, as RFC 9110 specifies for If-None-Match.
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == tag || t == "*")
        });
    if matches {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type(wire::CONTENT_TYPE)
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(bytes))
}

#[derive(Serialize)]
struct DirectoryAccepted {
    version: u64,
}

async fn put_directory<S: Store>(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState<S>>,
) -> Result<HttpResponse, ApiError> {
    let limit = directory::MAX_BODY + 25 + 64;
    let body = read_body(&req, payload, limit).await?;
    let Some(coordinator) = state.coordinator_key else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no_coordinator_key",
            "This relay has no coordinator key configured, so it accepts no directory. The relay's operator must restart it with the coordinator's public key: --coordinator-key KEY (or AMPARO_COORDINATOR_KEY, or coordinator_key in its settings file), where KEY is what `amparo profile create --role coordinator` printed.",
        ));
    };
    let signed = directory::SignedDirectory::verify(&body, &coordinator).map_err(|e| match e {
        ProtocolError::UnknownSigner(_) | ProtocolError::BadSignature(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            e.code(),
            "The directory is not signed by the coordinator key this relay was started with (--coordinator-key). Sign it with that coordinator's profile, or ask the relay's operator to check the key.",
        ),
        other => ApiError::bad_input(&other),
    })?;
    // Versions are stored as signed 64-bit integers; a larger one used to
    // reach the database and come back as 503.
    if i64::try_from(signed.version()).is_err() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "version_out_of_range",
            "Directory versions above 9223372036854775807 cannot be stored; sign it with a smaller version.",
        ));
    }
    if !state
        .store
        .put_directory(signed.version(), signed.as_bytes())
        .await?
    {
        let current = state.store.directory().await?.map(|(v, _)| v).unwrap_or(0);
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "stale_directory",
            format!(
                "Directory version {} is not newer than the version this relay holds ({current}).",
                signed.version()
            ),
        ));
    }
    state
        .quotas
        .learn_directory(signed.version(), signed.as_bytes());
    tracing::info!(version = signed.version(), "directory updated");
    Ok(HttpResponse::Ok().json(DirectoryAccepted {
        version: signed.version(),
    }))
}

async fn post_envelopes<S: Store>(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState<S>>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, state.limits.max_body_bytes).await?;
    let frames = wire::decode_batch(&body, state.limits.max_batch).map_err(|e| match e {
        ProtocolError::TooLarge {
            what: "batch (envelopes)",
            ..
        } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "A request may carry at most {} envelopes. Send them in smaller batches.",
                state.limits.max_batch
            ),
        ),
        other => ApiError::bad_input(&other),
    })?;
    let now = (state.clock)();
    let hour = now.hours();
    // Validate every envelope's framing; keep the valid ones in order.
    let mut results: Vec<Option<RejectCode>> = Vec::with_capacity(frames.len());
    let mut batch = Vec::with_capacity(frames.len());
    for frame in &frames {
        match Envelope::decode(frame) {
            Ok(env) => {
                results.push(None);
                batch.push(NewEnvelope {
                    id: env.id().0,
                    mailbox: env.mailbox().0,
                    arrival_hour: hour,
                    bytes: env.into_bytes(),
                });
            }
            Err(e) => {
                let code = RejectCode::for_error(&e);
                state.metrics.rejected(code);
                results.push(Some(code));
            }
        }
    }
    let ids: Vec<EnvelopeId> = batch.iter().map(|e| EnvelopeId(e.id)).collect();
    let Paid {
        required,
        priority,
        spent_token,
    } = pay_admission(&req, &state, batch.iter().map(|e| &e.mailbox), &ids, now).await?;
    let sizes: Vec<usize> = batch.iter().map(|e| e.bytes.len()).collect();
    let ids: Vec<[u8; 16]> = ids.into_iter().map(|e| e.0).collect();
    let pending = if batch.is_empty() {
        None
    } else {
        Some(
            state
                .committer
                .submit(batch, priority)
                .await
                .map_err(|_| ApiError::unavailable())?,
        )
    };
    // Sign the receipts while the group commit runs (its fsync leaves the
    // CPU idle), dated the day this copy arrived. None leaves this function
    // before the batch is durable; a copy whose first arrival was on another
    // day is signed again below.
    let today = UnixTime::from_hours(hour);
    let signed: Vec<Receipt> = ids
        .iter()
        .map(|id| Receipt::sign(EnvelopeId(*id), today, &state.receipt_key))
        .collect();
    let on_record = match pending {
        Some(p) => p.durable().await.map_err(|_| ApiError::unavailable())?,
        None => Vec::new(),
    };
    // A token that admitted nothing (every envelope over a cap) is given
    // back: its holder keeps it for the next try.
    let mut token_kept = spent_token.is_some();
    if let Some(nullifier) = spent_token
        && !on_record.iter().any(|p| matches!(p, Placed::Stored(_)))
    {
        state.store.unspend_token(&nullifier).await?;
        token_kept = false;
    }
    let mut stored = ids.iter().zip(on_record).zip(sizes).zip(signed);
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Some(code) => out.push(EnvelopeResult::Rejected(code)),
            None => {
                let Some((((id, placed), size), receipt)) = stored.next() else {
                    return Err(ApiError::unavailable());
                };
                let record = match placed {
                    Placed::Stored(record) => record,
                    // Over a storage cap: not stored; the sender keeps it
                    // and sends it again later (PROTOCOL.md §12.6).
                    Placed::Full(full) => {
                        state.metrics.rejected(full.code());
                        out.push(EnvelopeResult::Rejected(full.code()));
                        continue;
                    }
                };
                if record.fresh {
                    state.metrics.accepted(size);
                } else {
                    state.metrics.duplicate();
                }
                // The receipt carries the day of the first copy's arrival, so
                // every copy gets the same receipt.
                let day = UnixTime::from_hours(record.arrival_hour);
                out.push(EnvelopeResult::Accepted(if day.days() == receipt.day {
                    receipt
                } else {
                    Receipt::sign(EnvelopeId(*id), day, &state.receipt_key)
                }));
            }
        }
    }
    let mut answer = HttpResponse::Ok();
    answer.content_type(wire::CONTENT_TYPE);
    // What this upload was asked to pay, so a phone pays ahead on its next
    // upload instead of sending a body to be refused (2G), and stops
    // paying once nothing is asked (PROTOCOL.md §14.1).
    if required > 0 {
        answer.insert_header((crate::admission::EFFORT_HEADER, required.to_string()));
    }
    // Whether the token sent was spent: one that admitted nothing (or was
    // not looked at, on a quiet relay) stays its holder's.
    if token_kept {
        answer.insert_header((crate::tokens::SPENT_HEADER, "1"));
    }
    Ok(answer.body(wire::encode_results(&out)))
}

/// What an upload paid to be admitted (PROTOCOL.md §14).
pub(crate) struct Paid {
    /// The effort asked per envelope (0: nothing asked, the relay is quiet).
    pub required: u32,
    /// What it paid per envelope: the writer serves more first when it is
    /// behind (PROTOCOL.md §14.1).
    pub priority: crate::commit::Priority,
    /// The token it spent, if it paid with one (given back if it admitted
    /// nothing).
    pub spent_token: Option<[u8; 16]>,
}

/// Asks the work the relay's pressure calls for of an upload of `ids` for
/// `mailboxes`, before anything reaches the writer: cheap checks first,
/// then one Equi-X verification per request. A token (PROTOCOL.md §14.2)
/// stands for the work; it is looked at only when work is asked, so none
/// is spent on a quiet relay.
pub(crate) async fn pay_admission<'m, S: Store>(
    req: &HttpRequest,
    state: &AppState<S>,
    mailboxes: impl Iterator<Item = &'m [u8; 12]>,
    ids: &[EnvelopeId],
    now: UnixTime,
) -> Result<Paid, ApiError> {
    let required = state
        .admission
        .required(mailboxes, state.committer.queue_fill());
    let mut paid = Paid {
        required,
        priority: 0,
        spent_token: None,
    };
    if required == 0 {
        return Ok(paid);
    }
    if let Some(token) = req.headers().get(header::AUTHORIZATION) {
        match state
            .tokens
            .spend(&state.store, token.as_bytes(), now)
            .await?
        {
            Ok(nullifier) => {
                paid.spent_token = Some(nullifier);
                paid.priority = crate::commit::TOKEN_PRIORITY;
            }
            Err(refused) => {
                return Err(ApiError::token_refused(
                    required,
                    refused == crate::tokens::Spend::Spent,
                ));
            }
        }
        state.metrics.token_admitted();
    } else {
        let proof = req
            .headers()
            .get(crate::admission::PROOF_HEADER)
            .map(|v| v.as_bytes());
        let started = std::time::Instant::now();
        let checked = state.admission.check(proof, ids, required, now);
        if proof.is_some() {
            state.metrics.work_checked(started.elapsed());
        }
        let work = checked.map_err(|refusal| {
            ApiError::work_required(required, refusal == crate::admission::Refusal::Missing)
        })?;
        state.metrics.work_admitted();
        // A token outranks any work (TOKEN_PRIORITY is u32::MAX).
        let n = u32::try_from(ids.len().max(1)).unwrap_or(u32::MAX);
        paid.priority = (work / n).min(crate::commit::TOKEN_PRIORITY - 1);
    }
    Ok(paid)
}

/// The relay's admission challenge now (PROTOCOL.md §14): 117 bytes, the
/// same for everyone within an epoch and an effort, so it is 304-able.
async fn get_admission<S: Store>(req: HttpRequest, state: web::Data<AppState<S>>) -> HttpResponse {
    let now = (state.clock)();
    let challenge = state.admission.challenge(now, state.committer.queue_fill());
    let tag = format!("\"a{}-{}\"", challenge.epoch, challenge.effort);
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes());
    let mut answer = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if unchanged {
        answer.finish()
    } else {
        answer
            .content_type("application/octet-stream")
            .body(challenge.encode().to_vec())
    }
}

/// Where the relay's token issuer directory is (RFC 9578 §4).
pub const TOKEN_DIRECTORY_PATH: &str = "/.well-known/private-token-issuer-directory";
/// Where focal points and vouched facilitators ask for tokens.
pub const TOKENS_PATH: &str = "/v1/tokens";
/// The header a facilitator's voucher travels in.
pub const VOUCHER_HEADER: &str = "amparo-voucher";

#[derive(Serialize)]
struct IssuerDirectory {
    #[serde(rename = "issuer-request-uri")]
    request_uri: &'static str,
    #[serde(rename = "token-keys")]
    keys: Vec<IssuerDirectoryKey>,
    /// The TokenChallenge every token of this relay answers (base64url),
    /// so a phone can check it is for a relay key it trusts.
    #[serde(rename = "amparo-token-challenge")]
    challenge: String,
}

#[derive(Serialize)]
struct IssuerDirectoryKey {
    #[serde(rename = "token-type")]
    token_type: u16,
    #[serde(rename = "token-key")]
    key: String,
    #[serde(rename = "not-before")]
    not_before: u64,
}

/// The relay's token keys (RFC 9578 §4): the current key epoch's, and the
/// previous one's while its tokens are still good. The same for everyone,
/// so it is 304-able and no one can be handed a key of their own.
async fn get_token_directory<S: Store>(
    req: HttpRequest,
    state: web::Data<AppState<S>>,
) -> Result<HttpResponse, ApiError> {
    use base64::Engine as _;
    let now = (state.clock)();
    let keys = state.tokens.public_keys(&state.store, now).await?;
    let first = keys.first().map_or(0, |k| k.0);
    let tag = format!("\"t{first}-{}\"", keys.len());
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes())
    {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .finish());
    }
    let body = IssuerDirectory {
        request_uri: TOKENS_PATH,
        challenge: amparo_protocol::b64::encode(&state.tokens.challenge()),
        keys: keys
            .iter()
            .map(|(epoch, key)| IssuerDirectoryKey {
                token_type: amparo_protocol::token::TOKEN_TYPE,
                key: base64::engine::general_purpose::URL_SAFE.encode(key.spki()),
                not_before: u64::from(*epoch) * amparo_protocol::token::KEY_EPOCH_SECONDS,
            })
            .collect(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type("application/private-token-issuer-directory")
        .json(body))
}

/// Signs a batch of blinded token requests (PROTOCOL.md §14.2) for a
/// focal point of the directory, or a facilitator with a voucher, within
/// its daily count. The relay sees blinded messages only.
async fn issue_tokens<S: Store>(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState<S>>,
) -> Result<HttpResponse, ApiError> {
    use amparo_protocol::token;
    let body = read_body(&req, payload, token::MAX_BATCH * token::REQUEST_LEN).await?;
    let requests = token::decode_requests(&body).map_err(|e| ApiError::bad_input(&e))?;
    let proof = signed_by(
        &req,
        "Token requests must be signed by a focal point's or a vouched facilitator's key (Amparo-Signature header).",
    )?;
    let now = (state.clock)();
    proof
        .verify(
            &MailboxId::for_key(&proof.key),
            req.method().as_str(),
            &target(&req),
            &body,
            now,
        )
        .map_err(proof_error)?;
    let voucher = match req.headers().get(VOUCHER_HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ProtocolError::Invalid("voucher"))
                .and_then(amparo_protocol::voucher::Voucher::from_header)
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        "bad_voucher",
                        "The voucher is not one: it does not decode or its signature does not verify.",
                    )
                })?,
        ),
    };
    let kind = match state
        .tokens
        .issuer_kind(&state.store, &proof.key, voucher.as_ref(), now)
        .await?
    {
        Ok(kind) => kind,
        Err(crate::tokens::NotIssuer::Unknown) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_an_issuer",
                "Only a focal point of this relay's directory, or a facilitator with a voucher from one, may ask for admission tokens.",
            ));
        }
        Err(crate::tokens::NotIssuer::BadVoucher) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "bad_voucher",
                "The voucher is for another key, out of its dates, or not signed by a focal point of this relay's directory or the coordinator.",
            ));
        }
    };
    remember_request(&state, &proof.replay_id(), proof.replay_horizon()).await?;
    let epoch = token::key_epoch(now.0);
    let key = state.tokens.issuer(&state.store, epoch).await?;
    let key_id = key.public().id();
    if requests.iter().any(|r| r.truncated_key_id != key_id[31]) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "token_key_changed",
            "These requests were blinded for a token key that is not the relay's current one. Fetch the issuer directory again and blind anew.",
        ));
    }
    let n = u32::try_from(requests.len()).unwrap_or(u32::MAX);
    let limit = state.tokens.daily_limit(kind);
    if !state
        .store
        .count_issuance(&state.tokens.issuer_tag(&proof.key), now.days(), n, limit)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "issuance_limit",
            format!(
                "This key may be issued at most {limit} admission tokens a day; ask again tomorrow, or for fewer."
            ),
        ));
    }
    let signed = tokio::task::spawn_blocking(move || {
        let mut entropy = amparo_protocol::entropy::SystemEntropy::new();
        requests
            .iter()
            .map(|r| key.sign(r, &mut entropy))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|_| ApiError::unavailable())?
    .map_err(|e| ApiError::bad_input(&e))?;
    state.metrics.tokens_issued(signed.len());
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(signed.concat()))
}

/// The request target exactly as the client signed it.
fn target(req: &HttpRequest) -> String {
    req.uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| req.path().to_owned())
}

/// The `Amparo-Signature` proof of a request, parsed (not yet verified);
/// `401 missing_signature` with `missing` when there is none.
fn signed_by(req: &HttpRequest, missing: &'static str) -> Result<RequestProof, ApiError> {
    let header = req
        .headers()
        .get(request::HEADER)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "missing_signature", missing))?;
    header
        .to_str()
        .map_err(|_| ProtocolError::Invalid("request signature header"))
        .and_then(RequestProof::parse)
        .map_err(|e| ApiError::bad_input(&e))
}

/// Checks the `Amparo-Signature` proof for `mailbox`, and that it was not
/// used before.
async fn authenticate<S: Store>(
    req: &HttpRequest,
    state: &AppState<S>,
    mailbox: &MailboxId,
    body: &[u8],
) -> Result<(), ApiError> {
    let proof = signed_by(
        req,
        "This request must be signed with the mailbox's key (Amparo-Signature header).",
    )?;
    let now = (state.clock)();
    proof
        .verify(mailbox, req.method().as_str(), &target(req), body, now)
        .map_err(proof_error)?;
    remember_request(state, &proof.replay_id(), proof.replay_horizon()).await
}

/// The answer for a signed request that does not verify.
fn proof_error(e: ProtocolError) -> ApiError {
    match e {
        ProtocolError::UnknownSigner(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_key",
            "The request is signed by a key that does not own this mailbox.",
        ),
        ProtocolError::StaleRequest => {
            ApiError::new(StatusCode::UNAUTHORIZED, e.code(), format!("{e}."))
        }
        ProtocolError::BadSignature(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "The request signature does not verify.",
        ),
        other => ApiError::bad_input(&other),
    }
}

/// Records a signed request's replay id until `horizon` (when its timestamp
/// alone would refuse it); refuses one already seen.
async fn remember_request<S: Store>(
    state: &AppState<S>,
    replay_id: &[u8; 16],
    horizon: UnixTime,
) -> Result<(), ApiError> {
    let expires_hour = horizon.hours().saturating_add(1);
    if !state
        .store
        .remember_request(replay_id, expires_hour)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "replayed_request",
            "This signed request was already used; sign a new one.",
        ));
    }
    Ok(())
}

/// Checks an `Amparo-Grant` header: signed by the mailbox's key, for this
/// mailbox, not expired.
fn check_grant(value: &HeaderValue, mailbox: &MailboxId, now: UnixTime) -> Result<(), ApiError> {
    let g = value
        .to_str()
        .map_err(|_| ProtocolError::Invalid("fetch grant"))
        .and_then(FetchGrant::from_header)
        .map_err(|e| match e {
            ProtocolError::BadSignature(_) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                "The fetch grant's signature does not verify.",
            ),
            ProtocolError::UnknownSigner(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_key",
                "The fetch grant is signed by a key that does not own its mailbox.",
            ),
            other => ApiError::bad_input(&other),
        })?;
    g.allows(mailbox, now).map_err(|e| match e {
        ProtocolError::UnknownSigner(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_key",
            "The fetch grant is for another mailbox.",
        ),
        _ => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "stale_request",
            "The fetch grant has expired (or is valid for longer than 14 days).",
        ),
    })
}

fn parse_mailbox(text: &str) -> Result<MailboxId, ApiError> {
    MailboxId::parse(text).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_mailbox",
            "The mailbox id must be 12 bytes in base64url (16 characters).",
        )
    })
}

#[derive(Deserialize)]
struct PageQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

async fn fetch_mailbox<S: Store>(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState<S>>,
    field: Option<web::Data<crate::field::Field>>,
) -> Result<HttpResponse, ApiError> {
    let mailbox = parse_mailbox(&path)?;
    let query = web::Query::<PageQuery>::from_query(req.query_string()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "Use ?after=CURSOR&limit=N with whole numbers.",
        )
    })?;
    // Cursors are stored as signed 64-bit integers: a larger `after` is not a
    // cursor (it used to reach the database and come back as 503).
    if query.after.is_some_and(|a| i64::try_from(a).is_err()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "Use ?after=CURSOR&limit=N with whole numbers; a cursor is at most 9223372036854775807.",
        ));
    }
    match req.headers().get(grant::HEADER) {
        // Read-only access a survivor granted (for a facilitator to fetch
        // her sealed replies while she is out of reach); no replay check:
        // a grant is meant to be used more than once until it expires.
        Some(value) if !req.headers().contains_key(request::HEADER) => {
            check_grant(value, &mailbox, (state.clock)())?
        }
        _ => authenticate(&req, &state, &mailbox, b"").await?,
    }
    let limit = query
        .limit
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, state.limits.max_page);
    let after = query.after.unwrap_or(0);
    if let Some(field) = field {
        // A field relay checked the signature above; the upstream checks it
        // again, and what it returns is cached for pickup offline.
        return field
            .fetch(&req, &target(&req), &mailbox, after, limit)
            .await;
    }
    // Read within the page's byte room: the sizes first, then only the
    // bodies that go in it.
    let page = state
        .store
        .fetch_within(&mailbox.0, after, crate::field::single_page(limit))
        .await?;
    let more = crate::field::single_page_more(&page, limit);
    let body = wire::encode_page(
        page.envelopes
            .iter()
            .map(|e| (e.cursor, e.bytes.as_slice())),
    );
    Ok(HttpResponse::Ok()
        .content_type(wire::CONTENT_TYPE)
        .insert_header((
            "Amparo-More",
            HeaderValue::from_static(if more { "1" } else { "0" }),
        ))
        .body(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckRequest {
    ids: Vec<String>,
}

#[derive(Serialize)]
struct AckResponse {
    acknowledged: u64,
}

async fn ack_mailbox<S: Store>(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState<S>>,
    field: Option<web::Data<crate::field::Field>>,
) -> Result<HttpResponse, ApiError> {
    let mailbox = parse_mailbox(&path)?;
    let body = read_body(&req, payload, MAX_ACK_BODY).await?;
    authenticate(&req, &state, &mailbox, &body).await?;
    let parsed: AckRequest = serde_json::from_slice(&body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "The body must be JSON: {\"ids\": [envelope ids in base64url]}.",
        )
    })?;
    if parsed.ids.len() > MAX_ACK_IDS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_ids",
            format!("Acknowledge at most {MAX_ACK_IDS} envelopes per request."),
        ));
    }
    let ids = parsed
        .ids
        .iter()
        .map(|s| b64::decode_array::<16>(s, "envelope id"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_input(&e))?;
    if let Some(field) = field {
        return field
            .ack(&req, &target(&req), &mailbox, body.into_vec(), &ids)
            .await;
    }
    let acknowledged = state.store.ack(&mailbox.0, &ids).await?;
    cooled(&state, &mailbox.0).await;
    Ok(HttpResponse::Ok().json(AckResponse { acknowledged }))
}

/// After an acknowledgement: a mailbox remembered as filling has its fill
/// read again, so the work its senders pay follows the focal point's
/// draining (no insert may come to tell, while work keeps a flood out).
async fn cooled<S: Store>(state: &AppState<S>, mailbox: &[u8; 12]) {
    let pressure = state.admission.pressure();
    if !state.admission.enabled() || !pressure.is_hot(mailbox) {
        return;
    }
    if let Ok(used) = state.store.mailbox_usage(mailbox).await {
        pressure.observe(
            mailbox,
            crate::admission::fill(used, state.quotas.cap_for(mailbox)),
        );
    }
}

/// `POST /v1/mailboxes/fetch`: one page of each of many mailboxes, each
/// entry signed by its mailbox's key or carried by a survivor's grant
/// (PROTOCOL.md §12.14). One request and one round trip for every reply
/// mailbox a phone holds.
async fn fetch_many<S: Store>(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState<S>>,
    field: Option<web::Data<crate::field::Field>>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, mailboxes::MAX_BODY).await?;
    let checked = mailboxes::verify_fetch(&body, (state.clock)()).map_err(proof_error)?;
    remember_request(&state, &checked.replay_id, checked.replay_horizon).await?;
    let limit = u32::from(checked.limit).min(state.limits.max_page);
    if let Some(field) = field {
        return field.fetch_many(body.into_vec(), &checked, limit).await;
    }
    // The whole answer stays within what the request asked for (4 MiB when
    // it named nothing), framing included.
    let mut budget = answer_room(&checked);
    let mut results = Vec::with_capacity(checked.entries.len());
    for entry in &checked.entries {
        if !entry.allowed {
            results.push(FetchResult::Refused);
            continue;
        }
        // Each page is read within the room the answer has left (sizes
        // first, then the bodies that fit), not `limit` + 1 whole bodies.
        let page = if budget == 0 {
            crate::store::BoundedPage {
                envelopes: Vec::new(),
                end: crate::store::PageEnd::Cut,
            }
        } else {
            state
                .store
                .fetch_within(
                    &entry.mailbox.0,
                    entry.after,
                    crate::field::answer_page(limit, budget),
                )
                .await?
        };
        results.push(crate::field::answer_result(page, limit, &mut budget));
    }
    Ok(HttpResponse::Ok()
        .content_type(wire::CONTENT_TYPE)
        .body(mailboxes::encode_fetch_answer(results)))
}

/// `POST /v1/mailboxes/ack`: acknowledges envelopes of many mailboxes, each
/// entry signed by its mailbox's key (PROTOCOL.md §12.15).
async fn ack_many<S: Store>(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState<S>>,
    field: Option<web::Data<crate::field::Field>>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, mailboxes::MAX_BODY).await?;
    let checked = mailboxes::verify_ack(&body, (state.clock)()).map_err(proof_error)?;
    remember_request(&state, &checked.replay_id, checked.replay_horizon).await?;
    if let Some(field) = field {
        return field.ack_many(body.into_vec(), &checked.entries).await;
    }
    let mut acknowledged = 0;
    for entry in &checked.entries {
        let ids: Vec<[u8; 16]> = entry.ids.iter().map(|i| i.0).collect();
        acknowledged += state.store.ack(&entry.mailbox.0, &ids).await?;
        cooled(&state, &entry.mailbox.0).await;
    }
    Ok(HttpResponse::Ok().json(AckResponse { acknowledged }))
}
