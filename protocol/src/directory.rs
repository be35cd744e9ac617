//! The coordinator-signed directory of focal points and service routes.
//!
//! Phones ship with the coordinator's public key pinned. A directory is
//! accepted only if its signature verifies against that key, and never
//! replaces a directory with an equal or higher version — so neither a relay
//! operator nor a facilitator can swap a focal point's key or roll the list
//! back to an older one.
//!
//! Wire layout (big-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `"AMPD"` |
//! | 4 | 1 | format version = 1 |
//! | 5 | 8 | directory version (strictly increasing) |
//! | 13 | 8 | coordinator key id |
//! | 21 | 4 | body length `n` (at most 1 MiB) |
//! | 25 | n | body: the [`Directory`] as JSON |
//! | 25+n | 64 | Ed25519 signature over `"amparo-directory-v1" || bytes[0..25+n]` |

use serde::{Deserialize, Serialize};

use crate::codec::{Reader, expect_version};
use crate::keys::{KeyId, RecipientPublic};
use crate::payload::{Language, Need, check_len, check_text};
use crate::primitives::ed25519::{self, SIGNATURE_LEN};
use crate::{ProtocolError, Result, UnixTime, b64};

/// Magic at the start of a signed directory.
pub const MAGIC: [u8; 4] = *b"AMPD";
/// Format version.
pub const FORMAT_VERSION: u8 = 1;
/// Largest JSON body accepted.
pub const MAX_BODY: usize = 1024 * 1024;
const HEADER_LEN: usize = 4 + 1 + 8 + 8 + 4;
/// Largest signed directory: header, the largest body, signature.
pub const MAX_SIGNED_LEN: usize = HEADER_LEN + MAX_BODY + SIGNATURE_LEN;
const CONTEXT: &[u8] = b"amparo-directory-v1";

/// A text in each of the directory's languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalizedText {
    /// Español.
    pub es: String,
    /// Português.
    pub pt: String,
    /// English.
    pub en: String,
}

impl LocalizedText {
    /// The text in `lang`.
    pub fn get(&self, lang: Language) -> &str {
        match lang {
            Language::Es => &self.es,
            Language::Pt => &self.pt,
            Language::En => &self.en,
        }
    }

    fn validate(&self, max: usize, what: &'static str) -> Result<()> {
        for t in [&self.es, &self.pt, &self.en] {
            if t.trim().is_empty() {
                return Err(ProtocolError::Invalid(what));
            }
            check_text(t, max, what)?;
        }
        Ok(())
    }
}

/// A justice focal point: a public defender's office, an ombudsman, a
/// prosecutor's unit, a legal-aid or protection NGO, a health service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FocalPoint {
    /// Stable id chosen by the coordinator (e.g. "pe-ucayali-defensoria").
    pub id: String,
    /// Name shown to survivors.
    pub name: LocalizedText,
    /// The organisation it belongs to.
    pub organization: String,
    /// Regions it serves (codes as used in reports, e.g. "PE-UCA").
    pub regions: Vec<String>,
    /// Kinds of help it gives.
    pub categories: Vec<Need>,
    /// Languages it answers in.
    pub languages: Vec<Language>,
    /// Its sealing and request-signing keys.
    pub keys: RecipientPublic,
    /// Start of validity (seconds since the epoch).
    pub valid_from: u64,
    /// End of validity (seconds since the epoch).
    pub valid_until: u64,
    /// Body encodings its software opens beyond plain JSON (PROTOCOL.md
    /// §5.1): a phone compresses what it seals to this focal point only if
    /// [`crate::compression::READS_DEFLATE_D1`] is listed. Absent in older
    /// directories, and then nothing is compressed for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<String>,
}

impl FocalPoint {
    /// Whether the entry is valid at `now`.
    pub fn is_valid_at(&self, now: UnixTime) -> bool {
        self.valid_from <= now.0 && now.0 < self.valid_until
    }

    fn validate(&self) -> Result<()> {
        check_id(&self.id)?;
        self.name.validate(120, "focal point name")?;
        check_text(&self.organization, 200, "organisation")?;
        check_len(&self.regions, 64, "list of regions")?;
        for r in &self.regions {
            check_text(r, 64, "region")?;
        }
        check_len(&self.categories, 16, "list of categories")?;
        check_len(&self.languages, 8, "list of languages")?;
        if self.languages.is_empty() {
            return Err(ProtocolError::Invalid("focal point without a language"));
        }
        if self.valid_from >= self.valid_until {
            return Err(ProtocolError::Invalid("focal point validity window"));
        }
        crate::compression::check_reads(&self.reads)
    }
}

/// Kinds of service a route points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// General health care.
    HealthCare,
    /// STI/HIV, PEP, emergency contraception.
    StiHivPep,
    /// Legal aid.
    LegalAid,
    /// Shelter, safe house.
    Shelter,
    /// Mental health.
    MentalHealth,
    /// Help for migrants.
    MigrationSupport,
}

/// Where to get a service in a region, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRoute {
    /// Stable id.
    pub id: String,
    /// Region served.
    pub region: String,
    /// Kind of service.
    pub service: ServiceKind,
    /// Name of the place or programme.
    pub name: LocalizedText,
    /// How to get there and what to expect.
    pub description: LocalizedText,
    /// Phone, address or opening hours, if public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

impl ServiceRoute {
    fn validate(&self) -> Result<()> {
        check_id(&self.id)?;
        check_text(&self.region, 64, "region")?;
        self.name.validate(120, "service name")?;
        self.description.validate(2000, "service description")?;
        if let Some(c) = &self.contact {
            check_text(c, 300, "service contact")?;
        }
        Ok(())
    }
}

/// A relay whose receipts clients trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayEntry {
    /// A name for people.
    pub name: String,
    /// Base URL, if it is public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Ed25519 key that signs its receipts.
    #[serde(with = "b64::array")]
    pub receipt_key: [u8; 32],
}

/// The directory document (the signed body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// Focal points.
    pub focal_points: Vec<FocalPoint>,
    /// Service routes.
    #[serde(default)]
    pub service_routes: Vec<ServiceRoute>,
    /// Relays whose receipts count as delivered.
    #[serde(default)]
    pub relays: Vec<RelayEntry>,
    /// The coordinator's statistics mailbox: where focal points send their
    /// months' tables (PROTOCOL.md §15). Absent: this network gathers
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<RecipientPublic>,
}

/// Checks a focal point's (or service's) directory id: 1 to 64 of a-z, 0-9,
/// `-` and `_`. Payloads that name a focal point (a referral, a message's
/// writer) use the same rule.
pub fn check_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(ProtocolError::Invalid(
            "directory id (use a-z, 0-9, - and _)",
        ));
    }
    Ok(())
}

impl Directory {
    /// Checks limits and uniqueness of ids and mailboxes.
    pub fn validate(&self) -> Result<()> {
        check_len(&self.focal_points, 10_000, "list of focal points")?;
        check_len(&self.service_routes, 10_000, "list of service routes")?;
        check_len(&self.relays, 64, "list of relays")?;
        let mut ids = std::collections::HashSet::new();
        let mut mailboxes = std::collections::HashSet::new();
        for f in &self.focal_points {
            f.validate()?;
            if !ids.insert(f.id.as_str()) {
                return Err(ProtocolError::Invalid("duplicate focal point id"));
            }
            if !mailboxes.insert(f.keys.mailbox()) {
                return Err(ProtocolError::Invalid("two focal points share keys"));
            }
        }
        let mut route_ids = std::collections::HashSet::new();
        for r in &self.service_routes {
            r.validate()?;
            if !route_ids.insert(r.id.as_str()) {
                return Err(ProtocolError::Invalid("duplicate service route id"));
            }
        }
        for r in &self.relays {
            check_text(&r.name, 120, "relay name")?;
        }
        if let Some(s) = &self.statistics
            && mailboxes.contains(&s.mailbox())
        {
            return Err(ProtocolError::Invalid(
                "the statistics mailbox is a focal point's",
            ));
        }
        Ok(())
    }

    /// The focal point with `id`.
    pub fn focal_point(&self, id: &str) -> Option<&FocalPoint> {
        self.focal_points.iter().find(|f| f.id == id)
    }

    /// Signs the directory as `version` with the coordinator's key.
    pub fn sign(&self, version: u64, coordinator: &ed25519::SigningKey) -> Result<SignedDirectory> {
        self.validate()?;
        let body = serde_json::to_vec(self).map_err(|e| ProtocolError::json("directory", &e))?;
        if body.len() > MAX_BODY {
            return Err(ProtocolError::TooLarge {
                what: "directory",
                len: body.len(),
                max: MAX_BODY,
            });
        }
        let key_id = KeyId::for_key(&coordinator.verifying_key());
        let mut bytes = Vec::with_capacity(HEADER_LEN + body.len() + SIGNATURE_LEN);
        bytes.extend_from_slice(&MAGIC);
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(&version.to_be_bytes());
        bytes.extend_from_slice(&key_id.0);
        bytes.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
        bytes.extend_from_slice(&body);
        let signature = coordinator.sign(&[CONTEXT, &bytes]);
        bytes.extend_from_slice(&signature);
        Ok(SignedDirectory {
            bytes,
            version,
            directory: self.clone(),
        })
    }
}

/// A directory whose signature has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDirectory {
    bytes: Vec<u8>,
    version: u64,
    directory: Directory,
}

impl SignedDirectory {
    /// Parses `bytes`, verifies the signature against the pinned coordinator
    /// key, then parses and validates the body. Nothing in the body is read
    /// before the signature verifies.
    pub fn verify(bytes: &[u8], coordinator: &ed25519::VerifyingKey) -> Result<SignedDirectory> {
        let mut r = Reader::new(bytes);
        if r.array::<4>()? != MAGIC {
            return Err(ProtocolError::BadMagic("signed directory"));
        }
        expect_version("directory format", r.u8()?, FORMAT_VERSION)?;
        let version = r.u64()?;
        let key_id = KeyId(r.array()?);
        let body_len = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if body_len > MAX_BODY {
            return Err(ProtocolError::TooLarge {
                what: "directory",
                len: body_len,
                max: MAX_BODY,
            });
        }
        let body = r.take(body_len)?;
        let signature = r.take(SIGNATURE_LEN)?;
        r.finish()?;
        if key_id != KeyId::for_key(coordinator) {
            return Err(ProtocolError::UnknownSigner("directory"));
        }
        let signed = bytes
            .get(..HEADER_LEN + body_len)
            .ok_or(ProtocolError::Truncated { needed: 0 })?;
        coordinator.verify(&[CONTEXT, signed], signature, "directory")?;
        let directory: Directory =
            serde_json::from_slice(body).map_err(|e| ProtocolError::json("directory", &e))?;
        directory.validate()?;
        Ok(SignedDirectory {
            bytes: bytes.to_vec(),
            version,
            directory,
        })
    }

    /// Accepts `self` as a replacement for `current` only if its version is
    /// strictly higher.
    pub fn check_replaces(&self, current: Option<u64>) -> Result<()> {
        match current {
            Some(current) if self.version <= current => Err(ProtocolError::StaleDirectory {
                offered: self.version,
                current,
            }),
            _ => Ok(()),
        }
    }

    /// The version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The document.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The signed bytes, as served and carried.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DangerousSeededEntropy;
    use crate::keys::RecipientKeys;

    pub(crate) fn sample(e: &mut DangerousSeededEntropy) -> Directory {
        let fp = RecipientKeys::generate(e).unwrap();
        Directory {
            statistics: None,
            focal_points: vec![FocalPoint {
                reads: Vec::new(),
                id: "pe-ucayali-defensoria".into(),
                name: LocalizedText {
                    es: "Defensoría del Pueblo, Ucayali".into(),
                    pt: "Defensoria do Povo, Ucayali".into(),
                    en: "Ombudsman's Office, Ucayali".into(),
                },
                organization: "Defensoría del Pueblo".into(),
                regions: vec!["PE-UCA".into()],
                categories: vec![Need::LegalAdvice, Need::ProtectionShelter],
                languages: vec![Language::Es],
                keys: fp.public(),
                valid_from: 0,
                valid_until: 4_000_000_000,
            }],
            service_routes: vec![],
            relays: vec![],
        }
    }

    #[test]
    fn sign_verify_and_versions() {
        let mut e = DangerousSeededEntropy::new(b"dir");
        let coord = ed25519::SigningKey::generate(&mut e).unwrap();
        let d = sample(&mut e);
        let s = d.sign(7, &coord).unwrap();
        let v = SignedDirectory::verify(s.as_bytes(), &coord.verifying_key()).unwrap();
        assert_eq!(v.version(), 7);
        assert_eq!(v.directory(), &d);
        v.check_replaces(None).unwrap();
        v.check_replaces(Some(6)).unwrap();
        assert!(v.check_replaces(Some(7)).is_err());
        assert!(v.check_replaces(Some(8)).is_err());
    }

    #[test]
    fn forged_or_damaged_directories_are_rejected() {
        let mut e = DangerousSeededEntropy::new(b"dir");
        let coord = ed25519::SigningKey::generate(&mut e).unwrap();
        let mallory = ed25519::SigningKey::generate(&mut e).unwrap();
        let d = sample(&mut e);
        let forged = d.sign(9, &mallory).unwrap();
        assert_eq!(
            SignedDirectory::verify(forged.as_bytes(), &coord.verifying_key()),
            Err(ProtocolError::UnknownSigner("directory"))
        );
        let good = d.sign(9, &coord).unwrap().as_bytes().to_vec();
        // Bump the version without re-signing.
        let mut bumped = good.clone();
        bumped[12] ^= 1;
        assert_eq!(
            SignedDirectory::verify(&bumped, &coord.verifying_key()),
            Err(ProtocolError::BadSignature("directory"))
        );
        // Swap a byte of the body.
        let mut body = good.clone();
        body[40] ^= 1;
        assert!(SignedDirectory::verify(&body, &coord.verifying_key()).is_err());
        for cut in [0, 3, 20, good.len() - 1] {
            assert!(SignedDirectory::verify(&good[..cut], &coord.verifying_key()).is_err());
        }
    }

    #[test]
    fn validation_catches_bad_entries() {
        let mut e = DangerousSeededEntropy::new(b"dir");
        let mut d = sample(&mut e);
        d.focal_points.push(d.focal_points[0].clone());
        assert!(d.validate().is_err());
        let mut d = sample(&mut e);
        d.focal_points[0].id = "Bad Id".into();
        assert!(d.validate().is_err());
        let mut d = sample(&mut e);
        d.focal_points[0].name.pt = " ".into();
        assert!(d.validate().is_err());
    }
}
