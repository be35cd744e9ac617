//! Base64url without padding: how binary values (keys, ids) appear in JSON,
//! URLs and on screens. A 12-byte mailbox id is exactly 16 characters.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serializer};

use crate::{ProtocolError, Result};

/// Encodes bytes as base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding into exactly `N` bytes.
pub fn decode_array<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N]> {
    // Reject before decoding anything large.
    if text.len() > N.div_ceil(3) * 4 {
        return Err(ProtocolError::Invalid(what));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ProtocolError::Invalid(what))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| ProtocolError::Invalid(what))
}

/// Decodes base64url, with or without padding (RFC 9578 writes keys with
/// it), of at most `max` bytes; longer text is refused before decoding.
pub fn decode_vec(text: &str, max: usize, what: &'static str) -> Result<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() > max.div_ceil(3) * 4 {
        return Err(ProtocolError::Invalid(what));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ProtocolError::Invalid(what))?;
    if bytes.len() > max {
        return Err(ProtocolError::Invalid(what));
    }
    Ok(bytes)
}

/// serde helpers for fixed-size byte arrays as base64url strings.
pub mod array {
    use super::*;

    /// Serializes `[u8; N]` as base64url.
    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(v))
    }

    /// Deserializes `[u8; N]` from base64url.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        decode_array::<N>(&s, "base64url value").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let v = [1u8, 2, 3, 250, 251, 252, 253, 254, 255, 0, 1, 2];
        let s = encode(&v);
        assert_eq!(s.len(), 16);
        assert_eq!(decode_array::<12>(&s, "x").unwrap(), v);
        assert!(decode_array::<12>("AAAA", "x").is_err());
        assert!(decode_array::<12>(&format!("{s}AAAA"), "x").is_err());
        assert!(decode_array::<12>("!!!!!!!!!!!!!!!!", "x").is_err());
    }
}
