//! The 2G sync benchmark (issue 9; compressed reports, PROTOCOL.md §5.1):
//! a survivor's phone with 100 queued reports of about 1,900 characters
//! syncs to the relay through the link emulator (`amparo_tests::link`), at
//! 64 kbit/s with 600 ms round trip and at 200 kbit/s with 300 ms.
//!
//! The 100 reports are all different and read like reports: windows of
//! 1,900 characters (`AMPARO_2G_TEXT_CHARS` to change it) cut at different
//! offsets from the long test texts in Spanish, Portuguese and English
//! (`protocol/benches/texts/`, written for the tests), with the form filled
//! in (kinds of violence, aggressors, place, needs, date, language). One
//! phrase repeated would compress absurdly well and flatter the result.
//!
//! Each link syncs the same 100 reports twice, from two fresh profiles: once
//! to a focal point whose directory entry lists nothing under `reads`
//! (today's bytes: nothing is compressed), once to one that lists
//! `deflate_d1` (reports compressed when that is smaller). For each it
//! prints the time, the bytes each way, the ratio to the physical minimum,
//! the envelopes per size class and the wire overhead per envelope and per
//! request; for the compressed run also its bytes up and time as a ratio of
//! the plain run's. Then a resume after a cut at half of the compressed
//! upload.
//!
//! A benchmark, not a test of speed: it asserts only what must hold (every
//! report delivered once; the relay stored the envelope bytes the reports
//! seal to, give or take a class for a compressed body within a few bytes
//! of a class's edge, which the random reply key moves; nothing receipted
//! sent again) and prints figures.
//!
//! ```sh
//! cargo test -p amparo-tests --test link_2g -- --ignored --nocapture
//! # or release builds:
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

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use amparo_core::drafts::DraftForm;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store::{KdfParams, Profile};
use amparo_core::survivor::SyncProgress;
use amparo_protocol::compression::{self, READS_DEFLATE_D1};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::OVERHEAD;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::{INNER_HEADER_LEN, SIZE_CLASSES, class_for, class_for_compressed};
use amparo_protocol::payload::{
    AgeBand, AggressorKind, IncidentDate, Language, Need, Payload, Place, PlaceSetting,
    ViolenceKind,
};
use amparo_tests::link::{LinkConfig, LinkCut, LinkProxy, LinkStats};
use amparo_tests::{Relay, focal_point_entry, now};

const REPORTS: usize = 100;
/// Free text of each report, in characters: with the form's fields, about
/// 2.4 KB of JSON, which pads to the 4 KiB class uncompressed.
const TEXT_CHARS: usize = 1900;

fn text_chars() -> usize {
    std::env::var("AMPARO_2G_TEXT_CHARS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(TEXT_CHARS)
}

/// A long test text: the typical one, a blank line, the extra part
/// (`protocol/benches/texts/README.md`).
fn long_text(lang: &str) -> Vec<char> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../protocol/benches/texts");
    let read = |name: &str| {
        let path = format!("{dir}/{lang}_{name}.txt");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .trim()
            .to_owned()
    };
    format!("{}\n\n{}", read("medium"), read("long_extra"))
        .chars()
        .collect()
}

/// The form of a report in `language`, as a phone fills it, around `text`
/// (the same fields as `protocol/benches/compression.rs`).
fn form(language: Language, text: String) -> DraftForm {
    let (violence, country, region, aggressors, needs) = match language {
        Language::Es => (
            vec![
                ViolenceKind::Physical,
                ViolenceKind::Robbery,
                ViolenceKind::ArbitraryDetention,
            ],
            "PE",
            "PE-LIM",
            vec![AggressorKind::PoliceOrSecurity, AggressorKind::Client],
            vec![
                Need::LegalAdvice,
                Need::HealthCare,
                Need::ProtectionShelter,
                Need::MigrationStatus,
            ],
        ),
        Language::Pt => (
            vec![
                ViolenceKind::Physical,
                ViolenceKind::Threats,
                ViolenceKind::Extortion,
                ViolenceKind::Discrimination,
            ],
            "BR",
            "BR-SP",
            vec![AggressorKind::Client, AggressorKind::PoliceOrSecurity],
            vec![
                Need::LegalAdvice,
                Need::PsychologicalSupport,
                Need::ProtectionShelter,
            ],
        ),
        Language::En => (
            vec![
                ViolenceKind::Trafficking,
                ViolenceKind::Physical,
                ViolenceKind::Threats,
                ViolenceKind::Extortion,
            ],
            "TT",
            "TT-POS",
            vec![
                AggressorKind::ThirdPartyOrPimp,
                AggressorKind::Client,
                AggressorKind::OrganizedCrime,
            ],
            vec![
                Need::ProtectionShelter,
                Need::HealthCare,
                Need::StiHivPep,
                Need::LegalAdvice,
                Need::MigrationStatus,
            ],
        ),
    };
    DraftForm {
        violence,
        when: Some(IncidentDate {
            year: 2026,
            month: Some(11),
            day: None,
            approximate: true,
        }),
        place: Place {
            country: Some(country.into()),
            region: Some(region.into()),
            detail: None,
            setting: Some(PlaceSetting::Urban),
        },
        aggressors,
        needs,
        language: Some(language),
        text,
        statistics_consent: true,
        age_band: Some(AgeBand::Adult),
        ..DraftForm::default()
    }
}

/// `REPORTS` different reports: in turn Spanish, Portuguese and English,
/// each a window of [`text_chars`] characters of its language's long text,
/// starting at a word, the windows of one language spread over the text.
fn reports() -> Vec<DraftForm> {
    let langs = [
        (Language::Es, long_text("es")),
        (Language::Pt, long_text("pt")),
        (Language::En, long_text("en")),
    ];
    let len = text_chars();
    let per_language = REPORTS.div_ceil(langs.len());
    let forms: Vec<DraftForm> = (0..REPORTS)
        .map(|i| {
            let (language, text) = &langs[i % langs.len()];
            assert!(text.len() > len, "the long texts hold a window");
            let last = text.len() - len;
            let k = i / langs.len();
            let mut start = last * k / (per_language - 1).max(1);
            // Start at a word (after a space or a line break).
            while start > 0 && start < last && !text[start - 1].is_whitespace() {
                start += 1;
            }
            let start = start.min(last);
            form(*language, text[start..start + len].iter().collect())
        })
        .collect();
    let distinct: HashSet<&str> = forms.iter().map(|f| f.text.as_str()).collect();
    assert_eq!(distinct.len(), REPORTS, "every report different");
    forms
}

/// The envelope each report seals to, in bytes: the phone's JSON padded to
/// its class, compressed first when `compressed` and that is shorter
/// (PROTOCOL.md §5.1). Also each report's compressed body, in bytes.
fn envelope_sizes(forms: &[DraftForm], compressed: bool) -> (Vec<u64>, Vec<usize>) {
    let reply_to = RecipientKeys::generate(&mut SystemEntropy::new())
        .unwrap()
        .public();
    forms
        .iter()
        .map(|f| {
            let json = f.to_report(reply_to).to_json().unwrap();
            let packed = compression::compress(&json).unwrap().len();
            let class = if compressed && packed < json.len() {
                class_for_compressed(packed)
            } else {
                class_for(json.len())
            };
            ((class.unwrap() + OVERHEAD) as u64, packed)
        })
        .unzip()
}

/// "n × size" per envelope size, smallest first.
fn classes(sizes: &[u64]) -> String {
    let mut by_size: BTreeMap<u64, usize> = BTreeMap::new();
    for s in sizes {
        *by_size.entry(*s).or_default() += 1;
    }
    by_size
        .iter()
        .map(|(s, n)| format!("{n} × {s} B"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How close to a class's edge (bytes) a compressed body may land on
/// either side of it.
const EDGE: usize = 16;

/// "n × size" for `bytes` of `REPORTS` envelopes, if they are all of the two
/// smallest sizes, 1 086 and 1 598 bytes (compressed reports of up to ~2,900
/// characters); `None` otherwise.
fn stored_classes(bytes: u64) -> Option<String> {
    let [small, big] = [SIZE_CLASSES[0], SIZE_CLASSES[1]].map(|c| (c + OVERHEAD) as u64);
    let n = REPORTS as u64;
    let under = (big * n).checked_sub(bytes)?;
    if under % (big - small) != 0 || under / (big - small) > n {
        return None;
    }
    let n_small = under / (big - small);
    let sizes: Vec<u64> = (0..n)
        .map(|i| if i < n_small { small } else { big })
        .collect();
    Some(classes(&sizes))
}

/// A profile with `forms` queued for one focal point whose directory entry
/// lists `reads`.
fn queued_profile(forms: &[DraftForm], reads: &[&str]) -> (tempfile::TempDir, Profile) {
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::create(dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let mut fp = focal_point_entry("fp", focal.public());
    fp.reads = reads.iter().map(|r| (*r).to_owned()).collect();
    for f in forms {
        let d = profile.create_draft(f).unwrap();
        profile.send_draft(&d, &fp, false, now()).unwrap();
    }
    assert_eq!(profile.outbox_len().unwrap(), forms.len());
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

/// What one sync of the 100 reports measured.
struct Sync {
    run: Run,
    /// The upload phase's bytes.
    up: LinkStats,
    /// The mean envelope's size.
    mean_env: u64,
    /// How many envelopes of each size the relay stored.
    classes: String,
}

/// Syncs the 100 `forms` to a focal point whose entry lists `reads`, from a
/// fresh profile; checks that every report arrived once and that the relay
/// stored exactly the bytes they seal to; prints the figures.
fn sync_all(
    rt: &tokio::runtime::Runtime,
    proxy: &LinkProxy,
    relay: &Relay,
    forms: &[DraftForm],
    reads: &[&str],
) -> Sync {
    let cfg = &proxy.config;
    let (sizes, mut packed) = envelope_sizes(forms, !reads.is_empty());
    packed.sort_unstable();
    let (_dir, profile) = queued_profile(forms, reads);
    let accepted_before = counter(relay, "amparo_envelopes_accepted_total");
    let bytes_before = counter(relay, "amparo_envelope_bytes_accepted_total");
    let (result, run) = sync(rt, proxy, relay, &profile);
    assert_eq!(result, Ok(REPORTS), "every report delivered");
    assert_eq!(profile.outbox_len().unwrap(), 0);
    let accepted = counter(relay, "amparo_envelopes_accepted_total") - accepted_before;
    let env_bytes = counter(relay, "amparo_envelope_bytes_accepted_total") - bytes_before;
    assert_eq!(accepted, REPORTS as u64);
    // The relay stored what the reports seal to. A compressed body within a
    // few bytes of a class's edge may land on either side of it: the random
    // reply key, compressed with the rest, moves its size by a byte or two.
    let slack: u64 = if reads.is_empty() {
        0
    } else {
        packed
            .iter()
            .filter_map(|p| {
                SIZE_CLASSES
                    .windows(2)
                    .find(|w| (w[0] - INNER_HEADER_LEN).abs_diff(*p) <= EDGE)
                    .map(|w| (w[1] - w[0]) as u64)
            })
            .sum()
    };
    let predicted: u64 = sizes.iter().sum();
    assert!(
        env_bytes.abs_diff(predicted) <= slack,
        "the relay stored the envelopes the reports seal to: {env_bytes} bytes, predicted {predicted} ± {slack}"
    );
    let stored = stored_classes(env_bytes).unwrap_or_else(|| classes(&sizes));
    let requests = run.upload_requests;
    let up = run.upload_bytes;
    let min_up = minimum(cfg, &up);
    let min_all = minimum(cfg, &run.total_bytes);
    println!(
        "envelopes: {stored} ({} in all, {:.0} B each on average)",
        kib(env_bytes),
        env_bytes as f64 / REPORTS as f64
    );
    println!(
        "compressed, the reports' bodies would be {} to {} bytes (median {}); the smallest class holds {}",
        packed[0],
        packed[REPORTS - 1],
        packed[REPORTS / 2],
        SIZE_CLASSES[0] - INNER_HEADER_LEN
    );
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
    let frames = env_bytes + 4 * REPORTS as u64;
    let results = 94 * REPORTS as u64;
    println!(
        "per envelope: {OVERHEAD} bytes of sealing beyond the padded class + 4 of batch framing up, \
         94 bytes of result (receipt) down"
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
    Sync {
        run,
        up,
        mean_env: env_bytes / REPORTS as u64,
        classes: stored,
    }
}

#[test]
#[ignore = "a benchmark over an emulated 2G link (minutes); see the file's header"]
fn sync_100_reports_over_2g() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let relay = Relay::start(None, &[]);
    let forms = reports();
    let chars = text_chars();
    println!(
        "{REPORTS} queued reports, all different ({chars} characters of es/pt/en text each, the form filled in), \
         one sync, relay on SQLite\n"
    );
    let mut rows = Vec::new();
    for (kbps, rtt_ms) in [(64u64, 600u64), (200, 300)] {
        let cfg = LinkConfig::symmetric(kbps, Duration::from_millis(rtt_ms));
        let proxy = LinkProxy::start(relay.addr, cfg).unwrap();

        // 1. The whole outbox in one sync: today's bytes, then compressed.
        println!(
            "== {kbps} kbit/s each way, {rtt_ms} ms RTT: the focal point reads nothing compressed"
        );
        let plain = sync_all(&rt, &proxy, &relay, &forms, &[]);
        println!(
            "\n== {kbps} kbit/s each way, {rtt_ms} ms RTT: the focal point reads {READS_DEFLATE_D1}"
        );
        let packed = sync_all(&rt, &proxy, &relay, &forms, &[READS_DEFLATE_D1]);
        let ratio = |a: u64, b: u64| a as f64 / b as f64;
        println!(
            "compressed / plain: upload {:.3}x the bytes up in {:.3}x the time; whole sync {:.3}x the bytes up \
             ({:.3}x up and down) in {:.3}x the time",
            ratio(packed.up.up_bytes, plain.up.up_bytes),
            packed.run.upload.as_secs_f64() / plain.run.upload.as_secs_f64(),
            ratio(
                packed.run.total_bytes.up_bytes,
                plain.run.total_bytes.up_bytes
            ),
            ratio(
                packed.run.total_bytes.up_bytes + packed.run.total_bytes.down_bytes,
                plain.run.total_bytes.up_bytes + plain.run.total_bytes.down_bytes
            ),
            packed.run.total.as_secs_f64() / plain.run.total.as_secs_f64()
        );
        for (what, s) in [("plain", &plain), ("compressed", &packed)] {
            let min_all = minimum(&cfg, &s.run.total_bytes);
            rows.push(format!(
                "| {kbps} kbit/s, {rtt_ms} ms RTT | {what} | {} | {:.1} s | {} / {} | {:.1} s | {:.3}× | {:.3}× |",
                s.classes,
                s.run.total.as_secs_f64(),
                kib(s.run.total_bytes.up_bytes),
                kib(s.run.total_bytes.down_bytes),
                min_all.as_secs_f64(),
                s.run.total.as_secs_f64() / min_all.as_secs_f64(),
                ratio(s.run.total_bytes.up_bytes, plain.run.total_bytes.up_bytes),
            ));
        }

        // 2. Resume: the link dies at half of the compressed upload's bytes.
        let up = packed.up;
        let mean_env = packed.mean_env;
        let (_dir2, profile) = queued_profile(&forms, &[READS_DEFLATE_D1]);
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
        let extra_time = cut_run.total + resume_run.upload - packed.run.upload;
        println!(
            "resume (compressed reports) after a cut at {} of the upload: {} receipted before the cut ({} stored by the relay \
             without the answer reaching the phone), {} sent again by the resumed sync; \
             envelopes with a receipt sent again: {resent_receipted} ({} bytes); \
             the interruption cost {} more up and {:.2} s more than the uninterrupted upload \
             (cut attempt {:.2} s, resumed upload {:.2} s)\n",
            kib(up.up_bytes / 2),
            receipted_before_cut,
            received_at_cut.saturating_sub(receipted_before_cut as u64),
            queued_after_cut,
            resent_receipted * (mean_env + 4),
            kib(waste_up),
            extra_time.as_secs_f64(),
            cut_run.total.as_secs_f64(),
            resume_run.upload.as_secs_f64()
        );
    }
    println!("whole syncs ({chars} characters a report):\n");
    println!(
        "| link | focal point reads | envelopes | time | up / down | minimum | ratio | bytes up / plain |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        println!("{r}");
    }
}
