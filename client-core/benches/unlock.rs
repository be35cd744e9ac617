//! The seized phone (issue 16, part 4): what unlocking costs here, with and
//! without the device key, and what a copied profile file gives someone
//! guessing its PIN off the phone. A program that prints figures (speed
//! targets belong in benchmarks, never in timed tests).
//!
//! ```sh
//! cargo bench -p amparo-core --bench unlock
//! ```
//!
//! Measured: `Profile::open_with` with the phone's Argon2id parameters
//! (`KdfParams::PHONE`) on a profile bound to nothing and on one bound to a
//! `SoftwareDeviceKey` (the phone's Keystore or Secure Enclave answers in
//! its own time, which this machine cannot measure), its time and the
//! process's peak resident memory (VmHWM, reset with `/proc/self/clear_refs`
//! before each open); one Argon2id run alone (what each guess costs whoever
//! holds a copied file), on one core and on every core at once; and the
//! waits the phone imposes on PINs typed into the app (`store::throttle`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use amparo_core::store::{DeviceKey, KdfParams, Profile, SoftwareDeviceKey, Unlock, kdf, throttle};

const PIN: &str = "482915";
const OPENS: usize = 9;

/// (VmRSS, VmHWM) of this process, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Sets the peak (VmHWM) back to the resident size now.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Opened {
    median: Duration,
    fastest: Duration,
    rss_before_kib: u64,
    peak_kib: u64,
}

/// Opens the profile in `dir` `OPENS` times (after one unmeasured open):
/// the median and fastest time, and the peak memory of one open.
fn open_many(dir: &std::path::Path, unlock: &Unlock) -> Opened {
    drop(Profile::open_with(dir, PIN, unlock).unwrap());
    let (rss_before_kib, _) = memory();
    reset_peak();
    drop(Profile::open_with(dir, PIN, unlock).unwrap());
    let (_, peak_kib) = memory();
    let times: Vec<Duration> = (0..OPENS)
        .map(|_| {
            let t = Instant::now();
            let p = Profile::open_with(dir, PIN, unlock).unwrap();
            let took = t.elapsed();
            drop(p);
            took
        })
        .collect();
    Opened {
        fastest: *times.iter().min().unwrap(),
        median: median(times),
        rss_before_kib,
        peak_kib,
    }
}

/// Argon2id guesses per second: on one thread, and with `threads` threads
/// at once (each with its own 46 MiB), as someone holding the copied file
/// runs them.
fn guesses_per_second(threads: usize) -> (f64, f64) {
    let salt = [7u8; 16];
    let per_thread = 6u32;
    let t = Instant::now();
    for i in 0..per_thread {
        std::hint::black_box(kdf::derive(&format!("{i:06}"), &salt, KdfParams::PHONE).unwrap());
    }
    let one = f64::from(per_thread) / t.elapsed().as_secs_f64();
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..threads {
            s.spawn(move || {
                for i in 0..per_thread {
                    let pin = format!("{th}{i:05}");
                    std::hint::black_box(kdf::derive(&pin, &salt, KdfParams::PHONE).unwrap());
                }
            });
        }
    });
    let all = f64::from(per_thread) * threads as f64 / t.elapsed().as_secs_f64();
    (one, all)
}

/// Human time for `secs` seconds.
fn span(secs: f64) -> String {
    const MIN: f64 = 60.0;
    const HOUR: f64 = 3600.0;
    const DAY: f64 = 86_400.0;
    const YEAR: f64 = 365.25 * DAY;
    if secs < MIN {
        format!("{secs:.0} s")
    } else if secs < HOUR {
        format!("{:.0} min", secs / MIN)
    } else if secs < 2.0 * DAY {
        format!("{:.1} h", secs / HOUR)
    } else if secs < YEAR {
        format!("{:.0} days", secs / DAY)
    } else {
        format!("{:.0} years", secs / YEAR)
    }
}

/// Seconds the app makes someone wait to type `n` wrong PINs in a row
/// (the attempt counter's waits, no wipe-after).
fn throttled_secs(n: u64) -> f64 {
    // delay() reaches its cap (a day) after a few dozen; sum in closed form
    // past that so 10^8 PINs do not loop 10^8 times.
    let mut total = 0u64;
    let mut f = 0u64;
    while f < n {
        let d = throttle::delay(u32::try_from(f).unwrap_or(u32::MAX));
        if d == throttle::MAX_DELAY_SECS {
            total = total.saturating_add((n - f).saturating_mul(d));
            break;
        }
        total += d;
        f += 1;
    }
    total as f64
}

fn main() {
    let root = tempfile::tempdir().unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // A profile without the device key, and one bound to a software key.
    let plain = root.path().join("plain");
    drop(Profile::create(&plain, PIN, KdfParams::PHONE).unwrap());
    let device: Arc<dyn DeviceKey> = Arc::new(SoftwareDeviceKey::generate().unwrap());
    let bound = root.path().join("bound");
    drop(
        Profile::create_bound(&bound, PIN, KdfParams::PHONE, Some(device.clone()), |_| {
            Ok(())
        })
        .unwrap()
        .0,
    );

    let without = open_many(&plain, &Unlock::now());
    let with = open_many(&bound, &Unlock::now().with_device(device.clone()));

    // One answer of the software key (the phone's hardware is slower: a
    // StrongBox HMAC is a round trip to a separate chip).
    let n = 10_000u32;
    let challenge = [3u8; 32];
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(device.respond(&challenge).unwrap());
    }
    let respond_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);

    let (one_core, all_cores) = guesses_per_second(cores);

    println!(
        "unlock with KdfParams::PHONE (Argon2id 46 MiB, 4 passes, 1 lane), {OPENS} opens each"
    );
    println!("  case                         median    fastest   peak (VmHWM)   resident before");
    for (name, o) in [
        ("PIN only", &without),
        ("PIN + device key (software)", &with),
    ] {
        println!(
            "  {name:<28} {:>6.0} ms {:>6.0} ms {:>10.1} MiB {:>12.1} MiB",
            o.median.as_secs_f64() * 1e3,
            o.fastest.as_secs_f64() * 1e3,
            mib(o.peak_kib),
            mib(o.rss_before_kib),
        );
    }
    println!("  software device key: one answer {respond_us:.1} µs");
    println!();
    println!("an attacker holding a copy of the profile's files (Argon2id per guess, PHONE)");
    println!(
        "  PIN only:              {one_core:.2} guesses/s on one core, {all_cores:.2} guesses/s on this machine's {cores} cores"
    );
    println!(
        "  PIN + device key:      0 guesses/s: each guess needs the phone's answer to a challenge that depends on the PIN"
    );
    println!();
    println!("time to try every PIN (the average find is half of it)");
    println!(
        "  digits  PINs         copied file, one core   copied file, {cores} cores   through the app on the phone (waits)"
    );
    for digits in [4u32, 6, 8] {
        let pins = 10u64.pow(digits);
        println!(
            "  {digits:<7} {pins:<12} {:<23} {:<23} {}",
            span(pins as f64 / one_core),
            span(pins as f64 / all_cores),
            span(throttled_secs(pins)),
        );
    }
    println!(
        "  with the device key a copied file gives none of these: the columns for a copy do not apply"
    );
    println!(
        "  waits: {} free, then {} s doubling to {} s per wrong PIN; with wipe-after N, at most N PINs are tried",
        throttle::FREE_ATTEMPTS,
        throttle::FIRST_DELAY_SECS,
        throttle::MAX_DELAY_SECS,
    );
    println!(
        "  e.g. 20 wrong PINs through the app wait {} in all",
        span(throttled_secs(20))
    );
}
