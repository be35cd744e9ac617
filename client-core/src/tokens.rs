//! Admission tokens on the phone (PROTOCOL.md §14.2): asking the relay for
//! them (a focal point, or a facilitator with a voucher), keeping them
//! sealed in the profile, handing them on, and spending one instead of the
//! work when the relay is pressed.
//!
//! A token is spent only when the relay asks for work, and only if it is
//! for a relay key the phone trusts for receipts and for a token key the
//! phone itself read from the relay's public issuer directory — so a relay
//! cannot mark tokens by handing an issuer a key of its own.

use std::sync::{Arc, Mutex};

use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::KeyId;
use amparo_protocol::primitives::ed25519::{SigningKey, VerifyingKey};
use amparo_protocol::token::{self, TOKEN_LEN, Token, TokenKey};
use amparo_protocol::voucher::{self, Voucher};
use amparo_protocol::{UnixTime, b64};
use zeroize::Zeroizing;

use crate::relay::RelayClient;
use crate::store::{ItemKind, Profile};
use crate::{CoreError, Result};

/// Most tokens a profile keeps (about 177 KB sealed): enough for months of
/// reports, bounded against a bundle stuffed with them.
pub const MAX_HELD: usize = 500;
/// What a text of tokens handed on begins with.
pub const TEXT_PREFIX: &str = "amparo-tokens:";

/// The relay's public token keys and the challenge its tokens answer.
#[derive(Debug, Clone)]
pub struct IssuerDirectory {
    /// Current key first.
    pub keys: Vec<TokenKey>,
    /// SHA-256 of the relay's TokenChallenge.
    pub challenge_digest: [u8; 32],
}

/// What paying for admission did during one sync, and the tokens it may
/// spend; shared by the relay client's clones for the sync.
#[derive(Debug, Default)]
pub struct Admission {
    /// Tokens held (spent ones are removed).
    pub tokens: Vec<Token>,
    /// Challenge digests of the relays the phone trusts.
    pub trusted: Vec<[u8; 32]>,
    /// Uploads admitted with a token.
    pub tokens_used: usize,
    /// Tokens the relay refused (spent elsewhere, or of a retired key):
    /// dropped.
    pub tokens_dropped: usize,
    /// Uploads that paid with work.
    pub worked: usize,
    /// Highest effort paid for one upload.
    pub max_effort: u32,
    /// Envelopes left in the outbox because the work asked was more than
    /// a phone pays.
    pub waiting: usize,
    /// The relay's issuer directory, read once per sync (on 2G every
    /// request counts).
    pub(crate) directory: Option<IssuerDirectory>,
    /// The effort per envelope the relay asked last (0: nothing): the
    /// next upload pays it ahead instead of sending its body to be
    /// refused. Kept in the profile between syncs for an hour.
    pub(crate) ahead: u32,
    /// The relay's admission challenge, fetched once per sync.
    pub(crate) challenge: Option<amparo_protocol::admission::Challenge>,
}

/// The admission state of a sync, shared.
pub type SharedAdmission = Arc<Mutex<Admission>>;

impl Admission {
    /// A state holding `tokens`, for relays whose receipt keys are `trusted`.
    pub fn new(tokens: Vec<Token>, trusted: &[VerifyingKey]) -> SharedAdmission {
        Arc::new(Mutex::new(Admission {
            tokens,
            trusted: trusted
                .iter()
                .map(|k| token::challenge_digest(&KeyId::for_key(k)))
                .collect(),
            ..Admission::default()
        }))
    }

    /// Takes a token the relay's issuer directory vouches for.
    pub(crate) fn take(&mut self, directory: &IssuerDirectory) -> Option<Token> {
        if !self.trusted.contains(&directory.challenge_digest) {
            return None;
        }
        let at = self.tokens.iter().position(|t| {
            t.challenge_digest == directory.challenge_digest
                && directory.keys.iter().any(|k| k.id() == t.key_id)
        })?;
        Some(self.tokens.remove(at))
    }
}

fn encode_tokens(tokens: &[Token]) -> Vec<u8> {
    tokens.iter().flat_map(|t| t.encode()).collect()
}

fn decode_tokens(bytes: &[u8]) -> Result<Vec<Token>> {
    if !bytes.len().is_multiple_of(TOKEN_LEN) {
        return Err(CoreError::Corrupt("tokens"));
    }
    bytes
        .chunks_exact(TOKEN_LEN)
        .map(|c| Token::decode(c).map_err(CoreError::from))
        .collect()
}

/// What paying for admission did in one sync, for the app to show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paid {
    /// Uploads admitted with a token.
    pub tokens_used: usize,
    /// Uploads that paid with work.
    pub worked: usize,
    /// Highest effort paid for one upload.
    pub max_effort: u32,
    /// Envelopes left in the outbox because the relay asked more work than
    /// a phone pays ("waiting for the relay").
    pub waiting: usize,
}

/// A facilitator's own key for asking tokens, and its voucher.
struct CarryKey {
    key: SigningKey,
    voucher: Option<Voucher>,
}

impl Profile {
    fn purse_id(&self) -> [u8; 16] {
        self.fixed_id(b"token-purse")
    }

    fn carry_key_id(&self) -> [u8; 16] {
        self.fixed_id(b"token-carry-key")
    }

    fn pressure_id(&self) -> [u8; 16] {
        self.fixed_id(b"relay-pressure")
    }

    /// The admission state for one sync: this profile's tokens, for the
    /// relays whose receipt keys are `relay_keys`, and the effort the relay
    /// asked in the last hour.
    pub(crate) fn admission_for(&self, relay_keys: &[VerifyingKey]) -> Result<SharedAdmission> {
        let shared = Admission::new(self.tokens()?, relay_keys);
        let ahead = self.remembered_pressure(crate::store::system_now())?;
        if let Ok(mut a) = shared.lock() {
            a.ahead = ahead;
        }
        Ok(shared)
    }

    /// The effort per envelope the relay asked within the hour before
    /// `now` (0 if none). Only the hour is kept: the phone's own clock says
    /// when it last met a pressed relay, no closer than that.
    fn remembered_pressure(&self, now: UnixTime) -> Result<u32> {
        let Some((_, v)) = self.get_item(ItemKind::Tokens, &self.pressure_id())? else {
            return Ok(0);
        };
        let (Some(e), Some(h)) = (v.get(..4), v.get(4..8)) else {
            return Err(CoreError::Corrupt("relay pressure"));
        };
        let effort = u32::from_be_bytes(
            e.try_into()
                .map_err(|_| CoreError::Corrupt("relay pressure"))?,
        );
        let hour = u32::from_be_bytes(
            h.try_into()
                .map_err(|_| CoreError::Corrupt("relay pressure"))?,
        );
        let now_hour = u32::try_from(now.0 / 3600).unwrap_or(u32::MAX);
        Ok(if now_hour.saturating_sub(hour) <= 1 {
            effort
        } else {
            0
        })
    }

    fn remember_pressure(&self, effort: u32, now: UnixTime) -> Result<()> {
        let hour = u32::try_from(now.0 / 3600).unwrap_or(u32::MAX);
        let mut v = effort.to_be_bytes().to_vec();
        v.extend_from_slice(&hour.to_be_bytes());
        self.put_item(ItemKind::Tokens, &self.pressure_id(), 0, &v)
    }

    /// After a sync: keeps the tokens not spent (or refused) and the effort
    /// the relay asked last, and says what paying did.
    pub(crate) fn settle_admission(&self, shared: &SharedAdmission) -> Result<Paid> {
        let a = shared
            .lock()
            .map_err(|_| CoreError::Invalid("admission state"))?;
        if a.tokens_used + a.tokens_dropped > 0 {
            self.set_tokens(&a.tokens)?;
        }
        let now = crate::store::system_now();
        if a.ahead != self.remembered_pressure(now)? {
            self.remember_pressure(a.ahead, now)?;
        }
        Ok(Paid {
            tokens_used: a.tokens_used,
            worked: a.worked,
            max_effort: a.max_effort,
            waiting: a.waiting,
        })
    }

    /// The admission tokens this profile holds.
    pub fn tokens(&self) -> Result<Vec<Token>> {
        match self.get_item(ItemKind::Tokens, &self.purse_id())? {
            Some((_, bytes)) => decode_tokens(&bytes),
            None => Ok(Vec::new()),
        }
    }

    /// Replaces the tokens held.
    pub(crate) fn set_tokens(&self, tokens: &[Token]) -> Result<()> {
        let keep = tokens.get(..MAX_HELD).unwrap_or(tokens);
        self.put_item(ItemKind::Tokens, &self.purse_id(), 0, &encode_tokens(keep))
    }

    /// Adds tokens (each once), up to [`MAX_HELD`]; returns how many were new.
    pub fn add_tokens(&self, new: &[Token]) -> Result<usize> {
        let mut held = self.tokens()?;
        let before = held.len();
        for t in new {
            if held.len() >= MAX_HELD {
                break;
            }
            if !held.contains(t) {
                held.push(t.clone());
            }
        }
        let added = held.len() - before;
        if added > 0 {
            self.set_tokens(&held)?;
        }
        Ok(added)
    }

    /// Removes up to `n` tokens to hand on (in person, or in a bundle).
    pub fn take_tokens(&self, n: usize) -> Result<Vec<Token>> {
        let mut held = self.tokens()?;
        let n = n.min(held.len());
        let taken: Vec<Token> = held.drain(..n).collect();
        if !taken.is_empty() {
            self.set_tokens(&held)?;
        }
        Ok(taken)
    }

    /// Removes up to `n` tokens as a text to hand on (`amparo-tokens:` and
    /// base64url), for a QR code or a message.
    pub fn export_tokens(&self, n: usize) -> Result<Option<String>> {
        let taken = self.take_tokens(n)?;
        if taken.is_empty() {
            return Ok(None);
        }
        Ok(Some(format!(
            "{TEXT_PREFIX}{}",
            b64::encode(&encode_tokens(&taken))
        )))
    }

    /// Keeps the tokens of a text made by [`Profile::export_tokens`];
    /// returns how many were new.
    pub fn import_tokens(&self, text: &str) -> Result<usize> {
        let body = text
            .trim()
            .strip_prefix(TEXT_PREFIX)
            .ok_or(CoreError::Invalid("not a text of admission tokens"))?;
        let bytes = b64::decode_vec(body, MAX_HELD * TOKEN_LEN, "admission tokens")
            .map_err(|_| CoreError::Invalid("admission tokens"))?;
        let tokens = decode_tokens(&bytes).map_err(|_| CoreError::Invalid("admission tokens"))?;
        self.add_tokens(&tokens)
    }

    /// This focal point's signing key, if the profile is one.
    fn focal_signing(&self) -> Result<Option<SigningKey>> {
        self.focal_keys_if_any()?
            .map(|keys| {
                Ok(SigningKey::from_seed(
                    &keys.signing().dangerously_export_seed(),
                )?)
            })
            .transpose()
    }

    fn carry_key(&self) -> Result<CarryKey> {
        if let Some((_, bytes)) = self.get_item(ItemKind::Tokens, &self.carry_key_id())? {
            let (seed, rest) = bytes
                .split_first_chunk::<32>()
                .ok_or(CoreError::Corrupt("carry key"))?;
            let key = SigningKey::from_seed(seed)?;
            let voucher = if rest.is_empty() {
                None
            } else {
                Some(Voucher::decode(rest)?)
            };
            return Ok(CarryKey { key, voucher });
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        amparo_protocol::Entropy::fill(&mut SystemEntropy::new(), &mut seed[..])?;
        let key = SigningKey::from_seed(&seed)?;
        self.put_item(ItemKind::Tokens, &self.carry_key_id(), 0, &seed[..])?;
        Ok(CarryKey { key, voucher: None })
    }

    /// A facilitator's public key for vouchers (made the first time).
    /// A focal point vouches for it with [`Profile::vouch`]; it is no
    /// mailbox's and appears in no directory.
    pub fn carry_public_key(&self) -> Result<VerifyingKey> {
        Ok(self.carry_key()?.key.verifying_key())
    }

    /// Keeps a voucher for this profile's carry key.
    pub fn set_voucher(&self, text: &str, now: UnixTime) -> Result<Voucher> {
        let v = Voucher::from_header(text).map_err(|_| CoreError::Invalid("voucher"))?;
        let carry = self.carry_key()?;
        if v.facilitator != carry.key.verifying_key() {
            return Err(CoreError::Invalid(
                "this voucher is for another phone's key",
            ));
        }
        if now >= v.valid_until {
            return Err(CoreError::Invalid("this voucher has expired"));
        }
        let seed = carry.key.dangerously_export_seed();
        let value = [&seed[..], &v.encode()[..]].concat();
        self.put_item(ItemKind::Tokens, &self.carry_key_id(), 0, &value)?;
        Ok(v)
    }

    /// The voucher held, if any.
    pub fn voucher(&self) -> Result<Option<Voucher>> {
        Ok(self.carry_key()?.voucher)
    }

    /// A focal point vouches for a facilitator's key for `days` (1 to 92)
    /// from `now`, with its own signing key.
    pub fn vouch(&self, facilitator: &VerifyingKey, days: u64, now: UnixTime) -> Result<Voucher> {
        let key = self
            .focal_signing()?
            .ok_or(CoreError::Invalid("only a focal point can vouch"))?;
        let until = UnixTime(now.0.saturating_add(days.saturating_mul(86_400)));
        if days == 0 || until.0 - now.0 > voucher::MAX_SECONDS {
            return Err(CoreError::Invalid("a voucher lasts 1 to 92 days"));
        }
        Ok(Voucher::sign(facilitator, now, until, &key)?)
    }

    /// Asks the relay for `count` tokens (at most [`token::MAX_BATCH`] per
    /// request; more are asked in turn), signed with this focal point's key
    /// or this facilitator's carry key and voucher, and keeps them. The
    /// relay's challenge must be one of `relay_keys` (its receipt keys).
    pub async fn request_tokens(
        &self,
        relay: &RelayClient,
        relay_keys: &[VerifyingKey],
        count: usize,
        now: UnixTime,
    ) -> Result<usize> {
        let (key, voucher) = match self.focal_signing()? {
            Some(key) => (key, None),
            None => {
                let carry = self.carry_key()?;
                let v = carry.voucher.ok_or(CoreError::Invalid(
                    "no voucher: ask a focal point to vouch for this phone",
                ))?;
                (carry.key, Some(v))
            }
        };
        let directory = relay.issuer_directory().await?;
        let relay_key = relay_keys
            .iter()
            .find(|k| token::challenge_digest(&KeyId::for_key(k)) == directory.challenge_digest)
            .ok_or(CoreError::Invalid(
                "the relay's tokens are not for a relay key this phone trusts",
            ))?;
        let token_key = directory
            .keys
            .first()
            .ok_or(CoreError::Invalid("the relay publishes no token key"))?;
        let room = MAX_HELD.saturating_sub(self.tokens()?.len());
        let mut left = count.min(room);
        let mut added = 0;
        while left > 0 {
            let n = left.min(token::MAX_BATCH);
            let tokens = relay
                .issue_tokens(
                    &key,
                    voucher.as_ref(),
                    token_key,
                    &KeyId::for_key(relay_key),
                    n,
                    now,
                )
                .await?;
            added += self.add_tokens(&tokens)?;
            left -= n;
        }
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KdfParams;
    use amparo_protocol::entropy::DangerousSeededEntropy;
    use amparo_protocol::token::IssuerKey;

    fn tokens(n: usize) -> Vec<Token> {
        let mut e = DangerousSeededEntropy::new(b"purse");
        let issuer = IssuerKey::generate(&mut e).unwrap();
        let relay = KeyId([1; 8]);
        (0..n)
            .map(|_| {
                let (req, pending) = token::begin(issuer.public(), &relay, &mut e).unwrap();
                token::finish(&pending, &issuer.sign(&req, &mut e).unwrap()).unwrap()
            })
            .collect()
    }

    #[test]
    fn tokens_are_kept_sealed_handed_on_and_taken_in_again_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = Profile::create(dir.path(), "1234", KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
        let ts = tokens(3);
        assert_eq!(p.add_tokens(&ts).unwrap(), 3);
        assert_eq!(p.add_tokens(&ts).unwrap(), 0);
        let text = p.export_tokens(2).unwrap().unwrap();
        assert_eq!(p.tokens().unwrap().len(), 1);
        assert_eq!(p.import_tokens(&text).unwrap(), 2);
        assert_eq!(p.tokens().unwrap().len(), 3);
        assert!(p.import_tokens("amparo-tokens:AAAA").is_err());
        // In a return bundle: they leave the facilitator, the survivor keeps
        // each once.
        let other = Profile::create(
            &dir.path().join("survivor"),
            "5678",
            KdfParams::DANGEROUSLY_FAST_FOR_TESTS,
        )
        .unwrap();
        let bundle = p.export_return_bundle_with_tokens(2).unwrap();
        assert_eq!(p.tokens().unwrap().len(), 1);
        let coordinator = SigningKey::from_seed(&[3; 32]).unwrap().verifying_key();
        let got = other.import_bundle(&bundle, &coordinator, &[]).unwrap();
        assert_eq!(got.tokens, 2);
        assert_eq!(
            other
                .import_bundle(&bundle, &coordinator, &[])
                .unwrap()
                .tokens,
            0
        );
        assert_eq!(other.tokens().unwrap().len(), 2);
        p.add_tokens(&other.take_tokens(2).unwrap()).unwrap();
        assert!(p.import_tokens("hello").is_err());
        // The database file holds no token in clear.
        drop(p);
        drop(other);
        let mut raw = Vec::new();
        for sub in [dir.path().to_path_buf(), dir.path().join("survivor")] {
            for entry in std::fs::read_dir(sub).unwrap() {
                raw.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
            }
        }
        for t in &ts {
            assert!(!raw.windows(32).any(|w| w == t.nonce));
            assert!(!raw.windows(32).any(|w| w == &t.authenticator[..32]));
        }
    }
}
