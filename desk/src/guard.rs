//! The desk's front door. A web page on the same computer is an attacker
//! too: any site the focal point visits can make her browser send requests
//! to 127.0.0.1, and a rebinding DNS name can make it read the answers.
//! So every request is checked here before any handler runs:
//!
//! - `Host` must name the desk's own loopback address and port (DNS
//!   rebinding sends another name);
//! - `Origin`, when sent, must be the desk's own, and a state-changing
//!   request must send it; `Sec-Fetch-Site`, when sent, must say the
//!   request came from the desk's own pages or from the focal point
//!   (`same-origin`, `none`): another port of 127.0.0.1 is the same *site*,
//!   so the cookie's `SameSite` alone would let its pages in;
//! - apart from the launch address and the assets, the session cookie must
//!   be the one the launch secret was exchanged for;
//! - a state-changing request must carry the session's CSRF token (in the
//!   form's address or an `X-CSRF-Token` header);
//! - while locked, only unlocking, locking and the language are served;
//! - an idle desk locks itself before answering.
//!
//! Every answer, refusals included, gets the same strict headers
//! ([`secure_headers`]).

use std::time::Instant;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, web};
use amparo_protocol::primitives::ct_eq;
use serde::Deserialize;

use crate::pages;
use crate::state::{self, Desk};

/// The session cookie's name.
pub const COOKIE: &str = "amparo_desk";

/// The Content-Security-Policy: only the desk's own script, style, images
/// and audio; no inline script, no frame, no form to elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; media-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Headers on every answer.
pub fn secure_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CSP))
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Not `no-referrer`: with it, browsers send `Origin: null` on the
        // desk's own form posts, and the Origin check could not tell them
        // from a sandboxed attacker's. `same-origin` sends nothing to other sites.
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cross-Origin-Resource-Policy", "same-origin"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=()",
        ))
}

/// Where a request may go without a session.
fn is_public(path: &str) -> bool {
    path == "/open" || path.starts_with("/assets/")
}

/// Where a session may go while locked.
fn served_locked(path: &str) -> bool {
    matches!(path, "/unlock" | "/lock" | "/lang")
}

/// Progress polls do not count as use: a page left open would otherwise
/// never lock.
fn counts_as_use(path: &str) -> bool {
    path != "/sync/status"
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

#[derive(Deserialize)]
struct CsrfQuery {
    csrf: Option<String>,
}

/// The session cookie's value in `req`, if sent.
pub fn session_cookie(req: &ServiceRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .map(str::to_string)
}

fn header_str<'a>(req: &'a ServiceRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Checks `req`: the answer to send instead of serving it, if it may not
/// be served.
pub fn check(req: &ServiceRequest) -> Option<HttpResponse> {
    let Some(desk) = req.app_data::<web::Data<Desk>>() else {
        return Some(HttpResponse::InternalServerError().finish());
    };
    let lang = crate::words::from_accept_language(header_str(req, "accept-language"));
    let w = crate::words::words(lang);
    let refuse = |status: StatusCode, text: &str| Some(pages::bare(status, lang, text));
    match header_str(req, "host") {
        Some(host) if desk.host_ok(host) => {}
        _ => return refuse(StatusCode::MISDIRECTED_REQUEST, w.refused_host),
    }
    let origin = header_str(req, "origin");
    // Another port of this computer is another origin but the same site
    // (the cookie's SameSite does not keep it out): only the desk's own
    // pages, and the focal point typing or opening the address, are served.
    let fetch_site_ok = matches!(
        header_str(req, "sec-fetch-site"),
        None | Some("same-origin" | "none")
    );
    if origin.is_some_and(|o| !desk.origin_ok(o)) || !fetch_site_ok {
        return refuse(StatusCode::FORBIDDEN, w.refused_cross);
    }
    let path = req.path();
    if is_public(path) {
        return if is_safe(req.method()) {
            None
        } else {
            refuse(StatusCode::METHOD_NOT_ALLOWED, w.not_allowed)
        };
    }
    if !is_safe(req.method()) && origin.is_none() {
        return refuse(StatusCode::FORBIDDEN, w.refused_cross);
    }
    let mut inner = desk.inner();
    let Some(session) = &inner.session else {
        return Some(pages::session_ended(lang));
    };
    let cookie = session_cookie(req).unwrap_or_default();
    if !ct_eq(cookie.as_bytes(), session.id.as_bytes()) {
        return Some(pages::session_ended(lang));
    }
    if !is_safe(req.method()) {
        let sent = header_str(req, "x-csrf-token")
            .map(str::to_string)
            .or_else(|| {
                web::Query::<CsrfQuery>::from_query(req.query_string())
                    .ok()
                    .and_then(|q| q.into_inner().csrf)
            })
            .unwrap_or_default();
        if !ct_eq(sent.as_bytes(), session.csrf.as_bytes()) {
            return refuse(StatusCode::FORBIDDEN, w.stale_form);
        }
    }
    if inner.open.is_some() && inner.last_seen.elapsed() >= desk.config.lock_after {
        state::lock(&mut inner);
    }
    if counts_as_use(path) {
        inner.last_seen = Instant::now();
    }
    if inner.open.is_none() && !served_locked(path) {
        return Some(if is_safe(req.method()) {
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, HeaderValue::from_static("/unlock")))
                .finish()
        } else {
            pages::bare(StatusCode::LOCKED, lang, w.is_locked)
        });
    }
    None
}
