//! The 2G sync benchmark (issue 9): a survivor's phone with 100 queued
//! reports of about 2 KiB syncs to the relay through the link emulator
//! (`amparo_tests::link`), at 64 kbit/s with 600 ms round trip and at
//! 200 kbit/s with 300 ms. Prints the time, the bytes each way, the ratio to
//! the physical minimum, a resume after a cut at half the upload, and the
//! wire overhead per envelope and per request.
//!
//! A benchmark, not a test of speed: it asserts only what must hold (every
//! report delivered once, nothing receipted sent again) and prints figures.
//!
//! ```sh
//! cargo build --release -p amparo-relay
//! AMPARO_RELAY_BIN=target/release/amparo-relay \
//!     cargo test --release -p amparo-tests --test link_2g -- --ignored --nocapture
//! ```
//!
//! Physical minimum for a sync that moved U bytes up and D bytes down:
//! U / up-rate + D / down-rate + 2 RTT (the TCP handshake, and one request
//! and its answer). No TLS: the relay is plain HTTP here (Tor or a TLS proxy
//! in front would add its own round trips).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use amparo_core::drafts::DraftForm;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store::{KdfParams, Profile};
use amparo_core::survivor::SyncProgress;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientKeys;
use amparo_tests::link::{LinkConfig, LinkCut, LinkProxy, LinkStats};
use amparo_tests::{Relay, focal_point_entry, now};

const REPORTS: usize = 100;
/// Free text of each report: with the form's fields, a report of about 2 KiB
/// of JSON, which pads to the 4 KiB class.
const TEXT_LEN: usize = 1900;

/// A profile with `n` reports queued for one focal point.
fn queued_profile(n: usize) -> (tempfile::TempDir, Profile) {
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::create(dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let fp = focal_point_entry("fp", focal.public());
    for i in 0..n {
        let text: String = format!("informe {i}: ")
            .chars()
            .chain("lo que pasó, dónde y cuándo. ".chars().cycle())
            .take(TEXT_LEN)
            .collect();
        let d = profile
            .create_draft(&DraftForm {
                text,
                ..DraftForm::default()
            })
            .unwrap();
        profile.send_draft(&d, &fp, false, now()).unwrap();
    }
    assert_eq!(profile.outbox_len().unwrap(), n);
    (dir, profile)
}

/// The relay's counters, from /metrics.
fn counter(relay: &Relay, name: &str) -> u64 {
    let (status, body) =
        amparo_tests::crash::http_request(relay.addr, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(status, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

struct Run {
    /// Upload requests sent (answered).
    upload_requests: u64,
    total: Duration,
    upload: Duration,
    total_bytes: LinkStats,
    upload_bytes: LinkStats,
}

/// Syncs `profile` through `proxy` with a fresh client (no pooled connection).
fn sync(
    rt: &tokio::runtime::Runtime,
    proxy: &LinkProxy,
    relay: &Relay,
    profile: &Profile,
) -> (Result<usize, String>, Run) {
    let client = RelayClient::new(&RelayConfig::new(proxy.url())).unwrap();
    let keys = [relay.receipt_key];
    let before = proxy.stats();
    let started = Instant::now();
    let mut upload_done = None;
    let mut upload_requests = 0;
    let result = rt.block_on(profile.sync(&client, &keys, now, &mut |p| {
        if let SyncProgress::Upload { done, .. } = p
            && done > 0
        {
            upload_requests += 1;
        }
        if let SyncProgress::Upload { done, total, .. } = p
            && done == total
            && total > 0
        {
            upload_done = Some((started.elapsed(), proxy.stats()));
        }
    }));
    let total = started.elapsed();
    // Let the link's last packets be counted.
    std::thread::sleep(proxy.config.delay + Duration::from_millis(50));
    let after = proxy.stats();
    let (upload, at_upload) = upload_done.unwrap_or((total, after));
    (
        result.map(|s| s.delivered).map_err(|e| e.to_string()),
        Run {
            upload_requests,
            total,
            upload,
            total_bytes: after - before,
            upload_bytes: at_upload - before,
        },
    )
}

fn minimum(cfg: &LinkConfig, bytes: &LinkStats) -> Duration {
    LinkConfig::transmit(bytes.up_bytes, cfg.up_bps)
        + LinkConfig::transmit(bytes.down_bytes, cfg.down_bps)
        + cfg.rtt() * 2
}

fn kib(b: u64) -> String {
    format!("{:.1} KiB", b as f64 / 1024.0)
}

#[test]
#[ignore = "a benchmark over an emulated 2G link (minutes); see the file's header"]
fn sync_100_reports_over_2g() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let relay = Relay::start(None, &[]);
    println!(
        "100 queued reports of ~2 KiB ({TEXT_LEN} characters of text), one sync, relay on SQLite\n"
    );
    for (kbps, rtt_ms) in [(64u64, 600u64), (200, 300)] {
        let cfg = LinkConfig::symmetric(kbps, Duration::from_millis(rtt_ms));
        let proxy = LinkProxy::start(relay.addr, cfg).unwrap();
        println!("== {kbps} kbit/s each way, {rtt_ms} ms RTT");

        // 1. The whole outbox in one sync.
        let (_dir, profile) = queued_profile(REPORTS);
        let accepted_before = counter(&relay, "amparo_envelopes_accepted_total");
        let bytes_before = counter(&relay, "amparo_envelope_bytes_accepted_total");
        let (result, run) = sync(&rt, &proxy, &relay, &profile);
        assert_eq!(result, Ok(REPORTS), "every report delivered");
        assert_eq!(profile.outbox_len().unwrap(), 0);
        let accepted = counter(&relay, "amparo_envelopes_accepted_total") - accepted_before;
        let env_bytes = counter(&relay, "amparo_envelope_bytes_accepted_total") - bytes_before;
        assert_eq!(accepted, REPORTS as u64);
        let env_size = env_bytes / accepted;
        let requests = run.upload_requests;
        let up = run.upload_bytes;
        let min_up = minimum(&cfg, &up);
        let min_all = minimum(&cfg, &run.total_bytes);
        println!(
            "upload phase: {:.2} s in {requests} requests (sized by the link's speed), {} up / {} down, {} connection(s); minimum {:.2} s; ratio {:.3}x",
            run.upload.as_secs_f64(),
            kib(up.up_bytes),
            kib(up.down_bytes),
            up.connections,
            min_up.as_secs_f64(),
            run.upload.as_secs_f64() / min_up.as_secs_f64()
        );
        println!(
            "whole sync (upload + {REPORTS} reply mailboxes checked in one request): {:.2} s, {} up / {} down, {} connection(s); minimum {:.2} s; ratio {:.3}x",
            run.total.as_secs_f64(),
            kib(run.total_bytes.up_bytes),
            kib(run.total_bytes.down_bytes),
            run.total_bytes.connections,
            min_all.as_secs_f64(),
            run.total.as_secs_f64() / min_all.as_secs_f64()
        );
        let padded = env_size - 62;
        let per_env_up = env_size + 4 - padded;
        let frames = (env_size + 4) * REPORTS as u64;
        let results = 94 * REPORTS as u64;
        println!(
            "per envelope: {env_size} bytes for {padded} bytes of padded plaintext = {} bytes of sealing \
             + 4 of batch framing up ({per_env_up} in all), 94 bytes of result (receipt) down",
            env_size - padded
        );
        println!(
            "per upload request ({requests} requests): {} bytes up and {} bytes down of HTTP beyond the frames and results",
            up.up_bytes.saturating_sub(frames) / requests,
            up.down_bytes.saturating_sub(results) / requests
        );
        let checks = run.total_bytes - up;
        println!(
            "checking {REPORTS} reply mailboxes (one signed many-mailbox fetch, all empty): {} bytes up, {} bytes down \
             ({} up and {} down per mailbox), one round trip",
            checks.up_bytes,
            checks.down_bytes,
            checks.up_bytes / REPORTS as u64,
            checks.down_bytes / REPORTS as u64
        );

        // 2. Resume: the link dies at half of the upload's bytes.
        let (_dir2, profile) = queued_profile(REPORTS);
        proxy.cut_next(LinkCut {
            up_after: Some(up.up_bytes / 2),
            down_after: None,
        });
        let dup_before = counter(&relay, "amparo_envelopes_duplicate_total");
        let acc_before = counter(&relay, "amparo_envelopes_accepted_total");
        let (first, cut_run) = sync(&rt, &proxy, &relay, &profile);
        assert!(first.is_err(), "the cut sync fails");
        let queued_after_cut = profile.outbox_len().unwrap();
        let receipted_before_cut = REPORTS - queued_after_cut;
        let received_at_cut = counter(&relay, "amparo_envelopes_accepted_total") - acc_before;
        let (second, resume_run) = sync(&rt, &proxy, &relay, &profile);
        assert_eq!(
            second,
            Ok(queued_after_cut),
            "the resumed sync delivers the rest"
        );
        assert_eq!(profile.outbox_len().unwrap(), 0);
        let received = counter(&relay, "amparo_envelopes_accepted_total") - acc_before
            + counter(&relay, "amparo_envelopes_duplicate_total")
            - dup_before
            - received_at_cut;
        let resent_receipted = received.saturating_sub(queued_after_cut as u64);
        assert_eq!(resent_receipted, 0, "nothing with a receipt is sent again");
        let waste_up = (cut_run.total_bytes.up_bytes + resume_run.upload_bytes.up_bytes)
            .saturating_sub(up.up_bytes);
        let extra_time = cut_run.total + resume_run.upload - run.upload;
        println!(
            "resume after a cut at {} of the upload: {} receipted before the cut ({} stored by the relay \
             without the answer reaching the phone), {} sent again by the resumed sync; \
             envelopes with a receipt sent again: {resent_receipted} ({} bytes); \
             the interruption cost {} more up and {:.2} s more than the uninterrupted upload \
             (cut attempt {:.2} s, resumed upload {:.2} s)\n",
            kib(up.up_bytes / 2),
            receipted_before_cut,
            received_at_cut.saturating_sub(receipted_before_cut as u64),
            queued_after_cut,
            resent_receipted * (env_size + 4),
            kib(waste_up),
            extra_time.as_secs_f64(),
            cut_run.total.as_secs_f64(),
            resume_run.upload.as_secs_f64()
        );
    }
}
