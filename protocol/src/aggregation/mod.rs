//! The statistics sum: the coordinator learns the sum of the offices'
//! months, never one office's (PROTOCOL.md §16).
//!
//! Secure aggregation by double masking (Bonawitz et al., "Practical
//! Secure Aggregation for Privacy-Preserving Machine Learning", CCS 2017),
//! fitted to a few dozen offices that are offline for days:
//!
//! - Ahead of time, each office makes two secrets per month — a *mask*
//!   secret (its X25519 mask key) and a *self* secret — and splits both
//!   with Shamir's scheme among the other offices of the directory (any
//!   `threshold`, more than half, rebuild one). It tells the coordinator
//!   its public mask keys, signed per month.
//! - When a month is over the coordinator opens a *round*: the cohort (the
//!   offices whose signed mask keys it holds) and the table's layout. Each
//!   office sends its counts as a vector of `u32` plus a mask from its self
//!   secret plus, for every other office of the cohort, ± a mask from the
//!   key the two share (X25519): the pairwise masks cancel in the sum.
//! - The coordinator says who sent (the *survivors*); each office answers
//!   with its shares: of the self secret of every survivor, of the mask
//!   secret of every office that did not send — never both for one office
//!   and never for two different survivor lists, so the coordinator can
//!   unmask the sum and nothing else.
//!
//! Everything here is pure: the messages, their checks, the masks and the
//! sum. Where they are stored and when they are sent is the core's.

pub mod shamir;

use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::directory::check_id;
use crate::padding::MAX_BODY;
use crate::payload::{PlaceSetting, check_text};
use crate::primitives::ed25519::{self, SIGNATURE_LEN, VerifyingKey};
use crate::primitives::{hkdf, sha256, x25519};
use crate::statistics::{Dimension, GbvContext, Month};
use crate::{ProtocolError, Result, b64};
use shamir::{Secret, Share};

/// Version of every aggregation message.
pub const VERSION: u8 = 1;
/// Most offices in one round's cohort.
pub const MAX_COHORT: usize = 64;
/// Fewest offices whose counts a sum may hold: with two, each could
/// subtract its own and read the other's.
pub const MIN_SURVIVORS: usize = 3;
/// Most months one key announcement covers.
pub const MAX_BATCH_MONTHS: usize = 12;
/// Most regions a round's layout names (the rest count as "other places").
pub const MAX_LAYOUT_REGIONS: usize = 64;
/// Who signs a round and an unmask request: the directory's coordinator.
pub const COORDINATOR: &str = "coordinator";
const SIGN_CONTEXT: &[u8] = b"amparo-aggregation-v1";
const KEY_CONTEXT: &[u8] = b"amparo-aggregation-key-v1";
const COMMIT_CONTEXT: &[u8] = b"amparo-aggregation-commit-v1";
const MASK_KEY_INFO: &[u8] = b"amparo-aggregation-mask-key";
const PAIR_SALT: &[u8] = b"amparo-aggregation-pair";
const PRG_SELF: &[u8] = b"self";
const PRG_PAIR: &[u8] = b"pair";

/// The kinds of place of a row, in vector order (absent last).
pub const SETTINGS: [Option<PlaceSetting>; 4] = [
    Some(PlaceSetting::Border),
    Some(PlaceSetting::Urban),
    Some(PlaceSetting::Rural),
    None,
];

/// Values per row: its total, then each dimension's columns in
/// [`Dimension::ALL`] order.
pub fn row_width() -> usize {
    1 + Dimension::ALL
        .iter()
        .map(|d| d.columns().len())
        .sum::<usize>()
}

/// How a month's counts are laid out as a vector, fixed by the round:
/// for each region (in the order given, then "other places") and each kind
/// of place ([`SETTINGS`]), a row of [`row_width`] values; then one count
/// per context flag ([`GbvContext::ALL`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Region codes, sorted, at most [`MAX_LAYOUT_REGIONS`].
    pub regions: Vec<String>,
}

impl Layout {
    /// Checks limits, order and that no region is listed twice.
    pub fn validate(&self) -> Result<()> {
        if self.regions.len() > MAX_LAYOUT_REGIONS {
            return Err(ProtocolError::Invalid("aggregation layout regions"));
        }
        for r in &self.regions {
            check_text(r, 64, "region")?;
        }
        if !self.regions.is_sorted_by(|a, b| a < b) {
            return Err(ProtocolError::Invalid(
                "aggregation layout regions are sorted and distinct",
            ));
        }
        Ok(())
    }

    /// Rows: every region, then "other places".
    pub fn row_keys(&self) -> Vec<Option<&str>> {
        self.regions
            .iter()
            .map(|r| Some(r.as_str()))
            .chain([None])
            .collect()
    }

    /// Length of the vector.
    pub fn len(&self) -> usize {
        (self.regions.len() + 1) * SETTINGS.len() * row_width() + GbvContext::ALL.len()
    }

    /// Never empty (the context counts are always there).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Where a row starts: a region the layout does not name counts as
    /// "other places".
    pub fn row_start(&self, region: Option<&str>, setting: Option<PlaceSetting>) -> usize {
        let r = region
            .and_then(|r| self.regions.iter().position(|x| x == r))
            .unwrap_or(self.regions.len());
        let s = SETTINGS.iter().position(|x| *x == setting).unwrap_or(3);
        (r * SETTINGS.len() + s) * row_width()
    }

    /// Where the context counts start.
    pub fn context_start(&self) -> usize {
        (self.regions.len() + 1) * SETTINGS.len() * row_width()
    }
}

/// The commitment to a self secret an office announces, by which the
/// coordinator knows it rebuilt the right one.
pub fn commitment(secret: &Secret) -> [u8; 32] {
    sha256(&[COMMIT_CONTEXT, secret.as_bytes()])
}

/// The X25519 mask key derived from a mask secret.
pub fn mask_key(secret: &Secret) -> Result<x25519::SecretKey> {
    let prk = hkdf::extract(b"", &[secret.as_bytes()]);
    let bytes = hkdf::expand_array::<32>(&prk[..], &[MASK_KEY_INFO])?;
    Ok(x25519::SecretKey::from_bytes(&bytes))
}

/// `len` pseudo-random `u32`s from `seed`: HMAC-SHA256 in counter mode
/// over the label, the month and the block number.
fn expand(seed: &[u8], label: &[u8], month: Month, len: usize) -> Vec<u32> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, seed);
    let month = month.to_string();
    let mut out = Vec::with_capacity(len);
    let mut block: u32 = 0;
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(label);
        ctx.update(month.as_bytes());
        ctx.update(&block.to_be_bytes());
        let tag = ctx.sign();
        for word in tag
            .as_ref()
            .chunks_exact(4)
            .filter_map(|c| c.try_into().ok())
        {
            if out.len() < len {
                out.push(u32::from_le_bytes(word));
            }
        }
        block = block.wrapping_add(1);
    }
    out
}

/// The seed two offices share for `month`: HKDF of their mask keys'
/// Diffie-Hellman, bound to the month and both ids (in byte order).
fn pair_seed(
    mine: &x25519::SecretKey,
    me: &str,
    theirs: &x25519::PublicKey,
    them: &str,
    month: Month,
) -> Result<zeroize::Zeroizing<[u8; 32]>> {
    let dh = mine.diffie_hellman(theirs)?;
    let prk = hkdf::extract(PAIR_SALT, &[&dh[..]]);
    let (lo, hi) = if me < them { (me, them) } else { (them, me) };
    let month = month.to_string();
    hkdf::expand_array::<32>(
        &prk[..],
        &[month.as_bytes(), b"\0", lo.as_bytes(), b"\0", hi.as_bytes()],
    )
}

fn add(into: &mut [u32], mask: &[u32], sign_plus: bool) {
    for (v, m) in into.iter_mut().zip(mask) {
        *v = if sign_plus {
            v.wrapping_add(*m)
        } else {
            v.wrapping_sub(*m)
        };
    }
}

/// An office's masked counts: `counts` plus the mask of its self secret
/// plus, for every other office of the cohort, the pair mask (added if
/// this office's id sorts first, subtracted if the other's does).
pub fn mask(
    counts: &[u32],
    month: Month,
    me: &str,
    self_secret: &Secret,
    mask_secret: &Secret,
    others: &[(String, x25519::PublicKey)],
) -> Result<Vec<u32>> {
    let mut out = counts.to_vec();
    add(
        &mut out,
        &expand(self_secret.as_bytes(), PRG_SELF, month, counts.len()),
        true,
    );
    let mine = mask_key(mask_secret)?;
    for (id, key) in others {
        if id == me {
            continue;
        }
        let seed = pair_seed(&mine, me, key, id, month)?;
        add(
            &mut out,
            &expand(&seed[..], PRG_PAIR, month, counts.len()),
            me < id.as_str(),
        );
    }
    Ok(out)
}

/// What the coordinator rebuilt: the self secret of each survivor, and the
/// mask secret of each office of the cohort that did not send.
pub struct Rebuilt<'a> {
    /// Each survivor's id, mask key and self secret.
    pub survivors: Vec<(&'a str, x25519::PublicKey, Secret)>,
    /// Each office that did not send, and its mask secret.
    pub dropped: Vec<(&'a str, Secret)>,
}

/// The sum of the survivors' counts from the sum of their masked vectors:
/// their self masks removed, and the pair masks they made with offices
/// that did not send (those did not cancel).
pub fn unmask(masked_sum: &[u32], month: Month, rebuilt: &Rebuilt<'_>) -> Result<Vec<u32>> {
    let len = masked_sum.len();
    let mut out = masked_sum.to_vec();
    for (_, _, b) in &rebuilt.survivors {
        add(&mut out, &expand(b.as_bytes(), PRG_SELF, month, len), false);
    }
    for (gone, a) in &rebuilt.dropped {
        let key = mask_key(a)?;
        for (id, public, _) in &rebuilt.survivors {
            let seed = pair_seed(&key, gone, public, id, month)?;
            // The survivor added this mask if its id sorts first.
            add(
                &mut out,
                &expand(&seed[..], PRG_PAIR, month, len),
                *id >= *gone,
            );
        }
    }
    Ok(out)
}

/// The digest of a list of office ids (a cohort, survivors, holders): what
/// a message binds itself to without repeating the list.
pub fn digest(ids: &[String]) -> [u8; 32] {
    let mut parts: Vec<&[u8]> = vec![b"amparo-aggregation-ids"];
    for id in ids {
        parts.push(id.as_bytes());
        parts.push(b"\n");
    }
    sha256(&parts)
}

/// One office's public key material for one month, signed by the office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthKey {
    /// The month.
    pub month: Month,
    /// The X25519 public mask key.
    #[serde(with = "b64::array")]
    pub mask_key: [u8; 32],
    /// [`commitment`] to the self secret.
    #[serde(with = "b64::array")]
    pub commitment: [u8; 32],
    /// How many holders rebuild one of its secrets.
    pub threshold: u16,
    /// [`digest`] of the holders' ids in share-index order.
    #[serde(with = "b64::array")]
    pub holders: [u8; 32],
    /// Ed25519 by the office over [`MonthKey::signed_bytes`].
    #[serde(with = "b64::array")]
    pub signature: [u8; SIGNATURE_LEN],
}

impl MonthKey {
    /// What the office signs: the context, its id, and every other field.
    pub fn signed_bytes(&self, office: &str) -> Vec<u8> {
        let mut out = KEY_CONTEXT.to_vec();
        out.extend_from_slice(office.as_bytes());
        out.push(0);
        out.extend_from_slice(self.month.to_string().as_bytes());
        out.extend_from_slice(&self.mask_key);
        out.extend_from_slice(&self.commitment);
        out.extend_from_slice(&self.threshold.to_be_bytes());
        out.extend_from_slice(&self.holders);
        out
    }

    /// Checks the office's signature.
    pub fn verify(&self, office: &str, key: &VerifyingKey) -> Result<()> {
        key.verify(
            &[&self.signed_bytes(office)],
            &self.signature,
            "aggregation key",
        )
    }
}

/// The threshold an office with `holders` holders must use: more than
/// half, so no two disjoint sets of honest holders both reach it.
pub fn threshold_for(holders: usize) -> u16 {
    u16::try_from(holders / 2 + 1).unwrap_or(u16::MAX)
}

/// An office's announcement to the coordinator: its holders and its
/// signed keys for up to [`MAX_BATCH_MONTHS`] months.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    /// The office.
    pub office: String,
    /// Who holds shares of its secrets, in share-index order (index = place
    /// + 1).
    pub holders: Vec<String>,
    /// Its keys.
    pub months: Vec<MonthKey>,
}

/// One month's shares for one holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthShares {
    /// The month.
    pub month: Month,
    /// The holder's share index.
    pub x: u16,
    /// Share of the mask secret.
    #[serde(with = "b64::array")]
    pub mask: [u8; 32],
    /// Share of the self secret.
    #[serde(with = "b64::array")]
    pub own: [u8; 32],
}

/// An office's shares for one holder, sealed to that holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shares {
    /// The office whose secrets these are.
    pub office: String,
    /// The holder they are for.
    pub holder: String,
    /// Per month.
    pub months: Vec<MonthShares>,
}

/// A member of a round's cohort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The office.
    pub office: String,
    /// Its signed key for the round's month.
    pub key: MonthKey,
}

/// The coordinator opens a month's round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    /// The month.
    pub month: Month,
    /// The layout of every vector.
    pub layout: Layout,
    /// The cohort, sorted by office id.
    pub cohort: Vec<Member>,
}

impl Round {
    /// The cohort's ids, in order.
    pub fn ids(&self) -> Vec<String> {
        self.cohort.iter().map(|m| m.office.clone()).collect()
    }

    /// The member `office`, if in the cohort.
    pub fn member(&self, office: &str) -> Option<&Member> {
        self.cohort.iter().find(|m| m.office == office)
    }
}

/// An office's masked counts for a round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Masked {
    /// The office.
    pub office: String,
    /// The month.
    pub month: Month,
    /// [`digest`] of the round's cohort.
    #[serde(with = "b64::array")]
    pub cohort: [u8; 32],
    /// The vector, little-endian `u32`s (base64url).
    #[serde(with = "vector")]
    pub vector: Vec<u32>,
}

/// The coordinator says who sent and asks for shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmask {
    /// The month.
    pub month: Month,
    /// [`digest`] of the round's cohort.
    #[serde(with = "b64::array")]
    pub cohort: [u8; 32],
    /// The offices whose vectors are in the sum, sorted.
    pub survivors: Vec<String>,
}

/// A share revealed for one office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revealed {
    /// Whose secret.
    pub office: String,
    /// The share index.
    pub x: u16,
    /// The share.
    #[serde(with = "b64::array")]
    pub y: [u8; 32],
}

impl Revealed {
    /// As a Shamir share.
    pub fn share(&self) -> Share {
        Share {
            x: self.x,
            y: self.y,
        }
    }
}

/// A holder's answer to an unmask request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reveal {
    /// The holder.
    pub office: String,
    /// The month.
    pub month: Month,
    /// [`digest`] of the survivors it answers for.
    #[serde(with = "b64::array")]
    pub survivors: [u8; 32],
    /// Shares of survivors' self secrets.
    pub own: Vec<Revealed>,
    /// Shares of the mask secrets of offices that did not send.
    pub mask: Vec<Revealed>,
}

/// Every aggregation message, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Office → coordinator.
    Keys(Keys),
    /// Office → holder.
    Shares(Shares),
    /// Coordinator → office.
    Round(Round),
    /// Office → coordinator.
    Masked(Masked),
    /// Coordinator → office.
    Unmask(Unmask),
    /// Holder → coordinator.
    Reveal(Reveal),
}

fn distinct_ids(ids: &[String], max: usize, what: &'static str) -> Result<()> {
    if ids.len() > max {
        return Err(ProtocolError::Invalid(what));
    }
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        check_id(id)?;
        if !seen.insert(id) {
            return Err(ProtocolError::Invalid(what));
        }
    }
    Ok(())
}

fn sorted(ids: &[String], what: &'static str) -> Result<()> {
    if !ids.is_sorted_by(|a, b| a < b) {
        return Err(ProtocolError::Invalid(what));
    }
    Ok(())
}

impl Message {
    /// Who must have signed it: the office it names, or the coordinator.
    pub fn signer(&self) -> &str {
        match self {
            Message::Keys(k) => &k.office,
            Message::Shares(s) => &s.office,
            Message::Masked(m) => &m.office,
            Message::Reveal(r) => &r.office,
            Message::Round(_) | Message::Unmask(_) => COORDINATOR,
        }
    }

    /// Checks limits and shapes (not signatures, not the state of a round).
    pub fn validate(&self) -> Result<()> {
        match self {
            Message::Keys(k) => {
                check_id(&k.office)?;
                distinct_ids(&k.holders, MAX_COHORT, "aggregation holders")?;
                if k.holders.len() < MIN_SURVIVORS - 1 || k.holders.contains(&k.office) {
                    return Err(ProtocolError::Invalid("aggregation holders"));
                }
                if k.months.is_empty() || k.months.len() > MAX_BATCH_MONTHS {
                    return Err(ProtocolError::Invalid("aggregation key months"));
                }
                let d = digest(&k.holders);
                for (i, m) in k.months.iter().enumerate() {
                    m.month.validate()?;
                    if k.months.iter().take(i).any(|o| o.month == m.month)
                        || m.holders != d
                        || m.threshold != threshold_for(k.holders.len())
                    {
                        return Err(ProtocolError::Invalid("aggregation key"));
                    }
                }
                Ok(())
            }
            Message::Shares(s) => {
                check_id(&s.office)?;
                check_id(&s.holder)?;
                if s.months.is_empty() || s.months.len() > MAX_BATCH_MONTHS {
                    return Err(ProtocolError::Invalid("aggregation share months"));
                }
                for (i, m) in s.months.iter().enumerate() {
                    m.month.validate()?;
                    if m.x == 0 || s.months.iter().take(i).any(|o| o.month == m.month) {
                        return Err(ProtocolError::Invalid("aggregation shares"));
                    }
                }
                Ok(())
            }
            Message::Round(r) => {
                r.month.validate()?;
                r.layout.validate()?;
                let ids = r.ids();
                distinct_ids(&ids, MAX_COHORT, "aggregation cohort")?;
                sorted(&ids, "aggregation cohort")?;
                if ids.len() < MIN_SURVIVORS || r.cohort.iter().any(|m| m.key.month != r.month) {
                    return Err(ProtocolError::Invalid("aggregation cohort"));
                }
                Ok(())
            }
            Message::Masked(m) => {
                check_id(&m.office)?;
                m.month.validate()
            }
            Message::Unmask(u) => {
                u.month.validate()?;
                distinct_ids(&u.survivors, MAX_COHORT, "aggregation survivors")?;
                sorted(&u.survivors, "aggregation survivors")?;
                if u.survivors.len() < MIN_SURVIVORS {
                    return Err(ProtocolError::Invalid("aggregation survivors"));
                }
                Ok(())
            }
            Message::Reveal(r) => {
                check_id(&r.office)?;
                r.month.validate()?;
                if r.own.len() + r.mask.len() > MAX_COHORT {
                    return Err(ProtocolError::Invalid("aggregation reveal"));
                }
                for s in r.own.iter().chain(&r.mask) {
                    check_id(&s.office)?;
                    if s.x == 0 {
                        return Err(ProtocolError::Invalid("aggregation reveal"));
                    }
                }
                Ok(())
            }
        }
    }
}

/// The body of an *aggregation* envelope: a [`Message`] as JSON and its
/// signer's Ed25519 signature over `"amparo-aggregation-v1" || message`.
///
/// JSON: `{ "v": 1, "from": id, "message": base64url(JSON),
/// "signature": base64url(64) }`; `from` is an office id or
/// `"coordinator"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMessage {
    /// Who says it signed it.
    pub from: String,
    message: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

#[derive(Serialize, Deserialize)]
struct SignedWire {
    v: u8,
    from: String,
    message: String,
    signature: String,
}

impl SignedMessage {
    /// Validates `message` and signs it. Fails if the whole would not fit
    /// one envelope.
    pub fn sign(message: &Message, key: &ed25519::SigningKey) -> Result<SignedMessage> {
        message.validate()?;
        let json =
            serde_json::to_vec(message).map_err(|e| ProtocolError::json("aggregation", &e))?;
        let signature = key.sign(&[SIGN_CONTEXT, &json]);
        let signed = SignedMessage {
            from: message.signer().to_string(),
            message: json,
            signature,
        };
        let len = signed.to_json()?.len();
        if len > MAX_BODY {
            return Err(ProtocolError::TooLarge {
                what: "aggregation message",
                len,
                max: MAX_BODY,
            });
        }
        Ok(signed)
    }

    /// The envelope body.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(&SignedWire {
            v: VERSION,
            from: self.from.clone(),
            message: b64::encode(&self.message),
            signature: b64::encode(&self.signature),
        })
        .map_err(|e| ProtocolError::json("signed aggregation message", &e))
    }

    /// Parses an envelope body; nothing of the message is read until
    /// [`SignedMessage::verify`].
    pub fn from_json(bytes: &[u8]) -> Result<SignedMessage> {
        if bytes.len() > MAX_BODY {
            return Err(ProtocolError::TooLarge {
                what: "signed aggregation message",
                len: bytes.len(),
                max: MAX_BODY,
            });
        }
        let wire: SignedWire = serde_json::from_slice(bytes)
            .map_err(|e| ProtocolError::json("signed aggregation message", &e))?;
        if wire.v != VERSION {
            return Err(ProtocolError::UnsupportedVersion {
                what: "aggregation message",
                version: u64::from(wire.v),
            });
        }
        if wire.from != COORDINATOR {
            check_id(&wire.from)?;
        }
        Ok(SignedMessage {
            from: wire.from,
            message: b64::decode_vec(&wire.message, MAX_BODY, "aggregation message")?,
            signature: b64::decode_array(&wire.signature, "aggregation signature")?,
        })
    }

    /// Checks the signature with `key` (the key of whom `from` names),
    /// then parses and validates the message, which must be one `from`
    /// may send.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Message> {
        key.verify(
            &[SIGN_CONTEXT, &self.message],
            &self.signature,
            "aggregation message",
        )?;
        let message: Message = serde_json::from_slice(&self.message)
            .map_err(|e| ProtocolError::json("aggregation message", &e))?;
        message.validate()?;
        if message.signer() != self.from {
            return Err(ProtocolError::Invalid(
                "aggregation message signed by another party",
            ));
        }
        Ok(message)
    }
}

/// A vector as base64url of its little-endian `u32`s.
mod vector {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::b64;
    use crate::padding::MAX_BODY;

    pub fn serialize<S: Serializer>(v: &[u32], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        s.serialize_str(&b64::encode(&bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = b64::decode_vec(&text, MAX_BODY, "aggregation vector")
            .map_err(serde::de::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom("aggregation vector length"));
        }
        Ok(bytes
            .chunks_exact(4)
            .filter_map(|c| c.try_into().ok().map(u32::from_le_bytes))
            .collect())
    }
}

/// Makes one office's month: its secrets and its signed key. The caller
/// keeps the secrets and splits them with [`shamir::split`].
pub fn month_key(
    office: &str,
    month: Month,
    holders: &[String],
    key: &ed25519::SigningKey,
    entropy: &mut dyn crate::Entropy,
) -> Result<(Secret, Secret, MonthKey)> {
    let mask_secret = Secret::generate(entropy)?;
    let self_secret = Secret::generate(entropy)?;
    let mut k = MonthKey {
        month,
        mask_key: *mask_key(&mask_secret)?.public_key().as_bytes(),
        commitment: commitment(&self_secret),
        threshold: threshold_for(holders.len()),
        holders: digest(holders),
        signature: [0; SIGNATURE_LEN],
    };
    k.signature = key.sign(&[&k.signed_bytes(office)]);
    Ok((mask_secret, self_secret, k))
}

#[cfg(test)]
mod tests;
