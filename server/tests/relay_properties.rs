//! Properties the people relying on the relay need: it forgets who talked to
//! it, it keeps what it acknowledged through a crash, several relays on one
//! PostgreSQL behave as one, and unacknowledged envelopes expire.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::wire::{self, EnvelopeResult};
use amparo_protocol::{UnixTime, request};
use amparo_relay::http::{Clock, Limits};
use amparo_relay::store::{SqliteStore, Store};
use amparo_relay::{RelayOptions, retention_pass, serve};
use common::*;

fn keys() -> RecipientKeys {
    RecipientKeys::generate(&mut SystemEntropy::new()).unwrap()
}

/// Sends a raw HTTP/1.1 request from a chosen loopback source address, so the
/// test knows the client's address and port exactly. Returns the status and
/// the client's port.
fn raw_request(relay: &Relay, source: &str, request_text: &[u8], body: &[u8]) -> (u16, u16) {
    let (status, port, _) = raw_exchange(relay, source, request_text, body);
    (status, port)
}

/// [`raw_request`], with the answer's bytes (head and body).
fn raw_exchange(
    relay: &Relay,
    source: &str,
    request_text: &[u8],
    body: &[u8],
) -> (u16, u16, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let stream = rt.block_on(socket.connect(relay.addr)).unwrap();
    let mut stream: TcpStream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    let port = stream.local_addr().unwrap().port();
    stream.write_all(request_text).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, port, answer)
}

/// The body of a raw answer (after the blank line).
fn body_of(answer: &[u8]) -> &[u8] {
    answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .and_then(|i| answer.get(i + 4..))
        .unwrap_or_default()
}

fn contains_port(haystack: &str, port: u16) -> bool {
    // A port is written down as part of an address or a field: `:38411`,
    // `port=38411`, `port: 38411`, `"38411"`. A bare number elsewhere (a
    // duration, a row count, a process id) is not the client's port, and
    // matching it made this test fail by chance.
    [
        format!(":{port}"),
        format!("={port}"),
        format!(": {port}"),
        format!("port {port}"),
        format!("\"{port}\""),
    ]
    .iter()
    .any(|form| {
        haystack.match_indices(form.as_str()).any(|(i, m)| {
            let after = haystack[i + m.len()..].chars().next();
            !after.is_some_and(|c| c.is_ascii_digit())
        })
    })
}

/// Everything the relay wrote down, as bytes: its log and every file in its
/// data directory (the SQLite database, WAL and shared memory).
fn everything_written(relay: &Relay) -> Vec<u8> {
    let mut all = relay.logs().into_bytes();
    for entry in std::fs::read_dir(relay.data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_keeps_no_trace_of_its_clients() {
    for backend in backends() {
        // Admission on, with a small mailbox cap, so that the challenge,
        // work and tokens go through the same search.
        let relay = Relay::start(
            backend.database_url(),
            &[
                "--log",
                "trace",
                "--mailbox-max-envelopes",
                "16",
                "--admission-max-effort",
                "16",
            ],
        );
        let focal = keys();
        let env = envelope_for(&focal, 500);
        let batch = wire::encode_batch([env.as_bytes()]);
        let agent = "CanaryPhone/7.31 (Amparo test; canary-agent-9271)";
        let mut ports = Vec::new();
        let (relay_ref, batch_ref) = (&relay, &batch);
        let upload = format!(
            "POST /v1/envelopes HTTP/1.1\r\nHost: {}\r\nUser-Agent: {agent}\r\nX-Forwarded-For: 10.9.8.7\r\nX-Canary: header-canary-5521\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            relay.addr,
            batch.len()
        );
        let (status, port) = tokio::task::block_in_place(|| {
            raw_request(relay_ref, "127.0.0.77", upload.as_bytes(), batch_ref)
        });
        assert_eq!(status, 200, "{}", backend.name());
        ports.push(port);
        // A signed fetch, also from the canary address.
        let target = format!(
            "/v1/mailboxes/{}/envelopes?after=0&limit=10",
            focal.mailbox()
        );
        let proof = sign(&focal, "GET", &target, b"", now());
        let fetch = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {agent}\r\n{}: {}\r\nConnection: close\r\n\r\n",
            relay.addr,
            request::HEADER,
            proof.to_header()
        );
        let (status, port) = tokio::task::block_in_place(|| {
            raw_request(relay_ref, "127.0.0.77", fetch.as_bytes(), b"")
        });
        assert_eq!(status, 200);
        ports.push(port);
        // A many-mailbox fetch (a phone's sync), also from the canary address.
        let many = amparo_protocol::mailboxes::sign_fetch(
            &[(
                amparo_protocol::mailboxes::FetchAuth::Key(focal.signing()),
                0,
            )],
            10,
            now(),
            &mut amparo_protocol::entropy::SystemEntropy::new(),
        )
        .unwrap();
        let many_head = format!(
            "POST /v1/mailboxes/fetch HTTP/1.1\r\nHost: {}\r\nUser-Agent: {agent}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            relay.addr,
            many.len()
        );
        let (status, port) = tokio::task::block_in_place(|| {
            raw_request(relay_ref, "127.0.0.77", many_head.as_bytes(), &many)
        });
        assert_eq!(status, 200);
        ports.push(port);
        // A check-in timer (PROTOCOL.md §17), from the canary address: a
        // hold, a check-in, a cancel of another. The relay keeps the
        // timer's id and hour, never its key or a signature.
        let timer = amparo_protocol::timer::new_timer_key(&mut SystemEntropy::new()).unwrap();
        let other = amparo_protocol::timer::new_timer_key(&mut SystemEntropy::new()).unwrap();
        let hour = now().hours();
        let holds = [
            amparo_protocol::timer::Hold::sign(&timer, hour + 5, envelope_for(&focal, 40)),
            amparo_protocol::timer::Hold::sign(&other, hour + 6, envelope_for(&focal, 41)),
        ];
        let check_ins = [
            amparo_protocol::timer::CheckIn::postpone(&timer, 1, hour + 9),
            amparo_protocol::timer::CheckIn::cancel(&other, 1),
        ];
        let mut bodies: Vec<(&str, Vec<u8>)> =
            holds.iter().map(|h| ("/v1/timers", h.encode())).collect();
        bodies.extend(
            check_ins
                .iter()
                .map(|c| ("/v1/timers/check-in", c.encode().to_vec())),
        );
        for (path, body) in &bodies {
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {agent}\r\nX-Canary: header-canary-5521\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                relay.addr,
                body.len()
            );
            let (status, port) = tokio::task::block_in_place(|| {
                raw_request(relay_ref, "127.0.0.77", head.as_bytes(), body)
            });
            assert_eq!(status, 200, "{}: {path}", backend.name());
            ports.push(port);
        }
        // Admission (PROTOCOL.md §14), from the canary address too: the
        // challenge, a mailbox pressed by eight at once, an upload refused
        // for want of work, one with a made-up token, one that pays.
        let get_challenge = format!(
            "GET /v1/admission HTTP/1.1\r\nHost: {}\r\nUser-Agent: {agent}\r\nConnection: close\r\n\r\n",
            relay.addr
        );
        let (status, port, answer) = tokio::task::block_in_place(|| {
            raw_exchange(relay_ref, "127.0.0.77", get_challenge.as_bytes(), b"")
        });
        assert_eq!(status, 200);
        ports.push(port);
        let challenge = amparo_protocol::admission::Challenge::decode(body_of(&answer)).unwrap();
        let pressed = keys();
        let post = |envs: &[&amparo_protocol::envelope::Envelope], extra: &str| {
            let body = wire::encode_batch(envs.iter().map(|e| e.as_bytes()));
            let head = format!(
                "POST /v1/envelopes HTTP/1.1\r\nHost: {}\r\nUser-Agent: {agent}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                relay_ref.addr,
                body.len()
            );
            tokio::task::block_in_place(|| {
                raw_request(relay_ref, "127.0.0.77", head.as_bytes(), &body)
            })
        };
        let eight: Vec<_> = (0..8).map(|i| envelope_for(&pressed, 100 + i)).collect();
        let (status, port) = post(&eight.iter().collect::<Vec<_>>(), "");
        assert_eq!(status, 200);
        ports.push(port);
        let one = envelope_for(&pressed, 300);
        let (status, port) = post(&[&one], "");
        assert_eq!(status, 429, "{}: work asked", backend.name());
        ports.push(port);
        let canary_token = "PrivateToken token=\"token-canary-6610\"";
        let (status, port) = post(&[&one], &format!("Authorization: {canary_token}\r\n"));
        assert_eq!(status, 429, "{}: a made-up token", backend.name());
        ports.push(port);
        let proof = amparo_protocol::admission::solve(
            &challenge,
            &[one.id()],
            16,
            &mut SystemEntropy::new(),
            &mut |_| true,
        )
        .unwrap()
        .proof
        .unwrap();
        let (status, port) = post(
            &[&one],
            &format!("Amparo-Admission: {}\r\n", proof.to_header()),
        );
        assert_eq!(status, 200, "{}: work paid", backend.name());
        ports.push(port);

        // And some bad requests, whose errors are logged.
        let bad = format!(
            "POST /v1/envelopes HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
        let (_, port) = tokio::task::block_in_place(|| {
            raw_request(relay_ref, "127.0.0.77", bad.as_bytes(), b"abc")
        });
        ports.push(port);

        // Give the log reader a moment, then search everything.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let logs = relay.logs();
        assert!(
            logs.contains("TRACE") || logs.contains("DEBUG"),
            "{}: expected a verbose log",
            backend.name()
        );
        let mut written = everything_written(&relay);
        if let Backend::Postgres(db) = &backend {
            written.extend(dump_postgres(&db.url).await);
        }
        let text = String::from_utf8_lossy(&written);
        for needle in [
            "127.0.0.77",
            "canary-agent-9271",
            "CanaryPhone",
            "header-canary-5521",
            "10.9.8.7",
            "token-canary-6610",
            &proof.to_header(),
        ] {
            assert!(
                !text.contains(needle),
                "{}: {needle:?} was written down",
                backend.name()
            );
        }
        assert!(
            !find(&written, &proof.encode()),
            "{}: the admission proof written",
            backend.name()
        );
        for (what, bytes) in [
            ("a timer key", timer.verifying_key().as_bytes().to_vec()),
            ("a timer key", other.verifying_key().as_bytes().to_vec()),
            ("a hold's signature", holds[0].signature.to_vec()),
            ("a check-in's signature", check_ins[0].signature.to_vec()),
            ("a cancel's signature", check_ins[1].signature.to_vec()),
        ] {
            assert!(
                !find(&written, &bytes),
                "{}: {what} written down",
                backend.name()
            );
        }
        assert!(
            !find(&written, &[127, 0, 0, 77]),
            "{}: binary client address written",
            backend.name()
        );
        for port in ports {
            assert!(
                !contains_port(&logs, port),
                "{}: client port {port} in the log",
                backend.name()
            );
        }
        // And no exact time: the log lines carry no timestamps.
        let year = format!("{}", 1970 + now().0 / 31_557_600);
        assert!(
            !logs.contains(&format!("{year}-")),
            "{}: a date in the log",
            backend.name()
        );
    }
}

/// Every table of a PostgreSQL database, as text.
async fn dump_postgres(url: &str) -> Vec<u8> {
    use sqlx::{Connection, Row};
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let mut out = Vec::new();
    for table in [
        "envelopes",
        "directory",
        "seen_requests",
        "timers",
        "relay_usage",
        "_sqlx_migrations",
    ] {
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SELECT t::text FROM {table} t"
        )))
        .fetch_all(&mut c)
        .await
        .unwrap();
        for r in rows {
            let s: String = r.try_get(0).unwrap();
            out.extend(s.into_bytes());
        }
    }
    out
}

#[tokio::test]
async fn acknowledged_envelopes_survive_kill_9() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let mut relay = Relay::start_in(dir, backend.database_url(), &[]);
        let c = client();
        let focal = keys();
        let envs: Vec<_> = (0..30).map(|i| envelope_for(&focal, i * 10)).collect();
        let results = post_batch(&c, &relay, &envs).await;
        assert!(
            results
                .iter()
                .all(|r| matches!(r, EnvelopeResult::Accepted(_)))
        );
        let key = relay.receipt_key;
        relay.kill();
        // Same data directory (and database): restart and find everything.
        let dir = tempfile::TempDir::new_in(data.parent().unwrap()).unwrap();
        std::fs::remove_dir(dir.path()).unwrap();
        std::fs::rename(&data, dir.path()).unwrap();
        let relay = Relay::start_in(dir, backend.database_url(), &[]);
        assert_eq!(
            relay.receipt_key,
            key,
            "{}: the receipt key survives",
            backend.name()
        );
        let got = fetch_all(&c, &relay, &focal).await;
        assert_eq!(got.len(), 30, "{}", backend.name());
        // And a resend still gets the same receipts.
        assert_eq!(post_batch(&c, &relay, &envs).await, results);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_relays_on_one_postgres_are_one_relay() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let db = TestDb::create(&admin);
    let a = Relay::start(Some(db.url.clone()), &[]);
    // The second relay shares the first one's receipt key, as a deployment would.
    let dir_b = tempfile::tempdir().unwrap();
    std::fs::copy(
        a.data_dir.path().join(amparo_relay::relay_key::FILE_NAME),
        dir_b.path().join(amparo_relay::relay_key::FILE_NAME),
    )
    .unwrap();
    let b = Relay::start_in(dir_b, Some(db.url.clone()), &[]);
    assert_eq!(a.receipt_key, b.receipt_key);
    let focal = keys();
    let envs: Arc<Vec<_>> = Arc::new((0..200).map(|i| envelope_for(&focal, i % 900)).collect());
    let a = Arc::new(a);
    let b = Arc::new(b);
    // Eight clients, each sending every envelope in batches of 25, to both relays.
    let mut tasks = Vec::new();
    for client_no in 0..8 {
        let relay = if client_no % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        let envs = envs.clone();
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut receipts = Vec::new();
            for chunk in envs.chunks(25) {
                receipts.extend(post_batch(&c, &relay, chunk).await);
            }
            receipts
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap());
    }
    for r in &all[1..] {
        assert_eq!(
            r, &all[0],
            "every client got the same receipts from either relay"
        );
    }
    let c = client();
    let from_a = fetch_all(&c, &a, &focal).await;
    assert_eq!(from_a.len(), 200, "no loss, no duplicate");
    let mut ids: Vec<_> = from_a.iter().map(|(_, e)| e.id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    assert_eq!(fetch_all(&c, &b, &focal).await.len(), 200);
}

#[tokio::test]
async fn unacknowledged_envelopes_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    let start = now().0;
    let time = Arc::new(AtomicU64::new(start));
    let t = time.clone();
    let clock: Clock = Arc::new(move || UnixTime(t.load(Ordering::SeqCst)));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = serve(
        store.clone(),
        SigningKey::generate(&mut SystemEntropy::new()).unwrap(),
        RelayOptions {
            limits: Limits {
                max_body_bytes: 1 << 20,
                max_batch: 100,
                max_page: 100,
            },
            coordinator_key: None,
            workers: Some(1),
            metrics: Default::default(),
            metrics_listener: None,
            quotas: None,
            admission_max_effort: 0,
            tokens: Default::default(),
            timers: Default::default(),
        },
        clock,
        listener,
    )
    .unwrap();
    let handle = server.handle();
    tokio::spawn(server);
    let c = client();
    let focal = keys();
    let url = format!("http://{addr}");
    let body = wire::encode_batch([envelope_for(&focal, 10).as_bytes()]);
    let r = c
        .post(format!("{url}/v1/envelopes"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let fetch_count = |at: UnixTime| {
        let c = c.clone();
        let url = url.clone();
        let focal_target = format!("/v1/mailboxes/{}/envelopes", focal.mailbox());
        let proof = sign(&focal, "GET", &focal_target, b"", at);
        async move {
            let r = c
                .get(format!("{url}{focal_target}"))
                .header(request::HEADER, proof.to_header())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            wire::decode_page(&r.bytes().await.unwrap()).unwrap().len()
        }
    };
    // 89 days later it is still there.
    let day = 86_400;
    time.store(start + 89 * day, Ordering::SeqCst);
    retention_pass(&store, UnixTime(start + 89 * day), 90 * 24)
        .await
        .unwrap();
    assert_eq!(fetch_count(UnixTime(start + 89 * day)).await, 1);
    // Past 90 days the retention task deletes it.
    time.store(start + 91 * day, Ordering::SeqCst);
    let (expired, _) = retention_pass(&store, UnixTime(start + 91 * day), 90 * 24)
        .await
        .unwrap();
    assert_eq!(expired, 1);
    assert_eq!(fetch_count(UnixTime(start + 91 * day)).await, 0);
    assert_eq!(store.counts().await.unwrap().envelopes, 0);
    handle.stop(false).await;
}
