//! Compressed reports (PROTOCOL.md §5.1): for short (~200 characters),
//! typical (~1,900) and long (~11,000–12,000) reports in Spanish,
//! Portuguese and English, the bytes of a report before and after
//! compression, and what compressing costs the phone and decompressing the
//! focal point, next to what sealing and opening cost. A program that prints
//! figures and a Markdown table; BENCHMARKS.md quotes them.
//!
//! ```sh
//! cargo bench -p amparo-protocol --bench compression
//! ```
//!
//! The texts are `protocol/benches/texts/` (written for the tests, not real
//! reports; see its README). Each is put in a report with the form filled in
//! as a phone fills it (kinds of violence, aggressors, place, needs,
//! language, an approximate date, a real reply key, `reads`), encoded as the
//! phone encodes it (`Payload::to_json`) and sealed to a focal point twice:
//! with `Envelope::seal` (today's bytes: never compressed) and with
//! `Envelope::seal_with(.., Compression::IfSmaller, ..)`.
//!
//! Times are medians of many runs of one call each, on one core, the
//! measures of a report taking turns in rounds:
//! `compression::compress` of the JSON (the phone), `compression::decompress`
//! of its output (the focal point), `Envelope::seal` and `Envelope::open` of
//! the uncompressed envelope (what compression is weighed against), and the
//! whole `seal_with`/`open` of the compressed envelope (what the phone and
//! the focal point pay in all, smaller class included).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use amparo_protocol::UnixTime;
use amparo_protocol::compression;
use amparo_protocol::entropy::DangerousSeededEntropy;
use amparo_protocol::envelope::{Compression, Envelope, Purpose};
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::report::MAX_TEXT_CHARS;
use amparo_protocol::payload::{
    AgeBand, AggressorKind, IncidentDate, Language, Need, PAYLOAD_VERSION, Payload, Place,
    PlaceSetting, Report, ViolenceKind,
};

fn text(name: &str) -> String {
    let path = format!("{}/benches/texts/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_owned()
}

/// The three texts of `lang`: short, typical, and long (typical, a blank
/// line and the extra part, cut to the report's limit).
fn texts(lang: &str) -> [(&'static str, String); 3] {
    let medium = text(&format!("{lang}_medium"));
    let long: String = format!("{medium}\n\n{}", text(&format!("{lang}_long_extra")))
        .chars()
        .take(MAX_TEXT_CHARS)
        .collect();
    [
        ("short", text(&format!("{lang}_short"))),
        ("typical", medium),
        ("long", long),
    ]
}

/// A report as a phone fills it in `language`, with `text`.
fn report(language: Language, text: String, e: &mut DangerousSeededEntropy) -> Report {
    let (violence, country, region, aggressors, needs) = match language {
        Language::Es => (
            vec![
                ViolenceKind::Physical,
                ViolenceKind::Robbery,
                ViolenceKind::ArbitraryDetention,
            ],
            "PE",
            "PE-LIM",
            vec![AggressorKind::PoliceOrSecurity, AggressorKind::Client],
            vec![
                Need::LegalAdvice,
                Need::HealthCare,
                Need::ProtectionShelter,
                Need::MigrationStatus,
            ],
        ),
        Language::Pt => (
            vec![
                ViolenceKind::Physical,
                ViolenceKind::Threats,
                ViolenceKind::Extortion,
                ViolenceKind::Discrimination,
            ],
            "BR",
            "BR-SP",
            vec![AggressorKind::Client, AggressorKind::PoliceOrSecurity],
            vec![
                Need::LegalAdvice,
                Need::PsychologicalSupport,
                Need::ProtectionShelter,
            ],
        ),
        Language::En => (
            vec![
                ViolenceKind::Trafficking,
                ViolenceKind::Physical,
                ViolenceKind::Threats,
                ViolenceKind::Extortion,
            ],
            "TT",
            "TT-POS",
            vec![
                AggressorKind::ThirdPartyOrPimp,
                AggressorKind::Client,
                AggressorKind::OrganizedCrime,
            ],
            vec![
                Need::ProtectionShelter,
                Need::HealthCare,
                Need::StiHivPep,
                Need::LegalAdvice,
                Need::MigrationStatus,
            ],
        ),
    };
    Report {
        v: PAYLOAD_VERSION,
        violence,
        violence_other: None,
        when: Some(IncidentDate {
            year: 2026,
            month: Some(11),
            day: None,
            approximate: true,
        }),
        place: Place {
            country: Some(country.into()),
            region: Some(region.into()),
            detail: None,
            setting: Some(PlaceSetting::Urban),
        },
        aggressors,
        aggressor_other: None,
        needs,
        language,
        text,
        attachments: vec![],
        reply_to: RecipientKeys::generate(e).unwrap().public(),
        referral: None,
        statistics_consent: true,
        age_band: Some(AgeBand::Adult),
        reported_elsewhere: None,
        alert: None,
        reads: vec![compression::READS_DEFLATE_D1.into()],
    }
}

/// Rounds of timed runs: the measures of a report take turns, so that a burst
/// of other work on the machine falls on all of them alike.
const ROUNDS: usize = 9;
/// Timed calls of each measure per round.
const PER_ROUND: usize = 51;
/// Timed calls of each measure in all; a time is the median of these.
const RUNS: usize = ROUNDS * PER_ROUND;

/// Something to time: one call, its result dropped.
type Job<'a> = Box<dyn FnMut() + 'a>;

/// The median time of one call of each job, over [`RUNS`] timed calls in
/// [`ROUNDS`] rounds that take turns (after [`PER_ROUND`] untimed calls each).
fn medians<const N: usize>(mut jobs: [Job<'_>; N]) -> [Duration; N] {
    for job in &mut jobs {
        for _ in 0..PER_ROUND {
            job();
        }
    }
    let mut times: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::with_capacity(RUNS));
    for _ in 0..ROUNDS {
        for (job, t) in jobs.iter_mut().zip(&mut times) {
            for _ in 0..PER_ROUND {
                let started = Instant::now();
                job();
                t.push(started.elapsed());
            }
        }
    }
    times.map(|mut t| {
        t.sort();
        t[t.len() / 2]
    })
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn pct(part: Duration, whole: Duration) -> f64 {
    100.0 * part.as_secs_f64() / whole.as_secs_f64()
}

/// Thousands separated by a space, as BENCHMARKS.md writes them.
fn n(v: usize) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

struct Row {
    lang: &'static str,
    size: &'static str,
    chars: usize,
    json: usize,
    packed: usize,
    before: usize,
    after: usize,
    compress: Duration,
    decompress: Duration,
    seal: Duration,
    open: Duration,
    seal_packed: Duration,
    open_packed: Duration,
}

fn measure(
    lang: &'static str,
    language: Language,
    size: &'static str,
    text: String,
    e: &mut DangerousSeededEntropy,
) -> Row {
    let focal = RecipientKeys::generate(e).unwrap();
    let to = focal.public();
    let chars = text.chars().count();
    let json = report(language, text, e).to_json().unwrap();
    let inner = InnerHeader::new(e, UnixTime(1_796_000_000)).unwrap();

    let packed = compression::compress(&json).unwrap();
    assert_eq!(*compression::decompress(&packed).unwrap(), json);
    let (plain, small) = seal_both(&to, &inner, &json, e);
    let opened = small.open(&focal, &Purpose::FOR_FOCAL_POINT).unwrap();
    assert!(opened.header.is_compressed(), "{lang} {size}: compressed");
    assert_eq!(*opened.body, json);
    assert!(
        !plain
            .open(&focal, &Purpose::FOR_FOCAL_POINT)
            .unwrap()
            .header
            .is_compressed()
    );

    let mut e_seal = DangerousSeededEntropy::new(b"bench-compression-seal");
    let mut e_packed = DangerousSeededEntropy::new(b"bench-compression-seal-packed");
    let [compress, decompress, seal, open, seal_packed, open_packed] = medians([
        Box::new(|| {
            black_box(compression::compress(black_box(&json)).unwrap());
        }),
        Box::new(|| {
            black_box(compression::decompress(black_box(&packed)).unwrap());
        }),
        Box::new(|| {
            black_box(Envelope::seal(&to, Purpose::Report, &inner, &json, &mut e_seal).unwrap());
        }),
        Box::new(|| {
            black_box(plain.open(&focal, &[Purpose::Report]).unwrap());
        }),
        Box::new(|| {
            black_box(
                Envelope::seal_with(
                    &to,
                    Purpose::Report,
                    &inner,
                    &json,
                    Compression::IfSmaller,
                    &mut e_packed,
                )
                .unwrap(),
            );
        }),
        Box::new(|| {
            black_box(small.open(&focal, &[Purpose::Report]).unwrap());
        }),
    ]);

    let row = Row {
        lang,
        size,
        chars,
        json: json.len(),
        packed: packed.len(),
        before: plain.as_bytes().len(),
        after: small.as_bytes().len(),
        compress,
        decompress,
        seal,
        open,
        seal_packed,
        open_packed,
    };
    println!(
        "{lang} {size:<7} {chars:>6} chars: JSON {:>6} B -> {:>5} B compressed; envelope {:>5} -> {:>5} B ({:.2}x); \
         compress {:.0} us = {:.0} % of seal {:.0} us; decompress {:.0} us = {:.0} % of open {:.0} us; \
         compressed seal {:.0} us, open {:.0} us",
        row.json,
        row.packed,
        row.before,
        row.after,
        row.after as f64 / row.before as f64,
        us(compress),
        pct(compress, seal),
        us(seal),
        us(decompress),
        pct(decompress, open),
        us(open),
        us(seal_packed),
        us(open_packed),
    );
    row
}

/// The envelope sizes of a report of `language` with `text`: sealed plain,
/// and with compression if smaller.
fn envelopes(language: Language, text: &str, e: &mut DangerousSeededEntropy) -> (usize, usize) {
    let to = RecipientKeys::generate(e).unwrap().public();
    let json = report(language, text.to_owned(), e).to_json().unwrap();
    let inner = InnerHeader::new(e, UnixTime(1_796_000_000)).unwrap();
    let (plain, small) = seal_both(&to, &inner, &json, e);
    (plain.as_bytes().len(), small.as_bytes().len())
}

/// A report's JSON sealed plain and sealed with compression if smaller.
fn seal_both(
    to: &RecipientPublic,
    inner: &InnerHeader,
    json: &[u8],
    e: &mut DangerousSeededEntropy,
) -> (Envelope, Envelope) {
    let plain = Envelope::seal(to, Purpose::Report, inner, json, e).unwrap();
    let small =
        Envelope::seal_with(to, Purpose::Report, inner, json, Compression::IfSmaller, e).unwrap();
    (plain, small)
}

/// The longest start of `text` (in characters) whose report fits an
/// envelope of at most `limit` bytes, plain and compressed. A binary
/// search: compressed sizes are not quite monotonic in the length, so
/// "about".
fn longest(
    language: Language,
    text: &str,
    limit: usize,
    e: &mut DangerousSeededEntropy,
) -> (usize, usize) {
    let chars: Vec<char> = text.chars().collect();
    let mut fit = [0usize; 2];
    for (which, best) in fit.iter_mut().enumerate() {
        let (mut lo, mut hi) = (0usize, chars.len());
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            let prefix: String = chars[..mid].iter().collect();
            let sizes = envelopes(language, &prefix, e);
            let size = if which == 0 { sizes.0 } else { sizes.1 };
            if size <= limit {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        *best = lo;
    }
    (fit[0], fit[1])
}

fn main() {
    let mut e = DangerousSeededEntropy::new(b"bench-compression");

    // The first call in a process primes the compressor with the dictionary
    // (once); every call after copies it. One sample: a rough figure.
    let start = std::time::Instant::now();
    let empty = compression::compress(b"").unwrap();
    println!(
        "first compress in this process (primes the compressor once): {:.0} us",
        us(start.elapsed())
    );
    // The fixed cost of a call, whatever the body: copying the primed
    // compressor; the decoder's window.
    let [fixed_compress, fixed_decompress] = medians([
        Box::new(|| {
            black_box(compression::compress(black_box(b"")).unwrap());
        }),
        Box::new(|| {
            black_box(compression::decompress(black_box(&empty)).unwrap());
        }),
    ]);
    println!(
        "fixed cost: compress of an empty body {:.0} us, decompress of it {:.0} us",
        us(fixed_compress),
        us(fixed_decompress),
    );

    let mut rows = Vec::new();
    for (lang, language) in [
        ("es", Language::Es),
        ("pt", Language::Pt),
        ("en", Language::En),
    ] {
        for (size, text) in texts(lang) {
            rows.push(measure(lang, language, size, text, &mut e));
        }
    }

    println!("\nBytes per report (envelope = 62 bytes of sealing + the padded class):\n");
    println!(
        "| language | report | characters | JSON | compressed body | envelope before | envelope after | after / before |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | **{:.2}×** |",
            r.lang,
            r.size,
            n(r.chars),
            n(r.json),
            n(r.packed),
            n(r.before),
            n(r.after),
            r.after as f64 / r.before as f64,
        );
    }

    println!(
        "\nThe longest text (characters, start of the long text) a report of this form carries in each envelope:\n"
    );
    println!(
        "| language | 1 086-byte envelope: plain | compressed | 1 598 (compressed only) | 4 158-byte envelope: plain | compressed |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (lang, language) in [
        ("es", Language::Es),
        ("pt", Language::Pt),
        ("en", Language::En),
    ] {
        let [_, _, (_, long)] = texts(lang);
        let small = longest(language, &long, 1086, &mut e);
        let between = longest(language, &long, 1598, &mut e);
        let mid = longest(language, &long, 4158, &mut e);
        println!(
            "| {lang} | {} | {} | {} | {} | {} |",
            n(small.0),
            n(small.1),
            n(between.1),
            n(mid.0),
            n(mid.1)
        );
    }

    println!(
        "\nCPU per report (µs, medians of {RUNS} runs in {ROUNDS} rounds taking turns; release, one core):\n"
    );
    println!(
        "| language | report | compress (phone) | seal | compress / seal | decompress (focal point) | open | decompress / open | decompress / seal | seal compressed | open compressed |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} | {:.0} | **{:.0} %** | {:.0} | {:.0} | {:.0} % | **{:.0} %** | {:.0} | {:.0} |",
            r.lang,
            r.size,
            us(r.compress),
            us(r.seal),
            pct(r.compress, r.seal),
            us(r.decompress),
            us(r.open),
            pct(r.decompress, r.open),
            pct(r.decompress, r.seal),
            us(r.seal_packed),
            us(r.open_packed),
        );
    }

    other_hands(&mut e);
}

/// Where texts written by other hands are: `AMPARO_OTHER_TEXTS`, else the
/// field documents the project was made from (`../shared/seeds/` beside the
/// checkout).
fn other_texts_dir() -> String {
    std::env::var("AMPARO_OTHER_TEXTS")
        .unwrap_or_else(|_| format!("{}/../../shared/seeds", env!("CARGO_MANIFEST_DIR")))
}

/// The dictionary and the test texts were written by the same hand, so the
/// figures above may flatter it. This measures 1,900-character windows
/// (every 950 characters) of text nobody wrote for Amparo — by default the
/// English field documents in `../shared/seeds/` (an NGO case study, a
/// statement, findings: institutional prose, not testimony) — each put in an
/// English report as above: the compressed body and the envelope it lands in.
fn other_hands(e: &mut DangerousSeededEntropy) {
    let dir = other_texts_dir();
    let dir = std::fs::canonicalize(&dir).map_or(dir, |d| d.display().to_string());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!(
            "
(no texts by other hands: {dir} not found; set AMPARO_OTHER_TEXTS to a directory of .txt files)"
        );
        return;
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    let (mut with, mut without, mut classes) = (Vec::new(), Vec::new(), Vec::new());
    let to = RecipientKeys::generate(e).unwrap().public();
    let inner = InnerHeader::new(e, UnixTime(1_796_000_000)).unwrap();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let chars: Vec<char> = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .collect();
        let mut at = 0;
        while at + 1900 <= chars.len() {
            let window: String = chars[at..at + 1900].iter().collect();
            let json = report(Language::En, window, e).to_json().unwrap();
            with.push(compression::compress(&json).unwrap().len());
            // The same window without the dictionary's help: DEFLATE alone.
            without.push(miniz_oxide::deflate::compress_to_vec(&json, 9).len() + 1);
            let sealed = Envelope::seal_with(
                &to,
                Purpose::Report,
                &inner,
                &json,
                Compression::IfSmaller,
                e,
            )
            .unwrap();
            classes.push(sealed.as_bytes().len());
            at += 950;
        }
    }
    if with.is_empty() {
        println!(
            "
(no texts by other hands of 1,900 characters or more in {dir})"
        );
        return;
    }
    let summary = |v: &mut Vec<usize>| {
        v.sort_unstable();
        format!(
            "min {} median {} max {}",
            n(v[0]),
            n(v[v.len() / 2]),
            n(v[v.len() - 1])
        )
    };
    let count = |size: usize| classes.iter().filter(|&&c| c == size).count();
    println!(
        "\nText by other hands ({} windows of 1,900 characters from {} files in {dir}), in an English report:\n\
         compressed body with D1 {}; DEFLATE without the dictionary {}; envelopes: {} × 1 086, {} × 1 598, {} × 4 158, {} larger",
        with.len(),
        paths.len(),
        summary(&mut with),
        summary(&mut without),
        count(1086),
        count(1598),
        count(4158),
        classes.iter().filter(|&&c| c > 4158).count(),
    );
}
