//! The `amparo` command line and `amparo-relay` as real processes over
//! loopback, on SQLite and on PostgreSQL: the whole story a coordinator,
//! two focal points, a survivor and a facilitator play with their own
//! profiles; a wrong PIN; a forged directory; a tampered envelope; a case
//! referred from one focal point to another.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use amparo_protocol::b64;
use amparo_protocol::bundle::BundleEncoder;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientPublic;
use amparo_protocol::padding::InnerHeader;
use amparo_tests::cli::{Person, focal_point_toml};
use amparo_tests::{Backend, Relay, backends, now};

/// A deployment: a relay that trusts the coordinator, a coordinator, two
/// focal points in the signed and published directory, a survivor and a
/// facilitator with profiles pointing at the relay.
struct World {
    relay: Relay,
    coordinator: Person,
    ucayali: Person,
    roraima: Person,
    survivor: Person,
    facilitator: Person,
    root: tempfile::TempDir,
    /// The coordinator's public key, as profiles pin it.
    coordinator_key: String,
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

impl World {
    fn new(backend: &Backend) -> World {
        World::with_relay_args(backend, &[])
    }

    /// A world whose relay also gets `relay_args` (limits, say).
    fn with_relay_args(backend: &Backend, relay_args: &[&str]) -> World {
        let root = tempfile::tempdir().unwrap();
        let coordinator = Person::new(root.path(), "coordinator");
        let key = coordinator.create("coordinator", &[])["coordinator_key"]
            .as_str()
            .unwrap()
            .to_string();
        let coordinator_arg = format!("--coordinator-key={key}");
        let mut args = vec![coordinator_arg.as_str()];
        args.extend_from_slice(relay_args);
        let relay = Relay::start(backend.database_url(), &args);
        let url = relay.url("");
        let common = |extra: &[&str]| {
            let mut v = vec![
                "--relay".to_string(),
                url.clone(),
                format!("--coordinator-key={key}"),
            ];
            v.extend(extra.iter().map(|s| s.to_string()));
            v
        };

        let ucayali = Person::new(root.path(), "ucayali");
        let a = ucayali.create(
            "focal-point",
            &as_refs(&common(&["--focal-point-id", "pe-ucayali"])),
        );
        let roraima = Person::new(root.path(), "roraima");
        let b = roraima.create(
            "focal-point",
            &as_refs(&common(&["--focal-point-id", "br-roraima"])),
        );
        let survivor = Person::new(root.path(), "survivor");
        survivor.create("survivor", &as_refs(&common(&[])));
        let facilitator = Person::new(root.path(), "facilitator");
        facilitator.create("facilitator", &as_refs(&common(&[])));
        coordinator.json(&["profile", "set", "--relay", &url]);

        let source = format!(
            "{}{}\n[[relay]]\nname = \"test\"\nreceipt_key = \"{}\"\n",
            focal_point_toml("pe-ucayali", "Defensoría Ucayali", "PE-UCA", &a),
            focal_point_toml("br-roraima", "Casa da Mulher Roraima", "BR-RR", &b),
            b64::encode(relay.receipt_key.as_bytes())
        );
        let source_path = root.path().join("directory.toml");
        std::fs::write(&source_path, source).unwrap();
        let signed = root.path().join("directory.amparo");
        let out = coordinator.json(&[
            "coordinator",
            "sign",
            source_path.to_str().unwrap(),
            "--out",
            signed.to_str().unwrap(),
        ]);
        assert!(out["version"].as_u64().unwrap() > 0);
        coordinator.json(&["coordinator", "publish", signed.to_str().unwrap()]);
        World {
            relay,
            coordinator,
            ucayali,
            roraima,
            survivor,
            facilitator,
            root,
            coordinator_key: key,
        }
    }

    fn path(&self, name: &str) -> String {
        self.root.path().join(name).to_str().unwrap().to_string()
    }
}

/// A JPEG with an EXIF block naming a place, and some image data.
fn photo_file(dir: &Path) -> std::path::PathBuf {
    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        s.extend_from_slice(payload);
        s
    }
    let mut jpeg = vec![0xFF, 0xD8];
    jpeg.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
    jpeg.extend(segment(0xE1, b"Exif\0\0GPS-CANARY -8.3791,-74.5539"));
    jpeg.extend(segment(0xDA, &[1, 1, 0, 0, 63, 0]));
    jpeg.extend((0..70_000u32).map(|i| (i % 251) as u8 & 0x7F));
    jpeg.extend_from_slice(&[0xFF, 0xD9]);
    let path = dir.join("patrulla.jpg");
    std::fs::write(&path, jpeg).unwrap();
    path
}

#[test]
fn the_story_over_real_processes() {
    for backend in backends() {
        let w = World::new(&backend);
        let name = backend.name();

        // The survivor's phone synced once in town: it holds the directory.
        assert!(w.survivor.json(&["directory", "refresh"])["version"].is_u64());
        let found = w
            .survivor
            .json(&["directory", "find", "--region", "PE-UCA"]);
        assert_eq!(found["suggested"], "pe-ucayali", "{name}");

        // Offline, she writes a report with a photo.
        let photo = photo_file(w.root.path());
        let written = w.survivor.json(&[
            "report",
            "write",
            "--text",
            "Dos agentes me pidieron dinero. CANARY-TEXT-4417",
            "--violence",
            "extortion",
            "--aggressor",
            "police-or-security",
            "--need",
            "legal-advice",
            "--region",
            "PE-UCA",
            "--country",
            "PE",
            "--when",
            "2026-11",
            "--attach",
            photo.to_str().unwrap(),
        ]);
        assert_eq!(written["focal_point"], "pe-ucayali", "{name}");
        let report = written["report"].as_str().unwrap().to_string();
        let listed = w.survivor.json(&["report", "list"]);
        assert_eq!(listed["reports"][0]["state"], "waiting", "{name}");

        // She hands it to a facilitator as a bundle.
        let bundle = w.path("outbox.amparo");
        w.survivor.json(&["report", "bundle", &bundle]);
        let bytes = std::fs::read(&bundle).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("CANARY-TEXT"));
        let imported = w.facilitator.json(&["carry", "import", &bundle]);
        assert_eq!(
            imported["envelopes"], 3,
            "{name}: report + two photo pieces"
        );
        let again = w.facilitator.json(&["carry", "import", &bundle]);
        assert_eq!(again["duplicates"], 3, "{name}: kept once");
        assert_eq!(w.facilitator.json(&["carry", "status"])["waiting"], 3);
        let synced = w.facilitator.json(&["carry", "sync"]);
        assert_eq!(synced["delivered"], 3, "{name}");
        assert_eq!(w.facilitator.json(&["carry", "status"])["delivered"], 3);

        // The focal point fetches, reads, saves the photo, answers.
        let fetched = w.ucayali.json(&["focal", "sync"]);
        assert_eq!(fetched["new_cases"], 1, "{name}");
        assert_eq!(fetched["rejected"], 0, "{name}");
        let cases = w.ucayali.json(&["focal", "cases", "--status", "received"]);
        assert_eq!(cases["cases"][0]["id"], report.as_str(), "{name}");
        let none = w.ucayali.json(&["focal", "cases", "--need", "children"]);
        assert_eq!(none["cases"].as_array().unwrap().len(), 0);
        let folder = w.path("case-files");
        let html = w.path("case.html");
        let shown = w.ucayali.json(&[
            "focal",
            "show",
            &report[..8],
            "--attachments",
            &folder,
            "--html",
            &html,
        ]);
        assert!(
            shown["report"]["text"]
                .as_str()
                .unwrap()
                .contains("CANARY-TEXT-4417")
        );
        let saved = shown["attachments"][0]["saved_to"].as_str().unwrap();
        let photo_back = std::fs::read(saved).unwrap();
        assert!(photo_back.starts_with(&[0xFF, 0xD8]));
        assert!(
            !String::from_utf8_lossy(&photo_back).contains("GPS-CANARY"),
            "{name}: the photo arrives without its GPS block"
        );
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(page.contains("CANARY-TEXT-4417") && page.contains("data:image/jpeg;base64,"));
        w.ucayali.json(&[
            "focal",
            "reply",
            &report[..8],
            "Recibimos su denuncia; una defensora la llamará.",
        ]);
        w.ucayali
            .json(&["focal", "status", &report[..8], "in-progress"]);
        assert_eq!(w.ucayali.json(&["focal", "sync"])["sent"], 2, "{name}");

        // The facilitator passes by signal again and picks up the sealed
        // answers with the leave the survivor's bundle gave her.
        let again = w.facilitator.json(&["carry", "sync"]);
        assert_eq!(again["replies"], 2, "{name}: {again}");
        let status = w.facilitator.json(&["carry", "status"]);
        assert_eq!(status["grants"], 1, "{name}");
        // Receipts and answers come back through the facilitator.
        let back = w.path("return.amparo");
        w.facilitator.json(&["carry", "export", &back]);
        assert!(!String::from_utf8_lossy(&std::fs::read(&back).unwrap()).contains("defensora"));
        let returned = w.survivor.json(&["report", "import", &back]);
        assert_eq!(returned["receipts_accepted"], 3, "{name}");
        assert_eq!(returned["messages"], 2, "{name}: {returned}");
        let listed = w.survivor.json(&["report", "list"]);
        assert_eq!(listed["reports"][0]["state"], "delivered", "{name}");
        assert_eq!(listed["reports"][0]["unread"], 2, "{name}");

        // She reads the answer without ever having had signal; her next
        // sync files nothing twice (and clears the answers at the relay).
        let replies = w.survivor.json(&["report", "replies"]);
        let texts: Vec<String> = replies["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.to_string())
            .collect();
        assert!(
            texts.iter().any(|m| m.contains("una defensora la llamar")),
            "{name}: {texts:?}"
        );
        assert!(
            texts.iter().any(|m| m.contains("in_progress")),
            "{name}: {texts:?}"
        );
        assert_eq!(
            w.survivor.json(&["report", "sync"])["new_messages"],
            0,
            "{name}"
        );
        assert_eq!(
            w.facilitator.json(&["carry", "sync"])["replies"],
            0,
            "{name}"
        );
        // People-facing output in the other languages.
        let es = w
            .survivor
            .try_run(&["--lang", "es", "report", "list"])
            .stdout;
        assert!(es.contains("entregada") && es.contains("En curso"), "{es}");

        // She writes back on the same channel; the focal point reads it.
        w.survivor
            .json(&["report", "answer", &report[..6], "Gracias. CANARY-FOLLOWUP"]);
        w.survivor.json(&["report", "sync"]);
        assert_eq!(w.ucayali.json(&["focal", "sync"])["messages"], 1);
        let shown = w.ucayali.json(&["focal", "show", &report[..8]]);
        assert!(
            shown["messages"][0]
                .as_str()
                .unwrap()
                .contains("CANARY-FOLLOWUP")
        );

        // The coordinator's profile shows the directory it signed.
        let dir = w.coordinator.json(&["directory", "show"]);
        assert_eq!(dir["focal_points"].as_array().unwrap().len(), 2);

        // Nothing the survivor wrote is readable in any profile on disk.
        for person in [&w.survivor, &w.facilitator, &w.ucayali] {
            for entry in std::fs::read_dir(&person.dir).unwrap() {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains("CANARY-TEXT") && !text.contains("CANARY-FOLLOWUP"));
            }
        }

        // Wipe: the profile is gone.
        w.survivor.json(&["profile", "wipe", "--yes"]);
        let after = w.survivor.try_run(&["report", "list"]);
        assert!(
            !after.ok && after.stderr.contains("no profile"),
            "{}",
            after.stderr
        );
    }
}

/// Every row of a profile's database as an inspector reads it, but the
/// wrong-PIN counter, which is returned apart.
struct Dump {
    rows: Vec<(String, Vec<String>)>,
    failed_attempts: u32,
}

fn dump(db: &std::path::Path) -> Dump {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut rows = Vec::new();
    let mut failed_attempts = None;
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let mut q = stmt.query([]).unwrap();
        while let Some(row) = q.next().unwrap() {
            let values: Vec<String> = (0..columns)
                .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                .collect();
            if table == "meta" && row.get::<_, String>(0).unwrap() == "attempts" {
                let v: Vec<u8> = row.get(1).unwrap();
                failed_attempts = Some(u32::from_be_bytes(v[..4].try_into().unwrap()));
                continue;
            }
            rows.push((table.clone(), values));
        }
    }
    Dump {
        rows,
        failed_attempts: failed_attempts.unwrap(),
    }
}

#[test]
fn a_wrong_pin_is_refused_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let p = Person::new(root.path(), "survivor");
    p.create("survivor", &[]);
    let before = dump(&p.dir.join("profile.sqlite"));
    let run = p.try_run_with_pin("0000", &["report", "list"]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("The PIN is not correct"),
        "{}",
        run.stderr
    );
    let es = p.try_run_with_pin("0000", &["--lang", "es", "report", "list"]);
    assert!(es.stderr.contains("El PIN no es correcto"), "{}", es.stderr);
    let json = p.try_run_with_pin("0000", &["--json", "report", "list"]);
    assert!(json.json()["error"].as_str().unwrap().contains("PIN"));
    // Nothing changed but the count of wrong PINs in a row (kept on disk so
    // the waits survive a restart: store::throttle), which is now 3.
    let after = dump(&p.dir.join("profile.sqlite"));
    assert_eq!(after.rows, before.rows);
    assert_eq!(before.failed_attempts, 0);
    assert_eq!(after.failed_attempts, 3);
    // The right PIN still opens it; a changed PIN replaces it.
    assert!(p.try_run(&["report", "list"]).ok);
    let changed = std::process::Command::new(amparo_tests::cli::amparo_binary())
        .args([
            "--profile",
            p.dir.to_str().unwrap(),
            "profile",
            "change-pin",
        ])
        .env("AMPARO_PIN", &p.pin)
        .env("AMPARO_NEW_PIN", "new-pin-8642")
        .output()
        .unwrap();
    assert!(changed.status.success());
    assert!(!p.try_run(&["report", "list"]).ok);
    assert!(p.try_run_with_pin("new-pin-8642", &["report", "list"]).ok);
}

#[test]
fn a_forged_directory_is_rejected_everywhere() {
    for backend in backends() {
        let w = World::new(&backend);
        // A second "coordinator" signs a directory with its own key.
        let forger = Person::new(w.root.path(), "forger");
        forger.create("coordinator", &[]);
        let source = w.path("forged.toml");
        let keys = serde_json::json!({
            "sealing_key": b64::encode(&[7; 32]),
            "signing_key": b64::encode(&[8; 32]),
        });
        std::fs::write(
            &source,
            focal_point_toml("pe-ucayali", "Fake", "PE-UCA", &keys),
        )
        .unwrap();
        let forged = w.path("forged.amparo");
        forger.json(&["coordinator", "sign", &source, "--out", &forged]);

        // The relay refuses it.
        let published = forger.try_run(&[
            "coordinator",
            "publish",
            &forged,
            "--relay",
            &w.relay.url(""),
        ]);
        assert!(
            !published.ok,
            "{}: relay accepted a forged directory",
            backend.name()
        );
        assert!(
            published
                .stderr
                .contains("started with another coordinator's key"),
            "{}",
            published.stderr
        );
        // A relay started without any coordinator key says how to fix it.
        let bare = Relay::start(backend.database_url(), &[]);
        let refused = w.coordinator.try_run(&[
            "coordinator",
            "publish",
            &w.path("directory.amparo"),
            "--relay",
            &bare.url(""),
        ]);
        assert!(
            !refused.ok
                && refused
                    .stderr
                    .contains("restart it with `--coordinator-key KEY`"),
            "{}",
            refused.stderr
        );
        // A phone refuses it, from a file or a bundle, and keeps its own.
        let before = w.survivor.json(&["directory", "refresh"])["version"].clone();
        let imported = w.survivor.try_run(&["directory", "import", &forged]);
        assert!(!imported.ok);
        let shown = w
            .survivor
            .try_run(&["directory", "show", "--file", &forged]);
        assert!(
            !shown.ok && shown.stderr.contains("does NOT verify"),
            "{}",
            shown.stderr
        );
        assert_eq!(w.survivor.json(&["directory", "show"])["version"], before);
        // The real one verifies.
        let real = w.coordinator.json(&["directory", "show"]);
        assert_eq!(real["verified"], true);
    }
}

#[test]
fn a_tampered_envelope_is_rejected_and_reported() {
    for backend in backends() {
        let w = World::new(&backend);
        // Someone on the way flips one byte of a sealed envelope's ciphertext.
        let public = w.ucayali.json(&["focal", "public"]);
        let keys = RecipientPublic {
            sealing_key: b64::decode_array(public["sealing_key"].as_str().unwrap(), "k").unwrap(),
            signing_key: b64::decode_array(public["signing_key"].as_str().unwrap(), "k").unwrap(),
        };
        let mut e = SystemEntropy::new();
        let header = InnerHeader::new(&mut e, now()).unwrap();
        let env = Envelope::seal(&keys, Purpose::Report, &header, b"{}", &mut e).unwrap();
        let mut bytes = env.into_bytes();
        let last = bytes.len() - 20;
        bytes[last] ^= 0x40;
        let tampered = Envelope::from_bytes(bytes).unwrap();
        let mut enc = BundleEncoder::new();
        enc.envelope(&tampered).unwrap();
        let file = w.path("tampered.amparo");
        std::fs::write(&file, enc.finish()).unwrap();

        // It travels (nobody on the way can tell), and the focal point
        // keeps it aside with the reason.
        w.facilitator.json(&["carry", "import", &file]);
        assert_eq!(w.facilitator.json(&["carry", "sync"])["delivered"], 1);
        let fetched = w.ucayali.json(&["focal", "sync"]);
        assert_eq!(fetched["rejected"], 1, "{}", backend.name());
        assert_eq!(fetched["new_cases"], 0);
        let rejected = w.ucayali.json(&["focal", "rejected"]);
        let row = &rejected["rejected"][0];
        assert_eq!(row["envelope"], tampered.id().to_string());
        assert!(!row["reason"].as_str().unwrap().is_empty());
        let human = w.ucayali.try_run(&["focal", "rejected"]).stdout;
        assert!(human.contains(&tampered.id().to_string()), "{human}");

        // A damaged bundle is refused past the damage, and says so: here
        // the damage is in its only envelope, so nothing is imported and the
        // error names the file.
        let mut damaged = std::fs::read(&file).unwrap();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 1;
        std::fs::write(&file, &damaged).unwrap();
        let run = w.facilitator.try_run(&["carry", "import", &file]);
        assert!(
            !run.ok
                && run.stderr.contains("tampered.amparo")
                && run.stderr.contains("Nothing was imported"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_case_is_referred_to_another_focal_point() {
    for backend in backends() {
        let w = World::new(&backend);
        let name = backend.name();
        w.survivor.json(&["directory", "refresh"]);
        let written = w.survivor.json(&[
            "report",
            "write",
            "--text",
            "Soy venezolana, necesito regularizar mi situación. CANARY-REF",
            "--need",
            "migration-status",
            "--region",
            "PE-UCA",
            "--attach",
            photo_file(w.root.path()).to_str().unwrap(),
        ]);
        let report = written["report"].as_str().unwrap().to_string();
        w.survivor.json(&["report", "sync"]);
        let synced = w.ucayali.json(&["focal", "sync"]);
        assert_eq!(synced["new_cases"], 1);
        assert_eq!(synced["listed"], true, "{name}: {synced}");
        // It answers and sets the case in progress, then refers it, all
        // within the same hour (the order a newcomer saw shuffled).
        w.ucayali
            .json(&["focal", "reply", &report[..8], "Recibimos su denuncia."]);
        w.ucayali
            .json(&["focal", "status", &report[..8], "in-progress"]);
        // Not to itself: refused, nothing queued or changed.
        let itself = w
            .ucayali
            .try_run(&["focal", "refer", &report[..8], "pe-ucayali"]);
        assert!(!itself.ok, "{name}: {}", itself.stdout);
        assert!(
            itself.stderr.contains("this focal point itself"),
            "{}",
            itself.stderr
        );
        assert_eq!(
            w.ucayali.json(&["focal", "cases"])["cases"][0]["status"],
            "in_progress"
        );
        w.ucayali.json(&[
            "focal",
            "refer",
            &report[..8],
            "br-roraima",
            "--note",
            "Caso migratorio: mejor atendido en Boa Vista.",
        ]);
        w.ucayali.json(&["focal", "sync"]);
        let theirs = w.ucayali.json(&["focal", "cases"]);
        assert_eq!(theirs["cases"][0]["status"], "referred", "{name}");
        assert_eq!(theirs["cases"][0]["referred_to"], "br-roraima", "{name}");
        // Its own record keeps what it did, in order, and the export for a
        // legal file says who exported it, when, and each attachment's hash.
        let own = w.ucayali.json(&["focal", "show", &report[..8]]);
        let kinds: Vec<&str> = own["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["reply", "status", "referred"], "{name}: {own}");
        let sha = own["attachments"][0]["sha256"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(sha.len(), 64);
        let html_path = w.path("case.html");
        w.ucayali
            .json(&["focal", "show", &report[..8], "--html", &html_path]);
        let html = std::fs::read_to_string(&html_path).unwrap();
        for needle in [
            "<title>Case ",
            "Defensoría Ucayali (pe-ucayali)",
            "Exported with Amparo: ",
            &sha,
            "Reply sent: Recibimos su denuncia.",
            "Status: In progress",
            "Referred to: Casa da Mulher Roraima (br-roraima)",
        ] {
            assert!(html.contains(needle), "{name}: no {needle:?} in\n{html}");
        }

        let got = w.roraima.json(&["focal", "sync"]);
        assert_eq!(got["new_cases"], 1, "{name}");
        let cases = w.roraima.json(&["focal", "cases"]);
        assert_eq!(cases["cases"][0]["referred_by"], "pe-ucayali", "{name}");
        let id = cases["cases"][0]["id"].as_str().unwrap();
        let shown = w.roraima.json(&["focal", "show", &id[..8]]);
        assert!(
            shown["report"]["text"]
                .as_str()
                .unwrap()
                .contains("CANARY-REF")
        );
        assert_eq!(shown["attachments"][0]["complete"], true, "{name}");
        assert!(
            shown["report"]["referral"]["note"]
                .as_str()
                .unwrap()
                .contains("Boa Vista")
        );

        // The survivor is told where her case went, not the internal note;
        // the new focal point answers on the channel she already reads.
        w.roraima.json(&[
            "focal",
            "reply",
            &id[..8],
            "Olá, podemos ajudar com o seu caso.",
        ]);
        w.roraima.json(&["focal", "sync"]);
        w.survivor.json(&["report", "sync"]);
        // Her list shows the status made last and where the case went, by
        // the office's name.
        let listed = w.survivor.json(&["report", "list"]);
        assert_eq!(
            listed["reports"][0]["status"], "referred",
            "{name}: {listed}"
        );
        assert_eq!(listed["reports"][0]["referred_to"], "br-roraima");
        let human = w.survivor.try_run(&["report", "list"]).stdout;
        assert!(
            human.contains("Referred to another office → Casa da Mulher Roraima (br-roraima)"),
            "{name}: {human}"
        );
        let replies = w.survivor.json(&["report", "replies"]);
        let seen: Vec<(String, String)> = replies["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["from"].as_str().unwrap_or("").to_string(),
                    m["status"].as_str().unwrap_or("reply").to_string(),
                )
            })
            .collect();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            seen,
            vec![
                pair("pe-ucayali", "reply"),
                pair("pe-ucayali", "in_progress"),
                pair("pe-ucayali", "referred"),
                pair("br-roraima", "reply"),
            ],
            "{name}: messages in the order they were made, each with its office"
        );
        let replies = replies.to_string();
        assert!(
            !replies.contains("Boa Vista"),
            "{name}: the note stays between focal points"
        );
        assert!(replies.contains("podemos ajudar"), "{replies}");
        let human = w.survivor.try_run(&["report", "replies"]).stdout;
        assert!(
            human.contains("Casa da Mulher Roraima (br-roraima) — Reply: Olá"),
            "{name}: {human}"
        );
        // Her answer goes to the office that holds her case now.
        let answered =
            w.survivor
                .json(&["report", "answer", &report[..8], "Obrigada, amanhã posso."]);
        assert_eq!(answered["to"], "br-roraima", "{name}: {answered}");
        w.survivor.json(&["report", "sync"]);
        assert_eq!(w.roraima.json(&["focal", "sync"])["messages"], 1, "{name}");
    }
}

#[test]
fn a_focal_point_missing_from_the_directory_is_told_so() {
    for backend in backends() {
        let w = World::new(&backend);
        let name = backend.name();
        let url = w.relay.url("");
        let key_arg = format!("--coordinator-key={}", w.coordinator_key);
        let stray = Person::new(w.root.path(), "stray");
        stray.create(
            "focal-point",
            &["--relay", &url, &key_arg, "--focal-point-id", "pe-lima"],
        );
        // Its sync works, and says nobody can reach it, and why.
        let synced = stray.json(&["focal", "sync"]);
        assert_eq!(synced["listed"], false, "{name}: {synced}");
        assert!(
            synced["warning"]
                .as_str()
                .unwrap()
                .contains("does not list pe-lima")
        );
        let run = stray.try_run(&["focal", "sync"]);
        assert!(run.ok, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("the directory does not list pe-lima: nobody can send it reports"),
            "{name}: {}",
            run.stderr
        );
        // A listed focal point is not warned.
        let run = w.ucayali.try_run(&["focal", "sync"]);
        assert!(
            run.ok && !run.stderr.contains("Warning"),
            "{name}: {}",
            run.stderr
        );
    }
}

#[test]
fn the_demo_runs_end_to_end() {
    // No --relay: the demo starts its own relay next to it.
    let relay_bin = amparo_tests::relay_binary();
    let out = std::process::Command::new(amparo_tests::cli::amparo_binary())
        .args(["--lang", "en", "demo", "--relay-bin"])
        .arg(relay_bin)
        .env_remove("AMPARO_RELAY")
        .env_remove("AMPARO_RELAY_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "published to the relay",
        "3 receipts signed by the relay",
        "SHA-256 checked",
        "marks the report \"delivered\"",
        "Case status: In progress",
        "Every step verified.",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
}

/// `amparo demo --json`: one JSON object per line, one per step with the
/// checks it verified, then `{"verified": true}`; a failed check is a step
/// with `"verified": false` and its id, then the error, and exit 1.
#[test]
fn the_demo_prints_json_when_asked() {
    let demo = |extra: &[&str]| {
        let out = std::process::Command::new(amparo_tests::cli::amparo_binary())
            .args(["--json", "--lang", "en", "demo"])
            .args(extra)
            .env_remove("AMPARO_RELAY")
            .env_remove("AMPARO_RELAY_KEY")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{stdout}"))
            })
            .collect();
        (out.status.success(), lines, stdout)
    };
    let relay_bin = amparo_tests::relay_binary();
    let (ok, lines, stdout) = demo(&["--relay-bin", relay_bin.to_str().unwrap()]);
    assert!(ok, "{stdout}");
    let (last, steps) = lines.split_last().unwrap();
    assert_eq!(last["verified"], true, "{stdout}");
    assert_eq!(steps.len(), 10, "{stdout}");
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(step["step"], i, "{step}");
        assert_eq!(step["verified"], true, "{step}");
        assert!(
            step["name"].is_string() && step["text"].is_string(),
            "{step}"
        );
        assert!(step["checks"].is_array(), "{step}");
    }
    let checks: Vec<&str> = steps
        .iter()
        .flat_map(|s| s["checks"].as_array().unwrap())
        .map(|c| c.as_str().unwrap())
        .collect();
    for id in [
        "directory_signature_verifies",
        "focal_point_suggested",
        "facilitator_cannot_read",
        "receipt_per_envelope",
        "photo_gps_gone",
        "report_delivered",
        "answer_and_status_read",
        "tokens_handed_on",
        "nothing_filed_twice",
    ] {
        assert!(checks.contains(&id), "{id} not verified: {checks:?}");
    }
    assert_eq!(steps[1]["published"], true);
    assert_eq!(steps[4]["receipts"], 3);
    assert_eq!(steps[7]["case_status"], "in_progress");
    assert_eq!(steps[7]["tokens"], 3);
    assert!(
        steps[4]["text"]
            .as_str()
            .unwrap()
            .contains("3 receipts signed")
    );

    // A relay whose receipts do not verify against the key given: the
    // failed step says which check, the error follows, exit 1.
    let relay = Relay::start(None, &[]);
    let url = relay.url("");
    let wrong_key = b64::encode(&[0u8; 32]);
    let (ok, lines, stdout) = demo(&["--relay", &url, "--relay-key", &wrong_key]);
    assert!(!ok, "{stdout}");
    let [.., failed, error] = lines.as_slice() else {
        panic!("{stdout}")
    };
    assert_eq!(failed["verified"], false, "{stdout}");
    assert_eq!(failed["step"], 4);
    assert_eq!(failed["failed_check"], "receipt_per_envelope");
    assert!(
        error["error"].as_str().unwrap().contains("step 4"),
        "{stdout}"
    );
    assert!(
        lines.iter().rev().skip(2).all(|l| l["verified"] == true),
        "{stdout}"
    );
}

/// `./run.sh` runs the programs where cargo says it built them, not
/// `./target/release`, so it works with CARGO_TARGET_DIR. A release build
/// takes minutes here, so cargo is stood in for by a script that answers
/// `cargo build --message-format=json-render-diagnostics` as cargo does,
/// naming executables in a target directory elsewhere (links to the test
/// build's programs); everything else is the real script, relay and demo.
#[test]
fn run_sh_runs_the_programs_where_cargo_built_them() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let target = root.path().join("elsewhere");
    let release = target.join("release");
    std::fs::create_dir_all(&release).unwrap();
    let relay_bin = release.join("amparo-relay");
    let amparo_bin = release.join("amparo");
    // run.sh only names the desk (it prints the command that opens it).
    let desk_bin = release.join("amparo-desk");
    std::os::unix::fs::symlink(amparo_tests::relay_binary(), &relay_bin).unwrap();
    std::os::unix::fs::symlink(amparo_tests::cli::amparo_binary(), &amparo_bin).unwrap();
    std::os::unix::fs::symlink(amparo_tests::cli::amparo_binary(), &desk_bin).unwrap();
    let artifact = |name: &str, package: &str, path: &Path| {
        let p = path.display();
        format!(
            r#"{{"reason":"compiler-artifact","package_id":"path+file:///src/{package}#{name}@0.1.0","manifest_path":"/src/{package}/Cargo.toml","target":{{"kind":["bin"],"crate_types":["bin"],"name":"{name}","src_path":"/src/{package}/src/main.rs","edition":"2024","doc":true,"doctest":false,"test":true}},"profile":{{"opt_level":"3","debuginfo":0,"debug_assertions":false,"overflow_checks":false,"test":false}},"features":[],"filenames":["{p}"],"executable":"{p}","fresh":true}}"#
        )
    };
    let lib = r#"{"reason":"compiler-artifact","package_id":"path+file:///src/protocol#amparo-protocol@0.1.0","target":{"kind":["lib"],"name":"amparo_protocol"},"filenames":["/x/libamparo_protocol.rlib"],"executable":null,"fresh":true}"#;
    let fake_cargo = |dir: &Path, artifacts: &[String]| {
        let script = dir.join("cargo");
        let mut text = format!("#!/bin/sh\necho \"$@\" > '{}/args'\n", dir.display());
        for a in artifacts {
            text.push_str(&format!("echo '{a}'\n"));
        }
        text.push_str("echo 'Compiling (on stderr, as cargo says it)' >&2\n");
        text.push_str("echo '{\"reason\":\"build-finished\",\"success\":true}'\n");
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    };
    let run_sh = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("run.sh");
    let data = root.path().join("relay-data");
    let demo = root.path().join("demo-profiles");
    let command = |cargo: &Path| {
        let mut cmd = std::process::Command::new(&run_sh);
        cmd.env("CARGO", cargo)
            .env("AMPARO_DEMO_DIR", &demo)
            .env("CARGO_TARGET_DIR", &target)
            .env("AMPARO_LISTEN", "127.0.0.1:0")
            .env("AMPARO_DATA_DIR", &data)
            .env("LC_ALL", "C")
            .env_remove("AMPARO_CONFIG")
            .env_remove("DATABASE_URL")
            .env_remove("AMPARO_RELAY")
            .env_remove("AMPARO_RELAY_KEY")
            .env_remove("AMPARO_LANG");
        cmd
    };

    // Cargo names no executable: a clear refusal, nothing started.
    let silent = root.path().join("silent");
    std::fs::create_dir_all(&silent).unwrap();
    let out = command(&fake_cargo(&silent, &[lib.to_string()]))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did not say where"), "{err}");
    assert!(!data.exists(), "no relay was started");

    let speaking = root.path().join("speaking");
    std::fs::create_dir_all(&speaking).unwrap();
    let cargo = fake_cargo(
        &speaking,
        &[
            lib.to_string(),
            artifact("amparo-relay", "server", &relay_bin),
            artifact("amparo", "cli", &amparo_bin),
            artifact("amparo-desk", "desk", &desk_bin),
        ],
    );
    let stderr_file = std::fs::File::create(root.path().join("stderr")).unwrap();
    let mut child = command(&cargo)
        .stdout(std::process::Stdio::piped())
        .stderr(stderr_file)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut printed = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !printed.contains("The relay keeps running") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                printed.push_str(&line);
                printed.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "run.sh did not get to the end:\n{printed}\nstderr:\n{}",
                    std::fs::read_to_string(root.path().join("stderr")).unwrap()
                );
            }
        }
    }
    let args = std::fs::read_to_string(speaking.join("args")).unwrap();
    assert!(
        args.contains("build --release")
            && args.contains("-p amparo-relay")
            && args.contains("--message-format=json-render-diagnostics"),
        "{args}"
    );
    assert!(printed.contains("Every step verified."), "{printed}");
    // The desk's command, on the demo's focal point, whose profile is kept.
    let desk_line = format!(
        "{} --profile {}/focal-ucayali",
        desk_bin.display(),
        demo.display()
    );
    assert!(printed.contains(&desk_line), "{printed}");
    assert!(
        amparo_core::store::Profile::exists(&demo.join("focal-ucayali")),
        "the demo's focal point profile is kept for the desk"
    );
    // The key it shows is the relay's, as `amparo-relay key` reads it.
    let key = std::process::Command::new(amparo_tests::relay_binary())
        .args(["key", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let key = String::from_utf8_lossy(&key.stdout).trim().to_string();
    assert_eq!(key.len(), 43, "{key}");
    assert!(printed.contains(&format!("receipt key {key}")), "{printed}");
    let addr = printed
        .split("The relay keeps running at http://")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .to_string();
    assert!(
        std::net::TcpStream::connect(&addr).is_ok(),
        "relay at {addr}"
    );

    // Ctrl-C (here TERM) stops the relay too.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let stopped = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(&addr).is_err()
    });
    assert!(stopped, "the relay at {addr} outlived run.sh");
}

#[test]
fn a_report_written_by_answering_questions() {
    use std::io::Write;
    let w = World::new(&Backend::Sqlite);
    w.survivor.json(&["directory", "refresh"]);
    let mut child = std::process::Command::new(amparo_tests::cli::amparo_binary())
        .args([
            "--profile",
            w.survivor.dir.to_str().unwrap(),
            "--lang",
            "es",
        ])
        .args(["--json", "report", "write", "--interactive"])
        .env("AMPARO_PIN", &w.survivor.pin)
        .env("AMPARO_INTERACTIVE_STDIN", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Extortion; police; legal advice; region; a border area; 18 or
    // older; date; reply language (empty: the session's); not reported
    // elsewhere; yes to being counted; no attachments (an empty line); two
    // lines; end.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            "6\n2\n1\nPE-UCA\n1\n3\n2026-11-02\n\nno\nsí\n\nMe quitaron el documento.\nCANARY-ASKED\n\n"
                .as_bytes(),
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("¿Qué pasó?") && stderr.contains("Extorsión"),
        "{stderr}"
    );
    let written: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(written["focal_point"], "pe-ucayali");
    w.survivor.json(&["report", "sync"]);
    w.ucayali.json(&["focal", "sync"]);
    let case = w
        .ucayali
        .json(&["focal", "show", &written["report"].as_str().unwrap()[..8]]);
    let report = &case["report"];
    assert_eq!(report["text"], "Me quitaron el documento.\nCANARY-ASKED");
    assert_eq!(report["violence"][0], "extortion");
    assert_eq!(report["aggressors"][0], "police_or_security");
    assert_eq!(report["needs"][0], "legal_advice");
    assert_eq!(report["when"]["day"], 2);
    assert!(
        stderr.contains("¿Podemos contar este caso") && stderr.contains("frontera"),
        "{stderr}"
    );
    assert_eq!(report["place"]["setting"], "border");
    assert_eq!(report["age_band"], "age_18_plus");
    assert_eq!(report["reported_elsewhere"], false);
    assert_eq!(report["statistics_consent"], true);
}

// ---- What a newcomer trips on (issue 14): lost input, half-made profiles,
// ---- errors that do not say what, imports that disagree, wording.

/// Runs `amparo` for `p` with extra environment and stdin piped; answers
/// `input` and returns (ok, stdout, stderr).
fn answer_questions(p: &Person, args: &[&str], input: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut cmd = p.command(args);
    cmd.env("AMPARO_INTERACTIVE_STDIN", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // The child may stop reading early (an error before the questions).
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn writing_interactively_checks_first_accepts_region_names_and_asks_again() {
    let w = World::new(&Backend::Sqlite);
    // No directory yet: refused before a single question, nothing stored.
    let (ok, _, stderr) = answer_questions(
        &w.survivor,
        &["report", "write", "--interactive"],
        "6\n2\n1\n",
    );
    assert!(!ok);
    assert!(
        stderr.contains("no directory of focal points yet") && stderr.contains("directory refresh"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("What happened?"),
        "asked before checking: {stderr}"
    );
    assert_eq!(w.survivor.json(&["report", "list"])["drafts"], 0);

    w.survivor.json(&["directory", "refresh"]);
    let note = w.root.path().join("nota.txt");
    std::fs::write(&note, "recibo del hotel").unwrap();
    // A region nobody knows, then one nobody serves, then a name in lower
    // case; a date with month 13, then a good one; Portuguese answers; a
    // file that is not there, then one that is.
    let input = format!(
        "6\n2\n1\nAtlantis\nlima\nucayali\n\n\n2026-13-45\n2026-11-02\n2\n\n\n{}\n{}\n\nCANARY-NAMED\n\n",
        w.path("nofoto.jpg"),
        note.display()
    );
    let (ok, stdout, stderr) = answer_questions(
        &w.survivor,
        &["--json", "report", "write", "--interactive"],
        &input,
    );
    assert!(ok, "{stderr}");
    for said in [
        "Ucayali (PE-UCA)",            // the list to choose from
        "Unknown region \"Atlantis\"", // asked again, with the list
        "No focal point in the directory serves Lima (PE-LIM)",
        "the month must be 01 to 12",
        "nofoto.jpg: it does not exist",
        "In which language do you want the answers?",
    ] {
        assert!(stderr.contains(said), "missing {said:?} in:\n{stderr}");
    }
    let written: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(written["focal_point"], "pe-ucayali");
    assert_eq!(
        written["envelopes"], 2,
        "the report and the note: {written}"
    );
    w.survivor.json(&["report", "sync"]);
    w.ucayali.json(&["focal", "sync"]);
    let case = w
        .ucayali
        .json(&["focal", "show", &written["report"].as_str().unwrap()[..8]]);
    let report = &case["report"];
    assert_eq!(report["text"], "CANARY-NAMED");
    assert_eq!(report["language"], "pt");
    assert_eq!(report["place"]["region"], "PE-UCA");
    assert_eq!(report["place"]["country"], "PE");
    assert_eq!(report["when"]["month"], 11);
    assert_eq!(case["attachments"].as_array().unwrap().len(), 1, "{case}");
    // Questions left blank say nothing, and no answer is no consent.
    assert!(report.get("statistics_consent").is_none(), "{report}");
    assert!(report.get("age_band").is_none() && report.get("reported_elsewhere").is_none());
}

#[test]
fn what_she_typed_is_kept_as_a_draft_when_sealing_fails_at_the_end() {
    use std::io::{Read, Write};
    let w = World::new(&Backend::Sqlite);
    w.survivor.json(&["directory", "refresh"]);
    let photo = photo_file(w.root.path());
    let mut child = w
        .survivor
        .command(&["report", "write", "--interactive"])
        .env("AMPARO_INTERACTIVE_STDIN", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut all = String::new();
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
            let _ = tx.send(all.clone());
        }
        all
    });
    writeln!(stdin, "1\n1\n1\nPE-UCA\n\n\n\n\n\n\n{}\n", photo.display()).unwrap();
    // She is asked for her account only once the photo was accepted; then
    // the photo goes away (moved, or the card removed) before the end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let seen = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("the question for her account never came");
        if seen.contains("Tell what happened") {
            break;
        }
    }
    std::fs::remove_file(&photo).unwrap();
    stdin
        .write_all(b"Me golpearon en la comisaria. CANARY-KEPT\n\n")
        .unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let said = reader.join().unwrap();
    assert!(!status.success());
    assert!(
        said.contains("The report was NOT sealed")
            && said.contains("patrulla.jpg")
            && said.contains("Nothing you typed was lost")
            && said.contains("amparo report write --draft"),
        "{said}"
    );
    assert_eq!(w.survivor.json(&["report", "list"])["drafts"], 1);
    // Later she sends it, with another file; the focal point gets her words.
    let note = w.root.path().join("nota.txt");
    std::fs::write(&note, "foto perdida").unwrap();
    let sent = w.survivor.json(&[
        "report",
        "write",
        "--draft",
        "--attach",
        note.to_str().unwrap(),
    ]);
    assert_eq!(sent["focal_point"], "pe-ucayali");
    assert_eq!(w.survivor.json(&["report", "list"])["drafts"], 0);
    w.survivor.json(&["report", "sync"]);
    w.ucayali.json(&["focal", "sync"]);
    let case = w
        .ucayali
        .json(&["focal", "show", &sent["report"].as_str().unwrap()[..8]]);
    assert!(
        case["report"]["text"]
            .as_str()
            .unwrap()
            .contains("CANARY-KEPT")
    );
    assert_eq!(case["attachments"].as_array().unwrap().len(), 1);
    // Nothing left to send as a draft.
    let again = w.survivor.try_run(&["report", "write", "--draft"]);
    assert!(
        !again.ok && again.stderr.contains("no drafts"),
        "{}",
        again.stderr
    );
}

#[test]
fn regions_by_code_or_name_in_any_case_and_errors_that_say_what() {
    let w = World::new(&Backend::Sqlite);
    w.survivor.json(&["directory", "refresh"]);
    for region in ["Ucayali", "pe-uca", "PE-UCA"] {
        let written = w
            .survivor
            .json(&["report", "write", "--text", "x", "--region", region]);
        assert_eq!(written["focal_point"], "pe-ucayali", "{region}");
    }
    // With --to she picked the office herself: a region nobody serves is
    // still hers to give.
    let chosen = w.survivor.json(&[
        "report",
        "write",
        "--text",
        "x",
        "--region",
        "lima",
        "--to",
        "br-roraima",
    ]);
    assert_eq!(chosen["focal_point"], "br-roraima");
    let before = w.survivor.json(&["report", "list"]);
    let refused = |args: &[&str]| {
        let run = w.survivor.try_run(args);
        assert!(!run.ok, "{args:?} was accepted: {}", run.stdout);
        run.stderr
    };
    let e = refused(&["report", "write", "--text", "x", "--region", "Atlantis"]);
    assert!(
        e.contains("Atlantis") && e.contains("Ucayali (PE-UCA)") && e.contains("Roraima (BR-RR)"),
        "{e}"
    );
    let e = refused(&[
        "report",
        "write",
        "--text",
        "x",
        "--attach",
        &w.path("nofoto.jpg"),
    ]);
    assert!(
        e.contains("Cannot attach") && e.contains("nofoto.jpg"),
        "{e}"
    );
    let e = refused(&["report", "write", "--text", "x", "--when", "2026-13-45"]);
    assert!(
        e.contains("2026-13-45") && e.contains("YYYY-MM-DD") && e.contains("month"),
        "{e}"
    );
    let e = refused(&["report", "write"]);
    assert!(e.contains("--interactive") && e.contains("--text"), "{e}");
    let e = refused(&["--lang", "es", "report", "write"]);
    assert!(
        e.contains("Falta el relato") && e.contains("--interactive"),
        "{e}"
    );
    // None of those stored anything.
    assert_eq!(w.survivor.json(&["report", "list"]), before);

    // Checking a directory file needs a key: say how to give it.
    let nobody = Person::new(w.root.path(), "nobody");
    let e = nobody
        .try_run(&["directory", "show", "--file", &w.path("directory.amparo")])
        .stderr;
    assert!(
        e.contains("--coordinator-key") && e.contains("--profile"),
        "{e}"
    );
    let shown = nobody.json(&[
        "directory",
        "show",
        "--file",
        &w.path("directory.amparo"),
        // With `=`: a key may start with `-` (base64url), which alone
        // would read as another flag.
        &format!("--coordinator-key={}", w.coordinator_key),
    ]);
    assert_eq!(shown["verified"], true);
    let e = nobody
        .try_run(&[
            "directory",
            "show",
            "--file",
            &w.path("directory.amparo"),
            "--coordinator-key",
            "notakey",
        ])
        .stderr;
    assert!(
        e.contains("--coordinator-key") && e.contains("43 base64url"),
        "{e}"
    );

    // A value that is not accepted: the list, in the session's language.
    for (lang, said) in [
        ("es", "«done» no es un valor aceptado. Valores aceptados:"),
        ("pt", "«done» não é um valor aceito. Valores aceitos:"),
        ("en", "\"done\" is not an accepted value. Accepted values:"),
    ] {
        let run = w
            .ucayali
            .try_run(&["--lang", lang, "focal", "status", "224a", "done"]);
        assert!(!run.ok);
        assert!(
            run.stderr.contains(said) && run.stderr.contains("in-progress"),
            "{lang}: {}",
            run.stderr
        );
    }
    let run = w
        .ucayali
        .try_run(&["--lang", "es", "focal", "status", "224a"]);
    assert!(
        run.stderr.contains("Falta lo siguiente: <STATUS>"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_failed_profile_create_leaves_nothing_and_the_corrected_one_works() {
    let root = tempfile::tempdir().unwrap();
    let p = Person::new(root.path(), "fp");
    let key = b64::encode(&[3u8; 32]);
    let cases: [(&[&str], &str); 4] = [
        (
            &["--relay", "not a url"],
            "--relay: \"not a url\" is not a valid address",
        ),
        (
            &["--coordinator-key", "notakey"],
            "--coordinator-key: \"notakey\" is not a key",
        ),
        (&["--relay-key", "short"], "--relay-key"),
        (&["--focal-point-id", "Pe Ucayali"], "--focal-point-id"),
    ];
    for (extra, said) in cases {
        let mut args = vec![
            "profile",
            "create",
            "--role",
            "focal-point",
            "--dangerously-fast-kdf",
        ];
        args.extend_from_slice(extra);
        let run = p.try_run(&args);
        assert!(!run.ok, "{extra:?}");
        assert!(run.stderr.contains(said), "{extra:?}: {}", run.stderr);
        assert!(!p.dir.exists(), "{extra:?} left {:?}", p.dir);
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
    let made = p.create(
        "focal-point",
        &[
            "--relay",
            "http://127.0.0.1:9",
            &format!("--coordinator-key={key}"),
            "--focal-point-id",
            "pe-ucayali",
        ],
    );
    assert!(made["sealing_key"].is_string());
    let shown = p.json(&["profile", "show"]);
    assert_eq!(shown["role"], "focal_point");
    assert_eq!(shown["focal_point_id"], "pe-ucayali");
    // A bad value for an existing profile changes nothing either.
    let before = p.json(&["profile", "show"]);
    assert!(!p.try_run(&["profile", "set", "--relay", "ftp://x"]).ok);
    assert_eq!(p.json(&["profile", "show"]), before);
    let again = p.try_run(&["profile", "create", "--dangerously-fast-kdf"]);
    assert!(
        !again.ok && again.stderr.contains("already exists") && again.stderr.contains("--profile"),
        "{}",
        again.stderr
    );
}

#[test]
fn without_a_terminal_or_amparo_pin_it_says_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let p = Person::new(root.path(), "me");
    p.create("survivor", &[]);
    for (lang, said) in [
        ("es", "No hay una terminal donde pedir el PIN"),
        ("pt", "Não há um terminal onde pedir o PIN"),
        ("en", "There is no terminal to ask for the PIN"),
    ] {
        // A new session: no controlling terminal, as under cron or a service.
        let out = std::process::Command::new("setsid")
            .arg("--wait")
            .arg(amparo_tests::cli::amparo_binary())
            .args(["--profile", p.dir.to_str().unwrap(), "--lang", lang])
            .args(["report", "list"])
            .env_remove("AMPARO_PIN")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains(said) && stderr.contains("AMPARO_PIN"),
            "{lang}: {stderr}"
        );
        assert!(!stderr.contains("os error"), "{stderr}");
    }
}

#[test]
fn imports_agree_on_damaged_files_and_say_why_receipts_were_ignored() {
    let w = World::new(&Backend::Sqlite);
    w.survivor.json(&["directory", "refresh"]);
    // Garbage: an error for both, naming the file; nothing changes.
    let garbage = w.path("garbage.amparo");
    std::fs::write(&garbage, b"this is not a bundle at all").unwrap();
    for (who, args) in [
        (&w.survivor, ["report", "import", garbage.as_str()]),
        (&w.facilitator, ["carry", "import", garbage.as_str()]),
    ] {
        let run = who.try_run(&args);
        assert!(!run.ok, "{args:?}: {}", run.stdout);
        assert!(
            run.stderr.contains("garbage.amparo") && run.stderr.contains("Nothing was imported"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert_eq!(w.facilitator.json(&["carry", "status"])["waiting"], 0);

    // Damaged part-way: both keep what came before, say so, and fail.
    w.survivor
        .json(&["report", "write", "--text", "uno", "--region", "PE-UCA"]);
    w.survivor
        .json(&["report", "write", "--text", "dos", "--region", "PE-UCA"]);
    let whole = w.path("outbox.amparo");
    w.survivor.json(&["report", "bundle", &whole]);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = w.path("cut.amparo");
    std::fs::write(&cut, &bytes[..bytes.len() - 600]).unwrap();
    let run = w.facilitator.try_run(&["--json", "carry", "import", &cut]);
    assert!(!run.ok);
    let kept = run.json();
    assert!(kept["damaged"].is_string(), "{kept}");
    assert_eq!(
        kept["envelopes"], 1,
        "the envelope before the damage: {kept}"
    );
    assert!(
        run.stderr.contains("Damaged: ") && run.stderr.contains("cut.amparo"),
        "{}",
        run.stderr
    );
    let human = w.roraima.try_run(&["report", "import", &cut]);
    assert!(!human.ok);
    assert!(
        human
            .stdout
            .contains("only what came before the damage was kept"),
        "{}",
        human.stdout
    );
    assert!(
        human.stderr.contains("Damaged: ") && human.stderr.contains("cut.amparo"),
        "{}",
        human.stderr
    );

    // The whole bundle travels; the facilitator who imports her own return
    // bundle is told why its receipts do nothing on her phone.
    w.facilitator.json(&["carry", "import", &whole]);
    w.facilitator.json(&["carry", "sync"]);
    let back = w.path("back.amparo");
    let exported = w.facilitator.try_run(&["carry", "export", &back]);
    assert!(
        exported.stdout.contains("2 receipts") && exported.stdout.contains("Hand it to the people"),
        "{}",
        exported.stdout
    );
    let own = w.facilitator.try_run(&["carry", "import", &back]);
    assert!(own.ok, "{}", own.stderr);
    assert!(
        own.stdout.contains(
            "Receipts ignored: 2: a receipt only counts on the phone that wrote the report"
        ),
        "{}",
        own.stdout
    );
    let hers = w.survivor.json(&["report", "import", &back]);
    assert_eq!(hers["receipts_accepted"], 2);
    let other = w.roraima.try_run(&["report", "import", &back]);
    assert!(
        other.stdout.contains("they are for other people's reports"),
        "{}",
        other.stdout
    );
}

#[test]
fn counts_agree_reports_are_told_from_envelopes_and_keys_are_words() {
    let w = World::new(&Backend::Sqlite);
    // The world's directory: two focal points, no routes, one relay.
    let signed = w.coordinator.try_run(&[
        "coordinator",
        "sign",
        &w.path("directory.toml"),
        "--out",
        &w.path("again.amparo"),
    ]);
    assert!(
        signed
            .stdout
            .contains("2 focal points, 0 service routes, 1 relay."),
        "{}",
        signed.stdout
    );
    let es = w.coordinator.try_run(&[
        "--lang",
        "es",
        "coordinator",
        "sign",
        &w.path("directory.toml"),
        "--out",
        &w.path("again.amparo"),
    ]);
    assert!(
        es.stdout
            .contains("2 puntos focales, 0 rutas de atención, 1 relay."),
        "{}",
        es.stdout
    );

    // A report with a photo: the write says how many envelopes, as list does.
    w.survivor.json(&["directory", "refresh"]);
    let photo = photo_file(w.root.path());
    let written = w.survivor.try_run(&[
        "report",
        "write",
        "--text",
        "x",
        "--region",
        "PE-UCA",
        "--attach",
        photo.to_str().unwrap(),
    ]);
    assert!(
        written.stdout.contains("in 3 envelopes") && written.stdout.contains("delivered: 0 of 3"),
        "{}",
        written.stdout
    );
    let synced = w.survivor.try_run(&["report", "sync"]);
    assert!(
        synced
            .stdout
            .contains("Delivered now: 1 report (3 envelopes signed for by the relay)"),
        "{}",
        synced.stdout
    );

    // profile show: words, not keys; language names in the page's language.
    let shown = w.survivor.try_run(&["profile", "show"]).stdout;
    assert!(
        !shown.contains("carrying_delivered") && !shown.contains("drafts:"),
        "{shown}"
    );
    assert!(
        shown.contains("Role: survivor") && shown.contains("1 report sent"),
        "{shown}"
    );
    let pt = w
        .survivor
        .try_run(&["--lang", "pt", "profile", "show"])
        .stdout;
    assert!(pt.contains("Idioma: inglês"), "{pt}");
    let dir = w
        .survivor
        .try_run(&["--lang", "pt", "directory", "show"])
        .stdout;
    assert!(dir.contains("Idiomas: espanhol, português"), "{dir}");

    // Publishing to a relay that cannot be reached says it did not happen.
    let run = w.coordinator.try_run(&[
        "coordinator",
        "publish",
        &w.path("directory.amparo"),
        "--relay",
        "http://127.0.0.1:9",
    ]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("NOT published") && run.stderr.contains("not queued"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("next sync"), "{}", run.stderr);
}

#[test]
fn answers_to_a_full_reply_mailbox_wait_on_the_focal_points_machine() {
    for backend in backends() {
        let name = backend.name();
        // A relay that keeps one envelope per reply mailbox.
        let w = World::with_relay_args(&backend, &["--reply-mailbox-max-envelopes=1"]);
        w.survivor.json(&["directory", "refresh"]);
        let written = w.survivor.json(&[
            "report",
            "write",
            "--text",
            "Me quitaron el dinero.",
            "--need",
            "legal-advice",
            "--region",
            "PE-UCA",
        ]);
        let report = written["report"].as_str().unwrap().to_string();
        w.survivor.json(&["report", "sync"]);
        assert_eq!(w.ucayali.json(&["focal", "sync"])["new_cases"], 1);
        for text in ["Uno.", "Dos.", "Tres."] {
            w.ucayali.json(&["focal", "reply", &report[..8], text]);
        }
        // One fits; two wait here, and it says so.
        let run = w.ucayali.try_run(&["focal", "sync"]);
        assert!(run.ok, "{name}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("The relay could not take 2 envelopes now"),
            "{name}: {}",
            run.stderr
        );
        // Each time she reads, the next one goes: nothing is lost.
        for _ in 0..3 {
            w.survivor.json(&["report", "sync"]);
            w.ucayali.json(&["focal", "sync"]);
        }
        let replies = w.survivor.json(&["report", "replies"]);
        let texts: Vec<&str> = replies["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["text"].as_str())
            .collect();
        assert_eq!(texts, ["Uno.", "Dos.", "Tres."], "{name}: {replies}");
        assert_eq!(w.ucayali.json(&["focal", "sync"])["postponed"], 0);
    }
}

/// A key is base64url, so one in 64 begins with "-" (a facilitator's key
/// did, and `focal vouch` took it for a flag); a survivor may begin her words
/// with a dash. Both are values, not options, wherever they are asked for.
#[test]
fn values_that_begin_with_a_hyphen_are_values() {
    let backend = backends().into_iter().next().unwrap();
    let w = World::new(&backend);
    let key = format!("-{}", "A".repeat(42));
    let vouched = w.ucayali.json(&["focal", "vouch", &key, "--days", "10"]);
    assert!(vouched["voucher"].as_str().is_some(), "{vouched}");
    w.survivor.json(&["directory", "refresh"]);
    let written = w.survivor.json(&[
        "report",
        "write",
        "--text",
        "- me siguieron hasta la casa\n- me amenazaron",
        "--need",
        "legal-advice",
        "--region",
        "PE-UCA",
    ]);
    assert!(written["report"].as_str().is_some(), "{written}");
    // A misspelt option is still refused, not swallowed as a value.
    let wrong = w.ucayali.try_run(&["focal", "vouch", &key, "--dayz", "10"]);
    assert!(!wrong.ok, "{}", wrong.stdout);
}

/// Admission tokens at the command line (PROTOCOL.md §14.2): a focal point
/// asks the relay for tokens, vouches for a facilitator who asks for her
/// own, and she hands two to a survivor as text.
#[test]
fn tokens_are_asked_for_vouched_and_handed_on() {
    // The relay's part runs on both backends in tests/tokens.rs; here the
    // commands, on SQLite.
    let backend = backends().into_iter().next().unwrap();
    let w = World::new(&backend);
    w.ucayali.json(&["focal", "sync"]);
    let asked = w.ucayali.json(&["focal", "tokens", "--ask", "4"]);
    assert_eq!(
        (asked["added"].as_u64(), asked["held"].as_u64()),
        (Some(4), Some(4)),
        "{asked}"
    );

    let key = w.facilitator.json(&["carry", "key"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    // Without a voucher she is told to get one.
    w.facilitator.json(&["carry", "sync"]);
    let refused = w.facilitator.try_run(&["carry", "tokens", "--ask", "1"]);
    assert!(
        !refused.ok && refused.stderr.contains("voucher"),
        "{}",
        refused.stderr
    );
    let voucher = w.ucayali.json(&["focal", "vouch", &key, "--days", "10"])["voucher"]
        .as_str()
        .unwrap()
        .to_string();
    let kept = w.facilitator.json(&["carry", "voucher", &voucher]);
    assert!(kept["valid_until"].as_u64().unwrap() > now().0);
    let own = w.facilitator.json(&["carry", "tokens", "--ask", "3"]);
    assert_eq!(own["added"].as_u64(), Some(3), "{own}");

    let given = w.facilitator.json(&["carry", "tokens", "--give", "2"]);
    assert_eq!(given["left"].as_u64(), Some(1));
    let text = given["tokens"].as_str().unwrap();
    assert!(text.starts_with("amparo-tokens:"));
    let taken = w.survivor.json(&["report", "tokens", text]);
    assert_eq!(
        (taken["added"].as_u64(), taken["held"].as_u64()),
        (Some(2), Some(2))
    );
    // The same text twice adds nothing; a broken one is refused.
    assert_eq!(
        w.survivor.json(&["report", "tokens", text])["added"].as_u64(),
        Some(0)
    );
    assert!(
        !w.survivor
            .try_run(&["report", "tokens", "amparo-tokens:xyz"])
            .ok
    );
    assert_eq!(
        w.survivor.json(&["report", "tokens"])["held"].as_u64(),
        Some(2)
    );
}

#[test]
fn classify_count_and_share_at_the_terminal() {
    let w = World::new(&Backend::Sqlite);
    w.survivor.json(&["directory", "refresh"]);
    let counted = w.survivor.json(&[
        "report",
        "write",
        "--text",
        "Me golpearon en la frontera.",
        "--region",
        "PE-UCA",
        "--setting",
        "border",
        "--age",
        "age-18-plus",
        "--reported-elsewhere",
        "no",
        "--count-me",
    ]);
    // Without --count-me she is not counted.
    w.survivor.json(&[
        "report",
        "write",
        "--text",
        "No me cuenten.",
        "--region",
        "PE-UCA",
    ]);
    w.survivor.json(&["report", "sync"]);
    w.ucayali.json(&["focal", "sync"]);
    let id = &counted["report"].as_str().unwrap()[..8];
    let classified = w.ucayali.json(&[
        "focal",
        "classify",
        id,
        "--type",
        "physical-assault",
        "--context",
        "sexual-exploitation,trafficking",
    ]);
    assert_eq!(classified["gbv_type"], "physical_assault");
    let case = w.ucayali.json(&["focal", "show", id]);
    assert_eq!(case["gbv_type"], "physical_assault");
    assert_eq!(case["context"].as_array().unwrap().len(), 2);
    assert_eq!(case["report"]["place"]["setting"], "border");
    let shown = w.ucayali.try_run(&["--lang", "en", "focal", "show", id]);
    assert!(
        shown.stdout.contains("Physical assault") && shown.stdout.contains("Border area"),
        "{}",
        shown.stdout
    );

    let stats = w.ucayali.json(&["focal", "stats"]);
    let month = &stats["months"][0];
    assert_eq!(
        (month["cases"].as_u64(), month["counted"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(month["excluded"]["no_consent"], 1);
    let csv = w.ucayali.try_run(&["focal", "stats", "--csv"]);
    assert!(csv.ok, "{}", csv.stderr);
    assert!(
        csv.stdout
            .contains(",PE-UCA,border,gbv_type,physical_assault,1")
            && csv.stdout.contains(",,,context,trafficking,1"),
        "{}",
        csv.stdout
    );
    // This month is not over: it cannot be published yet; what would go
    // says only that it is below the threshold.
    let this_month = month["month"].as_str().unwrap().to_string();
    let early = w.ucayali.try_run(&["focal", "publish-stats", &this_month]);
    assert!(
        !early.ok && early.stderr.contains("once it is over"),
        "{}",
        early.stderr
    );
    let shared = w
        .ucayali
        .json(&["focal", "stats", "--month", &this_month, "--shared"]);
    assert!(shared["table"]["total"].is_null(), "{shared}");
    assert_eq!(shared["table"]["from"], "pe-ucayali");

    // The coordinator has nothing yet; its page is written anyway.
    let page = w.root.path().join("picture.html");
    let picture = w.coordinator.json(&[
        "coordinator",
        "stats",
        "--fetch",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(picture["picture"]["months"].as_array().unwrap().len(), 0);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<svg") && html.contains("lang=\"en\""),
        "{html}"
    );
}

/// The statistics sum at the terminal: three offices take part, the
/// coordinator opens last month's round, the offices' syncs answer it, the
/// coordinator closes it and sums it. Last month had no cases: the sum is
/// of zeros, which is enough to see every command do its part.
#[test]
fn the_statistics_sum_at_the_terminal() {
    let w = World::new(&Backend::Sqlite);
    // A third office, and the directory again with all three.
    let cusco = Person::new(w.root.path(), "cusco");
    let url = w.relay.url("");
    let c = cusco.create(
        "focal-point",
        &[
            "--relay",
            &url,
            &format!("--coordinator-key={}", w.coordinator_key),
            "--focal-point-id",
            "pe-cusco",
        ],
    );
    let a = w.ucayali.json(&["focal", "public"]);
    let b = w.roraima.json(&["focal", "public"]);
    let source = format!(
        "{}{}{}\n[[relay]]\nname = \"test\"\nreceipt_key = \"{}\"\n",
        focal_point_toml("pe-ucayali", "Defensoría Ucayali", "PE-UCA", &a),
        focal_point_toml("br-roraima", "Casa da Mulher Roraima", "BR-RR", &b),
        focal_point_toml("pe-cusco", "Defensoría Cusco", "PE-CUS", &c),
        b64::encode(w.relay.receipt_key.as_bytes())
    );
    std::fs::write(w.path("directory3.toml"), source).unwrap();
    w.coordinator.json(&[
        "coordinator",
        "sign",
        &w.path("directory3.toml"),
        "--out",
        &w.path("directory3.amparo"),
    ]);
    w.coordinator
        .json(&["coordinator", "publish", &w.path("directory3.amparo")]);
    let offices = [&w.ucayali, &w.roraima, &cusco];
    for p in offices {
        p.json(&["directory", "refresh"]);
        let joined = p.json(&["focal", "aggregate"]);
        assert_eq!(joined["keyed_months"], 12, "{joined}");
        p.json(&["focal", "sync"]);
    }
    // Everyone's shares reach everyone.
    for p in offices {
        p.json(&["focal", "sync"]);
    }
    w.coordinator.json(&["coordinator", "stats", "--fetch"]);
    let last = amparo_protocol::statistics::Month::of_unix(now().0)
        .previous()
        .to_string();
    let opened = w.coordinator.json(&["coordinator", "round", "open", &last]);
    assert_eq!(opened["cohort"].as_array().unwrap().len(), 3, "{opened}");
    // Each office's sync answers the round it brings.
    for p in offices {
        p.json(&["focal", "sync"]);
        let status = p.json(&["focal", "aggregate"]);
        assert_eq!(
            status["masked"].as_array().unwrap().len(),
            0,
            "sent at the sync"
        );
    }
    w.coordinator.json(&["coordinator", "stats", "--fetch"]);
    let status = w.coordinator.json(&["coordinator", "round", "status"]);
    assert_eq!(
        status["rounds"][0]["sent"].as_array().unwrap().len(),
        3,
        "{status}"
    );
    let closed = w
        .coordinator
        .json(&["coordinator", "round", "close", &last]);
    assert_eq!(closed["survivors"].as_array().unwrap().len(), 3);
    for p in offices {
        p.json(&["focal", "sync"]);
    }
    w.coordinator.json(&["coordinator", "stats", "--fetch"]);
    let status = w.coordinator.json(&["coordinator", "round", "status"]);
    assert_eq!(status["rounds"][0]["finished"], true, "{status}");
    let picture = w.coordinator.json(&["coordinator", "stats"]);
    let months = picture["picture"]["months"].as_array().unwrap();
    assert_eq!(months.len(), 1, "{picture}");
    assert_eq!(months[0]["month"], last.as_str());
    assert_eq!(months[0]["total"], 0);
    // The words at the terminal.
    let shown = w
        .coordinator
        .try_run(&["--lang", "en", "coordinator", "round", "status"]);
    assert!(
        shown.stdout.contains("3/3 sent") && shown.stdout.contains("summed"),
        "{}",
        shown.stdout
    );
    // Leaving: the keys of months not yet sent go; joining again keys
    // nothing already keyed.
    let left = cusco.json(&["focal", "aggregate", "--leave"]);
    assert_eq!(left["left"], true);
    assert!(left["months_dropped"].as_u64().unwrap() >= 10, "{left}");
    let again = cusco.json(&["focal", "aggregate"]);
    assert_eq!(again["keyed_months"], 0, "{again}");
}

/// Check-in timers at the terminal (issue 20): she sets one for a focal
/// point, it goes to the relay at her sync, she checks in; a second one she
/// cancels; when the relay's hour passes the first one's release (its
/// clock run ahead), the office's `focal cases` lists the alert first.
#[test]
fn check_in_timers_at_the_terminal() {
    let mut w = World::new(&Backend::Sqlite);
    w.survivor.json(&["directory", "refresh"]);
    // An ordinary report first.
    w.survivor.json(&[
        "report",
        "write",
        "--text",
        "Me quitaron el documento.",
        "--region",
        "PE-UCA",
    ]);
    let set = w.survivor.json(&[
        "timer",
        "set",
        "--to",
        "pe-ucayali",
        "--every",
        "1",
        "--grace",
        "0",
        "--text",
        "Voy al hotel Los Pinos con un cliente. Placa ABC-123.",
    ]);
    assert_eq!(set["phase"], "active", "{set}");
    assert_eq!(set["waiting_to_send"], true);
    let release = set["release_hour"].as_u64().unwrap() as u32;
    let text = w.survivor.try_run(&["timer", "list"]).stdout;
    assert!(text.contains("check in before"), "{text}");
    let bad = w.survivor.try_run(&[
        "timer", "set", "--to", "nobody", "--every", "1", "--text", "x",
    ]);
    assert!(!bad.ok && bad.stderr.contains("nobody"), "{}", bad.stderr);
    let second = w.survivor.json(&[
        "timer",
        "set",
        "--to",
        "pe-ucayali",
        "--every",
        "2",
        "--text",
        "Cita en el bar.",
    ]);
    let synced = w.survivor.json(&["report", "sync"]);
    assert_eq!(synced["timers"]["held"], 2, "{synced}");
    // Two running: the check-in must say which.
    let which = w.survivor.try_run(&["timer", "check-in"]);
    assert!(
        !which.ok && which.stderr.contains("several"),
        "{}",
        which.stderr
    );
    let first = &set["timer"].as_str().unwrap()[..8];
    let checked = w.survivor.json(&["timer", "check-in", first]);
    assert_eq!(checked["release_hour"].as_u64().unwrap() as u32, release);
    let cancelled = w
        .survivor
        .json(&["timer", "cancel", &second["timer"].as_str().unwrap()[..8]]);
    assert_eq!(cancelled["cancelled"], true);
    let synced = w.survivor.json(&["report", "sync"]);
    assert_eq!(synced["timers"]["sent"], 2, "{synced}");
    let listed = w.survivor.json(&["timer", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // The relay's hour passes the release.
    w.relay.kill();
    let skew = format!("--test-clock-skew-hours={}", release - now().hours());
    let key = format!("--coordinator-key={}", w.coordinator_key);
    let dir = std::mem::replace(&mut w.relay.data_dir, tempfile::tempdir().unwrap());
    w.relay = Relay::start_in(dir, None, &[&key, &skew]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !w.relay.logs().contains("released the alerts") {
        assert!(std::time::Instant::now() < deadline, "{}", w.relay.logs());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    w.relay.kill();
    let dir = std::mem::replace(&mut w.relay.data_dir, tempfile::tempdir().unwrap());
    w.relay = Relay::start_in(dir, None, &[&key]);
    let url = w.relay.url("");
    w.ucayali.json(&["profile", "set", "--relay", &url]);
    w.ucayali.json(&["focal", "sync"]);
    let cases = w.ucayali.json(&["focal", "cases"]);
    let cases = cases["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2, "{cases:?}");
    assert_eq!(cases[0]["alert"]["set_hour"], set["set_hour"], "{cases:?}");
    assert!(cases[1]["alert"].is_null());
    let text = w.ucayali.try_run(&["focal", "cases"]).stdout;
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("ALERT! (timer set"),
        "{text}"
    );
}
