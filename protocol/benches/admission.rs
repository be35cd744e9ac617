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
//! a flood of made-up proofs costs the relay per request). Then admission
//! tokens (PROTOCOL.md §14.2): making an issuer key, a phone blinding a
//! request and finishing a token, the relay signing one and checking one.

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

    tokens();
}

fn tokens() {
    use amparo_protocol::keys::KeyId;
    use amparo_protocol::token::{self, IssuerKey};
    let mut e = DangerousSeededEntropy::new(b"token-bench");
    let n = 5u32;
    let started = Instant::now();
    let mut issuer = None;
    for _ in 0..n {
        issuer = Some(IssuerKey::generate(&mut e).unwrap());
    }
    println!(
        "token issuer key (RSA-2048): {:.0} ms to make (mean of {n}; once per 30 days)",
        ms(started.elapsed() / n)
    );
    let issuer = issuer.unwrap();
    let relay = KeyId([1; 8]);
    let n = 200u32;
    let mut blind = Duration::ZERO;
    let mut sign = Duration::ZERO;
    let mut finish = Duration::ZERO;
    let mut verify = Duration::ZERO;
    let digest = token::challenge_digest(&relay);
    for _ in 0..n {
        let t = Instant::now();
        let (request, pending) = token::begin(issuer.public(), &relay, &mut e).unwrap();
        blind += t.elapsed();
        let t = Instant::now();
        let response = issuer.sign(&request, &mut e).unwrap();
        sign += t.elapsed();
        let t = Instant::now();
        let tok = token::finish(&pending, &response).unwrap();
        finish += t.elapsed();
        let t = Instant::now();
        issuer.public().verify(&tok, &digest).unwrap();
        verify += t.elapsed();
    }
    println!(
        "token, phone: blind {:.2} ms, finish (checks it) {:.2} ms; relay: sign {:.2} ms, check a spent token {:.3} ms (means of {n})",
        ms(blind / n),
        ms(finish / n),
        ms(sign / n),
        ms(verify / n),
    );
}
