//! `amparo demo` against a relay the person already runs (the README's
//! `./run.sh` path): the story still verifies when that relay does not know
//! the demo's coordinator, and failures are clear sentences.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_protocol::b64;
use amparo_tests::Relay;

fn demo(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_amparo"))
        .args(["--lang", "en", "demo"])
        .args(args)
        .env_remove("AMPARO_PROXY")
        .env_remove("AMPARO_RELAY")
        .env_remove("AMPARO_RELAY_KEY")
        .output()
        .unwrap()
}

#[test]
fn demo_against_a_running_relay() {
    let relay = Relay::start(None, &[]);
    let key = format!("--relay-key={}", b64::encode(relay.receipt_key.as_bytes()));
    let out = demo(&["--relay", &relay.url(""), &key]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("the directory travels in bundles"),
        "{stdout}"
    );
    assert!(stdout.contains("Reply: Recibimos su denuncia"), "{stdout}");
    assert!(stdout.contains("Every step verified."), "{stdout}");
    // And in Spanish.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_amparo"))
        .args(["--lang", "es", "demo", "--relay", &relay.url(""), &key])
        .env_remove("AMPARO_PROXY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Todo verificado."), "{stdout}");
    assert!(stdout.contains("Estado del caso: En curso"), "{stdout}");
}

#[test]
fn demo_with_the_wrong_relay_key_fails_clearly() {
    let relay = Relay::start(None, &[]);
    let out = demo(&[
        "--relay",
        &relay.url(""),
        &format!("--relay-key={}", b64::encode(&[9u8; 32])),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("demo check failed at step 4: the relay signs a receipt for each envelope"),
        "{stderr}"
    );
}

#[test]
fn demo_without_a_relay_says_so() {
    let out = demo(&[
        "--relay",
        "http://127.0.0.1:9",
        &format!("--relay-key={}", b64::encode(&[9u8; 32])),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("The relay could not be reached"),
        "{stderr}"
    );
}
