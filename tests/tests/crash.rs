//! Crash durability of the relay (issue 9): clients upload while the relay is
//! killed with SIGKILL and restarted; every envelope with a verified receipt
//! must be in its mailbox afterwards, once. On SQLite and on PostgreSQL.
//!
//! `cargo test` runs a few cycles. The full run (25 cycles per backend, or
//! `AMPARO_CRASH_CYCLES`), against the release relay:
//!
//! ```sh
//! cargo build --release -p amparo-relay
//! AMPARO_RELAY_BIN=target/release/amparo-relay \
//! AMPARO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo test -p amparo-tests --test crash -- --ignored --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_tests::backends;
use amparo_tests::crash::{self, CrashConfig};

fn run_all(cfg: CrashConfig) {
    for backend in backends() {
        let report = crash::run(&backend, cfg);
        println!("{report}");
        assert!(report.holds(), "durability broken: {report}");
    }
}

#[test]
fn receipted_envelopes_survive_kill_9_a_few_times() {
    run_all(CrashConfig::bounded());
}

#[test]
#[ignore = "the full crash run: 25+ kill -9 cycles per backend (see the file's header)"]
fn receipted_envelopes_survive_kill_9_many_times() {
    let cycles = std::env::var("AMPARO_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    run_all(CrashConfig::full(cycles));
}
