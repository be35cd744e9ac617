//! What an operator meets, over a real relay process: who may read
//! `/metrics` and where, `amparo-relay key`, and the test harness's own
//! promise that a PostgreSQL half never passes silently.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use amparo_protocol::b64;
use common::*;

const TOKEN: &str = "metrics-token-0123456789abcdef";

async fn get(url: String, token: Option<&str>) -> (u16, Option<String>, String) {
    let mut r = client().get(url);
    if let Some(t) = token {
        r = r.header("Authorization", t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (status, challenge, r.text().await.unwrap())
}

fn error_code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("error bodies are JSON");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    v["error"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn metrics_are_off_unless_the_operator_turns_them_on() {
    let relay = Relay::start_as_configured(None, &[]);
    let (status, _, body) = get(relay.url("/metrics"), None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(error_code(&body), "not_found");
    let (status, _, _) = get(relay.url("/healthz"), None).await;
    assert_eq!(status, 200);
    assert!(
        relay
            .logs()
            .contains("metrics off (set metrics_listen or metrics_token"),
        "{}",
        relay.logs()
    );
}

#[tokio::test]
async fn a_metrics_token_is_required_when_set() {
    let relay = Relay::start_as_configured(None, &["--metrics-token", TOKEN]);
    let url = || relay.url("/metrics");
    let wrong_same_length = format!("Bearer {}", "x".repeat(TOKEN.len()));
    let prefix = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    for refused in [
        None,
        Some("Bearer"),
        Some("Bearer "),
        Some(wrong_same_length.as_str()),
        Some(prefix.as_str()),
        Some(TOKEN),
        Some("Basic bWV0cmljczp4"),
    ] {
        let (status, challenge, body) = get(url(), refused).await;
        assert_eq!(status, 401, "{refused:?}: {body}");
        assert_eq!(error_code(&body), "metrics_unauthorized");
        assert!(body.contains("metrics_token"), "{body}");
        assert!(
            challenge.is_some_and(|c| c.starts_with("Bearer")),
            "{refused:?}: a 401 says how to authenticate"
        );
    }
    for accepted in [format!("Bearer {TOKEN}"), format!("bearer {TOKEN}")] {
        let (status, _, body) = get(url(), Some(&accepted)).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("amparo_envelopes_accepted_total 0"), "{body}");
        assert!(
            body.contains("amparo_requests_rejected_total{code=\"metrics_unauthorized\"} 7"),
            "refusals are counted like any other:\n{body}"
        );
    }
    let logs = relay.logs();
    assert!(logs.contains("(bearer token required)"), "{logs}");
    assert!(
        !logs.contains(TOKEN),
        "the token never reaches the log:\n{logs}"
    );
}

#[tokio::test]
async fn metrics_on_a_listener_of_their_own() {
    let relay = Relay::start_as_configured(None, &["--metrics-listen", "127.0.0.1:0"]);
    let metrics = relay.metrics_addr.expect("the log says where /metrics is");
    assert_ne!(metrics, relay.addr);
    let on_metrics = |path: &str| format!("http://{metrics}{path}");
    let (status, _, body) = get(on_metrics("/metrics"), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("amparo_envelopes_accepted_total"), "{body}");
    let (status, _, body) = get(relay.url("/metrics"), None).await;
    assert_eq!(status, 404, "the public listener has no /metrics: {body}");
    assert_eq!(error_code(&body), "not_found");
    // The metrics listener answers nothing else, not even the API.
    for path in ["/healthz", "/v1/directory", "/v1/openapi.json", "/nowhere"] {
        let (status, _, body) = get(on_metrics(path), None).await;
        assert_eq!(status, 404, "{path} on the metrics listener: {body}");
        assert_eq!(error_code(&body), "not_found");
    }
    let (status, _, _) = get(relay.url("/healthz"), None).await;
    assert_eq!(status, 200, "the public API is unchanged");
    let r = client()
        .put(relay.url("/v1/directory"))
        .body(vec![1, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // With a token too: the token on the metrics listener, nothing public.
    let relay = Relay::start_as_configured(
        None,
        &["--metrics-listen", "127.0.0.1:0", "--metrics-token", TOKEN],
    );
    let metrics = relay.metrics_addr.unwrap();
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, _) = get(format!("http://{metrics}/metrics"), None).await;
    assert_eq!(status, 401);
    let (status, _, _) = get(format!("http://{metrics}/metrics"), Some(&bearer)).await;
    assert_eq!(status, 200);
    let (status, _, _) = get(relay.url("/metrics"), Some(&bearer)).await;
    assert_eq!(status, 404, "the token does not open the public listener");
}

#[test]
fn metrics_settings_that_cannot_work_are_refused() {
    for args in [
        vec!["--metrics-token", "short"],
        vec!["--metrics-token", "has spaces in it, sixteen+"],
        vec!["--public-metrics", "--metrics-token", TOKEN],
        vec!["--public-metrics", "--metrics-listen", "127.0.0.1:9470"],
        vec![
            "--listen",
            "127.0.0.1:9470",
            "--metrics-listen",
            "127.0.0.1:9470",
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_amparo-relay"))
            .args(&args)
            .env_remove("AMPARO_METRICS_TOKEN")
            .env_remove("AMPARO_METRICS_LISTEN")
            .env_remove("AMPARO_PUBLIC_METRICS")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("amparo-relay: "), "{args:?}: {err}");
        assert!(err.contains("metrics"), "{args:?}: {err}");
        assert!(!err.contains("panick"), "{err}");
    }
}

#[test]
fn a_metrics_address_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_amparo-relay"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            &addr,
            "--data-dir",
        ])
        .arg(data.path())
        .env_remove("AMPARO_METRICS_TOKEN")
        .env_remove("AMPARO_PUBLIC_METRICS")
        .env_remove("DATABASE_URL")
        .env_remove("AMPARO_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on {addr} (metrics_listen)")),
        "{err}"
    );
}

fn relay_key_command(args: &[&str], env: &[(&str, &std::path::Path)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_amparo-relay"));
    cmd.args(args)
        .env_remove("AMPARO_DATA_DIR")
        .env_remove("AMPARO_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_receipt_key_is_printed_without_starting_the_relay() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("relay-data");
    let data_arg = data.to_str().unwrap();

    // None yet: a clear failure, and nothing created.
    let (ok, stdout, stderr) = relay_key_command(&["key", "--data-dir", data_arg], &[]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("no receipt key") && stderr.contains("key --create"),
        "{stderr}"
    );
    assert!(!data.exists(), "`key` without --create creates nothing");

    // --create makes it (as the first start would), once.
    let (ok, created, stderr) =
        relay_key_command(&["key", "--create", "--data-dir", data_arg], &[]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("back it up"), "{stderr}");
    let key = created.trim().to_string();
    assert_eq!(b64::decode_array::<32>(&key, "key").map(|_| ()), Ok(()));
    let (ok, again, stderr) = relay_key_command(&["key", "--create", "--data-dir", data_arg], &[]);
    assert!(
        ok && again.trim() == key && stderr.is_empty(),
        "{again} {stderr}"
    );

    // The same key from the variable, from the settings file, and from the
    // flag before the command.
    let (ok, from_env, _) = relay_key_command(&["key"], &[("AMPARO_DATA_DIR", &data)]);
    assert!(ok && from_env.trim() == key);
    let file = root.path().join("relay.toml");
    std::fs::write(&file, format!("data_dir = {:?}\n", data_arg)).unwrap();
    let (ok, from_file, stderr) =
        relay_key_command(&["key", "--config", file.to_str().unwrap()], &[]);
    assert!(ok && from_file.trim() == key, "{stderr}");
    let (ok, before, _) = relay_key_command(&["--data-dir", data_arg, "key"], &[]);
    assert!(ok && before.trim() == key);

    // The relay then signs with that key, and still does after a restart.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        data.join("receipt-key.ed25519"),
        dir.path().join("receipt-key.ed25519"),
    )
    .unwrap();
    let mut relay = Relay::start_in(dir, None, &[]);
    assert_eq!(b64::encode(relay.receipt_key.as_bytes()), key);
    relay.kill();
    let data_dir = std::mem::replace(&mut relay.data_dir, tempfile::tempdir().unwrap());
    drop(relay);
    let relay = Relay::start_in(data_dir, None, &[]);
    assert_eq!(b64::encode(relay.receipt_key.as_bytes()), key);
    let (ok, printed, _) = relay_key_command(
        &["key", "--data-dir", relay.data_dir.path().to_str().unwrap()],
        &[],
    );
    assert!(ok && printed.trim() == key);

    // A damaged key file is reported, not replaced.
    std::fs::write(data.join("receipt-key.ed25519"), b"short").unwrap();
    let (ok, stdout, stderr) = relay_key_command(&["key", "--create", "--data-dir", data_arg], &[]);
    assert!(!ok && stdout.is_empty());
    assert!(stderr.contains("not a 32-byte key file"), "{stderr}");
    assert_eq!(
        std::fs::read(data.join("receipt-key.ed25519")).unwrap(),
        b"short"
    );
}

/// Run by [`the_postgres_half_is_never_silently_skipped`] in a child
/// process with other settings; on its own, a plain use of the harness.
#[test]
fn harness_probe() {
    let names: Vec<_> = backends().iter().map(|b| b.name()).collect();
    assert_eq!(names.first(), Some(&"sqlite"));
}

#[test]
fn the_postgres_half_is_never_silently_skipped() {
    let run = |ci: Option<&str>, url: Option<&str>| {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "harness_probe", "--test-threads", "1"])
            .env_remove("CI")
            .env_remove("AMPARO_TEST_POSTGRES_URL");
        if let Some(ci) = ci {
            cmd.env("CI", ci);
        }
        if let Some(url) = url {
            cmd.env("AMPARO_TEST_POSTGRES_URL", url);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Outside CI without PostgreSQL: the test passes, and says on stderr —
    // past the harness's capture, so `cargo test` shows it — what did not run.
    let (ok, stdout, stderr) = run(None, None);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("test harness_probe ... ok"), "{stdout}");
    assert!(
        stderr.contains("note: harness_probe: PostgreSQL NOT tested"),
        "the note must reach stderr despite the capture:\n{stderr}"
    );
    let (ok, _, stderr) = run(Some("false"), None);
    assert!(ok && stderr.contains("PostgreSQL NOT tested"), "{stderr}");
    // In CI: never a skip. No URL fails, and so does a PostgreSQL that does
    // not answer (port 1 on loopback refuses connections).
    let (ok, stdout, stderr) = run(Some("true"), None);
    assert!(!ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("PostgreSQL tests must run in CI"),
        "{stdout}\n{stderr}"
    );
    let (ok, stdout, stderr) = run(
        Some("true"),
        Some("postgres://postgres:secret@127.0.0.1:1/postgres"),
    );
    assert!(!ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("is not usable"), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("secret") && stdout.contains("postgres:***@"),
        "passwords are not printed: {stdout}"
    );
}
