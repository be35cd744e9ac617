//! # amparo-tests
//!
//! The harness for tests over real processes: an `amparo-relay` process on a
//! free loopback port (its log captured), and fresh PostgreSQL databases. The
//! relay's own tests and the end-to-end tests in `tests/tests/` use it.
//!
//! This is test code: it panics on any failure, with a message saying what
//! did not work.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cases;
pub mod crash;
pub mod link;
pub mod slow;

pub mod cli;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::path::PathBuf;

use amparo_protocol::b64;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::primitives::ed25519::VerifyingKey;

/// The `amparo-relay` binary: `AMPARO_RELAY_BIN` if set, else the one cargo
/// built next to the running test (`target/<profile>/amparo-relay`), built
/// first if it is missing or older than its sources.
pub fn relay_binary() -> PathBuf {
    built_binary("AMPARO_RELAY_BIN", "amparo-relay", "amparo-relay")
}

/// A workspace binary: `$env_var` if set, else `target/<profile>/<name>`
/// next to the running test, built with `cargo build -p <package> --bin
/// <name>` first if it is missing or stale.
///
/// A narrow `cargo test -p amparo-tests` does not build other packages'
/// binaries, so without this a test would run yesterday's relay. Stale
/// means: a file the binary was built from (cargo's dep-info beside it,
/// `<name>.d`), or the directory holding one (a file added, such as a
/// migration), changed after the binary was written. A fresh binary costs
/// no cargo run at all (the workspace test run has built it); each binary
/// is checked once per test process, under a lock, so test threads
/// starting together build it once.
pub fn built_binary(env_var: &str, package: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return PathBuf::from(p);
    }
    static CHECKED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    // target/<profile>/deps/<test-binary> -> target/<profile>/<name>
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary in target/<profile>/deps")
        .to_path_buf();
    let bin = profile_dir.join(name);
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if !checked.iter().any(|n| n == name) {
        if binary_is_stale(&bin) {
            let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cargo.args(["build", "-p", package, "--bin", name]);
            match profile_dir.file_name().and_then(|p| p.to_str()) {
                Some("debug") | None => {}
                Some(profile) => {
                    cargo.args(["--profile", profile]);
                }
            }
            if let Some(target_dir) = profile_dir.parent() {
                cargo.arg("--target-dir").arg(target_dir);
            }
            let status = cargo.status().expect("run cargo build");
            assert!(
                status.success(),
                "cargo build -p {package} --bin {name} failed"
            );
        }
        checked.push(name.to_string());
    }
    assert!(bin.exists(), "no {name} binary at {}", bin.display());
    bin
}

/// Whether `bin` is missing or older than a file (or a directory of files)
/// it was built from, by the dep-info file cargo writes beside it.
fn binary_is_stale(bin: &std::path::Path) -> bool {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(bin) else {
        return true;
    };
    let mut dep_info = bin.as_os_str().to_owned();
    dep_info.push(".d");
    let Ok(text) = std::fs::read_to_string(PathBuf::from(dep_info)) else {
        return true;
    };
    let Some((_, deps)) = text.lines().next().and_then(|l| l.split_once(": ")) else {
        return true;
    };
    // Paths are separated by spaces; a space inside one is written `\ `.
    let mut sources = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                current.push(' ');
                chars.next();
            }
            ' ' => sources.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    sources.push(current);
    sources
        .iter()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .any(|source| {
            let newer = |p: &std::path::Path| modified(p).is_none_or(|m| m > built);
            newer(&source) || source.parent().is_some_and(newer)
        })
}

/// Whether this run is CI's: `CI` set to anything but empty, `0` or `false`
/// (GitHub, GitLab and `.ci/run` set `CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE" | "False"))
}

/// The PostgreSQL server tests may use (`AMPARO_TEST_POSTGRES_URL`, a URL to
/// an administrative database such as `postgres://postgres@127.0.0.1:5432/postgres`).
///
/// In CI it must be set, and PostgreSQL must answer ([`TestDb::create`]
/// fails the test otherwise): PostgreSQL tests run there, they are never
/// skipped. Elsewhere, without it, the caller tests SQLite only, and this
/// says so on the process's real standard error — not through `eprintln!`,
/// which the test harness captures and shows only for failing tests — so
/// that a test reported `ok` is never mistaken for one that ran on
/// PostgreSQL.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("AMPARO_TEST_POSTGRES_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u.trim().to_string()),
        _ if in_ci() => {
            panic!(
                "CI is set but AMPARO_TEST_POSTGRES_URL is not: PostgreSQL tests must run in CI \
                 (set it, e.g. AMPARO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres)"
            )
        }
        _ => {
            say_uncaptured(&format!(
                "note: {}: PostgreSQL NOT tested (AMPARO_TEST_POSTGRES_URL is not set); SQLite only",
                std::thread::current().name().unwrap_or("this test")
            ));
            None
        }
    }
}

/// Writes a line to the process's standard error past the test harness's
/// output capture: libtest captures `print!`/`eprint!` (and shows them only
/// when a test fails), but not writes to the `Stderr` handle itself.
pub fn say_uncaptured(line: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// `url` with any password replaced, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{}{user}{hidden}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// A fresh, empty PostgreSQL database, dropped when this value is.
pub struct TestDb {
    pub url: String,
    name: String,
    admin: String,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl TestDb {
    pub fn create(admin: &str) -> TestDb {
        use sqlx::Connection;
        let mut raw = [0u8; 6];
        amparo_protocol::Entropy::fill(&mut SystemEntropy::new(), &mut raw).unwrap();
        let name = format!(
            "amparo_test_{}",
            raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let admin = admin.to_string();
        let n = name.clone();
        let a = admin.clone();
        // Its own thread and runtime, so this works from sync and async tests alike.
        let made = std::thread::spawn(move || {
            runtime().block_on(async {
                let mut c = sqlx::PgConnection::connect(&a)
                    .await
                    .map_err(|e| format!("cannot connect: {e}"))?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {n}")))
                    .execute(&mut c)
                    .await
                    .map_err(|e| format!("cannot create a database: {e}"))?;
                Ok::<(), String>(())
            })
        })
        .join()
        .unwrap();
        if let Err(e) = made {
            panic!(
                "PostgreSQL at AMPARO_TEST_POSTGRES_URL ({}) is not usable: {e}. Start it{}.",
                redacted(&admin),
                if in_ci() {
                    " (in CI the PostgreSQL tests must run)"
                } else {
                    ", or unset AMPARO_TEST_POSTGRES_URL to test SQLite only"
                }
            );
        }
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        TestDb {
            url: format!("{base}/{name}"),
            name,
            admin,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        use sqlx::Connection;
        let (a, n) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            runtime().block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&a).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {n} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            })
        })
        .join();
    }
}

/// Which storage a relay under test uses.
pub enum Backend {
    Sqlite,
    Postgres(TestDb),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub fn database_url(&self) -> Option<String> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres(db) => Some(db.url.clone()),
        }
    }
}

/// SQLite always; PostgreSQL when a server is configured.
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    if let Some(admin) = postgres_admin_url() {
        out.push(Backend::Postgres(TestDb::create(&admin)));
    }
    out
}

/// A running relay process.
pub struct Relay {
    child: Child,
    pub addr: SocketAddr,
    /// Where `/metrics` has a listener of its own (`--metrics-listen`).
    pub metrics_addr: Option<SocketAddr>,
    pub logs: Arc<Mutex<String>>,
    pub data_dir: tempfile::TempDir,
    pub receipt_key: VerifyingKey,
}

impl Relay {
    /// Starts `amparo-relay` on a free loopback port with extra `args`.
    ///
    /// Unless `args` say something about metrics, the relay serves
    /// `/metrics` on its public listener without a token
    /// (`--public-metrics`), so tests can read its counters; unless they
    /// name an admission effort, it asks none (`--admission-max-effort=0`),
    /// so tests of caps, floods and crashes measure what they mean to. A
    /// test of the relay's own defaults uses [`Relay::start_as_configured`].
    pub fn start(database_url: Option<String>, args: &[&str]) -> Relay {
        Self::start_in(tempfile::tempdir().unwrap(), database_url, args)
    }

    pub fn start_in(
        data_dir: tempfile::TempDir,
        database_url: Option<String>,
        args: &[&str],
    ) -> Relay {
        let mut all = args.to_vec();
        if !args
            .iter()
            .any(|a| a.starts_with("--metrics") || a.starts_with("--public-metrics"))
        {
            all.push("--public-metrics");
        }
        // Admission work is on by default (64); tests about caps, floods
        // and crashes measure the relay without it, and the tests about
        // admission say their own maximum.
        if !args.iter().any(|a| a.starts_with("--admission-max-effort")) {
            all.push("--admission-max-effort=0");
        }
        Self::spawn(data_dir, database_url, &all)
    }

    /// Starts `amparo-relay` on a free loopback port with exactly `args`
    /// besides `--listen` and `--data-dir`: as an operator would run it.
    pub fn start_as_configured(database_url: Option<String>, args: &[&str]) -> Relay {
        Self::spawn(tempfile::tempdir().unwrap(), database_url, args)
    }

    fn spawn(data_dir: tempfile::TempDir, database_url: Option<String>, args: &[&str]) -> Relay {
        let mut cmd = Command::new(relay_binary());
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("AMPARO_CONFIG")
            .env_remove("AMPARO_METRICS_LISTEN")
            .env_remove("AMPARO_METRICS_TOKEN")
            .env_remove("AMPARO_PUBLIC_METRICS")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = database_url {
            cmd.env("DATABASE_URL", url);
        }
        if !args.contains(&"--log") {
            cmd.env("AMPARO_LOG", "info");
        }
        let mut child = cmd.spawn().expect("start amparo-relay");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Keep the line before announcing the start, so a test that
                // reads the log right after `start` sees the start line.
                {
                    let mut l = sink.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split(',').next().unwrap_or("").to_string();
                    let key = line
                        .rsplit("receipt key ")
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    let _ = tx.send((addr, key));
                }
            }
        });
        let (addr, key) = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(v) => v,
            Err(_) => {
                let _ = child.kill();
                panic!("relay did not start; its log:\n{}", logs.lock().unwrap());
            }
        };
        // The line before says where /metrics is, when it has a listener.
        let metrics_addr = logs
            .lock()
            .unwrap()
            .split("metrics on http://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ' ']).next())
            .and_then(|a| a.parse().ok());
        Relay {
            child,
            addr: addr.parse().unwrap(),
            metrics_addr,
            logs,
            data_dir,
            receipt_key: VerifyingKey(b64::decode_array(&key, "key").unwrap()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The relay's process id (for /proc/<pid>/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until the process has ended (e.g. after a config error).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where to cut one connection through a [`CutProxy`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Cut {
    /// Close after this many bytes from client to server.
    pub upload_after: Option<usize>,
    /// Close after this many bytes from server to client.
    pub download_after: Option<usize>,
}

/// A TCP proxy on loopback that passes bytes through, except that the next
/// connections are cut where the queued [`Cut`]s say: a link dying in the
/// middle of an upload or of the answer.
pub struct CutProxy {
    pub addr: SocketAddr,
    cuts: Arc<Mutex<std::collections::VecDeque<Cut>>>,
}

impl CutProxy {
    pub fn start(target: SocketAddr) -> CutProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cuts: Arc<Mutex<std::collections::VecDeque<Cut>>> = Arc::default();
        let queue = cuts.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                let cut = queue.lock().unwrap().pop_front().unwrap_or_default();
                let pipe =
                    |from: std::net::TcpStream, to: std::net::TcpStream, limit: Option<usize>| {
                        std::thread::spawn(move || {
                            use std::io::{Read, Write};
                            let (mut from, mut to) = (from, to);
                            let mut sent = 0usize;
                            let mut buf = [0u8; 8192];
                            loop {
                                let n = match from.read(&mut buf) {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => n,
                                };
                                let allowed = limit.map_or(n, |l| n.min(l.saturating_sub(sent)));
                                if to.write_all(&buf[..allowed]).is_err() {
                                    break;
                                }
                                sent += allowed;
                                if allowed < n || limit.is_some_and(|l| sent >= l) {
                                    break;
                                }
                            }
                            let _ = from.shutdown(std::net::Shutdown::Both);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        })
                    };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    cut.upload_after,
                );
                pipe(server, client, cut.download_after);
            }
        });
        CutProxy { addr, cuts }
    }

    /// Cuts the next connection as `cut` says.
    pub fn cut_next(&self, cut: Cut) {
        self.cuts.lock().unwrap().push_back(cut);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The system clock as the protocol takes it.
pub fn now() -> amparo_protocol::UnixTime {
    amparo_protocol::UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

/// A directory entry for a focal point with `keys`, valid for a long time,
/// in region PE-UCA, offering legal advice and protection, in Spanish, on
/// software that opens compressed bodies (PROTOCOL.md §5.1).
pub fn focal_point_entry(
    id: &str,
    keys: amparo_protocol::keys::RecipientPublic,
) -> amparo_protocol::directory::FocalPoint {
    use amparo_protocol::payload::{Language, Need};
    let name = amparo_protocol::directory::LocalizedText {
        es: id.into(),
        pt: id.into(),
        en: id.into(),
    };
    amparo_protocol::directory::FocalPoint {
        reads: vec![amparo_protocol::compression::READS_DEFLATE_D1.into()],
        id: id.into(),
        name,
        organization: "Organización de prueba".into(),
        regions: vec!["PE-UCA".into()],
        categories: vec![Need::LegalAdvice, Need::ProtectionShelter],
        languages: vec![Language::Es],
        keys,
        valid_from: 0,
        valid_until: u64::MAX / 2,
    }
}

/// A directory listing `focal_points` and one relay whose receipts are
/// signed by `receipt_key`.
pub fn directory_with(
    focal_points: Vec<amparo_protocol::directory::FocalPoint>,
    receipt_key: &VerifyingKey,
) -> amparo_protocol::directory::Directory {
    amparo_protocol::directory::Directory {
        statistics: None,
        focal_points,
        service_routes: vec![],
        relays: vec![amparo_protocol::directory::RelayEntry {
            name: "central".into(),
            url: None,
            receipt_key: *receipt_key.as_bytes(),
        }],
    }
}

/// `n` well-formed report envelopes sealed to `to` with junk text: what a
/// flooder who knows a focal point's public key can send.
pub fn sealed_junk(
    to: &amparo_protocol::keys::RecipientPublic,
    n: usize,
) -> Vec<amparo_protocol::envelope::Envelope> {
    use amparo_protocol::envelope::{Envelope, Purpose};
    use amparo_protocol::padding::InnerHeader;
    let mut e = SystemEntropy::new();
    (0..n)
        .map(|i| {
            let h = InnerHeader::new(&mut e, now()).expect("entropy");
            Envelope::seal(
                to,
                Purpose::Report,
                &h,
                format!("junk {i}").as_bytes(),
                &mut e,
            )
            .expect("a junk envelope seals")
        })
        .collect()
}
