//! Crash durability of the client (issue 9): the `amparo` process is killed
//! with SIGKILL in the middle of a survivor's `report sync` and of a focal
//! point's `focal sync`, again and again, through a slow link (so each kill
//! lands mid-transfer for real). After every kill the profile still opens with
//! its PIN and SQLite finds nothing damaged; a last sync completes, and the
//! focal point ends with every report exactly once: none lost, none doubled.
//! On SQLite and on PostgreSQL relays.
//!
//! Where a kill lands is random (a seeded RNG; the seed is printed, and
//! `AMPARO_KILL_SEED` replays it): cycle `i` kills once the link has carried
//! a random fraction of what that sync has to move, drawn from its own slice
//! of 5–95 % (slices in random order), so early and late kills both happen —
//! in particular, one after the first batch was signed for, leaving some but
//! not all reports delivered. The point is measured in bytes on the link, not
//! in seconds, so it does not drift with the machine's speed.
//!
//! `cargo test` runs 5 kills per side with 150 reports. A heavier run:
//!
//! ```sh
//! cargo build -p amparo -p amparo-relay
//! AMPARO_KILL_CYCLES=20 \
//! AMPARO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo test -p amparo-tests --test client_kill -- --ignored --nocapture
//! ```

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use amparo_core::drafts::DraftForm;
use amparo_core::focal::CaseFilter;
use amparo_core::store::Profile;
use amparo_protocol::b64;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::{Need, Place};
use amparo_tests::cli::{Person, focal_point_toml};
use amparo_tests::link::{LinkConfig, LinkProxy};
use amparo_tests::{Backend, Relay, backends, now};

const SIGKILL: i32 = 9;
/// The survivor uploads at most this many envelopes per request (client-core
/// sizes requests by the link's speed, up to this), the focal point fetches
/// pages of this many.
const UPLOAD_BATCH: usize = 64;
const FETCH_PAGE: usize = 100;
/// Kills land between these fractions of a sync's transfer.
const SLICES: (f64, f64) = (0.05, 0.95);

#[derive(Clone, Copy)]
struct Config {
    reports: usize,
    cycles: usize,
    link: LinkConfig,
}

impl Config {
    /// 150 reports (three upload batches, two fetch pages), 5 kills per side,
    /// a 400 kbit/s link with a 30 ms round trip: a whole upload takes about
    /// 3.5 s.
    fn bounded() -> Config {
        Config {
            reports: 150,
            cycles: 5,
            link: LinkConfig::symmetric(400, Duration::from_millis(30)),
        }
    }

    fn heavy() -> Config {
        let env = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Config {
            reports: env("AMPARO_KILL_REPORTS", 150),
            cycles: env("AMPARO_KILL_CYCLES", 20),
            ..Config::bounded()
        }
    }
}

/// SplitMix64: small, seeded, good enough to place kills.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

fn seed() -> u64 {
    std::env::var("AMPARO_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// One kill point per cycle, as a fraction of what that sync has to move:
/// cycle slices of [5 %, 95 %], one random point in each, in random order.
fn kill_fractions(cycles: usize, rng: &mut Rng) -> Vec<f64> {
    let (lo, hi) = SLICES;
    let width = (hi - lo) / cycles as f64;
    let mut points: Vec<f64> = (0..cycles)
        .map(|i| lo + width * (i as f64 + rng.unit()))
        .collect();
    rng.shuffle(&mut points);
    points
}

/// Bytes of one sealed envelope in the smallest size class (a short report
/// with no attachment): what one report costs on the link, framing aside.
fn envelope_len() -> u64 {
    let mut e = SystemEntropy::new();
    let keys = RecipientKeys::generate(&mut e).expect("keys");
    let header = InnerHeader::new(&mut e, now()).expect("header");
    let env = Envelope::seal(&keys.public(), Purpose::Report, &header, b"{}", &mut e)
        .expect("seal an envelope");
    env.as_bytes().len() as u64
}

/// The report text number `i`: each one unique, to count them at the end.
fn report_text(i: usize) -> String {
    format!("Informe de prueba {i:03}. CANARY-KILL-{i:03}")
}

struct Deployment {
    /// Kept running for the links to reach.
    _relay: Relay,
    root: tempfile::TempDir,
    survivor: Person,
    focal: Person,
    survivor_link: LinkProxy,
    focal_link: LinkProxy,
}

/// A relay trusting a coordinator, a signed and published directory with one
/// focal point and the relay's receipt key, a survivor and the focal point
/// each reaching the relay through its own slow link.
fn deploy(backend: &Backend, cfg: &Config) -> Deployment {
    let root = tempfile::tempdir().expect("temporary folder");
    let coordinator = Person::new(root.path(), "coordinator");
    let key = coordinator.create("coordinator", &[])["coordinator_key"]
        .as_str()
        .expect("coordinator key")
        .to_string();
    let coordinator_flag = format!("--coordinator-key={key}");
    let relay = Relay::start(backend.database_url(), &[&coordinator_flag]);
    let survivor_link = LinkProxy::start(relay.addr, cfg.link).expect("survivor's link");
    let focal_link = LinkProxy::start(relay.addr, cfg.link).expect("focal point's link");

    let focal = Person::new(root.path(), "focal");
    let keys = focal.create(
        "focal-point",
        &[
            "--relay",
            &focal_link.url(),
            &coordinator_flag,
            "--focal-point-id",
            "pe-ucayali",
        ],
    );
    let survivor = Person::new(root.path(), "survivor");
    survivor.create(
        "survivor",
        &["--relay", &survivor_link.url(), &coordinator_flag],
    );

    let source = root.path().join("directory.toml");
    std::fs::write(
        &source,
        format!(
            "{}\n[[relay]]\nname = \"test\"\nreceipt_key = \"{}\"\n",
            focal_point_toml("pe-ucayali", "Defensoría Ucayali", "PE-UCA", &keys),
            b64::encode(relay.receipt_key.as_bytes())
        ),
    )
    .expect("write the directory source");
    let signed = root.path().join("directory.amparo");
    let (source, signed) = (source.to_str().unwrap(), signed.to_str().unwrap());
    coordinator.json(&["coordinator", "sign", source, "--out", signed]);
    coordinator.json(&["coordinator", "publish", signed, "--relay", &relay.url("")]);
    survivor.json(&["directory", "refresh"]);
    Deployment {
        _relay: relay,
        root,
        survivor,
        focal,
        survivor_link,
        focal_link,
    }
}

/// Waits until nothing has crossed `link` for a while: what a killed client
/// had already handed to the link has arrived (so it does not count towards
/// the next cycle's kill point), and the relay has answered it.
fn settle(link: &LinkProxy) {
    let quiet = Duration::from_millis(400);
    let start = Instant::now();
    let mut last = link.stats();
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(25));
        let stats = link.stats();
        if stats != last {
            (last, since) = (stats, Instant::now());
        } else if since.elapsed() >= quiet {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the link never went quiet"
        );
    }
}

/// Where one kill landed.
struct Kill {
    /// Bytes the link had carried for this run when it was killed.
    moved: u64,
    after: Duration,
}

/// Starts `amparo ARGS` for `person` and SIGKILLs it once `moved()` has
/// grown by `target` bytes. Panics if the process ends by itself first: the
/// kill must land in the middle of the transfer.
fn kill_mid_transfer(
    person: &Person,
    args: &[&str],
    target: u64,
    moved: &dyn Fn() -> u64,
    log: &std::path::Path,
) -> Kill {
    let base = moved();
    let started = Instant::now();
    let mut child = person
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("child's log file"))
        .spawn()
        .expect("start amparo");
    let carried = loop {
        if let Some(status) = child.try_wait().expect("poll amparo") {
            panic!(
                "`amparo {}` ended by itself ({status}) after {} of the {target} bytes at which \
                 it was to be killed: the kill must land mid-transfer (a slower link?). \
                 Its stderr:\n{}",
                args.join(" "),
                moved() - base,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        let carried = moved() - base;
        if carried >= target {
            break carried;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "`amparo {}` moved only {carried} of {target} bytes in 120 s",
            args.join(" ")
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    // Still running a moment ago; the exit status tells whether it still was
    // when the signal arrived.
    child.kill().expect("SIGKILL amparo");
    let status = child.wait().expect("reap amparo");
    assert_eq!(
        status.signal(),
        Some(SIGKILL),
        "`amparo {}` had already ended ({status}) when the kill came",
        args.join(" ")
    );
    Kill {
        moved: carried,
        after: started.elapsed(),
    }
}

/// The survivor's reports as `report list` shows them.
struct Outbox {
    reports: usize,
    /// Envelopes signed for.
    delivered: usize,
    /// Envelopes still waiting.
    pending: usize,
    /// Reports whose state is "delivered".
    delivered_reports: usize,
}

/// Opens the survivor's profile (with its PIN) and reads every report; checks
/// the database file with SQLite first.
fn survivor_outbox(survivor: &Person, when: &str) -> Outbox {
    let integrity = survivor.profile_integrity();
    assert_eq!(integrity, "ok", "{when}: the survivor's profile is damaged");
    let run = survivor.try_run(&["--json", "report", "list"]);
    assert!(
        run.ok,
        "{when}: the survivor's profile does not open:\n{}{}",
        run.stdout, run.stderr
    );
    let list = run.json();
    let rows = list["reports"].as_array().expect("reports");
    let count = |field: &str| -> usize {
        rows.iter()
            .map(|r| r[field].as_u64().expect("a count") as usize)
            .sum()
    };
    Outbox {
        reports: rows.len(),
        delivered: count("delivered"),
        pending: count("pending"),
        delivered_reports: rows.iter().filter(|r| r["state"] == "delivered").count(),
    }
}

/// Opens the focal point's profile (with its PIN) and lists its case ids;
/// checks the database file with SQLite first.
fn focal_cases(focal: &Person, when: &str) -> Vec<String> {
    let integrity = focal.profile_integrity();
    assert_eq!(
        integrity, "ok",
        "{when}: the focal point's profile is damaged"
    );
    let run = focal.try_run(&["--json", "focal", "cases"]);
    assert!(
        run.ok,
        "{when}: the focal point's profile does not open:\n{}{}",
        run.stdout, run.stderr
    );
    run.json()["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| c["id"].as_str().expect("case id").to_string())
        .collect()
}

fn run(backend: &Backend, cfg: Config, rng: &mut Rng) {
    let name = backend.name();
    let started = Instant::now();
    let n = cfg.reports;
    let env_len = envelope_len();
    let d = deploy(backend, &cfg);
    let log = d.root.path().join("killed.log");

    // 1. N reports waiting in the survivor's outbox. Written in-process,
    // as `report write` does (create a draft, seal it to the focal point):
    // 150 `amparo` processes would cost 10-20 s of a debug build, and
    // writing is not what is under test here.
    {
        let profile =
            Profile::open(&d.survivor.dir, &d.survivor.pin).expect("open the survivor's profile");
        let coordinator = profile
            .settings()
            .and_then(|s| s.coordinator())
            .expect("the coordinator key in the settings");
        let directory = profile
            .directory(&coordinator)
            .expect("read the directory")
            .expect("a directory");
        let focal = directory
            .focal_point("pe-ucayali")
            .expect("the focal point in the directory");
        for i in 0..n {
            let form = DraftForm {
                needs: vec![Need::LegalAdvice],
                place: Place {
                    region: Some("PE-UCA".into()),
                    ..Place::default()
                },
                text: report_text(i),
                ..DraftForm::default()
            };
            let draft = profile.create_draft(&form).expect("a draft");
            profile
                .send_draft(&draft, focal, false, now())
                .expect("seal a report into the outbox");
        }
        assert_eq!(
            profile.outbox_len().expect("outbox"),
            n,
            "{name}: one envelope per report"
        );
    }
    let wrote = started.elapsed();

    // 2. `report sync`, killed mid-upload again and again.
    let mut upload_kills = Vec::new();
    let mut partial_upload = false;
    for (c, f) in kill_fractions(cfg.cycles, rng).into_iter().enumerate() {
        let before = survivor_outbox(&d.survivor, &format!("{name}: before upload kill {c}"));
        let target = (f * (before.pending as u64 * env_len) as f64) as u64;
        settle(&d.survivor_link);
        let kill = kill_mid_transfer(
            &d.survivor,
            &["--json", "report", "sync"],
            target,
            &|| d.survivor_link.stats().up_bytes,
            &log,
        );
        let when = format!("{name}: after upload kill {c}");
        let after = survivor_outbox(&d.survivor, &when);
        assert_eq!(after.reports, n, "{when}: reports in the profile");
        assert_eq!(after.delivered + after.pending, n, "{when}: envelopes");
        assert!(after.delivered >= before.delivered, "{when}: receipts lost");
        assert!(
            after.pending > 0,
            "{when}: the whole upload was signed for, so the kill was not mid-upload"
        );
        partial_upload |= after.delivered > 0;
        println!(
            "client_kill[{name}] upload kill {c}: at {:.0} % ({} of ~{} bytes, {:.2} s in); \
             delivered {} -> {} of {n}",
            f * 100.0,
            kill.moved,
            before.pending as u64 * env_len,
            kill.after.as_secs_f64(),
            before.delivered,
            after.delivered
        );
        upload_kills.push(after.delivered);
    }
    assert!(
        partial_upload,
        "{name}: no kill left some but not all reports delivered: {upload_kills:?}"
    );

    // The sync that is not killed delivers the rest.
    settle(&d.survivor_link);
    let before = survivor_outbox(&d.survivor, &format!("{name}: before the last sync"));
    let synced = d.survivor.json(&["report", "sync"]);
    assert_eq!(
        synced["delivered"], before.pending,
        "{name}: the last sync delivers what was waiting: {synced}"
    );
    let done = survivor_outbox(&d.survivor, &format!("{name}: after the last sync"));
    assert_eq!(
        (
            done.reports,
            done.delivered,
            done.pending,
            done.delivered_reports
        ),
        (n, n, 0, n),
        "{name}: every report delivered, once"
    );
    // The outbox itself is empty (a receipt is filed on the report before
    // the envelope leaves the outbox; both must have happened).
    let bundle = d.root.path().join("left.amparo");
    let left = d
        .survivor
        .json(&["report", "bundle", bundle.to_str().unwrap()]);
    assert_eq!(left["envelopes"], 0, "{name}: the outbox is empty: {left}");
    let uploaded = started.elapsed();

    // 3. `focal sync`, killed mid-fetch again and again.
    let mut fetch_kills = Vec::new();
    let mut partial_fetch = false;
    for (c, f) in kill_fractions(cfg.cycles, rng).into_iter().enumerate() {
        let filed = focal_cases(&d.focal, &format!("{name}: before fetch kill {c}")).len();
        // What is still at the relay is at least what is not filed here (the
        // focal point acknowledges only what it has filed).
        let target = (f * ((n - filed) as u64 * env_len) as f64) as u64;
        settle(&d.focal_link);
        let kill = kill_mid_transfer(
            &d.focal,
            &["--json", "focal", "sync"],
            target,
            &|| d.focal_link.stats().down_bytes,
            &log,
        );
        let when = format!("{name}: after fetch kill {c}");
        let cases = focal_cases(&d.focal, &when);
        assert!(cases.len() >= filed, "{when}: cases lost");
        assert!(
            cases.len() < n,
            "{when}: the whole mailbox was filed, so the kill was not mid-fetch"
        );
        partial_fetch |= !cases.is_empty();
        println!(
            "client_kill[{name}] fetch kill {c}: at {:.0} % ({} of ~{} bytes, {:.2} s in); \
             cases {filed} -> {} of {n}",
            f * 100.0,
            kill.moved,
            (n - filed) as u64 * env_len,
            kill.after.as_secs_f64(),
            cases.len()
        );
        fetch_kills.push(cases.len());
    }
    assert!(
        partial_fetch,
        "{name}: no kill left some but not all cases filed: {fetch_kills:?}"
    );

    // The fetch that is not killed files the rest; one more finds nothing at
    // the relay (everything was acknowledged, nothing comes back twice).
    settle(&d.focal_link);
    let filed = focal_cases(&d.focal, &format!("{name}: before the last fetch")).len();
    let fetched = d.focal.json(&["focal", "sync"]);
    assert_eq!(
        (fetched["new_cases"].as_u64(), fetched["rejected"].as_u64()),
        (Some((n - filed) as u64), Some(0)),
        "{name}: the last fetch files the rest: {fetched}"
    );
    let again = d.focal.json(&["focal", "sync"]);
    for field in ["new_cases", "duplicates", "chunks", "messages", "rejected"] {
        assert_eq!(
            again[field], 0,
            "{name}: the mailbox is drained, but a fetch after the last one brought {again}"
        );
    }

    // Every report's content exactly once. The CLI lists the cases; their
    // texts are read in-process (one `focal show` per case costs seconds).
    let cases = focal_cases(&d.focal, &format!("{name}: at the end"));
    let profile = Profile::open(&d.focal.dir, &d.focal.pin).expect("open the focal profile");
    let listed = profile
        .cases(&CaseFilter::default())
        .expect("the focal point's cases");
    assert_eq!(listed.len(), cases.len(), "{name}: cases listed");
    let mut texts: BTreeMap<String, usize> = BTreeMap::new();
    for c in &listed {
        let case = profile.case(&c.id).expect("open a case");
        *texts.entry(case.report.text).or_default() += 1;
    }
    drop(profile);
    let expected: Vec<String> = (0..n).map(report_text).collect();
    let lost: Vec<&String> = expected
        .iter()
        .filter(|t| !texts.contains_key(*t))
        .collect();
    let duplicated: usize = texts.values().map(|c| c - 1).sum();
    let strangers = texts.keys().filter(|t| !expected.contains(t)).count();
    println!(
        "client_kill[{name}] reports {n}, upload kills {} (delivered after each: {upload_kills:?}), \
         fetch kills {} (cases after each: {fetch_kills:?}); delivered {}/{n}, outbox {}, \
         cases {}, distinct {}, lost {}, duplicated {duplicated}, unknown {strangers}, \
         mailbox left 0; {:.1} s (writing {:.1} s, upload {:.1} s, fetch {:.1} s)",
        upload_kills.len(),
        fetch_kills.len(),
        done.delivered_reports,
        left["envelopes"],
        cases.len(),
        texts.len(),
        lost.len(),
        started.elapsed().as_secs_f64(),
        wrote.as_secs_f64(),
        (uploaded - wrote).as_secs_f64(),
        (started.elapsed() - uploaded).as_secs_f64(),
    );
    assert!(lost.is_empty(), "{name}: reports lost: {lost:?}");
    assert_eq!(duplicated, 0, "{name}: reports filed twice: {texts:?}");
    assert_eq!(strangers, 0, "{name}: cases nobody wrote");
    assert_eq!(cases.len(), n, "{name}: cases");
}

fn run_all(cfg: Config) {
    let seed = seed();
    println!(
        "client_kill: seed {seed} (AMPARO_KILL_SEED={seed} replays it), {} reports, {} kills \
         per side, link {} kbit/s, {} ms round trip",
        cfg.reports,
        cfg.cycles,
        cfg.link.up_bps / 1000,
        cfg.link.rtt().as_millis()
    );
    // A kill in the last slice, while nothing has been signed for or filed
    // yet, must land past the first upload batch and the first fetch page
    // (a few envelopes' worth of framing aside): then some but not all
    // reports are delivered, and some but not all cases filed.
    let last_slice = SLICES.1 - (SLICES.1 - SLICES.0) / cfg.cycles as f64;
    let first = UPLOAD_BATCH.max(FETCH_PAGE) + 5;
    assert!(
        last_slice * cfg.reports as f64 > first as f64,
        "{} reports and {} kills: the latest kills land before the first batch or page is done",
        cfg.reports,
        cfg.cycles
    );
    let mut rng = Rng(seed);
    for backend in backends() {
        run(&backend, cfg, &mut rng);
    }
}

#[test]
fn killed_syncs_lose_and_double_nothing() {
    run_all(Config::bounded());
}

#[test]
#[ignore = "the heavy run: 20 kills per side, or AMPARO_KILL_CYCLES (see the file's header)"]
fn killed_syncs_lose_and_double_nothing_many_times() {
    run_all(Config::heavy());
}
