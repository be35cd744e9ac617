//! Binding an existing profile to a device key, with the process killed
//! between its writes: a child process (this test binary run again) opens the
//! profile and re-wraps its data key, and aborts (SIGABRT: no destructor, no
//! rollback, like a phone that dies) right after a chosen write — the
//! binding's marker, the real slot, the duress slot, the decoy's items, or
//! the commit. Afterwards the profile opens with its PIN under the old
//! binding or under the new one, whole: the drafts and settings of the real
//! profile, and the decoy's draft behind the duress PIN, all there; SQLite
//! finds nothing damaged.
//!
//! (`store::binding_tests` fails the same steps in process, with an error,
//! and the process-level kill of `amparo profile device-key on` is in
//! `tests/tests/device_key.rs`.)

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::Arc;

use amparo_core::CoreError;
use amparo_core::drafts::DraftForm;
use amparo_core::settings::Settings;
use amparo_core::store::{
    Binding, DeviceKey, KdfParams, Profile, RebindStep, SoftwareDeviceKey, Unlock,
};

const PIN: &str = "2468";
const DURESS: &str = "1111";
const CHILD_DIR: &str = "AMPARO_REBIND_CHILD_DIR";
const CHILD_STEP: &str = "AMPARO_REBIND_CHILD_STEP";
const CHILD_KEEP: &str = "AMPARO_REBIND_CHILD_KEEP_DURESS";
const SIGABRT: i32 = 6;

fn step_name(step: RebindStep) -> &'static str {
    match step {
        RebindStep::Binding => "binding",
        RebindStep::RealSlot => "real-slot",
        RebindStep::OtherSlot => "other-slot",
        RebindStep::OtherItems => "other-items",
        RebindStep::Committed => "committed",
    }
}

fn key_file(dir: &Path) -> std::path::PathBuf {
    dir.with_extension("device-key")
}

fn form(text: &str) -> DraftForm {
    DraftForm {
        text: text.into(),
        ..DraftForm::default()
    }
}

fn texts(p: &Profile) -> Vec<String> {
    let mut t: Vec<String> = p
        .drafts()
        .unwrap()
        .into_iter()
        .map(|d| d.form.text)
        .collect();
    t.sort();
    t
}

/// The run in a fresh process: bind, and abort right after `CHILD_STEP`.
#[test]
#[ignore = "run by binding_survives_a_kill_between_any_two_writes in its own process"]
fn bind_in_a_child_and_die() {
    let (Ok(dir), Ok(step), Ok(keep)) = (
        std::env::var(CHILD_DIR),
        std::env::var(CHILD_STEP),
        std::env::var(CHILD_KEEP),
    ) else {
        return;
    };
    let dir = Path::new(&dir);
    let device: Arc<dyn DeviceKey> =
        Arc::new(SoftwareDeviceKey::load_or_create(&key_file(dir)).unwrap());
    let p = Profile::open(dir, PIN).unwrap();
    let duress = (keep == "1").then_some(DURESS);
    let _ = p.bind_device_key_observed(PIN, Some(device), duress, &mut |s| {
        if step_name(s) == step {
            std::process::abort();
        }
        Ok(())
    });
    panic!("the child was to die after {step}");
}

fn integrity(dir: &Path) -> String {
    let conn = rusqlite::Connection::open(dir.join(amparo_core::store::DB_FILE)).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn binding_survives_a_kill_between_any_two_writes() {
    let root = tempfile::tempdir().unwrap();
    let steps = [
        RebindStep::Binding,
        RebindStep::RealSlot,
        RebindStep::OtherSlot,
        RebindStep::OtherItems,
        RebindStep::Committed,
    ];
    let mut outcomes = (0, 0);
    for keep in [true, false] {
        for step in steps {
            if keep && step == RebindStep::OtherItems {
                continue;
            }
            let dir = root
                .path()
                .join(format!("{}-{}", step_name(step), u8::from(keep)));
            {
                let p = Profile::create(&dir, PIN, KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
                for i in 0..20 {
                    p.create_draft(&form(&format!("real report {i:02}")))
                        .unwrap();
                }
                p.save_settings(&Settings {
                    relay_url: Some("https://relay.example.org".into()),
                    ..Settings::default()
                })
                .unwrap();
                p.set_duress_pin(DURESS, false).unwrap();
                drop(p);
                let decoy = Profile::open(&dir, DURESS).unwrap();
                decoy.create_draft(&form("decoy note")).unwrap();
            }
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "bind_in_a_child_and_die",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                ])
                .env(CHILD_DIR, &dir)
                .env(CHILD_STEP, step_name(step))
                .env(CHILD_KEEP, if keep { "1" } else { "0" })
                .output()
                .unwrap();
            assert_eq!(
                status.status.signal(),
                Some(SIGABRT),
                "the child did not die at {}: {}",
                step_name(step),
                String::from_utf8_lossy(&status.stderr)
            );
            assert_eq!(integrity(&dir), "ok");
            let device: Arc<dyn DeviceKey> =
                Arc::new(SoftwareDeviceKey::load(&key_file(&dir)).unwrap());
            let (real, bound) = match Profile::open(&dir, PIN) {
                Ok(p) => (p, false),
                Err(CoreError::DeviceKeyNeeded) => (
                    Profile::open_with(&dir, PIN, &Unlock::now().with_device(device.clone()))
                        .unwrap(),
                    true,
                ),
                Err(e) => panic!("after {}: {e}", step_name(step)),
            };
            // Dead before the commit: the old binding; after it: the new one.
            assert_eq!(bound, step == RebindStep::Committed, "{}", step_name(step));
            assert_eq!(
                real.binding().unwrap(),
                if bound {
                    Binding::PinAndDevice
                } else {
                    Binding::Pin
                }
            );
            let expected: Vec<String> = (0..20).map(|i| format!("real report {i:02}")).collect();
            assert_eq!(texts(&real), expected);
            assert_eq!(
                real.settings().unwrap().relay_url.as_deref(),
                Some("https://relay.example.org")
            );
            drop(real);
            let unlock = if bound {
                Unlock::now().with_device(device)
            } else {
                Unlock::now()
            };
            match Profile::open_with(&dir, DURESS, &unlock) {
                Ok(decoy) => {
                    assert!(keep || !bound, "the decoy was to be dropped");
                    assert_eq!(texts(&decoy), vec!["decoy note".to_string()]);
                }
                Err(CoreError::WrongPin) => assert!(bound && !keep, "the decoy was lost"),
                Err(e) => panic!("{e}"),
            }
            if bound {
                outcomes.1 += 1;
            } else {
                outcomes.0 += 1;
            }
        }
    }
    assert_eq!(outcomes, (7, 2), "(old binding, new binding)");
}
