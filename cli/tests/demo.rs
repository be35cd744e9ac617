//! `amparo demo` against a real relay process: the path the README shows a
//! newcomer must work.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_protocol::b64;
use amparo_tests::Relay;

#[test]
fn demo_sends_a_report_end_to_end() {
    let relay = Relay::start(None, &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_amparo"))
        .args(["demo", "--relay", &relay.url("")])
        .arg(format!(
            "--relay-key={}",
            b64::encode(relay.receipt_key.as_bytes())
        ))
        .env_remove("AMPARO_PROXY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("3 signed receipts, all verified"),
        "{stdout}"
    );
    assert!(stdout.contains("SHA-256 checked"), "{stdout}");
    assert!(stdout.contains("Estado del caso: En curso"), "{stdout}");
    assert!(
        stdout.contains("Respuesta: Recibimos su reporte"),
        "{stdout}"
    );
}

#[test]
fn demo_with_the_wrong_relay_key_fails_clearly() {
    let relay = Relay::start(None, &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_amparo"))
        .args(["demo", "--relay", &relay.url("")])
        .arg(format!("--relay-key={}", b64::encode(&[9u8; 32])))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("receipt was signed by an unexpected key"),
        "{stderr}"
    );
}

#[test]
fn demo_without_a_relay_says_so() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_amparo"))
        .args(["demo", "--relay", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the relay could not be reached"),
        "{stderr}"
    );
}
