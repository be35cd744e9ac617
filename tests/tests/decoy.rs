//! A decoy that lives (issue 16, part 1), over a real relay process.
//!
//! A survivor's real profile has settings, a directory and a delivered
//! report. She sets a duress PIN, then changes a setting and gets a newer
//! directory, and prepares harmless decoy content. Opened with the duress
//! PIN, the decoy shows the same settings, role, language and directory, its
//! own content and none of hers, and its sync and directory refresh succeed
//! against the relay — through the library and through `amparo report
//! sync`. What it sends is what her quiet real profile sends: every request
//! a recording proxy sees has the same method, path, body size and
//! `If-None-Match`. Nothing of the decoy's "delivered" report reaches the
//! focal point. Clearing the duress PIN leaves no decoy, and the real
//! profile then syncs as before.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use amparo_core::CoreError;
use amparo_core::drafts::DraftForm;
use amparo_core::inbox::{Incoming, open};
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::settings::{Role, Settings};
use amparo_core::store::{KdfParams, Profile};
use amparo_core::survivor::{ReadBudget, SyncSummary};
use amparo_protocol::b64;
use amparo_protocol::directory::{Directory, RelayEntry};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::payload::{Language, Need, Place};
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_tests::cli::Person;
use amparo_tests::{Relay, focal_point_entry, now};

const CANARY: &str = "Canary-real-report-decoy-Zq81";
const PIN: &str = "ana-1357";
const DURESS: &str = "1111";

/// One HTTP request as the relay received it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    body_len: usize,
    if_none_match: Option<String>,
}

/// What clients sent on one connection.
type Log = Arc<Mutex<Vec<u8>>>;

/// A TCP proxy in front of the relay that keeps every byte clients send,
/// per connection, so a test can list the requests a sync made.
struct Recorder {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<Log>>>,
}

impl Recorder {
    fn start(target: SocketAddr) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sent: Arc<Mutex<Vec<Log>>> = Arc::default();
        let connections = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let log: Log = Arc::default();
                connections.lock().unwrap().push(log.clone());
                let pipe = |mut from: TcpStream, mut to: TcpStream, log: Option<Log>| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 8192];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if let Some(log) = &log {
                                log.lock().unwrap().extend_from_slice(&buf[..n]);
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    })
                };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    Some(log),
                );
                pipe(server, client, None);
            }
        });
        Recorder { addr, sent }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Forgets what was recorded so far (connections kept alive go on
    /// being recorded from here).
    fn clear(&self) {
        for log in self.sent.lock().unwrap().iter() {
            log.lock().unwrap().clear();
        }
    }

    /// Every request recorded since the last [`Recorder::clear`], in order
    /// within each connection.
    fn requests(&self) -> Vec<Request> {
        let mut out = Vec::new();
        for log in self.sent.lock().unwrap().iter() {
            out.extend(parse_requests(&log.lock().unwrap()));
        }
        out
    }
}

/// The requests in what a client sent on one connection (HTTP/1.1 with
/// Content-Length bodies, as reqwest sends them).
fn parse_requests(bytes: &[u8]) -> Vec<Request> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(end) = bytes[at..].windows(4).position(|w| w == b"\r\n\r\n") {
        let head = std::str::from_utf8(&bytes[at..at + end]).unwrap();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap().split(' ');
        let (method, path) = (first.next().unwrap(), first.next().unwrap());
        let mut body_len = 0;
        let mut if_none_match = None;
        for line in lines {
            let (name, value) = line.split_once(':').unwrap();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => body_len = value.trim().parse().unwrap(),
                "if-none-match" => if_none_match = Some(value.trim().to_string()),
                _ => {}
            }
        }
        out.push(Request {
            method: method.into(),
            path: path.into(),
            body_len,
            if_none_match,
        });
        at += end + 4 + body_len;
    }
    out
}

/// The same requests without the ETag's value (a newer directory has
/// another), only whether one was sent.
fn shape(requests: &[Request]) -> Vec<(String, String, usize, bool)> {
    requests
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                r.body_len,
                r.if_none_match.is_some(),
            )
        })
        .collect()
}

async fn quiet_sync(p: &Profile, client: &RelayClient) -> SyncSummary {
    let settings = p.settings().unwrap();
    p.sync_all_within(
        client,
        &settings.coordinator().unwrap(),
        &settings.extra_relay_keys(),
        now,
        ReadBudget::default(),
        &mut |_| {},
    )
    .await
    .unwrap()
}

fn minor() -> DraftForm {
    DraftForm {
        needs: vec![Need::LegalAdvice],
        language: Some(Language::Es),
        place: Place {
            setting: None,
            country: Some("PE".into()),
            region: Some("PE-UCA".into()),
            detail: None,
        },
        text: "Un vecino me insultó en la calle; quería saber mis derechos.".into(),
        ..DraftForm::default()
    }
}

fn open_profile(dir: &Path, pin: &str) -> Profile {
    Profile::open(dir, pin).unwrap()
}

#[tokio::test]
async fn the_decoy_has_her_settings_and_directory_and_syncs_like_a_quiet_real_profile() {
    let mut e = SystemEntropy::new();
    let coordinator = SigningKey::generate(&mut e).unwrap();
    let pinned = coordinator.verifying_key();
    let relay = Relay::start(
        None,
        &[&format!(
            "--coordinator-key={}",
            b64::encode(pinned.as_bytes())
        )],
    );
    let direct = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    let recorder = Recorder::start(relay.addr);
    let client = RelayClient::new(&RelayConfig::new(recorder.url())).unwrap();

    let focal = RecipientKeys::generate(&mut e).unwrap();
    let fp = focal_point_entry("pe-uca-defensoria", focal.public());
    let mut directory = Directory {
        statistics: None,
        focal_points: vec![fp.clone()],
        service_routes: vec![],
        relays: vec![RelayEntry {
            name: "central".into(),
            url: None,
            receipt_key: *relay.receipt_key.as_bytes(),
        }],
    };
    direct
        .publish_directory(directory.sign(1, &coordinator).unwrap().as_bytes())
        .await
        .unwrap();

    // Her real profile: settings, the directory, one delivered report.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("ana");
    let real = Profile::create(&dir, PIN, KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    real.save_settings(&Settings {
        role: Some(Role::Survivor),
        relay_url: Some(recorder.url()),
        coordinator_key: Some(*pinned.as_bytes()),
        language: Some(Language::Pt),
        ..Settings::default()
    })
    .unwrap();
    assert_eq!(
        real.refresh_directory(&client, &pinned).await.unwrap(),
        Some(1)
    );
    let draft = real
        .create_draft(&DraftForm {
            text: CANARY.into(),
            ..DraftForm::default()
        })
        .unwrap();
    real.send_draft(&draft, &fp, true, now()).unwrap();
    assert_eq!(quiet_sync(&real, &client).await.delivered, 1);

    // What a quiet real profile with one report sends, before any duress
    // PIN: the directory, asked with its ETag, and one sweep of the reply
    // mailbox.
    recorder.clear();
    let summary = quiet_sync(&real, &client).await;
    assert_eq!(
        summary,
        SyncSummary {
            reply_bytes: summary.reply_bytes,
            ..SyncSummary::default()
        }
    );
    let before = recorder.requests();
    assert!(
        before
            .iter()
            .any(|r| r.method == "GET" && r.if_none_match.is_some()),
        "{before:?}"
    );
    assert!(before.iter().any(|r| r.method == "POST"), "{before:?}");

    // The duress PIN; then a setting changes and a newer directory comes.
    real.set_duress_pin_with_decoy(DURESS, false).unwrap();
    let changed = Settings {
        language: Some(Language::En),
        relay_keys: vec![*relay.receipt_key.as_bytes()],
        ..real.settings().unwrap()
    };
    real.save_settings(&changed).unwrap();
    directory.focal_points.push(focal_point_entry(
        "br-am-saude",
        RecipientKeys::generate(&mut e).unwrap().public(),
    ));
    direct
        .publish_directory(directory.sign(2, &coordinator).unwrap().as_bytes())
        .await
        .unwrap();
    assert_eq!(
        real.refresh_directory(&client, &pinned).await.unwrap(),
        Some(2)
    );
    // Harmless content she prepares for the decoy.
    let decoy_draft = real.decoy_add_draft(&minor()).unwrap();
    let old = amparo_protocol::UnixTime(now().0 - 40 * 24 * 3600);
    let decoy_report = real
        .decoy_add_delivered_report(&minor(), None, old)
        .unwrap();

    recorder.clear();
    quiet_sync(&real, &client).await;
    let real_quiet = recorder.requests();
    assert_eq!(
        shape(&real_quiet),
        shape(&before),
        "the duress PIN changes nothing of her sync"
    );
    drop(real);

    // Opened with the duress PIN.
    let decoy = open_profile(&dir, DURESS);
    assert_eq!(decoy.settings().unwrap(), changed);
    assert_eq!(decoy.settings().unwrap().role, Some(Role::Survivor));
    assert_eq!(decoy.settings().unwrap().language, Some(Language::En));
    assert_eq!(decoy.directory_version().unwrap(), Some(2));
    assert_eq!(decoy.directory(&pinned).unwrap().unwrap(), directory);
    // Its own content, none of hers.
    let drafts = decoy.drafts().unwrap();
    assert_eq!(
        drafts.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![decoy_draft]
    );
    let reports = decoy.sent_reports().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].id, decoy_report);
    assert_eq!(
        (reports[0].pending, reports[0].focal_point.as_str()),
        (0, "pe-uca-defensoria")
    );
    assert!(reports[0].delivered >= 1);
    assert_eq!(decoy.sent_copy(&decoy_report).unwrap(), Some(minor()));
    assert_eq!(decoy.outbox_len().unwrap(), 0);
    assert!(decoy.messages().unwrap().is_empty());

    // It syncs with no error, and sends what her real profile sends.
    recorder.clear();
    let summary = quiet_sync(&decoy, &client).await;
    assert_eq!(
        summary,
        SyncSummary {
            reply_bytes: summary.reply_bytes,
            ..SyncSummary::default()
        }
    );
    let decoy_quiet = recorder.requests();
    assert_eq!(
        decoy_quiet, real_quiet,
        "same requests, same sizes, same ETag"
    );
    assert_eq!(
        decoy.refresh_directory(&client, &pinned).await.unwrap(),
        Some(2)
    );
    drop(decoy);

    // The command line's `report sync` and `directory refresh` with the
    // duress PIN, as an inspector would run them.
    let ana = Person {
        dir: dir.clone(),
        pin: DURESS.into(),
    };
    let synced = ana.json(&["report", "sync"]);
    assert_eq!(synced["delivered"], 0, "{synced}");
    assert_eq!(synced["refused"], 0, "{synced}");
    ana.json(&["directory", "refresh"]);

    // The focal point holds her real report and nothing else: the decoy's
    // report was never sent.
    let page = direct.fetch(&focal, 0, 100, now(), &mut e).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(matches!(
        open(&page.items[0].1, &focal).unwrap(),
        Incoming::Report { ref report, .. } if report.text == CANARY
    ));

    // Her real profile is untouched by all this.
    let real = open_profile(&dir, PIN);
    let mine = real.sent_reports().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(real.sent_copy(&mine[0].id).unwrap().unwrap().text, CANARY);
    assert!(real.drafts().unwrap().is_empty());

    // Clearing the duress PIN leaves no decoy; she syncs as before.
    real.clear_duress_pin().unwrap();
    assert!(real.open_decoy().unwrap().is_none());
    recorder.clear();
    quiet_sync(&real, &client).await;
    assert_eq!(shape(&recorder.requests()), shape(&before));
    drop(real);
    assert!(matches!(
        Profile::open(&dir, DURESS),
        Err(CoreError::WrongPin)
    ));
}
