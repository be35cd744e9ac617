//! The coordinator's side: the key that signs the directory, kept sealed in a
//! profile like any other secret, and the directory built from a file people
//! can edit (TOML: focal points, regions, kinds of help, languages, service
//! routes in es/pt/en, trusted relays).
//!
//! Dates in the source are `YYYY-MM-DD` in UTC and both ends are inclusive:
//! `valid_from = "2026-01-01"` starts at 00:00 UTC that day and
//! `valid_until = "2027-12-31"` ends at 24:00 UTC that day, so the signed
//! directory's (exclusive) `valid_until` is 00:00 UTC of 2028-01-01.
//!
//! The coordinator key is the most powerful secret in a deployment: whoever
//! holds it can put a key of their choosing in front of survivors. It never
//! leaves the profile; the profile remembers the last directory it signed,
//! so versions only ever go up.

use amparo_protocol::UnixTime;
use amparo_protocol::b64;
use amparo_protocol::directory::{
    Directory, FocalPoint, LocalizedText, RelayEntry, ServiceRoute, SignedDirectory,
};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientPublic;
use amparo_protocol::payload::{Language, Need};
use amparo_protocol::primitives::ed25519::{SigningKey, VerifyingKey};
use amparo_protocol::time::{civil_from_days, days_from_civil};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::store::{ItemKind, Profile};
use crate::{CoreError, Result};

/// Errors in a directory source file, with the line or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Not valid TOML, or a field of the wrong kind.
    #[error("the directory file is not valid: {0}")]
    Syntax(String),
    /// A key is not 32 bytes of base64url.
    #[error("focal point {id}: {what} is not a valid key")]
    Key {
        /// The focal point.
        id: String,
        /// Which key.
        what: &'static str,
    },
    /// A date is not `YYYY-MM-DD`.
    #[error("focal point {id}: {date:?} is not a date (YYYY-MM-DD)")]
    Date {
        /// The focal point.
        id: String,
        /// What was written.
        date: String,
    },
}

impl From<SourceError> for CoreError {
    fn from(e: SourceError) -> Self {
        CoreError::Source(e.to_string())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    #[serde(default, rename = "focal_point")]
    focal_points: Vec<SourceFocalPoint>,
    #[serde(default, rename = "service_route")]
    service_routes: Vec<ServiceRoute>,
    #[serde(default, rename = "relay")]
    relays: Vec<SourceRelay>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFocalPoint {
    id: String,
    name: LocalizedText,
    organization: String,
    regions: Vec<String>,
    categories: Vec<Need>,
    languages: Vec<Language>,
    sealing_key: String,
    signing_key: String,
    valid_from: String,
    valid_until: String,
    /// Body encodings the office's software opens (PROTOCOL.md §5.1), e.g.
    /// `["deflate_d1"]`. Absent: none, and phones send it plain JSON. List
    /// one only once every install of the office runs software that reads it.
    #[serde(default)]
    reads: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceRelay {
    name: String,
    #[serde(default)]
    url: Option<String>,
    receipt_key: String,
}

/// `YYYY-MM-DD` at 00:00 UTC, in seconds since the epoch (where a
/// `valid_from` date starts).
pub fn parse_date(text: &str) -> Option<u64> {
    let mut parts = text.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if !(1970..=9999).contains(&y) || d == 0 || d > days_in_month {
        return None;
    }
    let month = u8::try_from(m).ok()?;
    let day = u8::try_from(d).ok()?;
    days_from_civil(y, month, day).checked_mul(86_400)
}

/// The end of a validity window that includes the whole of the `YYYY-MM-DD`
/// day `text` (UTC): 00:00 UTC of the day after, in seconds since the epoch.
///
/// A directory's `valid_until` is exclusive (a focal point is offered while
/// `valid_from <= now < valid_until`, PROTOCOL.md §8), and a coordinator who
/// writes `valid_until = "2027-12-31"` means through the end of that day.
pub fn parse_until_date(text: &str) -> Option<u64> {
    parse_date(text)?.checked_add(86_400)
}

/// The last day a validity window ending (exclusively) at `valid_until`
/// includes, as `YYYY-MM-DD`: for a directory made from a source file, the
/// date the coordinator wrote as `valid_until`.
pub fn format_until_date(valid_until: u64) -> String {
    format_date(valid_until.saturating_sub(1))
}

/// A `YYYY-MM-DD` date for seconds since the epoch (for display).
pub fn format_date(secs: u64) -> String {
    let (y, m, d) = civil_from_days(secs / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

fn key(text: &str, id: &str, what: &'static str) -> Result<[u8; 32], SourceError> {
    b64::decode_array(text.trim(), what).map_err(|_| SourceError::Key {
        id: id.into(),
        what,
    })
}

/// Builds a directory from its TOML source and checks it as a phone would
/// (ids, text lengths, validity windows), so a mistake shows here and not on
/// survivors' phones.
pub fn directory_from_toml(text: &str) -> Result<Directory> {
    let source: Source = toml::from_str(text).map_err(|e| SourceError::Syntax(e.to_string()))?;
    let mut focal_points = Vec::with_capacity(source.focal_points.len());
    for f in source.focal_points {
        let date = |d: &str, parse: fn(&str) -> Option<u64>| {
            parse(d).ok_or_else(|| SourceError::Date {
                id: f.id.clone(),
                date: d.into(),
            })
        };
        focal_points.push(FocalPoint {
            reads: f.reads.clone(),
            keys: RecipientPublic {
                sealing_key: key(&f.sealing_key, &f.id, "sealing_key")?,
                signing_key: key(&f.signing_key, &f.id, "signing_key")?,
            },
            // Both dates are inclusive: from 00:00 UTC of `valid_from` to
            // the end of `valid_until` (the directory's bound is exclusive).
            valid_from: date(&f.valid_from, parse_date)?,
            valid_until: date(&f.valid_until, parse_until_date)?,
            id: f.id,
            name: f.name,
            organization: f.organization,
            regions: f.regions,
            categories: f.categories,
            languages: f.languages,
        });
    }
    let mut relays = Vec::with_capacity(source.relays.len());
    for r in source.relays {
        relays.push(RelayEntry {
            receipt_key: key(&r.receipt_key, &r.name, "receipt_key")?,
            name: r.name,
            url: r.url,
        });
    }
    let directory = Directory {
        statistics: None,
        focal_points,
        service_routes: source.service_routes,
        relays,
    };
    directory.validate()?;
    Ok(directory)
}

/// The TOML lines a focal point hands to the coordinator for its entry.
pub fn focal_point_source(id: &str, keys: &RecipientPublic) -> String {
    format!(
        "[[focal_point]]\nid = \"{id}\"\nsealing_key = \"{}\"\nsigning_key = \"{}\"\n",
        b64::encode(&keys.sealing_key),
        b64::encode(&keys.signing_key)
    )
}

impl Profile {
    fn coordinator_item(&self) -> [u8; 16] {
        self.fixed_id(b"coordinator-key")
    }

    /// Makes this profile a coordinator's: generates the directory-signing
    /// key and returns its public half (to pin in phones and relays).
    pub fn create_coordinator_key(&self) -> Result<VerifyingKey> {
        if self
            .get_item(ItemKind::Identity, &self.coordinator_item())?
            .is_some()
        {
            return Err(CoreError::Invalid(
                "this profile already has a coordinator key",
            ));
        }
        let key = SigningKey::generate(&mut SystemEntropy::new())?;
        self.put_item(
            ItemKind::Identity,
            &self.coordinator_item(),
            0,
            &key.dangerously_export_seed()[..],
        )?;
        Ok(key.verifying_key())
    }

    pub(crate) fn coordinator_signing_key(&self) -> Result<SigningKey> {
        let (_, seed) = self
            .get_item(ItemKind::Identity, &self.coordinator_item())?
            .ok_or(CoreError::Invalid("this profile has no coordinator key"))?;
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            seed.as_slice()
                .try_into()
                .map_err(|_| CoreError::Corrupt("coordinator key"))?,
        );
        Ok(SigningKey::from_seed(&seed)?)
    }

    /// The coordinator's public key.
    pub fn coordinator_public(&self) -> Result<VerifyingKey> {
        Ok(self.coordinator_signing_key()?.verifying_key())
    }

    /// Signs `directory` with the next version (one more than the last this
    /// profile signed, and at least `now` in seconds so versions also grow
    /// across a restored backup), and keeps it as this profile's directory.
    pub fn sign_directory(&self, directory: &Directory, now: UnixTime) -> Result<SignedDirectory> {
        let key = self.coordinator_signing_key()?;
        let last = self.directory_version()?.unwrap_or(0);
        let version = last.saturating_add(1).max(now.0);
        let mut directory = directory.clone();
        if directory.statistics.is_none() {
            directory.statistics = Some(self.coordinator_statistics_keys()?.public());
        }
        let signed = directory.sign(version, &key)?;
        self.import_directory(signed.as_bytes(), &key.verifying_key(), None)?;
        Ok(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KdfParams;

    const SOURCE: &str = r#"
[[focal_point]]
id = "pe-ucayali-defensoria"
name = { es = "Defensoría del Pueblo – Ucayali", pt = "Defensoria do Povo – Ucayali", en = "Ombudsman's Office – Ucayali" }
organization = "Defensoría del Pueblo"
regions = ["PE-UCA"]
categories = ["legal_advice", "protection_shelter"]
languages = ["es"]
sealing_key = "SEAL"
signing_key = "SIGN"
valid_from = "2026-01-01"
valid_until = "2027-12-31"
reads = ["deflate_d1"]

[[service_route]]
id = "pucallpa-pep"
region = "PE-UCA"
service = "sti_hiv_pep"
name = { es = "Hospital Regional de Pucallpa", pt = "Hospital Regional de Pucallpa", en = "Pucallpa Regional Hospital" }
description = { es = "PEP en emergencias, 24 horas.", pt = "PEP na emergência, 24 horas.", en = "PEP at the emergency room, 24 hours." }

[[relay]]
name = "central"
url = "https://relay.example.org"
receipt_key = "RELAY"
"#;

    fn source() -> String {
        SOURCE
            .replace("SEAL", &b64::encode(&[1; 32]))
            .replace("SIGN", &b64::encode(&[2; 32]))
            .replace("RELAY", &b64::encode(&[3; 32]))
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-11-23"), Some(1_795_392_000));
        assert_eq!(format_date(1_795_392_000), "2026-11-23");
        assert_eq!(
            parse_date("2028-02-29").map(format_date).as_deref(),
            Some("2028-02-29")
        );
        for bad in [
            "2027-02-29",
            "2026-13-01",
            "2026-00-10",
            "26-1-1x",
            "",
            "1969-12-31",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn valid_until_includes_the_whole_day_written() {
        let d = directory_from_toml(&source()).unwrap();
        let f = &d.focal_points[0];
        let first = parse_date("2026-01-01").unwrap();
        let last_day = parse_date("2027-12-31").unwrap();
        assert_eq!(f.valid_from, first);
        assert_eq!(f.valid_until, last_day + 86_400);
        assert!(!f.is_valid_at(UnixTime(first - 1)));
        assert!(f.is_valid_at(UnixTime(first)));
        assert!(f.is_valid_at(UnixTime(last_day)));
        assert!(f.is_valid_at(UnixTime(last_day + 86_399)), "23:59:59 UTC");
        assert!(!f.is_valid_at(UnixTime(last_day + 86_400)), "the next day");
        assert_eq!(format_until_date(f.valid_until), "2027-12-31");
        assert_eq!(format_date(f.valid_until), "2028-01-01");
        // A window of one day: both dates the same.
        let one_day = source().replace("2026-01-01", "2027-12-31");
        let f = directory_from_toml(&one_day).unwrap().focal_points[0].clone();
        assert!(f.is_valid_at(UnixTime(last_day + 43_200)));
        assert!(!f.is_valid_at(UnixTime(last_day + 86_400)));
        assert_eq!(parse_until_date("2028-02-29"), parse_date("2028-03-01"));
        assert_eq!(parse_until_date("2027-02-29"), None);
    }

    #[test]
    fn a_source_file_becomes_a_valid_directory() {
        let d = directory_from_toml(&source()).unwrap();
        assert_eq!(d.focal_points.len(), 1);
        assert_eq!(d.focal_points[0].keys.sealing_key, [1; 32]);
        assert_eq!(
            d.focal_points[0].valid_from,
            parse_date("2026-01-01").unwrap()
        );
        assert_eq!(d.service_routes[0].name.pt, "Hospital Regional de Pucallpa");
        assert_eq!(d.relays[0].receipt_key, [3; 32]);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (source().replace("\"es\"]", "\"klingon\"]"), "not valid"),
            (
                source().replace(&b64::encode(&[1; 32]), "short"),
                "sealing_key",
            ),
            (source().replace("2027-12-31", "next year"), "next year"),
            (source().replace("2027-12-31", "2025-01-01"), "validity"),
            (
                source().replace("organization =", "organisation ="),
                "not valid",
            ),
        ];
        for (text, says) in cases {
            let e = directory_from_toml(&text).unwrap_err().to_string();
            assert!(e.contains(says), "{e:?} should mention {says:?}");
        }
    }

    #[test]
    fn versions_only_go_up_and_the_signature_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::create(dir.path(), "9999", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let d = directory_from_toml(&source()).unwrap();
        assert!(p.sign_directory(&d, UnixTime(5)).is_err(), "no key yet");
        let public = p.create_coordinator_key().unwrap();
        assert!(p.create_coordinator_key().is_err(), "one key per profile");
        assert_eq!(p.coordinator_public().unwrap(), public);
        let first = p.sign_directory(&d, UnixTime(1_000)).unwrap();
        assert_eq!(first.version(), 1_000);
        let second = p.sign_directory(&d, UnixTime(10)).unwrap();
        assert_eq!(
            second.version(),
            1_001,
            "a clock going back does not reuse a version"
        );
        let checked = SignedDirectory::verify(second.as_bytes(), &public).unwrap();
        // What was written, plus the coordinator's statistics key, the same
        // in every directory it signs.
        let with_key = Directory {
            statistics: Some(p.coordinator_statistics_keys().unwrap().public()),
            ..d.clone()
        };
        assert_eq!(checked.directory(), &with_key);
        assert_eq!(first.directory().statistics, with_key.statistics);
        assert!(SignedDirectory::verify(second.as_bytes(), &VerifyingKey([2; 32])).is_err());
    }

    #[test]
    fn the_focal_point_snippet_parses_back() {
        let keys = RecipientPublic {
            sealing_key: [4; 32],
            signing_key: [5; 32],
        };
        let snippet = focal_point_source("x", &keys);
        assert!(snippet.contains(&b64::encode(&[4; 32])));
    }
}
