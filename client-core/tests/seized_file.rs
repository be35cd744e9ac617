//! A seized phone's profile file shows nothing (issue 16, part 2): read as
//! an inspector would — the raw bytes, and the database opened with SQLite
//! — a profile whose real side holds 60 queued reports (and whose duress
//! decoy holds none) cannot be told from a fresh profile with a duress PIN
//! and nothing written: the same tables, the same row counts, every row of
//! a table the same length, the same file size, no kind in the clear. And
//! opening with any PIN — the real one, the duress one, the duress one that
//! wipes, a wrong one — leaves the same files, of the same sizes, as a
//! normal open.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use amparo_core::drafts::DraftForm;
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::directory::{FocalPoint, LocalizedText};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::payload::Language;
use rusqlite::{Connection, OpenFlags};

const PIN: &str = "739146";
const DURESS: &str = "111111";
const FAST: KdfParams = KdfParams::DANGEROUSLY_FAST_FOR_TESTS;

fn focal_point() -> FocalPoint {
    let keys = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
    let t = |s: &str| LocalizedText {
        es: s.into(),
        pt: s.into(),
        en: s.into(),
    };
    FocalPoint {
        reads: Vec::new(),
        id: "fp".into(),
        name: t("fp"),
        organization: "o".into(),
        regions: vec![],
        categories: vec![],
        languages: vec![Language::Es],
        keys: keys.public(),
        valid_from: 0,
        valid_until: u64::MAX / 2,
    }
}

/// A profile with a duress PIN and `reports` queued reports on its real side.
fn profile_with(dir: &Path, reports: usize, wipe: bool) {
    let p = Profile::create(dir, PIN, FAST).unwrap();
    p.set_duress_pin(DURESS, wipe).unwrap();
    let fp = focal_point();
    for i in 0..reports {
        let d = p
            .create_draft(&DraftForm {
                text: format!("informe {i}: lo que pasó, dónde y cuándo"),
                ..DraftForm::default()
            })
            .unwrap();
        p.send_draft(&d, &fp, false, amparo_protocol::UnixTime(1_790_000_000))
            .unwrap();
    }
    assert_eq!(p.outbox_len().unwrap(), reports);
}

/// Every file in `dir` with its size.
fn files(dir: &Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect()
}

/// What an inspector sees opening the database read-only: per table, its
/// row count and, per column, the distinct lengths of its values.
type View = BTreeMap<String, (i64, Vec<Vec<i64>>)>;

fn inspect(db: &Path) -> View {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut out = View::new();
    for t in tables {
        let count: i64 = conn
            .query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get(0))
            .unwrap();
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let mut lengths = Vec::new();
        for c in columns {
            // The integer key of a cell is its position, not content.
            if c == "n" {
                continue;
            }
            let ls: Vec<i64> = conn
                .prepare(&format!(
                    "SELECT DISTINCT length(\"{c}\") FROM \"{t}\" ORDER BY 1"
                ))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            lengths.push(ls);
        }
        out.insert(t, (count, lengths));
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn sixty_reports_and_none_look_the_same() {
    let root = tempfile::tempdir().unwrap();
    let full = root.path().join("full");
    let empty = root.path().join("empty");
    profile_with(&full, 60, false);
    profile_with(&empty, 0, false);
    // Opened and closed once more with each PIN, as a phone would be.
    for dir in [&full, &empty] {
        drop(Profile::open(dir, PIN).unwrap());
        drop(Profile::open(dir, DURESS).unwrap());
    }

    let (f, e) = (files(&full), files(&empty));
    assert_eq!(f, e, "the same files of the same sizes");
    assert_eq!(f.len(), 1, "closed: the database alone ({f:?})");

    let db = amparo_core::store::DB_FILE;
    let (vf, ve) = (inspect(&full.join(db)), inspect(&empty.join(db)));
    assert_eq!(vf, ve, "the same tables, row counts and row lengths");
    for (table, (count, lengths)) in &vf {
        // The items live in heads and bodies; meta holds the key slots and
        // settings read before unlock (names of their own lengths).
        if table == "meta" {
            continue;
        }
        for ls in lengths {
            assert!(
                ls.len() <= 1,
                "{table}: every row of a column has one length, not {ls:?}"
            );
        }
        match table.as_str() {
            // The old layout's table is there, empty, in every profile.
            "items" => assert_eq!(*count, 0),
            "heads" | "bodies" => {
                assert_eq!(*count, amparo_core::store::cells::MIN_CELLS, "{table}")
            }
            _ => {}
        }
    }
    // The first cell size class holds both.
    assert_eq!(vf["heads"].0, vf["bodies"].0);

    // No kind, by name or by number, reaches the disk in a column of its
    // own; the words of the reports do not either.
    let raw = std::fs::read(full.join(db)).unwrap();
    for word in [
        "Report", "Outgoing", "Draft", "Settings", "DecoyKey", "informe",
    ] {
        assert!(!contains(&raw, word.as_bytes()), "{word} in the file");
    }
    let conn =
        Connection::open_with_flags(full.join(db), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('heads') UNION ALL SELECT name FROM pragma_table_info('bodies')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(columns, vec!["n", "id", "head", "n", "body"]);

    // And the reports are all there for the right PIN, none for the decoy.
    let real = Profile::open(&full, PIN).unwrap();
    assert_eq!(real.outbox_len().unwrap(), 60);
    drop(real);
    let decoy = Profile::open(&full, DURESS).unwrap();
    assert_eq!(decoy.outbox_len().unwrap(), 0);
}

/// Files and sizes while the profile opened with `pin` is held, then after
/// it is closed (`None` while held for a PIN that opens nothing).
fn after_open(
    template: &Path,
    dir: &Path,
    pin: &str,
) -> (Option<BTreeMap<String, u64>>, BTreeMap<String, u64>) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, _) in files(template) {
        std::fs::copy(template.join(&name), dir.join(&name)).unwrap();
    }
    let held = match Profile::open(dir, pin) {
        Ok(p) => {
            let held = files(dir);
            drop(p);
            Some(held)
        }
        Err(amparo_core::CoreError::WrongPin) => None,
        Err(e) => panic!("{e}"),
    };
    (held, files(dir))
}

#[test]
fn every_pin_leaves_the_same_files_as_a_normal_open() {
    let root = tempfile::tempdir().unwrap();
    for wipe in [false, true] {
        let template = root.path().join(format!("template-{wipe}"));
        profile_with(&template, 60, wipe);
        let at = |name: &str| root.path().join(format!("{name}-{wipe}"));
        let (normal_held, normal_closed) = after_open(&template, &at("real"), PIN);
        let normal_held = normal_held.unwrap();
        assert!(
            normal_held.len() >= 2,
            "held open: the database and its WAL files ({normal_held:?})"
        );
        let (duress_held, duress_closed) = after_open(&template, &at("duress"), DURESS);
        assert_eq!(
            duress_held.unwrap(),
            normal_held,
            "duress (wipe {wipe}), held"
        );
        assert_eq!(duress_closed, normal_closed, "duress (wipe {wipe}), closed");
        let (wrong_held, wrong_closed) = after_open(&template, &at("wrong"), "000000");
        assert!(wrong_held.is_none());
        assert_eq!(wrong_closed, normal_closed, "a wrong PIN");
        if wipe {
            // The wipe did happen: the real PIN opens nothing any more, the
            // decoy still opens.
            assert!(matches!(
                Profile::open(&at("duress"), PIN),
                Err(amparo_core::CoreError::WrongPin)
            ));
            let decoy = Profile::open(&at("duress"), DURESS).unwrap();
            assert_eq!(decoy.outbox_len().unwrap(), 0);
            drop(decoy);
            // And the file is the same size it was: overwritten, not shrunk.
            assert_eq!(files(&at("duress")), normal_closed);
        }
    }
}
