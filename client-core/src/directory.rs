//! The directory on the phone: the last coordinator-signed directory the
//! profile accepted (verified against the pinned coordinator key, never
//! replaced by an older one), refreshed from the relay with an ETag so an
//! unchanged directory costs a few bytes on 2G, and the choice of a focal
//! point by region, kind of help and language.

use amparo_protocol::UnixTime;
use amparo_protocol::directory::{Directory, FocalPoint, SignedDirectory};
use amparo_protocol::payload::{Language, Need};
use amparo_protocol::primitives::ed25519::VerifyingKey;
use serde::{Deserialize, Serialize};

mod regions;

use crate::relay::{DirectoryFetch, RelayClient};
use crate::store::{ItemKind, Profile};
use crate::survivor::{decode, encode};
use crate::{CoreError, Result};

#[derive(Serialize, Deserialize)]
struct StoredDirectory {
    bytes: Vec<u8>,
    version: u64,
    etag: Option<String>,
}

/// What the person is looking for; every field given must match.
#[derive(Debug, Clone, Default)]
pub struct FocalPointQuery {
    /// Region code, e.g. "PE-UCA".
    pub region: Option<String>,
    /// A kind of help.
    pub need: Option<Need>,
    /// A language she speaks.
    pub language: Option<Language>,
}

impl Profile {
    /// Accepts a signed directory (from the relay, a bundle or a file) if it
    /// verifies against the pinned coordinator key and is newer than the one
    /// held. Returns its version.
    ///
    /// A real profile with a duress PIN gives its decoy the same directory
    /// (`crate::decoy`), so the decoy never shows an older or missing one.
    /// That write goes through the decoy's own connection, so this must not
    /// run inside a transaction of `self` (inside one, use
    /// [`Profile::keep_directory`] and `decoy::after_directory_kept` after
    /// the commit).
    pub fn import_directory(
        &self,
        bytes: &[u8],
        coordinator: &VerifyingKey,
        etag: Option<String>,
    ) -> Result<u64> {
        let version = self.keep_directory(bytes, coordinator, etag)?;
        crate::decoy::after_directory_kept(self)?;
        Ok(version)
    }

    /// [`Profile::import_directory`] without the decoy's copy, for a caller
    /// inside a transaction (a bundle's import): it calls
    /// `decoy::after_directory_kept` once committed.
    pub(crate) fn keep_directory(
        &self,
        bytes: &[u8],
        coordinator: &VerifyingKey,
        etag: Option<String>,
    ) -> Result<u64> {
        let signed = SignedDirectory::verify(bytes, coordinator)?;
        signed.check_replaces(self.stored_directory()?.map(|d| d.version))?;
        self.put_item(
            ItemKind::Directory,
            &self.fixed_id(b"directory"),
            0,
            &encode(&StoredDirectory {
                bytes: bytes.to_vec(),
                version: signed.version(),
                etag,
            })?,
        )?;
        Ok(signed.version())
    }

    /// Gives `decoy` this profile's directory, as held (signed bytes,
    /// version and the relay's ETag, so the decoy's next refresh asks the
    /// relay exactly what this profile's would), unless the decoy already
    /// holds the same version or a newer one (it refreshes on its own too,
    /// and a directory never goes back). Returns whether it wrote. The bytes
    /// were verified when this profile accepted them, and are verified again
    /// whenever the decoy reads them.
    pub(crate) fn mirror_directory_into(&self, decoy: &Profile) -> Result<bool> {
        let Some(held) = self.stored_directory()? else {
            return Ok(false);
        };
        if decoy
            .stored_directory()?
            .is_some_and(|d| d.version >= held.version)
        {
            return Ok(false);
        }
        decoy.put_item(
            ItemKind::Directory,
            &decoy.fixed_id(b"directory"),
            0,
            &encode(&held)?,
        )?;
        Ok(true)
    }

    /// The ETag the next refresh sends (tests compare a decoy's with its
    /// real profile's).
    #[cfg(test)]
    pub(crate) fn directory_etag(&self) -> Result<Option<String>> {
        Ok(self.stored_directory()?.and_then(|d| d.etag))
    }

    fn stored_directory(&self) -> Result<Option<StoredDirectory>> {
        self.get_item(ItemKind::Directory, &self.fixed_id(b"directory"))?
            .map(|(_, b)| decode(&b, "directory"))
            .transpose()
    }

    /// The directory held, verified again against the pinned key.
    pub fn directory(&self, coordinator: &VerifyingKey) -> Result<Option<Directory>> {
        self.stored_directory()?
            .map(|d| {
                Ok(SignedDirectory::verify(&d.bytes, coordinator)?
                    .directory()
                    .clone())
            })
            .transpose()
    }

    /// The version of the directory held.
    pub fn directory_version(&self) -> Result<Option<u64>> {
        Ok(self.stored_directory()?.map(|d| d.version))
    }

    /// The signed bytes held (to hand on in a bundle).
    pub fn directory_bytes(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.stored_directory()?.map(|d| d.bytes))
    }

    /// Asks the relay for a newer directory; returns the version held after.
    /// A relay serving a forged or older directory changes nothing.
    ///
    /// A real profile with a duress PIN then brings its decoy's settings and
    /// directory in line with its own ([`Profile::keep_decoy_current`]):
    /// every sync passes here, so a decoy left behind (made by a bare
    /// `set_duress_pin`, or by a process killed before its copy) is repaired
    /// at the next one.
    pub async fn refresh_directory(
        &self,
        relay: &RelayClient,
        coordinator: &VerifyingKey,
    ) -> Result<Option<u64>> {
        let version = self.fetch_directory(relay, coordinator).await?;
        self.keep_decoy_current()?;
        Ok(version)
    }

    async fn fetch_directory(
        &self,
        relay: &RelayClient,
        coordinator: &VerifyingKey,
    ) -> Result<Option<u64>> {
        let held = self.stored_directory()?;
        match relay
            .directory(held.as_ref().and_then(|d| d.etag.as_deref()))
            .await?
        {
            DirectoryFetch::NotModified | DirectoryFetch::Missing => Ok(held.map(|d| d.version)),
            DirectoryFetch::Fresh { bytes, etag } => {
                match self.import_directory(&bytes, coordinator, etag) {
                    Ok(v) => Ok(Some(v)),
                    Err(CoreError::Protocol(amparo_protocol::ProtocolError::StaleDirectory {
                        current,
                        ..
                    })) => Ok(Some(current)),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

impl Profile {
    /// Relay keys whose receipts count as delivered, from the settings
    /// alone: their own list, and the relays of the directory held
    /// (verified against the pinned coordinator key, if one is set).
    pub fn trusted_relay_keys(&self) -> Result<Vec<VerifyingKey>> {
        let settings = self.settings()?;
        let mut keys = settings.extra_relay_keys();
        if let Ok(coordinator) = settings.coordinator()
            && let Some(d) = self.directory(&coordinator)?
        {
            keys.extend(d.relays.iter().map(|r| VerifyingKey(r.receipt_key)));
        }
        Ok(keys)
    }

    /// One sync as a phone does it: refresh the directory (a few bytes when
    /// unchanged), then upload the outbox and read replies, trusting receipts
    /// from the relays the directory lists and from `extra_relay_keys`.
    pub async fn sync_all(
        &self,
        relay: &RelayClient,
        coordinator: &VerifyingKey,
        extra_relay_keys: &[VerifyingKey],
        now: impl Fn() -> UnixTime,
        progress: &mut dyn FnMut(crate::survivor::SyncProgress),
    ) -> Result<crate::survivor::SyncSummary> {
        self.refresh_directory(relay, coordinator).await?;
        let mut keys = extra_relay_keys.to_vec();
        if let Some(d) = self.directory(coordinator)? {
            keys.extend(d.relays.iter().map(|r| VerifyingKey(r.receipt_key)));
        }
        self.sync(relay, &keys, now, progress).await
    }
}

/// Focal points valid at `now` that match `query`, best first: those that
/// offer more of what she asked for come first, then by directory order.
pub fn choose<'a>(
    directory: &'a Directory,
    query: &FocalPointQuery,
    now: UnixTime,
) -> Vec<&'a FocalPoint> {
    let mut found: Vec<&FocalPoint> = directory
        .focal_points
        .iter()
        .filter(|f| f.is_valid_at(now))
        .filter(|f| {
            query
                .region
                .as_ref()
                .is_none_or(|r| f.regions.iter().any(|fr| fr.eq_ignore_ascii_case(r.trim())))
        })
        .filter(|f| query.need.is_none_or(|n| f.categories.contains(&n)))
        .filter(|f| query.language.is_none_or(|l| f.languages.contains(&l)))
        .collect();
    // Prefer focal points that cover more needs and languages: they can take
    // the case further without a referral.
    found.sort_by_key(|f| std::cmp::Reverse(f.categories.len() + f.languages.len()));
    found
}

/// The best match for `query`, relaxing it if nothing matches: first the
/// language, then the kind of help, so that a person always gets a
/// suggestion in her region when there is one.
pub fn suggest<'a>(
    directory: &'a Directory,
    query: &FocalPointQuery,
    now: UnixTime,
) -> Option<&'a FocalPoint> {
    let relaxed = [
        query.clone(),
        FocalPointQuery {
            language: None,
            ..query.clone()
        },
        FocalPointQuery {
            language: None,
            need: None,
            ..query.clone()
        },
    ];
    relaxed
        .iter()
        .find_map(|q| choose(directory, q, now).into_iter().next())
}

/// A region a person can choose: its code as the directory spells it and
/// its name, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionChoice {
    /// The code, e.g. "PE-UCA".
    pub code: String,
    /// The name in the country's language, e.g. "Ucayali".
    pub name: Option<&'static str>,
}

/// What a region typed by a person matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionMatch {
    /// One region served by a focal point: its code as the directory spells it.
    Served(String),
    /// Several served regions fit what was typed (e.g. "Amazonas" in Peru
    /// and Brazil): she must pick one.
    Several(Vec<RegionChoice>),
    /// A known region, but no focal point valid now serves it.
    NotServed(RegionChoice),
    /// Nothing known by that code or name.
    Unknown,
}

/// The name of a region code, when known ("PE-UCA" → "Ucayali").
pub fn region_name(code: &str) -> Option<&'static str> {
    regions::REGIONS
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code.trim()))
        .map(|(_, n)| *n)
}

/// The regions the focal points valid at `now` serve, each once, sorted by
/// name (codes without a known name last), to offer as a list.
pub fn served_regions(directory: &Directory, now: UnixTime) -> Vec<RegionChoice> {
    let mut out: Vec<RegionChoice> = Vec::new();
    for f in directory.focal_points.iter().filter(|f| f.is_valid_at(now)) {
        for code in &f.regions {
            if !out.iter().any(|r| r.code.eq_ignore_ascii_case(code)) {
                out.push(RegionChoice {
                    code: code.clone(),
                    name: region_name(code),
                });
            }
        }
    }
    out.sort_by_key(|r| (r.name.is_none(), r.name.map(fold), r.code.clone()));
    out
}

/// Finds the region a person means: by code, in any case and with a space
/// or `_` for the hyphen (`pe-uca`, `PE UCA`); by name, ignoring case and
/// accents (`ucayali`, `sao paulo`); by the part of the code after the
/// country (`uca`) or the start of a name (`ucay`) when only one region
/// served fits. Served regions win over regions nobody serves.
pub fn find_region(directory: &Directory, typed: &str, now: UnixTime) -> RegionMatch {
    let served = served_regions(directory, now);
    let code = typed.trim().to_ascii_uppercase().replace([' ', '_'], "-");
    let name = fold(typed);
    if name.is_empty() {
        return RegionMatch::Unknown;
    }
    let named = |r: &RegionChoice| r.name.is_some_and(|n| fold(n) == name);
    // 1. Exact code or exact name among served regions.
    let hits: Vec<&RegionChoice> = served
        .iter()
        .filter(|r| r.code.eq_ignore_ascii_case(&code) || named(r))
        .collect();
    if let Some(m) = one_or_several(&hits) {
        return m;
    }
    // 2. A known region nobody serves.
    if let Some((c, n)) = regions::REGIONS
        .iter()
        .find(|(c, n)| c.eq_ignore_ascii_case(&code) || fold(n) == name)
    {
        return RegionMatch::NotServed(RegionChoice {
            code: (*c).to_string(),
            name: Some(n),
        });
    }
    // 3. The code after the country, or the start of a name, among served.
    let hits: Vec<&RegionChoice> = served
        .iter()
        .filter(|r| {
            r.code
                .split_once('-')
                .is_some_and(|(_, sub)| sub.len() >= 2 && sub.eq_ignore_ascii_case(&code))
                || (name.chars().count() >= 3 && r.name.is_some_and(|n| fold(n).starts_with(&name)))
        })
        .collect();
    one_or_several(&hits).unwrap_or(RegionMatch::Unknown)
}

fn one_or_several(hits: &[&RegionChoice]) -> Option<RegionMatch> {
    match hits {
        [] => None,
        [one] => Some(RegionMatch::Served(one.code.clone())),
        many => Some(RegionMatch::Several(
            many.iter().map(|r| (*r).clone()).collect(),
        )),
    }
}

/// Lowercase, without accents, single spaces: how names are compared.
fn fold(text: &str) -> String {
    let plain: String = text
        .trim()
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            '-' | '_' => ' ',
            c => c,
        })
        .collect();
    plain.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KdfParams;
    use amparo_protocol::directory::LocalizedText;
    use amparo_protocol::entropy::DangerousSeededEntropy;
    use amparo_protocol::keys::RecipientKeys;
    use amparo_protocol::primitives::ed25519::SigningKey;

    fn fp(
        id: &str,
        region: &str,
        needs: Vec<Need>,
        langs: Vec<Language>,
        e: &mut DangerousSeededEntropy,
    ) -> FocalPoint {
        let t = LocalizedText {
            es: id.into(),
            pt: id.into(),
            en: id.into(),
        };
        FocalPoint {
            reads: Vec::new(),
            id: id.into(),
            name: t,
            organization: "o".into(),
            regions: vec![region.into()],
            categories: needs,
            languages: langs,
            keys: RecipientKeys::generate(e).unwrap().public(),
            valid_from: 100,
            valid_until: 1000,
        }
    }

    fn sample(e: &mut DangerousSeededEntropy) -> Directory {
        Directory {
            statistics: None,
            focal_points: vec![
                fp(
                    "legal-es",
                    "PE-UCA",
                    vec![Need::LegalAdvice],
                    vec![Language::Es],
                    e,
                ),
                fp(
                    "health-pt",
                    "BR-AM",
                    vec![Need::StiHivPep, Need::HealthCare],
                    vec![Language::Pt, Language::Es],
                    e,
                ),
                fp(
                    "shelter",
                    "PE-UCA",
                    vec![Need::ProtectionShelter, Need::LegalAdvice],
                    vec![Language::Es],
                    e,
                ),
            ],
            service_routes: vec![],
            relays: vec![],
        }
    }

    #[test]
    fn choosing_and_suggesting() {
        let mut e = DangerousSeededEntropy::new(b"choose");
        let d = sample(&mut e);
        let now = UnixTime(500);
        let q = FocalPointQuery {
            region: Some("PE-UCA".into()),
            need: Some(Need::LegalAdvice),
            language: Some(Language::Es),
        };
        let ids: Vec<&str> = choose(&d, &q, now).iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["shelter", "legal-es"],
            "the one covering more comes first"
        );
        let q = FocalPointQuery {
            region: Some("PE-UCA".into()),
            need: Some(Need::StiHivPep),
            language: Some(Language::Pt),
        };
        assert!(choose(&d, &q, now).is_empty());
        assert_eq!(suggest(&d, &q, now).unwrap().regions[0], "PE-UCA");
        assert!(
            choose(&d, &FocalPointQuery::default(), UnixTime(5000)).is_empty(),
            "expired entries are not offered"
        );
    }

    #[test]
    fn regions_are_found_by_code_or_name_in_any_case() {
        let mut e = DangerousSeededEntropy::new(b"regions");
        let mut d = sample(&mut e);
        d.focal_points.push(fp(
            "roraima",
            "BR-RR",
            vec![Need::LegalAdvice],
            vec![Language::Pt],
            &mut e,
        ));
        d.focal_points.push(fp(
            "amazonas",
            "BR-AM",
            vec![Need::LegalAdvice],
            vec![Language::Pt],
            &mut e,
        ));
        d.focal_points.push(fp(
            "iquitos",
            "PE-AMA",
            vec![Need::LegalAdvice],
            vec![Language::Es],
            &mut e,
        ));
        d.focal_points.push(fp(
            "local",
            "XX-LOCAL",
            vec![Need::LegalAdvice],
            vec![Language::Es],
            &mut e,
        ));
        let now = UnixTime(500);
        let served = |s: &str| RegionMatch::Served(s.to_string());
        for typed in [
            "PE-UCA",
            "pe-uca",
            "Pe_Uca",
            "pe uca",
            "Ucayali",
            " UCAYALI ",
            "uca",
            "ucay",
        ] {
            assert_eq!(find_region(&d, typed, now), served("PE-UCA"), "{typed:?}");
        }
        assert_eq!(find_region(&d, "roraima", now), served("BR-RR"));
        assert_eq!(find_region(&d, "rr", now), served("BR-RR"));
        assert_eq!(
            find_region(&d, "xx-local", now),
            served("XX-LOCAL"),
            "a code without a name"
        );
        // Accents do not matter, either way.
        let mut with_accent = d.clone();
        with_accent.focal_points.push(fp(
            "sp",
            "BR-SP",
            vec![Need::LegalAdvice],
            vec![Language::Pt],
            &mut e,
        ));
        assert_eq!(find_region(&with_accent, "sao paulo", now), served("BR-SP"));
        assert_eq!(find_region(&with_accent, "SÃO PAULO", now), served("BR-SP"));
        // Amazonas is a region of Peru and of Brazil: she picks.
        match find_region(&d, "amazonas", now) {
            RegionMatch::Several(list) => {
                let codes: Vec<&str> = list.iter().map(|r| r.code.as_str()).collect();
                assert!(
                    codes.contains(&"BR-AM") && codes.contains(&"PE-AMA"),
                    "{codes:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        // Known, but nobody serves it.
        assert_eq!(
            find_region(&d, "lima", now),
            RegionMatch::NotServed(RegionChoice {
                code: "PE-LIM".into(),
                name: Some("Lima"),
            })
        );
        assert_eq!(find_region(&d, "Atlantis", now), RegionMatch::Unknown);
        assert_eq!(find_region(&d, "", now), RegionMatch::Unknown);
        assert_eq!(
            find_region(&d, "u", now),
            RegionMatch::Unknown,
            "too short to guess"
        );
        // Expired focal points' regions are not offered.
        assert!(served_regions(&d, UnixTime(5000)).is_empty());
        let list = served_regions(&d, now);
        assert_eq!(list.last().map(|r| r.code.as_str()), Some("XX-LOCAL"));
        assert_eq!(
            list.iter().filter(|r| r.code == "PE-UCA").count(),
            1,
            "each once"
        );
        assert_eq!(region_name("pe-uca"), Some("Ucayali"));
        // Choosing a focal point ignores the case of the code too.
        let q = FocalPointQuery {
            region: Some("pe-uca".into()),
            ..FocalPointQuery::default()
        };
        assert_eq!(choose(&d, &q, now).len(), 2);
    }

    #[test]
    fn import_only_signed_and_newer() {
        let mut e = DangerousSeededEntropy::new(b"import");
        let coordinator = SigningKey::generate(&mut e).unwrap();
        let mallory = SigningKey::generate(&mut e).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::create(dir.path(), "1", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let d = sample(&mut e);
        let pinned = coordinator.verifying_key();
        assert_eq!(
            p.import_directory(d.sign(5, &coordinator).unwrap().as_bytes(), &pinned, None)
                .unwrap(),
            5
        );
        assert!(
            p.import_directory(d.sign(9, &mallory).unwrap().as_bytes(), &pinned, None)
                .is_err()
        );
        assert!(
            p.import_directory(d.sign(4, &coordinator).unwrap().as_bytes(), &pinned, None)
                .is_err()
        );
        assert!(
            p.import_directory(d.sign(5, &coordinator).unwrap().as_bytes(), &pinned, None)
                .is_err()
        );
        assert_eq!(p.directory(&pinned).unwrap().unwrap(), d);
        assert!(
            p.directory(&mallory.verifying_key()).is_err(),
            "re-verified on read"
        );
    }
}
