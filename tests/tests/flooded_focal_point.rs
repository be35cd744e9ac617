//! `amparo focal` against a flooded mailbox, over real processes: the sync
//! files the one report among the junk and says how much junk there was,
//! `focal rejected` summarises by reason in a few lines whatever the count,
//! keeps within the limits it is given, and `--clear` forgets it all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::compose::seal_report;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_protocol::b64;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{CIPHERTEXT_OFFSET, Envelope, Purpose};
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::{Language, Place, Report};
use amparo_tests::cli::Person;
use amparo_tests::{Relay, now};

fn keys_of(created: &serde_json::Value) -> RecipientPublic {
    let key = |k: &str| b64::decode_array(created[k].as_str().unwrap(), "key").unwrap();
    RecipientPublic {
        sealing_key: key("sealing_key"),
        signing_key: key("signing_key"),
    }
}

#[tokio::test]
async fn focal_rejected_summarises_a_flood_and_clears_it() {
    let relay = Relay::start(None, &[]);
    let root = tempfile::tempdir().unwrap();
    let focal = Person::new(root.path(), "focal");
    focal.create(
        "focal-point",
        &["--relay", &relay.url(""), "--focal-point-id", "pe-test"],
    );
    let public = keys_of(&focal.json(&["focal", "public"]));
    // Records of at most 300 of them, and no bytes.
    let set = focal.json(&[
        "focal",
        "rejected",
        "--keep-records",
        "300",
        "--keep-mib",
        "0",
    ]);
    assert_eq!(set["limits"]["max_records"], 300);
    assert_eq!(set["total"], 0);

    // 1,200 junk envelopes (sealed to another key) and one real report.
    let mut e = SystemEntropy::new();
    let other = RecipientKeys::generate(&mut e).unwrap();
    let forged = RecipientPublic {
        sealing_key: other.public().sealing_key,
        signing_key: public.signing_key,
    };
    let h = InnerHeader::new(&mut e, now()).unwrap();
    let template = Envelope::seal(&forged, Purpose::Report, &h, b"{}", &mut e)
        .unwrap()
        .into_bytes();
    let mut envelopes: Vec<Envelope> = (0..1_200u64)
        .map(|i| {
            let mut b = template.clone();
            b[CIPHERTEXT_OFFSET..CIPHERTEXT_OFFSET + 8].copy_from_slice(&i.to_be_bytes());
            Envelope::from_bytes(b).unwrap()
        })
        .collect();
    let report = Report {
        reads: Vec::new(),
        statistics_consent: false,
        age_band: None,
        reported_elsewhere: None,
        v: 1,
        violence: vec![],
        violence_other: None,
        when: None,
        place: Place::default(),
        aggressors: vec![],
        aggressor_other: None,
        needs: vec![],
        language: Language::Es,
        text: "Necesito ayuda.".into(),
        attachments: vec![],
        reply_to: other.public(),
        referral: None,
        alert: None,
    };
    let real = seal_report(
        &public,
        report,
        &[],
        amparo_protocol::envelope::Compression::IfSmaller,
        &mut e,
        now(),
    )
    .unwrap();
    envelopes.splice(500..500, real.envelopes);
    let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    for batch in envelopes.chunks(256) {
        client.upload(batch).await.unwrap();
    }

    let synced = focal.try_run(&["focal", "sync"]);
    assert!(
        synced.ok
            && synced.stdout.contains("New cases: 1.")
            && synced
                .stdout
                .contains("Unreadable: 1200 (amparo focal rejected)."),
        "{}\n{}",
        synced.stdout,
        synced.stderr
    );
    assert_eq!(
        focal.json(&["focal", "cases"])["cases"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let summary = focal.json(&["focal", "rejected"]);
    assert_eq!(summary["total"], 1_200, "{summary}");
    assert_eq!(summary["by_reason"]["does_not_open"], 1_200);
    assert_eq!(summary["records"], 300);
    assert_eq!(summary["bytes_kept"], 0);
    let examples = summary["rejected"].as_array().unwrap();
    assert_eq!(examples.len(), 3);
    assert_eq!(examples[0]["code"], "does_not_open");
    assert_eq!(examples[0]["bytes_kept"], false);
    // For people: a few lines, not one per envelope.
    let human = focal.try_run(&["focal", "rejected"]);
    assert!(human.ok, "{}", human.stderr);
    assert!(
        human.stdout.contains("1200 unreadable envelopes")
            && human
                .stdout
                .contains("do not open with this focal point's keys")
            && human.stdout.contains("--clear"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.lines().count() < 12, "{}", human.stdout);

    let cleared = focal.json(&["focal", "rejected", "--clear"]);
    assert_eq!(cleared["cleared"], 1_200);
    assert_eq!(cleared["total"], 0);
    assert_eq!(
        focal.json(&["focal", "rejected"])["limits"]["max_records"],
        300
    );
    let es = focal.try_run(&["--lang", "es", "focal", "rejected"]);
    assert!(es.stdout.contains("Ningún sobre ilegible"), "{}", es.stdout);
    // The case is still there.
    assert_eq!(
        focal.json(&["focal", "cases"])["cases"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Peak resident memory (VmHWM, KiB) of a running process, if it is still
/// there.
fn peak_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::test]
async fn a_sync_through_large_junk_holds_a_page_or_two_in_memory() {
    let relay = Relay::start(None, &[]);
    let root = tempfile::tempdir().unwrap();
    let focal = Person::new(root.path(), "focal");
    focal.create(
        "focal-point",
        &["--relay", &relay.url(""), "--focal-point-id", "pe-test"],
    );
    let public = keys_of(&focal.json(&["focal", "public"]));
    // 48 MiB of 64 KiB-class junk: more than the sync may hold at once.
    let mut e = SystemEntropy::new();
    let other = RecipientKeys::generate(&mut e).unwrap();
    let forged = RecipientPublic {
        sealing_key: other.public().sealing_key,
        signing_key: public.signing_key,
    };
    let h = InnerHeader::new(&mut e, now()).unwrap();
    let template = Envelope::seal(&forged, Purpose::Chunk, &h, &vec![7; 60_000], &mut e)
        .unwrap()
        .into_bytes();
    let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    for batch in 0..12u64 {
        let envelopes: Vec<Envelope> = (0..64u64)
            .map(|i| {
                let mut b = template.clone();
                b[CIPHERTEXT_OFFSET..CIPHERTEXT_OFFSET + 8]
                    .copy_from_slice(&(batch * 64 + i).to_be_bytes());
                Envelope::from_bytes(b).unwrap()
            })
            .collect();
        client.upload(&envelopes).await.unwrap();
    }

    let mut child = focal
        .command(&["--json", "focal", "sync"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(peak_kib(pid).unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let synced: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(synced["rejected"], 768, "{synced}");
    // Pages of about 4 MiB, two at a time, and the process itself: far
    // below the 48 MiB that came (measured: 29-32 MiB, and 30 MiB with
    // twice the junk; an empty sync peaks at about 12 MiB).
    assert!(peak > 0 && peak < 40 * 1024, "peak resident {peak} KiB");
}
