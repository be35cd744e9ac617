//! Request bodies are read within bounded memory and time (issue 15.2).
//!
//! An anonymous client can open many connections, declare a large body,
//! send part of it and stall. Without limits each such connection pins what
//! it sent, for as long as it likes. Here every body read by
//! [`crate::shared::read_body`] goes through one [`Uploads`] gate:
//!
//! - **Time.** A body that receives nothing for `body_idle_timeout` is cut,
//!   and so is one that, after that same grace period, has arrived slower
//!   on average than `body_min_rate` bytes per second. While the relay is
//!   busy (three quarters of the upload slots or of the upload memory in
//!   use) the idle timeout is `busy_body_idle_timeout` instead: a stalled
//!   body then makes room quickly for bodies that are moving. A cut body is
//!   answered `408 body_timeout` and the connection is closed.
//! - **Count.** At most `max_concurrent_uploads` bodies are read at once;
//!   a request beyond that waits for a slot, then gets `503 busy` with
//!   `Retry-After`.
//! - **Memory.** The bytes of all bodies being read (and of the requests
//!   they make, until their handler is done with them) come out of one
//!   budget of `max_upload_memory` bytes, reserved as they arrive; a body
//!   that finds no room is refused with `503 busy`. A request waits for a
//!   slot and for memory `upload_wait` in all, not per chunk: a body the
//!   relay keeps waiting holds what it has.
//!   So the bodies in flight never hold more than that budget, whatever
//!   the number of connections.
//!
//! Counts of all of this (never per client) are in `/metrics`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::HttpMessage as _;
use actix_web::dev::{Payload, ServiceRequest};
use actix_web::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::ApiError;

/// Default idle timeout of a request body.
pub const DEFAULT_BODY_IDLE_TIMEOUT_SECS: u64 = 20;
/// Default idle timeout of a request body while the relay is busy.
pub const DEFAULT_BUSY_BODY_IDLE_TIMEOUT_SECS: u64 = 2;
/// Default slowest average rate of a body after its grace period.
pub const DEFAULT_BODY_MIN_RATE: u64 = 512;
/// Default most bodies read at once.
pub const DEFAULT_MAX_CONCURRENT_UPLOADS: usize = 512;
/// Default most bytes held by the bodies being read.
pub const DEFAULT_MAX_UPLOAD_MEMORY: usize = 32 * 1024 * 1024;
/// Default longest wait for an upload slot or for memory.
pub const DEFAULT_UPLOAD_WAIT_SECS: u64 = 0;

/// How often a waiting read looks again at its deadlines (the relay may
/// have become busy, which shortens the idle timeout).
const TICK: Duration = Duration::from_millis(250);

/// The limits on reading request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// A body that receives nothing for this long is cut; also the grace
    /// period before `min_rate` applies.
    pub idle_timeout: Duration,
    /// The idle timeout while the relay is busy.
    pub busy_idle_timeout: Duration,
    /// Slowest average rate (bytes per second) of a body once past its
    /// grace period; 0: no floor.
    pub min_rate: u64,
    /// Most bodies read at once.
    pub max_concurrent: usize,
    /// Most bytes held by the bodies being read, together.
    pub max_memory: usize,
    /// Longest wait for a slot or for memory before `503 busy`.
    pub wait: Duration,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            idle_timeout: Duration::from_secs(DEFAULT_BODY_IDLE_TIMEOUT_SECS),
            busy_idle_timeout: Duration::from_secs(DEFAULT_BUSY_BODY_IDLE_TIMEOUT_SECS),
            min_rate: DEFAULT_BODY_MIN_RATE,
            max_concurrent: DEFAULT_MAX_CONCURRENT_UPLOADS,
            max_memory: DEFAULT_MAX_UPLOAD_MEMORY,
            wait: Duration::from_secs(DEFAULT_UPLOAD_WAIT_SECS),
        }
    }
}

/// Why a body was refused or cut, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing arrived for the idle timeout.
    Idle,
    /// Nothing arrived for the busy idle timeout, while the relay was busy.
    IdleBusy,
    /// Slower than the minimum rate.
    Slow,
    /// No upload slot within the wait.
    NoSlot,
    /// No room in the upload memory within the wait.
    NoMemory,
}

impl Refusal {
    const ALL: [Refusal; 5] = [
        Refusal::Idle,
        Refusal::IdleBusy,
        Refusal::Slow,
        Refusal::NoSlot,
        Refusal::NoMemory,
    ];

    /// The label in `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Idle => "idle",
            Refusal::IdleBusy => "idle_busy",
            Refusal::Slow => "slow",
            Refusal::NoSlot => "no_slot",
            Refusal::NoMemory => "no_memory",
        }
    }

    /// The answer to the client.
    fn error(self, limits: &UploadLimits) -> ApiError {
        match self {
            Refusal::Idle | Refusal::IdleBusy | Refusal::Slow => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "The request body arrived too slowly or stopped arriving, so the relay stopped waiting for it. Nothing was stored; send it again.",
            )
            .closing(),
            Refusal::NoSlot | Refusal::NoMemory => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "The relay is receiving too many uploads right now. Nothing was stored; send it again after the time in Retry-After.",
            )
            .retry_after(retry_after_secs(limits))
            .closing(),
        }
    }
}

/// The `Retry-After` of a `503 busy`: long enough for stalled bodies to be
/// cut while the relay is busy, never less than a few seconds.
fn retry_after_secs(limits: &UploadLimits) -> u64 {
    limits.busy_idle_timeout.as_secs().saturating_mul(2).max(5)
}

/// The gate every request body goes through, one per relay.
pub struct Uploads {
    limits: UploadLimits,
    slots: Arc<Semaphore>,
    memory: Arc<Semaphore>,
    refused: [AtomicU64; Refusal::ALL.len()],
    read: AtomicU64,
    read_bytes: AtomicU64,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A body that was read whole, with the slot and the memory it holds until
/// it is dropped (so the memory of a request still being handled counts).
pub struct Body {
    bytes: Vec<u8>,
    _slot: Option<OwnedSemaphorePermit>,
    _memory: Option<OwnedSemaphorePermit>,
}

impl Body {
    /// The bytes, giving back the slot and the memory reservation (for a
    /// body handed on elsewhere, e.g. upstream).
    pub fn into_vec(self) -> Vec<u8> {
        self.bytes
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// A request's body, kept alive until its answer has been sent
/// ([`hold_body`]).
pub struct HeldBody {
    _payload: Rc<RefCell<Payload>>,
}

/// An answer's body that keeps the request's body alive (see [`hold_body`])
/// until actix drops it, after its last byte: actix decides then whether to
/// close the connection for a request body left unread.
pub struct Holding<B> {
    body: B,
    _held: Option<HeldBody>,
}

impl<B> Holding<B> {
    /// `body`, holding `held` until it is dropped.
    pub fn new(body: B, held: Option<HeldBody>) -> Self {
        Holding { body, _held: held }
    }
}

impl<B: actix_web::body::MessageBody + Unpin> actix_web::body::MessageBody for Holding<B> {
    type Error = B::Error;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<actix_web::web::Bytes, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// The body as handlers see it: the same stream, shared with [`HeldBody`].
struct SharedBody(Rc<RefCell<Payload>>);

impl futures_util::Stream for SharedBody {
    type Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match self.0.try_borrow_mut() {
            Ok(mut p) => std::pin::Pin::new(&mut *p).poll_next(cx),
            Err(_) => std::task::Poll::Ready(None),
        }
    }
}

/// Takes the body of `req` so that it outlives its handler: wrap the
/// answer's body in [`Holding`] with the returned value, and the request's
/// body is dropped only once the answer has been sent. actix closes a connection whose body
/// is alive and unfinished when the answer goes out; a body dropped
/// earlier (by a handler that refused it, or that never reads one) it
/// instead reads to the end, discarding it, with no time limit — a client
/// sending a chunked body and stalling kept the connection open for as
/// long as it liked. `None` for a request without a body.
pub fn hold_body(req: &mut ServiceRequest) -> Option<HeldBody> {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        return None;
    }
    let shared = Rc::new(RefCell::new(payload));
    let stream: std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>,
                >,
        >,
    > = Box::pin(SharedBody(shared.clone()));
    req.set_payload(Payload::from(stream));
    Some(HeldBody { _payload: shared })
}

/// Semaphores hold at most this many permits (tokio's limit is
/// `usize::MAX >> 3`); a budget above it is clamped.
const MAX_PERMITS: usize = u32::MAX as usize;

impl Uploads {
    /// A gate with `limits`.
    pub fn new(limits: UploadLimits) -> Uploads {
        Uploads {
            slots: Arc::new(Semaphore::new(limits.max_concurrent.clamp(1, MAX_PERMITS))),
            memory: Arc::new(Semaphore::new(limits.max_memory.clamp(1, MAX_PERMITS))),
            limits,
            refused: Default::default(),
            read: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &UploadLimits {
        &self.limits
    }

    /// Bodies being read (or still held by their handler) now.
    pub fn in_flight(&self) -> usize {
        self.limits
            .max_concurrent
            .clamp(1, MAX_PERMITS)
            .saturating_sub(self.slots.available_permits())
    }

    /// Bytes held by bodies being read (or still held by their handler) now.
    pub fn memory_in_use(&self) -> usize {
        self.limits
            .max_memory
            .clamp(1, MAX_PERMITS)
            .saturating_sub(self.memory.available_permits())
    }

    /// Whether three quarters of the slots or of the memory are in use.
    pub fn busy(&self) -> bool {
        let slots = self.limits.max_concurrent.clamp(1, MAX_PERMITS);
        let memory = self.limits.max_memory.clamp(1, MAX_PERMITS);
        self.slots.available_permits() < slots / 4 || self.memory.available_permits() < memory / 4
    }

    /// Bodies cut or refused so far, by reason.
    pub fn refusal_counts(&self) -> [(Refusal, u64); Refusal::ALL.len()] {
        let mut out = [(Refusal::Idle, 0); Refusal::ALL.len()];
        for ((slot, why), c) in out.iter_mut().zip(Refusal::ALL).zip(&self.refused) {
            *slot = (why, c.load(Ordering::Relaxed));
        }
        out
    }

    fn refuse(&self, why: Refusal) -> ApiError {
        if let Some(c) = Refusal::ALL
            .iter()
            .position(|r| *r == why)
            .and_then(|i| self.refused.get(i))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
        why.error(&self.limits)
    }

    /// Reads a body of at most `limit` bytes from `payload` within these
    /// limits. `declared` is the request's `Content-Length`, already checked
    /// against `limit` by the caller.
    pub async fn read<P, E>(
        &self,
        payload: &mut P,
        limit: usize,
        declared: Option<u64>,
    ) -> Result<Body, ApiError>
    where
        P: futures_util::Stream<Item = Result<actix_web::web::Bytes, E>> + Unpin,
    {
        use futures_util::StreamExt;
        // One budget of waiting per request, for a slot and for memory
        // together: a body the relay keeps waiting holds what it has, so
        // its waits must not add up without bound.
        let wait_until = Instant::now() + self.limits.wait;
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                match tokio::time::timeout_at(wait_until, self.slots.clone().acquire_owned()).await
                {
                    Ok(Ok(p)) => p,
                    _ => return Err(self.refuse(Refusal::NoSlot)),
                }
            }
        };
        let start = Instant::now();
        let mut last = start;
        // Time spent waiting for memory: the client's, not counted against
        // its rate.
        let mut waited = Duration::ZERO;
        let mut memory: Option<OwnedSemaphorePermit> = None;
        // Grown in steps no larger than what arrived, so an attacker's
        // declared length reserves nothing it did not send.
        let mut body: Vec<u8> = Vec::new();
        let expected = declared.and_then(|d| usize::try_from(d).ok());
        loop {
            let now = Instant::now();
            let busy = self.busy();
            let idle = if busy {
                self.limits.busy_idle_timeout.min(self.limits.idle_timeout)
            } else {
                self.limits.idle_timeout
            };
            if now.duration_since(last) >= idle {
                return Err(self.refuse(if busy {
                    Refusal::IdleBusy
                } else {
                    Refusal::Idle
                }));
            }
            if self.limits.min_rate > 0 {
                let past_grace = now
                    .duration_since(start)
                    .saturating_sub(waited)
                    .saturating_sub(self.limits.idle_timeout);
                let owed = past_grace.as_secs_f64() * self.limits.min_rate as f64;
                if (body.len() as f64) < owed {
                    return Err(self.refuse(Refusal::Slow));
                }
            }
            let wake = (last + idle).min(now + TICK);
            let chunk = match tokio::time::timeout_at(wake, payload.next()).await {
                Err(_) => continue,
                Ok(None) => break,
                Ok(Some(Err(_))) => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "incomplete_body",
                        "The request body could not be read completely.",
                    ));
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            if chunk.is_empty() {
                continue;
            }
            if body.len().saturating_add(chunk.len()) > limit {
                return Err(ApiError::too_large(limit));
            }
            let need = u32::try_from(chunk.len()).map_err(|_| ApiError::too_large(limit))?;
            let more = match self.memory.clone().try_acquire_many_owned(need) {
                Ok(p) => p,
                Err(_) => {
                    let began = Instant::now();
                    let got = tokio::time::timeout_at(
                        wait_until,
                        self.memory.clone().acquire_many_owned(need),
                    )
                    .await;
                    waited += began.elapsed();
                    match got {
                        Ok(Ok(p)) => p,
                        _ => return Err(self.refuse(Refusal::NoMemory)),
                    }
                }
            };
            match &mut memory {
                Some(held) => held.merge(more),
                None => memory = Some(more),
            }
            if body.capacity() < body.len() + chunk.len() {
                // At most twice what arrived (so a declared length alone
                // allocates nothing), never past the declared length or the
                // limit.
                let needed = body.len() + chunk.len();
                let target = needed
                    .max(body.len().saturating_mul(2))
                    .min(expected.unwrap_or(limit).max(needed))
                    .min(limit);
                body.reserve_exact(target.saturating_sub(body.len()));
            }
            body.extend_from_slice(&chunk);
            last = Instant::now();
        }
        self.read.fetch_add(1, Ordering::Relaxed);
        self.read_bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        Ok(Body {
            bytes: body,
            _slot: Some(slot),
            _memory: memory,
        })
    }

    /// The counters and gauges, in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP amparo_uploads_refused_total Request bodies cut or refused, by reason (idle, idle_busy, slow: 408 body_timeout; no_slot, no_memory: 503 busy)."
        );
        let _ = writeln!(out, "# TYPE amparo_uploads_refused_total counter");
        for (r, c) in Refusal::ALL.iter().zip(&self.refused) {
            let _ = writeln!(
                out,
                "amparo_uploads_refused_total{{reason=\"{}\"}} {}",
                r.name(),
                load(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP amparo_uploads_read_total Request bodies read whole."
        );
        let _ = writeln!(out, "# TYPE amparo_uploads_read_total counter");
        let _ = writeln!(out, "amparo_uploads_read_total {}", load(&self.read));
        let _ = writeln!(
            out,
            "# HELP amparo_upload_bytes_read_total Bytes of request bodies read whole."
        );
        let _ = writeln!(out, "# TYPE amparo_upload_bytes_read_total counter");
        let _ = writeln!(
            out,
            "amparo_upload_bytes_read_total {}",
            load(&self.read_bytes)
        );
        let gauges: [(&str, &str, usize); 4] = [
            (
                "amparo_uploads_in_flight",
                "Request bodies being read or handled now.",
                self.in_flight(),
            ),
            (
                "amparo_uploads_max",
                "Most request bodies read at once (max_concurrent_uploads).",
                self.limits.max_concurrent,
            ),
            (
                "amparo_upload_memory_bytes",
                "Bytes held by request bodies being read or handled now.",
                self.memory_in_use(),
            ),
            (
                "amparo_upload_memory_limit_bytes",
                "Most bytes held by request bodies at once (max_upload_memory).",
                self.limits.max_memory,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use actix_web::web::Bytes;

    type Chunk = Result<Bytes, std::io::Error>;

    fn limits() -> UploadLimits {
        UploadLimits {
            idle_timeout: Duration::from_secs(3),
            busy_idle_timeout: Duration::from_secs(1),
            min_rate: 1000,
            max_concurrent: 4,
            max_memory: 1000,
            wait: Duration::from_millis(200),
        }
    }

    /// A body stream fed by the test.
    fn channel() -> (
        tokio::sync::mpsc::UnboundedSender<Chunk>,
        impl futures_util::Stream<Item = Chunk> + Unpin,
    ) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Chunk>();
        let stream = Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        (tx, stream)
    }

    #[tokio::test(start_paused = true)]
    async fn a_whole_body_is_read_and_its_memory_given_back() {
        let up = Uploads::new(limits());
        let (tx, mut rx) = channel();
        tx.send(Ok(Bytes::from_static(b"hello "))).unwrap();
        tx.send(Ok(Bytes::from_static(b"world"))).unwrap();
        drop(tx);
        let body = up.read(&mut rx, 100, Some(11)).await.unwrap();
        assert_eq!(&*body, b"hello world");
        assert_eq!(up.memory_in_use(), 11);
        assert_eq!(up.in_flight(), 1);
        drop(body);
        assert_eq!(up.memory_in_use(), 0);
        assert_eq!(up.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_is_cut_after_the_idle_timeout() {
        let up = Uploads::new(limits());
        let (tx, mut rx) = channel();
        tx.send(Ok(Bytes::from_static(b"part"))).unwrap();
        let start = Instant::now();
        let e = up.read(&mut rx, 100, Some(50)).await.err().unwrap();
        assert_eq!(e.code, "body_timeout");
        assert_eq!(e.status, StatusCode::REQUEST_TIMEOUT);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_secs(3) && took < Duration::from_millis(3300),
            "{took:?}"
        );
        assert_eq!(up.memory_in_use(), 0, "its memory came back");
        assert_eq!(up.in_flight(), 0);
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_is_cut_by_the_rate_floor() {
        let up = Uploads::new(limits());
        let (tx, mut rx) = channel();
        // 10 bytes every half second: never idle, far below 1000 B/s.
        let feeder = tokio::spawn(async move {
            loop {
                if tx.send(Ok(Bytes::from_static(b"0123456789"))).is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        let start = Instant::now();
        let e = up.read(&mut rx, 1_000_000, None).await.err().unwrap();
        assert_eq!(e.code, "body_timeout");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_secs(3) && took < Duration::from_secs(4),
            "cut soon after the grace period: {took:?}"
        );
        feeder.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn beyond_the_slots_a_body_gets_busy() {
        let up = Arc::new(Uploads::new(limits()));
        let mut held = Vec::new();
        for _ in 0..4 {
            let (tx, mut rx) = channel();
            tx.send(Ok(Bytes::from_static(b"x"))).unwrap();
            drop(tx);
            held.push(up.read(&mut rx, 10, None).await.unwrap());
        }
        let (tx, mut rx) = channel();
        drop(tx);
        let e = up.read(&mut rx, 10, None).await.err().unwrap();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::SERVICE_UNAVAILABLE, "busy")
        );
        assert_eq!(e.retry_after, Some(5));
        held.pop();
        let (tx, mut rx) = channel();
        drop(tx);
        assert!(up.read(&mut rx, 10, None).await.is_ok(), "a slot came back");
    }

    #[tokio::test(start_paused = true)]
    async fn the_memory_budget_holds_and_busy_shortens_the_idle_timeout() {
        let up = Arc::new(Uploads::new(limits()));
        // 800 of the 1000 bytes held by a finished body: busy.
        let (tx, mut rx) = channel();
        tx.send(Ok(Bytes::from(vec![0u8; 800]))).unwrap();
        drop(tx);
        let big = up.read(&mut rx, 1000, None).await.unwrap();
        assert!(up.busy());
        // Another that needs 300 bytes: no room within the wait.
        let (tx, mut rx) = channel();
        tx.send(Ok(Bytes::from(vec![0u8; 300]))).unwrap();
        let e = up.read(&mut rx, 1000, None).await.err().unwrap();
        assert_eq!(e.code, "busy");
        drop(tx);
        // A stalled one is cut after the busy timeout (1 s), not 3 s.
        let (tx, mut rx) = channel();
        tx.send(Ok(Bytes::from_static(b"abc"))).unwrap();
        let start = Instant::now();
        let e = up.read(&mut rx, 1000, None).await.err().unwrap();
        assert_eq!(e.code, "body_timeout");
        assert!(start.elapsed() < Duration::from_millis(1300));
        drop((tx, big));
        assert_eq!(up.memory_in_use(), 0);
        let mut text = String::new();
        up.render(&mut text);
        assert!(text.contains("amparo_uploads_refused_total{reason=\"idle_busy\"} 1"));
        assert!(text.contains("amparo_uploads_refused_total{reason=\"no_memory\"} 1"));
        assert!(text.contains("amparo_uploads_read_total 1"));
    }
}
