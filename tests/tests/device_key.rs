//! The device key through the `amparo` binary (issue 16, part 3): a profile
//! made with a device key file, an existing one bound to one (its duress PIN
//! kept), a copy of the profile folder refused on another "device" (another
//! key file) with the sentence that says so and opened with its own, wrong
//! PINs told with the count and the wait, wipe after N, and `profile
//! device-key on` killed mid-way leaving the profile whole under one binding
//! or the other (the core's crash test kills it at each write; this is the
//! process seen from outside).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use amparo_protocol::Entropy;
use amparo_protocol::entropy::SystemEntropy;
use amparo_tests::cli::{Person, Run};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A key file another "device" holds: 32 random bytes.
fn key_file(root: &Path, name: &str) -> PathBuf {
    let mut key = [0u8; 32];
    SystemEntropy::new().fill(&mut key).unwrap();
    let path = root.join(name);
    std::fs::write(&path, key).unwrap();
    path
}

fn with_key<'a>(key: &'a Path, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--device-key", key.to_str().unwrap()];
    v.extend_from_slice(args);
    v
}

fn refused(run: &Run, sentence: &str) {
    assert!(
        !run.ok,
        "it should have been refused:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains(sentence),
        "expected {sentence:?} in:\n{}",
        run.stderr
    );
}

#[test]
fn a_copied_profile_opens_only_with_its_own_device_key() {
    let root = tempfile::tempdir().unwrap();
    let key = root.path().join("usb").join("device.key");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    let her = Person::new(root.path(), "survivor");
    let made = her.json(&with_key(
        &key,
        &[
            "profile",
            "create",
            "--role",
            "survivor",
            "--dangerously-fast-kdf",
        ],
    ));
    assert_eq!(made["device_bound"], true);
    assert_eq!(
        std::fs::read(&key).unwrap().len(),
        32,
        "the key file is made"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    }
    let shown = her.json(&with_key(&key, &["profile", "show"]));
    assert_eq!(shown["device_bound"], true);
    refused(
        &her.try_run(&["profile", "show"]),
        "This profile opens only with its device key",
    );

    // The folder is copied elsewhere (a forensic image) and tried with
    // another device's key: the right PIN does not open it.
    let copy = Person {
        dir: root.path().join("seized"),
        pin: her.pin.clone(),
    };
    copy_dir(&her.dir, &copy.dir);
    let other = key_file(root.path(), "other.key");
    let wrong = copy.try_run(&with_key(&other, &["profile", "show"]));
    refused(&wrong, "The PIN is not correct. 1 wrong PIN in a row.");
    refused(&wrong, "the --device-key file is not this profile's");
    refused(
        &copy.try_run(&["profile", "show"]),
        "opens only with its device key",
    );
    refused(
        &copy.try_run(&with_key(
            &root.path().join("missing.key"),
            &["profile", "show"],
        )),
        "does not exist",
    );
    // With its own key, the copy opens (and the good PIN clears the count).
    let opened = copy.json(&with_key(&key, &["profile", "show"]));
    assert_eq!(opened["role"], "survivor");
    let wrong = copy.try_run_with_pin("0000", &with_key(&key, &["profile", "show"]));
    refused(&wrong, "1 wrong PIN in a row. You can try again now.");

    // In Spanish, for her.
    let mut es = copy.command(&with_key(&other, &["profile", "show"]));
    es.args(["--lang", "es"]);
    let out = es.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("El PIN no es correcto. 2 PIN equivocados seguidos."),
        "{stderr}"
    );
}

#[test]
fn an_existing_profile_is_bound_keeping_its_duress_pin_then_unbound() {
    let root = tempfile::tempdir().unwrap();
    let her = Person::new(root.path(), "facilitator");
    her.create("facilitator", &[]);
    let duress = |args: &[&str]| {
        let out = her
            .command(args)
            .env("AMPARO_DURESS_PIN", "2580")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    duress(&["--json", "profile", "duress"]);
    let key = root.path().join("device.key");
    refused(
        &her.try_run(&["profile", "device-key", "on"]),
        "Give the device key file with --device-key FILE",
    );
    let on = duress(&with_key(&key, &["--json", "profile", "device-key", "on"]));
    assert_eq!(on["device_bound"], true);
    assert_eq!(on["duress_kept"], true);

    refused(
        &her.try_run(&["profile", "show"]),
        "opens only with its device key",
    );
    assert_eq!(
        her.json(&with_key(&key, &["profile", "show"]))["device_bound"],
        true
    );
    // The duress PIN still opens the decoy, with the key.
    let decoy = her.try_run_with_pin("2580", &with_key(&key, &["--json", "profile", "show"]));
    assert!(decoy.ok, "{}", decoy.stderr);

    let copy = Person {
        dir: root.path().join("copy"),
        pin: her.pin.clone(),
    };
    copy_dir(&her.dir, &copy.dir);
    let other = key_file(root.path(), "other.key");
    refused(
        &copy.try_run(&with_key(&other, &["profile", "show"])),
        "The PIN is not correct.",
    );
    copy.json(&with_key(&key, &["profile", "show"]));

    let off = duress(&with_key(&key, &["--json", "profile", "device-key", "off"]));
    assert_eq!(off["device_bound"], false);
    assert_eq!(her.json(&["profile", "show"])["device_bound"], false);
}

#[test]
fn wipe_after_n_wrong_pins_is_told_then_done() {
    let root = tempfile::tempdir().unwrap();
    let her = Person::new(root.path(), "survivor");
    her.create("survivor", &[]);
    assert_eq!(her.json(&["profile", "wipe-after", "2"])["wipe_after"], 2);
    assert_eq!(her.json(&["profile", "show"])["wipe_after"], 2);
    refused(
        &her.try_run_with_pin("0000", &["profile", "show"]),
        "1 wrong PIN in a row. You can try again now. 1 left before the profile is destroyed.",
    );
    refused(
        &her.try_run_with_pin("0000", &["profile", "show"]),
        "That was the last attempt allowed: the profile was destroyed",
    );
    refused(
        &her.try_run(&["profile", "show"]),
        "There is no profile here",
    );
}

#[test]
fn wrong_pins_past_the_free_ones_wait_before_the_pin_is_asked() {
    let root = tempfile::tempdir().unwrap();
    let her = Person::new(root.path(), "survivor");
    her.create("survivor", &[]);
    for i in 1..=5 {
        let run = her.try_run_with_pin("0000", &["profile", "show"]);
        refused(&run, &format!("{i} wrong PIN"));
    }
    let waiting = her.try_run(&["profile", "show"]);
    refused(&waiting, "Too many wrong PINs in a row: wait ");
    refused(&waiting, "seconds before trying again");
}

/// `profile device-key on` killed at points spread over its run: every time
/// the profile opens with the key file (whichever binding it was left with)
/// and, without the key, either opens (old binding) or asks for the key (new
/// one): never half of each. Then the command, run to its end, binds it.
#[cfg(unix)]
#[test]
fn device_key_on_killed_midway_leaves_one_binding_whole() {
    let root = tempfile::tempdir().unwrap();
    let her = Person::new(root.path(), "survivor");
    her.create("survivor", &[]);
    // Made first: a kill before `on` made it would leave nothing to open with.
    let key = key_file(root.path(), "device.key");
    let mut outcomes = (0, 0);
    for i in 0..8u64 {
        let mut child = her
            .command(&with_key(&key, &["--json", "profile", "device-key", "on"]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(2 * i));
        let _ = child.kill();
        child.wait().unwrap();
        her.json(&with_key(&key, &["profile", "show"]));
        let bare = her.try_run(&["profile", "show"]);
        if bare.ok {
            outcomes.0 += 1;
        } else {
            assert!(
                bare.stderr.contains("opens only with its device key"),
                "{}",
                bare.stderr
            );
            outcomes.1 += 1;
            // Back to unbound for the next kill.
            her.json(&with_key(&key, &["profile", "device-key", "off"]));
        }
        assert_eq!(her.profile_integrity(), "ok");
    }
    eprintln!(
        "killed 8 times: left unbound {}, bound {}",
        outcomes.0, outcomes.1
    );
    her.json(&with_key(&key, &["profile", "device-key", "on"]));
    refused(
        &her.try_run(&["profile", "show"]),
        "opens only with its device key",
    );
}
