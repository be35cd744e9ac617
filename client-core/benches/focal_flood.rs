//! A focal point's mailbox after a flood: how fast `fetch_mailbox` clears
//! junk envelopes (well formed, addressed to its mailbox, sealed to another
//! key) from a real relay process, with one real report among them; and the
//! floor: one X25519 per envelope on the cores this machine has (a program
//! that prints figures).
//!
//! ```sh
//! cargo build --release -p amparo-relay
//! cargo bench -p amparo-core --bench focal_flood -- 10000 5 600
//! #                          junk envelopes, rounds, bytes sealed in each
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use amparo_core::compose::seal_report;
use amparo_core::focal::CaseFilter;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::UnixTime;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{CIPHERTEXT_OFFSET, Envelope, Purpose};
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::{Language, Place, Report};
use amparo_protocol::wire::EnvelopeResult;
use amparo_tests::{Relay, now};

fn report(reply: &RecipientKeys) -> Report {
    Report {
        reads: Vec::new(),
        statistics_consent: false,
        age_band: None,
        reported_elsewhere: None,
        alert: None,
        v: 1,
        violence: vec![],
        violence_other: None,
        when: None,
        place: Place::default(),
        aggressors: vec![],
        aggressor_other: None,
        needs: vec![],
        language: Language::Es,
        text: "Me amenazan; necesito ayuda.".into(),
        attachments: vec![],
        reply_to: reply.public(),
        referral: None,
    }
}

/// `n` distinct junk envelopes for `to`'s mailbox: one sealed to another
/// key, then copies with a counter written into the ciphertext (each has
/// its own id; none opens; each still costs the focal point one X25519).
fn junk(to: &RecipientPublic, n: usize, body: usize, e: &mut SystemEntropy) -> Vec<Envelope> {
    let other = RecipientKeys::generate(e).unwrap();
    let forged_to = RecipientPublic {
        sealing_key: other.public().sealing_key,
        signing_key: to.signing_key,
    };
    let h = InnerHeader::new(e, UnixTime(1_790_000_000)).unwrap();
    let template = Envelope::seal(&forged_to, Purpose::Report, &h, &vec![b'x'; body], e)
        .unwrap()
        .into_bytes();
    (0..n as u64)
        .map(|i| {
            let mut b = template.clone();
            b[CIPHERTEXT_OFFSET..CIPHERTEXT_OFFSET + 8].copy_from_slice(&i.to_be_bytes());
            Envelope::from_bytes(b).unwrap()
        })
        .collect()
}

/// X25519 DH operations per second on `threads` threads at once.
fn dh_rate(threads: usize, for_time: Duration) -> f64 {
    let mut e = SystemEntropy::new();
    let keys = RecipientKeys::generate(&mut e).unwrap();
    let peer = RecipientKeys::generate(&mut e).unwrap().public();
    let peer = peer.sealing_public();
    let total: u64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let t = Instant::now();
                    let mut n = 0u64;
                    while t.elapsed() < for_time {
                        for _ in 0..100 {
                            black_box(keys.sealing().diffie_hellman(&peer).unwrap());
                        }
                        n += 100;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    total as f64 / for_time.as_secs_f64()
}

/// Envelopes opened (and refused) per second on `threads` threads, no
/// relay and no store: the opening part of a fetch alone.
fn open_rate(threads: usize, envelopes: &[Envelope], keys: &RecipientKeys) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for part in envelopes.chunks(envelopes.len().div_ceil(threads)) {
            s.spawn(move || {
                for env in part {
                    black_box(env.open(keys, &Purpose::FOR_FOCAL_POINT).is_err());
                }
            });
        }
    });
    envelopes.len() as f64 / t.elapsed().as_secs_f64()
}

/// CPU seconds (user + system, threads that ended included) of process
/// `pid` ("self" for this one).
fn cpu_of(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Uploads `envelopes`, four requests at a time of up to 256 envelopes or
/// 4 MiB each, as a flooding client would; returns how many the relay took
/// (a relay with storage caps refuses what is over a mailbox's cap).
async fn upload_all(client: &RelayClient, envelopes: &[Envelope]) -> usize {
    let size = envelopes.first().map_or(1, |e| e.as_bytes().len());
    let per = (4 * 1024 * 1024 / size).clamp(1, 256);
    let mut accepted = 0;
    for group in envelopes.chunks(4 * per) {
        let tasks: Vec<_> = group
            .chunks(per)
            .map(|batch| {
                let (client, batch) = (client.clone(), batch.to_vec());
                tokio::spawn(async move { client.upload(&batch).await })
            })
            .collect();
        for t in tasks {
            accepted += t
                .await
                .unwrap()
                .unwrap()
                .iter()
                .filter(|r| matches!(r, EnvelopeResult::Accepted(_)))
                .count();
        }
    }
    accepted
}

/// One round: a fresh relay and profile, the flood, the fetch. Returns
/// envelopes per second.
async fn round(n: usize, body: usize, keys: &RecipientKeys, floor: f64, cores: usize) -> f64 {
    let mut e = SystemEntropy::new();
    let relay = Relay::start(None, &[]);
    let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::create(dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let public = profile.create_focal_identity().unwrap();

    // The flood, with one real report after the first third of it.
    let flood = junk(&public, n, body, &mut e);
    let real = seal_report(
        &public,
        report(keys),
        &[],
        amparo_protocol::envelope::Compression::IfSmaller,
        &mut e,
        now(),
    )
    .unwrap();
    let t = Instant::now();
    let mut taken = upload_all(&client, &flood[..n / 3]).await;
    assert_eq!(upload_all(&client, &real.envelopes).await, 1);
    taken += upload_all(&client, &flood[n / 3..]).await;
    let up = t.elapsed().as_secs_f64();
    println!(
        "  flood: {n} junk envelopes of {} bytes + 1 report uploaded in {up:.2} s ({:.0}/s); \
         the relay took {taken} of the junk",
        flood[0].as_bytes().len(),
        n as f64 / up
    );
    drop(flood);

    let relay_pid = relay.pid().to_string();
    let cpu = (cpu_of("self"), cpu_of(&relay_pid));
    let t = Instant::now();
    let mut seen_report = None;
    let fetched = profile
        .fetch_mailbox(&client, now, &mut |f| {
            if seen_report.is_none() && f.reports > 0 {
                // Listed as soon as the progress says so.
                assert_eq!(profile.cases(&CaseFilter::default()).unwrap().len(), 1);
                seen_report = Some((t.elapsed(), f.fetched));
            }
        })
        .await
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let (client_cpu, relay_cpu) = (cpu_of("self") - cpu.0, cpu_of(&relay_pid) - cpu.1);
    let total = fetched.rejected + fetched.new_cases;
    assert_eq!(fetched.new_cases, 1, "{fetched:?}");
    assert_eq!(total, taken + 1, "{fetched:?}");
    let rate = total as f64 / secs;
    println!(
        "  fetch_mailbox: {total} envelopes in {secs:.2} s: {rate:.0} envelopes/s \
         = {:.0} % of the floor ({floor:.0} X25519/s on {cores} threads)",
        100.0 * rate / floor
    );
    println!(
        "  CPU per envelope: focal point {:.1} µs, relay {:.1} µs; {:.2} of {cores} cores busy",
        client_cpu * 1e6 / total as f64,
        relay_cpu * 1e6 / total as f64,
        (client_cpu + relay_cpu) / secs
    );
    if let Some((at, done)) = seen_report {
        println!(
            "  the report was filed and listed after {:.2} s, {done} envelopes in",
            at.as_secs_f64()
        );
    }
    println!(
        "  profile: {:.1} MiB on disk after the fetch",
        dir_size(dir.path()) as f64 / (1024.0 * 1024.0)
    );
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok());
    // 10,000: a relay's default cap on a focal point's mailbox (raise it
    // with AMPARO_MAILBOX_MAX_ENVELOPES to flood more in one round).
    let n = args.next().unwrap_or(10_000);
    let rounds = args.next().unwrap_or(5);
    // Bytes of junk sealed in each envelope: 600 makes the 1 KiB class
    // (1,086-byte envelopes); 60000 the 64 KiB class.
    let body = args.next().unwrap_or(600);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let mut e = SystemEntropy::new();
    let keys = RecipientKeys::generate(&mut e).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut rates, mut shares) = (Vec::new(), Vec::new());
    for r in 1..=rounds {
        // The floor, measured just before each round (the machine is
        // shared): one X25519 per envelope, on every core.
        let one = dh_rate(1, Duration::from_secs(1));
        let all = dh_rate(cores, Duration::from_secs(1));
        let sample = junk(&keys.public(), (n / 3).min(10_000), body, &mut e);
        let open_all = open_rate(cores, &sample, &keys);
        drop(sample);
        println!(
            "round {r}: floor X25519 {one:.0}/s on 1 thread, {all:.0}/s on {cores}; \
             opening junk alone (no relay, no store) {open_all:.0}/s on {cores}"
        );
        let rate = runtime.block_on(round(n, body, &keys, all, cores));
        rates.push(rate);
        shares.push(100.0 * rate / all);
    }
    println!(
        "median of {rounds} rounds: {:.0} envelopes/s, {:.0} % of the floor",
        median(rates),
        median(shares)
    );
}
