//! Crash durability of the relay (issue 9): concurrent clients upload
//! envelopes while the relay process is killed with SIGKILL at random moments
//! and restarted on the same data (SQLite file or PostgreSQL database).
//!
//! Every client behaves like a phone: it keeps a batch until it holds a
//! verified receipt for every envelope in it, and sends the same batch again
//! after a failure (the relay deduplicates). At the end the relay is started
//! once more and every focal point's mailbox is read in full: every envelope
//! with a verified receipt must be there, once.
//!
//! The clients speak plain HTTP/1.1 over `std::net` (one connection per
//! request, as a phone behind a flaky link would), so a kill in the middle of
//! a request is an ordinary connection error for them.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use amparo_protocol::Entropy;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::primitives::ed25519::VerifyingKey;
use amparo_protocol::request::{self, RequestProof};
use amparo_protocol::wire::{self, EnvelopeResult};

use crate::{Backend, Relay, now};

/// How hard to shake the relay.
#[derive(Debug, Clone, Copy)]
pub struct CrashConfig {
    /// Kill-and-restart cycles.
    pub cycles: usize,
    /// Concurrent uploading clients.
    pub clients: usize,
    /// Focal points (mailboxes) the envelopes are spread over.
    pub mailboxes: usize,
    /// Most envelopes per upload (each batch holds 1..=this).
    pub max_batch: usize,
    /// The relay runs for a random time in this range (ms) before each kill.
    pub uptime_ms: (u64, u64),
}

impl CrashConfig {
    /// A few cycles, for `cargo test`.
    pub fn bounded() -> CrashConfig {
        CrashConfig {
            cycles: 3,
            clients: 3,
            mailboxes: 3,
            max_batch: 8,
            uptime_ms: (150, 500),
        }
    }

    /// The full run: at least 20 cycles.
    pub fn full(cycles: usize) -> CrashConfig {
        CrashConfig {
            cycles: cycles.max(20),
            clients: 6,
            mailboxes: 4,
            max_batch: 16,
            uptime_ms: (100, 800),
        }
    }
}

/// What a run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashReport {
    pub backend: String,
    pub cycles: usize,
    /// Upload requests answered 200.
    pub uploads_answered: u64,
    /// Upload requests that failed on the connection (the relay died under them) or got 503.
    pub uploads_failed: u64,
    /// Distinct envelopes the clients hold a verified receipt for.
    pub receipted: usize,
    /// Distinct envelopes sent at least once.
    pub sent: usize,
    /// Envelopes in the mailboxes at the end.
    pub found: usize,
    /// Receipted envelopes missing at the end (must be 0).
    pub lost: usize,
    /// Envelopes present more than once (must be 0).
    pub duplicated: usize,
    /// Envelopes found that no client ever sent (must be 0).
    pub unknown: usize,
    pub elapsed: Duration,
}

impl CrashReport {
    /// Nothing lost, nothing twice, nothing invented, and the run did something.
    pub fn holds(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.unknown == 0
            && self.receipted > 0
            && self.found >= self.receipted
    }
}

impl std::fmt::Display for CrashReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: cycles {}, uploads answered {} / failed {}, envelopes sent {}, receipted {}, \
             found {}, lost {}, duplicated {}, unknown {} ({:.1} s)",
            self.backend,
            self.cycles,
            self.uploads_answered,
            self.uploads_failed,
            self.sent,
            self.receipted,
            self.found,
            self.lost,
            self.duplicated,
            self.unknown,
            self.elapsed.as_secs_f64()
        )
    }
}

/// One HTTP/1.1 request on a new connection; returns the status and body.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    http_exchange(addr, method, target, headers, body).map(|(status, _, body)| (status, body))
}

/// [`http_request`], also returning the answer's header lines.
pub fn http_exchange(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    parse_response(&answer)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "cut response"))
}

fn parse_response(answer: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end]).ok()?;
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let body = &answer[end + 4..];
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    match length {
        Some(n) if body.len() >= n => Some((status, head.to_string(), body[..n].to_vec())),
        Some(_) => None,
        None => Some((status, head.to_string(), body.to_vec())),
    }
}

/// Uploads `envelopes` in one request.
pub fn post_batch(addr: SocketAddr, envelopes: &[Envelope]) -> std::io::Result<(u16, Vec<u8>)> {
    let body = wire::encode_batch(envelopes.iter().map(|e| e.as_bytes()));
    http_request(addr, "POST", "/v1/envelopes", &[], &body)
}

/// Reads a whole mailbox with signed requests; returns every envelope in
/// cursor order (with its cursor).
pub fn fetch_all(addr: SocketAddr, keys: &RecipientKeys) -> Vec<(u64, Envelope)> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let target = format!(
            "/v1/mailboxes/{}/envelopes?after={after}&limit=500",
            keys.mailbox()
        );
        let proof = RequestProof::sign(
            keys.signing(),
            "GET",
            &target,
            b"",
            now(),
            &mut SystemEntropy::new(),
        )
        .unwrap();
        let (status, body) = http_request(
            addr,
            "GET",
            &target,
            &[(request::HEADER, proof.to_header())],
            b"",
        )
        .unwrap();
        assert_eq!(status, 200, "fetch: {}", String::from_utf8_lossy(&body));
        let page = wire::decode_page(&body).unwrap();
        let Some(last) = page.last() else {
            return all;
        };
        after = last.0;
        all.extend(page);
    }
}

fn random_u64(e: &mut SystemEntropy) -> u64 {
    let mut b = [0u8; 8];
    e.fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

/// A sealed report of a random small size to `to`.
fn seal(to: &RecipientKeys, e: &mut SystemEntropy) -> Envelope {
    let h = InnerHeader::new(e, now()).unwrap();
    let len = (random_u64(e) % 900) as usize;
    let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    Envelope::seal(&to.public(), Purpose::Report, &h, &body, e).unwrap()
}

#[derive(Default)]
struct Ledger {
    sent: HashSet<[u8; 16]>,
    receipted: HashSet<[u8; 16]>,
}

/// The crash run measures durability, not the storage caps: it sends far
/// more than a mailbox's default cap (10,000) to each of a few mailboxes, and
/// treats any refusal as a failure. Raised caps keep `mailbox_full` out of it.
const UNCAPPED: &[&str] = &["--mailbox-max-envelopes=100000000"];

/// Moves the data directory out of a killed relay, so the next one can use it.
pub fn take_data_dir(relay: &mut Relay) -> tempfile::TempDir {
    std::mem::replace(&mut relay.data_dir, tempfile::tempdir().unwrap())
}

/// Runs the crash harness on `backend`. Panics on any protocol failure
/// (a rejected envelope, a receipt that does not verify, a changed relay key);
/// the caller asserts [`CrashReport::holds`].
pub fn run(backend: &Backend, cfg: CrashConfig) -> CrashReport {
    let started = Instant::now();
    let db = backend.database_url();
    let mut relay = Relay::start(db.clone(), UNCAPPED);
    let relay_key: VerifyingKey = relay.receipt_key;
    let addr = Arc::new(RwLock::new(relay.addr));
    let focal: Arc<Vec<RecipientKeys>> = Arc::new(
        (0..cfg.mailboxes)
            .map(|_| RecipientKeys::generate(&mut SystemEntropy::new()).unwrap())
            .collect(),
    );
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));

    let clients: Vec<_> = (0..cfg.clients)
        .map(|_| {
            let (addr, focal, ledger, stop) =
                (addr.clone(), focal.clone(), ledger.clone(), stop.clone());
            let (answered, failed) = (answered.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut e = SystemEntropy::new();
                let mut pending: Vec<Envelope> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if pending.is_empty() {
                        let n = 1 + (random_u64(&mut e) % cfg.max_batch as u64) as usize;
                        pending = (0..n)
                            .map(|_| {
                                let to = &focal[(random_u64(&mut e) % focal.len() as u64) as usize];
                                seal(to, &mut e)
                            })
                            .collect();
                        let mut l = ledger.lock().unwrap();
                        l.sent.extend(pending.iter().map(|e| e.id().0));
                    }
                    let target = *addr.read().unwrap();
                    match post_batch(target, &pending) {
                        Ok((200, body)) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                            let results = wire::decode_results(&body).unwrap();
                            assert_eq!(results.len(), pending.len());
                            let mut l = ledger.lock().unwrap();
                            for (env, r) in pending.iter().zip(results) {
                                let EnvelopeResult::Accepted(receipt) = r else {
                                    panic!("a valid envelope was refused: {r:?}");
                                };
                                assert_eq!(receipt.envelope_id, env.id());
                                receipt
                                    .verify(&relay_key)
                                    .expect("receipt verifies with the relay's key");
                                l.receipted.insert(env.id().0);
                            }
                            pending.clear();
                        }
                        Ok((503, _)) | Err(_) => {
                            // The relay died under the request (or its storage
                            // did): keep the batch and send it again.
                            failed.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Ok((status, body)) => panic!(
                            "upload answered {status}: {}",
                            String::from_utf8_lossy(&body)
                        ),
                    }
                }
            })
        })
        .collect();

    let mut e = SystemEntropy::new();
    for _ in 0..cfg.cycles {
        let (lo, hi) = cfg.uptime_ms;
        let up = lo + random_u64(&mut e) % (hi - lo).max(1);
        std::thread::sleep(Duration::from_millis(up));
        relay.kill();
        let dir = take_data_dir(&mut relay);
        relay = Relay::start_in(dir, db.clone(), UNCAPPED);
        assert_eq!(
            relay.receipt_key, relay_key,
            "the receipt key survives the crash"
        );
        *addr.write().unwrap() = relay.addr;
    }
    // Let the clients see the last relay for a moment, then stop them and
    // crash it once more, so the end state is read from a fresh process.
    std::thread::sleep(Duration::from_millis(cfg.uptime_ms.0));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    relay.kill();
    let dir = take_data_dir(&mut relay);
    relay = Relay::start_in(dir, db, UNCAPPED);

    let ledger = ledger.lock().unwrap();
    let mut seen: HashMap<[u8; 16], usize> = HashMap::new();
    let mut cursors = HashSet::new();
    for keys in focal.iter() {
        for (cursor, env) in fetch_all(relay.addr, keys) {
            assert_eq!(
                env.mailbox(),
                keys.mailbox(),
                "an envelope in the wrong mailbox"
            );
            assert!(cursors.insert(cursor), "cursor {cursor} given twice");
            *seen.entry(env.id().0).or_default() += 1;
        }
    }
    let found = seen.len();
    CrashReport {
        backend: backend.name().to_string(),
        cycles: cfg.cycles,
        uploads_answered: answered.load(Ordering::Relaxed),
        uploads_failed: failed.load(Ordering::Relaxed),
        receipted: ledger.receipted.len(),
        sent: ledger.sent.len(),
        found,
        lost: ledger
            .receipted
            .iter()
            .filter(|id| !seen.contains_key(*id))
            .count(),
        duplicated: seen.values().filter(|n| **n > 1).count(),
        unknown: seen.keys().filter(|id| !ledger.sent.contains(*id)).count(),
        elapsed: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_and_cut_ones_do_not() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc";
        assert_eq!(
            parse_response(ok),
            Some((
                200,
                "HTTP/1.1 200 OK\r\ncontent-length: 3".to_string(),
                b"abc".to_vec()
            ))
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc"),
            None
        );
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n"), None);
    }
}
