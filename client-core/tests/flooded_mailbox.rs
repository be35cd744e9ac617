//! A focal point whose mailbox at a real relay was flooded with junk
//! (well-formed envelopes addressed to it, sealed to another key) finds the
//! one real report among them: filed and listed while the fetch is still
//! going through the junk, every envelope acknowledged, the junk counted by
//! reason, and the profile within a bound however much junk came.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::compose::seal_report;
use amparo_core::focal::{CaseFilter, RejectReason, RejectedLimits};
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::UnixTime;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{CIPHERTEXT_OFFSET, Envelope, Purpose};
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::payload::{Language, Place, Report};
use amparo_tests::{Relay, now};

/// `n` distinct junk envelopes for `to`'s mailbox: sealed to another key,
/// with a counter written into the ciphertext.
fn junk(to: &RecipientPublic, n: usize) -> Vec<Envelope> {
    let mut e = SystemEntropy::new();
    let other = RecipientKeys::generate(&mut e).unwrap();
    let forged = RecipientPublic {
        sealing_key: other.public().sealing_key,
        signing_key: to.signing_key,
    };
    let h = InnerHeader::new(&mut e, now()).unwrap();
    let template = Envelope::seal(&forged, Purpose::Report, &h, &[b'x'; 600], &mut e)
        .unwrap()
        .into_bytes();
    (0..n as u64)
        .map(|i| {
            let mut b = template.clone();
            b[CIPHERTEXT_OFFSET..CIPHERTEXT_OFFSET + 8].copy_from_slice(&i.to_be_bytes());
            Envelope::from_bytes(b).unwrap()
        })
        .collect()
}

fn report() -> Report {
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
        text: "Me siguen desde el puerto; necesito ayuda.".into(),
        attachments: vec![],
        reply_to: RecipientKeys::generate(&mut SystemEntropy::new())
            .unwrap()
            .public(),
        referral: None,
    }
}

fn profile_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[tokio::test]
async fn the_report_is_found_among_thousands_of_junk_envelopes() {
    let relay = Relay::start(None, &[]);
    let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let focal = Profile::create(dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let public = focal.create_focal_identity().unwrap();
    let limits = RejectedLimits {
        max_records: 1_000,
        max_bytes: 512 * 1024,
    };
    focal.set_rejected_limits(limits).unwrap();

    // 3,000 junk envelopes, the report after the first 400.
    let n = 3_000;
    let flood = junk(&public, n);
    let size = flood[0].as_bytes().len() as u64;
    let real = seal_report(
        &public,
        report(),
        &[],
        amparo_protocol::envelope::Compression::IfSmaller,
        &mut SystemEntropy::new(),
        UnixTime(now().0),
    )
    .unwrap();
    let mut order: Vec<&Envelope> = flood[..400].iter().collect();
    order.extend(&real.envelopes);
    order.extend(&flood[400..]);
    for batch in order.chunks(256) {
        let batch: Vec<Envelope> = batch.iter().map(|e| (*e).clone()).collect();
        client.upload(&batch).await.unwrap();
    }

    // The report is listed as soon as its page is stored, with most of the
    // junk still at the relay; progress counts both.
    let mut seen = None;
    let mut last = Default::default();
    let fetched = focal
        .fetch_mailbox(&client, now, &mut |p| {
            if seen.is_none() && p.reports == 1 {
                let cases = focal.cases(&CaseFilter::default()).unwrap();
                assert_eq!(cases.len(), 1);
                assert_eq!(cases[0].id, real.report_id);
                seen = Some(p);
            }
            last = p;
        })
        .await
        .unwrap();
    let seen = seen.expect("the report was filed");
    assert!(seen.fetched < n / 2, "{seen:?}");
    assert_eq!(seen.unreadable, seen.fetched - 1);
    assert_eq!((last.fetched, last.reports, last.unreadable), (n + 1, 1, n));
    assert_eq!((fetched.new_cases, fetched.rejected), (1, n), "{fetched:?}");
    let case = focal.case(&real.report_id).unwrap();
    assert_eq!(
        case.report.text,
        "Me siguen desde el puerto; necesito ayuda."
    );

    // Everything was acknowledged: nothing is left at the relay.
    let again = focal
        .fetch_mailbox(&client, now, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(again, Default::default());

    // The junk: counted exactly, a record for the first thousand, the bytes
    // of as many as fit in the budget.
    let s = focal.rejected_summary(3).unwrap();
    assert_eq!(s.total, n as u64);
    assert_eq!(s.by_reason, vec![(RejectReason::DoesNotOpen, n as u64)]);
    assert_eq!(s.records, 1_000);
    assert_eq!(s.bytes_kept, limits.max_bytes / size * size);
    assert_eq!(s.examples.len(), 3);
    assert_eq!(focal.rejected().unwrap().len(), 1_000);

    // The profile: the report plus a bounded constant. Keeping each envelope
    // whole as JSON numbers, as before, took 3.7 times the junk (12 MB here).
    drop(focal);
    let bytes = profile_bytes(dir.path());
    assert!(
        bytes < 2 * 1024 * 1024,
        "the profile takes {bytes} bytes after {n} junk envelopes"
    );

    // Clearing forgets it all; the case stays.
    let focal = Profile::open(dir.path(), "1").unwrap();
    assert_eq!(focal.clear_rejected().unwrap(), n as u64);
    assert_eq!(focal.rejected_summary(3).unwrap().total, 0);
    assert!(focal.rejected().unwrap().is_empty());
    assert_eq!(focal.cases(&CaseFilter::default()).unwrap().len(), 1);
}

#[tokio::test]
async fn one_fetch_stops_at_its_limit_and_the_next_goes_on() {
    let relay = Relay::start(None, &[]);
    let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let focal = Profile::create(dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let public = focal.create_focal_identity().unwrap();
    for batch in junk(&public, 1_500).chunks(256) {
        client.upload(batch).await.unwrap();
    }
    // A first page of 100, then pages of 500: no page is asked for past 600.
    let mut total = 0;
    for expected_more in [true, true, false] {
        let f = focal
            .fetch_mailbox_at_most(&client, now, 600, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(f.more, expected_more, "{f:?}");
        assert!(f.rejected <= 600, "{f:?}");
        total += f.rejected;
    }
    assert_eq!(total, 1_500);
    assert_eq!(focal.rejected_summary(0).unwrap().total, 1_500);
}

/// A relay that answers every request with the same page of `body`, "more"
/// set: as if it never moved past it.
async fn stuck_relay(body: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                     Amparo-More: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.write_all(&body).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_relay_that_serves_the_same_page_again_cannot_keep_a_fetch_going() {
    let dir = tempfile::tempdir().unwrap();
    let focal = Profile::create(dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let public = focal.create_focal_identity().unwrap();
    let page = junk(&public, 2);
    let body =
        amparo_protocol::wire::encode_page([(1, page[0].as_bytes()), (2, page[1].as_bytes())]);
    let url = stuck_relay(body).await;
    let client = RelayClient::new(&RelayConfig::new(url)).unwrap();
    let mut quiet = |_| {};
    let fetch = focal.fetch_mailbox(&client, now, &mut quiet);
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), fetch)
        .await
        .expect("the fetch ends");
    let err = result.unwrap_err();
    assert!(err.to_string().contains("cursor from the relay"), "{err}");
    // The first page was stored before the second was found wrong.
    assert_eq!(focal.rejected_summary(0).unwrap().total, 2);
}
