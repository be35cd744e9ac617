//! Sealing and opening cost against the raw primitives, and filing a large
//! mailbox into the encrypted store (a program that prints figures).
//!
//! ```sh
//! cargo bench -p amparo-core --bench seal_open
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::UnixTime;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::{Language, Payload, Place, Report};
use amparo_protocol::primitives::{aead, hkdf, x25519};

fn per_op(n: u32, mut f: impl FnMut()) -> f64 {
    // Warm up, then time.
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn report(reply: &RecipientKeys, text: String) -> Report {
    Report {
        reads: Vec::new(),
        statistics_consent: false,
        age_band: None,
        reported_elsewhere: None,
        alert: None,
        v: 1,
        violence: vec![],
        violence_other: None,
        when: None,
        place: Place::default(),
        aggressors: vec![],
        aggressor_other: None,
        needs: vec![],
        language: Language::Es,
        text,
        attachments: vec![],
        reply_to: reply.public(),
        referral: None,
    }
}

fn main() {
    let mut e = SystemEntropy::new();
    let focal = RecipientKeys::generate(&mut e).unwrap();
    let body = vec![0x61u8; 4000]; // a 4 KiB-class report body
    let now = UnixTime(1_790_000_000);
    let n = 3000;

    let seal = per_op(n, || {
        let h = InnerHeader::new(&mut e, now).unwrap();
        black_box(Envelope::seal(&focal.public(), Purpose::Report, &h, &body, &mut e).unwrap());
    });
    let h = InnerHeader::new(&mut e, now).unwrap();
    let env = Envelope::seal(&focal.public(), Purpose::Report, &h, &body, &mut e).unwrap();
    let open = per_op(n, || {
        black_box(env.open(&focal, &[Purpose::Report]).unwrap());
    });

    let peer = focal.public().sealing_public();
    // Key generation includes computing the public key (it is the `enc`).
    let dh = per_op(n, || {
        let sk = x25519::SecretKey::generate(&mut e).unwrap();
        black_box(sk.public_key());
        black_box(sk.diffie_hellman(&peer).unwrap());
    });
    let dh_only = per_op(n, || {
        black_box(focal.sealing().diffie_hellman(&peer).unwrap());
    });
    let kdf = per_op(n, || {
        let prk = hkdf::extract(b"salt", &[&[7u8; 32]]);
        black_box(hkdf::expand(&*prk, &[b"info"], 32).unwrap());
    });
    let key = [9u8; 32];
    let nonce = [1u8; 12];
    let padded = vec![0u8; 4096];
    let ct = aead::seal(&key, &nonce, b"", &padded).unwrap();
    let enc = per_op(n, || {
        black_box(aead::seal(&key, &nonce, b"", &padded).unwrap());
    });
    let dec = per_op(n, || {
        black_box(aead::open(&key, &nonce, b"", &ct).unwrap());
    });

    let seal_prims = dh + kdf + enc;
    let open_prims = dh_only + kdf + dec;
    println!("seal and open of a 4 KiB report vs the primitives it uses (µs per operation)");
    println!("  X25519 keygen + DH            {dh:8.1}");
    println!("  X25519 DH                     {dh_only:8.1}");
    println!("  HKDF-SHA256 extract + expand  {kdf:8.1}");
    println!("  ChaCha20-Poly1305 seal 4 KiB  {enc:8.1}");
    println!("  ChaCha20-Poly1305 open 4 KiB  {dec:8.1}");
    println!(
        "  seal envelope                 {seal:8.1}   = {:.2}x keygen+DH + HKDF + AEAD",
        seal / seal_prims
    );
    println!(
        "  open envelope                 {open:8.1}   = {:.2}x DH + HKDF + AEAD",
        open / open_prims
    );

    // Filing 10,000 reports from a mailbox into the encrypted store, in pages
    // of 100 (one transaction each), as fetch_mailbox does.
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::create(dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let public = profile.create_focal_identity().unwrap();
    let reply = RecipientKeys::generate(&mut e).unwrap();
    let envelopes: Vec<Envelope> = (0..10_000)
        .map(|i| {
            let json = report(&reply, format!("informe número {i}: {}", "x".repeat(600)))
                .to_json()
                .unwrap();
            let h = InnerHeader::new(&mut e, now).unwrap();
            Envelope::seal(&public, Purpose::Report, &h, &json, &mut e).unwrap()
        })
        .collect();
    let t = Instant::now();
    let mut filed = 0;
    for page in envelopes.chunks(100) {
        filed += profile.file_envelopes(page).unwrap().new_cases;
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(filed, 10_000);
    println!(
        "opened and filed 10,000 reports into the store in {secs:.2} s ({:.0} reports/s, {:.0} µs each)",
        10_000.0 / secs,
        secs * 1e6 / 10_000.0
    );

    // What queueing a report costs the phone (`send_draft`: the reply keys,
    // the JSON, the seal, the encrypted outbox and report records, one
    // commit), plain and compressed (PROTOCOL.md §5.1), taking turns so
    // that the machine's load weighs on both alike.
    // The bench texts' typical Spanish report (protocol/benches/texts/).
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../protocol/benches/texts/es_medium.txt"
    ))
    .unwrap();
    let form = amparo_core::drafts::DraftForm {
        text,
        language: Some(Language::Es),
        ..amparo_core::drafts::DraftForm::default()
    };
    let phone_dir = tempfile::tempdir().unwrap();
    let phone =
        Profile::create(phone_dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let mut entry = |reads: Vec<String>| amparo_protocol::directory::FocalPoint {
        reads,
        id: "fp".into(),
        name: amparo_protocol::directory::LocalizedText {
            es: "fp".into(),
            pt: "fp".into(),
            en: "fp".into(),
        },
        organization: String::new(),
        regions: vec![],
        categories: vec![],
        languages: vec![Language::Es],
        keys: RecipientKeys::generate(&mut e).unwrap().public(),
        valid_from: 0,
        valid_until: u64::MAX / 2,
    };
    let plain_fp = entry(Vec::new());
    let packed_fp = entry(vec![amparo_protocol::compression::READS_DEFLATE_D1.into()]);
    let (mut plain, mut packed) = (Vec::new(), Vec::new());
    for round in 0..10 {
        for (fp, times) in [(&plain_fp, &mut plain), (&packed_fp, &mut packed)] {
            let drafts: Vec<[u8; 16]> = (0..20)
                .map(|_| phone.create_draft(&form).unwrap())
                .collect();
            let t = Instant::now();
            for d in &drafts {
                black_box(phone.send_draft(d, fp, false, now).unwrap());
            }
            if round > 0 {
                times.push(t.elapsed().as_secs_f64() * 1e6 / 20.0);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (plain, packed) = (median(&mut plain), median(&mut packed));
    println!(
        "queueing a 1,900-character report (send_draft, median of 9 rounds of 20): plain {plain:.0} µs, \
         compressed {packed:.0} µs ({:+.0} µs, {:+.1} %)",
        packed - plain,
        (packed - plain) / plain * 100.0
    );
}
