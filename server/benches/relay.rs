//! Relay throughput benchmark (a program that prints figures, not a timed test).
//!
//! Starts the relay in this process on loopback — on SQLite in a temporary
//! directory, and on PostgreSQL when `AMPARO_TEST_POSTGRES_URL` is set — and,
//! in the same run, a bare actix-web route that reads the body and does
//! nothing. Concurrent clients post 1 KiB envelopes one per request to each,
//! then 100 envelopes per request to the relay. Prints envelopes/s, p50/p99
//! latency and the ratio to the bare route, and the CPU time per request
//! split by thread (load generator, HTTP workers, main thread with the group
//! committer, SQLite's connection threads).
//!
//! ```sh
//! AMPARO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p amparo-relay --bench relay -- [seconds per run, default 5] [clients, default 32]
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

/// A framing-valid 1 KiB-class envelope with unique bytes (the relay cannot
/// tell it from a sealed one: it never opens envelopes).
fn fake_envelope(n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024 + envelope::OVERHEAD);
    out.extend_from_slice(&[1, 1]);
    out.extend_from_slice(&sha256(&[b"mailbox", &(n % 64).to_be_bytes()])[..12]);
    let mut block = 0u64;
    while out.len() < 1024 + envelope::OVERHEAD {
        let h = sha256(&[&n.to_be_bytes(), &block.to_be_bytes()]);
        let take = (1024 + envelope::OVERHEAD - out.len()).min(32);
        out.extend_from_slice(&h[..take]);
        block += 1;
    }
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
    let clients: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(32);
    let counter = Arc::new(AtomicU64::new(0));
    println!(
        "relay benchmark: {seconds} s per run, {clients} concurrent clients, 1 KiB envelopes, loopback"
    );

    let bare = start_bare();
    let b = drive(bare, seconds, clients, 1, counter.clone()).await;
    line("bare actix route (1 per request)", &b, None);
    let bare_rate = b.requests as f64 / b.seconds;

    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open_in(dir.path()).await.unwrap();
    let url = start_relay(sqlite);
    let r = drive(url.clone(), seconds, clients, 1, counter.clone()).await;
    line("relay, SQLite (1 per request)", &r, Some(bare_rate));
    let sqlite_rate = r.envelopes as f64 / r.seconds;
    let r = drive(url, seconds, clients, 100, counter.clone()).await;
    line("relay, SQLite (100 per request)", &r, None);

    match std::env::var("AMPARO_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => {
            let db = amparo_tests::TestDb::create(&admin);
            let pg = PgStore::open(&db.url).await.unwrap();
            let url = start_relay(pg);
            let r = drive(url.clone(), seconds, clients, 1, counter.clone()).await;
            line("relay, PostgreSQL (1 per request)", &r, Some(bare_rate));
            println!(
                "{:<34} {:>10.2}x SQLite's rate",
                "PostgreSQL / SQLite",
                (r.envelopes as f64 / r.seconds) / sqlite_rate
            );
            let r = drive(url, seconds, clients, 100, counter.clone()).await;
            line("relay, PostgreSQL (100 per request)", &r, None);
        }
        _ => println!("(AMPARO_TEST_POSTGRES_URL not set: PostgreSQL not measured)"),
    }
}
