//! Admission work (issue 17): what a proof costs to make and to check here.
//! A program that prints figures (speed targets belong in benchmarks, never
//! in timed tests); PROTOCOL.md §14 and BENCHMARKS.md quote them.
//!
//! ```sh
//! cargo bench -p amparo-protocol --bench admission
//! ```
//!
//! Measured, on one core: an Equi-X solver run with the compiled hash
//! program (what x86-64 and ARM64 phones get) and with the interpreter
//! (where the platform forbids generated code, as iOS does), solutions per
//! run; `admission::solve` at efforts 1 to 256 (mean time per proof, runs
//! per proof); `admission::verify` of a good proof and of a bogus one (what
//! a flood of made-up proofs costs the relay per request).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use amparo_protocol::admission::{self, Challenge, Proof};
use amparo_protocol::entropy::DangerousSeededEntropy;
use amparo_protocol::envelope::EnvelopeId;
use amparo_protocol::primitives::ed25519::SigningKey;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let key = SigningKey::from_seed(&[7; 32]).unwrap();
    let challenge = Challenge::sign(&key, 1, 1, 600);

    for (label, runtime) in [
        ("compiled", equix::RuntimeOption::TryCompile),
        ("interpreted", equix::RuntimeOption::InterpretOnly),
    ] {
        let mut b = equix::EquiXBuilder::new();
        b.runtime(runtime);
        let runs = if label == "compiled" { 300 } else { 40 };
        let (mut ok, mut solutions) = (0u32, 0usize);
        let started = Instant::now();
        for i in 0..runs {
            if let Ok(s) = b.solve(format!("amparo-bench-{i}").as_bytes()) {
                ok += 1;
                solutions += s.len();
            }
        }
        let per = started.elapsed() / runs;
        println!(
            "Equi-X solver run, {label}: {:.2} ms per run, {:.2} solutions per run ({ok} of {runs} puzzles usable)",
            ms(per),
            solutions as f64 / f64::from(ok.max(1)),
        );
    }

    let mut e = DangerousSeededEntropy::new(b"admission-bench");
    let mut good: Vec<(Proof, Vec<EnvelopeId>)> = Vec::new();
    for effort in [1u32, 4, 16, 64, 256] {
        let proofs = if effort >= 64 { 20 } else { 60 };
        let mut runs = 0;
        let started = Instant::now();
        for i in 0..proofs {
            let ids = vec![EnvelopeId([i as u8; 16]), EnvelopeId([effort as u8; 16])];
            let s = admission::solve(&challenge, &ids, effort, &mut e, &mut |_| true).unwrap();
            runs += s.runs;
            good.push((s.proof.unwrap(), ids));
        }
        let per = started.elapsed() / proofs;
        println!(
            "solve at effort {effort:>3}: {:8.2} ms per proof, {:.2} solver runs per proof (mean of {proofs})",
            ms(per),
            runs as f64 / f64::from(proofs)
        );
    }

    let started = Instant::now();
    for (p, ids) in &good {
        admission::verify(p, &challenge.seed, ids, 1).unwrap();
    }
    let per = started.elapsed() / good.len() as u32;
    println!(
        "verify a good proof: {:.1} µs (mean of {})",
        per.as_secs_f64() * 1e6,
        good.len()
    );
    let started = Instant::now();
    let n = 2000u32;
    for i in 0..n {
        let bogus = Proof {
            epoch: 1,
            nonce: [i as u8; 16],
            effort: 64,
            solution: [(i >> 3) as u8; 16],
        };
        let _ = admission::verify(&bogus, &challenge.seed, &[EnvelopeId([1; 16])], 1);
    }
    println!(
        "refuse a made-up proof: {:.1} µs (mean of {n})",
        (started.elapsed() / n).as_secs_f64() * 1e6
    );
}
