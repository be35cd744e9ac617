//! The risk picture: a focal point's own statistics, the month's table it
//! shares with the coordinator after disclosure control, and the
//! coordinator's regional picture merged from every office's tables.
//!
//! Counting follows GBVIMS: only incidents whose survivor said yes to being
//! counted; never one she also reported to another organisation, nor one
//! that came here by referral (the office that referred it counts it); and
//! only once the case worker has given it a core type. A month's table is
//! counted by the month the report was written in (its sealed hour).

pub mod aggregate;
pub mod picture;
pub mod sdc;
mod share;

pub use share::{Published, STATISTICS_FETCH_MAX, STATISTICS_MONTHS_BACK, StatisticsFetch};

use std::collections::{BTreeMap, HashSet};

use amparo_protocol::payload::PlaceSetting;
use amparo_protocol::statistics::{
    Breakdown, Dimension, GbvContext, GbvType, MAX_ROWS, Month, MonthTable, ReportDelay, RowKey,
    TABLE_VERSION, age_column, aggressor_column, delay_column, gbv_column,
};
use serde::Serialize;

use crate::focal::CaseSummary;
use crate::{CoreError, Result};

/// The suppression threshold when the settings name none: counts from 1
/// to 4 are not shared (the usual rule of national statistics offices and
/// of GBVIMS's data-sharing protocols).
pub const DEFAULT_THRESHOLD: u32 = 5;

/// Why a case is not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// She did not say yes to being counted.
    NoConsent,
    /// She also reported it to another organisation (counted there).
    ReportedElsewhere,
    /// It came by referral (the referring office counts it).
    Referred,
    /// The office has not given it a GBVIMS type yet.
    Unclassified,
}

impl Exclusion {
    /// Every reason, in the order they are checked.
    pub const ALL: [Exclusion; 4] = [
        Exclusion::NoConsent,
        Exclusion::ReportedElsewhere,
        Exclusion::Referred,
        Exclusion::Unclassified,
    ];
}

/// Whether a case is counted, and as what.
pub fn counted(case: &CaseSummary) -> std::result::Result<GbvType, Exclusion> {
    if !case.facts.consent {
        return Err(Exclusion::NoConsent);
    }
    if case.facts.reported_elsewhere == Some(true) {
        return Err(Exclusion::ReportedElsewhere);
    }
    if case.referred_by.is_some() {
        return Err(Exclusion::Referred);
    }
    case.gbv_type.ok_or(Exclusion::Unclassified)
}

/// The month a case is counted in: the month its report was written.
pub fn case_month(case: &CaseSummary) -> Month {
    Month::of_unix(u64::from(case.reported_hour) * 3600)
}

/// The delay band from the incident to the report, when the report gives
/// a full date that is not after it.
pub fn report_delay(case: &CaseSummary) -> Option<ReportDelay> {
    let reported_day = u64::from(case.reported_hour) / 24;
    let day = case.facts.incident_day?;
    reported_day.checked_sub(day).map(ReportDelay::of_days)
}

/// The column of a counted case in each dimension.
fn column(case: &CaseSummary, gbv: GbvType, dim: Dimension) -> usize {
    match dim {
        Dimension::GbvType => gbv_column(gbv),
        Dimension::Aggressor => aggressor_column(&case.aggressors),
        Dimension::AgeBand => age_column(case.facts.age_band),
        Dimension::ReportDelay => delay_column(report_delay(case)),
    }
}

/// One row of a focal point's own month: every count, nothing suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsRow {
    /// Region and kind of place, as the reports give them.
    pub key: RowKey,
    /// Incidents counted in the row.
    pub total: u64,
    /// For each dimension of [`Dimension::ALL`], the count per column.
    pub cells: Vec<Vec<u64>>,
}

/// A focal point's own statistics for one month (for its eyes: nothing is
/// suppressed; [`MonthStats::shareable`] makes what leaves the machine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthStats {
    /// The month.
    pub month: Month,
    /// Cases written in the month, counted or not.
    pub cases: u64,
    /// Incidents counted.
    pub counted: u64,
    /// Cases not counted, by reason.
    pub excluded: BTreeMap<Exclusion, u64>,
    /// Counted incidents by region and kind of place.
    pub rows: Vec<StatsRow>,
    /// Counted incidents with each context flag (several may apply).
    pub context: BTreeMap<GbvContext, u64>,
}

/// The months that have cases, oldest first.
pub fn months(cases: &[CaseSummary]) -> Vec<Month> {
    let mut m: Vec<Month> = cases.iter().map(case_month).collect();
    m.sort();
    m.dedup();
    m
}

impl MonthStats {
    /// Counts the cases written in `month`.
    pub fn of(cases: &[CaseSummary], month: Month) -> MonthStats {
        let mut out = MonthStats {
            month,
            cases: 0,
            counted: 0,
            excluded: BTreeMap::new(),
            rows: Vec::new(),
            context: BTreeMap::new(),
        };
        let mut rows: BTreeMap<RowKey, StatsRow> = BTreeMap::new();
        for case in cases.iter().filter(|c| case_month(c) == month) {
            out.cases += 1;
            let gbv = match counted(case) {
                Ok(t) => t,
                Err(why) => {
                    *out.excluded.entry(why).or_default() += 1;
                    continue;
                }
            };
            out.counted += 1;
            let key = RowKey {
                region: case.region.clone(),
                setting: case.facts.setting,
            };
            let row = rows.entry(key.clone()).or_insert_with(|| StatsRow {
                key,
                total: 0,
                cells: Dimension::ALL
                    .iter()
                    .map(|d| vec![0; d.columns().len()])
                    .collect(),
            });
            row.total += 1;
            for (d, cells) in Dimension::ALL.iter().zip(row.cells.iter_mut()) {
                if let Some(cell) = cells.get_mut(column(case, gbv, *d)) {
                    *cell += 1;
                }
            }
            for flag in &case.context {
                *out.context.entry(*flag).or_default() += 1;
            }
        }
        out.rows = rows.into_values().collect();
        out
    }

    /// Column totals of `dim` over every row.
    pub fn column_totals(&self, dim: Dimension) -> Vec<u64> {
        let i = dim_index(dim);
        let mut totals = vec![0u64; dim.columns().len()];
        for row in &self.rows {
            if let Some(cells) = row.cells.get(i) {
                for (t, c) in totals.iter_mut().zip(cells) {
                    *t += c;
                }
            }
        }
        totals
    }

    /// The month's table as it may leave the machine: regions the
    /// directory does not list go to "other places"; rows below
    /// `threshold` are merged into "other places" (and the smallest rows
    /// after them while that row is still below it); then each breakdown
    /// goes through cell suppression ([`sdc::protect`]), and is withheld
    /// whole if the audit finds any suppressed count recoverable. A month
    /// below the threshold says nothing but that.
    pub fn shareable(
        &self,
        from: &str,
        threshold: u32,
        known_regions: &HashSet<String>,
    ) -> Result<MonthTable> {
        let t = u64::from(threshold.max(1));
        // Recode: unknown regions out, small rows merged.
        let mut merged: BTreeMap<RowKey, Vec<&StatsRow>> = BTreeMap::new();
        for row in &self.rows {
            let region = row.key.region.clone().filter(|r| known_regions.contains(r));
            let key = if region.is_none() || row.total < t {
                RowKey::default()
            } else {
                RowKey {
                    region,
                    setting: row.key.setting,
                }
            };
            merged.entry(key).or_default().push(row);
        }
        let other = RowKey::default();
        let sum = |rows: &[&StatsRow]| rows.iter().map(|r| r.total).sum::<u64>();
        loop {
            let other_total = merged.get(&other).map_or(0, |r| sum(r));
            let too_small = other_total > 0 && other_total < t;
            let too_many = merged.len() > MAX_ROWS;
            if !(too_small || too_many) {
                break;
            }
            let smallest = merged
                .iter()
                .filter(|(k, _)| **k != other)
                .min_by_key(|(k, rows)| (sum(rows), (*k).clone()))
                .map(|(k, _)| k.clone());
            let Some(key) = smallest else { break };
            let rows = merged.remove(&key).unwrap_or_default();
            merged.entry(other.clone()).or_default().extend(rows);
        }
        let total = self.counted;
        if total > 0 && total < t {
            return Ok(MonthTable {
                v: TABLE_VERSION,
                from: from.to_string(),
                month: self.month,
                threshold,
                rows: Vec::new(),
                row_totals: Vec::new(),
                total: None,
                breakdowns: Vec::new(),
            });
        }
        let keys: Vec<RowKey> = merged.keys().cloned().collect();
        let row_totals: Vec<u64> = merged.values().map(|r| sum(r)).collect();
        let mut breakdowns = Vec::new();
        if total > 0 {
            for (i, dim) in Dimension::ALL.iter().enumerate() {
                let cols = dim.columns().len();
                let mut cells = Vec::with_capacity(keys.len() * cols);
                for rows in merged.values() {
                    for c in 0..cols {
                        cells.push(
                            rows.iter()
                                .filter_map(|r| r.cells.get(i).and_then(|x| x.get(c)))
                                .sum::<u64>(),
                        );
                    }
                }
                let grid = sdc::Grid {
                    rows: keys.len(),
                    cols,
                    cells,
                };
                breakdowns.push(protected_breakdown(*dim, &grid, t)?);
            }
        }
        let table = MonthTable {
            v: TABLE_VERSION,
            from: from.to_string(),
            month: self.month,
            threshold,
            rows: keys,
            row_totals,
            total: Some(total),
            breakdowns,
        };
        table.validate()?;
        Ok(table)
    }
}

fn dim_index(dim: Dimension) -> usize {
    Dimension::ALL.iter().position(|d| *d == dim).unwrap_or(0)
}

/// One breakdown after suppression, checked by the audit before it may
/// leave; withheld whole when the audit finds anything recoverable.
fn protected_breakdown(by: Dimension, grid: &sdc::Grid, threshold: u64) -> Result<Breakdown> {
    let p = sdc::protect(grid, threshold).map_err(|e| CoreError::Statistics(e.to_string()))?;
    let disclosed = sdc::audit(grid, &p).map_err(|e| CoreError::Statistics(e.to_string()))?;
    if p.withheld || !disclosed.is_empty() {
        return Ok(Breakdown {
            by,
            cells: vec![None; grid.cells.len()],
            column_totals: vec![None; grid.cols],
        });
    }
    Ok(Breakdown {
        by,
        cells: p.cells,
        column_totals: p.column_totals,
    })
}

/// The kind of place's key, for tables and CSV.
pub fn setting_key(s: Option<PlaceSetting>) -> &'static str {
    match s {
        Some(PlaceSetting::Border) => "border",
        Some(PlaceSetting::Urban) => "urban",
        Some(PlaceSetting::Rural) => "rural",
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::focal::{CaseStage, StatFacts};
    use amparo_protocol::payload::{AgeBand, AggressorKind, CaseStatus, Language};
    use amparo_protocol::time::days_from_civil;
    use proptest::prelude::*;

    /// A case written at 12:00 UTC on `day` of October 2026.
    fn case(region: &str, setting: Option<PlaceSetting>, gbv: Option<GbvType>) -> CaseSummary {
        let day = days_from_civil(2026, 10, 20);
        CaseSummary {
            id: [0; 16],
            status: CaseStatus::Received,
            reported_hour: u32::try_from(day * 24 + 12).unwrap(),
            needs: vec![],
            region: Some(region.into()),
            referred_by: None,
            referred_to: None,
            violence: vec![],
            aggressors: vec![AggressorKind::Client],
            language: Language::Es,
            attachments: 0,
            unread: false,
            last_activity: 0,
            notes: 0,
            stage: CaseStage::New,
            starred: false,
            gbv_type: gbv,
            context: vec![],
            facts: StatFacts {
                consent: true,
                age_band: Some(AgeBand::Adult),
                reported_elsewhere: Some(false),
                setting,
                incident_day: Some(day - 2),
            },
            alert: None,
        }
    }

    fn october() -> Month {
        Month::parse("2026-10").unwrap()
    }

    #[test]
    fn only_consenting_first_reports_with_a_type_are_counted() {
        let base = case("PE-LIM", None, Some(GbvType::Rape));
        assert_eq!(counted(&base), Ok(GbvType::Rape));
        let mut c = base.clone();
        c.facts.consent = false;
        assert_eq!(counted(&c), Err(Exclusion::NoConsent));
        let mut c = base.clone();
        c.facts.reported_elsewhere = Some(true);
        assert_eq!(counted(&c), Err(Exclusion::ReportedElsewhere));
        let mut c = base.clone();
        c.referred_by = Some("pe-other".into());
        assert_eq!(counted(&c), Err(Exclusion::Referred));
        let mut c = base.clone();
        c.gbv_type = None;
        assert_eq!(counted(&c), Err(Exclusion::Unclassified));
        // Not said is not "elsewhere".
        let mut c = base;
        c.facts.reported_elsewhere = None;
        assert!(counted(&c).is_ok());
    }

    #[test]
    fn a_month_counts_by_place_type_aggressor_age_and_delay() {
        let mut cases = vec![case("PE-LIM", Some(PlaceSetting::Urban), Some(GbvType::Rape)); 3];
        cases[1].facts.incident_day = None;
        cases[2].aggressors = vec![AggressorKind::Client, AggressorKind::PoliceOrSecurity];
        cases[2].context = vec![GbvContext::Trafficking];
        let mut other_month = cases[0].clone();
        other_month.reported_hour += 24 * 40;
        cases.push(other_month);
        let mut not_counted = cases[0].clone();
        not_counted.facts.consent = false;
        cases.push(not_counted);
        let s = MonthStats::of(&cases, october());
        assert_eq!((s.cases, s.counted), (4, 3));
        assert_eq!(s.excluded.get(&Exclusion::NoConsent), Some(&1));
        assert_eq!(s.rows.len(), 1);
        assert_eq!(s.column_totals(Dimension::GbvType)[0], 3);
        assert_eq!(
            s.column_totals(Dimension::Aggressor),
            vec![2, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(s.column_totals(Dimension::AgeBand), vec![0, 0, 3, 0]);
        assert_eq!(
            s.column_totals(Dimension::ReportDelay),
            vec![2, 0, 0, 0, 0, 1]
        );
        assert_eq!(s.context.get(&GbvContext::Trafficking), Some(&1));
        assert_eq!(months(&cases).len(), 2);
    }

    fn regions() -> HashSet<String> {
        ["PE-LIM", "PE-TUM", "PE-UCA"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn small_places_and_unlisted_regions_go_to_other_places() {
        let mut cases = vec![case("PE-LIM", Some(PlaceSetting::Urban), Some(GbvType::Rape)); 6];
        cases.extend(vec![
            case(
                "PE-TUM",
                Some(PlaceSetting::Border),
                Some(GbvType::Rape)
            );
            2
        ]);
        cases.extend(vec![case("Calle Falsa 123", None, Some(GbvType::Rape)); 5]);
        let t = MonthStats::of(&cases, october())
            .shareable("pe-lima", 5, &regions())
            .unwrap();
        assert_eq!(t.total, Some(13));
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0], RowKey::default());
        assert_eq!(t.row_totals, vec![7, 6]);
        let json = serde_json::to_string(&t).unwrap();
        assert!(!json.contains("Calle") && !json.contains("PE-TUM"));
    }

    #[test]
    fn a_month_below_the_threshold_says_only_that() {
        let cases = vec![case("PE-LIM", Some(PlaceSetting::Urban), Some(GbvType::Rape)); 4];
        let t = MonthStats::of(&cases, october())
            .shareable("pe-lima", 5, &regions())
            .unwrap();
        assert_eq!(t.total, None);
        assert!(t.rows.is_empty() && t.breakdowns.is_empty());
        t.validate().unwrap();
        let none = MonthStats::of(&[], october())
            .shareable("pe-lima", 5, &regions())
            .unwrap();
        assert_eq!(none.total, Some(0));
    }

    fn arb_case() -> impl Strategy<Value = CaseSummary> {
        (
            0usize..4,
            0usize..4,
            0usize..7,
            0usize..9,
            0usize..4,
            proptest::option::of(0u64..60),
            any::<bool>(),
        )
            .prop_map(|(region, setting, gbv, aggressor, age, delay, consent)| {
                let regions = ["PE-LIM", "PE-TUM", "PE-UCA", "XX-UNLISTED"];
                let mut c = case(
                    regions[region],
                    [
                        None,
                        Some(PlaceSetting::Border),
                        Some(PlaceSetting::Urban),
                        Some(PlaceSetting::Rural),
                    ][setting],
                    GbvType::ALL.get(gbv).copied(),
                );
                c.aggressors = match aggressor {
                    7 => vec![],
                    8 => vec![AggressorKind::Client, AggressorKind::OrganizedCrime],
                    k => vec![AggressorKind::ALL[k]],
                };
                c.facts.age_band = AgeBand::ALL.get(age).copied();
                c.facts.incident_day = delay.map(|d| u64::from(c.reported_hour) / 24 - d);
                c.facts.consent = consent;
                c
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever the cases, the shared table validates, its rows add up
        /// to the counted cases, it says no count from 1 to threshold − 1,
        /// and every count it says is the true one.
        #[test]
        fn shared_tables_are_true_consistent_and_small_counts_free(
            cases in proptest::collection::vec(arb_case(), 0..120),
            threshold in 2u32..7,
        ) {
            let stats = MonthStats::of(&cases, october());
            let t = stats.shareable("pe-lima", threshold, &regions()).unwrap();
            t.validate().unwrap();
            let small = |v: &u64| *v > 0 && *v < u64::from(threshold);
            match t.total {
                None => prop_assert!(small(&stats.counted)),
                Some(total) => {
                    prop_assert_eq!(total, stats.counted);
                    prop_assert!(!t.row_totals.iter().any(small));
                    for b in &t.breakdowns {
                        prop_assert!(!b.cells.iter().flatten().any(small));
                        prop_assert!(!b.column_totals.iter().flatten().any(small));
                        let truth = stats.column_totals(b.by);
                        for (said, true_total) in b.column_totals.iter().zip(&truth) {
                            if let Some(v) = said {
                                prop_assert_eq!(v, true_total);
                            }
                        }
                    }
                }
            }
        }
    }
}
