//! The survivor is not buried (issue 15.4). Someone who learns a reply
//! mailbox id — it is in the fetch grant of every bundle she hands a
//! facilitator — pushes junk envelopes of the largest size class there, and
//! then the focal point's real reply arrives behind them. On a real relay
//! (SQLite, and PostgreSQL when `AMPARO_TEST_POSTGRES_URL` is set):
//!
//! - every sync of hers reads reply mailboxes within her budget, counted on
//!   the wire by a proxy (`amparo_tests::link`), headers included;
//! - a quiet mailbox's reply comes at the first sync, however flooded the
//!   other one is;
//! - the junk is deleted at the relay as she reads it and nothing of it is
//!   kept on her phone, so the real reply behind it comes within a few
//!   syncs; a message that opens with her keys but is about another report
//!   is dropped the same way;
//! - a facilitator fetching with her grant spends within his budget, goes
//!   on where he stopped, and stops at `MAX_PICKUP_PER_GRANT`.
//!
//! The bounded run is part of `cargo test`; the issue's attack (1,000 junk
//! envelopes of 64 KiB) is ignored by default:
//!
//! ```sh
//! cargo build --release -p amparo-relay
//! AMPARO_RELAY_BIN=target/release/amparo-relay \
//!     cargo test --release -p amparo-tests --test flooded_reply_mailbox -- --ignored --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use amparo_core::bundles::MAX_PICKUP_PER_GRANT;
use amparo_core::drafts::DraftForm;
use amparo_core::inbox::{Incoming, open};
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store::{KdfParams, Profile};
use amparo_core::survivor::ReadBudget;
use amparo_protocol::b64;
use amparo_protocol::bundle::{self, BundleItem};
use amparo_protocol::directory::{Directory, RelayEntry};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{self, Envelope, Purpose};
use amparo_protocol::keys::{MailboxId, RecipientKeys, RecipientPublic};
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::{Payload, Reply};
use amparo_protocol::primitives::ed25519::{SigningKey, VerifyingKey};
use amparo_protocol::wire::EnvelopeResult;
use amparo_tests::cli::{Person, focal_point_toml};
use amparo_tests::link::{LinkConfig, LinkProxy};
use amparo_tests::{Backend, Relay, backends, focal_point_entry, now};

const REAL_A: &str = "Su caso avanza: la esperamos el lunes en la fiscalía.";
const REAL_B: &str = "Recibimos su denuncia; una abogada la llamará.";

/// A directory version newer than any this run published before (on
/// PostgreSQL, the worlds of one test share a database).
fn next_version() -> u64 {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    now().0 * 1000 + SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A relay, a focal point, and a survivor with two delivered reports: A,
/// whose reply mailbox gets flooded, and B, which stays quiet. With `caps`,
/// the relay holds a directory listing the focal point, so it knows every
/// other mailbox for a reply mailbox and applies the small reply-mailbox
/// cap (64 envelopes, 1 MiB by default); without, every mailbox gets the
/// focal point's cap and only the phone's budget bounds the flood.
struct World {
    relay: Relay,
    client: RelayClient,
    keys: Vec<VerifyingKey>,
    _dir: tempfile::TempDir,
    profile_dir: std::path::PathBuf,
    survivor: Profile,
    /// The bundle she handed a facilitator (with her fetch grants).
    bundle: Vec<u8>,
    /// Where replies to A and B go, as the focal point read them.
    reply_a: RecipientPublic,
    reply_b: RecipientPublic,
    report_a: [u8; 16],
    report_b: [u8; 16],
}

impl World {
    async fn new(backend: &Backend, caps: bool) -> World {
        let coordinator = SigningKey::generate(&mut SystemEntropy::new()).unwrap();
        let pinned = format!(
            "--coordinator-key={}",
            b64::encode(coordinator.verifying_key().as_bytes())
        );
        let relay = Relay::start(backend.database_url(), &[&pinned]);
        let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
        let keys = vec![relay.receipt_key];
        let dir = tempfile::tempdir().unwrap();
        let profile_dir = dir.path().join("survivor");
        let survivor =
            Profile::create(&profile_dir, "5150", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
        let fp = focal_point_entry("pe-uca-defensoria", focal.public());
        if caps {
            let directory = Directory {
                statistics: None,
                focal_points: vec![fp.clone()],
                service_routes: vec![],
                relays: vec![RelayEntry {
                    name: "central".into(),
                    url: None,
                    receipt_key: *relay.receipt_key.as_bytes(),
                }],
            };
            client
                .publish_directory(
                    directory
                        .sign(next_version(), &coordinator)
                        .unwrap()
                        .as_bytes(),
                )
                .await
                .unwrap();
        }
        let mut reports = Vec::new();
        for text in ["Me amenazaron en la ruta.", "Me quitaron los documentos."] {
            let d = survivor
                .create_draft(&DraftForm {
                    text: text.into(),
                    ..DraftForm::default()
                })
                .unwrap();
            reports.push(survivor.send_draft(&d, &fp, false, now()).unwrap());
        }
        let bundle = survivor.export_outbox_bundle_with_grants(now()).unwrap();
        let s = survivor
            .sync(&client, &keys, now, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(s.delivered, 2);
        // The focal point reads both reports: each names its reply keys.
        let page = client
            .fetch(&focal, 0, 100, now(), &mut SystemEntropy::new())
            .await
            .unwrap();
        let reply_to = |id: [u8; 16]| {
            page.items
                .iter()
                .find_map(|(_, e)| match open(e, &focal).unwrap() {
                    Incoming::Report { report, message_id } if message_id == id => {
                        Some(report.reply_to)
                    }
                    _ => None,
                })
                .unwrap()
        };
        World {
            reply_a: reply_to(reports[0]),
            reply_b: reply_to(reports[1]),
            report_a: reports[0],
            report_b: reports[1],
            relay,
            client,
            keys,
            _dir: dir,
            profile_dir,
            survivor,
            bundle,
        }
    }

    /// The mailbox ids an attacker reads in clear in her bundle's grants.
    fn mailboxes_in_bundle(&self) -> Vec<MailboxId> {
        bundle::decode_all(&self.bundle)
            .unwrap()
            .into_iter()
            .filter_map(|item| match item {
                BundleItem::Grant(g) => Some(g.mailbox()),
                _ => None,
            })
            .collect()
    }

    /// Pushes `n` junk envelopes of `len` bytes (a valid size class) to
    /// `mailbox`, as fast as one client can; returns how many the relay
    /// took and how long it took.
    async fn flood(&self, mailbox: MailboxId, n: usize, len: usize) -> (usize, Duration) {
        let started = Instant::now();
        let mut accepted = 0;
        let per_batch = (4 * 1024 * 1024 / len).clamp(1, 256);
        let mut sent = 0;
        while sent < n {
            let batch: Vec<Envelope> = (sent..n.min(sent + per_batch))
                .map(|i| junk(mailbox, i, len))
                .collect();
            sent += batch.len();
            let results = self.client.upload(&batch).await.unwrap();
            accepted += results
                .iter()
                .filter(|r| matches!(r, EnvelopeResult::Accepted(_)))
                .count();
        }
        (accepted, started.elapsed())
    }

    /// The focal point's answer to `report`, sealed to `to`.
    fn answer(&self, to: &RecipientPublic, report: [u8; 16], text: &str) -> Envelope {
        let mut e = SystemEntropy::new();
        let reply = Reply {
            v: 1,
            report_id: report,
            text: text.into(),
            language: None,
            stamp: Default::default(),
        };
        let h = InnerHeader::new(&mut e, now()).unwrap();
        Envelope::seal(to, Purpose::Reply, &h, &reply.to_json().unwrap(), &mut e).unwrap()
    }

    fn profile_bytes(&self) -> u64 {
        std::fs::read_dir(&self.profile_dir)
            .unwrap()
            .map(|f| f.unwrap().metadata().unwrap().len())
            .sum()
    }
}

/// The `i`-th junk envelope of `len` bytes for `mailbox`: framed as the
/// relay checks (version, suite, size class), opening with nobody's keys.
fn junk(mailbox: MailboxId, i: usize, len: usize) -> Envelope {
    let mut b = vec![0x5a; len];
    b[0] = 1;
    b[1] = 1;
    b[2..14].copy_from_slice(&mailbox.0);
    b[14..22].copy_from_slice(&(i as u64).to_be_bytes());
    Envelope::from_bytes(b).unwrap()
}

/// Uploads what is still waiting; keeps what the relay could not take now
/// (a full reply mailbox), as a focal point's outbox does.
async fn send_waiting(client: &RelayClient, waiting: &mut Vec<Envelope>) {
    if waiting.is_empty() {
        return;
    }
    let results = client.upload(waiting).await.unwrap();
    let mut kept = Vec::new();
    for (env, r) in waiting.drain(..).zip(results) {
        match r {
            EnvelopeResult::Accepted(_) => {}
            EnvelopeResult::Rejected(code) if code.is_transient() => kept.push(env),
            EnvelopeResult::Rejected(code) => panic!("refused {code:?}"),
        }
    }
    *waiting = kept;
}

#[derive(Debug, Default)]
struct Figures {
    accepted_junk: usize,
    push: Duration,
    syncs: usize,
    /// Bytes on the wire (both ways, headers included) of each sync.
    wire: Vec<u64>,
    /// What each sync counted against its budget.
    counted: Vec<u64>,
    times: Vec<Duration>,
    discarded: usize,
    profile_growth: i64,
}

/// Floods reply mailbox A with `junk` envelopes of `len` bytes, then the
/// focal point answers on A (behind the junk) and on B; she syncs with
/// `budget` until she has both answers, at most `max_syncs` times.
async fn flooded_survivor(
    backend: &Backend,
    caps: bool,
    junk: usize,
    len: usize,
    budget: u64,
    max_syncs: usize,
) -> Figures {
    let w = World::new(backend, caps).await;
    let name = backend.name();
    let mailboxes = w.mailboxes_in_bundle();
    assert!(
        mailboxes.contains(&w.reply_a.mailbox()),
        "the grant names the reply mailbox in clear"
    );
    let before = w.profile_bytes();
    let mut f = Figures::default();
    let t = Instant::now();
    (f.accepted_junk, _) = w.flood(w.reply_a.mailbox(), junk, len).await;
    f.push = t.elapsed();
    // Behind the junk: her real answer on A, and something that opens with
    // A's keys but is about report B (only the focal point could make it).
    let mut waiting = vec![
        w.answer(&w.reply_a, w.report_a, REAL_A),
        w.answer(&w.reply_a, w.report_b, "no es de esta denuncia"),
        w.answer(&w.reply_b, w.report_b, REAL_B),
    ];
    send_waiting(&w.client, &mut waiting).await;

    // She syncs through a fast link that counts every byte.
    let link = LinkProxy::start(
        w.relay.addr,
        LinkConfig::symmetric(1_000_000, Duration::ZERO),
    )
    .unwrap();
    let phone = RelayClient::new(&RelayConfig::new(link.url())).unwrap();
    let mut has_a = false;
    while !has_a {
        assert!(
            f.syncs < max_syncs,
            "{name}: no answer on A after {max_syncs} syncs: {f:?}"
        );
        let wire_before = link.stats();
        let t = Instant::now();
        let s = w
            .survivor
            .sync_within(&phone, &w.keys, now, ReadBudget::new(budget), &mut |_| {})
            .await
            .unwrap();
        f.times.push(t.elapsed());
        let wire = link.stats();
        let on_wire =
            wire.up_bytes + wire.down_bytes - wire_before.up_bytes - wire_before.down_bytes;
        f.syncs += 1;
        f.wire.push(on_wire);
        f.counted.push(s.reply_bytes);
        f.discarded += s.discarded;
        assert!(
            s.reply_bytes <= budget,
            "{name}: sync {} counted {} of {budget}",
            f.syncs,
            s.reply_bytes
        );
        assert!(
            on_wire <= budget,
            "{name}: sync {} moved {on_wire} bytes on the wire, budget {budget}",
            f.syncs
        );
        let texts: Vec<String> = w
            .survivor
            .messages()
            .unwrap()
            .into_iter()
            .filter_map(|m| m.text)
            .collect();
        // The quiet mailbox is read at the first sync, flood or not.
        assert!(
            texts.iter().any(|t| t == REAL_B),
            "{name}: sync {}: {texts:?}",
            f.syncs
        );
        has_a = texts.iter().any(|t| t == REAL_A);
        if !has_a {
            assert!(s.replies_left || !waiting.is_empty(), "{name}: {s:?}");
        }
        // The focal point's outbox tries again (with relay caps, the junk
        // may have filled A and her answer waits for room).
        send_waiting(&w.client, &mut waiting).await;
    }
    assert!(waiting.is_empty());
    // Only the two real answers were kept: the junk and the misfiled
    // message are gone, here and at the relay (a last sync reads nothing).
    assert_eq!(w.survivor.messages().unwrap().len(), 2, "{name}");
    let last = w
        .survivor
        .sync_within(&phone, &w.keys, now, ReadBudget::new(budget), &mut |_| {})
        .await
        .unwrap();
    f.discarded += last.discarded;
    assert_eq!(
        (last.new_messages, last.replies_left),
        (0, false),
        "{name}: {last:?}"
    );
    assert_eq!(
        f.discarded,
        f.accepted_junk + 1,
        "{name}: every junk envelope dropped once"
    );
    f.profile_growth = w.profile_bytes() as i64 - before as i64;
    assert!(
        f.profile_growth < 512 * 1024,
        "{name}: the profile grew by {} bytes",
        f.profile_growth
    );
    f
}

fn print(name: &str, what: &str, budget: u64, f: &Figures) {
    let max_wire = f.wire.iter().max().copied().unwrap_or(0);
    let total: u64 = f.wire.iter().sum();
    let slowest = f.times.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{name}: {what}: {} junk accepted in {:.2} s; budget {} KiB: answer behind the junk at sync {}, \
         largest sync {} bytes on the wire ({:.1}% of budget; counted {}), {} bytes in all, \
         slowest sync {:.2} s; {} discarded; profile grew {} bytes",
        f.accepted_junk,
        f.push.as_secs_f64(),
        budget / 1024,
        f.syncs,
        max_wire,
        100.0 * max_wire as f64 / budget as f64,
        f.counted.iter().max().copied().unwrap_or(0),
        total,
        slowest.as_secs_f64(),
        f.discarded,
        f.profile_growth,
    );
}

/// The bounded run: 45 junk envelopes of 64 KiB (three budgets' worth),
/// with the relay's reply-mailbox cap and without it.
#[tokio::test]
async fn junk_before_her_answer_costs_her_only_her_budget_per_sync() {
    for backend in backends() {
        let budget = amparo_core::survivor::DEFAULT_REPLY_BUDGET;
        // The relay keeps at most 1 MiB in a reply mailbox: fifteen of the
        // junk envelopes, and room for her 1 KiB answer behind them. Her
        // default budget reads all of it in one sync.
        let f = flooded_survivor(&backend, true, 45, envelope::MAX_LEN, budget, 3).await;
        print(backend.name(), "caps, 45 x 64 KiB", budget, &f);
        assert_eq!(f.accepted_junk, 15, "{f:?}");
        assert_eq!(f.syncs, 1, "{f:?}");
        // A smaller budget (a metered link) reads it over a few syncs.
        let small = 256 * 1024;
        let f = flooded_survivor(&backend, true, 45, envelope::MAX_LEN, small, 8).await;
        print(backend.name(), "caps, 45 x 64 KiB", small, &f);
        assert!(f.syncs <= 6, "{f:?}");
        // With no cap at the relay, the budget alone bounds each sync:
        // nineteen junk envelopes a sync, the answer at the third.
        let f = flooded_survivor(&backend, false, 45, envelope::MAX_LEN, budget, 4).await;
        print(backend.name(), "no caps, 45 x 64 KiB", budget, &f);
        assert_eq!(f.accepted_junk, 45, "{f:?}");
        assert!(f.syncs <= 3, "{f:?}");
    }
}

/// The issue's attack: 1,000 junk envelopes of 64 KiB before her answer,
/// with and without the relay's reply-mailbox cap.
#[tokio::test]
#[ignore = "heavy: 65 MB of junk; run with --ignored (see the module docs)"]
async fn the_issue_flood_1000_junk_envelopes() {
    for backend in backends() {
        for caps in [true, false] {
            let what = if caps { "caps" } else { "no caps" };
            for budget in [256 * 1024, 1280 * 1024, 4 * 1024 * 1024] {
                let f =
                    flooded_survivor(&backend, caps, 1000, envelope::MAX_LEN, budget, 400).await;
                print(
                    backend.name(),
                    &format!("{what}, 1000 x 64 KiB"),
                    budget,
                    &f,
                );
            }
            let budget = 1280 * 1024;
            let f = flooded_survivor(&backend, caps, 1000, 1086, budget, 400).await;
            print(backend.name(), &format!("{what}, 1000 x 1 KiB"), budget, &f);
        }
    }
}

/// A facilitator fetching with her grants: within his budget, on from where
/// he stopped (he cannot acknowledge), and no more than
/// `MAX_PICKUP_PER_GRANT` from the flooded mailbox.
#[tokio::test]
async fn a_facilitator_carries_no_more_junk_than_his_cap() {
    for backend in backends() {
        let name = backend.name();
        let w = World::new(&backend, false).await;
        let (accepted, _) = w.flood(w.reply_a.mailbox(), 40, envelope::MAX_LEN).await;
        assert_eq!(accepted, 40, "{name}");
        let mut waiting = vec![w.answer(&w.reply_b, w.report_b, REAL_B)];
        send_waiting(&w.client, &mut waiting).await;

        let dir = tempfile::tempdir().unwrap();
        let carrier =
            Profile::create(dir.path(), "7", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let coordinator =
            amparo_protocol::primitives::ed25519::SigningKey::generate(&mut SystemEntropy::new())
                .unwrap()
                .verifying_key();
        let imported = carrier.import_bundle(&w.bundle, &coordinator, &[]).unwrap();
        assert_eq!(imported.grants, 2, "{name}");

        let budget = 512 * 1024;
        let mut picked = 0;
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 10, "{name}: the facilitator never stopped");
            let got = carrier
                .fetch_granted_replies_within(&w.client, now, ReadBudget::new(budget))
                .await
                .unwrap();
            assert!(got.bytes <= budget, "{name}: {got:?}");
            picked += got.new;
            if got.full == 1 && !got.left {
                break;
            }
        }
        // B's answer, and A's junk up to the cap and one page past it.
        let largest = envelope::MAX_LEN as u64;
        let most = (MAX_PICKUP_PER_GRANT + budget) / largest + 1;
        assert!(picked as u64 <= most + 1, "{name}: picked {picked}");
        assert!(
            picked as u64 >= MAX_PICKUP_PER_GRANT / largest,
            "{name}: picked {picked}"
        );
        assert_eq!(carrier.carrying().unwrap().replies, picked);
        let back = carrier.export_return_bundle().unwrap();
        assert!(
            (back.len() as u64) < MAX_PICKUP_PER_GRANT + budget + 64 * 1024,
            "{name}: a return bundle of {} bytes",
            back.len()
        );
        // Fetching again costs next to nothing: the cursor is kept and A is
        // no longer read.
        let again = carrier
            .fetch_granted_replies_within(&w.client, now, ReadBudget::new(budget))
            .await
            .unwrap();
        assert_eq!((again.new, again.full), (0, 1), "{name}");
        assert!(again.bytes < 4 * 1024, "{name}: {again:?}");
        // She files B's answer from what he brings back.
        let filed = w.survivor.import_bundle(&back, &coordinator, &[]).unwrap();
        assert_eq!(filed.messages, 1, "{name}");
        eprintln!(
            "{name}: facilitator: 40 x 64 KiB junk on one grant, budget {} KiB: {picked} envelopes picked up in {rounds} fetches, return bundle {} bytes",
            budget / 1024,
            back.len()
        );
    }
}

/// `report sync --budget` through the `amparo` command line: the data limit
/// is kept, and she is told in her language that the limit was reached and
/// that envelopes in her answer mailboxes were not for her.
#[tokio::test]
async fn the_cli_says_in_plain_words_what_the_budget_and_the_junk_did() {
    let root = tempfile::tempdir().unwrap();
    let coordinator = Person::new(root.path(), "coordinator");
    let key = coordinator.create("coordinator", &[])["coordinator_key"]
        .as_str()
        .unwrap()
        .to_string();
    let relay = Relay::start(None, &[&format!("--coordinator-key={key}")]);
    let url = relay.url("");
    coordinator.json(&["profile", "set", "--relay", &url]);
    let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let keys = serde_json::json!({
        "sealing_key": b64::encode(&focal.public().sealing_key),
        "signing_key": b64::encode(&focal.public().signing_key),
    });
    let source = root.path().join("directory.toml");
    std::fs::write(
        &source,
        format!(
            "{}\n[[relay]]\nname = \"test\"\nreceipt_key = \"{}\"\n",
            focal_point_toml("pe-ucayali", "Defensoría Ucayali", "PE-UCA", &keys),
            b64::encode(relay.receipt_key.as_bytes())
        ),
    )
    .unwrap();
    let signed = root.path().join("directory.amparo");
    let (source, signed) = (source.to_str().unwrap(), signed.to_str().unwrap());
    coordinator.json(&["coordinator", "sign", source, "--out", signed]);
    coordinator.json(&["coordinator", "publish", signed]);

    let survivor = Person::new(root.path(), "survivor");
    survivor.create(
        "survivor",
        &["--relay", &url, &format!("--coordinator-key={key}")],
    );
    survivor.json(&["directory", "refresh"]);
    survivor.json(&[
        "report",
        "write",
        "--text",
        "me amenazaron",
        "--region",
        "PE-UCA",
    ]);
    let first = survivor.json(&["report", "sync"]);
    assert_eq!(first["delivered"], 1, "{first}");
    let bundle_path = root.path().join("bundle.amparo");
    survivor.json(&["report", "bundle", bundle_path.to_str().unwrap()]);
    let mailbox = bundle::decode_all(&std::fs::read(&bundle_path).unwrap())
        .unwrap()
        .into_iter()
        .find_map(|item| match item {
            BundleItem::Grant(g) => Some(g.mailbox()),
            _ => None,
        })
        .unwrap();
    // The relay keeps fifteen of these in her reply mailbox.
    let client = RelayClient::new(&RelayConfig::new(url.clone())).unwrap();
    let junk: Vec<Envelope> = (0..20)
        .map(|i| junk(mailbox, i, envelope::MAX_LEN))
        .collect();
    client.upload(&junk).await.unwrap();

    // 256 KiB reads three of the largest envelopes a sync.
    let budget = 256 * 1024;
    for (lang, limit, not_for_her) in [
        (
            "es",
            "límite de datos",
            "3 sobres en sus buzones de respuesta no eran para usted",
        ),
        (
            "pt",
            "limite de dados",
            "3 envelopes nas suas caixas de resposta não eram para você",
        ),
        (
            "en",
            "data limit",
            "3 envelopes in your answer mailboxes were not for you",
        ),
    ] {
        let run = survivor.try_run(&["--lang", lang, "report", "sync", "--budget", "256"]);
        assert!(run.ok, "{lang}: {}", run.stderr);
        assert!(run.stderr.contains(limit), "{lang}: {}", run.stderr);
        assert!(run.stderr.contains(not_for_her), "{lang}: {}", run.stderr);
        assert!(run.stderr.contains("--budget"), "{lang}: {}", run.stderr);
    }
    let json = survivor.json(&["report", "sync", "--budget", "256"]);
    assert_eq!(json["reply_budget"], budget, "{json}");
    assert_eq!(
        (json["discarded"].as_u64(), json["replies_left"].as_bool()),
        (Some(3), Some(true)),
        "{json}"
    );
    assert!(json["reply_bytes"].as_u64().unwrap() <= budget, "{json}");
    // The default reads the rest (three were left) and says nothing of a limit.
    let run = survivor.try_run(&["--lang", "en", "report", "sync"]);
    assert!(run.ok, "{}", run.stderr);
    assert!(!run.stderr.contains("data limit"), "{}", run.stderr);
    assert!(
        run.stderr.contains("3 envelopes in your answer mailboxes"),
        "{}",
        run.stderr
    );
}
