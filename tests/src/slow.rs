//! Slow clients (issue 15.2): many connections that declare a large body,
//! send part of it and stall, while honest phones upload, against a relay
//! process whose resident memory is sampled from `/proc/<pid>/status`.
//!
//! Bounded: every connection is to the relay's loopback address, the attack
//! lasts [`SlowConfig::attack`] and then every connection is dropped; the
//! run stops by itself after [`SlowConfig::settle`] more seconds of memory
//! samples. It needs two file descriptors per connection (one here, one in
//! the relay): [`fd_limit`] says how many this process may open, and
//! [`SlowConfig::fit_to_fd_limit`] sizes a run to it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::wire::{self, EnvelopeResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::crash::post_batch;
use crate::now;

/// What the attack does.
#[derive(Debug, Clone)]
pub struct SlowConfig {
    /// Connections stalling at once.
    pub connections: usize,
    /// The body length each declares.
    pub declared: usize,
    /// The bytes of body each sends before it stalls.
    pub sent: usize,
    /// Every n-th connection sends its body chunked (no Content-Length);
    /// 0: none.
    pub chunked_every: usize,
    /// How long the attack lasts.
    pub attack: Duration,
    /// Whether a connection the relay closed is opened again at once (so
    /// that `connections` stall all the time), or left closed.
    pub reconnect: bool,
    /// How often an honest phone starts an upload during the attack.
    pub honest_interval: Duration,
    /// How long an honest upload may keep trying (it tries again after a
    /// refusal or a cut connection, as a phone does).
    pub honest_patience: Duration,
    /// How long memory is sampled after the attack.
    pub settle: Duration,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct SlowReport {
    /// Stalling connections opened.
    pub opened: u64,
    /// Of those, answered `408`.
    pub cut_408: u64,
    /// Answered `503`.
    pub refused_503: u64,
    /// Closed without an answer, or with another one.
    pub closed_other: u64,
    /// Still open when the attack ended.
    pub open_at_end: u64,
    /// The longest time between a connection's stall and the relay closing
    /// it (or the end of the attack, for one still open then).
    pub longest_stall: Duration,
    /// Honest uploads: whether each got its receipt, after how many
    /// attempts, in how long.
    pub honest: Vec<(bool, u32, Duration)>,
    /// The relay's resident memory (KiB) before the attack.
    pub rss_before_kib: u64,
    /// Its highest sample during the attack.
    pub rss_peak_kib: u64,
    /// Samples (seconds since the attack began, KiB) during and after.
    pub rss_samples: Vec<(f64, u64)>,
    /// Its peak resident memory (VmHWM) at the end.
    pub hwm_kib: u64,
}

impl SlowReport {
    /// Honest uploads that got their receipt.
    pub fn honest_ok(&self) -> usize {
        self.honest.iter().filter(|h| h.0).count()
    }

    /// Honest uploads that got their receipt at the first attempt.
    pub fn honest_first_try(&self) -> usize {
        self.honest.iter().filter(|h| h.0 && h.1 == 1).count()
    }

    /// The slowest honest upload that got its receipt.
    pub fn honest_slowest(&self) -> Duration {
        self.honest
            .iter()
            .filter(|h| h.0)
            .map(|h| h.2)
            .max()
            .unwrap_or_default()
    }

    /// The last sample at least `secs` after the attack began.
    pub fn rss_at(&self, secs: f64) -> Option<u64> {
        self.rss_samples
            .iter()
            .find(|(t, _)| *t >= secs)
            .map(|(_, k)| *k)
    }

    /// The last sample.
    pub fn rss_last_kib(&self) -> u64 {
        self.rss_samples.last().map(|s| s.1).unwrap_or(0)
    }
}

/// (VmRSS, VmHWM) of a process, in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The most files this process may open (its soft limit), from
/// `/proc/self/limits`.
pub fn fd_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(1024)
}

impl SlowConfig {
    /// The same run with no more connections than this process (and the
    /// relay, which inherits its limit) can open with room to spare; says
    /// so on standard error when it had to shrink.
    pub fn fit_to_fd_limit(mut self) -> SlowConfig {
        let room = fd_limit().saturating_sub(256) as usize;
        if self.connections > room {
            crate::say_uncaptured(&format!(
                "note: open-file limit {} allows {room} stalling connections, not {}; run with a higher `ulimit -n` for the full run",
                fd_limit(),
                self.connections
            ));
            self.connections = room;
        }
        self
    }
}

/// One sealed envelope of about 1 KiB to a new focal point, in a batch.
fn honest_batch() -> Vec<Envelope> {
    let mut e = SystemEntropy::new();
    let to = RecipientKeys::generate(&mut e).unwrap();
    let h = InnerHeader::new(&mut e, now()).unwrap();
    vec![Envelope::seal(&to.public(), Purpose::Report, &h, &[7u8; 700], &mut e).unwrap()]
}

/// How long an honest phone waits after `503 busy`.
const RETRY_AFTER_BUSY: Duration = Duration::from_secs(5);

/// One honest upload: tries until it holds a receipt or `patience` runs
/// out. Returns (receipted, attempts, time).
fn honest_upload(addr: SocketAddr, patience: Duration) -> (bool, u32, Duration) {
    let batch = honest_batch();
    let start = Instant::now();
    let mut attempts = 0;
    while start.elapsed() < patience {
        attempts += 1;
        let answer = post_batch(addr, &batch);
        if let Ok((200, body)) = &answer
            && let Ok(results) = wire::decode_results(body)
            && matches!(results.first(), Some(EnvelopeResult::Accepted(_)))
        {
            return (true, attempts, start.elapsed());
        }
        // As a phone does: after 503 busy, the relay's Retry-After (5 s with
        // its default settings); after a broken connection, a second.
        let pause = match answer {
            Ok((503, _)) => RETRY_AFTER_BUSY,
            _ => Duration::from_secs(1),
        };
        std::thread::sleep(pause.min(patience.saturating_sub(start.elapsed())));
    }
    (false, attempts, start.elapsed())
}

#[derive(Default)]
struct Tally {
    opened: AtomicU64,
    cut_408: AtomicU64,
    refused_503: AtomicU64,
    closed_other: AtomicU64,
    open_at_end: AtomicU64,
    longest_stall_ms: AtomicU64,
}

/// One stalling connection, again and again until `stop`.
async fn staller(
    addr: SocketAddr,
    cfg: Arc<SlowConfig>,
    chunked: bool,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let body = vec![0u8; cfg.sent];
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tally.opened.fetch_add(1, Ordering::Relaxed);
        let head = if chunked {
            "POST /v1/envelopes HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_string()
        } else {
            format!(
                "POST /v1/envelopes HTTP/1.1\r\nHost: relay\r\nContent-Length: {}\r\n\r\n",
                cfg.declared
            )
        };
        let mut wire_body = head.into_bytes();
        if chunked {
            wire_body.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            wire_body.extend_from_slice(&body);
            wire_body.extend_from_slice(b"\r\n");
        } else {
            wire_body.extend_from_slice(&body);
        }
        // The relay may stop reading (no slot, no room) and close: a write
        // that fails is such a close.
        let _ = s.write_all(&wire_body).await;
        let stalled = Instant::now();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let closed = loop {
            tokio::select! {
                r = s.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break true,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                },
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    if stop.load(Ordering::Relaxed) {
                        break false;
                    }
                }
            }
        };
        // A connection still open at the end counts with its stall so far.
        let ms = stalled.elapsed().as_millis() as u64;
        tally.longest_stall_ms.fetch_max(ms, Ordering::Relaxed);
        if !closed {
            tally.open_at_end.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let status = std::str::from_utf8(&answer)
            .ok()
            .and_then(|a| a.split(' ').nth(1))
            .and_then(|s| s.parse::<u16>().ok());
        match status {
            Some(408) => tally.cut_408.fetch_add(1, Ordering::Relaxed),
            Some(503) => tally.refused_503.fetch_add(1, Ordering::Relaxed),
            _ => tally.closed_other.fetch_add(1, Ordering::Relaxed),
        };
        if !cfg.reconnect {
            return;
        }
    }
}

/// Runs the attack against the relay at `addr` (a loopback address) whose
/// process is `pid`.
pub fn run(addr: SocketAddr, pid: u32, cfg: SlowConfig) -> SlowReport {
    assert!(addr.ip().is_loopback(), "the harness attacks loopback only");
    let cfg = Arc::new(cfg);
    let (rss_before, _) = memory_kib(pid);
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let samples: Arc<Mutex<Vec<(f64, u64)>>> = Arc::default();
    let began = Instant::now();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (samples, sampling) = (samples.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                let (rss, _) = memory_kib(pid);
                samples
                    .lock()
                    .unwrap()
                    .push((began.elapsed().as_secs_f64(), rss));
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let attack = {
        let (cfg, tally, stop) = (cfg.clone(), tally.clone(), stop.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut tasks = Vec::new();
                for i in 0..cfg.connections {
                    let chunked = cfg.chunked_every > 0 && i % cfg.chunked_every == 0;
                    tasks.push(tokio::spawn(staller(
                        addr,
                        cfg.clone(),
                        chunked,
                        tally.clone(),
                        stop.clone(),
                    )));
                }
                tokio::time::sleep(cfg.attack).await;
                stop.store(true, Ordering::Relaxed);
                for t in tasks {
                    let _ = t.await;
                }
            });
        })
    };
    // Honest phones, one upload per interval, each on its own thread.
    let mut honest = Vec::new();
    while began.elapsed() + cfg.honest_interval < cfg.attack {
        std::thread::sleep(cfg.honest_interval);
        let patience = cfg.honest_patience;
        honest.push(std::thread::spawn(move || honest_upload(addr, patience)));
    }
    attack.join().unwrap();
    let attack_end = began.elapsed().as_secs_f64();
    let honest: Vec<_> = honest.into_iter().map(|h| h.join().unwrap()).collect();
    let settle_until = began + cfg.attack + cfg.settle;
    while Instant::now() < settle_until {
        std::thread::sleep(Duration::from_millis(100));
    }
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let samples = samples.lock().unwrap().clone();
    let rss_peak_kib = samples
        .iter()
        .filter(|(t, _)| *t <= attack_end)
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let (_, hwm) = memory_kib(pid);
    SlowReport {
        opened: tally.opened.load(Ordering::Relaxed),
        cut_408: tally.cut_408.load(Ordering::Relaxed),
        refused_503: tally.refused_503.load(Ordering::Relaxed),
        closed_other: tally.closed_other.load(Ordering::Relaxed),
        open_at_end: tally.open_at_end.load(Ordering::Relaxed),
        longest_stall: Duration::from_millis(tally.longest_stall_ms.load(Ordering::Relaxed)),
        honest,
        rss_before_kib: rss_before,
        rss_peak_kib,
        rss_samples: samples,
        hwm_kib: hwm,
    }
}
