//! Relay throughput benchmark (a program that prints figures, not a timed test).
//!
//! Starts the relay in this process on loopback — on SQLite in a temporary
//! directory, and on PostgreSQL when `AMPARO_TEST_POSTGRES_URL` is set — and,
//! in the same run, a bare actix-web route that reads the body and does
//! nothing. At each of several concurrencies, clients post 1 KiB envelopes
//! one per request to each; then 100 envelopes per request to the relay. Prints envelopes/s, p50/p99
//! latency and the ratio to the bare route, and the CPU time per request
//! split by thread (load generator, HTTP workers, main thread with the group
//! committer, SQLite's connection threads).
//!
//! ```sh
//! AMPARO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p amparo-relay --bench relay -- [seconds per run, default 5] [clients ..., default 32 128 512]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope;
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::primitives::sha256;
use amparo_protocol::wire;
use amparo_relay::http::{Limits, system_clock};
use amparo_relay::store::{PgStore, SqliteStore, Store};
use amparo_relay::{RelayOptions, serve};

/// Size of one benchmark envelope: a 1 KiB padded plaintext, sealed.
const ENVELOPE_LEN: usize = 1024 + envelope::OVERHEAD;

/// Random-looking bytes that every benchmark envelope starts from, made once
/// so that building an envelope costs the load generator a copy, not hashing.
fn template() -> &'static [u8] {
    static TEMPLATE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let mut out = Vec::with_capacity(ENVELOPE_LEN + 32);
        let mut block = 0u64;
        while out.len() < ENVELOPE_LEN {
            out.extend_from_slice(&sha256(&[b"template", &block.to_be_bytes()]));
            block += 1;
        }
        out.truncate(ENVELOPE_LEN);
        out
    })
}

/// A framing-valid 1 KiB-class envelope with unique bytes (the relay cannot
/// tell it from a sealed one: it never opens envelopes), for one of 64
/// mailboxes. Its number is written into the body, so its id is unique.
fn fake_envelope(n: u64) -> Vec<u8> {
    let mut out = template().to_vec();
    out[0] = 1;
    out[1] = 1;
    out[2..14].copy_from_slice(&sha256(&[b"mailbox", &(n % 64).to_be_bytes()])[..12]);
    out[14..22].copy_from_slice(&n.to_be_bytes());
    out
}

struct Run {
    /// CPU time of the whole process during the run, and of the load
    /// generator's thread alone.
    cpu: Cpu,
    requests: u64,
    envelopes: u64,
    seconds: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs the clients on a thread of their own, so they do not share the
/// relay's main thread (where its group committer runs).
async fn drive(
    url: String,
    seconds: u64,
    clients: usize,
    per_request: u64,
    counter: Arc<AtomicU64>,
) -> Run {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let before = threads_cpu();
    let process_before = process_cpu();
    let spawned = std::thread::Builder::new()
        .name("loadgen".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let own = thread_cpu();
            let mut run = rt.block_on(drive_here(url, seconds, clients, per_request, counter));
            run.cpu.loadgen = thread_cpu() - own;
            let _ = tx.send(run);
        });
    spawned.unwrap();
    let mut run = rx.await.unwrap();
    run.cpu.total = process_cpu() - process_before;
    let after = threads_cpu();
    for (name, ns) in after {
        let was = before.get(&name).copied().unwrap_or(0.0);
        run.cpu.threads.push((name, ns - was));
    }
    run
}

#[derive(Default)]
struct Cpu {
    total: f64,
    loadgen: f64,
    threads: Vec<(String, f64)>,
}

/// CPU seconds of the calling thread.
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ns| ns / 1e9)
        .unwrap_or(0.0)
}

/// CPU seconds of the whole process (threads that ended included).
fn process_cpu() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// CPU seconds of the live threads, by kind.
fn threads_cpu() -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let pid = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in dir.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let comm = comm.trim();
        let name = if task.file_name().to_string_lossy() == pid {
            "main+committer"
        } else if comm.starts_with("actix") {
            "http workers"
        } else if comm.starts_with("sqlx-sqlite") {
            "sqlite threads"
        } else if comm == "loadgen" {
            continue;
        } else {
            "other"
        };
        let ns = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        *out.entry(name.to_string()).or_insert(0.0) += ns / 1e9;
    }
    out
}

async fn drive_here(
    url: String,
    seconds: u64,
    clients: usize,
    per_request: u64,
    counter: Arc<AtomicU64>,
) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = client.clone();
        let url = url.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let first = counter.fetch_add(per_request, Ordering::Relaxed);
                let envs: Vec<Vec<u8>> = (first..first + per_request).map(fake_envelope).collect();
                let body = wire::encode_batch(envs.iter().map(|e| e.as_slice()));
                let t = Instant::now();
                let r = client.post(&url).body(body).send().await.unwrap();
                assert!(r.status().is_success(), "status {}", r.status());
                let _ = r.bytes().await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let seconds = start.elapsed().as_secs_f64();
    all.sort();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Run {
        cpu: Cpu::default(),
        requests: all.len() as u64,
        envelopes: all.len() as u64 * per_request,
        seconds,
        p50: pick(0.50),
        p99: pick(0.99),
    }
}

fn start_relay<S: Store>(store: S) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = serve(
        store,
        SigningKey::generate(&mut SystemEntropy::new()).unwrap(),
        RelayOptions {
            limits: Limits {
                max_body_bytes: 8 << 20,
                max_batch: 256,
                max_page: 500,
            },
            coordinator_key: None,
            workers: None,
            metrics: Default::default(),
            metrics_listener: None,
            // No cap is reached (the usage is still read and written in
            // every group commit, so its cost is measured): a run stores
            // more than one mailbox's default cap.
            quotas: Some(Arc::new(amparo_relay::quota::Quotas::new(
                amparo_relay::quota::StorageLimits::UNLIMITED,
                None,
                None,
            ))),
            admission_max_effort: 0,
            tokens: Default::default(),
            timers: Default::default(),
        },
        system_clock(),
        listener,
    )
    .unwrap();
    tokio::spawn(server);
    format!("http://{addr}/v1/envelopes")
}

fn start_bare() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(|| {
        App::new().route(
            "/v1/envelopes",
            web::post().to(|body: web::Bytes| async move {
                let _ = body.len();
                HttpResponse::Ok().finish()
            }),
        )
    })
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://{addr}/v1/envelopes")
}

fn line(name: &str, r: &Run, bare: Option<f64>) {
    let rate = r.envelopes as f64 / r.seconds;
    let req_rate = r.requests as f64 / r.seconds;
    let ratio = bare
        .map(|b| format!("{:>5.0}%", 100.0 * req_rate / b))
        .unwrap_or_else(|| "     -".into());
    println!(
        "{name:<34} {rate:>10.0} env/s {req_rate:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  vs bare {ratio}",
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3
    );
    let per = |s: f64| s * 1e6 / r.requests.max(1) as f64;
    let mut parts = format!("load generator {:.0}", per(r.cpu.loadgen));
    for (name, s) in &r.cpu.threads {
        if *s > 0.0005 {
            parts.push_str(&format!(", {name} {:.0}", per(*s)));
        }
    }
    println!(
        "{:<34} CPU {:.0} µs/request ({parts}); {:.2} cores busy",
        "",
        per(r.cpu.total),
        r.cpu.total / r.seconds
    );
}

#[actix_web::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let seconds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut levels: Vec<usize> = args.iter().skip(1).filter_map(|s| s.parse().ok()).collect();
    if levels.is_empty() {
        levels = vec![32, 128, 512];
    }
    let counter = Arc::new(AtomicU64::new(0));
    println!(
        "relay benchmark: {seconds} s per run, 1 KiB envelopes, loopback, concurrent clients {levels:?}"
    );

    let bare = start_bare();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = start_relay(SqliteStore::open_in(dir.path()).await.unwrap());
    let postgres = match std::env::var("AMPARO_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => {
            let db = amparo_tests::TestDb::create(&admin);
            let url = start_relay(PgStore::open(&db.url).await.unwrap());
            Some((db, url))
        }
        _ => None,
    };

    // (clients, bare req/s, SQLite env/s, PostgreSQL env/s)
    let mut table: Vec<(usize, f64, f64, Option<f64>)> = Vec::new();
    for &clients in &levels {
        println!("\n{clients} concurrent clients, 1 envelope per request");
        let b = drive(bare.clone(), seconds, clients, 1, counter.clone()).await;
        line("bare actix route", &b, None);
        let bare_rate = b.requests as f64 / b.seconds;
        let r = drive(sqlite.clone(), seconds, clients, 1, counter.clone()).await;
        line("relay, SQLite", &r, Some(bare_rate));
        let sqlite_rate = r.envelopes as f64 / r.seconds;
        let pg_rate = match &postgres {
            Some((_, url)) => {
                let r = drive(url.clone(), seconds, clients, 1, counter.clone()).await;
                line("relay, PostgreSQL", &r, Some(bare_rate));
                let rate = r.envelopes as f64 / r.seconds;
                println!(
                    "{:<34} {:>10.2}x SQLite's rate",
                    "PostgreSQL / SQLite",
                    rate / sqlite_rate
                );
                Some(rate)
            }
            None => None,
        };
        table.push((clients, bare_rate, sqlite_rate, pg_rate));
    }

    let clients = levels[0];
    println!("\n{clients} concurrent clients, 100 envelopes per request");
    let r = drive(sqlite, seconds, clients, 100, counter.clone()).await;
    line("relay, SQLite", &r, None);
    if let Some((_, url)) = &postgres {
        let r = drive(url.clone(), seconds, clients, 100, counter.clone()).await;
        line("relay, PostgreSQL", &r, None);
    }

    // The target compares durable accepts with the bare route under the
    // same load; the bare route's best rate at any load is printed beside
    // it, because on two cores the load generator limits the bare route
    // more as clients grow.
    println!("\nsummary, 1 envelope per request (durable accepts / bare route)");
    let best_bare = table.iter().map(|t| t.1).fold(0.0, f64::max);
    for (clients, bare_rate, sqlite_rate, pg_rate) in &table {
        let pg = pg_rate
            .map(|p| {
                format!(
                    "  PostgreSQL {:>3.0}% ({:.2}x SQLite)",
                    100.0 * p / bare_rate,
                    p / sqlite_rate
                )
            })
            .unwrap_or_default();
        println!(
            "{clients:>5} clients: SQLite {:>3.0}% of the bare route at this load, {:>3.0}% of its best ({best_bare:.0} req/s){pg}",
            100.0 * sqlite_rate / bare_rate,
            100.0 * sqlite_rate / best_bare,
        );
    }
    if postgres.is_none() {
        println!("(AMPARO_TEST_POSTGRES_URL not set: PostgreSQL not measured)");
    }
}
