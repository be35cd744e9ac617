//! Requests that are not valid HTTP are counted, not logged one by one
//! (issue 15.2).
//!
//! actix-http refuses a request it cannot parse (a bad header line, a bad
//! method, a head too large, a chunked body that does not decode, a head
//! that did not arrive in time) with a status and no body, and then logs
//! the connection's end at ERROR (`stream error: request parse error: …`),
//! once per request: one client sending garbage wrote 5,767 such lines a
//! second. Those are the client's faults, not the relay's. Here they are
//! taken out of the log ([`Quiet`], a filter on the log's layer) and counted
//! by kind ([`Counter`], a layer of its own that sees them whatever the log
//! level); the relay writes at most one summary line per interval
//! ([`spawn_summary`]) and `/metrics` has the counts
//! (`amparo_http_malformed_total{kind}`). Every other ERROR from actix (a
//! service or body error, an internal error) is still written as it comes:
//! those are the relay's own faults. None of these messages holds a client
//! address, and nothing here records one.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};

use crate::uploads::Uploads;

/// Kinds of malformed requests, as labelled in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A header line that does not parse (or a bad Content-Length or
    /// Transfer-Encoding).
    BadHeader,
    /// A method that is not a token.
    BadMethod,
    /// A request target that is not a URI.
    BadUri,
    /// Not HTTP/1.0 or 1.1.
    BadVersion,
    /// A request head over actix's limit (answered 431).
    HeadTooLarge,
    /// The connection ended inside a request head or a chunked body.
    Incomplete,
    /// A chunked body whose framing does not decode.
    BadChunked,
    /// A head that did not arrive within the request timeout (408).
    SlowHead,
    /// The connection broke (reset, or closed while writing).
    Io,
    /// A body left unread when the answer was sent (refused early).
    BodyUnread,
    /// Any other parse error.
    Other,
}

impl Kind {
    const ALL: [Kind; 11] = [
        Kind::BadHeader,
        Kind::BadMethod,
        Kind::BadUri,
        Kind::BadVersion,
        Kind::HeadTooLarge,
        Kind::Incomplete,
        Kind::BadChunked,
        Kind::SlowHead,
        Kind::Io,
        Kind::BodyUnread,
        Kind::Other,
    ];

    /// The label.
    pub fn name(self) -> &'static str {
        match self {
            Kind::BadHeader => "bad_header",
            Kind::BadMethod => "bad_method",
            Kind::BadUri => "bad_uri",
            Kind::BadVersion => "bad_version",
            Kind::HeadTooLarge => "head_too_large",
            Kind::Incomplete => "incomplete",
            Kind::BadChunked => "bad_chunked",
            Kind::SlowHead => "slow_head",
            Kind::Io => "io",
            Kind::BodyUnread => "body_unread",
            Kind::Other => "other",
        }
    }

    /// The kind of an actix-http ERROR message, or `None` for one that is
    /// the relay's own fault (or unknown), which stays in the log.
    pub fn of_message(message: &str) -> Option<Kind> {
        if message.starts_with("MAX_BUFFER_SIZE unprocessed data reached") {
            return Some(Kind::BadChunked);
        }
        let rest = message.strip_prefix("stream error: ")?;
        if let Some(parse) = rest.strip_prefix("request parse error: ") {
            let kind = if parse.starts_with("invalid Header") {
                Kind::BadHeader
            } else if parse.starts_with("invalid method") {
                Kind::BadMethod
            } else if parse.starts_with("URI error") {
                Kind::BadUri
            } else if parse.starts_with("invalid HTTP version") {
                Kind::BadVersion
            } else if parse.starts_with("message head is too large") {
                Kind::HeadTooLarge
            } else if parse.starts_with("message is incomplete") {
                Kind::Incomplete
            } else if parse.starts_with("I/O error") {
                Kind::Io
            } else {
                Kind::Other
            };
            return Some(kind);
        }
        if rest.starts_with("I/O error") {
            Some(Kind::Io)
        } else if rest.starts_with("request did not complete within") {
            Some(Kind::SlowHead)
        } else if rest.starts_with("handler dropped payload") {
            Some(Kind::BodyUnread)
        } else {
            // "service error", "body error", "upgrade error", "internal
            // error", "connection shutdown timeout", and anything new: logged.
            None
        }
    }
}

static COUNTS: [AtomicU64; Kind::ALL.len()] = [const { AtomicU64::new(0) }; Kind::ALL.len()];

fn count(kind: Kind) {
    if let Some(c) = Kind::ALL
        .iter()
        .position(|k| *k == kind)
        .and_then(|i| COUNTS.get(i))
    {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// The counts so far (per process), by kind.
pub fn counts() -> [(Kind, u64); Kind::ALL.len()] {
    let mut out = [(Kind::Other, 0); Kind::ALL.len()];
    for ((slot, kind), c) in out.iter_mut().zip(Kind::ALL).zip(&COUNTS) {
        *slot = (kind, c.load(Ordering::Relaxed));
    }
    out
}

/// Whether an event may be one of these: actix-http's, at ERROR.
pub fn concerns(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::ERROR && meta.target().starts_with("actix_http")
}

/// The kind of a malformed-request event, if it is one.
fn classify(event: &Event<'_>) -> Option<Kind> {
    if !concerns(event.metadata()) {
        return None;
    }
    struct Message(String);
    impl Visit for Message {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                self.0.push_str(value);
            }
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.0, "{value:?}");
            }
        }
    }
    let mut m = Message(String::new());
    event.record(&mut m);
    Kind::of_message(&m.0)
}

/// A filter for the log's layer: lets everything through but malformed
/// requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl<S: Subscriber> Filter<S> for Quiet {
    fn enabled(&self, _meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &Context<'_, S>) -> bool {
        classify(event).is_none()
    }
}

/// A layer that counts malformed requests (give it the filter
/// [`concerns`], so it sees them at any log level and nothing else).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counter;

impl<S: Subscriber> Layer<S> for Counter {
    fn on_event(&self, event: &Event<'_>, _cx: Context<'_, S>) {
        if let Some(kind) = classify(event) {
            count(kind);
        }
    }
}

/// Writes, once per `interval` and only when something happened, one line
/// that sums up the malformed requests and the cut or refused bodies of
/// that interval.
pub fn spawn_summary(interval: Duration, uploads: Arc<Uploads>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut before = counts();
        let mut cut_before = uploads.refusal_counts();
        loop {
            tick.tick().await;
            let now = counts();
            let cut_now = uploads.refusal_counts();
            let mut parts = Vec::new();
            let mut total = 0;
            for ((kind, n), (_, m)) in now.iter().zip(&before) {
                let d = n.saturating_sub(*m);
                if d > 0 {
                    total += d;
                    parts.push(format!("{} {d}", kind.name()));
                }
            }
            let mut cuts = Vec::new();
            for ((why, n), (_, m)) in cut_now.iter().zip(&cut_before) {
                let d = n.saturating_sub(*m);
                if d > 0 {
                    cuts.push(format!("{} {d}", why.name()));
                }
            }
            let secs = interval.as_secs();
            if total > 0 {
                tracing::warn!(
                    "refused {total} malformed HTTP requests in the last {secs} s ({}); counted in /metrics as amparo_http_malformed_total",
                    parts.join(", ")
                );
            }
            if !cuts.is_empty() {
                tracing::warn!(
                    "cut or refused request bodies in the last {secs} s ({}); counted in /metrics as amparo_uploads_refused_total",
                    cuts.join(", ")
                );
            }
            before = now;
            cut_before = cut_now;
        }
    });
}

/// The counts, in the Prometheus text format.
pub fn render(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP amparo_http_malformed_total Requests that were not valid HTTP, refused by the HTTP server, by kind."
    );
    let _ = writeln!(out, "# TYPE amparo_http_malformed_total counter");
    for (kind, n) in counts() {
        let _ = writeln!(
            out,
            "amparo_http_malformed_total{{kind=\"{}\"}} {n}",
            kind.name()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_sorted_into_kinds_and_faults_stay_logged() {
        for (message, kind) in [
            (
                "stream error: request parse error: invalid Header provided",
                Some(Kind::BadHeader),
            ),
            (
                "stream error: request parse error: invalid method specified",
                Some(Kind::BadMethod),
            ),
            (
                "stream error: request parse error: URI error: invalid uri character",
                Some(Kind::BadUri),
            ),
            (
                "stream error: request parse error: message head is too large",
                Some(Kind::HeadTooLarge),
            ),
            (
                "stream error: request parse error: message is incomplete",
                Some(Kind::Incomplete),
            ),
            (
                "stream error: I/O error: Connection reset by peer (os error 104)",
                Some(Kind::Io),
            ),
            (
                "stream error: request did not complete within the specified timeout",
                Some(Kind::SlowHead),
            ),
            (
                "stream error: handler dropped payload before reading EOF",
                Some(Kind::BodyUnread),
            ),
            (
                "MAX_BUFFER_SIZE unprocessed data reached, closing",
                Some(Kind::BadChunked),
            ),
            ("stream error: service error", None),
            ("stream error: internal error", None),
            ("stream error: body error: boom", None),
            ("Internal server error: unexpected eof", None),
            ("Response payload stream error: X", None),
        ] {
            assert_eq!(Kind::of_message(message), kind, "{message}");
        }
    }
}
