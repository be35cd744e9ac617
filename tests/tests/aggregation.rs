//! The statistics sum over a real relay process, on SQLite and
//! PostgreSQL: four offices make a year of month keys and share their
//! secrets with each other through their mailboxes; the coordinator opens
//! last month's round; three offices send their masked month, the fourth is
//! away; the coordinator closes the round and every office — the absent
//! one too — reveals the shares it holds. The coordinator's picture is the
//! exact sum of the three offices after disclosure control, and at no
//! point does it hold one office's table: what it stores of each office is
//! a vector that is not the office's counts, deleted once the sum is made.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::compose::seal_report;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::settings::{Role, Settings};
use amparo_core::stats::aggregate::{SUM_FROM, counts_vector};
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::UnixTime;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::payload::*;
use amparo_protocol::statistics::{GbvType, Month};
use amparo_tests::cases::{Case, case, report};
use amparo_tests::{Relay, backends, directory_with, focal_point_entry, now};

const PIN: &str = "oficina-2468";

/// The month summed: last month, so that the offices' windows (a year
/// around the present) hold it whenever the test runs.
fn last_month() -> Month {
    Month::of_unix(now().0).previous()
}

/// The 20th of last month, 15:00 UTC: when the reports are written.
fn in_the_month() -> UnixTime {
    UnixTime(last_month().start_unix() + 19 * 86_400 + 15 * 3600)
}

/// The 2nd of this month: last month is over.
fn after_the_month() -> UnixTime {
    UnixTime(Month::of_unix(now().0).start_unix() + 86_400)
}

async fn sync_office(p: &Profile, client: &RelayClient) {
    let keys = p.trusted_relay_keys().unwrap();
    p.focal_sync(client, &keys, now, &mut |_| {}).await.unwrap();
    assert_eq!(
        p.outbox_len().unwrap(),
        0,
        "everything queued was delivered"
    );
}

#[tokio::test]
async fn four_offices_sum_a_month_and_the_coordinator_never_holds_one_table() {
    for backend in backends() {
        let root = tempfile::tempdir().unwrap();
        let coordinator = Profile::create(
            &root.path().join("coordinator"),
            PIN,
            KdfParams::DANGEROUSLY_FAST_FOR_TESTS,
        )
        .unwrap();
        let coordinator_key = coordinator.create_coordinator_key().unwrap();
        let key_arg = format!(
            "--coordinator-key={}",
            amparo_protocol::b64::encode(coordinator_key.as_bytes())
        );
        let relay = Relay::start(backend.database_url(), &[&key_arg]);
        let client = RelayClient::new(&RelayConfig::new(relay.url(""))).unwrap();

        let offices = [
            ("br-roraima", "BR-RR"),
            ("pe-cusco", "PE-CUS"),
            ("pe-lima", "PE-LIM"),
            ("pe-tumbes", "PE-TUM"),
        ];
        let mut profiles = Vec::new();
        let mut entries = Vec::new();
        for (id, region) in offices {
            let p = Profile::create(
                &root.path().join(id),
                PIN,
                KdfParams::DANGEROUSLY_FAST_FOR_TESTS,
            )
            .unwrap();
            let public = p.create_focal_identity().unwrap();
            p.save_settings(&Settings {
                role: Some(Role::FocalPoint),
                relay_url: Some(relay.url("")),
                coordinator_key: Some(*coordinator_key.as_bytes()),
                focal_point_id: Some(id.into()),
                ..Settings::default()
            })
            .unwrap();
            let mut entry = focal_point_entry(id, public);
            // Every office also takes reports from Lima, where many go:
            // the one region that four offices serve.
            entry.regions = vec![region.into(), "PE-LIM".into()];
            entry.regions.dedup();
            entries.push(entry);
            profiles.push(p);
        }
        let directory = directory_with(entries.clone(), &relay.receipt_key);
        let signed = coordinator
            .sign_directory(&directory, in_the_month())
            .unwrap();
        client.publish_directory(signed.as_bytes()).await.unwrap();
        coordinator
            .refresh_directory(&client, &coordinator_key)
            .await
            .ok();

        // Each office keys a year from last month and shares its secrets.
        for p in &profiles {
            p.refresh_directory(&client, &coordinator_key)
                .await
                .unwrap();
            assert_eq!(p.prepare_aggregation(in_the_month()).unwrap(), 12);
            assert_eq!(p.prepare_aggregation(in_the_month()).unwrap(), 0, "once");
            sync_office(p, &client).await;
        }

        // Last month's cases. Roraima: 5 rapes (rural). Cusco: 4 (rural),
        // but it will be away. Lima: 6 rapes, 5 physical assaults (urban),
        // 2 without consent. Tumbes: 4 sexual assaults, 3 psychological
        // abuse (border).
        use GbvType::*;
        use PlaceSetting::*;
        let roraima: Vec<Case> = (0..5).map(|_| case("BR-RR", Rural, Rape)).collect();
        let cusco: Vec<Case> = (0..4).map(|_| case("PE-CUS", Rural, Rape)).collect();
        let mut lima: Vec<Case> = (0..6).map(|_| case("PE-LIM", Urban, Rape)).collect();
        lima.extend((0..5).map(|_| case("PE-LIM", Urban, PhysicalAssault)));
        for _ in 0..2 {
            let mut c = case("PE-LIM", Urban, PhysicalAssault);
            c.consent = false;
            lima.push(c);
        }
        let mut tumbes: Vec<Case> = (0..4)
            .map(|_| case("PE-TUM", Border, SexualAssault))
            .collect();
        tumbes.extend((0..3).map(|_| case("PE-TUM", Border, PsychologicalAbuse)));
        let mut e = SystemEntropy::new();
        for ((p, entry), cases) in profiles
            .iter()
            .zip(&entries)
            .zip([&roraima, &cusco, &lima, &tumbes])
        {
            let mut envelopes = Vec::new();
            let mut types = Vec::new();
            for c in cases.iter() {
                let sealed = seal_report(
                    &entry.keys,
                    report(c, last_month()),
                    &[],
                    amparo_protocol::envelope::Compression::IfSmaller,
                    &mut e,
                    in_the_month(),
                )
                .unwrap();
                types.push((sealed.report_id, c.gbv));
                envelopes.extend(sealed.envelopes);
            }
            client.upload(&envelopes).await.unwrap();
            // Its cases, and the other offices' shares.
            sync_office(p, &client).await;
            for (id, gbv) in types {
                p.classify_case(&id, Some(gbv), &[]).unwrap();
            }
        }

        // The coordinator holds four offices' keys (twice each: the keys
        // made last month, and the month their first sync this month added)
        // and opens last month.
        let got = coordinator.fetch_statistics(&client, now()).await.unwrap();
        assert_eq!((got.aggregation, got.dropped), (8, 0), "{}", backend.name());
        let oct = last_month();
        assert!(
            coordinator.open_round(oct, in_the_month()).is_err(),
            "not over"
        );
        let round = coordinator.open_round(oct, after_the_month()).unwrap();
        assert_eq!(round.cohort.len(), 4);
        assert!(
            coordinator.open_round(oct, after_the_month()).is_err(),
            "once"
        );
        let relay_keys = [relay.receipt_key];
        coordinator
            .sync(&client, &relay_keys, now, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(coordinator.outbox_len().unwrap(), 0);

        // Three offices sync: each answers the round its sync brings, and
        // its masked month leaves in the same sync. Cusco is away.
        for (i, p) in profiles.iter().enumerate() {
            if i == 1 {
                continue;
            }
            sync_office(p, &client).await;
            let rounds = p.aggregation_rounds().unwrap();
            assert_eq!(rounds.len(), 1);
            assert!(rounds[0].sent, "{:?}", rounds[0]);
            assert_eq!(rounds[0].cohort.len(), 4);
            assert!(
                p.answer_aggregation(after_the_month())
                    .unwrap()
                    .masked
                    .is_empty(),
                "sent once"
            );
            assert!(
                p.publish_month(oct, after_the_month()).is_err(),
                "a month in the sum is not published alone too"
            );
        }
        let got = coordinator.fetch_statistics(&client, now()).await.unwrap();
        assert_eq!(got.aggregation, 3);
        assert!(got.summed.is_empty());

        // What the coordinator stores of each office is not its counts.
        let layout = coordinator.round_layout(oct).unwrap().unwrap();
        let held = coordinator.masked_vectors(oct).unwrap();
        assert_eq!(held.len(), 3);
        for (office, vector) in &held {
            let p = &profiles[offices.iter().position(|(id, _)| id == office).unwrap()];
            let counts = counts_vector(&p.month_stats(oct).unwrap(), &layout).unwrap();
            assert_ne!(vector, &counts, "{office}'s month is stored in the clear");
            let same = vector.iter().zip(&counts).filter(|(a, b)| a == b).count();
            assert!(
                same < 10,
                "{office}: {same} of {} values in the clear",
                counts.len()
            );
        }

        // Closed: the three are the survivors; every office reveals, Cusco
        // (which did not send) as a holder.
        let survivors = coordinator.close_round(oct, after_the_month()).unwrap();
        assert_eq!(survivors, vec!["br-roraima", "pe-lima", "pe-tumbes"]);
        coordinator
            .sync(&client, &relay_keys, now, &mut |_| {})
            .await
            .unwrap();
        // Cusco, back, gets the round and the close in one fetch (in any
        // order): it reveals as a holder and never sends its month.
        for (i, p) in profiles.iter().enumerate() {
            sync_office(p, &client).await;
            let rounds = p.aggregation_rounds().unwrap();
            assert_eq!(
                rounds[0].revealed_for.as_ref(),
                Some(&survivors),
                "{:?}",
                rounds[0]
            );
            assert_eq!(rounds[0].sent, i != 1);
            // Answered once.
            let again = p.answer_aggregation(after_the_month()).unwrap();
            assert!(again.revealed.is_empty() && again.masked.is_empty());
        }
        let got = coordinator.fetch_statistics(&client, now()).await.unwrap();
        assert_eq!(got.summed, vec![oct], "{}", backend.name());

        // The sum: 5 + 11 + 7 = 23 counted (not Cusco's, not the two
        // without consent), one table from all offices.
        let sums = coordinator.summed_months().unwrap();
        assert_eq!(sums.len(), 1);
        assert_eq!(sums[0].table.from, SUM_FROM);
        assert_eq!(sums[0].offices, survivors);
        assert_eq!(sums[0].table.total, Some(23));
        let picture = coordinator.statistics_picture().unwrap();
        let m = &picture.months[0];
        assert_eq!((m.month, m.total), (oct, 23));
        // Rows: only PE-LIM, served by four offices, is named; a region
        // one office serves would be that office's row, so Tumbes's 7 and
        // Roraima's 5 are in "other places".
        let row = |region: Option<&str>| m.rows.iter().find(|r| r.key.region.as_deref() == region);
        assert_eq!(layout.regions, vec!["PE-LIM".to_string()]);
        assert_eq!(row(Some("PE-LIM")).unwrap().total, 11);
        assert_eq!(row(None).unwrap().total, 12);
        assert_eq!(m.rows.len(), 2);
        // Rape: 6 from Lima and 5 from Roraima, said or marked unsaid;
        // Tumbes's 4 and 3 are small and not said.
        let rapes = m.column_totals[0][0];
        assert!(
            rapes.known == 11 || (rapes.partial && rapes.known < 11),
            "{rapes:?}"
        );
        let types = &m.column_totals[0];
        assert!(
            !types.iter().any(|c| c.known > 0 && c.known < 5),
            "{types:?}"
        );
        // Nothing of one office is left: no masked month, no table.
        assert!(coordinator.masked_vectors(oct).unwrap().is_empty());
        assert!(coordinator.received_tables().unwrap().is_empty());
    }
}
