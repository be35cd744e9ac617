//! Admission tokens on the relay (PROTOCOL.md §14.2): issuing them, blind,
//! to focal points and vouched facilitators, and spending them once.
//!
//! The issuer key of each 30-day key epoch is made by whichever relay first
//! needs it and kept in the store, sealed under a key derived from the
//! receipt key — so every relay process on one database signs and checks
//! with the same key, and a copy of the database alone mints nothing. The
//! relay keeps, per token spent, a 16-byte nullifier until its key retires;
//! per issuer and day, a count under a keyed hash of the issuer's key (so
//! the table does not list who issued). It never keeps a token, a blinded
//! request, or anything that joins the two.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::KeyId;
use amparo_protocol::primitives::ed25519::{SigningKey, VerifyingKey};
use amparo_protocol::primitives::{aead, sha256, sha256_prefix};
use amparo_protocol::token::{self, IssuerKey, Token, TokenKey};
use amparo_protocol::voucher::Voucher;
use amparo_protocol::{UnixTime, directory};
use zeroize::Zeroizing;

use crate::store::{Store, StoreError};

/// On an accepted upload: the token it carried was spent (absent when the
/// relay did not need it, or gave it back because nothing was stored).
pub const SPENT_HEADER: &str = "amparo-token-spent";
/// Default tokens a focal point may be issued per day.
pub const DEFAULT_FOCAL_PER_DAY: u32 = 1000;
/// Default tokens a vouched facilitator may be issued per day.
pub const DEFAULT_FACILITATOR_PER_DAY: u32 = 200;
/// How long the focal points read from the directory are trusted before
/// the directory is read again (issuance never parses it per request).
const ISSUERS_TTL: Duration = Duration::from_secs(60);
const WRAP_CONTEXT: &[u8] = b"amparo-token-key-wrap-v1";
const TAG_CONTEXT: &[u8] = b"amparo-token-issuer-v1";

/// How many tokens each kind of issuer may be issued per day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLimits {
    /// Per focal point.
    pub focal_per_day: u32,
    /// Per vouched facilitator.
    pub facilitator_per_day: u32,
}

impl Default for TokenLimits {
    fn default() -> Self {
        TokenLimits {
            focal_per_day: DEFAULT_FOCAL_PER_DAY,
            facilitator_per_day: DEFAULT_FACILITATOR_PER_DAY,
        }
    }
}

/// Why a redeemed token does not admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// Not a token of this relay's current or previous key, or its
    /// signature does not hold.
    Invalid,
    /// Already spent.
    Spent,
}

/// Who asks for tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuer {
    /// A focal point of the current directory.
    FocalPoint,
    /// A facilitator vouched for by a focal point or the coordinator.
    Facilitator,
}

/// Why an issuance is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotIssuer {
    /// The key is no focal point's, and no voucher came.
    Unknown,
    /// The voucher is not for this key, not in force, or not signed by a
    /// focal point or the coordinator.
    BadVoucher,
}

/// How long the relay trusts that an epoch has no usable token key before
/// it reads the store again: anyone can offer a token or read the issuer
/// directory, and neither may cost a database read (or a log line) each.
const MISSING_TTL: Duration = Duration::from_secs(10);

/// What the relay knows of one epoch's token key.
#[derive(Clone)]
enum Held {
    /// The key.
    Key(Arc<IssuerKey>),
    /// None is stored (as of then).
    Absent(Instant),
    /// One is stored but sealed under another receipt key (as of then).
    Unreadable(Instant),
}

impl Held {
    /// Whether this is still worth believing without reading the store.
    fn fresh(&self) -> bool {
        match self {
            Held::Key(_) => true,
            Held::Absent(at) | Held::Unreadable(at) => at.elapsed() < MISSING_TTL,
        }
    }

    fn key(self) -> Option<Arc<IssuerKey>> {
        match self {
            Held::Key(k) => Some(k),
            _ => None,
        }
    }
}

struct Issuers {
    read: Instant,
    focal: Vec<[u8; 32]>,
}

/// The relay's token keys and policy.
pub struct Tokens {
    relay: KeyId,
    digest: [u8; 32],
    wrap: Zeroizing<[u8; 32]>,
    tag_key: Zeroizing<[u8; 32]>,
    keys: Mutex<HashMap<u32, Held>>,
    making: tokio::sync::Mutex<()>,
    issuers: Mutex<Option<Issuers>>,
    coordinator: Option<VerifyingKey>,
    limits: TokenLimits,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

fn derived(receipt_key: &SigningKey, context: &[u8]) -> Zeroizing<[u8; 32]> {
    // Ed25519 signatures are deterministic: every process holding the
    // receipt key derives the same secret, and nobody else can.
    let sig = receipt_key.sign(&[context]);
    Zeroizing::new(sha256(&[context, &sig]))
}

impl Tokens {
    /// The token policy of the relay whose receipt key is `receipt_key`.
    pub fn new(
        receipt_key: &SigningKey,
        coordinator: Option<VerifyingKey>,
        limits: TokenLimits,
    ) -> Tokens {
        let relay = KeyId::for_key(&receipt_key.verifying_key());
        Tokens {
            relay,
            digest: token::challenge_digest(&relay),
            wrap: derived(receipt_key, WRAP_CONTEXT),
            tag_key: derived(receipt_key, TAG_CONTEXT),
            keys: Mutex::new(HashMap::new()),
            making: tokio::sync::Mutex::new(()),
            issuers: Mutex::new(None),
            coordinator,
            limits,
        }
    }

    /// The relay's TokenChallenge (RFC 9577), the same for every token.
    pub fn challenge(&self) -> Vec<u8> {
        token::token_challenge(&self.relay)
    }

    fn cached(&self, epoch: u32) -> Option<Held> {
        self.keys
            .lock()
            .ok()?
            .get(&epoch)
            .filter(|h| h.fresh())
            .cloned()
    }

    fn remember(&self, epoch: u32, held: Held) {
        if let Ok(mut keys) = self.keys.lock() {
            // Two epochs are in use at a time; older ones go.
            keys.retain(|e, _| e.saturating_add(1) >= epoch);
            keys.insert(epoch, held);
        }
    }

    /// Reads `epoch`'s key from the store (and remembers what it found).
    async fn load<S: Store>(&self, store: &S, epoch: u32) -> Result<Held, StoreError> {
        let held = match store.token_key(epoch).await? {
            None => Held::Absent(Instant::now()),
            Some(sealed) => match self.unseal(epoch, &sealed) {
                Ok(key) => Held::Key(Arc::new(key)),
                Err(e) => {
                    // Sealed under another receipt key (the key file was
                    // replaced): this relay cannot use that epoch's tokens.
                    // They are refused as bad, so phones fall back to work,
                    // rather than every pressed upload failing; said once in
                    // ten seconds at most.
                    tracing::error!(epoch, error = %e, "token key unreadable with this receipt key; its tokens are refused");
                    Held::Unreadable(Instant::now())
                }
            },
        };
        self.remember(epoch, held.clone());
        Ok(held)
    }

    fn seal(&self, epoch: u32, key: &IssuerKey) -> Result<Vec<u8>, StoreError> {
        let der = key.to_der().map_err(|_| StoreError::Range("token key"))?;
        let mut nonce = [0u8; 12];
        amparo_protocol::entropy::Entropy::fill(&mut SystemEntropy::new(), &mut nonce)
            .map_err(|_| StoreError::Range("entropy"))?;
        let sealed = aead::seal(&self.wrap, &nonce, &epoch.to_be_bytes(), &der)
            .map_err(|_| StoreError::Range("token key"))?;
        Ok([&nonce[..], &sealed].concat())
    }

    fn unseal(&self, epoch: u32, sealed: &[u8]) -> Result<IssuerKey, StoreError> {
        let (nonce, body) = sealed
            .split_first_chunk::<12>()
            .ok_or(StoreError::Range("token key"))?;
        let der = Zeroizing::new(
            aead::open(&self.wrap, nonce, &epoch.to_be_bytes(), body)
                // Another receipt key sealed it: this relay cannot use the
                // database's token keys (an operator's mistake, logged).
                .map_err(|_| StoreError::Range("token key sealed under another receipt key"))?,
        );
        IssuerKey::from_der(&der).map_err(|_| StoreError::Range("token key"))
    }

    /// The issuer key of `epoch` if one was made (for checking tokens:
    /// nothing is made for an epoch no token could come from).
    pub async fn existing<S: Store>(
        &self,
        store: &S,
        epoch: u32,
    ) -> Result<Option<Arc<IssuerKey>>, StoreError> {
        let held = match self.cached(epoch) {
            Some(h) => h,
            None => self.load(store, epoch).await?,
        };
        Ok(held.key())
    }

    /// The issuer key of `epoch`, made (once, by one relay of those sharing
    /// the store) if there is none yet.
    pub async fn issuer<S: Store>(
        &self,
        store: &S,
        epoch: u32,
    ) -> Result<Arc<IssuerKey>, StoreError> {
        let unreadable = StoreError::Range("token key sealed under another receipt key");
        match self.cached(epoch) {
            Some(Held::Key(k)) => return Ok(k),
            // No key is made over an unreadable one (anyone can ask for
            // the issuer directory; none of them may cost a key).
            Some(Held::Unreadable(_)) => return Err(unreadable),
            _ => {}
        }
        let _one_at_a_time = self.making.lock().await;
        match self.load(store, epoch).await? {
            Held::Key(k) => return Ok(k),
            Held::Unreadable(_) => return Err(unreadable),
            Held::Absent(_) => {}
        }
        let made = tokio::task::spawn_blocking(|| IssuerKey::generate(&mut SystemEntropy::new()))
            .await
            .map_err(|_| StoreError::Range("token key"))?
            .map_err(|_| StoreError::Range("token key"))?;
        let sealed = self.seal(epoch, &made)?;
        // Another relay may have stored one first: the one on record wins
        // (if it cannot be read with this relay's receipt key, issuance
        // fails until the next key epoch, and says why in the log).
        let on_record = store.put_token_key(epoch, &sealed).await?;
        let key = Arc::new(self.unseal(epoch, &on_record)?);
        tracing::info!(epoch, "token issuer key in use");
        self.remember(epoch, Held::Key(key.clone()));
        Ok(key)
    }

    /// The public keys a token may be checked against at `now` (the
    /// current epoch's, made if needed, and the previous one's if any),
    /// newest first, with their epochs.
    pub async fn public_keys<S: Store>(
        &self,
        store: &S,
        now: UnixTime,
    ) -> Result<Vec<(u32, TokenKey)>, StoreError> {
        let epoch = token::key_epoch(now.0);
        let mut out = vec![(epoch, self.issuer(store, epoch).await?.public().clone())];
        if let Some(prev) = epoch.checked_sub(1)
            && let Some(k) = self.existing(store, prev).await?
        {
            out.push((prev, k.public().clone()));
        }
        Ok(out)
    }

    /// Checks a token offered with an upload and spends it. The answer is
    /// the nullifier recorded (to be given back with
    /// [`Store::unspend_token`] if the upload then stores nothing).
    pub async fn spend<S: Store>(
        &self,
        store: &S,
        header: &[u8],
        now: UnixTime,
    ) -> Result<Result<[u8; 16], Spend>, StoreError> {
        let Ok(text) = std::str::from_utf8(header) else {
            return Ok(Err(Spend::Invalid));
        };
        let Ok(token) = Token::from_header(text) else {
            return Ok(Err(Spend::Invalid));
        };
        let epoch = token::key_epoch(now.0);
        for e in [Some(epoch), epoch.checked_sub(1)].into_iter().flatten() {
            let Some(key) = self.existing(store, e).await? else {
                continue;
            };
            if key.public().id() != token.key_id {
                continue;
            }
            if key.public().verify(&token, &self.digest).is_err() {
                return Ok(Err(Spend::Invalid));
            }
            let nullifier = token.nullifier();
            return Ok(if store.spend_token(&nullifier, e).await? {
                Ok(nullifier)
            } else {
                Err(Spend::Spent)
            });
        }
        Ok(Err(Spend::Invalid))
    }

    /// Who `key` is as an issuer: a focal point of the directory in force,
    /// or a facilitator with a `voucher` for it from one (or from the
    /// coordinator), in force at `now`.
    pub async fn issuer_kind<S: Store>(
        &self,
        store: &S,
        key: &VerifyingKey,
        voucher: Option<&Voucher>,
        now: UnixTime,
    ) -> Result<Result<Issuer, NotIssuer>, StoreError> {
        let focal = self.focal_keys(store, now).await?;
        if focal.contains(key.as_bytes()) {
            return Ok(Ok(Issuer::FocalPoint));
        }
        let Some(v) = voucher else {
            return Ok(Err(NotIssuer::Unknown));
        };
        let trusted = focal.contains(v.voucher.as_bytes()) || self.coordinator == Some(v.voucher);
        if v.facilitator != *key || !v.in_force(now) || !trusted {
            return Ok(Err(NotIssuer::BadVoucher));
        }
        Ok(Ok(Issuer::Facilitator))
    }

    async fn focal_keys<S: Store>(
        &self,
        store: &S,
        now: UnixTime,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        if let Ok(held) = self.issuers.lock()
            && let Some(i) = held.as_ref()
            && i.read.elapsed() < ISSUERS_TTL
        {
            return Ok(i.focal.clone());
        }
        let mut focal = Vec::new();
        if let (Some(coordinator), Some((_, bytes))) = (self.coordinator, store.directory().await?)
            && let Ok(signed) = directory::SignedDirectory::verify(&bytes, &coordinator)
        {
            focal = signed
                .directory()
                .focal_points
                .iter()
                .filter(|f| f.is_valid_at(now))
                .map(|f| f.keys.signing_key)
                .collect();
        }
        if let Ok(mut held) = self.issuers.lock() {
            *held = Some(Issuers {
                read: Instant::now(),
                focal: focal.clone(),
            });
        }
        Ok(focal)
    }

    /// The tokens `kind` may be issued per day.
    pub fn daily_limit(&self, kind: Issuer) -> u32 {
        match kind {
            Issuer::FocalPoint => self.limits.focal_per_day,
            Issuer::Facilitator => self.limits.facilitator_per_day,
        }
    }

    /// What the issuance count is kept under for `key`: a keyed hash, so
    /// the table does not say which keys asked.
    pub fn issuer_tag(&self, key: &VerifyingKey) -> [u8; 16] {
        sha256_prefix(&[TAG_CONTEXT, &self.tag_key[..], key.as_bytes()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use amparo_protocol::entropy::DangerousSeededEntropy;

    #[tokio::test]
    async fn a_relay_with_another_receipt_key_refuses_the_old_tokens_without_failing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in(dir.path()).await.unwrap();
        let now = UnixTime(1_790_000_000);
        let a = SigningKey::from_seed(&[1; 32]).unwrap();
        let old = Tokens::new(&a, None, TokenLimits::default());
        let key = old.issuer(&store, token::key_epoch(now.0)).await.unwrap();
        let mut e = DangerousSeededEntropy::new(b"tokens");
        let relay = KeyId::for_key(&a.verifying_key());
        let (req, pending) = token::begin(key.public(), &relay, &mut e).unwrap();
        let t = token::finish(&pending, &key.sign(&req, &mut e).unwrap()).unwrap();
        let header = t.to_header();
        assert!(
            old.spend(&store, header.as_bytes(), now)
                .await
                .unwrap()
                .is_ok()
        );
        assert_eq!(
            old.spend(&store, header.as_bytes(), now).await.unwrap(),
            Err(Spend::Spent)
        );
        // The key file replaced: the same database, another receipt key.
        let b = SigningKey::from_seed(&[2; 32]).unwrap();
        let new = Tokens::new(&b, None, TokenLimits::default());
        assert_eq!(
            new.spend(&store, header.as_bytes(), now).await.unwrap(),
            Err(Spend::Invalid)
        );
        assert!(new.public_keys(&store, now).await.is_err());
    }
}
