//! The key sets Amparo's parties hold, and the ids derived from them.
//!
//! A *recipient* — a focal point, or a survivor's reply capability for one
//! report — holds two keys: an X25519 key that envelopes are sealed to, and an
//! Ed25519 key that signs its mailbox requests. Its mailbox id is a hash of the
//! Ed25519 public key, so the relay can check that whoever asks for a mailbox
//! holds the key it belongs to without keeping any account.

use core::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::entropy::Entropy;
use crate::primitives::{ed25519, sha256_prefix, x25519};
use crate::{ProtocolError, Result, b64};

/// Length of a mailbox id.
pub const MAILBOX_ID_LEN: usize = 12;
/// Length of a signing key id.
pub const KEY_ID_LEN: usize = 8;

const MAILBOX_CONTEXT: &[u8] = b"amparo-mailbox-v1";
const KEY_ID_CONTEXT: &[u8] = b"amparo-key-id-v1";

/// A mailbox at the relay: the first 12 bytes of
/// `SHA-256("amparo-mailbox-v1" || ed25519_public_key)`.
///
/// 96 bits: finding a signing key for a given mailbox costs about 2^96 work,
/// and random collisions among even a billion mailboxes are negligible, while
/// every envelope header stays short and the id fits in 16 URL characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MailboxId(#[serde(with = "b64::array")] pub [u8; MAILBOX_ID_LEN]);

impl MailboxId {
    /// The mailbox that belongs to `key`.
    pub fn for_key(key: &ed25519::VerifyingKey) -> MailboxId {
        MailboxId(sha256_prefix(&[MAILBOX_CONTEXT, key.as_bytes()]))
    }

    /// Parses the 16-character base64url form.
    pub fn parse(text: &str) -> Result<MailboxId> {
        Ok(MailboxId(b64::decode_array(text, "mailbox id")?))
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&b64::encode(&self.0))
    }
}

impl fmt::Debug for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxId({self})")
    }
}

/// A short name for a signing key (coordinator, relay): the first 8 bytes of
/// `SHA-256("amparo-key-id-v1" || ed25519_public_key)`. Lets a verifier pick
/// the right key; it is never trusted on its own.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyId(#[serde(with = "b64::array")] pub [u8; KEY_ID_LEN]);

impl KeyId {
    /// The id of `key`.
    pub fn for_key(key: &ed25519::VerifyingKey) -> KeyId {
        KeyId(sha256_prefix(&[KEY_ID_CONTEXT, key.as_bytes()]))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&b64::encode(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The public half of a recipient's keys: what a directory entry or a reply
/// capability carries.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientPublic {
    /// X25519 key envelopes are sealed to.
    #[serde(with = "b64::array")]
    pub sealing_key: [u8; 32],
    /// Ed25519 key that signs this recipient's mailbox requests.
    #[serde(with = "b64::array")]
    pub signing_key: [u8; 32],
}

impl RecipientPublic {
    /// The mailbox these keys own.
    pub fn mailbox(&self) -> MailboxId {
        MailboxId::for_key(&self.verifying_key())
    }

    /// The sealing key as a typed X25519 public key.
    pub fn sealing_public(&self) -> x25519::PublicKey {
        x25519::PublicKey(self.sealing_key)
    }

    /// The request-signing key as a typed Ed25519 public key.
    pub fn verifying_key(&self) -> ed25519::VerifyingKey {
        ed25519::VerifyingKey(self.signing_key)
    }
}

impl fmt::Debug for RecipientPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecipientPublic(mailbox {})", self.mailbox())
    }
}

/// Length of [`RecipientKeys::dangerously_export`].
pub const RECIPIENT_SECRET_LEN: usize = 64;

/// A recipient's secret keys: a focal point's key set, or a survivor's
/// per-report reply keys. No `Clone`, no `Serialize`; zeroized on drop.
pub struct RecipientKeys {
    sealing: x25519::SecretKey,
    signing: ed25519::SigningKey,
}

impl RecipientKeys {
    /// A fresh key set.
    pub fn generate(entropy: &mut dyn Entropy) -> Result<Self> {
        Ok(RecipientKeys {
            sealing: x25519::SecretKey::generate(entropy)?,
            signing: ed25519::SigningKey::generate(entropy)?,
        })
    }

    /// The public half.
    pub fn public(&self) -> RecipientPublic {
        RecipientPublic {
            sealing_key: self.sealing.public_key().0,
            signing_key: self.signing.verifying_key().0,
        }
    }

    /// This recipient's mailbox.
    pub fn mailbox(&self) -> MailboxId {
        MailboxId::for_key(&self.signing.verifying_key())
    }

    /// The X25519 secret that opens envelopes.
    pub fn sealing(&self) -> &x25519::SecretKey {
        &self.sealing
    }

    /// The Ed25519 key that signs mailbox requests.
    pub fn signing(&self) -> &ed25519::SigningKey {
        &self.signing
    }

    /// The 64 secret bytes (X25519 secret, then Ed25519 seed), for storing
    /// the key set encrypted. Handle with care.
    pub fn dangerously_export(&self) -> Zeroizing<[u8; RECIPIENT_SECRET_LEN]> {
        let mut out = Zeroizing::new([0u8; RECIPIENT_SECRET_LEN]);
        let (sealing, signing) = out.split_at_mut(32);
        sealing.copy_from_slice(&*self.sealing.dangerously_export());
        signing.copy_from_slice(&*self.signing.dangerously_export_seed());
        out
    }

    /// Restores a key set from [`Self::dangerously_export`]'s bytes.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes: &[u8; RECIPIENT_SECRET_LEN] = bytes
            .try_into()
            .map_err(|_| ProtocolError::InvalidKey("recipient secret"))?;
        let mut sealing = Zeroizing::new([0u8; 32]);
        let mut seed = Zeroizing::new([0u8; 32]);
        sealing.copy_from_slice(&bytes[..32]);
        seed.copy_from_slice(&bytes[32..]);
        Ok(RecipientKeys {
            sealing: x25519::SecretKey::from_bytes(&sealing),
            signing: ed25519::SigningKey::from_seed(&seed)?,
        })
    }
}

impl fmt::Debug for RecipientKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecipientKeys(mailbox {})", self.mailbox())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DangerousSeededEntropy;

    #[test]
    fn export_restore_keeps_identity() {
        let k = RecipientKeys::generate(&mut DangerousSeededEntropy::new(b"r")).unwrap();
        let again = RecipientKeys::from_secret_bytes(&*k.dangerously_export()).unwrap();
        assert_eq!(k.public(), again.public());
        assert_eq!(k.mailbox(), again.mailbox());
        assert_eq!(k.public().mailbox(), k.mailbox());
        assert!(RecipientKeys::from_secret_bytes(&[0u8; 63]).is_err());
    }

    #[test]
    fn ids_print_as_base64url_and_parse_back() {
        let k = RecipientKeys::generate(&mut DangerousSeededEntropy::new(b"r")).unwrap();
        let text = k.mailbox().to_string();
        assert_eq!(text.len(), 16);
        assert_eq!(MailboxId::parse(&text).unwrap(), k.mailbox());
        assert!(MailboxId::parse("not a mailbox").is_err());
        // Debug output of secrets shows only the mailbox.
        let dbg = format!("{k:?}");
        assert!(dbg.contains(&text));
        assert!(!dbg.contains(&b64::encode(&*k.dangerously_export())));
    }
}
