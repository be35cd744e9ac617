//! The field relay (`amparo-relay --upstream`) over real processes: a
//! survivor's report goes to a field relay while the central relay is down,
//! shows "handed over", reaches the focal point exactly once when the central
//! relay comes up, and ends "delivered"; replies are proxied and cached for
//! pickup while the central relay is out of reach; a field relay killed with
//! SIGKILL again and again while forwarding loses nothing and doubles nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_protocol::b64;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::wire::EnvelopeResult;
use amparo_tests::cli::Person;
use amparo_tests::{Relay, now};

fn client(url: &str) -> RelayClient {
    let mut config = RelayConfig::new(url);
    config.timeout = Duration::from_secs(20);
    RelayClient::new(&config).unwrap()
}

/// A field relay's arguments to forward to `central` every second.
fn forwarding_to(central: &Relay) -> Vec<String> {
    vec![
        "--upstream".to_string(),
        central.url(""),
        format!(
            "--upstream-key={}",
            b64::encode(central.receipt_key.as_bytes())
        ),
        "--forward-interval".into(),
        "1".into(),
    ]
}

/// Stops a relay and gives back its data directory, to start it again.
fn stop(mut relay: Relay) -> tempfile::TempDir {
    relay.kill();
    std::mem::replace(&mut relay.data_dir, tempfile::tempdir().unwrap())
}

fn sealed(keys: &RecipientKeys, size: usize, e: &mut SystemEntropy) -> Envelope {
    let header = InnerHeader::new(e, now()).unwrap();
    Envelope::seal(
        &keys.public(),
        Purpose::Report,
        &header,
        &vec![b'x'; size],
        e,
    )
    .unwrap()
}

async fn fetch_all(relay: &RelayClient, keys: &RecipientKeys) -> Vec<Envelope> {
    let mut e = SystemEntropy::new();
    let (mut all, mut after) = (Vec::new(), 0);
    loop {
        let page = relay.fetch(keys, after, 500, now(), &mut e).await.unwrap();
        if let Some((c, _)) = page.items.last() {
            after = *c;
        }
        let more = page.more && !page.items.is_empty();
        all.extend(page.items.into_iter().map(|(_, env)| env));
        if !more {
            return all;
        }
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_report_through_a_field_relay_while_the_centre_is_down() {
    let root = tempfile::tempdir().unwrap();
    let coordinator = Person::new(root.path(), "coordinator");
    let key = coordinator.create("coordinator", &[])["coordinator_key"]
        .as_str()
        .unwrap()
        .to_string();
    let coord_flag = format!("--coordinator-key={key}");
    let central = Relay::start(None, &[&coord_flag]);
    let central_url = central.url("");
    let central_addr = central.addr.to_string();
    let central_key = b64::encode(central.receipt_key.as_bytes());

    // The focal point works against the central relay.
    let focal = Person::new(root.path(), "focal");
    let keys = focal.create(
        "focal-point",
        &[
            "--relay",
            &central_url,
            &coord_flag,
            "--focal-point-id",
            "pe-ucayali",
        ],
    );
    let source = root.path().join("directory.toml");
    std::fs::write(
        &source,
        format!(
            r#"
[[focal_point]]
id = "pe-ucayali"
name = {{ es = "Defensoría", pt = "Defensoria", en = "Ombudsman" }}
organization = "Defensoría del Pueblo"
regions = ["PE-UCA"]
categories = ["legal_advice"]
languages = ["es"]
sealing_key = "{}"
signing_key = "{}"
valid_from = "2026-01-01"
valid_until = "2036-01-01"

[[relay]]
name = "central"
receipt_key = "{central_key}"
"#,
            keys["sealing_key"].as_str().unwrap(),
            keys["signing_key"].as_str().unwrap()
        ),
    )
    .unwrap();
    let signed = root.path().join("directory.amparo");
    coordinator.json(&[
        "coordinator",
        "sign",
        source.to_str().unwrap(),
        "--out",
        signed.to_str().unwrap(),
    ]);
    coordinator.json(&[
        "coordinator",
        "publish",
        signed.to_str().unwrap(),
        "--relay",
        &central_url,
    ]);

    // The centre goes down; the field relay at the community centre is up.
    let central_dir = stop(central);
    let field = Relay::start(
        None,
        &[
            "--upstream",
            &central_url,
            &format!("--upstream-key={central_key}"),
            &coord_flag,
            "--forward-interval",
            "1",
        ],
    );
    assert!(field.logs().contains("forwarding to"), "{}", field.logs());

    // The survivor's phone is on the centre's Wi-Fi.
    let survivor = Person::new(root.path(), "survivor");
    survivor.create("survivor", &["--relay", &field.url(""), &coord_flag]);
    survivor.json(&["directory", "import", signed.to_str().unwrap()]);
    let written = survivor.json(&[
        "report",
        "write",
        "--text",
        "Me amenazaron en la frontera. CANARY-FIELD",
        "--need",
        "legal-advice",
        "--region",
        "PE-UCA",
    ]);
    let synced = survivor.json(&["report", "sync"]);
    assert_eq!(synced["handed_over"], 1, "{synced}");
    assert_eq!(synced["delivered"], 0);
    let listed = survivor.json(&["report", "list"]);
    assert_eq!(listed["reports"][0]["state"], "handed_over", "{listed}");
    let es = survivor.try_run(&["--lang", "es", "report", "list"]).stdout;
    assert!(es.contains("en manos del relay local"), "{es}");
    // Syncing again changes nothing and stores nothing twice.
    assert_eq!(survivor.json(&["report", "sync"])["handed_over"], 1);
    wait_until("the field relay notices the centre is down", || {
        field.logs().contains("cannot be reached")
    });
    // The directory is served from the field relay too (mirrored when up);
    // the phone already has it.

    // The centre comes back on the same address.
    let _central = Relay::start_in(central_dir, None, &[&coord_flag, "--listen", &central_addr]);
    wait_until("the field relay forwards", || {
        field.logs().contains("forwarded upstream")
    });
    // It counts what it forwarded in /metrics (counts only).
    let metrics = http_get(field.addr, "/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l == "amparo_field_forwarded_total 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "amparo_field_postponed_total 0")
    );
    // The field relay mirrors the coordinator-signed directory.
    let signed_bytes = std::fs::read(&signed).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let field_client = client(&field.url(""));
    wait_until("the field relay mirrors the directory", || {
        matches!(
            rt.block_on(field_client.directory(None)),
            Ok(amparo_core::relay::DirectoryFetch::Fresh { bytes, .. }) if bytes == signed_bytes
        )
    });
    let synced = survivor.json(&["report", "sync"]);
    assert_eq!(synced["delivered"], 1, "{synced}");
    let listed = survivor.json(&["report", "list"]);
    assert_eq!(listed["reports"][0]["state"], "delivered", "{listed}");

    // The focal point receives it exactly once.
    let got = focal.json(&["focal", "sync"]);
    assert_eq!(got["new_cases"], 1, "{got}");
    assert_eq!(got["duplicates"], 0, "{got}");
    assert_eq!(focal.json(&["focal", "sync"])["new_cases"], 0);
    assert_eq!(
        focal.json(&["focal", "cases"])["cases"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The answer comes back through the field relay (fetch proxied upstream).
    let report = written["report"].as_str().unwrap();
    focal.json(&[
        "focal",
        "reply",
        &report[..8],
        "Recibido. Estamos con usted.",
    ]);
    focal.json(&["focal", "sync"]);
    assert_eq!(survivor.json(&["report", "sync"])["new_messages"], 1);
    let replies = survivor.json(&["report", "replies"]).to_string();
    assert!(replies.contains("Estamos con usted"), "{replies}");

    // Nothing the survivor wrote is readable in the field relay's files.
    for entry in std::fs::read_dir(field.data_dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("CANARY-FIELD"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_are_cached_for_pickup_while_the_centre_is_away() {
    let central = Relay::start(None, &[]);
    let central_url = central.url("");
    let upstream_key = format!(
        "--upstream-key={}",
        b64::encode(central.receipt_key.as_bytes())
    );
    let field = Relay::start(
        None,
        &[
            "--upstream",
            &central_url,
            &upstream_key,
            "--forward-interval",
            "1",
        ],
    );
    let mut e = SystemEntropy::new();
    let mailbox = RecipientKeys::generate(&mut e).unwrap();
    let replies: Vec<Envelope> = (0..3).map(|_| sealed(&mailbox, 300, &mut e)).collect();
    client(&central_url).upload(&replies).await.unwrap();

    // Online: the phone's fetch through the field relay reaches the centre.
    let via_field = client(&field.url(""));
    let got = fetch_all(&via_field, &mailbox).await;
    assert_eq!(got.len(), 3);

    // The centre goes away; the phone (which did not acknowledge, say its
    // battery died) picks the same sealed replies up from the cache.
    drop(central);
    let again = fetch_all(&via_field, &mailbox).await;
    let ids: HashSet<_> = again.iter().map(Envelope::id).collect();
    assert_eq!(
        ids,
        replies.iter().map(Envelope::id).collect::<HashSet<_>>()
    );
    // A request not signed by the mailbox's key gets nothing from the cache.
    let stranger = RecipientKeys::generate(&mut e).unwrap();
    assert!(fetch_all(&via_field, &stranger).await.is_empty());
    // Acknowledged while away: gone from the cache.
    let n = via_field
        .ack(
            &mailbox,
            &ids.iter().copied().collect::<Vec<_>>(),
            now(),
            &mut e,
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert!(fetch_all(&via_field, &mailbox).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_field_relay_killed_while_forwarding_loses_and_doubles_nothing() {
    let central = Relay::start(None, &[]);
    let central_url = central.url("");
    let upstream = forwarding_to(&central);
    let args: Vec<&str> = upstream.iter().map(String::as_str).collect();
    let mut field = Relay::start(None, &args);
    let mut e = SystemEntropy::new();
    let focal = RecipientKeys::generate(&mut e).unwrap();
    let mut sent = HashSet::new();
    let cycles = 6;
    for cycle in 0..cycles {
        // A wave of phones hands over envelopes (receipted by the field relay)...
        let wave: Vec<Envelope> = (0..120).map(|_| sealed(&focal, 3000, &mut e)).collect();
        let results = client(&field.url("")).upload(&wave).await.unwrap();
        for (env, r) in wave.iter().zip(&results) {
            assert!(matches!(r, EnvelopeResult::Accepted(_)));
            sent.insert(env.id());
        }
        // ...and the field relay dies while forwarding them.
        let delay = 100 + (cycle * 137) % 900;
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        let dir = stop(field);
        field = Relay::start_in(dir, None, &args);
    }
    // Everything reaches the centre, once.
    let central_client = client(&central_url);
    let start = Instant::now();
    let mut got = Vec::new();
    while start.elapsed() < Duration::from_secs(60) {
        got = fetch_all(&central_client, &focal).await;
        if got.len() >= sent.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let ids: Vec<_> = got.iter().map(Envelope::id).collect();
    let unique: HashSet<_> = ids.iter().copied().collect();
    println!(
        "field relay: {cycles} SIGKILLs, {} handed over, {} at the centre, lost {}, duplicated {}",
        sent.len(),
        unique.len(),
        sent.difference(&unique).count(),
        ids.len() - unique.len()
    );
    assert_eq!(ids.len(), unique.len(), "an envelope arrived twice");
    assert_eq!(unique, sent, "an envelope was lost");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lying_upstream_leaves_envelopes_queued_until_a_receipt_verifies() {
    let central = Relay::start(None, &[]);
    let central_url = central.url("");
    // The field relay is told to expect receipts from another key: the
    // centre's receipts do not verify, as if the upstream lied.
    let wrong = format!("--upstream-key={}", b64::encode(&[3u8; 32]));
    let args = [
        "--upstream",
        central_url.as_str(),
        wrong.as_str(),
        "--forward-interval",
        "1",
    ];
    let field = Relay::start(None, &args);
    let mut e = SystemEntropy::new();
    let focal = RecipientKeys::generate(&mut e).unwrap();
    let wave: Vec<Envelope> = (0..5).map(|_| sealed(&focal, 500, &mut e)).collect();
    client(&field.url("")).upload(&wave).await.unwrap();
    let logs = field.logs.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("the field relay notices bad receipts", || {
            logs.lock().unwrap().contains("did not verify")
        })
    })
    .await
    .unwrap();
    // Nothing was recorded as delivered: the phone gets no upstream receipt.
    let asked = client(&field.url(""))
        .upstream_receipts(&wave.iter().map(Envelope::id).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(asked.is_empty());

    // Restarted with the right key, it forwards what it kept; the centre
    // (which already holds copies from the failed rounds) has each once.
    let dir = stop(field);
    let right = format!(
        "--upstream-key={}",
        b64::encode(central.receipt_key.as_bytes())
    );
    let field = Relay::start_in(
        dir,
        None,
        &[
            "--upstream",
            &central_url,
            &right,
            "--forward-interval",
            "1",
        ],
    );
    let via_field = client(&field.url(""));
    let ids: Vec<_> = wave.iter().map(Envelope::id).collect();
    let start = Instant::now();
    let mut receipts = Vec::new();
    while start.elapsed() < Duration::from_secs(60) && receipts.len() < ids.len() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        receipts = via_field.upstream_receipts(&ids).await.unwrap();
    }
    assert_eq!(
        receipts.len(),
        5,
        "every envelope delivered once the receipts verify"
    );
    for r in &receipts {
        r.verify(&central.receipt_key).unwrap();
    }
    let got = fetch_all(&client(&central_url), &focal).await;
    let unique: HashSet<_> = got.iter().map(Envelope::id).collect();
    assert_eq!((got.len(), unique.len()), (5, 5));
}

/// The same through the multi-mailbox routes a phone's sync uses: pages of
/// many reply mailboxes in one request are cached; with the centre away
/// they come from the cache, and a multi-mailbox acknowledgement clears it.
#[tokio::test(flavor = "multi_thread")]
async fn many_mailboxes_are_cached_for_pickup_while_the_centre_is_away() {
    use amparo_protocol::grant::FetchGrant;
    use amparo_protocol::mailboxes::FetchAuth;

    let central = Relay::start(None, &[]);
    let central_url = central.url("");
    let upstream_key = format!(
        "--upstream-key={}",
        b64::encode(central.receipt_key.as_bytes())
    );
    let field = Relay::start(
        None,
        &[
            "--upstream",
            &central_url,
            &upstream_key,
            "--forward-interval",
            "1",
        ],
    );
    let mut e = SystemEntropy::new();
    let owners: Vec<RecipientKeys> = (0..4)
        .map(|_| RecipientKeys::generate(&mut e).unwrap())
        .collect();
    let mut replies = Vec::new();
    for (i, k) in owners.iter().enumerate() {
        for _ in 0..i {
            replies.push(sealed(k, 300, &mut e));
        }
    }
    client(&central_url).upload(&replies).await.unwrap();
    let grant = FetchGrant::sign(
        owners[3].signing(),
        amparo_protocol::UnixTime(now().0 + 600),
    );
    let entries = [
        (FetchAuth::Key(owners[0].signing()), 0),
        (FetchAuth::Key(owners[1].signing()), 0),
        (FetchAuth::Key(owners[2].signing()), 0),
        (FetchAuth::Grant(&grant), 0),
    ];
    let count = |pages: &[Option<amparo_core::relay::Page>]| -> Vec<usize> {
        pages
            .iter()
            .map(|p| p.as_ref().map_or(usize::MAX, |p| p.items.len()))
            .collect()
    };

    let via_field = client(&field.url(""));
    let online = via_field
        .fetch_many(&entries, 100, now(), &mut e)
        .await
        .unwrap();
    assert_eq!(count(&online), vec![0, 1, 2, 3]);

    drop(central);
    let offline = via_field
        .fetch_many(&entries, 100, now(), &mut e)
        .await
        .unwrap();
    assert_eq!(count(&offline), vec![0, 1, 2, 3], "served from the cache");
    for (page, k) in offline.iter().zip(&owners) {
        for (_, env) in &page.as_ref().unwrap().items {
            assert_eq!(env.mailbox(), k.mailbox());
        }
    }
    // Mailboxes 1 and 2 acknowledge while the centre is away.
    let ids = |p: &Option<amparo_core::relay::Page>| -> Vec<_> {
        p.as_ref()
            .unwrap()
            .items
            .iter()
            .map(|(_, env)| env.id())
            .collect()
    };
    let n = via_field
        .ack_many(
            &[
                (owners[1].signing(), ids(&offline[1])),
                (owners[2].signing(), ids(&offline[2])),
            ],
            now(),
            &mut e,
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    let after = via_field
        .fetch_many(&entries, 100, now(), &mut e)
        .await
        .unwrap();
    assert_eq!(count(&after), vec![0, 0, 0, 3]);
}

/// The body of a plain HTTP GET (the answer read to its end).
fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or(answer)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pressed_centre_asks_work_that_the_field_relay_pays() {
    // The centre asks admission work once a mailbox is half full
    // (PROTOCOL.md §14); the field relay pays it for what it forwards.
    let central = Relay::start(
        None,
        &[
            "--mailbox-max-envelopes",
            "16",
            "--admission-max-effort",
            "16",
        ],
    );
    let central_url = central.url("");
    let upstream = forwarding_to(&central);
    let args: Vec<&str> = upstream.iter().map(String::as_str).collect();
    let field = Relay::start(None, &args);
    let mut e = SystemEntropy::new();
    let focal = RecipientKeys::generate(&mut e).unwrap();
    let half: Vec<Envelope> = (0..8).map(|_| sealed(&focal, 500, &mut e)).collect();
    let straight = client(&central_url).upload(&half).await.unwrap();
    assert!(
        straight
            .iter()
            .all(|r| matches!(r, EnvelopeResult::Accepted(_)))
    );
    let wave: Vec<Envelope> = (0..3).map(|_| sealed(&focal, 500, &mut e)).collect();
    let handed = client(&field.url("")).upload(&wave).await.unwrap();
    assert!(
        handed
            .iter()
            .all(|r| matches!(r, EnvelopeResult::Accepted(_)))
    );
    let central_client = client(&central_url);
    let start = Instant::now();
    let mut got = Vec::new();
    while start.elapsed() < Duration::from_secs(30) {
        got = fetch_all(&central_client, &focal).await;
        if got.len() >= half.len() + wave.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        got.len(),
        half.len() + wave.len(),
        "the field relay's batch got in"
    );
    let metrics = http_get(central.addr, "/metrics");
    let worked: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("amparo_uploads_with_work_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(worked >= 1, "it paid with work: {worked}");
}

/// A field relay holds no check-in timers (an alert must not wait on a box
/// in the field, which can be taken or cut off at the hour it should go):
/// it refuses holds and check-ins with `not_here`, and a phone keeps them
/// for its next sync with the central relay.
#[tokio::test(flavor = "multi_thread")]
async fn a_field_relay_holds_no_timers_and_the_phone_keeps_them() {
    let central = Relay::start(None, &[]);
    let upstream_key = format!(
        "--upstream-key={}",
        b64::encode(central.receipt_key.as_bytes())
    );
    let field = Relay::start(None, &["--upstream", &central.url(""), &upstream_key]);
    let mut e = SystemEntropy::new();
    let focal = RecipientKeys::generate(&mut e).unwrap();
    let key = amparo_protocol::timer::new_timer_key(&mut e).unwrap();
    let hold =
        amparo_protocol::timer::Hold::sign(&key, now().hours() + 3, sealed(&focal, 100, &mut e));
    let via_field = client(&field.url(""));
    assert_eq!(
        via_field
            .hold(&hold.encode(), &hold.envelope)
            .await
            .unwrap(),
        amparo_core::relay::TimerAnswer::Later,
        "kept for the central relay"
    );
    for (path, body) in [
        ("/v1/timers", hold.encode()),
        (
            "/v1/timers/check-in",
            amparo_protocol::timer::CheckIn::postpone(&key, 1, now().hours() + 4)
                .encode()
                .to_vec(),
        ),
    ] {
        let (status, answer) =
            amparo_tests::crash::http_request(field.addr, "POST", path, &[], &body).unwrap();
        assert_eq!(status, 404, "{path}");
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(v["error"], "not_here", "{path}");
    }
    // The central relay takes it.
    assert!(matches!(
        client(&central.url(""))
            .hold(&hold.encode(), &hold.envelope)
            .await
            .unwrap(),
        amparo_core::relay::TimerAnswer::Held { .. }
    ));
}
