//! Check-in timers end to end (issue 20) over a real relay process, on
//! SQLite and PostgreSQL, with the phone's clock injected and the relay's
//! run ahead (`--test-clock-skew-hours`) instead of waiting hours:
//!
//! - she sets a timer; the hold goes at her sync; a check-in moves it;
//! - opened with her duress PIN, the app shows the timer and checks in, but
//!   the alert still goes at its hour;
//! - the focal point opens the released alert: an urgent case, first in
//!   its list, with when it was set, due and received;
//! - a cancelled timer never goes;
//! - a timer set offline whose hour came before she had signal goes as an
//!   ordinary report at her next sync.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use amparo_core::drafts::DraftForm;
use amparo_core::focal::CaseFilter;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store::{KdfParams, Profile};
use amparo_core::timers::TimerPhase;
use amparo_protocol::UnixTime;
use amparo_protocol::directory::FocalPoint;
use amparo_tests::crash::{http_request, take_data_dir};
use amparo_tests::{Relay, backends, focal_point_entry, now};

const PIN: &str = "luz-2468";
const DURESS: &str = "0000";

fn profile(root: &std::path::Path, name: &str) -> Profile {
    Profile::create(&root.join(name), PIN, KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap()
}

fn alert_draft(p: &Profile, text: &str) -> [u8; 16] {
    p.create_draft(&DraftForm {
        text: text.into(),
        ..DraftForm::default()
    })
    .unwrap()
}

fn hours(n: u64) -> UnixTime {
    UnixTime(now().0 + n * 3600)
}

fn client(relay: &Relay) -> RelayClient {
    RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap()
}

/// Her sync, at the real time: its signed requests carry the clock (the
/// injected times are the check-ins').
async fn sync(p: &Profile, relay: &Relay) -> amparo_core::survivor::SyncSummary {
    p.sync(&client(relay), &[relay.receipt_key], now, &mut |_| {})
        .await
        .unwrap()
}

fn metric(relay: &Relay, name: &str) -> Option<u64> {
    let (_, body) = http_request(relay.addr, "GET", "/metrics", &[], b"").ok()?;
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The relay restarted on its data with its clock `skew` hours ahead;
/// waits until its release pass has left `held` alerts held.
fn ahead(relay: &mut Relay, db: &Option<String>, skew: u32, held: u64) -> Relay {
    relay.kill();
    let skew = format!("--test-clock-skew-hours={skew}");
    let r = Relay::start_in(take_data_dir(relay), db.clone(), &[&skew]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&r, "amparo_timer_alert_bytes").is_none()
        || metric(&r, "amparo_timers_released_total").is_none()
        || held_now(&r) != held
    {
        assert!(Instant::now() < deadline, "the release pass did not run");
        std::thread::sleep(Duration::from_millis(20));
    }
    r
}

/// Alerts held (timers on record less cancelled ones: the tests cancel
/// none that are still remembered when this is read).
fn held_now(r: &Relay) -> u64 {
    metric(r, "amparo_timers").unwrap_or(u64::MAX)
}

#[tokio::test]
async fn an_alert_goes_when_she_stops_checking_in_and_not_before() {
    for backend in backends() {
        let name = backend.name();
        let db = backend.database_url();
        let root = tempfile::tempdir().unwrap();
        let mut relay = Relay::start(db.clone(), &[]);
        let survivor = profile(root.path(), "survivor");
        survivor.set_duress_pin_with_decoy(DURESS, false).unwrap();
        let office = profile(root.path(), "office");
        let fp: FocalPoint = focal_point_entry("pe-lima", office.create_focal_identity().unwrap());

        // An ordinary report reaches the office first.
        let d = alert_draft(&survivor, "Me robaron el documento en el control.");
        survivor.send_draft(&d, &fp, false, now()).unwrap();

        // She sets a timer: check in every 2 hours, 1 hour of grace.
        let t0 = now();
        let d = alert_draft(
            &survivor,
            "Voy al hotel Los Pinos con un cliente nuevo. Placa del auto: ABC-123.",
        );
        let id = survivor.set_timer(&d, &fp, 2, 1, t0).unwrap();
        let status = &survivor.timers().unwrap()[0];
        assert_eq!(status.phase, TimerPhase::Active);
        assert!(!status.held && status.waiting_to_send, "{name}");
        assert_eq!(status.next_due, UnixTime(t0.0 + 2 * 3600));
        assert_eq!(status.release_hour, (t0.0 + 3 * 3600).div_ceil(3600) as u32);
        assert_eq!(survivor.next_check_in_due().unwrap(), Some(status.next_due));
        assert!(
            survivor.drafts().unwrap().is_empty(),
            "{name}: the draft became the alert"
        );
        let summary = sync(&survivor, &relay).await;
        assert_eq!(summary.timers.held, 1, "{name}: {summary:?}");
        assert_eq!(summary.delivered, 1, "{name}: the ordinary report");
        assert!(survivor.timers().unwrap()[0].held);

        // An hour later she checks in: due two hours from then.
        let checked = survivor.check_in(&id, hours(1)).unwrap();
        let release = checked.release_hour;
        assert_eq!(release, status.release_hour + 1, "{name}");
        assert_eq!(sync(&survivor, &relay).await.timers.sent, 1);

        // Forced to check in again, she opens the app with her duress PIN:
        // the decoy shows the timer and checks in, but sends a check-in
        // that keeps the hour.
        let decoy = Profile::open(&root.path().join("survivor"), DURESS).unwrap();
        let shown = decoy.timers().unwrap();
        assert_eq!(shown.len(), 1, "{name}: the decoy shows her timer");
        assert_eq!(shown[0].release_hour, release);
        let after = decoy.check_in(&shown[0].id, hours(2)).unwrap();
        assert_eq!(
            after.next_due,
            UnixTime(hours(2).0 + 2 * 3600),
            "looks postponed"
        );
        assert_eq!(sync(&decoy, &relay).await.timers.sent, 1);
        // Even a cancel there is not one.
        decoy.cancel_timer(&shown[0].id).unwrap();
        sync(&decoy, &relay).await;
        drop(decoy);

        // A second timer, cancelled when she is safe: never goes.
        let d = alert_draft(&survivor, "Cita con el dueño del bar.");
        let cancelled = survivor.set_timer(&d, &fp, 1, 0, t0).unwrap();
        sync(&survivor, &relay).await;
        survivor.cancel_timer(&cancelled).unwrap();
        assert_eq!(sync(&survivor, &relay).await.timers.sent, 1);
        assert_eq!(
            survivor.timers().unwrap().len(),
            1,
            "{name}: forgotten once cancelled"
        );

        // The hour before the release: nothing goes.
        let before = release - now().hours() - 1;
        relay = ahead(&mut relay, &db, before, 1);
        // Its hour: the alert goes, whatever the decoy sent.
        let skew = release - now().hours();
        relay = ahead(&mut relay, &db, skew, 0);
        relay = ahead(&mut relay, &db, 0, 0);

        // The office syncs: the alert is urgent and first.
        office
            .focal_sync(&client(&relay), &[relay.receipt_key], now, &mut |_| {})
            .await
            .unwrap();
        let cases = office.cases(&CaseFilter::default()).unwrap();
        assert_eq!(cases.len(), 2, "{name}: the report and one alert");
        let alert = cases[0].alert.expect("the alert first");
        assert!(cases[1].alert.is_none());
        assert_eq!(alert.set_hour, t0.hours());
        assert_eq!(alert.due_hour, status.release_hour);
        assert_eq!(alert.every_hours, 2);
        assert!(alert.received_hour.is_some());
        let case = office.case(&cases[0].id).unwrap();
        assert!(case.report.text.contains("ABC-123"), "{name}");

        // Her phone, at its next sync, learns the alert went.
        let id_again = survivor.check_in(&id, hours(3));
        assert!(id_again.is_ok(), "{name}: still running on the phone");
        let summary = sync(&survivor, &relay).await;
        assert_eq!(summary.timers.released, 1, "{name}: {summary:?}");
        assert_eq!(survivor.timers().unwrap()[0].phase, TimerPhase::Released);
    }
}

#[tokio::test]
async fn an_alert_whose_hour_came_offline_goes_as_a_report() {
    let relay = Relay::start(None, &[]);
    let root = tempfile::tempdir().unwrap();
    let survivor = profile(root.path(), "survivor");
    let office = profile(root.path(), "office");
    let fp = focal_point_entry("pe-lima", office.create_focal_identity().unwrap());
    // Set five hours ago, due in one, no signal since.
    let d = alert_draft(&survivor, "Salí con él a las 8. Si no escribo, búsquenme.");
    survivor
        .set_timer(&d, &fp, 1, 0, UnixTime(now().0 - 5 * 3600))
        .unwrap();
    let summary = sync(&survivor, &relay).await;
    assert_eq!(summary.timers.sent_directly, 1, "{summary:?}");
    assert_eq!(summary.delivered, 1, "sent as a report in the same sync");
    assert_eq!(survivor.timers().unwrap()[0].phase, TimerPhase::Released);
    office
        .focal_sync(&client(&relay), &[relay.receipt_key], now, &mut |_| {})
        .await
        .unwrap();
    let cases = office.cases(&CaseFilter::default()).unwrap();
    assert_eq!(cases.len(), 1);
    assert!(cases[0].alert.is_some(), "an alert, urgent");
}

/// Without signal, a facilitator carries her timer's hold and then her
/// check-in (PROTOCOL.md §17.7): signed by the timer key, they reach the
/// relay from the facilitator's phone, which learns nothing of the alert.
#[tokio::test]
async fn a_facilitator_carries_the_hold_and_the_check_in() {
    let relay = Relay::start(None, &[]);
    let root = tempfile::tempdir().unwrap();
    let survivor = profile(root.path(), "survivor");
    let facilitator = profile(root.path(), "facilitator");
    let office = profile(root.path(), "office");
    let fp = focal_point_entry("pe-lima", office.create_focal_identity().unwrap());
    let coordinator = amparo_protocol::primitives::ed25519::SigningKey::from_seed(&[9; 32])
        .unwrap()
        .verifying_key();
    let d = alert_draft(&survivor, "Voy con él al río. Si no vuelvo, búsquenme.");
    let id = survivor.set_timer(&d, &fp, 4, 1, now()).unwrap();
    let bundle = survivor.export_outbox_bundle_with_grants(now()).unwrap();
    let imported = facilitator
        .import_bundle(&bundle, &coordinator, &[relay.receipt_key])
        .unwrap();
    assert_eq!(imported.timer_items.items, 1, "{imported:?}");
    assert_eq!(facilitator.carrying().unwrap().timer_items, 1);
    let carried = facilitator
        .upload_carried_with_progress(&client(&relay), &[relay.receipt_key], &mut |_| {})
        .await
        .unwrap();
    assert_eq!(carried.timer_items, 1, "the hold reached the relay");
    assert_eq!(facilitator.carrying().unwrap().timer_items, 0);

    // Her check-in, carried the same way, is taken: her alert moves.
    let moved = survivor.check_in(&id, hours(2)).unwrap();
    // Held by the relay since the facilitator's sync, though her phone does
    // not know yet: the hold was signed again with the new hour, and goes
    // with its old one; she tells the relay at her own sync.
    let bundle = survivor.export_outbox_bundle_with_grants(now()).unwrap();
    facilitator
        .import_bundle(&bundle, &coordinator, &[relay.receipt_key])
        .unwrap();
    facilitator
        .upload_carried_with_progress(&client(&relay), &[relay.receipt_key], &mut |_| {})
        .await
        .unwrap();
    // Her own sync: the relay holds the first hold (same alert, its state
    // on record, the earlier hour), so the phone sends a check-in to the
    // hour she moved it to, in the same sync.
    let summary = sync(&survivor, &relay).await;
    assert_eq!(summary.timers.held, 1, "{summary:?}");
    assert_eq!(summary.timers.sent, 1, "{summary:?}");
    let t = &survivor.timers().unwrap()[0];
    assert!(t.held && !t.waiting_to_send);
    assert_eq!(t.release_hour, moved.release_hour);
    // The relay holds that hour: a check-in to one hour before is refused.
    let key_probe = survivor.check_in(&id, hours(2)).unwrap();
    assert_eq!(key_probe.release_hour, moved.release_hour, "never earlier");
    // From now on a check-in goes as one, carried or not.
    survivor.check_in(&id, hours(3)).unwrap();
    let bundle = survivor.export_outbox_bundle_with_grants(now()).unwrap();
    let imported = facilitator
        .import_bundle(&bundle, &coordinator, &[relay.receipt_key])
        .unwrap();
    assert_eq!(imported.timer_items.items, 1);
    let carried = facilitator
        .upload_carried_with_progress(&client(&relay), &[relay.receipt_key], &mut |_| {})
        .await
        .unwrap();
    assert_eq!(carried.timer_items, 1, "the check-in reached the relay");
    // Her phone sends the same check-in again at its sync: a replay, refused,
    // nothing changed.
    let summary = sync(&survivor, &relay).await;
    assert_eq!(summary.timers.sent, 1);
    assert_eq!(survivor.timers().unwrap()[0].phase, TimerPhase::Active);
}

/// A relay that does not take her alert for good (its directory no longer
/// lists the focal point) does not break her sync: the refusal is counted,
/// the hold kept, everything else goes.
#[tokio::test]
async fn a_refused_hold_is_counted_and_the_sync_goes_on() {
    let coordinator =
        amparo_protocol::primitives::ed25519::SigningKey::from_seed(&[4; 32]).unwrap();
    let key_arg = format!(
        "--coordinator-key={}",
        amparo_protocol::b64::encode(coordinator.verifying_key().as_bytes())
    );
    let relay = Relay::start(None, &[&key_arg]);
    let root = tempfile::tempdir().unwrap();
    let survivor = profile(root.path(), "survivor");
    let office = profile(root.path(), "office");
    let other = profile(root.path(), "other");
    let fp = focal_point_entry("pe-lima", office.create_focal_identity().unwrap());
    // The directory the relay holds lists another office only.
    let listed = amparo_tests::directory_with(
        vec![focal_point_entry(
            "pe-cusco",
            other.create_focal_identity().unwrap(),
        )],
        &relay.receipt_key,
    )
    .sign(1, &coordinator)
    .unwrap();
    client(&relay)
        .publish_directory(listed.as_bytes())
        .await
        .unwrap();
    let d = alert_draft(&survivor, "Voy con él.");
    survivor.set_timer(&d, &fp, 3, 0, now()).unwrap();
    let d = alert_draft(&survivor, "Me robaron en la calle.");
    survivor.send_draft(&d, &fp, false, now()).unwrap();
    let summary = sync(&survivor, &relay).await;
    assert_eq!(summary.timers.refused, 1, "{summary:?}");
    assert_eq!(summary.delivered, 1, "the report went anyway");
    let t = &survivor.timers().unwrap()[0];
    assert!(!t.held && t.waiting_to_send && t.phase == TimerPhase::Active);
}
