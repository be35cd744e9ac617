//! The risk picture: how a focal point classifies a case for statistics,
//! and the month's table it shares with the coordinator.
//!
//! The classification follows the GBV Information Management System
//! (GBVIMS), which case workers in Latin America already use: six core
//! types of incident, context recorded apart, age in bands, the time from
//! the incident to the report in bands. A survivor's report says what only
//! she can say (consent to be counted, age band, whether she reported
//! elsewhere, the kind of place); the case worker decides the type.
//!
//! A [`MonthTable`] holds counts only, already put through disclosure
//! control on the focal point's machine (small counts suppressed, with
//! secondary suppression so that none can be recovered from the others):
//! a `null` cell is one the table does not say. It travels as the body of
//! an envelope of purpose *statistics*, sealed to the coordinator's
//! statistics key from the directory and signed with the focal point's
//! own key ([`SignedMonthTable`]), so that a stranger, who can seal
//! anything to the coordinator, cannot put counts in an office's name.

use serde::{Deserialize, Serialize};

use crate::directory::check_id;
use crate::padding::MAX_BODY;
use crate::payload::{AgeBand, AggressorKind, PlaceSetting, check_len, check_text};
use crate::primitives::ed25519::{self, SIGNATURE_LEN, VerifyingKey};
use crate::{ProtocolError, Result, b64};

/// Current version of a month's table.
pub const TABLE_VERSION: u8 = 1;
/// Most rows (region and kind of place) in one month's table.
pub const MAX_ROWS: usize = 64;
/// Largest count a cell may hold.
pub const MAX_COUNT: u64 = 1_000_000;
/// Largest suppression threshold a table may name.
pub const MAX_THRESHOLD: u32 = 1000;
const CONTEXT: &[u8] = b"amparo-statistics-v1";

/// The GBVIMS core type of an incident, decided by the case worker. Each
/// incident has one: when several happened, the first in this order (the
/// GBVIMS classification tool's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GbvType {
    /// Rape: non-consensual penetration.
    Rape,
    /// Sexual assault: any other non-consensual sexual contact.
    SexualAssault,
    /// Physical assault.
    PhysicalAssault,
    /// Forced marriage, including child marriage.
    ForcedMarriage,
    /// Denial of resources, opportunities or services.
    DenialOfResources,
    /// Psychological or emotional abuse.
    PsychologicalAbuse,
}

impl GbvType {
    /// Every type, in the GBVIMS order.
    pub const ALL: [GbvType; 6] = [
        GbvType::Rape,
        GbvType::SexualAssault,
        GbvType::PhysicalAssault,
        GbvType::ForcedMarriage,
        GbvType::DenialOfResources,
        GbvType::PsychologicalAbuse,
    ];

    /// The snake_case name used on the wire and in CSV.
    pub fn key(self) -> &'static str {
        match self {
            GbvType::Rape => "rape",
            GbvType::SexualAssault => "sexual_assault",
            GbvType::PhysicalAssault => "physical_assault",
            GbvType::ForcedMarriage => "forced_marriage",
            GbvType::DenialOfResources => "denial_of_resources",
            GbvType::PsychologicalAbuse => "psychological_abuse",
        }
    }
}

/// Context of an incident, recorded apart from its type (several may
/// apply). Kept on the case; counted in the office's own statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GbvContext {
    /// By a current or former intimate partner.
    IntimatePartnerViolence,
    /// Sexual abuse of a child.
    ChildSexualAbuse,
    /// Possible sexual exploitation.
    SexualExploitation,
    /// Possible trafficking.
    Trafficking,
}

impl GbvContext {
    /// Every context flag.
    pub const ALL: [GbvContext; 4] = [
        GbvContext::IntimatePartnerViolence,
        GbvContext::ChildSexualAbuse,
        GbvContext::SexualExploitation,
        GbvContext::Trafficking,
    ];

    /// The snake_case name used on the wire and in CSV.
    pub fn key(self) -> &'static str {
        match self {
            GbvContext::IntimatePartnerViolence => "intimate_partner_violence",
            GbvContext::ChildSexualAbuse => "child_sexual_abuse",
            GbvContext::SexualExploitation => "sexual_exploitation",
            GbvContext::Trafficking => "trafficking",
        }
    }
}

/// Time from the incident to the report, in the GBVIMS bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReportDelay {
    /// 0 to 3 days (the window for post-exposure prophylaxis).
    Days0To3,
    /// 4 or 5 days (emergency contraception still possible).
    Days4To5,
    /// 6 to 14 days.
    Days6To14,
    /// Two weeks to a month (15 to 30 days).
    Days15To30,
    /// More than a month.
    Over30Days,
}

impl ReportDelay {
    /// Every band, shortest first.
    pub const ALL: [ReportDelay; 5] = [
        ReportDelay::Days0To3,
        ReportDelay::Days4To5,
        ReportDelay::Days6To14,
        ReportDelay::Days15To30,
        ReportDelay::Over30Days,
    ];

    /// The band of a delay of `days` whole days.
    pub fn of_days(days: u64) -> ReportDelay {
        match days {
            0..=3 => ReportDelay::Days0To3,
            4..=5 => ReportDelay::Days4To5,
            6..=14 => ReportDelay::Days6To14,
            15..=30 => ReportDelay::Days15To30,
            _ => ReportDelay::Over30Days,
        }
    }

    /// The name used on the wire and in CSV.
    pub fn key(self) -> &'static str {
        match self {
            ReportDelay::Days0To3 => "days_0_3",
            ReportDelay::Days4To5 => "days_4_5",
            ReportDelay::Days6To14 => "days_6_14",
            ReportDelay::Days15To30 => "days_15_30",
            ReportDelay::Over30Days => "over_30_days",
        }
    }
}

/// What a breakdown's columns count. Every dimension partitions the
/// month's counted incidents: each falls in exactly one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// The GBVIMS core type ([`GbvType`], in its order).
    GbvType,
    /// The aggressor: the one kind the report names, `unknown` when it
    /// names none, `several` when it names more than one.
    Aggressor,
    /// Her age band, `unknown` when she did not say.
    AgeBand,
    /// Time from the incident to the report, `unknown` when the report
    /// gives no full date.
    ReportDelay,
}

/// Column names of [`Dimension::Aggressor`], in order.
const AGGRESSOR_COLUMNS: [&str; 8] = [
    "client",
    "police_or_security",
    "intimate_partner",
    "third_party_or_pimp",
    "organized_crime",
    "other",
    "unknown",
    "several",
];
const GBV_COLUMNS: [&str; 6] = [
    "rape",
    "sexual_assault",
    "physical_assault",
    "forced_marriage",
    "denial_of_resources",
    "psychological_abuse",
];
const AGE_COLUMNS: [&str; 4] = ["age_0_11", "age_12_17", "age_18_plus", "unknown"];
const DELAY_COLUMNS: [&str; 6] = [
    "days_0_3",
    "days_4_5",
    "days_6_14",
    "days_15_30",
    "over_30_days",
    "unknown",
];

impl Dimension {
    /// Every dimension, in the order a table lists them.
    pub const ALL: [Dimension; 4] = [
        Dimension::GbvType,
        Dimension::Aggressor,
        Dimension::AgeBand,
        Dimension::ReportDelay,
    ];

    /// The column names, in the order of a breakdown's cells.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Dimension::GbvType => &GBV_COLUMNS,
            Dimension::Aggressor => &AGGRESSOR_COLUMNS,
            Dimension::AgeBand => &AGE_COLUMNS,
            Dimension::ReportDelay => &DELAY_COLUMNS,
        }
    }

    /// The snake_case name used on the wire and in CSV.
    pub fn key(self) -> &'static str {
        match self {
            Dimension::GbvType => "gbv_type",
            Dimension::Aggressor => "aggressor",
            Dimension::AgeBand => "age_band",
            Dimension::ReportDelay => "report_delay",
        }
    }
}

/// The column of an incident's type.
pub fn gbv_column(t: GbvType) -> usize {
    GbvType::ALL.iter().position(|x| *x == t).unwrap_or(0)
}

/// The column of an incident's aggressors (see [`Dimension::Aggressor`]).
pub fn aggressor_column(aggressors: &[AggressorKind]) -> usize {
    let mut kinds: Vec<AggressorKind> = aggressors.to_vec();
    kinds.sort_by_key(|k| AggressorKind::ALL.iter().position(|x| x == k));
    kinds.dedup();
    match kinds.as_slice() {
        [] => 6,
        [one] => AggressorKind::ALL
            .iter()
            .position(|x| x == one)
            .unwrap_or(6),
        _ => 7,
    }
}

/// The column of an age band (`None`: unknown).
pub fn age_column(band: Option<AgeBand>) -> usize {
    band.and_then(|b| AgeBand::ALL.iter().position(|x| *x == b))
        .unwrap_or(3)
}

/// The column of a delay band (`None`: unknown).
pub fn delay_column(delay: Option<ReportDelay>) -> usize {
    delay
        .and_then(|d| ReportDelay::ALL.iter().position(|x| *x == d))
        .unwrap_or(5)
}

/// A calendar month, written `"YYYY-MM"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    /// The year, 2000–2999.
    pub year: u16,
    /// The month, 1–12.
    pub month: u8,
}

impl Month {
    /// The month of `unix_seconds` (UTC).
    pub fn of_unix(unix_seconds: u64) -> Month {
        let (year, month, _) = crate::time::civil_from_days(unix_seconds / 86_400);
        Month {
            year: u16::try_from(year).unwrap_or(u16::MAX),
            month,
        }
    }

    /// Parses `"YYYY-MM"`.
    pub fn parse(text: &str) -> Result<Month> {
        let bad = ProtocolError::Invalid("month (write it YYYY-MM)");
        let (y, m) = text.split_once('-').ok_or(bad.clone())?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad);
        }
        let year: u16 = y.parse().map_err(|_| bad.clone())?;
        let month: u8 = m.parse().map_err(|_| bad.clone())?;
        let out = Month { year, month };
        out.validate()?;
        Ok(out)
    }

    pub(crate) fn validate(self) -> Result<()> {
        if !(2000..=2999).contains(&self.year) || !(1..=12).contains(&self.month) {
            return Err(ProtocolError::Invalid("month"));
        }
        Ok(())
    }

    /// The month after this one.
    pub fn next(self) -> Month {
        if self.month >= 12 {
            Month {
                year: self.year.saturating_add(1),
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The month before.
    pub fn previous(self) -> Month {
        if self.month <= 1 {
            Month {
                year: self.year.saturating_sub(1),
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// Months since January of year 0: what counting months between two
    /// months, or stepping by many, works on.
    pub fn index(self) -> u32 {
        (u32::from(self.year) * 12 + u32::from(self.month)).saturating_sub(1)
    }

    /// The month of [`Month::index`] `index`.
    pub fn from_index(index: u32) -> Month {
        Month {
            year: u16::try_from(index / 12).unwrap_or(u16::MAX),
            month: u8::try_from(index % 12 + 1).unwrap_or(12),
        }
    }

    /// Seconds since the epoch of its first second (UTC).
    pub fn start_unix(self) -> u64 {
        crate::time::days_from_civil(i64::from(self.year), self.month, 1).saturating_mul(86_400)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Month::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A row of a month's table: a region and a kind of place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RowKey {
    /// The region code, as the directory lists it; absent for "other
    /// places" (regions below the threshold merged, or not in the
    /// directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The kind of place; absent when not said, or merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting: Option<PlaceSetting>,
}

/// One two-way table of a month: rows × the dimension's columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    /// What the columns count.
    pub by: Dimension,
    /// Row-major counts; `null` where the table does not say.
    pub cells: Vec<Option<u64>>,
    /// Each column's total over the rows; `null` where suppressed.
    pub column_totals: Vec<Option<u64>>,
}

/// A focal point's counts for one month, after disclosure control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthTable {
    /// Version (1).
    pub v: u8,
    /// The focal point's directory id.
    pub from: String,
    /// The month the reports were written in.
    pub month: Month,
    /// Counts from 1 to `threshold − 1` were suppressed.
    pub threshold: u32,
    /// Region and kind of place of each row.
    pub rows: Vec<RowKey>,
    /// How many incidents each row counts: always said.
    pub row_totals: Vec<u64>,
    /// Incidents counted in the month; `null` when fewer than the
    /// threshold (the table then says nothing else).
    pub total: Option<u64>,
    /// The breakdowns, at most one per dimension.
    pub breakdowns: Vec<Breakdown>,
}

fn checked_sum(mut values: impl Iterator<Item = u64>) -> Result<u64> {
    values.try_fold(0u64, |a, v| {
        a.checked_add(v)
            .ok_or(ProtocolError::Invalid("statistics count"))
    })
}

/// Checks that published parts add up: `known` is the sum of the said
/// values, `all_said` whether every value was said.
fn check_sum(known: u64, all_said: bool, total: u64, what: &'static str) -> Result<()> {
    if known > total || (all_said && known != total) {
        return Err(ProtocolError::Invalid(what));
    }
    Ok(())
}

impl Breakdown {
    fn validate(&self, row_totals: &[u64], total: u64) -> Result<()> {
        let cols = self.by.columns().len();
        let rows = row_totals.len();
        if self.cells.len() != rows.saturating_mul(cols) || self.column_totals.len() != cols {
            return Err(ProtocolError::Invalid("statistics breakdown shape"));
        }
        if self
            .cells
            .iter()
            .chain(&self.column_totals)
            .flatten()
            .any(|v| *v > MAX_COUNT)
        {
            return Err(ProtocolError::Invalid("statistics count"));
        }
        for (r, row_total) in row_totals.iter().enumerate() {
            let row = self.cells.iter().skip(r * cols).take(cols);
            let known = checked_sum(row.clone().flatten().copied())?;
            let all = row.clone().all(Option::is_some);
            check_sum(known, all, *row_total, "statistics row does not add up")?;
        }
        for (c, column_total) in self.column_totals.iter().enumerate() {
            let column = self.cells.iter().skip(c).step_by(cols);
            if let Some(ct) = column_total {
                let known = checked_sum(column.clone().flatten().copied())?;
                let all = column.clone().all(Option::is_some);
                check_sum(known, all, *ct, "statistics column does not add up")?;
            }
        }
        let known = checked_sum(self.column_totals.iter().flatten().copied())?;
        let all = self.column_totals.iter().all(Option::is_some);
        check_sum(known, all, total, "statistics columns do not add up")
    }
}

impl MonthTable {
    /// Checks limits, shapes and that every said count adds up.
    pub fn validate(&self) -> Result<()> {
        if self.v != TABLE_VERSION {
            return Err(ProtocolError::UnsupportedVersion {
                what: "statistics table",
                version: u64::from(self.v),
            });
        }
        check_id(&self.from)?;
        self.month.validate()?;
        if !(1..=MAX_THRESHOLD).contains(&self.threshold) {
            return Err(ProtocolError::Invalid("statistics threshold"));
        }
        check_len(&self.rows, MAX_ROWS, "statistics rows")?;
        check_len(
            &self.breakdowns,
            Dimension::ALL.len(),
            "statistics breakdowns",
        )?;
        if self.row_totals.len() != self.rows.len() {
            return Err(ProtocolError::Invalid("statistics row totals"));
        }
        let mut seen = std::collections::HashSet::new();
        for row in &self.rows {
            if let Some(r) = &row.region {
                check_text(r, 64, "region")?;
            }
            if !seen.insert(row) {
                return Err(ProtocolError::Invalid("statistics row listed twice"));
            }
        }
        if self.row_totals.iter().any(|v| *v > MAX_COUNT) {
            return Err(ProtocolError::Invalid("statistics count"));
        }
        let Some(total) = self.total else {
            if self.rows.is_empty() && self.breakdowns.is_empty() {
                return Ok(());
            }
            return Err(ProtocolError::Invalid(
                "a withheld statistics month says nothing else",
            ));
        };
        if checked_sum(self.row_totals.iter().copied())? != total {
            return Err(ProtocolError::Invalid("statistics rows do not add up"));
        }
        let mut dims = std::collections::HashSet::new();
        for b in &self.breakdowns {
            if !dims.insert(b.by) {
                return Err(ProtocolError::Invalid("statistics breakdown listed twice"));
            }
            b.validate(&self.row_totals, total)?;
        }
        Ok(())
    }

    /// The breakdown by `dim`, if the table has one.
    pub fn breakdown(&self, dim: Dimension) -> Option<&Breakdown> {
        self.breakdowns.iter().find(|b| b.by == dim)
    }
}

/// The body of a *statistics* envelope: a month's table as JSON bytes and
/// the focal point's signature over them.
///
/// JSON: `{ "v": 1, "from": id, "table": base64url(table JSON),
/// "signature": base64url(64) }`, the signature being Ed25519 with the
/// focal point's signing key (the directory's `keys.signing_key`) over
/// `"amparo-statistics-v1" || table JSON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMonthTable {
    /// Who says it signed it (checked against the table and the key).
    pub from: String,
    table: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

#[derive(Serialize, Deserialize)]
struct SignedWire {
    v: u8,
    from: String,
    table: String,
    signature: String,
}

impl SignedMonthTable {
    /// Validates `table` and signs it with the focal point's key. Fails if
    /// the whole would not fit one envelope.
    pub fn sign(table: &MonthTable, key: &ed25519::SigningKey) -> Result<SignedMonthTable> {
        table.validate()?;
        let json =
            serde_json::to_vec(table).map_err(|e| ProtocolError::json("statistics table", &e))?;
        let signature = key.sign(&[CONTEXT, &json]);
        let signed = SignedMonthTable {
            from: table.from.clone(),
            table: json,
            signature,
        };
        let len = signed.to_json()?.len();
        if len > MAX_BODY {
            return Err(ProtocolError::TooLarge {
                what: "statistics table",
                len,
                max: MAX_BODY,
            });
        }
        Ok(signed)
    }

    /// The envelope body.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(&SignedWire {
            v: TABLE_VERSION,
            from: self.from.clone(),
            table: b64::encode(&self.table),
            signature: b64::encode(&self.signature),
        })
        .map_err(|e| ProtocolError::json("signed statistics table", &e))
    }

    /// Parses an envelope body. Nothing of the table is read yet: call
    /// [`SignedMonthTable::verify`] with the key of the focal point that
    /// `from` names.
    pub fn from_json(bytes: &[u8]) -> Result<SignedMonthTable> {
        if bytes.len() > MAX_BODY {
            return Err(ProtocolError::TooLarge {
                what: "signed statistics table",
                len: bytes.len(),
                max: MAX_BODY,
            });
        }
        let wire: SignedWire = serde_json::from_slice(bytes)
            .map_err(|e| ProtocolError::json("signed statistics table", &e))?;
        if wire.v != TABLE_VERSION {
            return Err(ProtocolError::UnsupportedVersion {
                what: "signed statistics table",
                version: u64::from(wire.v),
            });
        }
        check_id(&wire.from)?;
        Ok(SignedMonthTable {
            from: wire.from,
            table: b64::decode_vec(&wire.table, MAX_BODY, "statistics table")?,
            signature: b64::decode_array(&wire.signature, "statistics signature")?,
        })
    }

    /// Checks the signature with `key`, then parses and validates the
    /// table, which must name the same focal point.
    pub fn verify(&self, key: &VerifyingKey) -> Result<MonthTable> {
        key.verify(&[CONTEXT, &self.table], &self.signature, "statistics table")?;
        let table: MonthTable = serde_json::from_slice(&self.table)
            .map_err(|e| ProtocolError::json("statistics table", &e))?;
        table.validate()?;
        if table.from != self.from {
            return Err(ProtocolError::Invalid(
                "statistics table signed for another focal point",
            ));
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DangerousSeededEntropy;

    #[test]
    fn months_step_back_and_count() {
        let jan = Month::parse("2027-01").unwrap();
        assert_eq!(jan.previous(), Month::parse("2026-12").unwrap());
        assert_eq!(jan.previous().next(), jan);
        assert_eq!(jan.index() - jan.previous().index(), 1);
        assert_eq!(Month::from_index(jan.index()), jan);
        assert_eq!(
            Month::from_index(jan.index() + 13),
            Month::parse("2028-02").unwrap()
        );
    }

    fn table() -> MonthTable {
        MonthTable {
            v: 1,
            from: "pe-lima-legal".into(),
            month: Month::parse("2026-10").unwrap(),
            threshold: 5,
            rows: vec![
                RowKey {
                    region: Some("PE-LIM".into()),
                    setting: Some(PlaceSetting::Urban),
                },
                RowKey {
                    region: None,
                    setting: None,
                },
            ],
            row_totals: vec![12, 6],
            total: Some(18),
            breakdowns: vec![Breakdown {
                by: Dimension::AgeBand,
                cells: vec![None, None, Some(9), Some(0), None, None, Some(5), Some(0)],
                column_totals: vec![Some(0), Some(4), Some(14), Some(0)],
            }],
        }
    }

    #[test]
    fn a_table_adds_up_and_travels_signed() {
        let t = table();
        t.validate().unwrap();
        let key =
            ed25519::SigningKey::generate(&mut DangerousSeededEntropy::new(b"office")).unwrap();
        let body = SignedMonthTable::sign(&t, &key).unwrap().to_json().unwrap();
        let back = SignedMonthTable::from_json(&body).unwrap();
        assert_eq!(back.verify(&key.verifying_key()).unwrap(), t);
        let other =
            ed25519::SigningKey::generate(&mut DangerousSeededEntropy::new(b"stranger")).unwrap();
        assert!(back.verify(&other.verifying_key()).is_err());
    }

    #[test]
    fn tables_that_do_not_add_up_are_refused() {
        let mut t = table();
        t.total = Some(19);
        assert!(t.validate().is_err());
        let mut t = table();
        t.breakdowns[0].cells[2] = Some(13);
        assert!(t.validate().is_err(), "row over its total");
        let mut t = table();
        t.breakdowns[0].column_totals[1] = Some(1);
        t.breakdowns[0].column_totals[2] = Some(17);
        assert!(t.validate().is_err(), "column total under its said cells");
        let mut t = table();
        t.breakdowns[0].cells.pop();
        assert!(t.validate().is_err());
        let mut t = table();
        t.breakdowns.push(t.breakdowns[0].clone());
        assert!(t.validate().is_err());
        let mut t = table();
        t.rows[1] = t.rows[0].clone();
        assert!(t.validate().is_err());
        let mut t = table();
        t.total = None;
        assert!(t.validate().is_err(), "withheld but says rows");
    }

    #[test]
    fn a_table_signed_in_another_name_is_refused() {
        let mut t = table();
        let key =
            ed25519::SigningKey::generate(&mut DangerousSeededEntropy::new(b"office")).unwrap();
        let signed = SignedMonthTable::sign(&t, &key).unwrap();
        let mut forged = signed.clone();
        forged.from = "pe-other".into();
        assert!(forged.verify(&key.verifying_key()).is_err());
        t.from = "pe-other".into();
        assert!(SignedMonthTable::sign(&t, &key).is_ok());
    }

    #[test]
    fn months_and_bands() {
        assert_eq!(Month::parse("2026-02").unwrap().to_string(), "2026-02");
        assert!(Month::parse("2026-13").is_err());
        assert!(Month::parse("26-01").is_err());
        assert_eq!(Month::of_unix(1_767_225_600).to_string(), "2026-01");
        assert_eq!(
            Month::parse("2026-12").unwrap().next().to_string(),
            "2027-01"
        );
        assert_eq!(Month::parse("2026-01").unwrap().start_unix(), 1_767_225_600);
        assert_eq!(ReportDelay::of_days(3), ReportDelay::Days0To3);
        assert_eq!(ReportDelay::of_days(14), ReportDelay::Days6To14);
        assert_eq!(ReportDelay::of_days(31), ReportDelay::Over30Days);
        assert_eq!(aggressor_column(&[]), 6);
        assert_eq!(
            aggressor_column(&[AggressorKind::Client, AggressorKind::Client]),
            0
        );
        assert_eq!(
            aggressor_column(&[AggressorKind::Client, AggressorKind::PoliceOrSecurity]),
            7
        );
        for d in Dimension::ALL {
            assert!(!d.columns().is_empty());
        }
    }
}
