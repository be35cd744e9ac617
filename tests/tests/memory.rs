//! Memory (issue 9): peak resident memory (VmHWM) of a survivor's profile
//! holding 10,000 queued reports while it syncs them, and of the relay
//! process under the load of its benchmark (32 clients, 1 KiB-class
//! envelopes, one per request and then 100 per request).
//!
//! Benchmarks, not tests of size: they print figures and assert only that
//! the work was done.
//!
//! ```sh
//! cargo build --release -p amparo-relay
//! AMPARO_RELAY_BIN=target/release/amparo-relay \
//!     cargo test --release -p amparo-tests --test memory -- --ignored --nocapture --test-threads 1
//! ```
//!
//! The client's reports are written in this process; the profile is then
//! opened and synced in a fresh process (this test binary run again for
//! `client_sync_in_a_fresh_process`), whose peak (`/proc/self/status`) is
//! reset with `/proc/self/clear_refs` between opening and syncing so each
//! phase's peak is its own; it includes the test harness and the tokio
//! runtime (a few MiB).
//! The relay is a child process, read from `/proc/<pid>/status`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amparo_core::drafts::DraftForm;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::InnerHeader;
use amparo_tests::crash::{http_request, post_batch};
use amparo_tests::{Relay, focal_point_entry, now};

/// (VmHWM, VmRSS) in KiB of a process.
fn memory_kib(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[test]
#[ignore = "a memory benchmark (minutes); see the file's header"]
fn client_profile_with_10000_reports_syncing() {
    const REPORTS: usize = 10_000;
    let relay = Relay::start(None, &[]);
    let dir = tempfile::tempdir().unwrap();
    let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let fp = focal_point_entry("fp", focal.public());
    {
        let profile = Profile::create(dir.path(), "2468", KdfParams::PHONE).unwrap();
        let started = Instant::now();
        for i in 0..REPORTS {
            let d = profile
                .create_draft(&DraftForm {
                    text: format!("informe {i}: ")
                        .chars()
                        .chain("lo que pasó, dónde y cuándo. ".chars().cycle())
                        .take(1900)
                        .collect(),
                    ..DraftForm::default()
                })
                .unwrap();
            profile.send_draft(&d, &fp, false, now()).unwrap();
        }
        assert_eq!(profile.outbox_len().unwrap(), REPORTS);
        println!(
            "{REPORTS} reports (~2 KiB, 4 KiB class) queued in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let db_bytes: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!("profile on disk: {}", mib(db_bytes / 1024));

    // Open and sync in a fresh process (this test binary again, running only
    // `client_sync_in_a_fresh_process`), so that nothing this process kept
    // from writing the reports counts.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "client_sync_in_a_fresh_process",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DIR, dir.path())
        .env(CHILD_RELAY, relay.url(""))
        .env(
            CHILD_KEY,
            amparo_protocol::b64::encode(relay.receipt_key.as_bytes()),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.find("MEMORY ").map(|at| &l[at + 7..]))
        .unwrap_or_else(|| panic!("no figures from the child:\n{stdout}"));
    let figure = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    assert_eq!(figure("delivered"), REPORTS as u64);
    println!(
        "fresh process: resident at start {}; peak while opening the profile (Argon2id, {} MiB, {} passes; {} ms) {}, resident once open {}",
        mib(figure("start")),
        KdfParams::PHONE.memory_kib / 1024,
        KdfParams::PHONE.iterations,
        figure("open_millis"),
        mib(figure("open")),
        mib(figure("opened"))
    );
    println!(
        "resident sampled at each progress report: up to {} while uploading, up to {} while reading replies",
        mib(figure("upload_rss")),
        mib(figure("replies_rss"))
    );
    println!(
        "peak while syncing {REPORTS} reports ({:.1} s: upload in requests sized by the link, then the reply mailboxes \
         {} per request): {} (resident after: {})",
        figure("millis") as f64 / 1000.0,
        amparo_protocol::mailboxes::MAX_ENTRIES,
        mib(figure("sync")),
        mib(figure("after"))
    );
    println!(
        "process peak over its whole life: {}",
        mib(figure("open").max(figure("sync")))
    );
}

const CHILD_DIR: &str = "AMPARO_MEMORY_CHILD_PROFILE";
const CHILD_RELAY: &str = "AMPARO_MEMORY_CHILD_RELAY";
const CHILD_KEY: &str = "AMPARO_MEMORY_CHILD_RELAY_KEY";

/// The second half of `client_profile_with_10000_reports_syncing`, run by it
/// in a fresh process (does nothing when run otherwise). Prints one line of
/// figures in KiB: resident at start, peak while opening, peak while
/// syncing (peak reset after opening), resident after.
#[test]
#[ignore = "run by client_profile_with_10000_reports_syncing in its own process"]
fn client_sync_in_a_fresh_process() {
    let (Ok(dir), Ok(url), Ok(key)) = (
        std::env::var(CHILD_DIR),
        std::env::var(CHILD_RELAY),
        std::env::var(CHILD_KEY),
    ) else {
        return;
    };
    let relay_key = amparo_protocol::primitives::ed25519::VerifyingKey(
        amparo_protocol::b64::decode_array::<32>(&key, "relay key").unwrap(),
    );
    let (_, start) = memory_kib("self");
    reset_peak();
    let opening = Instant::now();
    let profile = Profile::open(std::path::Path::new(&dir), "2468").unwrap();
    let open_millis = opening.elapsed().as_millis();
    let (open, opened) = memory_kib("self");
    reset_peak();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = RelayClient::new(&RelayConfig::new(url)).unwrap();
    let started = Instant::now();
    // Resident size sampled at each progress report, per phase.
    let (mut upload_rss, mut replies_rss) = (0, 0);
    let summary = rt
        .block_on(profile.sync(&client, &[relay_key], now, &mut |p| {
            let (_, rss) = memory_kib("self");
            match p {
                amparo_core::survivor::SyncProgress::Upload { .. } => {
                    upload_rss = upload_rss.max(rss)
                }
                _ => replies_rss = replies_rss.max(rss),
            }
        }))
        .unwrap();
    let millis = started.elapsed().as_millis();
    let (sync, after) = memory_kib("self");
    assert_eq!(profile.outbox_len().unwrap(), 0);
    println!(
        "MEMORY start={start} open={open} open_millis={open_millis} opened={opened} sync={sync} upload_rss={upload_rss} \
         replies_rss={replies_rss} after={after} millis={millis} delivered={}",
        summary.delivered
    );
}

fn sealed(focal: &RecipientKeys, n: usize) -> Vec<Envelope> {
    let mut e = SystemEntropy::new();
    (0..n)
        .map(|i| {
            let h = InnerHeader::new(&mut e, now()).unwrap();
            let body = vec![(i % 251) as u8; 900];
            Envelope::seal(&focal.public(), Purpose::Report, &h, &body, &mut e).unwrap()
        })
        .collect()
}

/// Drives `clients` threads posting batches of `per_request` fresh envelopes
/// for `secs` seconds; returns the envelopes accepted.
fn load(
    relay: &Relay,
    pool: Arc<Vec<Envelope>>,
    clients: usize,
    per_request: usize,
    secs: u64,
) -> u64 {
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let addr = relay.addr;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (pool, next, accepted) = (pool.clone(), next.clone(), accepted.clone());
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    let start = next.fetch_add(per_request as u64, Ordering::Relaxed) as usize;
                    let Some(batch) = pool.get(start..start + per_request) else {
                        break;
                    };
                    let (status, _) = post_batch(addr, batch).unwrap();
                    assert_eq!(status, 200);
                    accepted.fetch_add(per_request as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    accepted.load(Ordering::Relaxed)
}

#[test]
#[ignore = "a memory benchmark (about a minute); see the file's header"]
fn relay_under_benchmark_load() {
    let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let pool = Arc::new(sealed(&focal, 60_000));
    for backend in amparo_tests::backends() {
        let relay = Relay::start(backend.database_url(), &[]);
        let pid = relay.pid().to_string();
        let (_, rss_start) = memory_kib(&pid);
        // Fresh envelopes for each phase: offsets into the pool.
        let single = load(&relay, Arc::new(pool[..20_000].to_vec()), 32, 1, 5);
        let (hwm_single, _) = memory_kib(&pid);
        let batched = load(&relay, Arc::new(pool[20_000..].to_vec()), 32, 100, 5);
        let (hwm, rss_end) = memory_kib(&pid);
        let (status, _) = http_request(relay.addr, "GET", "/healthz", &[], b"").unwrap();
        assert_eq!(status, 200);
        assert!(single > 0 && batched > 0);
        println!(
            "relay on {}: resident at start {}; after 5 s of 32 clients x 1 envelope/request ({single} envelopes) peak {}; \
             after 5 s of 32 clients x 100 envelopes/request ({batched} envelopes) peak {}, resident {}",
            backend.name(),
            mib(rss_start),
            mib(hwm_single),
            mib(hwm),
            mib(rss_end)
        );
    }
}
