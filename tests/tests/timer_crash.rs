//! Check-in timers survive crashes (issue 20): alerts are held by a relay
//! that is then killed with SIGKILL again and again while its clock runs
//! hours ahead (`--test-clock-skew-hours`, so hours pass without waiting),
//! in the middle of its release passes. Every alert due is released into
//! its focal point's mailbox exactly once, none before its hour, none that
//! a check-in moved past the hours the relays saw, none cancelled. On
//! SQLite, and on PostgreSQL with two relays on one database.
//!
//! `cargo test` runs a few cycles; the full run (`AMPARO_CRASH_CYCLES`,
//! default 25, against the release relay):
//!
//! ```sh
//! cargo build --release -p amparo-relay
//! AMPARO_RELAY_BIN=target/release/amparo-relay \
//! AMPARO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo test -p amparo-tests --test timer_crash -- --ignored --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use amparo_protocol::Entropy;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::timer::{CheckIn, Hold};
use amparo_tests::crash::{fetch_all, http_request, take_data_dir};
use amparo_tests::{Backend, Relay, backends, now};

/// Alerts held per release hour, for the hours 1 to 4 after the start
/// (`AMPARO_TIMER_ALERTS`, default 30: a pass moves 64 per transaction).
fn per_hour() -> usize {
    std::env::var("AMPARO_TIMER_ALERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

fn random_u64(e: &mut SystemEntropy) -> u64 {
    let mut b = [0u8; 8];
    e.fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

fn seal(to: &RecipientKeys, e: &mut SystemEntropy) -> Envelope {
    let h = InnerHeader::new(e, now()).unwrap();
    Envelope::seal(&to.public(), Purpose::Report, &h, b"alerta", e).unwrap()
}

fn post(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    let (status, body) = http_request(addr, "POST", path, &[], body).unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A relay on `dir` (or a new one) whose clock runs `skew` hours ahead.
fn start(dir: Option<tempfile::TempDir>, db: &Option<String>, skew: u32) -> Relay {
    let skew = format!("--test-clock-skew-hours={skew}");
    let dir = dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
    Relay::start_in(dir, db.clone(), &[&skew])
}

fn metric(relay: &Relay, name: &str) -> Option<u64> {
    let (status, body) = http_request(relay.addr, "GET", "/metrics", &[], b"").ok()?;
    if status != 200 {
        return None;
    }
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// What the alerts are meant to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Released at this hour.
    Due(u32),
    /// Moved by a check-in past every hour the relays see.
    Moved,
    /// Cancelled.
    Cancelled,
}

struct Report {
    backend: &'static str,
    cycles: usize,
    cut: usize,
    due: usize,
    found: usize,
    early: usize,
    duplicated: usize,
    unexpected: usize,
    elapsed: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} kill -9 cycles ({} cut a release pass midway); alerts due {}, released {}, early {}, duplicated {}, moved or cancelled yet released {} ({:.1} s)",
            self.backend,
            self.cycles,
            self.cut,
            self.due,
            self.found,
            self.early,
            self.duplicated,
            self.unexpected,
            self.elapsed.as_secs_f64()
        )
    }
}

fn run(backend: &Backend, cycles: usize) -> Report {
    let started = Instant::now();
    let db = backend.database_url();
    // Two relays on one database on PostgreSQL; on SQLite one (its file is
    // one process's).
    let pair = db.is_some();
    let mut e = SystemEntropy::new();
    let focal = RecipientKeys::generate(&mut e).unwrap();
    let mut relay = start(None, &db, 0);
    let h0 = now().hours();
    let mut fates: HashMap<[u8; 16], Fate> = HashMap::new();
    for k in 1..=4u32 {
        for i in 0..per_hour() {
            let key = SigningKey::generate(&mut e).unwrap();
            let env = seal(&focal, &mut e);
            let id = env.id().0;
            let hold = Hold::sign(&key, h0 + k, env);
            let (status, body) = post(relay.addr, "/v1/timers", &hold.encode());
            assert_eq!(status, 200, "hold: {body}");
            let fate = match i % 6 {
                0 => {
                    let ci = CheckIn::postpone(&key, 1, h0 + 7);
                    let (status, body) = post(relay.addr, "/v1/timers/check-in", &ci.encode());
                    assert_eq!(status, 200, "check-in: {body}");
                    Fate::Moved
                }
                1 => {
                    let ci = CheckIn::cancel(&key, 1);
                    let (status, body) = post(relay.addr, "/v1/timers/check-in", &ci.encode());
                    assert_eq!(status, 200, "cancel: {body}");
                    Fate::Cancelled
                }
                _ => Fate::Due(h0 + k),
            };
            fates.insert(id, fate);
        }
    }
    // The latest hour any relay has seen.
    let mut seen_hour = now().hours();
    let mut early = 0;
    // Reads the mailbox: counts alerts released before their hour, and
    // returns how many are there.
    let check = |relay: &Relay, seen_hour: u32, early: &mut usize| {
        let all = fetch_all(relay.addr, &focal);
        for (_, env) in &all {
            if let Some(Fate::Due(h)) = fates.get(&env.id().0)
                && *h > seen_hour
            {
                *early += 1;
            }
        }
        all.len()
    };
    let due_by = |hour: u32| {
        fates
            .values()
            .filter(|f| matches!(f, Fate::Due(h) if *h <= hour))
            .count()
    };
    // Cycles whose kill fell between two of a pass's transactions (some
    // released, not all that were due): the crash the test is about.
    let mut cut = 0;
    let mut released = 0;
    for cycle in 0..cycles {
        let skew = 1 + (cycle % 4) as u32;
        relay.kill();
        relay = start(Some(take_data_dir(&mut relay)), &db, skew);
        let mut other = pair.then(|| start(None, &db, skew));
        // Killed somewhere in its first release passes.
        std::thread::sleep(Duration::from_millis(random_u64(&mut e) % 30));
        relay.kill();
        if let Some(o) = other.as_mut() {
            std::thread::sleep(Duration::from_millis(random_u64(&mut e) % 40));
            o.kill();
        }
        let hour = now().hours() + skew;
        seen_hour = seen_hour.max(hour);
        // None early: read at the system's hour.
        relay = start(Some(take_data_dir(&mut relay)), &db, 0);
        let now_released = check(&relay, seen_hour, &mut early);
        if now_released > released && now_released < due_by(hour) {
            cut += 1;
        }
        released = now_released;
    }
    // Let the last passes finish: every due alert released, the moved ones
    // still held, the cancelled ones forgotten.
    relay.kill();
    relay = start(Some(take_data_dir(&mut relay)), &db, 4);
    let moved = fates.values().filter(|f| **f == Fate::Moved).count() as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&relay, "amparo_timers") != Some(moved) {
        assert!(Instant::now() < deadline, "the release pass did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    seen_hour = seen_hour.max(now().hours() + 4);
    relay.kill();
    relay = start(Some(take_data_dir(&mut relay)), &db, 0);
    let mut count: HashMap<[u8; 16], usize> = HashMap::new();
    for (_, env) in fetch_all(relay.addr, &focal) {
        *count.entry(env.id().0).or_default() += 1;
    }
    check(&relay, seen_hour, &mut early);
    let due: HashSet<[u8; 16]> = fates
        .iter()
        .filter(|(_, f)| matches!(f, Fate::Due(_)))
        .map(|(id, _)| *id)
        .collect();
    Report {
        backend: backend.name(),
        cycles,
        cut,
        due: due.len(),
        found: count.keys().filter(|id| due.contains(*id)).count(),
        early,
        duplicated: count.values().filter(|n| **n > 1).count(),
        unexpected: count.keys().filter(|id| !due.contains(*id)).count(),
        elapsed: started.elapsed(),
    }
}

fn run_all(cycles: usize) {
    for backend in backends() {
        let r = run(&backend, cycles);
        println!("{r}");
        assert!(
            r.found == r.due && r.early == 0 && r.duplicated == 0 && r.unexpected == 0,
            "{r}"
        );
    }
}

#[test]
fn due_alerts_are_released_once_across_kill_9() {
    run_all(6);
}

#[test]
#[ignore = "the full run: 25+ kill -9 cycles per backend (see the file's header)"]
fn due_alerts_are_released_once_across_many_kill_9() {
    run_all(
        std::env::var("AMPARO_CRASH_CYCLES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(25),
    );
}
