//! Admission tokens (PROTOCOL.md §14.2): Privacy Pass publicly verifiable
//! tokens, RFC 9578 token type 0x0002 — blind RSA (RFC 9474,
//! RSABSSA-SHA384-PSS-Deterministic) with a 2048-bit key.
//!
//! Work (§14) is what an anonymous phone pays when the relay is pressed;
//! a token is what a trusted person paid for her in advance. The relay
//! signs *blinded* token requests for focal points and vouched facilitators,
//! who hand the finished tokens on; a token redeemed later cannot be joined
//! to its issuance (the relay never saw its nonce or its signature), and it
//! spends once (the relay keeps its [`Token::nullifier`] until its key
//! retires).
//!
//! Formats are the RFC's, so Privacy Pass tooling reads them:
//!
//! ```text
//! TokenChallenge = 0x0002 || u16 len || issuer_name || u8 0 (no redemption
//!                  context) || u16 0 (no origin info)
//! issuer_name    = "amparo-relay-" || hex(relay receipt key id)
//! TokenRequest   = 0x0002 || truncated_token_key_id (1) || blinded_msg (256)
//! TokenResponse  = blind_sig (256)
//! Token          = 0x0002 || nonce (32) || challenge_digest (32)
//!                  || token_key_id (32) || authenticator (256)
//! token_key_id   = SHA-256(the issuer key's SubjectPublicKeyInfo, id-RSASSA-PSS)
//! ```
//!
//! The challenge names only the relay, with no redemption context, so
//! tokens can be issued in batches days ahead and carried to people with
//! no network (RFC 9577 §2.1.1 "cross-origin, non-interactive").

use blind_rsa_signatures::reexports::rsa::rand_core::{Infallible, TryCryptoRng, TryRng};
use blind_rsa_signatures::{
    BlindSignature, BlindingResult, KeyPairSha384PSSDeterministic, PublicKeySha384PSSDeterministic,
    Secret, SecretKeySha384PSSDeterministic, Signature,
};
use zeroize::Zeroizing;

use crate::codec::Reader;
use crate::entropy::{Entropy, random};
use crate::keys::KeyId;
use crate::primitives::sha256;
use crate::{ProtocolError, Result, b64};

/// Privacy Pass token type: publicly verifiable, blind RSA 2048.
pub const TOKEN_TYPE: u16 = 0x0002;
/// Bytes of an RSA-2048 signature, blinded message or modulus (`Nk`).
pub const NK: usize = 256;
/// Length of a token.
pub const TOKEN_LEN: usize = 2 + 32 + 32 + 32 + NK;
/// Length of one token request.
pub const REQUEST_LEN: usize = 2 + 1 + NK;
/// Length of one token response.
pub const RESPONSE_LEN: usize = NK;
/// Length of the issuer key's SubjectPublicKeyInfo (RFC 9578 §6.5).
pub const SPKI_LEN: usize = SPKI_PREFIX.len() + NK + 5;
/// Most tokens asked in one issuance request.
pub const MAX_BATCH: usize = 32;
/// Length of an issuer key's period: a new key every 30 days. A token of
/// the key before the current one is still good, so a token lasts 30 to 60
/// days, and the spent set never holds more than two keys' worth.
pub const KEY_EPOCH_SECONDS: u64 = 30 * 86_400;
/// `Authorization` scheme of a redeemed token (RFC 9577 §2.2).
pub const AUTH_SCHEME: &str = "PrivateToken";

const ISSUER_PREFIX: &str = "amparo-relay-";
const NULLIFIER_CONTEXT: &[u8] = b"amparo-token-spent-v1";

/// The SubjectPublicKeyInfo of an RSASSA-PSS key with SHA-384, MGF1-SHA-384
/// and a 48-byte salt, up to the modulus (RFC 9578 §6.5, as its test
/// vectors encode it: hash parameters absent, not NULL): SEQUENCE, AlgorithmIdentifier(id-RSASSA-PSS,
/// RSASSA-PSS-params), BIT STRING, and the RSAPublicKey's header.
const SPKI_PREFIX: [u8; 81] = [
    0x30, 0x82, 0x01, 0x52, 0x30, 0x3d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
    0x0a, 0x30, 0x30, 0xa0, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
    0x02, 0x02, 0xa1, 0x1a, 0x30, 0x18, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
    0x08, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0xa2, 0x03,
    0x02, 0x01, 0x30, 0x03, 0x82, 0x01, 0x0f, 0x00, 0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01,
    0x00,
];
/// The public exponent 65537 as the RSAPublicKey ends.
const SPKI_EXPONENT: [u8; 5] = [0x02, 0x03, 0x01, 0x00, 0x01];
/// The rsaEncryption SubjectPublicKeyInfo of a 2048-bit key up to its
/// modulus, as the RSA library reads and writes it.
const RSA_SPKI_PREFIX: [u8; 33] = [
    0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
    0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00, 0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01,
    0x00,
];

type Public = PublicKeySha384PSSDeterministic;

fn rsa_error(_: blind_rsa_signatures::Error) -> ProtocolError {
    ProtocolError::InvalidKey("token issuer key")
}

/// A generator for the RSA library seeded from [`Entropy`]: SHA-256 in
/// counter mode over 32 bytes drawn once, so the library's infallible RNG
/// interface never has to invent randomness when the system's fails (the
/// failure is reported before any of it is used).
struct Drbg {
    key: Zeroizing<[u8; 32]>,
    counter: u64,
}

impl Drbg {
    fn new(entropy: &mut dyn Entropy) -> Result<Drbg> {
        Ok(Drbg {
            key: Zeroizing::new(random::<32>(entropy)?),
            counter: 0,
        })
    }
}

impl TryRng for Drbg {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> std::result::Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> std::result::Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), Infallible> {
        for chunk in dest.chunks_mut(32) {
            let block = sha256(&[
                b"amparo-token-drbg",
                &self.key[..],
                &self.counter.to_be_bytes(),
            ]);
            self.counter = self.counter.wrapping_add(1);
            for (out, b) in chunk.iter_mut().zip(block) {
                *out = b;
            }
        }
        Ok(())
    }
}

impl TryCryptoRng for Drbg {}

/// The TokenChallenge of the relay whose receipt key is `relay` (RFC 9577
/// §2.1): every token of that relay answers it.
pub fn token_challenge(relay: &KeyId) -> Vec<u8> {
    let name: String = relay.0.iter().map(|b| format!("{b:02x}")).collect();
    let issuer = format!("{ISSUER_PREFIX}{name}");
    let mut out = Vec::with_capacity(2 + 2 + issuer.len() + 1 + 2);
    out.extend_from_slice(&TOKEN_TYPE.to_be_bytes());
    // The issuer name is 13 + 16 bytes: its length fits.
    out.extend_from_slice(&(issuer.len() as u16).to_be_bytes());
    out.extend_from_slice(issuer.as_bytes());
    out.push(0); // redemption_context: empty
    out.extend_from_slice(&0u16.to_be_bytes()); // origin_info: empty
    out
}

/// SHA-256 of the relay's TokenChallenge, as a token carries it.
pub fn challenge_digest(relay: &KeyId) -> [u8; 32] {
    sha256(&[&token_challenge(relay)])
}

/// An issuer (relay) public key: what a token is checked against.
#[derive(Clone)]
pub struct TokenKey {
    spki: Vec<u8>,
    id: [u8; 32],
    public: Public,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("id", &b64::encode(&self.id))
            .finish()
    }
}

impl TokenKey {
    /// Reads the RFC 9578 SubjectPublicKeyInfo (id-RSASSA-PSS, SHA-384,
    /// 48-byte salt) of a 2048-bit key with exponent 65537; anything else
    /// is refused.
    pub fn from_spki(spki: &[u8]) -> Result<TokenKey> {
        let bad = || ProtocolError::InvalidKey("token issuer key");
        let modulus = spki
            .strip_prefix(&SPKI_PREFIX[..])
            .and_then(|rest| rest.strip_suffix(&SPKI_EXPONENT[..]))
            .filter(|m| m.len() == NK && m.first().is_some_and(|b| b & 0x80 != 0))
            .ok_or_else(bad)?;
        let mut der = Vec::with_capacity(RSA_SPKI_PREFIX.len() + NK + SPKI_EXPONENT.len());
        der.extend_from_slice(&RSA_SPKI_PREFIX);
        der.extend_from_slice(modulus);
        der.extend_from_slice(&SPKI_EXPONENT);
        let public = Public::from_der(&der).map_err(rsa_error)?;
        Ok(TokenKey {
            spki: spki.to_vec(),
            id: sha256(&[spki]),
            public,
        })
    }

    fn from_public(public: Public) -> Result<TokenKey> {
        let der = public.to_der().map_err(rsa_error)?;
        let modulus = der
            .strip_prefix(&RSA_SPKI_PREFIX[..])
            .and_then(|rest| rest.strip_suffix(&SPKI_EXPONENT[..]))
            .filter(|m| m.len() == NK)
            .ok_or(ProtocolError::InvalidKey("token issuer key"))?;
        let mut spki = Vec::with_capacity(SPKI_LEN);
        spki.extend_from_slice(&SPKI_PREFIX);
        spki.extend_from_slice(modulus);
        spki.extend_from_slice(&SPKI_EXPONENT);
        TokenKey::from_spki(&spki)
    }

    /// The key as RFC 9578 publishes it.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// `token_key_id`: SHA-256 of the SubjectPublicKeyInfo.
    pub fn id(&self) -> [u8; 32] {
        self.id
    }

    /// Checks that `token` is this key's signature on its own fields, for
    /// the challenge `digest`. Says nothing about whether it was spent.
    pub fn verify(&self, token: &Token, digest: &[u8; 32]) -> Result<()> {
        if token.key_id != self.id {
            return Err(ProtocolError::UnknownSigner("token"));
        }
        if token.challenge_digest != *digest {
            return Err(ProtocolError::Invalid("token for another relay"));
        }
        self.public
            .verify(
                &Signature(token.authenticator.to_vec()),
                None,
                token.input(),
            )
            .map_err(|_| ProtocolError::BadSignature("token"))
    }
}

/// A relay's token-signing key (the issuer's secret).
pub struct IssuerKey {
    secret: SecretKeySha384PSSDeterministic,
    public: TokenKey,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl IssuerKey {
    /// A new 2048-bit key (about half a second of one core).
    pub fn generate(entropy: &mut dyn Entropy) -> Result<IssuerKey> {
        let mut rng = Drbg::new(entropy)?;
        let pair = KeyPairSha384PSSDeterministic::generate(&mut rng, 2048).map_err(rsa_error)?;
        Ok(IssuerKey {
            public: TokenKey::from_public(pair.pk)?,
            secret: pair.sk,
        })
    }

    /// The key as PKCS#8 DER (to be kept sealed).
    pub fn to_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.secret.to_der().map(Zeroizing::new).map_err(rsa_error)
    }

    /// Reads a key written by [`IssuerKey::to_der`] (or any PKCS#8
    /// 2048-bit RSA key with exponent 65537).
    pub fn from_der(der: &[u8]) -> Result<IssuerKey> {
        let secret = SecretKeySha384PSSDeterministic::from_der(der).map_err(rsa_error)?;
        let public = TokenKey::from_public(secret.public_key().map_err(rsa_error)?)?;
        Ok(IssuerKey { secret, public })
    }

    /// The public half.
    pub fn public(&self) -> &TokenKey {
        &self.public
    }

    /// Signs one blinded token request (the issuer's whole part; it learns
    /// nothing of the token that will come of it).
    pub fn sign(&self, request: &TokenRequest, entropy: &mut dyn Entropy) -> Result<[u8; NK]> {
        if request.truncated_key_id != self.public.id[31] {
            return Err(ProtocolError::UnknownSigner("token request"));
        }
        let mut rng = Drbg::new(entropy)?;
        let signed = self
            .secret
            .blind_sign_with_rng(&mut rng, request.blinded)
            .map_err(|_| ProtocolError::Invalid("token request"))?;
        <[u8; NK]>::try_from(signed.0.as_slice())
            .map_err(|_| ProtocolError::Invalid("token response"))
    }
}

/// `token_input` (RFC 9578 §6.3): what the authenticator signs.
fn token_input(nonce: &[u8; 32], challenge_digest: &[u8; 32], key_id: &[u8; 32]) -> [u8; 98] {
    let mut out = [0u8; 98];
    out[..2].copy_from_slice(&TOKEN_TYPE.to_be_bytes());
    out[2..34].copy_from_slice(nonce);
    out[34..66].copy_from_slice(challenge_digest);
    out[66..98].copy_from_slice(key_id);
    out
}

/// A token: one upload admitted without work (RFC 9578 §6.3).
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The client's random nonce.
    pub nonce: [u8; 32],
    /// SHA-256 of the TokenChallenge it answers.
    pub challenge_digest: [u8; 32],
    /// The issuer key's id.
    pub key_id: [u8; 32],
    /// The RSA signature on the fields above.
    pub authenticator: [u8; NK],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").finish_non_exhaustive()
    }
}

impl Token {
    /// `token_input`: what the authenticator signs.
    pub fn input(&self) -> [u8; 98] {
        token_input(&self.nonce, &self.challenge_digest, &self.key_id)
    }

    /// The token's bytes.
    pub fn encode(&self) -> [u8; TOKEN_LEN] {
        let mut out = [0u8; TOKEN_LEN];
        out[..98].copy_from_slice(&self.input());
        out[98..].copy_from_slice(&self.authenticator);
        out
    }

    /// Reads a token; only type 0x0002 of exactly [`TOKEN_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Token> {
        let mut r = Reader::new(bytes);
        let kind = u16::from_be_bytes(r.array::<2>()?);
        if kind != TOKEN_TYPE {
            return Err(ProtocolError::Invalid("token type"));
        }
        let token = Token {
            nonce: r.array()?,
            challenge_digest: r.array()?,
            key_id: r.array()?,
            authenticator: r.array()?,
        };
        r.finish()?;
        Ok(token)
    }

    /// The `Authorization` header value that redeems it (RFC 9577 §2.2).
    pub fn to_header(&self) -> String {
        format!("{AUTH_SCHEME} token=\"{}\"", b64::encode(&self.encode()))
    }

    /// Reads an `Authorization: PrivateToken token="…"` value (the quotes
    /// are optional; other parameters are ignored, as RFC 9577 asks).
    pub fn from_header(value: &str) -> Result<Token> {
        let rest = value
            .strip_prefix(AUTH_SCHEME)
            .filter(|r| r.starts_with(' '))
            .ok_or(ProtocolError::Invalid("authorization scheme"))?;
        for param in rest.split(',') {
            let Some((name, v)) = param.trim().split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("token") {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                return Token::decode(&b64::decode_array::<TOKEN_LEN>(v, "token")?);
            }
        }
        Err(ProtocolError::Invalid("token"))
    }

    /// What the relay keeps of a spent token, to refuse it a second time:
    /// `SHA-256("amparo-token-spent-v1" || key id || nonce)[0..16]`. It
    /// names the token only, not whoever issued or spent it.
    pub fn nullifier(&self) -> [u8; 16] {
        let h = sha256(&[NULLIFIER_CONTEXT, &self.key_id, &self.nonce]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&h[..16]);
        out
    }
}

/// One blinded token request (RFC 9578 §6.1).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The last byte of the issuer key's id.
    pub truncated_key_id: u8,
    /// The blinded message.
    pub blinded: [u8; NK],
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest").finish_non_exhaustive()
    }
}

impl TokenRequest {
    /// The request's bytes.
    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        let mut out = [0u8; REQUEST_LEN];
        out[..2].copy_from_slice(&TOKEN_TYPE.to_be_bytes());
        out[2] = self.truncated_key_id;
        out[3..].copy_from_slice(&self.blinded);
        out
    }

    /// Reads one request.
    pub fn decode(bytes: &[u8]) -> Result<TokenRequest> {
        let mut r = Reader::new(bytes);
        if u16::from_be_bytes(r.array::<2>()?) != TOKEN_TYPE {
            return Err(ProtocolError::Invalid("token type"));
        }
        let request = TokenRequest {
            truncated_key_id: r.array::<1>()?[0],
            blinded: r.array()?,
        };
        r.finish()?;
        Ok(request)
    }
}

/// Encodes a batch of requests: their bytes one after the other.
pub fn encode_requests(requests: &[TokenRequest]) -> Vec<u8> {
    requests.iter().flat_map(|r| r.encode()).collect()
}

/// Reads a batch of 1 to [`MAX_BATCH`] requests.
pub fn decode_requests(bytes: &[u8]) -> Result<Vec<TokenRequest>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(REQUEST_LEN) {
        return Err(ProtocolError::Invalid("token requests"));
    }
    if bytes.len() / REQUEST_LEN > MAX_BATCH {
        return Err(ProtocolError::TooLarge {
            what: "token requests",
            len: bytes.len() / REQUEST_LEN,
            max: MAX_BATCH,
        });
    }
    bytes
        .chunks_exact(REQUEST_LEN)
        .map(TokenRequest::decode)
        .collect()
}

/// A client's half of an issuance in flight: what turns the issuer's blind
/// signature into a token. Never leaves the client.
pub struct Pending {
    nonce: [u8; 32],
    challenge_digest: [u8; 32],
    key: TokenKey,
    blinding: BlindingResult,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.blinding.secret.0);
    }
}

/// Starts a token for the relay whose receipt key is `relay`, to be signed
/// by `key`: a fresh nonce, blinded.
pub fn begin(
    key: &TokenKey,
    relay: &KeyId,
    entropy: &mut dyn Entropy,
) -> Result<(TokenRequest, Pending)> {
    let nonce = random::<32>(entropy)?;
    let challenge_digest = challenge_digest(relay);
    let input = token_input(&nonce, &challenge_digest, &key.id);
    let mut rng = Drbg::new(entropy)?;
    let blinding = key.public.blind(&mut rng, input).map_err(rsa_error)?;
    let blinded = <[u8; NK]>::try_from(blinding.blind_message.0.as_slice())
        .map_err(|_| ProtocolError::InvalidKey("token issuer key"))?;
    Ok((
        TokenRequest {
            truncated_key_id: key.id[31],
            blinded,
        },
        Pending {
            nonce,
            challenge_digest,
            key: key.clone(),
            blinding,
        },
    ))
}

/// Finishes a token from the issuer's blind signature; checks it, so a
/// relay cannot hand out a token it would refuse (or one marked for this
/// client: the signature verifies under the one public key).
pub fn finish(pending: &Pending, response: &[u8]) -> Result<Token> {
    if response.len() != RESPONSE_LEN {
        return Err(ProtocolError::Invalid("token response"));
    }
    let input = token_input(&pending.nonce, &pending.challenge_digest, &pending.key.id);
    let signature = pending
        .key
        .public
        .finalize(&BlindSignature(response.to_vec()), &pending.blinding, input)
        .map_err(|_| ProtocolError::BadSignature("token response"))?;
    let authenticator = <[u8; NK]>::try_from(signature.0.as_slice())
        .map_err(|_| ProtocolError::Invalid("token response"))?;
    Ok(Token {
        nonce: pending.nonce,
        challenge_digest: pending.challenge_digest,
        key_id: pending.key.id,
        authenticator,
    })
}

/// For test vectors: finishes a token with a known unblinding factor (RFC
/// 9578's `blind`), as [`finish`] does with its own.
#[doc(hidden)]
pub fn finish_with_blind(
    key: &TokenKey,
    nonce: [u8; 32],
    challenge_digest: [u8; 32],
    blind: &[u8],
    response: &[u8],
) -> Result<Token> {
    let pending = Pending {
        nonce,
        challenge_digest,
        key: key.clone(),
        blinding: BlindingResult {
            blind_message: blind_rsa_signatures::BlindMessage(Vec::new()),
            secret: Secret(blind.to_vec()),
            msg_randomizer: None,
        },
    };
    finish(&pending, response)
}

/// The epoch of the issuer key in force at `unix_seconds`.
pub fn key_epoch(unix_seconds: u64) -> u32 {
    u32::try_from(unix_seconds / KEY_EPOCH_SECONDS).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DangerousSeededEntropy;

    fn relay() -> KeyId {
        KeyId([7; 8])
    }

    #[test]
    fn a_token_is_issued_blind_and_verifies_for_its_relay_only() {
        let mut e = DangerousSeededEntropy::new(b"token test");
        let issuer = IssuerKey::generate(&mut e).unwrap();
        let key = TokenKey::from_spki(issuer.public().spki()).unwrap();
        assert_eq!(key.id(), issuer.public().id());
        let (request, pending) = begin(&key, &relay(), &mut e).unwrap();
        let wire = encode_requests(std::slice::from_ref(&request));
        let back = decode_requests(&wire).unwrap();
        assert_eq!(back, vec![request.clone()]);
        let response = issuer.sign(&back[0], &mut e).unwrap();
        let token = finish(&pending, &response).unwrap();
        // The issuer saw neither the nonce nor the signature it made.
        assert!(!wire.windows(32).any(|w| w == token.nonce));
        assert_ne!(&response[..], &token.authenticator[..]);
        let digest = challenge_digest(&relay());
        key.verify(&token, &digest).unwrap();
        assert!(
            key.verify(&token, &challenge_digest(&KeyId([8; 8])))
                .is_err()
        );
        let header = token.to_header();
        assert_eq!(Token::from_header(&header).unwrap(), token);
        let mut forged = token.clone();
        forged.nonce[0] ^= 1;
        assert!(key.verify(&forged, &digest).is_err());
        assert_ne!(forged.nullifier(), token.nullifier());
        // A response for another request does not finish this one.
        let (other, _) = begin(&key, &relay(), &mut e).unwrap();
        let wrong = issuer.sign(&other, &mut e).unwrap();
        assert!(finish(&pending, &wrong).is_err());
        // The secret key round-trips.
        let again = IssuerKey::from_der(&issuer.to_der().unwrap()).unwrap();
        assert_eq!(again.public().id(), key.id());
    }

    #[test]
    fn decoders_refuse_what_is_not_a_token() {
        assert!(Token::decode(&[0u8; TOKEN_LEN]).is_err());
        let mut ok = [0u8; TOKEN_LEN];
        ok[1] = 2;
        assert!(Token::decode(&ok).is_ok());
        assert!(Token::decode(&ok[..TOKEN_LEN - 1]).is_err());
        assert!(Token::decode(&[&ok[..], &[0]].concat()).is_err());
        assert!(Token::from_header("Bearer x").is_err());
        assert!(Token::from_header("PrivateToken").is_err());
        assert!(Token::from_header("PrivateToken token=\"!!\"").is_err());
        assert!(decode_requests(&[]).is_err());
        assert!(decode_requests(&[0u8; REQUEST_LEN + 1]).is_err());
        assert!(decode_requests(&vec![0u8; REQUEST_LEN * (MAX_BATCH + 1)]).is_err());
        assert!(TokenKey::from_spki(&[0u8; SPKI_LEN]).is_err());
        assert!(TokenKey::from_spki(&SPKI_PREFIX).is_err());
    }

    #[test]
    fn key_epochs_are_thirty_days() {
        assert_eq!(key_epoch(0), 0);
        assert_eq!(key_epoch(KEY_EPOCH_SECONDS - 1), 0);
        assert_eq!(key_epoch(KEY_EPOCH_SECONDS), 1);
    }
}
