//! The risk picture over a real relay process, on SQLite and PostgreSQL:
//! three focal points receive reports in different regions and kinds of
//! place — some without consent, one also reported elsewhere, one month
//! too small to share — classify them, and publish October; the tables
//! travel sealed through the relay to the coordinator's statistics
//! mailbox; the coordinator's picture is the expected sum, counts no case
//! without consent, names no office, and no suppressed count in any table
//! it received can be recovered (searched by brute force here, apart from
//! the suppression code's own audit).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amparo_core::compose::seal_report;
use amparo_core::focal::CaseFilter;
use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::settings::{Role, Settings};
use amparo_core::stats::picture::Count;
use amparo_core::store::{KdfParams, Profile};
use amparo_protocol::UnixTime;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::payload::*;
use amparo_protocol::statistics::{Breakdown, Dimension, GbvType, Month, MonthTable};
use amparo_tests::cases::{Case, case, report};
use amparo_tests::{Relay, backends, directory_with, focal_point_entry, now};

const PIN: &str = "oficina-2468";

/// 20 October 2026, 15:00 UTC: when the reports are written.
fn october() -> UnixTime {
    UnixTime(amparo_protocol::time::days_from_civil(2026, 10, 20) * 86_400 + 15 * 3600)
}

/// 2 November 2026: October is over.
fn november() -> UnixTime {
    UnixTime(amparo_protocol::time::days_from_civil(2026, 11, 2) * 86_400)
}

/// Searches every assignment of integers ≥ 1 to a breakdown's suppressed
/// cells that agrees with what the table says (row totals, said column
/// totals; a suppressed column total must come out ≥ 1), and returns, for
/// each suppressed cell and then each suppressed column total, whether it
/// took only one value: an observer could recover it.
fn recoverable(b: &Breakdown, row_totals: &[u64]) -> Vec<bool> {
    let cols = b.by.columns().len();
    let mut search = Search {
        unknown: (0..b.cells.len())
            .filter(|i| b.cells[*i].is_none())
            .collect(),
        unknown_cols: (0..cols)
            .filter(|c| b.column_totals[*c].is_none())
            .collect(),
        said_cols: b.column_totals.clone(),
        row_totals: row_totals.to_vec(),
        cols,
        seen: Vec::new(),
    };
    search.seen = vec![Default::default(); search.unknown.len() + search.unknown_cols.len()];
    let mut cells: Vec<u64> = b.cells.iter().map(|c| c.unwrap_or(0)).collect();
    search.walk(0, &mut cells);
    assert!(
        search.seen.iter().all(|s| !s.is_empty()),
        "the true table itself was not found: the search is wrong"
    );
    search.seen.iter().map(|s| s.len() == 1).collect()
}

/// The exhaustive search of [`recoverable`].
struct Search {
    unknown: Vec<usize>,
    unknown_cols: Vec<usize>,
    said_cols: Vec<Option<u64>>,
    row_totals: Vec<u64>,
    cols: usize,
    seen: Vec<std::collections::BTreeSet<u64>>,
}

impl Search {
    fn column(&self, cells: &[u64], c: usize) -> u64 {
        (0..self.row_totals.len())
            .map(|r| cells[r * self.cols + c])
            .sum()
    }

    fn walk(&mut self, k: usize, cells: &mut Vec<u64>) {
        let cols = self.cols;
        if k == self.unknown.len() {
            let rows_ok = self
                .row_totals
                .iter()
                .enumerate()
                .all(|(r, t)| cells[r * cols..(r + 1) * cols].iter().sum::<u64>() == *t);
            let said_ok =
                (0..cols).all(|c| self.said_cols[c].is_none_or(|t| t == self.column(cells, c)));
            let hidden_ok = self
                .unknown_cols
                .iter()
                .all(|c| self.column(cells, *c) >= 1);
            if rows_ok && said_ok && hidden_ok {
                for i in 0..self.unknown.len() {
                    let v = cells[self.unknown[i]];
                    self.seen[i].insert(v);
                }
                for i in 0..self.unknown_cols.len() {
                    let v = self.column(cells, self.unknown_cols[i]);
                    self.seen[self.unknown.len() + i].insert(v);
                }
            }
            return;
        }
        let cell = self.unknown[k];
        let row = cell / cols;
        let used: u64 = cells[row * cols..(row + 1) * cols].iter().sum::<u64>() - cells[cell];
        let room = self.row_totals[row].saturating_sub(used);
        for v in 1..=room {
            cells[cell] = v;
            self.walk(k + 1, cells);
        }
        cells[cell] = 0;
    }
}

#[test]
fn the_search_finds_a_recoverable_count_when_there_is_one() {
    // One row of 8: 6 said, 2 unsaid in one cell — recoverable; in two
    // cells of 1 and 1 (both ≥ 1, summing to 2) — both recoverable; in two
    // cells summing to 3 — not.
    let age = |cells: Vec<Option<u64>>, totals: Vec<Option<u64>>| Breakdown {
        by: Dimension::AgeBand,
        cells,
        column_totals: totals,
    };
    let one = age(
        vec![Some(0), None, Some(6), Some(0)],
        vec![Some(0), None, Some(6), Some(0)],
    );
    assert_eq!(recoverable(&one, &[8]), vec![true, true]);
    let two = age(
        vec![Some(0), None, None, Some(6)],
        vec![Some(0), None, None, Some(6)],
    );
    assert_eq!(recoverable(&two, &[8]), vec![true; 4]);
    let free = age(
        vec![None, None, Some(0), Some(5)],
        vec![None, None, Some(0), Some(5)],
    );
    assert_eq!(recoverable(&free, &[8]), vec![false; 4]);
}

#[tokio::test]
async fn three_offices_publish_a_month_and_the_coordinator_sees_only_the_sum() {
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

        // Three offices, each with its region.
        let offices = [
            ("pe-lima", "PE-LIM"),
            ("pe-tumbes", "PE-TUM"),
            ("br-roraima", "BR-RR"),
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
            entry.regions = vec![region.into()];
            entries.push(entry);
            profiles.push(p);
        }
        for p in &profiles {
            p.set_statistics_threshold(5).unwrap();
        }
        let directory = directory_with(entries.clone(), &relay.receipt_key);
        let signed = coordinator.sign_directory(&directory, october()).unwrap();
        assert!(
            signed.directory().statistics.is_some(),
            "the directory carries the coordinator's statistics key"
        );
        client.publish_directory(signed.as_bytes()).await.unwrap();

        // Lima: 14 counted (6 rape, 5 physical assault, 2 sexual assault,
        // 1 psychological abuse), plus 2 without consent and 1 also
        // reported elsewhere (all physical assault: counted, they would
        // show as 8).
        use GbvType::*;
        use PlaceSetting::*;
        let mut lima: Vec<Case> = (0..6).map(|_| case("PE-LIM", Urban, Rape)).collect();
        lima.extend((0..5).map(|_| case("PE-LIM", Urban, PhysicalAssault)));
        lima.extend((0..2).map(|_| case("PE-LIM", Urban, SexualAssault)));
        lima.push(case("PE-LIM", Urban, PsychologicalAbuse));
        for _ in 0..2 {
            let mut c = case("PE-LIM", Urban, PhysicalAssault);
            c.consent = false;
            lima.push(c);
        }
        let mut elsewhere = case("PE-LIM", Urban, PhysicalAssault);
        elsewhere.elsewhere = Some(true);
        lima.push(elsewhere);
        // Tumbes, a border area: 7 counted, police among the aggressors.
        let mut tumbes: Vec<Case> = (0..4)
            .map(|_| case("PE-TUM", Border, SexualAssault))
            .collect();
        tumbes.extend((0..3).map(|_| case("PE-TUM", Border, PsychologicalAbuse)));
        for c in tumbes.iter_mut().take(3) {
            c.aggressor = AggressorKind::PoliceOrSecurity;
            c.age = Some(AgeBand::Adolescent);
        }
        // Roraima, rural: 3 counted — below the threshold.
        let roraima: Vec<Case> = (0..3).map(|_| case("BR-RR", Rural, Rape)).collect();

        let mut e = SystemEntropy::new();
        for ((p, entry), cases) in profiles
            .iter()
            .zip(&entries)
            .zip([&lima, &tumbes, &roraima])
        {
            let mut envelopes = Vec::new();
            let mut types = Vec::new();
            for c in cases.iter() {
                let sealed = seal_report(
                    &entry.keys,
                    report(c, Month::parse("2026-10").unwrap()),
                    &[],
                    amparo_protocol::envelope::Compression::IfSmaller,
                    &mut e,
                    october(),
                )
                .unwrap();
                types.push((sealed.report_id, c.gbv));
                envelopes.extend(sealed.envelopes);
            }
            client.upload(&envelopes).await.unwrap();
            p.refresh_directory(&client, &coordinator_key)
                .await
                .unwrap();
            let keys = p.trusted_relay_keys().unwrap();
            p.focal_sync(&client, &keys, now, &mut |_| {})
                .await
                .unwrap();
            for (id, gbv) in types {
                p.classify_case(&id, Some(gbv), &[]).unwrap();
            }
            assert_eq!(p.cases(&CaseFilter::default()).unwrap().len(), cases.len());
        }

        let oct = Month::parse("2026-10").unwrap();
        // Not before the month is over.
        assert!(profiles[0].publish_month(oct, october()).is_err());
        let lima_stats = profiles[0].month_stats(oct).unwrap();
        assert_eq!((lima_stats.cases, lima_stats.counted), (17, 14));
        let mut published = Vec::new();
        for p in &profiles {
            published.push(p.publish_month(oct, november()).unwrap());
            // Once only.
            assert!(p.publish_month(oct, november()).is_err());
            let keys = p.trusted_relay_keys().unwrap();
            let (sent, _) = p
                .focal_sync(&client, &keys, now, &mut |_| {})
                .await
                .unwrap();
            assert_eq!(sent.delivered, 1, "{}", backend.name());
            assert_eq!(p.outbox_len().unwrap(), 0);
        }
        assert_eq!(published[2].total, None, "Roraima's 3 are below 5");

        // The coordinator fetches its statistics mailbox; a stranger's
        // table sealed to the same key is dropped.
        coordinator
            .refresh_directory(&client, &coordinator_key)
            .await
            .ok();
        let got = coordinator.fetch_statistics(&client, now()).await.unwrap();
        assert_eq!((got.kept, got.dropped), (3, 0), "{}", backend.name());
        let stranger = RecipientKeys::generate(&mut e).unwrap();
        let forged = MonthTable {
            from: "pe-lima".into(),
            month: Month::parse("2026-09").unwrap(),
            ..published[0].clone()
        };
        let body = amparo_protocol::statistics::SignedMonthTable::sign(&forged, stranger.signing())
            .unwrap()
            .to_json()
            .unwrap();
        let header = amparo_protocol::padding::InnerHeader::new(&mut e, november()).unwrap();
        let env = amparo_protocol::envelope::Envelope::seal(
            signed.directory().statistics.as_ref().unwrap(),
            amparo_protocol::envelope::Purpose::Statistics,
            &header,
            &body,
            &mut e,
        )
        .unwrap();
        client.upload(&[env]).await.unwrap();
        let got = coordinator.fetch_statistics(&client, now()).await.unwrap();
        assert_eq!(
            (got.kept, got.dropped),
            (0, 1),
            "a table signed by a stranger"
        );

        let picture = coordinator.statistics_picture().unwrap();
        assert_eq!(picture.months.len(), 1);
        let m = &picture.months[0];
        assert_eq!((m.month, m.tables, m.withheld), (oct, 3, 1));
        assert_eq!(
            m.total, 21,
            "14 from Lima and 7 from Tumbes: no case without consent"
        );
        let row = |region: &str| {
            m.rows
                .iter()
                .find(|r| r.key.region.as_deref() == Some(region))
        };
        assert_eq!(row("PE-LIM").unwrap().total, 14);
        assert_eq!(row("PE-LIM").unwrap().key.setting, Some(Urban));
        assert_eq!(row("PE-TUM").unwrap().total, 7);
        assert_eq!(row("PE-TUM").unwrap().key.setting, Some(Border));
        assert!(
            row("BR-RR").is_none(),
            "a month below the threshold says no place"
        );
        // Types: Lima's 6 rapes and 5 physical assaults are said (Tumbes
        // had none: its zeros are said); the small counts are not, and the
        // sum says so.
        let types = &m.column_totals[0];
        let exact = |known| Count {
            known,
            partial: false,
        };
        assert_eq!(types[0], exact(6), "{types:?}");
        assert_eq!(types[2], exact(5), "{types:?}");
        assert!(types[5].partial, "psychological abuse: 1 and 3, suppressed");
        assert!(!types.iter().any(|c| c.known > 0 && c.known < 5));
        // The picture names no office.
        let json = serde_json::to_string(&picture).unwrap();
        for (id, _) in offices {
            assert!(!json.contains(id), "{id} named in the picture");
        }

        // No suppressed count in any table received can be recovered.
        let received = coordinator.received_tables().unwrap();
        assert_eq!(received.len(), 3);
        for t in &received {
            if t.total.is_none() {
                continue;
            }
            for b in &t.breakdowns {
                assert_eq!(b.by.columns().len(), b.column_totals.len());
                let found = recoverable(b, &t.row_totals);
                assert!(
                    !found.iter().any(|x| *x),
                    "{} {:?}: a suppressed count can be recovered: {b:?}",
                    t.from,
                    b.by
                );
                let small = |v: &u64| *v > 0 && *v < 5;
                assert!(!b.cells.iter().flatten().any(small), "{b:?}");
            }
            assert!(t.breakdowns.iter().any(|b| b.by == Dimension::Aggressor));
        }
    }
}
