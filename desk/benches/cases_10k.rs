//! The desk with 10,000 cases: the time to unlock (Argon2id excepted: the
//! profile is made with the fast test parameters, so what is measured is
//! reading every case into the index), the time to the whole answer of the
//! cases page, of a filter, of a search, of a case and of the statistics
//! page (counted from the index, every case's month), and the desk's memory
//! (resident set before the profile is opened and after).
//!
//! Targets (issue 18): under 200 ms each for the cases page, a filter and a
//! search on this machine.
//!
//! `cargo bench -p amparo-desk --bench cases_10k` (set `AMPARO_DESK_CASES`
//! for another count). Prints figures; asserts nothing about time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::test::{self, TestRequest};
use actix_web::web;
use amparo_core::compose::seal_report;
use amparo_core::drafts::DraftForm;
use amparo_core::store::{KdfParams, Profile};
use amparo_desk::{Desk, DeskConfig, app};
use amparo_protocol::UnixTime;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::payload::*;

const HOST: &str = "127.0.0.1:48124";
const ORIGIN: &str = "http://127.0.0.1:48124";
const PIN: &str = "1357";

const WORDS: &[&str] = &[
    "policía",
    "cliente",
    "pareja",
    "dinero",
    "amenaza",
    "golpe",
    "calle",
    "noche",
    "documentos",
    "miedo",
    "hospital",
    "comisaría",
    "refugio",
    "hijos",
    "migración",
    "cuchillo",
    "celular",
];
const REGIONS: &[&str] = &[
    "PE-LIM", "PE-UCA", "PE-PIU", "BR-RR", "BR-AM", "CO-DC", "EC-P",
];
const VIOLENCE: &[ViolenceKind] = &[
    ViolenceKind::Physical,
    ViolenceKind::Sexual,
    ViolenceKind::Threats,
    ViolenceKind::Extortion,
    ViolenceKind::Robbery,
    ViolenceKind::ArbitraryDetention,
];

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn fill(dir: &std::path::Path, n: usize) {
    let p = Profile::create(dir, PIN, KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let keys = p.create_focal_identity().unwrap();
    let mut e = SystemEntropy::new();
    let mut batch = Vec::new();
    for i in 0..n {
        // About 600 characters of text each, varied.
        let text: Vec<&str> = (0..90)
            .map(|k| WORDS[(i * 7 + k * 13) % WORDS.len()])
            .collect();
        let form = DraftForm {
            text: format!("Caso {i}: {}", text.join(" ")),
            violence: vec![VIOLENCE[i % VIOLENCE.len()]],
            aggressors: vec![AggressorKind::Client],
            needs: vec![Need::LegalAdvice],
            place: Place {
                setting: None,
                country: None,
                region: Some(REGIONS[i % REGIONS.len()].into()),
                detail: None,
            },
            language: Some(Language::Es),
            ..DraftForm::default()
        };
        let hour = 1_750_000_000 + (i as u64) * 1800;
        let sealed = seal_report(
            &keys,
            form.to_report(keys),
            &[],
            amparo_protocol::envelope::Compression::IfSmaller,
            &mut e,
            UnixTime(hour),
        )
        .unwrap();
        batch.extend(sealed.envelopes);
        if batch.len() >= 500 {
            p.file_envelopes(&batch).unwrap();
            batch.clear();
        }
    }
    p.file_envelopes(&batch).unwrap();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[actix_web::main]
async fn main() {
    let n: usize = std::env::var("AMPARO_DESK_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("focal");
    let t = Instant::now();
    fill(&profile, n);
    println!("filed {n} cases in {:.1} s", t.elapsed().as_secs_f64());
    let desk = web::Data::new(
        Desk::new(
            DeskConfig {
                profile: profile.clone(),
                device_key: None,
                lock_after: Duration::from_secs(3600),
                sync_every: None,
            },
            48_124,
        )
        .unwrap(),
    );
    let app = test::init_service(app(desk.clone())).await;
    let launch = desk.launch_url();
    let path = launch
        .strip_prefix(&format!("http://{HOST}"))
        .unwrap()
        .to_string();
    let r = test::call_service(
        &app,
        TestRequest::get()
            .uri(&path)
            .insert_header((header::HOST, HOST))
            .to_request(),
    )
    .await;
    let cookie = r
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = desk.inner().session.as_ref().unwrap().csrf.to_string();
    let before = rss_kib();
    let t = Instant::now();
    let r = test::call_service(
        &app,
        TestRequest::post()
            .uri(&format!("/unlock?csrf={csrf}"))
            .insert_header((header::HOST, HOST))
            .insert_header((header::ORIGIN, ORIGIN))
            .insert_header((header::COOKIE, cookie.clone()))
            .set_form([("pin", PIN)])
            .to_request(),
    )
    .await;
    assert!(r.status().is_redirection());
    let unlock = t.elapsed();
    let after = rss_kib();
    println!(
        "unlock (fast KDF) and read {n} cases into the index: {:.0} ms; resident memory {:.1} MiB before, {:.1} MiB after (+{:.1} MiB)",
        unlock.as_secs_f64() * 1000.0,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / 1024.0
    );
    let first_id = {
        let inner = desk.inner();
        let page = inner
            .open
            .as_ref()
            .unwrap()
            .index
            .query(&amparo_core::focal::CaseQuery {
                limit: 1,
                ..Default::default()
            });
        page.cases[0]
            .id
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    {
        let inner = desk.inner();
        let open = inner.open.as_ref().unwrap();
        for (what, f) in [
            (
                "outbox_len",
                &(|| drop(open.profile.outbox_len())) as &dyn Fn(),
            ),
            ("settings", &|| drop(open.profile.settings())),
            ("index query (all, first 50)", &|| {
                drop(open.index.query(&amparo_core::focal::CaseQuery {
                    limit: 50,
                    ..Default::default()
                }))
            }),
        ] {
            let t = Instant::now();
            for _ in 0..10 {
                f();
            }
            println!(
                "{what:<40} {:>6.2} ms each",
                t.elapsed().as_secs_f64() * 100.0
            );
        }
    }
    for (name, uri) in [
        ("cases page (first 50 of all)", "/cases".to_string()),
        (
            "newest first, page 100",
            "/cases?desc=1&page=100".to_string(),
        ),
        (
            "filter: region and kind of violence",
            "/cases?region=PE-UCA&violence=extortion".to_string(),
        ),
        (
            "search: two words",
            "/cases?q=comisaria+cuchillo".to_string(),
        ),
        ("search: no match", "/cases?q=zzzz-nothing".to_string()),
        ("one case", format!("/case/{first_id}")),
        ("statistics: latest month", "/stats".to_string()),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..15 {
            let t = Instant::now();
            let r = test::call_service(
                &app,
                TestRequest::get()
                    .uri(&uri)
                    .insert_header((header::HOST, HOST))
                    .insert_header((header::COOKIE, cookie.clone()))
                    .to_request(),
            )
            .await;
            assert!(r.status().is_success(), "{uri}: {}", r.status());
            bytes = test::read_body(r).await.len();
            times.push(t.elapsed());
        }
        let max = times.iter().max().copied().unwrap_or_default();
        println!(
            "{name:<40} median {:>6.1} ms, max {:>6.1} ms, {bytes} bytes",
            median(times).as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0
        );
    }
    println!(
        "resident memory at the end: {:.1} MiB",
        rss_kib() as f64 / 1024.0
    );
    let t = Instant::now();
    let r = test::call_service(
        &app,
        TestRequest::post()
            .uri(&format!("/lock?csrf={csrf}"))
            .insert_header((header::HOST, HOST))
            .insert_header((header::ORIGIN, ORIGIN))
            .insert_header((header::COOKIE, cookie))
            .to_request(),
    )
    .await;
    assert!(r.status().is_redirection());
    println!(
        "lock: {:.1} ms; resident memory after: {:.1} MiB",
        t.elapsed().as_secs_f64() * 1000.0,
        rss_kib() as f64 / 1024.0
    );
}
