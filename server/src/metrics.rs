//! Counters for `/metrics`, in the Prometheus text format. Counts only:
//! nothing per mailbox, per client or per request.
//!
//! Who may read them is the operator's choice ([`MetricsAccess`], and
//! [`MetricsGate`] for where): by default nobody, because even counts are
//! worth hiding from the network a relay faces — an accepted-envelope
//! counter read every few seconds tells whoever watches a phone's traffic
//! whether that phone just delivered a report.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use amparo_protocol::wire::RejectCode;

use crate::error::ApiError;
use crate::quota::Quotas;
use crate::store::StoreCounts;

/// The path of the metrics.
pub const PATH: &str = "/metrics";

/// Shortest and longest accepted metrics token.
pub const TOKEN_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// A bearer token for `/metrics`. Its `Debug` does not show it.
#[derive(Clone)]
pub struct MetricsToken(Arc<str>);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

/// Why a metrics token cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "metrics_token must be 16 to 256 characters of letters, digits and - . _ ~ + / (for example the output of `openssl rand -hex 32`)"
)]
pub struct InvalidToken;

impl MetricsToken {
    /// Checks that `token` can travel in an `Authorization: Bearer` header
    /// (RFC 6750's token characters, no `=` padding needed) and is long enough
    /// not to be guessed.
    pub fn new(token: &str) -> Result<MetricsToken, InvalidToken> {
        let ok = TOKEN_LEN.contains(&token.len())
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
        if ok {
            Ok(MetricsToken(token.into()))
        } else {
            Err(InvalidToken)
        }
    }

    /// Whether `presented` is this token, in time that does not depend on
    /// where they differ.
    fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        expected.len() == presented.len()
            && expected
                .iter()
                .zip(presented)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, Default)]
pub enum MetricsAccess {
    /// Nobody: `/metrics` answers 404 as an unknown path does.
    #[default]
    Off,
    /// Anyone who reaches the listener that serves it.
    Open,
    /// Whoever sends `Authorization: Bearer TOKEN`.
    Bearer(MetricsToken),
}

/// Where and to whom `/metrics` is served.
#[derive(Debug, Clone, Default)]
pub struct MetricsGate {
    /// Who may read it.
    pub access: MetricsAccess,
    /// The local address of a listener that serves `/metrics` and nothing
    /// else; when set, the public listener does not serve it at all.
    pub listener: Option<SocketAddr>,
}

impl MetricsGate {
    /// Whether a request that came in on the listener bound to `local` for
    /// `path` is refused before any handler sees it: on the metrics
    /// listener, everything but `/metrics`.
    pub fn blocks(&self, local: SocketAddr, path: &str) -> bool {
        self.listener == Some(local) && path != PATH
    }

    /// Whether a request for `/metrics` on the listener bound to `local`,
    /// with this `Authorization` header, may read the metrics.
    pub fn admit(
        &self,
        local: SocketAddr,
        authorization: Option<&HeaderValue>,
    ) -> Result<(), ApiError> {
        if self.listener.is_some_and(|l| l != local) {
            return Err(ApiError::not_found());
        }
        match &self.access {
            MetricsAccess::Off => Err(ApiError::not_found()),
            MetricsAccess::Open => Ok(()),
            MetricsAccess::Bearer(token) => {
                let presented = authorization
                    .map(HeaderValue::as_bytes)
                    .and_then(|v| {
                        let (scheme, rest) = v.split_at_checked(7)?;
                        scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
                    })
                    .map(|t| t.trim_ascii());
                match presented {
                    Some(t) if token.matches(t) => Ok(()),
                    _ => Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "metrics_unauthorized",
                        "Reading the metrics needs the token this relay was started with: send `Authorization: Bearer TOKEN`, where TOKEN is the relay's metrics_token (--metrics-token or AMPARO_METRICS_TOKEN).",
                    )
                    .with_challenge("Bearer realm=\"amparo-metrics\"")),
                }
            }
        }
    }
}

const REJECT_CODES: [RejectCode; 7] = [
    RejectCode::Malformed,
    RejectCode::UnsupportedVersion,
    RejectCode::UnsupportedSuite,
    RejectCode::BadSizeClass,
    RejectCode::Unavailable,
    RejectCode::MailboxFull,
    RejectCode::RelayFull,
];

/// The relay's counters (per process).
#[derive(Default)]
pub struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    worked: AtomicU64,
    /// Time spent checking admission work, refused proofs included.
    check_nanos: AtomicU64,
    checks: AtomicU64,
    token_admitted: AtomicU64,
    tokens_issued: AtomicU64,
    timers_held: AtomicU64,
    timers_checked_in: AtomicU64,
    timers_released: AtomicU64,
    accepted_bytes: AtomicU64,
    rejected: [AtomicU64; REJECT_CODES.len()],
    request_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// The request-body gate, whose counts are rendered too.
    uploads: std::sync::OnceLock<Arc<crate::uploads::Uploads>>,
    /// A field relay's forwarding counts, rendered too.
    field: std::sync::OnceLock<Arc<crate::field::ForwardCounts>>,
}

impl Metrics {
    /// A new envelope was stored.
    pub fn accepted(&self, bytes: usize) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.accepted_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// An upload carried the admission work asked of it (refusals are
    /// counted with the request errors, as `work_required`).
    pub fn work_admitted(&self) {
        self.worked.fetch_add(1, Ordering::Relaxed);
    }

    /// One proof of admission work was checked (good or not) in `took`:
    /// what admission costs the relay, read against its CPU.
    pub fn work_checked(&self, took: std::time::Duration) {
        self.checks.fetch_add(1, Ordering::Relaxed);
        self.check_nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// An upload was admitted by an admission token instead of work.
    pub fn token_admitted(&self) {
        self.token_admitted.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` admission tokens were issued.
    pub fn tokens_issued(&self, n: usize) {
        self.tokens_issued
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// A check-in timer's alert was held (PROTOCOL.md §17).
    pub fn timer_held(&self) {
        self.timers_held.fetch_add(1, Ordering::Relaxed);
    }

    /// A check-in (or cancel) was taken.
    pub fn timer_checked_in(&self) {
        self.timers_checked_in.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` alerts were released into their mailboxes.
    pub fn timers_released(&self, n: u64) {
        self.timers_released.fetch_add(n, Ordering::Relaxed);
    }

    /// An envelope already held was received again.
    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    /// An envelope was refused.
    pub fn rejected(&self, code: RejectCode) {
        if let Some(i) = REJECT_CODES.iter().position(|c| *c == code)
            && let Some(c) = self.rejected.get(i)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Renders the counts of `uploads` (request bodies) with the others.
    pub fn attach_uploads(&self, uploads: Arc<crate::uploads::Uploads>) {
        let _ = self.uploads.set(uploads);
    }

    /// Renders a field relay's forwarding counts with the others.
    pub fn attach_field(&self, counts: Arc<crate::field::ForwardCounts>) {
        let _ = self.field.set(counts);
    }

    /// A whole request was refused with `code`.
    pub fn request_error(&self, code: &'static str) {
        if let Ok(mut m) = self.request_errors.lock() {
            *m.entry(code).or_default() += 1;
        }
    }

    /// The exposition text; with `quotas`, the storage limits and the free
    /// disk too.
    pub fn render(&self, counts: Option<StoreCounts>, quotas: Option<&Quotas>) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP amparo_envelopes_accepted_total Envelopes stored (first copy)."
        );
        let _ = writeln!(out, "# TYPE amparo_envelopes_accepted_total counter");
        let _ = writeln!(
            out,
            "amparo_envelopes_accepted_total {}",
            load(&self.accepted)
        );
        let _ = writeln!(
            out,
            "# HELP amparo_envelopes_duplicate_total Copies of envelopes already held (answered with the same receipt)."
        );
        let _ = writeln!(out, "# TYPE amparo_envelopes_duplicate_total counter");
        let _ = writeln!(
            out,
            "amparo_envelopes_duplicate_total {}",
            load(&self.duplicates)
        );
        let _ = writeln!(
            out,
            "# HELP amparo_uploads_with_work_total Uploads admitted with the admission work the relay asked (PROTOCOL.md §14)."
        );
        let _ = writeln!(out, "# TYPE amparo_uploads_with_work_total counter");
        let _ = writeln!(out, "amparo_uploads_with_work_total {}", load(&self.worked));
        let _ = writeln!(
            out,
            "# HELP amparo_admission_checks_total Proofs of admission work checked, good or not."
        );
        let _ = writeln!(out, "# TYPE amparo_admission_checks_total counter");
        let _ = writeln!(out, "amparo_admission_checks_total {}", load(&self.checks));
        let _ = writeln!(
            out,
            "# HELP amparo_admission_check_seconds_total Time spent checking proofs of admission work."
        );
        let _ = writeln!(out, "# TYPE amparo_admission_check_seconds_total counter");
        let _ = writeln!(
            out,
            "amparo_admission_check_seconds_total {:.6}",
            load(&self.check_nanos) as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "# HELP amparo_uploads_with_token_total Uploads admitted with an admission token instead of work (PROTOCOL.md §14.2)."
        );
        let _ = writeln!(out, "# TYPE amparo_uploads_with_token_total counter");
        let _ = writeln!(
            out,
            "amparo_uploads_with_token_total {}",
            load(&self.token_admitted)
        );
        let _ = writeln!(
            out,
            "# HELP amparo_tokens_issued_total Admission tokens issued (blind: the relay cannot tell which are spent later)."
        );
        let _ = writeln!(out, "# TYPE amparo_tokens_issued_total counter");
        let _ = writeln!(
            out,
            "amparo_tokens_issued_total {}",
            load(&self.tokens_issued)
        );
        for (name, help, c) in [
            (
                "amparo_timers_held_total",
                "Alerts of check-in timers held (PROTOCOL.md §17).",
                &self.timers_held,
            ),
            (
                "amparo_timer_check_ins_total",
                "Check-ins and cancels taken.",
                &self.timers_checked_in,
            ),
            (
                "amparo_timers_released_total",
                "Alerts released into their focal points' mailboxes by this relay.",
                &self.timers_released,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", load(c));
        }
        let _ = writeln!(
            out,
            "# HELP amparo_envelope_bytes_accepted_total Bytes of envelopes stored."
        );
        let _ = writeln!(out, "# TYPE amparo_envelope_bytes_accepted_total counter");
        let _ = writeln!(
            out,
            "amparo_envelope_bytes_accepted_total {}",
            load(&self.accepted_bytes)
        );
        let _ = writeln!(
            out,
            "# HELP amparo_envelopes_rejected_total Envelopes refused, by reason."
        );
        let _ = writeln!(out, "# TYPE amparo_envelopes_rejected_total counter");
        for (code, c) in REJECT_CODES.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "amparo_envelopes_rejected_total{{reason=\"{}\"}} {}",
                code.name(),
                load(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP amparo_requests_rejected_total Requests refused, by error code."
        );
        let _ = writeln!(out, "# TYPE amparo_requests_rejected_total counter");
        if let Ok(m) = self.request_errors.lock() {
            for (code, n) in m.iter() {
                let _ = writeln!(out, "amparo_requests_rejected_total{{code=\"{code}\"}} {n}");
            }
        }
        if let Some(u) = self.uploads.get() {
            u.render(&mut out);
        }
        crate::malformed::render(&mut out);
        if let Some(f) = self.field.get() {
            render_field(&mut out, f);
        }
        if let Some(c) = counts {
            let _ = writeln!(
                out,
                "# HELP amparo_envelopes_stored Envelopes waiting in mailboxes."
            );
            let _ = writeln!(out, "# TYPE amparo_envelopes_stored gauge");
            let _ = writeln!(out, "amparo_envelopes_stored {}", c.envelopes);
            let _ = writeln!(
                out,
                "# HELP amparo_envelope_bytes_stored Bytes waiting in mailboxes."
            );
            let _ = writeln!(out, "# TYPE amparo_envelope_bytes_stored gauge");
            let _ = writeln!(out, "amparo_envelope_bytes_stored {}", c.bytes);
            let _ = writeln!(
                out,
                "# HELP amparo_timers Check-in timers on record (held, or cancelled until their hour)."
            );
            let _ = writeln!(out, "# TYPE amparo_timers gauge");
            let _ = writeln!(out, "amparo_timers {}", c.timers);
            let _ = writeln!(
                out,
                "# HELP amparo_timer_alert_bytes Bytes of the alerts check-in timers hold (counted by max_stored_bytes)."
            );
            let _ = writeln!(out, "# TYPE amparo_timer_alert_bytes gauge");
            let _ = writeln!(out, "amparo_timer_alert_bytes {}", c.held_bytes);
        }
        if let Some(q) = quotas {
            let l = q.limits();
            let gauges: [(&str, &str, u64); 6] = [
                (
                    "amparo_storage_limit_bytes",
                    "Most bytes waiting in all mailboxes (max_stored_bytes).",
                    l.max_stored_bytes,
                ),
                (
                    "amparo_mailbox_limit_envelopes",
                    "Most envelopes waiting in one focal point's mailbox.",
                    l.focal.envelopes,
                ),
                (
                    "amparo_mailbox_limit_bytes",
                    "Most bytes waiting in one focal point's mailbox.",
                    l.focal.bytes,
                ),
                (
                    "amparo_reply_mailbox_limit_envelopes",
                    "Most envelopes waiting in one reply mailbox.",
                    l.reply.envelopes,
                ),
                (
                    "amparo_reply_mailbox_limit_bytes",
                    "Most bytes waiting in one reply mailbox.",
                    l.reply.bytes,
                ),
                (
                    "amparo_disk_min_free_bytes",
                    "Free disk the relay leaves alone (SQLite).",
                    l.min_free_disk_bytes,
                ),
            ];
            for (name, help, value) in gauges {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} gauge");
                let _ = writeln!(out, "{name} {value}");
            }
            if let Some(free) = q.last_free_disk() {
                let _ = writeln!(
                    out,
                    "# HELP amparo_disk_free_bytes Free bytes on the database's filesystem at the last upload (SQLite)."
                );
                let _ = writeln!(out, "# TYPE amparo_disk_free_bytes gauge");
                let _ = writeln!(out, "amparo_disk_free_bytes {free}");
            }
        }
        out
    }
}

/// A field relay's forwarding counts (envelopes waiting to go upstream are
/// `amparo_envelopes_stored`: on a field relay every stored envelope is).
fn render_field(out: &mut String, f: &crate::field::ForwardCounts) {
    let counters: [(&str, &str, &AtomicU64); 4] = [
        (
            "amparo_field_forwarded_total",
            "Envelopes forwarded upstream (the upstream's receipt verified; they left the queue).",
            &f.forwarded,
        ),
        (
            "amparo_field_postponed_total",
            "Times an envelope was postponed by a full or busy upstream (it stays queued for a later round).",
            &f.postponed,
        ),
        (
            "amparo_field_refused_total",
            "Envelopes the upstream refused outright (dropped here; the phone keeps its copy).",
            &f.refused,
        ),
        (
            "amparo_field_unverified_total",
            "Envelopes whose upstream receipt did not verify (kept queued).",
            &f.unverified,
        ),
    ];
    for (name, help, c) in counters {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {}", c.load(Ordering::Relaxed));
    }
}
