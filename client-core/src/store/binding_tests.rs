//! Tests of the device key binding and of the wrong-PIN counter.

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

const FAST: KdfParams = KdfParams::DANGEROUSLY_FAST_FOR_TESTS;
const PIN: &str = "2468";
const DURESS: &str = "1111";

/// A software device key that counts the questions it answers.
struct Counting {
    key: SoftwareDeviceKey,
    asked: AtomicU32,
}

impl Counting {
    fn new() -> Arc<Counting> {
        Arc::new(Counting {
            key: SoftwareDeviceKey::generate().unwrap(),
            asked: AtomicU32::new(0),
        })
    }
}

impl DeviceKey for Counting {
    fn respond(&self, challenge: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.key.respond(challenge)
    }
}

/// A key store that is not there.
struct Broken;

impl DeviceKey for Broken {
    fn respond(&self, _: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>> {
        Err(CoreError::DeviceKey("key store unavailable".into()))
    }
}

fn dev(d: &Arc<Counting>) -> Arc<dyn DeviceKey> {
    d.clone()
}

fn at(t: u64) -> Unlock {
    Unlock::now().at(UnixTime(t))
}

fn on(d: &Arc<Counting>, t: u64) -> Unlock {
    at(t).with_device(dev(d))
}

/// Copies a closed profile's files to `to` (a seized phone's image).
fn copy_profile(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Draft `id` as `p` sees it (`None` if it is not its own).
fn draft(p: &Profile, id: u8) -> Option<Vec<u8>> {
    if !p
        .item_ids(ItemKind::Draft, None)
        .unwrap()
        .contains(&[id; 16])
    {
        return None;
    }
    p.get_item(ItemKind::Draft, &[id; 16])
        .unwrap()
        .map(|(_, v)| v.to_vec())
}

fn meta_row(dir: &Path, name: &str) -> Option<Vec<u8>> {
    let conn = Connection::open(dir.join(DB_FILE)).unwrap();
    meta_opt(&conn, name).unwrap()
}

/// A profile with a real draft and a decoy draft, bound to `device` or not.
fn profile_with_decoy(dir: &Path, device: Option<Arc<dyn DeviceKey>>) {
    let unlock = match &device {
        Some(d) => Unlock::now().with_device(d.clone()),
        None => Unlock::now(),
    };
    let (real, ()) = Profile::create_bound(dir, PIN, FAST, device, |_| Ok(())).unwrap();
    real.put_item(ItemKind::Draft, &[1; 16], 0, b"real report")
        .unwrap();
    real.set_duress_pin(DURESS, false).unwrap();
    drop(real);
    let decoy = Profile::open_with(dir, DURESS, &unlock).unwrap();
    decoy
        .put_item(ItemKind::Draft, &[2; 16], 0, b"decoy note")
        .unwrap();
}

#[test]
fn a_copied_profile_does_not_open_on_another_device() {
    let root = tempfile::tempdir().unwrap();
    let phone = root.path().join("phone");
    let key = Counting::new();
    profile_with_decoy(&phone, Some(dev(&key)));

    // The same profile on its own device: the PIN opens it, the duress PIN
    // the decoy.
    let real = Profile::open_with(&phone, PIN, &on(&key, 100)).unwrap();
    assert_eq!(real.binding().unwrap(), Binding::PinAndDevice);
    assert_eq!(draft(&real, 1).unwrap(), b"real report");
    drop(real);
    let decoy = Profile::open_with(&phone, DURESS, &on(&key, 100)).unwrap();
    assert_eq!(draft(&decoy, 2).unwrap(), b"decoy note");
    assert_eq!(draft(&decoy, 1), None);
    drop(decoy);

    // Its files copied to another "device" (another key): no PIN opens it.
    let seized = root.path().join("seized");
    copy_profile(&phone, &seized);
    let other = Counting::new();
    for pin in [PIN, DURESS] {
        assert!(matches!(
            Profile::open_with(&seized, pin, &on(&other, 100)),
            Err(CoreError::WrongPin)
        ));
    }
    // Without any device key it does not even try the PIN.
    assert!(matches!(
        Profile::open_with(&seized, PIN, &at(100)),
        Err(CoreError::DeviceKeyNeeded)
    ));
    assert!(matches!(
        Profile::open(&seized, PIN),
        Err(CoreError::DeviceKeyNeeded)
    ));
    // Flipping the binding marker in the copy does not help: the slots are
    // wrapped under the device's answer.
    let conn = Connection::open(seized.join(DB_FILE)).unwrap();
    set_meta(&conn, "binding", &Binding::Pin.encode()).unwrap();
    drop(conn);
    for pin in [PIN, DURESS] {
        assert!(matches!(
            Profile::open_with(&seized, pin, &at(200)),
            Err(CoreError::WrongPin)
        ));
    }
    // Back on its own device, the copy opens (it is the same profile).
    let back = root.path().join("back");
    copy_profile(&phone, &back);
    assert_eq!(
        draft(&Profile::open_with(&back, PIN, &on(&key, 100)).unwrap(), 1).unwrap(),
        b"real report"
    );
}

#[test]
fn every_pin_costs_one_argon2id_and_one_question_to_the_device() {
    let root = tempfile::tempdir().unwrap();
    for bound in [false, true] {
        let dir = root.path().join(format!("bound-{bound}"));
        let key = Counting::new();
        profile_with_decoy(&dir, bound.then(|| dev(&key)));
        for pin in [PIN, DURESS, "0000"] {
            kdf::RUNS.with(|r| r.set(0));
            key.asked.store(0, Ordering::SeqCst);
            let opened = Profile::open_with(&dir, pin, &on(&key, 100));
            assert_eq!(opened.is_ok(), pin != "0000");
            assert_eq!(kdf::RUNS.with(|r| r.get()), 1, "Argon2id runs for {pin}");
            assert_eq!(
                key.asked.load(Ordering::SeqCst),
                u32::from(bound),
                "device questions for {pin} (bound: {bound})"
            );
        }
    }
}

#[test]
fn a_failing_device_counts_no_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let key = Counting::new();
    profile_with_decoy(dir.path(), Some(dev(&key)));
    for _ in 0..10 {
        assert!(matches!(
            Profile::open_with(dir.path(), PIN, &at(100).with_device(Arc::new(Broken))),
            Err(CoreError::DeviceKey(_))
        ));
    }
    let status = Profile::unlock_status(dir.path(), UnixTime(100)).unwrap();
    assert_eq!(status.failed_attempts, 0);
    assert!(status.device_bound);
    assert!(Profile::open_with(dir.path(), PIN, &on(&key, 100)).is_ok());
}

/// What the profile must still hold after an interrupted or finished bind.
fn check_whole(dir: &Path, unlock: &Unlock, duress_kept: bool) {
    let real = Profile::open_with(dir, PIN, unlock).unwrap();
    assert_eq!(draft(&real, 1).unwrap(), b"real report");
    drop(real);
    match Profile::open_with(dir, DURESS, unlock) {
        Ok(decoy) => {
            assert!(duress_kept, "the duress PIN was to be forgotten");
            assert_eq!(draft(&decoy, 2).unwrap(), b"decoy note");
            assert_eq!(draft(&decoy, 1), None);
        }
        Err(CoreError::WrongPin) => assert!(!duress_kept, "the duress PIN was lost"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn binding_an_existing_profile_fails_whole_at_every_step() {
    let root = tempfile::tempdir().unwrap();
    let steps = [
        RebindStep::Binding,
        RebindStep::RealSlot,
        RebindStep::OtherSlot,
        RebindStep::OtherItems,
        RebindStep::Committed,
    ];
    let mut case = 0;
    for keep_duress in [true, false] {
        for fail_at in steps {
            if keep_duress && fail_at == RebindStep::OtherItems {
                continue; // no such write when the decoy is kept
            }
            case += 1;
            let dir = root.path().join(format!("case-{case}"));
            profile_with_decoy(&dir, None);
            let key = Counting::new();
            let p = Profile::open(&dir, PIN).unwrap();
            let mut seen = Vec::new();
            let result = p.bind_device_key_observed(
                PIN,
                Some(dev(&key)),
                keep_duress.then_some(DURESS),
                &mut |step| {
                    seen.push(step);
                    if step == fail_at {
                        Err(CoreError::Io("injected failure".into()))
                    } else {
                        Ok(())
                    }
                },
            );
            assert!(matches!(result, Err(CoreError::Io(_))));
            assert_eq!(seen.last(), Some(&fail_at));
            drop(p);
            if fail_at == RebindStep::Committed {
                // Already committed: the new binding, whole.
                assert!(matches!(
                    Profile::open(&dir, PIN),
                    Err(CoreError::DeviceKeyNeeded)
                ));
                check_whole(&dir, &on(&key, 100), keep_duress);
            } else {
                // Rolled back: the old binding, whole, the device never needed.
                check_whole(&dir, &at(100), true);
                assert_eq!(meta_row(&dir, "binding").unwrap(), [0]);
            }
        }
    }
}

#[test]
fn binding_rebinding_and_unbinding_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    profile_with_decoy(dir, None);
    let first = Counting::new();
    let p = Profile::open(dir, PIN).unwrap();
    assert_eq!(p.binding().unwrap(), Binding::Pin);
    // The PIN given must be this profile's, the duress PIN the decoy's.
    assert!(matches!(
        p.bind_device_key("9999", Some(dev(&first)), None),
        Err(CoreError::WrongPin)
    ));
    assert!(matches!(
        p.bind_device_key(PIN, Some(dev(&first)), Some("9999")),
        Err(CoreError::Invalid(_))
    ));
    assert_eq!(p.binding().unwrap(), Binding::Pin);
    p.bind_device_key(PIN, Some(dev(&first)), Some(DURESS))
        .unwrap();
    assert_eq!(p.binding().unwrap(), Binding::PinAndDevice);
    // The open profile goes on working under the new binding.
    p.change_pin("8642").unwrap();
    p.change_pin(PIN).unwrap();
    drop(p);
    // Inside the decoy (on a copy), unbinding works as in any profile: the
    // decoy takes the file over, and the real profile it hid is gone.
    let decoy_dir = tempfile::tempdir().unwrap();
    copy_profile(dir, decoy_dir.path());
    let decoy = Profile::open_with(decoy_dir.path(), DURESS, &on(&first, 100)).unwrap();
    assert!(decoy.is_decoy().unwrap());
    assert!(matches!(
        decoy.bind_device_key(PIN, None, None),
        Err(CoreError::WrongPin)
    ));
    decoy.bind_device_key(DURESS, None, None).unwrap();
    drop(decoy);
    assert!(matches!(
        Profile::open_with(decoy_dir.path(), PIN, &at(100)),
        Err(CoreError::WrongPin)
    ));
    let taken = Profile::open_with(decoy_dir.path(), DURESS, &at(100)).unwrap();
    assert_eq!(taken.binding().unwrap(), Binding::Pin);
    assert!(draft(&taken, 1).is_none(), "the real drafts went with it");
    drop(taken);

    assert!(matches!(
        Profile::open_with(dir, PIN, &at(100)),
        Err(CoreError::DeviceKeyNeeded)
    ));
    let second = Counting::new();
    assert!(matches!(
        Profile::open_with(dir, PIN, &on(&second, 100)),
        Err(CoreError::WrongPin)
    ));
    let real = Profile::open_with(dir, PIN, &on(&first, 100)).unwrap();
    assert_eq!(draft(&real, 1).unwrap(), b"real report");
    // To another device key (a new key in the key store) ...
    real.bind_device_key(PIN, Some(dev(&second)), Some(DURESS))
        .unwrap();
    drop(real);
    assert!(matches!(
        Profile::open_with(dir, PIN, &on(&first, 100)),
        Err(CoreError::WrongPin)
    ));
    let real = Profile::open_with(dir, PIN, &on(&second, 100)).unwrap();
    // ... and back to the PIN alone.
    real.bind_device_key(PIN, None, Some(DURESS)).unwrap();
    drop(real);
    let real = Profile::open_with(dir, PIN, &at(100)).unwrap();
    assert_eq!(real.binding().unwrap(), Binding::Pin);
    assert_eq!(draft(&real, 1).unwrap(), b"real report");
    drop(real);
    let decoy = Profile::open_with(dir, DURESS, &at(100)).unwrap();
    assert_eq!(draft(&decoy, 2).unwrap(), b"decoy note");
}

#[test]
fn a_duress_pin_that_destroys_keeps_doing_so_once_bound() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let real = Profile::create(dir, PIN, FAST).unwrap();
    real.put_item(ItemKind::Draft, &[1; 16], 0, b"real report")
        .unwrap();
    real.set_duress_pin(DURESS, true).unwrap();
    let key = Counting::new();
    real.bind_device_key(PIN, Some(dev(&key)), Some(DURESS))
        .unwrap();
    drop(real);
    let decoy = Profile::open_with(dir, DURESS, &on(&key, 100)).unwrap();
    assert_eq!(draft(&decoy, 1), None);
    drop(decoy);
    assert!(matches!(
        Profile::open_with(dir, PIN, &on(&key, 100)),
        Err(CoreError::WrongPin)
    ));
}

#[test]
fn wrong_pins_wait_longer_and_longer_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    profile_with_decoy(dir, None);
    let t0 = 1_000_000;
    // Five wrong PINs cost nothing.
    for i in 0..5 {
        assert!(matches!(
            Profile::open_with(dir, "0000", &at(t0)),
            Err(CoreError::WrongPin)
        ));
        assert_eq!(
            Profile::unlock_status(dir, UnixTime(t0))
                .unwrap()
                .failed_attempts,
            i + 1
        );
    }
    // The sixth waits 30 s — even with the right PIN, which is not tried.
    kdf::RUNS.with(|r| r.set(0));
    assert!(matches!(
        Profile::open_with(dir, PIN, &at(t0 + 10)),
        Err(CoreError::TooManyAttempts { wait_seconds: 20 })
    ));
    assert_eq!(
        kdf::RUNS.with(|r| r.get()),
        0,
        "nothing tried while waiting"
    );
    assert_eq!(
        Profile::unlock_status(dir, UnixTime(t0 + 10)).unwrap(),
        UnlockStatus {
            failed_attempts: 5,
            wait_seconds: 20,
            wipe_after: 0,
            device_bound: false
        }
    );
    // After the wait, another wrong PIN, then 60 s, then 120 s.
    let mut t = t0 + 30;
    for wait in [60, 120, 240] {
        assert!(matches!(
            Profile::open_with(dir, "0000", &at(t)),
            Err(CoreError::WrongPin)
        ));
        assert!(matches!(
            Profile::open_with(dir, PIN, &at(t + wait - 1)),
            Err(CoreError::TooManyAttempts { wait_seconds: 1 })
        ));
        t += wait;
    }
    // A clock set back an hour waits the full delay from then, not an hour.
    assert!(matches!(
        Profile::open_with(dir, PIN, &at(t - 3600)),
        Err(CoreError::TooManyAttempts { wait_seconds: 240 })
    ));
    t = t - 3600 + 240;
    // The right PIN clears the count; so does the duress PIN, with the same
    // bytes on disk.
    drop(Profile::open_with(dir, PIN, &at(t)).unwrap());
    let after_real = meta_row(dir, "attempts").unwrap();
    assert_eq!(after_real, Attempts::default().encode());
    assert!(Profile::open_with(dir, "0000", &at(t)).is_err());
    drop(Profile::open_with(dir, DURESS, &at(t)).unwrap());
    assert_eq!(meta_row(dir, "attempts").unwrap(), after_real);
}

#[test]
fn an_attempt_cut_short_counts_as_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    profile_with_decoy(dir, None);
    // As if the app were killed while Argon2id ran: the count was written
    // first, and nothing cleared it.
    let conn = Connection::open(dir.join(DB_FILE)).unwrap();
    set_meta(
        &conn,
        "attempts",
        &Attempts {
            failed: 5,
            last: 500,
        }
        .encode(),
    )
    .unwrap();
    drop(conn);
    assert!(matches!(
        Profile::open_with(dir, PIN, &at(510)),
        Err(CoreError::TooManyAttempts { wait_seconds: 20 })
    ));
    assert!(Profile::open_with(dir, PIN, &at(530)).is_ok());
}

#[test]
fn wipe_after_n_wrong_pins_destroys_the_profile() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("profile");
    let key = Counting::new();
    profile_with_decoy(&dir, Some(dev(&key)));
    let p = Profile::open_with(&dir, PIN, &on(&key, 0)).unwrap();
    assert_eq!(p.wipe_after().unwrap(), 0, "off by default");
    p.set_wipe_after(8).unwrap();
    drop(p);
    // The setting is the file's: the decoy sees it too.
    let decoy = Profile::open_with(&dir, DURESS, &on(&key, 0)).unwrap();
    assert_eq!(decoy.wipe_after().unwrap(), 8);
    drop(decoy);
    // Seven wrong PINs (with their waits), then the right one: all is well.
    let mut t = 1_000;
    let wrong = |t: &mut u64, n: u32| {
        for _ in 0..n {
            let s = Profile::unlock_status(&dir, UnixTime(*t)).unwrap();
            *t += s.wait_seconds;
            assert!(matches!(
                Profile::open_with(&dir, "0000", &on(&key, *t)),
                Err(CoreError::WrongPin)
            ));
        }
    };
    wrong(&mut t, 7);
    let s = Profile::unlock_status(&dir, UnixTime(t)).unwrap();
    assert_eq!((s.failed_attempts, s.wipe_after), (7, 8));
    t += s.wait_seconds;
    let p = Profile::open_with(&dir, PIN, &on(&key, t)).unwrap();
    assert_eq!(draft(&p, 1).unwrap(), b"real report");
    drop(p);
    // Eight in a row: the eighth destroys it, files and folder.
    wrong(&mut t, 8);
    assert!(!Profile::exists(&dir));
    assert!(!dir.exists());
    assert!(matches!(
        Profile::open_with(&dir, PIN, &on(&key, t + MAX)),
        Err(CoreError::NoProfile)
    ));
}

const MAX: u64 = throttle::MAX_DELAY_SECS;

#[test]
fn the_last_allowed_attempt_cut_short_destroys_the_profile() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("profile");
    profile_with_decoy(&dir, None);
    Profile::open(&dir, PIN).unwrap().set_wipe_after(3).unwrap();
    let conn = Connection::open(dir.join(DB_FILE)).unwrap();
    set_meta(
        &conn,
        "attempts",
        &Attempts {
            failed: 3,
            last: 500,
        }
        .encode(),
    )
    .unwrap();
    drop(conn);
    assert!(matches!(
        Profile::open_with(&dir, PIN, &at(510)),
        Err(CoreError::WrongPin)
    ));
    assert!(!Profile::exists(&dir));
}

#[test]
fn the_rows_read_before_unlock_do_not_tell_a_duress_pin() {
    let root = tempfile::tempdir().unwrap();
    let with = root.path().join("with");
    let without = root.path().join("without");
    profile_with_decoy(&with, None);
    let p = Profile::create(&without, PIN, FAST).unwrap();
    p.put_item(ItemKind::Draft, &[1; 16], 0, b"real report")
        .unwrap();
    drop(p);
    // One wrong PIN and one right one on each, at the same times.
    for dir in [&with, &without] {
        assert!(Profile::open_with(dir, "0000", &at(100)).is_err());
        drop(Profile::open_with(dir, PIN, &at(101)).unwrap());
    }
    // The duress PIN, used on one, leaves the same bytes as the real PIN.
    drop(Profile::open_with(&with, DURESS, &at(102)).unwrap());
    let rows = |dir: &Path| -> Vec<(String, usize, Option<Vec<u8>>)> {
        let conn = Connection::open(dir.join(DB_FILE)).unwrap();
        let mut stmt = conn
            .prepare("SELECT name, value FROM meta ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| {
            let name: String = r.get(0)?;
            let value: Vec<u8> = r.get(1)?;
            Ok((name, value))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .map(|(name, value)| {
            let shown = matches!(name.as_str(), "attempts" | "wipe_after" | "binding" | "kdf")
                .then(|| value.clone());
            (name, value.len(), shown)
        })
        .collect()
    };
    assert_eq!(rows(&with), rows(&without));
}
