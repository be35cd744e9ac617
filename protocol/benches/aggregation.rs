//! The statistics sum (PROTOCOL.md §16): what an office's masking and the
//! coordinator's unmasking cost at the largest round (64 offices, 64
//! regions: a vector of 6 504 values), and a small one. A program that
//! prints figures; BENCHMARKS.md quotes them.
//!
//! ```sh
//! cargo bench -p amparo-protocol --bench aggregation
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use amparo_protocol::aggregation::shamir::{self, Secret};
use amparo_protocol::aggregation::{Layout, Rebuilt, mask, mask_key, unmask};
use amparo_protocol::entropy::DangerousSeededEntropy;
use amparo_protocol::primitives::x25519;
use amparo_protocol::statistics::Month;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn run(offices: usize, regions: usize) {
    let mut e = DangerousSeededEntropy::new(b"bench-aggregation");
    let month = Month::parse("2026-10").unwrap();
    let layout = Layout {
        regions: (0..regions).map(|i| format!("XX-{i:03}")).collect(),
    };
    let ids: Vec<String> = (0..offices).map(|i| format!("office-{i:02}")).collect();
    let secrets: Vec<(Secret, Secret)> = (0..offices)
        .map(|_| {
            (
                Secret::generate(&mut e).unwrap(),
                Secret::generate(&mut e).unwrap(),
            )
        })
        .collect();
    let cohort: Vec<(String, x25519::PublicKey)> = ids
        .iter()
        .zip(&secrets)
        .map(|(id, (a, _))| (id.clone(), mask_key(a).unwrap().public_key()))
        .collect();
    let counts = vec![1u32; layout.len()];

    let started = Instant::now();
    let masked: Vec<Vec<u32>> = ids
        .iter()
        .zip(&secrets)
        .map(|(id, (a, b))| mask(&counts, month, id, b, a, &cohort).unwrap())
        .collect();
    let per_office = started.elapsed() / u32::try_from(offices).unwrap();

    // Shares: one secret split among the others and rebuilt, as the
    // coordinator does for each office.
    let holders = u16::try_from(offices - 1).unwrap();
    let t = holders / 2 + 1;
    let started = Instant::now();
    let shares = shamir::split(&secrets[0].1, t, holders, &mut e).unwrap();
    let split = started.elapsed();
    let started = Instant::now();
    let back = shamir::combine(&shares[..usize::from(t)]).unwrap();
    let combine = started.elapsed();
    assert!(back == secrets[0].1);

    // The coordinator: one office did not send.
    let mut sum = vec![0u32; layout.len()];
    for y in &masked[1..] {
        for (s, v) in sum.iter_mut().zip(y) {
            *s = s.wrapping_add(*v);
        }
    }
    let rebuilt = Rebuilt {
        survivors: ids[1..]
            .iter()
            .zip(&cohort[1..])
            .zip(&secrets[1..])
            .map(|((id, (_, k)), (_, b))| (id.as_str(), *k, b.clone()))
            .collect(),
        dropped: vec![(ids[0].as_str(), secrets[0].0.clone())],
    };
    let started = Instant::now();
    let plain = unmask(&sum, month, &rebuilt).unwrap();
    let unmasking = started.elapsed();
    assert!(
        plain
            .iter()
            .all(|v| *v == u32::try_from(offices - 1).unwrap())
    );
    println!(
        "{offices} offices, {regions} regions ({} values, {} bytes): mask {:.1} ms per office; \
         split {:.2} ms, combine {:.2} ms (threshold {t} of {holders}); unmask {:.1} ms",
        layout.len(),
        layout.len() * 4,
        ms(per_office),
        ms(split),
        ms(combine),
        ms(unmasking),
    );
}

fn main() {
    run(4, 8);
    run(24, 32);
    run(64, 64);
}
